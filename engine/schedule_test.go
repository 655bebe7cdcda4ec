package engine

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spur-gearman/spur/codec"
	"github.com/spur-gearman/spur/wal"
)

// Recurring schedules (schedule.go), against an injected wall clock.

// fakeClock is a wall clock a test sets.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func startScheduled(t *testing.T, start string) (*Engine, string, *fakeClock) {
	clk := &fakeClock{t: at(start)}
	e, addr := startEngine(t, Config{Clock: clk.Now}, 1)
	return e, addr, clk
}

// addSchedule runs `schedule add ARGS` and returns the new schedule's handle.
func addSchedule(t *testing.T, adm *client, args string) string {
	t.Helper()
	got := adm.admin("schedule add " + args)
	if !strings.HasPrefix(got, "OK H:test:") || !strings.HasSuffix(got, "\n") {
		t.Fatalf("schedule add %s: %q", args, got)
	}
	return strings.TrimSuffix(strings.TrimPrefix(got, "OK "), "\n")
}

func TestScheduleFiresCoalescesPausesRunsAndDeletes(t *testing.T) {
	e, addr, clk := startScheduled(t, "2026-06-01T11:59:30Z")
	adm, w := dial(t, addr), dial(t, addr)
	h := addSchedule(t, adm, "report */5 * * * * tz=UTC unique=nightly priority=high data=hello  world")
	adm.expectAdmin("show schedules", h+"\treport\tnightly\t*/5 * * * *\tUTC\t2026-06-01T12:00:00Z\t-\thigh\tactive\n.\n")
	adm.expectAdmin("show scheduled", h+"\treport\tnightly\t"+strconv.FormatInt(at("2026-06-01T12:00:00Z").Unix(), 10)+"\t2026-06-01T12:00:00Z\thigh\t*/5 * * * *\n.\n")

	e.fireDue(at("2026-06-01T11:59:59Z")) // not due yet
	adm.expectAdmin("status", ".\n")
	clk.Set(at("2026-06-01T12:00:00Z"))
	e.fireDue(clk.Now())
	w.canDo("report")
	job, fn, unique, data := w.grab()
	if job == h || fn != "report" || unique != "nightly" || data != "hello  world" {
		t.Fatalf("the firing queued %s %s %q %q", job, fn, unique, data)
	}
	adm.expectAdmin("show schedules", h+"\treport\tnightly\t*/5 * * * *\tUTC\t2026-06-01T12:05:00Z\t2026-06-01T12:00:00Z\thigh\tactive\n.\n")

	// The next firing comes while that run is still running: it coalesces, no overlap.
	clk.Set(at("2026-06-01T12:05:00Z"))
	e.fireDue(clk.Now())
	adm.expectAdmin("status", "report\t1\t1\t1\n.\n")
	w.send(codec.WorkComplete, job, "")
	w.syncEcho()

	adm.expectAdmin("schedule pause "+h, "OK\r\n")
	e.fireDue(at("2026-06-01T12:10:00Z"))
	adm.expectAdmin("status", "report\t0\t0\t1\n.\n")
	adm.expectAdmin("show scheduled", ".\n")
	adm.expectAdmin("schedule run "+h, "OK\r\n") // runs now, paused or not
	adm.expectAdmin("status", "report\t1\t0\t1\n.\n")
	if got := adm.admin("show schedules"); !strings.HasSuffix(got, "\thigh\tpaused\n.\n") || !strings.Contains(got, "\t-\t2026-06-01T12:05:00Z\t") {
		t.Fatalf("show schedules of a paused schedule: %q", got)
	}
	clk.Set(at("2026-06-01T12:11:00Z"))
	adm.expectAdmin("schedule resume "+h, "OK\r\n")
	if got := adm.admin("show schedules"); !strings.Contains(got, "\t2026-06-01T12:15:00Z\t") || !strings.HasSuffix(got, "\tactive\n.\n") {
		t.Fatalf("show schedules after resume: %q", got)
	}
	adm.expectAdmin("schedule delete "+h, "OK\r\n")
	adm.expectAdmin("show schedules", ".\n")
	adm.expectAdmin("schedule delete "+h, "ERR UNKNOWN_JOB\r\n")
	adm.expectAdmin("schedule pause H:test:999", "ERR UNKNOWN_JOB\r\n")

	// cancel job with a schedule's handle deletes the schedule.
	h2 := addSchedule(t, adm, "report @hourly")
	adm.expectAdmin("cancel job "+h2, "OK\r\n")
	adm.expectAdmin("show schedules", ".\n")
}

