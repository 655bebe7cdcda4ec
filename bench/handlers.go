package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// errCount counts ERROR packets by code and other failures by kind. The maps are written only
// when something goes wrong, never on the steady-state path.
type errCount struct {
	total int64
	codes map[string]int64
}

func (e *errCount) add(code string) {
	if e.codes == nil {
		e.codes = map[string]int64{}
	}
	e.codes[code]++
	e.total++
}

// addError counts an ERROR packet by its code.
func (e *errCount) addError(p *codec.Packet) { e.add(string(p.Arg(0))) }

func (e *errCount) merge(o *errCount) {
	for k, v := range o.codes {
		if e.codes == nil {
			e.codes = map[string]int64{}
		}
		e.codes[k] += v
	}
	e.total += o.total
}

// epoch anchors the monotonic timestamps the latency measurements take.
var epoch = time.Now()

func monoNow() int64 { return int64(time.Since(epoch)) }

// submitter pipelines SUBMIT_JOB_BG on one connection, keeping up to window outstanding, until
// the run's tickets are gone.
type submitter struct {
	r           *run
	fn, payload []byte
	window      int
	outstanding int
	noMore      bool
	acked       int64
	errs        errCount

	// when, if not nil, makes every job a SUBMIT_JOB_EPOCH run at that unix time (decimal
	// seconds) instead of a SUBMIT_JOB_BG.
	when []byte
	// sched, if not nil, makes every request a SUBMIT_JOB_SCHED instead (sched-fill).
	sched *schedFields

	// With unique set, job i gets the unique id uniq[:prefix] + decimal i; otherwise the
	// unique is empty.
	unique bool
	uniq   []byte
	prefix int
	seq    uint64
}

// withUnique gives every job of s a distinct unique id: prefix (distinct per connection and
// run) followed by a sequence number.
func (s *submitter) withUnique(prefix string) *submitter {
	s.unique = true
	s.uniq = make([]byte, 0, codec.MaxUniqueSize)
	s.uniq = append(s.uniq, prefix...)
	s.prefix = len(prefix)
	return s
}

func (s *submitter) request(c *conn) {
	if s.noMore {
		return
	}
	want := s.window - s.outstanding
	if want <= 0 {
		return
	}
	got := s.r.claim(want)
	if got < want {
		s.noMore = true
	}
	for i := 0; i < got; i++ {
		var unique []byte
		if s.unique {
			s.seq++
			s.uniq = strconv.AppendUint(s.uniq[:s.prefix], s.seq, 10)
			unique = s.uniq
		}
		switch {
		case s.sched != nil:
			c.wbuf = s.sched.append(c.wbuf, s.fn, s.payload)
		case s.when != nil:
			c.wbuf = codec.AppendRequest(c.wbuf, codec.SubmitJobEpoch, s.fn, unique, s.when, s.payload)
		default:
			c.wbuf = codec.AppendRequest(c.wbuf, codec.SubmitJobBg, s.fn, unique, s.payload)
		}
	}
	s.outstanding += got
}

func (s *submitter) packet(c *conn) error {
	switch c.pkt.Type {
	case codec.JobCreated:
		s.acked++
	case codec.Error:
		s.errs.addError(&c.pkt)
	default:
		return fmt.Errorf("submitter: unexpected %v", c.pkt.Type)
	}
	s.outstanding--
	return nil
}

func (s *submitter) stop(*conn) { s.noMore = true }

func (s *submitter) done() bool { return s.noMore && s.outstanding == 0 }

// echoer pipelines ECHO_REQ on one connection, checks every ECHO_RES against the payload and
// records each round trip's latency. Replies come in request order, so the send times of the
// outstanding requests form a FIFO ring (sent[head], ... for outstanding entries).
type echoer struct {
	r           *run
	payload     []byte
	window      int
	outstanding int
	noMore      bool
	echoed      int64
	errs        errCount
	sent        []int64
	head        int
	hist        *histogram
}

func newEchoer(r *run, payload []byte, window int) *echoer {
	return &echoer{r: r, payload: payload, window: window, sent: make([]int64, window), hist: newHistogram()}
}

func (e *echoer) request(c *conn) {
	if e.noMore {
		return
	}
	want := e.window - e.outstanding
	if want <= 0 {
		return
	}
	got := e.r.claim(want)
	if got < want {
		e.noMore = true
	}
	now := monoNow()
	for i := 0; i < got; i++ {
		c.wbuf = codec.AppendRequest(c.wbuf, codec.EchoReq, e.payload)
		e.sent[(e.head+e.outstanding)%len(e.sent)] = now
		e.outstanding++
	}
}

