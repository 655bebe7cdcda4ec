package importer

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"
)

// report is what the import did, for people (writeText) or scripts (writeJSON, --json).
type report struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	DryRun   bool   `json:"dry_run"`
	Keep     bool   `json:"keep"`
	Rows     int    `json:"rows"`     // read from the source
	Imported int    `json:"imported"` // written to the target now (with --dry-run: would be)
	Already  int    `json:"already_in_target"`
	Skipped  int    `json:"skipped"`             // left in the source, see Skips
	Deleted  int    `json:"deleted_from_source"` // imported or already there, then removed
	// Functions are the per-function counts, by name.
	Functions []*fnCount     `json:"functions"`
	SkipsBy   map[string]int `json:"skips_by_reason,omitempty"`
	Skips     []skip         `json:"skips,omitempty"` // the first maxSkipsListed
	Notes     []string       `json:"notes,omitempty"`
	Seconds   float64        `json:"seconds"`
	Rate      float64        `json:"jobs_per_second"`
	Error     string         `json:"error,omitempty"`

	byFn map[string]*fnCount
}

type fnCount struct {
	Function  string `json:"function"`
	High      int    `json:"high"`
	Normal    int    `json:"normal"`
	Low       int    `json:"low"`
	Scheduled int    `json:"scheduled"` // of those, with a run-at time
	Already   int    `json:"already_in_target"`
	Skipped   int    `json:"skipped"`
}

type skip struct {
	Function string `json:"function"`
	Unique   string `json:"unique"`
	Reason   string `json:"reason"`
}

const maxSkipsListed = 1000

func newReport() *report {
	return &report{byFn: map[string]*fnCount{}, SkipsBy: map[string]int{}}
}

func (r *report) fn(name string) *fnCount {
	c := r.byFn[name]
	if c == nil {
		c = &fnCount{Function: name}
		r.byFn[name] = c
	}
	return c
}

func (r *report) count(row *Row, k outcomeKind) {
	c := r.fn(row.Function)
	if k == already {
		r.Already++
		c.Already++
		return
	}
	r.Imported++
	switch row.Priority {
	case prioHigh:
		c.High++
	case prioLow:
		c.Low++
	default:
		c.Normal++
	}
	if row.When != 0 {
		c.Scheduled++
	}
}

func (r *report) skip(row *Row, why string) {
	r.Skipped++
	r.fn(row.Function).Skipped++
	r.SkipsBy[why]++
	if len(r.Skips) < maxSkipsListed {
		r.Skips = append(r.Skips, skip{Function: row.Function, Unique: row.Unique, Reason: why})
	}
}

func (r *report) finish(d time.Duration) {
	r.Functions = r.Functions[:0]
	for _, c := range r.byFn {
		r.Functions = append(r.Functions, c)
	}
	sort.Slice(r.Functions, func(i, j int) bool { return r.Functions[i].Function < r.Functions[j].Function })
	r.Seconds = d.Seconds()
	if r.Seconds > 0 {
		r.Rate = float64(r.Imported) / r.Seconds
	}
}

func (r *report) writeJSON(w io.Writer) {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	_ = e.Encode(r)
}

func (r *report) writeText(w io.Writer) {
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Source != "" {
		fmt.Fprintf(w, "from %s\n", r.Source)
	}
	if r.Target != "" {
		fmt.Fprintf(w, "to   %s\n", r.Target)
	}
	verb := "imported"
	if r.DryRun {
		verb = "would import (dry run, nothing written)"
	}
	fmt.Fprintf(w, "%d rows read, %s %d, already in the target %d, skipped %d, deleted from the source %d",
		r.Rows, verb, r.Imported, r.Already, r.Skipped, r.Deleted)
	if r.Keep {
		fmt.Fprint(w, " (--keep)")
	}
	fmt.Fprintf(w, "; %.2f s, %.0f jobs/s\n", r.Seconds, r.Rate)
	if len(r.Functions) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "function\thigh\tnormal\tlow\tscheduled\talready\tskipped\t")
		for _, c := range r.Functions {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", c.Function, c.High, c.Normal, c.Low, c.Scheduled, c.Already, c.Skipped)
		}
		tw.Flush()
	}
	for _, s := range r.Skips {
		fmt.Fprintf(w, "skipped %q unique %q: %s\n", s.Function, s.Unique, s.Reason)
	}
	if r.Skipped > len(r.Skips) {
		fmt.Fprintf(w, "... and %d more skipped rows; by reason:\n", r.Skipped-len(r.Skips))
		for why, n := range r.SkipsBy {
			fmt.Fprintf(w, "  %d: %s\n", n, why)
		}
	}
	// r.Error is not printed here: the caller reports it (the spur CLI on stderr).
}
