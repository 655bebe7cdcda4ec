package wal

import (
	"encoding/binary"
	"fmt"
)

// The reading side of a Txn, for a store other than the Pebble log (the PostgreSQL one, in
// wal/pgstore) that maps each kind of record onto a table of its own: the writes in order,
// each with its kind, key and value, and the decoders of each kind's value. The value
// formats are those drawn in the package doc; a store may keep them as they are in a
// column (the kinds it never queries by content) and decode them on recovery.

// TxnOp is what one write of a Txn does.
type TxnOp byte

const (
	TxnPut    TxnOp = txnSet    // sets Key to Value
	TxnDelete TxnOp = txnDelete // removes Key
	// TxnDeleteIf removes Key only if it holds Value at that point: ExpireResults's removal
	// of a by-unique result entry. Only the Pebble log's own ExpireResults writes it.
	TxnDeleteIf TxnOp = txnDeleteIf
)

// TxnWrite is one write of a Txn. Key is the key without its kind byte; Key and Value alias
// the Txn's buffer: they are valid until the Txn is Reset, and must be copied to be kept.
type TxnWrite struct {
	Op    TxnOp
	Kind  Kind
	Key   []byte
	Value []byte // nil for a TxnDelete
}

// Writes calls yield for each of t's writes in the order they were made, until yield
// returns false (a range-over-func iterator: `for w := range t.Writes`).
func (t *Txn) Writes(yield func(TxnWrite) bool) {
	for b := t.buf; len(b) > 0; {
		var w txnWrite
		w, b = nextTxnWrite(b)
		if !yield(TxnWrite{Op: TxnOp(w.tag), Kind: Kind(w.key[0]), Key: w.key[1:], Value: w.value}) {
			return
		}
	}
}

// Err is t's misuse (an invalid retry policy, outcome or priority, a Put of a kind that has
// its own method), which Apply refuses t with; nil for a Txn a store may apply.
func (t *Txn) Err() error { return t.err }

// Seq reads the sequence number of a job, dead letter or schedule key; ok is false for a key
// of another kind or shape.
func (w TxnWrite) Seq() (seq uint64, ok bool) {
	switch w.Kind {
	case KindJob, KindDead, KindSchedule:
		if len(w.Key) == 8 {
			return binary.BigEndian.Uint64(w.Key), true
		}
	}
	return 0, false
}

// ResultSeq reads the job number of a result's by-number key ('c','h',seq); ok is false
// for its by-unique key ('c','u',...), which a store that indexes its results by function
// and unique itself ignores.
func (w TxnWrite) ResultSeq() (seq uint64, ok bool) {
	if w.Kind == KindResult && len(w.Key) == 1+8 && w.Key[0] == resultBySeq {
		return binary.BigEndian.Uint64(w.Key[1:]), true
	}
	return 0, false
}

// Job decodes the job record a TxnPut of KindJob writes.
func (w TxnWrite) Job() (Record, error) {
	seq, ok := w.Seq()
	if !ok || w.Kind != KindJob {
		return Record{}, fmt.Errorf("%w: job key %x", ErrCorrupt, w.Key)
	}
	return decodeRecord(seq, w.Value)
}

// Function decodes the settings a TxnPut of KindFunction writes (the name is the key).
func (w TxnWrite) Function() (FunctionSettings, error) {
	return decodeFunction(string(w.Key), w.Value)
}

// Result decodes the result a TxnPut of a result's by-number key writes.
func (w TxnWrite) Result() (Result, error) {
	seq, ok := w.ResultSeq()
	if !ok {
		return Result{}, fmt.Errorf("%w: result key %q", ErrCorrupt, w.Key)
	}
	return decodeResult(seq, w.Value, true)
}

// Dead decodes the dead letter a TxnPut of KindDead writes.
func (w TxnWrite) Dead() (DeadLetter, error) {
	seq, ok := w.Seq()
	if !ok || w.Kind != KindDead {
		return DeadLetter{}, fmt.Errorf("%w: dead letter key %x", ErrCorrupt, w.Key)
	}
	return decodeDead(seq, w.Value)
}

// Schedule decodes the schedule a TxnPut of KindSchedule writes.
func (w TxnWrite) Schedule() (Schedule, error) {
	seq, ok := w.Seq()
	if !ok || w.Kind != KindSchedule {
		return Schedule{}, fmt.Errorf("%w: schedule key %x", ErrCorrupt, w.Key)
	}
	return decodeSchedule(seq, w.Value)
}

// DecodeFunction parses function settings stored as the value of a TxnPut of KindFunction
// (version 1 above) under the function's name. The result does not alias value.
func DecodeFunction(name string, value []byte) (FunctionSettings, error) {
	return decodeFunction(name, value)
}

// DecodeDead parses a dead letter stored as the value of a TxnPut of KindDead under seq.
func DecodeDead(seq uint64, value []byte) (DeadLetter, error) { return decodeDead(seq, value) }

// DecodeSchedule parses a schedule stored as the value of a TxnPut of KindSchedule under seq.
func DecodeSchedule(seq uint64, value []byte) (Schedule, error) {
	return decodeSchedule(seq, value)
}
