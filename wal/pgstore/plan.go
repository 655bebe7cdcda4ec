package pgstore

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/spur-gearman/spur/wal"
)

// plan is a batch folded per key, in queue order, into the rows of its set-based
// statements. Statements on one table never touch a key twice, so their order within the
// transaction matters only for jobs: deletes first, so that a Put whose unique conflicts
// only with a job deleted earlier in the batch is written.
type plan struct {
	delJobs []int64  // job numbers removed, ascending (one lock order for every node)
	ins     jobRows  // new jobs (Puts), by function and unique (one lock order on the index)
	insOp   []int    // the op index of each row of ins
	ups     jobRows  // Txn.PutJob: an update, or an insert held by this node
	putSeqs []uint64 // the job numbers of ins, and their functions
	putFns  []string
	unhold  []int64 // jobs given up, ascending

	fnPut   map[string][]byte      // function settings; nil value = delete
	results map[uint64]*wal.Result // by job number: the last written wins
	dead    map[uint64]*kept       // nil = delete
	sched   map[uint64]*kept
	other   map[otherKey][]byte // nil = delete (values are never nil: see Apply)
	notify  map[string]bool     // functions of unheld new jobs

	// joinedTo is, for a Put that coalesced onto another Put of the batch, that Put's op
	// index; read was told the handles of the Puts that coalesced onto rows already there.
	joinedTo map[int]int
	dbJoined map[uint64]string // job number of a Put -> the handle of the row it joined

	readers []reader // how to read each statement queued, in order
}

type kept struct {
	fn    string
	value []byte
}

type otherKey struct {
	kind wal.Kind
	key  string
}

// jobRows are jobs as the statements' arrays.
type jobRows struct {
	seq, runAt, firstFailed         []int64
	handle, fn, uniq, reducer, data [][]byte
	priority                        []int16
	attempts                        []int32
	shared                          []bool
}

func (j *jobRows) add(r *wal.Record, shared bool) {
	j.seq = append(j.seq, int64(r.Seq))
	j.handle = append(j.handle, []byte(r.Handle))
	j.fn = append(j.fn, []byte(r.Function))
	var u []byte // NULL: no unique
	if r.Unique != "" {
		u = []byte(r.Unique)
	}
	j.uniq = append(j.uniq, u)
	j.reducer = append(j.reducer, nonNil([]byte(r.Reducer)))
	j.priority = append(j.priority, int16(r.Priority))
	j.runAt = append(j.runAt, r.RunAt)
	j.attempts = append(j.attempts, int32(r.Attempts))
	j.firstFailed = append(j.firstFailed, r.FirstFailed)
	j.data = append(j.data, nonNil(r.Data))
	j.shared = append(j.shared, shared)
}

func (j *jobRows) len() int { return len(j.seq) }

// nonNil is b, or an empty slice: pgx writes a nil []byte as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// jobState is what a batch does to one job number, so far in queue order.
type jobState struct {
	rec     *wal.Record
	put     bool // a record is written
	insert  bool // by a Put of this batch: the number is new, no row has it
	shared  bool
	opIndex int  // the Put's
	deleted bool // a row that may exist is removed first
}

type uniqKey struct{ fn, u string }

// plan folds b's ops.
func (s *Store) plan(b *batch) *plan {
	p := &plan{}
	jobs := map[uint64]*jobState{}
	var order []uint64           // job numbers in the order first seen
	live := map[uniqKey]uint64{} // the uniques of the batch's Puts still standing
	for i := range b.ops {
		o := &b.ops[i]
		switch o.kind {
		case opPut:
			r := &o.rec
			if r.Unique != "" {
				k := uniqKey{r.Function, r.Unique}
				if seq, ok := live[k]; ok {
					if p.joinedTo == nil {
						p.joinedTo = map[int]int{}
					}
					p.joinedTo[i] = jobs[seq].opIndex
					continue
				}
				live[k] = r.Seq
			}
			if _, ok := jobs[r.Seq]; !ok {
				order = append(order, r.Seq)
			}
			jobs[r.Seq] = &jobState{rec: r, put: true, insert: true, shared: r.Shared, opIndex: i}
		case opDelete:
			order = deleteJob(jobs, live, order, o.seq)
		case opTxn:
			for k := range o.txn {
				w := &o.txn[k]
				order = p.fold(jobs, live, order, w)
			}
		case opUnhold:
			p.unhold = append(p.unhold, int64(o.seq))
			if p.notify == nil {
				p.notify = map[string]bool{}
			}
			p.notify[o.rec.Function] = true
		}
	}
	for _, seq := range order {
		st := jobs[seq]
		switch {
		case st == nil: // put and deleted within the batch: nothing to write
		case st.insert:
			p.ins.add(st.rec, st.shared)
			p.insOp = append(p.insOp, st.opIndex)
			p.putSeqs, p.putFns = append(p.putSeqs, seq), append(p.putFns, st.rec.Function)
			if st.shared {
				if p.notify == nil {
					p.notify = map[string]bool{}
				}
				p.notify[st.rec.Function] = true
			}
		default:
			if st.deleted {
				p.delJobs = append(p.delJobs, int64(seq))
			}
			if st.put {
				p.ups.add(st.rec, false)
			}
		}
	}
	sort.Slice(p.delJobs, func(a, b int) bool { return p.delJobs[a] < p.delJobs[b] })
	sort.Slice(p.unhold, func(a, b int) bool { return p.unhold[a] < p.unhold[b] })
	p.ins.sortByUnique(p.insOp)
	return p
}

