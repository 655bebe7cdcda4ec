package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The record kinds of the job lifecycle: stored results, dead letters and recurring
// schedules. Their key and value formats are drawn in the package doc.

// Outcome is how a background job ended.
type Outcome uint8

const (
	OutcomeComplete  Outcome = 1 // WORK_COMPLETE; Data is the result
	OutcomeFail      Outcome = 2 // WORK_FAIL, or given up by the server (retries exhausted, cancelled)
	OutcomeException Outcome = 3 // WORK_EXCEPTION; Data is the exception
)

// Result is the stored outcome of one background job, kept until Expires.
type Result struct {
	Seq      uint64 // the job's number, the key it is stored under
	Handle   string
	Function string
	Unique   string
	Outcome  Outcome
	Data     []byte
	Attempts uint32 // assignments the job had, this one included
	Created  int64  // unix nanoseconds: submitted; 0 when the server did not record it
	Started  int64  // unix nanoseconds: the last assignment began
	Finished int64  // unix nanoseconds: the outcome arrived
	Expires  int64  // unix nanoseconds: ExpireResults removes it from then on
}

// RetryPolicy is a function's retry policy for failed background jobs (admin `retry`).
type RetryPolicy struct {
	Attempts int           // assignments in all, the first included; 0 = no policy
	Base     time.Duration // the first backoff
	Max      time.Duration // no backoff is longer
}

// DeadLetter is a background job that exhausted its attempts, kept with its history.
type DeadLetter struct {
	Job         Record // as it was last queued: Seq, Handle, Attempts, FirstFailed...
	LastOutcome Outcome
	LastError   []byte // the last WORK_FAIL (empty) or WORK_EXCEPTION data
	FirstFailed int64  // unix nanoseconds
	LastFailed  int64  // unix nanoseconds: when it died
}

// Schedule is a recurring job (SUBMIT_JOB_SCHED or admin `schedule add`).
type Schedule struct {
	Seq      uint64 // its number, from NextSeq, as a job's: its handle is prefix:Seq
	Handle   string
	Function string
	Unique   string
	Spec     string // the 5-field cron expression, in the numbering of package engine/cron
	Location string // IANA time zone name; "" = the server's zone
	Priority uint8
	Paused   bool
	LastRun  int64 // unix seconds of the last firing; 0 = never
	Created  int64 // unix seconds
	Data     []byte
}

// The second byte of a result key: which of a result's two keys it is. Results are keyed by
// their job's number, so that they are written in key order, after every older one, and sort
// before the jobs: a table Pebble flushes then spans only the newest results and the jobs,
// and compacting it rewrites none of the older results (an expiry index keyed apart, or
// results keyed by handle text, made every compaction rewrite them all: results cost 0.68x
// of a million submit-and-complete jobs' throughput, instead of about 0.8x).
const (
	resultBySeq    = 'h' // 'c','h', seq (8 bytes BE) -> the result
	resultByUnique = 'u' // 'c','u', function, 0x00, unique -> the seq (8 bytes BE) of its newest result
)

const (
	resultVersion   = 1
	deadVersion     = 1
	scheduleVersion = 1
	flagSchedPaused = 1
)

// String is the outcome's name in admin listings and the HTTP API: complete, fail, exception.
func (o Outcome) String() string {
	switch o {
	case OutcomeComplete:
		return "complete"
	case OutcomeFail:
		return "fail"
	case OutcomeException:
		return "exception"
	}
	return "unknown"
}

func (o Outcome) valid() bool { return o >= OutcomeComplete && o <= OutcomeException }

