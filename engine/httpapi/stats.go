package httpapi

import (
	"time"

	"github.com/spur-gearman/spur/engine"
)

// more fills what FunctionStatus has beyond the queue counts: the counters since start,
// the oldest queued job's age, the function's pause, limit and scheduled jobs. They stay
// zero until engine.FunctionStat carries them.
func more(fs *functionStatus, st *engine.FunctionStat, t time.Time) {}
