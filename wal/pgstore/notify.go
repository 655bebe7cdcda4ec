package pgstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Wake-ups of idle nodes and the schedule leader: each on a dedicated connection of its
// own, apart from the pool (a LISTEN and a session advisory lock belong to one session).

// OnReady has f told the functions of new jobs other nodes committed unheld (LISTEN
// spur_ready: the committer of every node sends one notification per batch holding such
// jobs), and told nil — look at every function — every Poll period, after (re)connecting,
// and when a notification lists no function (the poll fallback: a notification is lost
// while the connection is down). f runs on the listener's goroutine, one call at a time; it
// may block, which delays the next call. The first call starts the listener; a later one
// replaces f.
func (s *Store) OnReady(f func(fns []string)) {
	s.hooksMu.Lock()
	start := s.onReady == nil
	s.onReady = f
	s.hooksMu.Unlock()
	if start {
		s.startBackground(s.listenLoop)
	}
}

// OnLeader has f told when this node becomes the schedule leader (true) and when it stops
// being one (false). One node at a time holds a session advisory lock on a dedicated
// connection, tried every Poll; the holder pings its connection every Poll and, when that
// fails, is told false (its session, and so the lock, is gone or going). A node that dies
// loses its session, and another takes the lock within a poll or two. Close gives the lock
// up and tells f false. The first call starts the contest; a later one replaces f.
func (s *Store) OnLeader(f func(leader bool)) {
	s.hooksMu.Lock()
	start := s.onLeader == nil
	s.onLeader = f
	s.hooksMu.Unlock()
	if start {
		s.startBackground(s.leaderLoop)
	}
}

// startBackground runs loop until Close, unless Close began.
func (s *Store) startBackground(loop func(ctx context.Context)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.bg.Add(1)
	go func() { defer s.bg.Done(); loop(s.ctx) }()
}

func (s *Store) ready(fns []string) {
	s.hooksMu.Lock()
	f := s.onReady
	s.hooksMu.Unlock()
	f(fns)
}

func (s *Store) leader(held bool) {
	s.hooksMu.Lock()
	f := s.onLeader
	s.hooksMu.Unlock()
	f(held)
}

// connect opens a connection of its own, with the pool's settings.
func (s *Store) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.CommitTimeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
}

// listenLoop listens for notifications until ctx is done, reconnecting after a failure,
// and polls every Poll whatever happens.
func (s *Store) listenLoop(ctx context.Context) {
	next := time.Now().Add(s.opts.Poll)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			c, err := s.connect(ctx)
			if err == nil {
				_, err = c.Exec(ctx, "LISTEN "+notifyChannel)
				if err == nil {
					_, err = c.Exec(ctx, "LISTEN "+changedChannel)
				}
				if err != nil {
					c.Close(context.Background())
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					s.log.Debug("cannot listen for other nodes' jobs; polling", "db", s.where, "error", err)
				}
				s.waitUntil(ctx, next)
				next = time.Now().Add(s.opts.Poll)
				if ctx.Err() == nil {
					s.ready(nil)
				}
				continue
			}
			conn = c
			s.ready(nil) // what was notified while not listening is polled for
			s.changed()
		}
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && (pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded)):
			next = time.Now().Add(s.opts.Poll)
			s.reapLapsed(ctx)
			s.ready(nil)
		case err != nil:
			conn.Close(context.Background())
			conn = nil
		case n.Channel == changedChannel:
			s.changed()
		default:
			if fns, own := parsePayload(n.Payload, s.opts.Node); !own {
				s.ready(fns)
			}
		}
	}
}

// waitUntil sleeps until t or ctx is done.
func (s *Store) waitUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// parsePayload reads a notification (see notifyPayload): its functions (nil when it lists
// none: look at every function), and whether this node sent it.
func parsePayload(payload, node string) (fns []string, own bool) {
	lines := strings.Split(payload, "\n")
	if lines[0] != "" && lines[0] == node {
		return nil, true
	}
	if len(lines) > 1 {
		fns = lines[1:]
	}
	return fns, false
}

// leaderLoop contends for the schedule leader's lock until ctx is done.
func (s *Store) leaderLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	var conn *pgx.Conn
	held := false
	drop := func() {
		// Told before the lock goes: a node giving up the lead stops firing schedules
		// before another can take it.
		if held {
			held = false
			s.leader(false)
		}
		if conn != nil {
			conn.Close(context.Background()) // ends the session: the lock goes with it
			conn = nil
		}
	}
	defer drop()
	var vacuumed time.Time // the last look at the jobs table's dead rows (vacuum.go)
	for {
		if conn == nil {
			if c, err := s.connect(ctx); err == nil {
				conn = c
			}
		}
		if conn != nil {
			qctx, cancel := context.WithTimeout(ctx, s.opts.CommitTimeout/2)
			var err error
			if held {
				err = conn.Ping(qctx)
			} else {
				var got bool
				if err = conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1)", lockLeader).Scan(&got); err == nil && got {
					held = true
					s.log.Info("this node is the schedule leader", "db", s.where)
					s.leader(true)
				}
			}
			cancel()
			if err == nil && held && time.Since(vacuumed) >= s.vacuumEvery {
				vacuumed = time.Now()
				if _, verr := s.vacuumJobs(ctx, conn); verr != nil && ctx.Err() == nil {
					s.log.Warn("cannot vacuum the jobs table", "db", s.where, "error", verr)
				}
			}
			if err != nil && ctx.Err() == nil {
				if held {
					s.log.Warn("lost the connection holding the schedule leadership", "db", s.where, "error", err)
				}
				drop()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
