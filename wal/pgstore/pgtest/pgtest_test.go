package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func query(t *testing.T, dsn, q string) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var n int
	err = c.QueryRow(ctx, q).Scan(&n)
	return n, err
}

// A database of the shared server is fresh and usable.
func TestSharedDatabase(t *testing.T) {
	a, b := Database(t), Database(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	if _, err := query(t, a, "CREATE TABLE x (n int)"); err != nil && err != pgx.ErrNoRows {
		t.Fatal(err)
	}
	if n, err := query(t, b, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'"); err != nil || n != 0 {
		t.Fatalf("the second database sees %d tables x (%v)", n, err)
	}
}

// A private server stops, starts again on its port with its data, and survives a kill with
// fsync on.
func TestStopStartKill(t *testing.T) {
	s := New(t, Options{Fsync: true})
	dsn := s.NewDatabase(t)
	if _, err := query(t, dsn, "CREATE TABLE x AS SELECT 1 AS n"); err != nil && err != pgx.ErrNoRows {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(t, dsn, "SELECT 1"); err == nil {
		t.Fatal("a stopped server answers")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if n, err := query(t, dsn, "SELECT n FROM x"); err != nil || n != 1 {
		t.Fatalf("after stop, start, kill and start: %d, %v", n, err)
	}
}
