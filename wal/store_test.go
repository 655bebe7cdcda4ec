package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

var modeNames = map[SyncMode]string{SyncAlways: "always", SyncBatch: "batch", SyncNone: "none"}

// openWith opens a log on a test file system with a small reservation block.
func openWith(t *testing.T, fs vfs.FS, mode SyncMode, block uint64) (*Log, *Recovered) {
	t.Helper()
	l, rec, err := Open(Options{Dir: "data", Sync: mode, SyncInterval: time.Hour, Logger: quietLogger(), fs: fs, seqBlock: block})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l, rec
}

// ackChan is an Ack that hands its outcome to a channel.
type ackChan chan error

func (c ackChan) Acked(err error) { c <- err }

func waitAck(t *testing.T, c ackChan) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no acknowledgement within 10 s")
		return nil
	}
}

// A machine crash keeps only what was fsynced. Under --sync none and batch the jobs written
// since the last fsync may be gone, and that is the documented cost of those modes; but the
// sequence reservation must not be: handles from the lost block would be issued again, to
// different jobs, after the restart.
func TestHandlesNeverRepeatAfterMachineCrash(t *testing.T) {
	for _, mode := range []SyncMode{SyncNone, SyncBatch, SyncAlways} {
		t.Run(modeNames[mode], func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			const block = 64
			var issued uint64
			for crash := 0; crash < 4; crash++ {
				l, _ := openWith(t, fs, mode, block)
				first := mustSeq(t, l)
				if first <= issued {
					t.Fatalf("crash %d: NextSeq issued %d, but %d was issued before the crash", crash, first, issued)
				}
				// Several blocks' worth, with a few writes so that batches also carry jobs.
				for i := 0; i < 5*block; i++ {
					s := mustSeq(t, l)
					if i%50 == 0 {
						r := Record{Seq: s, Handle: fmt.Sprint("H:", s), Function: "f"}
						if err := l.Put(r, nil); err != nil {
							t.Fatal(err)
						}
					}
					issued = s
				}
				// The machine dies now: only what was fsynced survives.
				crashed := fs.CrashClone(vfs.CrashCloneCfg{})
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				fs = crashed
			}
		})
	}
}

// failingFS fails every fsync of the write-ahead log while on, after a pause that lets
// callers queue up behind the failing commit.
type failingFS struct {
	on    atomic.Bool
	pause time.Duration
}

func (f *failingFS) MaybeError(op errorfs.Op) error {
	if !f.on.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		time.Sleep(f.pause)
		return errorfs.ErrInjected
	}
	return nil
}

func (f *failingFS) String() string { return "failingFS" }

