package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// A shared store is one several nodes use at once (the PostgreSQL store, wal/pgstore). The
// engine keeps its own memory of the jobs it holds, as with the Pebble log, and adds:
//
//   - Offers. A node holds (keeps in memory, under its lease) up to holdPerWorker live jobs
//     of a function per worker it has registered for it. A background job beyond that is
//     written unheld (wal.Record.Shared) and kept nowhere in memory: any node whose
//     workers ask claims it.
//   - Claims. A worker that asks for work (GRAB_JOB) and finds none here makes the node
//     claim what its functions have room for (holdPerWorker per worker); so does word
//     from the store that another node offered jobs (OnReady), and the store's poll, which
//     also finds the jobs of a node whose lease lapsed. Claims run on one goroutine
//     (RunShared), never on an event loop; a function whose claim came back empty is not
//     claimed for again on a worker's asking alone for claimBackoff.
//   - Coalescing across nodes: the store refuses a second job of a function and unique
//     anywhere in the cluster and acknowledges the submit with the first one's handle
//     (wal.Coalesced).
//   - Releases. Every scheduleSync the node gives back the jobs it holds beyond its free
//     workers that have waited releaseAfter (recovered at start, requeued after their worker
//     left, the last worker of their function gone), and on a graceful shutdown every job it
//     holds (ReleaseHeld). A released job leaves this node's memory before the store is
//     told; while the store cannot be reached the node owes it, and tries again.
//   - GET_STATUS (and GET_STATUS_UNIQUE) of a job this node does not hold asks the store;
//     `cancel job` deletes one no live node holds (CancelShared).
//   - Recurring schedules fire only on the node that leads (OnLeader).
//
// Foreground jobs, WORK_* streaming and the sleeping workers stay in the node's memory.

// SharedStore is a Store several nodes share. Its callbacks (OnReady, OnLeader, the acks)
// run on the store's goroutines and must not take a shard lock.
type SharedStore interface {
	Store
	// Claim takes up to n ready jobs of these functions that no live node holds, under
	// this node's lease, best priority then oldest first.
	Claim(ctx context.Context, fns []string, n int) ([]wal.Record, error)
	// OnReady registers f, told the functions of jobs another node offered, or nil on
	// each poll.
	OnReady(f func(fns []string))
	// Release gives back jobs this node holds but has not started.
	Release(ctx context.Context, seqs []uint64) error
	// Job finds a job by number anywhere in the cluster, and whether a node holds it.
	Job(ctx context.Context, seq uint64) (r wal.Record, held, found bool, err error)
	// JobOfUnique finds the newest job with this unique, of any function, anywhere in the
	// cluster (GET_STATUS_UNIQUE names no function).
	JobOfUnique(ctx context.Context, unique string) (r wal.Record, found bool, err error)
	// Unclaimed counts the jobs no live node holds, by function.
	Unclaimed(ctx context.Context) (map[string]int, error)
	// Cancel deletes job seq (of this handle) if no live node holds it, and returns it;
	// else holder is the node that does ("" and not done: no such job).
	Cancel(ctx context.Context, seq uint64, handle string) (r wal.Record, done bool, holder string, err error)
	// OnLeader registers f, told when this node takes or loses the schedules' lead.
	OnLeader(f func(leader bool))
	// Schedules reads every recurring schedule, as committed.
	Schedules(ctx context.Context) ([]wal.Schedule, error)
	// OnChanged registers f, told when a node (this one included) changed the function
	// settings or the dead letters (follow.go). Registered before OnReady.
	OnChanged(f func())
	// Functions reads every function's settings, as committed.
	Functions(ctx context.Context) ([]wal.FunctionSettings, error)
	// DeadLetters reads the numbers of every dead letter, as committed, and the letters of
	// those known does not hold.
	DeadLetters(ctx context.Context, known func(seq uint64) bool) (seqs []uint64, fresh []wal.DeadLetter, err error)
}

// scheduleSync is how often the leading node reads the schedules again, to fire those
// other nodes added and stop those they deleted.
const scheduleSync = 2 * time.Second

// holdPerWorker is how many live jobs of a function a node holds per worker it has for it:
// more than one, so that a worker finishing a job finds the next one here rather than
// waiting for a claim's round trip; few, so that other nodes' workers are not kept from
// them (what waits longer than releaseAfter beyond the free workers is given back).
const holdPerWorker = 4

