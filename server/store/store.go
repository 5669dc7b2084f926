// Package store is Rapporteur's Postgres store: it owns the schema
// migrations, every transaction, and the per-room event log.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/migrate"

	"github.com/rapporteur/rapporteur/migrations"
	"github.com/rapporteur/rapporteur/server/domain"
)

// Store is the database. Its methods own their transactions.
type Store struct {
	db   *bun.DB
	dsn  string
	ann  *announcer
	com  *committer
	slow slowBatches

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

// prepared returns query prepared on the pool (database/sql prepares it on
// each connection on first use and keeps it), so hot statements skip
// Postgres's parse and plan.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.db.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[query] = st
	return st, nil
}

// Open connects to the Postgres at dsn (a postgres:// URL) and checks that
// it answers.
func Open(ctx context.Context, dsn string) (*Store, error) {
	if err := CheckDSN(dsn); err != nil {
		return nil, err
	}
	// 10 s for each read and write, unless the URL says otherwise
	// (timeout, read_timeout, write_timeout, dial_timeout).
	sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithTimeout(10*time.Second), pgdriver.WithDSN(dsn), untimed, statementTimeout, genericPlans))
	sqldb.SetMaxOpenConns(40)
	sqldb.SetMaxIdleConns(40)
	db := bun.NewDB(sqldb, pgdialect.New())
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		hint := "check DATABASE_URL and that Postgres is running"
		if strings.Contains(err.Error(), "SSL is not enabled") {
			hint = "this Postgres takes no TLS: add ?sslmode=disable to DATABASE_URL if the network between them is private"
		}
		return nil, fmt.Errorf("cannot reach the database at %s: %v: %s", redact(dsn), err, hint)
	}
	s := &Store{db: db, dsn: dsn, ann: newAnnouncer(db)}
	s.com = newCommitter(s)
	return s, nil
}

// untimed makes a timeout of 0 in DATABASE_URL mean none, as in libpq:
// pgdriver turns it into a deadline already past, and nothing connects.
func untimed(c *pgdriver.Config) {
	for _, d := range []*time.Duration{&c.DialTimeout, &c.ReadTimeout, &c.WriteTimeout} {
		*d = max(*d, 0)
	}
}

// statementTimeout has Postgres end a statement a little before the
// driver stops waiting for it (at nine tenths of the read timeout). A
// statement the driver gave up on would run on, holding its
// transaction's locks (its room's row, and with it every op of the room)
// until what it waits for ends; ended by Postgres, its transaction rolls
// back at once, and Busy tells the error. A statement_timeout in
// DATABASE_URL wins.
func statementTimeout(c *pgdriver.Config) {
	if c.ReadTimeout <= 0 {
		return
	}
	if c.ConnParams == nil {
		c.ConnParams = map[string]any{}
	}
	if _, ok := c.ConnParams["statement_timeout"]; !ok {
		c.ConnParams["statement_timeout"] = fmt.Sprintf("%dms", (c.ReadTimeout - c.ReadTimeout/10).Milliseconds())
	}
}

// Busy tells whether err is the database giving up on a statement that
// took too long (statement_timeout, lock_timeout): worth trying again.
func Busy(err error) bool {
	var pe pgdriver.Error
	return errors.As(err, &pe) && (pe.StatementTimeout() || pe.Field('C') == "55P03")
}

// genericPlans has Postgres plan our prepared statements once per
// connection instead of at every execution: the create-finding statement
// takes longer to plan than to run (about 0.3 ms each), and its plan does
// not depend on the values. bun's own queries are not prepared and are not
// affected. A plan_cache_mode in DATABASE_URL wins.
func genericPlans(c *pgdriver.Config) {
	if c.ConnParams == nil {
		c.ConnParams = map[string]any{}
	}
	if _, ok := c.ConnParams["plan_cache_mode"]; !ok {
		c.ConnParams["plan_cache_mode"] = "force_generic_plan"
	}
}

