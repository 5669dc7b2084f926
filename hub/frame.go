package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Client frame types.
const (
	TypeJoin     = "join"
	TypeLeave    = "leave"
	TypeOp       = "op"
	TypePresence = "presence"
	TypePing     = "ping"
)

// Envelope limits, in characters (Unicode code points) unless noted.
const (
	MaxRoomLen    = 128
	MaxOpIDLen    = 100
	MaxKindLen    = 64
	MaxEditingLen = 200
	MaxClientLen  = 64
	MaxPingToken  = 256 // bytes of the compact JSON "t" value
)

// Frame is one client frame after envelope validation by DecodeFrame.
// Which fields are meaningful depends on Type; the others are zero.
type Frame struct {
	Type    string          // one of the Type* constants
	Room    string          // join, leave, op, presence
	Since   int64           // join: last seq the client holds for Room (0: none; negative: send a snapshot)
	SinceAt time.Time       // join: the at of the entry at Since as the client got it; zero when not given
	OpID    string          // op: id made on the device, 1..MaxOpIDLen characters
	Kind    string          // op: e.g. "finding.update"
	Base    int64           // op: version the change is based on; 0 when not given
	Client  string          // op: the client it comes from (see PROTOCOL.md), "" when not given
	Body    json.RawMessage // op: compact JSON object, nil when absent
	Editing string          // presence: id of what the person is editing, "" for nothing
	T       json.RawMessage // ping: compact JSON value echoed in the pong, nil when absent
}

// wireFrame is the raw shape of a client frame; pointers tell missing from zero.
type wireFrame struct {
	Type    *string         `json:"type"`
	Room    *string         `json:"room"`
	Since   *int64          `json:"since"`
	OpID    *string         `json:"op_id"`
	Kind    *string         `json:"kind"`
	Base    *int64          `json:"base"`
	Client  *string         `json:"client"`
	At      *string         `json:"at"`
	Body    json.RawMessage `json:"body"`
	Editing *string         `json:"editing"`
	T       json.RawMessage `json:"t"`
}

func badFrame(format string, args ...any) *OpError {
	return &OpError{Code: CodeBadFrame, Message: fmt.Sprintf(format, args...)}
}

