package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/search/gen"
)

// BenchmarkSearchBaseline runs the five query shapes of the search issue
// on Bleve (the search package) and on Postgres full-text search (tsvector
// + GIN, facet counts by GROUP BY over unnest) over the same N generated
// findings, in the same run, reporting p50/p95 of each and the ratio.
//
//	SEARCH_BENCH_N=100000 go test -run '^$' -bench SearchBaseline -benchtime 200x -timeout 30m ./server/store/
func BenchmarkSearchBaseline(b *testing.B) {
	n := 5000
	if s := os.Getenv("SEARCH_BENCH_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("SEARCH_BENCH_N=%q: want a positive number", s)
		}
		n = v
	}
	ctx := context.Background()
	docs := gen.Findings(1, n)

	// Bleve.
	start := time.Now()
	ix, err := search.Create(filepath.Join(b.TempDir(), "search"), search.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	load := ix.NewLoader(0)
	for i := 0; i < len(docs); i += 1000 {
		if err := load.Add(docs[i:min(i+1000, len(docs))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := load.Wait(); err != nil {
		b.Fatal(err)
	}
	built := time.Since(start)
	if err := ix.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	// The parent of sub-benchmarks has its b.Log dropped: print instead.
	fmt.Printf("bleve: indexed %d findings in %v (%.0f docs/s), compacted in %v\n", n, built.Round(time.Millisecond),
		float64(n)/built.Seconds(), (time.Since(start) - built).Round(time.Millisecond))

	// Postgres.
	// A connection of its own: building GIN indexes outlasts the store's 10 s timeout.
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(pg.NewDB(b)), pgdriver.WithTimeout(30*time.Minute))), pgdialect.New())
	defer db.Close()
	start = time.Now()
	if _, err := db.ExecContext(ctx, `CREATE TABLE bench_findings (
		id bigint PRIMARY KEY, event text NOT NULL, workshop text NOT NULL, lang text NOT NULL, cfg regconfig NOT NULL,
		release text NOT NULL, title text NOT NULL, body text NOT NULL,
		countries text[] NOT NULL, themes text[] NOT NULL, ps text[] NOT NULL, forms text[] NOT NULL,
		victims text[] NOT NULL, actors text[] NOT NULL, audience text[] NOT NULL, updated timestamptz NOT NULL,
		tsv tsvector)`); err != nil {
		b.Fatal(err)
	}
	cfgOf := map[string]string{"en": "english", "da": "danish", "fi": "finnish", "no": "norwegian", "sv": "swedish"}
	for i := 0; i < len(docs); i += 500 {
		var sb strings.Builder
		var args []any
		sb.WriteString("INSERT INTO bench_findings (id, event, workshop, lang, cfg, release, title, body, countries, themes, ps, forms, victims, actors, audience, updated) VALUES ")
		for j, d := range docs[i:min(i+500, len(docs))] {
			if j > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(?, ?, ?, ?, ?::regconfig, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			body := strings.Join([]string{d.Done, d.Results, d.Transferability, d.Proposal, d.Comments, d.KeyMessages}, "\n")
			lang := d.Lang
			if cfgOf[lang] == "" {
				lang = "en"
			}
			args = append(args, d.ID, d.Event, d.Workshop, lang, cfgOf[lang], d.Release, d.Title, body,
				pgdialect.Array(d.Countries), pgdialect.Array(d.Themes), pgdialect.Array(d.Ps), pgdialect.Array(d.Forms),
				pgdialect.Array(d.VictimGroups), pgdialect.Array(d.Actors), pgdialect.Array(d.Audience), d.Updated)
		}
		if _, err := db.ExecContext(ctx, sb.String(), args...); err != nil {
			b.Fatal(err)
		}
	}
	for _, stmt := range []string{
		"UPDATE bench_findings SET tsv = setweight(to_tsvector(cfg, title), 'A') || to_tsvector(cfg, body)",
		"CREATE INDEX ON bench_findings USING gin (tsv)",
		"CREATE INDEX ON bench_findings USING gin (audience)",
		"CREATE INDEX ON bench_findings USING gin (countries)",
		"CREATE INDEX ON bench_findings USING gin (themes)",
		"CREATE INDEX ON bench_findings USING gin (forms)",
		"CREATE INDEX ON bench_findings USING gin (ps)",
		"CREATE INDEX ON bench_findings USING gin (victims)",
		"CREATE INDEX ON bench_findings (updated)",
		"VACUUM ANALYZE bench_findings",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			b.Fatal(stmt, ": ", err)
		}
	}
	fmt.Printf("postgres: loaded and indexed %d findings in %v\n", n, time.Since(start).Round(time.Millisecond))

	audience := []string{"public", "org:1", "org:2", "event:3"}
	pgs := &pgSearch{db: db, audience: audience}
	shapes := []struct {
		name    string
		queries []benchQuery
	}{
		{"word", []benchQuery{{text: "victims"}, {text: "inspections"}, {text: "hotline"}, {text: "människohandel"}, {text: "ihmiskaupan"}}},
		{"phrase", []benchQuery{{phrase: "labour exploitation"}, {phrase: "national referral mechanism"}, {phrase: "safe accommodation"}}},
		{"word+2facets", []benchQuery{
			{text: "police", filters: map[string][]string{"country": {"FI", "SE"}, "theme": {"victim-identification"}}},
			{text: "employers", filters: map[string][]string{"form": {"forced-labour"}, "p": {"prosecution"}}},
			{text: "shelter", filters: map[string][]string{"victim": {"children"}, "country": {"NO"}}},
		}},
		{"facets-only", []benchQuery{
			{},
			{filters: map[string][]string{"country": {"DK"}}},
			{filters: map[string][]string{"release": {"released"}, "lang": {"en"}}},
		}},
		{"prefix", []benchQuery{{prefix: "traffick"}, {prefix: "inspect"}, {prefix: "arbets"}}},
	}
	p95 := map[string]float64{}
	for _, sh := range shapes {
		for _, engine := range []string{"bleve", "postgres"} {
			b.Run(engine+"/"+sh.name, func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				for i := 0; i < b.N; i++ {
					bq := sh.queries[i%len(sh.queries)]
					t0 := time.Now()
					var total uint64
					if engine == "bleve" {
						res, err := ix.Search(ctx, bq.bleve(audience))
						if err != nil {
							b.Fatal(err)
						}
						total = res.Total
					} else {
						t, err := pgs.run(ctx, bq)
						if err != nil {
							b.Fatal(err)
						}
						total = t
					}
					lat = append(lat, time.Since(t0))
					if i < len(sh.queries) && b.N > len(sh.queries) {
						b.Logf("%s %+v: %d hits", engine, bq, total)
					}
				}
				b.StopTimer()
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
				b.ReportMetric(pct(0.50), "p50-ms")
				b.ReportMetric(pct(0.95), "p95-ms")
				b.ReportMetric(0, "ns/op")
				p95[engine+"/"+sh.name] = pct(0.95)
			})
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "p95 over %d findings (ms):\n%-14s %8s %9s %7s\n", n, "shape", "bleve", "postgres", "ratio")
	for _, sh := range shapes {
		bl, pq := p95["bleve/"+sh.name], p95["postgres/"+sh.name]
		ratio := 0.0
		if bl > 0 {
			ratio = pq / bl
		}
		fmt.Fprintf(&sb, "%-14s %8.2f %9.2f %6.1fx\n", sh.name, bl, pq, ratio)
	}
	fmt.Print(sb.String())
}

