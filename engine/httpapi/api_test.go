package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/acl"
)

func TestStatusFunctionsAndJobs(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	for i, p := range []string{"high", "normal", "normal", "low"} {
		do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "resize", "data": "img" + string(rune('0'+i)), "priority": p, "background": true}}).
			want(t, 201, "")
	}
	w := worker(t, e, 7, "resize")
	job := w.grab()
	if job.args[3] != "img0" {
		t.Fatalf("the high job was not first: %q", job.args)
	}
	r := do(t, h, call{method: "GET", path: "/api/status"}).want(t, 200, "")
	if r.get("version") != engine.Version || r.get("totals", "queued") != 3.0 || r.get("totals", "running") != 1.0 || r.get("totals", "workers") != 1.0 {
		t.Fatalf("status: %s", r.raw)
	}
	fns := r.list("functions")
	if len(fns) != 1 || r.get("functions", 0, "name") != "resize" || r.get("functions", 0, "queued", "normal") != 2.0 ||
		r.get("functions", 0, "queued", "low") != 1.0 || r.get("functions", 0, "running") != 1.0 || r.get("functions", 0, "total") != 4.0 {
		t.Fatalf("functions: %s", r.raw)
	}
	f := do(t, h, call{method: "GET", path: "/api/functions/resize"}).want(t, 200, "")
	if f.get("workers") != 1.0 || f.get("total") != 4.0 {
		t.Fatalf("function: %s", f.raw)
	}
	do(t, h, call{method: "GET", path: "/api/functions/nothing"}).want(t, 404, "NOT_FOUND")

	jobs := do(t, h, call{method: "GET", path: "/api/functions/resize/jobs"}).want(t, 200, "")
	l := jobs.list("jobs")
	if len(l) != 4 || jobs.get("jobs", 0, "state") != "running" || jobs.get("jobs", 0, "worker") != 7.0 ||
		jobs.get("jobs", 0, "handle") != job.args[0] || jobs.get("jobs", 0, "started_at") == nil ||
		jobs.get("jobs", 1, "state") != "queued" || jobs.get("jobs", 1, "priority") != "normal" ||
		jobs.get("jobs", 3, "priority") != "low" || jobs.get("jobs", 1, "worker") != nil {
		t.Fatalf("jobs: %s", jobs.raw)
	}
	if l := do(t, h, call{method: "GET", path: "/api/functions/resize/jobs?limit=2"}).list("jobs"); len(l) != 2 {
		t.Fatalf("limit=2 gave %d jobs", len(l))
	}
	do(t, h, call{method: "GET", path: "/api/functions/resize/jobs?limit=x"}).want(t, 400, "BAD_REQUEST")

	// One job by handle (GET_STATUS): running, with its status.
	w.send(codec.WorkStatus, job.args[0], "3", "10")
	js := do(t, h, call{method: "GET", path: "/api/jobs/" + job.args[0]}).want(t, 200, "")
	if js.get("known") != true || js.get("running") != true || js.get("numerator") != 3.0 || js.get("denominator") != 10.0 || js.get("function") != "resize" {
		t.Fatalf("job: %s", js.raw)
	}
	// Once it ends, its kept result comes instead.
	w.send(codec.WorkComplete, job.args[0], "done")
	js = do(t, h, call{method: "GET", path: "/api/jobs/" + job.args[0]}).want(t, 200, "")
	if js.get("known") != false || js.get("result", "outcome") != "complete" || js.get("result", "data") != "done" {
		t.Fatalf("ended job: %s", js.raw)
	}
	do(t, h, call{method: "GET", path: "/api/jobs/H:api:999"}).want(t, 404, "NOT_FOUND")
}

