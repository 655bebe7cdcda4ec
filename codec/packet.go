// Package codec frames and encodes the Gearman protocol: binary packets and text admin lines.
//
// Everything here is a pure function over byte slices. Parse never copies: the arguments of a
// returned Packet alias the input buffer and are valid only as long as the caller keeps that
// buffer unchanged. Encoders append to a caller-supplied slice and allocate only when it must
// grow.
//
// Binary packet layout (all integers big-endian):
//
//	+--------+--------+--------+--------+--------+--------+--------+--------+
//	| magic "\0REQ" / "\0RES"           | type (uint32)                     |
//	+--------+--------+--------+--------+--------+--------+--------+--------+
//	| body length (uint32)              | body: args joined by NUL ...      |
//	+--------+--------+--------+--------+--------+--------+--------+--------+
//
// The body holds Spec(type).Args arguments. For a type whose last argument is opaque data
// (Spec(type).Data), every argument before the data is NUL-terminated and the data runs to
// the end of the body and may contain NULs. Otherwise all arguments but the last are
// NUL-terminated and the last one is the remainder of the body.
//
// A packet whose first byte is not NUL is a text admin line instead, ending in "\n" (an
// optional "\r" before it is stripped).
package codec

import "encoding/binary"

// Type is a binary packet type number.
type Type uint32

// Packet types, numbered as on the wire.
const (
	CanDo                     Type = 1
	CantDo                    Type = 2
	ResetAbilities            Type = 3
	PreSleep                  Type = 4
	unused5                   Type = 5
	Noop                      Type = 6
	SubmitJob                 Type = 7
	JobCreated                Type = 8
	GrabJob                   Type = 9
	NoJob                     Type = 10
	JobAssign                 Type = 11
	WorkStatus                Type = 12
	WorkComplete              Type = 13
	WorkFail                  Type = 14
	GetStatus                 Type = 15
	EchoReq                   Type = 16
	EchoRes                   Type = 17
	SubmitJobBg               Type = 18
	Error                     Type = 19
	StatusRes                 Type = 20
	SubmitJobHigh             Type = 21
	SetClientID               Type = 22
	CanDoTimeout              Type = 23
	AllYours                  Type = 24
	WorkException             Type = 25
	OptionReq                 Type = 26
	OptionRes                 Type = 27
	WorkData                  Type = 28
	WorkWarning               Type = 29
	GrabJobUniq               Type = 30
	JobAssignUniq             Type = 31
	SubmitJobHighBg           Type = 32
	SubmitJobLow              Type = 33
	SubmitJobLowBg            Type = 34
	SubmitJobSched            Type = 35
	SubmitJobEpoch            Type = 36
	SubmitReduceJob           Type = 37
	SubmitReduceJobBackground Type = 38
	GrabJobAll                Type = 39
	JobAssignAll              Type = 40
	GetStatusUnique           Type = 41
	StatusResUnique           Type = 42

	// MaxType is the highest packet type number the protocol defines.
	MaxType = StatusResUnique
)

// HeaderSize is the size of a binary packet header.
const HeaderSize = 12

// MaxArgs is the largest argument count of any packet type (SUBMIT_JOB_SCHED: 7 + data).
const MaxArgs = 8

// DefaultMaxPacket is the default limit on a packet's body length (64 MiB).
const DefaultMaxPacket = 64 << 20

// Protocol limits that gearmand enforces and Spur keeps (see gearman-spec.md 1.4).
const (
	MaxUniqueSize   = 64  // a unique id or reducer name may be up to 64 bytes, stored whole
	MaxHandleSize   = 63  // a job handle fits gearmand's 64-byte buffer with its NUL
	MaxOptionSize   = 63  // an OPTION_REQ name
	MaxClientIDSize = 127 // SET_CLIENT_ID is truncated to this
	// MaxFunctionSize bounds a function name. gearmand has no limit of its own but closes the
	// connection when a name does not fit its 8 KiB receive buffer; libgearman clients stop
	// at 512.
	MaxFunctionSize = 8192
	MaxTimeoutSize  = 20 // CAN_DO_TIMEOUT's decimal value; gearmand closes above it
	MaxTextLine     = 8192
	// MaxAdminWords bounds the words of an admin line. gearmand takes at most
	// GearmandAdminWords, and so does every command Spur shares with it; Spur's own
	// `schedule add` takes more (five cron fields and its options).
	MaxAdminWords      = 32
	GearmandAdminWords = 5
)

// Magic values.
var (
	MagicReq = [4]byte{0, 'R', 'E', 'Q'}
	MagicRes = [4]byte{0, 'R', 'E', 'S'}
)

