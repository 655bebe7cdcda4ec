package codec

import (
	"encoding/binary"
	"strconv"
)

// AppendHeader appends a response header ("\0RES", t, bodyLen) to dst.
func AppendHeader(dst []byte, t Type, bodyLen int) []byte {
	dst = append(dst, MagicRes[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(t))
	return binary.BigEndian.AppendUint32(dst, uint32(bodyLen))
}

// AppendPacket appends a response of type t whose arguments are args joined by NUL bytes
// (no NUL after the last one), the layout of every server-built packet.
func AppendPacket(dst []byte, t Type, args ...[]byte) []byte {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	if len(args) > 1 {
		n += len(args) - 1
	}
	dst = AppendHeader(dst, t, n)
	for i, a := range args {
		if i > 0 {
			dst = append(dst, 0)
		}
		dst = append(dst, a...)
	}
	return dst
}

// AppendRequest appends a request packet ("\0REQ" magic); clients and tests use it.
func AppendRequest(dst []byte, t Type, args ...[]byte) []byte {
	start := len(dst)
	dst = AppendPacket(dst, t, args...)
	copy(dst[start:], MagicReq[:])
	return dst
}

// AppendEmpty appends a response with an empty body (NOOP, NO_JOB).
func AppendEmpty(dst []byte, t Type) []byte { return AppendHeader(dst, t, 0) }

// AppendError appends ERROR code\0text.
func AppendError(dst []byte, code, text string) []byte {
	dst = AppendHeader(dst, Error, len(code)+1+len(text))
	dst = append(dst, code...)
	dst = append(dst, 0)
	return append(dst, text...)
}

// AppendStatusRes appends STATUS_RES handle\0known\0running\0num\0den.
func AppendStatusRes(dst []byte, handle []byte, known, running bool, num, den uint64) []byte {
	var nb, db [20]byte
	ns := strconv.AppendUint(nb[:0], num, 10)
	ds := strconv.AppendUint(db[:0], den, 10)
	return AppendPacket(dst, StatusRes, handle, flag(known), flag(running), ns, ds)
}

// AppendStatusResUnique appends STATUS_RES_UNIQUE unique\0known\0running\0num\0den\0clients.
func AppendStatusResUnique(dst []byte, unique []byte, known, running bool, num, den, clients uint64) []byte {
	var nb, db, cb [20]byte
	ns := strconv.AppendUint(nb[:0], num, 10)
	ds := strconv.AppendUint(db[:0], den, 10)
	cs := strconv.AppendUint(cb[:0], clients, 10)
	return AppendPacket(dst, StatusResUnique, unique, flag(known), flag(running), ns, ds, cs)
}

var (
	one  = []byte{'1'}
	zero = []byte{'0'}
)

func flag(b bool) []byte {
	if b {
		return one
	}
	return zero
}
