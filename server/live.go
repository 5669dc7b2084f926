package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// viewer is the signed-in person behind a request or a hub connection,
// with their memberships in every event (loaded once per connection).
type viewer struct {
	Person      domain.Person
	Memberships []domain.Membership
}

// holds tells whether v is still what the database says of its person: p
// (zero when gone) and their memberships ms, in the order of their ids.
func (v *viewer) holds(p domain.Person, ms []domain.Membership) bool {
	if p.ID != v.Person.ID || p.Name != v.Person.Name || p.Country != v.Person.Country ||
		p.ActorType != v.Person.ActorType || p.Organisation != v.Person.Organisation || len(ms) != len(v.Memberships) {
		return false
	}
	for i, m := range ms {
		h := v.Memberships[i]
		if m.ID != h.ID || m.EventID != h.EventID || m.Role != h.Role || m.Attribution != h.Attribution ||
			(m.WorkshopID == nil) != (h.WorkshopID == nil) || (m.WorkshopID != nil && *m.WorkshopID != *h.WorkshopID) {
			return false
		}
	}
	return true
}

// principal is the viewer's principal in one event, for auth.Allowed.
func (v *viewer) principal(eventID int64) auth.Principal {
	p := auth.Principal{EventID: eventID}
	if v == nil {
		return p
	}
	p.PersonID = v.Person.ID
	for _, m := range v.Memberships {
		if m.EventID != eventID {
			continue
		}
		am := auth.Membership{Role: auth.Role(m.Role)}
		if m.WorkshopID != nil {
			am.WorkshopID = *m.WorkshopID
		}
		p.Roles = append(p.Roles, am)
	}
	return p
}

// label attributes the viewer's changes under the Chatham House rule.
func (v *viewer) label() string { return v.Person.RuleLabel() }

// live is the hub's Backend: rooms, ops and the log, checked against the
// permission table.
type live struct {
	store *store.Store
	// eventOf caches a workshop's event (it never changes) so an op costs
	// no lookup; workshop id → event id.
	eventOf sync.Map
	// recent caches the entries read last, for resuming clients.
	recent recentEntries
	// proc names this process to the others, to which a restore found
	// here is announced (none when empty); logger reports a failed one.
	proc   string
	logger *slog.Logger
}

// roomRef is a parsed room name: "workshop:12", "event:3", "plenary:3".
type roomRef struct {
	kind string
	id   int64
}

func parseRoom(room string) (roomRef, error) {
	kind, idText, ok := strings.Cut(room, ":")
	id, err := strconv.ParseInt(idText, 10, 64)
	// Only the canonical spelling: "workshop:012" would be a hub room of
	// its own while its ops and log went to "workshop:12".
	canonical := err == nil && strconv.FormatInt(id, 10) == idText
	if !ok || !canonical || id <= 0 || (kind != "workshop" && kind != "event" && kind != "plenary") {
		return roomRef{}, &hub.OpError{Code: hub.CodeNotFound, Message: fmt.Sprintf("There is no room %q: rooms are workshop:N, event:N and plenary:N.", room)}
	}
	return roomRef{kind: kind, id: id}, nil
}

// plenaryRoom tells the hub which rooms list only how many are present:
// the plenary, which anyone signed in may watch, shows no one's name.
func plenaryRoom(room string) bool {
	r, err := parseRoom(room)
	return err == nil && r.kind == "plenary"
}

func viewerOf(id hub.Identity) *viewer {
	v, _ := id.Data.(*viewer)
	return v
}

// eventOfRoom returns the event a room belongs to and, for workshop rooms, the workshop.
func (l *live) eventOfRoom(ctx context.Context, r roomRef) (eventID, workshopID int64, err error) {
	if r.kind != "workshop" {
		if _, err := l.store.Event(ctx, r.id); err != nil {
			return 0, 0, toOpError(err)
		}
		return r.id, 0, nil
	}
	if ev, ok := l.eventOf.Load(r.id); ok {
		return ev.(int64), r.id, nil
	}
	w, err := l.store.Workshop(ctx, r.id)
	if err != nil {
		return 0, 0, toOpError(err)
	}
	l.eventOf.Store(w.ID, w.EventID)
	return w.EventID, w.ID, nil
}

