package codec_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/spur-gearman/spur/codec"
)

func b(s string) []byte { return []byte(s) }

// TestEncodeExact pins encoder output to literal wire bytes.
func TestEncodeExact(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{
			"ERROR INVALID_MAGIC",
			codec.AppendError(nil, "INVALID_MAGIC", "Request magic expected"),
			"\x00RES\x00\x00\x00\x13\x00\x00\x00\x24INVALID_MAGIC\x00Request magic expected",
		},
		{
			"ERROR via AppendPacket",
			codec.AppendPacket(nil, codec.Error, b("INVALID_MAGIC"), b("Request magic expected")),
			"\x00RES\x00\x00\x00\x13\x00\x00\x00\x24INVALID_MAGIC\x00Request magic expected",
		},
		{
			"ERROR empty code and text",
			codec.AppendError(nil, "", ""),
			"\x00RES\x00\x00\x00\x13\x00\x00\x00\x01\x00",
		},
		{
			// WORK_EXCEPTION forwarded to a client without the exceptions option.
			"WORK_FAIL handle plus empty arg",
			codec.AppendPacket(nil, codec.WorkFail, b("H:x:1"), nil),
			"\x00RES\x00\x00\x00\x0e\x00\x00\x00\x06H:x:1\x00",
		},
		{
			"WORK_FAIL handle",
			codec.AppendPacket(nil, codec.WorkFail, b("H:x:1")),
			"\x00RES\x00\x00\x00\x0e\x00\x00\x00\x05H:x:1",
		},
		{
			"JOB_CREATED",
			codec.AppendPacket(nil, codec.JobCreated, b("H:host:42")),
			"\x00RES\x00\x00\x00\x08\x00\x00\x00\x09H:host:42",
		},
		{
			"JOB_ASSIGN",
			codec.AppendPacket(nil, codec.JobAssign, b("H:h:1"), b("reverse"), b("a\x00b")),
			"\x00RES\x00\x00\x00\x0b\x00\x00\x00\x11H:h:1\x00reverse\x00a\x00b",
		},
		{
			"JOB_ASSIGN_UNIQ empty unique and data",
			codec.AppendPacket(nil, codec.JobAssignUniq, b("H:h:1"), b("fn"), nil, nil),
			"\x00RES\x00\x00\x00\x1f\x00\x00\x00\x0aH:h:1\x00fn\x00\x00",
		},
		{
			"ECHO_RES empty",
			codec.AppendPacket(nil, codec.EchoRes, nil),
			"\x00RES\x00\x00\x00\x11\x00\x00\x00\x00",
		},
		{
			"no args",
			codec.AppendPacket(nil, codec.NoJob),
			"\x00RES\x00\x00\x00\x0a\x00\x00\x00\x00",
		},
		{
			"two empty args",
			codec.AppendPacket(nil, codec.Error, nil, nil),
			"\x00RES\x00\x00\x00\x13\x00\x00\x00\x01\x00",
		},
		{"NOOP", codec.AppendEmpty(nil, codec.Noop), "\x00RES\x00\x00\x00\x06\x00\x00\x00\x00"},
		{"NO_JOB", codec.AppendEmpty(nil, codec.NoJob), "\x00RES\x00\x00\x00\x0a\x00\x00\x00\x00"},
		{
			"header",
			codec.AppendHeader(nil, codec.StatusResUnique, 0x01020304),
			"\x00RES\x00\x00\x00\x2a\x01\x02\x03\x04",
		},
		{
			"STATUS_RES known running",
			codec.AppendStatusRes(nil, b("H:x:1"), true, true, 3, 10),
			"\x00RES\x00\x00\x00\x14\x00\x00\x00\x0eH:x:1\x001\x001\x003\x0010",
		},
		{
			"STATUS_RES known queued",
			codec.AppendStatusRes(nil, b("H:x:1"), true, false, 0, 0),
			"\x00RES\x00\x00\x00\x14\x00\x00\x00\x0dH:x:1\x001\x000\x000\x000",
		},
		{
			// Unknown handle: gearmand answers handle\0 0\0 0\0 0\0 0.
			"STATUS_RES unknown",
			codec.AppendStatusRes(nil, b("H:x:9"), false, false, 0, 0),
			"\x00RES\x00\x00\x00\x14\x00\x00\x00\x0dH:x:9\x000\x000\x000\x000",
		},
		{
			"STATUS_RES max uint64",
			codec.AppendStatusRes(nil, b("h"), false, true, math.MaxUint64, math.MaxUint64),
			"\x00RES\x00\x00\x00\x14\x00\x00\x00\x2fh\x000\x001\x0018446744073709551615\x0018446744073709551615",
		},
		{
			"STATUS_RES_UNIQUE",
			codec.AppendStatusResUnique(nil, b("u-1"), true, true, 1, 2, 3),
			"\x00RES\x00\x00\x00\x2a\x00\x00\x00\x0du-1\x001\x001\x001\x002\x003",
		},
		{
			"STATUS_RES_UNIQUE unknown",
			codec.AppendStatusResUnique(nil, b("u"), false, false, 0, 0, 0),
			"\x00RES\x00\x00\x00\x2a\x00\x00\x00\x0bu\x000\x000\x000\x000\x000",
		},
		{
			"request",
			codec.AppendRequest(nil, codec.SubmitJob, b("reverse"), nil, b("hello")),
			"\x00REQ\x00\x00\x00\x07\x00\x00\x00\x0ereverse\x00\x00hello",
		},
		{
			"request no args",
			codec.AppendRequest(nil, codec.GrabJobUniq),
			"\x00REQ\x00\x00\x00\x1e\x00\x00\x00\x00",
		},
		{
			// Appending after existing bytes must leave them alone (AppendRequest rewrites
			// the magic of the packet it added, not of dst[0:4]).
			"request after a response",
			codec.AppendRequest(codec.AppendEmpty(nil, codec.Noop), codec.EchoReq, b("x")),
			"\x00RES\x00\x00\x00\x06\x00\x00\x00\x00" + "\x00REQ\x00\x00\x00\x10\x00\x00\x00\x01x",
		},
		{
			"appends to dst",
			codec.AppendError([]byte("prefix"), "C", "t"),
			"prefix\x00RES\x00\x00\x00\x13\x00\x00\x00\x03C\x00t",
		},
	}
	for _, tc := range tests {
		if string(tc.got) != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, tc.got, tc.want)
		}
	}
}

