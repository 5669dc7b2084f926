package hub

import (
	"bytes"
	"strings"
	"testing"
)

func TestPackJoinsFramesUpToTheLimit(t *testing.T) {
	f := func(n int) []byte { return []byte(`{"t":"` + strings.Repeat("x", n) + `"}`) }
	batch := [][]byte{f(10), f(10), f(10), f(100), f(10)}
	msg, n := pack(make([]byte, 0, 60), batch, 60)
	if n != 3 || !bytes.Equal(msg, bytes.Join(batch[:3], []byte("\n"))) {
		t.Fatalf("pack = %q, %d; want the first three frames joined by newlines", msg, n)
	}
	msg, n = pack(nil, batch[3:], 60)
	if n != 1 || !bytes.Equal(msg, batch[3]) {
		t.Fatalf("an oversize frame: %q, %d; want it alone", msg, n)
	}
	msg, n = pack(nil, batch[4:], 60)
	if n != 1 || !bytes.Equal(msg, batch[4]) {
		t.Fatalf("a single frame: %q, %d", msg, n)
	}
}
