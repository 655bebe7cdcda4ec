package importer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spur-gearman/spur/codec"
)

// options are the parsed command line.
type options struct {
	q            queueFlags
	to           string
	dataDir      string
	handlePrefix string
	keep         bool
	dryRun       bool
	json         bool
	force        bool
	batch        int
	timeout      time.Duration
	maxPacket    int
	configFile   string
}

// Command returns `spur import`.
func Command() *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "import -q STORE [gearmand's queue flags] (--to HOST:PORT | --data-dir DIR)",
		Short: "Move a gearmand's persisted queue into Spur: nothing lost, nothing run twice",
		Long: `Moves the jobs a stopped gearmand 1.1 left in its persistent queue into Spur, either into a
running spurd (--to HOST:PORT, over the Gearman protocol) or into a stopped spurd's data dir
(--data-dir DIR). Paste gearmand's command line: its queue flags are read under their own
names and its other flags are accepted and ignored.

Each job keeps its function, unique, priority, data and run-at time. A row is deleted from
the source only once the target acknowledged it (spurd's JOB_CREATED, sent once the job is
durable; or the data dir's fsynced commit), so a gearmand restarted on the old store does not
run it again and a second import finds nothing to import. --keep leaves the source as it was.

Stores: libsqlite3, mysql, postgres (alias libpq), redis. libmemcached is refused: memcached
cannot list its keys completely (gearmand's own replay uses "stats cachedump", which stops at
2 MB of keys per slab class), so an import could not promise that nothing is lost.

Rows that cannot be imported (bad priority, a function name or unique too long, ...) stay in
the source and are listed; the command then exits non-zero, as on any error.`,
		Example: `  spur import -q libsqlite3 --libsqlite3-db /var/lib/gearman/queue.db --to 127.0.0.1:4730
  spur import -q mysql --mysql-host db1 --mysql-user gearman --mysql-password S --mysql-db gearman --data-dir /var/lib/spur
  spur import -q libpq --libpq-conninfo 'host=db1 dbname=gearman user=gearman' --to 127.0.0.1:4730
  spur import -q redis --redis-server 127.0.0.1 --redis-port 6379 --to 127.0.0.1:4730 --dry-run`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, o, cmd)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	o.q.add(fs)
	fs.StringVar(&o.to, "to", "", "a running spurd to submit the jobs to, HOST:PORT")
	fs.StringVar(&o.dataDir, "data-dir", "", "a stopped spurd's data dir to write the jobs into")
	fs.StringVar(&o.handlePrefix, "job-handle-prefix", "", `with --data-dir: the handle prefix spurd runs with (default "H:<hostname>")`)
	fs.BoolVar(&o.keep, "keep", false, "leave the source untouched (a second run then relies on the jobs' uniques: see the README)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "read the source and report what would be imported; write nothing")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.BoolVar(&o.force, "force", false, "skip the checks that no gearmand still uses the store")
	fs.IntVar(&o.batch, "batch", 1000, "jobs per acknowledged batch")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "longest wait for one batch's acknowledgements")
	fs.IntVar(&o.maxPacket, "max-packet-size", codec.DefaultMaxPacket, "with --to: spurd's --max-packet-size; larger jobs are left in the source")
	fs.StringVar(&o.configFile, "config-file", "", "gearmand's config file: not read (paste its options instead)")
	_ = fs.MarkHidden("config-file")
	addIgnored(fs)
	return cmd
}

// notes names the gearmand flags given that the import does not use.
func notes(cmd *cobra.Command) []string {
	var ignored []string
	for _, f := range gearmandFlags {
		if cmd.Flags().Changed(f.name) {
			ignored = append(ignored, "--"+f.name)
		}
	}
	if cmd.Flags().Changed("v") {
		ignored = append(ignored, "-v")
	}
	if len(ignored) == 0 {
		return nil
	}
	return []string{"ignored gearmand flags that do not concern the queue: " + strings.Join(ignored, " ")}
}

func openSource(ctx context.Context, q *queueFlags) (Source, error) {
	switch q.store() {
	case "libsqlite3":
		return openSQLite(ctx, q.sqliteDB, q.sqliteTable)
	case "mysql":
		return openMySQL(ctx, mysqlConfig{host: q.mysqlHost, port: q.mysqlPort, user: q.mysqlUser,
			password: q.mysqlPassword, db: q.mysqlDB, table: q.mysqlTable})
	case "postgres":
		return openPostgres(ctx, q.pqConninfo, q.pqTable)
	case "redis":
		return openRedis(ctx, redisConfig{server: q.redisServer, port: q.redisPort, password: q.redisPassword, prefix: q.redisPrefix})
	case "libmemcached":
		return nil, errors.New("-q libmemcached cannot be imported: memcached has no complete way to list its keys " +
			"(gearmand's replay uses \"stats cachedump\", which returns at most 2 MB of keys per slab class), and it " +
			"may have evicted jobs already, so nothing could promise the whole queue was moved; " +
			"drain it instead: start spurd beside gearmand, point the clients at spurd and let gearmand's workers finish")
	case "":
		return nil, errors.New("-q is required: the queue type gearmand ran with (libsqlite3, mysql, postgres, redis)")
	case "builtin":
		return nil, errors.New("-q builtin keeps no queue on disk: there is nothing to import")
	}
	return nil, fmt.Errorf("-q %s: not a gearmand queue type spur import reads (libsqlite3, mysql, postgres, redis)", q.queueType)
}

