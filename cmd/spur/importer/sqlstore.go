package importer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", pure Go
)

// The three SQL stores share one table layout (gearman-spec.md section 5), created by gearmand:
//
//	libsqlite3: unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB,
//	            when_to_run INTEGER (added by gearmand to older tables), PRIMARY KEY (unique_key, function_name)
//	MySQL:      unique_key VARCHAR(64), function_name VARCHAR(255), priority INT, data LONGBLOB,
//	            when_to_run INT, UNIQUE KEY (unique_key, function_name)
//	Postgres:   unique_key VARCHAR(64), function_name VARCHAR(255), priority INTEGER, data BYTEA,
//	            when_to_run INTEGER, UNIQUE (unique_key, function_name)
//
// gearmand replays the rows in the order the database returns them without ORDER BY; so do
// we, but for SQLite, where that order is the rowid's and we say so. A row is deleted by what
// identifies it exactly: SQLite's rowid, or the key columns compared NULL-safely (a NULL
// compared with = would match nothing and the row would be imported again next run).
type sqlStore struct {
	db       *sql.DB
	desc     string
	selectQ  string
	deleteQ  string
	rowid    bool // the select's first column is SQLite's rowid, the delete's one argument
	deleteBy int  // rows per delete transaction
	// inQ starts a delete of many rows by their key pair, "... WHERE (unique_key,
	// function_name) IN (" (MySQL and Postgres, rows without NULLs); pg numbers its
	// placeholders.
	inQ string
	pg  bool
}

// inChunk is how many rows one IN-list delete names.
const inChunk = 500

// tableName accepts what gearmand puts into its queries unquoted: an identifier, optionally
// schema-qualified. Quoting it would change its meaning (Postgres folds an unquoted name to
// lower case, as gearmand's CREATE TABLE did), so it is checked instead.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)

func checkTable(flag, t string) error {
	if !tableName.MatchString(t) {
		return fmt.Errorf("--%s %q is not a table name gearmand could have used", flag, t)
	}
	return nil
}

func openSQLite(ctx context.Context, file, table string) (*sqlStore, error) {
	if file == "" {
		return nil, errors.New("-q libsqlite3 needs --libsqlite3-db FILE")
	}
	if err := checkTable("libsqlite3-table", table); err != nil {
		return nil, err
	}
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("--libsqlite3-db: %w", err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	// mode=rw: never create an empty database where the operator mistyped the path. The busy
	// timeout is gearmand's own (6 s).
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: abs,
		RawQuery: "mode=rw&_pragma=busy_timeout(6000)"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	s := &sqlStore{db: db, desc: fmt.Sprintf("libsqlite3 %s (table %s)", abs, table), rowid: true, deleteBy: 5000}
	cols, err := s.columns(ctx, "SELECT name FROM pragma_table_info(?)", table)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", s.desc, err)
	}
	when := "when_to_run"
	if !cols["when_to_run"] {
		when = "0" // a table from before gearmand's epoch support
	}
	s.selectQ = "SELECT rowid, unique_key, function_name, priority, data, " + when + " FROM " + table + " ORDER BY rowid"
	s.deleteQ = "DELETE FROM " + table + " WHERE rowid = ?"
	return s, nil
}

// mysqlConfig is gearmand's MySQL options.
type mysqlConfig struct {
	host, user, password, db, table string
	port                            int
}

func openMySQL(ctx context.Context, c mysqlConfig) (*sqlStore, error) {
	if c.db == "" {
		return nil, errors.New("-q mysql needs --mysql-db")
	}
	if err := checkTable("mysql-table", c.table); err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = c.user, c.password, c.db
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(c.host, strconv.Itoa(c.port))
	// libmysqlclient, which gearmand uses, takes "localhost" for its Unix socket.
	if c.host == "localhost" {
		for _, sock := range []string{"/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock"} {
			if _, err := os.Stat(sock); err == nil {
				cfg.Net, cfg.Addr = "unix", sock
				break
			}
		}
	}
	cfg.Timeout = 10 * time.Second
	cfg.MaxAllowedPacket = 0 // ask the server: a LONGBLOB row may be large
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	s := &sqlStore{db: db, desc: fmt.Sprintf("mysql %s@%s/%s (table %s)", c.user, cfg.Addr, c.db, c.table), deleteBy: 2000}
	if err := s.needColumns(ctx, "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?", c.table); err != nil {
		db.Close()
		return nil, err
	}
	s.selectQ = "SELECT unique_key, function_name, priority, data, when_to_run FROM " + c.table
	s.deleteQ = "DELETE FROM " + c.table + " WHERE unique_key <=> ? AND function_name <=> ?"
	s.inQ = "DELETE FROM " + c.table + " WHERE (unique_key, function_name) IN ("
	return s, nil
}