// joinAction is what a viewer must be allowed to join a room of each kind.
func joinAction(kind string) auth.Action {
	switch kind {
	case "workshop":
		return auth.ActReadDrafts
	case "event":
		return auth.ActEventManage
	}
	return auth.ActFindingReadRelease
}

func (l *live) CanJoin(ctx context.Context, id hub.Identity, room string) error {
	r, err := parseRoom(room)
	if err != nil {
		return err
	}
	eventID, workshopID, err := l.eventOfRoom(ctx, r)
	if err != nil {
		return err
	}
	if !auth.Allowed(viewerOf(id).principal(eventID), joinAction(r.kind), workshopID) {
		return &hub.OpError{Code: hub.CodeForbidden, Message: "Your role does not let you join this room."}
	}
	return nil
}

// seesNames tells whether id is shown who is in room and what each
// edits. In a workshop room its group and organizers are (they may write
// there); a report author, who follows the room, is told how many are
// there but not who edits what, under the Chatham House rule. The hub
// asks once per join, right after CanJoin read the room's event.
func (l *live) seesNames(id hub.Identity, room string) bool {
	r, err := parseRoom(room)
	if err != nil || r.kind != "workshop" {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	eventID, workshopID, err := l.eventOfRoom(ctx, r)
	v := viewerOf(id)
	return err == nil && v != nil && auth.Allowed(v.principal(eventID), auth.ActFindingCreate, workshopID)
}

// opActions maps each op kind to the action it needs (hub/PROTOCOL.md's
// "Op kinds"). Built once and never changed.
var opActions = map[string]auth.Action{
	"finding.create":  auth.ActFindingCreate,
	"finding.update":  auth.ActFindingUpdate,
	"finding.delete":  auth.ActFindingDelete,
	"finding.share":   auth.ActFindingShare,
	"finding.release": auth.ActReleaseManage,
	"vote":            auth.ActFindingVote,
	"unvote":          auth.ActFindingVote,
	"comment":         auth.ActFindingComment,
	"key.mark":        auth.ActKeyCurate,
	"key.unmark":      auth.ActKeyCurate,
	"key.reorder":     auth.ActKeyCurate,
	"keymessages.set": auth.ActKeyCurate,
}

// opAction returns the action an op kind needs.
func opAction(kind string) (auth.Action, bool) {
	a, ok := opActions[kind]
	return a, ok
}

// decodeBody decodes an op body strictly into v, a pointer to a struct:
// every key must be one of v's JSON names, spelled exactly, and not null,
// and the keys in required must be there. encoding/json alone would take
// a null or a missing key as "leave it empty" (so a keymessages.set of {}
// would wipe the key messages) and match names in any case. Anything else
// is invalid, and the op changes nothing.
func decodeBody(raw json.RawMessage, v any, required ...string) error {
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	invalid := func(why string) error {
		return &hub.OpError{Code: hub.CodeInvalid, Message: "The op body does not fit the op: " + why + "."}
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil || keys == nil {
		return invalid("it is not a JSON object")
	}
	names := jsonNames(reflect.TypeOf(v).Elem())
	for k, val := range keys {
		if !slices.Contains(names, k) {
			return invalid(fmt.Sprintf("unknown field %q", k))
		}
		if string(val) == "null" {
			return invalid(fmt.Sprintf("%q is null", k))
		}
	}
	for _, k := range required {
		if _, ok := keys[k]; !ok {
			return invalid(fmt.Sprintf("%q is missing", k))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			if n, ok := strings.CutPrefix(typeErr.Value, "number "); ok && isInt(typeErr.Type) && !strings.ContainsAny(n, ".eE") {
				return invalid(fmt.Sprintf("%q is out of range", typeErr.Field)) // an integer beyond the field's bits
			}
			// The field's own type: for an element of a list, Go names
			// the element's.
			t := cmp.Or(fieldType(reflect.TypeOf(v).Elem(), typeErr.Field), typeErr.Type)
			return invalid(fmt.Sprintf("%q must be %s", typeErr.Field, jsonKind(t, false)))
		}
		return invalid("it does not decode") // not Go's words: the message is for people
	}
	return nil
}

// fieldType returns the type of the field a dotted JSON path names in
// struct type t, or nil.
func fieldType(t reflect.Type, path string) reflect.Type {
	for name := range strings.SplitSeq(path, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		var next reflect.Type
		for i := range t.NumField() {
			if jsonName(t.Field(i)) == name {
				next = t.Field(i).Type
			}
		}
		if next == nil {
			return nil
		}
		t = next
	}
	return t
}

// isInt tells whether t is an integer type.
func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// jsonKind says in words what JSON a Go type takes ("an integer"), or
// many of them ("integers").
func jsonKind(t reflect.Type, many bool) string {
	one, more := "an object", "objects"
	switch {
	case isInt(t):
		one, more = "an integer", "integers"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		one, more = "a number", "numbers"
	case t.Kind() == reflect.String:
		one, more = "a string", "strings"
	case t.Kind() == reflect.Bool:
		one, more = "true or false", "values true or false"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		one, more = "a list of "+jsonKind(t.Elem(), true), "lists of "+jsonKind(t.Elem(), true)
	case t.Kind() == reflect.Pointer:
		return jsonKind(t.Elem(), many)
	}
	if many {
		return more
	}
	return one
}

// jsonNames lists the JSON names of a struct type's fields.
func jsonNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name := jsonName(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// jsonName is a struct field's JSON name, "" for a field JSON leaves out.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch {
	case name == "-" || !f.IsExported():
		return ""
	case name == "":
		return f.Name
	}
	return name
}

// findingRef is the body of ops on one finding.
type findingRef struct {
	ID        *int64 `json:"id"`
	FindingID *int64 `json:"finding_id"`
}

func (f findingRef) target() (int64, error) {
	if f.ID != nil && f.FindingID != nil {
		return 0, &hub.OpError{Code: hub.CodeInvalid, Message: "Name the finding once: finding_id or id, not both."}
	}
	var id int64
	if p := cmp.Or(f.FindingID, f.ID); p != nil {
		id = *p
	}
	if id <= 0 {
		return 0, &hub.OpError{Code: hub.CodeInvalid, Message: "The op needs the finding's id (finding_id)."}
	}
	return id, nil
}

// Apply applies op (see apply); the ack of a create carries the id of the
// finding it made, as {"id":N}: a client whose resume is answered with a
// snapshot never gets the create's entry, and a snapshot's findings carry
// no op id.
func (l *live) Apply(ctx context.Context, id hub.Identity, op hub.Op) (hub.Entry, error) {
	e, err := l.apply(ctx, id, op)
	if err == nil && op.Kind == "finding.create" {
		e.Result = createdResult(e.Payload)
	}
	return e, err
}

// createdResult is the ack result of the create whose entry's payload is
// payload: {"id":N}, or nil when payload names no id.
func createdResult(payload json.RawMessage) json.RawMessage {
	var id int64
	// A payload read back from Postgres is jsonb's text, whose keys come
	// shortest first: "id" leads. Otherwise it is decoded.
	if rest, ok := bytes.CutPrefix(payload, []byte(`{"id": `)); ok {
		if i := bytes.IndexAny(rest, ",}"); i > 0 {
			id, _ = strconv.ParseInt(string(rest[:i]), 10, 64)
		}
	}
	if id <= 0 {
		var f struct {
			ID int64 `json:"id"`
		}
		if json.Unmarshal(payload, &f) != nil {
			return nil
		}
		id = f.ID
	}
	if id <= 0 {
		return nil
	}
	return append(strconv.AppendInt([]byte(`{"id":`), id, 10), '}')
}

// apply validates, authorizes and applies op in one transaction with its
// log entry.
func (l *live) apply(ctx context.Context, id hub.Identity, op hub.Op) (hub.Entry, error) {
	// Every op below makes exactly one store call, whose place in the room's
	// queue is the op's place.
	ctx = store.WithQueued(ctx, op.Queued)
	if op.Order != nil {
		ctx = store.WithOrder(ctx, op.Order)
	}
	ctx = store.WithClient(ctx, op.Client)
	r, err := parseRoom(op.Room)
	if err != nil {
		return hub.Entry{}, err
	}
	if r.kind != "workshop" {
		return hub.Entry{}, &hub.OpError{Code: hub.CodeForbidden, Message: "Ops are made in workshop rooms; this room is read-only."}
	}
	action, ok := opAction(op.Kind)
	if !ok {
		return hub.Entry{}, &hub.OpError{Code: hub.CodeInvalid, Message: fmt.Sprintf("Unknown op kind %q.", op.Kind)}
	}
	v := viewerOf(id)
	eventID, workshopID, err := l.eventOfRoom(ctx, r)
	if err != nil {
		return hub.Entry{}, err
	}
	if v == nil || !auth.Allowed(v.principal(eventID), action, workshopID) {
		// A resend of an op applied before the role changed (its ack lost)
		// is answered as applied, as every repeated op is: it was. When
		// the log cannot say yet (its first copy still on its way in), the
		// op is not refused: forbidden would tell the client to drop an
		// op that may be saved.
		if v != nil {
			seq, err := l.store.OpSeqSettled(ctx, op.Room, op.OpID)
			if err == nil {
				var es []domain.LogEntry
				if es, err = l.store.EntriesAfter(ctx, op.Room, seq-1, 1); err == nil && len(es) == 1 {
					return replayOf(es[0], v.Person.ID)
				}
			}
			if c := domain.ErrorCode(err); c == domain.Unavailable {
				return hub.Entry{}, toOpError(err)
			} else if err != nil && c != domain.NotFound {
				return hub.Entry{}, &hub.OpError{Code: hub.CodeUnavailable, Message: "Could not check whether this op was saved before; send it again."}
			}
		}
		return hub.Entry{}, &hub.OpError{Code: hub.CodeForbidden, Message: fmt.Sprintf("Your role does not allow %s here.", op.Kind)}
	}
	actor := &v.Person.ID
	if auth.Allowed(v.principal(eventID), auth.ActReleaseManage, workshopID) {
		ctx = store.WithReleaseRight(ctx)
	}
	if auth.Allowed(v.principal(eventID), auth.ActKeyCurate, workshopID) {
		ctx = store.WithCurateRight(ctx)
	}
	if op.Committed != nil {
		label := v.label()
		ctx = store.WithCommitted(ctx, func(le domain.LogEntry, more bool) {
			op.Committed(toEntry(le, label), more)
		})
	}
	var a store.Applied
	switch op.Kind {
	case "finding.create":
		var in store.FindingInput
		if err := decodeBody(op.Body, &in); err != nil {
			return hub.Entry{}, err
		}
		a, err = l.store.CreateFinding(ctx, actor, workshopID, op.OpID, in)
	case "finding.update":
		var body struct {
			ID     int64                      `json:"id"`
			Fields map[string]json.RawMessage `json:"fields"`
		}
		if err := decodeBody(op.Body, &body); err != nil {
			return hub.Entry{}, err
		}
		if body.ID <= 0 || op.Base <= 0 {
			return hub.Entry{}, &hub.OpError{Code: hub.CodeInvalid, Message: "An update needs the finding's id and base (the version edited)."}
		}
		a, err = l.store.UpdateFinding(ctx, actor, workshopID, op.OpID, body.ID, int(op.Base), body.Fields)
	case "finding.delete", "finding.share", "vote", "unvote", "key.mark", "key.unmark":
		var ref findingRef
		if err := decodeBody(op.Body, &ref); err != nil {
			return hub.Entry{}, err
		}
		fid, err2 := ref.target()
		if err2 != nil {
			return hub.Entry{}, err2
		}
		switch op.Kind {
		case "finding.delete":
			a, err = l.store.DeleteFinding(ctx, actor, workshopID, op.OpID, fid, int(op.Base))
		case "finding.share":
			a, err = l.store.ShareFinding(ctx, actor, workshopID, op.OpID, fid)
		case "vote":
			a, err = l.store.Vote(ctx, *actor, workshopID, op.OpID, fid)
		case "unvote":
			a, err = l.store.Unvote(ctx, *actor, workshopID, op.OpID, fid)
		case "key.mark":
			a, err = l.store.MarkKey(ctx, actor, workshopID, op.OpID, fid, int(op.Base))
		case "key.unmark":
			a, err = l.store.UnmarkKey(ctx, actor, workshopID, op.OpID, fid, int(op.Base))
		}
	case "finding.release":
		var body struct {
			FindingID int64  `json:"finding_id"`
			State     string `json:"state"`
		}
		if err := decodeBody(op.Body, &body); err != nil {
			return hub.Entry{}, err
		}
		if body.FindingID <= 0 {
			return hub.Entry{}, &hub.OpError{Code: hub.CodeInvalid, Message: "A release needs the finding's id (finding_id)."}
		}
		a, err = l.store.SetFindingRelease(ctx, actor, workshopID, op.OpID, body.FindingID, body.State)
	case "comment":
		var body struct {
			FindingID int64  `json:"finding_id"`
			Text      string `json:"text"`
		}
		if err := decodeBody(op.Body, &body); err != nil {
			return hub.Entry{}, err
		}
		if body.FindingID <= 0 {
			return hub.Entry{}, &hub.OpError{Code: hub.CodeInvalid, Message: "A comment needs the finding's id (finding_id)."}
		}
		a, err = l.store.AddComment(ctx, *actor, workshopID, op.OpID, body.FindingID, body.Text)
	case "key.reorder":
		var body struct {
			FindingIDs []int64 `json:"finding_ids"`
			From       []int64 `json:"from"`
		}
		if err := decodeBody(op.Body, &body, "finding_ids"); err != nil {
			return hub.Entry{}, err
		}
		a, err = l.store.ReorderKey(ctx, actor, workshopID, op.OpID, body.FindingIDs, body.From)
	case "keymessages.set":
		var body struct {
			Text string `json:"text"`
		}
		if err := decodeBody(op.Body, &body, "text"); err != nil {
			return hub.Entry{}, err
		}
		a, err = l.store.SetKeyMessages(ctx, actor, workshopID, op.OpID, int(op.Base), body.Text)
	}
	if err != nil {
		return hub.Entry{}, toOpError(err)
	}
	if a.Replayed {
		if es, err := l.store.EntriesAfter(ctx, op.Room, a.Entry.Seq-1, 1); err == nil && len(es) == 1 {
			return replayOf(es[0], *actor) // with its actor's label
		}
		a.Entry.ActorLabel = v.label() // the op was this person's
		return replayOf(a.Entry, *actor)
	}
	return toEntry(a.Entry, v.label()), nil
}

// replayOf answers an op whose id the room's log has already, at entry e:
// its own resend is acked with e. Anyone else's op with that id (another
// client's, the demo's) is refused, not acked with e: that op was never
// applied, and an ack would say it was saved.
func replayOf(e domain.LogEntry, person int64) (hub.Entry, error) {
	if e.ActorID == nil || *e.ActorID != person {
		return hub.Entry{}, &hub.OpError{Code: hub.CodeInvalid, Message: "This op id was used before in this room by someone else; send the op again with a new op id."}
	}
	return toEntry(e, e.ActorLabel), nil
}

// After serves what it can from the recent entries it read before (they
// are committed, so they never change) and reads only the rest from the
// log. When a thousand screens resume together, the entries they missed
// come from Postgres once, not a thousand times; the log is still asked
// for anything after them, so nothing newer is ever missed.
func (l *live) After(ctx context.Context, room string, after int64, limit int) ([]hub.Entry, error) {
	epoch := l.recent.epoch()
	out := l.recent.get(room, after, limit)
	from := after + int64(len(out))
	if len(out) == limit {
		return out, nil
	}
	// What is read must be of the log the cache was read from: when the
	// cache has the entry at from, the read starts with it, to compare. A
	// database restored from a backup has another entry there, or none,
	// and the cache is then forgotten and the log read alone.
	at, joins := l.recent.at(room, from)
	readAfter, n := from, limit-len(out)
	if joins {
		readAfter, n = from-1, n+1
	}
	es, err := l.store.EntriesAfter(ctx, room, readAfter, n)
	if err != nil {
		return nil, toOpError(err)
	}
	if joins {
		if len(es) > 0 && es[0].Seq == from && es[0].At.Equal(at) {
			es = es[1:]
		} else {
			if l.logger != nil {
				l.logger.Warn("the log has another entry where one was cached (a restored database?): its cached entries are forgotten", "room", room, "seq", from)
			}
			l.recent.forget(room)
			epoch, out, from = l.recent.epoch(), nil, after
			if es, err = l.store.EntriesAfter(ctx, room, after, limit); err != nil {
				return nil, toOpError(err)
			}
		}
	}
	read := make([]hub.Entry, len(es))
	for i, e := range es {
		read[i] = toEntry(e, e.ActorLabel)
	}
	l.recent.add(epoch, room, from, read)
	return append(out, read...), nil
}

// recentEntries keeps the last entries read of each room, by seq, with no
// gap: a cache of the log for resuming clients.
type recentEntries struct {
	mu      sync.Mutex
	rooms   map[string][]hub.Entry // contiguous seqs, oldest first
	size    map[string]int         // bytes of each room's entries (see entrySize)
	total   int
	forgets uint64 // forget calls (see epoch)
}

// The cache's bounds: entries a room keeps, rooms, and bytes a room and
// all rooms keep. (An entry of a create carries the whole finding, up to
// some 64 KB, so a count alone would let one busy room hold gigabytes.)
const (
	recentKeep      = 2000
	recentRooms     = 512
	recentRoomBytes = 8 << 20
	recentBytes     = 64 << 20
)

// entrySize is what the cache counts for e: its payload and the rest, roughly.
func entrySize(e hub.Entry) int {
	return len(e.Payload) + len(e.Room) + len(e.OpID) + len(e.Kind) + len(e.Actor) + 64
}

// get returns the cached entries after seq after, at most limit.
func (r *recentEntries) get(room string, after int64, limit int) []hub.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	es := r.rooms[room]
	if len(es) == 0 || after < es[0].Seq-1 || after >= es[len(es)-1].Seq {
		return nil
	}
	i := int(after - es[0].Seq + 1)
	return append([]hub.Entry(nil), es[i:min(len(es), i+limit)]...)
}

