package engine

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// Dead letters: background jobs of a function with a retry policy that used up their
// attempts (outcome.go), kept with their history until an operator retries or purges them,
// or until Config.DeadTTL passes; past Config.DeadMax (or DeadMaxBytes) the oldest go. They
// are durable (the job log's 'd' records, written in the batch that deletes the job) and,
// being bounded, also held in memory for listing.

// Dead-letter defaults (spurd's --dead-ttl, --dead-max, --dead-max-bytes).
const (
	DefaultDeadTTL      = 7 * 24 * time.Hour
	DefaultDeadMax      = 10000
	DefaultDeadMaxBytes = 256 << 20
)

// deadLetters is the list, oldest death first. mu is a leaf: taken under a shard lock, and
// nothing is locked (no store call made) while holding it.
type deadLetters struct {
	mu    sync.Mutex
	list  []*wal.DeadLetter
	bytes int64
}

func deadSize(d *wal.DeadLetter) int64 {
	return int64(len(d.Job.Handle)+len(d.Job.Function)+len(d.Job.Unique)+len(d.Job.Data)+len(d.LastError)) + 200
}

// add keeps a copy of d (its store write is the caller's), then evicts the oldest past the
// bounds, durably.
func (dl *deadLetters) add(e *Engine, d *wal.DeadLetter) {
	c := *d
	c.Job.Data, c.LastError = bytes.Clone(d.Job.Data), bytes.Clone(d.LastError)
	dl.mu.Lock()
	dl.list = append(dl.list, &c)
	dl.bytes += deadSize(&c)
	var evicted []*wal.DeadLetter
	for len(dl.list) > 1 && (len(dl.list) > e.cfg.DeadMax || dl.bytes > e.cfg.DeadMaxBytes) {
		evicted = append(evicted, dl.list[0])
		dl.bytes -= deadSize(dl.list[0])
		dl.list[0] = nil
		dl.list = dl.list[1:]
	}
	dl.mu.Unlock()
	e.forgetDead(evicted, "the dead-letter list is full")
}

// take removes and returns the dead letters pick chooses.
func (dl *deadLetters) take(pick func(*wal.DeadLetter) bool) []*wal.DeadLetter {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	var out []*wal.DeadLetter
	kept := dl.list[:0]
	for _, d := range dl.list {
		if pick(d) {
			out = append(out, d)
			dl.bytes -= deadSize(d)
		} else {
			kept = append(kept, d)
		}
	}
	clear(dl.list[len(kept):])
	dl.list = kept
	return out
}

// forgetDead deletes dead letters for good, durably.
func (e *Engine) forgetDead(list []*wal.DeadLetter, why string) {
	if len(list) == 0 {
		return
	}
	e.log.Info("dead letters dropped", "count", len(list), "reason", why)
	if e.store != nil {
		e.applyRecord(func(t *wal.Txn) {
			for _, d := range list {
				t.DeleteDead(d.Job.Seq)
			}
		})
	}
}

// RestoreDead brings back the dead letters the store recovered. Call before serving.
func (e *Engine) RestoreDead(list []wal.DeadLetter) {
	sort.SliceStable(list, func(a, b int) bool { return list[a].LastFailed < list[b].LastFailed })
	for i := range list {
		e.dead.list = append(e.dead.list, &list[i])
		e.dead.bytes += deadSize(&list[i])
	}
}

// expireDead drops the dead letters older than DeadTTL.
func (e *Engine) expireDead(t time.Time) {
	limit := t.Add(-e.cfg.DeadTTL).UnixNano()
	e.forgetDead(e.dead.take(func(d *wal.DeadLetter) bool { return d.LastFailed < limit }), "older than --dead-ttl")
}

// DeadLetters returns the dead letters of function fn (all of them when fn is ""), oldest
// death first. The copies share nothing with the list.
func (e *Engine) DeadLetters(fn string) []wal.DeadLetter {
	e.dead.mu.Lock()
	defer e.dead.mu.Unlock()
	var out []wal.DeadLetter
	for _, d := range e.dead.list {
		if fn == "" || d.Job.Function == fn {
			out = append(out, *d)
		}
	}
	return out
}

