package cron

import (
	"math/bits"
	"time"
)

// Next computes on two clocks. "Wall" values are seconds of the zone's wall clock counted
// as if it were UTC (wall = unix + offset); the calendar search runs on them. Instants are
// Unix seconds. The zone is consulted only to find t's wall clock, the wall clock the zone
// already went past (after a fall back), and the instant a wall-clock minute is first
// reached (fireAt).

const (
	day = 86400

	// maxOffset bounds a zone's UTC offset (real ones lie within -12h..+14h, the odd
	// 19th-century LMT within ±16h): no instant before w - maxOffset shows wall clock w.
	maxOffset = 18 * 3600

	// lookBack bounds how far back a fall back can still matter: a repeated wall-clock
	// stretch is shorter than a day.
	lookBack = 2 * day

	horizonYears = 5
)

// Next returns the first time strictly after t (truncated to the minute, seconds zero) that
// the spec matches, in t's Location; the zero Time if none within the next 5 years (e.g.
// "0 0 30 2 *"). Daylight saving follows the package doc: a minute skipped by the clock fires
// at the end of the gap, a repeated minute fires at its first occurrence only. Next
// allocates nothing.
func (s *Spec) Next(t time.Time) time.Time {
	loc := t.Location()
	sec := t.Unix()
	_, off := t.Zone()
	wall := sec + int64(off)

	// The first candidate minute: after t's wall clock, and not below any wall clock the
	// zone showed before t (after a fall back the clock repeats what already fired).
	from := floorDiv(wall, 60)*60 + 60
	pStart, pEnd := t.ZoneBounds() // t's period, where fireAt begins
	start := pStart
	for i := 0; i < 4 && !start.IsZero() && sec-start.Unix() < lookBack; i++ {
		prev := start.Add(-time.Second)
		_, po := prev.Zone()
		if shown := start.Unix() + int64(po); shown > from { // walls before start are < shown
			from = floorDiv(shown+59, 60) * 60
		}
		start, _ = prev.ZoneBounds()
	}

	y0, m0, d0 := civilFromDays(floorDiv(wall, day))
	limit := daysFromCivil(y0+horizonYears, m0, d0)*day + wall - floorDiv(wall, day)*day
	w, ok := s.search(from, y0+horizonYears)
	if !ok || w > limit {
		return time.Time{}
	}
	return time.Unix(fireAt(w, loc, off, pStart, pEnd), 0).In(loc)
}

// search returns the first matching wall-clock minute at or after from, looking no later
// than the end of year lastYear. It steps by month, day and hour: a field that cannot match
// in the current unit moves to the start of the next, so a year costs at most a few dozen
// steps whatever the spec.
func (s *Spec) search(from int64, lastYear int64) (int64, bool) {
	z := floorDiv(from, day)
	y, mo, d := civilFromDays(z)
	rem := from - z*day
	h, mi := int(rem/3600), int(rem%3600/60)
	for y <= lastYear {
		m := nextBit(uint64(s.month), mo)
		if m < 0 {
			y, mo, d, h, mi = y+1, 1, 1, 0, 0
			continue
		}
		if m != mo {
			mo, d, h, mi = m, 1, 0, 0
		}
		dd := nextBit(uint64(s.days(y, mo)), d)
		if dd < 0 {
			mo, d, h, mi = mo+1, 1, 0, 0
			continue
		}
		if dd != d {
			d, h, mi = dd, 0, 0
		}
		hh := nextBit(uint64(s.hour), h)
		if hh < 0 {
			d, h, mi = d+1, 0, 0
			continue
		}
		if hh != h {
			h, mi = hh, 0
		}
		mm := nextBit(s.minute, mi)
		if mm < 0 {
			h, mi = h+1, 0
			continue
		}
		return daysFromCivil(y, mo, d)*day + int64(h)*3600 + int64(mm)*60, true
	}
	return 0, false
}

// nextBit returns the lowest set bit of b at or above from, or -1.
func nextBit(b uint64, from int) int {
	if from >= 64 {
		return -1
	}
	b &^= 1<<from - 1
	if b == 0 {
		return -1
	}
	return bits.TrailingZeros64(b)
}

// fireAt returns the first instant at which loc's wall clock reaches w, given that it has
// not reached w by t, whose period (span of one offset) is [start, end) with offset o. It
// walks the periods from t's: in a period of offset o ending at end the clock reaches w at
// w-o if that is before end; if w-o falls before the period's start, w lies in the gap the
// period opened, reached at its start. (Zone lookups are most of Next's cost, so t's are
// passed in rather than repeated.)
func fireAt(w int64, loc *time.Location, o int, start, end time.Time) int64 {
	for i := 0; i < 16; i++ {
		if i > 0 {
			_, o = start.Zone()
			start, end = start.ZoneBounds()
		}
		at := w - int64(o)
		if end.IsZero() || at < end.Unix() {
			if !start.IsZero() && at < start.Unix() {
				at = start.Unix()
			}
			return at
		}
		// Go on from the next period, or from w's earliest possible instant if later;
		// start is just a point in the period here, which is all the lookups above need.
		if j := w - maxOffset; j > end.Unix() {
			start = time.Unix(j, 0).In(loc)
		} else {
			start = end
		}
	}
	// Sixteen periods within a day: no such zone; settle for the offset found last.
	return w - int64(o)
}
