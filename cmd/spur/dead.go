package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// deadRow is one line of Spur's `show dead`.
type deadRow struct {
	Handle      string `json:"handle"`
	Function    string `json:"function"`
	Unique      string `json:"unique"`
	Attempts    int    `json:"attempts"`
	FirstFailed string `json:"first_failed"`
	LastFailed  string `json:"last_failed"`
	Outcome     string `json:"outcome"`
	LastError   string `json:"last_error"`
}

func (a *app) deadCmd() *cobra.Command {
	list := func(cmd *cobra.Command, argv []string) error {
		line := "show dead"
		if len(argv) == 1 {
			if err := plainWords(argv[0]); err != nil {
				return err
			}
			line += " " + argv[0]
		}
		lines, err := a.admin(line)
		if err != nil {
			return err
		}
		rows := make([]deadRow, 0, len(lines))
		table := make([][]string, 0, len(lines))
		for _, l := range lines {
			f := fields(l, 8)
			rows = append(rows, deadRow{f[0], unescape(f[1]), unescape(f[2]), atoi(f[3]), f[4], f[5], f[6], unescape(f[7])})
			table = append(table, f)
		}
		return a.emit(cmd, rows, []string{"HANDLE", "FUNCTION", "UNIQUE", "ATTEMPTS", "FIRST-FAILED", "LAST-FAILED", "OUTCOME", "LAST-ERROR"}, table)
	}
	root := a.jsonFlag(&cobra.Command{
		Use:   "dead [FN]",
		Short: "dead letters (Spur): background jobs that used up their retries; list, retry, purge",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE:  list,
	})
	root.AddCommand(a.jsonFlag(&cobra.Command{
		Use:   "list [FN]",
		Short: "list the dead letters, of one function or all",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE:  list,
	}))
	var all string
	retry := &cobra.Command{
		Use:   "retry HANDLE | retry --all FN",
		Short: "queue a dead letter again (all of a function's with --all)",
		RunE: func(cmd *cobra.Command, argv []string) error {
			var line, done string
			switch {
			case all != "" && len(argv) == 0:
				if err := plainWords(all); err != nil {
					return err
				}
				line, done = "retry dead all "+all, "retried the dead letters of "+all
			case all == "" && len(argv) == 1:
				if err := plainWords(argv[0]); err != nil {
					return err
				}
				line, done = "retry dead "+argv[0], "retried "+argv[0]
			default:
				return usagef("dead retry takes one HANDLE, or --all FN")
			}
			if _, err := a.admin(line); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), done)
			return nil
		},
	}
	retry.Flags().StringVar(&all, "all", "", "retry every dead letter of this function")
	root.AddCommand(retry)
	root.AddCommand(a.simple("purge FN", "forget a function's dead letters", 1,
		func(v []string) string { return "purge dead " + v[0] },
		func(v []string) string { return "purged the dead letters of " + v[0] }))
	return root
}
