package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spur-gearman/spur/wal"
)

// The engine's ResultLog: results are rows of spur_results, written by the Txn that
// deletes their job, read on demand (never kept in memory), removed by ExpireResults.

const resultColumns = `seq, handle, function, uniq, outcome, attempts, created, started, finished, expires, data`

func scanResult(row pgx.Row) (wal.Result, error) {
	var (
		seq, created, started, finished, expires int64
		handle, fn, uniq, data                   []byte
		outcome                                  int16
		attempts                                 int32
	)
	if err := row.Scan(&seq, &handle, &fn, &uniq, &outcome, &attempts, &created, &started, &finished, &expires, &data); err != nil {
		return wal.Result{}, err
	}
	if data == nil {
		data = []byte{}
	}
	return wal.Result{Seq: uint64(seq), Handle: string(handle), Function: string(fn), Unique: string(uniq),
		Outcome: wal.Outcome(outcome), Data: data, Attempts: uint32(attempts), Created: created, Started: started,
		Finished: finished, Expires: expires}, nil
}

// Result reads the stored result of job number seq (the caller checks its Handle), as
// committed: a result still queued is not found yet (a Barrier first waits for it). The
// result may have been written by any node. After Close it returns ErrClosed.
func (s *Store) Result(seq uint64) (wal.Result, bool, error) {
	return s.readResult(`SELECT `+resultColumns+` FROM spur_results WHERE seq = $1`, int64(seq))
}

// ResultByUnique reads the newest stored result (the highest job number) of function fn's
// unique, as Result does. An empty unique has none.
func (s *Store) ResultByUnique(fn, unique string) (wal.Result, bool, error) {
	if unique == "" {
		return wal.Result{}, false, nil
	}
	return s.readResult(`SELECT `+resultColumns+` FROM spur_results WHERE function = $1 AND uniq = $2
		ORDER BY seq DESC LIMIT 1`, []byte(fn), []byte(unique))
}

func (s *Store) readResult(query string, args ...any) (wal.Result, bool, error) {
	if err := s.enter(); err != nil {
		return wal.Result{}, false, err
	}
	defer s.readers.Done()
	ctx, cancel := s.callCtx(context.Background())
	defer cancel()
	r, err := scanResult(s.pool.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return wal.Result{}, false, nil
	}
	if err != nil {
		s.connFailed(err)
		return wal.Result{}, false, fmt.Errorf("reading a result from PostgreSQL at %s: %w", s.where, err)
	}
	return r, true, nil
}

// ResultStats returns how many results are stored and the bytes they count (each one's
// size column). The figures are counted from the table at Open and again by ExpireResults
// at most every resultsCensusEvery (other nodes write and expire results too), and moved
// in between by this node's own commits and expiries. Safe to call at any time.
func (s *Store) ResultStats() (count int, bytes int64) {
	// Between two counts, other nodes' expiries can make this node's figures go below zero.
	return int(max(s.results.Load(), 0)), max(s.resultBytes.Load(), 0)
}

// resultsCensusEvery is how often ExpireResults counts the whole results table.
const resultsCensusEvery = 10 * time.Second

// expireChunk is the most results one ExpireResults statement removes.
const expireChunk = 1000

// ExpireResults removes, oldest job first, the results whose Expires is at or before now,
// and then more while more than maxBytes are stored (maxBytes <= 0: no byte bound), stopping
// at the first that is neither, as the Pebble log does; it returns how many it removed.
// Each chunk of at most expireChunk results is one statement of its own (results are
// written once and removed only here, so it needs no place in the committer's order). Two
// nodes expiring at once remove each result once. Calls run one at a time; after Close it
// returns ErrClosed.
func (s *Store) ExpireResults(now time.Time, maxBytes int64) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.readers.Done()
	s.expiring.Lock()
	defer s.expiring.Unlock()
	if time.Since(time.Unix(0, s.resultsCensus.Load())) >= resultsCensusEvery {
		if err := s.countResults(); err != nil {
			return 0, err
		}
	}
	cutoff := now.UnixNano()
	removed := 0
	for {
		n, more, err := s.expireChunk(cutoff, maxBytes)
		removed += n
		if err != nil || !more {
			return removed, err
		}
	}
}

// countResults counts the results table into ResultStats.
func (s *Store) countResults() error {
	ctx, cancel := s.callCtx(context.Background())
	defer cancel()
	var n, size int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*), coalesce(sum(size), 0)::bigint FROM spur_results").Scan(&n, &size); err != nil {
		s.connFailed(err)
		return fmt.Errorf("counting the results in PostgreSQL at %s: %w", s.where, err)
	}
	s.results.Store(n)
	s.resultBytes.Store(size)
	s.resultsCensus.Store(time.Now().UnixNano())
	return nil
}

// expireChunk removes the next chunk of results due; more says a whole chunk went.
func (s *Store) expireChunk(cutoff, maxBytes int64) (n int, more bool, err error) {
	ctx, cancel := s.callCtx(context.Background())
	defer cancel()
	stored := s.resultBytes.Load()
	var freed int64
	var seqs []int64
	err = eachRow(ctx, s.pool, `SELECT seq, size, expires FROM spur_results ORDER BY seq LIMIT $1`, func(r pgx.Rows) error {
		var seq, expires int64
		var size int32
		if err := r.Scan(&seq, &size, &expires); err != nil {
			return err
		}
		if max(expires, 0) > max(cutoff, 0) && (maxBytes <= 0 || stored-freed <= maxBytes) {
			return errStop
		}
		seqs = append(seqs, seq)
		freed += int64(size)
		return nil
	}, expireChunk)
	if err != nil && !errors.Is(err, errStop) {
		s.connFailed(err)
		return 0, false, fmt.Errorf("reading the results in PostgreSQL at %s: %w", s.where, err)
	}
	stopped := errors.Is(err, errStop)
	if len(seqs) == 0 {
		return 0, false, nil
	}
	var count, size int64
	if err := s.pool.QueryRow(ctx, `WITH d AS (DELETE FROM spur_results WHERE seq = ANY($1::bigint[]) RETURNING size)
		SELECT count(*), coalesce(sum(size), 0)::bigint FROM d`, seqs).Scan(&count, &size); err != nil {
		s.connFailed(err)
		return 0, false, fmt.Errorf("expiring results in PostgreSQL at %s: %w", s.where, err)
	}
	s.results.Add(-count)
	s.resultBytes.Add(-size)
	return int(count), !stopped && len(seqs) == expireChunk, nil
}

// errStop ends an eachRow early.
var errStop = errors.New("stop")
