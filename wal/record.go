// Package wal is Spur's durable job log: every background job is written to a Pebble database
// before its JOB_CREATED is sent, and deleted when it ends. One committer goroutine groups the
// writes of all connections into one Pebble batch per commit (group commit), so the event
// loops never wait for a disk and an fsync is shared by every job that arrived meanwhile.
//
// # Keys and values
//
// Two kinds of key live in the database:
//
//	"j" + seq (8 bytes, big-endian)  -> a job record; seq is the job's submission number,
//	                                    so a key-order scan replays jobs in submission order
//	"m" + "seq"                      -> the highest sequence number reserved (8 bytes, BE);
//	                                    numbers are handed out in blocks below it, so a
//	                                    restart never reuses one, even for jobs since deleted
//
// A job record's value:
//
//	+---------+----------+-------+----------------+----------------------------------+------+
//	| version | priority | flags | run-at (varint)| handle, function, unique, reducer | data |
//	| 1 byte  | 1 byte   | 1 byte| if flags&1     | each uvarint length + bytes       | rest |
//	+---------+----------+-------+----------------+----------------------------------+------+
//
// # Invariants
//
//   - A Put's done callback runs only after the batch holding it is committed with the
//     configured durability, and callbacks run in the order the Puts were made.
//   - A Delete is applied after every earlier Put of the same key (one queue, one committer).
//   - Sequence numbers issued by NextSeq are below the durable reservation, or NextSeq waits.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Record is one durable job.
type Record struct {
	Seq      uint64
	Handle   string
	Function string
	Unique   string
	Reducer  string
	Priority uint8
	RunAt    int64 // unix seconds; 0 = as soon as possible
	Data     []byte
}

const (
	recordVersion = 1
	flagRunAt     = 1

	jobPrefix  = 'j'
	metaPrefix = 'm'
)

var metaSeqKey = []byte{metaPrefix, 's', 'e', 'q'}

// ErrCorrupt reports a record that cannot be decoded.
var ErrCorrupt = errors.New("wal: corrupt job record")

func jobKey(dst []byte, seq uint64) []byte {
	dst = append(dst, jobPrefix)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// appendRecord encodes r's value (everything but the key) onto dst.
func appendRecord(dst []byte, r *Record) []byte {
	var flags byte
	if r.RunAt != 0 {
		flags |= flagRunAt
	}
	dst = append(dst, recordVersion, r.Priority, flags)
	if r.RunAt != 0 {
		dst = binary.AppendVarint(dst, r.RunAt)
	}
	for _, s := range [...]string{r.Handle, r.Function, r.Unique, r.Reducer} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return append(dst, r.Data...)
}

// decodeRecord parses a record stored under seq. The result does not alias value.
func decodeRecord(seq uint64, value []byte) (Record, error) {
	bad := func(what string) (Record, error) {
		return Record{}, fmt.Errorf("%w: seq %d: %s", ErrCorrupt, seq, what)
	}
	if len(value) < 3 || value[0] != recordVersion {
		return bad("unknown version")
	}
	r := Record{Seq: seq, Priority: value[1]}
	if r.Priority > 2 {
		return bad("bad priority")
	}
	flags := value[2]
	rest := value[3:]
	if flags&^flagRunAt != 0 {
		return bad("unknown flags")
	}
	if flags&flagRunAt != 0 {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return bad("bad run-at time")
		}
		r.RunAt, rest = v, rest[n:]
	}
	var fields [4]string
	for i := range fields {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return bad("truncated field")
		}
		fields[i] = string(rest[n : n+int(l)])
		rest = rest[n+int(l):]
	}
	r.Handle, r.Function, r.Unique, r.Reducer = fields[0], fields[1], fields[2], fields[3]
	r.Data = append([]byte{}, rest...)
	return r, nil
}
