package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/spur-gearman/spur/cmd/spur/client"
	"github.com/spur-gearman/spur/codec"
)

func (a *app) submitCmd() *cobra.Command {
	var (
		bg       bool
		priority string
		at       string
		in       time.Duration
		unique   string
	)
	c := a.jsonFlag(&cobra.Command{
		Use:   "submit FN [DATA]",
		Short: "submit a job; DATA from the argument or else stdin",
		Long: `Submits a job to FN with DATA (the argument, or else all of stdin).

In the foreground spur waits for the job's end: it prints the worker's WORK_DATA and the
result on stdout, warnings on stderr, and exits 1 when the job fails or throws an
exception (printed on stderr). With --bg it prints the job's handle once the server has
accepted it. --at and --in (a run-at time, SUBMIT_JOB_EPOCH) make a background job of
normal priority.`,
		Example: `  spur submit resize img-42.jpg
  echo '{"to":"a@b.c"}' | spur submit mail --bg --priority high
  spur submit report --in 2h --unique report-2026-12-02 ''`,
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			pri, err := client.ParsePriority(priority)
			if err != nil {
				return usageError{err}
			}
			var runAt time.Time
			switch {
			case at != "" && in != 0:
				return usagef("--at and --in: give one")
			case at != "":
				if runAt, err = parseTime(at); err != nil {
					return usageError{err}
				}
			case in < 0:
				return usagef("--in %s: a duration from now, not before it", in)
			case in > 0:
				runAt = time.Now().Add(in)
			}
			if !runAt.IsZero() {
				bg = true
				if pri != client.Normal {
					return usagef("--priority with --at/--in: a job with a run-at time has normal priority")
				}
			}
			if len(unique) > codec.MaxUniqueSize {
				return usagef("--unique: at most %d bytes", codec.MaxUniqueSize)
			}
			var data []byte
			if len(argv) == 2 {
				data = []byte(argv[1])
			} else if data, err = io.ReadAll(cmd.InOrStdin()); err != nil {
				return failure{"reading the job's data from stdin: " + err.Error()}
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			if bg {
				h, err := c.SubmitBackground(argv[0], unique, data, pri, runAt)
				if err != nil {
					return err
				}
				if a.json {
					v := map[string]any{"handle": h}
					if !runAt.IsZero() {
						v["run_at"] = runAt.UTC().Format(time.RFC3339)
					}
					return writeJSON(out, v)
				}
				fmt.Fprintln(out, h)
				return nil
			}
			var streamed []byte
			res, err := c.Submit(argv[0], unique, data, pri, func(u client.Update) {
				switch u.Type {
				case codec.WorkData:
					if a.json {
						streamed = append(streamed, u.Data...)
					} else {
						out.Write(u.Data)
					}
				case codec.WorkWarning:
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", u.Data)
				case codec.WorkStatus:
					fmt.Fprintf(cmd.ErrOrStderr(), "status: %s/%s\n", u.Numerator, u.Denominator)
				}
			})
			if err != nil {
				return err
			}
			if a.json {
				if err := writeJSON(out, map[string]any{
					"handle": res.Handle, "outcome": res.Outcome.String(), "data": string(res.Data), "streamed": string(streamed),
				}); err != nil {
					return err
				}
			} else if res.Outcome == client.Complete {
				out.Write(res.Data)
			}
			switch res.Outcome {
			case client.Failed:
				return failure{"job " + res.Handle + " failed"}
			case client.Exception:
				return failure{"job " + res.Handle + " threw an exception: " + string(res.Data)}
			}
			return nil
		},
	})
	f := c.Flags()
	f.BoolVar(&bg, "bg", false, "background: print the handle and return at once")
	f.StringVar(&priority, "priority", "normal", "high, normal or low")
	f.StringVar(&at, "at", "", "run at this time: RFC 3339 (2026-12-02T03:00:00Z) or unix seconds")
	f.DurationVar(&in, "in", 0, "run after this long (e.g. 90s, 2h)")
	f.StringVar(&unique, "unique", "", "unique id: a job with the same function and unique coalesces")
	return c
}

// parseTime reads RFC 3339 or unix seconds.
func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q: want RFC 3339 (2026-12-02T03:00:00Z) or unix seconds", s)
	}
	return t, nil
}
