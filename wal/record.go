// Package wal is Spur's durable store: every background job is written to a Pebble database
// before its JOB_CREATED is sent, and deleted when it ends; beside the jobs live a function's
// own settings, the stored results of ended jobs, the dead letters (jobs that exhausted their
// attempts) and the recurring schedules. One committer goroutine groups the writes of all
// connections into one Pebble batch per commit (group commit), so the event loops never wait
// for a disk and an fsync is shared by every write that arrived meanwhile.
//
// # Keys
//
// The first byte of a key is its kind (type Kind); what follows identifies the record:
//
//	+------+-------------------------------+-----------------------------------------------+
//	| kind | rest of the key               | value                                         |
//	+------+-------------------------------+-----------------------------------------------+
//	| 'j'  | seq, 8 bytes big-endian       | job record (below); seq is the job's          |
//	|      |                               | submission number, so a key-order scan        |
//	|      |                               | replays jobs in submission order              |
//	| 'f'  | function name (its raw bytes) | function settings (below)                     |
//	| 'd'  | seq, 8 bytes big-endian       | dead letter (below); seq is the dead job's    |
//	| 's'  | seq, 8 bytes big-endian       | schedule (below); seq from NextSeq, as jobs'  |
//	| 'c'  | 'h', seq, 8 bytes big-endian  | result (below) of the ended job number seq:   |
//	|      |                               | written in key order, oldest first, and       |
//	|      |                               | before the jobs' kind (see resultBySeq)       |
//	| 'c'  | 'u', function, 0x00, unique   | the seq (8 bytes big-endian) of the newest    |
//	|      |                               | result of that unique (only for a result with |
//	|      |                               | a unique)                                     |
//	| 'm'  | "seq"                         | the highest sequence number reserved, 8 bytes |
//	|      |                               | big-endian; numbers are handed out below it,  |
//	|      |                               | so a restart never reuses one, even for jobs  |
//	|      |                               | since deleted                                 |
//	+------+-------------------------------+-----------------------------------------------+
//
// A result's two keys are written and removed together: PutResult writes them, and only
// ExpireResults removes them (the by-unique one only while it still names that result: a
// newer result of the same unique has taken it over). Neither a function name nor a unique
// holds 0x00 on the wire; if one did, ResultByUnique checks the result it finds is the one
// asked for.
//
// # Values
//
// Every value but the meta one and the expiry entries starts with the version of its kind's
// format, so that a later release can change a format and still read the old one. A version
// that does not know a flag, a version or an outcome refuses the record: an error naming it.
// Times are signed varints; lengths are uvarints followed by that many bytes.
//
// Job record, version 1:
//
//	+---------+----------+-------+----------------+-------------------+-----------------------------------+------+
//	| version | priority | flags | run-at (varint)| attempts (uvarint)| handle, function, unique, reducer | data |
//	| 1 byte  | 1 byte   | 1 byte| if flags&1     | 1st fail (varint) | each uvarint length + bytes       | rest |
//	|         |          |       |                | if flags&2        |                                   |      |
//	+---------+----------+-------+----------------+-------------------+-----------------------------------+------+
//
//	priority 0 high, 1 normal, 2 low; flags bit 0: run-at present (unix seconds); bit 1:
//	attempts (assignments that failed so far under a retry policy) and the time of the first
//	of those failures (unix nanoseconds) present,
//	written only when either is non-zero, so that such a record is byte for byte what the
//	releases before them wrote.
//
// Function settings, version 1:
//
//	+---------+-------+-----------------------------+----------------+-------------------------+
//	| version | flags | max queue: high, normal, low| limit (varint) | retry: attempts, base,  |
//	| 1 byte  | 1 byte| each a varint; 0 = unlimited| if flags&4     | max (3 varints, ns)     |
//	|         |       |                             |                | if flags&8              |
//	+---------+-------+-----------------------------+----------------+-------------------------+
//
//	flags bit 0: declared (made by admin `create function`); bit 1: paused (admin `pause`:
//	its jobs are not handed out); bit 2: a concurrency limit (admin `limit`: the most of
//	its jobs running at once, > 0); bit 3: a retry policy (admin `retry`: attempts >= 1,
//	0 < base <= max; PutFunction refuses any other but the zero policy, which is not
//	written). Nothing else may follow.
//
// Result, version 1 (under 'c','h',seq):
//
//	+---------+---------+-----------+---------+---------+----------+---------+----------------------------+------+
//	| version | outcome | attempts  | created | started | finished | expires | handle, function, unique   | data |
//	| 1 byte  | 1 byte  | (uvarint) | (varint, unix nanoseconds, each)       | each uvarint len + bytes   | rest |
//	+---------+---------+-----------+---------+---------+----------+---------+----------------------------+------+
//
//	outcome 1 complete, 2 fail, 3 exception.
//
// Dead letter, version 1 (under 'd',seq):
//
//	+---------+--------------+--------------+-------------+------------------------+--------------------+
//	| version | last outcome | first failed | last failed | last error             | the job record     |
//	| 1 byte  | 1 byte       | (varint, unix nanoseconds) | uvarint length + bytes | (above, whole: its |
//	|         |              |              |             |                        | data runs to the   |
//	|         |              |              |             |                        | end), seq the key's|
//	+---------+--------------+--------------+-------------+------------------------+--------------------+
//
// Schedule, version 1 (under 's',seq):
//
//	+---------+----------+-------+----------+---------+---------------------------------------+------+
//	| version | priority | flags | last run | created | handle, function, unique, spec,       | data |
//	| 1 byte  | 1 byte   | 1 byte| (varint, unix s)   | location: each uvarint length + bytes | rest |
//	+---------+----------+-------+----------+---------+---------------------------------------+------+
//
//	priority 0 high, 1 normal, 2 low; flags bit 0: paused. last run 0 = never.
//
// # Invariants
//
//   - An acknowledgement (Ack.Acked(nil)) runs only after the batch holding the write is
//     committed with the configured durability, and acknowledgements run in the order the
//     writes were queued.
//   - Writes are applied in the order they were queued (one queue, one committer): a Delete
//     after a Put of the same key removes it; a Txn is applied whole or not at all.
//   - A sequence number issued by NextSeq is below a reservation that has been fsynced,
//     whatever the sync mode, and recovery raises the sequence above every job, dead letter
//     and schedule it finds: handles never repeat for one data dir, even after a crash of
//     the machine.
//   - Once a commit fails the log is failed: every write in that batch and every later one
//     is told the error, NextSeq returns it, and nothing more is written.
//   - A job's result is written by the caller in the same Txn as its job record's delete: a
//     crash leaves either the job (it runs again) or its result, never neither.
//   - Results are not held in memory: Result and ResultByUnique read the database (what is
//     committed), recovery reads them to count them but keeps none, and ResultStats is
//     two counters that move only when a batch writing or removing results commits.
//   - Recovery reads every key but the results' by-unique index ('c','u'), which it skips. A
//     record of a kind this version interprets that does not decode is an error naming it;
//     a kind it does not interpret is handed back as it is (Recovered.Other), never dropped.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Kind is the first byte of every key: what the record is.
type Kind byte

