package engine

import (
	"bytes"
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/wal"
)

// sharedDB is an in-memory stand-in for a database several nodes share (wal/pgstore's
// PostgreSQL): rows of jobs with the node that holds each, a unique index across them, one
// sequence, and the word that a node offered jobs.
type sharedDB struct {
	mu     sync.Mutex
	seq    uint64
	rows   map[uint64]*sharedRow
	nodes  []*sharedNode
	leader *sharedNode
	scheds []wal.Schedule
	fns    map[string]wal.FunctionSettings
	dead   map[uint64]wal.DeadLetter
}

type sharedRow struct {
	rec   wal.Record
	owner *sharedNode // nil: no node holds it
}

func newSharedDB() *sharedDB {
	return &sharedDB{rows: make(map[uint64]*sharedRow), fns: make(map[string]wal.FunctionSettings),
		dead: make(map[uint64]wal.DeadLetter)}
}

// sharedNode is one node's view of a sharedDB: an engine SharedStore. Acknowledgements run
// in order on its own goroutine, after the write took effect.
type sharedNode struct {
	db      *sharedDB
	name    string
	acks    chan func()
	ready   func([]string)
	leader  func(bool)
	changed func()
	dead    bool // its holdings count as lapsed
}

func (db *sharedDB) node(t *testing.T, name string) *sharedNode {
	n := &sharedNode{db: db, name: name, acks: make(chan func(), 1024)}
	db.mu.Lock()
	db.nodes = append(db.nodes, n)
	db.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range n.acks {
			f()
		}
	}()
	t.Cleanup(func() { close(n.acks); <-done })
	return n
}

func (n *sharedNode) ack(a wal.Ack, err error) {
	if a != nil {
		n.acks <- func() { a.Acked(err) }
	}
}

func (n *sharedNode) Writable() error { return nil }

func (n *sharedNode) NextSeq() (uint64, error) {
	n.db.mu.Lock()
	defer n.db.mu.Unlock()
	n.db.seq++
	return n.db.seq, nil
}

func (n *sharedNode) Put(r wal.Record, a wal.Ack) error {
	db := n.db
	db.mu.Lock()
	if r.Unique != "" {
		for _, row := range db.rows {
			if row.rec.Function == r.Function && row.rec.Unique == r.Unique {
				db.mu.Unlock()
				n.ack(a, &wal.Coalesced{Handle: row.rec.Handle})
				return nil
			}
		}
	}
	r.Data = append([]byte(nil), r.Data...)
	row := &sharedRow{rec: r, owner: n}
	if r.Shared {
		row.owner = nil
	}
	db.rows[r.Seq] = row
	var tell []func([]string)
	for _, o := range db.nodes {
		if r.Shared && o != n && o.ready != nil && !o.dead {
			tell = append(tell, o.ready)
		}
	}
	db.mu.Unlock()
	n.ack(a, nil)
	for _, ready := range tell {
		go ready([]string{r.Function})
	}
	return nil
}

func (n *sharedNode) Barrier(a wal.Ack) error { n.ack(a, nil); return nil }

func (n *sharedNode) Delete(seq uint64) error {
	n.db.mu.Lock()
	delete(n.db.rows, seq)
	n.db.mu.Unlock()
	return nil
}

func (n *sharedNode) Apply(t *wal.Txn, a wal.Ack) error {
	db := n.db
	db.mu.Lock()
	t.EachJob(func(r wal.Record) {
		if row := db.rows[r.Seq]; row != nil {
			row.rec = r
			return
		}
		db.rows[r.Seq] = &sharedRow{rec: r, owner: n}
	}, func(seq uint64) { delete(db.rows, seq) })
	changed := false
	for w := range t.Writes {
		switch w.Kind {
		case wal.KindFunction:
			changed = true
			if w.Op == wal.TxnDelete {
				delete(db.fns, string(w.Key))
			} else if st, err := wal.DecodeFunction(string(w.Key), w.Value); err == nil {
				db.fns[st.Name] = st
			}
		case wal.KindDead:
			changed = true
			seq, _ := w.Seq()
			if w.Op == wal.TxnDelete {
				delete(db.dead, seq)
			} else if d, err := wal.DecodeDead(seq, bytes.Clone(w.Value)); err == nil {
				db.dead[seq] = d
			}
		}
	}
	var tell []func()
	for _, o := range db.nodes {
		if changed && o.changed != nil && !o.dead {
			tell = append(tell, o.changed)
		}
	}
	db.mu.Unlock()
	n.ack(a, nil)
	for _, f := range tell {
		f() // after the commit, as PostgreSQL delivers a notification
	}
	return nil
}

