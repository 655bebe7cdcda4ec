package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spur-gearman/spur/engine/tlsserver/tlstest"
)

// selfSigned writes a certificate for 127.0.0.1/localhost and its key into dir as CN.pem and
// CN.key. The certificate file also holds the CA that signed it, so that it is its own trust
// anchor (a client's --ssl-ca-file).
func selfSigned(t *testing.T, dir, cn string) (cert, key string) {
	t.Helper()
	ca := tlstest.NewCA(t, cn+" CA")
	c, k := ca.Issue(t, cn, true, nil)
	return tlstest.WriteFile(t, filepath.Join(dir, cn+".pem"), append(c, ca.PEM...)), tlstest.WriteFile(t, filepath.Join(dir, cn+".key"), k)
}

func TestSSLRefusesBadKeyMaterial(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "a")
	otherCert, _ := selfSigned(t, dir, "b")
	garbage := filepath.Join(dir, "garbage.pem")
	_ = os.WriteFile(garbage, []byte("junk"), 0o600)
	for _, tc := range []struct {
		args []string
		name string
	}{
		{[]string{"--ssl", "--ssl-certificate", filepath.Join(dir, "missing.pem"), "--ssl-key", key}, "missing.pem"},
		{[]string{"--ssl", "--ssl-certificate", garbage, "--ssl-key", key}, garbage},
		{[]string{"--ssl", "--ssl-certificate", cert, "--ssl-key", garbage}, garbage},
		{[]string{"--ssl", "--ssl-certificate", otherCert, "--ssl-key", key}, otherCert},
		{[]string{"--ssl"}, "--ssl-certificate"},
		{[]string{"--ssl", "--ssl-certificate", cert, "--ssl-key", key, "--ssl-verify-client"}, "--ssl-ca-file"},
	} {
		args := append([]string{"-q", "builtin", "-p", freePort(t), "-L", "127.0.0.1"}, tc.args...)
		cmd := exec.Command(spurdBin, args...)
		cmd.Env = append(os.Environ(), "GEARMAND_SERVER_PEM=", "GEARMAND_SERVER_KEY=", "GEARMAND_CA_CERTIFICATE=")
		out, err := cmd.CombinedOutput()
		if err == nil || cmd.ProcessState.ExitCode() == 0 {
			t.Fatalf("%v: started (%s)", tc.args, out)
		}
		if !strings.Contains(string(out), tc.name) {
			t.Fatalf("%v: message does not name %s: %s", tc.args, tc.name, out)
		}
	}
}

func TestSSLWithPlainPortAndOpenSSL(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "spur-test")
	plain := freePort(t)
	// The key material through gearmand's environment variables.
	t.Setenv("GEARMAND_SERVER_PEM", cert)
	t.Setenv("GEARMAND_SERVER_KEY", key)
	_, addr, stderr := startSpurd(t, "-q", "builtin", "--ssl", "--plain-port", plain)
	if got := adminLine(t, net.JoinHostPort("127.0.0.1", plain), "version"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("plaintext port: %q", got)
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS port: %v (%s)", err, stderr)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("version\r\n"))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "OK ") {
		t.Fatalf("version over TLS: %q %v", buf[:n], err)
	}
	// A plaintext admin command on the TLS port gets no answer.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = raw.Write([]byte("version\r\n"))
	_ = raw.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, _ := raw.Read(buf); strings.Contains(string(buf[:n]), "OK") {
		t.Fatalf("plaintext answered on the TLS port: %q", buf[:n])
	}
	raw.Close()

	out, err := exec.Command("openssl", "s_client", "-connect", addr, "-CAfile", cert, "-brief").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Protocol version") {
		t.Fatalf("openssl s_client: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "Protocol version: TLSv1.3") && !strings.Contains(string(out), "Protocol version: TLSv1.2") {
		t.Fatalf("openssl s_client did not negotiate TLS 1.2+: %s", out)
	}
	if !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl s_client did not verify the certificate: %s", out)
	}
	// TLS 1.1 is refused.
	if out, err := exec.Command("openssl", "s_client", "-connect", addr, "-tls1_1", "-brief").CombinedOutput(); err == nil && strings.Contains(string(out), "Protocol version") {
		t.Fatalf("TLS 1.1 accepted: %s", out)
	}
}

// installFile copies from to to as a deployment would: atomically, by a rename.
func installFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".new", to); err != nil {
		t.Fatal(err)
	}
}

// SIGHUP swaps the certificate and the access rules while clients keep working: open TLS
// connections doing round trips the whole time see no error, new handshakes get the new
// certificate, and the new rules apply.
func TestSIGHUPSwapsCertificateAndACLUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certA, keyA := selfSigned(t, dir, "first")
	certB, keyB := selfSigned(t, dir, "second")
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	installFile(t, certA, cert)
	installFile(t, keyA, key)
	aclFile := filepath.Join(dir, "acl")
	writeFile(t, aclFile, "[loopback]\nsubmit *\nadmin version status\n")
	cmd, addr, _ := startSpurd(t, "-q", "builtin", "--ssl", "--ssl-certificate", cert, "--ssl-key", key, "--acl", aclFile,
		"--log-file", filepath.Join(dir, "log"))
	dialTLS := func() *tls.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		c := dialTLS()
		defer c.Close()
		go func() {
			buf := make([]byte, 64)
			for n := 0; ; n++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte("version\r\n")); err != nil {
					errs <- err
					return
				}
				if k, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:k]), "OK ") {
					errs <- fmt.Errorf("round trip %d: %q, %v", n, buf[:k], err)
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	installFile(t, certB, cert)
	installFile(t, keyB, key)
	writeFile(t, aclFile, "[loopback]\nadmin version\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dialTLS()
		cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte("status\r\n"))
		buf := make([]byte, 128)
		k, _ := c.Read(buf)
		c.Close()
		if cn == "second" && strings.HasPrefix(string(buf[:k]), "ERR PERMISSION_DENIED") {
			break // the new certificate and the new rules
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP: certificate %q, status answered %q", cn, buf[:k])
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Errorf("a connection open across the SIGHUP: %v", err)
		}
	}
}

// --read-timeout holds over TLS too: a connection that sent part of a packet and nothing
// more is closed; an idle one stays.
func TestReadTimeoutOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "spur-test")
	_, addr, _ := startSpurd(t, "-q", "builtin", "--ssl", "--ssl-certificate", cert, "--ssl-key", key, "--read-timeout", "300ms")
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	slow, idle := dial(), dial()
	defer slow.Close()
	defer idle.Close()
	if _, err := slow.Write([]byte("\x00REQ\x00\x00\x00\x10\x00\x00\x00\x20hello")); err != nil { // 5 of 32 bytes
		t.Fatal(err)
	}
	_ = slow.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := slow.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection holding part of a packet: %v, want it closed", err)
	}
	time.Sleep(400 * time.Millisecond)
	_ = idle.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := idle.Write([]byte("version\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := idle.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "OK ") {
		t.Fatalf("an idle connection after the timeout: %q, %v", buf[:n], err)
	}
}