// Without a unique a schedule's runs coalesce on its handle: a firing while the last run
// still waits adds nothing.
func TestScheduleWithoutUniqueDoesNotOverlap(t *testing.T) {
	e, addr, _ := startScheduled(t, "2026-06-01T11:59:30Z")
	adm := dial(t, addr)
	addSchedule(t, adm, "f * * * * * tz=UTC")
	for m := 0; m < 3; m++ {
		e.fireDue(at("2026-06-01T12:00:00Z").Add(time.Duration(m) * time.Minute))
	}
	adm.expectAdmin("status", "f\t1\t0\t0\n.\n")
}

// The timer path: the scheduler sleeps until the injected clock says the firing is due.
func TestScheduleTimerFiresOnTheWallClock(t *testing.T) {
	_, addr, clk := startScheduled(t, "2026-06-01T11:59:59.8Z")
	adm, w := dial(t, addr), dial(t, addr)
	addSchedule(t, adm, "tick * * * * * tz=UTC data=x")
	w.canDo("tick")
	time.Sleep(50 * time.Millisecond)
	clk.Set(at("2026-06-01T12:00:00Z")) // the timer, due ~200 ms after the add, finds it due
	if _, data := w.grabWithin(3 * time.Second); data != "x" {
		t.Fatalf("timer firing queued %q", data)
	}
}

func TestSubmitJobSched(t *testing.T) {
	_, addr, _ := startScheduled(t, "2026-06-01T11:59:30Z") // a Monday
	c, adm := dial(t, addr), dial(t, addr)
	// Weekday 0 is Monday in gearmand's PROTOCOL numbering: stored as cron's 1.
	c.send(codec.SubmitJobSched, "weekly", "w1", "0", "9", "", "", "0", "payload")
	h := c.expect(codec.JobCreated).args[0]
	got := adm.admin("show schedules")
	if !strings.HasPrefix(got, h+"\tweekly\tw1\t0 9 * * 1\t-\t") || !strings.HasSuffix(got, "\t-\tnormal\tactive\n.\n") {
		t.Fatalf("show schedules: %q", got)
	}
	c.send(codec.SubmitJobSched, "weekly", "", "61", "", "", "", "", "d")
	c.expectErrorPacket("INVALID_ARGUMENT", `cron: minute "61": out of range 0-59`)
	c.send(codec.SubmitJobSched, "weekly", "", "", "", "", "", "7", "d")
	p := c.recv()
	if p.typ != codec.Error || !strings.HasPrefix(string(p.body), "INVALID_ARGUMENT\x00cron: ") {
		t.Fatalf("weekday 7 with Monday = 0: %v", p)
	}
	c.syncEcho()
}

func TestScheduleAddErrors(t *testing.T) {
	_, addr, _ := startScheduled(t, "2026-06-01T11:59:30Z")
	adm := dial(t, addr)
	for args, want := range map[string]string{
		"f * * * *":                                  "ERR INVALID_ARGUMENTS schedule:+want+five+cron+fields+(MIN+HOUR+DOM+MON+DOW)+or+a+@macro\r\n",
		"f 60 * * * *":                               `ERR INVALID_ARGUMENTS schedule:+cron:+minute+"60":+out+of+range+0-59` + "\r\n",
		"f @daily tz=Mars/Olympus":                   `ERR QUEUE_ERROR unknown+time+zone+"Mars/Olympus"` + "\r\n",
		"f @daily color=red":                         `ERR INVALID_ARGUMENTS schedule:+unknown+option+"color"` + "\r\n",
		"f @daily priority=urgent":                   `ERR INVALID_ARGUMENTS schedule:+priority+"urgent":+want+high,+normal+or+low` + "\r\n",
		"f @daily stray":                             `ERR INVALID_ARGUMENTS schedule:+"stray":+want+tz=,+unique=,+priority=+or+data=` + "\r\n",
		"f @daily unique=" + strings.Repeat("u", 65): "ERR QUEUE_ERROR Unique+value+too+large\r\n",
	} {
		if got := adm.admin("schedule add " + args); got != want {
			t.Errorf("schedule add %s: got %q, want %q", args, got, want)
		}
	}
	adm.expectAdmin("schedule add", "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+schedule\r\n")
	adm.expectAdmin("schedule frobnicate H:test:1", "ERR UNKNOWN_JOB\r\n")
	adm.expectAdmin("show schedules", ".\n")
}

