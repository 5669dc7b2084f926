package hub

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// entryOut is the entry frame as encoding/json would write it.
type entryOut struct {
	Type string `json:"type"`
	Entry
}

// checkEntryFrame says whether appendEntryFrame writes e as json.Marshal
// does: the same bytes when byteEqual (no character that json.Marshal
// escapes for HTML in the payload), else the same value.
func checkEntryFrame(t *testing.T, e Entry, byteEqual bool) {
	t.Helper()
	want, err := json.Marshal(entryOut{Type: "entry", Entry: e})
	if err != nil {
		t.Fatalf("json.Marshal(%+v): %v", e, err)
	}
	got, ok := appendEntryFrame(nil, e)
	if !ok {
		t.Fatalf("appendEntryFrame refused %q", e.Payload)
	}
	if byteEqual && string(got) != string(want) {
		t.Fatalf("appendEntryFrame wrote\n%s\nwant\n%s", got, want)
	}
	g, err := decodeNumbers(got)
	if err != nil {
		t.Fatalf("appendEntryFrame wrote invalid JSON %s: %v", got, err)
	}
	w, err := decodeNumbers(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("appendEntryFrame wrote %s, want the value of %s", got, want)
	}
}

// decodeNumbers decodes b with numbers as written (a float64 cannot hold
// every JSON number).
func decodeNumbers(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	return v, d.Decode(&v)
}

func TestEntryFrameIsWhatJSONMarshalWrites(t *testing.T) {
	at := time.Date(2026, 11, 27, 8, 30, 1, 123456000, time.FixedZone("", 3600))
	for _, e := range []Entry{
		{Room: "workshop:1", Seq: 7, OpID: "op-1", Actor: "Anna", Kind: "finding.create",
			Payload: json.RawMessage(`{"id": 3, "title": "A \"quoted\" {title} [x]", "countries": ["FI", "SE"],` + "\n\t" + `"n": null, "b": true}`), At: at},
		{Room: "event:2", Seq: 1, Kind: "event.release", Payload: json.RawMessage(`{}`), At: at.UTC()},
		{Room: "workshop:1", Seq: 2, Kind: "k", Payload: nil, At: at},
		{Room: "workshop:1", Seq: 3, Kind: "k", Payload: json.RawMessage(` [1, 2.5e3, "a\\\\", "\\u00e5"] `), At: at},
		{Room: "rum ø", Seq: 4, OpID: "ø\"\\\n<&>", Actor: "Åsa <NGO> & co\u2028", Kind: "k", Payload: json.RawMessage(`"x"`), At: at},
	} {
		checkEntryFrame(t, e, true)
	}
	// json.Marshal escapes <, > and & in a payload for HTML; a frame need not.
	checkEntryFrame(t, Entry{Room: "r", Seq: 1, Kind: "k", Payload: json.RawMessage(`{"t": "Police & NGOs <3"}`), At: at}, false)
}

func TestEntryFrameRefusesAPayloadThatIsNotJSON(t *testing.T) {
	for _, p := range []string{`{"a": 1`, `{"a": "b}`, `]`, `{"a": [1}`, `"a` + "\n" + `b"`, `"a\` + "\n" + `"`, `{"a": "\"}`} {
		if b, ok := appendEntryFrame(nil, Entry{Room: "r", Seq: 1, Kind: "k", Payload: json.RawMessage(p)}); ok {
			t.Errorf("payload %q: wrote %s, want it refused", p, b)
		}
	}
}

// FuzzEntryFrame: for any payload that is JSON, the frame is the value
// json.Marshal writes; for any payload at all, a frame written holds no
// raw newline.
func FuzzEntryFrame(f *testing.F) {
	f.Add(`{"id": 1, "t": "x y"}`, "Anna")
	f.Add(`[1, {"a": "\"}"}]`, "")
	f.Fuzz(func(t *testing.T, payload, actor string) {
		e := Entry{Room: "workshop:1", Seq: 9, Actor: actor, Kind: "k", Payload: json.RawMessage(payload), At: time.Unix(1, 5)}
		if b, ok := appendEntryFrame(nil, e); ok && bytes.IndexByte(b, '\n') >= 0 {
			t.Fatalf("payload %q: the frame %q holds a raw newline", payload, b)
		}
		if json.Valid([]byte(payload)) {
			checkEntryFrame(t, e, false)
		}
	})
}

// BenchmarkEntryFrame encodes a finding's creation entry as Postgres hands
// it over (jsonb text, a space after every colon and comma), against
// json.Marshal as the baseline.
func BenchmarkEntryFrame(b *testing.B) {
	e := Entry{Room: "workshop:12", Seq: 4711, OpID: "tab-3f2a-000123", Actor: "Participant", Kind: "finding.create",
		Payload: json.RawMessage(`{"id": 18211, "ps": ["prosecution", "protection"], "forms": ["labour"], "title": "Joint labour inspections with the police",` +
			` "themes": ["identification", "cooperation"], "results": "Forty workplaces inspected; nine victims referred to support.", "version": 1,` +
			` "event_id": 1, "language": "en", "countries": ["FI", "SE"], "what_done": "Inspectors and police visit workplaces together, with an interpreter.",` +
			` "created_at": "2026-11-27T08:30:01.123456+00:00", "updated_at": "2026-11-27T08:30:01.123456+00:00", "actor_types": ["labour inspectorate", "police"],` +
			` "attribution": "chatham", "workshop_id": 12, "release_state": "draft", "victim_groups": ["adults"], "contact_consent": false,` +
			` "nordic_proposal": "", "transferability": "Needs a legal basis for sharing data between the agencies.", "is_key": false, "votes": 0}`),
		At: time.Date(2026, 11, 27, 8, 30, 1, 123456000, time.UTC)}
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(entryOut{Type: "entry", Entry: e}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendEntryFrame", func(b *testing.B) {
		for b.Loop() {
			if _, ok := appendEntryFrame(make([]byte, 0, 160+len(e.Payload)), e); !ok {
				b.Fatal("refused")
			}
		}
	})
}
