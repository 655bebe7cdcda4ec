package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// failingTransport refuses its first n wake-ups, as gnet does for a loop that cannot take
// the task.
type failingTransport struct{ calls, fail int }

func (t *failingTransport) Wake() error {
	t.calls++
	if t.calls <= t.fail {
		return errors.New("wake refused")
	}
	return nil
}

// A wake-up that fails must not leave the session waiting for one that never comes: the next
// send asks again.
func TestFailedWakeIsRetried(t *testing.T) {
	e := newBenchEngine()
	tr := &failingTransport{fail: 1}
	s := e.NewSession(tr, 1, nil)
	defer s.Close()
	s.sendPacket(codec.Noop) // not from the session's loop: wakes it, and the wake fails
	s.sendPacket(codec.Noop)
	if tr.calls != 2 {
		t.Fatalf("%d wake-ups asked for after a failed one, want 2", tr.calls)
	}
	s.sendPacket(codec.Noop) // a wake is on its way now: no third one
	if tr.calls != 2 {
		t.Fatalf("%d wake-ups, want 2: one was pending", tr.calls)
	}
	out, _ := s.TakeOutput()
	if want := 3 * codec.HeaderSize; out == nil || len(out.B) != want {
		t.Fatalf("buffered %v, want three NOOPs", out)
	}
	ReleaseOutput(out)
}

// While the server drains for a graceful shutdown nothing is handed out, so a worker asking
// to sleep is not woken (it used to spin PRE_SLEEP, NOOP, GRAB_JOB, NO_JOB until the
// shutdown timeout), neither for a queued job nor for one requeued meanwhile.
func TestDrainingDoesNotWakeSleepingWorkers(t *testing.T) {
	t.Parallel()
	e, addr := startEngine(t, Config{}, 2)
	c, w, w2 := dial(t, addr), dial(t, addr), dial(t, addr)
	c.submit(codec.SubmitJobBg, "drain", "", "queued")
	h := c.submit(codec.SubmitJobBg, "drain", "", "running")
	w2.canDo("drain")
	if hh, _, _, _ := w2.grab(); hh == h {
		t.Fatalf("grabbed %s first", hh)
	}
	w.canDo("drain")
	e.Drain()
	w.send(codec.PreSleep)
	w.expectNothing(100 * time.Millisecond)
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
	w.send(codec.PreSleep)
	w2.conn.Close() // its job is requeued: still nothing is handed out, nobody woken
	w.expectNothing(200 * time.Millisecond)
	// A submit is refused meanwhile.
	c.send(codec.SubmitJobBg, "drain", "", "late")
	c.expectErrorPacket(codec.ReplyShuttingDown.Code, codec.ReplyShuttingDown.Text)
}
