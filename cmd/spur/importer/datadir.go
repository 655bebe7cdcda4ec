package importer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spur-gearman/spur/wal"
)

// dirTarget writes the rows into a stopped spurd's data dir with the wal package, as the
// job records spurd itself writes for background jobs: a fresh sequence number, the handle
// spurd would have given (PREFIX:seq), the function, unique, priority, run-at and data.
// spurd recovers them on its next start, in sequence order, which is the source's order.
// One batch is one atomic, fsynced Txn.
//
// A row already in the data dir is not written again: one with the same function and unique,
// as spurd would coalesce them (for the unique "-", also the same data, as spurd coalesces
// those by data); for an empty unique, one with the same function, priority, run-at and
// data, since gearmand's table holds at most one row of a function with an empty unique (its
// key is (unique, function)), so such a record is this row imported before.
type dirTarget struct {
	dir    string
	log    *wal.Log
	prefix string
	have   map[string][]wal.Record // function NUL unique -> records there
	txn    wal.Txn
}

func openDir(dir, prefix string) (*dirTarget, error) {
	if prefix == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "localhost"
		}
		prefix = "H:" + host // spurd's default (engine.Config.HandlePrefix)
	}
	// Open refuses a directory another process holds (a running spurd) with a message
	// that says so.
	l, rec, err := wal.Open(wal.Options{Dir: dir, Sync: wal.SyncAlways, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	t := &dirTarget{dir: dir, log: l, prefix: prefix, have: map[string][]wal.Record{}}
	for _, r := range rec.Jobs {
		k := r.Function + "\x00" + r.Unique
		t.have[k] = append(t.have[k], r)
	}
	return t, nil
}

func (t *dirTarget) Describe() string { return "the data dir " + t.dir }

// present reports whether r is already in the data dir (see dirTarget).
func (t *dirTarget) present(r *Row) bool {
	for _, h := range t.have[r.Function+"\x00"+r.Unique] {
		switch r.Unique {
		case "":
			if int64(h.Priority) == r.Priority && h.RunAt == r.When && bytes.Equal(h.Data, r.Data) {
				return true
			}
		case "-":
			if bytes.Equal(h.Data, r.Data) {
				return true
			}
		default:
			return true
		}
	}
	return false
}

type ackChan chan error

func (c ackChan) Acked(err error) { c <- err }

func (t *dirTarget) Import(ctx context.Context, rows []Row) ([]outcome, error) {
	res := make([]outcome, len(rows))
	t.txn.Reset()
	var written []wal.Record
	for i := range rows {
		r := &rows[i]
		if t.present(r) {
			res[i] = outcome{kind: already}
			continue
		}
		seq, err := t.log.NextSeq()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Describe(), err)
		}
		rec := wal.Record{Seq: seq, Handle: fmt.Sprintf("%s:%d", t.prefix, seq), Function: r.Function,
			Unique: r.Unique, Priority: uint8(r.Priority), RunAt: r.When, Data: r.Data}
		t.txn.PutJob(rec)
		written = append(written, rec)
		res[i] = outcome{kind: imported}
	}
	if len(written) > 0 {
		ack := make(ackChan, 1)
		if err := t.log.Apply(&t.txn, ack); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Describe(), err)
		}
		select {
		case err := <-ack:
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.Describe(), err)
			}
		case <-ctx.Done():
			// The commit goes on; Close waits for it. Its rows stay in the source.
			return nil, ctx.Err()
		}
	}
	for _, rec := range written {
		k := rec.Function + "\x00" + rec.Unique
		t.have[k] = append(t.have[k], rec)
	}
	return res, nil
}

func (t *dirTarget) Close() error { return t.log.Close() }