// at returns the At of room's cached entry at seq, if it is cached.
func (r *recentEntries) at(room string, seq int64) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	es := r.rooms[room]
	if len(es) == 0 || seq < es[0].Seq || seq > es[len(es)-1].Seq {
		return time.Time{}, false
	}
	return es[seq-es[0].Seq].At, true
}

// last returns the seq of room's newest cached entry, 0 when none.
func (r *recentEntries) last(room string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if es := r.rooms[room]; len(es) > 0 {
		return es[len(es)-1].Seq
	}
	return 0
}

// forget drops room's cached entries.
func (r *recentEntries) forget(room string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgets++
	r.total -= r.size[room]
	delete(r.rooms, room)
	delete(r.size, room)
}

// forgetAll forgets every room's entries: their actor labels are a
// person's country and actor type as they were read, and one changed.
func (r *recentEntries) forgetAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgets++
	clear(r.rooms)
	clear(r.size)
	r.total = 0
}

// epoch tells, taken before a read of the log, whether the cache forgot
// entries since (see add).
func (r *recentEntries) epoch() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.forgets
}

// add records entries read from the log after seq from (contiguous by
// construction), joining the room's cache when they continue it; not when
// the cache forgot entries after epoch was taken, before the read: they
// may be of the log that was replaced.
func (r *recentEntries) add(epoch uint64, room string, from int64, read []hub.Entry) {
	if len(read) == 0 || read[0].Seq != from+1 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.forgets != epoch {
		return
	}
	if r.rooms == nil {
		r.rooms, r.size = map[string][]hub.Entry{}, map[string]int{}
	}
	es, n := r.rooms[room], r.size[room]
	switch {
	case len(es) > 0 && es[len(es)-1].Seq == from:
		es = append(es, read...)
	case len(es) > 0 && read[len(read)-1].Seq <= es[len(es)-1].Seq:
		return // older than what is kept
	default:
		es, n = append([]hub.Entry(nil), read...), 0
	}
	for _, e := range es[len(es)-len(read):] {
		n += entrySize(e)
	}
	drop := 0 // the oldest go, so the newest stay contiguous
	for drop < len(es)-1 && (len(es)-drop > recentKeep || n > recentRoomBytes) {
		n -= entrySize(es[drop])
		drop++
	}
	if drop > 0 {
		es = append([]hub.Entry(nil), es[drop:]...)
	}
	r.total += n - r.size[room]
	r.rooms[room], r.size[room] = es, n
	for k := range r.rooms { // forget other rooms while over the bounds
		if len(r.rooms) <= recentRooms && r.total <= recentBytes {
			break
		}
		if k != room {
			r.total -= r.size[k]
			delete(r.rooms, k)
			delete(r.size, k)
		}
	}
}

