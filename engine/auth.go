package engine

import (
	"errors"
	"net"
	"time"
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
	// Token is the name of the bearer token an HTTP request presented (defined in the ACL
	// file, see engine/acl); "" when it presented none. The door checks the secret before
	// it sets the name.
	Token string
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

// ErrHidden is logged for a status read of a job the identity may not read: it is answered
// as unknown, so that the refusal does not tell the job exists.
var ErrHidden = errors.New("not readable: answered as unknown")

// ErrLocalOnly refuses a command that only a connection from this machine may run.
var ErrLocalOnly = errors.New("is only accepted from a loopback connection")

// gearmandRules allows what gearmand allows to clients and workers, which is everything, and
// every read-only admin command; the admin commands that destroy or change state are taken
// only from this machine (gearmand takes all but `shutdown` from anywhere).
type gearmandRules struct{}

// localOnly are the admin commands (first words) gearmandRules takes only from loopback.
var localOnly = map[string]bool{
	// gearmand's own
	"shutdown": true, "drop": true, "cancel": true, "maxqueue": true,
	// Spur's
	"pause": true, "resume": true, "limit": true, "drain": true, "retry": true, "purge": true, "schedule": true,
}

func (gearmandRules) Allow(id *Identity, act Action, name []byte) error {
	if act == ActAdmin && !id.Loopback && localOnly[string(name)] {
		return ErrLocalOnly
	}
	return nil
}

// logRefusal logs a refused request with who asked, from where and what was refused; at
// most refusalLogBurst lines a second, so that a flood of refusals cannot fill the disk
// (the count of those left out comes with the next line).
func (s *Session) logRefusal(act Action, name []byte, why error) {
	s.e.logRefusal(s.id, &s.who, act, name, why)
}

// logRefusal is Session.logRefusal for connection conn (0 for a request of a door without
// one, the HTTP API's).
func (e *Engine) logRefusal(conn uint64, who *Identity, act Action, name []byte, why error) {
	e.refusalMu.Lock()
	t := time.Now()
	if t.Sub(e.refusalWindow) >= time.Second {
		e.refusalWindow, e.refusalLines = t, 0
	}
	e.refusalLines++
	logIt := e.refusalLines <= refusalLogBurst
	left := e.refusalsLeft
	if logIt {
		e.refusalsLeft = 0
	} else {
		e.refusalsLeft++
	}
	e.refusalMu.Unlock()
	if logIt {
		e.log.Warn("request refused", "conn", conn, "remote", who.IP, "identity", who.Name, "token", who.Token,
			"action", act.String(), "name", string(name), "reason", why, "refusals not logged before this one", left)
	}
}

// refusalLogBurst is the most refusals logged in a second.
const refusalLogBurst = 10

// readable returns whether s may see the jobs of a function (ActStatus), for the admin
// listings: they leave out what it may not read. nil means everything, under gearmand's
// rules, which let everyone read everything.
func (s *Session) readable() func(fn string) bool { return s.e.readableFor(&s.who) }

// visible applies a readable filter; a nil one lets everything through.
func visible(readable func(string) bool, fn string) bool { return readable == nil || readable(fn) }

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
	s.logRefusal(act, name, err)
	text := act.String() + " " + string(name) + ": " + err.Error()
	s.send(func(b []byte) []byte { return codec.AppendError(b, codec.CodePermissionDenied, text) })
	return false
}

// viewBytes views s as bytes without copying, for an Authorizer's name argument (which
// must not be modified or kept).
func viewBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
