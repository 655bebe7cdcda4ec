package acl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spur-gearman/spur/engine"
)

const sample = `# the package documentation's example, and a few more
[cert:billing-*]
submit  billing.* invoice
work    billing.*
status  billing.*
admin   status workers show

[net:10.0.0.0/8 net:fd00::/8]   # two networks, one section
submit *
status *

[loopback]
admin *
[any]
admin STATUS version
[net:192.168.1.7]
work resize-[0-9] *.thumb report#1
[cert:ops.example.com]
admin shutdown
`

func mustParse(t testing.TB, text string) *Rules {
	t.Helper()
	r, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

var (
	billing  = engine.Identity{IP: "203.0.113.9", Name: "billing-eu"}
	web      = engine.Identity{IP: "203.0.113.10", Name: "web-1"}
	office4  = engine.Identity{IP: "10.1.2.3"}
	office6  = engine.Identity{IP: "fd12::5"}
	mapped   = engine.Identity{IP: "::ffff:10.9.9.9"}
	outside4 = engine.Identity{IP: "11.0.0.1"}
	outside6 = engine.Identity{IP: "2001:db8::1"}
	local    = engine.Identity{IP: "127.0.0.1", Loopback: true}
	unknown  = engine.Identity{IP: "-"}
	thumbs   = engine.Identity{IP: "192.168.1.7"}
	ops      = engine.Identity{IP: "198.51.100.1", Name: "ops.example.com"}
)

func TestMatching(t *testing.T) {
	r := mustParse(t, sample)
	if r.Sections() != 6 {
		t.Fatalf("Sections() = %d, want 6", r.Sections())
	}
	cases := []struct {
		id    engine.Identity
		act   engine.Action
		name  string
		allow bool
	}{
		// cert glob: prefix patterns and exact names.
		{billing, engine.ActSubmit, "billing.charge", true},
		{billing, engine.ActSubmit, "invoice", true},
		{billing, engine.ActSubmit, "invoices", false},
		{billing, engine.ActSubmit, "payments", false},
		{billing, engine.ActWork, "billing.charge", true},
		{billing, engine.ActWork, "invoice", false}, // granted for submit only
		{billing, engine.ActStatus, "billing.x", true},
		{billing, engine.ActAdmin, "show", true},
		{billing, engine.ActAdmin, "workers", true},
		{billing, engine.ActAdmin, "shutdown", false},
		{billing, engine.ActAdmin, "status", true},
		{web, engine.ActSubmit, "billing.charge", false}, // a name the glob does not match
		{engine.Identity{IP: "203.0.113.9", Name: "billing-"}, engine.ActSubmit, "invoice", true},
		{engine.Identity{IP: "203.0.113.9", Name: "xbilling-eu"}, engine.ActSubmit, "invoice", false},
		// net CIDR, v4 and v6, and a v4-mapped v6 address.
		{office4, engine.ActSubmit, "anything", true},
		{office4, engine.ActStatus, "anything", true},
		{office4, engine.ActWork, "anything", false},
		{office6, engine.ActSubmit, "x", true},
		{mapped, engine.ActSubmit, "x", true},
		{outside4, engine.ActSubmit, "x", false},
		{outside6, engine.ActSubmit, "x", false},
		{unknown, engine.ActSubmit, "x", false},
		// a bare address, a class, a suffix pattern and a '#' inside a name.
		{thumbs, engine.ActWork, "resize-7", true},
		{thumbs, engine.ActWork, "resize-x", false},
		{thumbs, engine.ActWork, "resize-10", false},
		{thumbs, engine.ActWork, "big.thumb", true},
		{thumbs, engine.ActWork, "report#1", true},
		{engine.Identity{IP: "192.168.1.8"}, engine.ActWork, "resize-7", false},
		// loopback, and any (admin words are case-insensitive in the file).
		{local, engine.ActAdmin, "shutdown", true},
		{local, engine.ActAdmin, "drop", true},
		{local, engine.ActSubmit, "x", false},
		{outside4, engine.ActAdmin, "status", true},
		{outside4, engine.ActAdmin, "version", true},
		{outside4, engine.ActAdmin, "workers", false},
		{unknown, engine.ActAdmin, "status", true},
		// union of sections: billing's cert from the office network gets both.
		{engine.Identity{IP: "10.0.0.1", Name: "billing-us"}, engine.ActSubmit, "payments", true},
		{engine.Identity{IP: "10.0.0.1", Name: "billing-us"}, engine.ActWork, "billing.a", true},
		{engine.Identity{IP: "10.0.0.1", Name: "billing-us"}, engine.ActWork, "payments", false},
		// an exact cert name, and an action the rules do not know.
		{ops, engine.ActAdmin, "shutdown", true},
		{ops, engine.ActAdmin, "drop", false},
		{local, engine.Action(9), "shutdown", false},
	}
	for _, c := range cases {
		err := r.Allow(&c.id, c.act, []byte(c.name))
		if (err == nil) != c.allow {
			t.Errorf("%+v %v %q: err = %v, want allowed %v", c.id, c.act, c.name, err, c.allow)
		}
		if err != nil && !errors.Is(err, ErrDenied) {
			t.Errorf("%v does not wrap ErrDenied", err)
		}
	}
}

func TestDenyByDefault(t *testing.T) {
	for _, text := range []string{"", "# nothing\n", "[any]\n", "[loopback]\nsubmit x\n"} {
		r := mustParse(t, text)
		if err := r.Allow(&office4, engine.ActSubmit, []byte("x")); err == nil {
			t.Errorf("%q allowed a submit from %s", text, office4.IP)
		}
		if err := r.Allow(&office4, engine.ActAdmin, []byte("status")); err == nil {
			t.Errorf("%q allowed admin status", text)
		}
	}
	var zero Rules
	if zero.Allow(&local, engine.ActAdmin, []byte("status")) == nil {
		t.Error("the zero Rules allowed something")
	}
}

func TestPeerWithSeveralNames(t *testing.T) {
	r := mustParse(t, "[cert:*.billing.example]\nsubmit invoice\n")
	p := &Peer{Names: []string{"billing-7", "svc.billing.example"}, IP: "1.2.3.4"}
	if err := r.Check(p, engine.ActSubmit, []byte("invoice")); err != nil {
		t.Errorf("a SAN matching did not grant: %v", err)
	}
	p.Names = []string{"billing-7", "svc.other.example"}
	if err := r.Check(p, engine.ActSubmit, []byte("invoice")); err == nil {
		t.Error("no name matches, yet granted")
	}
	// An empty name is "no certificate", which cert:* does not match.
	r = mustParse(t, "[cert:*]\nsubmit *\n")
	if r.Allow(&office4, engine.ActSubmit, []byte("x")) == nil {
		t.Error("cert:* matched a connection without a certificate")
	}
	if r.Allow(&web, engine.ActSubmit, []byte("x")) != nil {
		t.Error("cert:* did not match a certificate")
	}
}

func TestDeniedText(t *testing.T) {
	r := mustParse(t, sample)
	err := r.Allow(&web, engine.ActSubmit, []byte("payments"))
	want := `not granted submit on "payments" to cert:web-1 from 203.0.113.10`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	var d *Denied
	if !errors.As(err, &d) || d.Action != engine.ActSubmit || d.Name != "payments" || d.IP != web.IP {
		t.Fatalf("Denied = %+v", d)
	}
	err = r.Allow(&outside4, engine.ActAdmin, []byte("shutdown"))
	if want := `not granted admin on "shutdown" to 11.0.0.1`; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	// The refusal cache never answers for another request.
	a := r.Allow(&outside4, engine.ActSubmit, []byte("x"))
	if again := r.Allow(&outside4, engine.ActSubmit, []byte("x")); again != a {
		t.Errorf("a repeated refusal was not served from the cache")
	}
	b := r.Allow(&outside6, engine.ActSubmit, []byte("x"))
	c := r.Allow(&outside4, engine.ActWork, []byte("x"))
	d2 := r.Allow(&engine.Identity{IP: "11.0.0.1", Name: "n"}, engine.ActSubmit, []byte("x"))
	e := r.Allow(&outside4, engine.ActSubmit, []byte("y"))
	for _, other := range []error{b, c, d2, e} {
		if other.Error() == a.Error() {
			t.Fatalf("cached refusals mixed up: %v / %v", a, other)
		}
	}
	// Names with odd bytes are quoted, so a log line cannot be forged.
	err = r.Allow(&outside4, engine.ActSubmit, []byte("a\nb"))
	if !strings.Contains(err.Error(), `"a\nb"`) {
		t.Errorf("name not quoted: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ text, want string }{
		{"[any]\nsubmit x\n\nsumbit y\n", `acl: line 4: unknown action "sumbit"`},
		{"submit x\n", `acl: line 1: "submit" before the first [section]`},
		{"[any]\n  work\n", `acl: line 2: work names no pattern`},
		{"[any]\nsubmit ok [a-\n", `acl: line 2: bad pattern "[a-"`},
		{"[any]\nsubmit []\n", `acl: line 2: bad pattern "[]"`},
		{"[any]\nsubmit [z-a]\n", `acl: line 2: bad pattern "[z-a]"`},
		{"[any]\nsubmit a]\n", `acl: line 2: bad pattern "a]"`},
		{"[any]\nsubmit a\\\n", `acl: line 2: bad pattern "a\\"`},
		{"[any]\n[users]\n", `acl: line 2: unknown selector "users"`},
		{"[cert:]\n", `acl: line 1: "cert:" names no certificate`},
		{"[cert:a[]\n", `acl: line 1: bad certificate pattern "a["`},
		{"\n[net:10.0.0.0/33]\n", `acl: line 2: bad network "10.0.0.0/33"`},
		{"[net:10.0.0.300]\n", `acl: line 1: bad network "10.0.0.300"`},
		{"[net:fe80::1%eth0]\n", `acl: line 1: bad network "fe80::1%eth0"`},
		{"[]\n", `acl: line 1: empty section header`},
		{"[any\n", `acl: line 1: section header without its closing "]"`},
		{"[any] submit x\n", `acl: line 1: unexpected "submit x" after the section header`},
		{"[any]\nsubmit " + strings.Repeat("x", maxLine) + "\n", `acl: line 2: line longer than`},
	}
	for _, c := range cases {
		_, err := Parse(strings.NewReader(c.text))
		var pe *ParseError
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || !errors.As(err, &pe) {
			t.Errorf("Parse(%.40q) = %v, want %s...", c.text, err, c.want)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spur.acl")
	if err := os.WriteFile(path, []byte("[any]\nsumbit x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := "acl: " + path + `: line 2: unknown action "sumbit"`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load = %v, want %s...", err, want)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"a*", "a", true},
		{"a*", "ba", false},
		{"*a", "ba", true},
		{"*a", "ab", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a/*", "a/b/c", true}, // '/' is ordinary
		{"?", "é", true},       // one character, not one byte
		{"??", "é", false},
		{"*??", "é", false},
		{"*?", "é", true},
		{"[é-ê]x", "êx", true},
		{"[^a-c]", "d", true},
		{"[!a-c]", "b", false},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`a\[b`, "a[b", true},
		{`[\]x]`, "]", true},
		{"*.thumb", ".thumb", true},
		{"*x*y*z*", strings.Repeat("x", 40) + "y" + strings.Repeat("a", 40), false},
	}
	for _, c := range cases {
		g, err := compileGlob(c.pat)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", c.pat, err)
		}
		if got := g.matchString(c.s); got != c.want {
			t.Errorf("%q matchString %q = %v, want %v", c.pat, c.s, got, c.want)
		}
		if got := g.matchBytes([]byte(c.s)); got != c.want {
			t.Errorf("%q matchBytes %q = %v, want %v", c.pat, c.s, got, c.want)
		}
		if got := matchGlob(c.pat, c.s); got != c.want { // the general matcher agrees
			t.Errorf("%q matchGlob %q = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}

func TestReloadKeepsRulesOnABadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spur.acl")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[any]\nsubmit old\n")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Allow(&office4, engine.ActSubmit, []byte("old")) != nil {
		t.Fatal("the first file is not served")
	}
	write("[any]\nsubmit new\nsubmit [\n")
	if err := a.Reload(path); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("Reload of a bad file = %v", err)
	}
	if a.Allow(&office4, engine.ActSubmit, []byte("old")) != nil || a.Allow(&office4, engine.ActSubmit, []byte("new")) == nil {
		t.Fatal("a bad file changed the rules")
	}
	os.Remove(path)
	if err := a.Reload(path); err == nil || a.Allow(&office4, engine.ActSubmit, []byte("old")) != nil {
		t.Fatalf("a missing file changed the rules (err %v)", err)
	}
	write("[any]\nsubmit new\n")
	if err := a.Reload(path); err != nil {
		t.Fatal(err)
	}
	if a.Allow(&office4, engine.ActSubmit, []byte("new")) != nil || a.Allow(&office4, engine.ActSubmit, []byte("old")) == nil {
		t.Fatal("the good file is not served")
	}
	a.Set(nil)
	if a.Allow(&local, engine.ActAdmin, []byte("status")) == nil {
		t.Fatal("Set(nil) granted something")
	}
	if NewAuthorizer(nil).Allow(&local, engine.ActAdmin, []byte("status")) == nil {
		t.Fatal("NewAuthorizer(nil) granted something")
	}
}

// TestReloadUnderLoad swaps rules while event-loop-like goroutines check; run with -race.
func TestReloadUnderLoad(t *testing.T) {
	a := NewAuthorizer(mustParse(t, "[any]\nsubmit a\n"))
	ruleSets := []*Rules{mustParse(t, "[any]\nsubmit a\n"), mustParse(t, "[any]\nsubmit a b\n")}
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				if err := a.Allow(&office4, engine.ActSubmit, []byte("a")); err != nil {
					errs <- err
					return
				}
				a.Allow(&office4, engine.ActSubmit, []byte("c"))
			}
		}()
	}
	for i := range 2000 {
		a.Set(ruleSets[i%2])
	}
	close(done)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("a grant in both files was refused during reloads: %v", err)
		}
	}
}

func TestGlobStepsWholeCharacters(t *testing.T) {
	g, _ := compileGlob("*[^é]")
	if g.matchString("é") || !g.matchString("éa") {
		t.Error(`"*[^é]" must match a name whose last character is not é, and only that`)
	}
}

func TestGlobCountsCharacters(t *testing.T) {
	g, _ := compileGlob("*??0")
	if g.matchString("\U000975c0" + "0") {
		t.Error(`"*??0" matched one 4-byte character and "0"`)
	}
	if !g.matchString("\U000975c0" + "00") {
		t.Error(`"*??0" did not match a 4-byte character and "00"`)
	}
}
