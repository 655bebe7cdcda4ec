package httpapi

import (
	"time"

	"github.com/spur-gearman/spur/engine"
)

// more fills what FunctionStatus has beyond the queue counts: the counters since start,
// the oldest queued job's age, the function's pause, limit and scheduled jobs.
func more(fs *functionStatus, st *engine.FunctionStat, t time.Time) {
	fs.Scheduled, fs.Paused, fs.Limit = st.Scheduled, st.Paused, st.Limit
	fs.Submitted, fs.Completed, fs.Failed = st.Stats.Submitted, st.Stats.Completed, st.Stats.Failed
	fs.Retried, fs.DeadLettered = st.Stats.Retried, st.Stats.DeadLettered
	if !st.Oldest.IsZero() {
		age := max(t.Sub(st.Oldest).Seconds(), 0)
		fs.OldestAge = &age
	}
}
