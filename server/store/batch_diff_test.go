package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// diffOp is one op of a random sequence (see TestABatchAgreesWithOneByOne).
type diffOp struct {
	kind   string
	opID   string
	actor  int
	fi     int // finding index
	base   int
	field  string
	value  string
	rights bool
	order  []int
}

// diffRoom is a workshop in which the sequence runs.
type diffRoom struct {
	s       *store.Store
	w       domain.Workshop
	persons []int64
	fids    []int64
}

// fn is the store call of op o in e.
func (e *diffRoom) fn(o diffOp) func() (store.Applied, error) {
	ctx := context.Background()
	if o.rights {
		ctx = store.WithCurateRight(store.WithReleaseRight(ctx))
	}
	p := e.persons[o.actor]
	s, w := e.s, e.w.ID
	fid := int64(0)
	if o.fi >= 0 && o.fi < len(e.fids) {
		fid = e.fids[o.fi]
	}
	return func() (store.Applied, error) {
		switch o.kind {
		case "create":
			return s.CreateFinding(ctx, &p, w, o.opID, store.FindingInput{Title: o.value})
		case "update":
			raw, _ := json.Marshal(o.value)
			return s.UpdateFinding(ctx, &p, w, o.opID, fid, o.base, map[string]json.RawMessage{o.field: raw})
		case "vote":
			return s.Vote(ctx, p, w, o.opID, fid)
		case "unvote":
			return s.Unvote(ctx, p, w, o.opID, fid)
		case "comment":
			return s.AddComment(ctx, p, w, o.opID, fid, o.value)
		case "delete":
			return s.DeleteFinding(ctx, &p, w, o.opID, fid, o.base)
		case "mark":
			return s.MarkKey(ctx, &p, w, o.opID, fid, o.base)
		case "unmark":
			return s.UnmarkKey(ctx, &p, w, o.opID, fid, o.base)
		case "reorder":
			ids := []int64{}
			for _, k := range o.order {
				ids = append(ids, e.fids[k])
			}
			return s.ReorderKey(ctx, &p, w, o.opID, ids, nil)
		case "km":
			return s.SetKeyMessages(ctx, &p, w, o.opID, o.base, o.value)
		case "share":
			return s.ShareFinding(ctx, &p, w, o.opID, fid)
		case "release":
			return s.SetFindingRelease(ctx, &p, w, o.opID, fid, o.value)
		}
		panic(o.kind)
	}
}

// idx names finding id by its place in e (F0…), the same in both rooms.
func (e *diffRoom) idx(id int64) string {
	for i, f := range e.fids {
		if f == id {
			return "F" + strconv.Itoa(i)
		}
	}
	return "?" + strconv.FormatInt(id, 10)
}

// norm is an entry's payload with what differs between the rooms (ids,
// times) taken out or named by place.
func (e *diffRoom) norm(kind string, payload json.RawMessage) string {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		return string(payload)
	}
	delete(m, "updated_at")
	delete(m, "created_at")
	delete(m, "event_id")
	delete(m, "workshop_id")
	for _, k := range []string{"id", "finding_id"} {
		if v, ok := m[k].(float64); ok {
			if kind == "comment" && k == "id" || kind == "finding.create" {
				m[k] = "X"
			} else {
				m[k] = e.idx(int64(v))
			}
		}
	}
	if l, ok := m["order"].([]any); ok {
		var out []string
		for _, v := range l {
			out = append(out, e.idx(int64(v.(float64))))
		}
		m["order"] = out
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// state is what e's workshop holds, as text to compare; it also checks
// that its log has no gap.
func (e *diffRoom) state(t *testing.T) string {
	ctx := context.Background()
	var sb strings.Builder
	for i, id := range e.fids {
		var f struct {
			Title, WhatDone, Results, ReleaseState string
			Version                                int
			FieldVersions                          map[string]int `bun:",type:jsonb"`
			IsKey                                  bool
			Deleted                                bool
		}
		if err := e.s.DB().NewRaw(`SELECT title, what_done, results, release_state, version, field_versions, is_key, deleted_at IS NOT NULL AS deleted FROM findings WHERE id = ?`, id).Scan(ctx, &f.Title, &f.WhatDone, &f.Results, &f.ReleaseState, &f.Version, &f.FieldVersions, &f.IsKey, &f.Deleted); err != nil {
			t.Fatal(err)
		}
		var voters []int64
		if err := e.s.DB().NewRaw("SELECT person_id FROM votes WHERE finding_id = ? ORDER BY person_id", id).Scan(ctx, &voters); err != nil {
			t.Fatal(err)
		}
		var vs []int
		for _, v := range voters {
			vs = append(vs, slices.Index(e.persons, v))
		}
		var comments []string
		if err := e.s.DB().NewRaw("SELECT body FROM comments WHERE finding_id = ? ORDER BY id", id).Scan(ctx, &comments); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "F%d: %+v votes %v comments %q\n", i, f, vs, comments)
	}
	var key []int64
	if err := e.s.DB().NewRaw("SELECT id FROM findings WHERE workshop_id = ? AND is_key AND deleted_at IS NULL ORDER BY key_position, id", e.w.ID).Scan(ctx, &key); err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, k := range key {
		ks = append(ks, e.idx(k))
	}
	fmt.Fprintf(&sb, "key order %v\n", ks)
	var km string
	var kmv int
	if err := e.s.DB().NewRaw("SELECT key_messages, key_messages_version FROM workshops WHERE id = ?", e.w.ID).Scan(ctx, &km, &kmv); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&sb, "km %q v%d\n", km, kmv)
	var titles []string
	if err := e.s.DB().NewRaw("SELECT title FROM findings WHERE workshop_id = ? AND title LIKE 'new%' ORDER BY title", e.w.ID).Scan(ctx, &titles); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&sb, "created %v\n", titles)
	// The log: gapless, and head == max seq.
	room := store.WorkshopRoom(e.w.ID)
	var n, mx, head int64
	if err := e.s.DB().NewRaw("SELECT count(*), coalesce(max(seq),0), (SELECT seq FROM rooms WHERE id = ?0) FROM log_entries WHERE room = ?0", room).Scan(ctx, &n, &mx, &head); err != nil {
		t.Fatal(err)
	}
	if n != mx || head != mx {
		t.Errorf("log of %s: %d entries, max seq %d, head %d", room, n, mx, head)
	}
	return sb.String()
}

