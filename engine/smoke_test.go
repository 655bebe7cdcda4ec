package engine

import (
	"testing"

	"github.com/spur-gearman/spur/codec"
)

func TestSmokeSubmitGrabComplete(t *testing.T) {
	addr := startServer(t, Config{})
	cl, w := dial(t, addr), dial(t, addr)
	w.canDo("rev")
	h := cl.submit(codec.SubmitJob, "rev", "u1", "hello")
	gh, fn, u, data := w.grab()
	if gh != h || fn != "rev" || u != "u1" || data != "hello" {
		t.Fatalf("assign %q %q %q %q", gh, fn, u, data)
	}
	w.send(codec.WorkComplete, h, "olleh")
	cl.expect(codec.WorkComplete, h, "olleh")
	if got := cl.admin("status"); got != "rev\t0\t0\t1\n.\n" {
		t.Fatalf("status %q", got)
	}
}
