package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// command is one admin line and what its answer fills in.
type command struct {
	line  string
	parse func(n *Node, lines []string) error
	// optional: a node that does not know the command (gearmand) is not down for it.
	optional bool
	// refusable: nor is a node that refuses it (an ACL that grants status but not
	// prioritystatus): what it gives is then left out.
	refusable bool
}

// commands are what q asks of a node, in the order they are written.
func (q Query) commands() []command {
	cmds := []command{{line: "show node", parse: parseNode, optional: true}}
	if q.Functions || q.Function != "" {
		keep := q.Function
		cmds = append(cmds,
			command{line: "status", parse: func(n *Node, lines []string) error { return parseStatus(n, lines, keep) }},
			command{line: "prioritystatus", parse: parsePriorityStatus, refusable: true})
	}
	if q.Workers {
		cmds = append(cmds, command{line: "workers", parse: parseWorkers})
	}
	if q.Function != "" {
		line := "show jobs " + q.Function
		if q.Limit > 0 {
			line += " " + strconv.Itoa(q.Limit)
		}
		cmds = append(cmds, command{line: line, parse: parseJobs})
	}
	if q.AllJobs {
		cmds = append(cmds, command{line: "show jobs", parse: parseAllJobs})
	}
	return cmds
}

// errTooManyReads is a read that found no free slot in time.
var errTooManyReads = errors.New("too many cluster reads under way on this node")

// read does one node's read under ctx (which carries the deadline).
func (r *Reader) read(ctx context.Context, addr string, q Query) Node {
	n := Node{Addr: addr}
	if q.Function != "" && !oneWord(q.Function) {
		n.Error = fmt.Sprintf("function %q: not one admin word", q.Function)
		return n
	}
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
		n.Error = errTooManyReads.Error()
		return n
	}
	err := r.exchange(ctx, addr, q, &n)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v", r.opts.Timeout)
		}
		return Node{Addr: addr, Name: n.Name, Error: err.Error()}
	}
	n.Up = true
	return n
}

// exchange writes q's commands to addr and parses their answers into n.
func (r *Reader) exchange(ctx context.Context, addr string, q Query, n *Node) error {
	conn, err := r.opts.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A caller leaving (or the timeout) must not leave this read blocked.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cmds := q.commands()
	var out strings.Builder
	for _, c := range cmds {
		out.WriteString(c.line + "\r\n")
	}
	if _, err := io.WriteString(conn, out.String()); err != nil {
		return err
	}
	br := bufio.NewReaderSize(&capped{r: conn, left: r.opts.MaxReply, max: r.opts.MaxReply}, 32<<10)
	hasNode := false
	for _, c := range cmds {
		lines, err := readList(br)
		var se *serverError
		switch {
		case errors.As(err, &se) && (c.refusable || c.optional && se.unknownCommand()):
			continue
		case err != nil:
			return fmt.Errorf("%s: %w", c.line, err)
		}
		if err := c.parse(n, lines); err != nil {
			return fmt.Errorf("%s: %w", c.line, err)
		}
		hasNode = hasNode || c.line == "show node"
	}
	if !hasNode {
		// gearmand: the totals from its functions, where they were read.
		for _, f := range n.Functions {
			n.Totals.Functions++
			n.Totals.Queued += f.Total - f.Running
			n.Totals.Running += f.Running
		}
	}
	return nil
}

// serverError is an "ERR CODE text" answer.
type serverError struct{ code, text string }

func (e *serverError) Error() string { return "ERR " + e.code + " " + e.text }

// unknownCommand: what gearmand answers a command (or a show) it does not have.
func (e *serverError) unknownCommand() bool {
	return e.code == "UNKNOWN_COMMAND" || e.code == "UNKNOWN_SHOW_ARGUMENTS"
}

// readList reads one listing's lines up to ".", or its one ERR line.
func readList(br *bufio.Reader) ([]string, error) {
	var lines []string
	for first := true; ; first = false {
		l, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the node closed the connection")
			}
			return nil, err
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if first && (l == "ERR" || strings.HasPrefix(l, "ERR ")) {
			code, text, _ := strings.Cut(strings.TrimPrefix(l, "ERR "), " ")
			return nil, &serverError{code, strings.ReplaceAll(text, "+", " ")}
		}
		if l == "." {
			return lines, nil
		}
		lines = append(lines, l)
	}
}

// capped reads at most max bytes in all, then fails.
type capped struct {
	r         io.Reader
	left, max int
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("the answer is larger than %d bytes", c.max)
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}

// oneWord reports whether s can be sent as one admin word.
func oneWord(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n\x00")
}

