// Package importer is `spur import`: it moves the persisted queue of a stopped gearmand 1.1
// into Spur, with nothing lost and nothing run twice.
//
// # The move
//
//	gearmand's store ──Rows──▶ check ──batch──▶ target ──ack──▶ Delete those rows from the store
//	(sqlite, mysql,            (skips stay      (--to: SUBMIT_*_BG / SUBMIT_JOB_EPOCH until
//	 postgres, redis)           in the store)    JOB_CREATED; --data-dir: one fsynced wal Txn)
//
// The whole queue is read first (gearmand loads all of it into memory on start, so it fits),
// checked row by row (a row Spur cannot take — bad priority, a function name or unique above
// the protocol's limits, an epoch job that is not of normal priority sent over the protocol —
// is reported and left in the store), then moved in batches: a batch's rows are deleted from
// the store only once the target has acknowledged them, so that a gearmand restarted on the
// old store does not run them again and a second import finds nothing. --keep leaves the
// store untouched.
//
// # Idempotency, and what it does not cover
//
// A crash (or an error) between a batch's acknowledgement and its delete leaves that batch in
// both places; the next run:
//
//   - with --data-dir, recognises every such row and only finishes the delete: the data dir's
//     jobs are compared by function and unique (the unique "-" also by data; an empty unique
//     by priority, run-at and data, since gearmand's table holds one such row per function);
//   - with --to, submits the batch again: spurd coalesces a row with a unique onto the job
//     still queued or running, but a job that already ended, and a row with an empty unique,
//     run again. The same holds for a second run after --keep.
//
// # gearmand must be stopped
//
// A gearmand still using the store would run the jobs being moved and write new ones behind
// the import's back. The import refuses to start when it can see one (running.go): a gearmand
// process here whose command line names the same queue, a process holding the SQLite file
// open, or a server on the -L/-p address of the pasted command line that is not the --to
// target. --force skips these checks.
//
// # Stores
//
// The SQL stores' schemas are in sqlstore.go, redis's keys in redisstore.go. libmemcached is
// refused: memcached cannot list its keys completely, so nothing could promise the move is
// whole. See the README's "Moving off gearmand: spur import".
package importer
