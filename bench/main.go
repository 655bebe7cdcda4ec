// Command spur-bench is a load generator for Gearman job servers. It speaks the binary protocol
// to any host:port, so it drives Spur and C gearmand alike.
//
//	spur-bench WORKLOAD [flags]      (or: spur-bench -workload WORKLOAD [flags])
//	spur-bench summarize [-baseline LABEL] [-floor CASE:FLOOR_CASE:TIMES] [-ratio CASE:LABEL:LABEL] FILE...
//	                                                 table of medians from -json output
//	spur-bench freeport                              print a free loopback TCP port
//	spur-bench waitport -addr HOST:PORT [-timeout D] wait until a port accepts connections
//
// Workloads: submit-bg, drain, roundtrip, echo, memory, and the job-lifecycle ones
// epoch-accuracy, sched-fill, epoch-fill, recovery, submit-complete (see -help and lifecycle.go). Every connection keeps a
// window of pipelined requests, owns one read and one write buffer, parses replies with
// codec.Parse in place and builds requests with codec.AppendRequest into its write buffer, so
// the steady state allocates nothing per packet.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"time"
)

var workloads = []string{"submit-bg", "drain", "roundtrip", "echo", "memory",
	"epoch-accuracy", "sched-fill", "epoch-fill", "recovery", "submit-complete"}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "summarize":
			return summarizeMain(args[1:], stdout, stderr)
		case "freeport":
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				fmt.Fprintln(stderr, "freeport:", err)
				return 1
			}
			fmt.Fprintln(stdout, l.Addr().(*net.TCPAddr).Port)
			l.Close()
			return 0
		case "waitport":
			return waitPortMain(args[1:], stderr)
		}
	}
	cfg, asJSON, err := parseFlags(args, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "spur-bench:", err)
		return 2
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "spur-bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "spur-bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	res := runWorkload(cfg)
	fmt.Fprintln(stdout, humanLine(res))
	if asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	}
	if !res.OK {
		return 1
	}
	return 0
}