func parseNode(n *Node, lines []string) error {
	for _, l := range lines {
		k, v, ok := strings.Cut(l, "\t")
		if !ok {
			return fmt.Errorf("line %q is not KEY \\t VALUE", l)
		}
		v = Unescape(v)
		num := func() int { i, _ := strconv.Atoi(v); return i }
		count := func() uint64 { u, _ := strconv.ParseUint(v, 10, 64); return u }
		switch k {
		case "name":
			n.Name = v
		case "version":
			n.Version = v
		case "started":
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				n.Started = Time(t)
			}
		case "uptime":
			n.UptimeS, _ = strconv.ParseFloat(v, 64)
		case "connections":
			n.Totals.Connections = num()
		case "functions":
			n.Totals.Functions = num()
		case "queued":
			n.Totals.Queued = num()
		case "running":
			n.Totals.Running = num()
		case "workers":
			n.Totals.Workers = num()
		case "submitted":
			n.Totals.Submitted = count()
		case "completed":
			n.Totals.Completed = count()
		case "failed":
			n.Totals.Failed = count()
		case "retried":
			n.Totals.Retried = count()
		case "dead_lettered":
			n.Totals.DeadLettered = count()
		case "unclaimed":
			n.Totals.Unclaimed = num()
		case "peer":
			n.Peers = append(n.Peers, v)
		}
	}
	if n.Peers == nil {
		n.Peers = []string{}
	}
	return nil
}

// parseStatus reads FN TOTAL RUNNING WORKERS lines; only function fn's when fn is given.
func parseStatus(n *Node, lines []string, fn string) error {
	n.Functions = make([]Function, 0, len(lines))
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			return fmt.Errorf("line %q is not FUNCTION TOTAL RUNNING WORKERS", l)
		}
		if fn != "" && f[0] != fn {
			continue
		}
		n.Functions = append(n.Functions, Function{Name: f[0], Total: atoi(f[1]), Running: atoi(f[2]), Workers: atoi(f[3])})
	}
	return nil
}

// parsePriorityStatus adds FN HIGH NORMAL LOW WORKERS to the functions parseStatus read.
func parsePriorityStatus(n *Node, lines []string) error {
	index := make(map[string]int, len(n.Functions))
	for i, f := range n.Functions {
		index[f.Name] = i
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 5 {
			return fmt.Errorf("line %q is not FUNCTION HIGH NORMAL LOW WORKERS", l)
		}
		if i, ok := index[f[0]]; ok {
			n.Functions[i].Queued = Queued{atoi(f[1]), atoi(f[2]), atoi(f[3])}
		}
	}
	return nil
}

// parseWorkers keeps the connections registered for a function.
func parseWorkers(n *Node, lines []string) error {
	n.Workers = []Worker{}
	for _, l := range lines {
		if w := ParseWorker(l); len(w.Functions) > 0 {
			n.Workers = append(n.Workers, w)
		}
	}
	return nil
}

// ParseWorker reads a `workers` line: "FD IP CLIENT-ID[ draining] : FN FN...". The client
// id may hold spaces (and an IPv6 address colons), so the separator is the first " :" that
// ends a word.
func ParseWorker(l string) Worker {
	fd, rest, _ := strings.Cut(l, " ")
	ip, rest, _ := strings.Cut(rest, " ")
	id, fns := rest, ""
	for i := 0; i+2 <= len(rest); i++ {
		if rest[i] == ' ' && rest[i+1] == ':' && (i+2 == len(rest) || rest[i+2] == ' ') {
			id, fns = rest[:i], rest[i+2:]
			break
		}
	}
	w := Worker{ID: atoi(fd), IP: ip, ClientID: id, Functions: strings.Fields(fns)}
	if id, ok := strings.CutSuffix(w.ClientID, " draining"); ok {
		w.ClientID, w.Draining = id, true
	}
	if w.Functions == nil {
		w.Functions = []string{}
	}
	return w
}

func parseJobs(n *Node, lines []string) error {
	n.Jobs = make([]Job, 0, len(lines))
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 7 {
			return fmt.Errorf("line %q is not HANDLE STATE PRIORITY UNIQUE RUN_AT STARTED WORKER", l)
		}
		j := Job{Handle: Unescape(f[0]), State: f[1], Priority: f[2], Unique: Unescape(f[3]), RunAt: timeOf(f[4]), Started: timeOf(f[5])}
		if id, err := strconv.Atoi(f[6]); err == nil {
			j.Worker = &id
		}
		n.Jobs = append(n.Jobs, j)
	}
	return nil
}

func parseAllJobs(n *Node, lines []string) error {
	n.AllJobs = make([]HeldJob, 0, len(lines))
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			return fmt.Errorf("line %q is not HANDLE RETRIES IGNORE PERSISTED", l)
		}
		n.AllJobs = append(n.AllJobs, HeldJob{Handle: f[0], Retries: atoi(f[1]), Ignored: f[2] == "1", Persisted: f[3] == "1"})
	}
	return nil
}

func timeOf(s string) Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Time{}
	}
	return Time(t)
}

func atoi(s string) int { n, _ := strconv.Atoi(strings.TrimSpace(s)); return n }

// Unescape undoes the server's \xNN escapes of control bytes and backslashes in a field.
func Unescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
