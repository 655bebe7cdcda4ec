package engine

import (
	"errors"
	"net"
	"unsafe"

	"github.com/spur-gearman/spur/codec"
)

// Identity is who is at the other end of a connection, as far as its transport could tell.
type Identity struct {
	IP       string // remote address without the port; "-" when unknown
	Loopback bool   // the peer is on this machine
	// Name is the verified name of the peer (a TLS client certificate's subject); "" when
	// the transport verified none.
	Name string
	// Names are all the verified names of the peer: a TLS client certificate's subject CN
	// first (when it has one), then its DNS and URI subject alternative names. Name is the
	// first of them. Shared, read-only.
	Names []string
}

// IdentityOf is the identity of a plaintext connection from remote.
func IdentityOf(remote net.Addr) Identity {
	id := Identity{IP: "-"}
	if tcp, ok := remote.(*net.TCPAddr); ok {
		id.IP = tcp.IP.String()
		id.Loopback = tcp.IP.IsLoopback()
	}
	return id
}

// Action is what a request asks to do, as the authorization point sees it.
type Action uint8

const (
	// ActSubmit: queue a job for a function (every SUBMIT_JOB variant).
	ActSubmit Action = iota
	// ActWork: register as a worker of a function (CAN_DO, CAN_DO_TIMEOUT), and so receive
	// its jobs' data.
	ActWork
	// ActStatus: read the status of a function's job (GET_STATUS, GET_STATUS_UNIQUE).
	ActStatus
	// ActAdmin: run a text admin command; the name is the command's first word, lower case.
	ActAdmin
)

func (a Action) String() string {
	switch a {
	case ActSubmit:
		return "submit"
	case ActWork:
		return "work"
	case ActStatus:
		return "status"
	case ActAdmin:
		return "admin"
	}
	return "unknown"
}

// Authorizer is the one place that decides whether a connection may do something: every
// submit, worker registration, status read and admin command passes through it. name is the
// function (or the admin command); it aliases the request and must not be kept. Allow
// returns nil or why the request is refused. It is called on the event loops, for every
// such request: it must be quick and must not block.
type Authorizer interface {
	Allow(id *Identity, act Action, name []byte) error
}

// ErrLocalOnly refuses a command that only a connection from this machine may run.
var ErrLocalOnly = errors.New("is only accepted from a loopback connection")

// gearmandRules allows what gearmand allows, which is everything, except `shutdown` from
// another machine; Spur's own commands that change state (`pause`, `resume`, `limit`,
// `drain worker`, `retry`, `purge dead`, `schedule`) are local too.
type gearmandRules struct{}

func (gearmandRules) Allow(id *Identity, act Action, name []byte) error {
	if act == ActAdmin && !id.Loopback {
		switch string(name) {
		case "shutdown", "pause", "resume", "limit", "drain", "retry", "purge", "schedule":
			return ErrLocalOnly
		}
	}
	return nil
}

// allow asks the engine's authorizer whether s may do act on name.
func (s *Session) allow(act Action, name []byte) error {
	return s.e.auth.Allow(&s.who, act, name)
}

// permitted is allow for a binary request: a refusal is answered with ERROR
// PERMISSION_DENIED and logged, and the connection stays usable.
func (s *Session) permitted(act Action, name []byte) bool {
	err := s.allow(act, name)
	if err == nil {
		return true
	}
	s.e.log.Info("request refused", "conn", s.id, "remote", s.who.IP, "action", act.String(),
		"function", string(name), "reason", err)
	text := act.String() + " " + string(name) + ": " + err.Error()
	s.send(func(b []byte) []byte { return codec.AppendError(b, codec.CodePermissionDenied, text) })
	return false
}

// viewBytes views s as bytes without copying, for an Authorizer's name argument (which
// must not be modified or kept).
func viewBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