// claimBackoff is how long a function whose claim found nothing is not claimed for again on
// a worker's asking alone (the store's word or its poll still claim).
const claimBackoff = 100 * time.Millisecond

// maxClaim bounds one claim: a node never takes more than this many jobs at once.
const maxClaim = 256

// releaseAfter is how long a job this node holds beyond its free workers waits before it is
// given back to the cluster.
const releaseAfter = time.Second

// sharedTimeout bounds one call to the shared store made for a request (a claim, a status).
const sharedTimeout = 5 * time.Second

// claims is what the claim goroutine is asked to claim for. mu is a leaf, taken with no
// other lock held (see locksordering.txt).
type claims struct {
	mu      sync.Mutex
	pending map[string]struct{}  // functions a worker found nothing of, or the store named
	all     bool                 // the store's poll: every function with a free worker
	empty   map[string]time.Time // functions whose last claim found nothing, since when
	kick    chan struct{}

	owed []uint64 // jobs released here whose release the store has not confirmed
}

func (c *claims) init() {
	c.pending = make(map[string]struct{})
	c.empty = make(map[string]time.Time)
	c.kick = make(chan struct{}, 1)
}

// offerable reports whether a new background job of f goes to the store unheld: the store
// is shared and f has no room here (holdRoom). Reduce jobs are always held (a record
// offered carries no reducer).
func (e *Engine) offerable(f *queue.Function, req *SubmitRequest) bool {
	return e.shared != nil && req.Background && len(req.Reducer) == 0 && holdRoom(f) == 0
}

// offerOf is the job an offer writes: a Job never queued here, only its record's fields.
// Data aliases the request's: the store copies what Put is given.
func offerOf(f *queue.Function, handle []byte, seq uint64, req *SubmitRequest) *queue.Job {
	return &queue.Job{Handle: string(handle), Fn: f, Unique: string(req.Unique), Data: req.Data,
		Seq: seq, Priority: req.Priority, RunAt: milliOf(req.RunAt), Background: true}
}

// offer writes job j, which no node holds yet, and answers its submitter (s, or done) once
// it is committed: with its handle, with the handle of the job it coalesced onto on another
// node, or with ERROR QUEUE_ERROR. Call before the submit's shard lock is released.
func (e *Engine) offer(s *Session, j *queue.Job, done func(string, error)) {
	r := &offerReply{s: s, done: done, handle: j.Handle}
	if s != nil {
		s.holdReply(&r.slot)
	}
	rec := e.recordOf(j)
	rec.Shared = true
	if err := e.store.Put(rec, r); err != nil {
		r.Acked(err)
	}
}

// offerReply answers an offered job's submitter.
type offerReply struct {
	slot   replySlot
	s      *Session
	done   func(string, error)
	handle string
}

func (r *offerReply) Acked(err error) {
	handle := r.handle
	var c *wal.Coalesced
	if errors.As(err, &c) {
		handle, err = c.Handle, nil
	}
	switch {
	case r.s == nil && err == nil:
		r.done(handle, nil)
	case r.s == nil:
		r.done("", err)
	case err == nil:
		r.s.fillReply(&r.slot, func(b []byte) []byte {
			b = codec.AppendHeader(b, codec.JobCreated, len(handle))
			return append(b, handle...)
		})
	default:
		r.s.fillReply(&r.slot, queueError(err))
	}
}

// askClaims asks the claim goroutine to claim for the functions of worker s, which found
// nothing to do here. Called on s's event loop, with no lock held.
func (e *Engine) askClaims(s *Session) {
	if e.shared == nil || s.abilities.len() == 0 {
		return
	}
	c := &e.claims
	t := time.Now()
	c.mu.Lock()
	s.abilities.newestFirst(func(r registration) bool {
		if at, ok := c.empty[r.fn.Name]; !ok || t.Sub(at) >= claimBackoff {
			c.pending[r.fn.Name] = struct{}{}
		}
		return true
	})
	c.mu.Unlock()
	c.wake()
}

