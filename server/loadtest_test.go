package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestLoadtestCommand runs each load-test scenario briefly against a real
// server, so the command the benchmarks rely on keeps working.
func TestLoadtestCommand(t *testing.T) {
	dsn := pg.NewDB(t)
	s := MustStart(t, map[string]string{"DATABASE_URL": dsn, "HUB_OPS_PER_SECOND": "200"})
	for _, sc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scenario", "room", "-clients", "5", "-rate", "5", "-duration", "1s"}, `(?s)error frames by code: map\[\].*fan-out  p50 \S+ .*\(\d+ deliveries; expected \d+\)`},
		{[]string{"-scenario", "room", "-mix", "create", "-clients", "5", "-rate", "5", "-duration", "1s"}, `(?s)error frames by code: map\[\].*fan-out  p50 \S+`},
		{[]string{"-scenario", "throughput", "-clients", "4", "-rooms", "2", "-duration", "1s"}, `durable ops/s over 2 rooms, 4 clients: \d+ acked/s`},
		{[]string{"-scenario", "reconnect", "-clients", "5", "-behind", "10"}, `5 clients reconnected and caught up 10 entries in \S+ \(0 failed\)`},
	} {
		var out bytes.Buffer
		args := append([]string{"rapporteur", "loadtest", "-url", s.URL, "-database-url", dsn}, sc.args...)
		if err := run(context.Background(), args, func(string) string { return "" }, &out, &out); err != nil {
			t.Fatalf("%v: %v\n%s", sc.args, err, out.String())
		}
		if !regexp.MustCompile(sc.want).MatchString(out.String()) {
			t.Fatalf("%v: output lacks %q:\n%s", sc.args, sc.want, out.String())
		}
		if m := regexp.MustCompile(`\((\d+) deliveries; expected (\d+)\)`).FindStringSubmatch(out.String()); m != nil && m[1] != m[2] {
			t.Fatalf("%v: entries lost or not recognised:\n%s", sc.args, out.String())
		}
		if strings.Contains(out.String(), "no samples") {
			t.Fatalf("%v: no latency samples:\n%s", sc.args, out.String())
		}
	}
}