func (l *live) Snapshot(ctx context.Context, room string) (json.RawMessage, int64, time.Time, error) {
	r, err := parseRoom(room)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	var state any
	var seq int64
	var at time.Time
	switch r.kind {
	case "workshop":
		var st store.WorkshopState
		st, seq, err = l.store.WorkshopSnapshot(ctx, r.id)
		state, at = st, st.At
	default:
		seq, err = l.store.Head(ctx, room)
		state = map[string]any{}
	}
	if err != nil {
		return nil, 0, time.Time{}, toOpError(err)
	}
	raw, err := json.Marshal(state)
	return raw, seq, at, err
}

// Rewound forgets the room's cached entries: the hub found its log is not
// the one it sent, so they may be another log's (see hub.Rewinder). When
// told to announce (the log went below what was sent), it tells the other
// processes, whose members may hold that log's entries too and whose own
// check may come later (see app.onAccess).
func (l *live) Rewound(room string, head int64, announce bool) {
	l.recent.forget(room)
	if l.proc == "" || !announce {
		return
	}
	go func() { // the hub holds the room's lock
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.store.AnnounceAccess(ctx, l.proc, store.AccessRestored, store.RestoredID(room, head)); err != nil {
			l.logger.Warn("tell the other processes of a restored log", "room", room, "err", err)
		}
	}()
}

