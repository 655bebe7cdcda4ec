package pgstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spur-gearman/spur/wal"
)

// jobColumns are the columns a job row is read back from, in scanJob's order.
const jobColumns = `seq, handle, function, uniq, reducer, priority, run_at, attempts, first_failed, data`

// scanJob reads a row of jobColumns (plus extra destinations after them).
func scanJob(row pgx.Row, extra ...any) (wal.Record, error) {
	var (
		seq, runAt, firstFailed         int64
		handle, fn, uniq, reducer, data []byte
		priority                        int16
		attempts                        int32
	)
	dest := append([]any{&seq, &handle, &fn, &uniq, &reducer, &priority, &runAt, &attempts, &firstFailed, &data}, extra...)
	if err := row.Scan(dest...); err != nil {
		return wal.Record{}, err
	}
	if data == nil {
		data = []byte{}
	}
	return wal.Record{Seq: uint64(seq), Handle: string(handle), Function: string(fn), Unique: string(uniq),
		Reducer: string(reducer), Priority: uint8(priority), RunAt: runAt, Attempts: uint32(attempts),
		FirstFailed: firstFailed, Data: data}, nil
}

// recover reads what Open returns, in one transaction (one view of the tables): this node's
// jobs (held again under the lease Open has just renewed), in submission order; every
// function setting, dead letter and schedule; the results' count and size; the records of
// other kinds.
func (s *Store) recover(ctx context.Context) (*wal.Recovered, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit, a no-op
	rec := &wal.Recovered{}
	rows, err := tx.Query(ctx, `SELECT `+jobColumns+` FROM spur_jobs WHERE owner = $1`, s.opts.Node)
	if err != nil {
		return nil, fmt.Errorf("recovering this node's jobs: %w", err)
	}
	for rows.Next() {
		r, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("recovering this node's jobs: %w", err)
		}
		rec.Jobs = append(rec.Jobs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recovering this node's jobs: %w", err)
	}
	sort.Slice(rec.Jobs, func(a, b int) bool { return rec.Jobs[a].Seq < rec.Jobs[b].Seq })

	if rec.Functions, err = readFunctions(ctx, tx); err != nil {
		return nil, fmt.Errorf("recovering the function settings: %w", err)
	}
	if rec.Dead, err = readDead(ctx, tx, "SELECT seq, record FROM spur_dead ORDER BY seq"); err != nil {
		return nil, fmt.Errorf("recovering the dead letters: %w", err)
	}
	if rec.Schedules, err = readSchedules(ctx, tx); err != nil {
		return nil, fmt.Errorf("recovering the schedules: %w", err)
	}
	if err := eachRow(ctx, tx, "SELECT kind, key, value FROM spur_records ORDER BY kind, key", func(r pgx.Rows) error {
		var kind int16
		var k, v []byte
		if err := r.Scan(&kind, &k, &v); err != nil {
			return err
		}
		rec.Other = append(rec.Other, wal.Entry{Kind: wal.Kind(kind), Key: k, Value: v})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("recovering the records of other kinds: %w", err)
	}
	if err := tx.QueryRow(ctx, "SELECT count(*), coalesce(sum(size), 0)::bigint FROM spur_results").
		Scan(&rec.Results, &rec.ResultBytes); err != nil {
		return nil, fmt.Errorf("counting the results: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("recovering: %w", err)
	}
	s.results.Store(int64(rec.Results))
	s.resultBytes.Store(rec.ResultBytes)
	s.resultsCensus.Store(time.Now().UnixNano())
	return rec, nil
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// eachRow runs query and calls f for each row.
func eachRow(ctx context.Context, q querier, query string, f func(pgx.Rows) error, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Schedules reads every recurring schedule as committed, oldest first: the schedule leader
// reads them again every few seconds, to fire those other nodes added and stop those they
// deleted.
func (s *Store) Schedules(ctx context.Context) ([]wal.Schedule, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.readers.Done()
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := readSchedules(ctx, s.pool)
	if err != nil {
		s.readFailed(err)
		return nil, fmt.Errorf("reading the schedules in PostgreSQL at %s: %w", s.where, err)
	}
	return out, nil
}

// readSchedules reads every schedule through q, oldest first.
func readSchedules(ctx context.Context, q querier) ([]wal.Schedule, error) {
	var out []wal.Schedule
	err := eachRow(ctx, q, "SELECT seq, record FROM spur_schedules ORDER BY seq", func(r pgx.Rows) error {
		var seq int64
		var v []byte
		if err := r.Scan(&seq, &v); err != nil {
			return err
		}
		sc, err := wal.DecodeSchedule(uint64(seq), v)
		out = append(out, sc)
		return err
	})
	return out, err
}

// readFunctions reads every function's settings through q, by name.
func readFunctions(ctx context.Context, q querier) ([]wal.FunctionSettings, error) {
	var out []wal.FunctionSettings
	err := eachRow(ctx, q, "SELECT name, record FROM spur_functions ORDER BY name", func(r pgx.Rows) error {
		var name, v []byte
		if err := r.Scan(&name, &v); err != nil {
			return err
		}
		f, err := wal.DecodeFunction(string(name), v)
		out = append(out, f)
		return err
	})
	return out, err
}

// readDead reads the dead letters query selects (seq, record) through q.
func readDead(ctx context.Context, q querier, query string, args ...any) ([]wal.DeadLetter, error) {
	var out []wal.DeadLetter
	err := eachRow(ctx, q, query, func(r pgx.Rows) error {
		var seq int64
		var v []byte
		if err := r.Scan(&seq, &v); err != nil {
			return err
		}
		d, err := wal.DecodeDead(uint64(seq), v)
		out = append(out, d)
		return err
	}, args...)
	return out, err
}
