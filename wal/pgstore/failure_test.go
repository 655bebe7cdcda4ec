package pgstore

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spur-gearman/spur/wal"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

// eventually polls cond every 50 ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With the database stopped, Puts are acknowledged with an error (never nil), Writable says
// why, claims fail, NextSeq fails once its numbers run out, and the leader steps down; with
// it started again, the same store recovers by itself: Writable is nil again, Puts commit,
// a Delete made while it was down is applied, and the leadership is taken again.
func TestDatabaseStoppedThenRestarted(t *testing.T) {
	t.Parallel()
	srv := pgtest.New(t, pgtest.Options{})
	dsn := srv.NewDatabase(t)
	s, _ := openStore(t, dsn, "a", func(o *Options) { o.CommitTimeout = 3 * time.Second })
	leader := make(chan bool, 16)
	s.OnLeader(func(l bool) { leader <- l })
	if l := <-leader; !l {
		t.Fatal("not the leader")
	}
	done := job(t, s, "f", "")
	if err := put(t, s, done); err != nil {
		t.Fatal(err)
	}
	if err := s.Writable(); err != nil {
		t.Fatal(err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(done.Seq); err != nil { // the job ended while the database was down
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := put(t, s, job(t, s, "f", "")); err == nil {
			t.Fatal("a Put was acknowledged with the database stopped")
		}
	}
	if err := s.Writable(); err == nil {
		t.Fatal("Writable is nil with the database stopped")
	}
	if _, err := s.Claim(context.Background(), []string{"f"}, 1); err == nil {
		t.Fatal("a claim succeeded with the database stopped")
	}
	select {
	case l := <-leader:
		if l {
			t.Fatal("told leader again while the database is down")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the leader did not step down within 5 s of the database stopping")
	}
	var seqErr error
	for i := 0; i < 3*1024 && seqErr == nil; i++ {
		_, seqErr = s.NextSeq()
	}
	if !errors.Is(seqErr, ErrNoNumbers) {
		t.Fatalf("NextSeq with its numbers used up and the database down: %v", seqErr)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "Writable after the restart", func() bool { return s.Writable() == nil })
	var seq uint64
	eventually(t, 10*time.Second, "NextSeq after the restart", func() bool {
		var err error
		seq, err = s.NextSeq()
		return err == nil
	})
	r := wal.Record{Seq: seq, Handle: "H:t:after", Function: "f", Data: []byte("after")}
	if err := put(t, s, r); err != nil {
		t.Fatalf("Put after the restart: %v", err)
	}
	db := sqlDB(t, dsn)
	eventually(t, 10*time.Second, "the delete made while down applied", func() bool {
		return count(t, db, "SELECT count(*) FROM spur_jobs WHERE seq = $1", int64(done.Seq)) == 0
	})
	if n := count(t, db, "SELECT count(*) FROM spur_jobs"); n != 1 {
		t.Fatalf("%d rows after the restart, want only the job put after it", n)
	}
	select {
	case l := <-leader:
		if !l {
			t.Fatal("told false again")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the leadership was not taken again within 5 s of the restart")
	}
	if got := claim(t, s, 5, "f"); len(got) != 0 {
		t.Fatalf("claimed %d of this node's own held jobs", len(got))
	}
}

// A node's own queued jobs survive a crash of the database host (fsync on): SIGKILL of
// every PostgreSQL process, then a start; the node recovers them.
func TestAcknowledgedJobsSurviveDatabaseCrash(t *testing.T) {
	t.Parallel()
	srv := pgtest.New(t, pgtest.Options{Fsync: true})
	dsn := srv.NewDatabase(t)
	s, _ := openStore(t, dsn, "a")
	var want []uint64
	done := make(ackChan, 200)
	for i := 0; i < 200; i++ {
		r := job(t, s, "f", "")
		if err := s.Put(r, done); err != nil {
			t.Fatal(err)
		}
		want = append(want, r.Seq)
	}
	for range want {
		if err := waitAck(t, done); err != nil {
			t.Fatal(err)
		}
	}
	srv.Kill()
	s.Close()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	_, rec := openStore(t, dsn, "a")
	if len(rec.Jobs) != len(want) {
		t.Fatalf("%d of %d acknowledged jobs after the crash", len(rec.Jobs), len(want))
	}
	for i, r := range rec.Jobs {
		if r.Seq != want[i] {
			t.Fatalf("job %d is %d, want %d", i, r.Seq, want[i])
		}
	}
}

// dropProxy forwards TCP connections to a server; while armed, the server's next answer on
// any connection is thrown away and both ends closed: a connection lost after the server
// did the work (a commit) and before the client heard of it.
type dropProxy struct {
	l     net.Listener
	to    string
	armed atomic.Bool
}

func newDropProxy(t *testing.T, to string) *dropProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{l: l, to: to}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *dropProxy) serve(c net.Conn) {
	s, err := net.Dial("tcp", p.to)
	if err != nil {
		c.Close()
		return
	}
	go func() { io.Copy(s, c); s.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 && p.armed.Load() {
			break
		}
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.Close()
	s.Close()
}

// A commit whose answer is lost is acknowledged with an error saying its outcome is
// unknown; the job it did write is given up (owner NULL), for any node to claim, not left
// held by a node whose engine does not have it.
func TestCommitOfUnknownOutcomeGivesTheJobUp(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newDropProxy(t, u.Host)
	u.Host = proxy.l.Addr().String()
	s, _ := openStore(t, u.String(), "a", func(o *Options) { o.Lease = time.Hour })
	db := sqlDB(t, dsn)
	// A first Put prepares the statement on the connection (pgx prepares it in a round trip
	// of its own, whose answer must not be the one dropped) and leaves it fresh (not pinged).
	if err := put(t, s, job(t, s, "f", "warm")); err != nil {
		t.Fatal(err)
	}
	r := job(t, s, "f", "u")
	proxy.armed.Store(true)
	err = put(t, s, r)
	proxy.armed.Store(false)
	if err == nil || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("Put whose commit's answer was lost: %v", err)
	}
	if n := count(t, db, "SELECT count(*) FROM spur_jobs WHERE seq = $1", int64(r.Seq)); n != 1 {
		t.Fatalf("the commit whose answer was lost wrote %d rows (the test's proxy dropped it too early)", n)
	}
	eventually(t, 10*time.Second, "the job given up", func() bool {
		return count(t, db, "SELECT count(*) FROM spur_jobs WHERE seq = $1 AND owner IS NULL", int64(r.Seq)) == 1
	})
	b, _ := openStore(t, dsn, "b")
	if got := claim(t, b, 5, "f"); len(got) != 1 || got[0].Seq != r.Seq { // not the warm-up job: a holds it
		t.Fatalf("another node claimed %v", seqsOf(got))
	}
}