// deleteJob folds the removal of job seq.
func deleteJob(jobs map[uint64]*jobState, live map[uniqKey]uint64, order []uint64, seq uint64) []uint64 {
	st, ok := jobs[seq]
	if !ok {
		order = append(order, seq)
	}
	if ok && st.insert {
		// Written by this batch: it never reaches the database.
		if k := (uniqKey{st.rec.Function, st.rec.Unique}); st.rec.Unique != "" && live[k] == seq {
			delete(live, k)
		}
		jobs[seq] = nil
		return order
	}
	jobs[seq] = &jobState{deleted: true}
	return order
}

// fold adds one write of a Txn.
func (p *plan) fold(jobs map[uint64]*jobState, live map[uniqKey]uint64, order []uint64, w *txnWrite) []uint64 {
	del := w.op == wal.TxnDelete
	switch w.kind {
	case wal.KindJob:
		if del {
			return deleteJob(jobs, live, order, w.seq)
		}
		st, ok := jobs[w.seq]
		switch {
		case !ok:
			order = append(order, w.seq)
			jobs[w.seq] = &jobState{rec: w.job, put: true}
		case st == nil: // put and deleted earlier in the batch: a new row after all
			jobs[w.seq] = &jobState{rec: w.job, put: true}
		default:
			st.rec, st.put = w.job, true
		}
	case wal.KindFunction:
		if p.fnPut == nil {
			p.fnPut = map[string][]byte{}
		}
		p.fnPut[string(w.key)] = w.value // nil for a delete
	case wal.KindResult:
		if p.results == nil {
			p.results = map[uint64]*wal.Result{}
		}
		p.results[w.seq] = w.res
	case wal.KindDead:
		p.dead = putKept(p.dead, w, del)
	case wal.KindSchedule:
		p.sched = putKept(p.sched, w, del)
	default:
		if p.other == nil {
			p.other = map[otherKey][]byte{}
		}
		p.other[otherKey{w.kind, string(w.key)}] = w.value // nil for a delete
	}
	return order
}

func putKept(m map[uint64]*kept, w *txnWrite, del bool) map[uint64]*kept {
	if m == nil {
		m = map[uint64]*kept{}
	}
	if del {
		m[w.seq] = nil
	} else {
		m[w.seq] = &kept{fn: w.fn, value: w.value}
	}
	return m
}

// sortByUnique orders the rows by function and unique (those without one last, as they
// were), carrying ops along: two nodes inserting the same uniques take their index entries
// in one order and cannot deadlock on each other.
func (j *jobRows) sortByUnique(ops []int) {
	idx := make([]int, j.len())
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ua, ub := j.uniq[idx[a]], j.uniq[idx[b]]
		if (ua == nil) != (ub == nil) {
			return ua != nil
		}
		if ua == nil {
			return false
		}
		if c := strings.Compare(string(j.fn[idx[a]]), string(j.fn[idx[b]])); c != 0 {
			return c < 0
		}
		return string(ua) < string(ub)
	})
	sorted := jobRows{}
	sortedOps := make([]int, len(ops))
	for n, i := range idx {
		sorted.seq = append(sorted.seq, j.seq[i])
		sorted.handle = append(sorted.handle, j.handle[i])
		sorted.fn = append(sorted.fn, j.fn[i])
		sorted.uniq = append(sorted.uniq, j.uniq[i])
		sorted.reducer = append(sorted.reducer, j.reducer[i])
		sorted.priority = append(sorted.priority, j.priority[i])
		sorted.runAt = append(sorted.runAt, j.runAt[i])
		sorted.attempts = append(sorted.attempts, j.attempts[i])
		sorted.firstFailed = append(sorted.firstFailed, j.firstFailed[i])
		sorted.data = append(sorted.data, j.data[i])
		sorted.shared = append(sorted.shared, j.shared[i])
		sortedOps[n] = ops[i]
	}
	*j = sorted
	copy(ops, sortedOps)
}

