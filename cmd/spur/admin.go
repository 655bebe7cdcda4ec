package main

import (
	"github.com/spur-gearman/spur/engine/cluster"

	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spur-gearman/spur/cmd/spur/client"
)

// functionRow is one function of `status` and `prioritystatus`.
type functionRow struct {
	Function string `json:"function"`
	Total    int    `json:"total"` // queued and running
	Running  int    `json:"running"`
	Workers  int    `json:"workers"`
	// Queued by priority, from prioritystatus; absent when the server has no such command.
	Queued *queuedRow `json:"queued,omitempty"`
}

type queuedRow struct {
	High   int `json:"high"`
	Normal int `json:"normal"`
	Low    int `json:"low"`
}

func atoi(s string) int { n, _ := strconv.Atoi(strings.TrimSpace(s)); return n }

// readFunctions asks `status`, then `prioritystatus` (which both gearmand and Spur have;
// a server without it just leaves Queued out).
func readFunctions(c *client.Client) ([]functionRow, error) {
	lines, err := adminOn(c, "status")
	if err != nil {
		return nil, err
	}
	rows := make([]functionRow, 0, len(lines))
	index := map[string]int{}
	for _, l := range lines {
		f := fields(l, 4)
		index[f[0]] = len(rows)
		rows = append(rows, functionRow{Function: f[0], Total: atoi(f[1]), Running: atoi(f[2]), Workers: atoi(f[3])})
	}
	prio, err := c.Admin("prioritystatus")
	if _, ok := err.(*client.ServerError); ok {
		return rows, nil
	}
	if err != nil {
		return nil, err
	}
	for _, l := range prio {
		f := fields(l, 5)
		if i, ok := index[f[0]]; ok {
			rows[i].Queued = &queuedRow{atoi(f[1]), atoi(f[2]), atoi(f[3])}
		}
	}
	return rows, nil
}

func (a *app) statusCmd() *cobra.Command {
	var inCluster bool
	return a.clusterFlag(a.jsonFlag(&cobra.Command{
		Use:   "status",
		Short: "functions: jobs queued (by priority) and running, workers",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if inCluster {
				return a.clusterStatus(cmd)
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			rows, err := readFunctions(c)
			if err != nil {
				return err
			}
			table := make([][]string, 0, len(rows))
			for _, r := range rows {
				q := []string{"-", "-", "-"}
				if r.Queued != nil {
					q = []string{strconv.Itoa(r.Queued.High), strconv.Itoa(r.Queued.Normal), strconv.Itoa(r.Queued.Low)}
				}
				table = append(table, append([]string{r.Function, strconv.Itoa(r.Total), strconv.Itoa(r.Running)},
					append(q, strconv.Itoa(r.Workers))...))
			}
			return a.emit(cmd, rows, []string{"FUNCTION", "TOTAL", "RUNNING", "HIGH", "NORMAL", "LOW", "WORKERS"}, table)
		},
	}), &inCluster)
}

// workerRow is one connection of `workers`.
type workerRow struct {
	ID        string   `json:"id"` // the connection's number, what `drain` takes
	Address   string   `json:"address"`
	ClientID  string   `json:"client_id"`
	Draining  bool     `json:"draining"`
	Functions []string `json:"functions"`
}

// parseWorker reads a `workers` line (engine/cluster's ParseWorker), keeping its FD as sent.
func parseWorker(l string) workerRow {
	w := cluster.ParseWorker(l)
	fd, _, _ := strings.Cut(l, " ")
	return workerRow{ID: fd, Address: w.IP, ClientID: w.ClientID, Draining: w.Draining, Functions: w.Functions}
}

func readWorkers(c *client.Client) ([]workerRow, error) {
	lines, err := adminOn(c, "workers")
	if err != nil {
		return nil, err
	}
	rows := make([]workerRow, 0, len(lines))
	for _, l := range lines {
		rows = append(rows, parseWorker(l))
	}
	return rows, nil
}

func (a *app) workersCmd() *cobra.Command {
	var all, inCluster bool
	c := a.clusterFlag(a.jsonFlag(&cobra.Command{
		Use:   "workers",
		Short: "worker connections and the functions each can do",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if inCluster {
				if all {
					return usagef("--all does not go with --cluster (which lists the workers only)")
				}
				return a.clusterWorkers(cmd)
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			rows, err := readWorkers(c)
			if err != nil {
				return err
			}
			shown := rows[:0]
			for _, r := range rows {
				if all || len(r.Functions) > 0 {
					shown = append(shown, r)
				}
			}
			table := make([][]string, 0, len(shown))
			for _, r := range shown {
				state := "active"
				if r.Draining {
					state = "draining"
				}
				table = append(table, []string{r.ID, r.Address, r.ClientID, state, strings.Join(r.Functions, " ")})
			}
			return a.emit(cmd, shown, []string{"ID", "ADDRESS", "CLIENT-ID", "STATE", "FUNCTIONS"}, table)
		},
	}), &inCluster)
	c.Flags().BoolVar(&all, "all", false, "also connections registered for no function (clients, this one)")
	return c
}

