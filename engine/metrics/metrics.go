// Package metrics exposes the engine to Prometheus: a Collector that reads the engine's
// counts at scrape time. Nothing is counted for it on the hot path: the per-function
// counters and histograms are plain fields under the shard lock the engine holds anyway
// (queue.Stats), the traffic counters are per event loop (engine/traffic.go), the job log's
// are per batch. A scrape takes each function shard's lock once, briefly
// (Engine.FunctionStats), and builds the series outside the locks.
//
// Two paths serve them (Gatherer joins them): the server's families go through a
// prometheus.Collector and a registry; the per-function families, thousands of series for
// thousands of functions, are built straight as Prometheus' data model, already in the order
// a registry would sort them into and without its duplicate checks, which cost more than the
// series themselves (functions.go).
//
// Families (all gauges unless the name ends in _total or is a histogram). Every series
// served (Gatherer), Go's and the process's included, carries node="<NodeName>" (spurd's
// --node-name), so that a cluster's nodes stay apart when one Prometheus or one federation
// collects them all:
//
//	per function, labelled function (and priority where said):
//	  spur_function_jobs_queued{priority}     queued or waiting for their time
//	  spur_function_jobs_scheduled            of those, waiting for their run-at time
//	  spur_function_jobs_running, spur_function_workers
//	  spur_function_oldest_queued_seconds     age of the longest-waiting ready job (0: none)
//	  spur_function_paused, spur_function_limit (only while paused, or limited)
//	  spur_function_jobs_{submitted,completed,failed,retried,dead_lettered}_total
//	  spur_function_queue_wait_seconds        histogram: queued (or due) to handed out
//	  spur_function_run_seconds               histogram: handed out to its end
//	                                          (both from the function's first observation on)
//	server:
//	  spur_jobs_total{event}                  the same five counters over every function
//	  spur_connections{kind}                  client, worker, admin (see Engine.ConnectionKinds)
//	  spur_received_bytes_total, spur_sent_bytes_total
//	  spur_packets_received_total{type}       by packet type name; "admin" for text lines
//	  spur_results_stored, spur_results_bytes, spur_dead_letters, spur_schedules
//	  spur_schedule_next_run_timestamp_seconds{schedule,function}
//	the job log (with a durable queue):
//	  spur_wal_batches_total, spur_wal_batch_ops (histogram)
//	  spur_wal_commit_seconds (histogram), spur_wal_fsync_seconds (histogram)
//	  spur_disk_free_bytes, spur_disk_reserve_bytes
//	  spur_lease_renewal_failures_total        a shared store's (-q postgres) failed renewals
//	bakins/gearman-exporter's, so that its alerts and Grafana panels keep working:
//	  gearman_up, gearman_version_info{version}, gearman_jobs{function},
//	  gearman_jobs_running{function}, gearman_jobs_waiting{function}, gearman_workers{function}
//
// A function's counters start from zero when its record is made; the engine deletes the
// record of a function idle for a while (no jobs, workers or settings), and its series then
// end, to restart from zero if it comes back, which Prometheus' rate() reads as a reset.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// Log is what the collector reads of a durable job log; *wal.Log is one.
type Log interface {
	CommitStats() wal.CommitStats
	DiskSpace() (free, reserve uint64, ok bool)
}

// Leased is a job log that holds its jobs under a lease it renews (a shared store,
// wal/pgstore): while renewals fail the lease runs out, other nodes take this node's jobs,
// and its workers may run them twice.
type Leased interface {
	RenewFailures() uint64
}

// Collector implements prometheus.Collector over an engine's server-wide families.
type Collector struct {
	e   *engine.Engine
	log Log // nil without a durable queue

	jobs, connections, bytesIn, bytesOut, packets  *prometheus.Desc
	results, resultBytes, dead, schedules, nextRun *prometheus.Desc
	walBatches, walBatchOps, walCommit, walSync    *prometheus.Desc
	diskFree, diskReserve, renewFailures           *prometheus.Desc
	gUp, gVersion                                  *prometheus.Desc
}

var counterNames = [5]string{"submitted", "completed", "failed", "retried", "dead_lettered"}

