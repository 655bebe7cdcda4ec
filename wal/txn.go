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
	//	| tag | key length (uvarint) | kind, key     | tag 's' only: value length       |
	//	|     |                      |               | (uvarint), value                 |
	//	+-----+----------------------+---------------+----------------------------------+
	//
	// with tag 's' (set) or 'd' (delete). Apply copies it whole into the log's queue and the
	// committer decodes it straight into the batch: a write costs no allocation.
	buf     []byte
	scratch []byte // a value being encoded, before its length is known
	sets    bool   // holds a set: refused as a whole when the disk is nearly full
	err     error  // a misuse, reported by Apply
}

const (
	txnSet    = 's'
	txnDelete = 'd'
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
// itself (KindSchedule, KindResult, KindDead, later ones). The value's first byte should be
// the version of that kind's format (see the package doc). Jobs and function settings go
// through PutJob and PutFunction, which encode them: a Put of those kinds fails the Txn, and
// Apply returns the error.
func (t *Txn) Put(kind Kind, key, value []byte) {
	switch kind {
	case KindJob, KindFunction, kindMeta:
		t.fail(fmt.Errorf("wal: Txn.Put of kind %q: jobs and functions go through PutJob and PutFunction, meta is the log's own", kind))
		return
	}
	t.key(txnSet, kind, len(key))
	t.buf = append(t.buf, key...)
	t.value(value)
}

// Delete removes kind+key. Any kind but the log's own meta records may be deleted this way.
func (t *Txn) Delete(kind Kind, key []byte) {
	if kind == kindMeta {
		t.fail(fmt.Errorf("wal: Txn.Delete of kind %q: meta records are the log's own", kind))
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
	t.sets, t.err = false, nil
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

// value ends a set.
func (t *Txn) value(v []byte) {
	t.buf = binary.AppendUvarint(t.buf, uint64(len(v)))
	t.buf = append(t.buf, v...)
}

// txnWrite is one decoded write of an encoded Txn; key and value alias the encoding.
type txnWrite struct {
	set        bool
	key, value []byte
}

// nextTxnWrite decodes the first write of b (an encoded Txn, as built above: never damaged,
// it never left memory) and returns the rest.
func nextTxnWrite(b []byte) (txnWrite, []byte) {
	w := txnWrite{set: b[0] == txnSet}
	b = b[1:]
	n, k := binary.Uvarint(b)
	w.key, b = b[k:k+int(n)], b[k+int(n):]
	if w.set {
		n, k = binary.Uvarint(b)
		w.value, b = b[k:k+int(n)], b[k+int(n):]
	}
	return w, b
}
