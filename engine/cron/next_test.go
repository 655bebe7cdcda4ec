package cron

import (
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the same zones on machines without /usr/share/zoneinfo
)

func loadZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

// runs returns the first n results of Next chained from t.
func runs(s *Spec, t time.Time, n int) []time.Time {
	var out []time.Time
	for i := 0; i < n; i++ {
		t = s.Next(t)
		out = append(out, t)
		if t.IsZero() {
			break
		}
	}
	return out
}

func checkRuns(t *testing.T, expr string, from time.Time, want ...string) {
	t.Helper()
	s := mustParse(t, expr)
	got := runs(s, from, len(want))
	for i := 1; i < len(got); i++ {
		if !got[i].IsZero() && !got[i].After(got[i-1]) {
			t.Fatalf("%q: Next(%s) = %s, not after", expr, fmtTime(got[i-1]), fmtTime(got[i]))
		}
	}
	for i, w := range want {
		var g string
		if i < len(got) {
			g = fmtTime(got[i])
		}
		if g != w {
			t.Errorf("%q from %s: run %d = %s, want %s", expr, fmtTime(from), i, g, w)
		}
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("2006-01-02 15:04:05 MST Mon")
}

func TestNextSequences(t *testing.T) {
	utc := time.UTC
	d := func(y int, m time.Month, day, h, mi, sec int) time.Time {
		return time.Date(y, m, day, h, mi, sec, 0, utc)
	}
	checkRuns(t, "*/15 * * * *", d(2025, 1, 1, 0, 7, 0),
		"2025-01-01 00:15:00 UTC Wed", "2025-01-01 00:30:00 UTC Wed", "2025-01-01 00:45:00 UTC Wed", "2025-01-01 01:00:00 UTC Wed")
	// Strictly after t, t truncated to the minute.
	checkRuns(t, "* * * * *", d(2025, 1, 1, 9, 0, 0), "2025-01-01 09:01:00 UTC Wed")
	checkRuns(t, "* * * * *", d(2025, 1, 1, 9, 0, 59), "2025-01-01 09:01:00 UTC Wed")
	checkRuns(t, "* * * * *", time.Date(2025, 1, 1, 8, 59, 59, 999999999, utc), "2025-01-01 09:00:00 UTC Wed")
	checkRuns(t, "0 9 * * 1-5", d(2025, 1, 3, 10, 0, 0),
		"2025-01-06 09:00:00 UTC Mon", "2025-01-07 09:00:00 UTC Tue")
	// Leap years: 29 February, 2100 is not a leap year, 2000 was.
	checkRuns(t, "0 0 29 2 *", d(2027, 1, 1, 0, 0, 0),
		"2028-02-29 00:00:00 UTC Tue", "2032-02-29 00:00:00 UTC Sun")
	checkRuns(t, "0 0 29 2 *", d(1999, 3, 1, 0, 0, 0), "2000-02-29 00:00:00 UTC Tue")
	checkRuns(t, "0 0 29 2 *", d(2099, 3, 1, 0, 0, 0), "2104-02-29 00:00:00 UTC Fri")
	checkRuns(t, "0 0 29 2 *", d(2097, 3, 1, 0, 0, 0), "never") // 2104 is beyond 5 years
	checkRuns(t, "0 0 29 2 *", d(2099, 1, 1, 0, 0, 0), "never") // so is 2104-02-29 from 2099-01-01
	checkRuns(t, "0 0 30 2 *", d(2025, 1, 1, 0, 0, 0), "never")
	checkRuns(t, "0 0 31 4,6,9,11 *", d(2025, 1, 1, 0, 0, 0), "never")
	// Month ends.
	checkRuns(t, "0 0 31 * *", d(2025, 1, 31, 0, 0, 0),
		"2025-03-31 00:00:00 UTC Mon", "2025-05-31 00:00:00 UTC Sat", "2025-07-31 00:00:00 UTC Thu", "2025-08-31 00:00:00 UTC Sun")
	checkRuns(t, "59 23 28-31 2 *", d(2024, 2, 28, 23, 59, 0), "2024-02-29 23:59:00 UTC Thu", "2025-02-28 23:59:00 UTC Fri")
	// Year rollover.
	checkRuns(t, "59 23 31 12 *", d(2025, 6, 1, 0, 0, 0), "2025-12-31 23:59:00 UTC Wed", "2026-12-31 23:59:00 UTC Thu")
	checkRuns(t, "@yearly", d(2025, 12, 31, 23, 59, 59), "2026-01-01 00:00:00 UTC Thu", "2027-01-01 00:00:00 UTC Fri")
	checkRuns(t, "* * * * *", d(2025, 12, 31, 23, 59, 0), "2026-01-01 00:00:00 UTC Thu")
	// The day rule. Either: the 1st or a Monday.
	checkRuns(t, "0 0 1 * MON", d(2025, 8, 31, 0, 0, 0),
		"2025-09-01 00:00:00 UTC Mon", "2025-09-08 00:00:00 UTC Mon", "2025-09-15 00:00:00 UTC Mon",
		"2025-09-22 00:00:00 UTC Mon", "2025-09-29 00:00:00 UTC Mon", "2025-10-01 00:00:00 UTC Wed", "2025-10-06 00:00:00 UTC Mon")
	// Both (Vixie: "*/2" starts with '*'): Mondays on odd days.
	checkRuns(t, "0 0 */2 * MON", d(2025, 1, 1, 0, 0, 0),
		"2025-01-13 00:00:00 UTC Mon", "2025-01-27 00:00:00 UTC Mon", "2025-02-03 00:00:00 UTC Mon", "2025-02-17 00:00:00 UTC Mon")
	// Either: "1-31/2" has no '*': odd days and Mondays.
	checkRuns(t, "0 0 1-31/2 * MON", d(2025, 1, 1, 0, 0, 0),
		"2025-01-03 00:00:00 UTC Fri", "2025-01-05 00:00:00 UTC Sun", "2025-01-06 00:00:00 UTC Mon", "2025-01-07 00:00:00 UTC Tue")
	// Friday the 13th needs "both", which a restricted dom cannot ask for: this is "either".
	checkRuns(t, "0 0 13 * 5", d(2025, 6, 1, 0, 0, 0), "2025-06-06 00:00:00 UTC Fri", "2025-06-13 00:00:00 UTC Fri", "2025-06-20 00:00:00 UTC Fri")
	// 7 is Sunday.
	checkRuns(t, "30 6 * * 7", d(2025, 6, 1, 7, 0, 0), "2025-06-08 06:30:00 UTC Sun")
	// Results keep t's Location, also a fixed zone.
	ist := time.FixedZone("IST", 5*3600+1800)
	checkRuns(t, "0 0 * * *", time.Date(2025, 6, 1, 23, 0, 0, 0, ist), "2025-06-02 00:00:00 IST Mon")
}

// TestNextDST pins the daylight-saving policy: a skipped minute fires once at the end of
// the gap, a repeated one at its first occurrence only.
func TestNextDST(t *testing.T) {
	berlin := loadZone(t, "Europe/Berlin")
	ny := loadZone(t, "America/New_York")
	b := func(m time.Month, d, h, mi int) time.Time { return time.Date(2025, m, d, h, mi, 0, 0, berlin) }
	// Spring forward: 2025-03-30 02:00 CET -> 03:00 CEST.
	checkRuns(t, "30 2 * * *", b(3, 29, 12, 0),
		"2025-03-30 03:00:00 CEST Sun", "2025-03-31 02:30:00 CEST Mon")
	checkRuns(t, "15,45 2 * * *", b(3, 29, 12, 0),
		"2025-03-30 03:00:00 CEST Sun", "2025-03-31 02:15:00 CEST Mon")
	checkRuns(t, "0,30 2,3 * * *", b(3, 29, 12, 0), // 02:00, 02:30 and 03:00 all fire once, at 03:00
		"2025-03-30 03:00:00 CEST Sun", "2025-03-30 03:30:00 CEST Sun", "2025-03-31 02:00:00 CEST Mon")
	checkRuns(t, "* * * * *", b(3, 30, 1, 58),
		"2025-03-30 01:59:00 CET Sun", "2025-03-30 03:00:00 CEST Sun", "2025-03-30 03:01:00 CEST Sun")
	checkRuns(t, "0 * * * *", b(3, 30, 0, 30),
		"2025-03-30 01:00:00 CET Sun", "2025-03-30 03:00:00 CEST Sun", "2025-03-30 04:00:00 CEST Sun")
	// Fall back: 2025-10-26 03:00 CEST -> 02:00 CET; 02:00-02:59 happen twice.
	cest := time.Date(2025, 10, 26, 0, 30, 0, 0, time.UTC).In(berlin) // 02:30 CEST, first time
	cet := cest.Add(time.Hour)                                        // 02:30 CET, second time
	if cest.Hour() != 2 || cet.Hour() != 2 {
		t.Fatalf("zone data: %v %v", cest, cet)
	}
	checkRuns(t, "30 2 * * *", b(10, 25, 12, 0),
		"2025-10-26 02:30:00 CEST Sun", "2025-10-27 02:30:00 CET Mon")
	checkRuns(t, "30 2 * * *", cet.Add(-20*time.Minute), "2025-10-27 02:30:00 CET Mon") // inside the repeat
	checkRuns(t, "* * * * *", cest.Add(28*time.Minute),
		"2025-10-26 02:59:00 CEST Sun", "2025-10-26 03:00:00 CET Sun", "2025-10-26 03:01:00 CET Sun")
	checkRuns(t, "* * * * *", cet.Add(-time.Minute), "2025-10-26 03:00:00 CET Sun")
	checkRuns(t, "0 * * * *", cest.Add(-time.Hour),
		"2025-10-26 02:00:00 CEST Sun", "2025-10-26 03:00:00 CET Sun", "2025-10-26 04:00:00 CET Sun")
	if got := mustParse(t, "0 * * * *").Next(cest.Add(-time.Hour)); got.Sub(cest) != -30*time.Minute {
		t.Errorf("02:00 CEST at %v", got.UTC())
	}

	n := func(m time.Month, d, h, mi int) time.Time { return time.Date(2025, m, d, h, mi, 0, 0, ny) }
	// Spring forward: 2025-03-09 02:00 EST -> 03:00 EDT.
	checkRuns(t, "30 2 * * *", n(3, 8, 12, 0), "2025-03-09 03:00:00 EDT Sun", "2025-03-10 02:30:00 EDT Mon")
	checkRuns(t, "*/20 * * * *", n(3, 9, 1, 30), "2025-03-09 01:40:00 EST Sun", "2025-03-09 03:00:00 EDT Sun", "2025-03-09 03:20:00 EDT Sun")
	// Fall back: 2025-11-02 02:00 EDT -> 01:00 EST; 01:00-01:59 happen twice.
	checkRuns(t, "30 1 * * *", n(11, 1, 12, 0), "2025-11-02 01:30:00 EDT Sun", "2025-11-03 01:30:00 EST Mon")
	checkRuns(t, "0 2 * * *", n(11, 1, 12, 0), "2025-11-02 02:00:00 EST Sun", "2025-11-03 02:00:00 EST Mon")
	checkRuns(t, "*/30 * * * *", n(11, 2, 0, 50),
		"2025-11-02 01:00:00 EDT Sun", "2025-11-02 01:30:00 EDT Sun", "2025-11-02 02:00:00 EST Sun")
	// DST at midnight: São Paulo 2018-11-04 00:00 -> 01:00; the midnight run is at 01:00.
	sp := loadZone(t, "America/Sao_Paulo")
	checkRuns(t, "@daily", time.Date(2018, 11, 3, 12, 0, 0, 0, sp), "2018-11-04 01:00:00 -02 Sun", "2018-11-05 00:00:00 -02 Mon")
	// A skipped day: Samoa went from 2011-12-29 23:59 to 2011-12-31 00:00.
	apia := loadZone(t, "Pacific/Apia")
	checkRuns(t, "0 12 30 12 *", time.Date(2011, 12, 29, 12, 0, 0, 0, apia), "2011-12-31 00:00:00 +14 Sat", "2012-12-30 12:00:00 +14 Sun")
}

func TestNextAllocs(t *testing.T) {
	berlin := loadZone(t, "Europe/Berlin")
	for _, c := range []struct {
		expr string
		at   time.Time
	}{
		{"*/5 * * * *", time.Date(2025, 6, 1, 12, 0, 0, 0, berlin)},
		{"30 2 * * *", time.Date(2025, 3, 29, 12, 0, 0, 0, berlin)},
		{"30 2 * * *", time.Date(2025, 10, 26, 0, 40, 0, 0, time.UTC).In(berlin)},
		{"0 0 29 2 *", time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)},
		{"0 0 30 2 *", time.Date(2025, 6, 1, 12, 0, 0, 0, berlin)},
	} {
		s := mustParse(t, c.expr)
		if a := testing.AllocsPerRun(100, func() { s.Next(c.at) }); a != 0 {
			t.Errorf("%q: %v allocations per Next", c.expr, a)
		}
	}
}

