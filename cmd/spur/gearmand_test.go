package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/cmd/spur/client"
)

// gearmandPath is Debian's C gearmand (gearman-job-server). Its absence fails the test.
const gearmandPath = "/usr/sbin/gearmand"

func TestAgainstGearmand(t *testing.T) {
	if _, err := os.Stat(gearmandPath); err != nil {
		t.Fatalf("C gearmand is needed (apt-get install gearman-job-server): %v", err)
	}
	port := startServer(t, gearmandPath, "-l", "stderr", "--verbose", "ERROR")
	w := dial(t, port)
	if _, err := w.NewWorker("rev-worker", "rev"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := dial(t, port).SubmitBackground("rev", "", []byte("x"), client.High, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var rows []functionRow
	eventually(t, "gearmand's status", func() bool {
		rows = decode[[]functionRow](t, ok(t, port, "status", "--json"))
		return len(rows) == 1 && rows[0].Workers == 1
	})
	if r := rows[0]; r.Function != "rev" || r.Total != 2 || r.Running != 0 || r.Queued == nil || r.Queued.High != 2 {
		t.Fatalf("status --json from gearmand: %+v", rows)
	}
	if f := row(ok(t, port, "status"), "rev"); !slices.Equal(f, []string{"rev", "2", "0", "2", "0", "0", "1"}) {
		t.Fatalf("status table from gearmand: %q", f)
	}
	ws := decode[[]workerRow](t, ok(t, port, "workers", "--json"))
	if len(ws) != 1 || ws[0].ClientID != "rev-worker" || !slices.Equal(ws[0].Functions, []string{"rev"}) {
		t.Fatalf("workers --json from gearmand: %+v", ws)
	}
	if out := ok(t, port, "workers"); !strings.Contains(out, "rev-worker") {
		t.Fatalf("workers table from gearmand:\n%s", out)
	}
	if out := ok(t, port, "version"); !strings.Contains(out, "server 1.1") {
		t.Fatalf("version from gearmand: %q", out)
	}
	// jobs FN falls back to the function's counts: gearmand has no `show jobs FN`.
	if out := ok(t, port, "jobs", "rev"); !strings.Contains(out, "rev: 2 jobs") {
		t.Fatalf("jobs rev from gearmand:\n%s", out)
	}
	// The cluster view of a gearmand: that one node, up, without a name.
	cl := decode[struct {
		Nodes []struct {
			Name string
			Up   bool
		}
		Sum struct{ Totals struct{ Queued int } }
	}](t, ok(t, port, "status", "--cluster", "--json"))
	if len(cl.Nodes) != 1 || !cl.Nodes[0].Up || cl.Nodes[0].Name != "" || cl.Sum.Totals.Queued != 2 {
		t.Errorf("status --cluster --json from gearmand: %+v", cl)
	}
	// Spur's own commands: a clear message, exit 1.
	for _, args := range [][]string{{"schedules"}, {"dead"}, {"pause", "rev"}, {"result", "H:x:1"}} {
		r := spur(t, port, "", args...)
		if r.code != 1 || !strings.Contains(r.err, "gearmand lacks Spur's own admin commands") {
			t.Errorf("spur %v against gearmand: %+v", args, r)
		}
	}
}
