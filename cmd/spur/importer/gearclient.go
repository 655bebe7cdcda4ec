package importer

import (
	"context"
	"fmt"
	"time"

	"github.com/spur-gearman/spur/cmd/spur/client"
)

// serverTarget submits the rows to a running spurd over the Gearman protocol, as background
// jobs of their priority (SUBMIT_JOB_HIGH_BG, _BG, _LOW_BG) or, with a run-at time, as
// SUBMIT_JOB_EPOCH, each with its unique, a batch pipelined on one connection
// (client.SubmitBackgroundBatch). A row counts as imported once its JOB_CREATED arrives:
// spurd sends it only after the job's record is durable. An ERROR reply refuses that row
// only; a lost connection fails the batch, whose rows stay in the source (a row of it that
// spurd did take is then submitted again by the next run, see the package doc).
type serverTarget struct {
	addr string
	c    *client.Client
}

// dialServer connects to the spurd at addr; timeout bounds the dial and each wait for an
// acknowledgement.
func dialServer(_ context.Context, addr string, timeout time.Duration) (*serverTarget, error) {
	c, err := client.Dial(addr, client.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("--to %s: %w", addr, err)
	}
	return &serverTarget{addr: addr, c: c}, nil
}

func (t *serverTarget) Describe() string { return "spurd at " + t.addr }

// rowPriority is the client's priority of a row's (0 high, 1 normal, 2 low).
var rowPriority = [...]client.Priority{prioHigh: client.High, prioNormal: client.Normal, prioLow: client.Low}

func (t *serverTarget) Import(_ context.Context, rows []Row) ([]outcome, error) {
	jobs := make([]client.BackgroundJob, len(rows))
	for i := range rows {
		r := &rows[i]
		jobs[i] = client.BackgroundJob{Function: r.Function, Unique: r.Unique, Data: r.Data, Priority: rowPriority[r.Priority]}
		if r.When != 0 {
			jobs[i].RunAt = time.Unix(r.When, 0)
		}
	}
	_, refusals, err := t.c.SubmitBackgroundBatch(jobs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Describe(), err)
	}
	res := make([]outcome, len(rows))
	for i, refusal := range refusals {
		res[i] = outcome{kind: imported}
		if refusal != nil {
			res[i] = outcome{kind: refused, reason: "refused by spurd: " + refusal.Error()}
		}
	}
	return res, nil
}

func (t *serverTarget) Close() error { return t.c.Close() }
