package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/spur-gearman/spur/codec"
)

// --http-addr serves /metrics (Spur's families and gearman-exporter's), /healthz and /readyz.
func TestHTTPMetricsAndHealth(t *testing.T) {
	t.Parallel()
	httpAddr := net.JoinHostPort("127.0.0.1", freePort(t))
	_, addr, _ := startSpurd(t, "-q", "builtin", "--http-addr", httpAddr)
	g := dialG(t, addr)
	g.submit(&job{typ: codec.SubmitJobBg, fn: "resize", data: "1"})
	g.submit(&job{typ: codec.SubmitJobHighBg, fn: "resize", data: "2"})
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, "resize")
	w.sync()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	for _, want := range []string{
		`spur_function_jobs_queued{function="resize",priority="high"} 1`,
		`spur_function_jobs_queued{function="resize",priority="normal"} 1`,
		`spur_function_jobs_running{function="resize"} 0`,
		`spur_function_workers{function="resize"} 1`,
		`gearman_up 1`,
		`gearman_jobs{function="resize"} 2`,
		`gearman_jobs_waiting{function="resize"} 2`,
		`gearman_workers{function="resize"} 1`,
		`gearman_version_info{version="`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, _ := get("/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing: %d", code)
	}
}