const (
	KindJob      Kind = 'j' // key "j"+seq(8 BE)      value: job record (version 1)
	KindFunction Kind = 'f' // key "f"+function name  value: FunctionSettings (version 1)
	KindSchedule Kind = 's' // key "s"+seq(8 BE)      value: Schedule (version 1)
	KindResult   Kind = 'c' // keys "ch"+seq, "cu"+function+0x00+unique  values: see the package doc
	KindDead     Kind = 'd' // key "d"+seq(8 BE)      value: DeadLetter (version 1)

	// kindMeta is the log's own bookkeeping (the sequence reservation); not for callers.
	kindMeta Kind = 'm'
)

// Record is one durable job.
type Record struct {
	Seq      uint64
	Handle   string
	Function string
	Unique   string
	Reducer  string
	Priority uint8
	RunAt    int64  // unix seconds; 0 = as soon as possible
	Attempts uint32 // assignments that failed so far under a retry policy
	// FirstFailed is when the first of them failed (unix nanoseconds), for its dead letter.
	FirstFailed int64
	Data        []byte
	// Shared marks a new job no node holds yet: a store that several nodes share (the
	// PostgreSQL one) offers it to every node's workers. The Pebble log ignores it.
	Shared bool
}

// FunctionSettings are a function's own durable settings (they survive a restart).
type FunctionSettings struct {
	Name     string
	MaxQueue [3]int      // per priority, 0 = unlimited (admin `maxqueue`)
	Declared bool        // made by admin `create function`
	Paused   bool        // admin `pause`: jobs queue but are not handed out
	Limit    int         // admin `limit`: most of its jobs running at once; 0 = no limit
	Retry    RetryPolicy // admin `retry`: failed background jobs run again; zero = none
}

