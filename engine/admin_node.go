package engine

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spur-gearman/spur/queue"
)

// `show node` is this node as the cluster view (engine/cluster) reads it from a peer's
// Gearman port, and as `spur ... --cluster` finds the other nodes. Read-only, like `status`:
//
//	show node   KEY \t VALUE per line, in this order, then ".\n":
//	  name           NodeName
//	  version        Version
//	  started        when the server started, RFC 3339 in UTC
//	  uptime         seconds since, with milliseconds
//	  connections    open connections
//	  functions      functions the connection may read
//	  queued         their jobs waiting for a worker or their time
//	  running        their jobs held by workers
//	  workers        worker connections registered for at least one of them
//	  submitted, completed, failed, retried, dead_lettered
//	                 job counters: every function's since start (those since deleted
//	                 included, so they never go backwards) when the connection may read
//	                 everything, else the sum over the functions it may read
//	  schedules      "leads" when this node fires the recurring schedules (always, unless
//	                 its store is shared and another node holds the lead), else "follows"
//	  unclaimed      with a shared store, its jobs no node holds (unclaimed.go) of those
//	                 functions; absent without one, or when they cannot be counted now
//	  peer           one line per peer (Config.Peers), in the order given; none without
//
// A tool must ignore keys it does not know: later versions may add some.

// NodeInfo is what `show node` reports (see above).
type NodeInfo struct {
	Name, Version                                       string
	Started                                             time.Time
	Peers                                               []string
	LeadsSchedules                                      bool
	Connections, Functions, Queued, Running, Workers    int
	Submitted, Completed, Failed, Retried, DeadLettered uint64
	// Unclaimed counts the shared store's jobs no node holds, when UnclaimedKnown.
	Unclaimed      int
	UnclaimedKnown bool
}

// Node reports this node as `show node` does, leaving out what who may not read.
func (e *Engine) Node(who *Identity) NodeInfo {
	if who == nil {
		return NodeInfo{Name: e.cfg.NodeName, Version: Version, Started: e.cfg.Started}
	}
	readable := e.readableFor(who)
	n := e.node(readable)
	n.Unclaimed, n.UnclaimedKnown = e.unclaimedFor(context.Background(), readable)
	return n
}

func (e *Engine) node(readable func(string) bool) NodeInfo {
	n := NodeInfo{Name: e.cfg.NodeName, Version: Version, Started: e.cfg.Started,
		Peers: append([]string{}, e.cfg.Peers...), Connections: e.Sessions(), LeadsSchedules: e.leads()}
	var sum queue.Stats
	for _, f := range e.FunctionStats() {
		if !visible(readable, f.Name) {
			continue
		}
		n.Functions++
		for _, q := range f.Queued {
			n.Queued += q
		}
		n.Running += f.Running
		sum.Submitted += f.Stats.Submitted
		sum.Completed += f.Stats.Completed
		sum.Failed += f.Stats.Failed
		sum.Retried += f.Stats.Retried
		sum.DeadLettered += f.Stats.DeadLettered
	}
	if readable == nil {
		sum = e.TotalStats()
	}
	n.Submitted, n.Completed, n.Failed, n.Retried, n.DeadLettered = sum.Submitted, sum.Completed, sum.Failed, sum.Retried, sum.DeadLettered
	for _, w := range e.workers(readable) {
		if len(w.Functions) > 0 {
			n.Workers++
		}
	}
	return n
}

// showNode answers `show node`. With a shared store the answer waits, off the event loop,
// for the count of unclaimed jobs; its place among s's replies is kept.
func (s *Session) showNode() {
	readable := s.readable()
	if s.e.shared == nil {
		s.sendText(s.e.nodeText(s.e.node(readable)))
		return
	}
	slot := new(replySlot)
	s.holdReply(slot)
	go func() {
		n := s.e.node(readable)
		n.Unclaimed, n.UnclaimedKnown = s.e.unclaimedFor(context.Background(), readable)
		text := s.e.nodeText(n)
		s.fillReply(slot, func(b []byte) []byte { return append(b, text...) })
	}()
}

// nodeText renders `show node` of n.
func (e *Engine) nodeText(n NodeInfo) string {
	var b strings.Builder
	field := func(key, value string) {
		b.WriteString(key)
		b.WriteByte('\t')
		writeAdminField(&b, value)
		b.WriteByte('\n')
	}
	count := func(key string, v uint64) { field(key, strconv.FormatUint(v, 10)) }
	field("name", n.Name)
	field("version", n.Version)
	field("started", n.Started.UTC().Format(time.RFC3339Nano))
	field("uptime", strconv.FormatFloat(time.Since(n.Started).Seconds(), 'f', 3, 64))
	for _, c := range []struct {
		key string
		v   int
	}{{"connections", n.Connections}, {"functions", n.Functions}, {"queued", n.Queued}, {"running", n.Running}, {"workers", n.Workers}} {
		count(c.key, uint64(c.v))
	}
	count("submitted", n.Submitted)
	count("completed", n.Completed)
	count("failed", n.Failed)
	count("retried", n.Retried)
	count("dead_lettered", n.DeadLettered)
	if n.LeadsSchedules {
		field("schedules", "leads")
	} else {
		field("schedules", "follows")
	}
	if n.UnclaimedKnown {
		count("unclaimed", uint64(n.Unclaimed))
	}
	for _, p := range n.Peers {
		field("peer", p)
	}
	b.WriteString(".\n")
	return b.String()
}
