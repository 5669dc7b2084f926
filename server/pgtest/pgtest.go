// Package pgtest gives tests a real Postgres: one throwaway cluster per
// test binary, started with the server's own launcher, and a fresh database
// per test cloned from a migrated template.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/pglaunch"
	"github.com/rapporteur/rapporteur/server/store"
)

// Cluster is a test binary's private Postgres.
type Cluster struct {
	*pglaunch.Cluster
	tmp  string
	next atomic.Int64
}

const template = "rapporteur_template"

// Start starts a cluster in a temporary folder and migrates the template
// database. Call it from TestMain and Stop it after m.Run.
func Start() (*Cluster, error) {
	tmp, err := os.MkdirTemp("", "rapporteur-pgtest-")
	if err != nil {
		return nil, err
	}
	// As root the cluster runs as another user, who must reach the folder.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pc, err := pglaunch.Start(ctx, pglaunch.Config{Dir: filepath.Join(tmp, "pg"), Database: template, Fast: os.Getenv("PGTEST_DURABLE") == ""})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("start test postgres: %w", err)
	}
	c := &Cluster{Cluster: pc, tmp: tmp}
	s, err := store.Open(ctx, pc.DSN(template))
	if err == nil {
		err = s.Migrate(ctx)
		s.Close()
	}
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("migrate template: %w", err)
	}
	return c, nil
}

// Main starts a cluster, runs the tests and stops it; use it as
// `func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }`.
func Main(m *testing.M, c **Cluster) int {
	cl, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*c = cl
	defer cl.Stop()
	return m.Run()
}

// Stop stops the cluster and removes its folder.
func (c *Cluster) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.Cluster.Stop(ctx)
	os.RemoveAll(c.tmp)
}

// NewDB creates a fresh migrated database for tb, dropped when tb ends, and
// returns its URL.
func (c *Cluster) NewDB(tb testing.TB) string {
	tb.Helper()
	return c.newDB(tb, template)
}

// WithParams is the database URL dsn with the query parameters params
// ("read_timeout=2s") added.
func WithParams(dsn, params string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}

// NewEmptyDB creates a fresh database with no schema, dropped when tb ends.
func (c *Cluster) NewEmptyDB(tb testing.TB) string {
	tb.Helper()
	return c.newDB(tb, "template0")
}

func (c *Cluster) newDB(tb testing.TB, tmpl string) string {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.next.Add(1))
	ctx := context.Background()
	if err := c.CreateDatabase(ctx, name, tmpl); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.DropDatabase(context.Background(), name); err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})
	return c.DSN(name)
}

// MustStore opens a Store on a fresh migrated database, closed when tb ends.
func (c *Cluster) MustStore(tb testing.TB) *store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), c.NewDB(tb))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// WaitForLockWait waits until a session of s's database waits for a lock:
// for tests that hold a row and need an op to be queued behind it.
func WaitForLockWait(tb testing.TB, s *store.Store) {
	tb.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var n int
		err := s.DB().NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(context.Background(), &n)
		if err != nil {
			tb.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(end) {
			tb.Fatal("no session waited for a lock")
		}
	}
}
