// Package pglaunch starts and stops a private PostgreSQL cluster from the
// PostgreSQL binaries installed on the machine: the server's embedded
// default and the tests' throwaway databases both use it.
//
// As root it runs Postgres as an unprivileged system user ("postgres", or
// "nobody"), since Postgres refuses to run as root.
package pglaunch

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// Config says where and how to run a cluster.
type Config struct {
	// Dir is the cluster's data folder; it is created on first start.
	Dir string
	// BinDir holds initdb and postgres; empty means look for them.
	BinDir string
	// Database is created on start if it does not exist.
	Database string
	// Fast turns off durability (fsync) for throwaway test clusters.
	Fast bool
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

// Cluster is a running private Postgres.
type Cluster struct {
	dir      string
	port     int
	password string
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	logPath  string
	logger   *slog.Logger
}

const superuser = "rapporteur"

// fallbackRoot holds the clusters of data folders the postgres user cannot
// reach when the server runs as root.
const fallbackRoot = "/var/lib/rapporteur"

// shortHash names a fallback cluster after the data folder it serves.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// Start initialises the cluster folder on first use and starts Postgres on a
// free loopback port, returning once it accepts connections.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bin, err := FindBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("data folder %s: %w", cfg.Dir, err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("data folder %s cannot be created (%v): choose a writable DATA_DIR", parent, unwrapPath(err))
	}
	if err := checkWritable(parent); err != nil {
		return nil, err
	}
	cred, runAs, err := unprivilegedUser()
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := checkReachable(parent, cred); err != nil {
			// Root with a data folder under, say, /root (mode 700): the
			// postgres user cannot reach it. Keep the cluster in a folder
			// of our own under /var/lib instead, one per data folder.
			alt := filepath.Join(fallbackRoot, "postgres-"+shortHash(dir))
			if err2 := os.MkdirAll(fallbackRoot, 0o755); err2 != nil || checkReachable(fallbackRoot, cred) != nil {
				return nil, fmt.Errorf("%w (Postgres runs as %s because it refuses root)", err, runAs)
			}
			logger.Info("data folder not reachable by the postgres user; keeping the cluster elsewhere", "data", dir, "cluster", alt, "user", runAs)
			dir, parent = alt, fallbackRoot
		}
	}
	c := &Cluster{dir: dir, logger: logger, exited: make(chan struct{}), logPath: dir + ".log"}
	pwPath := dir + ".password"

	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, fs.ErrNotExist) {
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			return nil, fmt.Errorf("cluster folder %s is incomplete (an interrupted first start?): remove it and start again", dir)
		}
		logger.Info("initialising private postgres", "dir", dir, "bin", bin)
		if err := c.initdb(ctx, bin, pwPath, cred); err != nil {
			return nil, err
		}
	}
	pw, err := os.ReadFile(pwPath)
	if err != nil {
		return nil, fmt.Errorf("postgres password file %s: %v: remove %s to start a new cluster", pwPath, unwrapPath(err), dir)
	}
	c.password = strings.TrimSpace(string(pw))
	if err := checkStalePID(dir); err != nil {
		return nil, err
	}
	if err := c.start(ctx, bin, cfg.Fast, cred); err != nil {
		return nil, err
	}
	if cfg.Database != "" {
		if err := c.CreateDatabase(ctx, cfg.Database, ""); err != nil {
			c.Stop(context.Background())
			return nil, err
		}
	}
	return c, nil
}

// FindBinDir returns the folder holding initdb and postgres: dir if given,
// else the one on PATH, else the newest of the usual Debian/Ubuntu, RHEL
// and Homebrew locations.
func FindBinDir(dir string) (string, error) {
	return findBinDir(dir, exec.LookPath, []string{
		"/usr/lib/postgresql/*/bin",
		"/usr/pgsql-*/bin",
		"/usr/local/opt/postgresql*/bin",
		"/opt/homebrew/opt/postgresql*/bin",
		"/usr/local/pgsql/bin",
	})
}

func findBinDir(dir string, lookPath func(string) (string, error), patterns []string) (string, error) {
	has := func(d string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(d, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("PG_BIN=%s holds no initdb and postgres: point PG_BIN at PostgreSQL's bin folder, or set DATABASE_URL", dir)
	}
	if p, err := lookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if d := filepath.Dir(p); has(d) {
			return d, nil
		}
	}
	var found []string
	for _, pattern := range patterns {
		m, _ := filepath.Glob(pattern)
		for _, d := range m {
			if has(d) {
				found = append(found, d)
			}
		}
	}
	if len(found) == 0 {
		return "", errors.New("no PostgreSQL binaries found (initdb, postgres): install PostgreSQL (e.g. apt-get install postgresql), set PG_BIN to its bin folder, or set DATABASE_URL")
	}
	sort.Slice(found, func(i, j int) bool { return versionOf(found[i]) > versionOf(found[j]) })
	return found[0], nil
}

// versionOf reads the major version out of a path like /usr/lib/postgresql/15/bin.
func versionOf(dir string) int {
	best := 0
	for _, part := range strings.FieldsFunc(dir, func(r rune) bool { return r < '0' || r > '9' }) {
		if n, err := strconv.Atoi(part); err == nil && n > best && n < 1000 {
			best = n
		}
	}
	return best
}

