package fuzz

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/spur-gearman/spur/codec"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz seed files from the seed lists")

type seed struct {
	name string
	data []byte
}

// reqPkt builds a request packet.
func reqPkt(t codec.Type, args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return codec.AppendRequest(nil, t, bs...)
}

// resPkt builds a response packet.
func resPkt(t codec.Type, args ...string) []byte {
	b := reqPkt(t, args...)
	copy(b, codec.MagicRes[:])
	return b
}

// header builds a bare header with any magic, type and declared length.
func header(magic string, t, size uint32) []byte {
	b := []byte(magic)
	b = binary.BigEndian.AppendUint32(b, t)
	return binary.BigEndian.AppendUint32(b, size)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// parseSeeds are realistic and malformed inputs for FuzzParse: a connection's byte stream.
func parseSeeds() []seed {
	data := "the quick brown fox\x00with a NUL"
	submit := reqPkt(codec.SubmitJob, "reverse", "uuid-1", data)
	return []seed{
		{"empty", nil},
		// Clients.
		{"submit_job", submit},
		{"submit_job_bg", reqPkt(codec.SubmitJobBg, "reverse", "", "payload")},
		{"submit_job_high", reqPkt(codec.SubmitJobHigh, "reverse", "u", "payload")},
		{"submit_job_high_bg", reqPkt(codec.SubmitJobHighBg, "reverse", "u", "payload")},
		{"submit_job_low", reqPkt(codec.SubmitJobLow, "reverse", "u", "payload")},
		{"submit_job_low_bg", reqPkt(codec.SubmitJobLowBg, "reverse", "u", "payload")},
		{"submit_job_epoch", reqPkt(codec.SubmitJobEpoch, "reverse", "u", "1700000000", "payload")},
		{"submit_job_sched", reqPkt(codec.SubmitJobSched, "reverse", "u", "1", "2", "3", "4", "5", "payload")},
		{"submit_reduce_job", reqPkt(codec.SubmitReduceJob, "map", "u", "reduce", "", "payload")},
		{"submit_reduce_job_background", reqPkt(codec.SubmitReduceJobBackground, "map", "u", "reduce", "", "p")},
		{"get_status", reqPkt(codec.GetStatus, "H:host:1")},
		{"get_status_unique", reqPkt(codec.GetStatusUnique, "uuid-1")},
		{"echo_req", reqPkt(codec.EchoReq, "ping\x00\x00pong")},
		{"echo_req_empty", reqPkt(codec.EchoReq)},
		{"option_req", reqPkt(codec.OptionReq, "exceptions")},
		{"set_client_id", reqPkt(codec.SetClientID, "client 7")},
		{"client_session", cat(
			reqPkt(codec.OptionReq, "exceptions"),
			submit,
			reqPkt(codec.GetStatus, "H:host:1"),
			[]byte("status\r\n"),
			reqPkt(codec.SubmitJobBg, "resize", "img-9", "\x89PNG\r\n\x1a\n\x00\x00"),
		)},
		// Workers.
		{"can_do", reqPkt(codec.CanDo, "reverse")},
		{"can_do_timeout", reqPkt(codec.CanDoTimeout, "reverse", "5000")},
		{"cant_do", reqPkt(codec.CantDo, "reverse")},
		{"reset_abilities", reqPkt(codec.ResetAbilities)},
		{"pre_sleep", reqPkt(codec.PreSleep)},
		{"grab_job", reqPkt(codec.GrabJob)},
		{"grab_job_uniq", reqPkt(codec.GrabJobUniq)},
		{"grab_job_all", reqPkt(codec.GrabJobAll)},
		{"work_status", reqPkt(codec.WorkStatus, "H:host:1", "50", "100")},
		{"work_data", reqPkt(codec.WorkData, "H:host:1", "partial\x00result")},
		{"work_warning", reqPkt(codec.WorkWarning, "H:host:1", "careful")},
		{"work_complete", reqPkt(codec.WorkComplete, "H:host:1", "xof nworb kciuq eht")},
		{"work_fail", reqPkt(codec.WorkFail, "H:host:1")},
		{"work_exception", reqPkt(codec.WorkException, "H:host:1", "boom")},
		{"worker_session", cat(
			reqPkt(codec.SetClientID, "worker-1"),
			reqPkt(codec.CanDo, "reverse"),
			reqPkt(codec.CanDoTimeout, "resize", "1000"),
			reqPkt(codec.PreSleep),
			reqPkt(codec.GrabJobUniq),
			reqPkt(codec.WorkStatus, "H:host:1", "1", "2"),
			reqPkt(codec.WorkComplete, "H:host:1", "done"),
			reqPkt(codec.GrabJob),
		)},
		// Server replies (a client-side reader parses these).
		{"res_job_created", resPkt(codec.JobCreated, "H:host:1")},
		{"res_noop_no_job", cat(resPkt(codec.Noop), resPkt(codec.NoJob))},
		{"res_job_assign", resPkt(codec.JobAssign, "H:host:1", "reverse", data)},
		{"res_job_assign_uniq", resPkt(codec.JobAssignUniq, "H:host:1", "reverse", "uuid-1", data)},
		{"res_job_assign_all", resPkt(codec.JobAssignAll, "H:host:1", "map", "uuid-1", "reduce", data)},
		{"res_status_res", codec.AppendStatusRes(nil, []byte("H:host:1"), true, true, 3, 10)},
		{"res_status_res_unique", codec.AppendStatusResUnique(nil, []byte("uuid-1"), true, false, 0, 0, 2)},
		{"res_error", codec.AppendError(nil, "INVALID_MAGIC", "Request magic expected")},
		{"res_work_fail_from_exception", codec.AppendPacket(nil, codec.WorkFail, []byte("H:host:1"), nil)},
		// Admin lines.
		{"admin_status", []byte("status\r\n")},
		{"admin_workers", []byte("workers\n")},
		{"admin_maxqueue", []byte("maxqueue fn 1 2 3\n")},
		{"admin_maxqueue_too_many_words", []byte("maxqueue fn 1 2 3 4\n")},
		{"admin_version_getpid", []byte("version\ngetpid\r\n")},
		{"admin_show_jobs", []byte("show jobs\nshow unique jobs\n")},
		{"admin_cancel_job", []byte("cancel job H:host:1\r\n")},
		{"admin_shutdown", []byte("shutdown graceful\n")},
		{"admin_partial", []byte("stat")},
		{"admin_empty_lines", []byte("\n\r\n\r\r\n")},
		{"admin_then_binary", cat([]byte("workers\n"), reqPkt(codec.GrabJob), []byte("status\n"))},
		// No MaxTextLine-sized seeds: codec's TestParseText covers that boundary, and 8 KiB
		// inputs make the fuzzer's minimization of their mutants stall for its whole
		// 60-second budget.
		// Partial and malformed packets.
		{"partial_header", submit[:7]},
		{"partial_body", submit[:len(submit)-5]},
		{"header_only", header("\x00REQ", uint32(codec.SubmitJob), 100)},
		{"bad_magic", header("\x00XYZ", uint32(codec.SubmitJob), 0)},
		{"bad_magic_short", []byte("\x00X")},
		{"bad_magic_lowercase", header("\x00req", uint32(codec.GrabJob), 0)},
		{"type_0", header("\x00REQ", 0, 0)},
		{"type_43", header("\x00REQ", uint32(codec.MaxType)+1, 0)},
		{"type_max_uint32", header("\x00REQ", ^uint32(0), 0)},
		{"too_large", header("\x00REQ", uint32(codec.SubmitJob), 0x7fffffff)},
		{"too_large_max_uint32", header("\x00REQ", uint32(codec.EchoReq), ^uint32(0))},
		{"submit_no_nul", cat(header("\x00REQ", uint32(codec.SubmitJob), 2), []byte("fn"))},
		{"submit_one_nul", cat(header("\x00REQ", uint32(codec.SubmitJob), 3), []byte("fn\x00"))},
		{"submit_no_nul_then_next", cat(header("\x00REQ", uint32(codec.SubmitJob), 2), []byte("fn"), submit)},
		{"reduce_three_args", cat(header("\x00REQ", uint32(codec.SubmitReduceJob), 9), []byte("f\x00u\x00r\x00dd"))},
		{"grab_job_with_body", cat(header("\x00REQ", uint32(codec.GrabJob), 4), []byte("junk"))},
		{"response_magic_request", resPkt(codec.SubmitJob, "fn", "", "x")},
		{"unused_type_5", reqPkt(5)},
		{"good_then_garbage", cat(reqPkt(codec.GrabJob), []byte("\x00\xff\xfe\xfd\x00\x00\x00\x07"))},
	}
}

// adminSeeds are inputs for FuzzSplitAdmin: admin lines without their line ending.
func adminSeeds() []seed {
	return []seed{
		{"empty", nil},
		{"spaces", []byte("   ")},
		{"status", []byte("status")},
		{"workers", []byte("workers")},
		{"version", []byte("version")},
		{"getpid", []byte("getpid")},
		{"verbose", []byte("verbose")},
		{"prioritystatus", []byte("prioritystatus")},
		{"show_jobs", []byte("show jobs")},
		{"show_unique_jobs", []byte("show unique jobs")},
		{"cancel_job", []byte("cancel job H:host:1")},
		{"shutdown_graceful", []byte("shutdown graceful")},
		{"maxqueue", []byte("maxqueue fn 1 2 3")},
		{"maxqueue_two", []byte("maxqueue fn 10")},
		{"maxqueue_too_many", []byte("maxqueue fn 1 2 3 4")},
		{"runs_of_blanks", []byte("  maxqueue \t fn\t\t1   2 3  ")},
		{"upper_case", []byte("STATUS")},
		{"carriage_return", []byte("status\r")},
		{"binary_bytes", []byte("\x00 \xff\t\x80 \u017ftatus")},
		{"seven_words", []byte("a b c d e f g")},
	}
}

// corpusFile is a seed in Go's fuzz corpus file format.
func corpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// TestSeedCorpus keeps testdata/fuzz in step with the seed lists: each seed must have its
// committed file. Other files (kept crashers) are left alone.
func TestSeedCorpus(t *testing.T) {
	for target, seeds := range map[string][]seed{
		"FuzzParse":      parseSeeds(),
		"FuzzSplitAdmin": adminSeeds(),
		"FuzzEngine":     engineSeeds(),
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			path := filepath.Join(dir, s.name)
			want := corpusFile(s.data)
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%v (run with -update-corpus)", err)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is stale (run with -update-corpus)", path)
			}
		}
	}
}
