package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/engine/tlsserver/tlstest"
)

// httpJSON does one request and decodes its JSON answer.
func httpJSON(t *testing.T, c *http.Client, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// The JSON API of a real spurd on --http-addr, bearer tokens from its --acl file, a
// foreground submit answered by a Gearman worker on the -p port, and /metrics beside it.
func TestHTTPAPIEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("deploy-secret"))
	aclFile := filepath.Join(dir, "acl")
	writeFile(t, aclFile, "token deploy sha256:"+hex.EncodeToString(sum[:])+"\n"+
		"[token:deploy]\nsubmit mail\nadmin pause status\nstatus *\n[loopback]\nwork *\nadmin status workers show\nstatus *\n")
	httpAddr := net.JoinHostPort("127.0.0.1", freePort(t))
	_, addr, _ := startSpurd(t, "-q", "builtin", "--http-addr", httpAddr, "--acl", aclFile)
	base := "http://" + httpAddr
	c := &http.Client{Timeout: 10 * time.Second}
	if code, m := httpJSON(t, c, "POST", base+"/api/jobs", "", `{"function":"mail","background":true}`); code != 403 {
		t.Fatalf("anonymous submit: %d %v", code, m)
	}
	if code, m := httpJSON(t, c, "GET", base+"/api/status", "nope", ""); code != 401 || m["error"].(map[string]any)["code"] != "UNAUTHORIZED" {
		t.Fatalf("unknown token: %d %v", code, m)
	}
	w := dialG(t, addr)
	w.sendStr(codec.CanDo, "mail")
	w.sync()
	done := make(chan map[string]any, 1)
	go func() {
		code, m := httpJSON(t, c, "POST", base+"/api/jobs", "deploy-secret", `{"function":"mail","data":"hi","wait":5}`)
		if code != 200 {
			t.Errorf("foreground: %d %v", code, m)
		}
		done <- m
	}()
	w.sendStr(codec.GrabJob)
	typ, body := w.recvWithin(5 * time.Second)
	for typ == codec.NoJob {
		time.Sleep(10 * time.Millisecond)
		w.sendStr(codec.GrabJob)
		typ, body = w.recvWithin(5 * time.Second)
	}
	if typ != codec.JobAssign {
		t.Fatalf("worker got %v", typ)
	}
	handle := string(body[:strings.IndexByte(string(body), 0)])
	w.sendStr(codec.WorkComplete, handle, "sent")
	if m := <-done; m["data"] != "sent" || m["handle"] != handle || m["outcome"] != "complete" {
		t.Fatalf("foreground answer: %v", m)
	}
	if code, m := httpJSON(t, c, "POST", base+"/api/functions/mail/pause", "deploy-secret", ""); code != 200 {
		t.Fatalf("pause with the token: %d %v", code, m)
	}
	if got := adminList(t, addr, "show paused"); len(got) != 1 || got[0] != "mail" {
		t.Fatalf("show paused: %q", got)
	}
	if code, _ := httpJSON(t, c, "POST", base+"/api/functions/mail/resume", "deploy-secret", ""); code != 403 {
		t.Fatalf("resume is not granted, got %d", code)
	}
	if code, m := httpJSON(t, c, "GET", base+"/api/workers", "", ""); code != 200 || len(m["workers"].([]any)) != 1 {
		t.Fatalf("workers: %d %v", code, m)
	}
	if resp, err := c.Get(base + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v", err)
	}
	resp, err := c.Get(base + "/api/openapi.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/openapi.json: %v", err)
	}
	resp.Body.Close()
}

// With --ssl, --http-addr is HTTPS with the Gearman port's certificate, reloaded on SIGHUP;
// with --ssl-verify-client it takes only clients with a certificate of --ssl-ca-file, whose
// name is the identity the ACL sees.
func TestHTTPSWithClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certA, keyA := selfSigned(t, dir, "first")
	certB, keyB := selfSigned(t, dir, "second")
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	installFile(t, certA, cert)
	installFile(t, keyA, key)
	ca := tlstest.NewCA(t, "test CA")
	caFile := tlstest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	aclFile := filepath.Join(dir, "acl")
	writeFile(t, aclFile, "[cert:ops-*]\nadmin status pause\n[any]\nadmin status\n")
	httpAddr := net.JoinHostPort("127.0.0.1", freePort(t))
	cmd, _, _ := startSpurd(t, "-q", "builtin", "--ssl", "--ssl-certificate", cert, "--ssl-key", key, "--ssl-ca-file", caFile,
		"--ssl-verify-client", "--acl", aclFile, "--http-addr", httpAddr, "--log-file", filepath.Join(dir, "log"))
	base := "https://" + httpAddr
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: certs}}}
	}
	ops := client(ca.ClientCert(t, "ops-1", nil))
	if code, m := httpJSON(t, ops, "GET", base+"/api/me", "", ""); code != 200 ||
		m["identity"].(map[string]any)["name"] != "ops-1" || m["may"].(map[string]any)["pause"] != true {
		t.Fatalf("ops me: %d %v", code, m)
	}
	if code, _ := httpJSON(t, ops, "POST", base+"/api/functions/x/pause", "", ""); code != 200 {
		t.Fatalf("ops pause: %d", code)
	}
	web := client(ca.ClientCert(t, "web-1", nil))
	if code, _ := httpJSON(t, web, "POST", base+"/api/functions/x/pause", "", ""); code != 403 {
		t.Fatalf("web pause: %d", code)
	}
	if _, err := client().Get(base + "/api/status"); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + httpAddr + "/api/status"); err == nil && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plaintext HTTP was served: %s", resp.Status)
	}
	serverName := func() string {
		c, err := tls.Dial("tcp", httpAddr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{ca.ClientCert(t, "ops-2", nil)}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := serverName(); got != "first" {
		t.Fatalf("server certificate %q", got)
	}
	installFile(t, certB, cert)
	installFile(t, keyB, key)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for serverName() != "second" {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not swap the HTTPS certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gearmand's HTTP interface on --http-port (-r http, as gearmand is told).
func TestGearmandHTTPPort(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	_, addr, _ := startSpurd(t, "-q", "builtin", "-r", "http", "--http-port", port)
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 2 { // two requests on one kept-alive connection
		fmt.Fprintf(c, "POST /resize HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\nX-Gearman-Unique: u%d\r\nContent-Length: 1\r\n\r\n%d", i, i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("X-Gearman-Command") != "JOB_CREATED" || resp.Header.Get("X-Gearman-Job-Handle") == "" {
			t.Fatalf("background %d: %v %v", i, resp.Status, resp.Header)
		}
	}
	if got := adminList(t, addr, "status"); len(got) != 1 || got[0] != "resize\t2\t0\t0" {
		t.Fatalf("status: %q", got)
	}
}

func TestHTTPFlags(t *testing.T) {
	o, _, err := parseFlags([]string{"-r", "http"}, io.Discard)
	if err != nil || o.validate() != nil || o.httpPort != "8080" {
		t.Fatalf("-r http: %v %+v", err, o)
	}
	o, _, _ = parseFlags([]string{"-r", "gopher"}, io.Discard)
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "--protocol") {
		t.Fatalf("-r gopher: %v", err)
	}
	o, _, _ = parseFlags([]string{"--http-port", "4730"}, io.Discard)
	if err := o.validate(); err == nil {
		t.Fatal("--http-port on the Gearman port was accepted")
	}
}
