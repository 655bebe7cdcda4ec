package fuzz

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"slices"
	"testing"
	"unsafe"

	"github.com/spur-gearman/spur/codec"
)

// fuzzMaxBodies are the packet size limits each input is parsed under: a server-like one
// and a tiny one, so that ErrTooLarge is reached by small inputs too.
var fuzzMaxBodies = []uint32{1 << 20, 16}

// event is one packet parsed from a stream, copied out of the parse buffer so that results
// of different buffering strategies can be compared.
type event struct {
	text     bool
	line     string
	response bool
	typ      codec.Type
	args     []string
	body     string
	n        int
}

// outcome is everything a server learns from a byte stream: the packets in order, then
// either an error (with the packet type Parse reported alongside it) or the number of bytes
// left over as an incomplete packet.
type outcome struct {
	events  []event
	err     error
	errType codec.Type
	rest    int
}

func record(p *codec.Packet, n int) event {
	e := event{text: p.Text, line: string(p.Line), response: p.Response, typ: p.Type, body: string(p.Body), n: n}
	for i := 0; i < p.NArgs; i++ {
		e.args = append(e.args, string(p.Args[i]))
	}
	return e
}

func equalOutcome(a, b outcome) bool {
	if a.err != b.err || a.errType != b.errType || len(a.events) != len(b.events) {
		return false
	}
	if a.err == nil && a.rest != b.rest {
		return false
	}
	for i := range a.events {
		x, y := a.events[i], b.events[i]
		if x.text != y.text || x.line != y.line || x.response != y.response || x.typ != y.typ ||
			x.body != y.body || x.n != y.n || !slices.Equal(x.args, y.args) {
			return false
		}
	}
	return true
}

// within reports whether inner lies inside outer's memory (an empty slice always does).
func within(outer, inner []byte) bool {
	if len(inner) == 0 {
		return true
	}
	o := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	i := uintptr(unsafe.Pointer(unsafe.SliceData(inner)))
	return i >= o && i+uintptr(len(inner)) <= o+uintptr(len(outer))
}

var parseErrors = []error{codec.ErrBadMagic, codec.ErrUnknownType, codec.ErrTooLarge, codec.ErrMissingArgs, codec.ErrLineTooLong}

func magicPrefix(b []byte) bool {
	b = b[:min(len(b), 4)]
	return bytes.HasPrefix(codec.MagicReq[:], b) || bytes.HasPrefix(codec.MagicRes[:], b)
}

// expectError is a slow reference model of Parse's errors, written from its documentation
// and gearman-spec.md rather than from its code.
func expectError(buf []byte, maxBody uint32) error {
	if len(buf) == 0 {
		return nil
	}
	if buf[0] != 0 {
		if bytes.IndexByte(buf[:min(len(buf), codec.MaxTextLine)], '\n') < 0 && len(buf) >= codec.MaxTextLine {
			return codec.ErrLineTooLong
		}
		return nil
	}
	if !magicPrefix(buf) {
		return codec.ErrBadMagic
	}
	if len(buf) < codec.HeaderSize {
		return nil
	}
	typ := binary.BigEndian.Uint32(buf[4:8])
	size := binary.BigEndian.Uint32(buf[8:12])
	if typ == 0 || typ > uint32(codec.MaxType) {
		return codec.ErrUnknownType
	}
	if size > maxBody {
		return codec.ErrTooLarge
	}
	if uint64(len(buf)) < codec.HeaderSize+uint64(size) {
		return nil
	}
	spec, _ := codec.Spec(codec.Type(typ))
	body := buf[codec.HeaderSize : codec.HeaderSize+int(size)]
	nuls := bytes.Count(body, []byte{0})
	if spec.Args > 0 && nuls < spec.Args-1 && !handleOnlyResult(codec.Type(typ), nuls) {
		return codec.ErrMissingArgs
	}
	return nil
}

// handleOnlyResult: a WORK_COMPLETE, WORK_EXCEPTION, WORK_DATA or WORK_WARNING body without a
// NUL is the handle alone, with empty data.
func handleOnlyResult(t codec.Type, nuls int) bool {
	switch t {
	case codec.WorkComplete, codec.WorkException, codec.WorkData, codec.WorkWarning:
		return nuls == 0
	}
	return false
}

