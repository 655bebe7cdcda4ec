package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// Perl's Gearman::Client and Gearman::Worker over TLS (use_ssl, IO::Socket::SSL) against
// spurd --ssl --ssl-verify-client: with a client certificate signed by the CA a real round
// trip works; without one, with one from another CA, or in plaintext, the client gets no
// result. (Debian's libgearman, and so PHP and the gearman CLI, are built without TLS.)
func TestPerlOverMutualTLS(t *testing.T) { forEachMode(t, testPerlOverMutualTLS) }

func testPerlOverMutualTLS(t *testing.T, srv serverMode) {
	requirePerl(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca", "Spur test CA")
	ca.issue(t, dir, "server", "localhost", true)
	ca.issue(t, dir, "client", "perl-worker", false)
	other := newTestCA(t, dir, "other", "Another CA")
	other.issue(t, dir, "stranger", "stranger", false)
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

// testCA issues certificates for the tests, written as NAME.pem and NAME.key.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, dir, name, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) issue(t *testing.T, dir, name, cn string, server bool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".key"), "PRIVATE KEY", kder)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
