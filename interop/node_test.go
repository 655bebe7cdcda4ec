package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The npm package "gearman" (node-gearman, client and worker in plain
// JavaScript), installed by `npm ci` in node/ from its pinned
// package-lock.json; node/client.js and node/worker.js document their line
// formats. The package's own tests only encode and decode packets in memory,
// so nothing of it can be pointed at a server; these scripts drive it instead.

// nodeDir is the absolute path of node/, set by requireNode.
var nodeDir string

func requireNode(t *testing.T) {
	t.Helper()
	err := checkCached("node", func() error {
		dir, err := filepath.Abs("node")
		if err != nil {
			return err
		}
		if _, err := exec.LookPath("node"); err != nil {
			return fmt.Errorf("node.js is missing: %v", err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err != nil {
			return err
		}
		var pkg struct{ Dependencies map[string]string }
		if err := json.Unmarshal(b, &pkg); err != nil {
			return fmt.Errorf("node/package.json: %v", err)
		}
		cmd := exec.Command("node", "-p", "require('gearman/package.json').version")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("the npm package gearman is not installed in %s (run `npm ci` there): %v\n%s", dir, err, out)
		}
		if got, want := strings.TrimSpace(string(out)), pkg.Dependencies["gearman"]; got != want {
			return fmt.Errorf("node/node_modules has gearman %s, package.json pins %s (run `npm ci` in %s)", got, want, dir)
		}
		nodeDir = dir
		return nil
	})
	if err != nil {
		t.Fatalf("Node.js gearman client unavailable: %v", err)
	}
}

// nodeClient runs node/client.js and returns its lines without the final
// "OK" (whose presence it checks).
func nodeClient(t *testing.T, addr string, args ...string) []string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	r := mustRun(t, "node", append([]string{filepath.Join(nodeDir, "client.js"), host, port}, args...)...)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) == 0 || lines[len(lines)-1] != "OK" {
		t.Fatalf("client.js %v did not finish with OK:\n%s\nstderr: %s", args, r.stdout, r.stderr)
	}
	return lines[:len(lines)-1]
}

// nodeWorker starts node/worker.js serving at most maxJobs jobs.
func nodeWorker(t *testing.T, addr string, maxJobs int, specs ...string) *proc {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	args := append([]string{filepath.Join(nodeDir, "worker.js"), host, port, strconv.Itoa(maxJobs)}, specs...)
	p := startProc(t, nil, "node", args...)
	p.waitLine("READY")
	return p
}

// TestNodeForeground: foreground submitJob with each priority gets JOB_CREATED
// and the Node worker's WORK_COMPLETE; WORK_DATA and WORK_STATUS packets
// reach the client in order before it; WORK_FAIL reaches it as a failure.
func TestNodeForeground(t *testing.T) { forEachMode(t, testNodeForeground) }

func testNodeForeground(t *testing.T, srv serverMode) {
	requireNode(t)
	addr, _ := srv.start(t)
	rev, parts, fail := fnName(t, "reverse"), fnName(t, "parts"), fnName(t, "fail")
	w := nodeWorker(t, addr, 5, rev+"=reverse", parts+"=parts", fail+"=fail")
	waitWorkers(t, addr, rev, 1)

	cases := []struct {
		prio, fn, workload string
		want               []string // after CREATED
	}{
		{"normal", rev, "hello node", []string{"RESULT edon olleh"}},
		{"high", rev, "high", []string{"RESULT hgih"}},
		{"low", rev, "low", []string{"RESULT wol"}},
		{"normal", parts, "x", []string{"DATA part1", "STATUS 1/2", "DATA part2", "STATUS 2/2", "RESULT done:x"}},
		{"normal", fail, "y", []string{"FAIL"}},
	}
	var handles []string
	for _, c := range cases {
		lines := nodeClient(t, addr, "do", c.prio, c.fn, c.workload)
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "CREATED ") {
			t.Errorf("do %s %s: got %q, want CREATED <handle> first", c.prio, c.fn, lines)
			continue
		}
		handles = append(handles, strings.TrimPrefix(lines[0], "CREATED "))
		if !reflect.DeepEqual(lines[1:], c.want) {
			t.Errorf("do %s %s %q: got %q, want %q", c.prio, c.fn, c.workload, lines[1:], c.want)
		}
	}
	lines := w.mustExit()
	starts := linesWithPrefix(lines, "START ")
	if len(starts) != len(cases) || len(handles) != len(cases) {
		t.Fatalf("worker ran %q for handles %q, want %d jobs", starts, handles, len(cases))
	}
	for i, c := range cases {
		if want := fmt.Sprintf("START %s %s %s", c.fn, handles[i], c.workload); starts[i] != want {
			t.Errorf("job %d: worker got %q, want %q", i, starts[i], want)
		}
	}
	if !contains(lines, "EXIT 5") {
		t.Errorf("worker did not exit after 5 jobs: %q", lines)
	}
}

// TestNodeBackground: background submitJob with low, normal and high priority
// and no worker: each gets a handle, GET_STATUS reports the job known and not
// running; a Node worker started afterwards runs them high, normal, low under
// those handles, and then they are unknown.
func TestNodeBackground(t *testing.T) { forEachMode(t, testNodeBackground) }

func testNodeBackground(t *testing.T, srv serverMode) {
	requireNode(t)
	addr, _ := srv.start(t)
	fn := fnName(t, "reverse")
	handles := map[string]string{}
	for _, p := range []string{"low", "normal", "high"} {
		lines := nodeClient(t, addr, "bg", p, fn, p+"-job")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "HANDLE ") {
			t.Fatalf("bg %s: got %q, want HANDLE <handle>", p, lines)
		}
		handles[p] = strings.TrimPrefix(lines[0], "HANDLE ")
	}
	if s, ok := statusOf(t, addr, fn); !ok || s != (funcStatus{3, 0, 0}) {
		t.Errorf("admin status: got %+v listed=%v, want 3 jobs, none running, no worker", s, ok)
	}
	if got := nodeClient(t, addr, "status", handles["normal"]); !reflect.DeepEqual(got, []string{"STATUS 1 0 0"}) {
		t.Errorf("status while queued: got %q, want [STATUS 1 0 0]", got)
	}

	w := nodeWorker(t, addr, 3, fn+"=reverse")
	want := []string{
		fmt.Sprintf("START %s %s high-job", fn, handles["high"]),
		fmt.Sprintf("START %s %s normal-job", fn, handles["normal"]),
		fmt.Sprintf("START %s %s low-job", fn, handles["low"]),
	}
	if got := linesWithPrefix(w.mustExit(), "START "); !reflect.DeepEqual(got, want) {
		t.Errorf("execution order: got %q, want %q", got, want)
	}
	waitStatus(t, addr, fn, "0 jobs", func(s funcStatus) bool { return s.total == 0 })
	if got := nodeClient(t, addr, "status", handles["normal"]); !reflect.DeepEqual(got, []string{"STATUS 0 0 0"}) {
		t.Errorf("status after completion: got %q, want [STATUS 0 0 0]", got)
	}
}