// benchQuery is one query of a shape, for both engines.
type benchQuery struct {
	text, phrase, prefix string
	filters              map[string][]string
}

func (q benchQuery) bleve(audience []string) search.Query {
	text := q.text
	switch {
	case q.phrase != "":
		text = `"` + q.phrase + `"`
	case q.prefix != "":
		text = q.prefix + "*"
	}
	return search.Query{Text: text, Filters: q.filters, Audience: audience}
}

// pgSearch answers a benchQuery as the search page needs it from
// Postgres: the top 20 hits, the total and facet counts for every
// dimension (each respecting the other dimensions' filters).
type pgSearch struct {
	db       *bun.DB
	audience []string
}

// pgDims maps a dimension to its column expression for GROUP BY and
// whether it is an array.
var pgDims = []struct {
	dim, col string
	array    bool
}{
	{"country", "countries", true}, {"theme", "themes", true}, {"p", "ps", true}, {"form", "forms", true},
	{"victim", "victims", true}, {"actor", "actors", true}, {"workshop", "workshop", false},
	{"event", "event", false}, {"release", "release", false}, {"lang", "lang", false},
}

// where builds the WHERE clause of q without dimension skip's filter.
func (p *pgSearch) where(q benchQuery, skip string) (string, []any) {
	conds := []string{"audience && ?"}
	args := []any{pgdialect.Array(p.audience)}
	langs := []string{"english", "danish", "finnish", "norwegian", "swedish"}
	var tsq []string
	for _, l := range langs {
		switch {
		case q.text != "":
			tsq = append(tsq, "websearch_to_tsquery('"+l+"', ?)")
			args = append(args, q.text)
		case q.phrase != "":
			tsq = append(tsq, "phraseto_tsquery('"+l+"', ?)")
			args = append(args, q.phrase)
		case q.prefix != "":
			tsq = append(tsq, "to_tsquery('"+l+"', ?)")
			args = append(args, q.prefix+":*")
		}
	}
	if len(tsq) > 0 {
		conds = append(conds, "tsv @@ ("+strings.Join(tsq, " || ")+")")
	}
	for _, d := range pgDims {
		vals, ok := q.filters[d.dim]
		if !ok || d.dim == skip {
			continue
		}
		if d.array {
			conds = append(conds, d.col+" && ?")
		} else {
			conds = append(conds, d.col+" = ANY(?)")
		}
		args = append(args, pgdialect.Array(vals))
	}
	return strings.Join(conds, " AND "), args
}