// TestNextVsBrute compares chained Next with a reference that walks the zone minute by
// minute, over random specs, zones, years and windows (many of them around a transition).
func TestNextVsBrute(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("X", -(9*3600 + 30*60))}
	for _, name := range []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
		"America/Sao_Paulo", "Pacific/Apia", "Asia/Kolkata", "Pacific/Chatham", "America/Santiago", "Europe/London"} {
		zones = append(zones, loadZone(t, name))
	}
	r := rand.New(rand.NewSource(11))
	trials, minutes := 1500, 0
	if testing.Short() {
		trials = 200
	}
	for i := 0; i < trials; i++ {
		loc := zones[r.Intn(len(zones))]
		var f [5]string
		for j, k := range [5]*kind{&minuteKind, &hourKind, &domKind, &monthKind, &dowKind} {
			f[j] = "*"
			if r.Intn(4) < 1+j/3 { // minute and hour restricted less often than days
				f[j] = randomField(r, k)
			}
		}
		s, err := ParseFields(f[0], f[1], f[2], f[3], f[4], false)
		if err != nil {
			t.Fatal(err)
		}
		from := time.Unix(int64(r.Intn(int(130*365.25*86400)))+int64(r.Intn(60))+2*365*86400, int64(r.Intn(1e9))).In(loc)
		if r.Intn(2) == 0 { // next to a transition
			if _, end := from.ZoneBounds(); !end.IsZero() {
				from = end.Add(time.Duration(r.Intn(6*3600)-3*3600) * time.Second)
			}
		}
		window := time.Duration(1+r.Intn(4)) * 24 * time.Hour
		want := bruteRuns(s, from, window)
		got := chain(t, s, from, window)
		minutes += int(window / time.Minute)
		if !equalRuns(got, want) {
			t.Fatalf("%q (%s) in %s from %s over %v:\n got %s\nwant %s",
				strings.Join(f[:], " "), s, loc, fmtTime(from), window, fmtRuns(got), fmtRuns(want))
		}
	}
	t.Logf("%d trials, %d minutes walked", trials, minutes)
}

