package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spur-gearman/spur/cmd/spur/client"
	"github.com/spur-gearman/spur/engine/cluster"
)

// The cluster view of `spur status|workers|jobs --cluster`: spur asks the node it talks to
// for its peers (`show node`), then reads every node itself, in parallel, over the same
// TLS settings and within --timeout each (package engine/cluster), and prints them side by
// side and summed: first one row per node (a node that did not answer is "down" with why),
// then the rows of the listing with a NODE column. --json prints what the HTTP API's
// /api/cluster/... answer: {"node", "nodes": [...], "sum": {...}}.

// clusterTimeout bounds each node's read when --timeout is 0 (no limit is no option here:
// one dead peer would hold the whole view).
const clusterTimeout = time.Minute

// clusterFlag adds --cluster to a listing command.
func (a *app) clusterFlag(c *cobra.Command, on *bool) *cobra.Command {
	c.Flags().BoolVar(on, "cluster", false, "every node of the cluster side by side and summed: this one and its --peer nodes")
	return c
}

// readCluster reads the node spur talks to and its peers with q; the first is that node.
func (a *app) readCluster(q cluster.Query) ([]cluster.Node, error) {
	c, err := a.dial()
	if err != nil {
		return nil, err
	}
	lines, err := adminOn(c, "show node")
	c.Close()
	if err != nil && !isUnsupported(err) { // gearmand knows no peers: the view is that one node
		return nil, err
	}
	addrs := []string{a.addr()}
	for _, l := range lines {
		if k, v, ok := strings.Cut(l, "\t"); ok && k == "peer" {
			addrs = append(addrs, cluster.Unescape(v))
		}
	}
	timeout := a.timeout
	if timeout <= 0 {
		timeout = clusterTimeout
	}
	opts := client.Options{TLS: a.ssl, CAFile: a.sslCA, CertFile: a.sslCert, KeyFile: a.sslKey, Timeout: timeout}
	r := cluster.New(cluster.Options{Timeout: timeout, Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		conn, err := client.DialConn(ctx, addr, opts)
		if ce, ok := err.(*client.ConnError); ok {
			return nil, ce.Err // the view says what failed, without "dial: dial tcp"
		}
		return conn, err
	}})
	nodes := r.Read(context.Background(), addrs, q)
	nodes[0].Self = true
	return nodes, nil
}

// clusterJSON is the --json answer, the HTTP API's.
func clusterJSON(nodes []cluster.Node) any {
	return map[string]any{"node": nodes[0].Name, "nodes": nodes, "sum": cluster.Summarize(nodes)}
}

func nodeName(n *cluster.Node) string {
	if n.Name == "" {
		return "-"
	}
	return n.Name
}

// nodeRows is the first table: one row per node, cols(node) after NODE ADDRESS STATE and
// ERROR last; then the sum row, whose STATE is "UP/NODES up".
func nodeRows(nodes []cluster.Node, cols func(n *cluster.Node) []string, sum []string) [][]string {
	rows := make([][]string, 0, len(nodes)+1)
	up := 0
	for i := range nodes {
		n := &nodes[i]
		row := []string{nodeName(n), n.Addr, "up"}
		if n.Up {
			up++
			row = append(row, cols(n)...)
			row = append(row, "")
		} else {
			row[2] = "down"
			for range sum {
				row = append(row, "-")
			}
			row = append(row, n.Error)
		}
		rows = append(rows, row)
	}
	return append(rows, append(append([]string{"(all)", "", fmt.Sprintf("%d/%d up", up, len(nodes))}, sum...), ""))
}

func itoa(n int) string { return strconv.Itoa(n) }

func (a *app) clusterStatus(cmd *cobra.Command) error {
	nodes, err := a.readCluster(cluster.Query{Functions: true})
	if err != nil {
		return err
	}
	if a.json {
		return writeJSON(cmd.OutOrStdout(), clusterJSON(nodes))
	}
	s := cluster.Summarize(nodes)
	totals := func(t cluster.Totals) []string {
		return []string{itoa(t.Functions), itoa(t.Queued), itoa(t.Running), itoa(t.Workers)}
	}
	out := cmd.OutOrStdout()
	if err := table(out, []string{"NODE", "ADDRESS", "STATE", "FUNCTIONS", "QUEUED", "RUNNING", "WORKERS", "ERROR"},
		nodeRows(nodes, func(n *cluster.Node) []string { return totals(n.Totals) }, totals(s.Totals))); err != nil {
		return err
	}
	if s.Totals.Unclaimed > 0 {
		fmt.Fprintf(out, "\n%d more queued in the shared store, held by no node (any node's workers take them)\n", s.Totals.Unclaimed)
	}
	fnRow := func(node string, f cluster.Function) []string {
		return []string{f.Name, node, itoa(f.Total), itoa(f.Running), itoa(f.Queued.High), itoa(f.Queued.Normal), itoa(f.Queued.Low), itoa(f.Workers)}
	}
	var rows [][]string
	for _, sum := range s.Functions {
		for i := range nodes {
			for _, f := range nodes[i].Functions {
				if f.Name == sum.Name {
					rows = append(rows, fnRow(nodeName(&nodes[i]), f))
				}
			}
		}
		rows = append(rows, fnRow("(all)", sum))
	}
	fmt.Fprintln(out)
	return table(out, []string{"FUNCTION", "NODE", "TOTAL", "RUNNING", "HIGH", "NORMAL", "LOW", "WORKERS"}, rows)
}

