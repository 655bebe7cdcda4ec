package tlsserver

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Files names the key material on disk: PEM files, as gearmand's --ssl-certificate,
// --ssl-key and --ssl-ca-file take them.
type Files struct {
	Cert string // the server's certificate, and any intermediates after it
	Key  string // its private key
	CA   string // CAs a client certificate must chain to; "" = client certificates are not asked for
	// VerifyClient refuses a client that does not present a certificate signed by CA.
	VerifyClient bool
}

// Keys holds the current key material. Reload swaps all of it at once, so a handshake sees
// either the old certificate and CA pool or the new ones, never a mix; connections already
// established keep their session.
type Keys struct {
	files Files
	cur   atomic.Pointer[material]
	base  *tls.Config // what every handshake shares, among it the session ticket keys
}

// material is one generation of key material and the handshake configuration made of it.
type material struct {
	cert     *tls.Certificate
	leaf     *x509.Certificate
	clientCA *x509.CertPool // nil without a CA file
	config   *tls.Config    // base with clientCA; returned by GetConfigForClient
}

// LoadKeys reads the key material named by f. Its errors name the file at fault.
func LoadKeys(f Files) (*Keys, error) {
	if f.VerifyClient && f.CA == "" {
		return nil, errors.New("--ssl-verify-client needs --ssl-ca-file (the CA client certificates must be signed by)")
	}
	k := &Keys{files: f}
	k.base = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.2 suites: forward secrecy (ECDHE) and AEAD only. TLS 1.3's are fixed by Go
		// and all of that kind.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		// Session tickets stay on (Go's default): a reconnecting client resumes without a
		// full handshake. The ticket keys belong to base and survive reloads.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return k.cur.Load().cert, nil },
	}
	k.base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return k.cur.Load().config, nil }
	m, err := k.load()
	if err != nil {
		return nil, err
	}
	k.cur.Store(m)
	return k, nil
}

// Config is the configuration a listener hands to tls.Server.
func (k *Keys) Config() *tls.Config { return k.base }

// Reload reads the files again and, when all of them are usable, swaps them in. On an error
// the key material in use stays as it was.
func (k *Keys) Reload() error {
	m, err := k.load()
	if err != nil {
		return err
	}
	k.cur.Store(m)
	return nil
}

// ClientConfig is a configuration to connect to another server of the same deployment (a
// cluster peer, at host serverName): its certificate verified against the CA file (the
// system's roots without one), and this server's certificate presented when the other one
// asks for one, if it is valid for client authentication (a certificate for servers only
// would make a server that checks what it is given refuse the connection). Each call reads
// the key material in use, so that a Reload applies to the next connection.
func (k *Keys) ClientConfig(serverName string) *tls.Config {
	m := k.cur.Load()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		RootCAs:    m.clientCA,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if forClients(m.leaf) {
				return m.cert, nil
			}
			return &tls.Certificate{}, nil // none
		},
	}
}

// forClients reports whether c may authenticate a client: no extended key usage at all, or
// one that allows it.
func forClients(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// Leaf is the server certificate in use.
func (k *Keys) Leaf() *x509.Certificate { return k.cur.Load().leaf }

func (k *Keys) load() (*material, error) {
	f := k.files
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("TLS needs both --ssl-certificate and --ssl-key (or GEARMAND_SERVER_PEM and GEARMAND_SERVER_KEY)")
	}
	certPEM, err := readPEM(f.Cert, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("--ssl-certificate %s: %w", f.Cert, err)
	}
	keyPEM, err := readPEM(f.Key, "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("--ssl-key %s: %w", f.Key, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--ssl-certificate %s with --ssl-key %s: %w", f.Cert, f.Key, err)
	}
	m := &material{cert: &cert, leaf: cert.Leaf}
	if m.leaf == nil {
		if m.leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--ssl-certificate %s: %w", f.Cert, err)
		}
	}
	if time.Now().After(m.leaf.NotAfter) {
		return nil, fmt.Errorf("--ssl-certificate %s: expired on %s", f.Cert, m.leaf.NotAfter.Format(time.DateOnly))
	}
	if f.CA != "" {
		caPEM, err := readPEM(f.CA, "CERTIFICATE")
		if err != nil {
			return nil, fmt.Errorf("--ssl-ca-file %s: %w", f.CA, err)
		}
		m.clientCA = x509.NewCertPool()
		if !m.clientCA.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("--ssl-ca-file %s: no usable certificate in it", f.CA)
		}
	}
	m.config = k.base.Clone()
	m.config.GetConfigForClient = nil
	m.config.ClientCAs = m.clientCA
	switch {
	case f.VerifyClient:
		m.config.ClientAuth = tls.RequireAndVerifyClientCert
	case m.clientCA != nil:
		// gearmand loads the CA but never asks: here a client may present a certificate
		// and is then named by it, and one that presents none is still served.
		m.config.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return m, nil
}

// readPEM reads file and checks that it holds a PEM block whose type ends in kind.
func readPEM(file, kind string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return nil, fmt.Errorf("no PEM %s block in it", kind)
		}
		if strings.HasSuffix(blk.Type, kind) {
			return b, nil
		}
	}
}

// PeerNames are the verified names of a client certificate: its subject's common name
// first (when it has one), then its DNS and URI subject alternative names. nil when the
// client presented no certificate.
func PeerNames(cs tls.ConnectionState) []string {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	leaf := cs.VerifiedChains[0][0]
	var names []string
	if leaf.Subject.CommonName != "" {
		names = append(names, leaf.Subject.CommonName)
	}
	names = append(names, leaf.DNSNames...)
	for _, u := range leaf.URIs {
		names = append(names, u.String())
	}
	return names
}
