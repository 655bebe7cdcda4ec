package engine

import (
	"log/slog"
	"testing"

	"github.com/spur-gearman/spur/codec"
)

// These benchmarks drive the engine in process, as a transport's event loop does: Feed the
// bytes read, then TakeOutput/ReleaseOutput what is to be written. There is no network and no
// store (background jobs are acknowledged at once, as with -q builtin), so they measure the
// engine's own cost per packet and per job.
//
// What allocates per job, and why it must (measured: 3 allocs per background job, 4 per
// foreground job):
//   - the queue.Job itself (it outlives the packet: queued, then running);
//   - its handle string ("H:bench:N"), built once and shared by every reply;
//   - the copy of its payload (the packet's bytes belong to the connection's read buffer);
//   - for a foreground job, its Listeners slice (the waiting client);
//   - unique and reducer strings, when not empty (none here).
//
// Everything else is per packet and allocates nothing in steady state: replies (JOB_CREATED,
// JOB_ASSIGN, WORK_*, NO_JOB, STATUS_RES) are appended straight into the session's pooled
// outbound buffer, and the sessions' assigned/listening maps and the queue's FIFO, handle
// index and unique index reuse their space. ECHO exercises the bare per-packet path
// (parse, dispatch, reply, take, release) and allocates nothing (TestEchoAllocatesNothing).

// benchTransport is a Transport for a session driven by the benchmark itself.
type benchTransport struct{ wakes int }

func (t *benchTransport) Wake() error { t.wakes++; return nil }

func newBenchEngine() *Engine {
	return New(Config{HandlePrefix: "H:bench", Logger: slog.New(slog.DiscardHandler)})
}

// newClientAndWorker opens a client session and a worker session registered for "bench" on
// a fresh engine; both close when the benchmark ends.
func newClientAndWorker(b *testing.B) (c, w *Session) {
	e := newBenchEngine()
	c = e.NewSession(&benchTransport{}, 1, nil)
	w = e.NewSession(&benchTransport{}, 2, nil)
	b.Cleanup(func() { c.Close(); w.Close() })
	roundTrip(b, w, codec.AppendRequest(nil, codec.CanDo, []byte("bench")))
	return c, w
}

// roundTrip feeds one request to s and takes what it answered; the reply's bytes are valid
// until the next call.
func roundTrip(b testing.TB, s *Session, req []byte) []byte {
	n, closeConn := s.Feed(req)
	if n != len(req) || closeConn {
		b.Fatalf("Feed consumed %d of %d bytes, close %v", n, len(req), closeConn)
	}
	return takeAll(s)
}

var takeBuf []byte

// takeAll takes and releases a session's output, keeping a copy in a reused buffer.
func takeAll(s *Session) []byte {
	out, _ := s.TakeOutput()
	takeBuf = takeBuf[:0]
	if out != nil {
		takeBuf = append(takeBuf, out.B...)
		ReleaseOutput(out)
	}
	return takeBuf
}

// BenchmarkEcho: one ECHO_REQ in, one ECHO_RES out.
func BenchmarkEcho(b *testing.B) {
	e := newBenchEngine()
	s := e.NewSession(&benchTransport{}, 1, nil)
	defer s.Close()
	req := codec.AppendRequest(nil, codec.EchoReq, []byte("ping ping ping ping"))
	roundTrip(b, s, req)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.Feed(req)
		out, _ := s.TakeOutput()
		ReleaseOutput(out)
	}
}

// The per-packet path (parse, dispatch, reply into the pooled buffer, take, release) must
// not allocate: ECHO exercises all of it with nothing else.
func TestEchoAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	e := newBenchEngine()
	s := e.NewSession(&benchTransport{}, 1, nil)
	defer s.Close()
	req := codec.AppendRequest(nil, codec.EchoReq, []byte("ping ping ping ping"))
	want := codec.AppendPacket(nil, codec.EchoRes, []byte("ping ping ping ping"))
	if got := roundTrip(t, s, req); string(got) != string(want) {
		t.Fatalf("echo answered %q", got)
	}
	n := allocsPerPacket(s, req)
	if n != 0 {
		t.Fatalf("ECHO_REQ costs %.2f allocations", n)
	}
}

