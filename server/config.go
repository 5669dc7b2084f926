package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is the server's settings, from the environment, with flags that
// mirror each variable and win over it.
type config struct {
	Addr         string  // ADDR: where to listen
	BaseURL      string  // BASE_URL: the public address people use
	DataDir      string  // DATA_DIR: private Postgres, search index
	DatabaseURL  string  // DATABASE_URL: use this Postgres instead of a private one
	PGBin        string  // PG_BIN: PostgreSQL's bin folder for the private one
	NoDemo       bool    // NO_DEMO: do not load the demo event
	HubRate      float64 // HUB_OPS_PER_SECOND: ops a connection may send per second
	DebugAddr    string  // DEBUG_ADDR: where to serve Go's profiler (off when empty)
	ShutdownWait time.Duration
	// ReadTimeout (HTTP_READ_TIMEOUT) bounds reading one request, body
	// included: a client that trickles a body holds a connection no
	// longer. A WebSocket is not bound.
	ReadTimeout time.Duration
	Auth        authConfig // OIDC_* and INVITE_GRACE: sign-in (server/signin.go)
}

// withSecretFiles returns getenv with the secret settings (DATABASE_URL,
// OIDC_CLIENT_SECRET) read from the file KEY_FILE names, when set, without
// a final newline: compose and Kubernetes secrets are files.
func withSecretFiles(getenv func(string) string) (func(string) string, error) {
	files := map[string]string{}
	for _, k := range []string{"DATABASE_URL", "OIDC_CLIENT_SECRET"} {
		name := getenv(k + "_FILE")
		if name == "" {
			continue
		}
		if getenv(k) != "" {
			return nil, fmt.Errorf("set %s or %s_FILE, not both", k, k)
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%s_FILE: %w", k, err)
		}
		if files[k] = strings.TrimRight(string(b), "\r\n"); files[k] == "" {
			// An unfilled secret mount: without it the server would start
			// its own empty database, or no staff sign-in.
			return nil, fmt.Errorf("%s_FILE: %s is empty", k, name)
		}
	}
	return func(k string) string {
		if v, ok := files[k]; ok {
			return v
		}
		return getenv(k)
	}, nil
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	getenv, err := withSecretFiles(getenv)
	if err != nil {
		return config{}, err
	}
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	cfg := config{ShutdownWait: 10 * time.Second}
	fs := flag.NewFlagSet("rapporteur", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", env("ADDR", ":8080"), "address to listen on (ADDR)")
	fs.StringVar(&cfg.BaseURL, "base-url", env("BASE_URL", ""), "public base URL, e.g. https://seminar.example.org (BASE_URL; default http://localhost:PORT)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("DATA_DIR", "./data"), "data folder: private Postgres and search index (DATA_DIR)")
	// No default from the environment: -help would print the secret.
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "Postgres URL; empty starts a private Postgres (DATABASE_URL, or a file named by DATABASE_URL_FILE)")
	fs.StringVar(&cfg.PGBin, "pg-bin", env("PG_BIN", ""), "PostgreSQL bin folder for the private Postgres (PG_BIN)")
	hubRate, err := strconv.ParseFloat(env("HUB_OPS_PER_SECOND", "20"), 64)
	if err != nil || !(hubRate > 0) || math.IsInf(hubRate, 0) {
		return cfg, fmt.Errorf("HUB_OPS_PER_SECOND %q must be a positive number", getenv("HUB_OPS_PER_SECOND"))
	}
	fs.Float64Var(&cfg.HubRate, "hub-ops-per-second", hubRate, "ops a connection may send per second (HUB_OPS_PER_SECOND)")
	readTimeout, err := time.ParseDuration(env("HTTP_READ_TIMEOUT", "2m"))
	if err != nil || readTimeout <= 0 {
		return cfg, fmt.Errorf("HTTP_READ_TIMEOUT %q must be a positive duration such as 2m or 90s", getenv("HTTP_READ_TIMEOUT"))
	}
	fs.DurationVar(&cfg.ReadTimeout, "http-read-timeout", readTimeout, "longest time to read one HTTP request, body included; WebSockets are not bound (HTTP_READ_TIMEOUT)")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", env("DEBUG_ADDR", ""), "address for Go's profiler at /debug/pprof/, e.g. 127.0.0.1:6060; keep it private (DEBUG_ADDR; off when empty)")
	fs.BoolVar(&cfg.NoDemo, "no-demo", env("NO_DEMO", "") != "", "do not load the demo event on first start (NO_DEMO)")
	authFlags(fs, env, &cfg.Auth)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, fmt.Errorf("%v (see -help)", err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (see -help)", fs.Arg(0))
	}
	// The secrets' flags have no default (see above): the environment
	// counts unless a flag was given, even empty.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["database-url"] {
		cfg.DatabaseURL = getenv("DATABASE_URL")
	}
	if !given["oidc-client-secret"] {
		cfg.Auth.ClientSecret = getenv("OIDC_CLIENT_SECRET")
	}
	if !(cfg.HubRate > 0) || math.IsInf(cfg.HubRate, 0) {
		return cfg, fmt.Errorf("-hub-ops-per-second %v must be a positive number", cfg.HubRate)
	}
	if cfg.ReadTimeout <= 0 {
		return cfg, fmt.Errorf("-http-read-timeout %v must be positive", cfg.ReadTimeout)
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return cfg, fmt.Errorf("ADDR %q is not host:port (e.g. :8080 or 127.0.0.1:8080)", cfg.Addr)
	}
	if cfg.BaseURL != "" {
		// Browsers' Origin headers are compared with it as they are sent:
		// scheme and host in lower case, no default port, no path.
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return cfg, fmt.Errorf("BASE_URL %q must be an http(s) URL such as https://seminar.example.org", cfg.BaseURL)
		}
		if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return cfg, fmt.Errorf("BASE_URL %q must be the site's root, with no path, query or fragment: Rapporteur is served at the root of its host (e.g. https://seminar.example.org)", cfg.BaseURL)
		}
		host := strings.ToLower(u.Host)
		if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
			host = strings.ToLower(u.Hostname())
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
		}
		cfg.BaseURL = strings.ToLower(u.Scheme) + "://" + host
	}
	if err := cfg.Auth.check(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// baseURLFor returns the base URL, derived from the listener when unset.
func (c config) baseURLFor(l net.Listener) string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
