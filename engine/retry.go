package engine

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/queue"
	"github.com/spur-gearman/spur/wal"
)

// Retry policies (admin `retry FN ATTEMPTS BASE MAX`, `retry FN off`, `show retries`): see
// outcome.go for what a policy does to a failed job.

// ParseRetryPolicy reads the words of `retry FN ATTEMPTS BASE MAX` after the function name:
// ATTEMPTS assignments in all (at least 1), BASE the first backoff and MAX the longest, each
// in seconds ("0.5") or as a Go duration ("500ms", "2m"). "off" (or ATTEMPTS 0) removes the
// policy and gives the zero value.
func ParseRetryPolicy(words []string) (queue.RetryPolicy, error) {
	if len(words) == 1 && (strings.EqualFold(words[0], "off") || words[0] == "0") {
		return queue.RetryPolicy{}, nil
	}
	if len(words) != 3 {
		return queue.RetryPolicy{}, errors.New("want ATTEMPTS BASE MAX, or off")
	}
	n, err := strconv.Atoi(words[0])
	if err != nil || n < 0 || n > 1000 {
		return queue.RetryPolicy{}, fmt.Errorf("attempts %q: want a number from 1 to 1000", words[0])
	}
	if n == 0 {
		return queue.RetryPolicy{}, nil
	}
	base, err := parseDuration(words[1])
	if err != nil {
		return queue.RetryPolicy{}, fmt.Errorf("base %q: %v", words[1], err)
	}
	maxd, err := parseDuration(words[2])
	if err != nil {
		return queue.RetryPolicy{}, fmt.Errorf("max %q: %v", words[2], err)
	}
	if maxd < base {
		return queue.RetryPolicy{}, fmt.Errorf("max %s is shorter than base %s", maxd, base)
	}
	return queue.RetryPolicy{Attempts: n, Base: base, Max: maxd}, nil
}

// parseDuration reads seconds ("0.5", "30") or a Go duration ("500ms"); from a millisecond
// (the clock's step) to 30 days.
func parseDuration(s string) (time.Duration, error) {
	var d time.Duration
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || f > 30*24*3600 {
			return 0, errors.New("out of range")
		}
		d = time.Duration(f * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, errors.New("want seconds (0.5) or a duration (500ms)")
	}
	if d < time.Millisecond || d > 30*24*time.Hour {
		return 0, errors.New("want from 1ms to 30 days")
	}
	return d, nil
}

// adminRetry handles `retry FN ...`, and `retry dead ...` (dead.go).
func (s *Session) adminRetry(w *codec.AdminWords) {
	if w.N >= 3 && w.Is(1, "dead") {
		s.adminRetryDead(w)
		return
	}
	if w.N < 3 {
		s.sendText(codec.AdminIncompleteArgs("retry"))
		return
	}
	words := make([]string, 0, 3)
	for i := 2; i < w.N; i++ {
		words = append(words, string(w.Word(i)))
	}
	p, err := ParseRetryPolicy(words)
	if err != nil {
		s.sendText(codec.AdminErr(codec.AdminCodeInvalidArguments, "retry: "+err.Error()))
		return
	}
	s.changeSettings(w.Word(1), func(st *wal.FunctionSettings) { st.Retry = wal.RetryPolicy(p) })
}

// retriesText renders `show retries`: FUNCTION \t ATTEMPTS \t BASE \t MAX per function with
// a retry policy, durations in Go's notation, sorted by name.
func (e *Engine) retriesText(readable func(string) bool) string {
	var lines []string
	e.reg.EachShard(func(sh *queue.Shard) {
		sh.EachFunction(func(f *queue.Function) {
			if p := f.Retry; p.Attempts > 0 && visible(readable, f.Name) {
				var b strings.Builder
				writeAdminField(&b, f.Name)
				fmt.Fprintf(&b, "\t%d\t%s\t%s\n", p.Attempts, p.Base, p.Max)
				lines = append(lines, b.String())
			}
		})
	})
	sort.Strings(lines)
	return strings.Join(lines, "") + ".\n"
}
