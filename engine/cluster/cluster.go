// Package cluster reads the nodes of a Spur cluster for the cluster view: each node through
// its Gearman text admin protocol on its Gearman port (the address its clients already use,
// spurd's --peer), every node in parallel, each read bounded by a timeout and a reply size.
// A node that does not answer in time, refuses, or answers something else is reported down
// with the reason, never left out. It runs on its callers' goroutines (HTTP handlers, the
// CLI), never on an event loop, and imports nothing of the server, so that the CLI carries
// no storage engine for it.
//
// # What one read asks
//
// One connection per node; the commands are written at once and their answers read in
// order (gearmand's reply style: lines, then ".\n"; or one "ERR CODE text" line):
//
//	+--------------------------+----------------------+---------------------------------------+
//	| command                  | when                 | gives                                 |
//	+--------------------------+----------------------+---------------------------------------+
//	| show node                | always               | name, version, start, uptime, totals, |
//	|                          |                      | peers (KEY \t VALUE lines)            |
//	| status                   | Functions, Function  | FN \t TOTAL \t RUNNING \t WORKERS     |
//	| prioritystatus           | Functions, Function  | FN \t HIGH \t NORMAL \t LOW \t WORKERS|
//	| workers                  | Workers              | FD IP CLIENT-ID [draining] : FN ...   |
//	| show jobs FN [N]         | Function (N = Limit) | HANDLE STATE PRIORITY UNIQUE RUN_AT   |
//	|                          |                      | STARTED WORKER, tab-separated         |
//	| show jobs                | AllJobs              | HANDLE RETRIES IGNORE PERSISTED       |
//	+--------------------------+----------------------+---------------------------------------+
//
// A node without `show node` (gearmand) is up without a name, its totals summed from
// `status`; one that refuses `prioritystatus` is up without the counts by priority. Any other
// refusal (ERR) makes the node down with it. Fields escaped by the server as \xNN are
// unescaped.
//
// # Bounds
//
//   - Options.Timeout (default 1 s) bounds a node's whole read: connect, TLS handshake and
//     every answer. Past it the node is down: "no answer within 1s".
//   - Options.MaxReply (default 64 MiB) bounds the bytes read from one node.
//   - Options.MaxReads (default 64) bounds the reads under way at once through one Reader;
//     a read that finds no free slot within its timeout reports its node down.
//   - Reads of the same node and query that overlap are one read: a hundred dashboards
//     polling a cluster cost each peer one read at a time, not a hundred.
package cluster

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultTimeout  = time.Second
	DefaultMaxReply = 64 << 20
	DefaultMaxReads = 64
)

// Options say how nodes are reached.
type Options struct {
	// Dial connects to a node's Gearman address; nil dials TCP, over TLS with TLS set.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// TLS, when set (and Dial is nil), makes every connection TLS with this configuration;
	// its ServerName, when empty, is each address's host.
	TLS      *tls.Config
	Timeout  time.Duration // one node's whole read; default DefaultTimeout
	MaxReply int           // bytes read from one node; default DefaultMaxReply
	MaxReads int           // reads under way at once; default DefaultMaxReads
}

// Query says what to read of each node besides `show node`.
type Query struct {
	Functions bool   // every function's counts (status, prioritystatus)
	Workers   bool   // the worker connections (workers)
	Function  string // this function's counts and jobs (status, prioritystatus, show jobs FN)
	Limit     int    // with Function: list at most this many of its jobs; 0 = all of them
	AllJobs   bool   // every job, as `show jobs` lists them
}

// Node is one node as read: who it is, whether it answered, and what the query asked.
// Slices of a Node returned by a Reader may be shared with other callers: never modify
// them (Only returns a filtered copy).
type Node struct {
	Name    string   `json:"name"` // its NodeName; "" when it never said (down, or gearmand)
	Addr    string   `json:"addr"` // its Gearman address, as given
	Self    bool     `json:"self"` // the node that was asked for the view
	Up      bool     `json:"up"`
	Error   string   `json:"error"` // why it is down; "" when up
	Version string   `json:"version"`
	Started Time     `json:"started_at"`
	UptimeS float64  `json:"uptime_s"`
	Peers   []string `json:"peers"`
	Totals  Totals   `json:"totals"`
	// What the query asked for; absent when it did not.
	Functions []Function `json:"functions,omitzero"`
	Workers   []Worker   `json:"workers,omitzero"`
	Jobs      []Job      `json:"jobs,omitzero"`
	AllJobs   []HeldJob  `json:"all_jobs,omitzero"`
}

