// Command spurd is the Spur Gearman job server. It takes gearmand's flags, so it can replace
// gearmand in an existing init script, and adds its own (see --help).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/acl"
	"github.com/spur-gearman/spur/engine/connlimit"
	"github.com/spur-gearman/spur/engine/tcpserver"
	"github.com/spur-gearman/spur/engine/tlsserver"
	"github.com/spur-gearman/spur/wal"
	"github.com/spur-gearman/spur/wal/pgstore"
)

// options are the parsed command line.
type options struct {
	port            string
	listen          []string
	threads         int
	jobRetries      int
	workerWakeup    int
	wakeAll         bool // -w 0 given: every sleeping worker per job, as gearmand
	roundRobin      bool
	logFile         string
	logFormat       string
	verbose         string
	pidFile         string
	backlog         int
	keepalive       bool
	keepIdle        int
	keepInterval    int
	keepCount       int
	handlePrefix    string
	nodeName        string
	peers           []string      // --peer: the other nodes' Gearman addresses, in order
	peerTimeout     time.Duration // --peer-timeout: one peer's read in the cluster view
	version         bool
	queueType       string
	exceptions      bool
	ssl             bool
	sslCert         string
	sslKey          string
	sslCA           string
	sslVerifyClient bool
	plainPort       string
	dataDir         string
	postgresDSN     string
	lease           time.Duration
	syncMode        string
	syncInterval    time.Duration
	minFreeDisk     uint64
	shutdownWait    time.Duration
	maxPartialBytes int64
	maxPacketSize   uint32
	httpAddr        string
	httpPort        string // gearmand's HTTP submit interface; "" = off
	protocol        string // gearmand's -r: "http" turns on httpPort (default 8080)
	cpuProfile      string
	resultTTL       time.Duration
	resultMaxBytes  int64
	deadTTL         time.Duration
	deadMax         int
	deadMaxBytes    int64
	functionsFile   string
	aclFile         string
	maxConns        int
	maxConnsPerSrc  int
	readTimeout     time.Duration
}

// ignoredFlags are gearmand options spurd accepts so existing command lines keep working,
// but which do nothing here; using one logs a warning.
var ignoredFlags = []struct {
	long, short string
	takesValue  bool
	why         string
}{
	{"daemon", "d", false, "run spurd under a service manager instead"},
	{"file-descriptors", "f", true, "spurd raises its open-file limit to the hard limit itself"},
	{"hashtable-buckets", "", true, "Go maps size themselves"},
	{"config-file", "", true, "pass flags on the command line"},
	{"syslog", "", false, "use --log-file"},
	{"coredump", "", false, "not applicable"},
	{"user", "u", true, "start spurd as the desired user"},
	{"libsqlite3-db", "", true, "spurd's queue is its own write-ahead log"},
	{"libsqlite3-table", "", true, "spurd's queue is its own write-ahead log"},
	{"store-queue-on-shutdown", "", false, "spurd's queue is its own write-ahead log"},
	{"libmemcached-servers", "", true, "not supported"},
	{"libmemcached-prefix", "", true, "not supported"},
	{"libpq-conninfo", "", true, "not supported"},
	{"libpq-table", "", true, "not supported"},
	{"redis-server", "", true, "not supported"},
	{"redis-port", "", true, "not supported"},
	{"redis-password", "", true, "not supported"},
	{"redis-prefix", "", true, "not supported"},
	{"mysql-host", "", true, "not supported"},
	{"mysql-port", "", true, "not supported"},
	{"mysql-user", "", true, "not supported"},
	{"mysql-password", "", true, "not supported"},
	{"mysql-db", "", true, "not supported"},
	{"mysql-table", "", true, "not supported"},
}