// empty reports whether p writes nothing.
func (p *plan) empty() bool {
	return len(p.delJobs) == 0 && len(p.unhold) == 0 && p.ins.len() == 0 && p.ups.len() == 0 && len(p.fnPut) == 0 &&
		len(p.results) == 0 && len(p.dead) == 0 && len(p.sched) == 0 && len(p.other) == 0
}

// The statements. Arrays go in as one parameter each; unnest turns them into rows.
const (
	sqlDeleteJobs = `DELETE FROM spur_jobs WHERE seq = ANY($1::bigint[])`

	// New jobs. A conflict on the unique index is the submit coalescing onto the job
	// there: DO UPDATE (a no-op) returns that row, locked, even if it was committed after
	// this statement began, and the final SELECT keeps the Puts that joined one.
	sqlInsertJobs = `WITH t AS (
  SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::smallint[],
                       $7::bigint[], $8::integer[], $9::bigint[], $10::bytea[], $11::boolean[])
    AS t(seq, handle, function, uniq, reducer, priority, run_at, attempts, first_failed, data, shared)
), ins AS (
  INSERT INTO spur_jobs AS j (seq, handle, function, uniq, reducer, priority, run_at, attempts, first_failed, data, owner)
  SELECT seq, handle, function, uniq, reducer, priority, run_at, attempts, first_failed, data,
         CASE WHEN shared THEN NULL ELSE $12::text END
  FROM t
  ON CONFLICT (function, uniq) WHERE uniq IS NOT NULL DO UPDATE SET function = j.function
  RETURNING j.seq, j.handle, j.function, j.uniq
)
SELECT t.seq, ins.handle FROM ins JOIN t ON ins.function = t.function AND ins.uniq = t.uniq WHERE ins.seq <> t.seq`

	// Txn.PutJob: an existing job's changing columns (a retry's run-at time and attempts),
	// else a new row held by this node; one whose unique is taken is not written.
	sqlUpsertJobs = `WITH t AS (
  SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::smallint[],
                       $7::bigint[], $8::integer[], $9::bigint[], $10::bytea[])
    AS t(seq, handle, function, uniq, reducer, priority, run_at, attempts, first_failed, data)
), u AS (
  UPDATE spur_jobs j SET priority = t.priority, run_at = t.run_at, attempts = t.attempts, first_failed = t.first_failed
  FROM t WHERE j.seq = t.seq
  RETURNING j.seq
)
INSERT INTO spur_jobs (seq, handle, function, uniq, reducer, priority, run_at, attempts, first_failed, data, owner)
SELECT seq, handle, function, uniq, reducer, priority, run_at, attempts, first_failed, data, $11::text
FROM t WHERE seq NOT IN (SELECT seq FROM u)
ON CONFLICT DO NOTHING`

	// Jobs given up after a commit of unknown outcome: unheld, if this node still holds them.
	sqlUnholdJobs = `UPDATE spur_jobs SET owner = NULL, lease_until = NULL WHERE seq = ANY($1::bigint[]) AND owner = $2`

	sqlPutFunctions = `INSERT INTO spur_functions (name, record)
SELECT * FROM unnest($1::bytea[], $2::bytea[])
ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record`
	sqlDeleteFunctions = `DELETE FROM spur_functions WHERE name = ANY($1::bytea[])`

	sqlPutResults = `INSERT INTO spur_results (seq, handle, function, uniq, outcome, attempts, created, started, finished, expires, size, data)
SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[], $5::smallint[], $6::integer[],
                     $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::integer[], $12::bytea[])
ON CONFLICT (seq) DO UPDATE SET handle = EXCLUDED.handle, function = EXCLUDED.function, uniq = EXCLUDED.uniq,
  outcome = EXCLUDED.outcome, attempts = EXCLUDED.attempts, created = EXCLUDED.created, started = EXCLUDED.started,
  finished = EXCLUDED.finished, expires = EXCLUDED.expires, size = EXCLUDED.size, data = EXCLUDED.data
RETURNING size`

	sqlPutDead = `INSERT INTO spur_dead (seq, function, record)
SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])
ON CONFLICT (seq) DO UPDATE SET function = EXCLUDED.function, record = EXCLUDED.record`
	sqlDeleteDead = `DELETE FROM spur_dead WHERE seq = ANY($1::bigint[])`

	sqlPutSchedules = `INSERT INTO spur_schedules (seq, function, record)
SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])
ON CONFLICT (seq) DO UPDATE SET function = EXCLUDED.function, record = EXCLUDED.record`
	sqlDeleteSchedules = `DELETE FROM spur_schedules WHERE seq = ANY($1::bigint[])`

	sqlPutOther = `INSERT INTO spur_records (kind, key, value)
SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[])
ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value`
	sqlDeleteOther = `DELETE FROM spur_records r USING unnest($1::smallint[], $2::bytea[]) AS d(kind, key)
WHERE r.kind = d.kind AND r.key = d.key`

	sqlNotify = `SELECT pg_notify('` + notifyChannel + `', $1)`
)