func (c *Cluster) initdb(ctx context.Context, bin, pwPath string, cred *syscall.Credential) error {
	password := randomHex(24)
	tmp, err := os.MkdirTemp("", "rapporteur-initdb-")
	if err != nil {
		return fmt.Errorf("temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	pwfile := filepath.Join(tmp, "pw")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("data folder %s cannot be created (%v): choose a writable DATA_DIR", c.dir, unwrapPath(err))
	}
	if cred != nil {
		for _, p := range []string{tmp, pwfile, c.dir} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("give %s to the postgres user: %w", p, err)
			}
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", c.dir, "-U", superuser, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	cmd.SysProcAttr = sysProcAttr(cred)
	cmd.Dir = tmp
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(c.dir)
		return fmt.Errorf("initdb failed: %v: %s", err, lastLines(string(out), 3))
	}
	if err := os.WriteFile(pwPath, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", pwPath, err)
	}
	return nil
}

func (c *Cluster) start(ctx context.Context, bin string, fast bool, cred *syscall.Credential) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.port = port
		c.exited = make(chan struct{})
		logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("postgres log %s: %w", c.logPath, err)
		}
		args := []string{"-D", c.dir, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
			"-c", "max_connections=300", "-c", "shared_buffers=128MB"}
		if fast {
			args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
		cmd.SysProcAttr = sysProcAttr(cred)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Dir = c.dir
		if cred == nil {
			cmd.Dir = ""
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("start postgres: %w", err)
		}
		logf.Close()
		c.cmd = cmd
		go func() {
			c.exitErr = cmd.Wait()
			close(c.exited)
		}()
		if err := c.waitReady(ctx, 60*time.Second); err != nil {
			lastErr = err
			select {
			case <-c.exited:
				continue // most likely the port was taken meanwhile: try another
			default:
				c.Stop(context.Background())
				return err
			}
		}
		c.logger.Info("private postgres ready", "port", port, "took", time.Since(start).Round(time.Millisecond))
		return nil
	}
	return lastErr
}

func (c *Cluster) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		db := c.open("postgres")
		err := db.PingContext(ctx)
		db.Close()
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited at start: %s (see %s)", lastLines(readTail(c.logPath), 2), c.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %s (see %s)", limit, c.logPath)
		}
	}
}

func (c *Cluster) open(database string) *sql.DB {
	return sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(c.DSN(database)), pgdriver.WithTimeout(5*time.Second)))
}

// DSN returns the connection URL of a database in the cluster.
func (c *Cluster) DSN(database string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", superuser, c.password, c.port, database)
}

// CreateDatabase creates database name, from template if not empty, unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name, template string) error {
	db := c.open("postgres")
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	q := "CREATE DATABASE " + quoteIdent(name)
	if template != "" {
		q += " TEMPLATE " + quoteIdent(template)
	}
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name if it exists, ending its connections.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	db := c.open("postgres")
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// Dir returns the cluster's folder.
func (c *Cluster) Dir() string { return c.dir }

// PID returns the process id of the postmaster.
func (c *Cluster) PID() int { return c.cmd.Process.Pid }

// Stop shuts Postgres down (fast shutdown: open transactions roll back,
// committed data is safe) and waits for it to exit.
func (c *Cluster) Stop(ctx context.Context) error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	return errors.New("postgres did not stop in time and was killed")
}

// unprivilegedUser returns the credential to run Postgres with when we are
// root (nil otherwise) and that user's name.
func unprivilegedUser() (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, name, nil
	}
	return nil, "", errors.New("running as root but no unprivileged user (postgres or nobody) exists to run Postgres: create one (useradd postgres) or run as an ordinary user")
}

// checkReachable makes sure the postgres user can reach dir: every
// ancestor must be searchable by it.
func checkReachable(dir string, cred *syscall.Credential) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("data folder %s: %v", d, unwrapPath(err))
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		if ok {
			switch {
			case st.Uid == cred.Uid && mode&0o100 != 0:
			case st.Gid == cred.Gid && mode&0o010 != 0:
			case mode&0o001 != 0:
			default:
				return fmt.Errorf("data folder %s is not reachable by the postgres user: %s is not searchable by others; choose a DATA_DIR under a searchable folder such as /var/lib/rapporteur or /tmp", dir, d)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-test-")
	if err != nil {
		return fmt.Errorf("data folder %s is not writable (%v): choose a writable DATA_DIR", dir, unwrapPath(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// checkStalePID refuses to start over a Postgres that still runs on dir
// (another server on the same DATA_DIR); a pid file of a dead process is
// left for Postgres to clean up.
func checkStalePID(dir string) error {
	f, err := os.Open(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return nil
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s.Text()))
	if err != nil || pid <= 0 {
		return nil
	}
	if syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM) {
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && !strings.Contains(string(cmdline), "postgres") {
			return nil // the pid was reused by another program
		}
		return fmt.Errorf("a Postgres (pid %d) is already running on %s: stop the other server using this DATA_DIR, or end that process", pid, dir)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