// genOps makes n random ops on nf findings by three people: some repeat
// an earlier op (its id and body), some resend an op of the set-up.
func genOps(r *rand.Rand, nf int, n int) []diffOp {
	fields := []string{"title", "results", "what_done"}
	var ops []diffOp
	kmBase := 0
	for i := 0; i < n; i++ {
		o := diffOp{opID: fmt.Sprintf("op%d", i), actor: r.Intn(3), fi: r.Intn(nf), rights: r.Intn(4) != 0}
		switch k := r.Intn(16); {
		case k < 6:
			o.kind = "update"
			o.field = fields[r.Intn(len(fields))]
			o.value = fmt.Sprintf("v%d", i)
			if o.field == "title" && r.Intn(2) == 0 {
				o.fi = 0
			}
			// Versions at the batch's start: F0 and F1 at 2, the others
			// at 1; a base above is one made in the batch.
			o.base = 1 + r.Intn(3)
		case k < 8:
			o.kind = []string{"vote", "unvote"}[r.Intn(2)]
		case k < 9:
			o.kind = "comment"
			o.value = fmt.Sprintf("c%d", i)
		case k < 10 && r.Intn(2) == 0:
			o.kind = "delete"
			if r.Intn(3) != 0 {
				o.fi = nf - 1
			}
			o.base = r.Intn(4) // 0: none
		case k < 10:
			o.kind = []string{"mark", "unmark"}[r.Intn(2)]
			o.base = r.Intn(4)
		case k < 11:
			o.kind = "reorder"
			o.order = r.Perm(nf)[:1+r.Intn(3)]
		case k < 12:
			o.kind = "km"
			o.base = kmBase + r.Intn(2)
			o.value = fmt.Sprintf("km%d", i)
		case k < 14:
			o.kind = "create"
			o.value = fmt.Sprintf("new%02d", i)
		case k < 15:
			o.kind = "share"
		default:
			o.kind = "release"
			o.value = []string{"draft", "shared", "released"}[r.Intn(3)]
		}
		if r.Intn(20) == 0 && i > 0 { // a repeat of an earlier op (same id and op)
			o = ops[r.Intn(i)]
		} else if r.Intn(20) == 0 { // a resend of a setup op
			switch r.Intn(3) {
			case 0:
				o = diffOp{kind: "create", opID: "setup2", actor: 0, value: "F2", fi: -1, rights: o.rights}
			case 1:
				o = diffOp{kind: "update", opID: "setup-u", actor: 1, fi: 0, base: 1, field: "title", value: "T1", rights: o.rights}
			default:
				o = diffOp{kind: "mark", opID: "setup-k", actor: 0, fi: 1, rights: o.rights}
			}
		}
		ops = append(ops, o)
	}
	return ops
}

