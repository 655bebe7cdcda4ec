package queue

import (
	"testing"
	"time"
)

// The oldest ready job is the head of the FIFOs, cancelled jobs not yet reaped skipped, and
// a job waiting for its run-at time does not count.
func TestOldestQueuedSkipsCancelledAndScheduled(t *testing.T) {
	fx := newFixture(t)
	f := fx.fn("f")
	cancelled, waiting := fx.job("", "a", Normal, 0), fx.job("", "b", Low, 0)
	later := fx.job("", "c", High, time.Now().Add(time.Hour).UnixMilli())
	cancelled.QueuedAt, waiting.QueuedAt, later.QueuedAt = 100, 200, 50
	for _, j := range []*Job{cancelled, waiting, later} {
		f.Enqueue(j, time.Now().UnixMilli())
	}
	if got := f.OldestQueued(); got != 100 {
		t.Fatalf("OldestQueued = %d, want 100 (the normal job; the scheduled one is not ready)", got)
	}
	f.Ignore(cancelled) // stays in its FIFO until a Pop reaches it
	if got := f.OldestQueued(); got != 200 {
		t.Fatalf("OldestQueued after the cancel = %d, want 200", got)
	}
	f.Ignore(waiting)
	if got := f.OldestQueued(); got != 0 {
		t.Fatalf("OldestQueued with only cancelled and scheduled jobs = %d, want 0", got)
	}
}