func TestFailedCommitFailsTheLog(t *testing.T) {
	inj := &failingFS{pause: 100 * time.Millisecond}
	l, _ := openWith(t, errorfs.Wrap(vfs.NewMem(), inj), SyncAlways, 1<<20)
	r := Record{Seq: mustSeq(t, l), Handle: "H:ok", Function: "f"}
	ok := make(ackChan, 1)
	if err := l.Put(r, ok); err != nil {
		t.Fatal(err)
	}
	if err := waitAck(t, ok); err != nil {
		t.Fatalf("put before the failure: %v", err)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("Err before any failure: %v", err)
	}

	inj.on.Store(true)
	// A burst: the first batch fails; whatever queued behind it while its fsync was being
	// tried must be told too, not left waiting.
	const n = 200
	acks := make(ackChan, n)
	var txn Txn
	accepted := 0
	for i := 0; i < n; i++ {
		var err error
		switch i % 4 {
		case 0, 1:
			err = l.Put(Record{Seq: uint64(1000 + i), Handle: "H:x", Function: "f"}, acks)
		case 2:
			err = l.Barrier(acks)
		case 3:
			txn.Reset()
			txn.PutFunction(FunctionSettings{Name: "f", MaxQueue: [3]int{1, 2, 3}})
			err = l.Apply(&txn, acks)
		}
		if err == nil {
			accepted++
		} else if !errors.Is(err, errorfs.ErrInjected) {
			t.Fatalf("call %d refused with %v, want the log's failure", i, err)
		}
		if i == 0 {
			time.Sleep(20 * time.Millisecond) // the first batch is now being fsynced
		}
	}
	if accepted < 2 {
		t.Fatalf("only %d calls accepted: the burst did not queue behind the failing batch", accepted)
	}
	for i := 0; i < accepted; i++ {
		if err := waitAck(t, acks); !errors.Is(err, errorfs.ErrInjected) {
			t.Fatalf("ack %d of %d: %v, want the injected failure", i, accepted, err)
		}
	}
	failure := l.Err()
	if !errors.Is(failure, errorfs.ErrInjected) {
		t.Fatalf("Err after a failed commit: %v", failure)
	}
	// A failed log refuses everything at once.
	if err := l.Put(r, ack(func(error) { t.Error("ack of a refused Put ran") })); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Put on a failed log: %v", err)
	}
	if err := l.Barrier(ack(func(error) { t.Error("ack of a refused Barrier ran") })); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Barrier on a failed log: %v", err)
	}
	if err := l.Apply(&txn, nil); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Apply on a failed log: %v", err)
	}
	if err := l.Delete(r.Seq); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Delete on a failed log: %v", err)
	}
	if _, err := l.NextSeq(); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("NextSeq on a failed log: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		if err == nil {
			t.Fatal("Close of a failed log reported nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close of a failed log hangs")
	}
}

// ack adapts a function to Ack.
type ack func(error)

func (f ack) Acked(err error) { f(err) }

// A NextSeq waiting for a reservation whose commit fails gets the failure, in every mode
// (the reservation is fsynced in every mode).
func TestFailedReservationReleasesNextSeq(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncBatch, SyncNone} {
		t.Run(modeNames[mode], func(t *testing.T) {
			inj := &failingFS{pause: 200 * time.Millisecond}
			const block = 16
			l, _ := openWith(t, errorfs.Wrap(vfs.NewMem(), inj), mode, block)
			defer l.Close()
			inj.on.Store(true)
			done := make(chan error, 1)
			var last uint64
			go func() {
				for {
					s, err := l.NextSeq()
					if err != nil {
						done <- err
						return
					}
					last = s
				}
			}()
			select {
			case err := <-done:
				if !errors.Is(err, errorfs.ErrInjected) {
					t.Fatalf("NextSeq: %v, want the injected failure", err)
				}
				if last != block {
					t.Fatalf("last number issued %d, want %d: the waiter was not waiting for the failing reservation", last, block)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("NextSeq still waiting 10 s after its reservation failed")
			}
		})
	}
}

func TestEverythingAfterCloseIsRefused(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncAlways)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	never := ack(func(error) { t.Error("an ack ran after Close") })
	var txn Txn
	txn.DeleteJob(1)
	checks := map[string]error{
		"Put":     l.Put(Record{Seq: 1}, never),
		"Barrier": l.Barrier(never),
		"Delete":  l.Delete(1),
		"Apply":   l.Apply(&txn, never),
		"Compact": l.Compact(context.Background()),
	}
	_, checks["NextSeq"] = l.NextSeq()
	for call, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", call, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Compactions running while the log closes must neither panic (Pebble panics on a closed
// database) nor keep Close from closing it.
func TestCompactDuringClose(t *testing.T) {
	for round := 0; round < 5; round++ {
		l, _ := openLog(t, t.TempDir(), SyncNone)
		for i := 0; i < 2000; i++ {
			s := mustSeq(t, l)
			if err := l.Put(Record{Seq: s, Handle: "h", Function: "f", Data: make([]byte, 100)}, nil); err != nil {
				t.Fatal(err)
			}
			mustDelete(t, l, s)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if err := l.Compact(context.Background()); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round) * 5 * time.Millisecond)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("Compact while closing: %v, want ErrClosed", err)
			}
		}
	}
}

func TestFunctionSettingsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	l, rec := openLog(t, dir, SyncAlways)
	if len(rec) != 0 {
		t.Fatal("fresh log holds jobs")
	}
	var txn Txn
	want := map[string]FunctionSettings{}
	put := func(s FunctionSettings) {
		txn.Reset()
		txn.PutFunction(s)
		c := make(ackChan, 1)
		if err := l.Apply(&txn, c); err != nil {
			t.Fatal(err)
		}
		if err := waitAck(t, c); err != nil {
			t.Fatal(err)
		}
		want[s.Name] = s
	}
	put(FunctionSettings{Name: "resize", MaxQueue: [3]int{10, 0, 5}})
	put(FunctionSettings{Name: "mail", Declared: true})
	put(FunctionSettings{Name: "held", Paused: true})
	put(FunctionSettings{Name: "both", Declared: true, Paused: true, MaxQueue: [3]int{0, 4, 0}, Limit: 3})
	put(FunctionSettings{Name: "limited", Limit: 1 << 30})
	put(FunctionSettings{Name: "", MaxQueue: [3]int{1, 1, 1}}) // an empty name is a name
	put(FunctionSettings{Name: "big\x00bin", MaxQueue: [3]int{1 << 40, -1, 7}, Declared: true})
	put(FunctionSettings{Name: "resize", MaxQueue: [3]int{3, 2, 1}}) // replaces the first
	txn.Reset()
	txn.PutFunction(FunctionSettings{Name: "gone"})
	txn.DeleteFunction("mail")
	delete(want, "mail")
	if err := l.Apply(&txn, nil); err != nil { // fire and forget; Close commits it
		t.Fatal(err)
	}
	want["gone"] = FunctionSettings{Name: "gone"}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, r := reopen(t, dir)
	got := map[string]FunctionSettings{}
	var names []string
	for _, s := range r.Functions {
		got[s.Name] = s
		names = append(names, s.Name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("recovered functions\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(names, []string{"", "big\x00bin", "both", "gone", "held", "limited", "resize"}) {
		t.Fatalf("functions not in key order: %q", names)
	}
}

// One Txn mixes kinds: jobs, functions, the lifecycle kinds and a kind this version does not
// interpret, which recovery must hand back untouched rather than drop.
func TestTxnMixesKindsAndUnknownKindsAreKept(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, SyncAlways)
	old := Record{Seq: mustSeq(t, l), Handle: "H:old", Function: "f", Data: []byte("o")}
	putSync(t, l, &old)
	var txn Txn
	job := Record{Seq: mustSeq(t, l), Handle: "H:new", Function: "f", Data: []byte("n")}
	txn.DeleteJob(old.Seq)
	txn.PutJob(job)
	txn.PutFunction(FunctionSettings{Name: "f", MaxQueue: [3]int{0, 9, 0}})
	sched := Schedule{Seq: mustSeq(t, l), Handle: "H:s", Function: "f", Spec: "0 3 * * *", Data: []byte{}}
	txn.PutSchedule(sched)
	txn.Put(Kind('z'), []byte{}, []byte{7})
	txn.PutDead(DeadLetter{Job: Record{Seq: 77, Handle: "H:77", Function: "f"}, LastOutcome: OutcomeFail})
	txn.Delete(KindDead, jobKey(nil, 77)[1:]) // a raw delete of a kind it encodes
	txn.PutDead(DeadLetter{Job: Record{Seq: 78, Handle: "H:78", Function: "f"}, LastOutcome: OutcomeFail})
	txn.DeleteDead(78)
	c := make(ackChan, 1)
	if err := l.Apply(&txn, c); err != nil {
		t.Fatal(err)
	}
	txn.Reset() // t is reusable at once: the log holds its own copy
	txn.PutFunction(FunctionSettings{Name: "not applied"})
	if err := waitAck(t, c); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, rec := reopen(t, dir)
	if len(rec.Jobs) != 1 || rec.Jobs[0].Handle != "H:new" {
		t.Fatalf("jobs %+v, want only H:new", rec.Jobs)
	}
	if len(rec.Functions) != 1 || rec.Functions[0] != (FunctionSettings{Name: "f", MaxQueue: [3]int{0, 9, 0}}) {
		t.Fatalf("functions %+v", rec.Functions)
	}
	want := []Entry{{Kind('z'), []byte{}, []byte{7}}}
	if !reflect.DeepEqual(rec.Other, want) {
		t.Fatalf("other kinds\n got %+v\nwant %+v", rec.Other, want)
	}
	if len(rec.Dead) != 0 || !reflect.DeepEqual(rec.Schedules, []Schedule{sched}) {
		t.Fatalf("dead %+v, schedules %+v", rec.Dead, rec.Schedules)
	}
	if s := mustSeq(t, l); s <= job.Seq {
		t.Fatalf("NextSeq %d not above recovered %d", s, job.Seq)
	}
}