// storeReady is the store's word that other nodes offered jobs of fns (nil: its poll).
func (e *Engine) storeReady(fns []string) {
	c := &e.claims
	c.mu.Lock()
	if fns == nil {
		c.all = true
	}
	for _, fn := range fns {
		c.pending[fn] = struct{}{}
		delete(c.empty, fn)
	}
	c.mu.Unlock()
	c.wake()
}

func (c *claims) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// RunShared claims jobs from a shared store for this node's workers until ctx is done;
// spurd runs it for the life of the server. Without a shared store it returns at once.
func (e *Engine) RunShared(ctx context.Context) {
	if e.shared == nil {
		return
	}
	tick := time.NewTicker(scheduleSync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if e.leading.Load() {
				e.readSchedules(ctx, false)
			}
			e.release(ctx, e.excess(time.Now().UnixNano()-int64(releaseAfter)))
		case <-e.claims.kick:
			if !e.draining.Load() {
				e.claimOnce(ctx)
			}
		case <-e.follower.kick:
			e.follow(ctx)
		}
	}
}

// readSchedules makes the shared store's schedules this node's (syncSchedules).
func (e *Engine) readSchedules(ctx context.Context, catchUp bool) {
	cctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	recs, err := e.shared.Schedules(cctx)
	cancel()
	if err == nil {
		err = e.syncSchedules(recs, catchUp)
	}
	if err != nil && ctx.Err() == nil {
		e.log.Warn("cannot read the recurring schedules from the shared store", "error", err)
	}
}

// claimOnce claims for what is pending, in one call to the store: for each function, what
// it has room for here (holdRoom).
func (e *Engine) claimOnce(ctx context.Context) {
	c := &e.claims
	c.mu.Lock()
	pending, all := c.pending, c.all
	c.pending, c.all = make(map[string]struct{}), false
	c.mu.Unlock()
	want := make(map[string]int)
	if all {
		e.reg.EachShard(func(sh *queue.Shard) {
			sh.EachFunction(func(f *queue.Function) {
				if n := holdRoom(f); n > 0 {
					want[f.Name] = n
				}
			})
		})
	}
	for fn := range pending {
		if _, ok := want[fn]; ok {
			continue
		}
		sh := e.reg.ShardFor([]byte(fn))
		sh.Lock()
		if f := sh.Get([]byte(fn)); f != nil {
			if n := holdRoom(f); n > 0 {
				want[fn] = n
			}
		}
		sh.Unlock()
	}
	if len(want) == 0 {
		return
	}
	fns := make([]string, 0, len(want))
	total := 0
	for fn, n := range want {
		fns = append(fns, fn)
		total += n
	}
	sort.Strings(fns)
	total = min(total, maxClaim)
	cctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	recs, err := e.shared.Claim(cctx, fns, total)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("cannot claim jobs from the shared store", "functions", len(fns), "error", err)
		}
		return
	}
	got := e.adopt(recs)
	t := time.Now()
	c.mu.Lock()
	for _, fn := range fns {
		if got[fn] == 0 {
			c.empty[fn] = t
		} else {
			delete(c.empty, fn)
		}
	}
	if len(c.empty) > 1024 { // forget stale entries rather than grow
		for fn, at := range c.empty {
			if t.Sub(at) >= claimBackoff {
				delete(c.empty, fn)
			}
		}
	}
	c.mu.Unlock()
	if len(recs) == total && total == maxClaim {
		c.wake() // there may be more, and workers free for them
	}
}

// holdRoom is how many more jobs of f this node would hold: holdPerWorker per worker it
// has for f, less the jobs of f it has; none while f is paused. Call with f's shard locked.
func holdRoom(f *queue.Function) int {
	if f.Paused {
		return 0
	}
	return max(holdPerWorker*len(f.Workers)-f.Total, 0)
}

// adopt queues jobs claimed from the shared store, as recovered ones are, and wakes workers
// for them. It returns how many each function got.
func (e *Engine) adopt(recs []wal.Record) map[string]int {
	got := make(map[string]int)
	t := now()
	for i := range recs {
		r := &recs[i]
		if e.reg.Lookup([]byte(r.Handle)) != nil {
			continue // ours already: claimed again after our lease lapsed
		}
		sh := e.reg.ShardFor([]byte(r.Function))
		sh.Lock()
		f := sh.Ensure([]byte(r.Function))
		j := e.restoreJob(f, r, t)
		got[r.Function]++
		e.jobQueued(f, j)
		sh.Unlock()
	}
	return got
}

