package metrics

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/queue"
)

// Gatherer serves e's families: the server's through a registry (with more, such as Go's
// and the process's collectors), the per-function ones built by functionFamilies. Every
// series carries node="<e.NodeName()>", so that the series of a cluster's nodes stay apart
// wherever they are collected together. Its errors are the registry's.
func Gatherer(e *engine.Engine, log Log, more ...prometheus.Collector) (prometheus.Gatherer, error) {
	reg := prometheus.NewRegistry()
	node := e.NodeName()
	labelled := prometheus.WrapRegistererWith(prometheus.Labels{labelNode: node}, reg)
	if err := labelled.Register(New(e, log)); err != nil {
		return nil, err
	}
	for _, c := range more {
		if err := labelled.Register(c); err != nil {
			return nil, err
		}
	}
	return gatherer{reg, e, node}, nil
}

type gatherer struct {
	reg  *prometheus.Registry
	e    *engine.Engine
	node string
}

func (g gatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.reg.Gather()
	return append(mfs, functionFamilies(g.e.FunctionStats(), g.node, time.Now())...), err
}

// functionFamily is one per-function family: what each function's series holds.
type functionFamily struct {
	name, help string
	typ        dto.MetricType
	// value is f's value, and whether f has a series in the family.
	value func(f *engine.FunctionStat, now time.Time) (float64, bool)
}

// scalarFamilies are the per-function families of one series per function, labelled function.
var scalarFamilies = []functionFamily{
	{"gearman_jobs", "Jobs of the function, queued and running (gearman-exporter's series).", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, _ time.Time) (float64, bool) { return float64(f.Total), true }},
	{"gearman_jobs_running", "Jobs of the function running (gearman-exporter's series).", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, _ time.Time) (float64, bool) { return float64(f.Running), true }},
	{"gearman_jobs_waiting", "Jobs of the function waiting (gearman-exporter's series).", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, _ time.Time) (float64, bool) { return float64(f.Total - f.Running), true }},
	{"gearman_workers", "Workers of the function (gearman-exporter's series).", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, _ time.Time) (float64, bool) { return float64(f.Workers), true }},
	{"spur_function_jobs_scheduled", "Jobs of the function waiting for their run-at time (epoch jobs, retries in backoff).", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, _ time.Time) (float64, bool) { return float64(f.Scheduled), true }},
	{"spur_function_jobs_running", "Jobs of the function assigned to a worker.", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, _ time.Time) (float64, bool) { return float64(f.Running), true }},
	{"spur_function_workers", "Worker connections registered for the function.", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, _ time.Time) (float64, bool) { return float64(f.Workers), true }},
	{"spur_function_oldest_queued_seconds", "How long the function's longest-waiting ready job has waited (0 when none waits).", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, now time.Time) (float64, bool) {
			if f.Oldest.IsZero() {
				return 0, true
			}
			return max(0, now.Sub(f.Oldest).Seconds()), true
		}},
	{"spur_function_paused", "1 while the function is paused (its jobs are not handed out).", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, _ time.Time) (float64, bool) { return 1, f.Paused }},
	{"spur_function_limit", "Most of the function's jobs running at once (0 = no limit).", dto.MetricType_GAUGE,
		func(f *engine.FunctionStat, _ time.Time) (float64, bool) { return float64(f.Limit), f.Limit > 0 }},
}

// counterFamilies are the per-function counters, in the order of counterNames.
var counterFamilies = func() (out [len(counterNames)]functionFamily) {
	for i, name := range counterNames {
		out[i] = functionFamily{name: "spur_function_jobs_" + name + "_total", help: "Jobs of the function " + name + " since its record was made.",
			typ: dto.MetricType_COUNTER}
	}
	return out
}()

// The histogram families; a function has a series in one once it has an observation there
// (a histogram is 13 series: sent for every declared function they would be most of a scrape).
var histogramFamilies = [...]struct {
	name, help string
	of         func(st *queue.Stats) *queue.Histogram
}{
	{"spur_function_queue_wait_seconds", "Time from a job being queued (or coming due) to being handed to a worker.",
		func(st *queue.Stats) *queue.Histogram { return &st.QueueWait }},
	{"spur_function_run_seconds", "Time from a job being handed to a worker to its end (completed, failed, retried).",
		func(st *queue.Stats) *queue.Histogram { return &st.RunTime }},
}

// FunctionFamilies names the per-function families (for tests that check all are served).
func FunctionFamilies() []string {
	names := []string{"spur_function_jobs_queued"}
	for _, f := range scalarFamilies {
		names = append(names, f.name)
	}
	for _, f := range counterFamilies {
		names = append(names, f.name)
	}
	for _, h := range histogramFamilies {
		names = append(names, h.name)
	}
	return names
}

const labelNode = "node"

var (
	labelFunction = "function"
	labelNodeName = labelNode
	labelPriority = "priority"
	// byPriorityName are the priorities in the order of their names (high, low, normal), as
	// a family's series are sorted by their labels.
	byPriorityName = [...]queue.Priority{queue.High, queue.Low, queue.Normal}
	priorityLabels = func() (out [queue.NumPriorities]*dto.LabelPair) {
		for _, p := range byPriorityName {
			name := p.String()
			out[p] = &dto.LabelPair{Name: &labelPriority, Value: &name}
		}
		return out
	}()
)