// A schedule that came due while the server was down runs once at start, not once per
// missed firing; one that did not come due waits.
func TestRestoreSchedulesRunsMissedOnce(t *testing.T) {
	clk := &fakeClock{t: at("2026-06-03T12:30:00Z")}
	e, addr := startEngine(t, Config{Clock: clk.Now}, 1)
	hourly := wal.Schedule{Priority: 1, Seq: 7, Handle: "H:test:7", Function: "hourly", Spec: "0 * * * *", Location: "UTC",
		Created: at("2026-06-01T00:00:00Z").Unix(), LastRun: at("2026-06-01T10:00:00Z").Unix(), Data: []byte("h")}
	daily := wal.Schedule{Priority: 1, Seq: 8, Handle: "H:test:8", Function: "daily", Spec: "0 3 * * *", Location: "UTC",
		Created: at("2026-06-01T00:00:00Z").Unix(), LastRun: at("2026-06-03T03:00:00Z").Unix()}
	paused := wal.Schedule{Priority: 1, Seq: 9, Handle: "H:test:9", Function: "paused", Spec: "* * * * *", Paused: true,
		Created: at("2026-06-01T00:00:00Z").Unix()}
	if err := e.RestoreSchedules([]wal.Schedule{hourly, daily, paused}); err != nil {
		t.Fatal(err)
	}
	adm := dial(t, addr)
	adm.expectAdmin("status", "hourly\t1\t0\t0\n.\n")
	want := "H:test:7\thourly\t\t0 * * * *\tUTC\t2026-06-03T13:00:00Z\t2026-06-03T12:30:00Z\tnormal\tactive\n" +
		"H:test:8\tdaily\t\t0 3 * * *\tUTC\t2026-06-04T03:00:00Z\t2026-06-03T03:00:00Z\tnormal\tactive\n" +
		"H:test:9\tpaused\t\t* * * * *\t-\t-\t-\tnormal\tpaused\n.\n"
	adm.expectAdmin("show schedules", want)
	if err := e.RestoreSchedules([]wal.Schedule{{Seq: 10, Handle: "H:test:10", Spec: "bad"}}); err == nil {
		t.Fatal("a schedule with a bad spec was restored")
	}
}

// Reading the schedules again (the leader of a shared store does every 2 s) keeps each
// known one's firing as armed: one that just fired is not armed again (the leader fired a
// run twice so), one whose timer is late is not skipped.
func TestScheduleReadAgainJustAfterAFiringDoesNotFireItAgain(t *testing.T) {
	e, addr, clk := startScheduled(t, "2026-06-01T11:59:59.999Z")
	adm := dial(t, addr)
	h := addSchedule(t, adm, "tick * * * * * tz=UTC")
	e.sched.mu.Lock()
	recs := []wal.Schedule{e.sched.byHandle[h].rec} // read before the firing: no last run
	e.sched.mu.Unlock()
	clk.Set(at("2026-06-01T12:00:00Z"))
	e.fireDue(clk.Now())
	clk.Set(at("2026-06-01T11:59:59.999Z")) // the reading's clock, taken before the firing
	if err := e.syncSchedules(recs, false); err != nil {
		t.Fatal(err)
	}
	e.sched.mu.Lock()
	next := e.sched.byHandle[h].next
	e.sched.mu.Unlock()
	if want := at("2026-06-01T12:01:00Z"); !next.Equal(want) {
		t.Fatalf("next firing %v after reading the schedules again, want %v", next, want)
	}

	// Read again after 12:01 has come but before its timer ran: the firing is kept.
	clk.Set(at("2026-06-01T12:01:00.5Z"))
	if err := e.syncSchedules(recs, false); err != nil {
		t.Fatal(err)
	}
	e.sched.mu.Lock()
	next = e.sched.byHandle[h].next
	e.sched.mu.Unlock()
	if want := at("2026-06-01T12:01:00Z"); !next.Equal(want) {
		t.Fatalf("a firing whose timer is late is armed for %v after reading the schedules again, want %v", next, want)
	}
}

// Readings of the schedules that overlap (the periodic one, and the one on taking the lead)
// leave each schedule filed once: filed twice, it fired twice.
func TestOverlappingScheduleReadingsFileEachOnce(t *testing.T) {
	e, addr, _ := startScheduled(t, "2026-06-01T11:59:30Z")
	adm := dial(t, addr)
	h := addSchedule(t, adm, "tick * * * * * tz=UTC")
	e.sched.mu.Lock()
	recs := []wal.Schedule{e.sched.byHandle[h].rec}
	e.sched.mu.Unlock()
	for trial := range 2000 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := e.syncSchedules(recs, false); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		e.sched.mu.Lock()
		filed, due := len(e.sched.byHandle), len(e.sched.due)
		e.sched.mu.Unlock()
		if filed != 1 || due != 1 {
			t.Fatalf("trial %d, two readings at once: %d schedules known, %d in the due heap; want 1 and 1", trial, filed, due)
		}
	}
}