// TestEncodeParses: every server-built packet parses back as a response with the same args.
func TestEncodeParses(t *testing.T) {
	pkt := codec.AppendStatusResUnique(nil, b("uniq"), true, false, 7, 8, 2)
	p, n, err := codec.Parse(pkt, 0)
	if err != nil || n != len(pkt) || !p.Response || p.Type != codec.StatusResUnique {
		t.Fatalf("Parse = %v %d %v", p.Type, n, err)
	}
	want := []string{"uniq", "1", "0", "7", "8", "2"}
	if got := args(&p); !equalStrings(got, want) {
		t.Errorf("args %q, want %q", got, want)
	}
	pkt = codec.AppendError(nil, "JOB_NOT_FOUND", "Job does not exist on server")
	p, _, _ = codec.Parse(pkt, 0)
	if got := args(&p); !equalStrings(got, []string{"JOB_NOT_FOUND", "Job does not exist on server"}) {
		t.Errorf("ERROR args %q", got)
	}
}

// randBytes returns a random argument. Lengths are mostly short with some long ones and
// some empty; bytes are a mix of letters, arbitrary bytes and (when allowed) NULs.
func randBytes(r *rand.Rand, nul bool) []byte {
	var n int
	switch r.IntN(10) {
	case 0:
		n = 0
	case 1:
		n = r.IntN(3000)
	default:
		n = r.IntN(40)
	}
	out := make([]byte, n)
	for i := range out {
		switch r.IntN(6) {
		case 0:
			out[i] = byte(r.IntN(256))
		case 1:
			out[i] = 0
		default:
			out[i] = 'a' + byte(r.IntN(26))
		}
		if !nul && out[i] == 0 {
			out[i] = 1 + byte(r.IntN(255))
		}
	}
	return out
}

// randLine returns a random admin line body (no newline, not starting with NUL, not ending
// in '\r' which Parse would strip) and the line ending to send.
func randLine(r *rand.Rand) (line []byte, ending string) {
	n := r.IntN(60)
	if r.IntN(50) == 0 {
		n = codec.MaxTextLine - 2
	}
	line = make([]byte, n)
	for i := range line {
		c := byte(r.IntN(256))
		for c == '\n' || (i == 0 && c == 0) || (i == n-1 && c == '\r') {
			c = byte(r.IntN(256))
		}
		line[i] = c
	}
	if r.IntN(2) == 0 {
		return line, "\n"
	}
	return line, "\r\n"
}

