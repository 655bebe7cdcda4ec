package engine

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
)

// Transport is what a session needs from the connection that carries it.
type Transport interface {
	// Wake asks the connection's own event loop to call Session.TakeOutput and write the
	// result soon. Safe to call from any goroutine; it must not block. An error means the
	// loop will not come: the session then asks again on its next send.
	Wake() error
}

var outPool bytebufferpool.Pool

// Session is the server side of one connection: it may act as client, worker and admin at once.
//
// Feed and TakeOutput belong to the connection's own event loop. Every other goroutine talks to
// a session only through send (which appends to its outbound buffer) and the atomics.
type Session struct {
	e   *Engine
	id  uint64
	t   Transport
	fd  int
	who Identity // immutable

	sleeping   atomic.Bool // sent PRE_SLEEP and has not grabbed since
	noopSent   atomic.Bool // a NOOP went out since the last grab
	exceptions atomic.Bool // OPTION_REQ exceptions: WORK_EXCEPTION is forwarded, not downgraded
	tr         *traffic    // its loop's traffic counters
	wasWorker  atomic.Bool // registered a function once (ConnectionKinds)
	wasAdmin   atomic.Bool // sent an admin command once
	// draining: `drain worker` was given for it: no more jobs, and the connection is closed
	// once the last job it holds has ended (closing).
	draining atomic.Bool
	closing  atomic.Bool
	// wokeFor is the function whose jobs the worker's last NOOP was sent for, until the worker
	// answers it (see wake.go).
	wokeFor atomic.Pointer[queue.Function]

	mu        sync.Mutex // a leaf lock: guards everything below
	out       *bytebufferpool.ByteBuffer
	held      []*replySlot // replies waiting behind a durable submit's answer, in order
	heldBytes int          // bytes of the ready slots in held
	inLoop    bool         // Feed is running on the session's loop, which flushes afterwards
	// fedAt is when the running (or last) Feed began, unix nanoseconds: the time of every
	// packet in its batch, so that timing jobs reads the clock once per read, not per
	// packet. Written by Feed under mu; the session's own loop reads it without.
	fedAt       int64
	wakePending bool // a Wake is on its way to the loop
	overflow    bool // out exceeded the outbound cap
	closed      bool
	clientID    string
	abilities   abilities             // registered functions (see abilities for who may read it)
	assigned    map[uint64]assignment // by Seq
	released    *releasedJobs         // jobs this worker held last, for late results
	listening   map[*queue.Job]struct{}
}

// NewSession registers a plaintext connection from remote. fd and the remote address are
// shown by the `workers` command.
func (e *Engine) NewSession(t Transport, fd int, remote net.Addr) *Session {
	return e.NewSessionAs(t, fd, IdentityOf(remote))
}

// NewSessionAs registers a connection whose transport established who is on the other end.
func (e *Engine) NewSessionAs(t Transport, fd int, who Identity) *Session {
	s := &Session{
		e:        e,
		id:       e.sessionID.Add(1),
		t:        t,
		fd:       fd,
		who:      who,
		clientID: "-",
		tr:       e.trafficFor(t),
	}
	if e.cfg.Exceptions {
		s.exceptions.Store(true)
	}
	e.addSession(s)
	return s
}

// Identity returns who is at the other end of the connection.
func (s *Session) Identity() Identity { return s.who }

// PeerID identifies the session to the queue package.
func (s *Session) PeerID() uint64 { return s.id }

// Feed parses and executes every complete packet at the front of buf and returns how many
// bytes it consumed. When closeConn is true the transport writes what is buffered and closes
// the connection. Call only from the session's event loop; buf is not retained.
func (s *Session) Feed(buf []byte) (consumed int, closeConn bool) {
	return s.FeedAt(buf, time.Now().UnixNano())
}

