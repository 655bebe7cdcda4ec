package importer

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// The stores, each started once for the whole test binary (atExit stops them), on a loopback
// port, in a directory of its own, as the user its Debian package runs it as when the tests
// run as root (PostgreSQL refuses root; mariadbd needs --user).

type once struct {
	sync.Once
	port int
	err  error
	p    *proc
}

// startOnce starts a store with f the first time a test needs it. f fails that test as
// usual; the tests after it fail too, with o.err, rather than finding no store.
func startOnce(t testing.TB, o *once, f func(t testing.TB) (int, *proc)) int {
	t.Helper()
	o.Do(func() {
		o.err = fmt.Errorf("the store failed to start in %s (see there)", t.Name())
		o.port, o.p = f(t)
		o.err = nil
		p := o.p
		atExit(func() { p.stop(nil) })
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.port
}

var mariadbOnce, postgresOnce, redisOnce once

func storeDir(t testing.TB, name, owner string) string {
	dir := filepath.Join(shared, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	chownTree(t, dir, owner)
	return dir
}

func mariadbPort(t testing.TB) int {
	return startOnce(t, &mariadbOnce, func(t testing.TB) (int, *proc) {
		dir := storeDir(t, "mariadb", "mysql")
		inst := start(t, "", "mariadb-install-db", "--no-defaults", "--datadir="+dir+"/data", "--user=mysql",
			"--auth-root-authentication-method=normal", "--skip-test-db")
		<-inst.done
		if inst.err != nil {
			t.Fatalf("mariadb-install-db: %v\n%s", inst.err, inst.log())
		}
		port := freePort(t)
		// No grant tables: the test's own server, on loopback, for the test's clients only.
		p := start(t, "", "/usr/sbin/mariadbd", "--no-defaults", "--datadir="+dir+"/data", "--port="+strconv.Itoa(port),
			"--bind-address=127.0.0.1", "--socket="+dir+"/sock", "--pid-file="+dir+"/pid", "--user=mysql",
			"--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=64M")
		waitPort(t, fmt.Sprintf("127.0.0.1:%d", port), p)
		return port, p
	})
}

func postgresPort(t testing.TB) int {
	return startOnce(t, &postgresOnce, func(t testing.TB) (int, *proc) {
		bin := postgresBin(t)
		dir := storeDir(t, "postgres", "postgres")
		inst := start(t, "postgres", bin+"initdb", "-D", dir+"/data", "-U", "postgres", "--auth=trust", "-E", "UTF8")
		<-inst.done
		if inst.err != nil {
			t.Fatalf("initdb: %v\n%s", inst.err, inst.log())
		}
		port := freePort(t)
		p := start(t, "postgres", bin+"postgres", "-D", dir+"/data", "-p", strconv.Itoa(port), "-k", dir,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")
		waitPort(t, fmt.Sprintf("127.0.0.1:%d", port), p)
		return port, p
	})
}

// postgresBin is the newest installed PostgreSQL's bin directory (Debian keeps it off PATH).
func postgresBin(t testing.TB) string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		t.Fatal("PostgreSQL is needed by this test (the postgresql package): no /usr/lib/postgresql/*/bin/postgres")
	}
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) < pgVersion(dirs[j]) })
	return filepath.Dir(dirs[len(dirs)-1]) + "/"
}

