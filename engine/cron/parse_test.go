package cron

import (
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"
)

func mustParse(t testing.TB, expr string) *Spec {
	t.Helper()
	s, err := Parse(expr)
	if err != nil {
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	return s
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("1,", 130) + "1 * * * *"
	for _, c := range []struct{ expr, want string }{
		{"", "cron: empty expression"},
		{" \t ", "cron: empty expression"},
		{"* * * *", "cron: 4 fields, want 5 (minute hour day-of-month month day-of-week)"},
		{"* * * * * *", "cron: 6 fields, want 5"},
		{"60 * * * *", `cron: minute "60": out of range 0-59`},
		{"* 25 * * *", `cron: hour "25": out of range 0-23`},
		{"* 1-25 * * *", `cron: hour "25": out of range 0-23`},
		{"* 99999999999999999999 * * *", `cron: hour "99999999999999999999": out of range 0-23`},
		{"* * 0 * *", `cron: day-of-month "0": out of range 1-31`},
		{"* * 32 * *", `cron: day-of-month "32": out of range 1-31`},
		{"* * * 0 *", `cron: month "0": out of range 1-12`},
		{"* * * 13 *", `cron: month "13": out of range 1-12`},
		{"* * * * 8", `cron: day-of-week "8": out of range 0-7`},
		{"1,,2 * * * *", `cron: minute "1,,2": empty list item`},
		{",1 * * * *", `cron: minute ",1": empty list item`},
		{"1, * * * *", `cron: minute "1,": empty list item`},
		{"*/0 * * * *", `cron: minute "*/0": step out of range 1-60`},
		{"*/61 * * * *", `cron: minute "*/61": step out of range 1-60`},
		{"* */25 * * *", `cron: hour "*/25": step out of range 1-24`},
		{"* * * * */8", `cron: day-of-week "*/8": step out of range 1-7`},
		{"*/ * * * *", `cron: minute "*/": step "" is not a number`},
		{"1/2/3 * * * *", `cron: minute "1/2/3": step "2/3" is not a number`},
		{"5-2 * * * *", `cron: minute "5-2": range start 5 is after its end 2`},
		{"* * * DEC-JAN *", `cron: month "DEC-JAN": range start 12 is after its end 1`},
		{"* * * * FRI-MON", `cron: day-of-week "FRI-MON": range wraps past the end of the week`},
		{"* * * * 5-1", `cron: day-of-week "5-1": range wraps past the end of the week`},
		{"* * * * 7-1", `cron: day-of-week "7-1": range wraps`},
		{"a * * * *", `cron: minute "a": not a number`},
		{"* * * FOO *", `cron: month "FOO": not a number or name (JAN-DEC)`},
		{"* * * * MONDAY", `cron: day-of-week "MONDAY": not a number or name (SUN-SAT)`},
		{"* * * JAN-FOO *", `cron: month "FOO": not a number or name`},
		{"* MON * * *", `cron: hour "MON": not a number`},
		{"* * JAN * *", `cron: day-of-month "JAN": not a number`},
		{"1-2-3 * * * *", `cron: minute "2-3": not a number`},
		{"-5 * * * *", `cron: minute "-5": missing number`},
		{"5- * * * *", `cron: minute "5-": missing number`},
		{"*-5 * * * *", `cron: minute "*": not a number`},
		{"? * * * *", `cron: minute "?": not a number`},
		{"* * L * *", `cron: day-of-month "L": not a number`},
		{"* * * * 1#2", `cron: day-of-week "1#2": not a number`},
		{"+1 * * * *", `cron: minute "+1": not a number`},
		{"1\n * * * *", `cron: minute "1\n": not a number`},
		{"@reboot", `cron: "@reboot" is not supported`},
		{"@every 5m", `cron: unknown macro "@every 5m"`},
		{"@daily 1", `cron: unknown macro "@daily 1"`},
		{long, "cron: expression longer than 256 bytes"},
	} {
		s, err := Parse(c.expr)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error %q", c.expr, s, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Parse(%q) error\n  %q\nwant prefix\n  %q", c.expr, err, c.want)
		}
	}
}

