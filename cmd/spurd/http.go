package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/cluster"
	"github.com/spur-gearman/spur/engine/dashboard"
	"github.com/spur-gearman/spur/engine/httpapi"
	"github.com/spur-gearman/spur/engine/metrics"
	"github.com/spur-gearman/spur/engine/tlsserver"
)

// httpConfig is what the HTTP doors are served with.
type httpConfig struct {
	addr         string   // --http-addr; "" = off
	gearmanAddrs []string // --http-port on every -L address; nil = off
	keys         *tlsserver.Keys
	tokens       httpapi.TokenResolver // nil without --acl: no token is known
	started      time.Time
	jobLog       metrics.Log // the durable queue's log, for its metrics; nil with -q builtin
	cluster      httpapi.ClusterOptions
}

// clusterView is what /api/cluster/... shows beside this node (self, its Gearman address):
// the --peer nodes, read within --peer-timeout through their Gearman port, over TLS with
// this node's key material when it serves TLS (verified against --ssl-ca-file, presenting
// its own certificate to peers that ask for one).
func clusterView(o *options, keys *tlsserver.Keys, self string) httpapi.ClusterOptions {
	if host, port, err := net.SplitHostPort(self); err == nil && host == "" {
		if name, err := os.Hostname(); err == nil {
			self = net.JoinHostPort(name, port)
		}
	}
	opts := cluster.Options{Timeout: o.peerTimeout}
	if keys != nil {
		opts.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			d := tls.Dialer{Config: keys.ClientConfig(host)}
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return httpapi.ClusterOptions{Self: self, Peers: o.peers, Reader: cluster.New(opts)}
}

// serveHTTP starts the HTTP servers, on goroutines of net/http's own (never on the event
// loops). On --http-addr:
//
//	/api/...  the JSON API (package engine/httpapi), with its OpenAPI document at /api/openapi.json
//	/metrics  Prometheus text format: the engine's families (package engine/metrics), Go's
//	          runtime and the process's
//	/healthz  200 "ok" while the process serves
//	/readyz   200 "ready" while it takes jobs, 503 "draining" once a shutdown began
//
// over HTTPS when the Gearman port speaks TLS (--ssl): the same certificate and key, reloaded
// with them on SIGHUP, and with --ssl-verify-client the same client certificates, whose names
// are the request's identity. On --http-port, gearmand's HTTP submit interface
// (httpapi.GearmanHandler), plaintext as gearmand's. It returns a stop that shuts them down
// gracefully.
func serveHTTP(c httpConfig, e *engine.Engine, logger *slog.Logger) (stop func(), err error) {
	var servers []*http.Server
	stopAll := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, srv := range servers {
			wg.Add(1)
			go func() { defer wg.Done(); _ = srv.Shutdown(ctx) }()
		}
		wg.Wait()
	}
	opts := httpapi.Options{Tokens: c.tokens, Started: c.started, Logger: logger, Cluster: c.cluster}
	start := func(addr, what string, h http.Handler, keys *tlsserver.Keys, writeTimeout time.Duration) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if keys != nil {
			l = tls.NewListener(l, keys.Config())
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			WriteTimeout: writeTimeout, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("an HTTP server stopped", "addr", addr, "error", err)
			}
		}()
		logger.Info("HTTP listening", "addr", l.Addr().String(), "serves", what, "tls", keys != nil)
		return nil
	}
	if c.addr != "" {
		gatherer, err := metrics.Gatherer(e, c.jobLog, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError)}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if e.Draining() {
				http.Error(w, "draining", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
		mux.Handle("/api/", httpapi.New(e, opts))
		mux.Handle("/", dashboard.Handler()) // the live dashboard; more specific patterns (the API's) win over "/"
		// A foreground submit extends its own write deadline to its wait.
		if err := start(c.addr, "--http-addr", mux, c.keys, time.Minute); err != nil {
			return nil, err
		}
	}
	for _, addr := range c.gearmanAddrs {
		// No write timeout: a foreground submit waits for its job as long as its client does.
		if err := start(addr, "--http-port", httpapi.GearmanHandler(e, opts), nil, 0); err != nil {
			stopAll()
			return nil, err
		}
	}
	return stopAll, nil
}
