package metrics

import (
	"io"
	"testing"

	"github.com/prometheus/common/expfmt"
)

// BenchmarkGatherAndEncode10kFunctions is what a /metrics request costs with 10,000
// functions: the registry's gather (collect, checks, sorting) and the text encoding.
func BenchmarkGatherAndEncode10kFunctions(b *testing.B) {
	e := newEngine(b, 10000)
	g, err := Gatherer(e, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		mfs, err := g.Gather()
		if err != nil {
			b.Fatal(err)
		}
		enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
