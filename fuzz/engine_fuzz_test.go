package fuzz

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/wal/waltest"
)

// FuzzEngine drives an in-process engine (no network) with a few sessions and checks the
// engine's invariants after every step.
//
// The input is a program. Its first byte configures the engine (see newWorld); every step
// after it is an opcode byte — session in the low two bits, action (one of the act*
// constants) in the high six — followed by the argument bytes that action reads (see
// world.step). Arguments pick from small tables of function names, unique ids, payloads and
// handles, so that jobs collide, coalesce and get worked on; a few actions take raw bytes
// from the input instead. A missing byte reads as 0, so every input is a valid program.
//
// After every step each session's output is taken as its transport would take it and must
// parse cleanly as responses (or admin text), e.CheckInvariants must pass, and with a store
// the engine's persisted jobs (per `show jobs`) must be exactly the store's records. Replies
// to generated submits are matched in order: a JOB_CREATED for a background submit must come
// after its record was durable, and every submit gets exactly one answer. At the end every
// session closes (no job may stay running), every job is cancelled and reaped, every
// function dropped, and the store must be empty.
func FuzzEngine(f *testing.F) {
	for _, s := range engineSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		w := newWorld(t, in)
		defer w.close()
		w.run()
	})
}

// Actions of a step; the opcode's high six bits taken modulo numActions.
const (
	actSubmit          = iota // variant, fn, unique, [epoch], [reducer], data
	actGrab                   // variant
	actPreSleep               //
	actCanDo                  // fn
	actCanDoTimeout           // fn, timeout
	actCantDo                 // fn
	actReset                  //
	actWork                   // kind, handle, then num/den (WORK_STATUS) or data
	actGetStatus              // handle
	actGetStatusUnique        // unique
	actOption                 // which
	actEcho                   // data
	actClientID               // n
	actAdmin                  // command, then its arguments
	actRaw                    // n, then n raw bytes
	actClose                  //
	actStore                  // bits 0-1: mode (ok, disk full, reject, keep); bit 2: commit now
	actSplit                  // n: the session's next packet arrives short of its last n%16+1 bytes
	numActions
)

const (
	maxSteps     = 128 // longer programs rarely find more, and slow the fuzzer's minimization
	fuzzMaxBody  = 1 << 16
	outputMaxLen = 1 << 30
)

// The tables arguments pick from.
var (
	bigPayload   = strings.Repeat("L", 3000)
	fuzzFns      = []string{"f0", "f1", "f2", "F0"}
	fuzzUniques  = []string{"", "-", "u1", "u2", "u3", strings.Repeat("x", 65), strings.Repeat("y", 64), "-"}
	fuzzReducers = []string{"", "r", strings.Repeat("z", 65)}
	fuzzTimeouts = []string{"0", "1", "1500", "abc", "99999999999999999999"}
	fuzzOptions  = []string{"exceptions", "EXCEPTIONS", "bogus"}
	fuzzSubmits  = []codec.Type{
		codec.SubmitJob, codec.SubmitJobHigh, codec.SubmitJobLow,
		codec.SubmitJobBg, codec.SubmitJobHighBg, codec.SubmitJobLowBg,
		codec.SubmitJobEpoch, codec.SubmitReduceJob, codec.SubmitReduceJobBackground,
	}
	fuzzGrabs = []codec.Type{codec.GrabJob, codec.GrabJobUniq, codec.GrabJobAll}
	fuzzWorks = []codec.Type{codec.WorkStatus, codec.WorkData, codec.WorkWarning, codec.WorkComplete, codec.WorkFail, codec.WorkException}
)

// serverTypes are the packet types a server may send.
var serverTypes = map[codec.Type]bool{
	codec.Noop: true, codec.JobCreated: true, codec.NoJob: true, codec.JobAssign: true,
	codec.JobAssignUniq: true, codec.JobAssignAll: true, codec.WorkStatus: true,
	codec.WorkComplete: true, codec.WorkFail: true, codec.WorkException: true,
	codec.WorkData: true, codec.WorkWarning: true, codec.EchoRes: true, codec.Error: true,
	codec.StatusRes: true, codec.StatusResUnique: true, codec.OptionRes: true,
}

// submitErrors are the ERROR codes only a submit is answered with.
var submitErrors = map[string]bool{"QUEUE_ERROR": true, "ARGUMENT_TOO_LARGE": true, "INVALID_ARGUMENT": true}

// ---------------------------------------------------------------------------------------
// fuzzPeer is where every session of the harness comes from: this machine, so that the
// admin commands only taken from loopback are driven too.
var fuzzPeer = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

// Transport and store fakes.

// fakeTransport counts the engine's wake-up calls for a connection.
type fakeTransport struct{ wakes atomic.Int64 }

func (t *fakeTransport) Wake() error { t.wakes.Add(1); return nil }