// excess takes out of memory the jobs this node holds beyond its workers free for them
// that were queued before cutoff (unix nanoseconds; 0 takes every job it holds, waiting or
// running: a graceful shutdown) and returns their numbers. A job a foreground client waits
// for stays. A taken job is marked as a cancelled one is, so that no grab starts it and the
// next one reaps it, and as not persisted, so that reaping it leaves its record alone.
func (e *Engine) excess(cutoff int64) []uint64 {
	var seqs []uint64
	take := func(j *queue.Job) {
		j.Persisted = false
		j.Fn.Ignore(j)
		seqs = append(seqs, j.Seq)
	}
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) {
			keep := max(len(f.Workers)-f.Running, 0)
			if cutoff == 0 {
				keep = 0
			}
			var out []*queue.Job
			f.EachQueued(func(j *queue.Job) {
				if !j.Persisted || j.Ignore || j.Refused.Load() || len(j.Listeners()) > 0 {
					return
				}
				if j.State == queue.Queued && keep > 0 {
					keep-- // the oldest, best ready jobs stay for the workers here
					return
				}
				if cutoff == 0 || j.QueuedAt < cutoff && (j.State == queue.Queued || len(f.Workers) == 0) {
					out = append(out, j)
				}
			})
			for _, j := range out { // not while walking: a delayed job leaves the heap at once
				take(j)
			}
		})
	})
	return seqs
}

// release gives jobs taken out of memory (excess) back to the cluster, with those owed from
// earlier attempts.
func (e *Engine) release(ctx context.Context, seqs []uint64) {
	c := &e.claims
	c.mu.Lock()
	seqs = append(c.owed, seqs...)
	c.owed = nil
	c.mu.Unlock()
	if len(seqs) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	err := e.shared.Release(cctx, seqs)
	cancel()
	if err == nil {
		e.log.Info("gave jobs back to the shared store for other nodes", "jobs", len(seqs))
		return
	}
	e.log.Warn("cannot give jobs back to the shared store; trying again", "jobs", len(seqs), "error", err)
	c.mu.Lock()
	c.owed = append(c.owed, seqs...)
	c.mu.Unlock()
}

// ReleaseHeld gives every job this node still holds back to the shared store, for the
// other nodes: the end of a graceful shutdown, once Drain stopped jobs being handed out and
// the running ones had their time to finish (one still running then may run twice: at
// least once). Without a shared store it does nothing.
func (e *Engine) ReleaseHeld(ctx context.Context) error {
	if e.shared == nil {
		return nil
	}
	seqs := e.excess(0)
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) {
			for _, w := range f.Workers {
				for _, j := range w.(*Session).assignedOf(f) {
					if j.Persisted {
						j.Persisted = false
						seqs = append(seqs, j.Seq)
					}
				}
			}
		})
	})
	e.release(ctx, seqs)
	c := &e.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.owed) > 0 {
		return fmt.Errorf("%d jobs could not be given back to the shared store: they run elsewhere once this node's lease lapses", len(c.owed))
	}
	return nil
}

// remoteStatus answers GET_STATUS for a job this node does not hold by asking the shared
// store, and reports whether it did; the reply keeps its place among s's replies. A job of
// another node is reported known and not running: this node cannot see its worker.
func (e *Engine) remoteStatus(s *Session, handle []byte) bool {
	if e.shared == nil {
		return false
	}
	seq, ok := queue.HandleSeq(handle)
	if !ok {
		return false
	}
	h := string(handle)
	e.statusFromStore(s, func(ctx context.Context) (wal.Record, bool, error) {
		r, _, found, err := e.shared.Job(ctx, seq)
		return r, found && r.Handle == h, err
	}, func(b []byte, known bool) []byte {
		return codec.AppendStatusRes(b, []byte(h), known, false, 0, 0)
	})
	return true
}

