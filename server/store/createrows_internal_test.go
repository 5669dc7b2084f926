package store

import (
	"encoding/json"
	"fmt"
	"testing"
)

// marshalledRow is a createRow as json.Marshal writes it with its payload:
// the baseline of encodeCreateRows.
type marshalledRow struct {
	*createRow
	Payload json.RawMessage `json:"payload"`
}

func benchRows(tb testing.TB, n int) ([]*createRow, []marshalledRow) {
	actor := int64(7)
	rows, baseline := make([]*createRow, n), make([]marshalledRow, n)
	for i := range rows {
		r, err := newCreateRow(&actor, 3, fmt.Sprintf("tab-%d", i), FindingInput{
			Title: "Joint labour inspections with the police", WhatDone: "Inspectors and police visit workplaces together.",
			Results: "Nine victims \"referred\" to support <in 2025>.", Countries: []string{"SE", "FI"}, Themes: []string{"cooperation"},
			Language: "en", Attribution: "chatham"})
		if err != nil {
			tb.Fatal(err)
		}
		rows[i], baseline[i] = r, marshalledRow{r, r.Payload}
	}
	return rows, baseline
}

func TestEncodeCreateRowsIsJSONMarshal(t *testing.T) {
	rows, baseline := benchRows(t, 3)
	got, err := encodeCreateRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(baseline)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("encodeCreateRows wrote\n%s\nwant\n%s", got, want)
	}
}

// BenchmarkEncodeCreateRows encodes a batch of 40 new findings for the
// batch create statement, against json.Marshal as the baseline.
func BenchmarkEncodeCreateRows(b *testing.B) {
	rows, baseline := benchRows(b, 40)
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(baseline); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encodeCreateRows", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeCreateRows(rows); err != nil {
				b.Fatal(err)
			}
		}
	})
}