func pgVersion(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

func redisPort(t testing.TB) int {
	return startOnce(t, &redisOnce, func(t testing.TB) (int, *proc) {
		dir := storeDir(t, "redis", "redis")
		port := freePort(t)
		p := start(t, "redis", "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no")
		waitPort(t, fmt.Sprintf("127.0.0.1:%d", port), p)
		return port, p
	})
}

var dbSeq struct {
	sync.Mutex
	n int
}

func nextDBName() string {
	dbSeq.Lock()
	defer dbSeq.Unlock()
	dbSeq.n++
	return fmt.Sprintf("gearman%d", dbSeq.n)
}

// fixture is one store as a test uses it: the queue flags gearmand gets (and the operator
// pastes), whether it keeps run-at times, and how many jobs it holds.
type fixture struct {
	flags []string
	epoch bool
	count func(t testing.TB) int
}

func sqliteFixture(t testing.TB) fixture {
	db := filepath.Join(t.TempDir(), "gearman queue.db")
	return fixture{
		flags: []string{"-q", "libsqlite3", "--libsqlite3-db", db},
		epoch: true,
		count: func(t testing.TB) int {
			return sqlCount(t, "sqlite", "file:"+db+"?mode=ro", "SELECT COUNT(*) FROM gearman_queue")
		},
	}
}

func mysqlFixture(t testing.TB) fixture {
	port := mariadbPort(t)
	name := nextDBName()
	root := mysql.NewConfig()
	root.User, root.Net, root.Addr = "root", "tcp", fmt.Sprintf("127.0.0.1:%d", port)
	sqlExec(t, "mysql", root.FormatDSN(), "CREATE DATABASE "+name)
	root.DBName = name
	return fixture{
		flags: []string{"-q", "mysql", "--mysql-host", "127.0.0.1", "--mysql-port", strconv.Itoa(port),
			"--mysql-user", "root", "--mysql-db", name},
		epoch: true,
		count: func(t testing.TB) int {
			return sqlCount(t, "mysql", root.FormatDSN(), "SELECT COUNT(*) FROM gearman_queue")
		},
	}
}

func postgresFixture(t testing.TB) fixture {
	port := postgresPort(t)
	name := nextDBName()
	base := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres sslmode=disable", port)
	sqlExec(t, "pgx", base+" dbname=postgres", "CREATE DATABASE "+name)
	conninfo := base + " dbname=" + name
	return fixture{
		flags: []string{"-q", "Postgres", "--libpq-conninfo", conninfo},
		epoch: true,
		count: func(t testing.TB) int {
			return sqlCount(t, "pgx", conninfo, "SELECT COUNT(*) FROM queue")
		},
	}
}

func redisFixture(t testing.TB) fixture {
	port := redisPort(t)
	prefix := nextDBName() // one key space per test
	return fixture{
		// gearmand's redis store refuses epoch jobs (it keeps no run-at time).
		flags: []string{"-q", "redis", "--redis-server", "127.0.0.1", "--redis-port", strconv.Itoa(port), "--redis-prefix", prefix},
		count: func(t testing.TB) int {
			c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Protocol: 2, DisableIdentity: true})
			defer c.Close()
			keys, err := c.Keys(context.Background(), prefix+"-*").Result()
			if err != nil {
				t.Fatal(err)
			}
			return len(keys)
		},
	}
}

