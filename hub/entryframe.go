package hub

import (
	"encoding/json"
	"strconv"
	"time"
)

// appendEntryFrame appends e's entry frame to b: "type":"entry" and then
// e's fields in order, as json.Marshal writes them. An entry goes to every
// member of its room and is the frame the hub writes most; json.Marshal
// spent more time scanning the payload again (to compact a
// json.RawMessage) than on the rest of the frame. Here the payload is
// compacted in one plain pass.
//
// The payload must be JSON (the Backend's contract). This pass checks only
// that its strings and brackets close and that its strings hold no control
// character; ok is false when they do not, so a truncated payload never
// goes into a frame, nor a raw newline (which separates packed frames).
func appendEntryFrame(b []byte, e Entry) (_ []byte, ok bool) {
	b = append(b, `{"type":"entry","room":`...)
	b = appendJSONString(b, e.Room)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	if e.OpID != "" {
		b = append(b, `,"op_id":`...)
		b = appendJSONString(b, e.OpID)
	}
	if e.Actor != "" {
		b = append(b, `,"actor":`...)
		b = appendJSONString(b, e.Actor)
	}
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, e.Kind)
	b = append(b, `,"payload":`...)
	if len(e.Payload) == 0 {
		b = append(b, "null"...)
	} else if b, ok = appendCompactJSON(b, e.Payload); !ok {
		return b, false
	}
	b = append(b, `,"at":"`...)
	b = e.At.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...), true
}

// appendJSONString appends s as a JSON string. Printable ASCII that needs
// no escape is copied; anything else goes through encoding/json, so the
// escapes are always its own.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendCompactJSON appends src without the whitespace between its tokens
// (Postgres writes jsonb with a space after every colon and comma). ok is
// false when a string or bracket is left open, a bracket closes nothing or
// a string holds a control character.
func appendCompactJSON(b, src []byte) (_ []byte, ok bool) {
	depth, inString, escaped := 0, false, false
	start := 0 // src[start:i] is still to be copied
	for i, c := range src {
		switch {
		case inString:
			switch {
			case c < 0x20: // JSON escapes these; a raw newline would split the message's frames
				return b, false
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			b = append(b, src[start:i]...)
			start = i + 1
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth < 0 {
				return b, false
			}
		}
	}
	return append(b, src[start:]...), !inString && depth == 0
}
