package acl

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// A token is a bearer token of the file: `token NAME sha256:HEX`. Only the secret's SHA-256
// is kept, in the file as in memory, so that reading the file does not give the secret away.
type token struct {
	name string
	hash [sha256.Size]byte
}

// parseToken reads the fields of a token line.
func parseToken(fields []string) (token, error) {
	var t token
	if len(fields) != 3 {
		return t, errors.New("want `token NAME sha256:HEX`")
	}
	t.name = fields[1]
	if !validTokenName(t.name) {
		return t, fmt.Errorf("bad token name %q (letters, digits, '.', '_' and '-')", t.name)
	}
	digest, ok := strings.CutPrefix(fields[2], "sha256:")
	b, err := hex.DecodeString(digest)
	if !ok || err != nil || len(b) != sha256.Size {
		return t, fmt.Errorf("token %s: want sha256: and the 64 hex digits of the secret's SHA-256 (printf %%s SECRET | sha256sum)", t.name)
	}
	copy(t.hash[:], b)
	return t, nil
}

func validTokenName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// addToken files t; a name or a secret given twice is a mistake.
func (r *Rules) addToken(t token) error {
	for _, o := range r.tokens {
		if o.name == t.name {
			return fmt.Errorf("token %s is defined twice", t.name)
		}
		if o.hash == t.hash {
			return fmt.Errorf("tokens %s and %s have the same secret", o.name, t.name)
		}
	}
	r.tokens = append(r.tokens, t)
	return nil
}

// Token returns the name of the token whose secret this is, and whether there is one. It
// compares the secret's hash with every token's in constant time, whichever matches, so
// that the time taken tells nothing about the tokens.
func (r *Rules) Token(secret string) (name string, ok bool) {
	h := sha256.Sum256([]byte(secret))
	for i := range r.tokens {
		if subtle.ConstantTimeCompare(h[:], r.tokens[i].hash[:]) == 1 {
			name, ok = r.tokens[i].name, true
		}
	}
	return name, ok
}

// Tokens is the number of tokens the file defines.
func (r *Rules) Tokens() int { return len(r.tokens) }

// Token is Rules.Token of the rules in force.
func (a *Authorizer) Token(secret string) (name string, ok bool) { return a.rules.Load().Token(secret) }
