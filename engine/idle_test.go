package engine

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// A flood of distinct function names costs nothing once those functions hold nothing: their
// records are deleted after the grace period (gearmand keeps every one forever), while a
// function with a worker or settings of its own stays. Twice, so that a second flood meets
// the first one's leftovers, if any.
func TestFloodOfFunctionNamesIsForgotten(t *testing.T) {
	const names = 10_000
	e, addr := startEngine(t, Config{IdleGrace: 100 * time.Millisecond}, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.RunUpkeep(ctx, 20*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done })

	adm, kept := dial(t, addr), dial(t, addr)
	kept.canDo("has-worker")
	adm.admin("create function declared")
	adm.admin("maxqueue declared 5")
	const survivors = "declared\t0\t0\t0\nhas-worker\t0\t0\t1\n.\n"

	// Each name gets a background job, which a worker registers for, runs and lets go of.
	flood := func(round int) {
		c, w := dial(t, addr), dial(t, addr)
		var submits, work bytes.Buffer
		for i := 0; i < names; i++ {
			fn := fmt.Sprintf("flood-%d-%06d-padding-to-make-each-record-weigh-something", round, i)
			submits.Write(request(codec.SubmitJobBg, fn, "", "x"))
			work.Write(request(codec.CanDo, fn))
			work.Write(request(codec.GrabJob))
			work.Write(request(codec.WorkComplete, fmt.Sprintf("H:test:%d", round*names+i+1), ""))
			work.Write(request(codec.CantDo, fn))
		}
		c.floodThenEcho(submits.Bytes())
		w.floodThenEcho(work.Bytes())
		for _, line := range strings.Split(adm.admin("status"), "\n") {
			if strings.HasPrefix(line, "flood-") && !strings.HasSuffix(line, "\t0\t0\t0") {
				t.Fatalf("status line %q: a flood job was not done", line)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for e.Functions() != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("%d functions left, want the 2 with a worker or settings", e.Functions())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := adm.admin("status"); got != survivors {
			t.Fatalf("status %q", got)
		}
		c.conn.Close()
		w.conn.Close()
		for e.Sessions() != 2 { // the closes are processed
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The engine's own count is the bound: what a forgotten record held is measured in
	// queue's TestSweepIdleFreesFunctionsOfFinishedJobs (the heap of 200,000 records comes back).
	flood(0)
	flood(1)
}
