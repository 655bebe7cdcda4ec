package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Recovered is everything Open found, each kind in key order.
type Recovered struct {
	Jobs      []Record // submission order
	Functions []FunctionSettings
	Dead      []DeadLetter // oldest first
	Schedules []Schedule
	// Results are left on disk; only their number and size are counted.
	Results     int
	ResultBytes int64
	Other       []Entry // kinds this version does not interpret yet (kept, not dropped)
}

// recover reads every key once: the sequence reservation, the jobs, the function settings,
// and whatever else is there, which is handed back untouched in Other.
func (l *Log) recover() (*Recovered, error) {
	it, err := l.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("cannot read the job log: %w", err)
	}
	defer it.Close()
	rec := &Recovered{}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("cannot read key %q from the job log: %w", k, err)
		}
		if len(k) == 0 {
			return nil, fmt.Errorf("%w: empty key", ErrCorrupt)
		}
		switch Kind(k[0]) {
		case KindJob:
			if len(k) != 9 {
				return nil, fmt.Errorf("%w: job key %x", ErrCorrupt, k)
			}
			seq := binary.BigEndian.Uint64(k[1:])
			r, err := decodeRecord(seq, v)
			if err != nil {
				return nil, err
			}
			rec.Jobs = append(rec.Jobs, r)
			l.seq = max(l.seq, seq)
		case KindFunction:
			s, err := decodeFunction(string(k[1:]), v)
			if err != nil {
				return nil, err
			}
			rec.Functions = append(rec.Functions, s)
		case kindMeta:
			if !bytes.Equal(k, metaSeqKey) {
				rec.Other = append(rec.Other, entry(k, v)) // a later version's bookkeeping
				break
			}
			if len(v) != 8 {
				return nil, fmt.Errorf("%w: sequence reservation has %d bytes", ErrCorrupt, len(v))
			}
			l.seq = max(l.seq, binary.BigEndian.Uint64(v))
		default:
			rec.Other = append(rec.Other, entry(k, v))
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("cannot read the job log: %w", err)
	}
	return rec, nil
}

// entry copies a key and value the iterator owns.
func entry(k, v []byte) Entry {
	return Entry{Kind: Kind(k[0]), Key: bytes.Clone(k[1:]), Value: bytes.Clone(v)}
}
