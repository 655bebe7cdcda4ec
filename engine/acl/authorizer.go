package acl

import (
	"sync/atomic"

	"github.com/spur-gearman/spur/engine"
)

// Authorizer is the engine.Authorizer of a server run with an ACL file: the current rules,
// swapped whole on reload so that a request sees either the old file or the new one, never
// a mix, and never waits for a reload.
//
// Refusals are logged by the engine, once, at a bounded rate, whatever the Authorizer.
type Authorizer struct {
	rules atomic.Pointer[Rules]
}

var _ engine.Authorizer = (*Authorizer)(nil)

// NewAuthorizer serves rules (nil grants nothing).
func NewAuthorizer(rules *Rules) *Authorizer {
	if rules == nil {
		rules = &Rules{}
	}
	a := &Authorizer{}
	a.rules.Store(rules)
	return a
}

// Open loads the file at path and serves it.
func Open(path string) (*Authorizer, error) {
	r, err := Load(path)
	if err != nil {
		return nil, err
	}
	return NewAuthorizer(r), nil
}

// Reload reads path again and serves it from the next request on. A file that does not
// load keeps the rules in force and returns why.
func (a *Authorizer) Reload(path string) error {
	r, err := Load(path)
	if err != nil {
		return err
	}
	a.rules.Store(r)
	return nil
}

// Set serves rules (nil grants nothing) from the next request on.
func (a *Authorizer) Set(rules *Rules) {
	if rules == nil {
		rules = &Rules{}
	}
	a.rules.Store(rules)
}

// Rules is the rules in force.
func (a *Authorizer) Rules() *Rules { return a.rules.Load() }

// Allow implements engine.Authorizer.
func (a *Authorizer) Allow(id *engine.Identity, act engine.Action, name []byte) error {
	return a.rules.Load().Allow(id, act, name)
}