// TestNextVsBruteLong walks sparse specs over years: yearly, leap-day, and both-rule ones.
func TestNextVsBruteLong(t *testing.T) {
	berlin := loadZone(t, "Europe/Berlin")
	ny := loadZone(t, "America/New_York")
	for _, c := range []struct {
		expr string
		from time.Time
		days int
	}{
		{"0 0 29 2 *", time.Date(2023, 3, 5, 0, 0, 0, 0, berlin), 3 * 366},
		{"30 2 * 3,10 0", time.Date(2024, 1, 1, 0, 0, 0, 0, berlin), 2 * 366},
		{"30 1 1-7 * */7", time.Date(2024, 1, 1, 0, 0, 0, 0, ny), 2 * 366},
		{"0 2 13 * 5", time.Date(2024, 1, 1, 0, 0, 0, 0, ny), 2 * 366},
	} {
		s := mustParse(t, c.expr)
		window := time.Duration(c.days) * 24 * time.Hour
		want := bruteRuns(s, c.from, window)
		got := chain(t, s, c.from, window)
		if !equalRuns(got, want) || len(want) == 0 {
			t.Errorf("%q from %s:\n got %s\nwant %s", c.expr, fmtTime(c.from), fmtRuns(got), fmtRuns(want))
		}
	}
}

