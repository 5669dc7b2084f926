package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// loadServer is a fresh server for one load test run (`loadtest -serve`):
// a private Postgres and this program as a child process, in a new
// temporary data folder, so that every run starts from the same empty
// state and anyone can rerun a figure with one command.
type loadServer struct {
	URL, DSN string
	PID      int
	dir      string
	stopPG   func() // stops the private Postgres (see database)
	cmd      *exec.Cmd
	exited   chan struct{}
}

// startLoadServer starts Postgres in a new temporary folder, then this
// program (the server) on a free local port with DATABASE_URL pointing at
// it, and waits until the server is ready. The server's environment is
// this process's, with HUB_OPS_PER_SECOND raised to 2000 unless it is set
// (the throughput scenario sends faster than a person). Stop stops both
// and removes the folder.
func startLoadServer(ctx context.Context, getenv func(string) string, out io.Writer) (*loadServer, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("loadtest -serve: cannot find this program to start it: %w", err)
	}
	dir, err := os.MkdirTemp("", "rapporteur-loadtest-")
	if err != nil {
		return nil, fmt.Errorf("loadtest -serve: %w", err)
	}
	s := &loadServer{dir: dir, exited: make(chan struct{})}
	// Postgres runs as the postgres user when we are root: it must reach the folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		s.Stop()
		return nil, fmt.Errorf("loadtest -serve: %w", err)
	}
	s.DSN, s.stopPG, err = database(ctx, config{DataDir: dir, PGBin: getenv("PG_BIN")},
		slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelError}))) // a failed stop is reported
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("loadtest -serve: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("loadtest -serve: no free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s.URL = "http://" + addr
	logPath := filepath.Join(dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("loadtest -serve: %w", err)
	}
	defer logf.Close()
	s.cmd = exec.Command(bin)
	// Its database is the private one, whatever this environment names.
	s.cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "DATABASE_URL_FILE=")
	})
	s.cmd.Env = append(s.cmd.Env, "DATABASE_URL="+s.DSN, "DATA_DIR="+dir, "ADDR="+addr, "BASE_URL="+s.URL)
	if getenv("HUB_OPS_PER_SECOND") == "" {
		s.cmd.Env = append(s.cmd.Env, "HUB_OPS_PER_SECOND=2000")
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		s.Stop()
		return nil, fmt.Errorf("loadtest -serve: start the server: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	s.PID = s.cmd.Process.Pid
	if err := s.waitReady(ctx, 2*time.Minute); err != nil {
		log, _ := os.ReadFile(logPath)
		s.Stop()
		return nil, fmt.Errorf("loadtest -serve: %w; its log:\n%s", err, log)
	}
	fmt.Fprintf(out, "fresh server %s (pid %d), data in %s\n", s.URL, s.PID, dir)
	if inMemory(dir) {
		fmt.Fprintf(out, "warning: %s is in memory (tmpfs): commits wait for no disk, so acks and durable ops/s come out faster than on one; set TMPDIR to a folder on a disk\n", dir)
	}
	return s, nil
}

// waitReady waits until the server's /readyz answers 200.
func (s *loadServer) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return errors.New("the server exited before it was ready")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the server was not ready within %s", limit)
}

// Stop stops the server (SIGTERM, then SIGKILL after 30 s) and Postgres
// (whose stop logs its own failure), and removes the data folder.
func (s *loadServer) Stop() error {
	var errs []string
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			errs = append(errs, "the server did not stop in 30 s and was killed")
		}
	}
	if s.stopPG != nil {
		s.stopPG()
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err.Error())
	}
	if errs != nil {
		return fmt.Errorf("loadtest -serve: %s", strings.Join(errs, "; "))
	}
	return nil
}
