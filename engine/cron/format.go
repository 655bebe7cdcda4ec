package cron

import "strconv"

// String returns the canonical standard 5-field form: numbers, not names; Sunday = 0;
// each field "*" when it has every value, else the shortest of a handful of spellings
// (a-b/n for an arithmetic run, else runs and single values). For day-of-month and
// day-of-week the '*'-or-not of the original text is kept, since it decides the day rule:
// such a field with only some values prints as "*/n" or "*/n,rest".
//
// The engine stores this string durably, so it is a format: Parse(s.String()) yields a
// Spec equal (==) to s, and the same Spec always prints the same string.
func (s *Spec) String() string {
	b := make([]byte, 0, 64)
	b = appendPlain(b, s.minute, &minuteKind)
	b = append(b, ' ')
	b = appendPlain(b, uint64(s.hour), &hourKind)
	b = append(b, ' ')
	b = appendField(b, uint64(s.dom), s.domStar, &domKind)
	b = append(b, ' ')
	b = appendPlain(b, uint64(s.month), &monthKind)
	b = append(b, ' ')
	b = appendField(b, uint64(s.dow), s.dowStar, &dowPrintKind)
	return string(b)
}

// dowPrintKind is day-of-week as String prints it: 0-6, Sunday = 0.
var dowPrintKind = kind{name: "day-of-week", min: 0, max: 6, steps: 7}

// appendPlain prints a field where '*' means nothing beyond its values: "*", "*/n", or
// the set.
func appendPlain(b []byte, v uint64, k *kind) []byte {
	if v == fullSet(k) {
		return append(b, '*')
	}
	if v&(1<<k.min) != 0 {
		for n := 2; n < k.steps; n++ {
			if v == stepSet(k, n) {
				b = append(b, "*/"...)
				return strconv.AppendInt(b, int64(n), 10)
			}
		}
	}
	return appendSet(b, v, k)
}

func fullSet(k *kind) uint64 { return uint64(1)<<(k.max+1) - uint64(1)<<k.min }

// appendField prints day-of-month or day-of-week, whose leading '*' (star) selects the day
// rule; canonical() made sure a star field holds the field's first value, so that a
// "*/n" prefix can carry it.
func appendField(b []byte, v uint64, star bool, k *kind) []byte {
	if !star {
		return appendSet(b, v, k) // a full set prints as a range: 1-31, 0-6
	}
	if v == fullSet(k) {
		return append(b, '*')
	}
	// The smallest step whose set lies within v covers the most of it.
	for n := 2; n <= k.steps; n++ {
		st := stepSet(k, n)
		if st&^v == 0 {
			b = append(b, "*/"...)
			b = strconv.AppendInt(b, int64(n), 10)
			if rest := v &^ st; rest != 0 {
				b = append(b, ',')
				b = appendSet(b, rest, k)
			}
			return b
		}
	}
	// Unreachable: canonical() gives the star only to a field holding its first value, and
	// */steps is that value alone. Print the plain set rather than panic.
	return appendSet(b, v, k)
}

// stepSet is the set "*/n" parses to in field k (for day-of-week, as printed: 0-6; "*/n"
// over 0-7 adds 7 only when n is 7, and 7 folds onto 0, already in).
func stepSet(k *kind, n int) uint64 {
	var v uint64
	for i := k.min; i <= k.max; i += n {
		v |= 1 << i
	}
	return v
}

// appendSet prints a non-empty set as "a-b/n" when it is one arithmetic run of at least
// three values with a step above 1, else as a list of runs (a-b for three or more
// consecutive values) and single values, ascending.
func appendSet(b []byte, v uint64, k *kind) []byte {
	var vals [64]int8
	n := 0
	for i := k.min; i <= k.max; i++ {
		if v&(1<<i) != 0 {
			vals[n] = int8(i)
			n++
		}
	}
	if n >= 3 {
		step := vals[1] - vals[0]
		ap := step > 1
		for i := 2; i < n && ap; i++ {
			ap = vals[i]-vals[i-1] == step
		}
		if ap {
			b = strconv.AppendInt(b, int64(vals[0]), 10)
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(vals[n-1]), 10)
			b = append(b, '/')
			return strconv.AppendInt(b, int64(step), 10)
		}
	}
	for i := 0; i < n; {
		j := i
		for j+1 < n && vals[j+1] == vals[j]+1 {
			j++
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(vals[i]), 10)
		switch {
		case j-i >= 2:
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(vals[j]), 10)
		case j == i+1:
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(vals[j]), 10)
		}
		i = j + 1
	}
	return b
}
