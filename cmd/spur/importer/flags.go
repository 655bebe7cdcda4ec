package importer

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// queueFlags are gearmand's queue options (gearmand 1.1.20 --help), under gearmand's names,
// so that an operator can paste the gearmand command line that used the queue.
type queueFlags struct {
	queueType string

	sqliteDB, sqliteTable string

	mysqlHost, mysqlUser, mysqlPassword, mysqlDB, mysqlTable string
	mysqlPort                                                int

	pqConninfo, pqTable string

	redisServer, redisPort, redisPassword, redisPrefix string

	memcachedServers, memcachedPrefix string

	// What the probe for a still-running gearmand needs (see running.go).
	port   string
	listen []string
}

func (q *queueFlags) add(fs *pflag.FlagSet) {
	fs.StringVarP(&q.queueType, "queue-type", "q", "", "gearmand's queue store: libsqlite3, mysql, postgres (or libpq), redis")
	fs.StringVar(&q.sqliteDB, "libsqlite3-db", "", "SQLite database file")
	fs.StringVar(&q.sqliteTable, "libsqlite3-table", "gearman_queue", "SQLite table")
	fs.StringVar(&q.mysqlHost, "mysql-host", "localhost", "MySQL host (localhost: its Unix socket, as libmysqlclient)")
	fs.IntVar(&q.mysqlPort, "mysql-port", 3306, "MySQL port")
	fs.StringVar(&q.mysqlUser, "mysql-user", "", "MySQL user")
	fs.StringVar(&q.mysqlPassword, "mysql-password", "", "MySQL password")
	fs.StringVar(&q.mysqlDB, "mysql-db", "", "MySQL database")
	fs.StringVar(&q.mysqlTable, "mysql-table", "gearman_queue", "MySQL table")
	fs.StringVar(&q.pqConninfo, "libpq-conninfo", "", "PostgreSQL connection string (libpq keywords or URL)")
	fs.StringVar(&q.pqTable, "libpq-table", "queue", "PostgreSQL table")
	fs.StringVar(&q.redisServer, "redis-server", "", "redis host (default 127.0.0.1)")
	fs.StringVar(&q.redisPort, "redis-port", "", "redis port (default 6379)")
	fs.StringVar(&q.redisPassword, "redis-password", "", "redis password")
	fs.StringVar(&q.redisPrefix, "redis-prefix", "_gear_", "prefix of gearmand's redis keys")
	fs.StringVar(&q.memcachedServers, "libmemcached-servers", "", "memcached servers (not importable: see --help)")
	fs.StringVar(&q.memcachedPrefix, "libmemcached-prefix", "gear_", "prefix of gearmand's memcached keys")
	fs.StringVarP(&q.port, "port", "p", "4730", "gearmand's port: the import refuses to run while something listens there (but --to)")
	fs.StringSliceVarP(&q.listen, "listen", "L", nil, "gearmand's listen address, for the same check")
}

// store is the normalised queue type: gearmand compares -q with its plugins' lower-cased
// names (libsqlite3, mysql, postgres, redis, libmemcached, builtin); "libpq" is accepted for
// postgres since its options are named so.
func (q *queueFlags) store() string {
	t := strings.ToLower(q.queueType)
	if t == "libpq" {
		return "postgres"
	}
	return t
}

// identity names the queue q points at, so that two command lines can be compared; cwd
// resolves a relative SQLite path. "" when q names no importable store.
func (q *queueFlags) identity(cwd string) string {
	switch q.store() {
	case "libsqlite3":
		p := q.sqliteDB
		if p == "" {
			return ""
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return "libsqlite3\x00" + p + "\x00" + q.sqliteTable
	case "mysql":
		return fmt.Sprintf("mysql\x00%s\x00%d\x00%s\x00%s", q.mysqlHost, q.mysqlPort, q.mysqlDB, q.mysqlTable)
	case "postgres":
		return "postgres\x00" + q.pqConninfo + "\x00" + q.pqTable
	case "redis":
		return "redis\x00" + q.redisServer + "\x00" + q.redisPort + "\x00" + q.redisPrefix
	}
	return ""
}

// ignoredFlag is one of gearmand's options that does not concern the queue: accepted, so a
// pasted command line works, and named in a note.
type ignoredFlag struct {
	name, short string
	value       bool // takes a value
}

var gearmandFlags = []ignoredFlag{
	{"backlog", "b", true}, {"daemon", "d", false}, {"exceptions", "", false},
	{"file-descriptors", "f", true}, {"job-retries", "j", true},
	{"hashtable-buckets", "", true}, {"keepalive", "", false}, {"keepalive-idle", "", true},
	{"keepalive-interval", "", true}, {"keepalive-count", "", true}, {"log-file", "l", true},
	{"pid-file", "P", true}, {"protocol", "r", true}, {"round-robin", "R", false},
	{"syslog", "", false}, {"coredump", "", false}, {"threads", "t", true}, {"user", "u", true},
	{"verbose", "", true}, {"version", "V", false}, {"worker-wakeup", "w", true},
	{"http-port", "", true}, {"ssl", "", false}, {"ssl-ca-file", "", true},
	{"ssl-certificate", "", true}, {"ssl-key", "", true}, {"store-queue-on-shutdown", "", false},
}

// addIgnored declares gearmandFlags on fs, hidden from --help.
func addIgnored(fs *pflag.FlagSet) {
	for _, f := range gearmandFlags {
		if f.value {
			fs.StringP(f.name, f.short, "", "")
		} else {
			fs.BoolP(f.name, f.short, false, "")
		}
		_ = fs.MarkHidden(f.name)
	}
	// gearmand's old -v, repeated for more detail.
	fs.CountP("v", "v", "")
	_ = fs.MarkHidden("v")
}

// parseGearmand reads another process's gearmand command line (argv without argv[0]) for its
// queue options, tolerating anything else.
func parseGearmand(args []string) *queueFlags {
	fs := pflag.NewFlagSet("gearmand", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	q := &queueFlags{}
	q.add(fs)
	addIgnored(fs)
	fs.StringP("job-handle-prefix", "", "", "")
	fs.String("config-file", "", "")
	_ = fs.Parse(args)
	return q
}
