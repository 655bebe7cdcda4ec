package codec

import (
	"bytes"
	"errors"
)

// Parse errors. Each one means the connection's byte stream cannot be trusted any more; the
// caller answers as the comment says and closes the connection.
var (
	// ErrBadMagic: the first four bytes are neither "\0REQ" nor "\0RES". gearmand closes
	// without a reply.
	ErrBadMagic = errors.New("bad magic")
	// ErrUnknownType: type 0 or above MaxType. gearmand closes without a reply.
	ErrUnknownType = errors.New("unknown packet type")
	// ErrTooLarge: the header announces a body above the limit. Answer ERROR then close.
	ErrTooLarge = errors.New("packet larger than the maximum packet size")
	// ErrMissingArgs: the body ends before all NUL-terminated arguments. gearmand reads into
	// the next packet here; Spur stops at the declared length and closes.
	ErrMissingArgs = errors.New("packet body has fewer arguments than its type requires")
	// ErrLineTooLong: a text line without "\n" within MaxTextLine bytes.
	ErrLineTooLong = errors.New("admin line too long")
)

// Parse reads one packet from the front of buf.
//
//   - n > 0, err == nil: pkt is valid and used the first n bytes of buf.
//   - n == 0, err == nil: buf holds an incomplete packet; call again with more bytes.
//   - err != nil: the input is malformed (see the Err* values); pkt.Type is set when the
//     header was readable, so the caller can name it in its reply. n is then 0.
//
// maxBody bounds the body length of a binary packet; 0 means DefaultMaxPacket. Parse never
// panics and never allocates; pkt's slices alias buf.
func Parse(buf []byte, maxBody uint32) (pkt Packet, n int, err error) {
	if len(buf) == 0 {
		return pkt, 0, nil
	}
	if buf[0] != 0 {
		return parseLine(buf)
	}
	if len(buf) < HeaderSize {
		// Reject bad magic as soon as the bytes that prove it have arrived.
		if !bytes.HasPrefix(MagicReq[:], buf[:min(len(buf), 4)]) &&
			!bytes.HasPrefix(MagicRes[:], buf[:min(len(buf), 4)]) {
			return pkt, 0, ErrBadMagic
		}
		return pkt, 0, nil
	}
	switch [4]byte(buf[:4]) {
	case MagicReq:
	case MagicRes:
		pkt.Response = true
	default:
		return pkt, 0, ErrBadMagic
	}
	t, size := header(buf)
	pkt.Type = t
	spec, ok := Spec(t)
	if !ok {
		return pkt, 0, ErrUnknownType
	}
	if maxBody == 0 {
		maxBody = DefaultMaxPacket
	}
	if size > maxBody {
		return pkt, 0, ErrTooLarge
	}
	// Compare in 64 bits: on a 32-bit platform with a maxBody near 4 GiB, HeaderSize +
	// int(size) would overflow int and the slicing below would panic. Once the whole packet
	// is in buf, total <= len(buf) and fits in an int.
	if uint64(len(buf)) < HeaderSize+uint64(size) {
		return pkt, 0, nil
	}
	total := HeaderSize + int(size)
	// Cap the body (and so the last argument) at the packet's end: an append by the caller
	// must reallocate rather than overwrite the next packet in buf.
	body := buf[HeaderSize:total:total]
	pkt.Body = body

	// Split the arguments, never looking past body. This loop stays inline rather than in a
	// helper taking *Packet: storing body through a pointer parameter makes escape analysis
	// treat buf as escaping to the heap, which would force every caller's buffer there.
	if spec.Args == 0 {
		return pkt, total, nil // any body bytes are ignored, as gearmand does
	}
	terminated := spec.Args - 1 // arguments before the last one end in NUL
	rest := body
	for i := 0; i < terminated; i++ {
		j := bytes.IndexByte(rest, 0)
		if j < 0 && i == 0 && resultWithoutData(t) {
			// The handle alone: real workers (Perl's Gearman::Worker for a function that
			// returns "" or "0") send WORK_COMPLETE like this, meaning empty data.
			pkt.Args[0], pkt.Args[1] = rest, rest[len(rest):]
			pkt.NArgs = spec.Args
			return pkt, total, nil
		}
		if j < 0 {
			return pkt, 0, ErrMissingArgs
		}
		pkt.Args[i] = rest[:j:j]
		rest = rest[j+1:]
	}
	pkt.Args[terminated] = rest
	pkt.NArgs = spec.Args
	return pkt, total, nil
}

// resultWithoutData reports whether t is a worker's result packet that may carry its handle
// alone, with no NUL and no data: WORK_COMPLETE, WORK_EXCEPTION, WORK_DATA, WORK_WARNING.
func resultWithoutData(t Type) bool {
	switch t {
	case WorkComplete, WorkException, WorkData, WorkWarning:
		return true
	}
	return false
}

// parseLine reads one "\n"-terminated admin line.
func parseLine(buf []byte) (pkt Packet, n int, err error) {
	limit := min(len(buf), MaxTextLine)
	i := bytes.IndexByte(buf[:limit], '\n')
	if i < 0 {
		if len(buf) >= MaxTextLine {
			return pkt, 0, ErrLineTooLong
		}
		return pkt, 0, nil
	}
	end := i
	if end > 0 && buf[end-1] == '\r' {
		end--
	}
	line := buf[:end:end] // capped like the arguments: an append must not overwrite buf
	pkt.Text = true
	pkt.Line = line
	return pkt, i + 1, nil
}

// AdminWords is a text admin line split into words.
type AdminWords struct {
	Words [MaxAdminWords][]byte
	N     int
}

// ErrTooManyWords: an admin line with more than MaxAdminWords words; gearmand closes.
var ErrTooManyWords = errors.New("admin line has too many words")

// SplitAdmin splits an admin line on runs of spaces (and tabs). The words alias line.
func SplitAdmin(line []byte) (w AdminWords, err error) {
	i := 0
	for i < len(line) {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		start := i
		for i < len(line) && !isSpace(line[i]) {
			i++
		}
		if w.N == MaxAdminWords {
			return w, ErrTooManyWords
		}
		w.Words[w.N] = line[start:i]
		w.N++
	}
	return w, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// Word returns word i, or nil when the line has fewer words.
func (w *AdminWords) Word(i int) []byte {
	if i < w.N {
		return w.Words[i]
	}
	return nil
}

// Is reports whether word i equals s, ignoring ASCII case (as gearmand's strcasecmp does).
//
// Only ASCII letters fold: bytes.EqualFold would also match Unicode folds ("ſtatus" for
// "status", the Kelvin sign for "k") and treat any two invalid UTF-8 bytes as equal.
func (w *AdminWords) Is(i int, s string) bool {
	if i >= w.N || len(w.Words[i]) != len(s) {
		return false
	}
	word := w.Words[i]
	for j := 0; j < len(s); j++ {
		if lowerASCII(word[j]) != lowerASCII(s[j]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// PacketLen returns the total length (header and body) of the binary packet whose header
// starts buf, or 0 when that cannot be told yet or buf does not start a valid binary header
// (a text line, bad magic, too short). Callers use it to wait for a large packet's body
// without re-reading the bytes that have already arrived.
func PacketLen(buf []byte) int {
	if len(buf) < HeaderSize || buf[0] != 0 {
		return 0
	}
	m := [4]byte(buf[:4])
	if m != MagicReq && m != MagicRes {
		return 0
	}
	_, size := header(buf)
	return HeaderSize + int(size)
}
