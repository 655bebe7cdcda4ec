package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine"
)

func gearmanServer(t *testing.T) (*engine.Engine, *httptest.Server) {
	e := newEngine(t, engine.Config{})
	srv := httptest.NewServer(GearmanHandler(e, Options{}))
	t.Cleanup(srv.Close)
	return e, srv
}

// Raw HTTP/1.1 on one kept-alive connection: a background submit, then a foreground one
// whose WORK_DATA comes before its result in the body.
func TestGearmanHTTPRaw(t *testing.T) {
	e, srv := gearmanServer(t)
	w := worker(t, e, 6, "reverse")
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "POST /reverse HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\nX-Gearman-Priority: high\r\nX-Gearman-Unique: k1\r\nContent-Length: 3\r\n\r\nabc")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" || resp.Header.Get("X-Gearman-Command") != "JOB_CREATED" ||
		!strings.HasPrefix(resp.Header.Get("X-Gearman-Job-Handle"), "H:api:") || resp.Close {
		t.Fatalf("background: %v %v close=%v", resp.Status, resp.Header, resp.Close)
	}
	bg := w.grab()
	if bg.args[2] != "k1" || bg.args[3] != "abc" {
		t.Fatalf("assigned %q", bg.args)
	}
	w.send(codec.WorkComplete, bg.args[0], "")
	// Foreground on the same connection; default unique "-".
	fmt.Fprintf(c, "PUT /reverse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	fg := w.grab()
	if fg.args[2] != "-" || fg.args[3] != "hello" {
		t.Fatalf("assigned %q", fg.args)
	}
	w.send(codec.WorkData, fg.args[0], "ol")
	w.send(codec.WorkData, fg.args[0], "l")
	w.send(codec.WorkComplete, fg.args[0], "eh")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "olleh" || resp.Header.Get("X-Gearman-Command") != "WORK_COMPLETE" ||
		resp.Header.Get("X-Gearman-Job-Handle") != fg.args[0] {
		t.Fatalf("foreground: %v %v %q", resp.Status, resp.Header, body)
	}
	// A failed job: its handle whole, WORK_FAIL, empty body.
	fmt.Fprintf(c, "GET /reverse HTTP/1.1\r\nHost: x\r\n\r\n")
	fg = w.grab()
	if fg.args[3] != "" {
		t.Fatalf("GET submitted data %q", fg.args[3])
	}
	w.send(codec.WorkFail, fg.args[0])
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	if resp.Header.Get("X-Gearman-Command") != "WORK_FAIL" || resp.Header.Get("X-Gearman-Job-Handle") != fg.args[0] || len(body) != 0 {
		t.Fatalf("fail: %v %q", resp.Header, body)
	}
	// No function, other methods.
	for _, req := range []struct {
		line string
		code int
	}{{"GET / HTTP/1.1", 404}, {"HEAD /reverse HTTP/1.1", 405}, {"TRACE /reverse HTTP/1.1", 405}, {"DELETE /reverse HTTP/1.1", 405}} {
		fmt.Fprintf(c, "%s\r\nHost: x\r\n\r\n", req.line)
		resp, err := http.ReadResponse(br, &http.Request{Method: strings.Fields(req.line)[0]})
		if err != nil {
			t.Fatalf("%s: %v", req.line, err)
		}
		io.ReadAll(resp.Body)
		if resp.StatusCode != req.code {
			t.Errorf("%s: %d, want %d", req.line, resp.StatusCode, req.code)
		}
	}
}

// curl, as a user of gearmand's interface would call it.
func TestGearmanHTTPCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed: apt-get install curl")
	}
	e, srv := gearmanServer(t)
	w := worker(t, e, 6, "upper")
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := exec.Command(curl, "-sS", "-i", "--data-binary", "shout", srv.URL+"/upper").CombinedOutput()
		done <- result{string(out), err}
	}()
	job := w.grab()
	w.send(codec.WorkData, job.args[0], "SHO")
	w.send(codec.WorkComplete, job.args[0], "UT")
	r := <-done
	if r.err != nil || !strings.Contains(r.out, "X-Gearman-Command: WORK_COMPLETE") || !strings.HasSuffix(r.out, "\r\n\r\nSHOUT") ||
		!strings.Contains(r.out, "X-Gearman-Job-Handle: "+job.args[0]) || !strings.HasPrefix(r.out, "HTTP/1.1 200") {
		t.Fatalf("curl: %v\n%s", r.err, r.out)
	}
	out, err := exec.Command(curl, "-sS", "-i", "-H", "X-Gearman-Background: true", "-d", "later", srv.URL+"/upper").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "X-Gearman-Command: JOB_CREATED") {
		t.Fatalf("curl background: %v\n%s", err, out)
	}
	if job := w.grab(); job.args[3] != "later" {
		t.Fatalf("background data %q", job.args[3])
	}
}

// A foreground client that goes away abandons its job, as a Gearman client does.
func TestGearmanHTTPClientGone(t *testing.T) {
	e, srv := gearmanServer(t)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	deadline := time.Now().Add(5 * time.Second)
	for e.Status([]byte("H:api:1")).Clients != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the job never had its client")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	for e.Status([]byte("H:api:1")).Clients != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client that went away is still attached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
