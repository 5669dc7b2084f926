package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkStart measures the embedded default from run() to a 200 from
// /readyz: cold (an empty data folder: initdb, migrations, demo event) and
// warm (the same folder again).
//
//	go test -run '^$' -bench Start -benchtime 3x ./server/
func BenchmarkStart(b *testing.B) {
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := b.TempDir()
				os.Chmod(dir, 0o755)
				os.Chmod(filepath.Dir(dir), 0o755)
				env := map[string]string{"DATA_DIR": filepath.Join(dir, "data")}
				if mode == "warm" {
					MustStart(b, env).Stop(b)
				}
				b.StartTimer()
				start := time.Now()
				s := MustStart(b, env)
				total += time.Since(start)
				b.StopTimer()
				s.Stop(b)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/start")
		})
	}
}
