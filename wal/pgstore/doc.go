// Package pgstore is Spur's shared durable store on PostgreSQL (spurd -q postgres): the
// background jobs, function settings, results, dead letters and recurring schedules of every
// node of a cluster, in tables of one database. It implements the engine's Store and
// ResultLog with the semantics of the Pebble log (package wal) — acknowledgements in call
// order, only once the transaction holding the write committed, writes taking effect in
// queue order — and adds what a store several nodes share needs: job numbers from one
// sequence, claims of unheld jobs under a lease, unique coalescing across nodes, wake-ups
// of idle nodes (LISTEN/NOTIFY, with polling as the fallback) and one schedule leader.
//
// # Tables (schema version 2)
//
// Spur creates and migrates them itself (schema.go): versioned migrations recorded in
// spur_schema_migrations, each in its own transaction under a transaction-level advisory
// lock, so that nodes starting together do not race. A database at a newer version than
// the binary knows is refused.
//
//	spur_jobs: one row per queued or running background job
//	+--------------+-------------+------------------------------------------------------+
//	| column       | type        | holds                                                |
//	+--------------+-------------+------------------------------------------------------+
//	| seq          | bigint PK   | the job's number, from spur_job_seq: unique across   |
//	|              |             | the cluster; its handle is PREFIX:seq                |
//	| handle       | bytea       | the handle the submitter was given                   |
//	| function     | bytea       | function name (at most MaxFunction bytes)            |
//	| uniq         | bytea NULL  | unique id; NULL for none                             |
//	| reducer      | bytea       | reducer name ('' for none)                           |
//	| priority     | smallint    | 0 high, 1 normal, 2 low                              |
//	| run_at       | bigint      | unix seconds it may run from; 0 = at once            |
//	| attempts     | integer     | assignments that failed so far (retry policy)        |
//	| first_failed | bigint      | unix nanoseconds of the first of them; 0 = none      |
//	| data         | bytea       | the job's payload                                    |
//	| owner        | text NULL   | the node (NodeName) holding it; NULL = nobody: any   |
//	|              |             | node may claim it                                    |
//	| lease_until  | timestamptz | schema 1's per-job lease, still honoured for a node  |
//	|              | NULL        | of that version in a rolling upgrade; NULL in rows   |
//	|              |             | written since (a holder's lease is spur_nodes')      |
//	| created_at   | timestamptz | when the row was inserted (for operators)            |
//	+--------------+-------------+------------------------------------------------------+
//	indexes: UNIQUE (function, uniq) WHERE uniq IS NOT NULL  -- coalescing, cluster-wide
//	         (function, priority, seq) WHERE owner IS NULL    -- claims: best, oldest first
//	         (owner) WHERE owner IS NOT NULL                  -- recovery, renewal
//	         (lease_until) WHERE lease_until IS NOT NULL      -- schema 1's rows, for the reaper
//
//	spur_nodes: one row per node that ever held a job (see lease.go)
//	| name         | text PK     | the node (NodeName)                                  |
//	| lease_until  | timestamptz | its lease: past it, the jobs it holds are freed      |
//	|              |             | (owner NULL) before a claim or poll; renewed every   |
//	|              |             | Lease/3                                              |
//
//	spur_results: the outcome of every ended background job, until it expires
//	+------------------------------+-----------+---------------------------------------+
//	| seq                          | bigint PK | the job's number                      |
//	| handle, function, uniq       | bytea     | the job's (uniq NULL for none)        |
//	| outcome                      | smallint  | 1 complete, 2 fail, 3 exception       |
//	| attempts                     | integer   | assignments, the last one included    |
//	| created, started, finished,  | bigint    | unix nanoseconds                      |
//	| expires                      |           |                                       |
//	| size                         | integer   | what it counts in ResultStats' bytes  |
//	| data                         | bytea     | the result or the exception           |
//	+------------------------------+-----------+---------------------------------------+
//	index: (function, uniq, seq) WHERE uniq IS NOT NULL  -- ResultByUnique: the newest
//
//	spur_functions (name bytea PK, record bytea)
//	spur_dead      (seq bigint PK, function bytea, record bytea)
//	spur_schedules (seq bigint PK, function bytea, record bytea)
//	spur_records   (kind smallint, key bytea, value bytea, PK (kind, key))
//	spur_job_seq   a sequence, INCREMENT BY 1024: each nextval reserves a block of numbers
//
// The records the engine never queries by content (function settings, dead letters,
// schedules) keep package wal's versioned value encoding in their record column, so that a
// later release reads what an older one wrote the way the Pebble log does. spur_records
// keeps the kinds this version does not interpret (wal.Recovered.Other), never dropped.
//
// # Group commit
//
// One committer goroutine takes everything queued since its last commit (at most
// maxBatchOps ops, maxBatchBytes bytes), folds it per key in queue order — a Put then a
// Delete of one job writes nothing; the last write of a function's settings, a dead letter
// or a schedule wins — and writes it in ONE transaction: set-based statements over arrays
// (INSERT ... SELECT FROM unnest($1::bigint[], ...), DELETE ... WHERE seq = ANY($1)),
// pipelined in one round trip (an implicit transaction, committed at its Sync). A second
// goroutine then runs the acknowledgements in call order, so the next batch is written
// while they run. Acknowledgements never take an engine lock.
//
// # Invariants
//
//   - An Ack runs only after the transaction holding its write committed (Acked(nil)), or
//     once it is known it did not or may not have (Acked(err)); in the order of the calls.
//   - A Put whose insert conflicts on (function, uniq) with a job queued or running anywhere
//     is acknowledged with *wal.Coalesced naming that job's handle, looked up by the same
//     statement (INSERT ... ON CONFLICT DO UPDATE ... RETURNING). Two Puts of one function
//     and unique in one batch: the second coalesces onto the first. A Put whose unique
//     conflicts only with a job deleted earlier in the same batch is written (deletes go
//     first). A Txn.PutJob of a new number whose unique conflicts is not written: it joins
//     the job there, as the engine's own coalescing does.
//   - Job numbers come from one sequence: handles never repeat across nodes or restarts.
//     NextSeq hands out numbers from a block reserved ahead of need and refilled in the
//     background, so it waits for the database only when a burst used up the block and the
//     next one; with no numbers left and the database unreachable it returns the error.
//   - A Put with Shared set is written with owner NULL (any node may claim it) and the
//     committer sends one pg_notify per batch holding such Puts (channel spur_ready; payload
//     the sending node's name, then one function per line — none when a name cannot go in a
//     line or they do not fit, which tells the listeners to look at every function); any
//     other Put is written held by this node under its lease.
//   - A batch that writes function settings or dead letters sends one pg_notify on channel
//     spur_changed (payload: the node's name); every node, the sender too, is told
//     (OnChanged) and reads them again (Functions, DeadLetters: see follow.go).
//   - Recovery returns this node's own jobs (owner = Node), held again under its lease,
//     renewed first, in submission order; every function setting, dead letter and schedule;
//     the number of results (read on demand, never kept).
//
// # Failures
//
// Unlike the Pebble log, whose first failed commit fails it for good, a failed commit here
// acknowledges that batch with the error and the store goes on: the next batch is tried on
// a new connection (the pool is reset after a connection failure), so the store recovers
// by itself when the database comes back. Writable returns an error while the database is
// known unreachable (the last commit, lease renewal or ping failed) and nil again once one
// succeeds; spurd answers background submits ERROR QUEUE_ERROR meanwhile, never a
// JOB_CREATED for an uncommitted row. Deletes and fire-and-forget Txns (the ends of jobs),
// which nobody waits for, are carried over to the next batch after a failure that may pass
// (a lost connection, a deadlock), so that a job that ended does not run again.
//
// A commit whose outcome is unknown — the connection was lost after the transaction was
// sent, perhaps during its commit — is acknowledged with an error (ERROR QUEUE_ERROR to the
// submitter), and the jobs its Puts wrote, if it did commit, are given up by the next batch
// that commits (owner NULL, one notification): any node may claim and run them. They are
// not deleted, since another node's submit of the same unique may have joined one. Such a
// job may so run although its submitter was told it failed: delivery is at least once,
// never at most once. Jobs held by a node that dies run on another once their lease lapses;
// one that was running when its node died runs again (at least once).
package pgstore
