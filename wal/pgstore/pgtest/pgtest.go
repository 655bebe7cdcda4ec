// Package pgtest runs a real PostgreSQL server for tests: Debian's initdb and postgres from
// /usr/lib/postgresql/*/bin (the newest installed), in a temporary directory, on a loopback
// port it picks, as the postgres user when the tests run as root (PostgreSQL refuses root).
// A missing PostgreSQL fails the test with a message saying what to install; it never skips.
//
// Shared starts one server per test binary (fsync off: fast, for tests that do not crash
// it) and Database hands each test a fresh database on it; a package using them runs its
// tests through Main, which stops the server and removes its directory at the end. New
// starts a private server for a test that stops, restarts or kills it, or needs fsync.
//
//	+-------------------+------------------------------------------------------------------+
//	| call              | what it gives                                                    |
//	+-------------------+------------------------------------------------------------------+
//	| Main(m)           | runs the tests, then stops the shared server and removes its dir |
//	| Database(t)       | the DSN of a new database on the shared server                   |
//	| New(t, opts)      | a private server, stopped and removed when t ends                |
//	| s.NewDatabase(t)  | the DSN of a new database on s                                   |
//	| s.Stop/Start/Kill | a fast shutdown / a start on the same port and data / SIGKILL    |
//	+-------------------+------------------------------------------------------------------+
//
// Every server runs in a process group of its own, started from an OS thread that lives as
// long as the test binary with PR_SET_PDEATHSIG, so that a test binary that dies (a panic,
// a timeout) takes its servers with it instead of leaving them running.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure a server.
type Options struct {
	// Fsync keeps PostgreSQL's fsync on: for tests that kill the server and count on what
	// it acknowledged. Off (the default) is much faster and loses nothing unless the
	// machine itself crashes.
	Fsync bool
	// Settings are more `-c name=value` settings, e.g. "log_min_messages=debug1".
	Settings []string
}

// Server is one running (or stopped) PostgreSQL server.
type Server struct {
	Port int
	dir  string // the temporary directory: data/, the socket, log
	opts Options
	bin  string

	mu   sync.Mutex
	proc *os.Process // nil while stopped
	done chan struct{}
	dbs  int
}

// Start makes a new server: initdb in a new temporary directory, then the server on a free
// loopback port. Close stops it and removes the directory.
func Start(opts Options) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "spur-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, opts: opts, bin: bin}
	if err := s.initdb(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A port picked free may be taken by someone else before the server binds it: try a
	// few.
	for try := 0; ; try++ {
		s.Port, err = freePort()
		if err == nil {
			err = s.Start()
		}
		if err == nil || try == 4 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// binDir is the newest installed PostgreSQL's bin directory (Debian keeps it off PATH).
func binDir() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(found) == 0 {
		return "", errors.New("pgtest: PostgreSQL is needed by this test and is not installed " +
			"(no /usr/lib/postgresql/*/bin/postgres): apt-get install postgresql (.ci/run does)")
	}
	version := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) < version(found[j]) })
	return filepath.Dir(found[len(found)-1]), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// asPostgres is the credential the server runs with: the postgres user's when the tests run
// as root, nil (this process's own) otherwise.
func asPostgres() (*syscall.Credential, error) {
	if os.Getuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, PostgreSQL needs the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) initdb() error {
	cred, err := asPostgres()
	if err != nil {
		return err
	}
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return err
	}
	if cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", s.data(), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	return nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }
func (s *Server) logFile() string {
	return filepath.Join(s.dir, "postgres.log")
}

// Start starts the server (again) on its port and data, and waits until it accepts
// connections (30 s at most).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	cred, err := asPostgres()
	if err != nil {
		return err
	}
	fsync := "off"
	if s.opts.Fsync {
		fsync = "on"
	}
	args := []string{"-D", s.data(), "-p", strconv.Itoa(s.Port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=" + fsync, "-c", "max_connections=300",
		"-c", "log_min_messages=warning"}
	if !s.opts.Fsync {
		args = append(args, "-c", "full_page_writes=off", "-c", "synchronous_commit=off")
	}
	for _, c := range s.opts.Settings {
		args = append(args, "-c", c)
	}
	log, err := os.OpenFile(s.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.proc, s.done = cmd.Process, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.dsn("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			s.proc = nil
			return fmt.Errorf("pgtest: postgres exited at start (port %d): %s", s.Port, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("pgtest: postgres does not accept connections on port %d after 30 s: %v\n%s", s.Port, err, s.logTail())
		}
	}
}

// Stop shuts the server down fast (SIGINT: open sessions are ended, what was committed is
// kept) and waits for it. The data stays for Start.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	_ = s.proc.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.killLocked()
		return fmt.Errorf("pgtest: postgres did not stop on SIGINT within 30 s: %s", s.logTail())
	}
	s.proc = nil
	return nil
}

// Kill ends the server and every backend of it with SIGKILL, as a crash of the database
// host would (with Fsync, what it committed survives).
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.proc == nil {
		return
	}
	_ = syscall.Kill(-s.proc.Pid, syscall.SIGKILL) // its process group: the backends too
	<-s.done
	s.proc = nil
	// Backends of a killed postmaster may outlive it for a moment; a restart must find none.
	time.Sleep(100 * time.Millisecond)
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	if err != nil {
		s.Kill()
	}
	os.RemoveAll(s.dir)
	return err
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logFile())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (s *Server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

var dbNames atomic.Int64

// CreateDatabase creates a new, empty database and returns its DSN.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("spur_test_%d_%d", os.Getpid(), dbNames.Add(1))
	c, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 STRATEGY file_copy"); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.dsn(name), nil
}

// NewDatabase is CreateDatabase for a test: its failure fails t.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// New starts a private server for t, closed when t ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared is the test binary's shared server (fsync off), started by the first test that
// asks. A package that uses it runs its tests through Main.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() { shared.s, shared.err = Start(Options{}) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.s
}

// Database is the DSN of a new database on the shared server.
func Database(t testing.TB) string {
	t.Helper()
	return Shared(t).NewDatabase(t)
}

// Main runs m's tests, closes the shared server if one was started, and exits with the
// tests' code. Call it from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if shared.s != nil {
		if err := shared.s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// spawn starts cmd from an OS thread that never exits: PR_SET_PDEATHSIG fires when the
// thread that forked the child ends, and Go ends idle threads.
func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.req = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for r := range spawner.req {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.req <- spawnReq{cmd, done}
	return <-done
}

var spawner struct {
	once sync.Once
	req  chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// Log returns the server's log so far (its last few kilobytes), for a failing test's message.
func (s *Server) Log() string { return strings.TrimSpace(s.logTail()) }