func resultSeqKey(dst []byte, seq uint64) []byte {
	dst = append(dst, byte(KindResult), resultBySeq)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func resultUniqueKey(dst []byte, fn, unique string) []byte {
	dst = append(dst, byte(KindResult), resultByUnique)
	dst = append(dst, fn...)
	dst = append(dst, 0)
	return append(dst, unique...)
}

// expiryTime is a result's Expires as its index key holds it: unsigned, so before 1970 is 0.
func expiryTime(expires int64) uint64 { return uint64(max(expires, 0)) }

func deadKey(dst []byte, seq uint64) []byte {
	dst = append(dst, byte(KindDead))
	return binary.BigEndian.AppendUint64(dst, seq)
}

func scheduleKey(dst []byte, seq uint64) []byte {
	dst = append(dst, byte(KindSchedule))
	return binary.BigEndian.AppendUint64(dst, seq)
}

// resultSize is what a result costs in ResultStats: its keys and values, the size of its
// by-unique entry included. value is the length of its encoded value.
func resultSize(r *Result, value int) int64 {
	n := 2 + 8 + value // by seq
	if r.Unique != "" {
		n += 3 + len(r.Function) + len(r.Unique) + 8 // by unique
	}
	return int64(n)
}

// appendResult encodes r's value onto dst.
func appendResult(dst []byte, r *Result) []byte {
	dst = append(dst, resultVersion, byte(r.Outcome))
	dst = binary.AppendUvarint(dst, uint64(r.Attempts))
	for _, t := range [...]int64{r.Created, r.Started, r.Finished, r.Expires} {
		dst = binary.AppendVarint(dst, t)
	}
	for _, s := range [...]string{r.Handle, r.Function, r.Unique} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return append(dst, r.Data...)
}

// decodeResult parses the result stored under seq; with data false it leaves Data nil
// rather than copy it. The result does not alias value.
func decodeResult(seq uint64, value []byte, data bool) (Result, error) {
	bad := func(why string) (Result, error) {
		return Result{}, fmt.Errorf("%w: result seq %d: %s", ErrCorrupt, seq, why)
	}
	if len(value) < 2 {
		return bad("truncated")
	}
	if value[0] != resultVersion {
		return bad(fmt.Sprintf("unknown version %d", value[0]))
	}
	r := Result{Seq: seq, Outcome: Outcome(value[1])}
	if !r.Outcome.valid() {
		return bad(fmt.Sprintf("unknown outcome %d", value[1]))
	}
	rest := value[2:]
	a, n := binary.Uvarint(rest)
	if n <= 0 || a > math.MaxUint32 {
		return bad("bad attempts")
	}
	r.Attempts, rest = uint32(a), rest[n:]
	for _, t := range [...]*int64{&r.Created, &r.Started, &r.Finished, &r.Expires} {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return bad("bad time")
		}
		*t, rest = v, rest[n:]
	}
	var fields [3]string
	var ok bool
	for i := range fields {
		if fields[i], rest, ok = cutString(rest); !ok {
			return bad("truncated field")
		}
	}
	r.Handle, r.Function, r.Unique = fields[0], fields[1], fields[2]
	if data {
		r.Data = append([]byte{}, rest...)
	}
	return r, nil
}

// cutString reads a uvarint length and that many bytes, copied.
func cutString(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return "", b, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}

// appendDead encodes d's value onto dst.
func appendDead(dst []byte, d *DeadLetter) []byte {
	dst = append(dst, deadVersion, byte(d.LastOutcome))
	dst = binary.AppendVarint(dst, d.FirstFailed)
	dst = binary.AppendVarint(dst, d.LastFailed)
	dst = binary.AppendUvarint(dst, uint64(len(d.LastError)))
	dst = append(dst, d.LastError...)
	return appendRecord(dst, &d.Job)
}

