package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/spur-gearman/spur/cmd/spur/client"
)

// lineOf returns the index of the screen line whose first word is word, or -1.
func lineOf(screen, word string) int {
	for i, l := range strings.Split(screen, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == word {
			return i
		}
	}
	return -1
}

// TestTopUnderTmux runs `spur top` in a detached tmux session on a private socket, reads
// the screen with capture-pane and drives it with send-keys.
func TestTopUnderTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed: %v", err)
	}
	port := startSpurd(t)
	sock := "spur-top-test-" + strconv.Itoa(os.Getpid())
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil && args[0] != "kill-server" && args[0] != "has-session" {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { tmux("kill-server") })
	exitFile := filepath.Join(t.TempDir(), "exit")
	tmux("new-session", "-d", "-x", "160", "-y", "40", "-s", "top",
		spurBin+" -h 127.0.0.1 -p "+port+" top --interval 200ms; echo $? > "+exitFile)

	c := dial(t, port)
	submit := func(fn string, n int) {
		for range n {
			if _, err := c.SubmitBackground(fn, "", nil, client.Normal, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	submit("aaa", 1)
	submit("zzz", 3)
	var screen string
	waitScreen := func(what string, cond func() bool) {
		t.Helper()
		eventually(t, what, func() bool {
			screen = tmux("capture-pane", "-p", "-t", "top")
			return cond()
		})
	}
	count := func(fn string, col int) string {
		f := row(screen, fn)
		if len(f) <= col {
			return ""
		}
		return f[col]
	}
	waitScreen("both functions and their counts", func() bool { return count("aaa", 1) == "1" && count("zzz", 1) == "3" })
	if !strings.Contains(screen, "sort: function") || lineOf(screen, "aaa") > lineOf(screen, "zzz") {
		t.Fatalf("not sorted by function name:\n%s", screen)
	}
	if !strings.Contains(screen, "functions 2   jobs 4   queued 4") {
		t.Fatalf("totals missing:\n%s", screen)
	}

	tmux("send-keys", "-t", "top", "s")
	waitScreen("sorted by total", func() bool { return strings.Contains(screen, "sort: total") })
	if lineOf(screen, "zzz") > lineOf(screen, "aaa") {
		t.Fatalf("s did not sort the busiest first:\n%s", screen)
	}

	// A worker shows in the workers' panel.
	w := dial(t, port)
	if _, err := w.NewWorker("top-test-worker", "zzz"); err != nil {
		t.Fatal(err)
	}
	waitScreen("the worker", func() bool { return strings.Contains(screen, "top-test-worker") && count("zzz", 4) == "1" })

	// p pauses refreshing: a new job does not show until p again.
	tmux("send-keys", "-t", "top", "p")
	waitScreen("paused", func() bool { return strings.Contains(screen, "PAUSED") })
	submit("aaa", 1)
	time.Sleep(600 * time.Millisecond)
	if screen = tmux("capture-pane", "-p", "-t", "top"); count("aaa", 1) != "1" {
		t.Fatalf("the screen refreshed while paused:\n%s", screen)
	}
	tmux("send-keys", "-t", "top", "p")
	waitScreen("refreshed after p", func() bool { return count("aaa", 1) == "2" })

	tmux("send-keys", "-t", "top", "q")
	eventually(t, "top to exit on q", func() bool {
		b, err := os.ReadFile(exitFile)
		return err == nil && strings.TrimSpace(string(b)) != ""
	})
	if b, _ := os.ReadFile(exitFile); strings.TrimSpace(string(b)) != "0" {
		t.Fatalf("top exited %s", b)
	}
}

// TestTopThroughputAndScroll drives the model directly: DONE/S from two polls, and the
// arrow keys.
func TestTopThroughputAndScroll(t *testing.T) {
	m := &topModel{a: &app{host: "h", port: 1}, every: time.Second, prev: map[string]int{}, rates: map[string]float64{}}
	t0 := time.Now()
	m.apply(pollMsg{at: t0, funcs: []functionRow{{Function: "a", Total: 30}, {Function: "b", Total: 5}}})
	m.apply(pollMsg{at: t0.Add(2 * time.Second), funcs: []functionRow{{Function: "a", Total: 10}, {Function: "b", Total: 9}}})
	if m.rates["a"] != 10 || m.rates["b"] != 0 {
		t.Fatalf("rates %v, want a 10/s (20 gone in 2 s), b 0", m.rates)
	}
	// With spurd's counters, DONE/S is the rise of jobs ended, whatever the totals do.
	c := &topModel{a: m.a, every: time.Second, prev: map[string]int{}, rates: map[string]float64{}}
	fns := []functionRow{{Function: "a", Total: 30}}
	c.apply(pollMsg{at: t0, funcs: fns, ended: map[string]int{"a": 100}})
	c.apply(pollMsg{at: t0.Add(2 * time.Second), funcs: fns, ended: map[string]int{"a": 150}})
	if c.rates["a"] != 25 {
		t.Fatalf("rate from the counters %v, want 25/s (50 ended in 2 s)", c.rates["a"])
	}
	for range 5 { // to done/s
		m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
	}
	if sortKeys[m.sortBy] != "done/s" || m.rows[0].Function != "a" {
		t.Fatalf("sort %s: %+v", sortKeys[m.sortBy], m.rows)
	}
	m.Update(tea.KeyMsg{Type: tea.KeyDown})
	if m.offset != 1 || lineOf(m.View(), "a") != -1 || lineOf(m.View(), "b") == -1 {
		t.Fatalf("down did not scroll one function: offset %d\n%s", m.offset, m.View())
	}
	m.Update(tea.KeyMsg{Type: tea.KeyUp})
	m.Update(tea.KeyMsg{Type: tea.KeyUp})
	if m.offset != 0 {
		t.Fatalf("up: offset %d", m.offset)
	}
}
