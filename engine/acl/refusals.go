package acl

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/spur-gearman/spur/engine"
)

// Refusals logs refusals, one line each, at most a few lines per second so that a client
// hammering a refused request cannot fill the disk. Lines beyond the rate are counted and
// the count is logged with the next line that is written ("suppressed": N), or on its own
// within a second once the flood stops. Note never blocks the caller: lines are written by
// one goroutine of Refusals, and when that falls behind, lines are counted as suppressed.
type Refusals struct {
	log   *slog.Logger
	rate  float64 // lines per second
	burst float64
	now   func() time.Time // replaced by tests

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed uint64
	closed     bool

	lines chan refusal
	stop  chan struct{}
	done  chan struct{}
}

// refusal is one line to write; suppressed lines carry only a count.
type refusal struct {
	who        string
	ip         string
	action     string
	name       string
	reason     error
	suppressed uint64
}

// NewRefusals logs through log at most perSecond lines per second (10 if perSecond <= 0),
// with bursts of as many. Close it to stop its goroutine.
func NewRefusals(log *slog.Logger, perSecond int) *Refusals {
	r := newRefusals(log, perSecond, time.Now)
	go r.run(time.Second)
	return r
}

func newRefusals(log *slog.Logger, perSecond int, now func() time.Time) *Refusals {
	if perSecond <= 0 {
		perSecond = 10
	}
	return &Refusals{
		log:    log,
		rate:   float64(perSecond),
		burst:  float64(perSecond),
		now:    now,
		tokens: float64(perSecond),
		last:   now(),
		lines:  make(chan refusal, 2*perSecond),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// take spends one token if the bucket has one; r.mu is held.
func (r *Refusals) take() bool {
	now := r.now()
	if el := now.Sub(r.last).Seconds(); el > 0 {
		r.tokens = min(r.burst, r.tokens+el*r.rate)
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// Note logs one refusal of act on name to id, err being why (Allow's error). It does not
// allocate when the line is suppressed.
func (r *Refusals) Note(id *engine.Identity, act engine.Action, name []byte, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if !r.take() {
		r.suppressed++
		return
	}
	l := refusal{ip: id.IP, action: act.String(), reason: err, suppressed: r.suppressed}
	if d, ok := err.(*Denied); ok {
		l.who, l.name = d.Who(), d.Name
	} else {
		l.who, l.name = id.IP, string(name)
		if id.Name != "" {
			l.who = "cert:" + id.Name + " from " + id.IP
		}
	}
	select {
	case r.lines <- l:
		r.suppressed = 0
	default:
		r.suppressed++ // the writer is behind (a slow log): never wait for it
	}
}

// flush logs the count of suppressed lines when there is one and the rate allows.
func (r *Refusals) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.suppressed == 0 || !r.take() {
		return
	}
	select {
	case r.lines <- refusal{suppressed: r.suppressed}:
		r.suppressed = 0
	default:
	}
}

func (r *Refusals) run(every time.Duration) {
	defer close(r.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case l := <-r.lines:
			r.write(l)
		case <-tick.C:
			r.flush()
		case <-r.stop:
			r.drain()
			return
		}
	}
}

// drain writes what is queued, and the count of what was not, after Close.
func (r *Refusals) drain() {
	for {
		select {
		case l := <-r.lines:
			r.write(l)
		default:
			if r.suppressed > 0 { // closed: no Note touches it any more
				r.write(refusal{suppressed: r.suppressed})
				r.suppressed = 0
			}
			return
		}
	}
}

func (r *Refusals) write(l refusal) {
	if l.action == "" {
		r.log.LogAttrs(context.Background(), slog.LevelWarn, "refusals not logged",
			slog.Uint64("suppressed", l.suppressed))
		return
	}
	attrs := []slog.Attr{
		slog.String("identity", l.who),
		slog.String("remote", l.ip),
		slog.String("action", l.action),
		slog.String("name", l.name),
		slog.String("reason", l.reason.Error()),
	}
	if l.suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", l.suppressed))
	}
	r.log.LogAttrs(context.Background(), slog.LevelWarn, "request refused", attrs...)
}

// Close writes what is queued and stops the goroutine; later Notes are dropped.
func (r *Refusals) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	<-r.done
}
