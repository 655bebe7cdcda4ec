package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spur-gearman/spur/codec"
)

// A function's own settings (create function, maxqueue) are in the job log: they survive a
// SIGKILL, and clearing or dropping them does too.
func TestFunctionSettingsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cmd, addr, stderr := startDurable(t, dir)
	for _, c := range []string{"create function declared", "create function limited", "maxqueue limited 1"} {
		if got := adminLine(t, addr, c); got != "OK\r\n" {
			t.Fatalf("%s: %q", c, got)
		}
	}
	g := dialG(t, addr)
	g.submit(&job{typ: codec.SubmitJobBg, fn: "limited", data: "one"})
	if code, _ := g.submitRefused(&job{typ: codec.SubmitJobBg, fn: "limited", data: "two"}); code != codec.CodeQueueError {
		t.Fatalf("second job past maxqueue 1: %q", code)
	}
	stopSpurd(t, cmd, stderr, true)

	cmd, addr, stderr = startDurable(t, dir)
	status := adminList(t, addr, "status")
	if !slices.Contains(status, "declared\t0\t0\t0") || !slices.Contains(status, "limited\t1\t0\t0") {
		t.Fatalf("status after restart %q: settings lost", status)
	}
	g = dialG(t, addr)
	if code, _ := g.submitRefused(&job{typ: codec.SubmitJobBg, fn: "limited", data: "two"}); code != codec.CodeQueueError {
		t.Fatalf("maxqueue forgotten after restart: %q", code)
	}
	for _, c := range []string{"maxqueue limited 0", "drop function declared"} {
		if got := adminLine(t, addr, c); got != "OK\r\n" {
			t.Fatalf("%s: %q", c, got)
		}
	}
	stopSpurd(t, cmd, stderr, true)

	_, addr, _ = startDurable(t, dir)
	status = adminList(t, addr, "status")
	if strings.Contains(strings.Join(status, "\n"), "declared") {
		t.Fatalf("status %q: a dropped function came back", status)
	}
	g = dialG(t, addr)
	g.submit(&job{typ: codec.SubmitJobBg, fn: "limited", data: "two"}) // the limit is gone
}

// A paused function stays paused across SIGKILL and restart, with its queued job held, and a
// concurrency limit stays set; a resume is durable too.
func TestPauseSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cmd, addr, stderr := startDurable(t, dir)
	for _, c := range []string{"pause held", "limit narrow 2"} {
		if got := adminLine(t, addr, c); got != "OK\r\n" {
			t.Fatalf("%s: %q", c, got)
		}
	}
	g := dialG(t, addr)
	j := &job{typ: codec.SubmitJobBg, fn: "held", data: "waits"}
	g.submit(j)
	stopSpurd(t, cmd, stderr, true)

	cmd, addr, stderr = startDurable(t, dir)
	if got := adminList(t, addr, "show paused"); !slices.Equal(got, []string{"held"}) {
		t.Fatalf("show paused after restart: %q", got)
	}
	if got := adminList(t, addr, "show limits"); !slices.Equal(got, []string{"narrow\t2\t0"}) {
		t.Fatalf("show limits after restart: %q", got)
	}
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, "held")
	w.expectNoJob() // still paused
	if got := adminLine(t, addr, "resume held"); got != "OK\r\n" {
		t.Fatalf("resume: %q", got)
	}
	w.grabExpect(j)
	w.sendStr(codec.WorkComplete, j.handle, "")
	w.sync()
	stopSpurd(t, cmd, stderr, true)

	_, addr, _ = startDurable(t, dir)
	if got := adminList(t, addr, "show paused"); len(got) != 0 {
		t.Fatalf("show paused after resume and restart: %q", got)
	}
}