// ---------------------------------------------------------------------------------------
// The world: an engine, its sessions, and what the harness has learned.

type fuzzSess struct {
	s        *engine.Session
	t        *fakeTransport
	in       []byte   // arrived, not yet consumed by Feed
	held     []byte   // generated, not yet arrived
	split    int      // the next delivery holds back this many bytes
	fed      bool     // Feed ran since the last TakeOutput
	wakes    int64    // t.wakes just before the last TakeOutput
	text     bool     // sent admin lines or raw bytes: text replies are expected
	tracked  bool     // only generated packets so far: submit replies can be matched
	submits  []answer // each request awaiting its answer (submits and refused lookups), in order
	assigned []string
}

type stepRecord struct {
	sess, act int
	bytes     []byte
	note      string
}

type world struct {
	t     *testing.T
	e     *engine.Engine
	store *waltest.Store
	sess  []*fuzzSess
	obs   *fuzzSess       // the harness's own admin connection
	known []string        // handles seen in replies
	names map[string]bool // function names the sessions may have created
	now   int64
	in    []byte
	pos   int
	fd    int
	trace []stepRecord
}

// newWorld reads the configuration byte:
//
//	bit 0     3 or 4 sessions
//	bits 1-2  store: none, driven (commits when a step says so), auto (commits concurrently), driven
//	bit 3     --job-retries 2
//	bit 4     --worker-wakeup 1
//	bit 5     --round-robin
//	bit 6     exceptions on for every connection
//	bit 7     a small outbound cap (4 KiB)
func newWorld(t *testing.T, in []byte) *world {
	w := &world{t: t, in: in, now: time.Now().Unix(), names: map[string]bool{}}
	c := w.next()
	cfg := engine.Config{
		HandlePrefix:  "H:fuzz",
		MaxPacketSize: fuzzMaxBody,
		Logger:        slog.New(slog.DiscardHandler),
		Exceptions:    c&64 != 0,
		RoundRobin:    c&32 != 0,
		ResultTTL:     time.Hour,
	}
	if c&8 != 0 {
		cfg.JobRetries = 2
	}
	if c&16 != 0 {
		cfg.WorkerWakeup = 1
	}
	if c&128 != 0 {
		cfg.MaxOutbound = 4 << 10
	}
	switch (c >> 1) & 3 {
	case 1, 3:
		w.store = waltest.New(false)
	case 2:
		w.store = waltest.New(true)
	}
	if w.store != nil {
		cfg.Store = w.store
	}
	w.e = engine.New(cfg)
	n := 3 + int(c&1)
	for range n {
		w.sess = append(w.sess, w.open())
	}
	w.obs = w.open()
	return w
}

func (w *world) close() {
	if w.store != nil {
		w.store.Close()
	}
}

func (w *world) open() *fuzzSess {
	w.fd++
	t := &fakeTransport{}
	return &fuzzSess{s: w.e.NewSession(t, w.fd, fuzzPeer), t: t, tracked: true}
}

func (w *world) next() byte {
	if w.pos >= len(w.in) {
		return 0
	}
	b := w.in[w.pos]
	w.pos++
	return b
}

// raw returns up to n bytes of the input.
func (w *world) raw(n int) []byte {
	n = min(n, len(w.in)-w.pos)
	b := w.in[w.pos : w.pos+n]
	w.pos += n
	return b
}

func (w *world) fatalf(format string, args ...any) {
	w.t.Helper()
	var b strings.Builder
	for i, r := range w.trace {
		fmt.Fprintf(&b, "\n  step %d: session %d %s %q %s", i, r.sess, actName(r.act), r.bytes, r.note)
	}
	w.t.Fatalf("%s\nsteps:%s", fmt.Sprintf(format, args...), b.String())
}

func actName(a int) string {
	names := [...]string{"submit", "grab", "pre_sleep", "can_do", "can_do_timeout", "cant_do", "reset",
		"work", "get_status", "get_status_unique", "option", "echo", "client_id", "admin", "raw", "close", "store", "split"}
	if a >= 0 && a < len(names) {
		return names[a]
	}
	return "" // the final teardown
}

func (w *world) run() {
	for steps := 0; w.pos < len(w.in) && steps < maxSteps; steps++ {
		op := w.next()
		i := int(op&3) % len(w.sess)
		act := int(op>>2) % numActions
		w.trace = append(w.trace, stepRecord{sess: i, act: act})
		w.step(i, act)
		w.afterStep()
	}
	w.finish()
}

// ---------------------------------------------------------------------------------------
// Steps.

func (w *world) fn() string { return fuzzFns[int(w.next())%len(fuzzFns)] }

func (w *world) unique() string { return fuzzUniques[int(w.next())%len(fuzzUniques)] }