func sqlExec(t testing.TB, driver, dsn string, q ...string) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range q {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func sqlCount(t testing.TB, driver, dsn, q string) int {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// moveQueue is the end-to-end test of one store: a real gearmand queues jobs into it and is
// stopped; spur import moves them into a running spurd (--to), then, with a second queue,
// into a stopped spurd's data dir; workers then receive every job exactly once, and a second
// import finds nothing.
func moveQueue(t *testing.T, fx fixture) {
	for _, mode := range []string{"to", "data-dir"} {
		t.Run(mode, func(t *testing.T) {
			js := testJobs(mode, fx.epoch)
			gport, g := startGearmand(t, fx.flags)
			queueIntoGearmand(t, gport, js)
			// The operator's pasted gearmand command line, other flags included.
			pasted := append([]string{"-p", strconv.Itoa(gport), "-L", "127.0.0.1", "-t", "1", "--verbose", "WARNING", "-R"}, fx.flags...)

			rep, err := importRun(t, append(pasted, "--to", "127.0.0.1:1")...)
			if err == nil || rep.Imported != 0 {
				t.Fatalf("import while gearmand runs: err %v, imported %d; want a refusal", err, rep.Imported)
			}
			g.stop(t)
			if n := fx.count(t); n != len(js) {
				t.Fatalf("gearmand left %d rows, want %d", n, len(js))
			}

			var addr, dir string
			target := []string{"--to", ""}
			if mode == "to" {
				addr, _ = startSpurd(t, t.TempDir())
				target[1] = addr
			} else {
				dir = filepath.Join(t.TempDir(), "data")
				target = []string{"--data-dir", dir}
			}
			rep, err = importRun(t, append(append(pasted, target...), "--dry-run")...)
			if err != nil || rep.Imported != len(js) || fx.count(t) != len(js) {
				t.Fatalf("dry run: err %v, would import %d of %d, source now %d", err, rep.Imported, len(js), fx.count(t))
			}
			if len(rep.Notes) == 0 {
				t.Errorf("no note about the ignored gearmand flags: %+v", rep)
			}

			start := time.Now()
			rep, err = importRun(t, append(pasted, target...)...)
			if err != nil {
				t.Fatalf("import: %v (%+v)", err, rep)
			}
			if rep.Imported != len(js) || rep.Skipped != 0 || rep.Deleted != len(js) || rep.Rows != len(js) {
				t.Fatalf("import: %+v, want %d imported and deleted", rep, len(js))
			}
			t.Logf("imported %d jobs in %v", rep.Imported, time.Since(start))
			if n := fx.count(t); n != 0 {
				t.Fatalf("the source still holds %d rows after the move", n)
			}
			rep, err = importRun(t, append(pasted, target...)...)
			if err != nil || rep.Imported != 0 || rep.Rows != 0 {
				t.Fatalf("second import: err %v, %+v; want nothing", err, rep)
			}
			if mode == "data-dir" {
				addr, _ = startSpurd(t, dir)
			}
			wait := 3 * time.Second // the scheduled job's
			if !fx.epoch {
				wait = 0
			}
			if mode == "to" {
				// libgearman's own worker (the gearman tool) receives them: every one, once.
				receiveWithGearmanTool(t, addr, js)
				return
			}
			got := collect(t, addr, functionsOf(js), len(js), 300*time.Millisecond+wait, 30*time.Second)
			checkReceived(t, js, got)
		})
	}
}

func TestImportSQLite(t *testing.T)   { moveQueue(t, sqliteFixture(t)) }
func TestImportMySQL(t *testing.T)    { moveQueue(t, mysqlFixture(t)) }
func TestImportPostgres(t *testing.T) { moveQueue(t, postgresFixture(t)) }
func TestImportRedis(t *testing.T)    { moveQueue(t, redisFixture(t)) }

// TestImportDeletesRowsWithNullKeys: a row whose unique_key is NULL (written by hand; gearmand
// writes "") is imported with an empty unique and deleted, not left to be imported again.
func TestImportDeletesRowsWithNullKeys(t *testing.T) {
	for _, c := range []struct {
		name   string
		fx     func(t testing.TB) fixture
		driver string
	}{{"mysql", mysqlFixture, "mysql"}, {"postgres", postgresFixture, "pgx"}} {
		t.Run(c.name, func(t *testing.T) {
			fx := c.fx(t)
			dsn, table := dsnOf(c.driver, fx)
			sqlExec(t, c.driver, dsn, gearmandTables[c.driver],
				"INSERT INTO "+table+" (unique_key, function_name, priority, data, when_to_run) VALUES (NULL, 'f', 1, 'x', NULL)",
				"INSERT INTO "+table+" (unique_key, function_name, priority, data, when_to_run) VALUES ('u', 'f', NULL, 'y', 0)")
			rep, err := importRun(t, append(append([]string{"-p", "1"}, fx.flags...), "--data-dir", filepath.Join(t.TempDir(), "d"))...)
			if err != nil || rep.Imported != 2 || rep.Deleted != 2 || fx.count(t) != 0 {
				t.Fatalf("err %v, %+v, source %d", err, rep, fx.count(t))
			}
			if f := rep.Functions; len(f) != 1 || f[0].Normal != 1 || f[0].High != 1 {
				t.Fatalf("a NULL priority is read as gearmand reads it (0, high): %+v", f)
			}
		})
	}
}

// receiveWithGearmanTool runs libgearman's worker, `gearman -w`, for the jobs' functions until
// it has done len(js) jobs, each written by a shell into a file of its own, and checks that
// the files hold exactly the jobs' data, each once.
func receiveWithGearmanTool(t *testing.T, addr string, js []job) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	args := []string{"-h", host, "-p", port, "-w", "-c", strconv.Itoa(len(js))}
	for _, fn := range functionsOf(js) {
		args = append(args, "-f", fn)
	}
	args = append(args, "--", "sh", "-c", `cat > "$(mktemp -p `+dir+`)"`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "gearman", args...).CombinedOutput(); err != nil {
		t.Fatalf("gearman -w: %v: %s", err, out)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	for _, j := range js {
		want = append(want, j.data)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("gearman -w ran %d jobs with data %q, want %q", len(got), got, want)
	}
}