// decodeDead parses the dead letter stored under seq. The result does not alias value.
func decodeDead(seq uint64, value []byte) (DeadLetter, error) {
	bad := func(why string) (DeadLetter, error) {
		return DeadLetter{}, fmt.Errorf("%w: dead letter seq %d: %s", ErrCorrupt, seq, why)
	}
	if len(value) < 2 {
		return bad("truncated")
	}
	if value[0] != deadVersion {
		return bad(fmt.Sprintf("unknown version %d", value[0]))
	}
	d := DeadLetter{LastOutcome: Outcome(value[1])}
	if !d.LastOutcome.valid() {
		return bad(fmt.Sprintf("unknown outcome %d", value[1]))
	}
	rest := value[2:]
	for _, t := range [...]*int64{&d.FirstFailed, &d.LastFailed} {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return bad("bad time")
		}
		*t, rest = v, rest[n:]
	}
	l, n := binary.Uvarint(rest)
	if n <= 0 || l > uint64(len(rest)-n) {
		return bad("truncated last error")
	}
	d.LastError = append([]byte{}, rest[n:n+int(l)]...)
	job, err := decodeRecordOf("dead letter", seq, rest[n+int(l):])
	if err != nil {
		return DeadLetter{}, err
	}
	d.Job = job
	return d, nil
}

// appendSchedule encodes s's value onto dst.
func appendSchedule(dst []byte, s *Schedule) []byte {
	var flags byte
	if s.Paused {
		flags |= flagSchedPaused
	}
	dst = append(dst, scheduleVersion, s.Priority, flags)
	dst = binary.AppendVarint(dst, s.LastRun)
	dst = binary.AppendVarint(dst, s.Created)
	for _, f := range [...]string{s.Handle, s.Function, s.Unique, s.Spec, s.Location} {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return append(dst, s.Data...)
}

// decodeSchedule parses the schedule stored under seq. The result does not alias value.
func decodeSchedule(seq uint64, value []byte) (Schedule, error) {
	bad := func(why string) (Schedule, error) {
		return Schedule{}, fmt.Errorf("%w: schedule seq %d: %s", ErrCorrupt, seq, why)
	}
	if len(value) < 3 {
		return bad("truncated")
	}
	if value[0] != scheduleVersion {
		return bad(fmt.Sprintf("unknown version %d", value[0]))
	}
	s := Schedule{Seq: seq, Priority: value[1], Paused: value[2]&flagSchedPaused != 0}
	if s.Priority > 2 {
		return bad("bad priority")
	}
	if value[2]&^flagSchedPaused != 0 {
		return bad(fmt.Sprintf("unknown flags %#x", value[2]))
	}
	rest := value[3:]
	for _, t := range [...]*int64{&s.LastRun, &s.Created} {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return bad("bad time")
		}
		*t, rest = v, rest[n:]
	}
	var fields [5]string
	var ok bool
	for i := range fields {
		if fields[i], rest, ok = cutString(rest); !ok {
			return bad("truncated field")
		}
	}
	s.Handle, s.Function, s.Unique, s.Spec, s.Location = fields[0], fields[1], fields[2], fields[3], fields[4]
	s.Data = append([]byte{}, rest...)
	return s, nil
}

// PutResult writes r under r.Seq (and by function+unique when r.Unique is set, the newest
// result of that unique winning). An outcome other than the three Outcome values fails the
// Txn.
//
// r.Seq must have no stored result: a job ends once, and its result is written in the Txn
// that deletes its job record. (Were one written twice, ResultStats would count both until
// ExpireResults removed the result.)
func (t *Txn) PutResult(r Result) {
	if !r.Outcome.valid() {
		t.fail(fmt.Errorf("wal: result of %q: unknown outcome %d", r.Handle, r.Outcome))
		return
	}
	t.scratch = appendResult(t.scratch[:0], &r)
	size := resultSize(&r, len(t.scratch))

	t.key(txnSet, KindResult, 1+8)
	t.buf = append(t.buf, resultBySeq)
	t.buf = binary.BigEndian.AppendUint64(t.buf, r.Seq)
	t.value(t.scratch)

	if r.Unique != "" {
		t.key(txnSet, KindResult, 1+len(r.Function)+1+len(r.Unique))
		t.buf = append(t.buf, resultByUnique)
		t.buf = append(t.buf, r.Function...)
		t.buf = append(t.buf, 0)
		t.buf = append(t.buf, r.Unique...)
		t.buf = append(t.buf, 8)
		t.buf = binary.BigEndian.AppendUint64(t.buf, r.Seq)
	}

	t.results++
	t.resultBytes += size
}