func TestWorkersAndDrain(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	w := worker(t, e, 11, "a", "b")
	w.send(codec.SetClientID, "thumbnailer")
	client := newPeer(t, e, 12)
	client.send(codec.SubmitJob, "b", "", "x")
	client.must(codec.JobCreated)
	job := w.grab()
	time.Sleep(20 * time.Millisecond)
	r := do(t, h, call{method: "GET", path: "/api/workers"}).want(t, 200, "")
	if len(r.list("workers")) != 1 { // the client is left out
		t.Fatalf("workers: %s", r.raw)
	}
	if r.get("workers", 0, "id") != 11.0 || r.get("workers", 0, "client_id") != "thumbnailer" || r.get("workers", 0, "ip") != "127.0.0.1" ||
		r.get("workers", 0, "functions", 0) != "b" || r.get("workers", 0, "functions", 1) != "a" ||
		r.get("workers", 0, "running", 0, "handle") != job.args[0] || r.get("workers", 0, "draining") != false {
		t.Fatalf("workers: %s", r.raw)
	}
	if s, _ := r.get("workers", 0, "running", 0, "running_s").(float64); s < 0.015 {
		t.Fatalf("running_s %v", s)
	}
	// The admin text is made from the same listing, byte for byte as before.
	admin := newPeer(t, e, 13)
	if got := admin.admin("workers"); got != "11 127.0.0.1 thumbnailer : b a\n12 127.0.0.1 - :\n13 127.0.0.1 - :\n.\n" {
		t.Fatalf("workers text: %q", got)
	}
	do(t, h, call{method: "POST", path: "/api/workers/99/drain"}).want(t, 404, "NOT_FOUND")
	do(t, h, call{method: "POST", path: "/api/workers/11/drain"}).want(t, 200, "")
	if r := do(t, h, call{method: "GET", path: "/api/workers"}); r.get("workers", 0, "draining") != true {
		t.Fatalf("not draining: %s", r.raw)
	}
	w.send(codec.GrabJobUniq)
	if pk, _ := w.recv(time.Second); pk.typ != codec.NoJob {
		t.Fatalf("a drained worker got %v", pk.typ)
	}
	// Off loopback, without an ACL, drain is refused (gearmandRules).
	do(t, h, call{method: "POST", path: "/api/workers/11/drain", remote: "192.0.2.1:5000"}).want(t, 403, "PERMISSION_DENIED")
}

func TestSubmitForeground(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	w := worker(t, e, 5, "upper")
	got := make(chan reply, 1)
	go func() {
		got <- do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "upper", "data": "abc", "unique": "u1"}})
	}()
	job := w.grab()
	if job.args[2] != "u1" || job.args[3] != "abc" {
		t.Fatalf("assigned %q", job.args)
	}
	w.send(codec.WorkStatus, job.args[0], "1", "2")
	w.send(codec.WorkWarning, job.args[0], "careful")
	w.send(codec.WorkData, job.args[0], "AB")
	w.send(codec.WorkComplete, job.args[0], "C")
	r := (<-got).want(t, 200, "")
	if r.get("handle") != job.args[0] || r.get("outcome") != "complete" || r.get("data") != "ABC" ||
		r.get("warnings", 0, "data") != "careful" || r.get("status", "numerator") != 1.0 || r.get("status", "denominator") != 2.0 {
		t.Fatalf("foreground: %s", r.raw)
	}
	// Binary data comes back as base64; an exception is told.
	go func() {
		got <- do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "upper", "data_base64": "AP8="}})
	}()
	job = w.grab()
	if job.args[3] != "\x00\xff" {
		t.Fatalf("data_base64 decoded to %q", job.args[3])
	}
	w.send(codec.WorkException, job.args[0], "\xff\xfe")
	r = (<-got).want(t, 200, "")
	if r.get("outcome") != "exception" || r.get("data_base64") != "//4=" {
		t.Fatalf("exception: %s", r.raw)
	}
	go func() {
		got <- do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "upper"}})
	}()
	job = w.grab()
	w.send(codec.WorkFail, job.args[0])
	if r := (<-got).want(t, 200, ""); r.get("outcome") != "fail" {
		t.Fatalf("fail: %s", r.raw)
	}
	// A wait that runs out: 504 with the handle.
	start := time.Now()
	r = do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "nobody", "wait": 0.3}}).want(t, 504, "TIMEOUT")
	if h, _ := r.get("error", "handle").(string); !strings.HasPrefix(h, "H:api:") || time.Since(start) > 3*time.Second {
		t.Fatalf("timeout: %s after %v", r.raw, time.Since(start))
	}
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "x", "wait": 301}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "x", "in": 5}}).want(t, 400, "BAD_REQUEST")
}

