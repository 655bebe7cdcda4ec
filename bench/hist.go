package main

import "math/bits"

// histogram is a fixed-size log-linear latency histogram over nanoseconds: values below 128
// have a bucket each; above, every power of two is split into 64 buckets, so a bucket is at
// most 1/64 (1.6 %) of its value wide. Recording never allocates.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    int64
}

const (
	histSub     = 6 // 2^6 sub-buckets per power of two
	histBuckets = (64-histSub)<<histSub + 2<<histSub
)

func newHistogram() *histogram { return &histogram{} }

func histIndex(v uint64) int {
	if v < 2<<histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSub - 1 // v>>shift is in [64, 128)
	return shift<<histSub + int(v>>shift)
}

// histValue is the middle of bucket i.
func histValue(i int) int64 {
	if i < 2<<histSub {
		return int64(i)
	}
	shift := i>>histSub - 1
	mant := int64(i - shift<<histSub)
	return mant<<shift + (int64(1)<<shift)/2
}

func (h *histogram) record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.counts[histIndex(uint64(ns))]++
	h.n++
	if ns > h.max {
		h.max = ns
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1) in nanoseconds.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(histValue(i), h.max)
		}
	}
	return h.max
}

// latency summarizes h in microseconds.
func (h *histogram) latency() *Latency {
	return &Latency{
		P50:  float64(h.quantile(0.50)) / 1e3,
		P99:  float64(h.quantile(0.99)) / 1e3,
		P999: float64(h.quantile(0.999)) / 1e3,
		Max:  float64(h.max) / 1e3,
	}
}
