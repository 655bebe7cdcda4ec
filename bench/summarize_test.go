package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// sumRun builds one successful result for summarize.
func sumRun(c, label string, rate, cpu float64, syscalls *float64, lat *Latency) Result {
	r := Result{Workload: "roundtrip", Case: c, Label: label, Rate: rate, OK: true, Latency: lat,
		Server: &ServerStats{CPUPerJob: cpu, VmHWMKB: 1024, SyscallsPerJob: syscalls}}
	if syscalls != nil {
		r.Server.Syscalls = ptr(int64(*syscalls * 1000))
	}
	return r
}

// row returns the first line of case c and label in out, split into fields after the label;
// floorRow the one in the latency floor section.
func row(t *testing.T, out, c, label string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			break // the end of the table
		}
		if rest, ok := strings.CutPrefix(line, c+" "); ok {
			if rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " "), label+" "); ok {
				return strings.Fields(rest)
			}
		}
	}
	t.Fatalf("no row %q %q in:\n%s", c, label, out)
	return nil
}

func floorRow(t *testing.T, out, c, label string) []string {
	t.Helper()
	_, section, ok := strings.Cut(out, "\nlatency floor: case")
	if !ok {
		t.Fatalf("no latency floor section in:\n%s", out)
	}
	_, section, _ = strings.Cut(section, "\n")
	return row(t, section, c, label)
}

// TestSummarizeColumns: medians of rate, CPU, syscalls per job, p50 and p99; "-" where a
// server's runs had no syscall count or the workload no latency; the ratio to the baseline.
func TestSummarizeColumns(t *testing.T) {
	lat := func(p50, p99 float64) *Latency { return &Latency{P50: p50, P99: p99, P999: p99, Max: p99} }
	results := []Result{
		sumRun("c/rt", "gearmand", 100, 10, ptr(4.0), lat(30, 90)),
		sumRun("c/rt", "spurd -q builtin", 300, 5, ptr(2.0), lat(20, 60)),
		sumRun("c/rt", "gearmand", 200, 20, ptr(6.0), lat(50, 110)),
		sumRun("c/rt", "spurd -q builtin", 100, 7, ptr(3.0), lat(40, 80)),
		sumRun("c/rt", "gearmand", 150, 15, ptr(5.0), lat(40, 100)),
		sumRun("c/rt", "spurd -q builtin", 200, 6, nil, lat(30, 70)), // this run: no perf
		sumRun("c/bg", "gearmand", 1000, 1, nil, nil),
		{Workload: "submit-bg", Case: "c/bg", Label: "spurd -q builtin", OK: false, Failure: "boom"},
	}
	var out bytes.Buffer
	summarize(results, summaryOptions{baseline: "gearmand"}, &out)
	t.Log("\n" + out.String())
	header := strings.Fields(strings.Split(out.String(), "\n")[0])
	if !strings.Contains(strings.Join(header, " "), "srv CPU µs/job syscalls/job p50 µs p99 µs srv peak RSS") {
		t.Fatalf("header %q", header)
	}
	// runs, rate, ratio, cpu, syscalls/job, p50, p99, rss (2 fields)
	if got, want := row(t, out.String(), "c/rt", "gearmand"), []string{"3", "150", "1.00x", "15.00", "5.00", "40.0", "100.0", "1.0", "MiB"}; !equal(got, want) {
		t.Errorf("gearmand row %q, want %q", got, want)
	}
	if got, want := row(t, out.String(), "c/rt", "spurd -q builtin"), []string{"3", "200", "1.33x", "6.00", "2.50", "30.0", "70.0", "1.0", "MiB"}; !equal(got, want) {
		t.Errorf("spurd row %q, want %q", got, want)
	}
	if got, want := row(t, out.String(), "c/bg", "gearmand"), []string{"1", "1000", "1.00x", "1.00", "-", "-", "-", "1.0", "MiB"}; !equal(got, want) {
		t.Errorf("bg gearmand row %q, want %q", got, want)
	}
	if got, want := row(t, out.String(), "c/bg", "spurd -q builtin"), []string{"1(1!)", "-", "-", "-", "-", "-", "-", "-"}; !equal(got, want) {
		t.Errorf("failed row %q, want %q", got, want)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "|") == strings.Join(b, "|")
}