func (w *world) data() string {
	switch d := w.next(); d % 8 {
	case 0:
		return ""
	case 1:
		return "a"
	case 2:
		return "b"
	case 3:
		return "x\x00y"
	case 4:
		return bigPayload // two in one connection's output overrun the small outbound cap
	default:
		return string(w.raw(int(d>>3) % 24))
	}
}

func (w *world) epoch() string {
	switch w.next() % 8 {
	case 0:
		return "0"
	case 1:
		return strconv.FormatInt(w.now-5, 10)
	case 2:
		return strconv.FormatInt(w.now+1, 10)
	case 3:
		return strconv.FormatInt(w.now+3600, 10)
	case 4:
		return "junk"
	case 5:
		return "99999999999999999999"
	case 6:
		return "-5"
	default:
		return " " + strconv.FormatInt(w.now, 10)
	}
}

// handle picks a handle: one this session was assigned, one seen anywhere, or a made-up one.
func (w *world) handle(fs *fuzzSess) string {
	b := w.next()
	switch {
	case b&1 == 0 && len(fs.assigned) > 0:
		return fs.assigned[len(fs.assigned)-1-int(b>>1)%len(fs.assigned)]
	case b&2 == 0 && len(w.known) > 0:
		return w.known[int(b>>2)%len(w.known)]
	case b&4 != 0:
		return "H:fuzz:" + strconv.Itoa(int(b>>3))
	default:
		return "H:other:1"
	}
}

func (w *world) step(i, act int) {
	fs := w.sess[i]
	req := func(t codec.Type, args ...string) {
		bs := make([][]byte, len(args))
		for k, a := range args {
			bs[k] = []byte(a)
		}
		w.deliver(i, codec.AppendRequest(nil, t, bs...))
	}
	switch act {
	case actSubmit:
		typ := fuzzSubmits[int(w.next())%len(fuzzSubmits)]
		fn, u := w.fn(), w.unique()
		args := []string{fn, u}
		switch typ {
		case codec.SubmitJobEpoch:
			args = append(args, w.epoch())
		case codec.SubmitReduceJob, codec.SubmitReduceJobBackground:
			args = append(args, fuzzReducers[int(w.next())%len(fuzzReducers)], "")
		}
		args = append(args, w.data())
		bg := typ == codec.SubmitJobBg || typ == codec.SubmitJobHighBg || typ == codec.SubmitJobLowBg ||
			typ == codec.SubmitJobEpoch || typ == codec.SubmitReduceJobBackground
		fs.submits = append(fs.submits, answer{bg: bg})
		req(typ, args...)
	case actGrab:
		req(fuzzGrabs[int(w.next())%len(fuzzGrabs)])
	case actPreSleep:
		req(codec.PreSleep)
	case actCanDo:
		req(codec.CanDo, w.fn())
	case actCanDoTimeout:
		fn := w.fn()
		req(codec.CanDoTimeout, fn, fuzzTimeouts[int(w.next())%len(fuzzTimeouts)])
	case actCantDo:
		req(codec.CantDo, w.fn())
	case actReset:
		req(codec.ResetAbilities)
	case actWork:
		typ := fuzzWorks[int(w.next())%len(fuzzWorks)]
		h := w.handle(fs)
		switch typ {
		case codec.WorkStatus:
			nd := [][2]string{{"1", "2"}, {"50", "100"}, {"x", "0"}, {"-1", "99999999999999999999"}}[w.next()%4]
			req(typ, h, nd[0], nd[1])
		case codec.WorkFail:
			req(typ, h)
		default:
			req(typ, h, w.data())
		}
	case actGetStatus:
		req(codec.GetStatus, w.handle(fs))
	case actGetStatusUnique:
		u := w.unique()
		if len(u) > codec.MaxUniqueSize {
			fs.submits = append(fs.submits, answer{errorOnly: true}) // ERROR ARGUMENT_TOO_LARGE
		}
		req(codec.GetStatusUnique, u)
	case actOption:
		req(codec.OptionReq, fuzzOptions[int(w.next())%len(fuzzOptions)])
	case actEcho:
		req(codec.EchoReq, w.data())
	case actClientID:
		req(codec.SetClientID, "client-"+strconv.Itoa(int(w.next())))
	case actAdmin:
		fs.text = true
		w.deliver(i, []byte(w.adminLine(fs)+"\r\n"))
	case actRaw:
		fs.text, fs.tracked = true, false
		w.deliver(i, slices.Clone(w.raw(int(w.next())%32)))
	case actClose:
		w.closeSess(i)
	case actStore:
		b := w.next()
		if w.store == nil {
			return
		}
		// A failed store (waltest.Fail) keeps records whose deletes it failed, which this
		// harness's model of the store does not follow: TestFailedCommitFailsItsSubmits and
		// wal's own tests cover it.
		if m := b & 3; m != 3 {
			w.store.SetMode([...]waltest.Mode{waltest.OK, waltest.Full, waltest.Reject}[m])
		}
		if b&4 != 0 {
			w.store.Flush()
		}
	case actSplit:
		fs.split = int(w.next())%16 + 1
	}
}

