package hub_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/hub"
)

func TestDecodeFrame(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want hub.Frame
		code string
	}{
		{`{"type":"join","room":"workshop:12","since":7}`, hub.Frame{Type: "join", Room: "workshop:12", Since: 7}, ""},
		{`{"type":"join","room":"workshop:12"}`, hub.Frame{Type: "join", Room: "workshop:12"}, ""},
		{`{"type":"op","room":"r","op_id":"u1","kind":"finding.update","base":7,"body":{ "id" : "f1" }}`,
			hub.Frame{Type: "op", Room: "r", OpID: "u1", Kind: "finding.update", Base: 7, Body: json.RawMessage(`{"id":"f1"}`)}, ""},
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","body":null}`, hub.Frame{Type: "op", Room: "r", OpID: "u1", Kind: "k"}, ""},
		// client: optional, "" as absent, a name of at most 64 characters.
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","client":"tablet-7"}`, hub.Frame{Type: "op", Room: "r", OpID: "u1", Kind: "k", Client: "tablet-7"}, ""},
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","client":""}`, hub.Frame{Type: "op", Room: "r", OpID: "u1", Kind: "k"}, ""},
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","client":"` + strings.Repeat("é", hub.MaxClientLen) + `"}`,
			hub.Frame{Type: "op", Room: "r", OpID: "u1", Kind: "k", Client: strings.Repeat("é", hub.MaxClientLen)}, ""},
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","client":"` + strings.Repeat("é", hub.MaxClientLen+1) + `"}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","client":"a\u0000b"}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","client":7}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"join","room":"r","client":"x"}`, hub.Frame{Type: "join", Room: "r"}, ""},
		// at: optional on a join, the at of the entry at since as sent.
		{`{"type":"join","room":"r","since":7,"at":"2026-11-29T10:41:28.899377Z"}`,
			hub.Frame{Type: "join", Room: "r", Since: 7, SinceAt: time.Date(2026, 11, 29, 10, 41, 28, 899377000, time.UTC)}, ""},
		{`{"type":"join","room":"r","since":7,"at":"2026-11-29T12:41:28+02:00"}`,
			hub.Frame{Type: "join", Room: "r", Since: 7, SinceAt: time.Date(2026, 11, 29, 10, 41, 28, 0, time.UTC)}, ""},
		{`{"type":"join","room":"r","since":7,"at":""}`, hub.Frame{Type: "join", Room: "r", Since: 7}, ""},
		{`{"type":"join","room":"r","since":7,"at":"yesterday"}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"join","room":"r","since":7,"at":7}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"ping","at":7}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","at":"2026-11-29T10:41:28Z"}`, hub.Frame{Type: "op", Room: "r", OpID: "u1", Kind: "k"}, ""},
		// Typed in every frame, as the other known fields (PROTOCOL.md).
		{`{"type":"ping","client":7}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"presence","room":"r","editing":"f1","extra":1}`, hub.Frame{Type: "presence", Room: "r", Editing: "f1"}, ""},
		{`{"type":"ping"}`, hub.Frame{Type: "ping"}, ""},
		{`{"type":"leave","room":"r"}`, hub.Frame{Type: "leave", Room: "r"}, ""},
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","base":-1}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"op","room":"r","op_id":"u1","kind":"k","base":1.5}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"op","room":"r","op_id":"","kind":"k"}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"op","room":"r\n","op_id":"u","kind":"k"}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"join","room":"` + strings.Repeat("é", hub.MaxRoomLen+1) + `"}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":7}`, hub.Frame{}, hub.CodeBadFrame},
		{`null`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"snapshot"}`, hub.Frame{}, hub.CodeUnknownType},
		// body is a JSON object (or null) wherever it comes (PROTOCOL.md).
		{`{"type":"ping","body":5}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"join","room":"r","body":"x"}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"leave","room":"r","body":[]}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"presence","room":"r","body":true}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"snapshot","body":1}`, hub.Frame{}, hub.CodeBadFrame},
		{`{"type":"join","room":"r","body":{"a":1}}`, hub.Frame{Type: "join", Room: "r"}, ""},
		{`{"type":"ping","body":null}`, hub.Frame{Type: "ping"}, ""},
	} {
		got, oe := hub.DecodeFrame([]byte(tc.in))
		if tc.code != "" {
			if oe == nil || oe.Code != tc.code {
				t.Errorf("DecodeFrame(%s): error %v, want code %s", tc.in, oe, tc.code)
			}
			continue
		}
		if oe != nil {
			t.Errorf("DecodeFrame(%s): %v", tc.in, oe)
		} else if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DecodeFrame(%s) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// FuzzDecodeFrame checks that DecodeFrame never panics, fails only with
// envelope codes, and that every accepted frame encodes to a frame that is
// accepted again and decodes to the same value.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","room":"workshop:12","since":3}`,
		`{"type":"op","room":"workshop:12","op_id":"c-1","kind":"finding.update","base":7,"body":{"id":"f1","title":"<b>"}}`,
		`{"type":"presence","room":"workshop:12","editing":"f1"}`,
		`{"type":"leave","room":"workshop:12"}`,
		`{"type":"ping","t":[1,{"a":null}]}`,
		`{"type":"op","room":"r","op_id":"x","kind":"k","body":[]}`,
		`{"TYPE":"join","Room":"r","since":-1}`,
		`{"type":"join","room":"\u2028\ud800"}`,
		`{`, `[]`, `null`, `"join"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, oe := hub.DecodeFrame(data)
		if oe != nil {
			if oe.Code != hub.CodeBadFrame && oe.Code != hub.CodeUnknownType {
				t.Fatalf("unexpected code %q", oe.Code)
			}
			return
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(fr); err != nil {
			t.Fatalf("encoding accepted frame %+v: %v", fr, err)
		}
		again, oe := hub.DecodeFrame(buf.Bytes())
		if oe != nil {
			t.Fatalf("re-decoding %s (from %q): %v", buf.Bytes(), data, oe)
		}
		if !reflect.DeepEqual(fr, again) {
			t.Fatalf("round trip of %q: %+v, then %+v", data, fr, again)
		}
	})
}
