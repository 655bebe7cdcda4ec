// Command spur-bench is a load generator for Gearman job servers. It speaks the binary protocol
// to any host:port, so it drives Spur and C gearmand alike.
//
//	spur-bench WORKLOAD [flags]      (or: spur-bench -workload WORKLOAD [flags])
//	spur-bench summarize [-baseline LABEL] [-floor CASE:FLOOR_CASE:TIMES] [-ratio CASE:LABEL:LABEL] FILE...
//	                                                 table of medians from -json output
//	spur-bench freeport                              print a free loopback TCP port
//	spur-bench waitport -addr HOST:PORT [-timeout D] wait until a port accepts connections
//
// Workloads: submit-bg, drain, roundtrip, echo, memory (see -help). Every connection keeps a
// window of pipelined requests, owns one read and one write buffer, parses replies with
// codec.Parse in place and builds requests with codec.AppendRequest into its write buffer, so
// the steady state allocates nothing per packet.
package main

import (
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

var workloads = []string{"submit-bg", "drain", "roundtrip", "echo", "memory"}

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
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:4730", "server host:port")
	fs.Int64Var(&cfg.N, "n", 0, "jobs (echo: round trips); 0 = the workload's default (memory 1000000, roundtrip 20000, others 100000)")
	fs.IntVar(&cfg.Conns, "conns", 4, "client connections")
	fs.IntVar(&cfg.Window, "window", 0, "outstanding requests per connection (drain: GRAB_JOBs per worker); 0 = default (roundtrip 1, others 64)")
	fs.IntVar(&cfg.Workers, "workers", 4, "worker connections (drain, roundtrip, memory)")
	fs.IntVar(&cfg.Grabs, "grabs", 0, "GRAB_JOBs each worker keeps outstanding; 0 = default (roundtrip 1, drain and memory -window)")
	fs.IntVar(&cfg.Size, "size", 0, "payload bytes; 0 = default (roundtrip 16, others 100)")
	fs.StringVar(&cfg.Fn, "fn", "spur-bench", "function name")
	fs.BoolVar(&cfg.Unique, "unique", false, "background jobs (submit-bg, drain, memory) get distinct unique ids instead of an empty one")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "time limit of each phase: new work stops then and the run reports what completed")
	fs.IntVar(&cfg.Idle, "idle", 0, "idle connections held open during the workload")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id: report its CPU per job and RSS from /proc, and its system calls per job (with -perf)")
	fs.StringVar(&cfg.Perf, "perf", "perf", "perf(1) that counts the -pid server's system calls during the timed phase; \"\" = do not count")
	fs.BoolVar(&cfg.Split, "split-writes", false, "workers (drain, roundtrip) write WORK_COMPLETE and the next GRAB_JOB with one write each, as libgearman does, instead of one write for both")
	fs.StringVar(&cfg.DataDir, "datadir", "", "memory: server data directory whose size to report")
	fs.DurationVar(&cfg.Settle, "settle", 5*time.Second, "memory: wait after the drain before the last measurement")
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
		if cfg.Workload == "roundtrip" {
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
	if r.TimedOut {
		b.WriteString("; TIME LIMIT reached")
	}
	if !r.OK {
		fmt.Fprintf(&b, "; FAILED: %s", r.Failure)
	}
	return b.String()
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