// Totals are a node's counts (`show node`): of the functions the reader may read.
type Totals struct {
	Connections  int    `json:"connections"`
	Functions    int    `json:"functions"`
	Queued       int    `json:"queued"` // waiting for a worker or for their time
	Running      int    `json:"running"`
	Workers      int    `json:"workers"` // connections registered for a function
	Submitted    uint64 `json:"submitted"`
	Completed    uint64 `json:"completed"`
	Failed       uint64 `json:"failed"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
	// Unclaimed counts a shared store's jobs no node holds (in nobody's Queued). Every
	// node of one store reports the same figure: the sum takes the largest, once.
	Unclaimed int `json:"unclaimed,omitempty"`
}

// Function is one function's counts on a node (status and prioritystatus).
type Function struct {
	Name    string `json:"name"`
	Total   int    `json:"total"` // queued (scheduled ones included) and running
	Running int    `json:"running"`
	Workers int    `json:"workers"`
	Queued  Queued `json:"queued"`
}

// Queued counts a function's waiting jobs by priority.
type Queued struct {
	High   int `json:"high"`
	Normal int `json:"normal"`
	Low    int `json:"low"`
}

// Worker is one worker connection (workers): ID is what `drain worker` takes on its node.
type Worker struct {
	ID        int      `json:"id"`
	IP        string   `json:"ip"`
	ClientID  string   `json:"client_id"`
	Draining  bool     `json:"draining"`
	Functions []string `json:"functions"`
}

// Job is one live job of a function (show jobs FN).
type Job struct {
	Handle   string `json:"handle"`
	State    string `json:"state"` // queued, scheduled, running
	Priority string `json:"priority"`
	Unique   string `json:"unique"`
	RunAt    Time   `json:"run_at"`
	Started  Time   `json:"started_at"`
	Worker   *int   `json:"worker"` // the Worker.ID holding it; null unless running
}

// HeldJob is one job as `show jobs` lists every job of a node.
type HeldJob struct {
	Handle    string `json:"handle"`
	Retries   int    `json:"retries"`
	Ignored   bool   `json:"ignored"` // cancelled or abandoned, dropped when reached
	Persisted bool   `json:"persisted"`
}

// Time is a time as the JSON API writes it: RFC 3339 with milliseconds in UTC; null when
// zero.
type Time time.Time

func (t Time) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`), nil
}

func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var v time.Time
	if err := v.UnmarshalJSON(b); err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// Reader reads nodes. Safe for concurrent use; one serves every request of a process.
type Reader struct {
	opts  Options
	slots chan struct{}

	mu      sync.Mutex // guards flights; a leaf
	flights map[flightKey]*flight
}

type flightKey struct {
	addr string
	q    Query
}

// flight is one read under way; every caller asking the same waits for its node.
type flight struct {
	done chan struct{}
	node Node
}

// New returns a Reader with opts.
func New(opts Options) *Reader {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxReply <= 0 {
		opts.MaxReply = DefaultMaxReply
	}
	if opts.MaxReads <= 0 {
		opts.MaxReads = DefaultMaxReads
	}
	if opts.Dial == nil {
		opts.Dial = dialer(opts.TLS)
	}
	return &Reader{opts: opts, slots: make(chan struct{}, opts.MaxReads), flights: map[flightKey]*flight{}}
}

// Timeout is how long one node's read may take.
func (r *Reader) Timeout() time.Duration { return r.opts.Timeout }

// Read reads every node of addrs at once and returns them in the order of addrs, each up
// or down, within about the Reader's timeout (sooner when ctx ends: the nodes not read by
// then are down with ctx's error).
func (r *Reader) Read(ctx context.Context, addrs []string, q Query) []Node {
	out := make([]Node, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() { out[i] = r.ReadNode(ctx, addr, q) })
	}
	wg.Wait()
	return out
}

// ReadNode reads one node; a read of the same node and query already under way is joined.
func (r *Reader) ReadNode(ctx context.Context, addr string, q Query) Node {
	key := flightKey{addr, q}
	r.mu.Lock()
	f := r.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		r.flights[key] = f
		// On a goroutine of its own and under its own timeout: the caller that started it
		// may leave, the others still get its answer.
		go r.fly(key, f)
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.node
	case <-ctx.Done():
		return Node{Addr: addr, Error: ctx.Err().Error()}
	}
}

func (r *Reader) fly(key flightKey, f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	f.node = r.read(ctx, key.addr, key.q)
	r.mu.Lock()
	delete(r.flights, key)
	r.mu.Unlock()
	close(f.done)
}

func dialer(cfg *tls.Config) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		if cfg == nil {
			return d.DialContext(ctx, "tcp", addr)
		}
		c := cfg.Clone()
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(addr)
		}
		return (&tls.Dialer{NetDialer: &d, Config: c}).DialContext(ctx, "tcp", addr)
	}
}

// Only returns n with the functions keep refuses left out: their counts, the workers'
// registrations for them (a worker left with none is left out) and their jobs. The totals
// stay the node's.
func (n Node) Only(keep func(fn string) bool) Node {
	if keep == nil {
		return n
	}
	if n.Functions != nil {
		fns := make([]Function, 0, len(n.Functions))
		for _, f := range n.Functions {
			if keep(f.Name) {
				fns = append(fns, f)
			}
		}
		n.Functions = fns
	}
	if n.Workers != nil {
		ws := make([]Worker, 0, len(n.Workers))
		for _, w := range n.Workers {
			var fns []string
			for _, fn := range w.Functions {
				if keep(fn) {
					fns = append(fns, fn)
				}
			}
			if len(fns) > 0 {
				w.Functions = fns
				ws = append(ws, w)
			}
		}
		n.Workers = ws
	}
	return n
}