func TestSubmitBackgroundScheduledCancel(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	at := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	a := do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "report", "unique": "daily", "background": true, "at": at.Format(time.RFC3339)}}).want(t, 201, "")
	b := do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "report", "background": true, "in": "90s", "priority": "high"}}).want(t, 201, "")
	c := do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "report", "background": true, "at": at.Unix() + 60}}).want(t, 201, "")
	s := do(t, h, call{method: "GET", path: "/api/scheduled"}).want(t, 200, "")
	if len(s.list("jobs")) != 3 || s.get("jobs", 0, "handle") != b.get("handle") || s.get("jobs", 0, "priority") != "high" ||
		s.get("jobs", 1, "handle") != a.get("handle") || s.get("jobs", 1, "run_at") != at.Format("2006-01-02T15:04:05.000Z") ||
		s.get("jobs", 1, "unique") != "daily" || s.get("jobs", 2, "handle") != c.get("handle") || s.get("jobs", 0, "schedule") != "" {
		t.Fatalf("scheduled: %s", s.raw)
	}
	if j := do(t, h, call{method: "GET", path: "/api/functions/report/jobs"}); j.get("jobs", 0, "state") != "scheduled" {
		t.Fatalf("jobs: %s", j.raw)
	}
	u := do(t, h, call{method: "GET", path: "/api/jobs?unique=daily"}).want(t, 200, "")
	if u.get("known") != true || u.get("function") != "report" {
		t.Fatalf("by unique: %s", u.raw)
	}
	do(t, h, call{method: "GET", path: "/api/jobs"}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "DELETE", path: "/api/jobs/" + a.get("handle").(string)}).want(t, 200, "")
	do(t, h, call{method: "DELETE", path: "/api/jobs/" + a.get("handle").(string)}).want(t, 404, "NOT_FOUND")
	do(t, h, call{method: "DELETE", path: "/api/jobs/" + b.get("handle").(string), remote: "192.0.2.9:1"}).want(t, 403, "PERMISSION_DENIED")
	if l := do(t, h, call{method: "GET", path: "/api/scheduled"}).list("jobs"); len(l) != 2 {
		t.Fatalf("after cancel: %d scheduled", len(l))
	}
	// The cancelled background job left its result.
	res := do(t, h, call{method: "GET", path: "/api/results/" + a.get("handle").(string)}).want(t, 200, "")
	if res.get("outcome") != "fail" || res.get("data") != "cancelled" || res.get("function") != "report" {
		t.Fatalf("result: %s", res.raw)
	}
	res = do(t, h, call{method: "GET", path: "/api/results?function=report&unique=daily"}).want(t, 200, "")
	if res.get("handle") != a.get("handle") {
		t.Fatalf("result by unique: %s", res.raw)
	}
	do(t, h, call{method: "GET", path: "/api/results/H:api:12345"}).want(t, 404, "NOT_FOUND")
	do(t, h, call{method: "GET", path: "/api/results?function=report"}).want(t, 400, "BAD_REQUEST")
}

