package engine

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// No request may cost more than its own size: repeating a packet must not make each
// repetition dearer. Each test times a small and a large count of the same packets and
// compares the cost per packet (a ratio, never an absolute time), while another connection
// on the same event loop checks that it keeps getting answers.

const (
	smallCount = 1_000
	largeCount = 100_000
	// maxCostRatio bounds (cost per packet of largeCount) / (cost per packet of smallCount).
	// Linear work per packet (the quadratic behaviour these tests guard against) gives ~100.
	maxCostRatio = 5
	// maxStall bounds how long another connection of the same loop waits for an ECHO while a
	// flood is processed.
	maxStall = time.Second
)

// costPerPacket sends n copies of pkt on a fresh connection to addr, waits until the server
// has processed them all (an ECHO behind them comes back) and returns the time per packet.
func costPerPacket(t *testing.T, addr string, pkt []byte, n int) time.Duration {
	t.Helper()
	c := dial(t, addr)
	c.syncEcho()
	flood := bytes.Repeat(pkt, n)
	start := time.Now()
	c.floodThenEcho(flood)
	return time.Since(start) / time.Duration(n)
}

// watchLoop echoes on its own connection until stop is closed and returns the longest wait.
func watchLoop(t *testing.T, addr string) (stop func() time.Duration) {
	c := dial(t, addr)
	c.syncEcho()
	done := make(chan struct{})
	var worst time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			start := time.Now()
			c.write(request(codec.EchoReq, "ping"))
			if _, err := c.tryRecv(30 * time.Second); err != nil {
				worst = 30 * time.Second
				return
			}
			worst = max(worst, time.Since(start))
			time.Sleep(time.Millisecond)
		}
	}()
	return func() time.Duration { close(done); wg.Wait(); return worst }
}

func checkFlatCost(t *testing.T, what string, pkt []byte) {
	addr := startServerLoops(t, Config{}, 1) // one loop: the watcher shares it with the flood
	small := costPerPacket(t, addr, pkt, smallCount)
	stop := watchLoop(t, addr)
	large := costPerPacket(t, addr, pkt, largeCount)
	stall := stop()
	ratio := float64(large) / float64(max(small, time.Nanosecond))
	t.Logf("%s: %v per packet at %d, %v at %d (ratio %.2f); longest ECHO wait meanwhile %v",
		what, small, smallCount, large, largeCount, ratio, stall)
	if ratio > maxCostRatio {
		t.Errorf("%s: a packet costs %.1fx more after %d of them than after %d", what, ratio, largeCount, smallCount)
	}
	if stall > maxStall {
		t.Errorf("%s: another connection on the loop waited %v for an ECHO", what, stall)
	}
}

func TestRepeatedCanDoCostIsFlat(t *testing.T) {
	checkFlatCost(t, "CAN_DO", request(codec.CanDo, "same"))
}

func TestRepeatedCanDoTimeoutCostIsFlat(t *testing.T) {
	checkFlatCost(t, "CAN_DO_TIMEOUT", request(codec.CanDoTimeout, "same", "5000"))
}

func TestCanDoCantDoCostIsFlat(t *testing.T) {
	checkFlatCost(t, "CAN_DO+CANT_DO", append(request(codec.CanDo, "same"), request(codec.CantDo, "same")...))
}

func TestGrabAfterRepeatedCanDoCostIsFlat(t *testing.T) {
	// Registered once more per GRAB: each GRAB walks what the connection registered.
	checkFlatCost(t, "CAN_DO+GRAB_JOB", append(request(codec.CanDo, "same"), request(codec.GrabJob)...))
}

// A client that coalesced many foreground submits onto one job and then disconnects is
// detached in time proportional to what it held.
func TestDetachCoalescedClientCostIsFlat(t *testing.T) {
	addr := startServerLoops(t, Config{}, 1)
	adm := dial(t, addr)
	detach := func(n int) time.Duration {
		c := dial(t, addr)
		c.floodThenEcho(bytes.Repeat(request(codec.SubmitJob, "coalesce", "u", "x"), n))
		start := time.Now()
		c.conn.Close()
		// Detached once the job, nobody's any more, is flagged abandoned (IGNORE 1).
		for !strings.Contains(adm.admin("show jobs"), "\t0\t1\t0\n") {
			if time.Since(start) > time.Minute {
				t.Fatal("the coalesced client was not detached within a minute")
			}
			time.Sleep(100 * time.Microsecond)
		}
		elapsed := time.Since(start)
		w := dial(t, addr) // reap it, for the next round
		w.canDo("coalesce")
		w.send(codec.GrabJob)
		w.expectBody(codec.NoJob, "")
		w.conn.Close()
		return elapsed / time.Duration(n)
	}
	small := detach(smallCount)
	large := detach(largeCount)
	ratio := float64(large) / float64(max(small, time.Nanosecond))
	t.Logf("detach: %v per listener at %d, %v at %d (ratio %.2f)", small, smallCount, large, largeCount, ratio)
	if ratio > maxCostRatio {
		t.Errorf("detaching costs %.1fx more per listener at %d than at %d", ratio, largeCount, smallCount)
	}
}