// target is where the rows go.
type target interface {
	Describe() string
	// Import writes rows and tells, per row, whether it was imported, already there or
	// refused. An error means none of the batch is known to be in the target.
	Import(ctx context.Context, rows []Row) ([]outcome, error)
	Close() error
}

type outcomeKind uint8

const (
	imported outcomeKind = iota
	already              // the target holds it from an earlier run
	refused              // left in the source; reason says why
)

type outcome struct {
	kind   outcomeKind
	reason string
}

func run(ctx context.Context, o *options, cmd *cobra.Command) error {
	rep := newReport()
	rep.Notes = notes(cmd)
	rep.DryRun, rep.Keep = o.dryRun, o.keep
	err := o.move(ctx, rep)
	if err != nil {
		rep.Error = err.Error()
	}
	out := cmd.OutOrStdout()
	if o.json {
		rep.writeJSON(out)
	} else {
		rep.writeText(out)
	}
	if err != nil {
		return Failed{err}
	}
	if rep.Skipped > 0 {
		return Failed{fmt.Errorf("%d rows were not imported and stay in the source (reasons above)", rep.Skipped)}
	}
	return nil
}

// Failed is why an import did not move everything, after its report was printed: the spur
// CLI exits 1 with it (a command line cobra refused is a usage error instead).
type Failed struct{ Err error }

func (f Failed) Error() string { return f.Err.Error() }
func (f Failed) Unwrap() error { return f.Err }

func (o *options) move(ctx context.Context, rep *report) (retErr error) {
	start := time.Now()
	defer func() { rep.finish(time.Since(start)) }()
	if o.configFile != "" {
		return errors.New("--config-file: spur import does not read gearmand's config file; paste its queue options on the command line")
	}
	switch {
	case o.to == "" && o.dataDir == "":
		return errors.New("say where the jobs go: --to HOST:PORT (a running spurd) or --data-dir DIR (a stopped spurd's)")
	case o.to != "" && o.dataDir != "":
		return errors.New("--to and --data-dir are exclusive: give one target")
	case o.batch < 1:
		return errors.New("--batch must be at least 1")
	}
	if !o.force {
		if err := checkStopped(&o.q, o.to); err != nil {
			return err
		}
	}
	src, err := openSource(ctx, &o.q)
	if err != nil {
		return err
	}
	defer src.Close()
	rep.Source = src.Describe()
	rows, err := src.Rows(ctx)
	if err != nil {
		return err
	}
	rep.Rows = len(rows)

	// Rows the target cannot take stay in the source, each named.
	toServer := o.to != ""
	ok := rows[:0:0]
	for i := range rows {
		if why := rows[i].check(toServer, o.maxPacket); why != "" {
			rep.skip(&rows[i], why)
			continue
		}
		ok = append(ok, rows[i])
	}
	if o.dryRun {
		rep.Target = o.to + o.dataDir
		for i := range ok {
			rep.count(&ok[i], imported)
		}
		return nil
	}
	if len(ok) == 0 {
		rep.Target = o.to + o.dataDir
		return nil
	}
	var tg target
	if toServer {
		tg, err = dialServer(ctx, o.to, o.timeout)
	} else {
		tg, err = openDir(o.dataDir, o.handlePrefix)
	}
	if err != nil {
		return err
	}
	rep.Target = tg.Describe()
	defer func() {
		if err := tg.Close(); err != nil && retErr == nil {
			retErr = fmt.Errorf("%s: %w", tg.Describe(), err)
		}
	}()
	done := make([]Row, 0, o.batch)
	for len(ok) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w (what is reported as imported is in the target and gone from the source)", err)
		}
		n := min(len(ok), o.batch)
		batch := ok[:n]
		ok = ok[n:]
		res, err := tg.Import(ctx, batch)
		if err != nil {
			return err
		}
		done = done[:0]
		for i := range batch {
			switch res[i].kind {
			case refused:
				rep.skip(&batch[i], res[i].reason)
			default:
				rep.count(&batch[i], res[i].kind)
				done = append(done, batch[i])
			}
		}
		if o.keep || len(done) == 0 {
			continue
		}
		if err := src.Delete(ctx, done); err != nil {
			return fmt.Errorf("%w; the last %d jobs are in the target but still in the source: "+
				"run the import again to remove them (see the README on what it cannot tell apart)", err, len(done))
		}
		rep.Deleted += len(done)
	}
	return nil
}
