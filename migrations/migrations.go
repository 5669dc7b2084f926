// Package migrations holds the SQL migrations of the database schema,
// embedded so the server binary carries them.
//
// Files are named NNNNNNNNNNNNNN_name.tx.up.sql / .tx.down.sql as bun's
// migrate expects; the ".tx" makes each one run in a single transaction,
// so a migration either applies whole or not at all.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed *.sql
var files embed.FS

// FS returns the migration files.
func FS() fs.FS { return files }
