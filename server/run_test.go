package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rapporteur/rapporteur/server/demo"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/pgtest"
	"github.com/rapporteur/rapporteur/server/store"
)

var pg *pgtest.Cluster

// mustDemoEvent loads the demo event into st and returns it with its workshops.
func mustDemoEvent(tb testing.TB, st *store.Store) (domain.Event, []domain.Workshop) {
	tb.Helper()
	spec, err := demo.Spec()
	if err != nil {
		tb.Fatal(err)
	}
	ev, err := st.CreateEvent(context.Background(), spec)
	if err != nil {
		tb.Fatal(err)
	}
	ws, err := st.Workshops(context.Background(), ev.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return ev, ws
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

// server is a running instance of the real program, started by run().
type server struct {
	URL    string
	Link   string
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned
	err    error         // what run returned
}

// Stop cancels the server's context (as SIGTERM does) and waits for run to return.
func (s *server) Stop(tb testing.TB) {
	tb.Helper()
	s.cancel()
	select {
	case <-s.done:
		if s.err != nil {
			tb.Fatalf("run returned %v", s.err)
		}
	case <-time.After(60 * time.Second):
		tb.Fatal("server did not stop")
	}
}

// MustStart runs the program with env on port 0 and waits until /readyz says ready.
func MustStart(tb testing.TB, env map[string]string) *server {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	if env["ADDR"] == "" {
		env["ADDR"] = "127.0.0.1:0"
	}
	if env["DATA_DIR"] == "" {
		dir := tb.TempDir()
		os.Chmod(dir, 0o755)
		os.Chmod(filepath.Dir(dir), 0o755)
		env["DATA_DIR"] = dir
	}
	s := &server{cancel: cancel, done: make(chan struct{})}
	go func() {
		s.err = run(ctx, []string{"rapporteur"}, func(k string) string { return env[k] }, pw, io.Discard)
		pw.CloseWithError(fmt.Errorf("run returned: %v", s.err))
		close(s.done)
	}()
	sc := bufio.NewScanner(pr)
	urlRE := regexp.MustCompile(`serving at (\S+)`)
	linkRE := regexp.MustCompile(`sign-in link.*: (\S+)`)
	for s.URL == "" || s.Link == "" {
		if !sc.Scan() {
			cancel()
			tb.Fatalf("server output ended before its address and link: %v", sc.Err())
		}
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			s.URL = m[1]
		}
		if m := linkRE.FindStringSubmatch(sc.Text()); m != nil {
			s.Link = m[1]
		}
	}
	go io.Copy(io.Discard, pr)
	tb.Cleanup(func() {
		cancel()
		<-s.done
	})
	waitReady(tb, s.URL)
	return s
}

func waitReady(tb testing.TB, base string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatal("server not ready within 30s")
}

// MustGetJSON fetches url, checks the status and decodes the body into v.
func MustGetJSON(tb testing.TB, url string, status int, v any) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("GET %s: status %d, want %d: %s", url, resp.StatusCode, status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		tb.Fatalf("GET %s: decode: %v", url, err)
	}
}

