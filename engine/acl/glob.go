package acl

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// A glob is one compiled pattern. Most patterns in real files are an exact name, "*", or a
// name prefix ("billing.*"); those are recognised when the file is parsed and matched with
// one comparison, so only the rare general pattern pays for the matcher.
type glob struct {
	src  string // as written, for messages
	kind globKind
	lit  string // the literal for exact, prefix and suffix kinds
}

type globKind uint8

const (
	globAll     globKind = iota // "*"
	globExact                   // no metacharacter
	globPrefix                  // "lit*"
	globSuffix                  // "*lit"
	globGeneral                 // anything else: matchGlob
)

var errBadPattern = errors.New("syntax error in pattern")

// compileGlob checks p and picks the cheapest way to match it.
func compileGlob(p string) (glob, error) {
	if err := checkGlob(p); err != nil {
		return glob{}, err
	}
	g := glob{src: p, kind: globGeneral}
	meta := strings.IndexAny(p, `*?[\`)
	switch {
	case p == "*":
		g.kind = globAll
	case meta < 0:
		g.kind, g.lit = globExact, p
	case meta == len(p)-1 && p[meta] == '*':
		g.kind, g.lit = globPrefix, p[:meta]
	case meta == 0 && p[0] == '*' && len(p) > 1 && !strings.ContainsAny(p[1:], `*?[\`):
		g.kind, g.lit = globSuffix, p[1:]
	}
	return g, nil
}

func (g *glob) matchString(s string) bool {
	switch g.kind {
	case globAll:
		return true
	case globExact:
		return s == g.lit
	case globPrefix:
		return strings.HasPrefix(s, g.lit)
	case globSuffix:
		return strings.HasSuffix(s, g.lit)
	}
	return matchGlob(g.src, s)
}

func (g *glob) matchBytes(b []byte) bool {
	switch g.kind {
	case globAll:
		return true
	case globExact:
		return string(b) == g.lit // compared in place, no conversion
	case globPrefix:
		return len(b) >= len(g.lit) && string(b[:len(g.lit)]) == g.lit
	case globSuffix:
		return len(b) >= len(g.lit) && string(b[len(b)-len(g.lit):]) == g.lit
	}
	return matchGlob(g.src, b)
}

// checkGlob validates p's syntax (balanced, non-empty classes; no trailing backslash), so
// that matchGlob never meets a malformed pattern.
func checkGlob(p string) error {
	if p == "" {
		return errBadPattern
	}
	for i := 0; i < len(p); {
		switch p[i] {
		case '\\':
			if i+1 >= len(p) {
				return errBadPattern
			}
			_, n := utf8.DecodeRuneInString(p[i+1:])
			i += 1 + n
		case '[':
			n, ok := classLen(p[i:])
			if !ok {
				return errBadPattern
			}
			i += n
		case ']':
			return errBadPattern
		default:
			i++
		}
	}
	return nil
}

// classLen is the length of the character class at the start of p ("[...]"), and whether
// it is well formed.
func classLen(p string) (int, bool) {
	i := 1
	if i < len(p) && (p[i] == '^' || p[i] == '!') {
		i++
	}
	items := 0
	for i < len(p) && p[i] != ']' {
		lo, n, ok := classChar(p[i:])
		if !ok {
			return 0, false
		}
		i += n
		if i < len(p) && p[i] == '-' {
			hi, n, ok := classChar(p[i+1:])
			if !ok || hi < lo {
				return 0, false
			}
			i += 1 + n
		}
		items++
	}
	if i >= len(p) || items == 0 {
		return 0, false
	}
	return i + 1, true
}

// classChar reads one (possibly escaped) character of a class.
func classChar(p string) (rune, int, bool) {
	if p == "" || p[0] == ']' || p[0] == '-' || p[0] == '[' {
		return 0, 0, false
	}
	if p[0] == '\\' {
		if len(p) < 2 {
			return 0, 0, false
		}
		r, n := utf8.DecodeRuneInString(p[1:])
		return r, 1 + n, true
	}
	r, n := utf8.DecodeRuneInString(p)
	return r, n, true
}

// inClass reports whether r matches the class at the start of p (already checked), and
// the class's length.
func inClass(p string, r rune) (bool, int) {
	i := 1
	negated := i < len(p) && (p[i] == '^' || p[i] == '!')
	if negated {
		i++
	}
	matched := false
	for p[i] != ']' {
		lo, n, _ := classChar(p[i:])
		i += n
		hi := lo
		if p[i] == '-' {
			hi, n, _ = classChar(p[i+1:])
			i += 1 + n
		}
		if lo <= r && r <= hi {
			matched = true
		}
	}
	return matched != negated, i + 1
}

// matchGlob is path.Match without path.Match's special '/' (function names are not paths)
// and over bytes as well as strings: '*' is any run of characters, '?' one character,
// "[a-z]" / "[^a-z]" a class, '\' quotes the next character. One backtrack point (the last
// '*') keeps it linear in practice and never exponential.
func matchGlob[T ~string | ~[]byte](p string, s T) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0 // the last '*' seen, and where its run currently ends
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, n := decodeRune(s[sx:])
					px++
					sx += n
					continue
				}
			case '[':
				if sx < len(s) {
					r, n := decodeRune(s[sx:])
					if ok, plen := inClass(p[px:], r); ok {
						px += plen
						sx += n
						continue
					}
				}
			case '\\':
				// The quoted byte is a literal; the rest of a quoted multi-byte character
				// is never a metacharacter, so it matches byte by byte as literals do.
				if sx < len(s) && s[sx] == p[px+1] {
					px += 2
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		// Mismatch: let the last '*' swallow one more character and try again.
		if starPx >= 0 && starSx < len(s) {
			_, n := decodeRune(s[starSx:])
			starSx += n
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}

// decodeRune is utf8.DecodeRune for a string or a byte slice, without converting either.
func decodeRune[T ~string | ~[]byte](s T) (rune, int) {
	if s[0] < utf8.RuneSelf {
		return rune(s[0]), 1
	}
	var b [utf8.UTFMax]byte
	n := copy(b[:], s)
	return utf8.DecodeRune(b[:n])
}
