package engine

import (
	"context"
	"sort"
	"sync/atomic"

	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// Following a shared store: every node keeps the function settings (a pause, a limit, a
// retry policy) and the dead letters in memory, as with the Pebble log, and another node may
// change them. The store tells each node once such a change is committed (OnChanged; also
// after its listener reconnects), and the claim goroutine reads them again: the settings
// whole (one row a function), the dead letters by number, reading only the letters this
// node does not hold yet.
//
// A node's own settings change is applied in memory before it is committed. A read that
// began before that commit would undo it here, so a read is not applied while a change of
// this node is on its way (pending), nor if one began during the read (gen moved): the
// commit's own word reads again. The dead-letter list may miss a letter of this node, or
// show one it just retried, for the moment until that commit's own word arrives.

// follower is the state of following the shared store's settings and dead letters.
type follower struct {
	kick    chan struct{} // a read is due (buffered: one pending read is enough)
	gen     atomic.Uint64 // settings changes this node began
	pending atomic.Int64  // of those, the ones not committed yet
}

// changed is the store's word that some node changed the settings or the dead letters.
func (f *follower) changed() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// localChange wraps done, the acknowledgement of a settings change of this node, to count it
// as pending until it is answered. Call with the function's shard locked (see follow).
func (f *follower) localChange(done func(error)) func(error) {
	f.gen.Add(1)
	f.pending.Add(1)
	return func(err error) {
		f.pending.Add(-1)
		done(err)
		f.changed() // a read skipped meanwhile is due now
	}
}

// follow reads the settings and dead letters from the shared store and makes them this
// node's. Runs on the claim goroutine (RunShared).
func (e *Engine) follow(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	if gen := e.follower.gen.Load(); e.follower.pending.Load() == 0 {
		list, err := e.shared.Functions(cctx)
		if err == nil {
			e.followSettings(list, gen)
		} else if ctx.Err() == nil {
			e.log.Warn("cannot read the function settings from the shared store", "error", err)
		}
	}
	e.dead.mu.Lock()
	known := make(map[uint64]bool, len(e.dead.list))
	for _, d := range e.dead.list {
		known[d.Job.Seq] = true
	}
	e.dead.mu.Unlock()
	seqs, fresh, err := e.shared.DeadLetters(cctx, func(seq uint64) bool { return known[seq] })
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("cannot read the dead letters from the shared store", "error", err)
		}
		return
	}
	e.dead.follow(seqs, fresh)
}

// followSettings gives every function the settings of list (a function missing from it has
// none of its own), unless this node began a change since gen.
func (e *Engine) followSettings(list []wal.FunctionSettings, gen uint64) {
	want := make(map[string]*wal.FunctionSettings, len(list))
	for i := range list {
		want[list[i].Name] = &list[i]
	}
	// Every function the store has settings for (perhaps not known here yet: made below),
	// and those here whose own settings the store no longer has.
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) {
			if _, ok := want[f.Name]; !ok && settingsOf(f) != (wal.FunctionSettings{Name: f.Name}) {
				names = append(names, f.Name)
			}
		})
	})
	for _, name := range names {
		st, ok := want[name]
		if !ok {
			st = &wal.FunctionSettings{Name: name}
		}
		sh := e.reg.ShardFor([]byte(name))
		sh.Lock()
		if e.follower.gen.Load() != gen {
			sh.Unlock()
			return // a change of this node began: its commit's word reads again
		}
		f := sh.Get([]byte(name))
		if f == nil {
			f = sh.Ensure([]byte(name))
		}
		if settingsOf(f) != *st {
			applySettings(f, st)
			e.log.Info("function settings changed on another node", "function", f.Name, "declared", st.Declared,
				"paused", st.Paused, "limit", st.Limit, "retry", st.Retry.Attempts)
			f.NoSleeper = false
			e.wakeWorkers(f)
		}
		sh.Unlock()
	}
}

// follow makes the list the store's: seqs are every letter it holds, fresh the ones this
// list did not have when the read began.
func (dl *deadLetters) follow(seqs []uint64, fresh []wal.DeadLetter) {
	in := make(map[uint64]bool, len(seqs))
	for _, s := range seqs {
		in[s] = true
	}
	dl.mu.Lock()
	defer dl.mu.Unlock()
	kept := dl.list[:0]
	have := make(map[uint64]bool, len(dl.list))
	for _, d := range dl.list {
		if in[d.Job.Seq] {
			kept = append(kept, d)
			have[d.Job.Seq] = true
		} else {
			dl.bytes -= deadSize(d)
		}
	}
	clear(dl.list[len(kept):])
	dl.list = kept
	added := false
	for i := range fresh {
		if !have[fresh[i].Job.Seq] {
			dl.list = append(dl.list, &fresh[i])
			dl.bytes += deadSize(&fresh[i])
			added = true
		}
	}
	if added {
		sort.SliceStable(dl.list, func(a, b int) bool { return dl.list[a].LastFailed < dl.list[b].LastFailed })
	}
}