// New returns a collector of e's server-wide families; log is its durable job log, or nil.
func New(e *engine.Engine, log Log) *Collector {
	d := prometheus.NewDesc
	return &Collector{
		e:           e,
		log:         log,
		jobs:        d("spur_jobs_total", "Job events over every function since start: submitted, completed, failed, retried, dead_lettered.", []string{"event"}, nil),
		connections: d("spur_connections", "Open connections by kind: worker (registered a function), admin (sent an admin command), client.", []string{"kind"}, nil),
		bytesIn:     d("spur_received_bytes_total", "Bytes of packets and admin lines received.", nil, nil),
		bytesOut:    d("spur_sent_bytes_total", "Bytes handed to the connections to send.", nil, nil),
		packets:     d("spur_packets_received_total", "Packets received by type (admin: text admin lines).", []string{"type"}, nil),
		results:     d("spur_results_stored", "Background job results kept.", nil, nil),
		resultBytes: d("spur_results_bytes", "Bytes the kept results take.", nil, nil),
		dead:        d("spur_dead_letters", "Background jobs kept in the dead-letter list.", nil, nil),
		schedules:   d("spur_schedules", "Recurring schedules.", nil, nil),
		nextRun:     d("spur_schedule_next_run_timestamp_seconds", "When the schedule fires next (unix time); absent while paused.", []string{"schedule", "function"}, nil),
		walBatches:  d("spur_wal_batches_total", "Group commits of the job log.", nil, nil),
		walBatchOps: d("spur_wal_batch_ops", "Records and transactions per group commit.", nil, nil),
		walCommit:   d("spur_wal_commit_seconds", "Time from a batch leaving the queue to being durable.", nil, nil),
		walSync:     d("spur_wal_fsync_seconds", "Time the acknowledger waited for a batch's fsync.", nil, nil),
		diskFree:    d("spur_disk_free_bytes", "Free bytes in the data dir's file system.", nil, nil),
		diskReserve: d("spur_disk_reserve_bytes", "Free bytes kept in reserve: below them new jobs are refused.", nil, nil),
		renewFailures: d("spur_lease_renewal_failures_total",
			"Renewals of this node's lease in the shared store (-q postgres) that failed since start.", nil, nil),
		gUp:      d("gearman_up", "Whether the job server answers (gearman-exporter's series).", nil, nil),
		gVersion: d("gearman_version_info", "The job server's version (gearman-exporter's series).", []string{"version"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.connections, c.bytesIn, c.bytesOut, c.packets,
		c.results, c.resultBytes, c.dead, c.schedules, c.nextRun, c.gUp, c.gVersion} {
		ch <- d
	}
	if c.log != nil {
		for _, d := range []*prometheus.Desc{c.walBatches, c.walBatchOps, c.walCommit, c.walSync, c.diskFree, c.diskReserve} {
			ch <- d
		}
		if _, ok := c.log.(Leased); ok {
			ch <- c.renewFailures
		}
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	total := c.e.TotalStats()
	for i, v := range counts(&total) {
		counter(c.jobs, v, counterNames[i])
	}
	for kind, n := range c.e.ConnectionKinds() {
		gauge(c.connections, float64(n), kind)
	}
	tr := c.e.Traffic()
	counter(c.bytesIn, tr.BytesIn)
	counter(c.bytesOut, tr.BytesOut)
	for typ, n := range tr.Packets {
		counter(c.packets, n, typ)
	}
	n, bytes := c.e.ResultStats()
	gauge(c.results, float64(n))
	gauge(c.resultBytes, float64(bytes))
	gauge(c.dead, float64(c.e.DeadCount()))
	schedules := c.e.Schedules()
	gauge(c.schedules, float64(len(schedules)))
	for _, s := range schedules {
		if !s.Next.IsZero() {
			gauge(c.nextRun, float64(s.Next.UnixMilli())/1e3, s.Handle, s.Function)
		}
	}
	if c.log != nil {
		c.collectLog(ch, gauge)
	}
	gauge(c.gUp, 1)
	gauge(c.gVersion, 1, engine.Version)
}

// collectLog reports the job log's commits and the disk.
func (c *Collector) collectLog(ch chan<- prometheus.Metric, gauge func(*prometheus.Desc, float64, ...string)) {
	st := c.log.CommitStats()
	ch <- prometheus.MustNewConstMetric(c.walBatches, prometheus.CounterValue, float64(st.Batches))
	opsBounds := make([]float64, len(wal.BatchOpsBounds))
	for i, b := range wal.BatchOpsBounds {
		opsBounds[i] = float64(b)
	}
	ch <- histogram(c.walBatchOps, opsBounds, st.BatchOps[:], float64(st.Ops))
	latBounds := make([]float64, len(wal.LatencyBounds))
	for i, b := range wal.LatencyBounds {
		latBounds[i] = b.Seconds()
	}
	ch <- histogram(c.walCommit, latBounds, st.Commit[:], st.CommitSum.Seconds())
	ch <- histogram(c.walSync, latBounds, st.Sync[:], st.SyncSum.Seconds())
	if free, reserve, ok := c.log.DiskSpace(); ok {
		gauge(c.diskFree, float64(free))
		gauge(c.diskReserve, float64(reserve))
	}
	if l, ok := c.log.(Leased); ok {
		ch <- prometheus.MustNewConstMetric(c.renewFailures, prometheus.CounterValue, float64(l.RenewFailures()))
	}
}

// counts lists st's counters in the order of counterNames.
func counts(st *queue.Stats) [5]uint64 {
	return [5]uint64{st.Submitted, st.Completed, st.Failed, st.Retried, st.DeadLettered}
}

// histogram makes a constant histogram of per-bucket counts (the last one unbounded), which
// Prometheus wants cumulative.
func histogram(d *prometheus.Desc, bounds []float64, perBucket []uint64, sum float64, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		cum += perBucket[i]
		buckets[b] = cum
	}
	cum += perBucket[len(bounds)]
	return prometheus.MustNewConstHistogram(d, cum, sum, buckets, labels...)
}