func TestServesEventAPIAndPages(t *testing.T) {
	s := MustStart(t, map[string]string{"DATABASE_URL": pg.NewDB(t)})
	var health map[string]string
	MustGetJSON(t, s.URL+"/healthz", 200, &health)
	if health["status"] != "ok" {
		t.Fatalf("healthz = %v", health)
	}
	var events []struct{ Slug, Title string }
	MustGetJSON(t, s.URL+"/api/events", 200, &events)
	if len(events) != 1 || events[0].Slug != "nordic-anti-trafficking-2021" {
		t.Fatalf("events = %+v, want the demo event", events)
	}
	base := s.URL + "/api/events/" + events[0].Slug
	var parts []struct {
		Title    string
		Streamed bool
		StartsAt time.Time `json:"starts_at"`
	}
	MustGetJSON(t, base+"/parts", 200, &parts)
	if len(parts) != 3 || !parts[0].Streamed || parts[1].Streamed || !parts[2].Streamed {
		t.Fatalf("parts = %+v", parts)
	}
	helsinki, _ := time.LoadLocation("Europe/Helsinki")
	if got := parts[2].StartsAt.In(helsinki).Format("15:04"); got != "17:10" {
		t.Errorf("Part III starts %s Helsinki time, want 17:10", got)
	}
	var ws []struct{ Name string }
	MustGetJSON(t, base+"/workshops", 200, &ws)
	if len(ws) != 5 {
		t.Fatalf("%d workshops, want 5", len(ws))
	}
	var se []struct{ Title string }
	MustGetJSON(t, base+"/side-events", 200, &se)
	if len(se) != 2 {
		t.Fatalf("%d side events, want 2", len(se))
	}
	var tax map[string][]struct{ Key, Label string }
	MustGetJSON(t, base+"/taxonomy", 200, &tax)
	if len(tax["country"]) != 11 || tax["p"][0].Key != "prevention" {
		t.Fatalf("taxonomy = %v", tax)
	}
	var prob struct {
		Status  int
		Code    string
		Message string
	}
	MustGetJSON(t, s.URL+"/api/events/no-such-event", 404, &prob)
	if prob.Code != "not_found" || !strings.Contains(prob.Message, "no-such-event") {
		t.Fatalf("problem = %+v", prob)
	}
	MustGetJSON(t, s.URL+"/api/nothing-here", 404, &prob)

	resp, err := http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	for _, want := range []string{"Part II: Workshops", "On site only, not streamed", "Workshop 5", "Side event", "17:10–18:20",
		`/search">Search the findings</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
}

func TestOrganizerLinkSignsInOnce(t *testing.T) {
	s := MustStart(t, map[string]string{"DATABASE_URL": pg.NewDB(t)})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.Link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Fatalf("first use: status %d, cookies %v; want a redirect with a session cookie", resp.StatusCode, resp.Cookies())
	}
	resp, err = noFollow.Get(s.Link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("second use: status %d, cookies %v; want 401 and no cookie", resp.StatusCode, resp.Cookies())
	}
}

// TestEmbeddedPostgresRestart runs the real default: no DATABASE_URL, a
// private Postgres in DATA_DIR; a restart keeps the data and does not load
// the demo twice.
func TestEmbeddedPostgresRestart(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	env := map[string]string{"DATA_DIR": filepath.Join(dir, "data")}
	s := MustStart(t, env)
	var events []struct{ Slug string }
	MustGetJSON(t, s.URL+"/api/events", 200, &events)
	if len(events) != 1 {
		t.Fatalf("first start: %d events", len(events))
	}
	s.Stop(t)
	if _, err := os.Stat(filepath.Join(dir, "data", "postgres", "postmaster.pid")); !os.IsNotExist(err) {
		t.Fatalf("private Postgres still running after stop (postmaster.pid: %v)", err)
	}
	s = MustStart(t, env)
	MustGetJSON(t, s.URL+"/api/events", 200, &events)
	if len(events) != 1 {
		t.Fatalf("after restart: %d events, want the one demo event", len(events))
	}
	s.Stop(t)
}

func TestBadConfigurationSaysWhatToDo(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"malformed DATABASE_URL", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL must start with postgres://"},
		{"DATABASE_URL without database", map[string]string{"DATABASE_URL": "postgres://u@localhost"}, "no database name"},
		{"unreachable database", map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1:1/db?sslmode=disable"}, "cannot reach the database"},
		{"port in use", map[string]string{"ADDR": busy.Addr().String(), "DATABASE_URL": "postgres://u@localhost/db"}, "already in use"},
		{"bad ADDR", map[string]string{"ADDR": "nonsense"}, "ADDR"},
		{"unwritable data folder", map[string]string{"DATA_DIR": filepath.Join(file, "data")}, "DATA_DIR"},
		{"no PostgreSQL binaries", map[string]string{"DATA_DIR": t.TempDir(), "PG_BIN": t.TempDir()}, "PG_BIN="},
		{"bad BASE_URL", map[string]string{"BASE_URL": "ftp://x"}, "BASE_URL"},
		{"BASE_URL with a path", map[string]string{"BASE_URL": "https://example.org/app"}, "no path"},
		{"DEBUG_ADDR in use", map[string]string{"DEBUG_ADDR": busy.Addr().String(), "DATABASE_URL": "postgres://u@localhost/db"}, "DEBUG_ADDR"},
		{"HUB_OPS_PER_SECOND not a number", map[string]string{"HUB_OPS_PER_SECOND": "NaN"}, "positive number"},
		{"HTTP_READ_TIMEOUT not a duration", map[string]string{"HTTP_READ_TIMEOUT": "soon"}, "HTTP_READ_TIMEOUT \"soon\" must be a positive duration"},
		{"HTTP_READ_TIMEOUT zero", map[string]string{"HTTP_READ_TIMEOUT": "0s"}, "HTTP_READ_TIMEOUT \"0s\" must be a positive duration"},
		{"OIDC_TRUST_EMAIL not a boolean", map[string]string{"OIDC_TRUST_EMAIL": "yes please"}, "OIDC_TRUST_EMAIL must be true or false"},
		{"unwritable data folder with DATABASE_URL", map[string]string{"DATA_DIR": filepath.Join(file, "data"), "DATABASE_URL": "postgres://u@localhost/db"}, "DATA_DIR"},
		{"DATABASE_URL and its file", map[string]string{"DATABASE_URL": "postgres://u@localhost/db", "DATABASE_URL_FILE": file}, "DATABASE_URL or DATABASE_URL_FILE, not both"},
		{"no OIDC_CLIENT_SECRET_FILE", map[string]string{"OIDC_CLIENT_SECRET_FILE": filepath.Join(file, "gone")}, "OIDC_CLIENT_SECRET_FILE"},
		{"empty DATABASE_URL_FILE", map[string]string{"DATABASE_URL_FILE": file}, "DATABASE_URL_FILE: " + file + " is empty"},
		{"DATABASE_URL not a URL", map[string]string{"DATABASE_URL": "postgres://u:pa/ss@host/db"}, "percent-encoded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env["ADDR"] == "" {
				c.env["ADDR"] = "127.0.0.1:0"
			}
			if c.env["DATA_DIR"] == "" { // not the source tree's ./data
				c.env["DATA_DIR"] = t.TempDir()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := run(ctx, []string{"rapporteur"}, func(k string) string { return c.env[k] }, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("run succeeded, want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error %q does not contain %q", msg, c.want)
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "goroutine ") {
				t.Fatalf("error is not one clear line: %q", msg)
			}
		})
	}
}

// TestProfilerOnlyOnDebugAddr checks that Go's profiler is served on
// DEBUG_ADDR when set, and never on the public address.
func TestProfilerOnlyOnDebugAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debugAddr := ln.Addr().String()
	ln.Close()
	s := MustStart(t, map[string]string{"DATABASE_URL": pg.NewDB(t), "DEBUG_ADDR": debugAddr})
	resp, err := http.Get(s.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public /debug/pprof/: %d, want 404", resp.StatusCode)
	}
	resp, err = http.Get("http://" + debugAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("DEBUG_ADDR profiler: %d %.200s", resp.StatusCode, body)
	}
}

// TestProcessesStartingTogetherOnAFreshDatabase: several processes (the
// README's deployment) started at once on an empty database all serve;
// the demo event and its bootstrap organizer are made once. A demo event
// made by a start that died before recording it does not stop the next.
func TestProcessesStartingTogetherOnAFreshDatabase(t *testing.T) {
	dsn := pg.NewDB(t)
	const n = 3
	type started struct {
		url string
		err error
	}
	out := make(chan started, n)
	var stops []func()
	for range n {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		done := make(chan struct{})
		env := map[string]string{"DATABASE_URL": dsn, "ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir()}
		go func() {
			err := run(ctx, []string{"rapporteur"}, func(k string) string { return env[k] }, pw, io.Discard)
			pw.CloseWithError(fmt.Errorf("run returned: %v", err))
			close(done)
		}()
		go func() {
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				if m := regexp.MustCompile(`serving at (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
					out <- started{url: m[1]}
					io.Copy(io.Discard, pr)
					return
				}
			}
			out <- started{err: sc.Err()}
		}()
		stops = append(stops, func() { cancel(); <-done })
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for range n {
		select {
		case s := <-out:
			if s.url == "" {
				t.Fatalf("a process started with the others did not serve: %v", s.err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("processes not serving within 60 s")
		}
	}
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var events, organizers int
	if err := st.DB().NewRaw("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM memberships WHERE role = 'organizer')").Scan(context.Background(), &events, &organizers); err != nil {
		t.Fatal(err)
	}
	if events != 1 || organizers != 1 {
		t.Errorf("%d events and %d bootstrap organizers, want one of each", events, organizers)
	}

	// The demo event made, but not recorded: the next start goes on.
	dsn2 := pg.NewDB(t)
	first := MustStart(t, map[string]string{"DATABASE_URL": dsn2})
	first.Stop(t)
	st2, err := store.Open(context.Background(), dsn2)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if _, err := st2.DB().ExecContext(context.Background(), "DELETE FROM settings WHERE key = 'demo_loaded'"); err != nil {
		t.Fatal(err)
	}
	MustStart(t, map[string]string{"DATABASE_URL": dsn2})
}

// TestBaseURLIsAnOrigin: BASE_URL is compared with browsers' Origin
// headers, which say scheme and host in lower case with no default port:
// it is kept in that form, so that a BASE_URL written otherwise does not
// refuse every WebSocket and form.
func TestBaseURLIsAnOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://Seminar.Example.org:443/": "https://seminar.example.org",
		"http://localhost:8080":            "http://localhost:8080",
		"http://[::1]:80":                  "http://[::1]",
	} {
		cfg, err := parseConfig(nil, func(k string) string {
			if k == "BASE_URL" {
				return in
			}
			return ""
		}, io.Discard)
		if err != nil || cfg.BaseURL != want {
			t.Errorf("BASE_URL %q: %q (%v), want %q", in, cfg.BaseURL, err, want)
		}
	}
}

