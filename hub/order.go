package hub

import (
	"sync"
	"time"
)

// OpOrder is one op's place among the ops its connection sent. A Backend
// that applies a connection's ops while the next are read (see
// Op.Queued) uses it to keep them in the order sent when one fails for a
// reason a retry may cure:
//   - when the op fails so (its error is CodeInternal or CodeUnavailable,
//     not a refusal), the Backend calls Break;
//   - right before it would apply an op, the Backend asks Broken; true
//     means an op sent before this one broke, and this one must be
//     refused as CodeUnavailable, not applied before that one comes again;
//   - a Backend that breaks an order inside a transaction that then does
//     not commit, and so applies the op again, calls Mend.
//
// Without it, a title saved twice, the first save failing on a database
// error and the second applied, ended with the first text once the client
// resent it. The hub refuses the connection's later ops too until the
// broken op comes again (see conn.holdOrder), and breaks the order itself
// at an op it refuses for the rate. A nil *OpOrder is never broken.
type OpOrder struct {
	c    *opChain
	n    uint64 // place in c, from 1
	opID string
}

// opChain is a connection's ops from one op that broke to the next (the
// first from the connection's start): a new chain begins when the broken
// op comes again, so the ops resent after it are not refused for it.
type opChain struct {
	mu       sync.Mutex
	broken   uint64 // place of the first op that broke; 0: none
	brokenID string
	code     string    // what the ops after it get: CodeUnavailable, or CodeRateLimited (refused by the hub)
	at       time.Time // when it broke
	next     uint64    // read pump only: the last place given
}

// Broken tells whether an op sent before o failed for a reason a retry may cure.
func (o *OpOrder) Broken() bool {
	if o == nil {
		return false
	}
	o.c.mu.Lock()
	defer o.c.mu.Unlock()
	return o.c.broken != 0 && o.c.broken < o.n
}

// Break records that o's op failed for a reason a retry may cure: the ops
// sent after it wait for it.
func (o *OpOrder) Break() { o.breakAs(CodeUnavailable) }

// breakAs is Break, the ops after o to be refused with code.
func (o *OpOrder) breakAs(code string) {
	if o == nil {
		return
	}
	o.c.mu.Lock()
	defer o.c.mu.Unlock()
	if o.c.broken == 0 || o.n < o.c.broken {
		o.c.broken, o.c.brokenID, o.c.code, o.c.at = o.n, o.opID, code, time.Now()
	}
}

// Mend undoes o's Break: the Backend broke it in a transaction that did
// not commit, and applies the op again.
func (o *OpOrder) Mend() {
	if o == nil {
		return
	}
	o.c.mu.Lock()
	defer o.c.mu.Unlock()
	if o.c.broken == o.n {
		o.c.broken, o.c.brokenID = 0, ""
	}
}

// place gives the op opID (its room and op id: see conn.op) the chain's
// next place; read pump only.
func (ch *opChain) place(opID string) *OpOrder {
	ch.next++
	return &OpOrder{c: ch, n: ch.next, opID: opID}
}

// brokenBy returns the op id of the op that broke the chain, what the
// ops after it get, and when; or "".
func (ch *opChain) brokenBy() (opID, code string, at time.Time) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.brokenID, ch.code, ch.at
}
