package pgstore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spur-gearman/spur/wal"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

// BenchmarkPut measures group-committed Puts: 256 submitters, each waiting for its own
// acknowledgement before its next Put (as a Gearman client waits for JOB_CREATED), 64-byte
// payloads, with and without a unique each. rows/s is what the store commits.
//
//	go test ./wal/pgstore -run '^$' -bench Put -benchtime 20000x
//
// fsync=off runs on the shared test server; fsync=on on a private one with PostgreSQL's
// defaults for durability (fsync, synchronous_commit, full_page_writes on).
func BenchmarkPut(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		for _, unique := range []bool{false, true} {
			b.Run(fmt.Sprintf("fsync=%v/unique=%v", fsync, unique), func(b *testing.B) {
				var dsn string
				if fsync {
					dsn = pgtest.New(b, pgtest.Options{Fsync: true}).NewDatabase(b)
				} else {
					dsn = pgtest.Database(b)
				}
				s, _ := openStore(b, dsn, "bench")
				benchPuts(b, s, unique)
			})
		}
	}
}

func benchPuts(b *testing.B, s *Store, unique bool) {
	const submitters = 256
	data := make([]byte, 64)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < submitters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(ackChan, 1)
			for next.Add(1) <= int64(b.N) {
				seq, err := s.NextSeq()
				if err != nil {
					failed.Add(1)
					return
				}
				r := wal.Record{Seq: seq, Handle: fmt.Sprint("H:b:", seq), Function: "bench", Priority: 1, Data: data}
				if unique {
					r.Unique = fmt.Sprint("u", seq)
				}
				if err := s.Put(r, done); err != nil {
					failed.Add(1)
					return
				}
				if err := <-done; err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d puts failed", n)
	}
	st := s.CommitStats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
	if st.Batches > 0 {
		b.ReportMetric(float64(st.Ops)/float64(st.Batches), "ops/batch")
		b.ReportMetric(float64(st.CommitSum.Microseconds())/float64(st.Batches)/1000, "ms/commit")
	}
}