func (a *app) clusterWorkers(cmd *cobra.Command) error {
	nodes, err := a.readCluster(cluster.Query{Workers: true})
	if err != nil {
		return err
	}
	if a.json {
		return writeJSON(cmd.OutOrStdout(), clusterJSON(nodes))
	}
	s := cluster.Summarize(nodes)
	out := cmd.OutOrStdout()
	if err := table(out, []string{"NODE", "ADDRESS", "STATE", "WORKERS", "ERROR"},
		nodeRows(nodes, func(n *cluster.Node) []string { return []string{itoa(len(n.Workers))} }, []string{itoa(s.Totals.Workers)})); err != nil {
		return err
	}
	var rows [][]string
	for i := range nodes {
		for _, w := range nodes[i].Workers {
			state := "active"
			if w.Draining {
				state = "draining"
			}
			rows = append(rows, []string{nodeName(&nodes[i]), itoa(w.ID), w.IP, w.ClientID, state, strings.Join(w.Functions, " ")})
		}
	}
	fmt.Fprintln(out)
	return table(out, []string{"NODE", "ID", "ADDRESS", "CLIENT-ID", "STATE", "FUNCTIONS"}, rows)
}

func (a *app) clusterJobs(cmd *cobra.Command, fn string) error {
	q := cluster.Query{AllJobs: true}
	if fn != "" {
		q = cluster.Query{Function: fn}
	}
	nodes, err := a.readCluster(q)
	if err != nil {
		return err
	}
	if a.json {
		return writeJSON(cmd.OutOrStdout(), clusterJSON(nodes))
	}
	out := cmd.OutOrStdout()
	var rows [][]string
	if fn == "" {
		if err := table(out, []string{"NODE", "ADDRESS", "STATE", "JOBS", "ERROR"},
			nodeRows(nodes, func(n *cluster.Node) []string { return []string{itoa(len(n.AllJobs))} }, []string{itoa(cluster.Summarize(nodes).Jobs)})); err != nil {
			return err
		}
		for i := range nodes {
			for _, j := range nodes[i].AllJobs {
				rows = append(rows, []string{nodeName(&nodes[i]), j.Handle, itoa(j.Retries), yesNo(j.Ignored), yesNo(j.Persisted)})
			}
		}
		fmt.Fprintln(out)
		return table(out, []string{"NODE", "HANDLE", "RETRIES", "IGNORED", "PERSISTED"}, rows)
	}
	counts := func(f cluster.Function) []string {
		return []string{itoa(f.Total), itoa(f.Running), itoa(f.Queued.High), itoa(f.Queued.Normal), itoa(f.Queued.Low), itoa(f.Workers)}
	}
	of := func(fns []cluster.Function) cluster.Function {
		if len(fns) > 0 {
			return fns[0]
		}
		return cluster.Function{Name: fn}
	}
	if err := table(out, []string{"NODE", "ADDRESS", "STATE", "TOTAL", "RUNNING", "HIGH", "NORMAL", "LOW", "WORKERS", "ERROR"},
		nodeRows(nodes, func(n *cluster.Node) []string { return counts(of(n.Functions)) }, counts(of(cluster.Summarize(nodes).Functions)))); err != nil {
		return err
	}
	for i := range nodes {
		for _, j := range nodes[i].Jobs {
			worker := "-"
			if j.Worker != nil {
				worker = itoa(*j.Worker)
			}
			rows = append(rows, []string{nodeName(&nodes[i]), escape(j.Handle), j.State, j.Priority, escape(j.Unique),
				timeText(j.RunAt), timeText(j.Started), worker})
		}
	}
	fmt.Fprintln(out)
	return table(out, []string{"NODE", "HANDLE", "STATE", "PRIORITY", "UNIQUE", "RUN-AT", "STARTED", "WORKER"}, rows)
}

func timeText(t cluster.Time) string {
	if time.Time(t).IsZero() {
		return "-"
	}
	return time.Time(t).UTC().Format(time.RFC3339Nano)
}

// escape writes control bytes and backslashes as \xNN, as the server does in its listings,
// so that a table stays one line per row.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			fmt.Fprintf(&b, `\x%02x`, c)
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