// functionFamilies builds the per-function families of stats (sorted by name, as
// FunctionStats returns them) on node, each family's series in label order (function, node,
// priority). Label pairs and values are shared and allocated in slabs: a few allocations per
// family, not several per series.
func functionFamilies(stats []engine.FunctionStat, node string, now time.Time) []*dto.MetricFamily {
	n := len(stats)
	names := make([]string, n)
	fnLabel := make([]dto.LabelPair, n)
	nodeLabel := &dto.LabelPair{Name: &labelNodeName, Value: &node}
	fnOnly := make([][]*dto.LabelPair, n)
	pairs := make([]*dto.LabelPair, 0, 2*n)
	for i := range stats {
		names[i] = stats[i].Name
		fnLabel[i] = dto.LabelPair{Name: &labelFunction, Value: &names[i]}
		pairs = append(pairs, &fnLabel[i], nodeLabel)
		fnOnly[i] = pairs[len(pairs)-2 : len(pairs) : len(pairs)]
	}
	var out []*dto.MetricFamily

	queued := newFamily("spur_function_jobs_queued", "Jobs of the function waiting to run (scheduled ones included), by priority.", dto.MetricType_GAUGE, 3*n)
	labels := make([]*dto.LabelPair, 0, 9*n)
	for i := range stats {
		for _, p := range byPriorityName {
			labels = append(labels, &fnLabel[i], nodeLabel, priorityLabels[p])
			queued.add(labels[len(labels)-3:len(labels):len(labels)], float64(stats[i].Queued[p]))
		}
	}
	out = append(out, queued.mf)

	for _, spec := range scalarFamilies {
		fam := newFamily(spec.name, spec.help, spec.typ, n)
		for i := range stats {
			if v, ok := spec.value(&stats[i], now); ok {
				fam.add(fnOnly[i], v)
			}
		}
		out = append(out, fam.mf)
	}
	for c, spec := range counterFamilies {
		fam := newFamily(spec.name, spec.help, spec.typ, n)
		for i := range stats {
			fam.add(fnOnly[i], float64(counts(&stats[i].Stats)[c]))
		}
		out = append(out, fam.mf)
	}
	for _, spec := range histogramFamilies {
		typ := dto.MetricType_HISTOGRAM
		mf := &dto.MetricFamily{Name: &spec.name, Help: &spec.help, Type: &typ}
		for i := range stats {
			if h := spec.of(&stats[i].Stats); h.Count() > 0 {
				mf.Metric = append(mf.Metric, &dto.Metric{Label: fnOnly[i], Histogram: histogramOf(h)})
			}
		}
		out = append(out, mf)
	}
	// A family without series is left out: the text format has no way to say it is empty.
	out = slices.DeleteFunc(out, func(mf *dto.MetricFamily) bool { return len(mf.Metric) == 0 })
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// family is a gauge or counter family being filled from slabs sized for its series.
type family struct {
	mf      *dto.MetricFamily
	metrics []dto.Metric
	gauges  []dto.Gauge
	counter []dto.Counter
	values  []float64
}

func newFamily(name, help string, typ dto.MetricType, capacity int) *family {
	f := &family{mf: &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: make([]*dto.Metric, 0, capacity)},
		metrics: make([]dto.Metric, capacity), values: make([]float64, capacity)}
	if typ == dto.MetricType_COUNTER {
		f.counter = make([]dto.Counter, capacity)
	} else {
		f.gauges = make([]dto.Gauge, capacity)
	}
	return f
}

func (f *family) add(labels []*dto.LabelPair, v float64) {
	k := len(f.mf.Metric)
	m := &f.metrics[k]
	m.Label = labels
	f.values[k] = v
	if f.counter != nil {
		f.counter[k].Value = &f.values[k]
		m.Counter = &f.counter[k]
	} else {
		f.gauges[k].Value = &f.values[k]
		m.Gauge = &f.gauges[k]
	}
	f.mf.Metric = append(f.mf.Metric, m)
}

// histogramOf is h in Prometheus' form: cumulative buckets in seconds.
func histogramOf(h *queue.Histogram) *dto.Histogram {
	buckets := make([]dto.Bucket, len(queue.HistogramBounds))
	counts := make([]uint64, len(queue.HistogramBounds))
	bounds := make([]float64, len(queue.HistogramBounds))
	out := &dto.Histogram{Bucket: make([]*dto.Bucket, len(buckets))}
	var cum uint64
	for i, b := range queue.HistogramBounds {
		cum += h.Counts[i]
		counts[i], bounds[i] = cum, b.Seconds()
		buckets[i] = dto.Bucket{CumulativeCount: &counts[i], UpperBound: &bounds[i]}
		out.Bucket[i] = &buckets[i]
	}
	total, sum := h.Count(), h.Sum.Seconds()
	out.SampleCount, out.SampleSum = &total, &sum
	return out
}
