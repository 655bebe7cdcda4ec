package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/cmd/spur/client"
	"github.com/spur-gearman/spur/engine"
)

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

func TestStatusTableAndJSON(t *testing.T) {
	port := startSpurd(t)
	c := dial(t, port)
	for _, p := range []client.Priority{client.High, client.Normal, client.Normal, client.Low} {
		if _, err := c.SubmitBackground("resize", "", []byte("x"), p, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	w := dial(t, port)
	if _, err := w.NewWorker("w1", "resize"); err != nil {
		t.Fatal(err)
	}

	out := ok(t, port, "status")
	if got, want := row(out, "resize"), []string{"resize", "4", "0", "1", "2", "1", "1"}; !slices.Equal(got, want) {
		t.Fatalf("status row %q, want %q:\n%s", got, want, out)
	}
	if !strings.HasPrefix(out, "FUNCTION") {
		t.Fatalf("no header:\n%s", out)
	}
	rows := decode[[]functionRow](t, ok(t, port, "status", "--json"))
	if len(rows) != 1 || rows[0].Function != "resize" || rows[0].Total != 4 || rows[0].Workers != 1 ||
		rows[0].Queued == nil || *rows[0].Queued != (queuedRow{1, 2, 1}) {
		t.Fatalf("status --json: %+v", rows)
	}
}

func TestWorkersAndDrain(t *testing.T) {
	port := startSpurd(t)
	w := dial(t, port)
	if _, err := w.NewWorker("image worker", "resize", "crop"); err != nil {
		t.Fatal(err)
	}
	var ws []workerRow
	eventually(t, "the worker listed", func() bool {
		ws = decode[[]workerRow](t, ok(t, port, "workers", "--json"))
		return len(ws) == 1
	})
	if ws[0].ClientID != "image worker" || !slices.Equal(ws[0].Functions, []string{"crop", "resize"}) || ws[0].Draining {
		t.Fatalf("workers --json: %+v", ws)
	}
	out := ok(t, port, "workers")
	if !strings.Contains(out, "image worker") || !strings.Contains(out, "crop resize") {
		t.Fatalf("workers table:\n%s", out)
	}
	if strings.Contains(ok(t, port, "workers", "--all"), "image worker") == false {
		t.Fatal("--all lost the worker")
	}
	if got := ok(t, port, "drain", ws[0].ID); !strings.Contains(got, "draining worker "+ws[0].ID) {
		t.Fatalf("drain: %q", got)
	}
	// Idle, the drained worker is disconnected.
	eventually(t, "the drained worker gone", func() bool {
		return len(decode[[]workerRow](t, ok(t, port, "workers", "--json"))) == 0
	})
	if r := spur(t, port, "", "drain", "999999"); r.code != 1 || !strings.Contains(r.err, "UNKNOWN_WORKER") {
		t.Fatalf("drain of no worker: %+v", r)
	}
}

func TestJobsAndCancel(t *testing.T) {
	port := startSpurd(t)
	c := dial(t, port)
	h, err := c.SubmitBackground("mail", "u1", []byte("x"), client.Normal, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	later, err := c.SubmitBackground("mail", "u2", nil, client.Normal, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	jobs := decode[[]jobRow](t, ok(t, port, "jobs", "--json"))
	if len(jobs) != 2 || jobs[0].Handle != h && jobs[1].Handle != h {
		t.Fatalf("jobs --json: %+v", jobs)
	}
	if r := row(ok(t, port, "jobs"), h); len(r) != 4 || r[1] != "0" || r[2] != "no" {
		t.Fatalf("jobs row %q", r)
	}
	fj := decode[[]functionJobRow](t, ok(t, port, "jobs", "mail", "--json"))
	if len(fj) != 2 || fj[0].Handle != h || fj[0].State != "queued" || fj[0].Unique != "u1" ||
		fj[1].Handle != later || fj[1].State != "scheduled" || fj[1].RunAt == "-" {
		t.Fatalf("jobs mail --json: %+v", fj)
	}
	if r := row(ok(t, port, "jobs", "mail"), later); len(r) != 7 || r[1] != "scheduled" || r[3] != "u2" {
		t.Fatalf("jobs mail row %q", r)
	}
	if got := ok(t, port, "cancel", h); !strings.Contains(got, "cancelled "+h) {
		t.Fatalf("cancel: %q", got)
	}
	if r := spur(t, port, "", "cancel", h+"x"); r.code != 1 || !strings.Contains(r.err, "UNKNOWN_JOB") {
		t.Fatalf("cancel of no job: %+v", r)
	}
}

func TestPauseResumeLimit(t *testing.T) {
	port := startSpurd(t)
	ok(t, port, "pause", "resize")
	if got := admin(t, port, "show paused"); !slices.Equal(got, []string{"resize"}) {
		t.Fatalf("show paused after pause: %q", got)
	}
	ok(t, port, "resume", "resize")
	if got := admin(t, port, "show paused"); len(got) != 0 {
		t.Fatalf("show paused after resume: %q", got)
	}
	ok(t, port, "limit", "resize", "3")
	if got := admin(t, port, "show limits"); !slices.Equal(got, []string{"resize\t3\t0"}) {
		t.Fatalf("show limits: %q", got)
	}
	if r := spur(t, port, "", "limit", "resize", "many"); r.code != 2 {
		t.Fatalf("limit with a bad number: %+v", r)
	}
}

func TestResult(t *testing.T) {
	port := startSpurd(t)
	c := dial(t, port)
	h, err := c.SubmitBackground("resize", "img-42", []byte("in"), client.Normal, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := dial(t, port).NewWorker("", "resize")
	if err != nil {
		t.Fatal(err)
	}
	j, err := w.Next(make(chan struct{}))
	if err != nil || j.Handle != h {
		t.Fatalf("grab: %v %+v", err, j)
	}
	if err := w.Complete(j, []byte("ok:640x480")); err != nil {
		t.Fatal(err)
	}
	var r result
	eventually(t, "the result kept", func() bool { r = spur(t, port, "", "result", h); return r.code == 0 })
	if f := row(r.out, h); len(f) != 8 || f[3] != "complete" || f[7] != "ok:640x480" {
		t.Fatalf("result row %q:\n%s", f, r.out)
	}
	res := decode[resultRow](t, ok(t, port, "result", "resize", "img-42", "--json"))
	if res.Handle != h || res.Outcome != "complete" || res.Data != "ok:640x480" || res.Attempts != 1 {
		t.Fatalf("result --json by unique: %+v", res)
	}
	if r := spur(t, port, "", "result", "H:none:1"); r.code != 1 || !strings.Contains(r.err, "no result") {
		t.Fatalf("result of nothing: %+v", r)
	}
}

func TestSchedules(t *testing.T) {
	port := startSpurd(t)
	h := strings.TrimSpace(ok(t, port, "schedules", "add", "cleanup", "0 4 * * *", "--tz", "Europe/Berlin", "--data", `{"older_than": "30d"}`))
	if !strings.HasPrefix(h, "H:") {
		t.Fatalf("schedules add printed %q", h)
	}
	h2 := strings.TrimSpace(ok(t, port, "schedules", "add", "digest", "*/15", "8-18", "*", "*", "MON-FRI", "--unique", "digest", "--priority", "high"))
	list := decode[[]scheduleRow](t, ok(t, port, "schedules", "--json"))
	if len(list) != 2 {
		t.Fatalf("schedules --json: %+v", list)
	}
	byHandle := map[string]scheduleRow{}
	for _, s := range list {
		byHandle[s.Handle] = s
	}
	if s := byHandle[h]; s.Function != "cleanup" || s.Spec != "0 4 * * *" || s.Zone != "Europe/Berlin" || s.State != "active" {
		t.Fatalf("cleanup schedule: %+v", s)
	}
	if s := byHandle[h2]; s.Priority != "high" || s.Unique != "digest" || s.Spec != "*/15 8-18 * * 1-5" {
		t.Fatalf("digest schedule: %+v", s)
	}
	ok(t, port, "schedules", "pause", h)
	if f := row(ok(t, port, "schedules", "list"), h); f == nil || f[len(f)-1] != "paused" {
		t.Fatalf("paused schedule row %q", f)
	}
	ok(t, port, "schedules", "resume", h)
	ok(t, port, "schedules", "run", h)
	eventually(t, "the run queued", func() bool {
		return row(ok(t, port, "status"), "cleanup") != nil
	})
	ok(t, port, "schedules", "delete", h2)
	if list := decode[[]scheduleRow](t, ok(t, port, "schedules", "--json")); len(list) != 1 || list[0].Handle != h {
		t.Fatalf("after delete: %+v", list)
	}
	if r := spur(t, port, "", "schedules", "add", "x", "0 4 *"); r.code != 2 {
		t.Fatalf("bad spec: %+v", r)
	}
	if r := spur(t, port, "", "schedules", "pause", "H:none:9"); r.code != 1 {
		t.Fatalf("pause of no schedule: %+v", r)
	}
}

// failToDeath makes one dead letter of fn: a retry policy of one attempt, a job, a worker
// that fails it.
func failToDeath(t *testing.T, port, fn string) string {
	t.Helper()
	admin(t, port, "retry "+fn+" 1 1 1")
	h, err := dial(t, port).SubmitBackground(fn, "", []byte("x"), client.Normal, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := dial(t, port).NewWorker("", fn)
	if err != nil {
		t.Fatal(err)
	}
	j, err := w.Next(make(chan struct{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Exception(j, []byte("corrupt JPEG")); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestDead(t *testing.T) {
	port := startSpurd(t)
	h := failToDeath(t, port, "resize")
	var dead []deadRow
	eventually(t, "the dead letter", func() bool {
		dead = decode[[]deadRow](t, ok(t, port, "dead", "--json"))
		return len(dead) == 1
	})
	if d := dead[0]; d.Handle != h || d.Function != "resize" || d.Outcome != "exception" || d.LastError != "corrupt JPEG" || d.Attempts != 1 {
		t.Fatalf("dead --json: %+v", d)
	}
	if f := row(ok(t, port, "dead", "list", "resize"), h); f == nil {
		t.Fatalf("dead list resize lacks %s", h)
	}
	if len(decode[[]deadRow](t, ok(t, port, "dead", "other", "--json"))) != 0 {
		t.Fatal("dead of another function is not empty")
	}
	ok(t, port, "dead", "retry", h)
	eventually(t, "the job queued again", func() bool {
		f := row(ok(t, port, "status"), "resize")
		return f != nil && f[1] == "1"
	})
	if len(decode[[]deadRow](t, ok(t, port, "dead", "--json"))) != 0 {
		t.Fatal("a retried dead letter is still listed")
	}
	h2 := failToDeath(t, port, "crop")
	eventually(t, "crop's dead letter", func() bool { return row(ok(t, port, "dead"), h2) != nil })
	ok(t, port, "dead", "purge", "crop")
	if len(decode[[]deadRow](t, ok(t, port, "dead", "--json"))) != 0 {
		t.Fatal("purged dead letters are still listed")
	}
	if r := spur(t, port, "", "dead", "retry"); r.code != 2 {
		t.Fatalf("dead retry without a handle: %+v", r)
	}
}

func TestVersion(t *testing.T) {
	if version != engine.Version {
		t.Fatalf("the CLI's version %q is not the server's %q", version, engine.Version)
	}
	port := startSpurd(t)
	if out := ok(t, port, "version"); out != "spur "+version+"\nserver "+engine.Version+"\n" {
		t.Fatalf("version: %q", out)
	}
}

func TestExitCodes(t *testing.T) {
	port := startSpurd(t)
	dead := freePort(t) // nothing listens there
	for _, c := range []struct {
		name string
		args []string
		port string
		code int
		says string
	}{
		{"cannot connect", []string{"status"}, dead, 3, "connection refused"},
		{"ERR line", []string{"cancel", "H:none:1"}, port, 1, "the server answered UNKNOWN_JOB"},
		{"unknown command", []string{"bogus"}, port, 2, "unknown command"},
		{"bad flag", []string{"status", "--bogus"}, port, 2, "unknown flag"},
		{"too many arguments", []string{"status", "x"}, port, 2, "Run 'spur --help'"},
		{"bad priority", []string{"submit", "fn", "--priority", "urgent", "x"}, port, 2, "want high, normal or low"},
		{"--at and --in", []string{"submit", "fn", "--at", "1", "--in", "1h", "x"}, port, 2, "give one"},
		{"no command for work", []string{"work", "fn"}, port, 2, "CMD"},
	} {
		r := spur(t, c.port, "", c.args...)
		if r.code != c.code || !strings.Contains(r.err, c.says) {
			t.Errorf("%s: exit %d (want %d), stderr %q (want %q)", c.name, r.code, c.code, r.err, c.says)
		}
	}
	// A server that accepts but never answers: the timeout gives 3.
	l := silentListener(t)
	if r := spur(t, l, "", "--timeout", "300ms", "status"); r.code != 3 || !strings.Contains(r.err, "--timeout") {
		t.Errorf("silent server: %+v", r)
	}
	// -h is the host; --help is help.
	if r := spur(t, port, "", "--help"); r.code != 0 || !strings.Contains(r.out, "Exit codes") {
		t.Errorf("--help: %+v", r)
	}
}

func TestShellCompletion(t *testing.T) {
	out := ok(t, "1", "completion", "bash")
	if !strings.Contains(out, "__start_spur") {
		t.Fatalf("no bash completion script:\n%.200s", out)
	}
}