func TestFunctionSettings(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	admin := newPeer(t, e, 3)
	do(t, h, call{method: "POST", path: "/api/functions/mail/pause"}).want(t, 200, "")
	if got := admin.admin("show paused"); got != "mail\n.\n" {
		t.Fatalf("show paused: %q", got)
	}
	do(t, h, call{method: "POST", path: "/api/functions/mail/resume"}).want(t, 200, "")
	if got := admin.admin("show paused"); got != ".\n" {
		t.Fatalf("show paused after resume: %q", got)
	}
	do(t, h, call{method: "PUT", path: "/api/functions/mail/limit", body: map[string]any{"limit": 4}}).want(t, 200, "")
	if got := admin.admin("show limits"); got != "mail\t4\t0\n.\n" {
		t.Fatalf("show limits: %q", got)
	}
	do(t, h, call{method: "PUT", path: "/api/functions/mail/limit", body: map[string]any{"limit": -1}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "PUT", path: "/api/functions/mail/limit", body: map[string]any{"limt": 1}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "PUT", path: "/api/functions/mail/retry", body: map[string]any{"attempts": 3, "base": "1s", "max": 60}}).want(t, 200, "")
	if got := admin.admin("show retries"); got != "mail\t3\t1s\t1m0s\n.\n" {
		t.Fatalf("show retries: %q", got)
	}
	do(t, h, call{method: "PUT", path: "/api/functions/mail/retry", body: map[string]any{"off": true}}).want(t, 200, "")
	if got := admin.admin("show retries"); got != ".\n" {
		t.Fatalf("show retries after off: %q", got)
	}
	do(t, h, call{method: "PUT", path: "/api/functions/mail/retry", body: map[string]any{"attempts": 3, "base": "2s", "max": "1s"}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "POST", path: "/api/functions/mail/pause", remote: "10.0.0.1:9"}).want(t, 403, "PERMISSION_DENIED")
	do(t, h, call{method: "PUT", path: "/api/functions/mail/limit", body: map[string]any{"limit": 1}, remote: "10.0.0.1:9"}).want(t, 403, "PERMISSION_DENIED")
}

func TestSchedules(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	r := do(t, h, call{method: "POST", path: "/api/schedules", body: map[string]any{"function": "backup", "spec": "0 3 * * *", "tz": "UTC", "data": "full"}}).want(t, 201, "")
	handle := r.get("handle").(string)
	l := do(t, h, call{method: "GET", path: "/api/schedules"}).want(t, 200, "")
	if l.get("schedules", 0, "handle") != handle || l.get("schedules", 0, "spec") != "0 3 * * *" || l.get("schedules", 0, "tz") != "UTC" ||
		l.get("schedules", 0, "paused") != false || l.get("schedules", 0, "next_run") == nil || l.get("schedules", 0, "last_run") != nil {
		t.Fatalf("schedules: %s", l.raw)
	}
	if s := do(t, h, call{method: "GET", path: "/api/scheduled"}); s.get("jobs", 0, "schedule") != "0 3 * * *" {
		t.Fatalf("scheduled: %s", s.raw)
	}
	do(t, h, call{method: "POST", path: "/api/schedules/" + handle + "/pause"}).want(t, 200, "")
	if l := do(t, h, call{method: "GET", path: "/api/schedules"}); l.get("schedules", 0, "paused") != true || l.get("schedules", 0, "next_run") != nil {
		t.Fatalf("paused: %s", l.raw)
	}
	do(t, h, call{method: "POST", path: "/api/schedules/" + handle + "/resume"}).want(t, 200, "")
	do(t, h, call{method: "POST", path: "/api/schedules/" + handle + "/run"}).want(t, 200, "")
	w := worker(t, e, 4, "backup")
	if job := w.grab(); job.args[3] != "full" {
		t.Fatalf("run now queued %q", job.args)
	}
	do(t, h, call{method: "DELETE", path: "/api/schedules/" + handle}).want(t, 200, "")
	do(t, h, call{method: "DELETE", path: "/api/schedules/" + handle}).want(t, 404, "NOT_FOUND")
	do(t, h, call{method: "POST", path: "/api/schedules/H:api:77/run"}).want(t, 404, "NOT_FOUND")
	do(t, h, call{method: "POST", path: "/api/schedules", body: map[string]any{"function": "backup", "spec": "61 * * * *"}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "POST", path: "/api/schedules", body: map[string]any{"function": "backup", "spec": "@daily", "tz": "Mars/Olympus"}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "POST", path: "/api/schedules", body: map[string]any{"function": "backup", "spec": "@daily"}, remote: "192.0.2.1:1"}).want(t, 403, "PERMISSION_DENIED")
}

