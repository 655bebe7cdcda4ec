package acl

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// FuzzGlobAgreesWithPathMatch: on ASCII without '/', the matcher is path.Match. (Beyond
// ASCII path.Match lets '*' end inside a character, so "*??0" matches one 4-byte
// character and "0"; ours steps whole characters: see TestGlobStepsWholeCharacters. And "[!...]" negates here, as in a shell,
// where path.Match reads a '!'.)
func FuzzGlobAgreesWithPathMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"billing.*", "billing.charge"}, {"*x*y", "axbxy"}, {"[a-c]?", "bé"}, {"[^a]*", "ab"},
		{"a*b*c*d", "aXbXcXd"}, {`\*a`, "*a"}, {"*", ""}, {"é?", "éé"}, {"[é-ü]", "ö"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		if strings.Contains(pat, "/") || strings.Contains(s, "/") || len(pat) > 64 || len(s) > 256 ||
			!ascii(pat) || !ascii(s) || strings.Contains(pat, "[!") {
			return
		}
		g, err := compileGlob(pat)
		want, perr := path.Match(pat, s)
		if err != nil || perr != nil {
			return // the syntaxes differ at the edges ('-' and ']' in classes); both refuse most
		}
		if got := g.matchBytes([]byte(s)); got != want {
			t.Fatalf("%q on %q: %v, path.Match says %v", pat, s, got, want)
		}
		if got := g.matchString(s); got != want {
			t.Fatalf("%q on %q (string): %v, path.Match says %v", pat, s, got, want)
		}
	})
}