func (w *world) adminLine(fs *fuzzSess) string {
	switch w.next() % 35 {
	case 0:
		return "status"
	case 1:
		return "prioritystatus"
	case 2:
		return "workers"
	case 3:
		return "show jobs"
	case 4:
		return "show unique jobs"
	case 5:
		return "cancel job " + w.handle(fs)
	case 6:
		return "maxqueue " + w.fn() + " " + strconv.Itoa(int(w.next()%4))
	case 7:
		return "maxqueue " + w.fn() + " 1 2 3"
	case 8:
		return "maxqueue " + w.fn()
	case 9:
		return "drop function " + w.fn()
	case 10:
		return "create function " + w.fn()
	case 11:
		return "version"
	case 12:
		return "verbose"
	case 13:
		return "shutdown"
	case 14:
		return "bogus command"
	case 15:
		return "cancel jobs " + w.handle(fs)
	case 16:
		return "STATUS"
	case 17:
		return "show scheduled"
	case 18:
		return "pause " + w.fn()
	case 19:
		return "resume " + w.fn()
	case 20:
		return "limit " + w.fn() + " " + strconv.Itoa(int(w.next()%3))
	case 21:
		return "retry " + w.fn() + " " + strconv.Itoa(int(w.next()%3)+1) + " 1ms 2ms"
	case 22:
		return "retry " + w.fn() + " off"
	case 23:
		return "show dead"
	case 24:
		return "retry dead all " + w.fn()
	case 25:
		return "purge dead " + w.fn()
	case 26:
		return "show result " + w.handle(fs)
	case 27:
		return "schedule add " + w.fn() + " * * * * * data=s"
	case 28:
		return "show schedules"
	case 29:
		return "retry dead " + w.handle(fs)
	case 30:
		return "show stats"
	case 31:
		return "show jobs " + w.fn()
	case 32:
		return "show jobs " + w.fn() + " " + strconv.Itoa(int(w.next()%3))
	case 33:
		return "show node"
	default:
		return "getpid"
	}
}

// deliver makes b arrive on session i (short of the bytes a split holds back) and feeds it.
func (w *world) deliver(i int, b []byte) {
	fs := w.sess[i]
	if n := len(w.trace); n > 0 {
		w.trace[n-1].bytes = append(w.trace[n-1].bytes, b...)
	}
	fs.held = append(fs.held, b...)
	n := len(fs.held)
	if fs.split > 0 {
		n = max(0, n-fs.split)
		fs.split = 0
	}
	fs.in = append(fs.in, fs.held[:n]...)
	fs.held = append(fs.held[:0], fs.held[n:]...)
	w.feed(i)
}

func (w *world) feed(i int) {
	fs := w.sess[i]
	if len(fs.in) == 0 {
		return
	}
	consumed, closeConn := fs.s.Feed(fs.in)
	fs.fed = true
	if consumed < 0 || consumed > len(fs.in) {
		w.fatalf("Feed consumed %d of %d bytes", consumed, len(fs.in))
	}
	w.learnFunctions(fs.in[:consumed])
	fs.in = append(fs.in[:0], fs.in[consumed:]...)
	if closeConn {
		w.closeSess(i)
	}
}

// learnFunctions records the function names that the packets in b (as consumed by Feed)
// may have created, so that the teardown can reach them even when raw bytes made them up.
func (w *world) learnFunctions(b []byte) {
	for len(b) > 0 {
		p, n, err := codec.Parse(b, fuzzMaxBody)
		if err != nil || n == 0 {
			return
		}
		b = b[n:]
		switch {
		case p.Text:
			if a, err := codec.SplitAdmin(p.Line); err == nil && a.N == 3 && a.Is(0, "create") && a.Is(1, "function") {
				w.names[string(a.Word(2))] = true
			}
		case p.Type == codec.CanDo, p.Type == codec.CanDoTimeout, slices.Contains(fuzzSubmits, p.Type):
			w.names[string(p.Args[0])] = true
		}
	}
}

// adminSafe reports whether an admin command can name fn.
func adminSafe(fn string) bool {
	for i := 0; i < len(fn); i++ {
		if fn[i] <= ' ' || fn[i] > '~' {
			return false
		}
	}
	return fn != ""
}

// closeSess writes out what session i has buffered, closes it as its transport would, and
// opens a new session in its place.
func (w *world) closeSess(i int) {
	w.drain(w.sess[i])
	w.sess[i].s.Close()
	w.sess[i] = w.open()
}

// ---------------------------------------------------------------------------------------
// Checks.

