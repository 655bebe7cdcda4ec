package interop

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/spur-gearman/spur/engine/tlsserver/tlstest"
)

// Perl's Gearman::Client and Gearman::Worker over TLS (use_ssl, IO::Socket::SSL) against
// spurd --ssl --ssl-verify-client: with a client certificate signed by the CA a real round
// trip works; without one, with one from another CA, or in plaintext, the client gets no
// result. (Debian's libgearman, and so PHP and the gearman CLI, are built without TLS.)
func TestPerlOverMutualTLS(t *testing.T) { forEachMode(t, testPerlOverMutualTLS) }

func testPerlOverMutualTLS(t *testing.T, srv serverMode) {
	requirePerl(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "Spur test CA")
	tlstest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	ca.WriteServer(t, dir, "server", "localhost")
	ca.WriteClient(t, dir, "client", "perl-worker")
	other := tlstest.NewCA(t, "Another CA")
	tlstest.WriteFile(t, filepath.Join(dir, "other.pem"), other.PEM)
	other.WriteClient(t, dir, "stranger", "stranger")
	addr, _ := srv.start(t, "--ssl", "--ssl-certificate", filepath.Join(dir, "server.pem"),
		"--ssl-key", filepath.Join(dir, "server.key"), "--ssl-ca-file", filepath.Join(dir, "ca.pem"), "--ssl-verify-client")
	tlsEnv := func(cert string) []string {
		env := []string{"GEARMAN_SSL=1", "SSL_CA_FILE=" + filepath.Join(dir, "ca.pem")}
		if cert != "" {
			env = append(env, "SSL_CERT_FILE="+filepath.Join(dir, cert+".pem"), "SSL_KEY_FILE="+filepath.Join(dir, cert+".key"))
		}
		return env
	}
	fn := fnName(t, "tls")
	w := perlWorker(t, addr, tlsEnv("client"), 2, fn+"=reverse")
	client := func(env []string) []string {
		return startProc(t, env, "perl", "client.pl", addr, "do", fn, "stressed").mustExit()
	}
	if got, want := client(tlsEnv("client")), []string{"RESULT desserts", "OK"}; !reflect.DeepEqual(got, want) {
		t.Errorf("client with a certificate: %q, want %q", got, want)
	}
	for name, env := range map[string][]string{
		"no certificate":        tlsEnv(""),
		"another CA's":          tlsEnv("stranger"),
		"plaintext on TLS port": nil,
	} {
		// Refused, Gearman::Client dies ("reading response packet failed") or returns undef.
		lines, _ := startProc(t, env, "perl", "client.pl", addr, "do", fn, "stressed").wait()
		if slices.Contains(lines, "RESULT desserts") {
			t.Errorf("client with %s got a result: %q", name, lines)
		}
	}
	// The worker, which served nobody meanwhile, serves the next client with a certificate.
	if got, want := client(tlsEnv("client")), []string{"RESULT desserts", "OK"}; !reflect.DeepEqual(got, want) {
		t.Errorf("client with a certificate after the refusals: %q, want %q", got, want)
	}
	w.mustExit()
}
