package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Vacuuming the jobs table: every job is a row inserted and deleted within seconds, so the
// table gathers dead rows at the job rate. Autovacuum looks at a database once a minute by
// default (autovacuum_naptime, a server-wide setting a table cannot lower), and in that
// minute the dead rows pile up in the table and its indexes: in `bench/cluster.sh soak`
// PostgreSQL's CPU per job swung from 50 to 260 µs as they did. So the schedule leader
// (one node at a time) looks every vacuumEvery and vacuums spur_jobs itself once enough
// dead rows gathered, on its own connection; SKIP_LOCKED leaves the table to an autovacuum
// already at work on it.

const (
	vacuumEvery   = 10 * time.Second
	vacuumMinDead = 10000 // dead rows that make a vacuum worth it, at least...
	vacuumShare   = 10    // ...and at least a tenth of the live ones
	vacuumTimeout = 5 * time.Minute
)

// vacuumJobs vacuums spur_jobs through conn when it holds enough dead rows, and reports
// whether it did.
func (s *Store) vacuumJobs(ctx context.Context, conn *pgx.Conn) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, vacuumTimeout)
	defer cancel()
	var dead, live int64
	err := conn.QueryRow(ctx, `SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables
		WHERE relid = 'spur_jobs'::regclass`).Scan(&dead, &live)
	if err != nil || dead < vacuumMinDead || dead < live/vacuumShare {
		return false, err
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, "VACUUM (SKIP_LOCKED) spur_jobs"); err != nil {
		return false, err
	}
	s.log.Debug("vacuumed the jobs table", "db", s.where, "dead_rows", dead, "took", time.Since(start).Round(time.Millisecond))
	return true, nil
}
