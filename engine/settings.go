package engine

import (
	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// A function's own settings — its `maxqueue` limits, being made by `create function` — are
// durable with a store: the admin command that changes them is answered once the change is
// committed, and a restart brings them back (RestoreFunctions).

// settingsOf is what the store keeps of f. Call with f's shard locked.
func settingsOf(f *queue.Function) wal.FunctionSettings {
	return wal.FunctionSettings{Name: f.Name, MaxQueue: f.MaxQueue, Declared: f.Declared}
}

// saveSettings writes f's settings (deleting them when it has none left, or when gone is
// set: the function was dropped) and answers the admin command s sent with ok once that is
// durable; without a store it answers at once. Call with f's shard locked.
func (s *Session) saveSettings(f *queue.Function, gone bool, ok string) {
	e := s.e
	if e.store == nil {
		s.sendText(ok)
		return
	}
	var t wal.Txn
	if gone || !f.HasSettings() {
		t.DeleteFunction(f.Name)
	} else {
		t.PutFunction(settingsOf(f))
	}
	r := &adminReply{s: s, ok: ok}
	s.holdReply(&r.slot)
	if err := e.store.Apply(&t, r); err != nil {
		r.Acked(err)
	}
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
		f := sh.Ensure([]byte(st.Name))
		f.MaxQueue, f.Declared = st.MaxQueue, st.Declared
		f.NoteSettingsChanged()
		sh.Unlock()
	}
}
