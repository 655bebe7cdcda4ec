package engine

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/wal/waltest"
)

// Concurrent submitters against a store that is slow and sometimes refuses: every
// JOB_CREATED a client sees names a job whose record was already committed, whether the
// submit made a new job, coalesced onto one (perhaps one whose own write was then refused)
// or promoted a foreground job; every other answer is an ERROR, and every submit is
// answered.
func TestEveryAcknowledgedJobIsInTheLog(t *testing.T) {
	t.Parallel()
	store := waltest.New(true)
	defer store.Close()
	store.SetDelay(200 * time.Microsecond)
	addr := startServer(t, Config{Store: store})

	stop := make(chan struct{})
	var flipper sync.WaitGroup
	flipper.Add(1)
	go func() { // the disk fills and frees itself again, over and over
		defer flipper.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				store.SetMode(waltest.OK)
				return
			case <-time.After(3 * time.Millisecond):
			}
			if i%2 == 0 {
				store.SetMode(waltest.Full)
			} else {
				store.SetMode(waltest.OK)
			}
		}
	}()

	const submitters, perSubmitter = 4, 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, refused := 0, 0
	for n := 0; n < submitters; n++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			c := dial(t, addr)
			fg := dial(t, addr)
			for i := 0; i < perSubmitter; i++ {
				unique := ""
				switch i % 4 {
				case 1:
					unique = fmt.Sprintf("shared-%d", i/8) // coalesces across submitters
				case 2:
					// a foreground job first, then a background submit joins (promotes) it
					unique = fmt.Sprintf("promote-%d-%d", n, i)
					fg.send(codec.SubmitJob, "acked", unique, "fg")
				}
				c.send(codec.SubmitJobBg, "acked", unique, "x")
				p, err := c.tryRecv(10 * time.Second)
				if err != nil {
					t.Errorf("submit %d of submitter %d not answered: %v", i, n, err)
					return
				}
				mu.Lock()
				switch {
				case p.typ == codec.JobCreated && store.IsWritten(p.args[0]):
					created++
				case p.typ == codec.JobCreated:
					t.Errorf("JOB_CREATED %s before its record was committed", p.args[0])
				case p.typ == codec.Error && p.args[0] == codec.CodeQueueError:
					refused++
				default:
					t.Errorf("submit answered %v", p)
				}
				mu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	close(stop)
	flipper.Wait()
	t.Logf("%d acknowledged, %d refused", created, refused)
	if created == 0 || refused == 0 {
		t.Errorf("%d acknowledged and %d refused: the run did not exercise both", created, refused)
	}
}

// A commit that fails fails the submits in it with an ERROR; the server keeps serving (the
// store stays failed, so later submits are refused at once) and nothing waits forever.
func TestFailedCommitFailsItsSubmits(t *testing.T) {
	t.Parallel()
	store := waltest.New(false)
	defer store.Close()
	addr := startServer(t, Config{Store: store})
	c, w := dial(t, addr), dial(t, addr)
	store.SetMode(waltest.Fail)
	c.send(codec.SubmitJobBg, "fails", "", "1")
	c.send(codec.SubmitJobBg, "fails", "", "2")
	c.send(codec.EchoReq, "behind") // held behind the two answers
	c.expectNothing(50 * time.Millisecond)
	store.Flush()
	for i := 0; i < 2; i++ {
		c.expectErrorPacket(codec.CodeQueueError, waltest.ErrInjected.Error())
	}
	c.expectBody(codec.EchoRes, "behind")
	// The log stays failed: later submits are refused at once, foreground ones too (their
	// handles come from the log's reservations), and nothing queued is handed out; the
	// connection and the admin commands keep working.
	c.send(codec.SubmitJobBg, "fails", "", "3")
	c.expectErrorPacket(codec.CodeQueueError, waltest.ErrInjected.Error())
	c.send(codec.SubmitJob, "fails", "", "fg")
	c.expectErrorPacket(codec.CodeQueueError, waltest.ErrInjected.Error())
	w.canDo("fails")
	w.send(codec.GrabJob)
	w.expectBody(codec.NoJob, "")
	if got := c.admin("status"); got != "fails\t0\t0\t1\n.\n" {
		t.Fatalf("status %q: refused jobs left behind", got)
	}
}

