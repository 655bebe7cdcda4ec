package wal

import (
	"log/slog"
	"testing"
)

// benchPut measures Put from many goroutines at once, each waiting for its job to be
// acknowledged before submitting the next, as connections waiting for JOB_CREATED do. With
// SyncAlways the committer groups whatever arrived during one fsync into the next batch (group
// commit), so throughput grows with the number of submitters while each still waits for a
// sync. jobs/s is acknowledged Puts per second of wall time.
func benchPut(b *testing.B, mode SyncMode) {
	l, rec, err := Open(Options{Dir: b.TempDir(), Sync: mode, Logger: slog.New(slog.DiscardHandler), MinFreeBytes: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if len(rec.Jobs) != 0 {
		b.Fatalf("fresh log holds %d records", len(rec.Jobs))
	}
	data := make([]byte, 64)
	// 32 submitters per CPU: enough concurrent jobs for batches to form even on small machines.
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// One acknowledgement per submitter, reused: the submitter waits for it each time.
		var r Record
		acked := make(chan error, 1)
		done := ackFunc(func(err error) { acked <- err })
		for pb.Next() {
			// The key is the sequence number; a fixed handle keeps the benchmark's own
			// allocations out of the figures.
			seq, err := l.NextSeq()
			if err != nil {
				b.Error(err)
				return
			}
			r = Record{Seq: seq, Handle: "H:bench", Function: "bench", Data: data}
			if err := l.Put(r, done); err != nil {
				b.Error(err)
				return
			}
			if err := <-acked; err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkPutSyncAlways: every acknowledged Put is fsynced (the default, --sync always).
func BenchmarkPutSyncAlways(b *testing.B) { benchPut(b, SyncAlways) }

// BenchmarkPutSyncNone: acknowledged once written to the OS (--sync none): the committer's and
// Pebble's own cost without the disk's.
func BenchmarkPutSyncNone(b *testing.B) { benchPut(b, SyncNone) }