// parseFlags reads "WORKLOAD [flags]", "[flags] WORKLOAD [flags]" or "-workload W [flags]".
func parseFlags(args []string, stderr io.Writer) (*config, bool, error) {
	cfg := &config{}
	var asJSON bool
	fs := flag.NewFlagSet("spur-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Workload, "workload", "", "workload: "+strings.Join(workloads, ", "))
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:4730", "server host:port; several, comma-separated, for the nodes of a cluster: connections go round them, the queue checks sum them")
	useTLS := fs.Bool("tls", false, "speak TLS to the server (spurd --ssl); the server's certificate is not verified: a benchmark, not a client")
	fs.Int64Var(&cfg.N, "n", 0, "jobs (echo: round trips); 0 = the workload's default (memory 1000000, roundtrip 20000, others 100000)")
	fs.IntVar(&cfg.Conns, "conns", 4, "client connections")
	fs.IntVar(&cfg.Window, "window", 0, "outstanding requests per connection (drain: GRAB_JOBs per worker); 0 = default (roundtrip 1, others 64)")
	fs.IntVar(&cfg.Workers, "workers", 4, "worker connections (drain, roundtrip, memory)")
	fs.IntVar(&cfg.Grabs, "grabs", 0, "GRAB_JOBs each worker keeps outstanding; 0 = default (roundtrip 1, drain and memory -window)")
	fs.IntVar(&cfg.Size, "size", 0, "payload bytes; 0 = default (roundtrip 16, others 100)")
	fs.StringVar(&cfg.Fn, "fn", "spur-bench", "function name")
	fs.BoolVar(&cfg.Queued, "queued", false, "drain: the jobs are queued already (by an earlier submit-bg, maybe through another node of a cluster): drain -n of them without filling the queue first")
	fs.BoolVar(&cfg.Unique, "unique", false, "background jobs (submit-bg, drain, memory) get distinct unique ids instead of an empty one")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "time limit of each phase: new work stops then and the run reports what completed")
	fs.IntVar(&cfg.Idle, "idle", 0, "idle connections held open during the workload")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id: report its CPU per job and RSS from /proc, and its system calls per job (with -perf)")
	fs.StringVar(&cfg.Perf, "perf", "perf", "perf(1) that counts the -pid server's system calls during the timed phase; \"\" = do not count")
	fs.BoolVar(&cfg.Split, "split-writes", false, "workers (drain, roundtrip) write WORK_COMPLETE and the next GRAB_JOB with one write each, as libgearman does, instead of one write for both")
	fs.StringVar(&cfg.DataDir, "datadir", "", "memory: server data directory whose size to report")
	fs.DurationVar(&cfg.Settle, "settle", 5*time.Second, "memory: wait after the drain before the last measurement")
	fs.DurationVar(&cfg.Lead, "lead", 3*time.Second, "epoch-accuracy: the jobs' due second is the first whole second at least this far ahead")
	fs.DurationVar(&cfg.Poll, "poll", 0, "epoch-accuracy: idle workers send GRAB_JOB this often instead of PRE_SLEEP (0 = sleep until NOOP)")
	fs.DurationVar(&cfg.Wait, "wait", 30*time.Second, "epoch-accuracy: how long after the due second to wait for every job")
	fs.DurationVar(&cfg.Ahead, "ahead", 24*time.Hour, "epoch-fill: the jobs' run time from now")
	fs.Int64Var(&cfg.Start, "start", 0, "recovery: unix nanoseconds at which the server was exec'd")
	fs.StringVar(&cfg.SchedFn, "sched-fn", "", "recovery: count the schedules of this function in \"show schedules\"")
	fs.Int64Var(&cfg.Schedules, "schedules", 0, "recovery: fail unless -sched-fn has this many schedules (0 = do not check); -n likewise checks the jobs of -fn")
	fs.IntVar(&cfg.ResultSize, "result-size", 16, "submit-complete: bytes of each WORK_COMPLETE's result")
	fs.BoolVar(&cfg.ShowResult, "show-result", false, "submit-complete: afterwards ask \"show result\" (Spur's admin command) whether a completed job's result is stored")
	fs.BoolVar(&cfg.NoList, "no-list", false, "sched-fill: do not count the schedules with \"show schedules\" afterwards (its answer, about 73 bytes a schedule, grows the server's heap, and so the RSS a following fill starts from)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write the generator's CPU profile to this file")
	fs.BoolVar(&asJSON, "json", false, "also print the result as one JSON object")
	fs.StringVar(&cfg.Label, "label", "", "label recorded in the JSON (server name, for summarize)")
	fs.StringVar(&cfg.Case, "case", "", "case name recorded in the JSON (groups runs for summarize)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: spur-bench WORKLOAD [flags]

Workloads:
  submit-bg  -conns connections pipeline -window SUBMIT_JOB_BG each until -n are acknowledged
  drain      queue -n background jobs (untimed), then -workers workers with -window GRAB_JOBs
             each complete them all; the rate is the drain's
  roundtrip  -conns clients submit foreground SUBMIT_JOBs (-window each, default 1), -workers
             workers echo the payload back; results checked byte for byte; latency p50/p99/p999
  echo       -conns connections pipeline -window ECHO_REQs; latency p50/p99/p999 of each round trip
  memory     queue -n (default 1000000) jobs and report server RSS per job and -datadir size,
             then drain them and report again, and once more after -settle (needs -pid)

Job lifecycle:
  epoch-accuracy   -workers workers go idle (PRE_SLEEP, or GRAB_JOB every -poll), then -n
                   (default 10000) SUBMIT_JOB_EPOCH jobs due at one whole second >= -lead ahead
                   are submitted; JOB_ASSIGN arrival minus that second: first, p50, p99, max
                   (= the last job); waits at most -wait after the due second
  sched-fill       -n SUBMIT_JOB_SCHED schedules (random minute, an hour that is neither this
                   nor the next), pipelined; server RSS per schedule after -settle (needs -pid)
  epoch-fill       -n SUBMIT_JOB_EPOCH jobs due -ahead from now; server RSS per job (needs -pid)
  recovery         the server was exec'd at -start: time until its port accepts and until
                   "status" answers, its RSS, the jobs of -fn (-n checks them) and schedules of
                   -sched-fn (-schedules checks them)
  submit-complete  -workers workers (-grabs each, default 1) complete with a -result-size
                   result what -conns clients submit (SUBMIT_JOB_BG, -window each) until -n
                   are completed; the rate is completed jobs/s

Also: spur-bench summarize|freeport|waitport (see the package doc).

Flags:
`)
		fs.PrintDefaults()
	}
	rest := args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cfg.Workload, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return nil, false, err
	}
	if fs.NArg() > 0 {
		if cfg.Workload != "" {
			return nil, false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		cfg.Workload = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, false, err
		}
		if fs.NArg() > 0 {
			return nil, false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
	}
	if *useTLS {
		tlsConfig = &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	}
	known := false
	for _, w := range workloads {
		known = known || w == cfg.Workload
	}
	if !known {
		return nil, false, fmt.Errorf("workload %q: want one of %s", cfg.Workload, strings.Join(workloads, ", "))
	}
	if cfg.N == 0 {
		switch cfg.Workload {
		case "memory":
			cfg.N = 1_000_000
		case "epoch-accuracy":
			cfg.N = 10_000
		case "recovery":
			// -n checks the jobs listed; 0 checks nothing
		case "roundtrip":
			cfg.N = 20_000
		default:
			cfg.N = 100_000
		}
	}
	if cfg.Window == 0 {
		cfg.Window = 64
		if cfg.Workload == "roundtrip" {
			cfg.Window = 1
		}
	}
	if cfg.Grabs == 0 {
		cfg.Grabs = cfg.Window
		if cfg.Workload == "roundtrip" || cfg.Workload == "submit-complete" || cfg.Workload == "epoch-accuracy" {
			cfg.Grabs = 1
		}
	}
	if cfg.Size == 0 {
		cfg.Size = 100
		if cfg.Workload == "roundtrip" {
			cfg.Size = 16
		}
	}
	switch {
	case cfg.N < 0, cfg.Conns < 1, cfg.Window < 1, cfg.Grabs < 1, cfg.Size < 0, cfg.Idle < 0:
		return nil, false, fmt.Errorf("-n, -conns, -window, -grabs, -size and -idle must be positive")
	case cfg.Workers < 1 && (cfg.Workload == "drain" || cfg.Workload == "roundtrip" || cfg.Workload == "memory"):
		return nil, false, fmt.Errorf("-workers must be at least 1")
	case cfg.Timeout <= 0:
		return nil, false, fmt.Errorf("-timeout must be positive")
	case cfg.Workload == "epoch-accuracy" && (cfg.Lead <= 0 || cfg.Wait <= 0 || cfg.Poll < 0 || cfg.Workers < 1):
		return nil, false, fmt.Errorf("epoch-accuracy: -lead and -wait must be positive, -poll not negative, -workers at least 1")
	case cfg.Workload == "submit-complete" && (cfg.Workers < 1 || cfg.ResultSize < 0):
		return nil, false, fmt.Errorf("submit-complete: -workers must be at least 1 and -result-size not negative")
	case cfg.Workload == "epoch-fill" && cfg.Ahead < time.Minute:
		return nil, false, fmt.Errorf("epoch-fill: -ahead must be at least 1m, so no job comes due during the run")
	}
	return cfg, asJSON, nil
}

// humanLine renders a result as one line.
func humanLine(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Workload, r.Addr)
	if r.Label != "" {
		fmt.Fprintf(&b, " [%s]", r.Label)
	}
	if r.Workload == "recovery" {
		lifecycleLine(&b, r)
		return b.String()
	}
	fmt.Fprintf(&b, " conns=%d window=%d size=%d", r.Conns, r.Window, r.Size)
	if r.Unique {
		b.WriteString(" unique")
	}
	if r.Workers > 0 {
		fmt.Fprintf(&b, " workers=%d grabs=%d", r.Workers, r.Grabs)
	}
	if r.Split {
		b.WriteString(" split-writes")
	}
	if r.Idle > 0 {
		fmt.Fprintf(&b, " idle=%d", r.Idle)
	}
	unit := "jobs"
	if r.Workload == "echo" {
		unit = "round trips"
	}
	fmt.Fprintf(&b, ": %d/%d %s in %.3fs = %.0f %s/s, errors %d", r.Done, r.N, unit, r.Seconds, r.Rate, unit, r.Errors)
	if len(r.ErrorCodes) > 0 {
		fmt.Fprintf(&b, " %v", r.ErrorCodes)
	}
	if r.Latency != nil {
		fmt.Fprintf(&b, "; latency p50 %.1fµs p99 %.1fµs p99.9 %.1fµs max %.1fµs", r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(&b, "; server cpu %.2fs = %.2fµs/job", s.CPUSeconds, s.CPUPerJob)
		if s.Syscalls != nil && s.SyscallsPerJob != nil {
			fmt.Fprintf(&b, ", syscalls %d = %.2f/job", *s.Syscalls, *s.SyscallsPerJob)
		}
		fmt.Fprintf(&b, ", rss %s (peak %s)", kib(s.VmRSSKB), kib(s.VmHWMKB))
	}
	if r.Seconds > 0 {
		fmt.Fprintf(&b, "; generator cpu %.2fµs/job", r.ClientCPU)
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(&b, "; memory: rss before %s, after fill %s (%.0f B/job, fill %.0f jobs/s), after drain %s, after %.0fs settle %s, peak %s",
			kib(m.RSSBeforeKB), kib(m.RSSAfterFillKB), m.RSSPerJobBytes, m.FillRate, kib(m.RSSAfterDrainKB), m.SettleSeconds, kib(m.RSSAfterSettleKB), kib(m.VmHWMKB))
		if m.DataDirAfterFill >= 0 {
			fmt.Fprintf(&b, "; data dir before %s, after fill %s, after drain %s, after settle %s",
				bytesStr(m.DataDirBefore), bytesStr(m.DataDirAfterFill), bytesStr(m.DataDirAfterDrain), bytesStr(m.DataDirAfterSettle))
		}
	}
	lifecycleLine(&b, r)
	return b.String()
}

// lifecycleLine appends the lifecycle workloads' reports and the run's outcome.
func lifecycleLine(b *strings.Builder, r *Result) {
	if a := r.Accuracy; a != nil {
		how := "workers sleep (PRE_SLEEP)"
		if a.PollSeconds > 0 {
			how = fmt.Sprintf("workers poll GRAB_JOB every %gms", a.PollSeconds*1e3)
		}
		fmt.Fprintf(b, "; epoch accuracy (%s): due %d, %d jobs submitted in %.3fs, the last acknowledged %.0f ms before the due second",
			how, a.DueUnix, r.N, a.SubmitSeconds, a.SubmitLeadMs)
		if a.NeverWoken {
			fmt.Fprintf(b, "; NEVER WOKEN: 0 of %d assigned within %gs after the due second", r.N, a.WaitSeconds)
		} else {
			fmt.Fprintf(b, "; assigned %d/%d, after the due second: first %+.1f ms, p50 %.1f ms, p99 %.1f ms, max (the last job) %.1f ms, early %d",
				a.Assigned, r.N, a.FirstMs, a.P50Ms, a.P99Ms, a.MaxMs, a.Early)
		}
	}
	if f := r.Fill; f != nil {
		fmt.Fprintf(b, "; %s: server rss before %s, after %s = %.0f B per entry; data dir before %s, after %s",
			f.Kind, kib(f.RSSBeforeKB), kib(f.RSSAfterKB), f.PerEntryBytes, bytesStr(f.DataDirBefore), bytesStr(f.DataDirAfter))
		if f.Listed >= 0 {
			fmt.Fprintf(b, "; the server lists %d", f.Listed)
		}
		if f.Hours != "" {
			fmt.Fprintf(b, ", %d fired (hours used %s)", f.Fired, f.Hours)
		}
	}
	if rc := r.Recovery; rc != nil {
		fmt.Fprintf(b, ": accepting %.3fs after exec, status answered %.3fs after exec; rss %s (peak %s); jobs of the function %d",
			rc.AcceptSeconds, rc.StatusSeconds, kib(rc.RSSKB), kib(rc.HWMKB), rc.Jobs)
		if rc.Schedules >= 0 {
			fmt.Fprintf(b, ", schedules %d", rc.Schedules)
		}
	}
	if r.ResultStored != nil {
		fmt.Fprintf(b, "; result of a completed job stored: %v", *r.ResultStored)
	}
	if r.TimedOut {
		b.WriteString("; TIME LIMIT reached")
	}
	if !r.OK {
		fmt.Fprintf(b, "; FAILED: %s", r.Failure)
	}
}

func kib(k int64) string { return bytesStr(k * 1024) }

func bytesStr(n int64) string {
	switch {
	case n < 0:
		return "n/a"
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func waitPortMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("waitport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "host:port")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after")
	if err := fs.Parse(args); err != nil || *addr == "" {
		fmt.Fprintln(stderr, "usage: spur-bench waitport -addr HOST:PORT [-timeout D]")
		return 2
	}
	deadline := time.Now().Add(*timeout)
	for {
		c, err := net.DialTimeout("tcp", *addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "waitport: %s not accepting after %v: %v\n", *addr, *timeout, err)
			return 1
		}
		time.Sleep(20 * time.Millisecond)
	}
}
