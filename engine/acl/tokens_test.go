package acl

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/spur-gearman/spur/engine"
)

func tokenLine(name, secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "token " + name + " sha256:" + hex.EncodeToString(h[:]) + "\n"
}

func TestTokens(t *testing.T) {
	text := tokenLine("deploy", "s3cret-deploy") + tokenLine("grafana", "s3cret-grafana") + `
[token:deploy]
submit deploy.*
admin  pause resume
[token:graf*]
admin status
[net:10.0.0.0/8]
submit office
`
	r := mustParse(t, text)
	if r.Tokens() != 2 {
		t.Fatalf("Tokens() = %d", r.Tokens())
	}
	for secret, want := range map[string]string{"s3cret-deploy": "deploy", "s3cret-grafana": "grafana", "s3cret": "", "": ""} {
		name, ok := r.Token(secret)
		if name != want || ok != (want != "") {
			t.Errorf("Token(%q) = %q %v, want %q", secret, name, ok, want)
		}
	}
	deploy := engine.Identity{IP: "10.1.1.1", Token: "deploy"}
	graf := engine.Identity{IP: "192.0.2.1", Token: "grafana"}
	cases := []struct {
		id    engine.Identity
		act   engine.Action
		name  string
		allow bool
	}{
		{deploy, engine.ActSubmit, "deploy.web", true},
		{deploy, engine.ActSubmit, "billing", false},
		{deploy, engine.ActSubmit, "office", true}, // its address's section adds up
		{deploy, engine.ActAdmin, "pause", true},
		{deploy, engine.ActAdmin, "purge", false},
		{graf, engine.ActAdmin, "status", true},
		{graf, engine.ActAdmin, "pause", false},
		{graf, engine.ActSubmit, "deploy.web", false},
		{engine.Identity{IP: "192.0.2.1"}, engine.ActAdmin, "status", false},
		{engine.Identity{IP: "192.0.2.1", Name: "deploy"}, engine.ActSubmit, "deploy.web", false}, // a cert name is not a token
	}
	for _, c := range cases {
		if err := r.Allow(&c.id, c.act, []byte(c.name)); (err == nil) != c.allow {
			t.Errorf("%+v %v %q: err = %v, want allowed %v", c.id, c.act, c.name, err, c.allow)
		}
	}
	err := r.Allow(&graf, engine.ActAdmin, []byte("pause"))
	if want := `not granted admin on "pause" to token:grafana 192.0.2.1`; err == nil || err.Error() != want {
		t.Errorf("refusal = %v, want %s", err, want)
	}
	a := NewAuthorizer(r)
	if name, ok := a.Token("s3cret-deploy"); !ok || name != "deploy" {
		t.Errorf("Authorizer.Token = %q %v", name, ok)
	}
}

func TestTokenParseErrors(t *testing.T) {
	good := strings.TrimSpace(tokenLine("a", "x"))
	cases := []struct{ text, want string }{
		{"token a\n", "line 1: want `token NAME sha256:HEX`"},
		{"token a md5:00\n", "line 1: token a: want sha256:"},
		{"token a sha256:abcd\n", "line 1: token a: want sha256:"},
		{"token a/b sha256:" + strings.Repeat("0", 64) + "\n", `line 1: bad token name "a/b"`},
		{good + "\n" + good + "\n", "line 2: token a is defined twice"},
		{good + "\n" + strings.Replace(good, "token a", "token b", 1) + "\n", "line 2: tokens a and b have the same secret"},
		{"[token:]\n", `line 1: "token:" names no token`},
	}
	for _, c := range cases {
		_, err := Parse(strings.NewReader(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%.40q) = %v, want %s", c.text, err, c.want)
		}
	}
}
