package pgstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/metrics"
	"github.com/spur-gearman/spur/wal"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

// The store is what the engine and its metrics take.
var (
	_ engine.Store       = (*Store)(nil)
	_ engine.ResultLog   = (*Store)(nil)
	_ engine.SharedStore = (*Store)(nil)
	_ metrics.Log        = (*Store)(nil)
)

// A result written with its job's delete is read back by number and by unique (the newest
// of that unique), by any node; ResultStats counts it; ExpireResults removes the expired
// ones, oldest first, then the oldest beyond the byte bound, and stops at the first that
// is neither.
func TestResults(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	b, _ := openStore(t, dsn, "b")
	now := time.Now()
	var written []wal.Result
	for i, d := range []time.Duration{-time.Minute, -time.Second, time.Hour, -time.Second, time.Hour} {
		r := job(t, a, "f", "same")
		if err := put(t, a, r); err != nil {
			t.Fatal(err)
		}
		res := wal.Result{Seq: r.Seq, Handle: r.Handle, Function: "f", Unique: "same", Outcome: wal.OutcomeComplete,
			Data: []byte{byte(i)}, Attempts: 1, Created: 1, Started: 2, Finished: 3, Expires: now.Add(d).UnixNano()}
		if i == 4 {
			res.Unique, res.Outcome, res.Data = "", wal.OutcomeException, []byte{}
		}
		if err := apply(t, a, func(t *wal.Txn) {
			t.DeleteJob(r.Seq)
			t.PutResult(res)
		}); err != nil {
			t.Fatal(err)
		}
		written = append(written, res)
	}
	if n, size := a.ResultStats(); n != 5 || size <= 0 {
		t.Fatalf("ResultStats %d, %d", n, size)
	}
	for _, s := range []*Store{a, b} {
		got, ok, err := s.Result(written[1].Seq)
		if err != nil || !ok || !reflect.DeepEqual(got, written[1]) {
			t.Fatalf("%s: Result: %+v %v %v\nwant %+v", s.opts.Node, got, ok, err, written[1])
		}
		got, ok, err = s.ResultByUnique("f", "same")
		if err != nil || !ok || got.Seq != written[3].Seq {
			t.Fatalf("%s: ResultByUnique: %+v %v %v, want job %d", s.opts.Node, got, ok, err, written[3].Seq)
		}
		if _, ok, err := s.ResultByUnique("f", ""); ok || err != nil {
			t.Fatalf("ResultByUnique of no unique: %v %v", ok, err)
		}
		if _, ok, err := s.Result(1 << 40); ok || err != nil {
			t.Fatalf("Result of nothing: %v %v", ok, err)
		}
	}
	// A job that ends again (a dead letter queued again) leaves its newer result.
	again := written[2]
	again.Outcome, again.Data = wal.OutcomeFail, []byte("again")
	if err := apply(t, b, func(t *wal.Txn) { t.PutResult(again) }); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := a.Result(again.Seq); err != nil || !ok || !reflect.DeepEqual(got, again) {
		t.Fatalf("the second result of job %d: %+v %v %v", again.Seq, got, ok, err)
	}
	// The first two expired; the third holds back the fourth.
	n, err := b.ExpireResults(now, 0)
	if err != nil || n != 2 {
		t.Fatalf("ExpireResults: %d, %v; want 2", n, err)
	}
	if _, ok, _ := a.Result(written[0].Seq); ok {
		t.Fatal("an expired result is still there")
	}
	if _, ok, _ := a.Result(written[3].Seq); !ok {
		t.Fatal("a result behind one that has not expired went")
	}
	// A bound of one byte: the rest go, oldest first. (b counts the table first: it has
	// only seen its own expiries since it opened.)
	b.resultsCensus.Store(0)
	if n, err := b.ExpireResults(now, 1); err != nil || n != 3 {
		t.Fatalf("ExpireResults past the byte bound: %d, %v; want 3", n, err)
	}
	if n, size := b.ResultStats(); n != 0 || size != 0 {
		t.Fatalf("ResultStats after expiring all: %d, %d", n, size)
	}
	// Node a learns of b's expiries at its next census.
	a.resultsCensus.Store(0)
	if _, err := a.ExpireResults(now, 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.ResultStats(); n != 0 {
		t.Fatalf("a's ResultStats after the census: %d", n)
	}
}