// checkParse asserts every documented property of one Parse(buf, maxBody) result.
//
// It deliberately does not call t.Helper: that walks the stack, and checkParse runs for
// every read of every split, so it would dominate the fuzzer's time.
func checkParse(t *testing.T, buf []byte, maxBody uint32, p *codec.Packet, n int, err error) {
	if n < 0 || n > len(buf) {
		t.Fatalf("n = %d outside [0, %d]", n, len(buf))
	}
	if err != nil {
		if n != 0 {
			t.Fatalf("err %v with n = %d", err, n)
		}
		if !slices.Contains(parseErrors, err) {
			t.Fatalf("undocumented error %v", err)
		}
		if want := expectError(buf, maxBody); err != want {
			t.Fatalf("Parse error %v, the reference model says %v", err, want)
		}
		return
	}
	if n == 0 {
		// Incomplete: there must really be bytes missing.
		switch {
		case len(buf) == 0:
		case buf[0] != 0:
			if len(buf) >= codec.MaxTextLine || bytes.IndexByte(buf, '\n') >= 0 {
				t.Fatalf("incomplete text line of %d bytes holds a newline or is over the limit", len(buf))
			}
		case len(buf) >= codec.HeaderSize:
			size := uint64(binary.BigEndian.Uint32(buf[8:12]))
			if uint64(len(buf)) >= codec.HeaderSize+size {
				t.Fatalf("incomplete binary packet but %d bytes hold the %d-byte body", len(buf), size)
			}
		default:
			if !magicPrefix(buf) {
				t.Fatalf("incomplete header %q is no prefix of a magic", buf)
			}
		}
		if want := expectError(buf, maxBody); want != nil {
			t.Fatalf("incomplete, the reference model says %v", want)
		}
		return
	}
	if want := expectError(buf, maxBody); want != nil {
		t.Fatalf("parsed a %d-byte packet, the reference model says %v", n, want)
	}
	pkt := buf[:n]
	if p.Text {
		if buf[0] == 0 || pkt[n-1] != '\n' || n > codec.MaxTextLine {
			t.Fatalf("text packet of %d bytes: first byte %#x last %#x", n, buf[0], pkt[n-1])
		}
		if len(p.Line) != n-1 && !(len(p.Line) == n-2 && pkt[n-2] == '\r') {
			t.Fatalf("Line of %d bytes for a %d-byte packet", len(p.Line), n)
		}
		if !within(pkt, p.Line) || bytes.IndexByte(p.Line, '\n') >= 0 || cap(p.Line) != len(p.Line) {
			t.Fatalf("Line %q outside the packet, holding a newline or not capped", p.Line)
		}
		if p.NArgs != 0 || p.Body != nil || p.Type != 0 || p.Response {
			t.Fatalf("text packet with binary fields set: NArgs %d Body %q Type %v Response %v", p.NArgs, p.Body, p.Type, p.Response)
		}
		// Re-encode and parse again.
		if len(p.Line)+2 <= codec.MaxTextLine {
			again := append(append([]byte(nil), p.Line...), "\r\n"...)
			q, m, err := codec.Parse(again, maxBody)
			if err != nil || m != len(again) || !q.Text || !bytes.Equal(q.Line, p.Line) {
				t.Fatalf("re-parse of line %q: n %d err %v line %q", p.Line, m, err, q.Line)
			}
		}
		return
	}

	spec, ok := codec.Spec(p.Type)
	if !ok || buf[0] != 0 || n < codec.HeaderSize || uint64(n-codec.HeaderSize) > uint64(maxBody) {
		t.Fatalf("binary packet type %d n %d maxBody %d", p.Type, n, maxBody)
	}
	if p.Response != (buf[3] == 'S') {
		t.Fatalf("Response %v for magic %q", p.Response, buf[:4])
	}
	if len(p.Body) != n-codec.HeaderSize || !within(pkt[codec.HeaderSize:], p.Body) || cap(p.Body) != len(p.Body) {
		t.Fatalf("Body of %d bytes for a %d-byte packet, outside it or not capped", len(p.Body), n)
	}
	if p.NArgs != spec.Args {
		t.Fatalf("%v: NArgs %d, want %d", p.Type, p.NArgs, spec.Args)
	}
	for i := 0; i < p.NArgs; i++ {
		a := p.Args[i]
		if !within(p.Body, a) || cap(a) != len(a) {
			t.Fatalf("%v arg %d outside the body or not capped", p.Type, i)
		}
		if i < p.NArgs-1 && bytes.IndexByte(a, 0) >= 0 {
			t.Fatalf("%v NUL-terminated arg %d holds a NUL: %q", p.Type, i, a)
		}
	}
	if p.NArgs > 0 && !bytes.Equal(bytes.Join(p.Args[:p.NArgs], []byte{0}), p.Body) {
		t.Fatalf("%v args joined by NUL != body", p.Type)
	}

	// Re-encode as a request and as a response: same type and arguments.
	for _, response := range []bool{false, true} {
		var enc []byte
		if response {
			enc = codec.AppendPacket(nil, p.Type, p.Args[:p.NArgs]...)
		} else {
			enc = codec.AppendRequest(nil, p.Type, p.Args[:p.NArgs]...)
		}
		q, m, err := codec.Parse(enc, maxBody)
		if err != nil || m != len(enc) || q.Text || q.Type != p.Type || q.Response != response || q.NArgs != p.NArgs {
			t.Fatalf("re-parse of %v: n %d/%d err %v type %v response %v NArgs %d",
				p.Type, m, len(enc), err, q.Type, q.Response, q.NArgs)
		}
		for i := 0; i < p.NArgs; i++ {
			if !bytes.Equal(q.Args[i], p.Args[i]) {
				t.Fatalf("re-parse of %v: arg %d %q, want %q", p.Type, i, q.Args[i], p.Args[i])
			}
		}
		if p.NArgs > 0 && !bytes.Equal(q.Body, p.Body) {
			t.Fatalf("re-encoded body of %v differs", p.Type)
		}
	}
}