// chain returns Next chained from t while within window; it fails if Next does not advance.
func chain(t *testing.T, s *Spec, from time.Time, window time.Duration) []time.Time {
	t.Helper()
	var out []time.Time
	for at := from; ; {
		n := s.Next(at)
		if n.IsZero() || n.After(from.Add(window)) {
			return out
		}
		if !n.After(at) {
			t.Fatalf("%s: Next(%s) = %s, not after", s, fmtTime(at), fmtTime(n))
		}
		out = append(out, n)
		at = n
	}
}

// bruteRuns is the reference for Next's policy, written as directly as possible: walk the
// zone's instants minute by minute from a day before t, keeping the highest wall clock seen;
// each time the wall clock passes the mark, every newly reached wall-clock minute that
// matches fires at this instant (once, however many there are). It needs zones whose
// offsets are whole minutes.
func bruteRuns(s *Spec, t time.Time, window time.Duration) []time.Time {
	loc := t.Location()
	wallOf := func(u int64) int64 {
		_, off := time.Unix(u, 0).In(loc).Zone()
		return u + int64(off)
	}
	begin := (t.Unix() - 26*3600) / 60 * 60
	end := t.Add(window).Unix()
	mark := wallOf(begin)
	var out []time.Time
	for u := begin + 60; u <= end; u += 60 {
		w := wallOf(u)
		if w <= mark {
			continue
		}
		fire := false
		for x := mark + 60; x <= w; x += 60 {
			fire = fire || refMatch(s, time.Unix(x, 0).UTC())
		}
		mark = w
		if fire && u > t.Unix() {
			out = append(out, time.Unix(u, 0).In(loc))
		}
	}
	return out
}

