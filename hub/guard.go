package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// guarded is the Backend and the Config functions as the hub calls them:
// a panic (a bug of the server's that a room name or an entry sets off)
// fails that one call, logged with its stack, instead of the whole
// process. A failed join is answered internal and the connection stays;
// a room's read of its log is tried again at the next wake-up or poll.
// (Apply's panics are caught where it runs: they also break the op's
// order, see conn.op.)
type guarded struct {
	b   Backend
	log *slog.Logger
}

// recovered turns a panic of the call what into *err.
func (g guarded) recovered(what string, err *error) {
	if p := recover(); p != nil {
		g.log.Error("hub: backend panicked", "call", what, "panic", p, "stack", string(debug.Stack()))
		*err = fmt.Errorf("%s panicked: %v", what, p)
	}
}

func (g guarded) CanJoin(ctx context.Context, id Identity, room string) (err error) {
	defer g.recovered("CanJoin", &err)
	return g.b.CanJoin(ctx, id, room)
}

func (g guarded) Apply(ctx context.Context, id Identity, op Op) (Entry, error) {
	return g.b.Apply(ctx, id, op)
}

func (g guarded) After(ctx context.Context, room string, after int64, limit int) (es []Entry, err error) {
	defer g.recovered("After", &err)
	return g.b.After(ctx, room, after, limit)
}

func (g guarded) Snapshot(ctx context.Context, room string) (state json.RawMessage, seq int64, at time.Time, err error) {
	defer g.recovered("Snapshot", &err)
	return g.b.Snapshot(ctx, room)
}

func (g guarded) Head(ctx context.Context, room string) (head, withdrawn int64, err error) {
	defer g.recovered("Head", &err)
	return g.b.Head(ctx, room)
}

// Rewound tells the Backend of a rewound room when it is a Rewinder.
func (g guarded) Rewound(room string, head int64, announce bool) {
	rw, ok := g.b.(Rewinder)
	if !ok {
		return
	}
	var err error
	defer g.recovered("Rewound", &err)
	rw.Rewound(room, head, announce)
}

// guardConfig wraps cfg's functions likewise; a panic answers with the
// more private choice (count only, no names; the share not sent).
func guardConfig(cfg Config) Config {
	g := guarded{log: cfg.Logger}
	if f := cfg.CountOnly; f != nil {
		cfg.CountOnly = func(room string) bool {
			return answerOr(g, "CountOnly", true, func() bool { return f(room) })
		}
	}
	if f := cfg.SeesNames; f != nil {
		cfg.SeesNames = func(id Identity, room string) bool {
			return answerOr(g, "SeesNames", false, func() bool { return f(id, room) })
		}
	}
	if f := cfg.SharePresence; f != nil {
		cfg.SharePresence = func(ctx context.Context, p Presence) {
			answerOr(g, "SharePresence", false, func() bool { f(ctx, p); return true })
		}
	}
	return cfg
}

// answerOr returns f's answer, or def when f panics (logged as what).
func answerOr(g guarded, what string, def bool, f func() bool) (v bool) {
	var err error
	defer func() {
		if err != nil {
			v = def
		}
	}()
	defer g.recovered(what, &err)
	return f()
}