// A client that does not read, behind a commit that does not come: what is held for it
// behind its JOB_CREATED counts against the outbound cap, and past it the connection is
// closed.
func TestHeldRepliesCountAgainstTheOutboundCap(t *testing.T) {
	t.Parallel()
	store := waltest.New(false) // commits only when told: never, here
	defer store.Close()
	const maxOut = 256 << 10
	e, addr := startEngine(t, Config{Store: store, MaxOutbound: maxOut}, 2)
	c := dial(t, addr)
	c.send(codec.SubmitJobBg, "slow", "", "x") // its JOB_CREATED waits for the commit
	echo := codec.AppendRequest(nil, codec.EchoReq, []byte(strings.Repeat("e", 16<<10)))
	go func() {
		for i := 0; i < 4*maxOut/len(echo); i++ { // four times the cap, all held
			if _, err := c.conn.Write(echo); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the connection holding four times the outbound cap behind a commit was not closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// On a nearly full disk a background submit that only joins a job already written needs no
// new record and is accepted; one that would write is refused; and one that joined a job
// whose own write is then refused gets that error, never a JOB_CREATED.
func TestFullDiskRefusesOnlyNewWrites(t *testing.T) {
	t.Parallel()
	store := waltest.New(false)
	defer store.Close()
	addr := startServer(t, Config{Store: store})
	c := dial(t, addr)
	c.send(codec.SubmitJobBg, "full", "written", "x")
	waitPending(t, store, 1)
	store.Flush()
	h := c.expect(codec.JobCreated).args[0]
	store.SetMode(waltest.Full)
	c.send(codec.SubmitJobBg, "full", "written", "x") // joins: no new write
	waitPending(t, store, 1)                          // a barrier behind the job's record
	store.Flush()
	c.expectBody(codec.JobCreated, h)
	c.send(codec.SubmitJobBg, "full", "new", "x")
	c.expect(codec.Error)
	// A job queued while the disk had room, whose write then meets the full disk: the
	// submit that joined it meanwhile gets the same refusal.
	store.SetMode(waltest.OK)
	c2 := dial(t, addr)
	c.send(codec.SubmitJobBg, "full", "late", "x")
	waitPending(t, store, 1) // its record, waiting for the commit
	c2.send(codec.SubmitJobBg, "full", "late", "x")
	waitPending(t, store, 2) // and the barrier the joining submit waits behind
	store.SetMode(waltest.Full)
	store.Flush()
	for _, cl := range []*client{c, c2} {
		p := cl.expect(codec.Error)
		if p.args[0] != codec.CodeQueueError {
			t.Fatalf("refused write answered %v", p)
		}
	}
}

func waitPending(t *testing.T, store *waltest.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for store.Pending() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d operations pending in the store, want %d", store.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A settings change the log refuses outright changes nothing: the admin command gets ERR
// QUEUE_ERROR and the function keeps what the log still holds.
func TestRefusedSettingsChangeChangesNothing(t *testing.T) {
	t.Parallel()
	store := waltest.New(true)
	defer store.Close()
	addr := startServer(t, Config{Store: store})
	adm := dial(t, addr)
	for _, c := range []string{"create function kept", "maxqueue kept 1"} {
		if got := adm.admin(c); got != codec.AdminOK {
			t.Fatalf("%s: %q", c, got)
		}
	}
	store.SetMode(waltest.Reject)
	for _, c := range []string{"maxqueue kept 5", "drop function kept", "create function other"} {
		if got := adm.admin(c); !strings.HasPrefix(got, "ERR QUEUE_ERROR ") {
			t.Fatalf("%s with the log refusing: %q", c, got)
		}
	}
	store.SetMode(waltest.OK)
	if got := adm.admin("status"); !strings.HasPrefix(got, "kept\t0\t0\t0\n") {
		t.Fatalf("status %q: the refused drop took the function away", got)
	}
	c := dial(t, addr)
	c.submit(codec.SubmitJobBg, "kept", "", "1")
	c.send(codec.SubmitJobBg, "kept", "", "2")
	c.expectErrorPacket(codec.CodeQueueError, codec.ReplyQueueFull.Text) // still maxqueue 1
}
