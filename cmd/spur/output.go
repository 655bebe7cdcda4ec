package main

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// table writes rows aligned in columns for people: a header, then one line per row.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	io.WriteString(tw, strings.Join(header, "\t")+"\n")
	for _, r := range rows {
		io.WriteString(tw, strings.Join(r, "\t")+"\n")
	}
	return tw.Flush()
}

// writeJSON writes v indented, for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonFlag adds --json to a listing command.
func (a *app) jsonFlag(c *cobra.Command) *cobra.Command {
	c.Flags().BoolVar(&a.json, "json", false, "print JSON for scripts instead of a table")
	return c
}

// emit prints v as JSON with --json, else the table.
func (a *app) emit(c *cobra.Command, v any, header []string, rows [][]string) error {
	if a.json {
		return writeJSON(c.OutOrStdout(), v)
	}
	return table(c.OutOrStdout(), header, rows)
}

// fields splits a tab-separated admin line into exactly n fields (the last keeps any tabs
// left), padding with "" when the line has fewer.
func fields(line string, n int) []string {
	f := strings.SplitN(line, "\t", n)
	for len(f) < n {
		f = append(f, "")
	}
	return f
}

// unescape undoes the server's \xNN escapes of control bytes and backslashes in a field
// (tables keep them: they are safe on a terminal; JSON carries the real bytes).
func unescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
