package wal

import (
	"encoding/binary"
	"fmt"
)

// Txn is a set of writes committed atomically: all in one Pebble batch, acknowledged once.
// Build it, hand it to Log.Apply, then Reset it to build the next one; a Txn keeps its buffers
// across Reset, so a reused Txn allocates nothing. A Txn is not safe for concurrent use.
type Txn struct {
	// buf holds the writes in order, each one
	//
	//	+-----+----------------------+---------------+----------------------------------+
	//	| tag | key length (uvarint) | kind, key     | tags 's' and 'c' only: value     |
	//	|     |                      |               | length (uvarint), value          |
	//	+-----+----------------------+---------------+----------------------------------+
	//
	// with tag 's' (set), 'd' (delete) or 'c' (delete if the key's value, when the
	// committer reaches it, is the one given: ExpireResults's removal of a by-unique result
	// entry that a newer result may have taken over meanwhile). Apply copies it whole into
	// the log's queue and the committer decodes it straight into the batch: a write costs
	// no allocation.
	buf     []byte
	scratch []byte // a value being encoded, before its length is known
	sets    bool   // holds a set: refused as a whole when the disk is nearly full
	cond    bool   // holds a 'c' write
	err     error  // a misuse, reported by Apply

	// What the Txn adds to ResultStats once committed (negative: removes).
	results     int32
	resultBytes int64
}

const (
	txnSet      = 's'
	txnDelete   = 'd'
	txnDeleteIf = 'c' // only for by-unique result keys; see Txn.buf
)

// PutJob writes a job record under r.Seq.
func (t *Txn) PutJob(r Record) {
	t.buf = appendJobPut(t.buf, &r)
	t.sets = true
}

// DeleteJob removes the job record under seq.
func (t *Txn) DeleteJob(seq uint64) {
	t.buf = appendJobDelete(t.buf, seq)
}

// PutFunction writes s under s.Name, replacing that function's earlier settings. A retry
// policy that is neither zero nor valid (attempts >= 1, 0 < base <= max) fails the Txn.
func (t *Txn) PutFunction(s FunctionSettings) {
	if err := s.Retry.check(); err != nil {
		t.fail(fmt.Errorf("wal: settings of function %q: %w", s.Name, err))
		return
	}
	t.scratch = appendFunction(t.scratch[:0], &s)
	t.key(txnSet, KindFunction, len(s.Name))
	t.buf = append(t.buf, s.Name...)
	t.value(t.scratch)
}

// DeleteFunction removes a function's settings.
func (t *Txn) DeleteFunction(name string) {
	t.key(txnDelete, KindFunction, len(name))
	t.buf = append(t.buf, name...)
}

// Put writes value under kind+key, both copied, for the kinds this package does not encode
// itself (later ones). The value's first byte should be the version of that kind's format
// (see the package doc). The kinds it encodes go through their own methods (PutJob,
// PutFunction, PutResult, PutDead, PutSchedule): a Put of those kinds, or of the log's own
// meta records, fails the Txn, and Apply returns the error.
func (t *Txn) Put(kind Kind, key, value []byte) {
	switch kind {
	case KindJob, KindFunction, KindResult, KindDead, KindSchedule, kindMeta:
		t.fail(fmt.Errorf("wal: Txn.Put of kind %q: the kinds the log encodes go through their own Put methods, meta is the log's own", kind))
		return
	}
	t.key(txnSet, kind, len(key))
	t.buf = append(t.buf, key...)
	t.value(value)
}

// Delete removes kind+key (key without the kind byte). Any kind may be deleted this way but
// two: the log's own meta records, and results, which only ExpireResults removes (it keeps
// ResultStats's account and their three keys together). A Delete of those fails the Txn.
func (t *Txn) Delete(kind Kind, key []byte) {
	switch kind {
	case kindMeta, KindResult:
		t.fail(fmt.Errorf("wal: Txn.Delete of kind %q: meta records are the log's own, results are removed by ExpireResults", kind))
		return
	}
	t.key(txnDelete, kind, len(key))
	t.buf = append(t.buf, key...)
}

// Sets reports whether t writes a record, rather than only deleting: a nearly full disk
// refuses such a Txn whole.
func (t *Txn) Sets() bool { return t.sets }

// Reset empties t for reuse, keeping its buffers.
func (t *Txn) Reset() {
	t.buf, t.scratch = t.buf[:0], t.scratch[:0]
	t.sets, t.cond, t.err = false, false, nil
	t.results, t.resultBytes = 0, 0
}

func (t *Txn) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// key starts a write: its tag, then the length and kind of a key whose n remaining bytes the
// caller appends.
func (t *Txn) key(tag byte, kind Kind, n int) {
	t.buf = append(t.buf, tag)
	t.buf = binary.AppendUvarint(t.buf, uint64(1+n))
	t.buf = append(t.buf, byte(kind))
	if tag == txnSet {
		t.sets = true
	}
}

// value ends a set (or a conditional delete).
func (t *Txn) value(v []byte) {
	t.buf = binary.AppendUvarint(t.buf, uint64(len(v)))
	t.buf = append(t.buf, v...)
}

// valueString is value for a string.
func (t *Txn) valueString(v string) {
	t.buf = binary.AppendUvarint(t.buf, uint64(len(v)))
	t.buf = append(t.buf, v...)
}

// txnWrite is one decoded write of an encoded Txn; key and value alias the encoding.
type txnWrite struct {
	tag        byte // txnSet, txnDelete or txnDeleteIf
	key, value []byte
}

// nextTxnWrite decodes the first write of b (an encoded Txn, as built above: never damaged,
// it never left memory) and returns the rest.
func nextTxnWrite(b []byte) (txnWrite, []byte) {
	w := txnWrite{tag: b[0]}
	b = b[1:]
	n, k := binary.Uvarint(b)
	w.key, b = b[k:k+int(n)], b[k+int(n):]
	if w.tag != txnDelete {
		n, k = binary.Uvarint(b)
		w.value, b = b[k:k+int(n)], b[k+int(n):]
	}
	return w, b
}

// EachJob calls put for every job record t writes and del for every one it deletes, in the
// order written: for stand-ins of the log that model its job records only (waltest).
func (t *Txn) EachJob(put func(Record), del func(seq uint64)) {
	for b := t.buf; len(b) > 0; {
		var w txnWrite
		w, b = nextTxnWrite(b)
		if len(w.key) != 9 || Kind(w.key[0]) != KindJob {
			continue
		}
		seq := binary.BigEndian.Uint64(w.key[1:])
		switch w.tag {
		case txnSet:
			if r, err := decodeRecord(seq, w.value); err == nil {
				put(r)
			}
		case txnDelete:
			del(seq)
		}
	}
}