// TestSummarizeFloorAndRatio: the latency floor lines (p50 against TIMES x the floor case's
// p50 of the same server) and the rate ratio lines.
func TestSummarizeFloorAndRatio(t *testing.T) {
	lat := func(p50 float64) *Latency { return &Latency{P50: p50, P99: 2 * p50} }
	results := []Result{
		sumRun("deploy/sync-1c-1w", "gearmand", 5000, 60, ptr(16.0), lat(99)),
		sumRun("deploy/sync-1c-1w", "spurd -q builtin", 4000, 90, ptr(22.0), lat(150)),
		sumRun("deploy/sync-1c-1w", "newcomer", 4000, 90, nil, lat(150)),
		sumRun("deploy/echo-floor", "gearmand", 30000, 13, ptr(4.0), lat(33)),
		sumRun("deploy/echo-floor", "spurd -q builtin", 30000, 14, ptr(4.4), lat(25)),
		sumRun("deploy/durable", "spurd", 25000, 5, nil, nil),
		sumRun("deploy/durable", "spurd -q builtin", 400000, 1, nil, nil),
	}
	opt := summaryOptions{
		floors: []floorSpec{{Case: "deploy/sync-1c-1w", Floor: "deploy/echo-floor", Times: 3}},
		ratios: []ratioSpec{{Case: "deploy/durable", Num: "spurd", Den: "spurd -q builtin"},
			{Case: "deploy/durable", Num: "spurd", Den: "nobody"}},
	}
	var out bytes.Buffer
	summarize(results, opt, &out)
	s := out.String()
	t.Log("\n" + s)
	// p50, floor case, floor p50, times, floor, p50/floor
	if got, want := floorRow(t, s, "deploy/sync-1c-1w", "gearmand"), []string{"99.0", "deploy/echo-floor", "33.0", "3", "99.0", "1.00x"}; !equal(got, want) {
		t.Errorf("gearmand floor %q, want %q", got, want)
	}
	if got, want := floorRow(t, s, "deploy/sync-1c-1w", "spurd -q builtin"), []string{"150.0", "deploy/echo-floor", "25.0", "3", "75.0", "2.00x"}; !equal(got, want) {
		t.Errorf("spurd floor %q, want %q", got, want)
	}
	if got, want := floorRow(t, s, "deploy/sync-1c-1w", "newcomer"), []string{"150.0", "deploy/echo-floor", "-", "3", "-", "-"}; !equal(got, want) {
		t.Errorf("floorless %q, want %q", got, want)
	}
	for _, want := range []string{
		"deploy/durable: spurd / spurd -q builtin = 0.06x (median 25000 vs 400000 jobs/s)",
		"deploy/durable: spurd / nobody: no successful runs of both",
	} {
		if !strings.Contains(s, want+"\n") {
			t.Errorf("missing line %q", want)
		}
	}
}

// TestSummarizeMainFlags: -floor and -ratio are parsed from the command line (labels with
// spaces included); malformed values are refused.
func TestSummarizeMainFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "results.jsonl")
	var in bytes.Buffer
	for _, r := range []Result{
		sumRun("deploy/sync-1c-1w", "gearmand", 5000, 60, ptr(16.0), &Latency{P50: 90}),
		sumRun("deploy/echo-floor", "gearmand", 30000, 13, ptr(4.0), &Latency{P50: 30}),
		sumRun("deploy/durable", "spurd", 25000, 5, nil, nil),
		sumRun("deploy/durable", "spurd -q builtin -t 2", 50000, 1, nil, nil),
	} {
		b, _ := json.Marshal(r)
		in.Write(append(b, '\n'))
	}
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := summarizeMain([]string{"-floor", "deploy/sync-1c-1w:deploy/echo-floor:3",
		"-ratio", "deploy/durable:spurd:spurd -q builtin -t 2", file}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := floorRow(t, out.String(), "deploy/sync-1c-1w", "gearmand"); got[len(got)-1] != "1.00x" {
		t.Errorf("floor row %q", got)
	}
	if !strings.Contains(out.String(), "deploy/durable: spurd / spurd -q builtin -t 2 = 0.50x") {
		t.Errorf("no ratio line in:\n%s", out.String())
	}
	for _, bad := range [][]string{
		{"-floor", "a:b"}, {"-floor", "a:b:0"}, {"-floor", "a:b:x"}, {"-floor", ":b:3"},
		{"-ratio", "a:b"}, {"-ratio", "a::c"}, {"-ratio", "a:b:c:d"},
	} {
		errOut.Reset()
		if code := summarizeMain(append(bad, file), &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", bad, code)
		}
	}
}