// Entry is one recovered record of a kind this version does not interpret: its key (without
// the kind byte) and its raw value (versioned: first byte is the value format version of
// that kind).
type Entry struct {
	Kind  Kind
	Key   []byte
	Value []byte
}

const (
	recordVersion   = 1
	flagRunAt       = 1 // job record: run-at follows
	flagHistory     = 2 // job record: attempts and first failure follow run-at
	functionVersion = 1
	flagDeclared    = 1
	flagPaused      = 2
	flagLimit       = 4
	flagRetry       = 8
)

var metaSeqKey = []byte{byte(kindMeta), 's', 'e', 'q'}

// ErrCorrupt reports a record that cannot be decoded; the error wrapping it names the record.
var ErrCorrupt = errors.New("wal: corrupt record")

func jobKey(dst []byte, seq uint64) []byte {
	dst = append(dst, byte(KindJob))
	return binary.BigEndian.AppendUint64(dst, seq)
}

func functionKey(dst []byte, name string) []byte {
	dst = append(dst, byte(KindFunction))
	return append(dst, name...)
}

// appendJobPut encodes the write of job record r, key and value, in the encoding of Txn.buf.
func appendJobPut(dst []byte, r *Record) []byte {
	dst = append(dst, txnSet, 1+8, byte(KindJob))
	dst = binary.BigEndian.AppendUint64(dst, r.Seq)
	dst = binary.AppendUvarint(dst, uint64(recordLen(r)))
	return appendRecord(dst, r)
}

// jobPutLen is the length of appendJobPut's encoding of r.
func jobPutLen(r *Record) int {
	n := recordLen(r)
	return 3 + 8 + uvarintLen(uint64(n)) + n
}

// appendJobDelete encodes the removal of job record seq in the encoding of Txn.buf.
func appendJobDelete(dst []byte, seq uint64) []byte {
	dst = append(dst, txnDelete, 1+8, byte(KindJob))
	return binary.BigEndian.AppendUint64(dst, seq)
}

const jobDeleteLen = 3 + 8

// recordLen is the length of appendRecord's encoding of r.
func recordLen(r *Record) int {
	n := 3
	if r.RunAt != 0 {
		n += varintLen(r.RunAt)
	}
	if hasHistory(r) {
		n += uvarintLen(uint64(r.Attempts)) + varintLen(r.FirstFailed)
	}
	for _, s := range [...]string{r.Handle, r.Function, r.Unique, r.Reducer} {
		n += uvarintLen(uint64(len(s))) + len(s)
	}
	return n + len(r.Data)
}

// uvarintLen is the length of binary.AppendUvarint's encoding of x.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// varintLen is the length of binary.AppendVarint's encoding of x (zig-zag, then uvarint).
func varintLen(x int64) int { return uvarintLen(uint64(x)<<1 ^ uint64(x>>63)) }

// hasHistory reports whether r's record carries attempts and first failure: only when either is
// set, so that a record without them is byte for byte what an older release wrote.
func hasHistory(r *Record) bool { return r.Attempts != 0 || r.FirstFailed != 0 }

// appendRecord encodes r's value (everything but the key) onto dst.
func appendRecord(dst []byte, r *Record) []byte {
	var flags byte
	if r.RunAt != 0 {
		flags |= flagRunAt
	}
	if hasHistory(r) {
		flags |= flagHistory
	}
	dst = append(dst, recordVersion, r.Priority, flags)
	if r.RunAt != 0 {
		dst = binary.AppendVarint(dst, r.RunAt)
	}
	if hasHistory(r) {
		dst = binary.AppendUvarint(dst, uint64(r.Attempts))
		dst = binary.AppendVarint(dst, r.FirstFailed)
	}
	for _, s := range [...]string{r.Handle, r.Function, r.Unique, r.Reducer} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return append(dst, r.Data...)
}

// decodeRecord parses a record stored under seq. The result does not alias value.
func decodeRecord(seq uint64, value []byte) (Record, error) {
	return decodeRecordOf("job", seq, value)
}