func TestDeadLetters(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	do(t, h, call{method: "PUT", path: "/api/functions/pay/retry", body: map[string]any{"attempts": 1, "base": 1, "max": 1}}).want(t, 200, "")
	w := worker(t, e, 8, "pay")
	fail := func() string {
		job := w.grab()
		w.send(codec.WorkException, job.args[0], "card declined")
		return job.args[0]
	}
	var handles []string
	for _, d := range []string{"a", "b"} {
		do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "pay", "data": d, "background": true}}).want(t, 201, "")
		handles = append(handles, fail())
	}
	r := do(t, h, call{method: "GET", path: "/api/dead?function=pay"}).want(t, 200, "")
	if len(r.list("dead")) != 2 || r.get("dead", 0, "handle") != handles[0] || r.get("dead", 0, "error") != "card declined" ||
		r.get("dead", 0, "outcome") != "exception" || r.get("dead", 0, "attempts") != 1.0 || r.get("dead", 0, "data") != "a" ||
		r.get("dead", 0, "last_failed_at") == nil {
		t.Fatalf("dead: %s", r.raw)
	}
	if n := len(do(t, h, call{method: "GET", path: "/api/dead?function=other"}).list("dead")); n != 0 {
		t.Fatalf("dead of another function: %d", n)
	}
	if r := do(t, h, call{method: "POST", path: "/api/dead/" + handles[0] + "/retry"}).want(t, 200, ""); r.get("retried") != 1.0 {
		t.Fatalf("retry one: %s", r.raw)
	}
	do(t, h, call{method: "POST", path: "/api/dead/" + handles[0] + "/retry"}).want(t, 404, "NOT_FOUND")
	if h := fail(); h != handles[0] {
		t.Fatalf("the retried job is %s, want %s", h, handles[0])
	}
	if r := do(t, h, call{method: "POST", path: "/api/dead/retry", body: map[string]any{"function": "pay"}}).want(t, 200, ""); r.get("retried") != 2.0 {
		t.Fatalf("retry all: %s", r.raw)
	}
	fail()
	fail()
	do(t, h, call{method: "DELETE", path: "/api/dead?function=pay", remote: "192.0.2.1:1"}).want(t, 403, "PERMISSION_DENIED")
	if r := do(t, h, call{method: "DELETE", path: "/api/dead?function=pay"}).want(t, 200, ""); r.get("purged") != 2.0 {
		t.Fatalf("purge: %s", r.raw)
	}
	if n := len(do(t, h, call{method: "GET", path: "/api/dead"}).list("dead")); n != 0 {
		t.Fatalf("%d dead letters after purge", n)
	}
	do(t, h, call{method: "POST", path: "/api/dead/retry", body: map[string]any{}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "DELETE", path: "/api/dead"}).want(t, 400, "BAD_REQUEST")
}