// TestRoundTripRandom encodes thousands of random packets of every type, alone and
// concatenated with admin lines, and parses them back. The seed is fixed: a failure names
// the iteration and reproduces.
func TestRoundTripRandom(t *testing.T) {
	type sent struct {
		text     bool
		line     []byte
		response bool
		typ      codec.Type
		args     [][]byte
		size     int
	}
	r := rand.New(rand.NewPCG(0x5eed, 0x9ea4))
	iterations := 5000
	if testing.Short() {
		iterations = 500
	}
	var buf []byte
	perType := make(map[codec.Type]int)
	for it := 0; it < iterations; it++ {
		buf = buf[:0]
		var want []sent
		for k := 1 + r.IntN(6); k > 0; k-- {
			if r.IntN(8) == 0 {
				line, ending := randLine(r)
				buf = append(append(buf, line...), ending...)
				want = append(want, sent{text: true, line: line, size: len(line) + len(ending)})
				continue
			}
			typ := codec.Type(1 + r.IntN(int(codec.MaxType)))
			spec, _ := codec.Spec(typ)
			argv := make([][]byte, spec.Args)
			for i := range argv {
				// Every argument but the last is NUL-terminated and so may not hold a
				// NUL; the last (data or remainder) may.
				argv[i] = randBytes(r, i == len(argv)-1)
			}
			start := len(buf)
			response := r.IntN(4) == 0
			if response {
				buf = codec.AppendPacket(buf, typ, argv...)
			} else {
				buf = codec.AppendRequest(buf, typ, argv...)
			}
			want = append(want, sent{response: response, typ: typ, args: argv, size: len(buf) - start})
			perType[typ]++
		}
		// A partial packet at the end must be left for the next read.
		tail := 0
		if r.IntN(3) == 0 {
			extra := codec.AppendRequest(nil, codec.SubmitJob, b("fn"), b("u"), randBytes(r, true))
			tail = r.IntN(len(extra))
			buf = append(buf, extra[:tail]...)
		}

		off := 0
		for i, w := range want {
			p, n, err := codec.Parse(buf[off:], 0)
			if err != nil || n != w.size {
				t.Fatalf("iteration %d packet %d (%v): n %d err %v, want n %d", it, i, w.typ, n, err, w.size)
			}
			if p.Text != w.text {
				t.Fatalf("iteration %d packet %d: Text %v, want %v", it, i, p.Text, w.text)
			}
			if w.text {
				if !bytes.Equal(p.Line, w.line) {
					t.Fatalf("iteration %d packet %d: Line %q, want %q", it, i, p.Line, w.line)
				}
			} else {
				if p.Type != w.typ || p.Response != w.response || p.NArgs != len(w.args) {
					t.Fatalf("iteration %d packet %d: %v response %v NArgs %d, want %v %v %d",
						it, i, p.Type, p.Response, p.NArgs, w.typ, w.response, len(w.args))
				}
				for j, a := range w.args {
					if !bytes.Equal(p.Args[j], a) {
						t.Fatalf("iteration %d packet %d (%v) arg %d: %q, want %q", it, i, w.typ, j, p.Args[j], a)
					}
				}
				if len(p.Body) != w.size-codec.HeaderSize {
					t.Fatalf("iteration %d packet %d: body %d bytes, want %d", it, i, len(p.Body), w.size-codec.HeaderSize)
				}
			}
			off += n
		}
		if _, n, err := codec.Parse(buf[off:], 0); n != 0 || err != nil || len(buf)-off != tail {
			t.Fatalf("iteration %d tail: n %d err %v, %d bytes left, want %d", it, n, err, len(buf)-off, tail)
		}
	}
	for typ := codec.Type(1); typ <= codec.MaxType; typ++ {
		if perType[typ] == 0 {
			t.Errorf("type %v never generated", typ)
		}
	}
}

// ExampleAppendPacket shows a server reply built into a reused buffer.
func ExampleAppendPacket() {
	out := make([]byte, 0, 64)
	out = codec.AppendPacket(out, codec.JobAssign, []byte("H:host:1"), []byte("reverse"), []byte("abc"))
	fmt.Printf("%q\n", out)
	// Output: "\x00RES\x00\x00\x00\v\x00\x00\x00\x14H:host:1\x00reverse\x00abc"
}
