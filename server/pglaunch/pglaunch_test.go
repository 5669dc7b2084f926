package pglaunch_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/pglaunch"
)

func TestNoBinariesSaysWhatToDo(t *testing.T) {
	notFound := func(string) (string, error) { return "", exec.ErrNotFound }
	_, err := pglaunch.FindBinDirIn("", notFound, []string{filepath.Join(t.TempDir(), "*", "bin")})
	if err == nil || !strings.Contains(err.Error(), "no PostgreSQL binaries found") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("err = %v, want the no-binaries message naming DATABASE_URL", err)
	}
	_, err = pglaunch.FindBinDir(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "PG_BIN=") {
		t.Fatalf("err = %v, want a message about PG_BIN", err)
	}
}

func TestFindBinDirPrefersNewest(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "13"} {
		d := filepath.Join(root, v, "bin")
		os.MkdirAll(d, 0o755)
		for _, n := range []string{"initdb", "postgres"} {
			os.WriteFile(filepath.Join(d, n), []byte("#!/bin/sh\n"), 0o755)
		}
	}
	notFound := func(string) (string, error) { return "", exec.ErrNotFound }
	got, err := pglaunch.FindBinDirIn("", notFound, []string{filepath.Join(root, "*", "bin")})
	if err != nil || got != filepath.Join(root, "15", "bin") {
		t.Fatalf("got %q, %v; want the 15 folder", got, err)
	}
}

// TestStartStopRestart runs a real cluster: as root it must run Postgres as
// another user; data survives a restart.
func TestStartStopRestart(t *testing.T) {
	tmp := t.TempDir()
	os.Chmod(tmp, 0o755)
	os.Chmod(filepath.Dir(tmp), 0o755)
	ctx := context.Background()
	cfg := pglaunch.Config{Dir: filepath.Join(tmp, "pg"), Database: "app", Fast: true}
	c, err := pglaunch.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	uid := processUID(t, c.PID())
	if os.Geteuid() == 0 && uid == 0 {
		t.Fatalf("running as root, Postgres runs as uid 0; want an unprivileged user")
	}
	if os.Geteuid() != 0 && uid != os.Geteuid() {
		t.Fatalf("Postgres runs as uid %d, want ours (%d)", uid, os.Geteuid())
	}
	// A second start on the same folder is refused while the first runs.
	if _, err := pglaunch.Start(ctx, cfg); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second start: %v, want 'already running'", err)
	}
	if err := c.CreateDatabase(ctx, "kept", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c2, err := pglaunch.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer c2.Stop(context.Background())
	// The database made before the restart is still there: creating it again is a no-op,
	// and dropping it works only if it exists.
	if err := c2.DropDatabase(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
}

func TestUnwritableDataFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, nil, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pglaunch.Start(ctx, pglaunch.Config{Dir: filepath.Join(file, "data", "pg")})
	if err == nil || !strings.Contains(err.Error(), "DATA_DIR") {
		t.Fatalf("err = %v, want a message naming DATA_DIR", err)
	}
}

func processUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Uid:") {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[2]) // effective uid
			return n
		}
	}
	t.Fatal("no Uid line")
	return -1
}

// TestRootWithUnreachableDataFolder: as root with the data folder under a
// folder only root may enter (a home folder of mode 700), the cluster is
// kept under /var/lib/rapporteur instead of failing.
func TestRootWithUnreachableDataFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs Postgres as another user")
	}
	private := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := pglaunch.Start(ctx, pglaunch.Config{Dir: filepath.Join(private, "data", "postgres"), Database: "app", Fast: true})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		c.Stop(context.Background())
		os.RemoveAll(c.Dir())
		os.Remove(c.Dir() + ".password")
		os.Remove(c.Dir() + ".log")
	})
	if !strings.HasPrefix(c.Dir(), "/var/lib/rapporteur/") {
		t.Fatalf("cluster in %s, want it under /var/lib/rapporteur", c.Dir())
	}
	if err := c.CreateDatabase(ctx, "works", ""); err != nil {
		t.Fatal(err)
	}
}
