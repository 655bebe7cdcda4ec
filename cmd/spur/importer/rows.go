package importer

import (
	"context"
	"fmt"

	"github.com/spur-gearman/spur/codec"
)

// Row is one persisted gearmand job, as its store holds it (gearman-spec.md section 5):
// (unique_key, function_name, priority, data, when_to_run). The job handle is not stored.
type Row struct {
	Unique   string
	Function string
	Priority int64 // 0 high, 1 normal, 2 low; anything else is refused
	Data     []byte
	When     int64 // unix seconds the job may run from; 0 = as soon as possible

	// id is what the source needs to delete exactly this row (a rowid, a redis key, the
	// key columns with their NULLs).
	id any
}

// Source is a gearmand queue store. Rows reads the whole queue: gearmand itself loads all of
// it into memory when it starts (its replay), so a queue that gearmand could run fits here.
// Delete removes exactly the given rows, all or none, and is called only for rows the target
// has acknowledged.
type Source interface {
	Describe() string // where the queue is, for the report (never a password)
	Rows(ctx context.Context) ([]Row, error)
	Delete(ctx context.Context, rows []Row) error
	Close() error
}

// Priorities as gearmand stores them.
const (
	prioHigh   = 0
	prioNormal = 1
	prioLow    = 2
)

var priorityNames = [3]string{"high", "normal", "low"}

// check returns why row cannot be imported into a target that speaks the protocol (toServer)
// or writes the data dir, or "" when it can. A refused row stays in the source.
func (r *Row) check(toServer bool, maxData int) string {
	switch {
	case r.Function == "":
		return "empty function name"
	case len(r.Function) > codec.MaxFunctionSize:
		return fmt.Sprintf("function name of %d bytes, above the protocol's %d", len(r.Function), codec.MaxFunctionSize)
	case len(r.Unique) > codec.MaxUniqueSize:
		return fmt.Sprintf("unique of %d bytes, above the protocol's %d", len(r.Unique), codec.MaxUniqueSize)
	case r.Priority < prioHigh || r.Priority > prioLow:
		return fmt.Sprintf("bad priority %d (gearmand stores 0 high, 1 normal, 2 low)", r.Priority)
	case r.When < 0:
		return fmt.Sprintf("bad when_to_run %d", r.When)
	case toServer && r.When != 0 && r.Priority != prioNormal:
		// SUBMIT_JOB_EPOCH has no priority: it is a normal job. gearmand never writes such
		// a row itself (its epoch jobs are normal ones); one written by hand keeps both in
		// the data dir.
		return fmt.Sprintf("scheduled job of %s priority: the protocol schedules normal jobs only (import it with --data-dir)", priorityNames[r.Priority])
	case toServer && maxData > 0 && len(r.Data)+len(r.Function)+len(r.Unique)+24 > maxData:
		return fmt.Sprintf("data of %d bytes, above the packet size limit of %d (see --max-packet-size)", len(r.Data), maxData)
	}
	return ""
}
