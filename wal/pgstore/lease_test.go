package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spur-gearman/spur/wal"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

// rowVersions is the sum of xmin over a node's job rows: it moves when any of them is
// written again.
func rowVersions(t *testing.T, db *pgxpool.Pool, owner string) (n, sum int) {
	t.Helper()
	if err := db.QueryRow(context.Background(),
		`SELECT count(*), coalesce(sum(xmin::text::bigint), 0) FROM spur_jobs WHERE owner = $1`, owner).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	return n, sum
}

// A node renews one lease, its own, and never rewrites the job rows it holds; while it
// renews, no other node takes them; once it stops, they are another's.
func TestLeaseIsTheNodesNotEachJobs(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	db := sqlDB(t, dsn)
	short := func(o *Options) { o.Lease = 900 * time.Millisecond }
	a, _ := openStore(t, dsn, "a", short)
	b, _ := openStore(t, dsn, "b", short)
	for range 20 {
		if err := put(t, a, job(t, a, "f", "")); err != nil {
			t.Fatal(err)
		}
	}
	putShared(t, a, "f", 5)
	if got := claim(t, a, 5, "f"); len(got) != 5 {
		t.Fatalf("a claimed %d of 5", len(got))
	}
	n, before := rowVersions(t, db, "a")
	if n != 25 {
		t.Fatalf("a holds %d rows, want 25", n)
	}
	var renewedAt time.Time
	if err := db.QueryRow(context.Background(), "SELECT lease_until FROM spur_nodes WHERE name = 'a'").Scan(&renewedAt); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // five renewals, past a lease and a half
	if got := claim(t, b, 100, "f"); len(got) != 0 {
		t.Fatalf("b claimed %d jobs a holds and renews", len(got))
	}
	if _, after := rowVersions(t, db, "a"); after != before {
		t.Fatal("a renewing its lease wrote its job rows again")
	}
	var now time.Time
	if err := db.QueryRow(context.Background(), "SELECT lease_until FROM spur_nodes WHERE name = 'a'").Scan(&now); err != nil {
		t.Fatal(err)
	}
	if !now.After(renewedAt) {
		t.Fatalf("a's lease did not move: %v, then %v", renewedAt, now)
	}
	if a.RenewFailures() != 0 {
		t.Fatalf("%d renewals failed", a.RenewFailures())
	}
	_, held, found, err := b.Job(context.Background(), seqOf(t, db, "a"))
	if err != nil || !found || !held {
		t.Fatalf("b looks up a job of a: held %v, found %v, %v; want held", held, found, err)
	}

	a.Close()
	var got []wal.Record
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(got) < 25; {
		got = append(got, claim(t, b, 100, "f")...)
		time.Sleep(50 * time.Millisecond)
	}
	if len(got) != 25 {
		t.Fatalf("b claimed %d of a's 25 jobs after a went", len(got))
	}
	if n := count(t, db, "SELECT count(*) FROM spur_jobs WHERE owner = 'b'"); n != 25 {
		t.Fatalf("b holds %d rows", n)
	}
}

// seqOf is the number of one job owner holds.
func seqOf(t *testing.T, db *pgxpool.Pool, owner string) uint64 {
	t.Helper()
	var seq int64
	if err := db.QueryRow(context.Background(), "SELECT min(seq) FROM spur_jobs WHERE owner = $1", owner).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return uint64(seq)
}