func parseFlags(args []string, stderr io.Writer) (*options, []string, error) {
	o := &options{}
	fs := pflag.NewFlagSet("spurd", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringVarP(&o.port, "port", "p", "4730", "port to listen on (env GEARMAND_PORT when left at the default)")
	fs.StringArrayVarP(&o.listen, "listen", "L", nil, "address to listen on; repeat for several (default: all addresses)")
	fs.IntVarP(&o.threads, "threads", "t", 0, "event loops (0 = one per two CPUs, at least one)")
	fs.IntVarP(&o.jobRetries, "job-retries", "j", 0, "assignments before a job whose worker keeps going away fails (0 = unlimited)")
	fs.IntVarP(&o.workerWakeup, "worker-wakeup", "w", 0, "sleeping workers woken per queued job, as gearmand's -w: N, or 0 = all of them; left out, as many as the ready jobs need")
	fs.BoolVarP(&o.roundRobin, "round-robin", "R", false, "rotate through a worker's functions after each job")
	fs.StringVarP(&o.logFile, "log-file", "l", "stderr", `log destination: a file (reopened on SIGHUP, for logrotate), "stderr" or "none"`)
	fs.StringVar(&o.logFormat, "log-format", "text", `log line format: "text" (key=value) or "json"`)
	fs.StringVar(&o.verbose, "verbose", "ERROR", "log level: FATAL, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG")
	moreVerbose := fs.CountP("v", "v", "raise the log level one step above --verbose per v (gearmand's old -v, -vv ...)")
	fs.StringVarP(&o.pidFile, "pid-file", "P", "", "write the process id to this file")
	fs.IntVarP(&o.backlog, "backlog", "b", 32, "listen backlog (accepted for compatibility; the kernel's somaxconn applies)")
	fs.BoolVar(&o.keepalive, "keepalive", false, "enable TCP keepalive on accepted connections")
	fs.IntVar(&o.keepIdle, "keepalive-idle", -1, "seconds idle before keepalive probes (with --keepalive; -1 = 60)")
	fs.IntVar(&o.keepInterval, "keepalive-interval", -1, "seconds between keepalive probes (with --keepalive)")
	fs.IntVar(&o.keepCount, "keepalive-count", -1, "keepalive probes before the connection is dropped (with --keepalive)")
	fs.StringVar(&o.handlePrefix, "job-handle-prefix", "", `job handle prefix (default "H:<hostname>")`)
	fs.StringVar(&o.nodeName, "node-name", "", `this node's name in a cluster: in the cluster view, the metrics' node label and as the holder of jobs claimed from a shared store; unique per node (default "<hostname>:<port>")`)
	fs.StringSliceVar(&o.peers, "peer", nil, "HOST:PORT of another node of the cluster (its Gearman port, as clients name it), shown beside this one in the cluster view (HTTP API, dashboard, spur --cluster); repeat, or separate with commas")
	fs.DurationVar(&o.peerTimeout, "peer-timeout", time.Second, "how long the cluster view waits for a peer before showing it down")
	fs.BoolVarP(&o.version, "version", "V", false, "print the version and exit")
	fs.StringVarP(&o.queueType, "queue-type", "q", "pebble", `job queue: "pebble" writes background jobs to a log in --data-dir before acknowledging them; "postgres" to the PostgreSQL database of --postgres-dsn, which several nodes may share; "builtin" keeps everything in memory only`)
	fs.BoolVar(&o.exceptions, "exceptions", false, "every connection starts with the exceptions option on")
	fs.BoolVar(&o.ssl, "ssl", false, "the -p port speaks TLS only (binary protocol and text admin alike)")
	fs.StringVar(&o.sslCert, "ssl-certificate", "", "server certificate, PEM (env GEARMAND_SERVER_PEM when not given)")
	fs.StringVar(&o.sslKey, "ssl-key", "", "the certificate's private key, PEM (env GEARMAND_SERVER_KEY when not given)")
	fs.StringVar(&o.sslCA, "ssl-ca-file", "", "CA certificates client certificates are verified against, PEM (env GEARMAND_CA_CERTIFICATE when not given)")
	fs.BoolVar(&o.sslVerifyClient, "ssl-verify-client", false, "refuse TLS clients without a certificate signed by --ssl-ca-file")
	fs.StringVar(&o.plainPort, "plain-port", "", "with --ssl: also serve plaintext on this port, on the same -L addresses")
	fs.StringVar(&o.dataDir, "data-dir", "./data", "directory of the durable queue")
	fs.StringVar(&o.postgresDSN, "postgres-dsn", "", "with -q postgres: the database, postgres://USER@HOST:PORT/DB?sslmode=... or key=value pairs (a password may come from PGPASSWORD or ~/.pgpass rather than the command line); spurd creates and migrates its spur_* tables")
	fs.DurationVar(&o.lease, "lease", 30*time.Second, "with -q postgres: how long a job this node holds stays its own without a renewal (renewed every third of it); after a crash its jobs run elsewhere once it lapses")
	fs.StringVar(&o.syncMode, "sync", "always", "when a background job is acknowledged: always = after fsync; batch = after the write, fsync every --sync-interval; none = after the write, the OS syncs")
	fs.DurationVar(&o.syncInterval, "sync-interval", 100*time.Millisecond, "fsync period with --sync batch (the most a machine crash can lose)")
	fs.Uint64Var(&o.minFreeDisk, "min-free-disk", 64<<20, "bytes kept free in --data-dir: below it new background jobs get ERROR QUEUE_ERROR")
	fs.DurationVar(&o.shutdownWait, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown waits for running jobs")
	fs.Uint32Var(&o.maxPacketSize, "max-packet-size", codec.DefaultMaxPacket, "largest packet body accepted, in bytes")
	fs.Int64Var(&o.maxPartialBytes, "max-partial-bytes", tcpserver.DefaultMaxPartialBytes, "bytes of partly received packets all connections together may hold; past it the connections holding the most are closed")
	fs.StringVar(&o.httpAddr, "http-addr", "", "HOST:PORT of the HTTP server: the JSON API (/api/, bearer tokens from --acl), /metrics (Prometheus), /healthz, /readyz; HTTPS with the -p port's certificate (and client certificates) under --ssl; off when empty")
	fs.StringVarP(&o.protocol, "protocol", "r", "", `gearmand's protocol plugin: "http" serves gearmand's HTTP submit interface on --http-port (default 8080)`)
	fs.StringVar(&o.httpPort, "http-port", "", "port of gearmand's HTTP submit interface (POST /FUNCTION, X-Gearman-* headers), plaintext, on the -L addresses; off when not given")
	fs.DurationVar(&o.resultTTL, "result-ttl", engine.DefaultResultTTL, "how long the outcome of a background job is kept for `show result` (0 keeps none)")
	fs.Int64Var(&o.resultMaxBytes, "result-max-bytes", engine.DefaultResultMaxBytes, "bytes the stored results may take; past it the oldest go")
	fs.DurationVar(&o.deadTTL, "dead-ttl", engine.DefaultDeadTTL, "how long a dead letter (a job that used up its retries) is kept")
	fs.IntVar(&o.deadMax, "dead-max", engine.DefaultDeadMax, "most dead letters kept; past it the oldest go")
	fs.Int64Var(&o.deadMaxBytes, "dead-max-bytes", engine.DefaultDeadMaxBytes, "bytes the dead letters may take in memory; past it the oldest go")
	fs.IntVar(&o.maxConns, "max-connections", 100000, "most connections open at once; past it new ones are closed at once, with a log line (0 = no limit)")
	fs.IntVar(&o.maxConnsPerSrc, "max-connections-per-source", 0, "most connections open at once from one address (0 = no limit)")
	fs.DurationVar(&o.readTimeout, "read-timeout", time.Minute, "a connection whose packet has been incomplete this long is closed (slowloris); idle connections are never closed (0 = never)")
	fs.StringVar(&o.aclFile, "acl", "", "access-control file (format: README, Security): who may submit, work, read status and run which admin commands; everything else is refused; reloaded on SIGHUP")
	fs.StringVar(&o.functionsFile, "functions", "", "file of function settings applied at start: lines `retry FN ATTEMPTS BASE MAX`, `limit FN N`, `pause FN`")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this file")
	ignored := map[string]*string{}
	for _, f := range ignoredFlags {
		v := new(string)
		ignored[f.long] = v
		if f.takesValue {
			fs.StringVarP(v, f.long, f.short, "", "ignored: "+f.why)
		} else {
			fs.BoolP(f.long, f.short, false, "ignored: "+f.why)
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: spurd [flags]\n\nSpur, a Gearman job server (drop-in for gearmand).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var warnings []string
	for _, f := range ignoredFlags {
		if fs.Changed(f.long) {
			warnings = append(warnings, fmt.Sprintf("--%s is ignored: %s", f.long, f.why))
		}
	}
	if *moreVerbose > 0 {
		o.verbose = raiseLevel(o.verbose, *moreVerbose)
	}
	o.wakeAll = fs.Changed("worker-wakeup") && o.workerWakeup == 0 // gearmand's -w 0, asked for
	for _, e := range []struct {
		flag, env string
		v         *string
	}{{"ssl-certificate", "GEARMAND_SERVER_PEM", &o.sslCert}, {"ssl-key", "GEARMAND_SERVER_KEY", &o.sslKey},
		{"ssl-ca-file", "GEARMAND_CA_CERTIFICATE", &o.sslCA}} {
		if !fs.Changed(e.flag) {
			*e.v = os.Getenv(e.env)
		}
	}
	if !fs.Changed("port") {
		if p := os.Getenv("GEARMAND_PORT"); p != "" {
			o.port = p
		}
	}
	return o, warnings, nil
}

// node is --node-name, or by default the host name and the Gearman port.
func (o *options) node() string {
	if o.nodeName != "" {
		return o.nodeName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + ":" + o.port
}

// wakeup is the engine's WorkerWakeup for the -w given, or Spur's default without one.
func (o *options) wakeup() int {
	if o.wakeAll {
		return engine.WakeAll
	}
	return o.workerWakeup
}

// validate rejects settings spurd cannot honour, with a message saying why.
func (o *options) validate() error {
	if _, err := strconv.ParseUint(o.port, 10, 16); err != nil {
		return fmt.Errorf("invalid --port %q", o.port)
	}
	switch o.queueType {
	case "builtin", "pebble":
		if o.postgresDSN != "" {
			return errors.New("--postgres-dsn needs -q postgres")
		}
	case "postgres":
		if o.postgresDSN == "" {
			return errors.New("-q postgres needs --postgres-dsn (the database the nodes share)")
		}
		if o.lease < time.Second {
			return fmt.Errorf("--lease %v: at least 1s", o.lease)
		}
	default:
		return fmt.Errorf("unknown --queue-type %q (pebble, postgres or builtin)", o.queueType)
	}
	if _, err := wal.ParseSyncMode(o.syncMode); err != nil {
		return fmt.Errorf("--sync: %w", err)
	}
	if !o.ssl && (o.sslVerifyClient || o.plainPort != "") {
		return errors.New("--ssl-verify-client and --plain-port need --ssl")
	}
	if o.plainPort != "" {
		if _, err := strconv.ParseUint(o.plainPort, 10, 16); err != nil || o.plainPort == o.port {
			return fmt.Errorf("invalid --plain-port %q (a port other than -p)", o.plainPort)
		}
	}
	switch o.protocol {
	case "":
	case "http":
		if o.httpPort == "" {
			o.httpPort = "8080" // gearmand's default
		}
	default:
		return fmt.Errorf("unknown --protocol %q (http)", o.protocol)
	}
	if o.httpPort != "" {
		if _, err := strconv.ParseUint(o.httpPort, 10, 16); err != nil || o.httpPort == o.port {
			return fmt.Errorf("invalid --http-port %q (a port other than -p)", o.httpPort)
		}
	}
	for _, p := range o.peers {
		host, port, err := net.SplitHostPort(p)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || n == 0 || host == "" {
			return fmt.Errorf("invalid --peer %q (want HOST:PORT, the Gearman port of another node)", p)
		}
	}
	if o.peerTimeout <= 0 {
		return errors.New("--peer-timeout must be positive")
	}
	if o.threads < 0 || o.jobRetries < 0 || o.workerWakeup < 0 {
		return errors.New("--threads, --job-retries and --worker-wakeup must not be negative")
	}
	if o.maxConns < 0 || o.maxConnsPerSrc < 0 || o.readTimeout < 0 {
		return errors.New("--max-connections, --max-connections-per-source and --read-timeout must not be negative")
	}
	if o.resultTTL < 0 || o.resultMaxBytes < 0 || o.deadTTL <= 0 || o.deadMax <= 0 || o.deadMaxBytes <= 0 {
		return errors.New("--result-ttl and --result-max-bytes must not be negative; --dead-ttl, --dead-max and --dead-max-bytes must be positive")
	}
	if o.maxPacketSize < 1024 {
		return errors.New("--max-packet-size must be at least 1024 bytes")
	}
	if o.maxPartialBytes < int64(o.maxPacketSize)+codec.HeaderSize {
		return errors.New("--max-partial-bytes must be at least --max-packet-size (one whole packet must fit)")
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return fmt.Errorf("unknown --log-format %q (text or json)", o.logFormat)
	}
	if _, ok := levels[strings.ToUpper(o.verbose)]; !ok {
		return fmt.Errorf("unknown --verbose level %q", o.verbose)
	}
	return nil
}

// levelNames are gearmand's verbosity names, quietest first.
var levelNames = []string{"FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"}

// raiseLevel returns the level n steps more verbose than name (capped at DEBUG); an unknown
// name is returned unchanged for validate to report.
func raiseLevel(name string, n int) string {
	for i, l := range levelNames {
		if strings.EqualFold(l, name) {
			return levelNames[min(i+n, len(levelNames)-1)]
		}
	}
	return name
}

// levels maps gearmand's verbosity names onto slog levels.
var levels = map[string]slog.Level{
	"FATAL":    slog.LevelError + 4,
	"ALERT":    slog.LevelError + 3,
	"CRITICAL": slog.LevelError + 2,
	"ERROR":    slog.LevelError,
	"WARNING":  slog.LevelWarn,
	"NOTICE":   slog.LevelInfo + 2,
	"INFO":     slog.LevelInfo,
	"DEBUG":    slog.LevelDebug,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	o, warnings, err := parseFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "spurd: %v\n", err)
		return 2
	}
	if o.version {
		fmt.Fprintf(os.Stdout, "spurd %s\n", engine.Version)
		return 0
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "spurd: %v\n", err)
		return 2
	}
	logger, closeLog, err := openLog(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "spurd: %v\n", err)
		return 1
	}
	defer closeLog()
	for _, w := range warnings {
		fmt.Fprintf(stderr, "spurd: warning: %s\n", w) // shown whatever the log level
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "spurd: --cpuprofile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if err := serve(o, logger); err != nil {
		logger.Error("spurd stopped", "error", err)
		fmt.Fprintf(stderr, "spurd: %v\n", err)
		return 1
	}
	return 0
}

func serve(o *options, logger *slog.Logger) (err error) {
	// Catch the signals first: one that arrives while the job log opens or the listeners
	// start must still mean a clean shutdown, not the default abrupt exit.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	raiseFileLimit(logger)
	started := time.Now()
	var keys *tlsserver.Keys
	if o.ssl {
		// Before anything else: bad key material must stop the start, never mean plaintext.
		if keys, err = tlsserver.LoadKeys(tlsserver.Files{Cert: o.sslCert, Key: o.sslKey, CA: o.sslCA,
			VerifyClient: o.sslVerifyClient}); err != nil {
			return err
		}
	}
	var (
		store     *wal.Log
		shared    *pgstore.Store
		recovered = &wal.Recovered{}
		where     = "jobs are kept in memory only"
		dataAt    = o.dataDir // where the data lives, for error messages
	)
	switch o.queueType {
	case "postgres":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		shared, recovered, err = pgstore.Open(ctx, pgstore.Options{DSN: o.postgresDSN, Node: o.node(), Lease: o.lease, Logger: logger})
		cancel()
		if err != nil {
			return err
		}
		dataAt = shared.Where()
		where = fmt.Sprintf("data in PostgreSQL %s (node %s, lease %v), %d jobs of this node, %d schedules, %d dead letters and %d results recovered",
			dataAt, o.node(), o.lease, len(recovered.Jobs), len(recovered.Schedules), len(recovered.Dead), recovered.Results)
		if n := len(recovered.Other); n > 0 {
			logger.Warn("the database holds records of kinds this version does not use; they are kept", "records", n)
		}
	case "pebble":
		mode, _ := wal.ParseSyncMode(o.syncMode)
		store, recovered, err = wal.Open(wal.Options{
			Dir:          o.dataDir,
			Sync:         mode,
			SyncInterval: o.syncInterval,
			MinFreeBytes: o.minFreeDisk,
			Logger:       logger,
		})
		if err != nil {
			return err
		}
		where = fmt.Sprintf("data in %s (sync %s), %d jobs, %d schedules, %d dead letters and %d results recovered",
			o.dataDir, o.syncMode, len(recovered.Jobs), len(recovered.Schedules), len(recovered.Dead), recovered.Results)
		if n := len(recovered.Other); n > 0 {
			logger.Warn("the job log holds records of kinds this version does not use; they are kept", "records", n)
		}
	}
	shutdown := make(chan bool, 1)
	cfg := engine.Config{
		HandlePrefix:   o.handlePrefix,
		NodeName:       o.node(),
		Peers:          o.peers,
		Started:        started,
		JobRetries:     o.jobRetries,
		WorkerWakeup:   o.wakeup(),
		RoundRobin:     o.roundRobin,
		Exceptions:     o.exceptions,
		MaxPacketSize:  o.maxPacketSize,
		ResultTTL:      o.resultTTL,
		ResultMaxBytes: o.resultMaxBytes,
		DeadTTL:        o.deadTTL,
		DeadMax:        o.deadMax,
		DeadMaxBytes:   o.deadMaxBytes,
		Verbose:        strings.ToUpper(o.verbose),
		Logger:         logger,
		OnShutdown: func(graceful bool) {
			select {
			case shutdown <- graceful:
			default:
			}
		},
	}
	if store != nil {
		cfg.Store = store
	}
	if shared != nil {
		cfg.Store = shared
	}
	var rules *acl.Authorizer
	if o.aclFile != "" {
		if rules, err = acl.Open(o.aclFile); err != nil {
			return fmt.Errorf("--acl: %w", err)
		}
		cfg.Authorizer = rules
	}
	stopHUP := onSIGHUP(logger, func() {
		if keys != nil {
			// A bad new file keeps the key material in use: the server goes on as it was.
			if err := keys.Reload(); err != nil {
				logger.Error("SIGHUP: TLS key material not reloaded; the old one stays in use", "error", err)
			} else {
				logger.Warn("SIGHUP: TLS key material reloaded", "subject", keys.Leaf().Subject.String(),
					"expires", keys.Leaf().NotAfter)
			}
		}
		if rules != nil {
			if err := rules.Reload(o.aclFile); err != nil {
				logger.Error("SIGHUP: the access-control file is not reloaded; the old rules stay", "file", o.aclFile, "error", err)
			} else {
				logger.Warn("SIGHUP: access-control rules reloaded", "file", o.aclFile, "sections", rules.Rules().Sections())
			}
		}
	})
	defer stopHUP()
	e := engine.New(cfg)
	e.RestoreFunctions(recovered.Functions)
	e.Restore(recovered.Jobs)
	e.RestoreDead(recovered.Dead)
	if err := e.RestoreSchedules(recovered.Schedules); err != nil {
		return fmt.Errorf("recovering the schedules in %s: %w", dataAt, err)
	}
	// The recovered records are copied into the queues: hand their memory back now rather
	// than keep the peak of the replay as the server's footprint.
	recovered = nil
	debug.FreeOSMemory()
	if o.functionsFile != "" {
		if err := applyFunctionsFile(e, o.functionsFile); err != nil {
			return err
		}
	}
	upkeep, stopUpkeep := context.WithCancel(context.Background())
	upkeepDone := make(chan struct{})
	go func() { defer close(upkeepDone); e.RunUpkeep(upkeep, time.Second) }()
	defer func() { stopUpkeep(); <-upkeepDone }()
	var (
		compacted compactor    // an untyped nil without a store
		closer    func() error // closes the store, if any
	)
	if store != nil {
		compacted = store
		closer = func() error {
			if err := store.Close(); err != nil {
				return fmt.Errorf("closing the job log in %s: %w", o.dataDir, err)
			}
			return nil
		}
	}
	if shared != nil {
		closer = shared.Close
	}
	reclaim := startReclaimer(e, compacted, 2*time.Second, logger)
	// On every way out: the reclaimer first, since it may be compacting the job log.
	defer func() {
		switch cerr := stopStorage(reclaim, closer); {
		case err == nil:
			err = cerr
		case cerr != nil:
			logger.Error("spurd stopped", "error", cerr) // err is returned; this one is logged
		}
	}()
	// Stopped before the store is closed (defers run last first).
	sharedCtx, stopShared := context.WithCancel(context.Background())
	sharedDone := make(chan struct{})
	go func() { defer close(sharedDone); e.RunShared(sharedCtx) }() // returns at once without a shared store
	defer func() { stopShared(); <-sharedDone }()
	listen := o.listen
	if len(listen) == 0 {
		listen = []string{""}
	}
	addrsOn := func(port string) []string {
		addrs := make([]string, len(listen))
		for i, host := range listen {
			addrs[i] = net.JoinHostPort(host, port)
		}
		return addrs
	}
	addrs := addrsOn(o.port)
	limiter := connlimit.New(o.maxConns, o.maxConnsPerSrc, logger)
	var (
		tlsSrv  *tlsserver.Server
		srv     *tcpserver.Server // the plaintext listener: on -p, or on --plain-port with --ssl
		runErr  = make(chan error, 1)
		plainOn []string
	)
	if o.ssl {
		tlsSrv = tlsserver.New(func(w tcpserver.Waker, fd int, remote net.Addr, names []string) tcpserver.Session {
			id := engine.IdentityOf(remote)
			if len(names) > 0 {
				id.Name, id.Names = names[0], names
			}
			return e.NewSessionAs(w, fd, id)
		}, tlsserver.Config{Addrs: addrs, Keys: keys, MaxPacketSize: o.maxPacketSize,
			MaxPartialBytes: o.maxPartialBytes, Limiter: limiter, ReadTimeout: o.readTimeout, Logger: logger})
		if err := tlsSrv.Listen(); err != nil {
			return fmt.Errorf("cannot listen on %s: %w", strings.Join(addrs, ", "), err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = tlsSrv.Stop(ctx)
		}()
		if o.plainPort != "" {
			plainOn = addrsOn(o.plainPort)
		}
	} else {
		plainOn = addrs
	}
	if plainOn != nil {
		lc := tcpserver.Config{Addrs: plainOn, Loops: o.threads, MaxPacketSize: o.maxPacketSize,
			MaxPartialBytes: o.maxPartialBytes, Logger: logger, ReadTimeout: o.readTimeout, Limiter: limiter}
		if o.keepalive {
			lc.KeepAlive = secondsOr(o.keepIdle, 60)
			lc.KeepIntvl = secondsOr(o.keepInterval, 0)
			lc.KeepCount = max(o.keepCount, 0)
		}
		srv = tcpserver.New(func(w tcpserver.Waker, fd int, remote net.Addr) tcpserver.Session {
			return e.NewSession(w, fd, remote)
		}, lc)
		go func() { runErr <- srv.Run() }()
		select {
		case err := <-runErr:
			return fmt.Errorf("cannot listen on %s: %w", strings.Join(plainOn, ", "), err)
		case <-srv.Ready():
		}
	}
	// stopPlain stops the plaintext listener, if any.
	stopPlain := func(ctx context.Context) error {
		if srv == nil {
			return nil
		}
		if err := srv.Stop(ctx); err != nil {
			return err
		}
		<-runErr
		return nil
	}
	if o.pidFile != "" {
		if err := os.WriteFile(o.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			_ = stopPlain(context.Background())
			return fmt.Errorf("cannot write pid file: %w", err)
		}
		defer os.Remove(o.pidFile)
	}
	// The one line saying where spurd listens and where its data lives, whatever the level.
	listening := strings.Join(addrs, ", ")
	if o.ssl {
		listening = "TLS " + listening
		if plainOn != nil {
			listening += ", plaintext " + strings.Join(plainOn, ", ")
		}
	}
	if o.httpAddr != "" || o.httpPort != "" {
		hc := httpConfig{addr: o.httpAddr, started: started, keys: keys,
			cluster: clusterView(o, keys, addrs[0])}
		if o.httpPort != "" {
			hc.gearmanAddrs = addrsOn(o.httpPort)
		}
		if rules != nil {
			hc.tokens = rules
		}
		if store != nil { // a nil *wal.Log would be a non-nil metrics.Log
			hc.jobLog = store
		}
		if shared != nil {
			hc.jobLog = shared
		}
		stopHTTP, err := serveHTTP(hc, e, logger)
		if err != nil {
			_ = stopPlain(context.Background())
			return err
		}
		defer stopHTTP()
		if o.httpAddr != "" {
			if keys != nil {
				listening += ", HTTPS " + o.httpAddr
			} else {
				listening += ", HTTP " + o.httpAddr
			}
		}
		if o.httpPort != "" {
			listening += ", gearmand HTTP " + strings.Join(hc.gearmanAddrs, ", ")
		}
	}
	fmt.Fprintf(os.Stderr, "spurd %s listening on %s; queue %s: %s\n",
		engine.Version, listening, o.queueType, where)
	logger.Info("listening", "addrs", addrs, "tls", o.ssl, "plain", plainOn, "queue", o.queueType, "pid", os.Getpid(),
		"node", cfg.NodeName, "peers", o.peers)

	graceful := true
wait:
	for {
		select {
		case sig := <-sigs:
			logger.Warn("shutting down", "signal", sig.String())
			break wait
		case graceful = <-shutdown:
			logger.Warn("shutting down", "admin", true, "graceful", graceful)
			break wait
		case err := <-runErr:
			return err
		}
	}
	if graceful {
		// Stop taking and handing out jobs, and give running ones time to finish; what is
		// still queued stays in the job log for the next start.
		e.Drain()
		deadline := time.Now().Add(o.shutdownWait)
		for e.Running() > 0 && time.Now().Before(deadline) {
			select {
			case <-sigs:
				deadline = time.Now() // a second signal: stop waiting
			case <-time.After(20 * time.Millisecond):
			}
		}
		if n := e.Running(); n > 0 {
			logger.Warn("shutdown timeout: jobs still running are requeued", "jobs", n)
		}
		// With a shared store, what this node holds goes back to the other nodes now rather
		// than when its lease lapses.
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := e.ReleaseHeld(rctx); err != nil {
			logger.Error("shutdown: jobs not given back to the shared store", "error", err)
		}
		rcancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if tlsSrv != nil {
		if err := tlsSrv.Stop(ctx); err != nil {
			return fmt.Errorf("stopping the TLS listener: %w", err)
		}
	}
	if err := stopPlain(ctx); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	return nil
}

// stopStorage stops the reclaimer and waits for it, then closes the job log (closeStore, nil
// without one): a compaction under way must never meet a closed database. The error is
// closeStore's.
func stopStorage(r *reclaimer, closeStore func() error) error {
	r.Stop()
	if closeStore == nil {
		return nil
	}
	return closeStore()
}

func secondsOr(v, def int) time.Duration {
	if v < 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

// raiseFileLimit lifts the soft open-file limit to the hard one, so tens of thousands of idle
// connections fit (gearmand's -f does this by hand).
func raiseFileLimit(logger *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= lim.Max {
		return
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logger.Warn("cannot raise the open-file limit", "error", err)
	}
}