func (w *world) afterStep() {
	for i := range w.sess {
		if w.drain(w.sess[i]) {
			w.closeSess(i) // over its outbound cap: the transport closes it
		}
	}
	if err := w.e.CheckInvariants(); err != nil {
		w.fatalf("invariant violated: %v", err)
	}
	w.checkStore()
}

// drain takes a session's output as its event loop would and checks every packet in it. It
// reports whether the session overran its outbound cap.
func (w *world) drain(fs *fuzzSess) (overflow bool) {
	// Wakes counted before this take; a Wake for bytes buffered after the take can only come
	// later, so it is never credited to this one.
	wakesBefore := fs.t.wakes.Load()
	out, overflow := fs.s.TakeOutput()
	fed := fs.fed
	fs.fed = false
	prevWakes := fs.wakes
	fs.wakes = wakesBefore
	if out == nil {
		return overflow
	}
	defer engine.ReleaseOutput(out)
	b := out.B
	if len(b) > 0 && !fed {
		// Bytes buffered outside the session's loop since the previous take must come with a
		// Wake, or they would sit there. Another goroutine calls Wake just after releasing
		// the session, so give it a moment to land.
		for deadline := time.Now().Add(time.Second); fs.t.wakes.Load() == prevWakes; {
			if time.Now().After(deadline) {
				w.fatalf("%d bytes were buffered for a session outside its loop without a Wake", len(b))
			}
			runtime.Gosched()
		}
	}
	for len(b) > 0 {
		p, n, err := codec.Parse(b, outputMaxLen)
		if err != nil || n == 0 {
			w.fatalf("server output does not parse: err %v n %d at %q", err, n, b[:min(len(b), 64)])
		}
		b = b[n:]
		if fuzzTrace {
			w.t.Logf("session %p <- %s", fs, describe(&p))
		}
		if p.Text {
			if !fs.text {
				w.fatalf("text reply %q on a connection that sent no admin line", p.Line)
			}
			continue
		}
		if !p.Response || !serverTypes[p.Type] {
			w.fatalf("server sent %v with response magic %v", p.Type, p.Response)
		}
		switch p.Type {
		case codec.JobCreated:
			h := string(p.Args[0])
			w.learn(h)
			w.answered(fs, false, func(bg bool) string {
				if bg && w.store != nil && !w.store.IsWritten(h) {
					return "JOB_CREATED " + h + " answers a background submit before its record is durable"
				}
				return ""
			})
		case codec.Error:
			if submitErrors[string(p.Args[0])] {
				w.answered(fs, true, func(bool) string { return "" })
			}
		case codec.JobAssign, codec.JobAssignUniq, codec.JobAssignAll:
			h := string(p.Args[0])
			w.learn(h)
			if len(fs.assigned) >= 8 {
				fs.assigned = fs.assigned[1:]
			}
			fs.assigned = append(fs.assigned, h)
		}
	}
	return overflow
}

// fuzzTrace logs every packet the server sends (SPUR_FUZZ_TRACE=1 go test -run FuzzEngine/NAME -v).
var fuzzTrace = os.Getenv("SPUR_FUZZ_TRACE") != ""

func describe(p *codec.Packet) string {
	if p.Text {
		return fmt.Sprintf("text %q", p.Line)
	}
	return fmt.Sprintf("%v %q", p.Type, p.Args[:p.NArgs])
}

// answered matches a submit's answer to the oldest unanswered submit of the session.
// answer is what a request awaiting its answer expects.
type answer struct {
	bg        bool // a background submit
	errorOnly bool // a request only an ERROR answers (GET_STATUS_UNIQUE over the limits)
}

func (w *world) answered(fs *fuzzSess, isError bool, check func(bg bool) string) {
	if !fs.tracked {
		return
	}
	if len(fs.submits) == 0 {
		w.fatalf("a submit answer arrived for no submit")
	}
	a := fs.submits[0]
	fs.submits = fs.submits[1:]
	if a.errorOnly && !isError {
		w.fatalf("a lookup over the limits was answered with more than an ERROR")
	}
	if msg := check(a.bg); msg != "" {
		w.fatalf("%s", msg)
	}
}

func (w *world) learn(h string) {
	if slices.Contains(w.known, h) {
		return
	}
	if len(w.known) >= 16 {
		w.known = w.known[1:]
	}
	w.known = append(w.known, h)
}

