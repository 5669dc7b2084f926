package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rapporteur/rapporteur/search"
	"github.com/rapporteur/rapporteur/server/store"
)

// searchDir is the search index's folder in the data folder.
func searchDir(cfg config) string { return filepath.Join(cfg.DataDir, "search") }

// reindex is the "reindex" command: it rebuilds the search index from
// Postgres with the server stopped, printing its progress.
func reindex(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
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
	if pending, err := st.Pending(ctx); err != nil || len(pending) > 0 {
		return fmt.Errorf("the database is not migrated (%v %v): start the server once first", pending, err)
	}

	dir := searchDir(cfg)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data folder %s cannot be created: %v: choose a writable DATA_DIR", cfg.DataDir, err)
	}
	opts := search.Options{LockTimeout: indexLockTimeout}
	// A running server holds the index: never swap it from under it.
	ix, err := search.Open(dir, opts)
	switch {
	case errors.Is(err, search.ErrLocked):
		return fmt.Errorf("the search index %s is in use: stop the server first", dir)
	case err == nil:
		if err := ix.Close(); err != nil {
			return err
		}
	case !errors.Is(err, search.ErrNeedsRebuild):
		return err
	}
	start := time.Now()
	last := -1
	ix, err = rebuildIndex(ctx, st, dir, opts, func(done, total int) {
		if p := percent(done, total); p != last {
			last = p
			fmt.Fprintf(stdout, "reindex: %d of %d findings (%d%%)\n", done, total, p)
		}
	})
	if errors.Is(err, search.ErrLocked) {
		return fmt.Errorf("reindex: a running server is rebuilding the search index %s: let it finish, or stop it first", dir)
	}
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	n, err := ix.Count()
	if cerr := ix.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	fmt.Fprintf(stdout, "reindex: done: %d findings indexed in %s (%s)\n", n, time.Since(start).Round(time.Millisecond), dir)
	return nil
}