func TestErrors(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{MaxBody: 1024})
	do(t, h, call{method: "GET", path: "/api/nothing"}).want(t, 404, "NOT_FOUND")
	r := do(t, h, call{method: "PATCH", path: "/api/status"}).want(t, 405, "METHOD_NOT_ALLOWED")
	if r.hdr.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	do(t, h, call{method: "POST", path: "/api/jobs", body: "{"}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "POST", path: "/api/jobs", body: ""}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "x", "background": true, "data": strings.Repeat("x", 2000)}}).want(t, 413, "TOO_LARGE")
	do(t, New(e, Options{}), call{method: "POST", path: "/api/jobs", body: map[string]any{"function": strings.Repeat("f", 9000), "background": true}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "x", "background": true, "priority": "urgent"}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "x", "data": "a", "data_base64": "YQ=="}}).want(t, 400, "BAD_REQUEST")
	do(t, h, call{method: "GET", path: "/api/status", token: "anything"}).want(t, 401, "UNAUTHORIZED")
	e.Drain()
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "x", "background": true}}).want(t, 503, "SHUTTING_DOWN")
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "x"}}).want(t, 503, "SHUTTING_DOWN")
}

func TestQueueFull(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	admin := newPeer(t, e, 3)
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "q", "background": true}}).want(t, 201, "")
	if got := admin.admin("maxqueue q 1"); got != "OK\r\n" {
		t.Fatalf("maxqueue: %q", got)
	}
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "q", "data": "2", "background": true}}).want(t, 503, "QUEUE_FULL")
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "q", "data": "3"}}).want(t, 503, "QUEUE_FULL")
}

func tokenLine(name, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "token " + name + " sha256:" + hex.EncodeToString(sum[:]) + "\n"
}

func TestTokensAndACL(t *testing.T) {
	rules, err := acl.Parse(strings.NewReader(tokenLine("ops", "ops-secret") + tokenLine("viewer", "view-secret") + `
[token:ops]
admin  pause resume status show workers
submit mail
status *
[token:viewer]
admin status show
status mail
[any]
admin status
[net:192.0.2.0/24]
submit *
`))
	if err != nil {
		t.Fatal(err)
	}
	auth := acl.NewAuthorizer(rules)
	e := newEngine(t, engine.Config{Authorizer: auth})
	h := New(e, Options{Tokens: auth})
	remote := "198.51.100.4:3000"
	ops := call{remote: remote, token: "ops-secret"}
	with := func(c call, method, path string, body any) call {
		c.method, c.path, c.body = method, path, body
		return c
	}
	viewer := call{remote: remote, token: "view-secret"}
	anon := call{remote: remote}

	me := do(t, h, with(ops, "GET", "/api/me", nil)).want(t, 200, "")
	if me.get("identity", "token") != "ops" || me.get("identity", "ip") != "198.51.100.4" || me.get("may", "pause") != true ||
		me.get("may", "purge") != false || me.get("may", "submit") != false {
		t.Fatalf("me: %s", me.raw)
	}
	if me := do(t, h, with(anon, "GET", "/api/me", nil)); me.get("identity", "token") != "" || me.get("may", "pause") != false {
		t.Fatalf("anonymous me: %s", me.raw)
	}
	do(t, h, with(call{remote: remote, token: "wrong"}, "GET", "/api/me", nil)).want(t, 401, "UNAUTHORIZED")
	do(t, h, with(ops, "POST", "/api/jobs", map[string]any{"function": "mail", "background": true})).want(t, 201, "")
	do(t, h, with(ops, "POST", "/api/jobs", map[string]any{"function": "billing", "background": true})).want(t, 403, "PERMISSION_DENIED")
	do(t, h, with(viewer, "POST", "/api/jobs", map[string]any{"function": "mail", "background": true})).want(t, 403, "PERMISSION_DENIED")
	do(t, h, with(viewer, "POST", "/api/jobs", map[string]any{"function": "mail"})).want(t, 403, "PERMISSION_DENIED")
	do(t, h, with(ops, "POST", "/api/functions/mail/pause", nil)).want(t, 200, "")
	do(t, h, with(viewer, "POST", "/api/functions/mail/resume", nil)).want(t, 403, "PERMISSION_DENIED")
	do(t, h, with(ops, "DELETE", "/api/dead?function=mail", nil)).want(t, 403, "PERMISSION_DENIED")
	do(t, h, with(ops, "GET", "/api/workers", nil)).want(t, 200, "")
	do(t, h, with(viewer, "GET", "/api/workers", nil)).want(t, 403, "PERMISSION_DENIED")
	// Listings leave out what the identity may not read.
	e.SubmitBackground(engine.SubmitRequest{Function: []byte("secret"), Data: []byte("x")}, &engine.Identity{IP: "192.0.2.1"}, func(_ string, err error) {
		if err != nil {
			t.Error(err)
		}
	})
	if n := len(do(t, h, with(ops, "GET", "/api/status", nil)).list("functions")); n != 2 {
		t.Fatalf("ops sees %d functions, want 2", n)
	}
	st := do(t, h, with(viewer, "GET", "/api/status", nil)).want(t, 200, "")
	if len(st.list("functions")) != 1 || st.get("functions", 0, "name") != "mail" {
		t.Fatalf("viewer status: %s", st.raw)
	}
	if n := len(do(t, h, with(anon, "GET", "/api/status", nil)).list("functions")); n != 0 {
		t.Fatalf("anonymous sees %d functions", n)
	}
	do(t, h, with(viewer, "GET", "/api/functions/secret", nil)).want(t, 403, "PERMISSION_DENIED")
	do(t, h, with(anon, "GET", "/api/scheduled", nil)).want(t, 403, "PERMISSION_DENIED")
}

