package engine

import (
	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// A function's own settings — its `maxqueue` limits, being made by `create function`, being
// paused, its concurrency limit, its retry policy — are durable with a store: the admin command that changes them is answered once the change is
// committed, and a restart brings them back (RestoreFunctions).

// settingsOf is what the store keeps of f. Call with f's shard locked.
func settingsOf(f *queue.Function) wal.FunctionSettings {
	return wal.FunctionSettings{Name: f.Name, MaxQueue: f.MaxQueue, Declared: f.Declared, Paused: f.Paused, Limit: f.Limit,
		Retry: wal.RetryPolicy(f.Retry)}
}

// UpdateFunction changes the settings of function name with change, durably: done (which
// must not block, nor take a shard lock) is told once the change is committed, or why it was
// not — then the function stays as the store holds it. Its sleeping workers are woken, as
// the change may let waiting jobs start. A function nothing knows yet is made, unless the
// change leaves it with no settings of its own. Safe from any goroutine.
func (e *Engine) UpdateFunction(name []byte, change func(*wal.FunctionSettings), done func(error)) {
	sh := e.reg.ShardFor(name)
	sh.Lock()
	defer sh.Unlock()
	f := sh.Get(name)
	before := wal.FunctionSettings{Name: string(name)}
	if f != nil {
		before = settingsOf(f)
	}
	st := before
	change(&st)
	if st == before {
		done(nil) // nothing to change
		return
	}
	if f == nil {
		f = sh.Ensure(name)
	}
	if err := e.saveSettings(f.Name, &st, done); err != nil {
		return // refused: the function stays as the log holds it
	}
	applySettings(f, &st)
	e.log.Info("function settings changed", "function", f.Name, "declared", st.Declared,
		"paused", st.Paused, "limit", st.Limit, "retry", st.Retry.Attempts)
	f.NoSleeper = false
	e.wakeWorkers(f)
}

// saveSettings writes st as the settings of function name (deleting them when st is nil or
// holds none) and tells done once that is durable; without a store it tells it at once. It
// returns the store's refusal (a failed or closed log), which done was told. Call with the
// function's shard locked.
func (e *Engine) saveSettings(name string, st *wal.FunctionSettings, done func(error)) error {
	if e.store == nil {
		done(nil)
		return nil
	}
	var t wal.Txn
	if st == nil || *st == (wal.FunctionSettings{Name: st.Name}) {
		t.DeleteFunction(name)
	} else {
		t.PutFunction(*st)
	}
	if e.shared != nil {
		done = e.follower.localChange(done)
	}
	if err := e.store.Apply(&t, ackFunc(done)); err != nil {
		done(err)
		return err
	}
	return nil
}

// adminReply is an admin command's answer waiting for its change to be durable.
type adminReply struct {
	slot replySlot
	s    *Session
	ok   string
}

// Acked runs on the store's goroutine (or at once, for a refusal).
func (r *adminReply) Acked(err error) {
	text := r.ok
	if err != nil {
		r.s.e.log.Error("cannot write to the job log", "error", err)
		text = codec.AdminErr(codec.CodeQueueError, err.Error())
	}
	r.s.fillReply(&r.slot, func(b []byte) []byte { return append(b, text...) })
}

// RestoreFunctions brings back the functions' settings the store recovered. Call before
// serving, before Restore.
func (e *Engine) RestoreFunctions(settings []wal.FunctionSettings) {
	for _, st := range settings {
		sh := e.reg.ShardFor([]byte(st.Name))
		sh.Lock()
		applySettings(sh.Ensure([]byte(st.Name)), &st)
		sh.Unlock()
	}
}

// applySettings gives f the settings st (the inverse of settingsOf). Call with f's shard
// locked.
func applySettings(f *queue.Function, st *wal.FunctionSettings) {
	f.MaxQueue, f.Declared, f.Paused, f.Limit = st.MaxQueue, st.Declared, st.Paused, st.Limit
	f.Retry = queue.RetryPolicy(st.Retry)
	f.NoteSettingsChanged()
}