// query sends an admin line on the harness's own connection and returns the reply lines.
func (w *world) query(line string) []string {
	fs := w.obs
	fs.s.Feed([]byte(line + "\n"))
	out, _ := fs.s.TakeOutput()
	if out == nil && w.store != nil {
		// A change of a function's settings is answered once it is durable.
		w.store.Flush()
		out, _ = fs.s.TakeOutput()
	}
	if out == nil {
		w.fatalf("no reply to %q", line)
	}
	defer engine.ReleaseOutput(out)
	text := string(out.B)
	if !strings.HasSuffix(text, "\n") {
		w.fatalf("reply to %q does not end in a newline: %q", line, text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "." {
		lines = lines[:len(lines)-1]
	}
	for k, l := range lines {
		lines[k] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// jobs returns `show jobs` as handle -> persisted flag, checking its format.
func (w *world) jobs() map[string]bool {
	out := map[string]bool{}
	for _, l := range w.query("show jobs") {
		f := strings.Split(l, "\t")
		if len(f) != 4 || (f[2] != "0" && f[2] != "1") || (f[3] != "0" && f[3] != "1") {
			w.fatalf("show jobs line %q", l)
		}
		out[f[0]] = f[3] == "1"
	}
	return out
}

type statusLine struct {
	fn                      string
	total, running, workers int
}

// status returns the `status` lines. A function name made up by raw bytes may hold tabs or
// newlines, so a line is read from its end and fragments without counts are skipped.
func (w *world) status() []statusLine {
	var out []statusLine
	for _, l := range w.query("status") {
		f := strings.Split(l, "\t")
		if len(f) < 4 {
			continue
		}
		k := len(f) - 3
		s := statusLine{fn: strings.Join(f[:k], "\t")}
		ok := true
		for i, p := range []*int{&s.total, &s.running, &s.workers} {
			v, err := strconv.Atoi(f[k+i])
			ok = ok && err == nil && v >= 0
			*p = v
		}
		if !ok {
			continue
		}
		if s.running > s.total {
			w.fatalf("status line %q: more running than total", l)
		}
		out = append(out, s)
	}
	return out
}

// storeDiff compares the engine's persisted jobs with the store's records.
func (w *world) storeDiff() string {
	if w.store.Auto() {
		w.store.Flush()
	}
	jobs := w.jobs()
	recs := w.store.Intended()
	for h, persisted := range jobs {
		if persisted && !recs[h] {
			return "job " + h + " is marked persisted but the store has no record of it"
		}
	}
	for h := range recs {
		if !jobs[h] {
			return "the store holds a record of " + h + ", which is not a live persisted job"
		}
	}
	return ""
}

// checkStore checks that the store holds a record of exactly the jobs the engine believes
// persisted. After a refused write the engine withdraws the job on another goroutine, so a
// mismatch is waited out for a while before it counts.
func (w *world) checkStore() {
	if w.store == nil {
		return
	}
	refused := w.store.TakeRefused() > 0
	deadline := time.Now().Add(5 * time.Second)
	for {
		diff := w.storeDiff()
		if diff == "" {
			return
		}
		if !refused || time.Now().After(deadline) {
			w.fatalf("%s", diff)
		}
		time.Sleep(20 * time.Microsecond)
		refused = refused || w.store.TakeRefused() > 0
	}
}

// finish answers everything, closes every session and tears the engine down, checking that
// nothing is left behind.
func (w *world) finish() {
	w.trace = append(w.trace, stepRecord{act: -1, note: "finish"})
	// Everything generated arrives; the store commits; every submit is answered.
	for i := range w.sess {
		w.sess[i].split = 0
		w.deliver(i, nil)
	}
	if w.store != nil {
		w.store.Flush()
	}
	w.afterStep()
	for i, fs := range w.sess {
		if fs.tracked && len(fs.held) == 0 && len(fs.submits) > 0 {
			w.fatalf("session %d: %d submits never answered", i, len(fs.submits))
		}
	}

	// Every session goes away: nothing may stay running or registered.
	for i := range w.sess {
		w.closeSess(i)
	}
	w.afterStep()
	if n := w.e.Running(); n != 0 {
		w.fatalf("%d jobs still running after every connection closed", n)
	}
	for _, s := range w.status() {
		if s.running != 0 || s.workers != 0 {
			w.fatalf("after every connection closed: %+v", s)
		}
	}

	// Tear down: cancel every job, let a worker reap the cancelled ones, drop every function
	// (with a store that takes the writes: dropping a function deletes its settings).
	if w.store != nil {
		w.store.SetMode(waltest.OK)
	}
	for h := range w.jobs() {
		w.query("cancel job " + h)
	}
	// Cancelled queued jobs are reaped by a grab, which passes a paused function or one at
	// its concurrency limit by: lift both first.
	for fn := range w.names {
		w.query("resume " + fn)
		w.query("limit " + fn + " 0")
	}
	if len(w.names) > 0 {
		fs := w.sess[0]
		for fn := range w.names {
			fs.s.Feed(codec.AppendRequest(nil, codec.CanDo, []byte(fn)))
		}
		fs.s.Feed(codec.AppendRequest(nil, codec.GrabJob))
		out, _ := fs.s.TakeOutput()
		if out == nil || !bytes.Equal(out.B, codec.AppendEmpty(nil, codec.NoJob)) {
			w.fatalf("grab after cancelling every job: %q, want NO_JOB", out.B)
		}
		engine.ReleaseOutput(out)
		w.closeSess(0)
	}
	w.afterStep()
	if left := w.jobs(); len(left) != 0 {
		w.fatalf("%d jobs left after cancelling and reaping every job", len(left))
	}
	for _, s := range w.status() {
		if s.total != 0 {
			w.fatalf("jobs left after cancelling every job: %+v", s)
		}
	}
	// "drop function" matches case-insensitively: drop until each name is gone.
	for fn := range w.names {
		for range 4 {
			if !adminSafe(fn) {
				break
			}
			if r := w.query("drop function " + fn); r[0] != "OK" && r[0] != "ERR function not found" {
				w.fatalf("drop function %s: %q", fn, r)
			}
		}
	}
	for _, s := range w.status() {
		if adminSafe(s.fn) && w.names[s.fn] {
			w.fatalf("function %q left after dropping it", s.fn)
		}
	}
	w.afterStep()
	if w.store != nil {
		if recs := w.store.Intended(); len(recs) != 0 {
			w.fatalf("the store still holds %d records after every job ended", len(recs))
		}
	}
}

// ---------------------------------------------------------------------------------------
// Seeds.

// prog builds a FuzzEngine input: a configuration byte, then steps.
type prog []byte

// do appends one step: session sess performs act, reading args.
func (p prog) do(sess, act int, args ...byte) prog {
	return append(append(p, byte(sess)|byte(act<<2)), args...)
}

// Argument values for the seeds (indexes into the tables above).
const (
	subFg, subHigh, subLow, subBg, subHighBg, subLowBg, subEpoch, subReduce, subReduceBg = 0, 1, 2, 3, 4, 5, 6, 7, 8

	fnF0, fnF1, fnF2 = 0, 1, 2

	uNone, uDash, u1, u2 = 0, 1, 2, 3

	dataEmpty, dataA, dataB, dataNUL = 0, 1, 2, 3

	hAssigned = 0 // the session's latest JOB_ASSIGN, else the first handle seen

	cfgDrivenStore = 2
	cfgAutoStore   = 4
	cfgRetries     = 8
	cfgFourSess    = 1
)

func hKnown(k int) byte { return byte(1 | k<<2) }

// engineSeeds are meaningful programs for FuzzEngine.
func engineSeeds() []seed {
	return []seed{
		{"client_worker_cycle", prog{0}.
			do(0, actSubmit, subFg, fnF0, u1, dataA).
			do(1, actCanDo, fnF0).
			do(1, actPreSleep).
			do(1, actGrab, 1).
			do(1, actWork, 0, hAssigned, 1).
			do(1, actWork, 1, hAssigned, dataB).
			do(1, actWork, 3, hAssigned, dataNUL).
			do(0, actGetStatus, hKnown(0))},
		{"background_durable", prog{cfgDrivenStore}.
			do(0, actSubmit, subBg, fnF1, uNone, dataA).
			do(0, actSubmit, subHighBg, fnF1, u2, dataB).
			do(0, actSubmit, subLowBg, fnF1, u2, dataB).
			do(2, actStore, 4).
			do(1, actCanDo, fnF1).
			do(1, actGrab, 2).
			do(1, actWork, 3, hAssigned, dataA).
			do(1, actGrab, 0).
			do(1, actWork, 4, hAssigned).
			do(2, actStore, 4)},
		{"coalesce_then_disconnect", prog{cfgFourSess}.
			do(0, actSubmit, subFg, fnF0, u1, dataA).
			do(1, actSubmit, subHigh, fnF0, u1, dataB).
			do(3, actSubmit, subFg, fnF0, uDash, dataB).
			do(3, actSubmit, subBg, fnF0, uDash, dataB).
			do(2, actCanDo, fnF0).
			do(2, actGrab, 0).
			do(0, actClose).
			do(2, actWork, 5, hAssigned, dataA).
			do(1, actClose).
			do(2, actGrab, 0).
			do(2, actClose)},
		{"epoch_and_cancel", prog{cfgDrivenStore}.
			do(0, actSubmit, subEpoch, fnF2, uNone, 3, dataA).
			do(0, actSubmit, subEpoch, fnF2, u1, 1, dataB).
			do(0, actSubmit, subEpoch, fnF2, uNone, 5, dataA).
			do(2, actStore, 4).
			do(1, actAdmin, 3).
			do(1, actAdmin, 5, hKnown(0)).
			do(1, actAdmin, 1).
			do(2, actCanDo, fnF2).
			do(2, actGrab, 0).
			do(2, actWork, 3, hAssigned, dataA).
			do(2, actStore, 4)},
		{"disk_full_coalesce", prog{cfgDrivenStore}.
			do(0, actSubmit, subFg, fnF0, u1, dataA).
			do(1, actSubmit, subBg, fnF0, u1, dataA).
			do(2, actSubmit, subBg, fnF0, u1, dataA).
			do(2, actStore, 1|4).
			do(2, actStore, 0|4).
			do(0, actClose).
			do(1, actSubmit, subBg, fnF0, u1, dataA).
			do(2, actStore, 4)},
		// A background submit joins a waiting foreground job and its record is refused: the
		// job stays the foreground client's, and a worker must get it.
		{"disk_full_then_grab", prog{cfgDrivenStore}.
			do(0, actSubmit, subFg, fnF0, u1, dataA).
			do(1, actSubmit, subBg, fnF0, u1, dataA).
			do(2, actStore, 1|4).
			do(2, actStore, 0).
			do(2, actCanDo, fnF0).
			do(2, actGrab, 0).
			do(2, actWork, 3, hAssigned, dataB)},
		// A background submit joins a running foreground job while the store rejects writes;
		// the next background submit must still wait for a record.
		{"store_rejects_while_running", prog{cfgDrivenStore}.
			do(0, actSubmit, subFg, fnF0, u1, dataA).
			do(1, actCanDo, fnF0).
			do(1, actGrab, 0).
			do(2, actStore, 2).
			do(2, actSubmit, subBg, fnF0, u1, dataA).
			do(2, actStore, 0).
			do(2, actSubmit, subBg, fnF0, u1, dataA).
			do(2, actStore, 4).
			do(1, actWork, 3, hAssigned, dataB)},
		{"store_rejects", prog{cfgDrivenStore}.
			do(0, actStore, 2).
			do(0, actSubmit, subBg, fnF0, u2, dataA).
			do(1, actSubmit, subFg, fnF0, u2, dataA).
			do(2, actSubmit, subBg, fnF0, u2, dataA).
			do(0, actStore, 0|4).
			do(2, actSubmit, subBg, fnF0, u2, dataA).
			do(0, actStore, 4)},
		{"timeouts_and_retries", prog{cfgRetries}.
			do(0, actSubmit, subFg, fnF1, uNone, dataA).
			do(1, actCanDoTimeout, fnF1, 2).
			do(1, actGrab, 0).
			do(1, actCantDo, fnF1).
			do(2, actCanDo, fnF1).
			do(2, actGrab, 0).
			do(2, actReset).
			do(1, actCanDo, fnF1).
			do(1, actGrab, 0).
			do(0, actGetStatusUnique, uNone)},
		{"admin_tour", prog{0}.
			do(0, actSubmit, subBg, fnF0, u1, dataA).
			do(0, actAdmin, 0).do(0, actAdmin, 1).do(0, actAdmin, 2).do(0, actAdmin, 3).do(0, actAdmin, 4).
			do(0, actAdmin, 6, fnF0, 1).
			do(1, actSubmit, subFg, fnF0, u2, dataA).
			do(0, actAdmin, 9, fnF0).
			do(0, actAdmin, 10, fnF2).
			do(0, actAdmin, 9, fnF2).
			do(0, actAdmin, 11).do(0, actAdmin, 13).do(0, actAdmin, 14).do(0, actAdmin, 15, hKnown(0)).
			do(0, actAdmin, 5, hKnown(0))},
		{"options_echo_reduce", prog{64}.
			do(0, actOption, 0).
			do(0, actOption, 2).
			do(0, actEcho, dataNUL).
			do(0, actClientID, 7).
			do(0, actSubmit, subReduce, fnF2, u1, 1, dataA).
			do(1, actCanDo, fnF2).
			do(1, actGrab, 2).
			do(1, actWork, 5, hAssigned, dataB).
			do(2, actSubmit, subReduceBg, fnF2, u2, 2, dataB)},
		{"split_and_pipeline", prog{cfgAutoStore}.
			do(0, actSplit, 5).
			do(0, actSubmit, subBg, fnF0, uNone, dataA).
			do(0, actSplit, 15).
			do(0, actSubmit, subFg, fnF1, u1, dataB).
			do(0, actEcho, dataA).
			do(1, actCanDo, fnF1).
			do(1, actCanDo, fnF0).
			do(1, actGrab, 1).
			do(1, actWork, 3, hAssigned, dataA)},
		{"raw_garbage", prog{0}.
			do(0, actRaw, 9, 's', 't', 'a', 't', 'u', 's', '\r', '\n', 0).
			do(1, actRaw, 12, 0, 'R', 'E', 'S', 0, 0, 0, 16, 0, 0, 0, 0).
			do(2, actRaw, 12, 0, 'R', 'E', 'Q', 0, 0, 0, 7, 0, 0, 0, 2).
			do(2, actSubmit, subFg, fnF0, uNone, dataA)},
	}
}