// remoteStatusUnique answers GET_STATUS_UNIQUE for a unique no job of this node has by
// asking the shared store, as remoteStatus does; it reports whether it did.
func (e *Engine) remoteStatusUnique(s *Session, unique []byte) bool {
	if e.shared == nil || len(unique) == 0 || string(unique) == "-" {
		return false
	}
	u := string(unique)
	e.statusFromStore(s, func(ctx context.Context) (wal.Record, bool, error) {
		return e.shared.JobOfUnique(ctx, u)
	}, func(b []byte, known bool) []byte {
		return codec.AppendStatusResUnique(b, []byte(u), known, false, 0, 0, 0)
	})
	return true
}

// statusFromStore answers a status request from the shared store, off the event loop: find
// looks the job up, reply encodes the answer. The reply keeps its place among s's replies;
// a job s may not see is answered unknown (a refusal would tell that it exists).
func (e *Engine) statusFromStore(s *Session, find func(context.Context) (wal.Record, bool, error),
	reply func(b []byte, known bool) []byte) {
	slot := new(replySlot)
	s.holdReply(slot)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		r, known, err := find(ctx)
		cancel()
		known = known && err == nil
		if known && s.allow(ActStatus, viewBytes(r.Function)) != nil {
			s.logRefusal(ActStatus, viewBytes(r.Function), ErrHidden)
			known = false
		}
		s.fillReply(slot, func(b []byte) []byte { return reply(b, known) })
	}()
}

// onLeader is the store's word that this node took (or lost) the lead of the schedules.
func (e *Engine) onLeader(leader bool) {
	e.leading.Store(leader)
	if leader {
		e.log.Warn("this node now fires the recurring schedules: it holds the shared store's lead")
		// The node that led may have died before a firing: what came due and did not run
		// since (by the last runs committed) runs once now.
		go e.readSchedules(context.Background(), true)
		return
	}
	e.log.Warn("this node no longer fires the recurring schedules: it lost the shared store's lead")
}

// leads reports whether this node fires the recurring schedules: always, unless the store
// is shared and another node holds its lead.
func (e *Engine) leads() bool { return e.shared == nil || e.leading.Load() }

// CancelShared is `cancel job HANDLE` for a job this node does not hold: the shared store
// deletes it when no live node holds it (it was offered, or its node's lease lapsed), and
// the job leaves the "cancelled" result a cancelled job here would. A job another node
// holds is not touched: holder names that node, where the cancel must go (it may be
// running there, and only its node can free its worker's slot). Without a shared store,
// or for a job nobody has, it reports (false, "", nil).
func (e *Engine) CancelShared(ctx context.Context, handle []byte) (done bool, holder string, err error) {
	if e.shared == nil {
		return false, "", nil
	}
	seq, ok := queue.HandleSeq(handle)
	if !ok {
		return false, "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	r, done, holder, err := e.shared.Cancel(ctx, seq, string(handle))
	if err != nil || !done {
		return false, holder, err
	}
	e.log.Info("job cancelled", "handle", r.Handle, "function", r.Function, "held", false)
	if e.cfg.ResultTTL > 0 {
		t := time.Now().UnixNano()
		res := wal.Result{Seq: r.Seq, Handle: r.Handle, Function: r.Function, Unique: r.Unique,
			Outcome: wal.OutcomeFail, Data: cancelled, Attempts: r.Attempts + 1, Finished: t,
			Expires: t + int64(e.cfg.ResultTTL)}
		e.applyRecord(func(txn *wal.Txn) { txn.PutResult(res) })
	}
	return true, "", nil
}

// cancelElsewhere answers `cancel job` for a job this node does not hold, from the shared
// store (CancelShared); the reply keeps its place among s's replies.
func (s *Session) cancelElsewhere(handle []byte) {
	slot := new(replySlot)
	s.holdReply(slot)
	h := bytes.Clone(handle)
	go func() {
		done, holder, err := s.e.CancelShared(context.Background(), h)
		text := codec.AdminOK
		switch {
		case err != nil:
			text = codec.AdminErr(codec.CodeQueueError, err.Error())
		case holder != "":
			text = codec.AdminErr(CodeHeldElsewhere, "the job is held by node "+holder+": cancel it there")
		case !done:
			text = codec.AdminUnknownJob
		}
		s.fillReply(slot, func(b []byte) []byte { return append(b, text...) })
	}()
}

// CodeHeldElsewhere refuses to cancel a job that another node of a shared store holds.
const CodeHeldElsewhere = "HELD_ELSEWHERE"
