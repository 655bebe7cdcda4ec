package main

import (
	"strings"
	"testing"

	"github.com/spur-gearman/spur/engine/tlsserver/tlstest"
)

func TestTLS(t *testing.T) {
	files := tlstest.NewCA(t, "spur test CA").WriteServer(t, t.TempDir(), "server", "spur test")
	port := startServer(t, spurdBin, "-q", "builtin", "--ssl", "--ssl-certificate", files.Cert, "--ssl-key", files.Key)
	tls := []string{"--ssl", "--ssl-ca-file", files.CA}
	ok(t, port, append(tls, "submit", "--bg", "resize", "x")...)
	if f := row(ok(t, port, append(tls, "status")...), "resize"); len(f) < 2 || f[1] != "1" {
		t.Fatalf("status over TLS: %q", f)
	}
	// A server certificate spur cannot verify: it does not connect.
	if r := spur(t, port, "", "--ssl", "status"); r.code != 3 || !strings.Contains(r.err, "certificate") {
		t.Fatalf("unverified server: %+v", r)
	}
}
