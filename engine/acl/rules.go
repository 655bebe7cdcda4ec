package acl

import (
	"errors"
	"hash/maphash"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/spur-gearman/spur/engine"
)

// ErrDenied is wrapped by every refusal Allow returns: errors.Is(err, ErrDenied).
var ErrDenied = errors.New("acl: not granted")

// numActions bounds engine.Action values the rules know; any other action is refused.
const numActions = int(engine.ActAdmin) + 1

// Rules is a parsed ACL file. It is immutable once parsed and safe for concurrent use; the
// zero value grants nothing.
type Rules struct {
	sections []section
	tokens   []token // bearer tokens of HTTP clients, in file order
	// denials remembers recent refusals so that a client repeating a refused request
	// gets the same error value back without an allocation (a flood costs nothing).
	denials [denialSlots]atomic.Pointer[Denied]
}

// denialSlots is the size of the direct-mapped refusal cache.
const denialSlots = 256

// A section is one "[selectors]" block: who it applies to and what it grants them.
type section struct {
	line     int
	header   string // the selectors as written, for messages
	anyone   bool
	loopback bool
	certs    []glob
	tokens   []glob // token:NAME selectors
	nets     []netip.Prefix
	grants   [numActions]patternSet
}

// patternSet is what one action line (or several) grants, split by kind so that the common
// kinds cost a map lookup or a comparison.
type patternSet struct {
	all      bool
	exact    map[string]struct{}
	patterns []glob // prefix, suffix and general
}

func (ps *patternSet) add(g glob) {
	switch g.kind {
	case globAll:
		ps.all = true
	case globExact:
		if ps.exact == nil {
			ps.exact = make(map[string]struct{})
		}
		ps.exact[g.lit] = struct{}{}
	default:
		ps.patterns = append(ps.patterns, g)
	}
}

func (ps *patternSet) empty() bool { return !ps.all && len(ps.exact) == 0 && len(ps.patterns) == 0 }

func (ps *patternSet) match(name []byte) bool {
	if ps.all {
		return true
	}
	if _, ok := ps.exact[string(name)]; ok { // the lookup does not convert
		return true
	}
	for i := range ps.patterns {
		if ps.patterns[i].matchBytes(name) {
			return true
		}
	}
	return false
}

// Sections is the number of sections in the file (for a log line after loading it).
func (r *Rules) Sections() int { return len(r.sections) }

// Peer is who asks, as the rules see them: Identity with every verified name.
type Peer struct {
	Names    []string // verified certificate names (CN, then SANs); none for plaintext
	IP       string   // remote address without the port; "-" when unknown
	Loopback bool
	Token    string // the name of the bearer token an HTTP request presented; "" for none
}

// Allow implements engine.Authorizer: nil when a section matching id grants act on name,
// otherwise a *Denied wrapping ErrDenied. It does not allocate when it allows, nor when
// it refuses what it refused recently.
func (r *Rules) Allow(id *engine.Identity, act engine.Action, name []byte) error {
	var one [1]string
	var names []string
	if id.Name != "" {
		// When engine.Identity carries every verified name (Names), pass them here.
		one[0] = id.Name
		names = one[:]
	}
	return r.check(names, id.IP, id.Loopback, id.Token, act, name)
}

// Check is Allow for a Peer, for transports that know several names for one peer.
func (r *Rules) Check(p *Peer, act engine.Action, name []byte) error {
	return r.check(p.Names, p.IP, p.Loopback, p.Token, act, name)
}

// check takes the peer's fields one by one so that escape analysis sees that names (often
// on the caller's stack) is only read, while ip (kept by netip's zone handling) may leak.
func (r *Rules) check(names []string, ip string, loopback bool, tok string, act engine.Action, name []byte) error {
	if r.grants(names, ip, loopback, tok, act, name) {
		return nil
	}
	return r.deny(names, ip, loopback, tok, act, name)
}

func (r *Rules) grants(names []string, ip string, loopback bool, tok string, act engine.Action, name []byte) bool {
	if int(act) >= numActions {
		return false
	}
	var addr netip.Addr
	parsed := false
	for i := range r.sections {
		s := &r.sections[i]
		set := &s.grants[act]
		if set.empty() {
			continue
		}
		who := s.anyone || (s.loopback && loopback) || s.matchCert(names) || s.matchToken(tok)
		if !who && len(s.nets) > 0 {
			if !parsed {
				addr, parsed = parseAddr(ip), true
			}
			who = s.matchNet(addr)
		}
		if who && set.match(name) {
			return true
		}
	}
	return false
}

func (s *section) matchCert(names []string) bool {
	for i := range s.certs {
		for _, n := range names {
			if n != "" && s.certs[i].matchString(n) {
				return true
			}
		}
	}
	return false
}

func (s *section) matchToken(tok string) bool {
	if tok == "" {
		return false
	}
	for i := range s.tokens {
		if s.tokens[i].matchString(tok) {
			return true
		}
	}
	return false
}

func (s *section) matchNet(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads the engine's IP text; an invalid Addr when it is unknown ("-").
func parseAddr(ip string) netip.Addr {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// Denied is one refusal: what was asked and by whom. Its text reads
// `not granted submit on "payments" to cert:web-1 from 10.1.2.3`.
type Denied struct {
	Action   engine.Action
	Name     string // the function, or the admin command
	Names    []string
	IP       string
	Loopback bool
	Token    string
	text     string
}

func (d *Denied) Error() string { return d.text }
func (d *Denied) Unwrap() error { return ErrDenied }

// Who is the identity as the refusal texts show it: "cert:web-1 from 10.1.2.3", or the
// address alone for a connection without a verified name.
func (d *Denied) Who() string {
	who := d.IP
	if len(d.Names) > 0 {
		who = "cert:" + strings.Join(d.Names, ",") + " from " + d.IP
	}
	if d.Token != "" {
		who = "token:" + d.Token + " " + who
	}
	return who
}

var denialSeed = maphash.MakeSeed()

// deny returns the refusal for p, act and name: the cached one when this exact refusal
// happened recently, else a new one (which then replaces whatever shared its slot).
func (r *Rules) deny(names []string, ip string, loopback bool, tok string, act engine.Action, name []byte) error {
	h := maphash.Bytes(denialSeed, name) ^ maphash.String(denialSeed, ip)*31 ^ uint64(act+1)*0x9e3779b97f4a7c15 ^
		maphash.String(denialSeed, tok)*17
	for _, n := range names {
		h = h*1099511628211 ^ maphash.String(denialSeed, n)
	}
	slot := &r.denials[(h^h>>32)%denialSlots]
	if d := slot.Load(); d != nil && d.same(names, ip, loopback, tok, act, name) {
		return d
	}
	d := &Denied{
		Action:   act,
		Name:     string(name),
		Names:    append([]string(nil), names...),
		IP:       ip,
		Loopback: loopback,
		Token:    tok,
	}
	d.text = "not granted " + act.String() + " on " + strconv.Quote(d.Name) + " to " + d.Who()
	slot.Store(d)
	return d
}

func (d *Denied) same(names []string, ip string, loopback bool, tok string, act engine.Action, name []byte) bool {
	if d.Action != act || d.Loopback != loopback || d.IP != ip || d.Token != tok || d.Name != string(name) ||
		len(d.Names) != len(names) {
		return false
	}
	for i := range d.Names {
		if d.Names[i] != names[i] {
			return false
		}
	}
	return true
}
