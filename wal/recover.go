package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Recovered is everything Open found, each kind in key order.
type Recovered struct {
	Jobs      []Record           // submission order
	Functions []FunctionSettings // by name
	Dead      []DeadLetter       // by Job.Seq: oldest job first (not the order they died in)
	Schedules []Schedule         // by Seq: oldest first
	// Results are left on disk (Log.Result reads them); only their number and size are
	// counted, as ResultStats reports them.
	Results     int
	ResultBytes int64
	Other       []Entry // kinds this version does not interpret yet (kept, not dropped)
}

// recover reads every key once, but for the results' by-unique index: the sequence
// reservation, the jobs, the function settings, the dead letters and the schedules are
// decoded; the results are read to count them, and none is kept; a kind this version does
// not interpret is handed back untouched in Other.
func (l *Log) recover() (*Recovered, error) {
	it, err := l.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("cannot read the job log: %w", err)
	}
	defer it.Close()
	rec := &Recovered{}
	// seqKey reads the sequence number of a key of kind 'j', 'd' or 's'.
	seqKey := func(what string, k []byte) (uint64, error) {
		if len(k) != 9 {
			return 0, fmt.Errorf("%w: %s key %x", ErrCorrupt, what, k)
		}
		seq := binary.BigEndian.Uint64(k[1:])
		l.seq = max(l.seq, seq) // a handle is never issued again, whatever holds it
		return seq, nil
	}
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) == 0 {
			return nil, fmt.Errorf("%w: empty key", ErrCorrupt)
		}
		if Kind(k[0]) == KindResult && (len(k) < 2 || k[1] != resultBySeq) {
			if len(k) < 2 || k[1] != resultByUnique {
				return nil, fmt.Errorf("%w: result key %q", ErrCorrupt, k)
			}
			// Past the results: the by-unique index is read on demand, never here.
			ok = it.SeekGE([]byte{byte(KindResult) + 1})
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("cannot read key %q from the job log: %w", k, err)
		}
		switch Kind(k[0]) {
		case KindJob:
			seq, err := seqKey("job", k)
			if err != nil {
				return nil, err
			}
			r, err := decodeRecord(seq, v)
			if err != nil {
				return nil, err
			}
			rec.Jobs = append(rec.Jobs, r)
		case KindFunction:
			s, err := decodeFunction(string(k[1:]), v)
			if err != nil {
				return nil, err
			}
			rec.Functions = append(rec.Functions, s)
		case KindDead:
			seq, err := seqKey("dead letter", k)
			if err != nil {
				return nil, err
			}
			d, err := decodeDead(seq, v)
			if err != nil {
				return nil, err
			}
			rec.Dead = append(rec.Dead, d)
		case KindSchedule:
			seq, err := seqKey("schedule", k)
			if err != nil {
				return nil, err
			}
			s, err := decodeSchedule(seq, v)
			if err != nil {
				return nil, err
			}
			rec.Schedules = append(rec.Schedules, s)
		case KindResult: // a result: counted, not kept
			if len(k) != 2+8 {
				return nil, fmt.Errorf("%w: result key %q", ErrCorrupt, k)
			}
			seq := binary.BigEndian.Uint64(k[2:])
			r, err := decodeResult(seq, v, false)
			if err != nil {
				return nil, err
			}
			l.seq = max(l.seq, seq)
			rec.Results++
			rec.ResultBytes += resultSize(&r, len(v))
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
		ok = it.Next()
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("cannot read the job log: %w", err)
	}
	l.results.Store(int64(rec.Results))
	l.resultBytes.Store(rec.ResultBytes)
	return rec, nil
}

// entry copies a key and value the iterator owns.
func entry(k, v []byte) Entry {
	return Entry{Kind: Kind(k[0]), Key: bytes.Clone(k[1:]), Value: bytes.Clone(v)}
}
