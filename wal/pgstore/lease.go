package pgstore

import (
	"context"
	"time"
)

// Leases: one per node, not one per job.
//
//	spur_nodes (name text PK, lease_until timestamptz)     -- schema version 2
//
//	a job row is held   ⇔ owner IS NOT NULL and owner's spur_nodes.lease_until > now()
//	                      (or, for a row written by a node of schema 1 during a rolling
//	                      upgrade, its own lease_until > now())
//	renewal (Lease/3)   = one upsert of this node's spur_nodes row
//	lapsed holder       → the reaper sets owner NULL on its rows; any node may claim them
//
// Schema 1 kept the lease in every job row: a node renewed it by rewriting every row it held
// every Lease/3 (150,000 held jobs meant 150,000 row versions and index entries every 10 s),
// each insert and claim wrote a lease index entry, and a restart rewrote every recovered row.
// Now a held row is written when it is inserted or claimed, and deleted when it ends.
//
// The reaper locks the lapsed node rows it frees jobs of (FOR UPDATE SKIP LOCKED), and a
// renewal of that row waits for it: once a renewal returns, no reaper frees what the node
// holds on the strength of the lease it just renewed. Every owner has a spur_nodes row (a
// node writes its own before it writes or recovers a job; migration 2 wrote one per owner
// of schema 1), and rows are never deleted: a cluster has few node names.

// The lease of a node, renewed: its row, created if need be.
const sqlRenewNode = `INSERT INTO spur_nodes (name, lease_until) VALUES ($1, now() + $2::bigint * interval '1 microsecond')
ON CONFLICT (name) DO UPDATE SET lease_until = EXCLUDED.lease_until`

// The rows of spur_jobs j no live node holds although owner is set, in two index-friendly
// parts: those of a node whose lease lapsed (through the owner index), and schema 1's rows
// whose own lease lapsed, of an owner without a node row (through the lease index, which
// holds only such rows). Both also require that a row's own lease, if any, lapsed.
const (
	sqlRowLeaseLapsed = `(j.lease_until IS NULL OR j.lease_until <= now())`
	sqlLapsedNodes    = `SELECT name FROM spur_nodes WHERE lease_until <= now()`
	sqlLapsedOfNode   = `j.owner IN (` + sqlLapsedNodes + `) AND ` + sqlRowLeaseLapsed
	sqlLapsedOwnLease = `j.lease_until <= now() AND j.owner IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM spur_nodes n WHERE n.name = j.owner)`
)

// sqlLapsed is true of one spur_jobs row j with an owner that no live node holds: the union
// of the two parts above, for a row already found.
const sqlLapsed = `(` + sqlRowLeaseLapsed + `
	AND NOT EXISTS (SELECT 1 FROM spur_nodes n WHERE n.name = j.owner AND n.lease_until > now()))`

// renewNode renews this node's lease.
func (s *Store) renewNode(ctx context.Context) error {
	start := time.Now()
	if _, err := s.pool.Exec(ctx, sqlRenewNode, s.opts.Node, s.lease); err != nil {
		return err
	}
	s.renewed.Store(start.UnixNano())
	return nil
}

// leaseStale reports whether this node's last renewal is older than half a lease: the next
// commit that writes held jobs renews it in the same transaction, so that they are never
// written under a lease that may already have lapsed (the database was out of reach for a
// while, and renewals failed, but this commit goes through).
func (s *Store) leaseStale() bool {
	return time.Now().UnixNano()-s.renewed.Load() > int64(s.opts.Lease/2)
}

// reapLapsed makes the jobs whose holder's lease lapsed (the node died, or lost the database
// for longer than its lease) unheld again, for any node to claim; at most every Poll/2,
// from a claim or the poll. Claims then scan only unheld rows (spur_jobs_claim is partial on
// owner IS NULL): a scan over every held and running job, and the dead versions the claims
// leave, made a claim's cost grow with the backlog.
func (s *Store) reapLapsed(ctx context.Context) {
	t := time.Now().UnixNano()
	last := s.lastReap.Load()
	if t-last < int64(s.opts.Poll/2) || !s.lastReap.CompareAndSwap(last, t) {
		return
	}
	rctx, cancel := s.callCtx(ctx)
	defer cancel()
	for _, lapsed := range []string{
		// sqlLapsedOfNode, locking the node rows: see the top of this file.
		`j.owner IN (` + sqlLapsedNodes + ` FOR UPDATE SKIP LOCKED) AND ` + sqlRowLeaseLapsed,
		sqlLapsedOwnLease,
	} {
		if _, err := s.pool.Exec(rctx, `UPDATE spur_jobs SET owner = NULL, lease_until = NULL
WHERE seq IN (SELECT seq FROM spur_jobs j WHERE `+lapsed+` FOR UPDATE SKIP LOCKED)`); err != nil {
			s.readFailed(err)
			s.log.Debug("cannot free the jobs of lapsed leases", "db", s.where, "error", err)
			return
		}
	}
}

// renewLoop renews this node's lease every Lease/3.
func (s *Store) renewLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, min(s.opts.CommitTimeout, s.opts.Lease/3))
		err := s.renewNode(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.renewFailures.Add(1)
			s.connFailed(err)
			s.log.Error("renewing this node's lease failed: other nodes may claim its jobs once it lapses",
				"db", s.where, "lease", s.opts.Lease, "error", err)
			continue
		}
		s.reached()
	}
}
