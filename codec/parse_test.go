package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spur-gearman/spur/codec"
)

// req builds a binary request by hand (not with the encoders under test): "\0REQ", t, len(body), body.
func req(t codec.Type, body string) []byte {
	return raw(codec.MagicReq, uint32(t), uint32(len(body)), body)
}

// res builds a binary response by hand: "\0RES", t, len(body), body.
func res(t codec.Type, body string) []byte {
	return raw(codec.MagicRes, uint32(t), uint32(len(body)), body)
}

// raw builds a packet with any magic, type and declared length, followed by body.
func raw(magic [4]byte, t, size uint32, body string) []byte {
	b := append([]byte(nil), magic[:]...)
	b = binary.BigEndian.AppendUint32(b, t)
	b = binary.BigEndian.AppendUint32(b, size)
	return append(b, body...)
}

// args returns the parsed arguments of p as strings.
func args(p *codec.Packet) []string {
	out := make([]string, p.NArgs)
	for i := range out {
		out[i] = string(p.Args[i])
	}
	return out
}

// checkCapped fails when s can grow into bytes that are not part of it (an append to an
// argument must never overwrite the bytes that follow it in the connection buffer).
func checkCapped(t *testing.T, what string, s []byte) {
	t.Helper()
	if cap(s) != len(s) {
		t.Errorf("%s: cap %d != len %d; an append would overwrite the input buffer", what, cap(s), len(s))
	}
}

