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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

var crashCycles = flag.Int("crash.cycles", 20, "SIGKILL/restart cycles of TestCrashLosesNoAcknowledgedJob")

// TestCrashLosesNoAcknowledgedJob is the durability invariant: clients and workers run
// against a real spurd that is killed with SIGKILL at random moments and restarted on the
// same data dir; every job whose background JOB_CREATED reached a submitter must eventually
// reach a worker, unless an admin `cancel job` of it may have succeeded. And no handle is
// ever given to two different jobs, across all the restarts. Jobs delivered more than once
// are counted, not failed: delivery is at least once (a job whose WORK_COMPLETE was not yet
// durable runs again, and so does one whose worker overran its CAN_DO_TIMEOUT).
//
// The traffic mixes plain background submits with the paths that touch the log differently:
// coalescing submits (the same unique twice: one job, two acknowledgements), scheduled jobs
// (SUBMIT_JOB_EPOCH a few seconds ahead or behind), foreground jobs turned background by a
// background submit of the same unique, cancellations, timeout requeues, and failed
// attempts that a retry policy runs again after a backoff, dead letters (both attempts
// failed) queued again by `retry dead all`; every job that ends leaves a result (the default
// --result-ttl), written in the batch that deletes its record.
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
			// Its own process, not another test's that took the port while it was down.
			if listensOn(cmd.Process.Pid, port) {
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

	const fn = "crash"
	const maxBacklog = 20000
	led := newLedger()
	var stop atomic.Bool
	var wg sync.WaitGroup
	client := func(body func(rng *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
			for !stop.Load() {
				// Keep the backlog bounded so that workers can drain it at the end: the test
				// is about losing jobs, not about out-running the workers.
				for led.backlog() > maxBacklog && !stop.Load() {
					time.Sleep(5 * time.Millisecond)
				}
				body(rng)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	for g := 0; g < 4; g++ {
		next := 0
		client(func(rng *rand.Rand) { next = submitBatch(addr, fn, g, next, rng, led) })
	}
	promoted := 0
	client(func(*rand.Rand) {
		promote(addr, fn, fmt.Sprintf("p-%d", promoted), led)
		promoted++
	})
	client(func(rng *rand.Rand) {
		cancelOne(addr, rng, led)
		time.Sleep(20 * time.Millisecond)
	})

	client(func(*rand.Rand) {
		retryDead(addr, fn, led)
		time.Sleep(100 * time.Millisecond)
	})

	workersDone := make(chan struct{})
	var workerWG sync.WaitGroup
	for w := 0; w < 4; w++ {
		workerWG.Add(1)
		go func() {
			defer workerWG.Done()
			rng := rand.New(rand.NewPCG(rand.Uint64(), 3))
			for {
				select {
				case <-workersDone:
					return
				default:
				}
				work(addr, fn, w == 0, rng, workersDone, led)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	cmd := start()
	// Failed attempts come back after a backoff (retry policy, durable) rather than ending.
	if got := adminLine(t, addr, "retry "+fn+" 2 0.02 0.05"); got != "OK\r\n" {
		t.Fatalf("retry policy: %q", got)
	}
	for cycle := 0; cycle < *crashCycles; cycle++ {
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		_ = cmd.Process.Kill() // SIGKILL
		_ = cmd.Wait()
		cmd = start()
	}
	stop.Store(true)
	wg.Wait()

	// Let the workers drain everything that was acknowledged (scheduled jobs included: they
	// are due a few seconds after their submit at most).
	deadline := time.Now().Add(60 * time.Second)
	var missing []string
	for {
		missing = led.missing()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(workersDone)
	workerWG.Wait()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	led.mu.Lock()
	defer led.mu.Unlock()
	dups := 0
	for _, n := range led.delivered {
		if n > 1 {
			dups++
		}
	}
	t.Logf("%d crash cycles: %d jobs acknowledged, %d delivered, %d delivered more than once, %d lost; "+
		"%d cancelled (or maybe), %d handles seen; traffic %v",
		*crashCycles, len(led.acked), len(led.delivered), dups, len(missing),
		len(led.cancelled), len(led.idOf), led.counts)
	if len(led.acked) < 100 {
		t.Fatalf("only %d jobs acknowledged: the test did not exercise the server", len(led.acked))
	}
	if len(led.reused) > 0 {
		t.Errorf("handles given to two different jobs: %v", led.reused[:min(10, len(led.reused))])
	}
	if len(missing) > 0 {
		t.Errorf("acknowledged jobs never delivered after restarts: %v", missing[:min(10, len(missing))])
	}
	// The mix must really have happened, or the test proves less than it says.
	for _, kind := range []string{"plain", "coalesced", "epoch", "promoted", "cancelled", "overran timeout", "failed attempt", "dead letters retried"} {
		if led.counts[kind] == 0 {
			t.Errorf("no %q traffic happened in %d cycles (traffic %v)", kind, *crashCycles, led.counts)
		}
	}
}

// ledger is what the crash test's clients and workers saw, across every restart.
type ledger struct {
	mu        sync.Mutex
	acked     map[string]bool   // ids whose background JOB_CREATED arrived
	ackOrder  []string          // acked ids, oldest first: candidates for cancellation
	handleOf  map[string]string // id -> the handle its JOB_CREATED named
	delivered map[string]int    // id -> JOB_ASSIGNs carrying it
	cancelled map[string]bool   // ids a `cancel job` may have removed (OK, or no answer)
	idOf      map[string]string // handle -> id, from every JOB_CREATED and JOB_ASSIGN
	reused    []string          // handles seen for two different ids
	counts    map[string]int    // traffic of each kind

	ackedN, deliveredN atomic.Int64 // distinct ids, for the backlog
}

func newLedger() *ledger {
	return &ledger{
		acked: map[string]bool{}, handleOf: map[string]string{}, delivered: map[string]int{},
		cancelled: map[string]bool{}, idOf: map[string]string{}, counts: map[string]int{},
	}
}

func (l *ledger) backlog() int64 { return l.ackedN.Load() - l.deliveredN.Load() }

// sawHandle records that handle h names the job of id. Call with mu held.
func (l *ledger) sawHandle(h, id string) {
	if prev, ok := l.idOf[h]; ok && prev != id {
		l.reused = append(l.reused, fmt.Sprintf("%s: %s and %s", h, prev, id))
	}
	l.idOf[h] = id
}

func (l *ledger) count(kind string) {
	l.mu.Lock()
	l.counts[kind]++
	l.mu.Unlock()
}

// created records a JOB_CREATED: a background one acknowledges id.
func (l *ledger) created(id, handle, kind string, background bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sawHandle(handle, id)
	l.counts[kind]++
	if background && !l.acked[id] {
		l.acked[id] = true
		l.ackOrder = append(l.ackOrder, id)
		l.handleOf[id] = handle
		l.ackedN.Add(1)
	}
}

func (l *ledger) deliver(handle, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sawHandle(handle, id)
	if l.delivered[id]++; l.delivered[id] == 1 {
		l.deliveredN.Add(1)
	}
}

// missing lists the acknowledged ids not delivered and not (maybe) cancelled.
func (l *ledger) missing() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id := range l.acked {
		if l.delivered[id] == 0 && !l.cancelled[id] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// submitBatch connects and pipelines background submits of ids "g-i": mostly plain ones,
// some coalescing pairs (the same unique twice, so two JOB_CREATED for one job) and some
// scheduled a few seconds ahead or behind; each JOB_CREATED that arrives acknowledges its id.
// It stops when the connection breaks or a batch is done, and returns the next i to use.
func submitBatch(addr, fn string, g, i int, rng *rand.Rand, led *ledger) int {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return i
	}
	defer c.Close()
	r := bufio.NewReader(c)
	type request struct{ id, kind string }
	for batch := 0; batch < 20; batch++ {
		var reqs []request
		var out []byte
		for k := 0; k < 10; k++ {
			id := fmt.Sprintf("%d-%d", g, i)
			i++
			switch rng.IntN(10) {
			case 0:
				u := []byte("c-" + id)
				out = codec.AppendRequest(out, codec.SubmitJobBg, []byte(fn), u, []byte(id))
				out = codec.AppendRequest(out, codec.SubmitJobBg, []byte(fn), u, []byte(id))
				reqs = append(reqs, request{id, "coalesced"}, request{id, "coalesced"})
			case 1:
				at := time.Now().Unix() + int64(rng.IntN(9)) - 5
				out = codec.AppendRequest(out, codec.SubmitJobEpoch, []byte(fn), nil, strconv.AppendInt(nil, at, 10), []byte(id))
				reqs = append(reqs, request{id, "epoch"})
			default:
				out = codec.AppendRequest(out, codec.SubmitJobBg, []byte(fn), nil, []byte(id))
				reqs = append(reqs, request{id, "plain"})
			}
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(out); err != nil {
			return i
		}
		// Replies come in request order: the k-th JOB_CREATED acknowledges reqs[k].
		for _, q := range reqs {
			typ, body, err := readPacket(r)
			if err != nil {
				return i
			}
			if typ == codec.JobCreated {
				led.created(q.id, string(body), q.kind, true)
			}
		}
	}
	return i
}

// promote submits id as a foreground job with unique id, then, while the foreground client
// still waits, submits the same unique as a background job: the job becomes background and
// must survive its foreground client, who then goes away.
func promote(addr, fn, id string, led *ledger) {
	fg, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return
	}
	defer fg.Close()
	bg, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return
	}
	defer bg.Close()
	deadline := time.Now().Add(3 * time.Second)
	_ = fg.SetDeadline(deadline)
	_ = bg.SetDeadline(deadline)
	if _, err := fg.Write(codec.AppendRequest(nil, codec.SubmitJob, []byte(fn), []byte(id), []byte(id))); err != nil {
		return
	}
	typ, fgHandle, err := readPacket(bufio.NewReader(fg))
	if err != nil || typ != codec.JobCreated {
		return
	}
	led.created(id, string(fgHandle), "foreground", false)
	if _, err := bg.Write(codec.AppendRequest(nil, codec.SubmitJobBg, []byte(fn), []byte(id), []byte(id))); err != nil {
		return
	}
	typ, bgHandle, err := readPacket(bufio.NewReader(bg))
	if err != nil || typ != codec.JobCreated {
		return
	}
	kind := "promoted"
	if string(bgHandle) != string(fgHandle) {
		kind = "promotion too late" // the foreground job had ended: a new background job
	}
	led.created(id, string(bgHandle), kind, true)
}

// cancelOne sends `cancel job` for a recently acknowledged job not delivered yet. The job
// counts as cancelled (it may then never be delivered) unless the server says it refused:
// a reply lost to a crash leaves the cancel possibly done.
func cancelOne(addr string, rng *rand.Rand, led *ledger) {
	led.mu.Lock()
	n := len(led.ackOrder)
	if n == 0 {
		led.mu.Unlock()
		return
	}
	id := led.ackOrder[n-1-rng.IntN(min(n, 2000))]
	h := led.handleOf[id]
	if led.delivered[id] > 0 || led.cancelled[id] {
		led.mu.Unlock()
		return
	}
	led.cancelled[id] = true // from the moment the request may reach the server
	led.mu.Unlock()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		led.uncancel(id) // never sent
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("cancel job " + h + "\r\n")); err != nil {
		return
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	switch {
	case err != nil:
		led.count("cancel unanswered")
	case line == "OK\r\n":
		led.count("cancelled")
	default:
		led.uncancel(id) // refused (the job had ended): it must have been delivered
		led.count("cancel refused")
	}
}

// retryDead queues the dead letters of fn again (`retry dead all`): jobs whose two attempts
// both failed, moved to the dead-letter list in the batch that deleted their record.
func retryDead(addr, fn string, led *ledger) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("show dead " + fn + "\r\nretry dead all " + fn + "\r\n")); err != nil {
		return
	}
	dead := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil || line == ".\n" {
			break
		}
		dead++
	}
	if line, err := r.ReadString('\n'); err == nil && line == "OK\r\n" && dead > 0 {
		led.count("dead letters retried")
	}
}

func (l *ledger) uncancel(id string) {
	l.mu.Lock()
	delete(l.cancelled, id)
	l.mu.Unlock()
}

// work registers as a worker and completes jobs until the connection breaks or done closes.
// A timeout worker registers with CAN_DO_TIMEOUT (1 s) and overruns it now and then, so that
// the job is requeued to another worker behind its back; its late WORK_COMPLETE is refused.
func work(addr, fn string, timeout bool, rng *rand.Rand, done <-chan struct{}, led *ledger) {
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
	if timeout {
		err = send(codec.CanDoTimeout, []byte(fn), []byte("1000"))
	} else {
		err = send(codec.CanDo, []byte(fn))
	}
	if err != nil {
		return
	}
	for {
		select {
		case <-done:
			return
		default:
		}
		_ = c.SetDeadline(time.Now().Add(4 * time.Second))
		if send(codec.GrabJob) != nil {
			return
		}
		typ, body, err := readPacket(r)
		for err == nil && (typ == codec.Noop || typ == codec.Error) { // an ERROR answers a late WORK_COMPLETE
			typ, body, err = readPacket(r)
		}
		if err != nil {
			return
		}
		switch typ {
		case codec.NoJob:
			time.Sleep(10 * time.Millisecond)
		case codec.JobAssign:
			parts := strings.SplitN(string(body), "\x00", 3)
			led.deliver(parts[0], parts[2])
			if timeout && rng.IntN(4) == 0 {
				time.Sleep(1300 * time.Millisecond)
				led.count("overran timeout")
			}
			var err error
			if rng.IntN(8) == 0 {
				err = send(codec.WorkFail, []byte(parts[0])) // runs again after its backoff
				led.count("failed attempt")
			} else {
				err = send(codec.WorkComplete, []byte(parts[0]), nil)
			}
			if err != nil {
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
