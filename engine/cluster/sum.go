package cluster

import "sort"

// Sum is the cluster summed over the nodes that are up.
type Sum struct {
	Nodes int `json:"nodes"`
	Up    int `json:"up"`
	Down  int `json:"down"`
	// Totals adds up the nodes' totals (a function on two nodes counts twice in Functions),
	// but for Unclaimed, the largest (see Totals).
	Totals Totals `json:"totals"`
	// Functions adds up each function's counts over the nodes, by name; absent unless they
	// were read.
	Functions []Function `json:"functions,omitzero"`
	Jobs      int        `json:"jobs"` // jobs listed (Node.Jobs and Node.AllJobs)
}

// Summarize sums nodes.
func Summarize(nodes []Node) Sum {
	s := Sum{Nodes: len(nodes)}
	byName := map[string]*Function{}
	read := false
	for i := range nodes {
		n := &nodes[i]
		if !n.Up {
			s.Down++
			continue
		}
		s.Up++
		t := &s.Totals
		t.Connections += n.Totals.Connections
		t.Functions += n.Totals.Functions
		t.Queued += n.Totals.Queued
		t.Running += n.Totals.Running
		t.Workers += n.Totals.Workers
		t.Submitted += n.Totals.Submitted
		t.Completed += n.Totals.Completed
		t.Failed += n.Totals.Failed
		t.Retried += n.Totals.Retried
		t.DeadLettered += n.Totals.DeadLettered
		t.Unclaimed = max(t.Unclaimed, n.Totals.Unclaimed) // one store's figure, on every node
		s.Jobs += len(n.Jobs) + len(n.AllJobs)
		read = read || n.Functions != nil
		for _, f := range n.Functions {
			sum := byName[f.Name]
			if sum == nil {
				sum = &Function{Name: f.Name}
				byName[f.Name] = sum
			}
			sum.Total += f.Total
			sum.Running += f.Running
			sum.Workers += f.Workers
			sum.Queued.High += f.Queued.High
			sum.Queued.Normal += f.Queued.Normal
			sum.Queued.Low += f.Queued.Low
		}
	}
	if read {
		s.Functions = make([]Function, 0, len(byName))
		for _, f := range byName {
			s.Functions = append(s.Functions, *f)
		}
		sort.Slice(s.Functions, func(a, b int) bool { return s.Functions[a].Name < s.Functions[b].Name })
	}
	return s
}
