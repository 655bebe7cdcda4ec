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
	total := HeaderSize + int(size)
	if len(buf) < total {
		return pkt, 0, nil
	}
	body := buf[HeaderSize:total]
	pkt.Body = body
	if err := splitArgs(&pkt, body, spec); err != nil {
		return pkt, 0, err
	}
	return pkt, total, nil
}

// splitArgs fills pkt.Args from body according to spec, never looking past body.
func splitArgs(pkt *Packet, body []byte, spec PacketSpec) error {
	if spec.Args == 0 {
		return nil // any body bytes are ignored, as gearmand does
	}
	terminated := spec.Args - 1 // arguments before the last one end in NUL
	rest := body
	for i := 0; i < terminated; i++ {
		j := bytes.IndexByte(rest, 0)
		if j < 0 {
			return ErrMissingArgs
		}
		pkt.Args[i] = rest[:j:j]
		rest = rest[j+1:]
	}
	pkt.Args[terminated] = rest
	pkt.NArgs = spec.Args
	return nil
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
	line := buf[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
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

// Is reports whether word i equals s, ignoring ASCII case.
func (w *AdminWords) Is(i int, s string) bool {
	return i < w.N && bytes.EqualFold(w.Words[i], []byte(s))
}
