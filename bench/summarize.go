package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// summaryOptions are summarize's flags beyond the input files.
type summaryOptions struct {
	baseline string      // label the ratio column is relative to ("" = first label containing "gearmand")
	floors   []floorSpec // latency floors to print after the table
	ratios   []ratioSpec // rate ratios to print after the table
}

// floorSpec compares the median p50 latency of each server in Case with Times × the median
// p50 of the same server (label) in Floor: -floor CASE:FLOOR_CASE:TIMES. A synchronous job
// with a sleeping worker costs three round trips (SUBMIT_JOB -> NOOP, GRAB_JOB -> JOB_ASSIGN,
// WORK_COMPLETE -> WORK_COMPLETE), so three echo round trips on one connection are its floor.
type floorSpec struct {
	Case, Floor string
	Times       float64
}

// ratioSpec is the median rate of label Num over that of label Den within Case:
// -ratio CASE:NUM_LABEL:DEN_LABEL.
type ratioSpec struct {
	Case, Num, Den string
}

func parseFloorSpec(v string) (floorSpec, error) {
	f := strings.Split(v, ":")
	if len(f) != 3 || f[0] == "" || f[1] == "" {
		return floorSpec{}, errors.New("want CASE:FLOOR_CASE:TIMES")
	}
	times, err := strconv.ParseFloat(f[2], 64)
	if err != nil || times <= 0 {
		return floorSpec{}, fmt.Errorf("TIMES %q: want a positive number", f[2])
	}
	return floorSpec{Case: f[0], Floor: f[1], Times: times}, nil
}

func parseRatioSpec(v string) (ratioSpec, error) {
	f := strings.Split(v, ":")
	if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
		return ratioSpec{}, errors.New("want CASE:NUM_LABEL:DEN_LABEL")
	}
	return ratioSpec{Case: f[0], Num: f[1], Den: f[2]}, nil
}

// summarizeMain prints, per case, the medians of each label (rate, server CPU and system
// calls per job, latency, peak RSS) and the ratio of each label's median rate to the
// baseline's; then the requested latency floors and rate ratios, and the memory runs.
func summarizeMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("summarize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt summaryOptions
	fs.StringVar(&opt.baseline, "baseline", "", "label the ratios are relative to (default: the first label containing \"gearmand\")")
	fs.Func("floor", "CASE:FLOOR_CASE:TIMES: compare each server's p50 in CASE with TIMES x its p50 in FLOOR_CASE (repeatable)", func(v string) error {
		f, err := parseFloorSpec(v)
		opt.floors = append(opt.floors, f)
		return err
	})
	fs.Func("ratio", "CASE:NUM_LABEL:DEN_LABEL: print the median rate of NUM_LABEL over DEN_LABEL's in CASE (repeatable)", func(v string) error {
		r, err := parseRatioSpec(v)
		opt.ratios = append(opt.ratios, r)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var results []Result
	read := func(r io.Reader) error {
		dec := json.NewDecoder(r)
		for {
			var res Result
			if err := dec.Decode(&res); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			results = append(results, res)
		}
	}
	if fs.NArg() == 0 {
		if err := read(os.Stdin); err != nil {
			fmt.Fprintln(stderr, "summarize:", err)
			return 1
		}
	}
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "summarize:", err)
			return 1
		}
		err = read(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "summarize: %s: %v\n", name, err)
			return 1
		}
	}
	var rates []Result
	for _, r := range results {
		if r.Memory == nil && r.Workload != "memory" && !isReport(&r) {
			rates = append(rates, r)
		}
	}
	if len(rates) > 0 {
		summarize(rates, opt, stdout)
	}
	summarizeMemory(results, stdout)
	summarizeAccuracy(results, stdout)
	summarizeFills(results, stdout)
	summarizeRecovery(results, stdout)
	return 0
}

// group is every run of one label in one case.
type group struct {
	label                                  string
	rates, cpus, syscalls, p50s, p99s, hwm []float64
	runs, failed                           int
}

