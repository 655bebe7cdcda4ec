package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spur-gearman/spur/wal"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore opens a store on dsn as node, closed when the test ends.
func openStore(t testing.TB, dsn, node string, tweak ...func(*Options)) (*Store, *wal.Recovered) {
	t.Helper()
	o := Options{DSN: dsn, Node: node, Lease: 3 * time.Second, Poll: 200 * time.Millisecond, Logger: quietLogger()}
	for _, f := range tweak {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, rec, err := Open(ctx, o)
	if err != nil {
		t.Fatalf("open as %s: %v", node, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

// sqlDB is a plain connection pool to dsn, for looking at the tables.
func sqlDB(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func count(t testing.TB, db *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// ackChan is an Ack that hands its outcome to a channel.
type ackChan chan error

func (c ackChan) Acked(err error) { c <- err }

// ackFunc adapts a function to wal.Ack.
type ackFunc func(error)

func (f ackFunc) Acked(err error) { f(err) }

func waitAck(t testing.TB, c ackChan) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("no acknowledgement within 20 s")
		return nil
	}
}

func mustSeq(t testing.TB, s *Store) uint64 {
	t.Helper()
	seq, err := s.NextSeq()
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// job is a record numbered by s.
func job(t testing.TB, s *Store, fn, unique string) wal.Record {
	seq := mustSeq(t, s)
	return wal.Record{Seq: seq, Handle: fmt.Sprintf("H:t:%d", seq), Function: fn, Unique: unique,
		Priority: 1, Data: []byte("data " + fmt.Sprint(seq))}
}

// put writes r and waits for its acknowledgement.
func put(t testing.TB, s *Store, r wal.Record) error {
	t.Helper()
	c := make(ackChan, 1)
	if err := s.Put(r, c); err != nil {
		t.Fatal(err)
	}
	return waitAck(t, c)
}

func barrier(t testing.TB, s *Store) {
	t.Helper()
	c := make(ackChan, 1)
	if err := s.Barrier(c); err != nil {
		t.Fatal(err)
	}
	if err := waitAck(t, c); err != nil {
		t.Fatal(err)
	}
}

func apply(t testing.TB, s *Store, build func(*wal.Txn)) error {
	t.Helper()
	var txn wal.Txn
	build(&txn)
	c := make(ackChan, 1)
	if err := s.Apply(&txn, c); err != nil {
		t.Fatal(err)
	}
	return waitAck(t, c)
}

// Two nodes starting together on a new database migrate it once; a database whose schema
// is newer than the binary is refused with a message that says so.
func TestOpenMigratesOnceAndRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _, err := Open(context.Background(), Options{DSN: dsn, Node: fmt.Sprint("n", i), Logger: quietLogger()})
			errs[i] = err
			if err == nil {
				s.Close()
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	db := sqlDB(t, dsn)
	if n := count(t, db, "SELECT count(*) FROM spur_schema_migrations"); n != SchemaVersion {
		t.Fatalf("%d migrations recorded, want %d", n, SchemaVersion)
	}
	if _, err := db.Exec(context.Background(), "INSERT INTO spur_schema_migrations (version, description) VALUES (99, 'future')"); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(context.Background(), Options{DSN: dsn, Node: "n", Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "version 99, newer than this spurd knows") {
		t.Fatalf("open of a newer schema: %v", err)
	}
	if _, _, err := Open(context.Background(), Options{DSN: dsn, Logger: quietLogger()}); err == nil {
		t.Fatal("open without a node name succeeded")
	}
	if _, _, err := Open(context.Background(), Options{Node: "n", Logger: quietLogger()}); err == nil {
		t.Fatal("open without a DSN succeeded")
	}
}

// Puts from many goroutines are acknowledged in call order, each only once its row is
// committed (visible to another connection), and group-committed: far fewer transactions
// than jobs.
func TestAcksAfterCommitInOrderGroupCommitted(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s, _ := openStore(t, dsn, "a")
	db := sqlDB(t, dsn)
	const n = 2000
	var (
		callMu sync.Mutex
		calls  []uint64 // Put call order
		ackMu  sync.Mutex
		acks   []uint64
		wg     sync.WaitGroup
		bad    = make(chan string, n)
	)
	wg.Add(n)
	for w := 0; w < 16; w++ {
		go func() {
			for i := 0; i < n/16; i++ {
				callMu.Lock()
				r := job(t, s, "f", "")
				seq := r.Seq
				check := i%100 == 0
				calls = append(calls, seq) // before Put: its ack may run before Put returns
				err := s.Put(r, ackFunc(func(err error) {
					defer wg.Done()
					if err != nil {
						bad <- fmt.Sprintf("job %d: %v", seq, err)
					}
					if check && count(t, db, "SELECT count(*) FROM spur_jobs WHERE seq = $1", int64(seq)) != 1 {
						bad <- fmt.Sprintf("job %d acknowledged before its row is visible", seq)
					}
					ackMu.Lock()
					acks = append(acks, seq)
					ackMu.Unlock()
				}))
				if err != nil {
					calls = calls[:len(calls)-1]
				}
				callMu.Unlock()
				if err != nil {
					bad <- err.Error()
					wg.Done()
				}
			}
		}()
	}
	wg.Wait()
	close(bad)
	for m := range bad {
		t.Error(m)
	}
	if !reflect.DeepEqual(calls, acks) {
		t.Fatalf("acknowledgements out of call order (%d calls, %d acks)", len(calls), len(acks))
	}
	if got := count(t, db, "SELECT count(*) FROM spur_jobs"); got != n {
		t.Fatalf("%d rows, want %d", got, n)
	}
	st := s.CommitStats()
	if st.Ops != n || st.Batches == 0 || st.Batches > n/4 {
		t.Fatalf("%d ops in %d batches: not group-committed", st.Ops, st.Batches)
	}
	t.Logf("%d puts in %d transactions", st.Ops, st.Batches)
}

// A node's own jobs come back in submission order when it opens again, with every field,
// claimed again with a fresh lease; another node's open recovers none of them, nor the
// unheld ones. Functions, dead letters, schedules, records of other kinds and the results'
// count come back to every node.
func TestRecoveryOfOwnJobsAndEveryRecord(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s, rec := openStore(t, dsn, "a")
	if len(rec.Jobs)+len(rec.Functions)+len(rec.Dead)+len(rec.Schedules)+rec.Results+len(rec.Other) != 0 {
		t.Fatalf("a new database recovers %+v", rec)
	}
	var want []wal.Record
	for i := 0; i < 5; i++ {
		r := job(t, s, "f", fmt.Sprint("u", i))
		r.Priority, r.RunAt, r.Reducer = uint8(i%3), int64(1000*i), fmt.Sprint("red", i)
		r.Attempts, r.FirstFailed = uint32(i), int64(i*7)
		if i == 2 {
			r.Unique, r.Data = "", nil // no unique, empty payload
		}
		if err := put(t, s, r); err != nil {
			t.Fatal(err)
		}
		if r.Data == nil {
			r.Data = []byte{}
		}
		want = append(want, r)
	}
	gone := job(t, s, "f", "gone")
	if err := put(t, s, gone); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(gone.Seq); err != nil {
		t.Fatal(err)
	}
	shared := job(t, s, "f", "")
	shared.Shared = true
	if err := put(t, s, shared); err != nil {
		t.Fatal(err)
	}
	fs := wal.FunctionSettings{Name: "f", MaxQueue: [3]int{1, 2, 3}, Paused: true, Limit: 2,
		Retry: wal.RetryPolicy{Attempts: 3, Base: time.Second, Max: time.Minute}}
	dead := wal.DeadLetter{Job: want[0], LastOutcome: wal.OutcomeFail, LastError: []byte("no"), FirstFailed: 1, LastFailed: 2}
	sched := wal.Schedule{Seq: mustSeq(t, s), Handle: "H:t:s", Function: "f", Spec: "*/5 * * * *", Created: 3, Data: []byte("d")}
	res := wal.Result{Seq: gone.Seq, Handle: gone.Handle, Function: "f", Unique: "gone", Outcome: wal.OutcomeComplete,
		Data: []byte("ok"), Attempts: 1, Created: 1, Started: 2, Finished: 3, Expires: time.Now().Add(time.Hour).UnixNano()}
	if err := apply(t, s, func(t *wal.Txn) {
		t.PutFunction(fs)
		t.PutFunction(wal.FunctionSettings{Name: "g", Declared: true})
		t.PutDead(dead)
		t.PutSchedule(sched)
		t.PutResult(res)
		t.Put('x', []byte("key"), []byte{1, 2, 3})
		t.Put('x', []byte("gone"), []byte{4})
	}); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, s, func(t *wal.Txn) {
		t.DeleteFunction("g")
		t.Delete('x', []byte("gone"))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, rec = openStore(t, dsn, "a")
	if !reflect.DeepEqual(rec.Jobs, want) {
		t.Fatalf("recovered jobs\n%+v\nwant\n%+v", rec.Jobs, want)
	}
	if !reflect.DeepEqual(rec.Functions, []wal.FunctionSettings{fs}) {
		t.Fatalf("functions %+v", rec.Functions)
	}
	if !reflect.DeepEqual(rec.Dead, []wal.DeadLetter{dead}) {
		t.Fatalf("dead %+v\nwant %+v", rec.Dead, dead)
	}
	if !reflect.DeepEqual(rec.Schedules, []wal.Schedule{sched}) {
		t.Fatalf("schedules %+v", rec.Schedules)
	}
	if rec.Results != 1 || rec.ResultBytes <= 0 {
		t.Fatalf("results %d (%d bytes)", rec.Results, rec.ResultBytes)
	}
	if want := []wal.Entry{{Kind: 'x', Key: []byte("key"), Value: []byte{1, 2, 3}}}; !reflect.DeepEqual(rec.Other, want) {
		t.Fatalf("other records %+v", rec.Other)
	}
	db := sqlDB(t, dsn)
	if n := count(t, db, "SELECT count(*) FROM spur_jobs WHERE owner = 'a'"); n != len(want) {
		t.Fatalf("%d jobs held by a after recovery, want %d", n, len(want))
	}
	if n := count(t, db, "SELECT count(*) FROM spur_nodes WHERE name = 'a' AND lease_until > now() + interval '2 seconds'"); n != 1 {
		t.Fatal("a's lease is not fresh after recovery")
	}
	b, rec := openStore(t, dsn, "b")
	if got, err := b.Schedules(context.Background()); err != nil || !reflect.DeepEqual(got, []wal.Schedule{sched}) {
		t.Fatalf("Schedules: %+v %v", got, err)
	}
	if len(rec.Jobs) != 0 || len(rec.Functions) != 1 || len(rec.Dead) != 1 || len(rec.Schedules) != 1 || rec.Results != 1 {
		t.Fatalf("another node recovers %d jobs, %d functions, %d dead, %d schedules, %d results",
			len(rec.Jobs), len(rec.Functions), len(rec.Dead), len(rec.Schedules), rec.Results)
	}
}

// holdCommitter stops s's committer before its next batch until release is called: what is
// queued meanwhile is committed together, in one batch.
func holdCommitter(s *Store) (release func()) {
	s.hold.Lock()
	return s.hold.Unlock
}

// Writes within one batch take effect in queue order: a Put then a Delete writes nothing;
// a Put whose unique conflicts only with a job deleted earlier in the batch is written; of
// two Puts of one unique the second coalesces onto the first; a Txn.PutJob of a job updates
// its attempts and run-at time but not its holder; the last function setting wins.
func TestBatchFoldsInQueueOrder(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s, _ := openStore(t, dsn, "a")
	db := sqlDB(t, dsn)
	old := job(t, s, "f", "u-old")
	if err := put(t, s, old); err != nil {
		t.Fatal(err)
	}
	shared := job(t, s, "f", "")
	shared.Shared = true
	if err := put(t, s, shared); err != nil {
		t.Fatal(err)
	}

	release := holdCommitter(s)
	acks := make(ackChan, 16)
	short := job(t, s, "f", "u-short") // put and deleted: nothing written
	first := job(t, s, "f", "u-twice")
	second := job(t, s, "f", "u-twice") // coalesces onto first
	again := job(t, s, "f", "u-old")    // old is deleted before it: written
	for _, r := range []wal.Record{short, first, second} {
		if err := s.Put(r, acks); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(short.Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(old.Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(again, acks); err != nil {
		t.Fatal(err)
	}
	var txn wal.Txn
	up := shared
	up.Attempts, up.RunAt, up.FirstFailed = 2, 12345, 99
	txn.PutJob(up)
	txn.PutFunction(wal.FunctionSettings{Name: "f", Limit: 1})
	txn.PutFunction(wal.FunctionSettings{Name: "f", Limit: 2})
	if err := s.Apply(&txn, acks); err != nil {
		t.Fatal(err)
	}
	before := s.CommitStats().Batches
	release()
	for i, want := range []string{"", "", first.Handle, "", ""} {
		err := waitAck(t, acks)
		var c *wal.Coalesced
		switch {
		case want == "" && err != nil:
			t.Fatalf("ack %d: %v", i, err)
		case want != "" && (!errors.As(err, &c) || c.Handle != want):
			t.Fatalf("ack %d: %v, want coalesced onto %s", i, err, want)
		}
	}
	if n := s.CommitStats().Batches - before; n != 1 {
		t.Fatalf("%d batches, want 1", n)
	}
	var seqs []int64
	rows, _ := db.Query(context.Background(), "SELECT seq FROM spur_jobs ORDER BY seq")
	for rows.Next() {
		var q int64
		rows.Scan(&q)
		seqs = append(seqs, q)
	}
	if want := []int64{int64(shared.Seq), int64(first.Seq), int64(again.Seq)}; !reflect.DeepEqual(seqs, want) {
		t.Fatalf("rows %v, want %v", seqs, want)
	}
	var attempts, runAt, firstFailed int64
	var owner *string
	if err := db.QueryRow(context.Background(), "SELECT attempts, run_at, first_failed, owner FROM spur_jobs WHERE seq = $1",
		int64(shared.Seq)).Scan(&attempts, &runAt, &firstFailed, &owner); err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || runAt != 12345 || firstFailed != 99 || owner != nil {
		t.Fatalf("updated job: attempts %d run_at %d first_failed %d owner %v", attempts, runAt, firstFailed, owner)
	}
	var rec []byte
	if err := db.QueryRow(context.Background(), "SELECT record FROM spur_functions WHERE name = 'f'").Scan(&rec); err != nil {
		t.Fatal(err)
	}
	if f, err := wal.DecodeFunction("f", rec); err != nil || f.Limit != 2 {
		t.Fatalf("function settings %+v %v: the last write should win", f, err)
	}
}

// Job numbers from two nodes never meet, across many blocks, and each node's rise.
func TestNextSeqUniqueAcrossNodes(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	b, _ := openStore(t, dsn, "b")
	seen := map[uint64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for i := 0; i < 5000; i++ {
				q, err := s.NextSeq()
				if err != nil {
					t.Error(err)
					return
				}
				if q <= last {
					t.Errorf("%s: %d after %d", s.opts.Node, q, last)
				}
				last = q
				mu.Lock()
				if other, dup := seen[q]; dup {
					t.Errorf("%d issued to %s and %s", q, other, s.opts.Node)
				}
				seen[q] = s.opts.Node
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// Deletes go through the committer: a Barrier behind one is acknowledged once it is gone.
func TestBarrierAfterDelete(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s, _ := openStore(t, dsn, "a")
	db := sqlDB(t, dsn)
	r := job(t, s, "f", "")
	if err := put(t, s, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(r.Seq); err != nil {
		t.Fatal(err)
	}
	barrier(t, s)
	if n := count(t, db, "SELECT count(*) FROM spur_jobs"); n != 0 {
		t.Fatalf("%d rows after the delete's barrier", n)
	}
	s.Close()
	if err := s.Put(r, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, err := s.NextSeq(); !errors.Is(err, ErrClosed) {
		t.Fatalf("NextSeq after Close: %v", err)
	}
}

// What the store cannot hold is refused by the call, before it reaches a batch: a function
// name beyond MaxFunction (the indexes hold names), a Txn the wal package refuses.
func TestRefusedAtTheCall(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s, _ := openStore(t, dsn, "a")
	long := strings.Repeat("f", MaxFunction+1)
	r := job(t, s, long, "")
	if err := s.Put(r, nil); !errors.Is(err, ErrFunctionTooLong) {
		t.Fatalf("Put of a %d-byte function name: %v", len(long), err)
	}
	var txn wal.Txn
	txn.PutJob(r)
	if err := s.Apply(&txn, nil); !errors.Is(err, ErrFunctionTooLong) {
		t.Fatalf("Apply of a job of a %d-byte function name: %v", len(long), err)
	}
	txn.Reset()
	txn.PutFunction(wal.FunctionSettings{Name: "f", Retry: wal.RetryPolicy{Attempts: 1}}) // no backoff: invalid
	if err := s.Apply(&txn, nil); err == nil {
		t.Fatal("Apply of an invalid retry policy succeeded")
	}
	ok := job(t, s, strings.Repeat("f", MaxFunction), "u")
	if err := put(t, s, ok); err != nil {
		t.Fatalf("Put of a %d-byte function name: %v", MaxFunction, err)
	}
}