// PutDead writes dead letter d under d.Job.Seq. An outcome other than the three Outcome
// values fails the Txn.
func (t *Txn) PutDead(d DeadLetter) {
	if !d.LastOutcome.valid() {
		t.fail(fmt.Errorf("wal: dead letter seq %d: unknown outcome %d", d.Job.Seq, d.LastOutcome))
		return
	}
	t.scratch = appendDead(t.scratch[:0], &d)
	t.key(txnSet, KindDead, 8)
	t.buf = binary.BigEndian.AppendUint64(t.buf, d.Job.Seq)
	t.value(t.scratch)
}

// DeleteDead removes the dead letter under seq.
func (t *Txn) DeleteDead(seq uint64) {
	t.key(txnDelete, KindDead, 8)
	t.buf = binary.BigEndian.AppendUint64(t.buf, seq)
}

// PutSchedule writes s under s.Seq, replacing its earlier version. A priority above 2 fails
// the Txn.
func (t *Txn) PutSchedule(s Schedule) {
	if s.Priority > 2 {
		t.fail(fmt.Errorf("wal: schedule seq %d: bad priority %d", s.Seq, s.Priority))
		return
	}
	t.scratch = appendSchedule(t.scratch[:0], &s)
	t.key(txnSet, KindSchedule, 8)
	t.buf = binary.BigEndian.AppendUint64(t.buf, s.Seq)
	t.value(t.scratch)
}

// DeleteSchedule removes the schedule under seq.
func (t *Txn) DeleteSchedule(seq uint64) {
	t.key(txnDelete, KindSchedule, 8)
	t.buf = binary.BigEndian.AppendUint64(t.buf, seq)
}

// Result reads the stored result of job number seq (the caller checks that its Handle is
// the one it asks about). It reads the database, never memory, and sees what is committed:
// a result whose write is still queued is not found yet (a Barrier first waits for it).
// After Close it returns ErrClosed.
func (l *Log) Result(seq uint64) (Result, bool, error) {
	if err := l.enter(); err != nil {
		return Result{}, false, err
	}
	defer l.readers.Done()
	return l.result(seq)
}

