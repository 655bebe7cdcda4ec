// Package tlstest makes certificates for tests: a certificate authority that signs server
// and client certificates (ECDSA P-256, valid from an hour ago for a day), as PEM bytes or
// files. It is imported by tests only.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	PEM  []byte // its certificate, to trust it (--ssl-ca-file)
}

var serial atomic.Int64

// NewCA makes an authority named cn.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Pool is a certificate pool that trusts the authority (a tls.Config's RootCAs or ClientCAs).
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// Issue signs a certificate for cn with the extra DNS and URI names given. A server one is
// also for 127.0.0.1 and localhost; a client one is for client authentication.
func (ca *CA) Issue(t testing.TB, cn string, server bool, dns []string, uris ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     dns,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// ClientCert is a client certificate for cn, ready for a tls.Config.
func (ca *CA) ClientCert(t testing.TB, cn string, dns []string, uris ...string) tls.Certificate {
	t.Helper()
	c, k := ca.Issue(t, cn, false, dns, uris...)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// Files are certificate files written into a directory.
type Files struct{ Cert, Key, CA string }

// WriteServer writes a server certificate for cn, its key and the CA's certificate into dir
// as NAME.pem, NAME.key and NAME-ca.pem.
func (ca *CA) WriteServer(t testing.TB, dir, name, cn string) Files {
	t.Helper()
	c, k := ca.Issue(t, cn, true, nil)
	return Files{
		Cert: WriteFile(t, filepath.Join(dir, name+".pem"), c),
		Key:  WriteFile(t, filepath.Join(dir, name+".key"), k),
		CA:   WriteFile(t, filepath.Join(dir, name+"-ca.pem"), ca.PEM),
	}
}

// WriteClient writes a client certificate for cn and its key into dir as NAME.pem, NAME.key.
func (ca *CA) WriteClient(t testing.TB, dir, name, cn string) Files {
	t.Helper()
	c, k := ca.Issue(t, cn, false, nil)
	return Files{Cert: WriteFile(t, filepath.Join(dir, name+".pem"), c), Key: WriteFile(t, filepath.Join(dir, name+".key"), k)}
}

// WriteFile writes b to path (mode 0600) and returns path.
func WriteFile(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
