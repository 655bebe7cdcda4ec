package engine

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// Results: the outcome of every background job (complete with its data, fail, exception
// with its data), kept for Config.ResultTTL within Config.ResultMaxBytes, oldest out first.
// With a store that keeps results (a ResultLog: the Pebble job log) they live on disk,
// written in the same batch as the job's delete, and are read from there; otherwise in a
// bounded map in memory. GET_STATUS is not changed: a finished job is unknown to it, as in
// gearmand, so scripts that poll it until a job is gone do not wait for the result's TTL.

// DefaultResultTTL is spurd's --result-ttl.
const DefaultResultTTL = time.Hour

// DefaultResultMaxBytes is spurd's --result-max-bytes.
const DefaultResultMaxBytes = 512 << 20

// ResultLog is a Store that also keeps results; *wal.Log is one. Reads see what is
// committed; the engine waits on a Barrier before reading for an admin command.
type ResultLog interface {
	Result(seq uint64) (wal.Result, bool, error) // by the job's number: the caller checks the handle
	ResultByUnique(fn, unique string) (wal.Result, bool, error)
	ExpireResults(now time.Time, maxBytes int64) (int, error)
	ResultStats() (count int, bytes int64)
}

// ErrResultsOff answers a result lookup when results are not kept (--result-ttl 0).
var ErrResultsOff = errors.New("results are not kept (--result-ttl 0)")

// Result returns the stored result of the background job with this handle. found is false
// when there is none: the job is still queued or running, never existed, or its result
// expired. Safe from any goroutine; with a store it may wait for the store's pending writes.
func (e *Engine) Result(handle string) (res wal.Result, found bool, err error) {
	return e.readResult(func() (wal.Result, bool, error) {
		if e.resultLog != nil {
			seq, ok := queue.HandleSeq([]byte(handle))
			if !ok {
				return wal.Result{}, false, nil
			}
			r, found, err := e.resultLog.Result(seq)
			return r, found && r.Handle == handle, err
		}
		r, ok := e.memResults.get(handle)
		return r, ok, nil
	})
}

// ResultByUnique returns the newest stored result of function fn's unique.
func (e *Engine) ResultByUnique(fn, unique string) (wal.Result, bool, error) {
	return e.readResult(func() (wal.Result, bool, error) {
		if e.resultLog != nil {
			return e.resultLog.ResultByUnique(fn, unique)
		}
		r, ok := e.memResults.get(e.memResults.byUnique[uniqueKey(fn, unique)])
		return r, ok, nil
	})
}

// readResult runs read once every write queued so far (a result just written included) is
// committed.
func (e *Engine) readResult(read func() (wal.Result, bool, error)) (wal.Result, bool, error) {
	if e.cfg.ResultTTL <= 0 {
		return wal.Result{}, false, ErrResultsOff
	}
	if e.resultLog != nil {
		done := make(chan error, 1)
		if err := e.store.Barrier(ackFunc(func(err error) { done <- err })); err != nil {
			return wal.Result{}, false, err
		}
		if err := <-done; err != nil {
			return wal.Result{}, false, err
		}
		return read()
	}
	e.memResults.mu.Lock()
	defer e.memResults.mu.Unlock()
	return read()
}

// ackFunc is a wal.Ack that calls itself.
type ackFunc func(err error)

func (f ackFunc) Acked(err error) { f(err) }

// expireResults drops expired results and, past ResultMaxBytes, the oldest ones.
func (e *Engine) expireResults(t time.Time) {
	if e.cfg.ResultTTL <= 0 || e.resultLog == nil {
		return // memory results expire as they are added
	}
	if n, err := e.resultLog.ExpireResults(t, e.cfg.ResultMaxBytes); err != nil {
		e.log.Error("cannot expire stored results", "error", err)
	} else if n > 0 {
		e.log.Debug("expired stored results", "count", n)
	}
}

// showResult answers `show result HANDLE` and `show result unique FN UNIQUE` — off the
// event loop when results are on disk (the read waits for the store) — with one line
//
//	HANDLE \t FUNCTION \t UNIQUE \t OUTCOME \t ATTEMPTS \t STARTED \t FINISHED \t DATA
//
// then ".": OUTCOME complete, fail or exception; times RFC 3339 with nanoseconds, UTC ("-"
// when not known); DATA the result's bytes with control bytes as \xNN. No line when there
// is no such result.
func (s *Session) showResult(w *codec.AdminWords) {
	var read func() (wal.Result, bool, error)
	switch {
	case w.N == 3:
		h := string(w.Word(2))
		read = func() (wal.Result, bool, error) { return s.e.Result(h) }
	case w.N == 5 && w.Is(2, "unique"):
		fn, u := string(w.Word(3)), string(w.Word(4))
		read = func() (wal.Result, bool, error) { return s.e.ResultByUnique(fn, u) }
	default:
		s.sendText(codec.AdminIncompleteArgs("show result"))
		return
	}
	r := &adminReply{s: s}
	s.holdReply(&r.slot)
	answer := func() {
		res, found, err := read()
		switch {
		case err != nil:
			r.ok = codec.AdminErr(codec.CodeQueueError, err.Error())
		case !found || s.allow(ActStatus, []byte(res.Function)) != nil:
			r.ok = ".\n"
		default:
			r.ok = resultLine(&res) + ".\n"
		}
		r.Acked(nil)
	}
	if s.e.resultLog == nil {
		answer() // memory: nothing to wait for
		return
	}
	go answer()
}

