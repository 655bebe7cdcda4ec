package cron

import (
	"errors"
	"fmt"
	"strings"
)

// kind describes one field: its name in errors and the values it accepts; '*' and "a/n"
// run to max (day-of-week: to 7, Sunday again, as in Vixie cron).
type kind struct {
	name      string
	min, max  int      // accepted values
	steps     int      // largest step: the number of distinct values
	names     []string // three-letter names for min, min+1, ...; nil if none
	dowStd    bool     // standard day-of-week: 7 folds to 0, a range may end on Sunday as 0
	dowMonday bool     // Gearman day-of-week: 0 = Monday ... 6 = Sunday
}

var (
	monthNames     = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	sundayNames    = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
	mondayNames    = []string{"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}
	minuteKind     = kind{name: "minute", min: 0, max: 59, steps: 60}
	hourKind       = kind{name: "hour", min: 0, max: 23, steps: 24}
	domKind        = kind{name: "day-of-month", min: 1, max: 31, steps: 31}
	monthKind      = kind{name: "month", min: 1, max: 12, steps: 12, names: monthNames}
	dowKind        = kind{name: "day-of-week", min: 0, max: 7, steps: 7, names: sundayNames, dowStd: true}
	dowMondayKind  = kind{name: "day-of-week", min: 0, max: 6, steps: 7, names: mondayNames, dowMonday: true}
	errTooLong     = fmt.Errorf("cron: expression longer than %d bytes", MaxLen)
	errFieldsEmpty = errors.New("cron: empty expression")
)

// macros maps each macro (lower case) to its expression.
var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// Parse parses a standard 5-field expression "minute hour day-of-month month day-of-week"
// (fields separated by runs of spaces/tabs), or one of the macros @yearly @annually @monthly
// @weekly @daily @midnight @hourly. Day-of-week: 0-7, 0 and 7 = Sunday. Names: months
// JAN-DEC, days SUN-SAT, case-insensitive, usable in ranges (MON-FRI). The error, if any,
// names the field and the offending text, as in `cron: hour "25": out of range 0-23`.
func Parse(expr string) (*Spec, error) {
	if len(expr) > MaxLen {
		return nil, errTooLong
	}
	start, end := 0, len(expr)
	for start < end && isBlank(expr[start]) {
		start++
	}
	for end > start && isBlank(expr[end-1]) {
		end--
	}
	expr = expr[start:end]
	if expr == "" {
		return nil, errFieldsEmpty
	}
	if expr[0] == '@' {
		m, ok := macros[strings.ToLower(expr)]
		if !ok {
			if strings.EqualFold(expr, "@reboot") {
				return nil, errors.New(`cron: "@reboot" is not supported: a job server has no boot to run at`)
			}
			return nil, fmt.Errorf("cron: unknown macro %q (want @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)", expr)
		}
		expr = m
	}
	var f [5]string
	n := 0
	for i := 0; i < len(expr); {
		if isBlank(expr[i]) {
			i++
			continue
		}
		j := i
		for j < len(expr) && !isBlank(expr[j]) {
			j++
		}
		if n < len(f) {
			f[n] = expr[i:j]
		}
		n++
		i = j
	}
	if n != 5 {
		return nil, fmt.Errorf("cron: %d fields, want 5 (minute hour day-of-month month day-of-week)", n)
	}
	return build(f, &dowKind)
}

// ParseFields parses the five fields of SUBMIT_JOB_SCHED. An empty field means "*". With
// mondayZero (the Gearman PROTOCOL's numbering) day-of-week 0 = Monday ... 6 = Sunday (7 is
// refused then); otherwise standard numbering. Field syntax is that of Parse; a field may
// not contain blanks.
func ParseFields(minute, hour, dom, month, dow string, mondayZero bool) (*Spec, error) {
	if len(minute)+len(hour)+len(dom)+len(month)+len(dow) > MaxLen {
		return nil, errTooLong
	}
	f := [5]string{minute, hour, dom, month, dow}
	for i := range f {
		if f[i] == "" {
			f[i] = "*"
		}
	}
	k := &dowKind
	if mondayZero {
		k = &dowMondayKind
	}
	return build(f, k)
}

// build parses the five fields of an expression, dow being parsed as kind k.
func build(f [5]string, dk *kind) (*Spec, error) {
	var s Spec
	b, _, err := minuteKind.field(f[0])
	if err != nil {
		return nil, err
	}
	s.minute = b
	if b, _, err = hourKind.field(f[1]); err != nil {
		return nil, err
	}
	s.hour = uint32(b)
	if b, s.domStar, err = domKind.field(f[2]); err != nil {
		return nil, err
	}
	s.dom = uint32(b)
	if b, _, err = monthKind.field(f[3]); err != nil {
		return nil, err
	}
	s.month = uint16(b)
	if b, s.dowStar, err = dk.field(f[4]); err != nil {
		return nil, err
	}
	if dk.dowMonday {
		// Monday-based v is standard (v+1)%7.
		s.dow = uint8(b<<1&0x7e | b>>6&1)
	} else {
		s.dow = uint8(b&0x7f | b>>7&1)
	}
	if err := s.canonical(f[2], f[4]); err != nil {
		return nil, err
	}
	s.finish()
	return &s, nil
}

// canonical rewrites domStar and dowStar into the one pair String prints for the same day
// rule, so that Parse(s.String()) == *s. The rule depends only on whether either is set
// (then a day must match both fields); String needs a field it can print with a leading '*':
// one with every value ("*"), or one holding the field's first value ("*/31,15" is the 1st
// and the 15th). A Spec parsed from standard text always has one; Gearman's Monday-based
// "*/4" (Monday and Friday) next to a day-of-month without the 1st has none, and is refused.
func (s *Spec) canonical(domText, dowText string) error {
	if !s.domStar && !s.dowStar {
		return nil
	}
	domFull, dowFull := uint64(s.dom) == fullSet(&domKind), uint64(s.dow) == fullSet(&dowPrintKind)
	switch {
	case domFull:
		s.domStar, s.dowStar = true, dowFull
	case dowFull:
		s.domStar, s.dowStar = false, true
	case s.dom&(1<<1) != 0:
		s.domStar, s.dowStar = true, false
	case s.dow&1 != 0:
		s.domStar, s.dowStar = false, true
	default:
		return fmt.Errorf("cron: day-of-week %q with day-of-month %q: a leading '*' makes a day match both fields, "+
			"which has no standard form when the days skip both Sunday and the 1st; list the weekdays instead", dowText, domText)
	}
	return nil
}

// field parses one field into a bitset of its values (bit v = value v, before the
// day-of-week folding) and reports whether the text starts with '*' (the day rule).
func (k *kind) field(text string) (bits uint64, star bool, err error) {
	if text == "" {
		return 0, false, fmt.Errorf("cron: %s is empty", k.name)
	}
	star = text[0] == '*'
	for rest := text; ; {
		item, tail, more := strings.Cut(rest, ",")
		if item == "" {
			return 0, false, fmt.Errorf("cron: %s %q: empty list item", k.name, text)
		}
		b, err := k.item(item)
		if err != nil {
			return 0, false, err
		}
		bits |= b
		if !more {
			return bits, star, nil
		}
		rest = tail
	}
}

// item parses one list item: *, a, a-b, with an optional /n.
func (k *kind) item(item string) (uint64, error) {
	base, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		var ok bool
		step, ok = number(stepText)
		if !ok {
			return 0, fmt.Errorf("cron: %s %q: step %q is not a number", k.name, item, stepText)
		}
		if step < 1 || step > k.steps {
			return 0, fmt.Errorf("cron: %s %q: step out of range 1-%d", k.name, item, k.steps)
		}
	}
	var lo, hi int
	if base == "*" {
		lo, hi = k.min, k.max
	} else if a, b, isRange := strings.Cut(base, "-"); isRange {
		var err error
		if lo, err = k.value(a, item); err != nil {
			return 0, err
		}
		if hi, err = k.value(b, item); err != nil {
			return 0, err
		}
		if k.dowStd && hi == 0 && lo > 0 {
			hi = 7 // FRI-SUN, 5-0: a range may end on Sunday as 0
		}
		if lo > hi {
			if k.dowStd || k.dowMonday {
				return 0, fmt.Errorf("cron: %s %q: range wraps past the end of the week; write it as a list (e.g. FRI-SAT,SUN-MON)", k.name, item)
			}
			return 0, fmt.Errorf("cron: %s %q: range start %d is after its end %d", k.name, item, lo, hi)
		}
	} else {
		var err error
		if lo, err = k.value(base, item); err != nil {
			return 0, err
		}
		hi = lo
		if hasStep {
			hi = k.max
		}
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << v
	}
	return bits, nil
}

// value parses a number or, where the field has them, a name; item is for the error.
func (k *kind) value(tok, item string) (int, error) {
	if tok == "" {
		return 0, fmt.Errorf("cron: %s %q: missing number", k.name, item)
	}
	if v, ok := number(tok); ok {
		if v < k.min || v > k.max {
			return 0, fmt.Errorf("cron: %s %q: out of range %d-%d", k.name, tok, k.min, k.max)
		}
		return v, nil
	}
	if k.names != nil && len(tok) == 3 {
		for i, n := range k.names {
			if strings.EqualFold(tok, n) {
				return k.min + i, nil
			}
		}
	}
	if k.names != nil {
		return 0, fmt.Errorf("cron: %s %q: not a number or name (%s-%s)", k.name, tok, k.names[0], k.names[len(k.names)-1])
	}
	return 0, fmt.Errorf("cron: %s %q: not a number", k.name, tok)
}

// number parses a decimal of at most 3 digits' worth of value: anything of 1000 and more
// comes back as 1000, out of every field's range, so no input overflows.
func number(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v < 1000 {
			v = v*10 + int(c-'0')
		}
	}
	if v > 1000 {
		v = 1000
	}
	return v, true
}
