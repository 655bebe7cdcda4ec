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

// saveSettings writes st as the settings of function name (deleting them when st is nil or
// holds none) and answers the admin command s sent with ok once that is durable; without a
// store it answers at once. It reports false when the store refused the write outright (a
// failed or closed log): the command was answered with the error and the caller must leave
// the function as it was. Call with the function's shard locked.
func (s *Session) saveSettings(name string, st *wal.FunctionSettings, ok string) bool {
	e := s.e
	if e.store == nil {
		s.sendText(ok)
		return true
	}
	var t wal.Txn
	if st == nil || *st == (wal.FunctionSettings{Name: st.Name}) {
		t.DeleteFunction(name)
	} else {
		t.PutFunction(*st)
	}
	r := &adminReply{s: s, ok: ok}
	s.holdReply(&r.slot)
	if err := e.store.Apply(&t, r); err != nil {
		r.Acked(err)
		return false
	}
	return true
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
		r.s.e.log.Error("cannot write function settings to the job log", "error", err)
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