func openPostgres(ctx context.Context, conninfo, table string) (*sqlStore, error) {
	if err := checkTable("libpq-table", table); err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return nil, fmt.Errorf("--libpq-conninfo: %w", err)
	}
	db, err := sql.Open("pgx", conninfo)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	s := &sqlStore{db: db, desc: fmt.Sprintf("libpq %s@%s:%d/%s (table %s)", cfg.User, cfg.Host, cfg.Port, cfg.Database, table), deleteBy: 2000}
	// gearmand created the table unquoted, so its name is stored folded to lower case.
	if err := s.needColumns(ctx, "SELECT column_name FROM information_schema.columns WHERE table_schema = ANY (current_schemas(false)) AND table_name = lower($1)", table); err != nil {
		db.Close()
		return nil, err
	}
	s.selectQ = "SELECT unique_key, function_name, priority, data, when_to_run FROM " + table
	s.deleteQ = "DELETE FROM " + table + " WHERE unique_key IS NOT DISTINCT FROM $1 AND function_name IS NOT DISTINCT FROM $2"
	s.inQ, s.pg = "DELETE FROM "+table+" WHERE (unique_key, function_name) IN (", true
	return s, nil
}

func (s *sqlStore) columns(ctx context.Context, q, table string) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, q, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols[c] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("no table %s: is this the database gearmand used (its -q flags)?", table)
	}
	for _, c := range []string{"unique_key", "function_name", "priority", "data"} {
		if !cols[c] {
			return nil, fmt.Errorf("table %s has no column %s: not a gearmand queue table", table, c)
		}
	}
	return cols, nil
}

func (s *sqlStore) needColumns(ctx context.Context, q, table string) error {
	cols, err := s.columns(ctx, q, table)
	if err != nil {
		return fmt.Errorf("%s: %w", s.desc, err)
	}
	if !cols["when_to_run"] {
		return fmt.Errorf("%s: table has no column when_to_run: not a gearmand 1.1 queue table", s.desc)
	}
	return nil
}

func (s *sqlStore) Describe() string { return s.desc }

// keyCols identifies a MySQL or Postgres row by its key columns, NULLs kept.
type keyCols struct{ unique, function sql.NullString }

func (s *sqlStore) Rows(ctx context.Context) ([]Row, error) {
	rows, err := s.db.QueryContext(ctx, s.selectQ)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.desc, err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var (
			rowid      int64
			k          keyCols
			prio, when sql.NullInt64
			data       []byte
		)
		dst := []any{&k.unique, &k.function, &prio, &data, &when}
		if s.rowid {
			dst = append([]any{&rowid}, dst...)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, fmt.Errorf("%s: reading a row: %w", s.desc, err)
		}
		// A NULL priority or when_to_run is read as gearmand reads it: 0 (high; now).
		r := Row{Unique: k.unique.String, Function: k.function.String, Priority: prio.Int64, Data: data, When: when.Int64}
		if s.rowid {
			r.id = rowid
		} else {
			r.id = k
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", s.desc, err)
	}
	return out, nil
}

func (s *sqlStore) Delete(ctx context.Context, rows []Row) error {
	for len(rows) > 0 {
		n := min(len(rows), s.deleteBy)
		if err := s.deleteTx(ctx, rows[:n]); err != nil {
			return fmt.Errorf("%s: deleting imported rows: %w", s.desc, err)
		}
		rows = rows[n:]
	}
	return nil
}

func (s *sqlStore) deleteTx(ctx context.Context, rows []Row) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	var pairs []any     // key pairs without NULLs, deleted inChunk at a time
	var one *sql.Stmt
	for i := range rows {
		if k, ok := rows[i].id.(keyCols); ok && s.inQ != "" && k.unique.Valid && k.function.Valid {
			pairs = append(pairs, k.unique.String, k.function.String)
			continue
		}
		if one == nil {
			if one, err = tx.PrepareContext(ctx, s.deleteQ); err != nil {
				return err
			}
			defer one.Close()
		}
		if s.rowid {
			_, err = one.ExecContext(ctx, rows[i].id)
		} else {
			k := rows[i].id.(keyCols)
			_, err = one.ExecContext(ctx, k.unique, k.function)
		}
		if err != nil {
			return err
		}
	}
	for len(pairs) > 0 {
		n := min(len(pairs), 2*inChunk)
		if _, err := tx.ExecContext(ctx, s.inList(n/2), pairs[:n]...); err != nil {
			return err
		}
		pairs = pairs[n:]
	}
	return tx.Commit()
}

// inList is the delete of n key pairs.
func (s *sqlStore) inList(n int) string {
	b := []byte(s.inQ)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		if s.pg {
			b = fmt.Appendf(b, "($%d,$%d)", 2*i+1, 2*i+2)
		} else {
			b = append(b, "(?,?)"...)
		}
	}
	return string(append(b, ')'))
}

func (s *sqlStore) Close() error { return s.db.Close() }
