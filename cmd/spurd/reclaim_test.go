package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spur-gearman/spur/wal"
)

// drained is an engine whose backlog has always just drained: every tick compacts.
type drained struct{}

func (drained) PeakJobs() (peak, now int) { return 1_000_000, 0 }

// slowStore is a job log whose compactions take a while and which notices being closed
// while one runs.
type slowStore struct {
	compacting atomic.Int32
	started    chan struct{}
	once       sync.Once
	closed     atomic.Bool
	overlap    atomic.Bool // Close ran during a compaction, or a compaction after Close
	closeErr   error
}

func (s *slowStore) Compact(ctx context.Context) error {
	s.compacting.Add(1)
	defer s.compacting.Add(-1)
	if s.closed.Load() {
		s.overlap.Store(true)
	}
	s.once.Do(func() { close(s.started) })
	select {
	case <-ctx.Done():
	case <-time.After(50 * time.Millisecond):
	}
	time.Sleep(10 * time.Millisecond) // a compaction finishes its step even when interrupted
	if s.closed.Load() {
		s.overlap.Store(true)
	}
	return ctx.Err()
}

func (s *slowStore) Close() error {
	if s.compacting.Load() > 0 {
		s.overlap.Store(true)
	}
	s.closed.Store(true)
	return s.closeErr
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The shutdown order: the reclaimer is stopped and waited for before the job log closes, and
// a failing close is reported (serve returns it; run prints it and exits 1).
func TestStorageStopsReclaimerBeforeClosingTheLog(t *testing.T) {
	s := &slowStore{started: make(chan struct{}), closeErr: errors.New("disk on fire")}
	r := startReclaimer(drained{}, s, time.Millisecond, quiet())
	select {
	case <-s.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the reclaimer never compacted")
	}
	err := stopStorage(r, s.Close)
	if s.overlap.Load() {
		t.Fatal("the job log was closed while a compaction ran")
	}
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("stopStorage: %v, want the close error", err)
	}
	time.Sleep(20 * time.Millisecond)
	if s.overlap.Load() || s.compacting.Load() != 0 {
		t.Fatal("a compaction ran after Close")
	}
	// Without a store there is only the reclaimer to stop.
	if err := stopStorage(startReclaimer(drained{}, nil, time.Millisecond, quiet()), nil); err != nil {
		t.Fatal(err)
	}
}

// The same against a real job log, whose Pebble database panics when compacted after Close.
func TestStorageShutdownWithRealLogUnderCompaction(t *testing.T) {
	for round := 0; round < 10; round++ {
		l, _, err := wal.Open(wal.Options{Dir: t.TempDir(), Sync: wal.SyncNone, Logger: quiet(), MinFreeBytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i++ {
			seq, err := l.NextSeq()
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Put(wal.Record{Seq: seq, Handle: "h", Function: "f", Data: make([]byte, 200)}, nil); err != nil {
				t.Fatal(err)
			}
			if err := l.Delete(seq); err != nil {
				t.Fatal(err)
			}
		}
		r := startReclaimer(drained{}, l, time.Millisecond, quiet())
		time.Sleep(time.Duration(round) * 3 * time.Millisecond)
		if err := stopStorage(r, l.Close); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}