// jobRow is one job of `show jobs`.
type jobRow struct {
	Handle    string `json:"handle"`
	Retries   int    `json:"retries"`
	Ignored   bool   `json:"ignored"` // cancelled or abandoned, removed when reached
	Persisted bool   `json:"persisted"`
}

// scheduledRow is one job of Spur's `show scheduled`.
type scheduledRow struct {
	Handle   string `json:"handle"`
	Function string `json:"function"`
	Unique   string `json:"unique"`
	RunAt    string `json:"run_at"`
	Priority string `json:"priority"`
	Kind     string `json:"kind"` // "once", or the schedule's cron spec
}

func readScheduled(c *client.Client) ([]scheduledRow, error) {
	lines, err := adminOn(c, "show scheduled")
	if err != nil {
		return nil, err
	}
	rows := make([]scheduledRow, 0, len(lines))
	for _, l := range lines {
		f := fields(l, 7)
		rows = append(rows, scheduledRow{f[0], unescape(f[1]), unescape(f[2]), f[4], f[5], f[6]})
	}
	return rows, nil
}

func (a *app) jobsCmd() *cobra.Command {
	var inCluster bool
	return a.clusterFlag(a.jsonFlag(&cobra.Command{
		Use:   "jobs [FN]",
		Short: "jobs in the server (show jobs); with FN, that function's jobs",
		Long: `Without FN: every job the server holds, as its "show jobs" lists them (handle, retries,
ignored, persisted). With FN: that function's live jobs, running first, then queued in the
order workers get them, then scheduled (spurd's "show jobs FN"). gearmand has no such list:
against it spur shows the function's counts instead. With --cluster: the same of every
node, beside the function's counts on each.`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if inCluster {
				fn := ""
				if len(argv) == 1 {
					if err := plainWords(argv[0]); err != nil {
						return err
					}
					fn = argv[0]
				}
				return a.clusterJobs(cmd, fn)
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			if len(argv) == 0 {
				lines, err := adminOn(c, "show jobs")
				if err != nil {
					return err
				}
				rows := make([]jobRow, 0, len(lines))
				table := make([][]string, 0, len(lines))
				for _, l := range lines {
					f := fields(l, 4)
					rows = append(rows, jobRow{f[0], atoi(f[1]), f[2] == "1", f[3] == "1"})
					table = append(table, []string{f[0], f[1], yesNo(f[2] == "1"), yesNo(f[3] == "1")})
				}
				return a.emit(cmd, rows, []string{"HANDLE", "RETRIES", "IGNORED", "PERSISTED"}, table)
			}
			lines, err := adminOn(c, "show jobs "+argv[0])
			if isUnsupported(err) {
				return a.functionCounts(cmd, c, argv[0]) // gearmand
			}
			if err != nil {
				return err
			}
			rows := make([]functionJobRow, 0, len(lines))
			table := make([][]string, 0, len(lines))
			for _, l := range lines {
				f := fields(l, 7)
				rows = append(rows, functionJobRow{Handle: unescape(f[0]), State: f[1], Priority: f[2], Unique: unescape(f[3]),
					RunAt: f[4], Started: f[5], Worker: f[6]})
				table = append(table, f)
			}
			return a.emit(cmd, rows, []string{"HANDLE", "STATE", "PRIORITY", "UNIQUE", "RUN-AT", "STARTED", "WORKER"}, table)
		},
	}), &inCluster)
}

