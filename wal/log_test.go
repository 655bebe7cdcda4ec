package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openLog(t *testing.T, dir string, mode SyncMode) (*Log, []Record) {
	t.Helper()
	l, rec, err := Open(Options{Dir: dir, Sync: mode, Logger: quietLogger(), MinFreeBytes: 1})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l, rec.Jobs
}

// mustSeq issues a sequence number; the log must not refuse it.
func mustSeq(t testing.TB, l *Log) uint64 {
	t.Helper()
	s, err := l.NextSeq()
	if err != nil {
		t.Fatalf("NextSeq: %v", err)
	}
	return s
}

// mustDelete queues a deletion; the log must take it.
func mustDelete(t testing.TB, l *Log, seq uint64) {
	t.Helper()
	if err := l.Delete(seq); err != nil {
		t.Fatalf("Delete(%d): %v", seq, err)
	}
}

// ackFunc adapts a function to Ack.
type ackFunc func(error)

func (f ackFunc) Acked(err error) { f(err) }

// putSync writes one record and waits for its acknowledgement.
func putSync(t *testing.T, l *Log, r *Record) {
	t.Helper()
	done := make(chan error, 1)
	if err := l.Put(*r, ackFunc(func(err error) { done <- err })); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func sampleRecord(seq uint64, rng *rand.Rand) Record {
	data := make([]byte, rng.IntN(200))
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	r := Record{
		Seq:      seq,
		Handle:   fmt.Sprintf("H:test:%d", seq),
		Function: fmt.Sprintf("fn%d", rng.IntN(5)),
		Priority: uint8(rng.IntN(3)),
		Data:     data,
	}
	if rng.IntN(2) == 0 {
		r.Unique = fmt.Sprintf("u-%d", seq)
	}
	if rng.IntN(4) == 0 {
		r.Reducer = "reduce"
	}
	if rng.IntN(4) == 0 {
		r.RunAt = time.Now().Unix() + int64(rng.IntN(1000))
	}
	return r
}

func TestRecordRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		r := sampleRecord(uint64(i+1), rng)
		if i%7 == 0 {
			r.RunAt = -int64(i) // negative epochs are legal input; they mean "now"
		}
		got, err := decodeRecord(r.Seq, appendRecord(nil, &r))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Data) == 0 {
			r.Data = []byte{}
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestDecodeRejectsDamagedRecords(t *testing.T) {
	r := Record{Seq: 9, Handle: "H:x:9", Function: "f", Unique: "u", Data: []byte("payload"), RunAt: 5}
	enc := appendRecord(nil, &r)
	for cut := 0; cut < len(enc)-len(r.Data); cut++ {
		if _, err := decodeRecord(9, enc[:cut]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: err %v, want ErrCorrupt", cut, err)
		}
	}
	for _, mutate := range []func([]byte){
		func(b []byte) { b[0] = 99 },    // version
		func(b []byte) { b[1] = 7 },     // priority
		func(b []byte) { b[2] |= 0x80 }, // flags
	} {
		b := bytes.Clone(enc)
		mutate(b)
		if _, err := decodeRecord(9, b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("mutated record accepted: %v", err)
		}
	}
}

func TestPutDeleteRecoverInSubmissionOrder(t *testing.T) {
	dir := t.TempDir()
	l, recs := openLog(t, dir, SyncAlways)
	if len(recs) != 0 {
		t.Fatalf("new log has %d records", len(recs))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var want []Record
	for i := 0; i < 300; i++ {
		r := sampleRecord(mustSeq(t, l), rng)
		putSync(t, l, &r)
		if i%3 == 0 {
			mustDelete(t, l, r.Seq)
		} else {
			want = append(want, r)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, got := openLog(t, dir, SyncAlways)
	defer l.Close()
	if len(got) != len(want) {
		t.Fatalf("recovered %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if len(want[i].Data) == 0 {
			want[i].Data = []byte{}
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestSequenceNeverRepeatsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	seen := map[uint64]bool{}
	for restart := 0; restart < 3; restart++ {
		l, _ := openLog(t, dir, SyncAlways)
		for i := 0; i < 100; i++ {
			s := mustSeq(t, l)
			if seen[s] {
				t.Fatalf("sequence %d issued twice (restart %d)", s, restart)
			}
			seen[s] = true
		}
		// Nothing is written under these numbers: the reservation alone must prevent reuse.
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGroupCommitAcknowledgesInOrderUnderConcurrency(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncAlways)
	defer l.Close()
	const writers, each = 8, 200
	var mu sync.Mutex
	var acked []uint64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{}, each)
			for i := 0; i < each; i++ {
				mu.Lock() // take the number and queue under one lock so Put order == seq order
				seq, err := l.NextSeq()
				if err != nil {
					mu.Unlock()
					t.Error(err)
					return
				}
				r := &Record{Seq: seq, Handle: "h", Function: "f"}
				err = l.Put(*r, ackFunc(func(err error) {
					if err != nil {
						t.Error(err)
					}
					acked = append(acked, r.Seq) // runs on the committer: serial
					done <- struct{}{}
				}))
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
			for i := 0; i < each; i++ {
				<-done
			}
		}()
	}
	wg.Wait()
	if len(acked) != writers*each {
		t.Fatalf("%d acks, want %d", len(acked), writers*each)
	}
	if !sort.SliceIsSorted(acked, func(a, b int) bool { return acked[a] < acked[b] }) {
		t.Fatal("acknowledgements out of Put order")
	}
}

func TestDiskReserveRefusesPutsButNotDeletes(t *testing.T) {
	dir := t.TempDir()
	l, _, err := Open(Options{Dir: dir, Logger: quietLogger(), MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := Record{Seq: mustSeq(t, l), Handle: "h1", Function: "f"}
	putSync(t, l, &r)
	l.opts.MinFreeBytes = 1 << 62 // no disk is that large: every Put is now refused
	done := make(chan error, 1)
	r2 := Record{Seq: mustSeq(t, l), Handle: "h2", Function: "f"}
	if err := l.Put(r2, ackFunc(func(err error) { done <- err })); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("put on a full disk: %v", err)
	}
	mustDelete(t, l, r.Seq)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, recs := openLog(t, dir, SyncAlways)
	defer l.Close()
	if len(recs) != 0 {
		t.Fatalf("recovered %+v; the delete should have gone through and the refused put not", recs)
	}
}

func TestPutAfterCloseIsRefused(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), SyncAlways)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(Record{Seq: 1}, ackFunc(func(error) { t.Error("done ran after Close") })); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v", err)
	}
}

func TestSyncModes(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncBatch, SyncNone} {
		dir := t.TempDir()
		l, _ := openLog(t, dir, mode)
		r := Record{Seq: mustSeq(t, l), Handle: "h", Function: "f", Data: []byte("x")}
		putSync(t, l, &r)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, recs := openLog(t, dir, mode)
		if len(recs) != 1 || recs[0].Handle != "h" {
			t.Fatalf("mode %d: recovered %+v", mode, recs)
		}
		l.Close()
	}
	for in, want := range map[string]SyncMode{"always": SyncAlways, "batch": SyncBatch, "none": SyncNone} {
		if got, err := ParseSyncMode(in); err != nil || got != want {
			t.Fatalf("ParseSyncMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSyncMode("sometimes"); err == nil {
		t.Fatal("bad sync mode accepted")
	}
}

func TestUnwritableDirIsAClearError(t *testing.T) {
	// A path under a regular file fails for everyone, root included (root ignores modes).
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(Options{Dir: filepath.Join(file, "data"), Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "data dir") {
		t.Fatalf("open under a file: %v", err)
	}
}

// jobPutLen is what Put reserves before encoding a record in place: it must be exact.
func TestJobPutLenIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for i := 0; i < 20000; i++ {
		r := sampleRecord(uint64(i)<<uint(i%60), rng)
		switch i % 4 {
		case 1:
			r.RunAt = -int64(rng.IntN(1 << 40))
		case 2:
			r.RunAt = int64(rng.Uint64())
		}
		b := appendJobPut(nil, &r)
		if len(b) != jobPutLen(&r) {
			t.Fatalf("record %+v: encoded %d bytes, jobPutLen %d", r, len(b), jobPutLen(&r))
		}
		w, rest := nextTxnWrite(b)
		got, err := decodeRecord(r.Seq, w.value)
		if err != nil || len(rest) != 0 || w.tag != txnSet || string(w.key) != string(jobKey(nil, r.Seq)) {
			t.Fatalf("record %+v: decoded %+v, %v (%d bytes left)", r, got, err, len(rest))
		}
	}
}