// DecodeFrame parses and validates the envelope of one client frame.
// It is pure (no I/O, no state) so that it can be fuzzed. On error the returned
// Frame holds whatever could be read (Type, Room, OpID) so the error frame can
// refer to the offending op; the *OpError has code bad_frame or unknown_type.
func DecodeFrame(data []byte) (Frame, *OpError) {
	var w wireFrame
	var f Frame
	err := json.Unmarshal(data, &w)
	// Keep what was readable, for the error reply.
	if w.Type != nil && validText(*w.Type, MaxKindLen) {
		f.Type = *w.Type
	}
	if w.Room != nil && validText(*w.Room, MaxRoomLen) {
		f.Room = *w.Room
	}
	if w.OpID != nil && validText(*w.OpID, MaxOpIDLen) {
		f.OpID = *w.OpID
	}
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return f, badFrame("frame must be a JSON object")
			}
			return f, badFrame("%s: must be of type %s", te.Field, kindOf(te.Type.Kind().String()))
		}
		// A syntax error leaves w empty: read the envelope as an oversized
		// frame's is read, so that the error names the op it refuses.
		return envelopeOf(data), badFrame("malformed JSON")
	}
	if w.Type == nil {
		return f, badFrame("type: required")
	}
	// body has its type in every frame, as the other known fields have
	// theirs (json.Unmarshal checks those); only an op uses it.
	if len(w.Body) > 0 && w.Body[0] != '{' && string(w.Body) != "null" {
		return f, badFrame("body: must be a JSON object")
	}
	switch *w.Type {
	case TypePing:
		t, e := compactJSON(w.T)
		if e != nil {
			return f, badFrame("t: %s", e)
		}
		if len(t) > MaxPingToken {
			return f, badFrame("t: longer than %d bytes", MaxPingToken)
		}
		return Frame{Type: TypePing, T: t}, nil
	case TypeJoin, TypeLeave, TypeOp, TypePresence:
	default:
		return f, &OpError{Code: CodeUnknownType, Message: "unknown frame type"}
	}
	if e := requireText("room", w.Room, MaxRoomLen); e != nil {
		return f, e
	}
	out := Frame{Type: *w.Type, Room: *w.Room}
	switch out.Type {
	case TypeJoin:
		if w.Since != nil {
			out.Since = *w.Since
		}
		if w.At != nil && *w.At != "" {
			at, err := time.Parse(time.RFC3339Nano, *w.At)
			if err != nil || len(*w.At) > 64 {
				return f, badFrame("at: must be the at of the entry at since, as the server sent it")
			}
			out.SinceAt = at.UTC()
		}
	case TypeOp:
		if e := requireText("op_id", w.OpID, MaxOpIDLen); e != nil {
			return f, e
		}
		if e := requireText("kind", w.Kind, MaxKindLen); e != nil {
			return f, e
		}
		out.OpID, out.Kind = *w.OpID, *w.Kind
		if w.Base != nil {
			if *w.Base < 0 {
				return f, badFrame("base: must not be negative")
			}
			out.Base = *w.Base
		}
		if w.Client != nil && *w.Client != "" {
			if !validText(*w.Client, MaxClientLen) {
				return f, badFrame("client: at most %d characters, no control characters", MaxClientLen)
			}
			out.Client = *w.Client
		}
		body, e := compactJSON(w.Body)
		if e != nil {
			return f, badFrame("body: %s", e)
		}
		out.Body = body
	case TypePresence:
		if w.Editing != nil {
			if !validText(*w.Editing, MaxEditingLen) && *w.Editing != "" {
				return f, badFrame("editing: at most %d characters, no control characters", MaxEditingLen)
			}
			out.Editing = *w.Editing
		}
	}
	return out, nil
}

// kindOf names a Go kind the way a JSON client would understand it.
func kindOf(k string) string {
	switch k {
	case "string":
		return "string"
	case "int64", "int", "float64":
		return "integer"
	case "ptr":
		return "the documented type"
	}
	return k
}

// compactJSON returns raw in compact form, or nil for absent or null.
func compactJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, errors.New("malformed JSON")
	}
	if buf.String() == "null" {
		return nil, nil
	}
	return buf.Bytes(), nil
}

func requireText(name string, s *string, max int) *OpError {
	if s == nil || *s == "" {
		return badFrame("%s: required", name)
	}
	if !validText(*s, max) {
		return badFrame("%s: at most %d characters, no control characters", name, max)
	}
	return nil
}

// validText reports whether s is non-empty, valid UTF-8, at most max
// characters and free of control characters.
func validText(s string, max int) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// MarshalJSON encodes f in the canonical wire form, the inverse of DecodeFrame
// (useful for Go clients and tests).
func (f Frame) MarshalJSON() ([]byte, error) {
	w := struct {
		Type    string          `json:"type"`
		Room    string          `json:"room,omitempty"`
		Since   *int64          `json:"since,omitempty"`
		OpID    string          `json:"op_id,omitempty"`
		Kind    string          `json:"kind,omitempty"`
		Base    int64           `json:"base,omitempty"`
		Client  string          `json:"client,omitempty"`
		At      string          `json:"at,omitempty"`
		Body    json.RawMessage `json:"body,omitempty"`
		Editing *string         `json:"editing,omitempty"`
		T       json.RawMessage `json:"t,omitempty"`
	}{Type: f.Type, Room: f.Room, OpID: f.OpID, Kind: f.Kind, Base: f.Base, Client: f.Client, Body: f.Body, T: f.T}
	if f.Type == TypeJoin {
		w.Since = &f.Since
		if !f.SinceAt.IsZero() {
			w.At = f.SinceAt.Format(time.RFC3339Nano)
		}
	}
	if f.Type == TypePresence {
		w.Editing = &f.Editing
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
