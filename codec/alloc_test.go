package codec_test

import (
	"bytes"
	"testing"

	"github.com/spur-gearman/spur/codec"
)

// Fixtures shared by the allocation tests and the benchmarks.
var (
	submitJobPkt = codec.AppendRequest(nil, codec.SubmitJob,
		[]byte("reverse"), []byte("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), bytes.Repeat([]byte("d"), 100))
	adminLine   = []byte("maxqueue reverse 10 20 30\r\n")
	badMagicPkt = []byte("\x00XYZ\x00\x00\x00\x07\x00\x00\x00\x00")
	jobHandle   = []byte("H:spur-host:1234567")
	jobFunction = []byte("reverse")
	jobData     = bytes.Repeat([]byte("x"), 100)

	sinkPkt   codec.Packet
	sinkWords codec.AdminWords
	sinkBool  bool
)

// TestZeroAlloc proves the design's "no allocation per packet" promise for the hot paths.
func TestZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	out := make([]byte, 0, 4096)
	line, _, _ := codec.Parse(adminLine, 0)
	tests := []struct {
		name string
		fn   func()
	}{
		{"Parse SUBMIT_JOB", func() {
			p, n, err := codec.Parse(submitJobPkt, 0)
			if n != len(submitJobPkt) || err != nil {
				panic("bad parse")
			}
			sinkPkt = p
		}},
		{"Parse text line", func() {
			p, n, err := codec.Parse(adminLine, 0)
			if n != len(adminLine) || err != nil {
				panic("bad parse")
			}
			sinkPkt = p
		}},
		{"Parse incomplete", func() {
			sinkPkt, _, _ = codec.Parse(submitJobPkt[:20], 0)
		}},
		{"Parse error", func() {
			sinkPkt, _, _ = codec.Parse(badMagicPkt, 0)
		}},
		{"Parse of a stack buffer", func() {
			// Parse's buf flows only to its result: a caller's local buffer may stay on
			// the stack as long as the packet does not outlive it.
			var stack [32]byte
			in := append(stack[:0], "\x00REQ\x00\x00\x00\x01\x00\x00\x00\x02fn"...)
			p, n, err := codec.Parse(in, 0)
			if n != len(in) || err != nil || string(p.Args[0]) != "fn" {
				panic("bad parse")
			}
		}},
		{"SplitAdmin", func() {
			w, err := codec.SplitAdmin(line.Line)
			if err != nil || w.N != 5 {
				panic("bad split")
			}
			sinkWords = w
		}},
		{"AdminWords.Is", func() {
			sinkBool = sinkWords.Is(0, "MAXQUEUE")
		}},
		{"AppendPacket JOB_ASSIGN", func() {
			out = codec.AppendPacket(out[:0], codec.JobAssign, jobHandle, jobFunction, jobData)
		}},
		{"AppendPacket JOB_CREATED", func() {
			out = codec.AppendPacket(out[:0], codec.JobCreated, jobHandle)
		}},
		{"AppendRequest SUBMIT_JOB", func() {
			out = codec.AppendRequest(out[:0], codec.SubmitJob, jobFunction, nil, jobData)
		}},
		{"AppendError", func() {
			out = codec.AppendError(out[:0], "JOB_NOT_FOUND", "Job does not exist on server")
		}},
		{"AppendStatusRes", func() {
			out = codec.AppendStatusRes(out[:0], jobHandle, true, true, 12345, 67890)
		}},
		{"AppendStatusResUnique", func() {
			out = codec.AppendStatusResUnique(out[:0], jobFunction, true, false, 1, 2, 3)
		}},
		{"AppendEmpty", func() {
			out = codec.AppendEmpty(out[:0], codec.Noop)
		}},
	}
	for _, tc := range tests {
		if got := testing.AllocsPerRun(1000, tc.fn); got != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, got)
		} else {
			t.Logf("%s: 0 allocations", tc.name)
		}
	}
}

func BenchmarkParseSubmitJob(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(submitJobPkt)))
	for b.Loop() {
		p, n, err := codec.Parse(submitJobPkt, 0)
		if n != len(submitJobPkt) || err != nil {
			b.Fatal("bad parse")
		}
		sinkPkt = p
	}
}

func BenchmarkParseText(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(adminLine)))
	for b.Loop() {
		p, n, err := codec.Parse(adminLine, 0)
		if n != len(adminLine) || err != nil {
			b.Fatal("bad parse")
		}
		sinkPkt = p
	}
}

func BenchmarkSplitAdmin(b *testing.B) {
	b.ReportAllocs()
	line := adminLine[:len(adminLine)-2]
	for b.Loop() {
		sinkWords, _ = codec.SplitAdmin(line)
	}
}

func BenchmarkAppendJobAssign(b *testing.B) {
	b.ReportAllocs()
	out := make([]byte, 0, 4096)
	b.SetBytes(int64(len(codec.AppendPacket(nil, codec.JobAssign, jobHandle, jobFunction, jobData))))
	for b.Loop() {
		out = codec.AppendPacket(out[:0], codec.JobAssign, jobHandle, jobFunction, jobData)
	}
}

func BenchmarkAppendStatusRes(b *testing.B) {
	b.ReportAllocs()
	out := make([]byte, 0, 4096)
	for b.Loop() {
		out = codec.AppendStatusRes(out[:0], jobHandle, true, true, 12345, 67890)
	}
}
