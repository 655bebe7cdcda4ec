package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spur-gearman/spur/cmd/spur/client"
)

// scheduleRow is one line of Spur's `show schedules`.
type scheduleRow struct {
	Handle   string `json:"handle"`
	Function string `json:"function"`
	Unique   string `json:"unique"`
	Spec     string `json:"spec"`
	Zone     string `json:"zone"` // "-": the server's
	Next     string `json:"next"`
	Last     string `json:"last"` // "-": never ran
	Priority string `json:"priority"`
	State    string `json:"state"` // active or paused
}

func (a *app) schedulesCmd() *cobra.Command {
	list := func(cmd *cobra.Command, _ []string) error {
		lines, err := a.admin("show schedules")
		if err != nil {
			return err
		}
		rows := make([]scheduleRow, 0, len(lines))
		table := make([][]string, 0, len(lines))
		for _, l := range lines {
			f := fields(l, 9)
			rows = append(rows, scheduleRow{f[0], unescape(f[1]), unescape(f[2]), f[3], f[4], f[5], f[6], f[7], f[8]})
			table = append(table, f)
		}
		return a.emit(cmd, rows, []string{"HANDLE", "FUNCTION", "UNIQUE", "SPEC", "ZONE", "NEXT", "LAST", "PRIORITY", "STATE"}, table)
	}
	root := a.jsonFlag(&cobra.Command{
		Use:   "schedules",
		Short: "recurring schedules (Spur): list, add, pause, resume, run, delete",
		Args:  args(cobra.NoArgs),
		RunE:  list,
	})
	root.AddCommand(a.jsonFlag(&cobra.Command{
		Use:   "list",
		Short: "list the schedules",
		Args:  args(cobra.NoArgs),
		RunE:  list,
	}))
	root.AddCommand(a.scheduleAddCmd())
	for _, op := range []struct{ name, short, done string }{
		{"pause", "stop a schedule firing until resume", "paused"},
		{"resume", "let a paused schedule fire again", "resumed"},
		{"run", "queue one run of a schedule now", "ran"},
		{"delete", "delete a schedule", "deleted"},
	} {
		root.AddCommand(a.simple(op.name+" HANDLE", op.short, 1,
			func(v []string) string { return "schedule " + op.name + " " + v[0] },
			func(v []string) string { return op.done + " schedule " + v[0] }))
	}
	return root
}

func (a *app) scheduleAddCmd() *cobra.Command {
	var tz, unique, priority, data string
	c := &cobra.Command{
		Use:   "add FN SPEC",
		Short: "add a schedule: SPEC is five cron fields (one quoted argument or five) or @daily, @hourly, ...",
		Example: `  spur schedules add cleanup '0 4 * * *' --tz Europe/Berlin --data '{"older_than":"30d"}'
  spur schedules add digest '*/15 8-18 * * MON-FRI' --unique digest --priority high`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			spec := strings.Fields(strings.Join(argv[1:], " "))
			if n := len(spec); !(n == 1 && strings.HasPrefix(spec[0], "@")) && n != 5 {
				return usagef("schedule spec %q: want five cron fields (MIN HOUR DOM MON DOW) or a @macro", strings.Join(spec, " "))
			}
			if err := plainWords(argv[0]); err != nil {
				return err
			}
			if _, err := client.ParsePriority(priority); err != nil {
				return usageError{err}
			}
			line := "schedule add " + argv[0] + " " + strings.Join(spec, " ")
			for _, o := range []struct{ key, val string }{{"tz", tz}, {"unique", unique}} {
				if o.val != "" {
					if err := plainWords(o.val); err != nil {
						return err
					}
					line += " " + o.key + "=" + o.val
				}
			}
			line += " priority=" + strings.ToLower(priority)
			if data != "" {
				if strings.ContainsAny(data, "\r\n") {
					return usagef("--data: a schedule's data is one line")
				}
				line += " data=" + data // the rest of the line, spaces included
			}
			reply, err := a.admin(line)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(strings.TrimPrefix(reply[0], "OK")))
			return nil
		},
	}
	c.Flags().StringVar(&tz, "tz", "", "time zone of the spec (IANA name; default the server's)")
	c.Flags().StringVar(&unique, "unique", "", "unique of each run (default the schedule's handle: runs never overlap)")
	c.Flags().StringVar(&priority, "priority", "normal", "priority of each run: high, normal or low")
	c.Flags().StringVar(&data, "data", "", "data of each run (one line)")
	return c
}
