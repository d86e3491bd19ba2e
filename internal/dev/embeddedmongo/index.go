package embeddedmongo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	// FerretDB registers this driver too; importing it here says that this file relies on it.
	_ "modernc.org/sqlite"
)

// FerretDB 1.24 pushes a filter of exactly {_id: <value>} down to SQL as
// WHERE _ferretdb_sjson->'$._id' = ?, but the unique index it creates for _id is on
// _ferretdb_sjson->"_id", an expression SQLite does not consider the same: every pushed-down read,
// replace and delete by _id scans the table, and its cost grows with the collection (MEASURED.md:
// 14-20 ms a replace at 4,000 documents). An index on FerretDB's exact expression turns the plan
// into SEARCH ... USING INDEX and the cost flat. FerretDB does not know about the index (its
// indexes live in its metadata table) and does not need to: SQLite maintains it, and dropping the
// collection drops the table and the index with it.
const (
	// metadataTable is where FerretDB lists a database's collections and their tables.
	metadataTable = "_ferretdb_collections"
	// idExpr must be exactly the expression of FerretDB's SQL (metadata.IDColumn in its source),
	// or SQLite will not use the index.
	idExpr = `_ferretdb_sjson->'$._id'`
	// idIndexSuffix names the index after its table; FerretDB names its own indexes
	// <table>_<index name>, where index names never contain two underscores in a row.
	idIndexSuffix = "__cart_id_expr"
)

// EnsureIndexes creates, for every collection of database db, the index on the expression of
// FerretDB's pushed-down _id filter (see idExpr), unless it exists; a database that does not
// exist yet has nothing to index. Call it after creating collections, e.g. after the first write
// to a new carts collection (readmodel's Options.CollectionWritten hook), or let the server do it
// periodically (Config.IndexInterval). Creating the index on an existing collection takes one
// pass over its table; afterwards it costs nothing but being maintained.
func (s *Server) EnsureIndexes(ctx context.Context, db string) error {
	if err := ensureIndexes(ctx, s.databaseFile(db)); err != nil {
		return fmt.Errorf("embeddedmongo ensure indexes of %s: %w", db, err)
	}
	return nil
}

// EnsureAllIndexes does EnsureIndexes for every database of the server.
func (s *Server) EnsureAllIndexes(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(s.dir, "*"+sqliteExt))
	if err != nil {
		return fmt.Errorf("embeddedmongo ensure indexes: %w", err)
	}
	var errs []error
	for _, f := range files {
		if err := ensureIndexes(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("embeddedmongo ensure indexes of %s: %w", strings.TrimSuffix(filepath.Base(f), sqliteExt), err))
		}
	}
	return errors.Join(errs...)
}

// sqliteExt is the extension of FerretDB's database files: <data dir>/<database>.sqlite.
const sqliteExt = ".sqlite"

func (s *Server) databaseFile(db string) string { return filepath.Join(s.dir, db+sqliteExt) }

// openFile opens an existing database file of FerretDB beside FerretDB's own pool. mode=rw never
// creates a file: a file FerretDB did not create would confuse it. The busy timeout lets our
// statements wait for FerretDB's writes instead of failing.
func openFile(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: url.Values{
		"mode":    {"rw"},
		"_pragma": {"busy_timeout(10000)"},
	}.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func ensureIndexes(ctx context.Context, path string) error {
	db, err := openFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer db.Close()
	tables, err := collectionTables(ctx, db)
	if err != nil {
		return err
	}
	var errs []error
	for _, table := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, table+idIndexSuffix, table, idExpr)
		if _, err := db.ExecContext(ctx, q); err != nil && !strings.Contains(err.Error(), "no such table") {
			// "no such table": the collection was dropped since we listed it.
			errs = append(errs, fmt.Errorf("table %s: %w", table, err))
		}
	}
	return errors.Join(errs...)
}

// collectionTables lists the tables of a database's collections from FerretDB's metadata table;
// a file without one (FerretDB has not finished creating it) has none.
func collectionTables(ctx context.Context, db *sql.DB) ([]string, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, metadataTable).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT table_name FROM %q`, metadataTable))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// indexLoop runs EnsureAllIndexes every interval until ctx ends, so that collections created by
// programs that cannot call EnsureIndexes (query-svc in its own process) get the index too, at
// most an interval late. Failures are logged, not fatal: without the index FerretDB is only
// slower.
func (s *Server) indexLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.EnsureAllIndexes(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("embeddedmongo: creating the _id expression indexes", "err", err)
			}
		}
	}
}
