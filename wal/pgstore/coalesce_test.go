package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/spur-gearman/spur/wal"
	"github.com/spur-gearman/spur/wal/pgstore/pgtest"
)

// A Put whose function and unique another node already queued is acknowledged with that
// job's handle (wal.Coalesced), and writes nothing; once that job is gone, the unique is
// free again. A Txn.PutJob of a new job whose unique is taken writes nothing either.
func TestUniqueCoalescesAcrossNodes(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	b, _ := openStore(t, dsn, "b")
	db := sqlDB(t, dsn)
	first := job(t, a, "f", "u")
	if err := put(t, a, first); err != nil {
		t.Fatal(err)
	}
	second := job(t, b, "f", "u")
	second.Shared = true
	var c *wal.Coalesced
	if err := put(t, b, second); !errors.As(err, &c) || c.Handle != first.Handle {
		t.Fatalf("b's Put of a's unique: %v, want coalesced onto %s", err, first.Handle)
	}
	other := job(t, b, "g", "u") // the same unique of another function is another job
	if err := put(t, b, other); err != nil {
		t.Fatal(err)
	}
	retried := job(t, b, "f", "u")
	if err := apply(t, b, func(t *wal.Txn) { t.PutJob(retried) }); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT count(*) FROM spur_jobs WHERE function = 'f'"); n != 1 {
		t.Fatalf("%d rows of f's unique, want 1", n)
	}
	if err := a.Delete(first.Seq); err != nil {
		t.Fatal(err)
	}
	barrier(t, a)
	if err := put(t, b, second); err != nil {
		t.Fatalf("b's Put once a's job is gone: %v", err)
	}
}

// Submitters on two nodes racing over the same uniques: each unique ends up as one row, and
// every submit of it is told that row's handle (its own, or the one it joined).
func TestUniqueRaceAcrossNodes(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, _ := openStore(t, dsn, "a")
	b, _ := openStore(t, dsn, "b")
	db := sqlDB(t, dsn)
	const uniques, rounds = 40, 6
	var mu sync.Mutex
	told := map[string]map[string]bool{} // unique -> handles submitters were given
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		s := []*Store{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				done := make(ackChan, uniques)
				recs := make([]wal.Record, uniques)
				for i := range recs {
					recs[i] = job(t, s, "race", fmt.Sprint("u", (i+w*7)%uniques))
					recs[i].Shared = w%4 == 0
					if err := s.Put(recs[i], done); err != nil {
						t.Error(err)
						return
					}
				}
				for i := range recs {
					err := waitAck(t, done)
					h := recs[i].Handle
					var c *wal.Coalesced
					if errors.As(err, &c) {
						h = c.Handle
					} else if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if told[recs[i].Unique] == nil {
						told[recs[i].Unique] = map[string]bool{}
					}
					told[recs[i].Unique][h] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if n := count(t, db, "SELECT count(*) FROM spur_jobs"); n != uniques {
		t.Fatalf("%d rows for %d uniques", n, uniques)
	}
	rows, err := db.Query(context.Background(), "SELECT uniq, handle FROM spur_jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var u, h []byte
		if err := rows.Scan(&u, &h); err != nil {
			t.Fatal(err)
		}
		if got := told[string(u)]; len(got) != 1 || !got[string(h)] {
			t.Errorf("unique %s is job %s; submitters were told %v", u, h, got)
		}
	}
}
