package importer

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sqliteQueue makes a gearmand SQLite queue holding rows, as gearmand's table would.
func sqliteQueue(t *testing.T, rows []Row) (flags []string, count func() int) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "q.db")
	db, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(gearmandTables["sqlite"]); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := db.Exec("INSERT INTO gearman_queue (unique_key, function_name, priority, data, when_to_run) VALUES (?,?,?,?,?)",
			r.Unique, r.Function, r.Priority, r.Data, r.When); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"-p", "1", "-q", "libsqlite3", "--libsqlite3-db", file}, func() int {
		return sqlCount(t, "sqlite", "file:"+file+"?mode=ro", "SELECT COUNT(*) FROM gearman_queue")
	}
}

func TestImportSkipsRowsItCannotTakeAndLeavesThem(t *testing.T) {
	later := time.Now().Unix() + 3600
	rows := []Row{
		{Function: "ok", Unique: "a", Priority: prioHigh, Data: []byte("1")},
		{Function: "ok", Unique: "b", Priority: 7, Data: []byte("bad priority")},
		{Function: "", Unique: "c", Priority: prioNormal, Data: []byte("no function")},
		{Function: "ok", Unique: strings.Repeat("u", 65), Priority: prioNormal, Data: []byte("long unique")},
		{Function: "ok", Unique: "d", Priority: prioHigh, When: later, Data: []byte("scheduled high")},
		{Function: "ok", Unique: "e", Priority: prioNormal, When: -5, Data: []byte("bad when")},
	}
	flags, count := sqliteQueue(t, rows)
	addr, _ := startSpurd(t, t.TempDir())
	rep, err := importRun(t, append(flags, "--to", addr)...)
	if err == nil || !strings.Contains(err.Error(), "5 rows were not imported") {
		t.Fatalf("err %v, want the 5 skipped rows named", err)
	}
	if rep.Imported != 1 || rep.Skipped != 5 || rep.Deleted != 1 || len(rep.Skips) != 5 {
		t.Fatalf("report %+v", rep)
	}
	for _, want := range []string{"bad priority 7", "empty function name", "unique of 65 bytes", "protocol schedules normal jobs only", "bad when_to_run"} {
		found := false
		for _, s := range rep.Skips {
			found = found || strings.Contains(s.Reason, want)
		}
		if !found {
			t.Errorf("no skip says %q: %+v", want, rep.Skips)
		}
	}
	if n := count(); n != 5 {
		t.Fatalf("source holds %d rows, want the 5 skipped ones", n)
	}
	// A data dir keeps a scheduled job's priority: that row goes there.
	dir := filepath.Join(t.TempDir(), "data")
	rep, err = importRun(t, append(flags, "--data-dir", dir)...)
	if err == nil || rep.Imported != 1 || rep.Skipped != 4 || count() != 4 {
		t.Fatalf("data dir: err %v, %+v, source %d", err, rep, count())
	}
}

func TestImportKeepThenMoveImportsNothingTwice(t *testing.T) {
	var rows []Row
	for i := range 50 {
		rows = append(rows, rateRow(i))
	}
	// An empty unique and the unique "-": matched by their data in the data dir.
	rows = append(rows, Row{Function: "fn0", Priority: prioLow, Data: []byte("no unique")},
		Row{Function: "fn1", Unique: "-", Priority: prioNormal, Data: []byte("by data")})
	flags, count := sqliteQueue(t, rows)
	dir := filepath.Join(t.TempDir(), "data")
	rep, err := importRun(t, append(flags, "--data-dir", dir, "--keep")...)
	if err != nil || rep.Imported != len(rows) || rep.Deleted != 0 || count() != len(rows) {
		t.Fatalf("--keep: err %v, %+v, source %d", err, rep, count())
	}
	// What a crash between the commit and the source's delete leaves: a second run finds
	// every row in the data dir, writes none again and finishes the move.
	rep, err = importRun(t, append(flags, "--data-dir", dir)...)
	if err != nil || rep.Imported != 0 || rep.Already != len(rows) || rep.Deleted != len(rows) || count() != 0 {
		t.Fatalf("second run: err %v, %+v, source %d", err, rep, count())
	}
	addr, _ := startSpurd(t, dir)
	if q := queued(t, addr); q != len(rows) {
		t.Fatalf("spurd holds %d jobs, want %d", q, len(rows))
	}
}

func TestImportRefusals(t *testing.T) {
	flags, _ := sqliteQueue(t, []Row{rateRow(1)})
	dir := t.TempDir()
	startSpurd(t, dir) // holds dir: a data-dir import must refuse it
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-q", "libmemcached", "--libmemcached-servers", "127.0.0.1", "--to", "127.0.0.1:1", "-p", "1"}, "memcached has no complete way to list its keys"},
		{[]string{"-q", "builtin", "--to", "127.0.0.1:1", "-p", "1"}, "nothing to import"},
		{[]string{"--to", "127.0.0.1:1", "-p", "1"}, "-q is required"},
		{[]string{"-q", "tokyocabinet", "--to", "127.0.0.1:1", "-p", "1"}, "not a gearmand queue type"},
		{flags, "say where the jobs go"},
		{append(flags[:len(flags):len(flags)], "--to", "x:1", "--data-dir", dir), "exclusive"},
		{append(flags[:len(flags):len(flags)], "--data-dir", dir), "locked by another process"},
		{[]string{"-p", "1", "-q", "libsqlite3", "--libsqlite3-db", filepath.Join(dir, "nope.db"), "--to", "127.0.0.1:1"}, "no such file"},
		{append(flags[:len(flags):len(flags)], "--libsqlite3-table", "x; DROP TABLE y", "--to", "127.0.0.1:1"), "not a table name"},
		{append(flags[:len(flags):len(flags)], "--config-file", "/etc/gearmand.conf", "--to", "127.0.0.1:1"), "does not read gearmand's config file"},
	} {
		rep, err := importRun(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || rep.Imported != 0 {
			t.Errorf("%q: err %v (imported %d), want one saying %q", c.args, err, rep.Imported, c.want)
		}
	}
}

func TestImportRejectsAMistypedFlag(t *testing.T) {
	cmd := Command()
	cmd.SetArgs([]string{"-q", "libsqlite3", "--libsqlite-db", "x.db", "--to", "127.0.0.1:1"})
	cmd.SetOut(&strings.Builder{})
	cmd.SetErr(&strings.Builder{})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "libsqlite-db") {
		t.Fatalf("err %v, want the unknown flag named", err)
	}
}

func TestParseGearmandCommandLine(t *testing.T) {
	q := parseGearmand(strings.Fields("-d -t 4 --verbose=INFO -qlibsqlite3 --libsqlite3-db rel/q.db -p 4731 --unknown-flag x --job-retries 3"))
	if q.store() != "libsqlite3" || q.port != "4731" {
		t.Fatalf("parsed %+v", q)
	}
	if got, want := q.identity("/srv"), "libsqlite3\x00/srv/rel/q.db\x00gearman_queue"; got != want {
		t.Fatalf("identity %q, want %q", got, want)
	}
}