// groupResults groups results by case (the workload when unnamed), then label, in the order
// they first appear.
func groupResults(results []Result) ([]string, map[string][]*group) {
	var cases []string
	byCase := map[string][]*group{}
	for _, r := range results {
		key := r.Case
		if key == "" {
			key = r.Workload
		}
		gs, ok := byCase[key]
		if !ok {
			cases = append(cases, key)
		}
		g := findGroup(gs, r.Label)
		if g == nil {
			g = &group{label: r.Label}
			byCase[key] = append(gs, g)
		}
		g.runs++
		if !r.OK {
			g.failed++
			continue
		}
		g.rates = append(g.rates, r.Rate)
		if s := r.Server; s != nil {
			g.cpus = append(g.cpus, s.CPUPerJob)
			g.hwm = append(g.hwm, float64(s.VmHWMKB))
			if s.SyscallsPerJob != nil {
				g.syscalls = append(g.syscalls, *s.SyscallsPerJob)
			}
		}
		if r.Latency != nil {
			g.p50s = append(g.p50s, r.Latency.P50)
			g.p99s = append(g.p99s, r.Latency.P99)
		}
	}
	return cases, byCase
}

func findGroup(gs []*group, label string) *group {
	for _, g := range gs {
		if g.label == label {
			return g
		}
	}
	return nil
}

const summaryRow = "%-28s %-22s %5s %14s %8s %14s %12s %9s %9s %12s\n"

func summarize(results []Result, opt summaryOptions, w io.Writer) {
	cases, byCase := groupResults(results)
	fmt.Fprintf(w, summaryRow, "case", "server", "runs", "median rate/s", "ratio",
		"srv CPU µs/job", "syscalls/job", "p50 µs", "p99 µs", "srv peak RSS")
	for _, key := range cases {
		gs := byCase[key]
		var base *group
		for _, g := range gs {
			if (opt.baseline != "" && g.label == opt.baseline) || (opt.baseline == "" && base == nil && strings.Contains(g.label, "gearmand")) {
				base = g
			}
		}
		for _, g := range gs {
			ratio := "-"
			if base != nil && len(base.rates) > 0 && len(g.rates) > 0 {
				ratio = fmt.Sprintf("%.2fx", median(g.rates)/median(base.rates))
			}
			runs := fmt.Sprintf("%d", g.runs)
			if g.failed > 0 {
				runs = fmt.Sprintf("%d(%d!)", g.runs, g.failed)
			}
			fmt.Fprintf(w, summaryRow, key, g.label, runs, fmtOr(g.rates, "%.0f", 1), ratio,
				fmtOr(g.cpus, "%.2f", 1), fmtOr(g.syscalls, "%.2f", 1), fmtOr(g.p50s, "%.1f", 1),
				fmtOr(g.p99s, "%.1f", 1), fmtOr(g.hwm, "%s", 1024))
		}
	}
	summarizeFloors(byCase, opt.floors, w)
	summarizeRatios(byCase, opt.ratios, w)
}

// summarizeFloors prints, per floor spec and server, the case's median p50 against TIMES x the
// floor case's median p50 of the same server.
func summarizeFloors(byCase map[string][]*group, floors []floorSpec, w io.Writer) {
	const row = "%-28s %-22s %9s  %-22s %12s %6s %10s %10s\n"
	header := false
	for _, f := range floors {
		for _, g := range byCase[f.Case] {
			if !header {
				fmt.Fprintln(w)
				fmt.Fprintf(w, row, "latency floor: case", "server", "p50 µs", "floor case", "floor p50 µs", "times", "floor µs", "p50/floor")
				header = true
			}
			p50, floorP50, floor, over := fmtOr(g.p50s, "%.1f", 1), "-", "-", "-"
			if fg := findGroup(byCase[f.Floor], g.label); fg != nil && len(fg.p50s) > 0 {
				fp := median(fg.p50s)
				floorP50, floor = fmt.Sprintf("%.1f", fp), fmt.Sprintf("%.1f", f.Times*fp)
				if len(g.p50s) > 0 && fp > 0 {
					over = fmt.Sprintf("%.2fx", median(g.p50s)/(f.Times*fp))
				}
			}
			fmt.Fprintf(w, row, f.Case, g.label, p50, f.Floor, floorP50, strconv.FormatFloat(f.Times, 'g', -1, 64), floor, over)
		}
	}
}