// reader reads one statement's result, in queue order.
type reader func(br pgx.BatchResults, b *batch) error

func execReader(br pgx.BatchResults, _ *batch) error {
	_, err := br.Exec()
	return err
}

// queue adds p's statements to q, and remembers how to read their results.
func (p *plan) queue(q *pgx.Batch, s *Store) {
	p.readers = p.readers[:0]
	add := func(r reader, sql string, args ...any) {
		q.Queue(sql, args...)
		p.readers = append(p.readers, r)
	}
	if len(p.delJobs) > 0 {
		add(execReader, sqlDeleteJobs, p.delJobs)
	}
	if (p.ups.len() > 0 || p.ins.len() > 0) && s.leaseStale() {
		add(execReader, sqlRenewNode, s.opts.Node, s.lease) // see leaseStale
	}
	if j := &p.ups; j.len() > 0 {
		add(execReader, sqlUpsertJobs, j.seq, j.handle, j.fn, j.uniq, j.reducer, j.priority, j.runAt, j.attempts,
			j.firstFailed, j.data, s.opts.Node)
	}
	if j := &p.ins; j.len() > 0 {
		add(p.readJoined, sqlInsertJobs, j.seq, j.handle, j.fn, j.uniq, j.reducer, j.priority, j.runAt, j.attempts,
			j.firstFailed, j.data, j.shared, s.opts.Node)
	}
	if len(p.unhold) > 0 {
		add(execReader, sqlUnholdJobs, p.unhold, s.opts.Node)
	}
	if len(p.fnPut) > 0 {
		var names, values, gone [][]byte
		for name, v := range p.fnPut {
			if v == nil {
				gone = append(gone, []byte(name))
			} else {
				names, values = append(names, []byte(name)), append(values, v)
			}
		}
		if len(names) > 0 {
			add(execReader, sqlPutFunctions, names, values)
		}
		if len(gone) > 0 {
			add(execReader, sqlDeleteFunctions, gone)
		}
	}
	if len(p.results) > 0 {
		var (
			seq, created, started, finished, expires []int64
			handle, fn, uniq, data                   [][]byte
			outcome                                  []int16
			attempts, size                           []int32
		)
		for _, r := range p.results {
			seq = append(seq, int64(r.Seq))
			handle = append(handle, []byte(r.Handle))
			fn = append(fn, []byte(r.Function))
			var u []byte
			if r.Unique != "" {
				u = []byte(r.Unique)
			}
			uniq = append(uniq, u)
			outcome = append(outcome, int16(r.Outcome))
			attempts = append(attempts, int32(r.Attempts))
			created, started = append(created, r.Created), append(started, r.Started)
			finished, expires = append(finished, r.Finished), append(expires, r.Expires)
			size = append(size, int32(resultSize(r)))
			data = append(data, nonNil(r.Data))
		}
		add(readResults, sqlPutResults, seq, handle, fn, uniq, outcome, attempts, created, started, finished, expires, size, data)
	}
	p.queueKept(add, p.dead, sqlPutDead, sqlDeleteDead)
	p.queueKept(add, p.sched, sqlPutSchedules, sqlDeleteSchedules)
	if len(p.other) > 0 {
		var kinds, goneKinds []int16
		var keys, values, goneKeys [][]byte
		for k, v := range p.other {
			if v == nil {
				goneKinds, goneKeys = append(goneKinds, int16(k.kind)), append(goneKeys, []byte(k.key))
			} else {
				kinds, keys, values = append(kinds, int16(k.kind)), append(keys, []byte(k.key)), append(values, v)
			}
		}
		if len(kinds) > 0 {
			add(execReader, sqlPutOther, kinds, keys, values)
		}
		if len(goneKinds) > 0 {
			add(execReader, sqlDeleteOther, goneKinds, goneKeys)
		}
	}
	if len(p.notify) > 0 {
		add(execReader, sqlNotify, notifyPayload(s.opts.Node, p.notify))
	}
	if len(p.fnPut) > 0 || len(p.dead) > 0 {
		add(execReader, sqlNotifyChanged, s.opts.Node)
	}
}

