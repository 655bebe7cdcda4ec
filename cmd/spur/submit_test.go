package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSubmitBackgroundWithPriority(t *testing.T) {
	port := startSpurd(t)
	h := strings.TrimSpace(ok(t, port, "submit", "mail", "--bg", "--priority", "high", "--unique", "m1", "hi"))
	if !strings.HasPrefix(h, "H:") {
		t.Fatalf("--bg printed %q", h)
	}
	// The same unique coalesces onto the same job.
	again := decode[map[string]string](t, ok(t, port, "submit", "mail", "--bg", "--unique", "m1", "--json", "hi"))
	if again["handle"] != h {
		t.Fatalf("coalesced submit got %q, want %q", again["handle"], h)
	}
	ok(t, port, "submit", "mail", "--bg", "--priority", "low", "x")
	rows := decode[[]functionRow](t, ok(t, port, "status", "--json"))
	if len(rows) != 1 || rows[0].Total != 2 || *rows[0].Queued != (queuedRow{High: 1, Low: 1}) {
		t.Fatalf("status after bg submits: %+v", rows)
	}
}

func TestSubmitAtAndIn(t *testing.T) {
	port := startSpurd(t)
	before := time.Now()
	h := strings.TrimSpace(ok(t, port, "submit", "report", "--in", "1h", ""))
	at := before.Add(2 * time.Hour).Unix()
	h2 := strings.TrimSpace(ok(t, port, "submit", "report", "--at", strconv.FormatInt(at, 10), "x"))
	lines := admin(t, port, "show scheduled")
	if len(lines) != 2 {
		t.Fatalf("show scheduled: %q", lines)
	}
	runAt := map[string]int64{}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		n, _ := strconv.ParseInt(f[3], 10, 64)
		runAt[f[0]] = n
	}
	if d := runAt[h] - before.Add(time.Hour).Unix(); d < 0 || d > 5 {
		t.Fatalf("--in 1h runs at %d, %d s off", runAt[h], d)
	}
	if runAt[h2] != at {
		t.Fatalf("--at %d runs at %d", at, runAt[h2])
	}
	if r := spur(t, port, "", "submit", "report", "--in", "1h", "--priority", "high", "x"); r.code != 2 {
		t.Fatalf("--in with --priority high: %+v", r)
	}
	if r := spur(t, port, "", "submit", "report", "--at", "tomorrow", "x"); r.code != 2 {
		t.Fatalf("--at tomorrow: %+v", r)
	}
	h3 := strings.TrimSpace(ok(t, port, "submit", "report", "--at", time.Unix(at+60, 0).UTC().Format(time.RFC3339), "x"))
	if !strings.Contains(strings.Join(admin(t, port, "show scheduled"), "\n"), h3+"\treport\t\t"+strconv.FormatInt(at+60, 10)) {
		t.Fatal("--at in RFC 3339 is not scheduled at its time")
	}
}
