package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// The job lifecycle is durable: retry policies, attempt counts, dead letters, results and
// schedules survive SIGKILL and restart.
func TestLifecycleSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, addr, stderr := startDurable(t, dir)
	for _, c := range []string{"retry flaky 3 1 1", "retry doomed 3 0.01 0.01", "schedule add nightly 30 2 * * * tz=Europe/Berlin unique=n1 data=report  all"} {
		if got := adminLine(t, addr, c); !strings.HasPrefix(got, "OK") {
			t.Fatalf("%s: %q", c, got)
		}
	}
	g := dialG(t, addr)
	done := g.submit(&job{typ: codec.SubmitJobBg, fn: "fine", unique: "u-done", data: "in"})
	flaky := g.submit(&job{typ: codec.SubmitJobBg, fn: "flaky", data: "x"})
	dead := g.submit(&job{typ: codec.SubmitJobBg, fn: "doomed", data: "y"})
	g.sendStr(codec.CanDo, "fine")
	fail := func(h string, exception string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			a, ok := g.grabAll()
			if ok && a.handle == h {
				break
			}
			if ok {
				t.Fatalf("grabbed %s, want %s", a.handle, h)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never came back", h)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if exception == "" {
			g.sendStr(codec.WorkFail, h)
		} else {
			g.sendStr(codec.WorkException, h, exception)
		}
		g.sync()
	}
	if a, ok := g.grabAll(); !ok || a.handle != done {
		t.Fatalf("first grab: %+v", a)
	}
	g.sendStr(codec.WorkComplete, done, "out")
	g.sendStr(codec.CantDo, "fine")
	g.sendStr(codec.CanDo, "flaky")
	fail(flaky, "") // attempt 1 of 3
	fail(flaky, "") // attempt 2 of 3; one left, waiting out its backoff
	g.sendStr(codec.CantDo, "flaky")
	g.sendStr(codec.CanDo, "doomed")
	for i := 0; i < 3; i++ {
		fail(dead, "gone "+string(rune('a'+i)))
	}
	// A job's end is written without waiting (a crash just before it is durable runs the job
	// again); `show result` waits for every write before it, so after it nothing is pending.
	adminList(t, addr, "show result "+dead)
	stopSpurd(t, cmd, stderr, true)

	cmd, addr, stderr = startDurable(t, dir)
	if got := adminList(t, addr, "show retries"); !slices.Equal(got, []string{"doomed\t3\t10ms\t10ms", "flaky\t3\t1s\t1s"}) {
		t.Errorf("show retries after SIGKILL: %q", got)
	}
	if got := adminList(t, addr, "show result "+done); len(got) != 1 || !strings.Contains(got[0], "\tfine\tu-done\tcomplete\t1\t") || !strings.HasSuffix(got[0], "\tout") {
		t.Errorf("show result after SIGKILL: %q", got)
	}
	if got := adminList(t, addr, "show result unique fine u-done"); len(got) != 1 || !strings.HasPrefix(got[0], done+"\t") {
		t.Errorf("show result unique after SIGKILL: %q", got)
	}
	deadRe := regexp.MustCompile("^" + regexp.QuoteMeta(dead) + "\tdoomed\t\t3\t\\S+\t\\S+\texception\tgone c$")
	if got := adminList(t, addr, "show dead"); len(got) != 1 || !deadRe.MatchString(got[0]) {
		t.Errorf("show dead after SIGKILL: %q", got)
	}
	sched := adminList(t, addr, "show schedules")
	if len(sched) != 1 || !regexp.MustCompile("^H:dur:\\d+\tnightly\tn1\t30 2 \\* \\* \\*\tEurope/Berlin\t\\S+T02:30:00\\+0[12]:00\t-\tnormal\tactive$").MatchString(sched[0]) {
		t.Errorf("show schedules after SIGKILL: %q", sched)
	}
	// The flaky job kept its count: its third attempt is its last.
	g = dialG(t, addr)
	g.sendStr(codec.CanDo, "flaky")
	fail(flaky, "third")
	if got := adminList(t, addr, "show dead flaky"); len(got) != 1 || !strings.HasPrefix(got[0], flaky+"\tflaky\t\t3\t") {
		t.Errorf("show dead after the third attempt: %q", got)
	}
	// retry dead is durable too.
	if got := adminLine(t, addr, "retry dead "+dead); got != "OK\r\n" {
		t.Fatalf("retry dead: %q", got)
	}
	adminList(t, addr, "show result "+flaky)
	stopSpurd(t, cmd, stderr, true)

	_, addr, _ = startDurable(t, dir)
	if got := adminList(t, addr, "show dead"); len(got) != 1 || !strings.HasPrefix(got[0], flaky+"\t") {
		t.Errorf("show dead after retry dead and SIGKILL: %q", got)
	}
	g = dialG(t, addr)
	g.sendStr(codec.CanDo, "doomed")
	if a, ok := g.grabAll(); !ok || a.handle != dead || a.data != "y" {
		t.Errorf("the retried dead letter after SIGKILL: %+v %v", a, ok)
	}
}

// --functions FILE sets retry policies and limits at start; a bad line stops spurd.
func TestFunctionsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := dir + "/functions"
	writeFile(t, file, "# policies\nretry resize 5 1s 5m\n\nlimit resize 4\npause reports\n")
	_, addr, _ := startDurable(t, dir+"/data", "--functions", file)
	if got := adminList(t, addr, "show retries"); !slices.Equal(got, []string{"resize\t5\t1s\t5m0s"}) {
		t.Errorf("show retries: %q", got)
	}
	if got := adminList(t, addr, "show limits"); !slices.Equal(got, []string{"resize\t4\t0"}) {
		t.Errorf("show limits: %q", got)
	}
	if got := adminList(t, addr, "show paused"); !slices.Equal(got, []string{"reports"}) {
		t.Errorf("show paused: %q", got)
	}
	bad := dir + "/bad"
	writeFile(t, bad, "retry resize 5 1s\n")
	code, out := runRefused(t, "-q", "builtin", "--functions", bad)
	if code == 0 || !strings.Contains(out, bad+":1: retry: want ATTEMPTS BASE MAX, or off") {
		t.Errorf("bad --functions file: exit %d, %q", code, out)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The sample settings file under contrib/ is one spurd accepts.
func TestContribFunctionsFileIsValid(t *testing.T) {
	t.Parallel()
	_, addr, _ := startDurable(t, t.TempDir(), "--functions", "../../contrib/etc/functions")
	if got := adminList(t, addr, "show retries"); len(got) != 0 {
		t.Errorf("show retries with the commented sample: %q", got)
	}
}
