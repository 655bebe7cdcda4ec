package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// --acl FILE: what the file grants is allowed, everything else refused with a clear answer
// and nothing changed; SIGHUP reloads it, and a broken file keeps the old rules.
func TestACLFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "acl")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("[loopback]\nsubmit ok.*\nstatus *\nadmin status show\n")
	log := filepath.Join(dir, "spurd.log")
	cmd, addr, _ := startSpurd(t, "-q", "builtin", "--acl", file, "--log-file", log, "--verbose", "WARNING")
	g := dialG(t, addr)
	g.submit(&job{typ: codec.SubmitJobBg, fn: "ok.a", data: "1"})
	if code, text := g.submitRefused(&job{typ: codec.SubmitJobBg, fn: "payments", data: "2"}); code != codec.CodePermissionDenied || !strings.Contains(text, `"payments"`) {
		t.Fatalf("submit to payments: %q %q", code, text)
	}
	g.sendStr(codec.CanDo, "ok.a")
	if typ, body := g.recvWithin(2 * time.Second); typ != codec.Error || !strings.HasPrefix(string(body), codec.CodePermissionDenied) {
		t.Fatalf("CAN_DO without a work grant: %v %q", typ, body)
	}
	if got := adminLine(t, addr, "drop function ok.a"); !strings.HasPrefix(got, "ERR PERMISSION_DENIED ") {
		t.Fatalf("drop function: %q", got)
	}
	if got := adminList(t, addr, "status"); len(got) != 1 || got[0] != "ok.a\t1\t0\t0" {
		t.Fatalf("status: %q (payments must not exist, ok.a must stay)", got)
	}

	write("[loopback]\nsubmit *\nadmin status\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.sendStr(codec.SubmitJobBg, "payments", "", "3")
		if typ, _ := g.recv(); typ == codec.JobCreated {
			break // the new rules are in
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the rules")
		}
		time.Sleep(20 * time.Millisecond)
	}
	write("[loopback]\nsumbit *\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLogLine(t, log, "the old rules stay")
	g.submit(&job{typ: codec.SubmitJobBg, fn: "payments", data: "4"}) // the old rules still

	code, out := runRefused(t, "-q", "builtin", "--acl", file)
	if code == 0 || !strings.Contains(out, "line 2") || !strings.Contains(out, `"sumbit"`) {
		t.Errorf("a broken --acl at start: exit %d, %q", code, out)
	}
}