func TestParseFieldsErrors(t *testing.T) {
	for _, c := range []struct {
		f          [5]string
		mondayZero bool
		want       string
	}{
		{[5]string{"", "", "", "", "7"}, true, `cron: day-of-week "7": out of range 0-6`},
		{[5]string{"", "", "", "", "SUN-MON"}, true, `cron: day-of-week "SUN-MON": range wraps`},
		{[5]string{"", "", "", "", "8"}, false, `cron: day-of-week "8": out of range 0-7`},
		{[5]string{" 1", "", "", "", ""}, false, `cron: minute " 1": not a number`},
		{[5]string{"", "24", "", "", ""}, true, `cron: hour "24": out of range 0-23`},
		{[5]string{strings.Repeat("1", 257), "", "", "", ""}, false, "cron: expression longer than 256 bytes"},
		// A Monday-based step skipping Sunday, next to a day-of-month without the 1st: the
		// "both must match" rule has no standard spelling.
		{[5]string{"0", "0", "15", "", "*/4"}, true, `cron: day-of-week "*/4" with day-of-month "15"`},
	} {
		s, err := ParseFields(c.f[0], c.f[1], c.f[2], c.f[3], c.f[4], c.mondayZero)
		if err == nil {
			t.Errorf("ParseFields(%q, %v) = %v, want error", c.f, c.mondayZero, s)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("ParseFields(%q, %v) error\n  %q\nwant prefix\n  %q", c.f, c.mondayZero, err, c.want)
		}
	}
}