// parseWhole parses input held entirely in one buffer, as a server does after one big read.
func parseWhole(t *testing.T, in []byte, maxBody uint32) outcome {
	var o outcome
	off := 0
	for {
		buf := in[off:]
		p, n, err := codec.Parse(buf, maxBody)
		checkParse(t, buf, maxBody, &p, n, err)
		if err != nil {
			o.err, o.errType = err, p.Type
			return o
		}
		if n == 0 {
			o.rest = len(buf)
			return o
		}
		o.events = append(o.events, record(&p, n))
		off += n
	}
}

// parseStream feeds in to a simulated connection reader in chunks of the sizes next
// returns: bytes accumulate in a buffer; after each read every complete packet is parsed
// and discarded (the buffer compacted), and parsing resumes when more bytes arrive.
func parseStream(t *testing.T, in []byte, maxBody uint32, next func() int) outcome {
	var o outcome
	var acc []byte
	for pos := 0; pos < len(in); {
		k := min(max(next(), 1), len(in)-pos)
		acc = append(acc, in[pos:pos+k]...)
		pos += k
		for {
			p, n, err := codec.Parse(acc, maxBody)
			checkParse(t, acc, maxBody, &p, n, err)
			if err != nil {
				o.err, o.errType = err, p.Type
				return o
			}
			if n == 0 {
				break
			}
			o.events = append(o.events, record(&p, n))
			acc = acc[:copy(acc, acc[n:])] // discard the packet; the args are not used past here
		}
	}
	o.rest = len(acc)
	return o
}

// splitPlan is one way of cutting the input into reads.
type splitPlan struct {
	name string
	next func() int // size of the next read
}

// splitPlans returns chunk-size generators derived from the input, so that a given input
// always gets the same splits (and a crasher reproduces).
func splitPlans(in []byte) []splitPlan {
	if len(in) == 0 {
		return nil
	}
	var plans []splitPlan
	// Tiny reads re-parse the growing buffer each time (as a server does), which costs
	// O(len²) for a long text line; bound them so executions stay fast on larger inputs
	// (the fuzzer's minimizer runs thousands of them per new input).
	if len(in) <= 512 {
		plans = append(plans, splitPlan{"one byte at a time", func() int { return 1 }})
	}
	if len(in) <= 4096 {
		k := 0
		plans = append(plans, splitPlan{"5,7 bytes", func() int { k++; return 5 + 2*(k%2) }})
	}
	// Three cut points from a hash of the input.
	h := fnv.New64a()
	h.Write(in)
	sum := h.Sum64()
	cuts := []int{int(sum % uint64(len(in))), int((sum >> 21) % uint64(len(in))), int((sum >> 42) % uint64(len(in)))}
	slices.Sort(cuts)
	sizes := []int{cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], len(in)}
	i := 0
	plans = append(plans, splitPlan{"hash cut points", func() int { s := sizes[min(i, len(sizes)-1)]; i++; return s }})
	// Chunk sizes taken from the input bytes themselves, 1..64.
	j := 0
	plans = append(plans, splitPlan{"sizes from input bytes", func() int { s := int(in[j%len(in)]%64) + 1; j++; return s }})
	return plans
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(checkStream)
}

// checkStream parses in whole and in several splits, under each fuzzMaxBodies limit, and
// checks that every parse is well-formed and every split yields the same packets.
func checkStream(t *testing.T, in []byte) {
	for _, maxBody := range fuzzMaxBodies {
		whole := parseWhole(t, in, maxBody)
		for _, plan := range splitPlans(in) {
			got := parseStream(t, in, maxBody, plan.next)
			if !equalOutcome(whole, got) {
				t.Fatalf("maxBody %d, split %q: streaming gave %d packets err %v (type %v) rest %d;"+
					" whole input gave %d packets err %v (type %v) rest %d",
					maxBody, plan.name, len(got.events), got.err, got.errType, got.rest,
					len(whole.events), whole.err, whole.errType, whole.rest)
			}
		}
		if whole.err == nil {
			used := 0
			for _, e := range whole.events {
				used += e.n
			}
			if used+whole.rest != len(in) {
				t.Fatalf("packets used %d bytes and %d are left, of %d", used, whole.rest, len(in))
			}
		}
	}
}
