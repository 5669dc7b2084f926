package hub

import (
	"encoding/json"
	"io"
	"strings"
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
	var s envelopeScanner
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
// out of a JSON object fed to it in pieces, in constant memory. Keys match
// as encoding/json matches them (any case); a key given twice counts with
// its last value. It never fails: on input that is not JSON, what it has
// is merely incomplete.
type envelopeScanner struct {
	depth     int
	inString  bool
	escaped   bool
	expectKey bool   // at depth 1, the next string is a key
	capturing bool   // the current string is kept in cur
	isKey     bool   // ... as a key (else as want's value)
	overflow  bool   // it was too long to keep
	lastKey   string // the last key at depth 1, lower case, if wanted
	want      string // the key whose string value comes next
	cur       []byte
	typ, room string
	opID      string
}

// maxEnvelopeString bounds the bytes kept of one string: enough for the
// longest valid room, op_id or type, each character escaped as a
// surrogate pair (12 bytes).
const maxEnvelopeString = 12 * MaxRoomLen

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
				if len(s.cur) < maxEnvelopeString {
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
			s.capturing = s.depth == 1 && (s.expectKey || s.want != "")
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
			if b == 'n' && s.want != "" {
				s.set("") // null, as encoding/json takes it
			}
			s.want = "" // a value that is not a string, or its end
		}
	}
}

// endString handles the end of a string kept in cur.
func (s *envelopeScanner) endString() {
	var v string
	if s.overflow || json.Unmarshal(append(append([]byte{'"'}, s.cur...), '"'), &v) != nil {
		v = ""
	}
	if s.isKey {
		s.lastKey = ""
		for _, k := range []string{"type", "room", "op_id"} {
			if strings.EqualFold(v, k) {
				s.lastKey = k
			}
		}
		return
	}
	s.set(v)
	s.want = ""
}

// set gives the wanted key the value v.
func (s *envelopeScanner) set(v string) {
	switch s.want {
	case "type":
		s.typ = v
	case "room":
		s.room = v
	case "op_id":
		s.opID = v
	}
}

// frame is the envelope found, each field kept only when valid.
func (s *envelopeScanner) frame() Frame {
	var f Frame
	switch s.typ {
	case TypeJoin, TypeLeave, TypeOp, TypePresence, TypePing:
		f.Type = s.typ
	}
	if validText(s.room, MaxRoomLen) {
		f.Room = s.room
	}
	if validText(s.opID, MaxOpIDLen) {
		f.OpID = s.opID
	}
	return f
}