// TestParseString pins what each syntax parses to, through the canonical form.
func TestParseString(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"* * * * *", "* * * * *"},
		{"  0\t9  * *   1-5 ", "0 9 * * 1-5"},
		{"0-59 0-23 * 1-12 0-7", "* * * * *"},
		{"*/15 * * * *", "*/15 * * * *"},
		{"0/15 * * * *", "*/15 * * * *"},
		{"0,30 */2 * * *", "*/30 */2 * * *"},
		{"5/20 * * * *", "5-45/20 * * * *"},
		{"1,2 * * * *", "1,2 * * * *"},
		{"1,2,3,7,9,10 * * * *", "1-3,7,9,10 * * * *"},
		{"3,1,2,2 * * * *", "1-3 * * * *"},
		{"0 0 1 1 *", "0 0 1 1 *"},
		{"0 0 * * 7", "0 0 * * 0"},
		{"0 0 * * 0,7", "0 0 * * 0"},
		{"0 0 * * sun", "0 0 * * 0"},
		{"0 0 * * FRI-SUN", "0 0 * * 0,5,6"},
		{"0 0 * * 5-0", "0 0 * * 0,5,6"},
		{"0 0 * * 5-7", "0 0 * * 0,5,6"},
		{"0 0 * * Mon-Fri", "0 0 * * 1-5"},
		{"0 0 * * 1/2", "0 0 * * 0,1,3,5"}, // 1 through 7: Mon, Wed, Fri, Sun
		{"0 0 * * 7/2", "0 0 * * 0"},
		{"0 0 * jan-mar,DEC *", "0 0 * 1-3,12 *"},
		{"0 0 * */3 *", "0 0 * */3 *"},
		{"0 0 * 2-12/3 *", "0 0 * 2-11/3 *"},
		{"0 0 1-31 * *", "0 0 * * *"},    // day-of-week '*' makes the rule "both": same as *
		{"0 0 1-31 * 1", "0 0 1-31 * 1"}, // "either": every day
		{"0 0 * * 0-6", "0 0 * * *"},     // dom '*': "both", and all weekdays
		{"0 0 1 * 0-6", "0 0 1 * 0-6"},   // "either": every day
		{"0 0 */2 * 1", "0 0 */2 * 1"},   // Vixie: the leading '*' means "both"
		{"0 0 */2,4 * 1", "0 0 */2,4 * 1"},
		{"0 0 1-31/2 * 1", "0 0 1-31/2 * 1"}, // no '*': "either"
		{"0 0 */2 * */2", "0 0 */2 * 0-6/2"},
		{"0 0 15 * */3", "0 0 15 * */3"},
		{"0 0 15 * */3,1", "0 0 15 * */3,1"},
		{"0 0 */31 * 1", "0 0 */31 * 1"},
		{"0 0 1 * *", "0 0 1 * *"},
		{"@yearly", "0 0 1 1 *"},
		{"@ANNUALLY", "0 0 1 1 *"},
		{"@monthly", "0 0 1 * *"},
		{"@weekly", "0 0 * * 0"},
		{"@daily", "0 0 * * *"},
		{"  @midnight ", "0 0 * * *"},
		{"@hourly", "0 * * * *"},
		{"007 09 01 01 00", "7 9 1 1 0"},
	} {
		s := mustParse(t, c.expr)
		if got := s.String(); got != c.want {
			t.Errorf("Parse(%q).String() = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestParseFieldsMondayZero(t *testing.T) {
	s, err := ParseFields("0", "9", "", "", "0", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.String(); got != "0 9 * * 1" {
		t.Errorf("String() = %q, want %q", got, "0 9 * * 1")
	}
	berlin := loadZone(t, "Europe/Berlin")
	from := time.Date(2025, 6, 4, 12, 0, 0, 0, berlin) // a Wednesday
	got := []time.Time{}
	for at := from; len(got) < 3; {
		at = s.Next(at)
		got = append(got, at)
	}
	for i, want := range []time.Time{
		time.Date(2025, 6, 9, 9, 0, 0, 0, berlin),
		time.Date(2025, 6, 16, 9, 0, 0, 0, berlin),
		time.Date(2025, 6, 23, 9, 0, 0, 0, berlin),
	} {
		if !got[i].Equal(want) || got[i].Weekday() != time.Monday {
			t.Errorf("run %d = %v, want %v (a Monday)", i, got[i], want)
		}
	}

	for _, c := range []struct {
		dom, dow   string
		mondayZero bool
		want       string // dom and dow of String()
	}{
		{"", "0-4", true, "* 1-5"},
		{"", "6", true, "* 0"},
		{"", "5-6", true, "* 0,6"},
		{"", "SUN", true, "* 0"},
		{"", "mon-sun", true, "* *"},
		{"", "sat,sun", true, "* 0,6"},
		{"", "", true, "* *"},
		{"", "*/2", true, "* 0,1,3,5"}, // Mon Wed Fri Sun; dom '*' carries the rule
		{"1", "*/4", true, "*/31 1,5"}, // Mon Fri, rule "both": the 1st carries the '*'
		{"1,15", "*/4", true, "*/31,15 1,5"},
		{"15", "0-4", true, "15 1-5"},   // "either"
		{"15", "*/3", true, "15 */4,1"}, // Mon Thu Sun: Sunday carries the '*'
		{"", "7", false, "* 0"},
		{"", "0", false, "* 0"},
		{"", "1-5", false, "* 1-5"},
	} {
		s, err := ParseFields("0", "0", c.dom, "", c.dow, c.mondayZero)
		if err != nil {
			t.Errorf("ParseFields(dom %q, dow %q, %v): %v", c.dom, c.dow, c.mondayZero, err)
			continue
		}
		want := "0 0 " + strings.Replace(c.want, " ", " * ", 1)
		if got := s.String(); got != want {
			t.Errorf("ParseFields(dom %q, dow %q, %v).String() = %q, want %q", c.dom, c.dow, c.mondayZero, got, want)
		}
	}
}

// TestParseFieldsLikeParse: with standard numbering, the five fields parse as the
// expression does.
func TestParseFieldsLikeParse(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 2000; i++ {
		f := randomFields(r)
		a, errA := Parse(strings.Join(f[:], " "))
		b, errB := ParseFields(f[0], f[1], f[2], f[3], f[4], false)
		if (errA == nil) != (errB == nil) || errA == nil && *a != *b {
			t.Fatalf("%q: Parse = %v, %v; ParseFields = %v, %v", f, a, errA, b, errB)
		}
	}
}

// TestDayRule checks the day rule against its definition, computed from the raw fields:
// if either field's text starts with '*', a day matches both; else either.
func TestDayRule(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 3000; i++ {
		f := randomFields(r)
		mondayZero := r.Intn(3) == 0
		s, err := ParseFields(f[0], f[1], f[2], f[3], f[4], mondayZero)
		if err != nil {
			if mondayZero && strings.Contains(err.Error(), "no standard form") {
				continue
			}
			t.Fatalf("%q: %v", f, err)
		}
		dom, _, _ := domKind.field(f[2])
		dk := &dowKind
		if mondayZero {
			dk = &dowMondayKind
		}
		dow, _, _ := dk.field(f[4])
		both := f[2][0] == '*' || f[4][0] == '*'
		for y := int64(2024); y <= 2025; y++ {
			for m := 1; m <= 12; m++ {
				for d := 1; d <= daysIn(y, m); d++ {
					wd := weekday(daysFromCivil(y, m, d)) // 0 = Sunday
					var onDow bool
					if mondayZero {
						onDow = dow&(1<<((wd+6)%7)) != 0
					} else {
						onDow = dow&(1<<wd) != 0 || wd == 0 && dow&(1<<7) != 0
					}
					onDom := dom&(1<<d) != 0
					want := onDom || onDow
					if both {
						want = onDom && onDow
					}
					if got := s.days(y, m)&(1<<d) != 0; got != want {
						t.Fatalf("%q mondayZero=%v on %d-%02d-%02d: match %v, want %v", f, mondayZero, y, m, d, got, want)
					}
				}
			}
		}
	}
}

// TestRoundTrip: Parse(s.String()) == *s for random specs, and String is stable.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		f := randomFields(r)
		var s *Spec
		var err error
		switch i % 3 {
		case 0:
			s, err = Parse(strings.Join(f[:], " \t"[:1+r.Intn(2)]))
		case 1:
			s, err = ParseFields(f[0], f[1], f[2], f[3], f[4], false)
		default:
			s, err = ParseFields(f[0], f[1], f[2], f[3], f[4], true)
			if err != nil && strings.Contains(err.Error(), "no standard form") {
				continue
			}
		}
		if err != nil {
			t.Fatalf("%q: %v", f, err)
		}
		str := s.String()
		s2, err := Parse(str)
		if err != nil {
			t.Fatalf("%q printed %q: %v", f, str, err)
		}
		if *s2 != *s {
			t.Fatalf("%q printed %q parses to %+v, want %+v", f, str, *s2, *s)
		}
		if str2 := s2.String(); str2 != str {
			t.Fatalf("%q: String not stable: %q then %q", f, str, str2)
		}
		if len(str) > MaxLen {
			t.Fatalf("%q printed %d bytes", f, len(str))
		}
	}
}

// randomFields generates the five fields of a random valid expression (standard
// numbering, valid in Gearman numbering too when dow stays within 0-6), biased towards
// small lists, steps and ranges, names included.
func randomFields(r *rand.Rand) [5]string {
	kinds := [5]*kind{&minuteKind, &hourKind, &domKind, &monthKind, &dowMondayKind}
	var f [5]string
	for i, k := range kinds {
		f[i] = randomField(r, k)
	}
	return f
}

func randomField(r *rand.Rand, k *kind) string {
	if r.Intn(3) == 0 {
		return "*"
	}
	n := 1 + r.Intn(3)
	items := make([]string, n)
	for i := range items {
		items[i] = randomItem(r, k)
	}
	return strings.Join(items, ",")
}

func randomItem(r *rand.Rand, k *kind) string {
	span := k.max - k.min + 1
	named := k.names != nil && r.Intn(3) == 0 // names at both ends of a range, or none
	val := func(v int) string {
		if named && v-k.min < len(k.names) {
			s := k.names[v-k.min]
			if r.Intn(2) == 0 {
				s = strings.ToLower(s)
			}
			return s
		}
		return strconv.Itoa(v)
	}
	step := func() string { return "/" + strconv.Itoa(1+r.Intn(k.steps)) }
	a := k.min + r.Intn(span)
	b := a + r.Intn(k.max-a+1)
	switch r.Intn(6) {
	case 0:
		return "*" + step()
	case 1:
		return val(a) + "-" + val(b)
	case 2:
		return val(a) + "-" + val(b) + step()
	case 3:
		return val(a) + step()
	default:
		return val(a)
	}
}

// TestCivil checks the calendar arithmetic against package time over ±2000 years.
func TestCivil(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for i := 0; i < 200000; i++ {
		z := int64(r.Intn(1460000)) - 730000
		if i < 1000 {
			z = int64(i) - 500
		}
		tm := time.Unix(z*86400, 0).UTC()
		y, m, d := civilFromDays(z)
		if y != int64(tm.Year()) || m != int(tm.Month()) || d != tm.Day() {
			t.Fatalf("civilFromDays(%d) = %d-%d-%d, want %v", z, y, m, d, tm)
		}
		if back := daysFromCivil(y, m, d); back != z {
			t.Fatalf("daysFromCivil(%d-%d-%d) = %d, want %d", y, m, d, back, z)
		}
		if w := weekday(z); w != int(tm.Weekday()) {
			t.Fatalf("weekday(%d) = %d, want %d", z, w, tm.Weekday())
		}
		if n := daysIn(y, m); n != time.Date(int(y), time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
			t.Fatalf("daysIn(%d, %d) = %d", y, m, n)
		}
	}
}
