package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/server/demo"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/pglaunch"
	"github.com/rapporteur/rapporteur/server/store"
	"github.com/rapporteur/rapporteur/web"
)

// run is the whole program: it returns when ctx is cancelled (SIGINT,
// SIGTERM) after stopping in order, or with the error that stopped it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 1 && args[1] == "healthcheck" {
		return healthcheck(ctx, getenv)
	}
	if len(args) > 1 && args[1] == "loadtest" {
		return loadtest(ctx, args[2:], getenv, stdout)
	}
	if len(args) > 1 && args[1] == "reindex" {
		return reindex(ctx, args[2:], getenv, stdout, stderr)
	}
	cfg, err := parseConfig(args[1:], getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// Listen first: a port in use is found before anything starts.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("address %s is already in use: stop the program using it or set ADDR (e.g. ADDR=:8081)", cfg.Addr)
		}
		return fmt.Errorf("cannot listen on %s: %v: set ADDR to an address this machine can use", cfg.Addr, err)
	}
	defer ln.Close()
	baseURL := cfg.baseURLFor(ln)
	if err := writableDir(cfg.DataDir); err != nil {
		return err
	}
	// The profiler's address too, before anything starts that a failure
	// here would leave running.
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	dsn, stopPG, err := database(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer stopPG()

	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("%v: fix the database or the migration and start again; nothing of the failed migration was applied", err)
	}
	if !cfg.NoDemo {
		loaded, err := st.LoadOnce(ctx, "demo_loaded", func(ctx context.Context) error {
			spec, err := demo.Spec()
			if err != nil {
				return err
			}
			_, err = st.CreateEvent(ctx, spec)
			if domain.ErrorCode(err) == domain.Conflict {
				// Made (in one transaction) by a start that died before
				// recording it, or by another process starting with this one.
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("load the demo event: %w", err)
		}
		if loaded {
			logger.Info("demo event loaded", "slug", demo.Slug)
		}
	}

	defer startGCFloor(gcHeadroom, getenv("GOGC"))()
	defer widenProcs(getenv("GOMAXPROCS"), cpuLimited(os.DirFS("/")))()
	logger.Info("go scheduler", "gomaxprocs", runtime.GOMAXPROCS(0), "cores", runtime.NumCPU())
	pages, err := web.Parse()
	if err != nil {
		return err
	}
	proc := rand.Text() // this process, in what it tells the others
	lv := &live{store: st, proc: proc, logger: logger}
	h := hub.New(lv, hub.Config{Logger: logger, OpsPerSecond: cfg.HubRate, OpsBurst: max(100, int(cfg.HubRate)), PollInterval: 5 * time.Second,
		CountOnly: plenaryRoom, SeesNames: lv.seesNames, SharePresence: presenceSharer(st, proc, logger)})
	idx := newIndexer(st, searchDir(cfg), search.Options{Async: true}, logger)
	idx.start()
	defer idx.stop()
	app := newApp(appDeps{store: st, logger: logger, baseURL: baseURL, pages: pages, hub: h, live: lv, search: idx, auth: cfg.Auth, proc: proc})
	followCtx, stopFollow := context.WithCancel(context.Background())
	defer stopFollow()
	listening := make(chan struct{})
	go func() {
		// Every process hears every commit; the hub reads the log itself,
		// and polls it slowly too, so a lost notification delays little.
		// It hears the others' access changes too (sessions and roles are
		// checked every minute as well). A listener that fails (the
		// database restarting) is started again.
		wake := func(room string, seq int64) { h.Notify(room, seq); idx.Notify(room, seq) }
		var once sync.Once
		heard := func() { once.Do(func() { close(listening) }) }
		keepFollowing(followCtx, logger, time.Second, func() error {
			return st.Follow(followCtx, store.Followers{Wake: wake, Access: app.onAccess, Presence: app.onPresence, Listening: heard})
		})
	}()
	// Serve once the others' announcements are heard.
	select {
	case <-listening:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		logger.Warn("not yet listening for notifications; serving anyway")
	}
	go app.keepSessions(followCtx, sessionCheck)
	go watchSlowBatches(followCtx, st, logger, slowLogEvery)
	link, err := app.organizerLink(ctx)
	if err != nil {
		return fmt.Errorf("make the organizer sign-in link: %w", err)
	}

	srv := &http.Server{
		Handler:           app.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		// Set on the connection when a request begins; the WebSocket
		// upgrade clears it (gorilla's Upgrade does). No WriteTimeout: it
		// is one deadline for a whole answer, and would cut a long one
		// (the cards of thousands of people, which revoke the old ones)
		// read steadily over a slow link.
		ReadTimeout: cfg.ReadTimeout,
		IdleTimeout: 5 * time.Minute, // a kept-alive connection that sends nothing more (above proxies' own, often 1–2 min)
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "Rapporteur is serving at %s\n", baseURL)
	if link != "" {
		fmt.Fprintf(stdout, "Organizer sign-in link (one use, valid 24 hours): %s\n", link)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	app.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownWait)
	defer cancel()
	// WebSockets first (hijacked connections are not the HTTP server's to
	// close): clients hear 1001 "going away" and resume elsewhere.
	if err := h.Shutdown(sctx); err != nil {
		logger.Warn("hub shutdown", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("http shutdown", "err", err)
	}
	app.close()
	return nil
}

// healthcheck asks the server on ADDR for /healthz: the container
// health check of compose.yaml (the image has no curl).
func healthcheck(ctx context.Context, getenv func(string) string) error {
	addr := getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("ADDR %q is not host:port", addr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on every address
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: /healthz answered %s", resp.Status)
	}
	return nil
}

// database returns the URL of the configured database: DATABASE_URL, or a
// private Postgres started in DATA_DIR, which stop stops.
func database(ctx context.Context, cfg config, logger *slog.Logger) (dsn string, stop func(), err error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, func() {}, store.CheckDSN(cfg.DatabaseURL)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return "", nil, fmt.Errorf("data folder %s cannot be created: %v: choose a writable DATA_DIR", cfg.DataDir, errors.Unwrap(err))
	}
	pg, err := pglaunch.Start(ctx, pglaunch.Config{
		Dir: filepath.Join(cfg.DataDir, "postgres"), BinDir: cfg.PGBin, Database: "rapporteur", Logger: logger,
	})
	if err != nil {
		return "", nil, err
	}
	return pg.DSN("rapporteur"), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pg.Stop(sctx); err != nil {
			logger.Error("stop private postgres", "err", err)
		} else {
			logger.Info("private postgres stopped")
		}
	}, nil
}

// writableDir makes sure the data folder exists and takes files (the
// search index lives there whatever the database): one clear error at
// start, not a search that stays unavailable.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data folder %s cannot be created: %v: choose a writable DATA_DIR", dir, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data folder %s is not writable: %v: choose a writable DATA_DIR (in a container, one the server's user owns)", dir, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// serveDebug serves Go's profiler on addr, apart from the public routes,
// for measuring a running server (see README, "Measuring").
func serveDebug(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on DEBUG_ADDR %s: %v: choose a free address or leave DEBUG_ADDR empty", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	logger.Info("profiler serving", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// keepFollowing runs follow until ctx ends, again after each return: at
// first after wait, then twice as long each time up to 30 s (from wait
// again after a run of over a minute).
func keepFollowing(ctx context.Context, logger *slog.Logger, wait time.Duration, follow func() error) {
	first := wait
	for {
		began := time.Now()
		err := follow()
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			wait = first
		}
		logger.Error("log notifications stopped; the hub polls the log meanwhile", "err", err, "listen_again_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