// Without an ACL, gearmand's rules: every read and submit from anywhere, the admin words
// that change state from loopback only.
func TestGearmandRules(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	far := "203.0.113.5:1"
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "f", "background": true}, remote: far}).want(t, 201, "")
	do(t, h, call{method: "GET", path: "/api/status", remote: far}).want(t, 200, "")
	do(t, h, call{method: "GET", path: "/api/workers", remote: far}).want(t, 200, "")
	for _, c := range []call{
		{method: "POST", path: "/api/functions/f/pause"}, {method: "POST", path: "/api/functions/f/resume"},
		{method: "PUT", path: "/api/functions/f/limit", body: map[string]any{"limit": 1}},
		{method: "PUT", path: "/api/functions/f/retry", body: map[string]any{"off": true}},
		{method: "POST", path: "/api/dead/retry", body: map[string]any{"function": "f"}},
		{method: "DELETE", path: "/api/dead?function=f"}, {method: "POST", path: "/api/schedules/x/run"},
	} {
		c.remote = far
		do(t, h, c).want(t, 403, "PERMISSION_DENIED")
		c.remote = "[::1]:5"
		if r := do(t, h, c); r.code == 403 {
			t.Errorf("%s %s refused from loopback: %s", c.method, c.path, r.raw)
		}
	}
	me := do(t, h, call{method: "GET", path: "/api/me", remote: far})
	if me.get("may", "pause") != false || me.get("may", "submit") != true || me.get("identity", "loopback") != false {
		t.Fatalf("me from afar: %s", me.raw)
	}
	if me := do(t, h, call{method: "GET", path: "/api/me", remote: "[::1]:5"}); me.get("may", "pause") != true || me.get("identity", "loopback") != true {
		t.Fatalf("me from loopback: %s", me.raw)
	}
}

