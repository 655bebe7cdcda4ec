package acl

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/spur-gearman/spur/engine"
)

// ParseError is a mistake in an ACL file, with the line it is on.
type ParseError struct {
	File string // "" when parsed from a reader
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.File != "" {
		return "acl: " + e.File + ": line " + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return "acl: line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// maxLine bounds one line of a file; a longer one is an error, not a truncation.
const maxLine = 64 << 10

// Load reads and parses the ACL file at path.
func Load(path string) (*Rules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	defer f.Close()
	r, err := Parse(f)
	if pe, ok := err.(*ParseError); ok {
		pe.File = path
	} else if err != nil {
		err = fmt.Errorf("acl: %s: %w", path, err)
	}
	return r, err
}

// Parse reads an ACL file (the format is in the package documentation). It returns the
// first mistake as a *ParseError naming its line; an empty file is valid and grants nothing.
func Parse(r io.Reader) (*Rules, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	rules := &Rules{}
	var cur *section
	line := 0
	for sc.Scan() {
		line++
		fail := func(format string, args ...any) error {
			return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
		}
		text := stripComment(sc.Text())
		if text == "" {
			continue
		}
		if text[0] == '[' {
			s, err := parseHeader(text)
			if err != nil {
				return nil, fail("%s", err)
			}
			s.line = line
			rules.sections = append(rules.sections, s)
			cur = &rules.sections[len(rules.sections)-1]
			continue
		}
		fields := strings.Fields(text)
		if fields[0] == "token" {
			t, err := parseToken(fields)
			if err == nil {
				err = rules.addToken(t)
			}
			if err != nil {
				return nil, fail("%s", err)
			}
			continue
		}
		act, ok := actions[fields[0]]
		if !ok {
			return nil, fail("unknown action %q (want submit, work, status or admin, or a token line)", fields[0])
		}
		if cur == nil {
			return nil, fail("%q before the first [section]", fields[0])
		}
		if len(fields) == 1 {
			return nil, fail("%s names no pattern", fields[0])
		}
		set := &cur.grants[act]
		for _, p := range fields[1:] {
			if act == engine.ActAdmin {
				p = strings.ToLower(p) // the engine passes admin commands lower case
			}
			g, err := compileGlob(p)
			if err != nil {
				return nil, fail("bad pattern %q: %s", p, err)
			}
			set.add(g)
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, &ParseError{Line: line + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		return nil, fmt.Errorf("acl: %w", err)
	}
	return rules, nil
}

var actions = map[string]engine.Action{
	"submit": engine.ActSubmit,
	"work":   engine.ActWork,
	"status": engine.ActStatus,
	"admin":  engine.ActAdmin,
}

// stripComment drops a '#' comment (at the start of the line or after white space, so a
// '#' inside a function name stays) and the surrounding white space.
func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			s = s[:i]
			break
		}
	}
	return strings.TrimSpace(s)
}

// parseHeader reads "[selector ...]".
func parseHeader(text string) (section, error) {
	var s section
	end := strings.IndexByte(text, ']')
	if end < 0 {
		return s, fmt.Errorf("section header without its closing \"]\"")
	}
	if rest := strings.TrimSpace(text[end+1:]); rest != "" {
		return s, fmt.Errorf("unexpected %q after the section header", rest)
	}
	sels := strings.Fields(text[1:end])
	if len(sels) == 0 {
		return s, fmt.Errorf("empty section header (want cert:NAME, token:NAME, net:CIDR, loopback or any)")
	}
	s.header = strings.Join(sels, " ")
	for _, sel := range sels {
		kind, arg, _ := strings.Cut(sel, ":")
		switch {
		case sel == "any":
			s.anyone = true
		case sel == "loopback":
			s.loopback = true
		case kind == "cert":
			if arg == "" {
				return s, fmt.Errorf("%q names no certificate", sel)
			}
			g, err := compileGlob(arg)
			if err != nil {
				return s, fmt.Errorf("bad certificate pattern %q: %s", arg, err)
			}
			s.certs = append(s.certs, g)
		case kind == "token":
			if arg == "" {
				return s, fmt.Errorf("%q names no token", sel)
			}
			g, err := compileGlob(arg)
			if err != nil {
				return s, fmt.Errorf("bad token pattern %q: %s", arg, err)
			}
			s.tokens = append(s.tokens, g)
		case kind == "net":
			p, err := parseNet(arg)
			if err != nil {
				return s, fmt.Errorf("bad network %q: %s", arg, err)
			}
			s.nets = append(s.nets, p)
		default:
			return s, fmt.Errorf("unknown selector %q (want cert:NAME, token:NAME, net:CIDR, loopback or any)", sel)
		}
	}
	return s, nil
}

// parseNet reads a CIDR prefix, or a bare address meaning that one host.
func parseNet(arg string) (netip.Prefix, error) {
	if !strings.Contains(arg, "/") {
		a, err := netip.ParseAddr(arg)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zones are not supported")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(arg)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}