// FeedAt is Feed for a transport that has read the clock already: now (unix nanoseconds)
// is when its loop woke for these bytes, the time of every packet in them.
func (s *Session) FeedAt(buf []byte, now int64) (consumed int, closeConn bool) {
	s.mu.Lock()
	s.inLoop, s.fedAt = true, now
	s.mu.Unlock()
	for consumed < len(buf) {
		p, n, err := codec.Parse(buf[consumed:], s.e.cfg.MaxPacketSize)
		if err != nil {
			s.protocolError(&p, err)
			return consumed, true
		}
		if n == 0 {
			break
		}
		consumed += n
		s.tr.countPacket(&p)
		if p.Text {
			s.admin(p.Line)
		} else {
			s.dispatch(&p)
		}
	}
	s.tr.bytesIn.Add(uint64(consumed))
	return consumed, false
}

// protocolError answers input the codec rejected; the connection is closed afterwards.
func (s *Session) protocolError(p *codec.Packet, err error) {
	switch err {
	case codec.ErrTooLarge:
		s.sendReply(codec.ReplyPacketTooLarge)
	case codec.ErrMissingArgs:
		s.sendError(codec.CodeInvalidPacket, "Packet body has fewer arguments than "+p.Type.String()+" requires")
	}
	s.e.log.Info("closing connection after protocol error", "conn", s.id, "remote", s.who.IP, "type", p.Type.String(), "error", err)
}

// replySlot holds a place in a session's reply stream for an answer not known yet: the
// JOB_CREATED of a durable submit, sent once its batch is committed. Everything the session
// is sent after the slot waits behind it, so replies keep request order (libgearman matches
// JOB_CREATED to its requests by order alone).
type replySlot struct {
	b     []byte
	ready bool
}

// send appends an outbound packet built by build. Safe from any goroutine; it never writes to
// the socket itself, so callers may hold a shard lock.
func (s *Session) send(build func([]byte) []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if n := len(s.held); n > 0 {
		last := s.held[n-1]
		if !last.ready {
			last = &replySlot{ready: true}
			s.held = append(s.held, last)
		}
		n := len(last.b)
		last.b = build(last.b)
		s.heldBytes += len(last.b) - n
		if !s.checkOutbound() {
			s.mu.Unlock()
			return
		}
		// Over the cap: the loop must see it and close the connection.
	} else {
		s.appendOut(build)
	}
	s.unlockAndWake()
}

// appendOut adds to the bytes ready to be written. Call with s.mu held.
func (s *Session) appendOut(build func([]byte) []byte) {
	if s.out == nil {
		s.out = outPool.Get()
	}
	s.out.B = build(s.out.B)
	s.checkOutbound()
}

// checkOutbound flags the connection for closing once the replies buffered for it, ready or
// held behind a durable submit's answer, exceed the outbound cap. Call with s.mu held.
func (s *Session) checkOutbound() (over bool) {
	n := s.heldBytes
	if s.out != nil {
		n += len(s.out.B)
	}
	if n > s.e.cfg.MaxOutbound {
		s.overflow = true
	}
	return s.overflow
}

// unlockAndWake releases s.mu and makes sure the session's loop will flush what is ready.
func (s *Session) unlockAndWake() {
	wake := !s.inLoop && !s.wakePending
	if wake {
		s.wakePending = true
	}
	s.mu.Unlock()
	if !wake {
		return
	}
	if err := s.t.Wake(); err != nil {
		s.mu.Lock()
		s.wakePending = false
		s.mu.Unlock()
		s.e.log.Warn("cannot wake the connection's event loop", "conn", s.id, "remote", s.who.IP, "error", err)
	}
}

// holdReply reserves the session's next reply for slot; later sends queue behind it until
// fillReply.
func (s *Session) holdReply(slot *replySlot) {
	s.mu.Lock()
	if !s.closed {
		s.held = append(s.held, slot)
	}
	s.mu.Unlock()
}

