// Package metrics exposes the engine to Prometheus: a Collector that reads the engine's
// counts at scrape time, so that nothing is counted on the hot path for it. It serves two
// sets of families:
//
//   - Spur's own, prefixed spur_: spur_function_jobs_queued{function,priority},
//     spur_function_jobs_running{function}, spur_function_workers{function},
//     spur_connections, spur_results_stored, spur_dead_letters, spur_schedules;
//   - those of bakins/gearman-exporter, so that its alerts and Grafana panels keep working:
//     gearman_up, gearman_version_info{version}, gearman_jobs{function},
//     gearman_jobs_running{function}, gearman_jobs_waiting{function},
//     gearman_workers{function}.
//
// A scrape takes each function shard's lock once, briefly (Engine.FunctionStats).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spur-gearman/spur/engine"
)

// Collector implements prometheus.Collector over an engine.
type Collector struct {
	e *engine.Engine

	queued, running, workers       *prometheus.Desc
	connections, dead, schedules   *prometheus.Desc
	gUp, gVersion, gJobs, gRunning *prometheus.Desc
	gWaiting, gWorkers             *prometheus.Desc
}

// New returns a collector of e.
func New(e *engine.Engine) *Collector {
	fn := []string{"function"}
	return &Collector{
		e:           e,
		queued:      prometheus.NewDesc("spur_function_jobs_queued", "Jobs of the function waiting to run (scheduled ones included), by priority.", []string{"function", "priority"}, nil),
		running:     prometheus.NewDesc("spur_function_jobs_running", "Jobs of the function assigned to a worker.", fn, nil),
		workers:     prometheus.NewDesc("spur_function_workers", "Worker connections registered for the function.", fn, nil),
		connections: prometheus.NewDesc("spur_connections", "Open connections (clients, workers and admin alike).", nil, nil),
		dead:        prometheus.NewDesc("spur_dead_letters", "Background jobs kept in the dead-letter list.", nil, nil),
		schedules:   prometheus.NewDesc("spur_schedules", "Recurring schedules.", nil, nil),
		gUp:         prometheus.NewDesc("gearman_up", "Whether the job server answers (gearman-exporter's series).", nil, nil),
		gVersion:    prometheus.NewDesc("gearman_version_info", "The job server's version (gearman-exporter's series).", []string{"version"}, nil),
		gJobs:       prometheus.NewDesc("gearman_jobs", "Jobs of the function, queued and running (gearman-exporter's series).", fn, nil),
		gRunning:    prometheus.NewDesc("gearman_jobs_running", "Jobs of the function running (gearman-exporter's series).", fn, nil),
		gWaiting:    prometheus.NewDesc("gearman_jobs_waiting", "Jobs of the function waiting (gearman-exporter's series).", fn, nil),
		gWorkers:    prometheus.NewDesc("gearman_workers", "Workers of the function (gearman-exporter's series).", fn, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queued, c.running, c.workers, c.connections, c.dead, c.schedules,
		c.gUp, c.gVersion, c.gJobs, c.gRunning, c.gWaiting, c.gWorkers} {
		ch <- d
	}
}

var priorities = [...]string{"high", "normal", "low"}

// Collect implements prometheus.Collector: one pass over the functions.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, f := range c.e.FunctionStats() {
		waiting := 0
		for p, n := range f.Queued {
			gauge(c.queued, n, f.Name, priorities[p])
			waiting += n
		}
		gauge(c.running, f.Running, f.Name)
		gauge(c.workers, f.Workers, f.Name)
		gauge(c.gJobs, f.Total, f.Name)
		gauge(c.gRunning, f.Running, f.Name)
		gauge(c.gWaiting, waiting, f.Name)
		gauge(c.gWorkers, f.Workers, f.Name)
	}
	gauge(c.connections, c.e.Sessions())
	gauge(c.dead, c.e.DeadCount())
	gauge(c.schedules, c.e.ScheduleCount())
	gauge(c.gUp, 1)
	gauge(c.gVersion, 1, engine.Version)
}