// refMatch matches wall-clock fields (carried in a UTC time) against the Spec's sets,
// with the day rule spelled out.
func refMatch(s *Spec, w time.Time) bool {
	dom := s.dom&(1<<w.Day()) != 0
	dow := s.dow&(1<<w.Weekday()) != 0
	day := dom || dow
	if s.domStar || s.dowStar {
		day = dom && dow
	}
	return day && s.minute&(1<<w.Minute()) != 0 && s.hour&(1<<w.Hour()) != 0 && s.month&(1<<w.Month()) != 0
}

func equalRuns(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) || a[i].Location() != b[i].Location() {
			return false
		}
	}
	return true
}

func fmtRuns(r []time.Time) string {
	var b strings.Builder
	for i, t := range r {
		if i == 8 {
			b.WriteString("...")
			break
		}
		b.WriteString(fmtTime(t))
		b.WriteString("; ")
	}
	return b.String() + "(" + strconv.Itoa(len(r)) + " runs)"
}

func TestMatch(t *testing.T) {
	s := mustParse(t, "30 9 * * 1-5")
	berlin := loadZone(t, "Europe/Berlin")
	if !s.Match(time.Date(2025, 6, 2, 9, 30, 45, 0, berlin)) || s.Match(time.Date(2025, 6, 1, 9, 30, 0, 0, berlin)) {
		t.Error("Match")
	}
}

func BenchmarkNext(b *testing.B) {
	berlin := loadZone(b, "Europe/Berlin")
	for _, c := range []struct{ name, expr string }{
		{"every5min", "*/5 * * * *"},
		{"weekdays9", "0 9 * * 1-5"},
		{"leapday", "0 0 29 2 *"},
		{"dstgap", "30 2 * * *"},
		{"never", "0 0 30 2 *"},
	} {
		s := mustParse(b, c.expr)
		b.Run(c.name, func(b *testing.B) {
			at := time.Date(2025, 3, 1, 0, 0, 0, 0, berlin)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				n := s.Next(at)
				if n.IsZero() {
					continue
				}
				at = n
				if at.Unix() > 4102444800 { // 2100
					at = time.Date(2025, 3, 1, 0, 0, 0, 0, berlin)
				}
			}
		})
	}
}

// TestNextExtremes: far years and sub-minute historical offsets neither panic nor loop.
func TestNextExtremes(t *testing.T) {
	every := mustParse(t, "* * * * *")
	if got := every.Next(time.Time{}); !got.Equal(time.Date(1, 1, 1, 0, 1, 0, 0, time.UTC)) {
		t.Errorf("Next(zero) = %v", got)
	}
	if got := every.Next(time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC)); !got.Equal(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Next(9999-12-31 23:59) = %v", got)
	}
	berlin := loadZone(t, "Europe/Berlin")
	for _, at := range []time.Time{time.Unix(1<<40, 0), time.Unix(-1<<40, 0), time.Unix(1<<62, 0), time.Unix(-1<<62, 0)} {
		for _, expr := range []string{"* * * * *", "0 0 29 2 *", "0 0 30 2 *", "30 2 * * 0"} {
			mustParse(t, expr).Next(at.In(berlin)) // must return
		}
	}
	// Berlin kept local mean time, +00:53:28, until 1893: the run is at local seconds zero.
	lmt := time.Date(1850, 6, 1, 12, 0, 0, 0, berlin)
	got := mustParse(t, "30 12 * * *").Next(lmt)
	if got.Hour() != 12 || got.Minute() != 30 || got.Second() != 0 || got.Day() != 1 {
		t.Errorf("Next(%v) = %v", lmt, got)
	}
}

// TestConcurrentNext: a Spec is read-only; run under -race.
func TestConcurrentNext(t *testing.T) {
	s := mustParse(t, "*/7 1-20 * * MON-FRI")
	ny := loadZone(t, "America/New_York")
	from := time.Date(2025, 3, 1, 0, 0, 0, 0, ny)
	want := runs(s, from, 200)
	done := make(chan []time.Time)
	for g := 0; g < 4; g++ {
		go func() { done <- runs(s, from, 200) }()
	}
	for g := 0; g < 4; g++ {
		if got := <-done; !equalRuns(got, want) {
			t.Error("concurrent Next differs")
		}
	}
}