// TestSummarizeLifecycle: epoch-accuracy, fill and recovery runs get tables of their own (not
// rows of the rate table), with medians over an accuracy case's rounds and never-woken runs
// named.
func TestSummarizeLifecycle(t *testing.T) {
	acc := func(label string, p50, last float64, assigned int64, ok bool) Result {
		return Result{Workload: "epoch-accuracy", Case: "l/acc", Label: label, N: 100, OK: ok,
			Accuracy: &AccuracyStats{Assigned: assigned, FirstMs: 1, P50Ms: p50, P99Ms: last, MaxMs: last, SubmitLeadMs: 2000, NeverWoken: assigned == 0}}
	}
	results := []Result{
		acc("spurd", 10, 30, 100, true), acc("spurd", 20, 50, 100, true), acc("spurd", 30, 70, 100, true),
		acc("gearmand", 0, 0, 0, false),
		{Workload: "sched-fill", Case: "l/fill", Label: "spurd", N: 1000, OK: true, Rate: 5000,
			Fill: &FillStats{Kind: "schedules", RSSBeforeKB: 1024, RSSAfterKB: 2048, PerEntryBytes: 1048.6, DataDirAfter: 4096, Listed: 1000}},
		{Workload: "recovery", Case: "l/rec", Label: "spurd after SIGTERM", OK: true,
			Recovery: &RecoveryStats{AcceptSeconds: 1.5, StatusSeconds: 1.75, RSSKB: 4096, HWMKB: 8192, Jobs: 7, Schedules: 3}},
		sumRun("l/sc", "spurd", 900, 2, nil, nil),
	}
	var in bytes.Buffer
	for _, r := range results {
		b, _ := json.Marshal(r)
		in.Write(append(b, '\n'))
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "r.jsonl")
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := summarizeMain([]string{file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	if got := row(t, s, "l/sc", "spurd"); got[1] != "900" {
		t.Fatalf("rate row %v", got)
	}
	rateTable, _, _ := strings.Cut(s, "\n\n")
	for _, c := range []string{"l/acc", "l/fill", "l/rec"} {
		if strings.Contains(rateTable, c+" ") {
			t.Fatalf("%s is in the rate table:\n%s", c, s)
		}
	}
	_, accSec, ok := strings.Cut(s, "epoch accuracy: case")
	if !ok {
		t.Fatalf("no accuracy table:\n%s", s)
	}
	// workers runs assigned first p50 p99 last lead
	if got := row(t, accSec[strings.Index(accSec, "\n")+1:], "l/acc", "spurd"); strings.Join(got[:8], " ") != "PRE_SLEEP 3 100% 1.0 20.0 50.0 50.0 2000" {
		t.Fatalf("accuracy row %v", got)
	}
	if got := row(t, accSec[strings.Index(accSec, "\n")+1:], "l/acc", "gearmand"); got[1] != "1(1!)" || got[2] != "0%" || !strings.Contains(strings.Join(got, " "), "never woken in 1 of 1 runs") {
		t.Fatalf("gearmand accuracy row %v", got)
	}
	_, fillSec, _ := strings.Cut(s, "fill: case")
	if got := row(t, fillSec[strings.Index(fillSec, "\n")+1:], "l/fill", "spurd"); strings.Join(got, " ") != "schedules 1000 5000 1.0 MiB 2.0 MiB 1049 4.0 KiB 1000 ok" {
		t.Fatalf("fill row %v", got)
	}
	_, recSec, _ := strings.Cut(s, "recovery: case")
	if got := row(t, recSec[strings.Index(recSec, "\n")+1:], "l/rec", "spurd after SIGTERM"); strings.Join(got, " ") != "1.500 1.750 4.0 MiB 8.0 MiB 7 3 ok" {
		t.Fatalf("recovery row %v", got)
	}
}
