package pgstore

import (
	"context"
	"fmt"

	"github.com/spur-gearman/spur/wal"
)

// Following what other nodes change: the function settings and the dead letters live in
// the shared tables, and every node keeps a copy in memory (the engine's, as with the Pebble
// log). A batch that writes either sends one notification on changedChannel (payload: the
// node's name) in its transaction, so it arrives once the change is committed; every node,
// the sender included, is told (OnChanged) and reads the tables again.

// changedChannel carries the word that a batch changed function settings or dead letters.
const changedChannel = "spur_changed"

const sqlNotifyChanged = `SELECT pg_notify('` + changedChannel + `', $1)`

// OnChanged has f told, on the listener's goroutine, after a batch of any node (this one
// included) changed the function settings or the dead letters, and after the listener
// (re)connected (what was sent meanwhile is lost). Register it before OnReady, which starts
// the listener; a later call replaces f.
func (s *Store) OnChanged(f func()) {
	s.hooksMu.Lock()
	s.onChanged = f
	s.hooksMu.Unlock()
}

func (s *Store) changed() {
	s.hooksMu.Lock()
	f := s.onChanged
	s.hooksMu.Unlock()
	if f != nil {
		f()
	}
}

// Functions reads every function's settings as committed, by name.
func (s *Store) Functions(ctx context.Context) ([]wal.FunctionSettings, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.readers.Done()
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := readFunctions(ctx, s.pool)
	if err != nil {
		s.readFailed(err)
		return nil, fmt.Errorf("reading the function settings in PostgreSQL at %s: %w", s.where, err)
	}
	return out, nil
}

// DeadLetters reads the numbers of every dead letter as committed, ascending, and the whole
// letters of those known does not hold: a node following the list reads each letter once,
// not the whole list (up to --dead-max-bytes) on every change.
func (s *Store) DeadLetters(ctx context.Context, known func(seq uint64) bool) (seqs []uint64, fresh []wal.DeadLetter, err error) {
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	defer s.readers.Done()
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	defer func() {
		if err != nil {
			s.readFailed(err)
			err = fmt.Errorf("reading the dead letters in PostgreSQL at %s: %w", s.where, err)
		}
	}()
	var missing []int64
	rows, err := s.pool.Query(ctx, "SELECT seq FROM spur_dead ORDER BY seq")
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return nil, nil, err
		}
		seqs = append(seqs, uint64(seq))
		if !known(uint64(seq)) {
			missing = append(missing, seq)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(missing) > 0 {
		// A letter deleted in between is simply not read: the next change reads again.
		fresh, err = readDead(ctx, s.pool, "SELECT seq, record FROM spur_dead WHERE seq = ANY($1::bigint[]) ORDER BY seq", missing)
	}
	return seqs, fresh, err
}
