package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migration is one step of the schema: version n turns a database at version n-1 into n.
// A released migration is never edited; a change of schema is a new one.
type migration struct {
	version     int
	description string
	sql         string
}

// Advisory lock keys, fixed for every Spur database ("SPUR" in the high bytes).
const (
	lockMigrate int64 = 0x5350555200000001 // held (per transaction) while migrating
	lockLeader  int64 = 0x5350555200000002 // the schedule leader's, for its session
)

// migrations are applied in order; the last one's version is what this binary writes.
var migrations = []migration{{1, "jobs, functions, results, dead letters, schedules, other records; the job sequence", `
CREATE SEQUENCE spur_job_seq AS bigint INCREMENT BY 1024 MINVALUE 1 START WITH 1;

CREATE TABLE spur_jobs (
    seq          bigint      PRIMARY KEY,
    handle       bytea       NOT NULL,
    function     bytea       NOT NULL,
    uniq         bytea,
    reducer      bytea       NOT NULL,
    priority     smallint    NOT NULL,
    run_at       bigint      NOT NULL,
    attempts     integer     NOT NULL,
    first_failed bigint      NOT NULL,
    data         bytea       NOT NULL,
    owner        text,
    lease_until  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
CREATE UNIQUE INDEX spur_jobs_unique ON spur_jobs (function, uniq) WHERE uniq IS NOT NULL;
CREATE INDEX spur_jobs_claim ON spur_jobs (function, priority, seq) WHERE owner IS NULL;
CREATE INDEX spur_jobs_owner ON spur_jobs (owner) WHERE owner IS NOT NULL;
CREATE INDEX spur_jobs_lease ON spur_jobs (lease_until) WHERE owner IS NOT NULL;

CREATE TABLE spur_functions (
    name   bytea PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE spur_results (
    seq      bigint   PRIMARY KEY,
    handle   bytea    NOT NULL,
    function bytea    NOT NULL,
    uniq     bytea,
    outcome  smallint NOT NULL,
    attempts integer  NOT NULL,
    created  bigint   NOT NULL,
    started  bigint   NOT NULL,
    finished bigint   NOT NULL,
    expires  bigint   NOT NULL,
    size     integer  NOT NULL,
    data     bytea    NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.05);
CREATE INDEX spur_results_unique ON spur_results (function, uniq, seq) WHERE uniq IS NOT NULL;

CREATE TABLE spur_dead (
    seq      bigint PRIMARY KEY,
    function bytea  NOT NULL,
    record   bytea  NOT NULL
);

CREATE TABLE spur_schedules (
    seq      bigint PRIMARY KEY,
    function bytea  NOT NULL,
    record   bytea  NOT NULL
);

CREATE TABLE spur_records (
    kind  smallint NOT NULL,
    key   bytea    NOT NULL,
    value bytea    NOT NULL,
    PRIMARY KEY (kind, key)
);
`}, {2, "one lease per node (spur_nodes) instead of one per job", `
CREATE TABLE spur_nodes (
    name        text        PRIMARY KEY,
    lease_until timestamptz NOT NULL
);
INSERT INTO spur_nodes (name, lease_until)
SELECT owner, max(lease_until) FROM spur_jobs WHERE owner IS NOT NULL AND lease_until IS NOT NULL GROUP BY owner;
DROP INDEX spur_jobs_lease;
CREATE INDEX spur_jobs_lease ON spur_jobs (lease_until) WHERE lease_until IS NOT NULL;
`}}

// SchemaVersion is the schema version this binary creates and reads.
var SchemaVersion = migrations[len(migrations)-1].version

// migrate brings the database to SchemaVersion, one migration per transaction, each under
// the migration lock (a transaction-level advisory lock: two nodes starting together take
// turns, and the second finds the work done). A database at a newer version is refused.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return migrateTo(ctx, pool, SchemaVersion)
}

// migrateTo brings the database to version target (tests stop short of SchemaVersion).
func migrateTo(ctx context.Context, pool *pgxpool.Pool, target int) error {
	for {
		done, err := migrateStep(ctx, pool, target)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next migration up to target, or reports that there is none left.
func migrateStep(ctx context.Context, pool *pgxpool.Pool, target int) (done bool, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit, a no-op
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockMigrate); err != nil {
		return false, fmt.Errorf("taking the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS spur_schema_migrations (
    version     integer     PRIMARY KEY,
    description text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return false, fmt.Errorf("creating spur_schema_migrations: %w", err)
	}
	var v int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM spur_schema_migrations").Scan(&v); err != nil {
		return false, fmt.Errorf("reading the schema version: %w", err)
	}
	switch {
	case v > SchemaVersion:
		return false, fmt.Errorf("the database's Spur schema is at version %d, newer than this spurd knows (%d): "+
			"run a spurd at least as new as the one that migrated it", v, SchemaVersion)
	case v >= target:
		return true, tx.Commit(ctx)
	}
	m := migrations[v] // version v+1
	// The simple protocol runs the several statements of a migration in one go.
	if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		return false, fmt.Errorf("schema migration %d (%s): %w", m.version, m.description, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO spur_schema_migrations (version, description) VALUES ($1, $2)",
		m.version, m.description); err != nil {
		return false, err
	}
	return false, tx.Commit(ctx)
}