// RetryDead queues the dead letters pick chooses again, each as the job it was (handle,
// unique, data, priority) with fresh attempts, and returns how many it queued; when that is
// more than none, done is called once (on any goroutine, perhaps before RetryDead returns)
// when they are durable. A dead letter whose unique is meanwhile
// queued or running again just goes: the work it stands for is already waiting.
func (e *Engine) RetryDead(pick func(*wal.DeadLetter) bool, done func(error)) int {
	list := e.dead.take(pick)
	if len(list) == 0 {
		return 0
	}
	t0 := now()
	for _, d := range list {
		r := d.Job
		sh := e.reg.ShardFor([]byte(r.Function))
		sh.Lock()
		f := sh.Ensure([]byte(r.Function))
		requeue := f.Coalesce([]byte(r.Unique), r.Data) == nil
		if requeue {
			j := queue.NewJob([]byte(r.Handle), []byte(r.Unique), []byte(r.Reducer), r.Data)
			j.Seq, j.Priority, j.Background, j.Persisted = r.Seq, queue.Priority(r.Priority), true, true
			f.Enqueue(j, t0)
			r.Attempts, r.FirstFailed, r.RunAt = 0, 0, 0
			e.jobQueued(f, j)
		}
		if e.store != nil {
			// Under the shard lock: the job's record must be queued before a worker that
			// takes it at once can queue its delete.
			e.applyRecord(func(t *wal.Txn) {
				t.DeleteDead(r.Seq)
				if requeue {
					t.PutJob(r)
				}
			})
		}
		sh.Unlock()
	}
	e.log.Info("dead letters queued again", "count", len(list))
	if e.store == nil {
		done(nil)
	} else if err := e.store.Barrier(ackFunc(done)); err != nil {
		done(err)
	}
	return len(list)
}

// PurgeDead deletes the dead letters of function fn and returns how many there were.
func (e *Engine) PurgeDead(fn string) int {
	list := e.dead.take(func(d *wal.DeadLetter) bool { return d.Job.Function == fn })
	e.forgetDead(list, "purged by admin command")
	return len(list)
}

// adminRetryDead handles `retry dead HANDLE` and `retry dead all FN`.
func (s *Session) adminRetryDead(w *codec.AdminWords) {
	var pick func(*wal.DeadLetter) bool
	switch {
	case w.N == 3:
		h := string(w.Word(2))
		pick = func(d *wal.DeadLetter) bool { return d.Job.Handle == h }
	case w.N == 4 && w.Is(2, "all"):
		fn := string(w.Word(3))
		pick = func(d *wal.DeadLetter) bool { return d.Job.Function == fn }
	default:
		s.sendText(codec.AdminIncompleteArgs("retry dead"))
		return
	}
	r := &adminReply{s: s, ok: codec.AdminOK}
	s.holdReply(&r.slot)
	if s.e.RetryDead(pick, r.Acked) == 0 {
		if w.N == 3 {
			r.ok = codec.AdminUnknownJob
		}
		r.Acked(nil)
	}
}

// deadText renders `show dead [FN]`, one line per dead letter, oldest death first:
//
//	HANDLE \t FUNCTION \t UNIQUE \t ATTEMPTS \t FIRST-FAILED \t LAST-FAILED \t OUTCOME \t LAST-ERROR
//
// times RFC 3339 UTC; LAST-ERROR the last WORK_EXCEPTION's data (or why the worker was lost),
// its first 256 bytes, control bytes as \xNN.
func (s *Session) deadText(fn string) string {
	var b strings.Builder
	for _, d := range s.e.DeadLetters(fn) {
		if s.allow(ActStatus, []byte(d.Job.Function)) != nil {
			continue
		}
		writeJobColumns(&b, d.Job.Handle, d.Job.Function, d.Job.Unique)
		b.WriteString(strconv.FormatUint(uint64(d.Job.Attempts), 10))
		b.WriteByte('\t')
		b.WriteString(nanoTime(d.FirstFailed))
		b.WriteByte('\t')
		b.WriteString(nanoTime(d.LastFailed))
		b.WriteByte('\t')
		b.WriteString(d.LastOutcome.String())
		b.WriteByte('\t')
		writeAdminField(&b, string(d.LastError[:min(len(d.LastError), 256)]))
		b.WriteByte('\n')
	}
	b.WriteString(".\n")
	return b.String()
}

// DeadCount returns how many dead letters are kept.
func (e *Engine) DeadCount() int {
	e.dead.mu.Lock()
	defer e.dead.mu.Unlock()
	return len(e.dead.list)
}
