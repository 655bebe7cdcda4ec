package wal

import (
	"errors"
	"time"
)

// The record kinds of the job lifecycle: stored results, dead letters and recurring
// schedules. Their key and value formats are drawn in the package doc.

// Outcome is how a background job ended.
type Outcome uint8

const (
	OutcomeComplete  Outcome = 1 // WORK_COMPLETE; Data is the result
	OutcomeFail      Outcome = 2 // WORK_FAIL, or given up by the server (retries exhausted, cancelled)
	OutcomeException Outcome = 3 // WORK_EXCEPTION; Data is the exception
)

// Result is the stored outcome of one background job, kept until Expires.
type Result struct {
	Handle   string
	Function string
	Unique   string
	Outcome  Outcome
	Data     []byte
	Attempts uint32 // assignments the job had, this one included
	Created  int64  // unix nanoseconds: submitted
	Started  int64  // unix nanoseconds: the last assignment began
	Finished int64  // unix nanoseconds: the outcome arrived
	Expires  int64  // unix nanoseconds: ExpireResults removes it from then on
}

// RetryPolicy is a function's retry policy for failed background jobs (admin `retry`).
type RetryPolicy struct {
	Attempts int           // assignments in all, the first included; 0 = no policy
	Base     time.Duration // the first backoff
	Max      time.Duration // no backoff is longer
}

// DeadLetter is a background job that exhausted its attempts, kept with its history.
type DeadLetter struct {
	Job         Record // as it was last queued: Seq, Handle, Attempts, Created...
	LastOutcome Outcome
	LastError   []byte // the last WORK_FAIL (empty) or WORK_EXCEPTION data
	FirstFailed int64  // unix nanoseconds
	LastFailed  int64  // unix nanoseconds: when it died
}

// Schedule is a recurring job (SUBMIT_JOB_SCHED or admin `schedule add`).
type Schedule struct {
	Seq      uint64 // its number, from NextSeq, as a job's: its handle is prefix:Seq
	Handle   string
	Function string
	Unique   string
	Spec     string // the 5-field cron expression, in the numbering of package engine/cron
	Location string // IANA time zone name; "" = the server's zone
	Priority uint8
	Paused   bool
	LastRun  int64 // unix seconds of the last firing; 0 = never
	Created  int64 // unix seconds
	Data     []byte
}

var errNotYet = errors.New("wal: lifecycle records are not implemented yet")

// PutResult writes r (by handle, and by function+unique when r.Unique is set, the newest
// result of that unique winning) with its expiry index.
func (t *Txn) PutResult(r Result) { t.fail(errNotYet) }

// PutDead writes dead letter d under d.Job.Seq.
func (t *Txn) PutDead(d DeadLetter) { t.fail(errNotYet) }

// DeleteDead removes the dead letter under seq.
func (t *Txn) DeleteDead(seq uint64) { t.fail(errNotYet) }

// PutSchedule writes s under s.Seq, replacing its earlier version.
func (t *Txn) PutSchedule(s Schedule) { t.fail(errNotYet) }

// DeleteSchedule removes the schedule under seq.
func (t *Txn) DeleteSchedule(seq uint64) { t.fail(errNotYet) }

// Result reads the stored result of a job by handle. It sees what is committed: a result
// whose write is still queued is not found yet (a Barrier first waits for it).
func (l *Log) Result(handle string) (Result, bool, error) { return Result{}, false, errNotYet }

// ResultByUnique reads the newest stored result of function fn's unique.
func (l *Log) ResultByUnique(fn, unique string) (Result, bool, error) {
	return Result{}, false, errNotYet
}

// ResultStats returns how many results are stored and the bytes they take (keys and values).
func (l *Log) ResultStats() (count int, bytes int64) { return 0, 0 }

// ExpireResults removes the results whose Expires is at or before now, then the oldest ones
// while more than maxBytes are stored (maxBytes <= 0: no byte bound). It returns how many it
// removed. The removals go through the committer like any other write.
func (l *Log) ExpireResults(now time.Time, maxBytes int64) (int, error) { return 0, errNotYet }
