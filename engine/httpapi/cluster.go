package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/spur-gearman/spur/engine"
	"github.com/spur-gearman/spur/engine/cluster"
)

// The cluster view: this node and its peers side by side, and summed. This node is read
// from the engine, for the request's identity; every peer through its Gearman admin port
// (package engine/cluster), in parallel, within the reader's timeout, on this request's
// goroutine. What the request may not read of this node it does not see of the peers
// either: their functions, workers' registrations and jobs pass the same filter. A peer
// that does not answer is listed down, with why.
//
//	{"node": NAME, "nodes": [Node, ...], "sum": Sum}   nodes: this one first, then the peers
//	                                                   in the order of --peer

// ClusterOptions name the other nodes of the cluster view.
type ClusterOptions struct {
	Self   string          // this node's Gearman address, as the view shows it
	Peers  []string        // the other nodes' Gearman addresses (spurd --peer), in order
	Reader *cluster.Reader // reads them; nil = plaintext with the defaults
}

func (a *api) clusterRoutes() {
	a.handle("GET /api/cluster/status", a.clusterStatus)
	a.handle("GET /api/cluster/workers", a.clusterWorkers)
	a.handle("GET /api/cluster/jobs", a.clusterJobs)
}

// self is this node as the cluster view shows it, for who.
func (a *api) self(who *engine.Identity) cluster.Node {
	n := a.e.Node(who)
	return cluster.Node{Name: n.Name, Addr: a.opts.Cluster.Self, Self: true, Up: true, Version: n.Version,
		Started: cluster.Time(n.Started), UptimeS: time.Since(n.Started).Seconds(), Peers: n.Peers,
		Totals: cluster.Totals{Connections: n.Connections, Functions: n.Functions, Queued: n.Queued, Running: n.Running,
			Workers: n.Workers, Submitted: n.Submitted, Completed: n.Completed, Failed: n.Failed, Retried: n.Retried,
			DeadLettered: n.DeadLettered, Unclaimed: n.Unclaimed}}
}

// functionsOf is this node's functions for who (only fn's when fn is given).
func (a *api) functionsOf(who *engine.Identity, fn string) []cluster.Function {
	out := []cluster.Function{}
	for _, st := range a.e.FunctionStats() {
		if (fn == "" || st.Name == fn) && a.e.Readable(who, st.Name) {
			out = append(out, cluster.Function{Name: st.Name, Total: st.Total, Running: st.Running, Workers: st.Workers,
				Queued: cluster.Queued{High: st.Queued[0], Normal: st.Queued[1], Low: st.Queued[2]}})
		}
	}
	return out
}

// answerCluster reads the peers with q, filters them for who and answers with this node
// (self) first.
func (a *api) answerCluster(w http.ResponseWriter, r *http.Request, who *engine.Identity, self cluster.Node, q cluster.Query) {
	nodes := []cluster.Node{self}
	if peers := a.opts.Cluster.Peers; len(peers) > 0 {
		keep := func(fn string) bool { return a.e.Readable(who, fn) }
		for _, n := range a.opts.Cluster.Reader.Read(r.Context(), peers, q) {
			nodes = append(nodes, n.Only(keep))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": self.Name, "nodes": nodes, "sum": cluster.Summarize(nodes)})
}

func (a *api) clusterStatus(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "status"); err != nil {
		writeError(w, err)
		return
	}
	self := a.self(who)
	// ?functions=false: the nodes' totals only (the dashboard's cluster panel), a small
	// answer of each peer however many functions it has.
	if r.URL.Query().Get("functions") == "false" {
		a.answerCluster(w, r, who, self, cluster.Query{})
		return
	}
	self.Functions = a.functionsOf(who, "")
	a.answerCluster(w, r, who, self, cluster.Query{Functions: true})
}

func (a *api) clusterWorkers(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	if err := a.allowAdmin(who, "workers"); err != nil {
		writeError(w, err)
		return
	}
	self := a.self(who)
	self.Workers = []cluster.Worker{}
	for _, wk := range a.e.Workers(who) {
		if len(wk.Functions) > 0 {
			self.Workers = append(self.Workers, cluster.Worker{ID: wk.ID, IP: wk.IP, ClientID: wk.ClientID,
				Draining: wk.Draining, Functions: wk.Functions})
		}
	}
	a.answerCluster(w, r, who, self, cluster.Query{Workers: true})
}

func (a *api) clusterJobs(w http.ResponseWriter, r *http.Request, who *engine.Identity) {
	fn := r.URL.Query().Get("function")
	if fn == "" || strings.ContainsAny(fn, " \t\r\n\x00") {
		writeError(w, badRequest("give ?function=FN (one admin word: no spaces or line breaks)"))
		return
	}
	if err := a.readFunction(who, "show", fn); err != nil {
		writeError(w, err)
		return
	}
	limit, err := jobsLimit(r)
	if err != nil {
		writeError(w, err)
		return
	}
	self := a.self(who)
	self.Functions = a.functionsOf(who, fn)
	self.Jobs = []cluster.Job{}
	for _, j := range a.e.Jobs(who, fn, limit) {
		cj := cluster.Job{Handle: j.Handle, State: j.State.String(), Priority: j.Priority.String(), Unique: j.Unique,
			RunAt: cluster.Time(j.RunAt), Started: cluster.Time(j.Started)}
		if j.Worker >= 0 {
			id := j.Worker
			cj.Worker = &id
		}
		self.Jobs = append(self.Jobs, cj)
	}
	a.answerCluster(w, r, who, self, cluster.Query{Function: fn, Limit: limit})
}