// summarizeRatios prints one line per ratio spec: NUM's median rate over DEN's in CASE.
func summarizeRatios(byCase map[string][]*group, ratios []ratioSpec, w io.Writer) {
	for i, r := range ratios {
		if i == 0 {
			fmt.Fprintln(w)
		}
		num, den := findGroup(byCase[r.Case], r.Num), findGroup(byCase[r.Case], r.Den)
		if num == nil || den == nil || len(num.rates) == 0 || len(den.rates) == 0 {
			fmt.Fprintf(w, "%s: %s / %s: no successful runs of both\n", r.Case, r.Num, r.Den)
			continue
		}
		n, d := median(num.rates), median(den.rates)
		fmt.Fprintf(w, "%s: %s / %s = %.2fx (median %.0f vs %.0f jobs/s)\n", r.Case, r.Num, r.Den, n/d, n, d)
	}
}

// summarizeMemory prints one line per memory run (these are single long runs, not medians).
func summarizeMemory(results []Result, w io.Writer) {
	header := false
	for _, r := range results {
		m := r.Memory
		if m == nil {
			continue
		}
		if !header {
			fmt.Fprintf(w, "%-22s %-22s %9s %10s %10s %10s %10s %10s %11s %11s %11s %9s %s\n",
				"case", "server", "jobs", "RSS before", "after fill", "B/job", "drained", "settled", "dir filled", "dir drained", "dir settled", "drain/s", "ok")
			header = true
		}
		key := r.Case
		if key == "" {
			key = r.Workload
		}
		ok := "ok"
		if !r.OK {
			ok = "FAILED: " + r.Failure
		}
		fmt.Fprintf(w, "%-22s %-22s %9d %10s %10s %10.0f %10s %10s %11s %11s %11s %9.0f %s\n", key, r.Label, r.N,
			kib(m.RSSBeforeKB), kib(m.RSSAfterFillKB), m.RSSPerJobBytes, kib(m.RSSAfterDrainKB), kib(m.RSSAfterSettleKB),
			bytesStr(m.DataDirAfterFill), bytesStr(m.DataDirAfterDrain), bytesStr(m.DataDirAfterSettle), r.Rate, ok)
	}
}