func (n *sharedNode) OnChanged(f func()) {
	n.db.mu.Lock()
	n.changed = f
	n.db.mu.Unlock()
}

func (n *sharedNode) Functions(context.Context) ([]wal.FunctionSettings, error) {
	n.db.mu.Lock()
	defer n.db.mu.Unlock()
	var out []wal.FunctionSettings
	for _, st := range n.db.fns {
		out = append(out, st)
	}
	return out, nil
}

func (n *sharedNode) DeadLetters(_ context.Context, known func(uint64) bool) ([]uint64, []wal.DeadLetter, error) {
	n.db.mu.Lock()
	defer n.db.mu.Unlock()
	var seqs []uint64
	var fresh []wal.DeadLetter
	for seq, d := range n.db.dead {
		seqs = append(seqs, seq)
		if !known(seq) {
			fresh = append(fresh, d)
		}
	}
	return seqs, fresh, nil
}

func (n *sharedNode) Claim(_ context.Context, fns []string, max int) ([]wal.Record, error) {
	db := n.db
	db.mu.Lock()
	defer db.mu.Unlock()
	var free []*sharedRow
	for _, row := range db.rows {
		if (row.owner == nil || row.owner.dead) && containsString(fns, row.rec.Function) {
			free = append(free, row)
		}
	}
	sort.Slice(free, func(a, b int) bool { return free[a].rec.Seq < free[b].rec.Seq })
	var out []wal.Record
	for _, row := range free {
		if len(out) == max {
			break
		}
		row.owner = n
		out = append(out, row.rec)
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (n *sharedNode) OnReady(f func([]string)) {
	n.db.mu.Lock()
	n.ready = f
	n.db.mu.Unlock()
}

func (n *sharedNode) OnLeader(f func(bool)) {
	n.db.mu.Lock()
	n.leader = f
	n.db.mu.Unlock()
}

func (n *sharedNode) Release(_ context.Context, seqs []uint64) error {
	db := n.db
	db.mu.Lock()
	fns := map[string]bool{}
	for _, s := range seqs {
		if row := db.rows[s]; row != nil && row.owner == n {
			row.owner = nil
			fns[row.rec.Function] = true
		}
	}
	var names []string
	for fn := range fns {
		names = append(names, fn)
	}
	var tell []func([]string)
	for _, o := range db.nodes {
		if o != n && o.ready != nil && !o.dead && len(names) > 0 {
			tell = append(tell, o.ready)
		}
	}
	db.mu.Unlock()
	for _, ready := range tell {
		go ready(names)
	}
	return nil
}

func (n *sharedNode) Job(_ context.Context, seq uint64) (wal.Record, bool, bool, error) {
	n.db.mu.Lock()
	defer n.db.mu.Unlock()
	row := n.db.rows[seq]
	if row == nil {
		return wal.Record{}, false, false, nil
	}
	return row.rec, row.owner != nil, true, nil
}

func (n *sharedNode) Schedules(context.Context) ([]wal.Schedule, error) {
	n.db.mu.Lock()
	defer n.db.mu.Unlock()
	return append([]wal.Schedule(nil), n.db.scheds...), nil
}

// holder names the node that holds job seq ("" for none, "gone" for no such row).
func (db *sharedDB) holder(seq uint64) string {
	db.mu.Lock()
	defer db.mu.Unlock()
	row := db.rows[seq]
	switch {
	case row == nil:
		return "gone"
	case row.owner == nil:
		return ""
	}
	return row.owner.name
}

// sharedNodes starts n engines on one sharedDB, each with its claims running.
func sharedNodes(t *testing.T, db *sharedDB, n int) (addrs []string, engines []*Engine, nodes []*sharedNode) {
	t.Helper()
	for i := 0; i < n; i++ {
		node := db.node(t, "node"+strconv.Itoa(i))
		e, addr := startEngine(t, Config{Store: node, NodeName: node.name, HandlePrefix: "H:" + node.name}, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.RunShared(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		addrs, engines, nodes = append(addrs, addr), append(engines, e), append(nodes, node)
	}
	return addrs, engines, nodes
}

func seqOf(t *testing.T, handle string) uint64 {
	t.Helper()
	i := len(handle) - 1
	for i >= 0 && handle[i] != ':' {
		i--
	}
	n, err := strconv.ParseUint(handle[i+1:], 10, 64)
	if err != nil {
		t.Fatalf("handle %q has no number", handle)
	}
	return n
}

// A background job submitted to a node without a worker for it is offered: no node holds
// it, and the worker sleeping on another node is woken for it, claims it and runs it.
func TestSharedStoreOfferedJobRunsOnAnotherNode(t *testing.T) {
	db := newSharedDB()
	addrs, _, _ := sharedNodes(t, db, 2)
	w := dial(t, addrs[1])
	w.canDo("offered")
	w.send(codec.PreSleep)
	w.syncEcho()

	c := dial(t, addrs[0])
	h := c.submit(codec.SubmitJobBg, "offered", "", "payload")
	if got := db.holder(seqOf(t, h)); got != "" && got != "node1" {
		t.Fatalf("offered job %s is held by %q, want nobody (or node1 once it claimed it)", h, got)
	}
	w.expect(codec.Noop)
	gh, fn, _, data := w.grab()
	if gh != h || fn != "offered" || data != "payload" {
		t.Fatalf("node1's worker got %s %s %q, want %s offered payload", gh, fn, data, h)
	}
	if got := db.holder(seqOf(t, h)); got != "node1" {
		t.Fatalf("running job %s is held by %q, want node1", h, got)
	}
	w.send(codec.WorkComplete, gh, "done")
	w.syncEcho()
	waitFor(t, "the job's row deleted", func() bool { return db.holder(seqOf(t, h)) == "gone" })
}

// A node with a worker free for a function holds the jobs submitted to it: they run there,
// and no other node's worker is woken for them.
func TestSharedStoreHoldsJobsItHasWorkersFor(t *testing.T) {
	db := newSharedDB()
	addrs, _, _ := sharedNodes(t, db, 2)
	local := dial(t, addrs[0])
	local.canDo("held")
	local.send(codec.PreSleep)
	local.syncEcho()
	remote := dial(t, addrs[1])
	remote.canDo("held")
	remote.send(codec.PreSleep)
	remote.syncEcho()

	h := dial(t, addrs[0]).submit(codec.SubmitJobBg, "held", "", "x")
	if got := db.holder(seqOf(t, h)); got != "node0" {
		t.Fatalf("job %s is held by %q, want node0 (it has a free worker)", h, got)
	}
	local.expect(codec.Noop)
	if gh, _, _, _ := local.grab(); gh != h {
		t.Fatalf("node0's worker got %s, want %s", gh, h)
	}
	remote.expectNothing(200 * time.Millisecond)

	// Up to holdPerWorker jobs per worker are held; the next is offered to every node.
	sub := dial(t, addrs[0])
	for i := 1; i < holdPerWorker; i++ {
		if h := sub.submit(codec.SubmitJobBg, "held", "", "x"); db.holder(seqOf(t, h)) != "node0" {
			t.Fatalf("job %d of a node with one worker is held by %q, want node0", i+1, db.holder(seqOf(t, h)))
		}
	}
	if h := sub.submit(codec.SubmitJobBg, "held", "", "x"); db.holder(seqOf(t, h)) == "node0" {
		t.Fatalf("job %d of a node with one worker is held there, want it offered", holdPerWorker+1)
	}
}

// A background submit of a unique already queued on another node gets that job's handle.
func TestSharedStoreCoalescesAcrossNodes(t *testing.T) {
	db := newSharedDB()
	addrs, _, _ := sharedNodes(t, db, 2)
	first := dial(t, addrs[0]).submit(codec.SubmitJobBg, "uniq", "order-7", "a")
	second := dial(t, addrs[1]).submit(codec.SubmitJobBg, "uniq", "order-7", "b")
	if first != second {
		t.Fatalf("the same unique on two nodes made two jobs: %s and %s", first, second)
	}
	db.mu.Lock()
	rows := len(db.rows)
	db.mu.Unlock()
	if rows != 1 {
		t.Fatalf("%d rows, want 1", rows)
	}
}

// GET_STATUS on a node that does not hold the job asks the store: known, not running; a
// handle nobody has is unknown.
func TestSharedStoreStatusOfAnotherNodesJob(t *testing.T) {
	db := newSharedDB()
	addrs, _, _ := sharedNodes(t, db, 2)
	h := dial(t, addrs[0]).submit(codec.SubmitJobBg, "status", "", "x")
	c := dial(t, addrs[1])
	if got := c.jobStatus(h); got[1] != "1" || got[2] != "0" {
		t.Fatalf("status of %s on the other node = %q, want known, not running", h, got)
	}
	if got := c.jobStatus("H:node0:999999"); got[1] != "0" {
		t.Fatalf("status of a job nobody has = %q, want unknown", got)
	}
}

// The jobs a node held when it died run on another node once its lease lapses (the store's
// poll finds them).
func TestSharedStoreLapsedJobsRunElsewhere(t *testing.T) {
	db := newSharedDB()
	addrs, engines, nodes := sharedNodes(t, db, 2)
	busy := dial(t, addrs[0]) // node0 holds the job: it has a worker
	busy.canDo("lapse")
	h := dial(t, addrs[0]).submit(codec.SubmitJobBg, "lapse", "", "x")
	if got := db.holder(seqOf(t, h)); got != "node0" {
		t.Fatalf("job %s is held by %q, want node0", h, got)
	}
	w := dial(t, addrs[1])
	w.canDo("lapse")
	w.send(codec.PreSleep)
	w.syncEcho()
	db.mu.Lock()
	nodes[0].dead = true // its lease lapses
	db.mu.Unlock()
	engines[1].storeReady(nil) // the store's poll
	w.expect(codec.Noop)
	if gh, _, _, _ := w.grab(); gh != h {
		t.Fatalf("node1's worker got %s, want the lapsed %s", gh, h)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Only the node that leads fires the recurring schedules; the one that takes the lead runs
// a firing that came due and did not run once, and a second leader's catch-up coalesces
// onto that run while it is still queued.
func TestSharedStoreOnlyTheLeaderFiresSchedules(t *testing.T) {
	db := newSharedDB()
	db.scheds = []wal.Schedule{{Seq: 1 << 40, Handle: "H:sched:1", Function: "cronfn", Spec: "0 0 1 1 *",
		Priority: 1, Created: time.Now().AddDate(-2, 0, 0).Unix(), Data: []byte("tick")}}
	_, engines, nodes := sharedNodes(t, db, 2)
	cronJobs := func() int {
		db.mu.Lock()
		defer db.mu.Unlock()
		n := 0
		for _, row := range db.rows {
			if row.rec.Function == "cronfn" {
				n++
			}
		}
		return n
	}
	engines[0].readSchedules(context.Background(), true) // not leading: reads, fires nothing
	time.Sleep(50 * time.Millisecond)
	if n := cronJobs(); n != 0 {
		t.Fatalf("a node that does not lead fired %d runs", n)
	}
	if engines[0].node(nil).LeadsSchedules || engines[1].node(nil).LeadsSchedules {
		t.Fatal("show node says a node leads the schedules before the store gave it the lead")
	}
	nodes[1].leader(true)
	waitFor(t, "the leader's catch-up run", func() bool { return cronJobs() == 1 })
	if !engines[1].node(nil).LeadsSchedules {
		t.Fatal("show node does not say the leader leads the schedules")
	}
	nodes[0].leader(true) // the lead moves while the run is still queued
	time.Sleep(100 * time.Millisecond)
	if n := cronJobs(); n != 1 {
		t.Fatalf("%d runs queued after the lead moved, want the one (coalesced)", n)
	}
}

// A job a node holds with no worker left for it goes back to the cluster once it has
// waited, and runs on the node that has a worker; a graceful shutdown gives back all.
func TestSharedStoreReleasesJobsWithoutWorkers(t *testing.T) {
	db := newSharedDB()
	addrs, engines, _ := sharedNodes(t, db, 2)
	gone := dial(t, addrs[0])
	gone.canDo("orphan")
	gone.syncEcho()
	h := dial(t, addrs[0]).submit(codec.SubmitJobBg, "orphan", "", "x")
	kept := dial(t, addrs[0]).submit(codec.SubmitJobBg, "orphan", "", "y") // held too
	if got := db.holder(seqOf(t, h)); got != "node0" {
		t.Fatalf("job %s is held by %q, want node0", h, got)
	}
	gone.conn.Close()
	w := dial(t, addrs[1])
	w.canDo("orphan")
	w.send(codec.PreSleep)
	w.syncEcho()
	// node0 gives both back once they waited; node1's worker takes one, then the other.
	var got []string
	waitFor(t, "the worker woken", func() bool {
		p, err := w.tryRecv(10 * time.Millisecond)
		return err == nil && p.typ == codec.Noop
	})
	gh, _, _, _ := w.grab()
	got = append(got, gh)
	w.send(codec.WorkComplete, gh, "")
	w.send(codec.PreSleep)
	w.expect(codec.Noop) // node0 gave h back after releaseAfter, at its next tick
	gh, _, _, _ = w.grab()
	got = append(got, gh)
	sort.Strings(got)
	want := []string{h, kept}
	sort.Strings(want)
	if got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("node1 ran %v, want %v", got, want)
	}

	// A graceful shutdown of node1 gives back what it holds: a job queued for its worker.
	w.send(codec.WorkComplete, gh, "")
	w.syncEcho()
	last := dial(t, addrs[1]).submit(codec.SubmitJobBg, "orphan", "", "z")
	if got := db.holder(seqOf(t, last)); got != "node1" {
		t.Fatalf("job %s is held by %q, want node1", last, got)
	}
	engines[1].Drain()
	if err := engines[1].ReleaseHeld(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := db.holder(seqOf(t, last)); got != "" {
		t.Fatalf("after node1's shutdown job %s is held by %q, want nobody", last, got)
	}
}

// A pause, or its end, and the dead letters another node writes or retries are followed by
// every node once committed: a worker on node1 gets no job of a function paused on node0.
func TestSharedStoreFollowsOtherNodesSettingsAndDeadLetters(t *testing.T) {
	db := newSharedDB()
	addrs, engines, nodes := sharedNodes(t, db, 2)
	paused := func(e *Engine) bool {
		sh := e.reg.ShardFor([]byte("fn"))
		sh.Lock()
		defer sh.Unlock()
		f := sh.Get([]byte("fn"))
		return f != nil && f.Paused
	}
	setPaused := func(p bool) {
		done := make(chan error, 1)
		engines[0].UpdateFunction([]byte("fn"), func(st *wal.FunctionSettings) { st.Paused = p }, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	setPaused(true)
	waitFor(t, "node1 to follow the pause", func() bool { return paused(engines[1]) })

	w := dial(t, addrs[1])
	w.canDo("fn")
	h := dial(t, addrs[1]).submit(codec.SubmitJobBg, "fn", "", "x")
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
	setPaused(false) // no settings left: the row goes
	waitFor(t, "node1 to follow the resume", func() bool { return !paused(engines[1]) })
	// The job was offered (a paused function has no room here): the worker's asking
	// claims it, and the worker is woken for it.
	w.send(codec.GrabJobUniq)
	w.expect(codec.NoJob)
	w.send(codec.PreSleep)
	w.expect(codec.Noop)
	if gh, _, _, _ := w.grab(); gh != h {
		t.Fatalf("after the resume node1's worker got %s, want %s", gh, h)
	}

	letter := wal.DeadLetter{Job: wal.Record{Seq: 1 << 41, Handle: "H:node0:x", Function: "fn", Data: []byte("d")},
		LastOutcome: wal.OutcomeFail, FirstFailed: 1, LastFailed: 2}
	apply := func(change func(*wal.Txn)) {
		var txn wal.Txn
		change(&txn)
		if err := nodes[0].Apply(&txn, nil); err != nil {
			t.Fatal(err)
		}
	}
	apply(func(txn *wal.Txn) { txn.PutDead(letter) })
	waitFor(t, "node1 to list node0's dead letter", func() bool {
		l := engines[1].DeadLetters("fn")
		return len(l) == 1 && l[0].Job.Handle == letter.Job.Handle && string(l[0].Job.Data) == "d"
	})
	apply(func(txn *wal.Txn) { txn.DeleteDead(letter.Job.Seq) })
	waitFor(t, "node1 to drop it", func() bool { return len(engines[1].DeadLetters("fn")) == 0 })
}

func (n *sharedNode) Cancel(_ context.Context, seq uint64, handle string) (wal.Record, bool, string, error) {
	n.db.mu.Lock()
	defer n.db.mu.Unlock()
	row := n.db.rows[seq]
	switch {
	case row == nil || row.rec.Handle != handle:
		return wal.Record{}, false, "", nil
	case row.owner != nil && !row.owner.dead:
		return wal.Record{}, false, row.owner.name, nil
	}
	delete(n.db.rows, seq)
	return row.rec, true, "", nil
}

// `cancel job` on a node that does not hold the job deletes it when no node holds it, and
// names the node that does otherwise; an unknown handle stays UNKNOWN_JOB.
func TestSharedStoreCancelsAnotherNodesJob(t *testing.T) {
	db := newSharedDB()
	addrs, _, _ := sharedNodes(t, db, 2)
	offered := dial(t, addrs[0]).submit(codec.SubmitJobBg, "nobody", "", "x")
	admin := dial(t, addrs[1])
	admin.expectAdmin("cancel job "+offered, codec.AdminOK)
	if got := db.holder(seqOf(t, offered)); got != "gone" {
		t.Fatalf("the cancelled job is held by %q, want its row gone", got)
	}
	admin.expectAdmin("cancel job "+offered, codec.AdminUnknownJob)

	w := dial(t, addrs[0])
	w.canDo("busy")
	held := dial(t, addrs[0]).submit(codec.SubmitJobBg, "busy", "", "x")
	admin.expectAdmin("cancel job "+held, codec.AdminErr(CodeHeldElsewhere, "the job is held by node node0: cancel it there"))
	if got := db.holder(seqOf(t, held)); got != "node0" {
		t.Fatalf("a job node0 holds is held by %q after a cancel elsewhere, want node0", got)
	}
	dial(t, addrs[0]).expectAdmin("cancel job "+held, codec.AdminOK)
}

func (n *sharedNode) Unclaimed(context.Context) (map[string]int, error) {
	n.db.mu.Lock()
	defer n.db.mu.Unlock()
	out := map[string]int{}
	for _, row := range n.db.rows {
		if row.owner == nil || row.owner.dead {
			out[row.rec.Function]++
		}
	}
	return out, nil
}

// show node counts the shared store's jobs no node holds, on every node alike.
func TestSharedStoreShowNodeCountsUnclaimedJobs(t *testing.T) {
	db := newSharedDB()
	addrs, engines, _ := sharedNodes(t, db, 2)
	c := dial(t, addrs[0])
	for i := 0; i < 3; i++ {
		c.submit(codec.SubmitJobBg, "nobody", "", "x")
	}
	for i, addr := range addrs {
		text := dial(t, addr).admin("show node")
		if !strings.Contains(text, "\nunclaimed\t3\n") {
			t.Fatalf("show node on node%d:\n%s\nwant unclaimed 3", i, text)
		}
	}
	if n := engines[1].Node(&Identity{}); !n.UnclaimedKnown || n.Unclaimed != 3 {
		t.Fatalf("Node() = %d (known %v), want 3", n.Unclaimed, n.UnclaimedKnown)
	}
}

func (n *sharedNode) JobOfUnique(_ context.Context, unique string) (wal.Record, bool, error) {
	n.db.mu.Lock()
	defer n.db.mu.Unlock()
	var best *sharedRow
	for _, row := range n.db.rows {
		if row.rec.Unique == unique && (best == nil || row.rec.Seq > best.rec.Seq) {
			best = row
		}
	}
	if best == nil {
		return wal.Record{}, false, nil
	}
	return best.rec, true, nil
}

// GET_STATUS_UNIQUE on a node that has no job of the unique asks the store.
func TestSharedStoreStatusUniqueOfAnotherNodesJob(t *testing.T) {
	db := newSharedDB()
	addrs, _, _ := sharedNodes(t, db, 2)
	dial(t, addrs[0]).submit(codec.SubmitJobBg, "status", "order-9", "x")
	c := dial(t, addrs[1])
	c.send(codec.GetStatusUnique, "order-9")
	c.expect(codec.StatusResUnique, "order-9", "1", "0", "0", "0", "0")
	c.send(codec.GetStatusUnique, "order-10")
	c.expect(codec.StatusResUnique, "order-10", "0", "0", "0", "0", "0")
}