// A database of schema 1 keeps what it held through migration 2: a node's live per-job
// leases (it may still be running, in a rolling upgrade) protect its jobs, and once they
// lapse the jobs are claimable, counted as unclaimed and cancellable.
func TestMigrationFromPerJobLeases(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	db := sqlDB(t, dsn)
	ctx := context.Background()
	if err := migrateTo(ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	insert := func(seq int, owner string, lease string) {
		t.Helper()
		if _, err := db.Exec(ctx, `INSERT INTO spur_jobs (seq, handle, function, uniq, reducer, priority, run_at, attempts,
			first_failed, data, owner, lease_until) VALUES ($1, $2, 'f', NULL, '', 1, 0, 0, 0, 'x', $3, now() + $4::interval)`,
			seq, []byte(fmt.Sprintf("H:old:%d", seq)), owner, lease); err != nil {
			t.Fatal(err)
		}
	}
	insert(1, "live", "1 hour")      // a node of schema 1 still running
	insert(2, "gone", "-1 second")   // one that died
	insert(3, "going", "2 seconds")  // one about to die
	insert(4, "live", "-10 seconds") // live's, lapsed: its node lease (from migration) holds it
	b, _ := openStore(t, dsn, "b")
	if v := count(t, db, "SELECT max(version) FROM spur_schema_migrations"); v != SchemaVersion {
		t.Fatalf("schema at %d after open, want %d", v, SchemaVersion)
	}
	if n := count(t, db, "SELECT count(*) FROM spur_nodes WHERE name IN ('live', 'gone', 'going')"); n != 3 {
		t.Fatalf("%d node leases from the old rows, want 3", n)
	}
	un, err := b.Unclaimed(ctx)
	if err != nil || un["f"] != 1 {
		t.Fatalf("Unclaimed = %v, %v; want f 1 (gone's)", un, err)
	}
	if _, done, holder, err := b.Cancel(ctx, 1, "H:old:1"); done || holder != "live" || err != nil {
		t.Fatalf("cancel of live's job = %v, %q, %v; want it left, held by live", done, holder, err)
	}
	if got := claim(t, b, 10, "f"); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("b claimed %v, want job 2 alone", seqsOf(got))
	}
	// A node of schema 1 that held nothing at the migration claims after it: its rows carry
	// their own lease and it has no node row.
	insert(5, "late", "-1 second")
	insert(6, "late", "1 hour")
	b.lastReap.Store(0)
	if got := claim(t, b, 10, "f"); len(got) != 1 || got[0].Seq != 5 {
		t.Fatalf("b claimed %v of a schema 1 node without a node lease, want job 5 alone", seqsOf(got))
	}
	time.Sleep(2500 * time.Millisecond) // going's row lease and node lease lapse
	b.lastReap.Store(0)
	got := claim(t, b, 10, "f")
	if len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("b claimed %v after going's lease lapsed, want job 3 alone", seqsOf(got))
	}
	if _, held, _, _ := b.Job(ctx, 4); !held {
		// live's node lease, written by the migration from its newest row, is an hour
		t.Fatal("job 4 is not held: live's newest row lease was not carried to its node lease")
	}
}

// A commit that writes held jobs while this node's renewals have been failing renews the
// lease in its own transaction: the jobs are never written under a lease that lapsed.
func TestCommitRenewsAStaleLease(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	db := sqlDB(t, dsn)
	a, _ := openStore(t, dsn, "a", func(o *Options) { o.Lease = time.Hour }) // no renewal runs
	if _, err := db.Exec(context.Background(), "UPDATE spur_nodes SET lease_until = now() - interval '1 second' WHERE name = 'a'"); err != nil {
		t.Fatal(err)
	}
	lapsed := func() int {
		return count(t, db, "SELECT count(*) FROM spur_nodes WHERE name = 'a' AND lease_until <= now()")
	}
	putShared(t, a, "f", 1) // writes no held job: the lease is left alone
	if lapsed() != 1 {
		t.Fatal("a commit of unheld jobs renewed the lease")
	}
	if err := put(t, a, job(t, a, "f", "")); err != nil { // held, but the last renewal is recent
		t.Fatal(err)
	}
	if lapsed() != 1 {
		t.Fatal("a commit renewed a lease renewed less than half a lease ago")
	}
	a.renewed.Store(time.Now().Add(-40 * time.Minute).UnixNano()) // renewals failed since
	if err := put(t, a, job(t, a, "f", "")); err != nil {
		t.Fatal(err)
	}
	if lapsed() != 0 {
		t.Fatal("the held job was written under a lapsed lease")
	}
}

// The store's connections plan with generic plans (see Open), unless the DSN says otherwise.
func TestConnectionsUseGenericPlans(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	mode := func(s *Store) string {
		t.Helper()
		var m string
		if err := s.pool.QueryRow(context.Background(), "SHOW plan_cache_mode").Scan(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, _ := openStore(t, dsn, "a")
	if m := mode(a); m != "force_generic_plan" {
		t.Fatalf("plan_cache_mode = %s, want force_generic_plan", m)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	b, _ := openStore(t, dsn+sep+"plan_cache_mode=auto", "b")
	if m := mode(b); m != "auto" {
		t.Fatalf("plan_cache_mode = %s with the DSN's own, want auto", m)
	}
}