// TestFollowingStartsAgain: a listener for notifications that fails (at
// start, when the database is restarting) is started again, after a wait
// that grows, until the server stops; before, the process went on without
// hearing other processes' access changes for the rest of its life.
func TestFollowingStartsAgain(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan time.Time, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		keepFollowing(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), 20*time.Millisecond, func() error {
			calls <- time.Now()
			if n++; n < 3 {
				return errors.New("connection refused")
			}
			<-ctx.Done() // listening now, until the server stops
			return nil
		})
	}()
	var at []time.Time
	for len(at) < 3 {
		select {
		case c := <-calls:
			at = append(at, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("the listener was started %d times, want 3", len(at))
		}
	}
	cancel()
	<-done
	if d1, d2 := at[1].Sub(at[0]), at[2].Sub(at[1]); d1 < 20*time.Millisecond || d2 < 40*time.Millisecond {
		t.Errorf("started again after %v, then %v: want at least 20 ms, then twice that", d1, d2)
	}
	if len(calls) > 0 {
		t.Error("the listener was started again after the server stopped")
	}
}

// TestNotReadyWhileShuttingDown: once the server begins to shut down it
// answers /readyz with 503 (its /ws takes no new connections), all the
// while it waits for its WebSockets to close: a load balancer sends
// clients elsewhere.
func TestNotReadyWhileShuttingDown(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	m := f.MustMember(t, domain.RoleParticipant, &f.ws[0], "FI", "police")
	req, _ := http.NewRequest("GET", f.srv.URL+"/ws", nil)
	h := http.Header{"Origin": {f.srv.URL}}
	for _, ck := range m.http.Jar.Cookies(req.URL) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	// A client that reads nothing: the server waits for its answer to the
	// close frame (hub closeGrace) before it stops serving HTTP.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	f.srv.cancel()
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, err := http.Get(f.srv.URL + "/readyz")
		if err == nil {
			status := resp.StatusCode
			resp.Body.Close()
			if status == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz while shutting down: %v, want 503", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	<-f.srv.done
}

// TestHealthcheckAsksTheAddressServed: the container's health check asks
// the server on ADDR, even when ADDR is one address (it asked 127.0.0.1
// whatever ADDR said), and loopback when ADDR is every address.
func TestHealthcheckAsksTheAddressServed(t *testing.T) {
	s := MustStart(t, map[string]string{"DATABASE_URL": pg.NewDB(t), "ADDR": "127.0.0.2:0"})
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(u.Host)
	check := func(addr string) error {
		return healthcheck(context.Background(), func(k string) string { return map[string]string{"ADDR": addr}[k] })
	}
	if err := check(u.Host); err != nil {
		t.Errorf("ADDR %s, where the server listens: %v", u.Host, err)
	}
	if err := check("127.0.0.3:" + port); err == nil {
		t.Errorf("ADDR 127.0.0.3:%s, where nothing listens: healthy", port)
	}
	// Every address: loopback, where this server does not listen.
	if err := check("0.0.0.0:" + port); err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("ADDR 0.0.0.0:%s: %v, want loopback asked (and no answer)", port, err)
	}
}