func TestTxnMisuseIsRefused(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncAlways)
	defer l.Close()
	for _, k := range []Kind{KindJob, KindFunction, KindResult, KindDead, KindSchedule, kindMeta} {
		var txn Txn
		txn.PutFunction(FunctionSettings{Name: "fine"})
		txn.Put(k, []byte("x"), []byte{1})
		if err := l.Apply(&txn, ack(func(error) { t.Error("ack of a refused Txn ran") })); err == nil {
			t.Fatalf("raw Put of kind %q accepted", k)
		}
	}
	var txn Txn
	txn.Delete(kindMeta, []byte("seq"))
	if err := l.Apply(&txn, nil); err == nil {
		t.Fatal("Delete of the sequence reservation accepted")
	}
	txn.Reset()
	txn.Delete(KindResult, []byte("hH:1"))
	if err := l.Apply(&txn, nil); err == nil {
		t.Fatal("raw Delete of a result accepted: ResultStats would not know")
	}
	// Values the log could not read back are refused when written, not when reopening.
	for name, build := range map[string]func(*Txn){
		"result outcome":   func(t *Txn) { t.PutResult(Result{Handle: "H:1"}) },
		"dead outcome":     func(t *Txn) { t.PutDead(DeadLetter{Job: Record{Seq: 1}, LastOutcome: 9}) },
		"schedule prio":    func(t *Txn) { t.PutSchedule(Schedule{Seq: 1, Priority: 3}) },
		"retry no base":    func(t *Txn) { t.PutFunction(FunctionSettings{Name: "f", Retry: RetryPolicy{Attempts: 3}}) },
		"retry max < base": func(t *Txn) { t.PutFunction(FunctionSettings{Name: "f", Retry: RetryPolicy{3, 2, 1}}) },
		"retry attempts 0": func(t *Txn) { t.PutFunction(FunctionSettings{Name: "f", Retry: RetryPolicy{0, 1, 1}}) },
	} {
		txn.Reset()
		build(&txn)
		if err := l.Apply(&txn, nil); err == nil {
			t.Fatalf("%s: invalid value accepted", name)
		}
	}
}

