package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

// openLog makes spurd's logger: --verbose's level, --log-format's handler, --log-file's
// destination. A log file is reopened on SIGHUP (after logrotate moved it away) until the
// returned closer runs.
func openLog(o *options, stderr io.Writer) (*slog.Logger, func(), error) {
	level := levels[strings.ToUpper(o.verbose)]
	var w io.Writer
	closer := func() {}
	switch o.logFile {
	case "stderr", "":
		w = stderr
	case "none":
		w = io.Discard
	default:
		f, err := openLogFile(o.logFile)
		if err != nil {
			return nil, nil, err
		}
		w = f
		stop := f.reopenOnHUP()
		closer = func() { stop(); f.close() }
	}
	opts := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), closer, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), closer, nil
}

// logFile is a log file that can be reopened under the same name while it is written to.
type logFile struct {
	path string
	mu   sync.Mutex // guards f; held across each write, so a line never straddles two files
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open log file: %w", err)
	}
	return &logFile{path: path, f: f}, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// reopen opens the path again and writes there from now on; if it cannot, the old file
// stays, and the failure is written to it.
func (l *logFile) reopen() {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		fmt.Fprintf(l.f, "spurd: cannot reopen the log file on SIGHUP, still writing to the old one: %v\n", err)
		return
	}
	l.f.Close()
	l.f = f
}

// reopenOnHUP reopens the file on every SIGHUP until the returned stop is called.
func (l *logFile) reopenOnHUP() (stop func()) { return onHUP(l.reopen) }

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Close()
}

// onSIGHUP runs reload on every SIGHUP until the returned stop is called. A SIGHUP is never
// fatal to spurd, whatever it has to reload (the log file reopens itself: openLog).
func onSIGHUP(logger *slog.Logger, reload func()) (stop func()) {
	return onHUP(func() {
		logger.Info("SIGHUP")
		reload()
	})
}

// onHUP calls f on every SIGHUP, on a goroutine of its own, until the returned stop is called.
func onHUP(f func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				f()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}