// fillReply writes the reserved reply and releases everything queued behind it up to the next
// unfilled slot. Safe from any goroutine.
func (s *Session) fillReply(slot *replySlot, build func([]byte) []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	i := 0
	if s.held[0] == slot {
		s.appendOut(build) // first in line: straight to the output
		s.held[0] = nil
		i = 1
	} else {
		slot.b = build(slot.b)
		slot.ready = true
		s.heldBytes += len(slot.b)
	}
	for ; i < len(s.held) && s.held[i].ready; i++ {
		b := s.held[i].b
		s.heldBytes -= len(b)
		s.appendOut(func(out []byte) []byte { return append(out, b...) })
		s.held[i] = nil
	}
	if i == len(s.held) {
		s.held = s.held[:0] // keep the array for the next burst
	} else {
		s.held = s.held[i:]
	}
	s.unlockAndWake()
}

func (s *Session) sendPacket(t codec.Type, args ...[]byte) {
	s.send(func(b []byte) []byte { return codec.AppendPacket(b, t, args...) })
}

func (s *Session) sendError(code, text string) {
	s.send(func(b []byte) []byte { return codec.AppendError(b, code, text) })
}

func (s *Session) sendReply(r *codec.Reply) {
	s.send(func(b []byte) []byte { return codec.AppendReply(b, r) })
}

func (s *Session) sendText(text string) {
	s.send(func(b []byte) []byte { return append(b, text...) })
}

// TakeOutput hands the loop everything buffered for the connection (nil when nothing is) and
// reports whether the connection overran its outbound cap and must be closed. The loop writes
// out.B and then calls ReleaseOutput(out). Call only from the session's event loop.
func (s *Session) TakeOutput() (out *bytebufferpool.ByteBuffer, overflow bool) {
	s.mu.Lock()
	out, s.out = s.out, nil
	s.inLoop = false
	s.wakePending = false
	overflow = s.overflow
	s.mu.Unlock()
	if out != nil {
		s.tr.bytesOut.Add(uint64(len(out.B)))
	}
	return out, overflow
}

// ReleaseOutput recycles a buffer returned by TakeOutput once it has been written.
func ReleaseOutput(out *bytebufferpool.ByteBuffer) {
	if out != nil {
		outPool.Put(out)
	}
}

// ReleaseOutput is the package's ReleaseOutput, for transports that know only the session.
func (s *Session) ReleaseOutput(out *bytebufferpool.ByteBuffer) { ReleaseOutput(out) }

// LogAttrs names the connection in a transport's log lines.
func (s *Session) LogAttrs() []any { return []any{"conn", s.id, "remote", s.who.IP} }

// Closing reports that the connection is to be closed once its output is written: a
// drained worker that holds no job any more.
func (s *Session) Closing() bool { return s.closing.Load() }

// drain stops handing s jobs and closes its connection once it holds none; it reports
// whether s is a worker (has registrations). Safe from any goroutine.
func (s *Session) drain() bool {
	s.mu.Lock()
	worker := s.abilities.len() > 0
	idle := len(s.assigned) == 0
	s.mu.Unlock()
	if !worker {
		return false
	}
	s.draining.Store(true)
	s.e.log.Info("draining worker: no more jobs, closed when its last one ends", "conn", s.id, "remote", s.who.IP, "idle", idle)
	if idle {
		s.closeDrained()
	}
	return true
}

// closeDrained asks the session's loop to close the connection of a drained worker that
// holds nothing. Safe from any goroutine.
func (s *Session) closeDrained() {
	if s.closing.Swap(true) {
		return
	}
	s.mu.Lock()
	s.unlockAndWake()
}

// MaxOutbound is the outbound cap a transport enforces on bytes it has queued itself.
func (s *Session) MaxOutbound() int { return s.e.cfg.MaxOutbound }

// assign records that the worker holds j.
func (s *Session) assign(j *queue.Job, started int64) {
	a := assignment{job: j, started: started}
	s.mu.Lock()
	if s.assigned == nil {
		s.assigned = make(map[uint64]assignment)
	}
	s.assigned[j.Seq] = a
	s.mu.Unlock()
}