// facetSQL counts the terms of dims over the findings matching where.
func facetSQL(where string, dims []string) string {
	var parts []string
	for _, d := range pgDims {
		if !contains(dims, d.dim) {
			continue
		}
		col := d.col
		if d.array {
			col = "unnest(" + d.col + ")"
		}
		parts = append(parts, fmt.Sprintf("SELECT '%s' AS dim, %s AS term FROM m", d.dim, col))
	}
	parts = append(parts, "SELECT '_total', '' FROM m")
	return "WITH m AS MATERIALIZED (SELECT * FROM bench_findings WHERE " + where + ") " +
		"SELECT dim, term, count(*) FROM (" + strings.Join(parts, " UNION ALL ") + ") x GROUP BY dim, term"
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// run answers q: hits, facets on the unfiltered dimensions with the total,
// and one facet query per filtered dimension, concurrently as Bleve does.
func (p *pgSearch) run(ctx context.Context, q benchQuery) (uint64, error) {
	where, args := p.where(q, "")
	var open []string
	for _, d := range pgDims {
		if _, ok := q.filters[d.dim]; !ok {
			open = append(open, d.dim)
		}
	}
	order := "updated DESC"
	if q.text != "" || q.phrase != "" || q.prefix != "" {
		// Rank by the first language's query; all share the match.
		order = "ts_rank(tsv, websearch_to_tsquery('english', ?)) DESC"
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2+len(q.filters))
	var total uint64
	query := func(sql string, args []any, each func(dim, term string, n int64)) {
		defer wg.Done()
		rows, err := p.db.QueryContext(ctx, sql, args...)
		if err != nil {
			errs <- err
			return
		}
		defer rows.Close()
		for rows.Next() {
			var dim, term string
			var n int64
			if each == nil {
				var id int64
				if err := rows.Scan(&id); err != nil {
					errs <- err
					return
				}
				continue
			}
			if err := rows.Scan(&dim, &term, &n); err != nil {
				errs <- err
				return
			}
			each(dim, term, n)
		}
		errs <- rows.Err()
	}
	hitArgs := append([]any{}, args...)
	if order != "updated DESC" {
		t := q.text + q.phrase + q.prefix
		hitArgs = append(hitArgs, t)
	}
	wg.Add(2)
	go query("SELECT id FROM bench_findings WHERE "+where+" ORDER BY "+order+" LIMIT 20", hitArgs, nil)
	go query(facetSQL(where, open), args, func(dim, term string, n int64) {
		if dim == "_total" {
			total = uint64(n)
		}
	})
	for dim := range q.filters {
		w, a := p.where(q, dim)
		wg.Add(1)
		go query(facetSQL(w, []string{dim}), a, func(string, string, int64) {})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return total, nil
}