func (p *plan) queueKept(add func(reader, string, ...any), m map[uint64]*kept, put, del string) {
	if len(m) == 0 {
		return
	}
	var seqs, gone []int64
	var fns, values [][]byte
	for seq, k := range m {
		if k == nil {
			gone = append(gone, int64(seq))
		} else {
			seqs, fns, values = append(seqs, int64(seq)), append(fns, []byte(k.fn)), append(values, k.value)
		}
	}
	sort.Slice(gone, func(a, b int) bool { return gone[a] < gone[b] })
	if len(seqs) > 0 {
		add(execReader, put, seqs, fns, values)
	}
	if len(gone) > 0 {
		add(execReader, del, gone)
	}
}

// read reads every statement's result into b.
func (p *plan) read(br pgx.BatchResults, b *batch) error {
	p.dbJoined = nil
	for _, r := range p.readers {
		if err := r(br, b); err != nil {
			return err
		}
	}
	// The handles the Puts joined: a row already there, or another Put of the batch (and
	// then whatever that one joined).
	b.joined = nil
	for k, i := range p.insOp {
		if h, ok := p.dbJoined[uint64(p.ins.seq[k])]; ok {
			if b.joined == nil {
				b.joined = map[int]string{}
			}
			b.joined[i] = h
		}
	}
	for i, to := range p.joinedTo {
		if b.joined == nil {
			b.joined = map[int]string{}
		}
		if h, ok := b.joined[to]; ok {
			b.joined[i] = h
		} else {
			b.joined[i] = b.ops[to].rec.Handle
		}
	}
	return nil
}

// readJoined reads the Puts that coalesced onto a row already there.
func (p *plan) readJoined(br pgx.BatchResults, _ *batch) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var handle []byte
		if err := rows.Scan(&seq, &handle); err != nil {
			return err
		}
		if p.dbJoined == nil {
			p.dbJoined = map[uint64]string{}
		}
		p.dbJoined[uint64(seq)] = string(handle)
	}
	return rows.Err()
}

// readResults counts the results written. A second result of one job (a dead letter's job
// queued again and ended once more, a job that ran on two nodes) replaces the first, as in
// the Pebble log, and is counted again until the next count of the table.
func readResults(br pgx.BatchResults, b *batch) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var size int32
		if err := rows.Scan(&size); err != nil {
			return err
		}
		b.results++
		b.bytes += int64(size)
	}
	return rows.Err()
}

// resultSize is what a stored result counts in ResultStats' bytes: about what the Pebble
// log's keys and value take.
func resultSize(r *wal.Result) int {
	n := 48 + len(r.Handle) + len(r.Function) + len(r.Unique) + len(r.Data)
	if r.Unique != "" {
		n += 11 + len(r.Function) + len(r.Unique)
	}
	return n
}

// notifyPayload is a batch's notification: this node's name, then the functions of the
// unheld jobs it wrote, one per line. A name that cannot go in (not UTF-8, a line break or
// a NUL in it), or too many to fit, leave the function lines out: the other nodes then look
// at every function, as after a poll.
func notifyPayload(node string, fns map[string]bool) string {
	var b strings.Builder
	b.WriteString(lineSafe(node))
	names := make([]string, 0, len(fns))
	for fn := range fns {
		names = append(names, fn)
	}
	sort.Strings(names)
	for _, fn := range names {
		if fn == "" || lineSafe(fn) != fn || b.Len()+1+len(fn) > maxNotify {
			return lineSafe(node)
		}
		b.WriteByte('\n')
		b.WriteString(fn)
	}
	return b.String()
}

// lineSafe is s if it can be a line of a payload, else "".
func lineSafe(s string) string {
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\n\x00") {
		return ""
	}
	return s
}