func (l *live) Head(ctx context.Context, room string) (int64, int64, error) {
	before := l.recent.last(room) // read from the log before head is: at or below it
	head, withdrawn, err := l.store.HeadWithdrawn(ctx, room)
	if err != nil {
		return 0, 0, toOpError(err)
	}
	if head < before {
		// The database was restored from a backup: the cached entries
		// are another log's.
		l.recent.forget(room)
	}
	return head, withdrawn, nil
}

// toEntry is the hub's entry of e, by the actor labelled label. A vote's
// entry names no actor: in a small group a country and actor type can
// tell who supported what, and votes are not for others to know.
func toEntry(e domain.LogEntry, label string) hub.Entry {
	if e.Kind == "vote" || e.Kind == "unvote" {
		label = ""
	}
	return hub.Entry{Room: e.Room, Seq: e.Seq, OpID: e.OpID, Actor: label, Kind: e.Kind, Payload: e.Payload, At: e.At,
		Withdraws: e.Kind == "finding.delete"} // as HeadWithdrawn counts them
}

// toOpError turns the application's errors into the hub's error frames;
// anything else stays an internal error (logged by the hub, not shown).
func toOpError(err error) error {
	if store.Busy(err) {
		return &hub.OpError{Code: hub.CodeUnavailable, Message: "The database is too busy; send it again."}
	}
	var de *domain.Error
	if !errors.As(err, &de) || de.Code == domain.Internal {
		return err
	}
	return &hub.OpError{Code: string(de.Code), Message: de.Message, Detail: de.Detail}
}
