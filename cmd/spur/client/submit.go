package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spur-gearman/spur/codec"
)

// Priority is a job's priority.
type Priority int

// Priorities, as the protocol's SUBMIT_JOB_HIGH / SUBMIT_JOB / SUBMIT_JOB_LOW.
const (
	Normal Priority = iota
	High
	Low
)

// ParsePriority reads "high", "normal" or "low".
func ParsePriority(s string) (Priority, error) {
	switch strings.ToLower(s) {
	case "high":
		return High, nil
	case "normal", "":
		return Normal, nil
	case "low":
		return Low, nil
	}
	return Normal, fmt.Errorf("priority %q: want high, normal or low", s)
}

func (p Priority) String() string {
	return [...]string{"normal", "high", "low"}[p]
}

var (
	foregroundType = [...]codec.Type{Normal: codec.SubmitJob, High: codec.SubmitJobHigh, Low: codec.SubmitJobLow}
	backgroundType = [...]codec.Type{Normal: codec.SubmitJobBg, High: codec.SubmitJobHighBg, Low: codec.SubmitJobLowBg}
)

// SubmitBackground queues a background job and returns its handle once the server has
// accepted it (for Spur's durable queue: once it is on disk). A non-zero runAt sends
// SUBMIT_JOB_EPOCH, which has no priority: the job runs at normal priority at that time
// (a priority other than Normal is then refused).
func (c *Client) SubmitBackground(fn, unique string, data []byte, pri Priority, runAt time.Time) (string, error) {
	b, err := appendBackground(c.wbuf[:0], &BackgroundJob{fn, unique, data, pri, runAt})
	if err != nil {
		return "", err
	}
	if err := c.write(b); err != nil {
		return "", err
	}
	return c.jobCreated()
}

// BackgroundJob is one job of SubmitBackgroundBatch, as SubmitBackground's arguments.
type BackgroundJob struct {
	Function, Unique string
	Data             []byte
	Priority         Priority
	RunAt            time.Time
}

// appendBackground appends j's submit request to b.
func appendBackground(b []byte, j *BackgroundJob) ([]byte, error) {
	if j.RunAt.IsZero() {
		return codec.AppendRequest(b, backgroundType[j.Priority], []byte(j.Function), []byte(j.Unique), j.Data), nil
	}
	if j.Priority != Normal {
		return b, fmt.Errorf("a job with a run-at time has normal priority (SUBMIT_JOB_EPOCH carries none)")
	}
	var epoch [20]byte
	return codec.AppendRequest(b, codec.SubmitJobEpoch, []byte(j.Function), []byte(j.Unique),
		strconv.AppendInt(epoch[:0], j.RunAt.Unix(), 10), j.Data), nil
}

// SubmitBackgroundBatch submits jobs pipelined: it writes them all while it reads the
// replies (a batch larger than the socket buffers must not wait for a server that waits for
// its replies to be read) and returns, for each job, its handle or the server's refusal (a
// *ServerError), in order: a server answers one connection's requests in their order (Spur
// holds a reply's place until the job is durable). A connection error fails the whole batch.
func (c *Client) SubmitBackgroundBatch(jobs []BackgroundJob) (handles []string, refusals []error, err error) {
	b := c.wbuf[:0]
	for i := range jobs {
		if b, err = appendBackground(b, &jobs[i]); err != nil {
			return nil, nil, err
		}
	}
	written := make(chan error, 1)
	go func() { written <- c.write(b) }()
	handles, refusals = make([]string, len(jobs)), make([]error, len(jobs))
	for i := 0; i < len(jobs) && err == nil; {
		var p packet
		p, err = c.recv(true)
		var se *ServerError
		switch {
		case errors.As(err, &se):
			refusals[i], err = se, nil
			i++
		case err != nil:
		case p.typ == codec.JobCreated:
			handles[i] = string(p.arg(0))
			i++
		case p.typ != codec.Noop:
			err = unexpected(p, "JOB_CREATED")
		}
	}
	if werr := <-written; err == nil {
		err = werr
	}
	if err != nil {
		return nil, nil, err
	}
	return handles, refusals, nil
}

func (c *Client) jobCreated() (string, error) {
	p, err := c.recv(true)
	if err != nil {
		return "", err
	}
	if p.typ != codec.JobCreated {
		return "", unexpected(p, "JOB_CREATED")
	}
	return string(p.arg(0)), nil
}

// Outcome is how a foreground job ended.
type Outcome int

// Outcomes.
const (
	Complete  Outcome = iota // WORK_COMPLETE: Data is the result
	Failed                   // WORK_FAIL
	Exception                // WORK_EXCEPTION: Data is the exception
)

func (o Outcome) String() string { return [...]string{"complete", "fail", "exception"}[o] }

// Update is a packet a worker sent while the job runs: WORK_DATA, WORK_WARNING or
// WORK_STATUS (Numerator / Denominator as the worker sent them).
type Update struct {
	Type                   codec.Type
	Data                   []byte
	Numerator, Denominator string
}

// Result is a foreground job's end.
type Result struct {
	Handle  string
	Outcome Outcome
	Data    []byte
}

// Submit runs a foreground job: it submits, then waits (without a time limit: the job takes
// as long as it takes) for its end, calling onUpdate (when not nil) for every WORK_DATA,
// WORK_WARNING and WORK_STATUS on the way. It first asks for exceptions, so that a
// WORK_EXCEPTION reaches it as one rather than as a WORK_FAIL.
func (c *Client) Submit(fn, unique string, data []byte, pri Priority, onUpdate func(Update)) (Result, error) {
	if _, err := c.Option("exceptions"); err != nil {
		return Result{}, err
	}
	if err := c.send(foregroundType[pri], []byte(fn), []byte(unique), data); err != nil {
		return Result{}, err
	}
	handle, err := c.jobCreated()
	if err != nil {
		return Result{}, err
	}
	for {
		p, err := c.recv(false)
		if err != nil {
			return Result{Handle: handle}, err
		}
		if string(p.arg(0)) != handle {
			continue // not ours (a connection runs one job at a time here)
		}
		switch p.typ {
		case codec.WorkComplete:
			return Result{handle, Complete, p.arg(1)}, nil
		case codec.WorkFail:
			return Result{handle, Failed, nil}, nil
		case codec.WorkException:
			return Result{handle, Exception, p.arg(1)}, nil
		case codec.WorkData, codec.WorkWarning:
			if onUpdate != nil {
				onUpdate(Update{Type: p.typ, Data: p.arg(1)})
			}
		case codec.WorkStatus:
			if onUpdate != nil {
				onUpdate(Update{Type: p.typ, Numerator: string(p.arg(1)), Denominator: string(p.arg(2))})
			}
		}
	}
}

// Status is GET_STATUS's answer about one job.
type Status struct {
	Handle                 string
	Known, Running         bool
	Numerator, Denominator string
}

// GetStatus asks about the job with this handle. A job the server does not hold (never
// existed, or already finished) is not Known.
func (c *Client) GetStatus(handle string) (Status, error) {
	if err := c.send(codec.GetStatus, []byte(handle)); err != nil {
		return Status{}, err
	}
	p, err := c.recv(true)
	if err != nil {
		return Status{}, err
	}
	if p.typ != codec.StatusRes {
		return Status{}, unexpected(p, "STATUS_RES")
	}
	return Status{
		Handle:      string(p.arg(0)),
		Known:       string(p.arg(1)) == "1",
		Running:     string(p.arg(2)) == "1",
		Numerator:   string(p.arg(3)),
		Denominator: string(p.arg(4)),
	}, nil
}
