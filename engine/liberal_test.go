package engine

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// Real worker libraries send results gearmand refuses, and die on the ERROR they get back
// (issue 9). These tests pin down what Spur accepts from a worker and when it stays silent.

// A WORK_COMPLETE, WORK_EXCEPTION, WORK_DATA or WORK_WARNING whose body is the handle alone
// (no NUL, no data) means empty data: Perl's Gearman::Worker sends it for a function that
// returns "" or "0".
func TestWorkResultHandleOnly(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	cl.send(codec.OptionReq, "exceptions")
	cl.expectBody(codec.OptionRes, "exceptions")
	w.canDo("empty")
	for _, typ := range []codec.Type{codec.WorkData, codec.WorkWarning, codec.WorkComplete} {
		h := cl.submit(codec.SubmitJob, "empty", "", "x")
		if hh, _, _, _ := w.grab(); hh != h {
			t.Fatalf("grabbed %q, want %q", hh, h)
		}
		w.write(rawPacket(codec.MagicReq, uint32(typ), []byte(h)))
		cl.expectBody(typ, h+"\x00")
		if typ != codec.WorkComplete {
			w.write(rawPacket(codec.MagicReq, uint32(codec.WorkComplete), []byte(h)))
			cl.expectBody(codec.WorkComplete, h+"\x00")
		}
		w.syncEcho() // no ERROR, connection open
	}
	h := cl.submit(codec.SubmitJob, "empty", "", "x")
	w.grab()
	w.write(rawPacket(codec.MagicReq, uint32(codec.WorkException), []byte(h)))
	cl.expectBody(codec.WorkException, h+"\x00")
	w.syncEcho()
	cl.send(codec.GetStatus, h)
	cl.expectBody(codec.StatusRes, protoStatus(h, "0", "0", "0", "0"))
}

// A result from the worker that held a job which was since cancelled by an admin, or ended by
// the worker's own earlier result, is dropped without a reply; a handle the connection never
// held still gets gearmand's JOB_NOT_FOUND, also from a worker that held others.
func TestLateResultsAreDroppedSilently(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	cl, w, adm := dial(t, addr), dial(t, addr), dial(t, addr)
	w.canDo("late")

	// Cancelled while running.
	h := cl.submit(codec.SubmitJobBg, "late", "", "x")
	w.grab()
	if got := adm.admin("cancel job " + h); got != "OK\r\n" {
		t.Fatalf("cancel job: %q", got)
	}
	w.send(codec.WorkStatus, h, "1", "2")
	w.send(codec.WorkComplete, h, "too late")
	w.send(codec.WorkFail, h)
	w.syncEcho()

	// Ended by its own WORK_EXCEPTION, then the WORK_FAIL Perl's worker sends after it.
	h = cl.submit(codec.SubmitJob, "late", "", "x")
	w.grab()
	w.send(codec.WorkException, h, "died")
	cl.expectBody(codec.WorkFail, h)
	w.send(codec.WorkFail, h)
	w.syncEcho()
	cl.expectNothing(50 * time.Millisecond)

	// Never held by this connection: JOB_NOT_FOUND, as gearmand.
	other := cl.submit(codec.SubmitJobBg, "late", "", "queued")
	w.send(codec.WorkComplete, other, "x")
	w.expectErrorPacket(codec.CodeJobNotFound, codec.ReplyWorkNotFound.Text)
	w.send(codec.WorkComplete, "H:test:"+strconv.Itoa(1<<30), "x")
	w.expectErrorPacket(codec.CodeJobNotFound, codec.ReplyWorkNotFound.Text)
	// The same number behind another prefix is not a handle this server issued.
	w.send(codec.WorkComplete, "H:other:1", "x")
	w.expectErrorPacket(codec.CodeJobNotFound, codec.ReplyWorkNotFound.Text)
}

// Arguments over the protocol's limits are refused with a clear ERROR and the connection stays
// usable.
func TestArgumentLimits(t *testing.T) {
	t.Parallel()
	addr := startServer(t, Config{})
	c, adm := dial(t, addr), dial(t, addr)
	fn := func(n int) string { return strings.Repeat("f", n) }
	cases := []struct {
		name  string
		typ   codec.Type
		args  []string
		reply *codec.Reply
	}{
		{"function name", codec.SubmitJobBg, []string{fn(codec.MaxFunctionSize + 1), "", "d"}, codec.ReplyFunctionTooLarge},
		{"CAN_DO name", codec.CanDo, []string{fn(codec.MaxFunctionSize + 1)}, codec.ReplyFunctionTooLarge},
		{"CANT_DO name", codec.CantDo, []string{fn(codec.MaxFunctionSize + 1)}, codec.ReplyFunctionTooLarge},
		{"CAN_DO_TIMEOUT name", codec.CanDoTimeout, []string{fn(codec.MaxFunctionSize + 1), "1000"}, codec.ReplyFunctionTooLarge},
		{"CAN_DO_TIMEOUT value", codec.CanDoTimeout, []string{"f", "1" + strings.Repeat("0", codec.MaxTimeoutSize)}, codec.ReplyTimeoutTooLarge},
		{"unique", codec.SubmitJob, []string{"f", fn(codec.MaxUniqueSize + 1), "d"}, codec.ReplyUniqueTooLarge},
		{"reducer", codec.SubmitReduceJob, []string{"f", "u", fn(codec.MaxUniqueSize + 1), "", "d"}, codec.ReplyReducerTooLarge},
		{"WORK_FAIL handle", codec.WorkFail, []string{fn(codec.MaxHandleSize + 1)}, codec.ReplyHandleTooLarge},
		{"WORK_COMPLETE handle", codec.WorkComplete, []string{fn(codec.MaxHandleSize + 1), "d"}, codec.ReplyHandleTooLarge},
		{"GET_STATUS_UNIQUE", codec.GetStatusUnique, []string{fn(codec.MaxUniqueSize + 1)}, codec.ReplyUniqueTooLarge},
	}
	for _, tc := range cases {
		c.send(tc.typ, tc.args...)
		c.expectErrorPacket(tc.reply.Code, tc.reply.Text)
		c.syncEcho()
	}
	// Nothing was created or registered.
	if got := adm.admin("status"); got != ".\n" {
		t.Fatalf("status %q after refused requests", got)
	}
	// At the limits, everything is accepted.
	c.canDo(fn(codec.MaxFunctionSize))
	c.send(codec.CanDoTimeout, "g", "0000000000000001000")
	c.syncEcho()
	if got := adm.admin("status"); got != fn(codec.MaxFunctionSize)+"\t0\t0\t1\ng\t0\t0\t1\n.\n" {
		t.Fatalf("status after registrations at the limits: %.80q", got)
	}
}