// TestSecretsFromFiles: DATABASE_URL and OIDC_CLIENT_SECRET may be read
// from the files their _FILE settings name (compose secrets), without the
// file's final newline.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	dbFile, secretFile := filepath.Join(dir, "db"), filepath.Join(dir, "secret")
	if err := os.WriteFile(dbFile, []byte(pg.NewDB(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL_FILE": dbFile, "OIDC_CLIENT_SECRET_FILE": secretFile, "OIDC_ISSUER": "http://127.0.0.1:1", "OIDC_CLIENT_ID": "x"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := os.ReadFile(dbFile); cfg.DatabaseURL != strings.TrimSpace(string(want)) || cfg.Auth.ClientSecret != "s3cret" {
		t.Errorf("DATABASE_URL %q, client secret %q", cfg.DatabaseURL, cfg.Auth.ClientSecret)
	}
	// -help and a bad flag do not print them.
	for _, args := range [][]string{{"-help"}, {"-no-such-flag"}} {
		var out strings.Builder
		parseConfig(args, func(k string) string { return env[k] }, &out)
		if dsn, _ := os.ReadFile(dbFile); strings.Contains(out.String(), strings.TrimSpace(string(dsn))) || strings.Contains(out.String(), "s3cret") {
			t.Errorf("%v prints a secret:\n%s", args, out.String())
		}
	}
	// A flag wins over the environment, even empty (a private Postgres).
	if cfg, err := parseConfig([]string{"-database-url="}, func(k string) string { return env[k] }, io.Discard); err != nil || cfg.DatabaseURL != "" {
		t.Errorf("-database-url= beside DATABASE_URL_FILE: %q (%v), want empty", cfg.DatabaseURL, err)
	}
	s := MustStart(t, env) // the database of the file
	MustGetJSON(t, s.URL+"/readyz", 200, new(map[string]string))
}

// TestATrickledRequestIsCutButAWebSocketIsNot: a request whose body comes
// a byte at a time, or never, holds its connection no longer than
// HTTP_READ_TIMEOUT; a WebSocket, upgraded from such a connection, lives
// on past it.
func TestATrickledRequestIsCutButAWebSocketIsNot(t *testing.T) {
	f := MustFixture(t, map[string]string{"HTTP_READ_TIMEOUT": "1s"})
	m := f.MustMember(t, domain.RoleParticipant, &f.ws[0], "FI", "police")
	c := m.Dial(t, f.srv.URL)
	u, _ := url.Parse(f.srv.URL)
	var cookie []string
	for _, ck := range m.http.Jar.Cookies(u) {
		cookie = append(cookie, ck.Name+"="+ck.Value)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Signed in, so the guard reads the form for its CSRF token.
	fmt.Fprintf(conn, "POST /auth/logout HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nc", u.Host, strings.Join(cookie, "; "))
	start := time.Now()
	conn.SetReadDeadline(start.Add(10 * time.Second))
	_, err = io.ReadAll(conn)
	if err != nil {
		t.Fatalf("a request whose body never came still held its connection after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a request whose body never came was cut after %v, want about 1 s", took)
	}
	// The WebSocket dialled before is older than the timeout by now.
	if j := c.join(t, store.WorkshopRoom(f.ws[0].ID), 0); j.Type != "joined" {
		t.Fatalf("a WebSocket older than HTTP_READ_TIMEOUT: %+v, want joined", j)
	}
}

// TestALongAnswerReadSlowlyIsNotCut: HTTP_READ_TIMEOUT bounds reading a
// request, not writing its answer. The cards of a thousand people (some
// 4 MB, and printing them revokes the old cards) read steadily over a
// slow link take longer than the timeout, and come whole.
func TestALongAnswerReadSlowlyIsNotCut(t *testing.T) {
	f := MustFixture(t, map[string]string{"HTTP_READ_TIMEOUT": "1s"})
	org := f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	csrf := csrfToken(t, org.http, f.srv.URL+"/events/"+f.event.Slug+"/people")
	var csv strings.Builder
	csv.WriteString("name,country,workshop,role\n")
	for i := range 1000 {
		fmt.Fprintf(&csv, "Participant number %d with a longer name,FI,%s,participant\n", i, f.ws[0].Name)
	}
	if status, body := postAs(t, org.http, f.srv.URL+"/api/events/"+f.event.Slug+"/people/import", "text/csv", csv.String(), csrf); status != http.StatusOK {
		t.Fatalf("import: %d %.300s", status, body)
	}
	u, _ := url.Parse(f.srv.URL)
	var cookie []string
	for _, ck := range org.http.Jar.Cookies(u) {
		cookie = append(cookie, ck.Name+"="+ck.Value)
	}
	form := url.Values{"csrf_token": {csrf}}.Encode()
	// A small receive buffer, read 64 KiB every 50 ms: about 1.3 MB/s.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /events/%s/cards HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		f.event.Slug, u.Host, strings.Join(cookie, "; "), len(form), form)
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil {
		t.Fatal(err)
	}
	start, n := time.Now(), 0
	buf := make([]byte, 64<<10)
	for done := false; !done; time.Sleep(50 * time.Millisecond) {
		for got := 0; got < len(buf) && !done; {
			m, err := resp.Body.Read(buf[got:]) // io.EOF only at the answer's end
			got, n = got+m, n+m
			done = err == io.EOF
			if err != nil && !done {
				t.Fatalf("the cards, read steadily, were cut after %d bytes and %v: %v", n, time.Since(start).Round(time.Millisecond), err)
			}
		}
	}
	if took := time.Since(start); resp.StatusCode != http.StatusOK || took < 2*time.Second {
		t.Fatalf("cards: %d, %d bytes in %v; want 200, read over more than twice the timeout", resp.StatusCode, n, took)
	}
}
