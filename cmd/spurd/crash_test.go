package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

var crashCycles = flag.Int("crash.cycles", 20, "SIGKILL/restart cycles of TestCrashLosesNoAcknowledgedJob")

// TestCrashLosesNoAcknowledgedJob is the durability invariant: background submitters and
// workers run against a real spurd that is killed with SIGKILL at random moments and
// restarted on the same data dir; every job whose JOB_CREATED reached a submitter must
// eventually reach a worker. Jobs delivered more than once are counted, not failed: delivery
// is at least once (a job whose WORK_COMPLETE was not yet durable runs again).
func TestCrashLosesNoAcknowledgedJob(t *testing.T) {
	dataDir := t.TempDir()
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", port)
	start := func() *exec.Cmd {
		cmd := exec.Command(spurdBin, "-p", port, "-L", "127.0.0.1", "-q", "pebble", "--data-dir", dataDir, "--sync", "always")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("spurd did not restart: %s", stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	var (
		mu        sync.Mutex
		acked     = map[string]bool{}
		delivered = map[string]int{}
		stop      atomic.Bool
		wg        sync.WaitGroup
	)
	const fn = "crash"
	const maxBacklog = 20000
	var ackedN, deliveredN atomic.Int64 // distinct ids, for the backlog
	backlog := func() int64 { return ackedN.Load() - deliveredN.Load() }
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); {
				// Keep the backlog bounded so that workers can drain it at the end: the test
				// is about losing jobs, not about out-running the workers.
				for backlog() > maxBacklog && !stop.Load() {
					time.Sleep(5 * time.Millisecond)
				}
				i = submitBatch(addr, fn, g, i, func(id string) {
					mu.Lock()
					if !acked[id] {
						acked[id] = true
						ackedN.Add(1)
					}
					mu.Unlock()
				})
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	workersDone := make(chan struct{})
	var workerWG sync.WaitGroup
	for w := 0; w < 3; w++ {
		workerWG.Add(1)
		go func() {
			defer workerWG.Done()
			for {
				select {
				case <-workersDone:
					return
				default:
				}
				work(addr, fn, workersDone, func(id string) {
					mu.Lock()
					if delivered[id]++; delivered[id] == 1 {
						deliveredN.Add(1)
					}
					mu.Unlock()
				})
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	cmd := start()
	for cycle := 0; cycle < *crashCycles; cycle++ {
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		_ = cmd.Process.Kill() // SIGKILL
		_ = cmd.Wait()
		cmd = start()
	}
	stop.Store(true)
	wg.Wait()

	// Let the workers drain everything that was acknowledged.
	deadline := time.Now().Add(60 * time.Second)
	var missing []string
	for {
		mu.Lock()
		missing = missing[:0]
		for id := range acked {
			if delivered[id] == 0 {
				missing = append(missing, id)
			}
		}
		mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(workersDone)
	workerWG.Wait()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, n := range delivered {
		if n > 1 {
			dups++
		}
	}
	t.Logf("%d crash cycles: %d jobs acknowledged, %d delivered, %d delivered more than once, %d lost",
		*crashCycles, len(acked), len(delivered), dups, len(missing))
	if len(acked) < 100 {
		t.Fatalf("only %d jobs acknowledged: the test did not exercise the server", len(acked))
	}
	if len(missing) > 0 {
		if len(missing) > 10 {
			missing = missing[:10]
		}
		t.Fatalf("acknowledged jobs never delivered after restarts: %v", missing)
	}
}

// submitBatch connects and pipelines background submits of ids "g-i", acknowledging each id
// whose JOB_CREATED arrives, until the connection breaks or a batch is done. It returns the
// next i to use.
func submitBatch(addr, fn string, g, i int, ack func(string)) int {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return i
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for batch := 0; batch < 20; batch++ {
		ids := make([]string, 10)
		var out []byte
		for k := range ids {
			ids[k] = fmt.Sprintf("%d-%d", g, i)
			i++
			out = codec.AppendRequest(out, codec.SubmitJobBg, []byte(fn), nil, []byte(ids[k]))
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(out); err != nil {
			return i
		}
		// Replies come in request order: the k-th JOB_CREATED acknowledges ids[k].
		for k := range ids {
			typ, _, err := readPacket(r)
			if err != nil {
				return i
			}
			if typ == codec.JobCreated {
				ack(ids[k])
			}
		}
	}
	return i
}

// work registers as a worker and completes jobs until the connection breaks or done closes.
func work(addr, fn string, done <-chan struct{}, deliver func(string)) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	send := func(t codec.Type, args ...[]byte) error {
		_, err := c.Write(codec.AppendRequest(nil, t, args...))
		return err
	}
	if send(codec.CanDo, []byte(fn)) != nil {
		return
	}
	for {
		select {
		case <-done:
			return
		default:
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if send(codec.GrabJob) != nil {
			return
		}
		typ, body, err := readPacket(r)
		if err != nil {
			return
		}
		switch typ {
		case codec.NoJob:
			time.Sleep(10 * time.Millisecond)
		case codec.JobAssign:
			parts := strings.SplitN(string(body), "\x00", 3)
			deliver(parts[2])
			if send(codec.WorkComplete, []byte(parts[0]), nil) != nil {
				return
			}
		}
	}
}

func readPacket(r *bufio.Reader) (codec.Type, []byte, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[8:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return codec.Type(binary.BigEndian.Uint32(hdr[4:8])), body, nil
}
