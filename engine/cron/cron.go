// Package cron owns recurring schedules: it parses a cron expression (or the five fields of
// Gearman's SUBMIT_JOB_SCHED) into an immutable Spec, computes the next time a Spec is due in
// a time zone, and prints a Spec back in one canonical form that the engine stores durably.
// It knows nothing of jobs, clocks or storage; it imports only the standard library.
//
// # Syntax
//
// An expression is five fields separated by runs of spaces or tabs (blanks around the whole
// are ignored), or one macro alone:
//
//	┌───────────── minute        0-59
//	│ ┌─────────── hour          0-23
//	│ │ ┌───────── day-of-month  1-31
//	│ │ │ ┌─────── month         1-12 or JAN-DEC
//	│ │ │ │ ┌───── day-of-week   0-7 or SUN-SAT (0 and 7 are Sunday)
//	│ │ │ │ │
//	* * * * *
//
//	@yearly, @annually  0 0 1 1 *      @daily, @midnight  0 0 * * *
//	@monthly            0 0 1 * *      @hourly            0 * * * *
//	@weekly             0 0 * * 0
//
// A field is a comma-separated list of items; an item is one of
//
//	item     matches
//	a        the value a
//	a-b      a through b (a <= b)
//	*        every value of the field
//	*/n      every n-th value from the field's first
//	a-b/n    every n-th value from a through b
//	a/n      every n-th value from a through the field's last (day-of-week: through 7)
//
// Names (three letters, any case) stand for numbers in month and day-of-week fields,
// ranges included (MON-FRI, JAN-MAR). A day-of-week range may end on Sunday written 0, 7 or
// SUN (FRI-SUN is 5-7); any other range that wraps past the end of the week (FRI-MON) is
// refused: write it as a list. Steps run from 1 to the number of values in the field. An
// expression or a set of SUBMIT_JOB_SCHED fields longer than MaxLen bytes is refused, so
// parsing costs at most a few microseconds whatever arrives. There is no '?', L, W, '#',
// seconds field, year field or @reboot.
//
// # Day-of-week numbering
//
// Standard cron numbering (Parse, and ParseFields with mondayZero false): 0 = Sunday,
// 1 = Monday ... 6 = Saturday, 7 = Sunday again. Gearman's PROTOCOL document numbers
// SUBMIT_JOB_SCHED's weekday field from Monday: 0 = Monday ... 6 = Sunday, and 7 is refused
// (ParseFields with mondayZero true). There, names keep their meaning and are numbered the
// same way (MON = 0 ... SUN = 6), so MON-SUN is the whole week and SUN-MON wraps. A Spec
// always holds and prints standard numbering.
//
// # The day rule
//
// As in Vixie cron (and cronie, and so the crontab(5) users know): when both day-of-month
// and day-of-week are restricted, a day matches if EITHER matches ("0 0 1 * MON" runs on the
// 1st and on every Monday). When either field is unrestricted, a day must match both, which
// means only the restricted one counts. A field counts as unrestricted when its text starts
// with '*' — this includes "*/2" and "*,5" — exactly Vixie's test of the first character. So
// "0 0 */2 * MON" runs on Mondays that fall on odd days, while "0 0 1-31/2 * MON" runs on
// every odd day and every Monday. An empty SUBMIT_JOB_SCHED field is "*". String keeps the
// rule: it prints one of the two fields with a leading '*' exactly when the rule is "both",
// which needs that field to hold its first value (the 1st, or Sunday). One Gearman-numbered
// input has no such field: a '*' step that skips Sunday ("*/4", Monday and Friday) beside a
// day-of-month without the 1st. It is refused rather than stored with another meaning.
//
// # Time zones and daylight saving
//
// Spec.Next works on the wall clock of its argument's Location: a Spec names wall-clock
// minutes, and a minute fires at the first instant the wall clock reaches it.
//
//   - Spring forward: a wall-clock time that does not exist (02:30 on the day Europe/Berlin
//     jumps from 02:00 to 03:00) fires once, at the first instant after the gap (03:00 local,
//     which is the jump itself). Several scheduled minutes in one gap fire once together.
//   - Fall back: a wall-clock time that occurs twice (01:30 on the day America/New_York goes
//     from 02:00 EDT back to 01:00 EST) fires once, at its first occurrence (01:30 EDT). While
//     the clock repeats the hour nothing fires a second time, "* * * * *" included; a job
//     that must run at fixed intervals through a transition belongs in UTC.
//
// Formally: Next(t) is the first instant after t at which the zone's wall clock, never going
// back, first reaches a minute the Spec matches. (Sub-minute zone offsets of the 19th century
// are honoured on the wall clock: "seconds zero" means the local seconds.)
//
// # Horizon
//
// Next looks at most five years ahead (wall clock of t, plus five calendar years); a Spec
// that does not match within them ("0 0 30 2 *", or "0 0 29 2 *" from March 2097, the next
// 29 February being in 2104) yields the zero Time. The search steps by month, day and hour,
// not by minute, and allocates nothing.
package cron

import "time"

// MaxLen bounds the text Parse and ParseFields accept, in bytes.
const MaxLen = 256

// Spec is a parsed schedule: which minutes, hours, days and months match. It is immutable
// after Parse and safe for concurrent use. Specs compare with ==; Parse(s.String()) == *s.
type Spec struct {
	minute uint64 // bit m set: minute m (0-59) matches
	hour   uint32 // bit h: hour h (0-23)
	dom    uint32 // bit d: day of month d (1-31)
	month  uint16 // bit m: month m (1-12)
	dow    uint8  // bit w: weekday w, 0 = Sunday ... 6 = Saturday

	// domStar and dowStar record that the field's text began with '*', which selects the
	// day rule (see the package doc): either set means a day must match both fields.
	domStar, dowStar bool

	// dowDays[w] are the days of a month (bits 1-31) that fall on a matching weekday when
	// the month's first day is weekday w; derived from dow so a month's days cost one AND.
	dowDays [7]uint32
}

// finish derives dowDays; called once by the parsers.
func (s *Spec) finish() {
	for first := 0; first < 7; first++ {
		var m uint32
		for d := 1; d <= 31; d++ {
			if s.dow&(1<<((first+d-1)%7)) != 0 {
				m |= 1 << d
			}
		}
		s.dowDays[first] = m
	}
}

// days returns the matching days (bits 1..31) of month m of year y, the day rule applied.
func (s *Spec) days(y int64, m int) uint32 {
	first := weekday(daysFromCivil(y, m, 1))
	var d uint32
	if s.domStar || s.dowStar {
		d = s.dom & s.dowDays[first]
	} else {
		d = s.dom | s.dowDays[first]
	}
	return d & (1<<(daysIn(y, m)+1) - 2)
}

// matchWall reports whether the wall-clock minute w (seconds since 1970-01-01 00:00 on the
// wall clock, as if it were UTC) matches the Spec.
func (s *Spec) matchWall(w int64) bool {
	day := floorDiv(w, 86400)
	y, m, d := civilFromDays(day)
	rem := w - day*86400
	h, mi := int(rem/3600), int(rem%3600/60)
	return s.minute&(1<<mi) != 0 && s.hour&(1<<h) != 0 && s.month&(1<<m) != 0 &&
		s.days(y, m)&(1<<d) != 0
}

// Match reports whether t's wall-clock minute (in t's Location) matches the Spec, ignoring
// the daylight-saving policy of Next.
func (s *Spec) Match(t time.Time) bool {
	_, off := t.Zone()
	return s.matchWall(t.Unix() + int64(off))
}
