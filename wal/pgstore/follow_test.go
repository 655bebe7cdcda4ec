package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/spur-gearman/spur/wal"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

// A batch that changes function settings or dead letters tells every node, its own
// included, once committed; the others read the settings and only the letters they lack.
func TestChangesReachEveryNode(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	noPoll := func(o *Options) { o.Poll = time.Hour }
	a, _ := openStore(t, dsn, "a", noPoll)
	b, _ := openStore(t, dsn, "b", noPoll)
	changed := func(s *Store) chan struct{} {
		c := make(chan struct{}, 100)
		s.OnChanged(func() { c <- struct{}{} })
		s.OnReady(func([]string) {})
		return c
	}
	ca, cb := changed(a), changed(b)
	<-ca // each listener's connect
	<-cb
	wait := func(c chan struct{}, who string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s was not told of the change", who)
		}
	}
	putShared(t, a, "plain", 3) // jobs alone are no change
	select {
	case <-cb:
		t.Fatal("b was told of a change by a batch of jobs")
	case <-time.After(300 * time.Millisecond):
	}

	st := wal.FunctionSettings{Name: "fn", Paused: true, Limit: 3}
	if err := apply(t, a, func(txn *wal.Txn) { txn.PutFunction(st) }); err != nil {
		t.Fatal(err)
	}
	wait(cb, "b")
	wait(ca, "a")
	fns, err := b.Functions(context.Background())
	if err != nil || len(fns) != 1 || fns[0] != st {
		t.Fatalf("b read %+v, %v; want %+v", fns, err, st)
	}

	d1 := wal.DeadLetter{Job: wal.Record{Seq: 11, Handle: "H:a:11", Function: "fn", Data: []byte("one")},
		LastOutcome: wal.OutcomeFail, FirstFailed: 1, LastFailed: 2}
	d2 := d1
	d2.Job.Seq, d2.Job.Handle, d2.Job.Data = 12, "H:a:12", []byte("two")
	if err := apply(t, a, func(txn *wal.Txn) { txn.PutDead(d1); txn.PutDead(d2) }); err != nil {
		t.Fatal(err)
	}
	wait(cb, "b")
	seqs, fresh, err := b.DeadLetters(context.Background(), func(seq uint64) bool { return seq == 11 })
	if err != nil || len(seqs) != 2 || seqs[0] != 11 || seqs[1] != 12 {
		t.Fatalf("b read dead letters %v, %v; want 11 and 12", seqs, err)
	}
	if len(fresh) != 1 || fresh[0].Job.Handle != "H:a:12" || string(fresh[0].Job.Data) != "two" {
		t.Fatalf("b read the letters %+v, want only 12's (11 is known)", fresh)
	}
	if err := apply(t, a, func(txn *wal.Txn) { txn.DeleteDead(11) }); err != nil {
		t.Fatal(err)
	}
	wait(cb, "b")
	if seqs, _, _ := b.DeadLetters(context.Background(), func(uint64) bool { return true }); len(seqs) != 1 || seqs[0] != 12 {
		t.Fatalf("after the delete b reads %v, want 12 alone", seqs)
	}
}

// The schedule leader vacuums the jobs table once enough of its rows are dead.
func TestLeaderVacuumsTheJobsTable(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	a.vacuumEvery = 100 * time.Millisecond
	recs := putShared(t, a, "churn", vacuumMinDead+2000)
	for _, r := range recs {
		if err := a.Delete(r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	barrier(t, a)
	db := sqlDB(t, dsn)
	a.OnLeader(func(bool) {})
	deadline := time.Now().Add(20 * time.Second)
	for count(t, db, "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'spur_jobs'") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the jobs table was not vacuumed: %d dead rows", count(t, db, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'spur_jobs'"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
