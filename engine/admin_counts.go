package engine

import (
	"fmt"
	"strings"
	"time"
)

// Two admin listings of Spur's own, for tools on the Gearman port (spur top, spur jobs):
//
//	show stats     FUNCTION \t SUBMITTED \t COMPLETED \t FAILED \t RETRIED \t DEAD_LETTERED \n ... .\n
//	               each function's counters since its record was made (queue.Stats)
//	show jobs FN [N]  HANDLE \t STATE \t PRIORITY \t UNIQUE \t RUN_AT \t STARTED \t WORKER \n ... .\n
//	               FN's live jobs as Engine.Jobs orders them, the first N only when given
//	               (a positive number: what a cluster view asks, so that a listing costs the
//	               node no more than it shows); STATE queued|scheduled|running, RUN_AT and
//	               STARTED in RFC 3339, UTC ("-" when none), WORKER the fd `workers` shows
//	               ("-" unless running)
//
// Both leave out what the connection may not read, as every listing does.

func (e *Engine) statsText(readable func(string) bool) string {
	var b strings.Builder
	for _, f := range e.FunctionStats() {
		if !visible(readable, f.Name) {
			continue
		}
		st := &f.Stats
		writeAdminField(&b, f.Name)
		fmt.Fprintf(&b, "\t%d\t%d\t%d\t%d\t%d\n", st.Submitted, st.Completed, st.Failed, st.Retried, st.DeadLettered)
	}
	b.WriteString(".\n")
	return b.String()
}

func (s *Session) functionJobsText(fn string, limit int) string {
	var b strings.Builder
	for _, j := range s.e.Jobs(&s.who, fn, limit) {
		writeAdminField(&b, j.Handle)
		b.WriteByte('\t')
		b.WriteString(j.State.String())
		b.WriteByte('\t')
		b.WriteString(j.Priority.String())
		b.WriteByte('\t')
		writeAdminField(&b, j.Unique)
		worker := "-"
		if j.Worker >= 0 {
			worker = fmt.Sprint(j.Worker)
		}
		fmt.Fprintf(&b, "\t%s\t%s\t%s\n", timeField(j.RunAt), timeField(j.Started), worker)
	}
	b.WriteString(".\n")
	return b.String()
}

// positive reports whether w is a whole number above zero (digits only).
func positive(w []byte) bool {
	if len(w) == 0 || len(w) > 10 {
		return false
	}
	nonzero := false
	for _, c := range w {
		if c < '0' || c > '9' {
			return false
		}
		nonzero = nonzero || c != '0'
	}
	return nonzero
}

// timeField renders t for an admin listing as nanoTime does, "-" for the zero time.
func timeField(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return nanoTime(t.UnixNano())
}