func (e *echoer) packet(c *conn) error {
	if t := c.pkt.Type; e.outstanding == 0 && (t == codec.EchoRes || t == codec.Error) {
		return fmt.Errorf("echo: %v answers no request", t)
	}
	switch c.pkt.Type {
	case codec.EchoRes:
		if bytes.Equal(c.pkt.Arg(0), e.payload) {
			e.echoed++
			e.hist.record(monoNow() - e.sent[e.head])
		} else {
			e.errs.add("ECHO_MISMATCH")
		}
	case codec.Error:
		e.errs.addError(&c.pkt)
	default:
		return fmt.Errorf("echo: unexpected %v", c.pkt.Type)
	}
	e.head = (e.head + 1) % len(e.sent)
	e.outstanding--
	return nil
}

func (e *echoer) stop(*conn) { e.noMore = true }

func (e *echoer) done() bool { return e.noMore && e.outstanding == 0 }

// worker is a Gearman worker for one function: it keeps grabs GRAB_JOBs outstanding, answers
// every JOB_ASSIGN with WORK_COMPLETE (echoing the payload when echo is set), sleeps with
// PRE_SLEEP after NO_JOB and grabs again on NOOP. When the run stops it sends an ECHO_REQ as a
// fence: its ECHO_RES proves the server has processed every WORK_COMPLETE sent before it.
//
// With one grab this is libgearman's worker loop (gearman_worker_work): GRAB_JOB; JOB_ASSIGN
// -> WORK_COMPLETE, GRAB_JOB; NO_JOB -> PRE_SLEEP, wait for NOOP, GRAB_JOB. By default the
// WORK_COMPLETE and the next GRAB_JOB leave in one write; with split each packet gets its own
// write, as libgearman sends them (every send_packet flushes).
type worker struct {
	r         *run
	fn        []byte
	grabs     int
	echo      bool
	split     bool
	completed *atomic.Int64 // shared count of completed jobs; nil = not counted here
	target    int64         // stop the run when completed reaches it (0 = never)
	asleep    *atomic.Int64 // counts workers that went to sleep once; nil = not counted
	result    []byte        // WORK_COMPLETE's result when not echoing

	// handle holds the handle of the last job assigned (for a look-up after the run).
	handle [codec.MaxHandleSize]byte
	hlen   int

	outstanding int // GRAB_JOBs sent and not answered
	pending     int // GRAB_JOBs to send
	sleeping    bool
	stopping    bool
	fenced      bool
	jobs        int64 // jobs this worker completed
	extra       int64 // jobs assigned after the stop
	errs        errCount
}

func newWorker(r *run, fn []byte, grabs int, echo bool) *worker {
	return &worker{r: r, fn: fn, grabs: grabs, echo: echo, pending: grabs}
}

// register queues CAN_DO; the first flush sends it ahead of the first GRAB_JOB.
func (w *worker) register(c *conn) { c.wbuf = codec.AppendRequest(c.wbuf, codec.CanDo, w.fn) }

func (w *worker) request(c *conn) {
	for ; w.pending > 0; w.pending-- {
		c.wbuf = codec.AppendRequest(c.wbuf, codec.GrabJob)
		w.outstanding++
	}
}

func (w *worker) packet(c *conn) error {
	p := &c.pkt
	switch p.Type {
	case codec.JobAssign:
		w.outstanding--
		result := w.result
		if w.echo {
			result = p.Args[2]
		}
		w.hlen = copy(w.handle[:], p.Args[0])
		c.wbuf = codec.AppendRequest(c.wbuf, codec.WorkComplete, p.Args[0], result)
		if w.split {
			if err := c.flush(); err != nil {
				return err
			}
		}
		w.jobs++
		if w.stopping {
			w.extra++
			return nil
		}
		w.pending++
		if w.completed != nil && w.completed.Add(1) == w.target {
			w.r.stop()
		}
	case codec.NoJob:
		w.outstanding--
		if w.outstanding == 0 && !w.stopping {
			// The queue was empty when the last grab was answered: sleep until NOOP.
			w.pending = 0
			w.sleeping = true
			c.wbuf = codec.AppendRequest(c.wbuf, codec.PreSleep)
			if w.asleep != nil {
				w.asleep.Add(1)
				w.asleep = nil
			}
		}
	case codec.Noop:
		if w.sleeping && !w.stopping {
			w.sleeping = false
			w.pending = w.grabs
		}
	case codec.EchoRes:
		if w.stopping {
			w.fenced = true
		}
	case codec.Error:
		w.errs.addError(p)
	default:
		return fmt.Errorf("worker: unexpected %v", p.Type)
	}
	return nil
}

func (w *worker) stop(c *conn) {
	w.stopping = true
	w.pending = 0
	c.wbuf = codec.AppendRequest(c.wbuf, codec.EchoReq)
}

func (w *worker) done() bool { return w.fenced }

// Slot states of a roundtrip client.
const (
	slotFree    = iota
	slotCreated // SUBMIT_JOB sent, waiting for JOB_CREATED
	slotRunning // JOB_CREATED received, waiting for WORK_COMPLETE
)