// CheckDSN tells whether dsn is a usable postgres:// URL, with a message
// that says what is wrong.
func CheckDSN(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		// Not the parser's words: they quote parts of the URL, its password perhaps.
		return errors.New("DATABASE_URL is not a valid URL: use postgres://user:password@host:5432/dbname, with characters such as / @ : # in the password percent-encoded (%2F %40 %3A %23)")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("DATABASE_URL must start with postgres:// (got %q): use postgres://user:password@host:5432/dbname", u.Scheme+"://")
	}
	if u.Host == "" {
		return errors.New("DATABASE_URL has no host: use postgres://user:password@host:5432/dbname")
	}
	if strings.Trim(u.Path, "/") == "" {
		return errors.New("DATABASE_URL has no database name: use postgres://user:password@host:5432/dbname")
	}
	return nil
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// DB returns the underlying bun database, for tests and benchmarks.
func (s *Store) DB() *bun.DB { return s.db }

// Close announces the entries not yet announced and closes the pool.
func (s *Store) Close() error {
	s.com.wg.Wait()
	s.ann.close()
	return s.db.Close()
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// migrationLockKey is the advisory lock that serialises migrators of all
// server processes on one database.
const migrationLockKey = 0x72617070 // "rapp"

func (s *Store) migrator(fsys fs.FS) (*migrate.Migrator, error) {
	ms := migrate.NewMigrations()
	if err := ms.Discover(fsys); err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return migrate.NewMigrator(s.db, ms, migrate.WithMarkAppliedOnSuccess(true)), nil
}

// Migrate applies every migration not yet applied. It holds a Postgres
// advisory lock so concurrent servers migrate one at a time, and under it
// takes bun's lock too (clearing one a crashed migrator left behind, which
// the advisory lock proves stale). Each migration runs in one transaction
// and is recorded only once it applied.
func (s *Store) Migrate(ctx context.Context) error {
	return s.MigrateFrom(ctx, migrations.FS())
}

// MigrateFrom applies the migrations in fsys like Migrate; tests use it to
// run migrations of their own.
func (s *Store) MigrateFrom(ctx context.Context, fsys fs.FS) error {
	return s.withMigrator(ctx, fsys, func(m *migrate.Migrator) error {
		if _, err := m.Migrate(ctx); err != nil {
			return fmt.Errorf("migration failed and was not applied: %w", err)
		}
		return nil
	})
}

// Rollback undoes the last group of applied migrations.
func (s *Store) Rollback(ctx context.Context) error {
	return s.withMigrator(ctx, migrations.FS(), func(m *migrate.Migrator) error {
		if _, err := m.Rollback(ctx); err != nil {
			return fmt.Errorf("roll back migrations: %w", err)
		}
		return nil
	})
}

func (s *Store) withMigrator(ctx context.Context, fsys fs.FS, fn func(*migrate.Migrator) error) error {
	m, err := s.migrator(fsys)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrationLockKey); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(?)", migrationLockKey)
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("create migration tables: %w", err)
	}
	if _, err := s.db.NewDelete().TableExpr("bun_migration_locks").Where("TRUE").Exec(ctx); err != nil {
		return fmt.Errorf("clear stale migration lock: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return err
	}
	defer m.Unlock(context.Background())
	return fn(m)
}

// Pending returns the names of migrations not yet applied.
func (s *Store) Pending(ctx context.Context) ([]string, error) {
	return s.PendingFrom(ctx, migrations.FS())
}

// PendingFrom returns the migrations of fsys not yet applied.
func (s *Store) PendingFrom(ctx context.Context, fsys fs.FS) ([]string, error) {
	m, err := s.migrator(fsys)
	if err != nil {
		return nil, err
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return nil, fmt.Errorf("read migration status: %w", err)
	}
	var names []string
	for _, mg := range ms.Unapplied() {
		names = append(names, mg.Name)
	}
	return names, nil
}

// Ready reports whether the database answers and every migration is applied.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return &domain.Error{Code: domain.NotReady, Message: "The database is unreachable.", Err: err}
	}
	pending, err := s.Pending(ctx)
	if err != nil {
		return &domain.Error{Code: domain.NotReady, Message: "The migration state cannot be read.", Err: err}
	}
	if len(pending) > 0 {
		return domain.Errorf(domain.NotReady, "%d migration(s) not applied: %s.", len(pending), strings.Join(pending, ", "))
	}
	return nil
}

// inTx runs fn in one transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx bun.Tx) error) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(tx) })
}

// notFound turns sql.ErrNoRows into a NotFound Error.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Errorf(domain.NotFound, format, args...)
	}
	return err
}
