package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine/metrics"
	"github.com/spur-gearman/spur/wal"
)

// --http-addr serves /metrics (Spur's families and gearman-exporter's), /healthz and /readyz.
func TestHTTPMetricsAndHealth(t *testing.T) {
	t.Parallel()
	httpAddr := net.JoinHostPort("127.0.0.1", freePort(t))
	_, addr, _ := startSpurd(t, "-q", "builtin", "--http-addr", httpAddr, "--node-name", "n1")
	g := dialG(t, addr)
	g.submit(&job{typ: codec.SubmitJobBg, fn: "resize", data: "1"})
	g.submit(&job{typ: codec.SubmitJobHighBg, fn: "resize", data: "2"})
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, "resize")
	w.sync()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	for _, want := range []string{
		`spur_function_jobs_queued{function="resize",node="n1",priority="high"} 1`,
		`spur_function_jobs_queued{function="resize",node="n1",priority="normal"} 1`,
		`spur_function_jobs_running{function="resize",node="n1"} 0`,
		`spur_function_workers{function="resize",node="n1"} 1`,
		`gearman_up{node="n1"} 1`,
		`gearman_jobs{function="resize",node="n1"} 2`,
		`gearman_jobs_waiting{function="resize",node="n1"} 2`,
		`gearman_workers{function="resize",node="n1"} 1`,
		`gearman_version_info{node="n1",version="`,
		`go_goroutines{node="n1"} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, _ := get("/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing: %d", code)
	}
}

// The counters, histograms, traffic, connection kinds, job log and schedule families move
// with what the server does (durable queue, so the job log's families are there too).
func TestHTTPMetricsCountJobsTrafficAndTheLog(t *testing.T) {
	t.Parallel()
	httpAddr := net.JoinHostPort("127.0.0.1", freePort(t))
	_, addr, _ := startSpurd(t, "--data-dir", t.TempDir(), "--http-addr", httpAddr, "--node-name", "n1")
	if got := adminLine(t, addr, "schedule add nightly 30 2 * * *"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("schedule add: %q", got)
	}
	for _, line := range []string{"retry m 1 1s 1s", "limit m 5", "pause p"} { // one attempt: a failure is a dead letter
		if got := adminLine(t, addr, line); got != "OK\r\n" {
			t.Fatalf("%s: %q", line, got)
		}
	}
	g := dialG(t, addr)
	for _, d := range []string{"1", "2", "3"} {
		g.submit(&job{typ: codec.SubmitJobBg, fn: "m", data: d})
	}
	g.submit(&job{typ: codec.SubmitJobEpoch, fn: "later", data: "x", epoch: time.Now().Add(time.Hour).Unix()})
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, "m")
	for i, end := range []codec.Type{codec.WorkComplete, codec.WorkFail} {
		a, ok := w.grabAll()
		if !ok {
			t.Fatalf("grab %d: NO_JOB", i)
		}
		if end == codec.WorkComplete {
			w.sendStr(end, a.handle, "ok")
		} else {
			w.sendStr(end, a.handle)
		}
	}
	w.sync()
	// The job ends' batch (results, the dead letter) commits after the worker's packets are
	// answered: scrape until it shows.
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, "\nspur_results_stored{node=\"n1\"} 2\n") || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{
		`spur_function_jobs_submitted_total{function="m",node="n1"} 3`,
		`spur_function_jobs_completed_total{function="m",node="n1"} 1`,
		`spur_function_jobs_failed_total{function="m",node="n1"} 1`,
		`spur_function_jobs_retried_total{function="m",node="n1"} 0`,
		`spur_function_jobs_dead_lettered_total{function="m",node="n1"} 1`,
		`spur_dead_letters{node="n1"} 1`,
		`spur_function_jobs_scheduled{function="later",node="n1"} 1`,
		`spur_function_paused{function="p",node="n1"} 1`,
		`spur_function_limit{function="m",node="n1"} 5`,
		`spur_connections{kind="admin",node="n1"} `,
		`spur_function_queue_wait_seconds_count{function="m",node="n1"} 2`,
		`spur_function_run_seconds_count{function="m",node="n1"} 2`,
		`spur_function_run_seconds_bucket{function="m",node="n1",le="+Inf"} 2`,
		`spur_jobs_total{event="submitted",node="n1"} 4`,
		`spur_jobs_total{event="completed",node="n1"} 1`,
		`spur_packets_received_total{node="n1",type="SUBMIT_JOB_BG"} 3`,
		`spur_packets_received_total{node="n1",type="GRAB_JOB_ALL"} 2`,
		`spur_packets_received_total{node="n1",type="admin"} 4`,
		`spur_connections{kind="worker",node="n1"} 1`,
		`spur_connections{kind="client",node="n1"} 1`,
		`spur_function_oldest_queued_seconds{function="m",node="n1"} `,
		`spur_schedules{node="n1"} 1`,
		`spur_schedule_next_run_timestamp_seconds{function="nightly",node="n1",schedule="`,
		`spur_wal_batches_total{node="n1"} `,
		`spur_wal_commit_seconds_count{node="n1"} `,
		`spur_wal_fsync_seconds_bucket{node="n1",le="+Inf"} `,
		`spur_disk_free_bytes{node="n1"} `,
		`spur_results_stored{node="n1"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Every family the collector describes is served.
	descs := make(chan *prometheus.Desc, 100)
	metrics.New(nil, fakeLog{}).Describe(descs)
	close(descs)
	families := metrics.FunctionFamilies()
	for d := range descs {
		families = append(families, strings.Split(strings.TrimPrefix(d.String(), `Desc{fqName: "`), `"`)[0])
	}
	for _, name := range families {
		if !strings.Contains(body, "\n# TYPE "+name+" ") {
			t.Errorf("/metrics lacks the family %s", name)
		}
	}
	for _, positive := range []string{`spur_received_bytes_total{node="n1"}`, `spur_sent_bytes_total{node="n1"}`, `spur_function_oldest_queued_seconds{function="m",node="n1"}`} {
		v := metricValue(t, body, positive)
		if v <= 0 {
			t.Errorf("%s = %v, want > 0", positive, v)
		}
	}
}

// metricValue returns the value of the series whose line starts with name (labels included).
func metricValue(t *testing.T, body, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no series %s", name)
	return 0
}

// fakeLog stands for a job log where only the collector's descriptions are wanted.
type fakeLog struct{}

func (fakeLog) CommitStats() wal.CommitStats               { return wal.CommitStats{} }
func (fakeLog) DiskSpace() (free, reserve uint64, ok bool) { return 0, 0, false }
