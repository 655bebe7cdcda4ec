package cron

import (
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary text to Parse (and, split at blanks, to ParseFields in both
// numberings). Whatever parses must print a canonical form that parses back to the same
// Spec, and Next must return a matching minute after its argument, or the zero Time.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"* * * * *", "0 9 * * 1-5", "*/15 0-23/2 1,15 JAN-MAR,dec MON-FRI", "0 0 29 2 *",
		"0 0 */2 * 1", "5/7 3 1-31/3 */5 5-SUN", "@hourly", "@weekly", "@reboot", "1,,2 * * * *",
		"0 0 15 * */4", "7 7 7 7 7", "0\t0  1 1\t0", "* * * * 5-1", "99999999999 * * * *",
	} {
		f.Add(seed)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	from := []time.Time{
		time.Date(2025, 3, 30, 1, 59, 0, 0, berlin),
		time.Date(2025, 10, 26, 0, 59, 30, 0, time.UTC).In(berlin),
		time.Date(2028, 2, 28, 23, 59, 59, 0, time.UTC),
	}
	f.Fuzz(func(t *testing.T, expr string) {
		check := func(s *Spec, how string) {
			str := s.String()
			s2, err := Parse(str)
			if err != nil {
				t.Fatalf("%s %q printed %q: %v", how, expr, str, err)
			}
			if *s2 != *s || s2.String() != str {
				t.Fatalf("%s %q printed %q, which parses to %+v, want %+v", how, expr, str, *s2, *s)
			}
			for _, at := range from {
				n := s.Next(at)
				if n.IsZero() {
					continue
				}
				if !n.After(at) || n.Location() != at.Location() || n.Second() != 0 || n.Sub(at) > 5*366*24*time.Hour {
					t.Fatalf("%s %q: Next(%v) = %v", how, expr, at, n)
				}
			}
		}
		if s, err := Parse(expr); err == nil {
			check(s, "Parse")
		} else if !strings.HasPrefix(err.Error(), "cron: ") {
			t.Fatalf("Parse(%q) error %q lacks the prefix", expr, err)
		}
		fields := strings.Fields(expr)
		if len(fields) != 5 {
			return
		}
		for _, mondayZero := range []bool{false, true} {
			s, err := ParseFields(fields[0], fields[1], fields[2], fields[3], fields[4], mondayZero)
			if err == nil {
				check(s, "ParseFields")
			}
		}
	})
}
