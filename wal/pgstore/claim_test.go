package pgstore

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spur-gearman/spur/wal"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

// putShared writes n unheld jobs of fn through s, priorities cycling, and returns them.
func putShared(t *testing.T, s *Store, fn string, n int) []wal.Record {
	t.Helper()
	done := make(ackChan, n)
	recs := make([]wal.Record, n)
	for i := range recs {
		recs[i] = job(t, s, fn, "")
		recs[i].Priority = uint8(i % 3)
		recs[i].Shared = true
		if err := s.Put(recs[i], done); err != nil {
			t.Fatal(err)
		}
	}
	for range recs {
		if err := waitAck(t, done); err != nil {
			t.Fatal(err)
		}
	}
	return recs
}

func claim(t *testing.T, s *Store, n int, fns ...string) []wal.Record {
	t.Helper()
	got, err := s.Claim(context.Background(), fns, n)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func seqsOf(rs []wal.Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

// A claim takes the best priority, then the oldest, of the functions asked for; nodes
// claiming together get disjoint jobs and, between them, all of them.
func TestClaimsAreOrderedAndDisjoint(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	b, _ := openStore(t, dsn, "b")
	c, _ := openStore(t, dsn, "c")
	recs := putShared(t, a, "f", 300)
	putShared(t, a, "other", 5)

	first := claim(t, b, 4, "f")
	var want []uint64
	for _, r := range recs {
		if r.Priority == 0 && len(want) < 4 {
			want = append(want, r.Seq)
		}
	}
	if got := seqsOf(first); !reflect.DeepEqual(got, want) {
		t.Fatalf("first claim %v, want the oldest high-priority jobs %v", got, want)
	}
	if first[0].Data == nil || first[0].Handle != recs[0].Handle || first[0].Function != "f" {
		t.Fatalf("claimed record %+v", first[0])
	}
	taken := map[uint64]string{}
	for _, r := range first {
		taken[r.Seq] = "b"
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range []*Store{b, c, b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.Claim(context.Background(), []string{"f", "nothing"}, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, r := range got {
					if who, dup := taken[r.Seq]; dup {
						t.Errorf("job %d claimed by %s and %s", r.Seq, who, s.opts.Node)
					}
					taken[r.Seq] = s.opts.Node
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(taken) != len(recs) {
		t.Fatalf("%d of %d jobs claimed", len(taken), len(recs))
	}
	db := sqlDB(t, dsn)
	if n := count(t, db, "SELECT count(*) FROM spur_jobs WHERE function = 'other' AND owner IS NULL"); n != 5 {
		t.Fatalf("%d jobs of another function left unheld, want 5", n)
	}
}

// A job with a run-at time is claimed once it is due, not before.
func TestClaimWaitsForRunAt(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	later, due := job(t, a, "f", ""), job(t, a, "f", "")
	later.RunAt, due.RunAt = time.Now().Unix()+3600, time.Now().Unix()-1
	later.Shared, due.Shared = true, true
	for _, r := range []wal.Record{later, due} {
		if err := put(t, a, r); err != nil {
			t.Fatal(err)
		}
	}
	if got := seqsOf(claim(t, a, 10, "f")); !reflect.DeepEqual(got, []uint64{due.Seq}) {
		t.Fatalf("claimed %v, want only the due job %d", got, due.Seq)
	}
}

// A node renews the lease of the jobs it holds: nobody else claims them while it lives.
// Once it is gone (closed without releasing them), they are claimable when the lease lapses.
func TestLeaseRenewedThenLapses(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	short := func(o *Options) { o.Lease = time.Second }
	a, _ := openStore(t, dsn, "a", short)
	b, _ := openStore(t, dsn, "b", short)
	recs := putShared(t, a, "f", 10)
	if got := claim(t, a, 10, "f"); len(got) != 10 {
		t.Fatalf("a claimed %d", len(got))
	}
	held := job(t, a, "f", "") // written held by a
	if err := put(t, a, held); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past two leases: a renewed them
	if got := claim(t, b, 100, "f"); len(got) != 0 {
		t.Fatalf("b claimed %d jobs a holds and renews", len(got))
	}
	if a.RenewFailures() != 0 {
		t.Fatalf("%d renewals failed", a.RenewFailures())
	}
	a.Close()
	start := time.Now()
	var got []wal.Record
	for time.Since(start) < 5*time.Second && len(got) < len(recs)+1 {
		got = append(got, claim(t, b, 100, "f")...)
		time.Sleep(100 * time.Millisecond)
	}
	if len(got) != len(recs)+1 {
		t.Fatalf("b claimed %d of a's %d jobs after a went", len(got), len(recs)+1)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("a's jobs were claimable %v after a went: before its lease lapsed", waited)
	}
	// b opening again as b recovers them: they are b's now.
	b.Close()
	_, rec := openStore(t, dsn, "b", short)
	if len(rec.Jobs) != len(recs)+1 {
		t.Fatalf("b recovers %d jobs", len(rec.Jobs))
	}
}

// readyCalls collects what OnReady tells.
type readyCalls struct {
	mu    sync.Mutex
	calls [][]string
	got   chan []string
}

func watchReady(s *Store) *readyCalls {
	r := &readyCalls{got: make(chan []string, 100)}
	s.OnReady(func(fns []string) {
		r.mu.Lock()
		r.calls = append(r.calls, fns)
		r.mu.Unlock()
		select {
		case r.got <- fns:
		default:
		}
	})
	return r
}

// waitFor waits for a call listing fn.
func (r *readyCalls) waitFor(t *testing.T, fn string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case fns := <-r.got:
			if slices.Contains(fns, fn) {
				return
			}
		case <-deadline:
			t.Fatalf("no notification of %s within %v", fn, within)
		}
	}
}

// A batch of unheld jobs wakes the other nodes with one notification naming their
// functions, not its own; OnReady is also told nil every Poll.
func TestNotifyReachesOtherNodes(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	noPoll := func(o *Options) { o.Poll = time.Hour }
	a, _ := openStore(t, dsn, "a", noPoll)
	b, _ := openStore(t, dsn, "b", noPoll)
	ra, rb := watchReady(a), watchReady(b)
	<-ra.got // the nil of each listener's connect
	<-rb.got
	release := holdCommitter(a) // 20 jobs in one batch: one notification
	done := make(ackChan, 20)
	for i := 0; i < 20; i++ {
		r := job(t, a, "fn-x", "")
		r.Shared = true
		if err := a.Put(r, done); err != nil {
			t.Fatal(err)
		}
	}
	release()
	for i := 0; i < 20; i++ {
		if err := waitAck(t, done); err != nil {
			t.Fatal(err)
		}
	}
	putShared(t, a, "fn-y", 1)
	rb.waitFor(t, "fn-x", 5*time.Second)
	held := job(t, a, "fn-held", "")
	if err := put(t, a, held); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ra.mu.Lock()
	if len(ra.calls) != 1 {
		t.Errorf("a was told %v: its own notifications", ra.calls)
	}
	ra.mu.Unlock()
	rb.mu.Lock()
	notified := 0
	for _, fns := range rb.calls {
		if fns != nil {
			notified++
		}
		if slices.Contains(fns, "fn-held") {
			t.Errorf("b told of a job a holds: %v", fns)
		}
	}
	rb.mu.Unlock()
	if notified > 2 {
		t.Errorf("b notified %d times for 2 batches", notified)
	}

	c, _ := openStore(t, dsn, "c", func(o *Options) { o.Poll = 100 * time.Millisecond })
	rc := watchReady(c)
	deadline := time.After(5 * time.Second)
	for polls := 0; polls < 5; {
		select {
		case fns := <-rc.got:
			if fns == nil {
				polls++
			}
		case <-deadline:
			t.Fatalf("%d polls in 5 s with a poll period of 100 ms", polls)
		}
	}
}

// Release gives a node's unstarted jobs back: unheld again, the other nodes told, and
// claimable by them at once.
func TestReleaseWakesOthers(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	b, _ := openStore(t, dsn, "b", func(o *Options) { o.Poll = time.Hour })
	rb := watchReady(b)
	<-rb.got // listening
	var seqs []uint64
	for i := 0; i < 3; i++ {
		r := job(t, a, "rel", "")
		if err := put(t, a, r); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, r.Seq)
	}
	if got := claim(t, b, 10, "rel"); len(got) != 0 {
		t.Fatalf("b claimed %d jobs a holds", len(got))
	}
	if err := a.Release(context.Background(), seqs); err != nil {
		t.Fatal(err)
	}
	rb.waitFor(t, "rel", 5*time.Second)
	if got := seqsOf(claim(t, b, 10, "rel")); !reflect.DeepEqual(got, seqs) {
		t.Fatalf("b claimed %v after the release, want %v", got, seqs)
	}
	// Released by a, now b's: a cannot release them again.
	if err := a.Release(context.Background(), seqs); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := b.Job(context.Background(), seqs[0]); got.Seq != seqs[0] {
		t.Fatal("job gone")
	}
	db := sqlDB(t, dsn)
	if n := count(t, db, "SELECT count(*) FROM spur_jobs WHERE owner = 'b'"); n != 3 {
		t.Fatalf("%d jobs b holds after a's second release, want 3", n)
	}
}

// Job and JobByUnique find a job wherever it is, and tell whether a node holds it.
func TestJobLookup(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	b, _ := openStore(t, dsn, "b")
	heldJob := job(t, a, "f", "u1")
	free := job(t, a, "f", "u2")
	free.Shared = true
	for _, r := range []wal.Record{heldJob, free} {
		if err := put(t, a, r); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	r, held, found, err := b.Job(ctx, heldJob.Seq)
	if err != nil || !found || !held || r.Handle != heldJob.Handle || string(r.Data) != string(heldJob.Data) {
		t.Fatalf("Job of a held job: %+v held %v found %v %v", r, held, found, err)
	}
	r, held, found, err = b.JobByUnique(ctx, "f", "u2")
	if err != nil || !found || held || r.Seq != free.Seq {
		t.Fatalf("JobByUnique of an unheld job: %+v held %v found %v %v", r, held, found, err)
	}
	if _, _, found, err := b.Job(ctx, 1<<50); found || err != nil {
		t.Fatalf("Job of nothing: found %v %v", found, err)
	}
	if _, _, found, err := b.JobByUnique(ctx, "f", ""); found || err != nil {
		t.Fatalf("JobByUnique of no unique: found %v %v", found, err)
	}
}

// One node at a time is the leader; when it closes, another takes over within a poll or
// two.
func TestLeadershipMovesWhenTheLeaderGoes(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	type event struct {
		node   string
		leader bool
	}
	events := make(chan event, 16)
	stores := map[string]*Store{}
	for _, n := range []string{"a", "b", "c"} {
		s, _ := openStore(t, dsn, n, func(o *Options) { o.Poll = 100 * time.Millisecond })
		stores[n] = s
		s.OnLeader(func(l bool) { events <- event{n, l} })
	}
	next := func() event {
		select {
		case e := <-events:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no leadership change within 5 s")
			return event{}
		}
	}
	first := next()
	if !first.leader {
		t.Fatalf("first event %+v", first)
	}
	select {
	case e := <-events:
		t.Fatalf("a second leader while %s leads: %+v", first.node, e)
	case <-time.After(500 * time.Millisecond):
	}
	stores[first.node].Close()
	if e := next(); e.node != first.node || e.leader {
		t.Fatalf("after closing the leader: %+v, want %s told false", e, first.node)
	}
	second := next()
	if !second.leader || second.node == first.node {
		t.Fatalf("after the leader went: %+v", second)
	}
}

// Cancel deletes a job no node holds and returns it; a job a live node holds is left, its
// holder named; a wrong handle or a gone job is unknown.
func TestCancelOnlyWhatNoLiveNodeHolds(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	b, _ := openStore(t, dsn, "b")
	ctx := context.Background()
	offered := putShared(t, a, "fn", 1)[0]
	r, done, holder, err := b.Cancel(ctx, offered.Seq, offered.Handle)
	if err != nil || !done || holder != "" || r.Handle != offered.Handle || string(r.Data) != string(offered.Data) {
		t.Fatalf("cancel of an offered job = %+v, %v, %q, %v; want it deleted and returned", r, done, holder, err)
	}
	if _, _, found, _ := b.Job(ctx, offered.Seq); found {
		t.Fatal("the cancelled job is still there")
	}
	if _, done, holder, err := b.Cancel(ctx, offered.Seq, offered.Handle); done || holder != "" || err != nil {
		t.Fatalf("a second cancel = %v, %q, %v; want unknown", done, holder, err)
	}

	held := job(t, a, "fn", "")
	if err := put(t, a, held); err != nil {
		t.Fatal(err)
	}
	if _, done, _, _ := b.Cancel(ctx, held.Seq, held.Handle+"x"); done {
		t.Fatal("a cancel with the wrong handle deleted the job")
	}
	if _, done, holder, err := b.Cancel(ctx, held.Seq, held.Handle); done || holder != "a" || err != nil {
		t.Fatalf("cancel of a's job = %v, %q, %v; want it left, held by a", done, holder, err)
	}
}

// Unclaimed counts the offered jobs by function, not those a live node holds.
func TestUnclaimedCountsWhatNoNodeHolds(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	putShared(t, a, "fn", 3)
	putShared(t, a, "other", 1)
	if err := put(t, a, job(t, a, "fn", "")); err != nil {
		t.Fatal(err)
	}
	got, err := a.Unclaimed(context.Background())
	if err != nil || !reflect.DeepEqual(got, map[string]int{"fn": 3, "other": 1}) {
		t.Fatalf("Unclaimed = %v, %v; want fn 3, other 1", got, err)
	}
}

// A read that runs out of its caller's time says the database is slow, not unreachable:
// submits are not refused for it.
func TestReadOutOfTimeKeepsTheStoreWritable(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, err := a.Unclaimed(ctx); err == nil {
		t.Fatal("a count with no time left succeeded")
	}
	if _, err := a.Claim(ctx, []string{"fn"}, 1); err == nil {
		t.Fatal("a claim with no time left succeeded")
	}
	if err := a.Writable(); err != nil {
		t.Fatalf("after reads ran out of time the store refuses writes: %v", err)
	}
}

// JobOfUnique finds a unique in whichever function has it, the newest job first.
func TestJobOfUniqueInAnyFunction(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	for _, fn := range []string{"alpha", "beta", "gamma"} {
		for _, u := range []string{"u1", "u2"} {
			if err := put(t, a, job(t, a, fn, fn+"-"+u)); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := job(t, a, "beta", "shared")
	newer := job(t, a, "gamma", "shared")
	for _, r := range []wal.Record{old, newer} {
		if err := put(t, a, r); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if r, found, err := a.JobOfUnique(ctx, "beta-u2"); err != nil || !found || r.Function != "beta" {
		t.Fatalf("beta-u2: %+v, %v, %v", r, found, err)
	}
	if r, found, err := a.JobOfUnique(ctx, "shared"); err != nil || !found || r.Handle != newer.Handle {
		t.Fatalf("shared: %+v, %v, %v; want the newer, %s", r, found, err, newer.Handle)
	}
	if _, found, err := a.JobOfUnique(ctx, "nobody"); err != nil || found {
		t.Fatalf("nobody: %v, %v; want not found", found, err)
	}
}