// functionJobRow is one line of spurd's `show jobs FN`.
type functionJobRow struct {
	Handle   string `json:"handle"`
	State    string `json:"state"`
	Priority string `json:"priority"`
	Unique   string `json:"unique"`
	RunAt    string `json:"run_at"`
	Started  string `json:"started"`
	Worker   string `json:"worker"`
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// functionCounts is `spur jobs FN` against a server without `show jobs FN` (gearmand): the
// function's counts, and its jobs waiting for their run-at time where the server lists them.
func (a *app) functionCounts(cmd *cobra.Command, c *client.Client, fn string) error {
	fns, err := readFunctions(c)
	if err != nil {
		return err
	}
	report := struct {
		functionRow
		Scheduled []scheduledRow `json:"scheduled"`
	}{functionRow: functionRow{Function: fn}}
	for _, r := range fns {
		if r.Function == fn {
			report.functionRow = r
		}
	}
	all, err := readScheduled(c)
	if err != nil && !isUnsupported(err) {
		return err
	}
	report.Scheduled = []scheduledRow{}
	for _, s := range all {
		if s.Function == fn {
			report.Scheduled = append(report.Scheduled, s)
		}
	}
	if a.json {
		return writeJSON(cmd.OutOrStdout(), report)
	}
	out := cmd.OutOrStdout()
	r := report.functionRow
	fmt.Fprintf(out, "%s: %d jobs, %d running, %d workers", fn, r.Total, r.Running, r.Workers)
	if r.Queued != nil {
		fmt.Fprintf(out, "; queued high %d, normal %d, low %d", r.Queued.High, r.Queued.Normal, r.Queued.Low)
	}
	fmt.Fprintln(out)
	if len(report.Scheduled) == 0 {
		return nil
	}
	fmt.Fprintln(out)
	table := make([][]string, 0, len(report.Scheduled))
	for _, s := range report.Scheduled {
		table = append(table, []string{s.Handle, s.Unique, s.RunAt, s.Priority, s.Kind})
	}
	return a.emit(cmd, nil, []string{"SCHEDULED", "UNIQUE", "RUN-AT", "PRIORITY", "KIND"}, table)
}

func isUnsupported(err error) bool { _, ok := err.(unsupported); return ok }

// resultRow is one line of Spur's `show result`.
type resultRow struct {
	Handle   string `json:"handle"`
	Function string `json:"function"`
	Unique   string `json:"unique"`
	Outcome  string `json:"outcome"`
	Attempts int    `json:"attempts"`
	Started  string `json:"started"`
	Finished string `json:"finished"`
	Data     string `json:"data"`
}

func (a *app) resultCmd() *cobra.Command {
	return a.jsonFlag(&cobra.Command{
		Use:   "result HANDLE | result FN UNIQUE",
		Short: "the kept outcome of a finished background job (Spur's show result)",
		Long: `The outcome of a finished background job, by handle or by function and unique: complete
with its data, fail, or exception with its data. Exit code 1 when there is none (still
queued or running, never existed, or expired).`,
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := plainWords(argv...); err != nil {
				return err
			}
			line := "show result " + argv[0]
			if len(argv) == 2 {
				line = "show result unique " + argv[0] + " " + argv[1]
			}
			lines, err := a.admin(line)
			if err != nil {
				return err
			}
			if len(lines) == 0 {
				return failure{"no result for " + strings.Join(argv, " ") + " (still queued or running, never existed, or expired)"}
			}
			f := fields(lines[0], 8)
			r := resultRow{f[0], unescape(f[1]), unescape(f[2]), f[3], atoi(f[4]), f[5], f[6], unescape(f[7])}
			return a.emit(cmd, r, []string{"HANDLE", "FUNCTION", "UNIQUE", "OUTCOME", "ATTEMPTS", "STARTED", "FINISHED", "DATA"},
				[][]string{f})
		},
	})
}

// plainWords refuses arguments an admin line cannot carry as one word: empty, or holding
// a space or line break (which would split it, or start another command).
func plainWords(words ...string) error {
	for _, w := range words {
		if w == "" || strings.ContainsAny(w, " \t\r\n") {
			return usagef("%q: an admin command argument must be one word", w)
		}
	}
	return nil
}

// simple is a command sending one admin line built from its arguments and answered OK.
func (a *app) simple(use, short string, n int, line func([]string) string, done func([]string) string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args(cobra.ExactArgs(n)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := plainWords(argv...); err != nil {
				return err
			}
			reply, err := a.admin(line(argv))
			if err != nil {
				return err
			}
			msg := done(argv)
			if extra := strings.TrimSpace(strings.TrimPrefix(reply[0], "OK")); extra != "" {
				msg += ": " + extra
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
}

func (a *app) pauseCmd(pause bool) *cobra.Command {
	if pause {
		return a.simple("pause FN", "hold a function's jobs queued: no worker gets one until resume", 1,
			func(v []string) string { return "pause " + v[0] },
			func(v []string) string { return "paused " + v[0] })
	}
	return a.simple("resume FN", "let a paused function's jobs run again", 1,
		func(v []string) string { return "resume " + v[0] },
		func(v []string) string { return "resumed " + v[0] })
}

func (a *app) limitCmd() *cobra.Command {
	c := a.simple("limit FN N", "run at most N of a function's jobs at once, across all workers (0: no limit)", 2,
		func(v []string) string { return "limit " + v[0] + " " + v[1] },
		func(v []string) string { return "limit of " + v[0] + " set to " + v[1] })
	check := c.Args
	c.Args = func(cmd *cobra.Command, v []string) error {
		if err := check(cmd, v); err != nil {
			return err
		}
		if n, err := strconv.Atoi(v[1]); err != nil || n < 0 {
			return usagef("limit %q: want a whole number, 0 or more", v[1])
		}
		return nil
	}
	return c
}

func (a *app) drainCmd() *cobra.Command {
	c := a.simple("drain WORKER", "give a worker no more jobs; it finishes what it runs and is disconnected", 1,
		func(v []string) string { return "drain worker " + v[0] },
		func(v []string) string { return "draining worker " + v[0] })
	c.Long = "WORKER is the ID column of `spur workers`."
	return c
}

func (a *app) cancelCmd() *cobra.Command {
	return a.simple("cancel HANDLE", "cancel a queued job (its waiting clients get WORK_FAIL), or delete a schedule", 1,
		func(v []string) string { return "cancel job " + v[0] },
		func(v []string) string { return "cancelled " + v[0] })
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "the CLI's version and the server's",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "spur", version)
			reply, err := a.admin("version")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "server", strings.TrimSpace(strings.TrimPrefix(reply[0], "OK")))
			return nil
		},
	}
}