// Many foreground submits at once, each answered with its own job's result.
func TestForegroundConcurrent(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	w := worker(t, e, 9, "echo")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := strings.Repeat("x", i+1)
			r := do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "echo", "data": d, "unique": d}})
			if r.code != http.StatusOK || r.get("data") != d+"!" {
				errs <- r.raw
			}
		}()
	}
	for range n {
		job := w.grab()
		w.send(codec.WorkComplete, job.args[0], job.args[3]+"!")
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// The counters, the oldest queued job's age, pause, limit and scheduled jobs of a function.
func TestFunctionCounters(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	do(t, h, call{method: "PUT", path: "/api/functions/c/retry", body: map[string]any{"attempts": 2, "base": "1ms", "max": "1ms"}}).want(t, 200, "")
	for _, d := range []string{"ok", "bad", "later"} {
		do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "c", "data": d, "background": true}}).want(t, 201, "")
	}
	do(t, h, call{method: "POST", path: "/api/jobs", body: map[string]any{"function": "c", "data": "sched", "background": true, "in": 3600}}).want(t, 201, "")
	time.Sleep(30 * time.Millisecond)
	r := do(t, h, call{method: "GET", path: "/api/functions/c"}).want(t, 200, "")
	if age, _ := r.get("oldest_queued_age_s").(float64); age < 0.02 || r.get("scheduled") != 1.0 || r.get("submitted") != 4.0 {
		t.Fatalf("before: %s", r.raw)
	}
	w := worker(t, e, 2, "c")
	for range 2 {
		j := w.grab()
		if j.args[3] == "ok" {
			w.send(codec.WorkComplete, j.args[0], "")
		} else {
			w.send(codec.WorkFail, j.args[0])
		}
	}
	// "later" fails too; both failed jobs are retried (the policy allows two attempts), fail
	// again and are dead-lettered.
	for range 3 {
		w.send(codec.WorkFail, w.grab().args[0])
	}
	do(t, h, call{method: "POST", path: "/api/functions/c/pause"}).want(t, 200, "")
	do(t, h, call{method: "PUT", path: "/api/functions/c/limit", body: map[string]any{"limit": 3}}).want(t, 200, "")
	r = do(t, h, call{method: "GET", path: "/api/status"}).want(t, 200, "")
	f := func(k string) any { return r.get("functions", 0, k) }
	if f("completed") != 1.0 || f("retried") != 2.0 || f("dead_lettered") != 2.0 || f("failed") != 2.0 || f("paused") != true || f("limit") != 3.0 ||
		r.get("totals", "completed") != 1.0 || r.get("totals", "submitted") != 4.0 || r.get("dead_letters") != 2.0 || f("oldest_queued_age_s") != nil {
		t.Fatalf("after: %s", r.raw)
	}
}

// A page of another web site cannot change anything through a viewer's browser (CSRF): its
// requests carry Sec-Fetch-Site or an Origin that is not this server's. Reads stay open (the
// browser keeps their answers from that page), and so do same-origin requests (the dashboard).
func TestCrossSiteBrowserRequestsChangeNothing(t *testing.T) {
	e := newEngine(t, engine.Config{})
	h := New(e, Options{})
	admin := newPeer(t, e, 3)
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "http://evil.example"},
		{"Origin": "null"},
	} {
		do(t, h, call{method: "POST", path: "/api/functions/mail/pause", header: hdr}).want(t, 403, "PERMISSION_DENIED")
	}
	if got := admin.admin("show paused"); got != ".\n" {
		t.Fatalf("a cross-site request paused a function: %q", got)
	}
	do(t, h, call{method: "GET", path: "/api/status", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}).want(t, 200, "")
	// httptest's requests are for example.com.
	do(t, h, call{method: "POST", path: "/api/functions/mail/pause", header: map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"}}).want(t, 200, "")
	if got := admin.admin("show paused"); got != "mail\n.\n" {
		t.Fatalf("a same-origin pause: %q", got)
	}
	g := GearmanHandler(e, Options{})
	if r := do(t, g, call{method: "GET", path: "/mail", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}); r.code != 403 {
		t.Fatalf("a cross-site GET on gearmand's HTTP interface: %d %s", r.code, r.raw)
	}
	if st := functionStat(t, e, "mail"); st.Total != 0 {
		t.Fatalf("a cross-site GET submitted a job: %+v", st)
	}
}

// functionStat is fn's FunctionStat (zero when it has none).
func functionStat(t *testing.T, e *engine.Engine, fn string) engine.FunctionStat {
	t.Helper()
	for _, st := range e.FunctionStats() {
		if st.Name == fn {
			return st
		}
	}
	return engine.FunctionStat{}
}
