package importer

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// -import.rate sets how many jobs TestImportRate moves per store and target. The default keeps
// the test quick; the README's figures come from
//
//	go test ./cmd/spur/importer -run TestImportRate -import.rate=100000 -v
var rateJobs = flag.Int("import.rate", 2000, "jobs TestImportRate moves per store and target")

// TestImportRate fills each store with -import.rate jobs in gearmand's layout (as gearmand
// would have written them: its table, or its redis hashes) and moves them into a running
// spurd and into a data dir, checking spurd then holds all of them; it logs the rate.
func TestImportRate(t *testing.T) {
	n := *rateJobs
	stores := []struct {
		name string
		fx   func(t testing.TB) fixture
		fill func(t testing.TB, fx fixture, n int)
	}{
		{"libsqlite3", sqliteFixture, fillSQL("sqlite")},
		{"mysql", mysqlFixture, fillSQL("mysql")},
		{"postgres", postgresFixture, fillSQL("pgx")},
		{"redis", redisFixture, fillRedis},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			fx := s.fx(t)
			for _, mode := range []string{"to", "data-dir"} {
				s.fill(t, fx, n)
				dir := filepath.Join(t.TempDir(), "data")
				var addr string
				target := []string{"--data-dir", dir}
				if mode == "to" {
					addr, _ = startSpurd(t, dir)
					target = []string{"--to", addr}
				}
				rep, err := importRun(t, append(append([]string{"-p", "1"}, fx.flags...), target...)...)
				if err != nil || rep.Imported != n || rep.Deleted != n {
					t.Fatalf("%s: err %v, %+v", mode, err, rep)
				}
				t.Logf("%s --%s: %d jobs in %.2f s: %.0f jobs/s", s.name, mode, n, rep.Seconds, rep.Rate)
				if fx.count(t) != 0 {
					t.Fatalf("%s: source not empty", mode)
				}
				if mode == "data-dir" {
					addr, _ = startSpurd(t, dir)
				}
				if q := queued(t, addr); q != n {
					t.Fatalf("%s: spurd holds %d jobs, want %d", mode, q, n)
				}
			}
		})
	}
}

// rateRow is job i of the rate test: three functions, all priorities, a UUID-like unique,
// 100 bytes of data.
func rateRow(i int) Row {
	return Row{Function: fmt.Sprintf("fn%d", i%3), Unique: fmt.Sprintf("%08x-1f2e-4d3c-b4a5-%012x", i, i),
		Priority: int64(i % 3), Data: []byte(fmt.Sprintf("%-100d", i))}
}

// The tables as gearmand creates them (gearman-spec.md section 5, the plugins' CREATE TABLE).
var gearmandTables = map[string]string{
	"sqlite": "CREATE TABLE IF NOT EXISTS gearman_queue ( unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, when_to_run INTEGER, PRIMARY KEY (unique_key, function_name))",
	"mysql":  "CREATE TABLE IF NOT EXISTS gearman_queue (unique_key VARCHAR(64), function_name VARCHAR(255), priority INT, data LONGBLOB, when_to_run INT, unique key (unique_key, function_name))",
	"pgx":    "CREATE TABLE IF NOT EXISTS queue (unique_key VARCHAR(64), function_name VARCHAR(255), priority INTEGER, data BYTEA, when_to_run INTEGER, UNIQUE (unique_key, function_name))",
}

// dsnOf recovers the test's own connection string from a fixture's flags.
func dsnOf(driver string, fx fixture) (dsn, table string) {
	v := map[string]string{}
	for i := 0; i+1 < len(fx.flags); i++ {
		v[fx.flags[i]] = fx.flags[i+1]
	}
	switch driver {
	case "sqlite":
		return "file:" + v["--libsqlite3-db"] + "?_pragma=busy_timeout(6000)", "gearman_queue"
	case "mysql":
		return fmt.Sprintf("root@tcp(127.0.0.1:%s)/%s", v["--mysql-port"], v["--mysql-db"]), "gearman_queue"
	}
	return v["--libpq-conninfo"], "queue"
}

func fillSQL(driver string) func(t testing.TB, fx fixture, n int) {
	return func(t testing.TB, fx fixture, n int) {
		dsn, table := dsnOf(driver, fx)
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(gearmandTables[driver]); err != nil {
			t.Fatal(err)
		}
		const per = 500
		for i := 0; i < n; i += per {
			m := min(per, n-i)
			var q strings.Builder
			args := make([]any, 0, 5*m)
			fmt.Fprintf(&q, "INSERT INTO %s (unique_key, function_name, priority, data, when_to_run) VALUES ", table)
			for k := 0; k < m; k++ {
				if k > 0 {
					q.WriteString(",")
				}
				if driver == "pgx" {
					b := 5 * k
					fmt.Fprintf(&q, "($%d,$%d,$%d,$%d,$%d)", b+1, b+2, b+3, b+4, b+5)
				} else {
					q.WriteString("(?,?,?,?,?)")
				}
				r := rateRow(i + k)
				args = append(args, r.Unique, r.Function, r.Priority, r.Data, 0)
			}
			if _, err := db.Exec(q.String(), args...); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func fillRedis(t testing.TB, fx fixture, n int) {
	v := map[string]string{}
	for i := 0; i+1 < len(fx.flags); i++ {
		v[fx.flags[i]] = fx.flags[i+1]
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + v["--redis-port"], Protocol: 2, DisableIdentity: true})
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < n; i += 1000 {
		p := c.Pipeline()
		for k := i; k < min(n, i+1000); k++ {
			r := rateRow(k)
			p.HSet(ctx, v["--redis-prefix"]+"-"+r.Function+"-"+r.Unique, "data", r.Data, "priority", strconv.FormatInt(r.Priority, 10))
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// queued sums the queued jobs of every function in spurd's admin `status`.
func queued(t testing.TB, addr string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("status\n")); err != nil {
		t.Fatal(err)
	}
	total := 0
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		if line == "." {
			return total
		}
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			t.Fatalf("status line %q", line)
		}
		q, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("status line %q", line)
		}
		total += q
	}
	t.Fatalf("status: %v", sc.Err())
	return 0
}