func fmtOr(xs []float64, format string, scale float64) string {
	if len(xs) == 0 {
		return "-"
	}
	m := median(xs)
	if format == "%s" {
		return bytesStr(int64(m * scale))
	}
	return fmt.Sprintf(format, m*scale)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// isReport tells the results whose rate is not the point (they get tables of their own).
func isReport(r *Result) bool {
	switch r.Workload {
	case "epoch-accuracy", "sched-fill", "epoch-fill", "recovery":
		return true
	}
	return r.Accuracy != nil || r.Fill != nil || r.Recovery != nil
}

func caseKey(r *Result) string {
	if r.Case != "" {
		return r.Case
	}
	return r.Workload
}

// summarizeAccuracy prints, per case and label, the medians of the epoch-accuracy runs:
// milliseconds from the due second to the first, median, 99th percentile and last assignment.
func summarizeAccuracy(results []Result, w io.Writer) {
	type acc struct {
		key, label                            string
		runs, failed, never, early            int
		assigned, first, p50, p99, last, lead []float64
		how                                   string
	}
	var order []*acc
	find := func(key, label string) *acc {
		for _, a := range order {
			if a.key == key && a.label == label {
				return a
			}
		}
		a := &acc{key: key, label: label}
		order = append(order, a)
		return a
	}
	for i := range results {
		r := &results[i]
		if r.Workload != "epoch-accuracy" || r.Accuracy == nil {
			continue
		}
		x := r.Accuracy
		a := find(caseKey(r), r.Label)
		a.runs++
		a.how = "PRE_SLEEP"
		if x.PollSeconds > 0 {
			a.how = fmt.Sprintf("poll %gms", x.PollSeconds*1e3)
		}
		if x.NeverWoken {
			a.never++
		}
		if x.Early > 0 {
			a.early++
		}
		if !r.OK {
			a.failed++
		}
		a.lead = append(a.lead, x.SubmitLeadMs)
		if x.Assigned == 0 {
			continue
		}
		a.assigned = append(a.assigned, float64(x.Assigned)/float64(max(r.N, 1)))
		a.first = append(a.first, x.FirstMs)
		a.p50 = append(a.p50, x.P50Ms)
		a.p99 = append(a.p99, x.P99Ms)
		a.last = append(a.last, x.MaxMs)
	}
	if len(order) == 0 {
		return
	}
	const row = "%-36s %-22s %-11s %7s %9s %9s %9s %9s %10s %11s %s\n"
	fmt.Fprintln(w)
	fmt.Fprintf(w, row, "epoch accuracy: case", "server", "workers", "runs", "assigned", "first ms", "p50 ms", "p99 ms", "last ms", "submit lead", "notes")
	for _, a := range order {
		runs := fmt.Sprintf("%d", a.runs)
		if a.failed > 0 {
			runs = fmt.Sprintf("%d(%d!)", a.runs, a.failed)
		}
		var notes []string
		if a.never > 0 {
			notes = append(notes, fmt.Sprintf("never woken in %d of %d runs", a.never, a.runs))
		}
		if a.early > 0 {
			notes = append(notes, fmt.Sprintf("jobs assigned early in %d runs", a.early))
		}
		assigned := "0%"
		if len(a.assigned) > 0 {
			assigned = fmt.Sprintf("%.0f%%", median(a.assigned)*100)
		}
		fmt.Fprintf(w, row, a.key, a.label, a.how, runs, assigned, fmtOr(a.first, "%.1f", 1), fmtOr(a.p50, "%.1f", 1),
			fmtOr(a.p99, "%.1f", 1), fmtOr(a.last, "%.1f", 1), fmtOr(a.lead, "%.0f ms", 1), strings.Join(notes, "; "))
	}
}

// summarizeFills prints one line per sched-fill or epoch-fill run.
func summarizeFills(results []Result, w io.Writer) {
	header := false
	const row = "%-36s %-22s %-10s %9s %10s %10s %10s %11s %12s %11s %s\n"
	for i := range results {
		r := &results[i]
		f := r.Fill
		if f == nil {
			continue
		}
		if !header {
			fmt.Fprintln(w)
			fmt.Fprintf(w, row, "fill: case", "server", "entries", "n", "fill/s", "RSS before", "RSS after", "B/entry", "dir after", "listed", "ok")
			header = true
		}
		ok := "ok"
		if !r.OK {
			ok = "FAILED: " + r.Failure
		}
		listed := "-"
		if f.Listed >= 0 {
			listed = strconv.FormatInt(f.Listed, 10)
		}
		fmt.Fprintf(w, row, caseKey(r), r.Label, f.Kind, strconv.FormatInt(r.N, 10), fmt.Sprintf("%.0f", r.Rate),
			kib(f.RSSBeforeKB), kib(f.RSSAfterKB), fmt.Sprintf("%.0f", f.PerEntryBytes), bytesStr(f.DataDirAfter), listed, ok)
	}
}

// summarizeRecovery prints one line per recovery run.
func summarizeRecovery(results []Result, w io.Writer) {
	header := false
	const row = "%-36s %-34s %10s %10s %10s %10s %10s %10s %s\n"
	for i := range results {
		r := &results[i]
		rc := r.Recovery
		if rc == nil {
			continue
		}
		if !header {
			fmt.Fprintln(w)
			fmt.Fprintf(w, row, "recovery: case", "server", "accept s", "status s", "RSS", "peak RSS", "jobs", "schedules", "ok")
			header = true
		}
		ok := "ok"
		if !r.OK {
			ok = "FAILED: " + r.Failure
		}
		sch := "-"
		if rc.Schedules >= 0 {
			sch = strconv.FormatInt(rc.Schedules, 10)
		}
		fmt.Fprintf(w, row, caseKey(r), r.Label, fmt.Sprintf("%.3f", rc.AcceptSeconds), fmt.Sprintf("%.3f", rc.StatusSeconds),
			kib(rc.RSSKB), kib(rc.HWMKB), strconv.FormatInt(rc.Jobs, 10), sch, ok)
	}
}
