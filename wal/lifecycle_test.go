package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// applySync applies txn and waits for its acknowledgement.
func applySync(t testing.TB, l *Log, txn *Txn) {
	t.Helper()
	c := make(ackChan, 1)
	if err := l.Apply(txn, c); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no acknowledgement within 10 s")
	}
}

// barrier waits until everything queued before it is committed.
func barrier(t testing.TB, l *Log) {
	t.Helper()
	c := make(ackChan, 1)
	if err := l.Barrier(c); err != nil {
		t.Fatal(err)
	}
	if err := <-c; err != nil {
		t.Fatal(err)
	}
}

// resultsOnDisk counts what the database holds of kind 'c': results, the sizes accounted for
// them, the keys, and the bytes of every key and value.
func resultsOnDisk(t testing.TB, l *Log) (entries int, sizes int64, keys int, size int64) {
	t.Helper()
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(KindResult)}, UpperBound: []byte{byte(KindResult) + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		keys++
		if it.Key()[1] == resultBySeq {
			entries++
			r, err := decodeResult(binary.BigEndian.Uint64(it.Key()[2:]), it.Value(), false)
			if err != nil {
				t.Fatal(err)
			}
			sizes += resultSize(&r, len(it.Value()))
		}
		size += int64(len(it.Key()) + len(it.Value()))
	}
	return entries, sizes, keys, size
}

// checkStats checks ResultStats against the database: the sizes of the results stored, and
// the bytes of kind 'c', which are as many unless a newer result took over the by-unique
// entry of an older one still stored (that entry is counted for both until the older one
// expires). With exact, no result's unique was taken over.
func checkStats(t testing.TB, l *Log, exact bool) (int, int64) {
	t.Helper()
	n, b := l.ResultStats()
	entries, sizes, _, size := resultsOnDisk(t, l)
	if n != entries || b != sizes || size > b || exact && size != b {
		t.Fatalf("ResultStats %d results, %d bytes; the database holds %d entries recording %d bytes, %d bytes in all",
			n, b, entries, sizes, size)
	}
	return n, b
}

func sampleResult(i int, rng *rand.Rand) Result {
	r := Result{
		Seq:      uint64(i + 1),
		Handle:   fmt.Sprintf("H:test:%d", i+1),
		Function: fmt.Sprintf("fn%d", rng.IntN(3)),
		Outcome:  Outcome(1 + rng.IntN(3)),
		Data:     make([]byte, rng.IntN(300)),
		Attempts: uint32(rng.IntN(5)),
		Created:  rng.Int64() - rng.Int64(),
		Started:  int64(rng.IntN(1 << 40)),
		Finished: int64(rng.IntN(1 << 50)),
		Expires:  rng.Int64() - rng.Int64()/4,
	}
	for j := range r.Data {
		r.Data[j] = byte(rng.IntN(256))
	}
	if rng.IntN(2) == 0 {
		r.Unique = fmt.Sprintf("u%d", i)
	}
	return r
}

func TestJobRecordAttemptsAndFirstFailureRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for i := 0; i < 5000; i++ {
		r := sampleRecord(uint64(i+1)<<uint(i%50), rng)
		switch i % 4 {
		case 1:
			r.Attempts = rng.Uint32()
		case 2:
			r.FirstFailed = rng.Int64() - rng.Int64()
		case 3:
			r.Attempts, r.FirstFailed = uint32(rng.IntN(10)), time.Now().UnixNano()
		}
		if len(r.Data) == 0 {
			r.Data = []byte{}
		}
		b := appendJobPut(nil, &r)
		if len(b) != jobPutLen(&r) {
			t.Fatalf("record %+v: encoded %d bytes, jobPutLen %d", r, len(b), jobPutLen(&r))
		}
		w, _ := nextTxnWrite(b)
		got, err := decodeRecord(r.Seq, w.value)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, got, r)
		}
		if hasHistory(&r) != (w.value[2]&flagHistory != 0) {
			t.Fatalf("record %+v: flags %#x", r, w.value[2])
		}
	}
}

