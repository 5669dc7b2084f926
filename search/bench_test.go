package search_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/search/gen"
)

// benchN is the number of findings benchmarks index: SEARCH_BENCH_N or
// 10000.
func benchN(b *testing.B) int {
	b.Helper()
	s := os.Getenv("SEARCH_BENCH_N")
	if s == "" {
		return 10000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("SEARCH_BENCH_N=%q: want a positive number", s)
	}
	return n
}

// benchBatch is the batch size the benchmarks index with.
const benchBatch = 1000

// buildIndex indexes docs into a new index in dir, as the server's
// rebuild does (a Loader, with BulkGC), and returns it open.
func buildIndex(b *testing.B, dir string, docs []search.Document) *search.Index {
	b.Helper()
	defer search.BulkGC()()
	ix, err := search.Create(dir, search.Options{})
	if err != nil {
		b.Fatal(err)
	}
	load := ix.NewLoader(0)
	for i := 0; i < len(docs); i += benchBatch {
		if err := load.Add(docs[i:min(i+benchBatch, len(docs))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := load.Wait(); err != nil {
		b.Fatal(err)
	}
	return ix
}

// BenchmarkIndexBuild measures indexing N findings in batches of 1000,
// several at once as the server's rebuild does.
func BenchmarkIndexBuild(b *testing.B) {
	n := benchN(b)
	docs := gen.Findings(1, n)
	dir := b.TempDir()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ix := buildIndex(b, filepath.Join(dir, strconv.Itoa(i)), docs)
		if err := ix.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "docs/s")
}

// BenchmarkQuery measures five query shapes over an index of N findings,
// reporting p50 and p95 latency.
func BenchmarkQuery(b *testing.B) {
	n := benchN(b)
	docs := gen.Findings(1, n)
	start := time.Now()
	ix := buildIndex(b, b.TempDir(), docs)
	b.Cleanup(func() { _ = ix.Close() })
	built := time.Since(start)
	// Merge segments as the server does after a rebuild, so background
	// merging does not disturb the measurements.
	if err := ix.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexed %d findings in %v, compacted in %v", n, built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond))
	// A report author at an event sees its own findings and all released ones.
	audience := []string{"public", "org:1", "org:2", "event:3"}

	shapes := []struct {
		name    string
		queries []search.Query
	}{
		{"word", []search.Query{{Text: "victims"}, {Text: "inspections"}, {Text: "hotline"}, {Text: "människohandel"}, {Text: "ihmiskaupan"}}},
		{"phrase", []search.Query{{Text: `"labour exploitation"`}, {Text: `"national referral mechanism"`}, {Text: `"safe accommodation"`}}},
		{"word+2facets", []search.Query{
			{Text: "police", Filters: map[string][]string{"country": {"FI", "SE"}, "theme": {"victim-identification"}}},
			{Text: "employers", Filters: map[string][]string{"form": {"forced-labour"}, "p": {"prosecution"}}},
			{Text: "shelter", Filters: map[string][]string{"victim": {"children"}, "country": {"NO"}}},
		}},
		{"facets-only", []search.Query{
			{},
			{Filters: map[string][]string{"country": {"DK"}}},
			{Filters: map[string][]string{"release": {"released"}, "lang": {"en"}}},
		}},
		{"prefix", []search.Query{{Text: "traffick*"}, {Text: "inspect*"}, {Text: "arbets*"}}},
	}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				q := s.queries[i%len(s.queries)]
				q.Audience = audience
				t0 := time.Now()
				if _, err := ix.Search(ctx, q); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			pct := func(p float64) float64 {
				return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.95), "p95-ms")
		})
	}
}