func resultLine(r *wal.Result) string {
	var b strings.Builder
	writeJobColumns(&b, r.Handle, r.Function, r.Unique)
	b.WriteString(r.Outcome.String())
	b.WriteByte('\t')
	b.WriteString(strconv.FormatUint(uint64(r.Attempts), 10))
	b.WriteByte('\t')
	b.WriteString(nanoTime(r.Started))
	b.WriteByte('\t')
	b.WriteString(nanoTime(r.Finished))
	b.WriteByte('\t')
	writeAdminField(&b, string(r.Data))
	b.WriteByte('\n')
	return b.String()
}

// nanoTime renders unix nanoseconds for an admin listing, "-" for not known.
func nanoTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// memResults keeps results in memory, for an engine without a ResultLog: by handle, and by
// function and unique (the newest of that unique), oldest first for expiry. Every result
// lives ResultTTL, so insertion order is expiry order.
type memResults struct {
	mu       sync.Mutex
	byHandle map[string]*wal.Result
	byUnique map[string]string // uniqueKey -> handle
	order    []*wal.Result     // oldest first from head; entries already dropped are nil
	head     int
	bytes    int64
	maxBytes int64
}

func uniqueKey(fn, unique string) string { return fn + "\x00" + unique }

// resultSize is what a kept result costs, roughly: its bytes and its map entries.
func resultSize(r *wal.Result) int64 {
	return int64(len(r.Handle)*2+len(r.Function)*2+len(r.Unique)*2+len(r.Data)) + 160
}

// put keeps a copy of r, then drops what expired and, past maxBytes, the oldest.
func (m *memResults) put(r *wal.Result) {
	c := *r
	c.Data = bytes.Clone(r.Data)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byHandle == nil {
		m.byHandle, m.byUnique = make(map[string]*wal.Result), make(map[string]string)
	}
	if old := m.byHandle[c.Handle]; old != nil {
		m.drop(old)
	}
	m.byHandle[c.Handle] = &c
	if c.Unique != "" {
		m.byUnique[uniqueKey(c.Function, c.Unique)] = c.Handle
	}
	m.order = append(m.order, &c)
	m.bytes += resultSize(&c)
	m.expire(c.Finished)
}

// expire drops results that expired by t (unix nanoseconds), and the oldest past maxBytes.
func (m *memResults) expire(t int64) {
	for m.head < len(m.order) {
		r := m.order[m.head]
		if r != nil && r.Expires > t && (m.maxBytes <= 0 || m.bytes <= m.maxBytes) {
			break
		}
		if r != nil {
			m.drop(r)
		}
		m.order[m.head] = nil
		m.head++
	}
	if m.head > len(m.order)/2 { // give back the space of the dropped half
		m.order = append(m.order[:0], m.order[m.head:]...)
		clear(m.order[len(m.order):cap(m.order)])
		m.head = 0
	}
}

// drop forgets r (its slot in order is cleared by the caller or left as a tombstone).
func (m *memResults) drop(r *wal.Result) {
	delete(m.byHandle, r.Handle)
	if k := uniqueKey(r.Function, r.Unique); r.Unique != "" && m.byUnique[k] == r.Handle {
		delete(m.byUnique, k)
	}
	m.bytes -= resultSize(r)
	for i := m.head; i < len(m.order); i++ { // rare: a handle's second result
		if m.order[i] == r {
			m.order[i] = nil
			break
		}
	}
}

// get returns the result of handle. Call with m.mu held.
func (m *memResults) get(handle string) (wal.Result, bool) {
	if r := m.byHandle[handle]; r != nil {
		return *r, true
	}
	return wal.Result{}, false
}

// ResultStats returns how many results are kept and the bytes they take.
func (e *Engine) ResultStats() (count int, bytes int64) {
	if e.resultLog != nil {
		return e.resultLog.ResultStats()
	}
	m := &e.memResults
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byHandle), m.bytes
}