// referenceOrder is the order a batch applies ops in: first the creates
// of a person without an earlier op in it and of an op id no op before
// has, then the others in their order.
func referenceOrder(ops []diffOp) []int {
	after := map[int]bool{}
	seen, kept := map[string]bool{}, map[string]bool{}
	var first, rest []int
	for i, o := range ops {
		if o.kind != "create" || after[o.actor] || kept[o.opID] {
			after[o.actor] = true
			kept[o.opID] = true
			rest = append(rest, i)
			continue
		}
		if !seen[o.opID] {
			seen[o.opID] = true
			first = append(first, i)
		} else {
			rest = append(rest, i)
		}
	}
	return append(first, rest...)
}

// TestABatchAgreesWithOneByOne runs random sequences of ops twice, from
// the same state in two workshops: one at a time (in the order a batch
// applies them), and as one batch. Each op's outcome and entry, and what
// each workshop holds after, must be the same. STORE_DIFF_SEQUENCES sets
// how many sequences (100 by default, about 20 s; a review ran 900).
func TestABatchAgreesWithOneByOne(t *testing.T) {
	seeds := 100
	if v := os.Getenv("STORE_DIFF_SEQUENCES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("STORE_DIFF_SEQUENCES=%q: %v", v, err)
		}
		seeds = n
	}
	s, ws := MustDemoWorkshops(t)
	persons := []int64{mustPerson(t, s), mustPerson(t, s), mustPerson(t, s)}
	fails := 0
	for seed := 0; seed < seeds && fails < 3; seed++ {
		r := rand.New(rand.NewSource(int64(seed)))
		ops := genOps(r, 6, 30)
		var envs []*diffRoom
		for k := 0; k < 2; k++ {
			var w domain.Workshop
			err := s.DB().NewRaw(`INSERT INTO workshops (event_id, part_id, position, name)
				SELECT ?, part_id, ?, ? FROM workshops WHERE event_id = ? LIMIT 1 RETURNING *`,
				ws[0].EventID, 1000+seed*2+k, fmt.Sprintf("sequence %d, %d", seed, k), ws[0].EventID).Scan(context.Background(), &w)
			if err != nil {
				t.Fatal(err)
			}
			e := &diffRoom{s: s, w: w, persons: persons}
			for i := 0; i < 6; i++ {
				p := persons[0]
				a, err := s.CreateFinding(context.Background(), &p, w.ID, fmt.Sprintf("setup%d", i), store.FindingInput{Title: fmt.Sprintf("F%d", i)})
				if err != nil {
					t.Fatal(err)
				}
				e.fids = append(e.fids, mustFindingID(t, a))
			}
			// Some history: an update by person 1, a key mark.
			raw, _ := json.Marshal("T1")
			if _, err := s.UpdateFinding(context.Background(), &persons[1], w.ID, "setup-u", e.fids[0], 1, map[string]json.RawMessage{"title": raw}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.MarkKey(context.Background(), &persons[0], w.ID, "setup-k", e.fids[1], 0); err != nil {
				t.Fatal(err)
			}
			envs = append(envs, e)
		}
		ref, bat := envs[0], envs[1]
		refRes := make([]opResult, len(ops))
		for _, i := range referenceOrder(ops) {
			a, err := ref.fn(ops[i])()
			refRes[i] = opResult{a, err}
		}
		var fns []func() (store.Applied, error)
		for _, o := range ops {
			fns = append(fns, bat.fn(o))
		}
		batRes := queueBehindBusyRoom(t, s, store.WorkshopRoom(bat.w.ID), fns)
		bad := false
		for i := range ops {
			x, y := refRes[i], batRes[i]
			dx := fmt.Sprintf("%v %v %s %s", domain.ErrorCode(x.err), x.a.Replayed, x.a.Entry.Kind, ref.norm(x.a.Entry.Kind, x.a.Entry.Payload))
			dy := fmt.Sprintf("%v %v %s %s", domain.ErrorCode(y.err), y.a.Replayed, y.a.Entry.Kind, bat.norm(y.a.Entry.Kind, y.a.Entry.Payload))
			if x.err == nil {
				dx = "ok " + dx[len(fmt.Sprint(domain.ErrorCode(nil))):]
			}
			if y.err == nil {
				dy = "ok " + dy[len(fmt.Sprint(domain.ErrorCode(nil))):]
			}
			if dx != dy {
				bad = true
				t.Errorf("seed %d op %d %+v:\n one by one: %s (%v)\n batch:      %s (%v)", seed, i, ops[i], dx, x.err, dy, y.err)
			}
		}
		sx, sy := ref.state(t), bat.state(t)
		if sx != sy {
			bad = true
			t.Errorf("seed %d state differs:\n one by one:\n%s\n batch:\n%s", seed, sx, sy)
		}
		if bad {
			fails++
			for i, o := range ops {
				t.Logf("seed %d op %d: %+v", seed, i, o)
			}
		}
	}
}
