package hub

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEnvelopeScanner: fed a JSON value in two pieces, the scanner finds
// the envelope encoding/json finds in it (DecodeFrame's reading), but for
// a field that is not UTF-8, which it drops.
func FuzzEnvelopeScanner(f *testing.F) {
	for _, s := range []string{
		`{"type":"op","room":"workshop:1","op_id":"a","body":{"type":"x","room":"y"}}`,
		`{"body":{"title":"` + "\\\"quoted\\\"" + `"},"op_id":"after-body","TYPE":"op","Room":"workshop:2"}`,
		`{"room":"a","room":null,"op_id":"x","op_id":5}`,
		`{"\u0074ype":"join","room":"w\u00e9","since":3}`,
		`["type","op"]`,
		`{"room":["workshop:1"],"op_id":{"op_id":"inner"}}`,
		`{"op_id":"\ud83d\ude00"}`,
		"{\"op_id\":\"\x87\",\"room\":\"r\"}",
	} {
		f.Add([]byte(s), uint16(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		if !json.Valid(data) {
			return
		}
		var w struct {
			Type *string `json:"type"`
			Room *string `json:"room"`
			OpID *string `json:"op_id"`
		}
		json.Unmarshal(data, &w) // type errors leave the other fields read
		var want Frame
		if w.Type != nil {
			switch *w.Type {
			case TypeJoin, TypeLeave, TypeOp, TypePresence, TypePing:
				want.Type = *w.Type
			}
		}
		if w.Room != nil && validText(*w.Room, MaxRoomLen) {
			want.Room = *w.Room
		}
		if w.OpID != nil && validText(*w.OpID, MaxOpIDLen) {
			want.OpID = *w.OpID
		}
		// A field that is not UTF-8 is dropped, where encoding/json reads
		// its bad bytes as U+FFFD.
		lenient := !utf8.Valid(data)
		same := func(got, want string) bool { return got == want || lenient && got == "" && want != "" }
		i := int(cut) % (len(data) + 1)
		s := newEnvelopeScanner()
		s.feed(data[:i])
		s.feed(data[i:])
		if got := s.frame(); !same(got.Type, want.Type) || !same(got.Room, want.Room) || !same(got.OpID, want.OpID) {
			t.Fatalf("%s (cut at %d): scanned %q %q %q, encoding/json reads %q %q %q",
				data, i, got.Type, got.Room, got.OpID, want.Type, want.Room, want.OpID)
		}
	})
}

// BenchmarkOversizedFrame reads 1 MiB frames over the 64 KiB limit, made
// of the keys the scanner looks for: one costs about what reading it
// does, however many keys it has.
func BenchmarkOversizedFrame(b *testing.B) {
	for _, c := range []struct{ name, pair string }{
		{"wanted pairs", `"type":"op","room":"workshop:1",`},
		{"escaped keys", `"\u0074ype":"op","op_id":1,`},
		{"other keys", `"a":1,`},
	} {
		frame := []byte("{" + strings.Repeat(c.pair, (1<<20)/len(c.pair)) + `"op_id":"last"}`)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				_, over, env, err := readFrame(bytes.NewReader(frame), 64<<10)
				if err != nil || !over || env.OpID != "last" {
					b.Fatalf("over %v, envelope %+v, %v", over, env, err)
				}
			}
		})
	}
}