// assignment is a job a worker holds, with when it got it (unix nanoseconds), for its
// run-time histogram, its result and the listings (WorkerInfo.Running).
type assignment struct {
	job     *queue.Job
	started int64
}

// unassign records that the worker no longer holds j: it finished, timed out, was requeued.
// It returns when the worker got it (see assignment) and when it let go: the time of the
// worker's batch of packets while one is being executed (its WORK_COMPLETE's, mostly), else 0.
func (s *Session) unassign(j *queue.Job) (started, ended int64) {
	s.mu.Lock()
	if s.inLoop {
		ended = s.fedAt
	}
	if a := s.assigned[j.Seq]; a.job == j {
		started = a.started
		delete(s.assigned, j.Seq)
		if s.released == nil {
			s.released = &releasedJobs{}
		}
		s.released.add(j.Seq)
	}
	done := len(s.assigned) == 0 && s.draining.Load()
	s.mu.Unlock()
	if done {
		s.closeDrained()
	}
	return started, ended
}

// releasedJobs remembers the job numbers of the last jobs a worker held, so that a result it
// sends for one of them after the job was taken from it is recognised as late, not unknown.
// A ring: a worker that sends its result after more than len(seqs) newer jobs left it gets
// gearmand's JOB_NOT_FOUND.
type releasedJobs struct {
	seqs [64]uint64
	next int
}

func (r *releasedJobs) add(seq uint64) {
	r.seqs[r.next] = seq
	r.next = (r.next + 1) % len(r.seqs)
}

func (r *releasedJobs) has(seq uint64) bool {
	for _, v := range r.seqs {
		if v == seq {
			return true
		}
	}
	return false
}

// heldBefore reports whether handle names a job this worker held and lost (see releasedJobs).
func (s *Session) heldBefore(handle []byte) bool {
	seq, ok := queue.HandleSeq(handle)
	var b [codec.MaxHandleSize + 1]byte
	if !ok || seq == 0 || !bytes.Equal(s.e.appendHandle(b[:0], seq), handle) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.released != nil && s.released.has(seq)
}

func (s *Session) assignedJob(handle []byte) *queue.Job {
	seq, ok := queue.HandleSeq(handle)
	if !ok {
		return nil
	}
	s.mu.Lock()
	j := s.assigned[seq].job
	s.mu.Unlock()
	if j == nil || j.Handle != string(handle) {
		return nil
	}
	return j
}

// listen records that the client is attached to j.
func (s *Session) listen(j *queue.Job) {
	s.mu.Lock()
	if s.listening == nil {
		s.listening = make(map[*queue.Job]struct{})
	}
	s.listening[j] = struct{}{}
	s.mu.Unlock()
}

func (s *Session) unlisten(j *queue.Job) {
	s.mu.Lock()
	delete(s.listening, j)
	s.mu.Unlock()
}

// Close releases everything the connection held: its registrations are removed, the jobs it
// was running are requeued, and the jobs it was waiting for lose it as a listener. Call once,
// from the session's event loop, after the connection is gone.
func (s *Session) Close() {
	s.e.removeSession(s)
	s.mu.Lock()
	s.closed = true
	fns, assigned, listening := s.abilities.functions(), s.assigned, s.listening
	s.abilities, s.assigned, s.listening, s.held, s.heldBytes = abilities{}, nil, nil, nil, 0
	if s.out != nil {
		outPool.Put(s.out)
		s.out = nil
	}
	s.mu.Unlock()

	for _, f := range fns {
		sh := f.Shard()
		sh.Lock()
		f.RemoveWorker(s)
		s.e.replaceWoken(f)
		sh.Unlock()
	}
	for _, a := range assigned {
		j := a.job
		sh := j.Fn.Shard()
		sh.Lock()
		if j.State == queue.Running && j.Worker == queue.Peer(s) {
			s.e.requeue(j, "worker disconnected", true)
		}
		sh.Unlock()
	}
	for j := range listening {
		sh := j.Fn.Shard()
		sh.Lock()
		s.e.detach(j, s)
		sh.Unlock()
	}
}
