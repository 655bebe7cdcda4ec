package cron

// Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01), free of
// time zones: the search in Next runs on the wall clock and meets the zone only at the end.
// The algorithm counts 400-year eras from 0000-03-01, so that the leap day ends a year.

// floorDiv is a / b rounded towards minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// daysFromCivil returns the day number of y-m-d. A day past the month's end counts on into
// the next month (29 February of a common year is 1 March).
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400                     // year of era, 0-399
	mp := int64((m + 9) % 12)              // month from March, 0-11
	doy := (153*mp+2)/5 + int64(d) - 1     // day of (March-based) year, 0-365
	doe := yoe*365 + yoe/4 - yoe/100 + doy // day of era, 0-146096
	return era*146097 + doe - 719468       // 719468: days from 0000-03-01 to 1970-01-01
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y int64, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

// weekday of day number z: 0 = Sunday (1970-01-01 was a Thursday).
func weekday(z int64) int {
	w := (z + 4) % 7
	if w < 0 {
		w += 7
	}
	return int(w)
}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// daysIn returns the length of month m of year y.
func daysIn(y int64, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