// rtSlot is one outstanding foreground job: its payload (stamped with a sequence number so a
// result delivered to the wrong job is caught), its handle and when it was written.
type rtSlot struct {
	state   int
	payload []byte
	handle  [codec.MaxHandleSize + 1]byte
	hlen    int
	sent    int64
}

// rtClient submits foreground SUBMIT_JOBs, window at a time, and checks every WORK_COMPLETE
// byte for byte against the payload of its job. JOB_CREATED replies arrive in submission
// order, so the slots awaiting one form a FIFO; results are matched by handle.
type rtClient struct {
	r      *run
	fn     []byte
	id     uint64
	seq    uint64
	slots  []rtSlot
	free   []int // free slot indexes (stack)
	fifo   []int // ring of slots waiting for JOB_CREATED
	fhead  int
	fcount int
	noMore bool
	done_  int64
	errs   errCount
	hist   *histogram
}

func newRTClient(r *run, fn []byte, id uint64, window, size int) *rtClient {
	c := &rtClient{r: r, fn: fn, id: id, slots: make([]rtSlot, window),
		free: make([]int, 0, window), fifo: make([]int, window), hist: newHistogram()}
	for i := range c.slots {
		c.slots[i].payload = makePayload(size, id*uint64(window)+uint64(i))
		c.free = append(c.free, window-1-i)
	}
	return c
}

func (k *rtClient) request(c *conn) {
	if k.noMore || len(k.free) == 0 {
		return
	}
	want := len(k.free)
	got := k.r.claim(want)
	if got < want {
		k.noMore = true
	}
	now := monoNow()
	for i := 0; i < got; i++ {
		si := k.free[len(k.free)-1]
		k.free = k.free[:len(k.free)-1]
		s := &k.slots[si]
		k.seq++
		stamp(s.payload, k.id<<40|k.seq)
		s.state = slotCreated
		s.sent = now
		k.fifo[(k.fhead+k.fcount)%len(k.fifo)] = si
		k.fcount++
		c.wbuf = codec.AppendRequest(c.wbuf, codec.SubmitJob, k.fn, nil, s.payload)
	}
}

// popCreated takes the oldest slot waiting for JOB_CREATED.
func (k *rtClient) popCreated() (int, bool) {
	if k.fcount == 0 {
		return 0, false
	}
	si := k.fifo[k.fhead]
	k.fhead = (k.fhead + 1) % len(k.fifo)
	k.fcount--
	return si, true
}

// running finds the running slot with this handle.
func (k *rtClient) running(handle []byte) (int, bool) {
	for i := range k.slots {
		s := &k.slots[i]
		if s.state == slotRunning && bytes.Equal(s.handle[:s.hlen], handle) {
			return i, true
		}
	}
	return 0, false
}

func (k *rtClient) release(si int) {
	k.slots[si].state = slotFree
	k.free = append(k.free, si)
}

func (k *rtClient) packet(c *conn) error {
	p := &c.pkt
	switch p.Type {
	case codec.JobCreated:
		si, ok := k.popCreated()
		if !ok {
			k.errs.add("UNEXPECTED_JOB_CREATED")
			return nil
		}
		h := p.Args[0]
		s := &k.slots[si]
		if len(h) > len(s.handle) {
			k.errs.add("HANDLE_TOO_LONG")
			k.release(si)
			return nil
		}
		s.hlen = copy(s.handle[:], h)
		s.state = slotRunning
	case codec.WorkComplete:
		si, ok := k.running(p.Args[0])
		if !ok {
			k.errs.add("RESULT_FOR_UNKNOWN_HANDLE")
			return nil
		}
		s := &k.slots[si]
		if bytes.Equal(p.Args[1], s.payload) {
			k.hist.record(monoNow() - s.sent)
			k.done_++
		} else {
			k.errs.add("RESULT_MISMATCH")
		}
		k.release(si)
	case codec.WorkFail, codec.WorkException:
		k.errs.add(p.Type.String())
		if si, ok := k.running(p.Args[0]); ok {
			k.release(si)
		}
	case codec.Error:
		// An ERROR answers a SUBMIT_JOB in place of its JOB_CREATED.
		k.errs.addError(p)
		if si, ok := k.popCreated(); ok {
			k.release(si)
		}
	case codec.WorkData, codec.WorkWarning, codec.WorkStatus:
	default:
		return fmt.Errorf("roundtrip client: unexpected %v", p.Type)
	}
	return nil
}

func (k *rtClient) stop(*conn) { k.noMore = true }

func (k *rtClient) done() bool { return k.noMore && len(k.free) == len(k.slots) }

// makePayload returns size bytes of a pattern that differs per seed.
func makePayload(size int, seed uint64) []byte {
	b := make([]byte, size)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// stamp writes v into the first (up to 8) bytes of b.
func stamp(b []byte, v uint64) {
	var tmp [8]byte
	binary.BigEndian.PutUint64(tmp[:], v)
	copy(b, tmp[:])
}