// A record without attempts and created is what the previous release wrote, byte for byte,
// and what that release wrote still decodes.
func TestOldJobRecordsAreUnchanged(t *testing.T) {
	old := []byte{1, 2, flagRunAt}
	old = append(old, 0x80, 0x01) // run-at 64, zig-zag
	for _, s := range []string{"H:x:3", "resize", "u", ""} {
		old = append(old, byte(len(s)))
		old = append(old, s...)
	}
	old = append(old, "data"...)
	want := Record{Seq: 3, Handle: "H:x:3", Function: "resize", Unique: "u", Priority: 2, RunAt: 64, Data: []byte("data")}
	got, err := decodeRecord(3, old)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("old record: %v\n got %+v\nwant %+v", err, got, want)
	}
	if enc := appendRecord(nil, &want); !bytes.Equal(enc, old) {
		t.Fatalf("a record without history encodes as\n%x, the old format is\n%x", enc, old)
	}
	want.Attempts = 2
	if enc := appendRecord(nil, &want); bytes.Equal(enc, old) || enc[2] != flagRunAt|flagHistory {
		t.Fatalf("a record with attempts encodes as %x", enc)
	}
}

func TestRetryPolicyRoundTrip(t *testing.T) {
	for _, s := range []FunctionSettings{
		{Name: "a", Retry: RetryPolicy{Attempts: 1, Base: 1, Max: 1}},
		{Name: "b", Limit: 4, Paused: true, Retry: RetryPolicy{Attempts: 5, Base: time.Second, Max: time.Hour}},
		{Name: "c", MaxQueue: [3]int{1, 2, 3}, Retry: RetryPolicy{Attempts: 1 << 40, Base: 1 << 62, Max: 1<<63 - 1}},
		{Name: "d"},
	} {
		enc := appendFunction(nil, &s)
		got, err := decodeFunction(s.Name, enc)
		if err != nil || got != s {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, got, s)
		}
		if (enc[1]&flagRetry != 0) != (s.Retry != RetryPolicy{}) {
			t.Fatalf("%+v: flags %#x", s, enc[1])
		}
	}
	// Settings without a policy are what the previous release wrote.
	if enc := appendFunction(nil, &FunctionSettings{Name: "x", Limit: 2}); !bytes.Equal(enc, []byte{1, flagLimit, 0, 0, 0, 4}) {
		t.Fatalf("settings without a policy encode as %x", enc)
	}
	for i, bad := range [][]byte{
		{1, flagRetry, 0, 0, 0, 0, 2, 2},        // attempts 0
		{1, flagRetry, 0, 0, 0, 2, 0, 2},        // base 0
		{1, flagRetry, 0, 0, 0, 2, 4, 2},        // max below base
		{1, flagRetry, 0, 0, 0, 2, 2},           // truncated
		{1, flagRetry, 0, 0, 0, 2, 2, 2, 0},     // trailing byte
		{1, flagRetry, 0, 0, 0, 0, 0, 0},        // a zero policy is no policy, never stored
		{1, flagRetry | 0x10, 0, 0, 0, 2, 2, 2}, // an unknown flag
	} {
		_, err := decodeFunction("resize", bad)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"resize"`) {
			t.Fatalf("damage %d: %v, want ErrCorrupt naming the function", i, err)
		}
	}
}

func TestLifecycleRecordsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for i := 0; i < 2000; i++ {
		r := sampleResult(i, rng)
		if len(r.Data) == 0 {
			r.Data = []byte{}
		}
		enc := appendResult(nil, &r)
		got, err := decodeResult(r.Seq, enc, true)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("result: %v\n got %+v\nwant %+v", err, got, r)
		}
		// The size accounted is that of the keys and values PutResult writes.
		var txn Txn
		txn.PutResult(r)
		var size int64
		for b := txn.buf; len(b) > 0; {
			var w txnWrite
			w, b = nextTxnWrite(b)
			size += int64(len(w.key) + len(w.value))
		}
		if size != txn.resultBytes || txn.results != 1 {
			t.Fatalf("result %+v: writes %d bytes, accounted %d", r, size, txn.resultBytes)
		}

		job := sampleRecord(uint64(i+1), rng)
		job.Attempts, job.FirstFailed = uint32(i), int64(i)*1e9
		if len(job.Data) == 0 {
			job.Data = []byte{}
		}
		d := DeadLetter{Job: job, LastOutcome: Outcome(1 + i%3), LastError: make([]byte, i%20),
			FirstFailed: int64(i) - 1000, LastFailed: int64(i) << 30}
		gotD, err := decodeDead(job.Seq, appendDead(nil, &d))
		if err != nil || !reflect.DeepEqual(gotD, d) {
			t.Fatalf("dead letter: %v\n got %+v\nwant %+v", err, gotD, d)
		}

		s := Schedule{Seq: uint64(i) << 20, Handle: fmt.Sprint("H:s:", i), Function: job.Function, Unique: job.Unique,
			Spec: "*/5 * * * 1-5", Location: "Europe/Paris", Priority: uint8(i % 3), Paused: i%2 == 0,
			LastRun: int64(i) - 7, Created: -int64(i), Data: job.Data}
		gotS, err := decodeSchedule(s.Seq, appendSchedule(nil, &s))
		if err != nil || !reflect.DeepEqual(gotS, s) {
			t.Fatalf("schedule: %v\n got %+v\nwant %+v", err, gotS, s)
		}
	}
}

// A damaged lifecycle value, or one of a later version, is an error naming the record.
func TestCorruptLifecycleRecordsAreAnError(t *testing.T) {
	res := Result{Seq: 1, Handle: "H:r:1", Function: "f", Unique: "u", Outcome: OutcomeComplete, Data: []byte("d"), Expires: 9}
	dead := DeadLetter{Job: Record{Seq: 5, Handle: "H:r:5", Function: "f", Data: []byte("d")}, LastOutcome: OutcomeFail, LastError: []byte("e")}
	sched := Schedule{Seq: 6, Handle: "H:r:6", Function: "f", Spec: "* * * * *", Data: []byte("d")}
	decoders := []struct {
		name   string
		good   []byte
		decode func([]byte) error
		damage []func([]byte) []byte
	}{
		{"result seq 1", appendResult(nil, &res), func(b []byte) error { _, err := decodeResult(1, b, true); return err },
			[]func([]byte) []byte{
				func(b []byte) []byte { b[0] = 2; return b },          // version
				func(b []byte) []byte { b[1] = 0; return b },          // outcome
				func(b []byte) []byte { b[1] = 4; return b },          // outcome
				func(b []byte) []byte { return append([]byte{1}, 1) }, // truncated
			}},
		{"dead letter seq 5", appendDead(nil, &dead), func(b []byte) error { _, err := decodeDead(5, b); return err },
			[]func([]byte) []byte{
				func(b []byte) []byte { b[0] = 2; return b },
				func(b []byte) []byte { b[1] = 0; return b },
				func(b []byte) []byte { b[4] = 100; return b },     // last error longer than the value
				func(b []byte) []byte { b[6+2] |= 0x40; return b }, // the job's flags
				func(b []byte) []byte { b[6] = 7; return b },       // the job's version
				func(b []byte) []byte { return b[:6] },             // no job
			}},
		{"schedule seq 6", appendSchedule(nil, &sched), func(b []byte) error { _, err := decodeSchedule(6, b); return err },
			[]func([]byte) []byte{
				func(b []byte) []byte { b[0] = 2; return b },
				func(b []byte) []byte { b[1] = 3; return b },
				func(b []byte) []byte { b[2] = 2; return b }, // an unknown flag
			}},
	}
	for _, d := range decoders {
		for cut := 0; cut < len(d.good)-1; cut++ { // the data runs to the end: only it may be cut
			if err := d.decode(d.good[:cut]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s cut at %d: %v", d.name, cut, err)
			}
		}
		for i, damage := range d.damage {
			err := d.decode(damage(bytes.Clone(d.good)))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), d.name) {
				t.Fatalf("%s damage %d: %v, want ErrCorrupt naming it", d.name, i, err)
			}
		}
	}
	for i, bad := range []byte{4, 0x80} {
		_, err := decodeRecord(9, []byte{1, 0, bad, 0, 0, 0, 0})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "job seq 9") || !strings.Contains(err.Error(), "unknown flags") {
			t.Fatalf("job flag %d: %v", i, err)
		}
	}

	// Through Open: a dead letter or a schedule is read by recovery and refuses it; a result
	// is not read until asked for.
	for _, c := range []struct {
		key, value []byte
		name       string
	}{
		{deadKey(nil, 5), []byte{2, 1}, "dead letter seq 5"},
		{scheduleKey(nil, 6), []byte{9}, "schedule seq 6"},
		{resultSeqKey(nil, 3), []byte{2, 1}, "result seq 3"},
		{[]byte("ch\x00"), []byte{1}, "result key"},
		{[]byte("cz"), []byte{1}, "result key"},
	} {
		dir := t.TempDir()
		l, _ := openLog(t, dir, SyncAlways)
		if err := l.db.Set(c.key, c.value, nil); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		_, _, err := Open(Options{Dir: dir, Logger: quietLogger(), MinFreeBytes: 1})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.name) {
			t.Fatalf("open with a damaged %s: %v", c.name, err)
		}
	}
	dir := t.TempDir()
	l, _ := openLog(t, dir, SyncAlways)
	if err := l.db.Set(resultUniqueKey(nil, "f", "bad"), []byte{2, 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, _ = reopen(t, dir)
	if _, _, err := l.ResultByUnique("f", "bad"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("reading a damaged by-unique entry: %v", err)
	}
}

// Every kind goes through Apply, survives a restart, and comes back as it was written; the
// result is written in the Txn that deletes its job, as the engine does.
func TestLifecycleSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, SyncAlways)
	job := Record{Seq: mustSeq(t, l), Handle: "H:j", Function: "resize", Unique: "u1", Attempts: 2,
		FirstFailed: time.Now().UnixNano(), Data: []byte("in")}
	putSync(t, l, &job)
	fn := FunctionSettings{Name: "resize", Limit: 2, Retry: RetryPolicy{Attempts: 4, Base: time.Second, Max: time.Minute}}
	res := Result{Seq: job.Seq, Handle: job.Handle, Function: job.Function, Unique: job.Unique, Outcome: OutcomeComplete,
		Data: []byte("out"), Attempts: 3, Created: job.FirstFailed, Started: job.FirstFailed + 1, Finished: job.FirstFailed + 2,
		Expires: job.FirstFailed + int64(time.Hour)}
	noUnique := Result{Seq: 1 << 40, Handle: "H:n", Function: "resize", Outcome: OutcomeException, Data: []byte{}, Expires: -5}
	dead := DeadLetter{Job: Record{Seq: mustSeq(t, l), Handle: "H:d", Function: "resize", Attempts: 4, Data: []byte{}},
		LastOutcome: OutcomeException, LastError: []byte("boom"), FirstFailed: 10, LastFailed: 20}
	gone := DeadLetter{Job: Record{Seq: mustSeq(t, l), Handle: "H:g", Function: "resize", Data: []byte{}}, LastOutcome: OutcomeFail}
	sched := Schedule{Seq: mustSeq(t, l), Handle: "H:s", Function: "resize", Unique: "nightly", Spec: "0 3 * * *",
		Location: "UTC", Priority: 1, Paused: true, LastRun: 100, Created: 50, Data: []byte("p")}
	var txn Txn
	txn.DeleteJob(job.Seq)
	txn.PutResult(res)
	txn.PutResult(noUnique)
	txn.PutFunction(fn)
	txn.PutDead(dead)
	txn.PutDead(gone)
	txn.PutSchedule(Schedule{Seq: sched.Seq, Function: "old", Data: []byte{}})
	applySync(t, l, &txn)
	txn.Reset()
	txn.DeleteDead(gone.Job.Seq)
	txn.PutSchedule(sched) // replaces the first version
	applySync(t, l, &txn)
	n, b := checkStats(t, l, true)
	if n != 2 || b <= 0 {
		t.Fatalf("ResultStats %d, %d after two results", n, b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, rec := reopen(t, dir)
	if len(rec.Jobs) != 0 || len(rec.Other) != 0 {
		t.Fatalf("jobs %+v, other %+v", rec.Jobs, rec.Other)
	}
	if !reflect.DeepEqual(rec.Functions, []FunctionSettings{fn}) {
		t.Fatalf("functions %+v", rec.Functions)
	}
	if !reflect.DeepEqual(rec.Dead, []DeadLetter{dead}) {
		t.Fatalf("dead\n got %+v\nwant %+v", rec.Dead, []DeadLetter{dead})
	}
	if !reflect.DeepEqual(rec.Schedules, []Schedule{sched}) {
		t.Fatalf("schedules\n got %+v\nwant %+v", rec.Schedules, []Schedule{sched})
	}
	if rec.Results != n || rec.ResultBytes != b {
		t.Fatalf("recovered %d results, %d bytes; before the restart %d, %d", rec.Results, rec.ResultBytes, n, b)
	}
	if rn, rb := checkStats(t, l, true); rn != n || rb != b {
		t.Fatalf("ResultStats after the restart %d, %d; before %d, %d", rn, rb, n, b)
	}
	for _, want := range []Result{res, noUnique} {
		got, ok, err := l.Result(want.Seq)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("Result(%q) = %+v, %v, %v", want.Handle, got, ok, err)
		}
	}
	if got, ok, err := l.ResultByUnique("resize", "u1"); err != nil || !ok || !reflect.DeepEqual(got, res) {
		t.Fatalf("ResultByUnique = %+v, %v, %v", got, ok, err)
	}

	// The job record written in the old format decodes beside the new one.
	old := Record{Seq: mustSeq(t, l), Handle: "H:o", Function: "f", Data: []byte{}}
	putSync(t, l, &old)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, rec = reopen(t, dir)
	if !reflect.DeepEqual(rec.Jobs, []Record{old}) {
		t.Fatalf("jobs %+v", rec.Jobs)
	}
}

func TestResultReadsSeeCommittedResults(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncNone)
	defer l.Close()
	var txn Txn
	first := Result{Seq: 1, Handle: "H:1", Function: "f", Unique: "same", Outcome: OutcomeComplete, Data: []byte("one"), Expires: 1}
	txn.PutResult(first)
	if err := l.Apply(&txn, nil); err != nil {
		t.Fatal(err)
	}
	barrier(t, l)
	if got, ok, err := l.Result(1); err != nil || !ok || string(got.Data) != "one" {
		t.Fatalf("Result after the barrier: %+v, %v, %v", got, ok, err)
	}
	// The newest result of a unique wins, whatever its expiry.
	txn.Reset()
	txn.PutResult(Result{Seq: 2, Handle: "H:2", Function: "f", Unique: "same", Outcome: OutcomeFail, Data: []byte{}, Expires: 0})
	txn.PutResult(Result{Seq: 3, Handle: "H:3", Function: "g", Unique: "same", Outcome: OutcomeComplete, Data: []byte("g")})
	applySync(t, l, &txn)
	if got, ok, err := l.ResultByUnique("f", "same"); err != nil || !ok || got.Handle != "H:2" {
		t.Fatalf("ResultByUnique(f, same) = %+v, %v, %v; want H:2", got, ok, err)
	}
	if got, ok, err := l.ResultByUnique("g", "same"); err != nil || !ok || got.Handle != "H:3" {
		t.Fatalf("ResultByUnique(g, same) = %+v, %v, %v; want H:3", got, ok, err)
	}
	for _, c := range [][2]string{{"f", "other"}, {"h", "same"}, {"", ""}, {"f\x00sa", "me"}} {
		if got, ok, err := l.ResultByUnique(c[0], c[1]); err != nil || ok {
			t.Fatalf("ResultByUnique(%q, %q) = %+v, %v, %v; want none", c[0], c[1], got, ok, err)
		}
	}
	if _, ok, err := l.Result(99); err != nil || ok {
		t.Fatalf("Result of an unknown handle: %v, %v", ok, err)
	}
	if n, _ := checkStats(t, l, false); n != 3 {
		t.Fatalf("%d results counted, want 3", n)
	}
}

// putResults stores n results expiring at base+i seconds, in one Txn per 1,000, and returns
// them.
func putResults(t testing.TB, l *Log, n int, base time.Time, data []byte) []Result {
	t.Helper()
	var txn Txn
	out := make([]Result, 0, n)
	for i := 0; i < n; i++ {
		r := Result{Seq: uint64(i + 1), Handle: fmt.Sprintf("H:%d", i+1), Function: "f", Outcome: OutcomeComplete, Data: data,
			Expires: base.Add(time.Duration(i) * time.Second).UnixNano()}
		if i%2 == 0 {
			r.Unique = fmt.Sprint("u", i)
		}
		txn.PutResult(r)
		out = append(out, r)
		if len(out)%1000 == 0 || i == n-1 {
			applySync(t, l, &txn)
			txn.Reset()
		}
	}
	return out
}

func TestExpireResultsByTime(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, SyncNone)
	base := time.Unix(1_700_000_000, 0)
	const n = 2500 // more than two ExpireResults chunks
	rs := putResults(t, l, n, base, []byte("data"))
	checkStats(t, l, true)
	if got, err := l.ExpireResults(base.Add(-time.Second), 0); err != nil || got != 0 {
		t.Fatalf("nothing is due yet, ExpireResults removed %d, %v", got, err)
	}
	const due = 2100
	got, err := l.ExpireResults(base.Add((due-1)*time.Second), 0) // at or before now
	if err != nil || got != due {
		t.Fatalf("ExpireResults removed %d, %v; want %d", got, err, due)
	}
	count, size := checkStats(t, l, true)
	if count != n-due {
		t.Fatalf("%d results left, want %d", count, n-due)
	}
	entries, _, keys, _ := resultsOnDisk(t, l)
	if wantKeys := (n - due) + (n-due)/2; entries != n-due || keys != wantKeys {
		t.Fatalf("%d results and %d keys left, want %d and %d", entries, keys, n-due, wantKeys)
	}
	for i, r := range rs {
		_, ok, err := l.Result(r.Seq)
		_, uok, uerr := l.ResultByUnique(r.Function, r.Unique)
		if err != nil || uerr != nil || ok != (i >= due) || r.Unique != "" && uok != ok {
			t.Fatalf("result %d: found %v (by unique %v), %v %v", i, ok, uok, err, uerr)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, rec := reopen(t, dir)
	if rec.Results != count || rec.ResultBytes != size {
		t.Fatalf("recovered %d results, %d bytes; before the restart %d, %d", rec.Results, rec.ResultBytes, count, size)
	}
	if got, err := l.ExpireResults(base.Add(time.Duration(n)*time.Second), 0); err != nil || got != n-due {
		t.Fatalf("ExpireResults after the restart removed %d, %v", got, err)
	}
	if c, b := checkStats(t, l, true); c != 0 || b != 0 {
		t.Fatalf("after removing everything: %d results, %d bytes", c, b)
	}
}

func TestExpireResultsByBytes(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncNone)
	defer l.Close()
	base := time.Unix(1_700_000_000, 0)
	const n = 1500
	rs := putResults(t, l, n, base, make([]byte, 100))
	_, total := checkStats(t, l, true)
	limit := total / 3
	got, err := l.ExpireResults(base.Add(-time.Hour), limit) // nothing has expired
	if err != nil || got == 0 {
		t.Fatalf("ExpireResults removed %d, %v", got, err)
	}
	_, left := checkStats(t, l, true)
	if left > limit {
		t.Fatalf("%d bytes left, bound %d", left, limit)
	}
	// The oldest went, and only as many as needed: the last one removed would have fit.
	for i, r := range rs {
		if _, ok, _ := l.Result(r.Seq); ok != (i >= got) {
			t.Fatalf("result %d (of %d removed) found: %v", i, got, ok)
		}
	}
	var txn Txn
	txn.PutResult(rs[got-1])
	if txn.resultBytes+left <= limit {
		t.Fatalf("removed %d results, but %d bytes plus the last one's %d fit in %d", got, left, txn.resultBytes, limit)
	}
	if again, err := l.ExpireResults(base.Add(-time.Hour), limit); err != nil || again != 0 {
		t.Fatalf("a second call removed %d more, %v", again, err)
	}
}

// A result whose unique a newer result took over leaves the newer one's entry alone.
func TestExpireKeepsANewerResultsUniqueEntry(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncAlways)
	defer l.Close()
	now := time.Now()
	var txn Txn
	txn.PutResult(Result{Seq: 1, Handle: "H:old", Function: "f", Unique: "u", Outcome: OutcomeComplete, Data: []byte("old"),
		Expires: now.Add(-time.Minute).UnixNano()})
	applySync(t, l, &txn)
	txn.Reset()
	txn.PutResult(Result{Seq: 2, Handle: "H:new", Function: "f", Unique: "u", Outcome: OutcomeComplete, Data: []byte("new"),
		Expires: now.Add(time.Hour).UnixNano()})
	applySync(t, l, &txn)
	if got, err := l.ExpireResults(now, 0); err != nil || got != 1 {
		t.Fatalf("ExpireResults removed %d, %v", got, err)
	}
	checkStats(t, l, true)
	if _, ok, _ := l.Result(1); ok {
		t.Fatal("the expired result is still there")
	}
	if got, ok, err := l.ResultByUnique("f", "u"); err != nil || !ok || got.Handle != "H:new" {
		t.Fatalf("ResultByUnique after the older one expired: %+v, %v, %v", got, ok, err)
	}
	checkStats(t, l, true)
}

// The committer checks a conditional delete against the key as it stands at that point of
// the batch: a newer result queued in the same batch, before the removal of the older one,
// keeps its entry; one queued after it is simply written.
func TestConditionalDeleteSeesItsOwnBatch(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncAlways)
	defer l.Close()
	old := Result{Seq: 1, Handle: "H:old", Function: "f", Unique: "u", Outcome: OutcomeComplete, Data: []byte{}}
	seqBytes := func(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
	var txn Txn
	txn.PutResult(old)
	applySync(t, l, &txn)
	uKey := resultUniqueKey(nil, "f", "u")
	removeOld := func() []byte { // what ExpireResults queues for the by-unique entry of H:old
		var t Txn
		t.key(txnDeleteIf, KindResult, len(uKey)-1)
		t.buf = append(t.buf, uKey[1:]...)
		t.value(seqBytes(old.Seq))
		return t.buf
	}
	newer := func(seq uint64) []byte {
		var t Txn
		t.PutResult(Result{Seq: seq, Handle: fmt.Sprint("H:", seq), Function: "f", Unique: "u", Outcome: OutcomeComplete, Data: []byte{}})
		return t.buf
	}
	for _, c := range []struct {
		txns [][]byte
		want uint64 // the seq the entry names afterwards; 0 = none
	}{
		{[][]byte{removeOld()}, 0},                        // still names the old one: removed
		{[][]byte{newer(7), removeOld()}, 7},              // taken over earlier in the batch
		{[][]byte{removeOld(), newer(8)}, 8},              // taken over after
		{[][]byte{newer(1), removeOld(), removeOld()}, 0}, // removed once, then absent
	} {
		b := l.db.NewBatch()
		var buf []byte
		var ops []op
		for _, tb := range c.txns {
			ops = append(ops, op{kind: opTxn, cond: true, start: len(buf), end: len(buf) + len(tb)})
			buf = append(buf, tb...)
		}
		if err := l.db.Set(uKey, seqBytes(old.Seq), nil); err != nil {
			t.Fatal(err)
		}
		l.fillBatch(b, ops, buf, false, nil)
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
		v, closer, err := l.db.Get(uKey)
		var got uint64
		if err == nil {
			got = binary.BigEndian.Uint64(v)
			closer.Close()
		} else if !errors.Is(err, pebble.ErrNotFound) {
			t.Fatal(err)
		}
		if got != c.want {
			t.Fatalf("by-unique entry names %d, want %d", got, c.want)
		}
	}
}

// On a nearly full disk a result is refused and not counted; expiring still works, since it
// only deletes.
func TestResultsOnAFullDisk(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncAlways)
	defer l.Close()
	now := time.Now()
	putResults(t, l, 10, now.Add(-time.Hour), []byte("x"))
	n, b := checkStats(t, l, true)
	l.opts.MinFreeBytes = 1 << 62
	var txn Txn
	txn.PutResult(Result{Seq: 1, Handle: "H:full", Function: "f", Outcome: OutcomeComplete})
	c := make(ackChan, 1)
	if err := l.Apply(&txn, c); err != nil {
		t.Fatal(err)
	}
	if err := waitAck(t, c); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("result on a full disk: %v", err)
	}
	if n2, b2 := checkStats(t, l, true); n2 != n || b2 != b {
		t.Fatalf("a refused result moved ResultStats from %d, %d to %d, %d", n, b, n2, b2)
	}
	if got, err := l.ExpireResults(now, 0); err != nil || got != 10 {
		t.Fatalf("ExpireResults on a full disk removed %d, %v", got, err)
	}
	checkStats(t, l, true)
}

func TestResultCallsAfterCloseAreRefused(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncAlways)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err1 := l.Result(1)
	_, _, err2 := l.ResultByUnique("f", "u")
	_, err3 := l.ExpireResults(time.Now(), 0)
	for i, err := range []error{err1, err2, err3} {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("call %d after Close: %v", i, err)
		}
	}
}

// Handles never repeat: a schedule or a dead letter holds a number as a job does, and one
// above every reservation (written by hand here) still raises the sequence.
func TestRecoveredSeqIsAboveSchedulesAndDeadLetters(t *testing.T) {
	for _, c := range []struct{ sched, dead uint64 }{{1 << 40, 1 << 41}, {1 << 42, 1 << 41}} {
		dir := t.TempDir()
		l, _ := openLog(t, dir, SyncAlways)
		var txn Txn
		txn.PutSchedule(Schedule{Seq: c.sched, Function: "f"})
		txn.PutDead(DeadLetter{Job: Record{Seq: c.dead, Function: "f"}, LastOutcome: OutcomeFail})
		applySync(t, l, &txn)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, _ = reopen(t, dir)
		if s := mustSeq(t, l); s <= max(c.sched, c.dead) {
			t.Fatalf("NextSeq %d after recovering schedule %d and dead letter %d", s, c.sched, c.dead)
		}
	}
}

// storeResults fills a data dir with n results of size bytes of data, closes it and returns
// their ResultStats. Once it returns nothing references the log: its memory (Pebble holds
// the batches of a closed database while it is referenced) is garbage.
func storeResults(t *testing.T, dir string, n, size int) (int, int64) {
	l, _ := openLog(t, dir, SyncNone)
	data := make([]byte, size)
	var txn Txn
	for i := 0; i < n; i++ {
		txn.PutResult(Result{Seq: uint64(i + 1), Handle: fmt.Sprint("H:mem:", i+1), Function: "f", Unique: fmt.Sprint("u", i),
			Outcome: OutcomeComplete, Data: data, Expires: int64(i)})
		if i%1000 == 999 || i == n-1 {
			if err := l.Apply(&txn, nil); err != nil {
				t.Fatal(err)
			}
			txn.Reset()
		}
	}
	barrier(t, l)
	count, bytes := l.ResultStats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return count, bytes
}

// Recovery keeps no result in memory: it reads them only to count them. Many results
// of some size are stored; reopening grows the heap by a small part of what they hold.
func TestRecoveryKeepsNoResultInMemory(t *testing.T) {
	n := 100_000 // ~30 MiB of results: 1 s, 4 s under the race detector
	if testing.Short() {
		n = 10_000
	}
	const dataSize = 256
	dir := t.TempDir()
	count, size := storeResults(t, dir, n, dataSize)
	if count != n || size < int64(n*dataSize) {
		t.Fatalf("ResultStats %d, %d bytes after %d results of %d bytes", count, size, n, dataSize)
	}
	var before, after runtime.MemStats
	runtime.GC() // twice: what sync.Pools held survives one collection
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	l, rec := reopen(t, dir)
	took := time.Since(start)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if rec.Results != count || rec.ResultBytes != size || len(rec.Other) != 0 || len(rec.Jobs) != 0 {
		t.Fatalf("recovered %d results, %d bytes, %d other records; want %d, %d, none", rec.Results, rec.ResultBytes, len(rec.Other), count, size)
	}
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d results, %d MiB stored: recovery took %v, heap in use grew by %.1f MiB to %.1f MiB",
		n, size>>20, took, float64(grew)/(1<<20), float64(after.HeapInuse)/(1<<20))
	// A quarter leaves room for Pebble's block cache, which is on the Go heap without cgo.
	// Under the race detector the heap holds more than the program does: make test measures
	// it in its second, plain run.
	if grew > size/4 && !raceEnabled {
		t.Fatalf("recovering %d bytes of results grew the heap by %d bytes", size, grew)
	}
	if r, ok, err := l.Result(uint64(n)); err != nil || !ok || len(r.Data) != dataSize {
		t.Fatalf("a result after the restart: %v, %v", ok, err)
	}
	runtime.KeepAlive(rec)
}