// On a nearly full disk a Txn that writes is refused whole: its deletions do not go through
// either, or it would be half applied. One that only deletes goes through.
func TestDiskReserveRefusesTxnWhole(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, SyncAlways)
	a := Record{Seq: mustSeq(t, l), Handle: "H:a", Function: "f"}
	b := Record{Seq: mustSeq(t, l), Handle: "H:b", Function: "f"}
	putSync(t, l, &a)
	putSync(t, l, &b)
	l.opts.MinFreeBytes = 1 << 62
	var txn Txn
	txn.DeleteJob(a.Seq)
	txn.PutFunction(FunctionSettings{Name: "f"})
	c := make(ackChan, 1)
	if err := l.Apply(&txn, c); err != nil {
		t.Fatal(err)
	}
	if err := waitAck(t, c); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("writing Txn on a full disk: %v, want ErrDiskFull", err)
	}
	txn.Reset()
	txn.DeleteJob(b.Seq)
	if err := l.Apply(&txn, c); err != nil {
		t.Fatal(err)
	}
	if err := waitAck(t, c); err != nil {
		t.Fatalf("deleting Txn on a full disk: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, rec := reopen(t, dir)
	if len(rec.Jobs) != 1 || rec.Jobs[0].Handle != "H:a" || len(rec.Functions) != 0 {
		t.Fatalf("recovered %+v", rec)
	}
}

// A damaged record of a kind this version reads is an error naming it, as for jobs.
func TestCorruptFunctionSettingsAreAnError(t *testing.T) {
	good := appendFunction(nil, &FunctionSettings{Name: "x", MaxQueue: [3]int{1, 2, 3}, Declared: true})
	for cut := 0; cut < len(good); cut++ {
		if _, err := decodeFunction("x", good[:cut]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
	for i, bad := range [][]byte{
		append(bytes.Clone(good), 0), // trailing byte
		{9, 0, 0, 0, 0},              // version
		{1, 8, 0, 0, 0},              // flags
		{1, 4, 0, 0, 0},              // a limit announced, missing
		{1, 4, 0, 0, 0, 0},           // a limit of 0 is no limit, never stored
	} {
		if _, err := decodeFunction("x", bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("damage %d accepted: %v", i, err)
		}
	}

	dir := t.TempDir()
	l, _ := openLog(t, dir, SyncAlways)
	if err := l.db.Set(functionKey(nil, "resize"), []byte{1, 0, 0}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(Options{Dir: dir, Logger: quietLogger(), MinFreeBytes: 1})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"resize"`) {
		t.Fatalf("open with a damaged function record: %v", err)
	}
}

// A reused Txn allocates nothing: the engine builds one per state change.
func TestTxnReuseAllocatesNothing(t *testing.T) {
	var txn Txn
	r := Record{Seq: 7, Handle: "H:x:7", Function: "f", Data: make([]byte, 64)}
	s := FunctionSettings{Name: "f", MaxQueue: [3]int{1, 2, 3}}
	s.Retry = RetryPolicy{Attempts: 3, Base: time.Second, Max: time.Minute}
	key := []byte("k")
	res := Result{Handle: "H:x:7", Function: "f", Unique: "u", Outcome: OutcomeComplete, Data: r.Data, Expires: 1}
	dead := DeadLetter{Job: r, LastOutcome: OutcomeException, LastError: key}
	sched := Schedule{Seq: 8, Handle: "H:x:8", Function: "f", Spec: "* * * * *", Data: r.Data}
	build := func() {
		txn.Reset()
		txn.PutJob(r)
		txn.DeleteJob(6)
		txn.PutFunction(s)
		txn.DeleteFunction("g")
		txn.Put(Kind('z'), key, key)
		txn.PutResult(res)
		txn.PutDead(dead)
		txn.DeleteDead(5)
		txn.PutSchedule(sched)
		txn.DeleteSchedule(4)
	}
	build()
	if n := testing.AllocsPerRun(100, build); n != 0 {
		t.Fatalf("building a reused Txn: %.1f allocations", n)
	}
}

// reopen opens the log in dir once more and returns it with everything it recovered; the
// log is closed when the test ends.
func reopen(t *testing.T, dir string) (*Log, *Recovered) {
	t.Helper()
	l, rec, err := Open(Options{Dir: dir, Logger: quietLogger(), MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, rec
}

// Callers that wait for a reservation to become durable each get their own number (they used
// to all get the last one taken while they waited).
func TestNextSeqNeverRepeatsWhileWaiting(t *testing.T) {
	l, _, err := Open(Options{Dir: "data", Logger: quietLogger(), fs: vfs.NewMem(), seqBlock: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				s, err := l.NextSeq()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[s] {
					t.Errorf("NextSeq issued %d twice", s)
				}
				seen[s] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