// result reads the result of seq; the caller holds l.readers.
func (l *Log) result(seq uint64) (Result, bool, error) {
	v, closer, err := l.db.Get(resultSeqKey(nil, seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("cannot read the result of job %d: %w", seq, err)
	}
	defer closer.Close()
	r, err := decodeResult(seq, v, true)
	if err != nil {
		return Result{}, false, err
	}
	return r, true, nil
}

// ResultByUnique reads the newest stored result of function fn's unique, as Result does.
func (l *Log) ResultByUnique(fn, unique string) (Result, bool, error) {
	if err := l.enter(); err != nil {
		return Result{}, false, err
	}
	defer l.readers.Done()
	v, closer, err := l.db.Get(resultUniqueKey(nil, fn, unique))
	if errors.Is(err, pebble.ErrNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("cannot read the result of unique %q of %q: %w", unique, fn, err)
	}
	if len(v) != 8 {
		closer.Close()
		return Result{}, false, fmt.Errorf("%w: by-unique result entry of %q of %q", ErrCorrupt, unique, fn)
	}
	seq := binary.BigEndian.Uint64(v)
	closer.Close()
	r, ok, err := l.result(seq)
	// A name holding 0x00 could make two (function, unique) pairs share a key; the result
	// itself says whose it is.
	if err != nil || !ok || r.Function != fn || r.Unique != unique {
		return Result{}, false, err
	}
	return r, true, nil
}

// ResultStats returns how many results are stored and the bytes they take: each one's keys
// and values as PutResult wrote them (a by-unique entry a newer result took over stays
// counted for the older one until it expires). Recovery counts them; then the figures move as the batches that write or remove results commit, so they lag
// what Result sees by at most the batch being acknowledged. Safe to call at any time.
func (l *Log) ResultStats() (count int, bytes int64) {
	return int(l.results.Load()), l.resultBytes.Load()
}

// expireChunk is the most results one ExpireResults transaction removes: a call never builds
// an unbounded batch, and each step leaves room for the other writes.
const expireChunk = 1000

// ExpireResults removes, oldest job first, the results whose Expires is at or before now,
// and then more while more than maxBytes are stored (maxBytes <= 0: no byte bound); it stops
// at the first result that is neither, so one that expires late (its job ran long) holds
// back the younger ones behind it until it goes. It returns how many it removed. The removals go through the committer like any other write, in transactions of
// at most expireChunk results, each acknowledged before the next is built, so a call blocks
// for as many commits: call it from a background goroutine, never from an Ack. Calls run
// one at a time. A result's by-unique entry is removed with it only while it still names
// that result, checked by the committer when it reaches the removal: a newer result of the
// same unique keeps its entry, even one queued meanwhile. The removals only delete, so a
// nearly full disk does not refuse them. After Close it returns ErrClosed.
func (l *Log) ExpireResults(now time.Time, maxBytes int64) (int, error) {
	if err := l.enter(); err != nil {
		return 0, err
	}
	defer l.readers.Done()
	l.expiring.Lock()
	defer l.expiring.Unlock()
	cutoff := expiryTime(now.UnixNano())
	removed := 0
	var txn Txn
	done := make(ackChannel, 1)
	for {
		txn.Reset()
		n, err := l.expireChunk(&txn, cutoff, maxBytes)
		if err != nil || n == 0 {
			return removed, err
		}
		if err := l.Apply(&txn, done); err != nil {
			return removed, err
		}
		if err := <-done; err != nil {
			return removed, err
		}
		removed += n
		if n < expireChunk {
			return removed, nil
		}
	}
}

// ackChannel is an Ack that hands its outcome to a channel.
type ackChannel chan error

func (c ackChannel) Acked(err error) { c <- err }

// expireChunk adds to t the removal of up to expireChunk results due (expired, or the oldest
// beyond maxBytes) and returns how many.
func (l *Log) expireChunk(t *Txn, cutoff uint64, maxBytes int64) (int, error) {
	stored := l.resultBytes.Load()
	var freed int64
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{byte(KindResult), resultBySeq},
		UpperBound: []byte{byte(KindResult), resultBySeq + 1},
	})
	if err != nil {
		return 0, fmt.Errorf("cannot read the results: %w", err)
	}
	n := 0
	var key []byte
	for ok := it.First(); ok && n < expireChunk; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return 0, fmt.Errorf("cannot read the results: %w", err)
		}
		if len(k) != 2+8 {
			it.Close()
			return 0, fmt.Errorf("%w: result key %q", ErrCorrupt, k)
		}
		seq := binary.BigEndian.Uint64(k[2:])
		r, err := decodeResult(seq, v, false)
		if err != nil {
			it.Close()
			return 0, err
		}
		if expiryTime(r.Expires) > cutoff && (maxBytes <= 0 || stored-freed <= maxBytes) {
			break
		}
		size := resultSize(&r, len(v))
		freed += size
		n++
		t.key(txnDelete, KindResult, len(k)-1)
		t.buf = append(t.buf, k[1:]...)
		t.results--
		t.resultBytes -= size
		if r.Unique != "" {
			key = resultUniqueKey(key[:0], r.Function, r.Unique)
			t.key(txnDeleteIf, KindResult, len(key)-1)
			t.buf = append(t.buf, key[1:]...)
			t.buf = append(t.buf, 8)
			t.buf = binary.BigEndian.AppendUint64(t.buf, seq)
			t.cond = true
		}
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("cannot read the results: %w", err)
	}
	return n, nil
}