// allocsPerPacket is the allocations of one Feed of req and the take and release of the
// reply.
func allocsPerPacket(s *Session, req []byte) float64 {
	return testing.AllocsPerRun(1000, func() {
		s.Feed(req)
		out, _ := s.TakeOutput()
		ReleaseOutput(out)
	})
}

// TestGetStatusAllocatesNothing: GET_STATUS of a known job, through the authorization point.
func TestGetStatusAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	e := newBenchEngine()
	s := e.NewSession(&benchTransport{}, 1, nil)
	defer s.Close()
	created := roundTrip(t, s, codec.AppendRequest(nil, codec.SubmitJobBg, []byte("f"), nil, []byte("x")))
	h := created[codec.HeaderSize:]
	req := codec.AppendRequest(nil, codec.GetStatus, h)
	want := codec.AppendStatusRes(codec.AppendHeader(nil, 0, 0)[:0], h, true, false, 0, 0)
	if got := roundTrip(t, s, req); string(got) != string(want) {
		t.Fatalf("GET_STATUS answered %q, want %q", got, want)
	}
	n := allocsPerPacket(s, req)
	if n != 0 {
		t.Fatalf("GET_STATUS costs %.2f allocations", n)
	}
}

// BenchmarkSubmitBackground: one SUBMIT_JOB_BG in, one JOB_CREATED out. The queue is drained
// by a worker (outside the timer) every drainEvery jobs so that memory stays bounded.
func BenchmarkSubmitBackground(b *testing.B) { benchSubmit(b, false) }

// BenchmarkSubmitBackgroundUnique is BenchmarkSubmitBackground with a distinct 36-byte unique
// id per job, as libgearman clients send (a UUID).
func BenchmarkSubmitBackgroundUnique(b *testing.B) { benchSubmit(b, true) }

func benchSubmit(b *testing.B, unique bool) {
	c, w := newClientAndWorker(b)
	var u []byte
	if unique {
		u = []byte("00000000-0000-4000-8000-000000000000")
	}
	req := codec.AppendRequest(nil, codec.SubmitJobBg, []byte("bench"), u, []byte("a payload of some 32 bytes......"))
	digits := req[codec.HeaderSize+len("bench")+1+len(u)-12 : codec.HeaderSize+len("bench")+1+len(u)]
	const drainEvery = 1 << 14
	queued := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if unique { // the last 12 hex digits count the jobs
			for k, n := len(digits)-1, i; k >= 0; k, n = k-1, n>>4 {
				digits[k] = "0123456789abcdef"[n&15]
			}
		}
		c.Feed(req)
		out, _ := c.TakeOutput()
		ReleaseOutput(out)
		if queued++; queued == drainEvery {
			b.StopTimer()
			for range queued {
				runOne(b, w)
			}
			queued = 0
			b.StartTimer()
		}
	}
}

// runOne grabs one job on worker w and completes it.
func runOne(b testing.TB, w *Session) {
	assign := roundTrip(b, w, grabReq)
	p, n, err := codec.Parse(assign, 0)
	if err != nil || n == 0 || p.Type != codec.JobAssign {
		b.Fatalf("grab answered %q", assign)
	}
	completeReq = codec.AppendRequest(completeReq[:0], codec.WorkComplete, p.Args[0], []byte("done"))
	roundTrip(b, w, completeReq)
}

var (
	grabReq     = codec.AppendRequest(nil, codec.GrabJob)
	completeReq []byte
)

// BenchmarkGrabCompleteCycle: one op is one whole foreground job: the client submits (JOB_CREATED),
// the worker grabs (JOB_ASSIGN) and completes it, and the client receives WORK_COMPLETE.
func BenchmarkGrabCompleteCycle(b *testing.B) {
	c, w := newClientAndWorker(b)
	submit := codec.AppendRequest(nil, codec.SubmitJob, []byte("bench"), nil, []byte("a payload of some 32 bytes......"))
	cycle := func() {
		if created := roundTrip(b, c, submit); len(created) == 0 {
			b.Fatal("no JOB_CREATED")
		}
		runOne(b, w)
		if done := takeAll(c); len(done) == 0 {
			b.Fatal("no WORK_COMPLETE")
		}
	}
	for range 1000 {
		cycle()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cycle()
	}
}