// decodeRecordOf parses a job record stored under seq as part of a record of kind what (a
// job, a dead letter), which its errors name. The result does not alias value.
func decodeRecordOf(what string, seq uint64, value []byte) (Record, error) {
	bad := func(why string) (Record, error) {
		return Record{}, fmt.Errorf("%w: %s seq %d: %s", ErrCorrupt, what, seq, why)
	}
	if len(value) < 3 {
		return bad("truncated")
	}
	if value[0] != recordVersion {
		return bad(fmt.Sprintf("unknown version %d", value[0]))
	}
	r := Record{Seq: seq, Priority: value[1]}
	if r.Priority > 2 {
		return bad("bad priority")
	}
	flags := value[2]
	rest := value[3:]
	if flags&^(flagRunAt|flagHistory) != 0 {
		return bad(fmt.Sprintf("unknown flags %#x", flags))
	}
	if flags&flagRunAt != 0 {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return bad("bad run-at time")
		}
		r.RunAt, rest = v, rest[n:]
	}
	if flags&flagHistory != 0 {
		a, n := binary.Uvarint(rest)
		if n <= 0 || a > math.MaxUint32 {
			return bad("bad attempts")
		}
		r.Attempts, rest = uint32(a), rest[n:]
		c, n := binary.Varint(rest)
		if n <= 0 {
			return bad("bad first-failure time")
		}
		r.FirstFailed, rest = c, rest[n:]
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

// appendFunction encodes s's value (everything but the name, which is the key) onto dst.
func appendFunction(dst []byte, s *FunctionSettings) []byte {
	var flags byte
	if s.Declared {
		flags |= flagDeclared
	}
	if s.Paused {
		flags |= flagPaused
	}
	if s.Limit != 0 {
		flags |= flagLimit
	}
	if s.Retry != (RetryPolicy{}) {
		flags |= flagRetry
	}
	dst = append(dst, functionVersion, flags)
	for _, m := range s.MaxQueue {
		dst = binary.AppendVarint(dst, int64(m))
	}
	if s.Limit != 0 {
		dst = binary.AppendVarint(dst, int64(s.Limit))
	}
	if s.Retry != (RetryPolicy{}) {
		dst = binary.AppendVarint(dst, int64(s.Retry.Attempts))
		dst = binary.AppendVarint(dst, int64(s.Retry.Base))
		dst = binary.AppendVarint(dst, int64(s.Retry.Max))
	}
	return dst
}

// check reports why p cannot be stored, or nil: the zero policy (none), or one with at least
// one attempt, a positive first backoff and a longest backoff no shorter than it. A policy
// that decodeFunction would refuse is never written, or the log would not open again.
func (p RetryPolicy) check() error {
	if p == (RetryPolicy{}) || p.Attempts >= 1 && p.Base > 0 && p.Max >= p.Base {
		return nil
	}
	return fmt.Errorf("retry policy %+v: want attempts >= 1 and 0 < base <= max", p)
}

// decodeFunction parses the settings stored under a function's name. The result does not
// alias value.
func decodeFunction(name string, value []byte) (FunctionSettings, error) {
	bad := func(what string) (FunctionSettings, error) {
		return FunctionSettings{}, fmt.Errorf("%w: settings of function %q: %s", ErrCorrupt, name, what)
	}
	if len(value) < 2 {
		return bad("truncated")
	}
	if value[0] != functionVersion {
		return bad(fmt.Sprintf("unknown version %d", value[0]))
	}
	s := FunctionSettings{Name: name, Declared: value[1]&flagDeclared != 0, Paused: value[1]&flagPaused != 0}
	if value[1]&^(flagDeclared|flagPaused|flagLimit|flagRetry) != 0 {
		return bad(fmt.Sprintf("unknown flags %#x", value[1]))
	}
	rest := value[2:]
	for i := range s.MaxQueue {
		v, n := binary.Varint(rest)
		if n <= 0 || int64(int(v)) != v {
			return bad("bad max queue")
		}
		s.MaxQueue[i], rest = int(v), rest[n:]
	}
	if value[1]&flagLimit != 0 {
		v, n := binary.Varint(rest)
		if n <= 0 || v <= 0 || int64(int(v)) != v {
			return bad("bad limit")
		}
		s.Limit, rest = int(v), rest[n:]
	}
	if value[1]&flagRetry != 0 {
		var v [3]int64
		for i := range v {
			x, n := binary.Varint(rest)
			if n <= 0 {
				return bad("truncated retry policy")
			}
			v[i], rest = x, rest[n:]
		}
		if int64(int(v[0])) != v[0] {
			return bad("bad retry attempts")
		}
		s.Retry = RetryPolicy{Attempts: int(v[0]), Base: time.Duration(v[1]), Max: time.Duration(v[2])}
		if s.Retry == (RetryPolicy{}) || s.Retry.check() != nil {
			return bad(fmt.Sprintf("bad retry policy (attempts %d, base %v, max %v)", v[0], s.Retry.Base, s.Retry.Max))
		}
	}
	if len(rest) != 0 {
		return bad("trailing bytes")
	}
	return s, nil
}
