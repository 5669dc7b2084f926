package hub_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/hub"
)

// BenchmarkFanOut measures one log entry reaching every member of a room:
// an entry is appended (as by another process), Notify is called, and the
// iteration ends when every client has read it. Besides ns/op it reports the
// p50 and p99 latency from Notify to a client having read the entry, and
// to the last client of the room having read it (all-p50, all-p99).
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{80, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchFanOut(b, n) })
	}
}

func benchFanOut(b *testing.B, n int) {
	th := newTestHub(b, hub.Config{PollInterval: time.Hour})
	lat := make(chan time.Duration, n)
	for i := range n {
		c := th.dial(b, fmt.Sprintf("p%d", i))
		c.skipPresence = true
		c.join(room, 0)
		c.ws.SetReadDeadline(time.Time{}) // join set one
		go func() {
			for {
				_, msg, err := c.ws.ReadMessage()
				if err != nil {
					return // closed at the end of the benchmark
				}
				for _, data := range bytes.Split(msg, []byte("\n")) {
					if strings.HasPrefix(string(data), `{"type":"presence"`) {
						continue
					}
					var f struct {
						Type    string
						Payload struct{ Sent int64 }
					}
					if json.Unmarshal(data, &f) == nil && f.Type == "entry" {
						lat <- time.Since(time.Unix(0, f.Payload.Sent))
					}
				}
			}
		}()
	}
	// Let the presence broadcasts of the joins settle.
	time.Sleep(200 * time.Millisecond)
	if s := th.Stats(); s.Connections != n || s.DroppedSlow != 0 {
		b.Fatalf("after joining: %+v, want %d connections and none dropped", s, n)
	}
	var each, last []time.Duration
	b.ResetTimer()
	for b.Loop() {
		e := th.b.Append(room, "finding.update", map[string]any{"sent": time.Now().UnixNano(), "title": "A hotline for victims"})
		th.Notify(room, e.Seq)
		var latest time.Duration
		for range n {
			d := <-lat
			each, latest = append(each, d), max(latest, d)
		}
		last = append(last, latest)
	}
	b.StopTimer()
	report := func(ds []time.Duration, prefix string) {
		slices.Sort(ds)
		if len(ds) > 0 {
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, prefix+"p50-ms")
			b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, prefix+"p99-ms")
		}
	}
	report(each, "")
	report(last, "all-")
}
