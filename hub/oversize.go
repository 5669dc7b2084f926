package hub

import (
	"encoding/json"
	"io"
	"strconv"
	"unicode/utf8"
)

// A frame over Config.MaxFrameBytes is answered with a too_large error
// frame, and the connection stays open: the frame is read to its end
// without being kept, and only its envelope (type, room, op_id) is picked
// out of it on the way, so that the error names the op it refuses. Only a
// frame over hardFrameFactor times the limit closes the connection (1009,
// by gorilla/websocket's read limit).
const hardFrameFactor = 16

// readFrame reads the message r of at most limit bytes. A longer one is
// read to its end and dropped: over is then true and env holds what its
// envelope says.
func readFrame(r io.Reader, limit int64) (data []byte, over bool, env Frame, err error) {
	data, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil || int64(len(data)) <= limit {
		return data, false, Frame{}, err
	}
	s := newEnvelopeScanner()
	s.feed(data)
	buf := make([]byte, 8<<10)
	for {
		n, err := r.Read(buf)
		s.feed(buf[:n])
		if err == io.EOF {
			return nil, true, s.frame(), nil
		}
		if err != nil {
			return nil, true, Frame{}, err
		}
	}
}

// envelopeScanner picks the top-level "type", "room" and "op_id" strings
// out of a JSON object fed to it in pieces, in constant memory and with
// no allocation per key or value (a frame of a million keys must cost no
// more than reading it). Keys match as encoding/json matches them (ASCII
// case folded); a key given twice counts with its last value. It never
// fails: on input that is not JSON, what it has is merely incomplete.
type envelopeScanner struct {
	depth     int
	inString  bool
	escaped   bool
	expectKey bool // at depth 1, the next string is a key
	capturing bool // the current string is kept in cur
	isKey     bool // ... as a key (else as the value of field want)
	overflow  bool // it was too long to keep
	lastKey   int  // the field of the last key at depth 1, or -1
	want      int  // the field whose string value comes next, or -1
	cur       []byte
	raw       [3][]byte // type, room and op_id as last given, raw (escaped)
	ok        [3]bool   // whether it was a string that fits
}

// maxEnvelopeString bounds the bytes kept of a value: enough for the
// longest valid room, op_id or type, each character escaped as a
// surrogate pair (12 bytes). A key longer than maxEnvelopeKey cannot be
// one of the three.
const (
	maxEnvelopeString = 12 * MaxRoomLen
	maxEnvelopeKey    = 6 * 5
)

func newEnvelopeScanner() *envelopeScanner { return &envelopeScanner{lastKey: -1, want: -1} }

func (s *envelopeScanner) feed(p []byte) {
	for _, b := range p {
		if s.inString {
			switch {
			case s.escaped:
				s.escaped = false
			case b == '\\':
				s.escaped = true
			case b == '"':
				s.inString = false
				if s.capturing {
					s.endString()
				}
				continue
			}
			if s.capturing {
				limit := maxEnvelopeString
				if s.isKey {
					limit = maxEnvelopeKey
				}
				if len(s.cur) < limit {
					s.cur = append(s.cur, b)
				} else {
					s.overflow = true
				}
			}
			continue
		}
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			s.inString = true
			s.capturing = s.depth == 1 && (s.expectKey || s.want >= 0)
			s.isKey = s.expectKey
			s.cur, s.overflow = s.cur[:0], false
			continue
		case '{', '[':
			s.depth++
			s.expectKey = s.depth == 1 && b == '{'
		case '}', ']':
			s.depth--
		case ':':
			if s.depth == 1 {
				s.expectKey, s.want = false, s.lastKey
			}
			continue
		case ',':
			if s.depth == 1 {
				s.expectKey = true
			}
		}
		if s.depth <= 1 {
			if b == 'n' && s.want >= 0 {
				s.ok[s.want] = false // null, as encoding/json takes it
			}
			s.want = -1 // a value that is not a string, or its end
		}
	}
}

// endString handles the end of a string kept in cur.
func (s *envelopeScanner) endString() {
	if s.isKey {
		s.lastKey = -1
		if !s.overflow {
			s.lastKey = envelopeField(s.cur)
		}
		return
	}
	s.raw[s.want] = append(s.raw[s.want][:0], s.cur...)
	s.ok[s.want] = !s.overflow
	s.want = -1
}

// envelopeField is the field (0 type, 1 room, 2 op_id) of the key whose
// raw (escaped) text is raw, or -1. The fields' names are ASCII without k or
// s, so ASCII case folding is all of encoding/json's folding they need.
func envelopeField(raw []byte) int {
	var k [5]byte
	n := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) {
			i++
			switch c = raw[i]; c {
			case '"', '\\', '/':
			case 'u':
				if i+4 >= len(raw) {
					return -1
				}
				r, err := strconv.ParseUint(string(raw[i+1:i+5]), 16, 16)
				if err != nil || r >= 0x80 {
					return -1
				}
				c, i = byte(r), i+4
			default:
				return -1
			}
		}
		if n == len(k) {
			return -1
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k[n], n = c, n+1
	}
	switch string(k[:n]) {
	case "type":
		return 0
	case "room":
		return 1
	case "op_id":
		return 2
	}
	return -1
}

// envelopeOf is the envelope of a frame that cannot be decoded (malformed
// JSON, a binary frame), each field kept only when valid.
func envelopeOf(data []byte) Frame {
	s := newEnvelopeScanner()
	s.feed(data)
	return s.frame()
}

// frame is the envelope found, each field kept only when valid. A field
// that is not UTF-8 is not kept: decoded, it would not be what was sent.
func (s *envelopeScanner) frame() Frame {
	var v [3]string
	for i := range v {
		if s.ok[i] && utf8.Valid(s.raw[i]) {
			json.Unmarshal(append(append([]byte{'"'}, s.raw[i]...), '"'), &v[i])
		}
	}
	var f Frame
	switch v[0] {
	case TypeJoin, TypeLeave, TypeOp, TypePresence, TypePing:
		f.Type = v[0]
	}
	if validText(v[1], MaxRoomLen) {
		f.Room = v[1]
	}
	if validText(v[2], MaxOpIDLen) {
		f.OpID = v[2]
	}
	return f
}