// PacketSpec is the argument layout of one packet type.
type PacketSpec struct {
	Name string
	Args int  // number of arguments, the data argument included
	Data bool // the last argument is opaque data and may contain NULs
}

var specs = [MaxType + 1]PacketSpec{
	CanDo:                     {"CAN_DO", 1, false},
	CantDo:                    {"CANT_DO", 1, false},
	ResetAbilities:            {"RESET_ABILITIES", 0, false},
	PreSleep:                  {"PRE_SLEEP", 0, false},
	unused5:                   {"UNUSED", 0, false},
	Noop:                      {"NOOP", 0, false},
	SubmitJob:                 {"SUBMIT_JOB", 3, true},
	JobCreated:                {"JOB_CREATED", 1, false},
	GrabJob:                   {"GRAB_JOB", 0, false},
	NoJob:                     {"NO_JOB", 0, false},
	JobAssign:                 {"JOB_ASSIGN", 3, true},
	WorkStatus:                {"WORK_STATUS", 3, false},
	WorkComplete:              {"WORK_COMPLETE", 2, true},
	WorkFail:                  {"WORK_FAIL", 1, false},
	GetStatus:                 {"GET_STATUS", 1, false},
	EchoReq:                   {"ECHO_REQ", 1, true},
	EchoRes:                   {"ECHO_RES", 1, true},
	SubmitJobBg:               {"SUBMIT_JOB_BG", 3, true},
	Error:                     {"ERROR", 2, false},
	StatusRes:                 {"STATUS_RES", 5, false},
	SubmitJobHigh:             {"SUBMIT_JOB_HIGH", 3, true},
	SetClientID:               {"SET_CLIENT_ID", 1, false},
	CanDoTimeout:              {"CAN_DO_TIMEOUT", 2, false},
	AllYours:                  {"ALL_YOURS", 0, false},
	WorkException:             {"WORK_EXCEPTION", 2, true},
	OptionReq:                 {"OPTION_REQ", 1, false},
	OptionRes:                 {"OPTION_RES", 1, false},
	WorkData:                  {"WORK_DATA", 2, true},
	WorkWarning:               {"WORK_WARNING", 2, true},
	GrabJobUniq:               {"GRAB_JOB_UNIQ", 0, false},
	JobAssignUniq:             {"JOB_ASSIGN_UNIQ", 4, true},
	SubmitJobHighBg:           {"SUBMIT_JOB_HIGH_BG", 3, true},
	SubmitJobLow:              {"SUBMIT_JOB_LOW", 3, true},
	SubmitJobLowBg:            {"SUBMIT_JOB_LOW_BG", 3, true},
	SubmitJobSched:            {"SUBMIT_JOB_SCHED", 8, true},
	SubmitJobEpoch:            {"SUBMIT_JOB_EPOCH", 4, true},
	SubmitReduceJob:           {"SUBMIT_REDUCE_JOB", 5, true},
	SubmitReduceJobBackground: {"SUBMIT_REDUCE_JOB_BACKGROUND", 5, true},
	GrabJobAll:                {"GRAB_JOB_ALL", 0, false},
	JobAssignAll:              {"JOB_ASSIGN_ALL", 5, true},
	GetStatusUnique:           {"GET_STATUS_UNIQUE", 1, false},
	StatusResUnique:           {"STATUS_RES_UNIQUE", 6, false},
}

// Spec returns the argument layout of t; ok is false for a type the protocol does not define.
func Spec(t Type) (spec PacketSpec, ok bool) {
	if t == 0 || t > MaxType {
		return PacketSpec{}, false
	}
	return specs[t], true
}

// String returns the protocol name of t.
func (t Type) String() string {
	if s, ok := Spec(t); ok {
		return s.Name
	}
	return "UNKNOWN"
}

// Packet is one parsed unit of input: a binary packet or a text admin line.
//
// Its slices alias the buffer given to Parse. Each is capped at its own length (cap == len),
// so an append to one reallocates instead of overwriting the bytes that follow it in buf.
type Packet struct {
	Text bool   // a text admin line; Line holds it without its line ending
	Line []byte // the admin line (Text only)

	Response bool // binary packet carried "\0RES" magic (clients must send "\0REQ")
	Type     Type
	Body     []byte          // the whole body
	Args     [MaxArgs][]byte // the first NArgs entries are the arguments in wire order
	NArgs    int
}

// Arg returns argument i, or nil when the packet has fewer arguments.
func (p *Packet) Arg(i int) []byte {
	if i < p.NArgs {
		return p.Args[i]
	}
	return nil
}

// header reads the type and body length from a complete 12-byte header.
func header(b []byte) (Type, uint32) {
	return Type(binary.BigEndian.Uint32(b[4:8])), binary.BigEndian.Uint32(b[8:12])
}