// TestParseEveryType parses one packet of each of the 42 types, built from the argument
// table in gearman-spec.md section 2 (not from codec's own table, so the two are checked
// against each other).
func TestParseEveryType(t *testing.T) {
	// argc / data flag per type, copied from gearman-spec.md section 2.
	table := map[codec.Type]struct {
		name string
		argc int
		data bool
	}{
		1: {"CAN_DO", 1, false}, 2: {"CANT_DO", 1, false}, 3: {"RESET_ABILITIES", 0, false},
		4: {"PRE_SLEEP", 0, false}, 5: {"UNUSED", 0, false}, 6: {"NOOP", 0, false},
		7: {"SUBMIT_JOB", 2, true}, 8: {"JOB_CREATED", 1, false}, 9: {"GRAB_JOB", 0, false},
		10: {"NO_JOB", 0, false}, 11: {"JOB_ASSIGN", 2, true}, 12: {"WORK_STATUS", 3, false},
		13: {"WORK_COMPLETE", 1, true}, 14: {"WORK_FAIL", 1, false}, 15: {"GET_STATUS", 1, false},
		16: {"ECHO_REQ", 0, true}, 17: {"ECHO_RES", 0, true}, 18: {"SUBMIT_JOB_BG", 2, true},
		19: {"ERROR", 2, false}, 20: {"STATUS_RES", 5, false}, 21: {"SUBMIT_JOB_HIGH", 2, true},
		22: {"SET_CLIENT_ID", 1, false}, 23: {"CAN_DO_TIMEOUT", 2, false}, 24: {"ALL_YOURS", 0, false},
		25: {"WORK_EXCEPTION", 1, true}, 26: {"OPTION_REQ", 1, false}, 27: {"OPTION_RES", 1, false},
		28: {"WORK_DATA", 1, true}, 29: {"WORK_WARNING", 1, true}, 30: {"GRAB_JOB_UNIQ", 0, false},
		31: {"JOB_ASSIGN_UNIQ", 3, true}, 32: {"SUBMIT_JOB_HIGH_BG", 2, true},
		33: {"SUBMIT_JOB_LOW", 2, true}, 34: {"SUBMIT_JOB_LOW_BG", 2, true},
		35: {"SUBMIT_JOB_SCHED", 7, true}, 36: {"SUBMIT_JOB_EPOCH", 3, true},
		37: {"SUBMIT_REDUCE_JOB", 4, true}, 38: {"SUBMIT_REDUCE_JOB_BACKGROUND", 4, true},
		39: {"GRAB_JOB_ALL", 0, false}, 40: {"JOB_ASSIGN_ALL", 4, true},
		41: {"GET_STATUS_UNIQUE", 1, false}, 42: {"STATUS_RES_UNIQUE", 6, false},
	}
	if len(table) != int(codec.MaxType) {
		t.Fatalf("table has %d types, MaxType is %d", len(table), codec.MaxType)
	}
	for typ := codec.Type(1); typ <= codec.MaxType; typ++ {
		want := table[typ]
		t.Run(want.name, func(t *testing.T) {
			spec, ok := codec.Spec(typ)
			if !ok {
				t.Fatalf("Spec(%d) not ok", typ)
			}
			if typ.String() != want.name || spec.Name != want.name {
				t.Errorf("name = %q / %q, want %q", typ.String(), spec.Name, want.name)
			}
			// Spur counts the data argument in Args; the spec's argc does not.
			wantArgs := want.argc
			if want.data {
				wantArgs++
			}
			if spec.Args != wantArgs || spec.Data != want.data {
				t.Fatalf("Spec = %+v, want Args %d Data %v", spec, wantArgs, want.data)
			}

			var body string
			var wantArgv []string
			switch {
			case wantArgs == 0:
				// Body bytes of a zero-argument type are read and ignored.
				body = "ignored\x00body\x00"
			default:
				for i := 0; i < wantArgs-1; i++ {
					wantArgv = append(wantArgv, fmt.Sprintf("arg%d", i))
				}
				// The last argument (data or not) is the remainder and keeps its NULs.
				wantArgv = append(wantArgv, "last\x00with\x00\x00nuls\x00")
				body = strings.Join(wantArgv, "\x00")
			}
			in := req(typ, body)
			in = append(in, "trailing bytes of the next packet\x00\x00\x00"...)
			p, n, err := codec.Parse(in, 0)
			if err != nil || n != codec.HeaderSize+len(body) {
				t.Fatalf("Parse = n %d err %v, want n %d", n, err, codec.HeaderSize+len(body))
			}
			if p.Text || p.Response || p.Type != typ {
				t.Errorf("Text %v Response %v Type %v", p.Text, p.Response, p.Type)
			}
			if string(p.Body) != body {
				t.Errorf("Body = %q, want %q", p.Body, body)
			}
			checkCapped(t, "Body", p.Body)
			if got := args(&p); !equalStrings(got, wantArgv) {
				t.Errorf("args = %q, want %q", got, wantArgv)
			}
			for i := 0; i < p.NArgs; i++ {
				checkCapped(t, fmt.Sprintf("arg %d", i), p.Args[i])
			}
			if p.Arg(p.NArgs) != nil || p.Arg(codec.MaxArgs) != nil {
				t.Errorf("Arg past NArgs is not nil")
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestParseArgs covers the argument splitting rules case by case.
func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		typ  codec.Type
		body string
		want []string // nil with err set
		err  error
	}{
		{"submit", codec.SubmitJob, "reverse\x00uuid-1\x00hello", []string{"reverse", "uuid-1", "hello"}, nil},
		{"submit data with NULs", codec.SubmitJob, "fn\x00\x00da\x00ta\x00", []string{"fn", "", "da\x00ta\x00"}, nil},
		{"submit all empty", codec.SubmitJob, "\x00\x00", []string{"", "", ""}, nil},
		{"submit no NUL", codec.SubmitJob, "fn", nil, codec.ErrMissingArgs},
		{"submit one NUL", codec.SubmitJob, "fn\x00", nil, codec.ErrMissingArgs},
		{"submit empty body", codec.SubmitJob, "", nil, codec.ErrMissingArgs},
		{"submit_bg", codec.SubmitJobBg, "fn\x00u\x00d", []string{"fn", "u", "d"}, nil},
		{"epoch", codec.SubmitJobEpoch, "fn\x00u\x001700000000\x00d", []string{"fn", "u", "1700000000", "d"}, nil},
		{"epoch missing", codec.SubmitJobEpoch, "fn\x00u\x001700000000", nil, codec.ErrMissingArgs},
		{"reduce 4-arg form", codec.SubmitReduceJob, "fn\x00u\x00red\x00\x00data", []string{"fn", "u", "red", "", "data"}, nil},
		{"reduce 3-arg PROTOCOL form", codec.SubmitReduceJob, "fn\x00u\x00red\x00data", nil, codec.ErrMissingArgs},
		{"sched", codec.SubmitJobSched, "fn\x00u\x001\x002\x003\x004\x005\x00d", []string{"fn", "u", "1", "2", "3", "4", "5", "d"}, nil},
		{"job_assign", codec.JobAssign, "H:h:1\x00fn\x00x\x00y", []string{"H:h:1", "fn", "x\x00y"}, nil},
		{"job_assign_all", codec.JobAssignAll, "H:h:1\x00fn\x00u\x00r\x00d", []string{"H:h:1", "fn", "u", "r", "d"}, nil},
		{"work_complete", codec.WorkComplete, "H:h:1\x00result", []string{"H:h:1", "result"}, nil},
		{"work_complete empty data", codec.WorkComplete, "H:h:1\x00", []string{"H:h:1", ""}, nil},
		// The handle alone means empty data (Perl's Gearman::Worker sends it for "" and "0").
		{"work_complete handle only", codec.WorkComplete, "H:h:1", []string{"H:h:1", ""}, nil},
		{"work_exception handle only", codec.WorkException, "H:h:1", []string{"H:h:1", ""}, nil},
		{"work_data handle only", codec.WorkData, "H:h:1", []string{"H:h:1", ""}, nil},
		{"work_warning handle only", codec.WorkWarning, "H:h:1", []string{"H:h:1", ""}, nil},
		{"work_complete empty body", codec.WorkComplete, "", []string{"", ""}, nil},
		{"work_status", codec.WorkStatus, "H:h:1\x001\x002", []string{"H:h:1", "1", "2"}, nil},
		{"work_status remainder", codec.WorkStatus, "H:h:1\x001\x002\x003", []string{"H:h:1", "1", "2\x003"}, nil},
		{"work_status missing", codec.WorkStatus, "H:h:1\x001", nil, codec.ErrMissingArgs},
		{"work_fail", codec.WorkFail, "H:h:1", []string{"H:h:1"}, nil},
		{"work_fail with NUL", codec.WorkFail, "H:h:1\x00", []string{"H:h:1\x00"}, nil},
		{"can_do", codec.CanDo, "reverse", []string{"reverse"}, nil},
		{"can_do empty", codec.CanDo, "", []string{""}, nil},
		{"can_do remainder", codec.CanDo, "fn\x00x", []string{"fn\x00x"}, nil},
		{"can_do_timeout", codec.CanDoTimeout, "fn\x001000", []string{"fn", "1000"}, nil},
		{"can_do_timeout missing", codec.CanDoTimeout, "fn", nil, codec.ErrMissingArgs},
		{"echo empty", codec.EchoReq, "", []string{""}, nil},
		{"echo NULs", codec.EchoReq, "\x00\x00", []string{"\x00\x00"}, nil},
		{"error", codec.Error, "CODE\x00text", []string{"CODE", "text"}, nil},
		{"status_res", codec.StatusRes, "h\x001\x000\x003\x004", []string{"h", "1", "0", "3", "4"}, nil},
		{"status_res_unique", codec.StatusResUnique, "u\x001\x000\x003\x004\x005", []string{"u", "1", "0", "3", "4", "5"}, nil},
		{"option", codec.OptionReq, "exceptions", []string{"exceptions"}, nil},
		{"grab_job ignores body", codec.GrabJob, "junk\x00junk", []string{}, nil},
		{"pre_sleep", codec.PreSleep, "", []string{}, nil},
		{"noop", codec.Noop, "", []string{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := req(tc.typ, tc.body)
			p, n, err := codec.Parse(in, 0)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || n != 0 {
					t.Fatalf("Parse = n %d err %v, want n 0 err %v", n, err, tc.err)
				}
				if p.Type != tc.typ {
					t.Errorf("Type on error = %v, want %v", p.Type, tc.typ)
				}
				return
			}
			if err != nil || n != len(in) {
				t.Fatalf("Parse = n %d err %v, want n %d", n, err, len(in))
			}
			if p.Type != tc.typ || p.NArgs != len(tc.want) {
				t.Fatalf("Type %v NArgs %d, want %v %d", p.Type, p.NArgs, tc.typ, len(tc.want))
			}
			if got := args(&p); !equalStrings(got, tc.want) {
				t.Errorf("args = %q, want %q", got, tc.want)
			}
			for i := range tc.want {
				if string(p.Arg(i)) != tc.want[i] {
					t.Errorf("Arg(%d) = %q", i, p.Arg(i))
				}
			}
		})
	}
}

// TestParseArgsStayInBody checks that a body short of NULs is an error even when the bytes
// after it (the next packet) contain NULs: gearmand reads on into the next packet here.
func TestParseArgsStayInBody(t *testing.T) {
	in := req(codec.SubmitJob, "fn")
	in = append(in, req(codec.SubmitJob, "fn\x00u\x00data")...)
	_, n, err := codec.Parse(in, 0)
	if !errors.Is(err, codec.ErrMissingArgs) || n != 0 {
		t.Fatalf("Parse = n %d err %v, want ErrMissingArgs", n, err)
	}
}

// TestParseAliases checks the zero-copy promise: arguments point into the input.
func TestParseAliases(t *testing.T) {
	in := req(codec.SubmitJob, "fn\x00uniq\x00data")
	p, _, err := codec.Parse(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	in[codec.HeaderSize] = 'F'
	in[len(in)-1] = 'A'
	if string(p.Args[0]) != "Fn" || string(p.Args[2]) != "datA" || string(p.Body) != "Fn\x00uniq\x00datA" {
		t.Errorf("args do not alias the input: %q %q", p.Args[0], p.Args[2])
	}
}

func TestParseResponseMagic(t *testing.T) {
	in := raw(codec.MagicRes, uint32(codec.JobCreated), 7, "H:h:123")
	p, n, err := codec.Parse(in, 0)
	if err != nil || n != len(in) {
		t.Fatalf("Parse = n %d err %v", n, err)
	}
	if !p.Response || p.Type != codec.JobCreated || string(p.Arg(0)) != "H:h:123" {
		t.Errorf("got Response %v Type %v arg %q", p.Response, p.Type, p.Arg(0))
	}
	p, _, _ = codec.Parse(req(codec.JobCreated, "H"), 0)
	if p.Response {
		t.Errorf("\\0REQ packet parsed as Response")
	}
}

func TestParseBadMagic(t *testing.T) {
	full := [][]byte{
		raw([4]byte{0, 'X', 'Y', 'Z'}, 7, 0, ""),
		raw([4]byte{0, 'r', 'e', 'q'}, 7, 0, ""),
		raw([4]byte{0, 'R', 'E', 'X'}, 7, 0, ""),
		raw([4]byte{0, 'R', 'E', 0}, 7, 0, ""),
		raw([4]byte{0, 0, 0, 0}, 7, 0, ""),
	}
	for _, in := range full {
		p, n, err := codec.Parse(in, 0)
		if !errors.Is(err, codec.ErrBadMagic) || n != 0 {
			t.Errorf("Parse(%q) = n %d err %v, want ErrBadMagic", in, n, err)
		}
		if p.Type != 0 {
			t.Errorf("Parse(%q): Type %v set for unreadable header", in, p.Type)
		}
	}
	// Detected from a short prefix: no need to wait for a whole header.
	for _, in := range []string{"\x00X", "\x00\x00", "\x00RX", "\x00REX", "\x00RE\x00", "\x00X\x00\x00\x00\x07"} {
		_, n, err := codec.Parse([]byte(in), 0)
		if !errors.Is(err, codec.ErrBadMagic) || n != 0 {
			t.Errorf("Parse(%q) = n %d err %v, want ErrBadMagic", in, n, err)
		}
	}
	// Prefixes of a good magic are only incomplete.
	for _, in := range []string{"\x00", "\x00R", "\x00RE", "\x00REQ", "\x00RES", "\x00REQ\x00\x00\x00\x07\x00\x00\x00"} {
		_, n, err := codec.Parse([]byte(in), 0)
		if err != nil || n != 0 {
			t.Errorf("Parse(%q) = n %d err %v, want incomplete", in, n, err)
		}
	}
}

func TestParseUnknownType(t *testing.T) {
	for _, typ := range []uint32{0, uint32(codec.MaxType) + 1, 100, 1 << 31, ^uint32(0)} {
		// A header alone must suffice, and the announced body must not be waited for.
		for _, in := range [][]byte{raw(codec.MagicReq, typ, 0, ""), raw(codec.MagicRes, typ, 1000, "x")} {
			p, n, err := codec.Parse(in, 0)
			if !errors.Is(err, codec.ErrUnknownType) || n != 0 {
				t.Errorf("type %d: Parse = n %d err %v, want ErrUnknownType", typ, n, err)
			}
			if uint32(p.Type) != typ {
				t.Errorf("type %d: pkt.Type = %d, want it set for the caller", typ, p.Type)
			}
		}
		if _, ok := codec.Spec(codec.Type(typ)); ok {
			t.Errorf("Spec(%d) ok", typ)
		}
		if s := codec.Type(typ).String(); s != "UNKNOWN" {
			t.Errorf("Type(%d).String() = %q", typ, s)
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	tests := []struct {
		maxBody uint32
		size    uint32
		err     error
	}{
		{100, 101, codec.ErrTooLarge},
		{100, 100, nil},
		{1, 2, codec.ErrTooLarge},
		{0, codec.DefaultMaxPacket + 1, codec.ErrTooLarge},
		{0, codec.DefaultMaxPacket, nil},
		{0, ^uint32(0), codec.ErrTooLarge},
		{1 << 20, ^uint32(0), codec.ErrTooLarge},
		{^uint32(0), ^uint32(0), nil},
	}
	for _, tc := range tests {
		// Only the header: the limit is enforced before any body byte arrives.
		in := raw(codec.MagicReq, uint32(codec.SubmitJob), tc.size, "")
		p, n, err := codec.Parse(in, tc.maxBody)
		if !errors.Is(err, tc.err) || n != 0 {
			t.Errorf("maxBody %d size %d: Parse = n %d err %v, want err %v", tc.maxBody, tc.size, n, err, tc.err)
		}
		if tc.err != nil && p.Type != codec.SubmitJob {
			t.Errorf("maxBody %d size %d: Type %v not set on ErrTooLarge", tc.maxBody, tc.size, p.Type)
		}
	}
	// A body of exactly maxBody parses.
	in := req(codec.EchoReq, strings.Repeat("x", 100))
	if _, n, err := codec.Parse(in, 100); err != nil || n != len(in) {
		t.Errorf("body == maxBody: n %d err %v", n, err)
	}
	if _, _, err := codec.Parse(in, 99); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("body == maxBody+1: err %v", err)
	}
}

// TestParseIncomplete feeds every proper prefix of valid input: each must say "need more".
func TestParseIncomplete(t *testing.T) {
	inputs := [][]byte{
		req(codec.SubmitJob, "reverse\x00uuid\x00some data\x00with NULs"),
		req(codec.GrabJob, ""),
		req(codec.PreSleep, "ignored"),
		req(codec.EchoReq, ""),
		req(codec.WorkStatus, "H:h:1\x001\x002"),
		req(codec.SubmitReduceJob, "fn\x00u\x00r\x00\x00d"),
		res(codec.JobAssignAll, "H:1\x00f\x00u\x00r\x00dd"),
		[]byte("status\n"),
		[]byte("maxqueue fn 1 2 3\r\n"),
		[]byte("\n"),
		[]byte("\r\n"),
		[]byte(strings.Repeat("w", codec.MaxTextLine-1) + "\n"),
	}
	for _, in := range inputs {
		for i := 0; i < len(in); i++ {
			p, n, err := codec.Parse(in[:i], 0)
			if n != 0 || err != nil {
				t.Fatalf("Parse(%q[:%d]) = n %d err %v, want incomplete", in, i, n, err)
			}
			if p.NArgs != 0 || p.Text || p.Line != nil || p.Body != nil {
				t.Fatalf("Parse(%q[:%d]) filled a packet for incomplete input", in, i)
			}
		}
		if _, n, err := codec.Parse(in, 0); n != len(in) || err != nil {
			t.Fatalf("Parse(%q) = n %d err %v, want n %d", in, n, err, len(in))
		}
	}
}

func TestParseText(t *testing.T) {
	tests := []struct {
		in   string
		line string
		n    int
	}{
		{"status\n", "status", 7},
		{"status\r\n", "status", 8},
		{"workers\nstatus\n", "workers", 8},
		{"\n", "", 1},
		{"\r\n", "", 2},
		{"\r\r\n", "\r", 3},
		{"a\rb\n", "a\rb", 4},
		{"maxqueue fn 1 2 3\n", "maxqueue fn 1 2 3", 18},
		{"  version  \r\n", "  version  ", 13},
		{"with\x00nul\n\x00REQ", "with\x00nul", 9},
		{"\xff\xfe\n", "\xff\xfe", 3},
		{strings.Repeat("x", codec.MaxTextLine-1) + "\n", strings.Repeat("x", codec.MaxTextLine-1), codec.MaxTextLine},
		{strings.Repeat("x", codec.MaxTextLine-2) + "\r\n", strings.Repeat("x", codec.MaxTextLine-2), codec.MaxTextLine},
	}
	for _, tc := range tests {
		p, n, err := codec.Parse([]byte(tc.in), 0)
		if err != nil || n != tc.n {
			t.Errorf("Parse(%.20q) = n %d err %v, want n %d", tc.in, n, err, tc.n)
			continue
		}
		if !p.Text || string(p.Line) != tc.line || p.NArgs != 0 || p.Type != 0 {
			t.Errorf("Parse(%.20q) = Text %v Line %.20q NArgs %d Type %v", tc.in, p.Text, p.Line, p.NArgs, p.Type)
		}
		checkCapped(t, "Line", p.Line)
	}

	tooLong := []string{
		strings.Repeat("x", codec.MaxTextLine),                 // no newline within the limit
		strings.Repeat("x", codec.MaxTextLine) + "\n",          // newline one byte too late
		strings.Repeat("x", codec.MaxTextLine+100) + "\nok\n",  // far too late
		strings.Repeat("x", codec.MaxTextLine-1) + "\r" + "\n", // the \r counts toward the limit
	}
	for _, in := range tooLong {
		_, n, err := codec.Parse([]byte(in), 0)
		if !errors.Is(err, codec.ErrLineTooLong) || n != 0 {
			t.Errorf("Parse(%d-byte line) = n %d err %v, want ErrLineTooLong", len(in), n, err)
		}
	}
	// One byte under the limit without a newline is merely incomplete.
	if _, n, err := codec.Parse([]byte(strings.Repeat("x", codec.MaxTextLine-1)), 0); n != 0 || err != nil {
		t.Errorf("Parse(MaxTextLine-1 bytes) = n %d err %v, want incomplete", n, err)
	}
	if _, n, err := codec.Parse(nil, 0); n != 0 || err != nil {
		t.Errorf("Parse(nil) = n %d err %v", n, err)
	}
}

// TestParseSequence parses several packets back to back, binary and text interleaved, as a
// server does with one read buffer.
func TestParseSequence(t *testing.T) {
	type want struct {
		text bool
		typ  codec.Type
		args []string
		line string
	}
	var in []byte
	var wants []want
	add := func(b []byte, w want) {
		in = append(in, b...)
		wants = append(wants, w)
	}
	add(req(codec.CanDo, "reverse"), want{typ: codec.CanDo, args: []string{"reverse"}})
	add(req(codec.GrabJob, ""), want{typ: codec.GrabJob, args: []string{}})
	add([]byte("status\r\n"), want{text: true, line: "status"})
	add(req(codec.SubmitJob, "reverse\x00\x00abc"), want{typ: codec.SubmitJob, args: []string{"reverse", "", "abc"}})
	add([]byte("workers\n"), want{text: true, line: "workers"})
	add(req(codec.EchoReq, "\x00\x00"), want{typ: codec.EchoReq, args: []string{"\x00\x00"}})
	add(req(codec.WorkComplete, "H:h:1\x00done"), want{typ: codec.WorkComplete, args: []string{"H:h:1", "done"}})
	add(req(codec.PreSleep, ""), want{typ: codec.PreSleep, args: []string{}})
	add([]byte("\n"), want{text: true, line: ""})
	add(req(codec.SubmitJobEpoch, "f\x00u\x0099\x00d"), want{typ: codec.SubmitJobEpoch, args: []string{"f", "u", "99", "d"}})
	tail := req(codec.SubmitJob, "partial\x00")[:15]
	in = append(in, tail...)

	off := 0
	for i, w := range wants {
		p, n, err := codec.Parse(in[off:], 0)
		if err != nil || n == 0 {
			t.Fatalf("packet %d at %d: n %d err %v", i, off, n, err)
		}
		if p.Text != w.text {
			t.Fatalf("packet %d: Text %v, want %v", i, p.Text, w.text)
		}
		if w.text {
			if string(p.Line) != w.line {
				t.Errorf("packet %d: Line %q, want %q", i, p.Line, w.line)
			}
		} else if p.Type != w.typ || !equalStrings(args(&p), w.args) {
			t.Errorf("packet %d: %v %q, want %v %q", i, p.Type, args(&p), w.typ, w.args)
		}
		off += n
	}
	if _, n, err := codec.Parse(in[off:], 0); n != 0 || err != nil {
		t.Errorf("tail: n %d err %v, want incomplete", n, err)
	}
	if len(in)-off != len(tail) {
		t.Errorf("consumed %d bytes, want %d", off, len(in)-len(tail))
	}
}

func TestSplitAdmin(t *testing.T) {
	tests := []struct {
		line  string
		words []string
		err   error
	}{
		{"", nil, nil},
		{"   ", nil, nil},
		{"\t \t", nil, nil},
		{"status", []string{"status"}, nil},
		{"  status  ", []string{"status"}, nil},
		{"maxqueue fn 1 2 3", []string{"maxqueue", "fn", "1", "2", "3"}, nil},
		{"maxqueue   fn\t\t1  2 \t 3   ", []string{"maxqueue", "fn", "1", "2", "3"}, nil},
		{"cancel job H:host:1", []string{"cancel", "job", "H:host:1"}, nil},
		{"a b c d e f", []string{"a", "b", "c", "d", "e", "f"}, nil},
		{strings.Repeat("w ", codec.MaxAdminWords), strings.Fields(strings.Repeat("w ", codec.MaxAdminWords)), nil},
		{strings.Repeat(" w ", codec.MaxAdminWords+1), nil, codec.ErrTooManyWords},
		{"a\rb c", []string{"a\rb", "c"}, nil},
	}
	for _, tc := range tests {
		w, err := codec.SplitAdmin([]byte(tc.line))
		if !errors.Is(err, tc.err) {
			t.Errorf("SplitAdmin(%q) err %v, want %v", tc.line, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		var got []string
		for i := 0; i < w.N; i++ {
			got = append(got, string(w.Word(i)))
		}
		if !equalStrings(got, tc.words) {
			t.Errorf("SplitAdmin(%q) = %q, want %q", tc.line, got, tc.words)
		}
		if w.Word(w.N) != nil || w.Word(codec.MaxAdminWords) != nil {
			t.Errorf("SplitAdmin(%q): Word past N is not nil", tc.line)
		}
	}

	w, err := codec.SplitAdmin([]byte("STATUS Fn"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		i    int
		s    string
		want bool
	}{
		{0, "status", true}, {0, "STATUS", true}, {0, "Status", true}, {0, "statu", false},
		{0, "statuss", false}, {1, "fn", true}, {1, "FN", true}, {2, "", false}, {5, "x", false},
		{1, "status", false},
	} {
		if got := w.Is(c.i, c.s); got != c.want {
			t.Errorf("Is(%d, %q) = %v, want %v", c.i, c.s, got, c.want)
		}
	}
	// ASCII case only, like gearmand's strcasecmp: no Unicode folding, and distinct
	// invalid UTF-8 bytes are distinct.
	for _, c := range []struct{ line, s string }{
		{"\u017ftatus", "status"},    // LATIN SMALL LETTER LONG S folds to 's' in Unicode
		{"wor\u212aers", "workers"},  // KELVIN SIGN folds to 'k'
		{"\xff", "\xfe"},             // both decode to utf8.RuneError
		{"status\xc0", "STATUS\xe0"}, // Latin-1 case pair is not ASCII
	} {
		w, _ := codec.SplitAdmin([]byte(c.line))
		if w.Is(0, c.s) {
			t.Errorf("Is(%q, %q) = true, want false (ASCII case folding only)", c.line, c.s)
		}
	}
	empty, _ := codec.SplitAdmin(nil)
	if empty.N != 0 || empty.Is(0, "") {
		t.Errorf("empty line: N %d, Is(0, \"\") %v", empty.N, empty.Is(0, ""))
	}
}

// TestSplitAdminAliases: words point into the line (no copy).
func TestSplitAdminAliases(t *testing.T) {
	line := []byte("workers now")
	w, _ := codec.SplitAdmin(line)
	line[0] = 'W'
	if !bytes.Equal(w.Word(0), []byte("Workers")) {
		t.Errorf("word does not alias line: %q", w.Word(0))
	}
}

func TestPacketLen(t *testing.T) {
	pkt := codec.AppendRequest(nil, codec.SubmitJob, []byte("fn"), []byte("u"), []byte("data"))
	if got := codec.PacketLen(pkt); got != len(pkt) {
		t.Fatalf("PacketLen of a whole packet = %d, want %d", got, len(pkt))
	}
	if got := codec.PacketLen(pkt[:codec.HeaderSize]); got != len(pkt) {
		t.Fatalf("PacketLen of a bare header = %d, want %d", got, len(pkt))
	}
	bad := append([]byte("\x00XYZ"), pkt[4:]...)
	for _, in := range [][]byte{nil, pkt[:codec.HeaderSize-1], []byte("status\r\n........"), bad} {
		if got := codec.PacketLen(in); got != 0 {
			t.Fatalf("PacketLen(%q) = %d, want 0", in, got)
		}
	}
}
