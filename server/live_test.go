package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/uptrace/bun"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/pgtest"
	"github.com/rapporteur/rapporteur/server/store"
)

// frame is any frame the hub sends.
type frame struct {
	Type     string          `json:"type"`
	Room     string          `json:"room"`
	Seq      int64           `json:"seq"`
	OpID     string          `json:"op_id"`
	Kind     string          `json:"kind"`
	Actor    string          `json:"actor"`
	Payload  json.RawMessage `json:"payload"`
	State    json.RawMessage `json:"state"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	Detail   json.RawMessage `json:"detail"`
	People   json.RawMessage `json:"people"`
	Presence json.RawMessage `json:"presence"`
	Count    int             `json:"count"`
	Result   json.RawMessage `json:"result"`
}

// client is a test's WebSocket client, signed in as one person.
type client struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan frame
	closed chan error
	mu     sync.Mutex
}

// member is a person in the demo event with a browser (cookie jar) signed in.
type member struct {
	http *http.Client
	id   int64
	name string // as MustMember named them
}

// fixture is a running server with its store.
type fixture struct {
	srv   *server
	store *store.Store
	event domain.Event
	ws    []domain.Workshop
}

func MustFixture(tb testing.TB, env map[string]string) *fixture {
	tb.Helper()
	dsn := env["DATABASE_URL"]
	if dsn == "" {
		dsn = pg.NewDB(tb)
		env["DATABASE_URL"] = dsn
	}
	srv := MustStart(tb, env)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	evs, _ := st.Events(context.Background())
	ws, _ := st.Workshops(context.Background(), evs[0].ID)
	return &fixture{srv: srv, store: st, event: evs[0], ws: ws}
}

// MustMember adds a person with role (in workshop w, or event-wide when w
// is nil) and signs them in through a personal link.
func (f *fixture) MustMember(tb testing.TB, role string, w *domain.Workshop, country, actor string) member {
	tb.Helper()
	var wid int64
	if w != nil {
		wid = w.ID
	}
	p, token := mustInvite(tb, f.store, f.event.ID, store.PersonInput{Name: fmt.Sprintf("%s %d", role, time.Now().UnixNano()), Country: country, ActorType: actor}, role, wid)
	m := mustSignIn(tb, f.srv.URL, token, p.ID)
	m.name = p.Name
	return m
}

// mustEvent adds an event beside the fixture's (with nothing in it) and
// returns its id.
func (f *fixture) mustEvent(tb testing.TB, slug, title string) int64 {
	tb.Helper()
	ev, err := f.store.CreateEvent(context.Background(), store.EventSpec{Slug: slug, Title: title})
	if err != nil {
		tb.Fatal(err)
	}
	return ev.ID
}

// mustInvite adds a person with role to the event (in workshop wid, 0
// for event-wide roles) and returns them with a personal sign-in token,
// valid for an hour.
func mustInvite(tb testing.TB, st *store.Store, eventID int64, in store.PersonInput, role string, wid int64) (domain.Person, string) {
	tb.Helper()
	ctx := context.Background()
	p, _, err := st.AddMember(ctx, nil, eventID, in, role, wid)
	if err != nil {
		tb.Fatal(err)
	}
	token, hash := auth.NewInviteToken()
	if _, err := st.CreateInvite(ctx, store.Invite{EventID: eventID, PersonID: p.ID, TokenHash: hash, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		tb.Fatal(err)
	}
	return p, token
}

// mustSignIn opens the sign-in link of token on the server at base in a
// new cookie jar: the member of person id.
func mustSignIn(tb testing.TB, base, token string, id int64) member {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/signin/" + token)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("sign-in: %s", resp.Status)
	}
	return member{http: c, id: id}
}

// Dial opens a hub connection for m against base.
func (m member) Dial(tb testing.TB, base string) *client {
	tb.Helper()
	c, err := m.dial(base)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.ws.Close() })
	return c
}

func (m member) dial(base string) (*client, error) {
	h := http.Header{"Origin": {base}}
	req, _ := http.NewRequest("GET", base+"/ws", nil)
	for _, ck := range m.http.Jar.Cookies(req.URL) {
		req.AddCookie(ck)
	}
	h.Set("Cookie", req.Header.Get("Cookie"))
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %v (%s)", err, resp.Status)
		}
		return nil, err
	}
	c := &client{ws: ws, frames: make(chan frame, 100000), closed: make(chan error, 1)}
	go func() {
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				c.closed <- err
				close(c.frames)
				return
			}
			for _, b := range bytes.Split(msg, []byte("\n")) { // a frame a line
				var f frame
				json.Unmarshal(b, &f)
				c.frames <- f
			}
		}
	}()
	return c, nil
}

func (c *client) send(tb testing.TB, v any) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ws.WriteJSON(v); err != nil {
		tb.Fatalf("send: %v", err)
	}
}

// next returns the next frame that match accepts, failing after a timeout.
func (c *client) next(tb testing.TB, match func(frame) bool) frame {
	tb.Helper()
	return c.nextOr(tb, match, func() { tb.Fatal("timed out waiting for a frame") })
}

func (c *client) nextOr(tb testing.TB, match func(frame) bool, timedOut func()) frame {
	tb.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				tb.Fatalf("connection closed while waiting: %v", <-c.closed)
			}
			if match(f) {
				return f
			}
		case <-timeout:
			timedOut()
			return frame{}
		}
	}
}

// mustCloseWith waits until c is closed with code, failing after within.
func (c *client) mustCloseWith(tb testing.TB, code int, within time.Duration, what string) {
	tb.Helper()
	select {
	case err := <-c.closed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			tb.Errorf("%s: closed with %v, want %d", what, err, code)
		}
	case <-time.After(within):
		tb.Fatalf("%s: still open after %v, want closed with %d", what, within, code)
	}
}

func ofType(t string) func(frame) bool { return func(f frame) bool { return f.Type == t } }

// answerTo matches the ack or error frame that answers op id.
func answerTo(id string) func(frame) bool {
	return func(f frame) bool { return (f.Type == "ack" || f.Type == "error") && f.OpID == id }
}

// answers returns the ack or error frames that answer the op ids, in
// whatever order they come.
func (c *client) answers(tb testing.TB, ids ...string) map[string]frame {
	tb.Helper()
	got := map[string]frame{}
	for len(got) < len(ids) {
		fr := c.next(tb, func(f frame) bool { return (f.Type == "ack" || f.Type == "error") && slices.Contains(ids, f.OpID) })
		got[fr.OpID] = fr
	}
	return got
}

func (c *client) join(tb testing.TB, room string, since int64) frame {
	tb.Helper()
	c.send(tb, map[string]any{"type": "join", "room": room, "since": since})
	return c.next(tb, func(f frame) bool { return f.Type == "joined" || f.Type == "error" })
}

// mustJoined is a participant of workshop w, from country and actor
// type, connected and joined to w's room.
func (f *fixture) mustJoined(tb testing.TB, w *domain.Workshop, country, actor string) *client {
	tb.Helper()
	c := f.MustMember(tb, domain.RoleParticipant, w, country, actor).Dial(tb, f.srv.URL)
	c.join(tb, store.WorkshopRoom(w.ID), 0)
	return c
}

// created waits for the entry of create op opID and returns it with the
// finding it holds.
func (c *client) created(tb testing.TB, opID string) (frame, domain.Finding) {
	tb.Helper()
	e := c.next(tb, func(f frame) bool { return f.Type == "entry" && f.OpID == opID })
	var fnd domain.Finding
	if err := json.Unmarshal(e.Payload, &fnd); err != nil {
		tb.Fatalf("entry of %s: %v", opID, err)
	}
	return e, fnd
}

func op(room, id, kind string, base int64, body any) map[string]any {
	return map[string]any{"type": "op", "room": room, "op_id": id, "kind": kind, "base": base, "body": body}
}

// TestSmallEditsOfABigFindingAreSmallEntries: every member of a room is
// sent each entry. A one-word edit of a finding with long texts (four
// 60 KB fields) was an entry of some 240 KB, the whole finding: eight of
// them in a row dropped every member of the room. An update's entry now
// carries what changed: the room gets eight small entries, and its
// members stay.
func TestSmallEditsOfABigFindingAreSmallEntries(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	a := f.mustJoined(t, w, "FI", "police")
	b := f.mustJoined(t, w, "SE", "ngo")
	a.send(t, op(room, "c1", "finding.create", 0, map[string]any{"title": "Big"}))
	_, fnd := a.created(t, "c1")
	long := strings.Repeat("€", 20000) // 60,000 bytes, in one frame
	version := int64(fnd.Version)
	for i, field := range []string{"what_done", "results", "transferability", "nordic_proposal"} {
		id := fmt.Sprintf("u%d", i)
		a.send(t, op(room, id, "finding.update", version, map[string]any{"id": fnd.ID, "fields": map[string]any{field: long}}))
		if fr := a.next(t, answerTo(id)); fr.Type != "ack" {
			t.Fatalf("%s: %+v", id, fr)
		}
		version++
	}
	// Another member edits the title, eight times at once.
	c := f.mustJoined(t, w, "DK", "ngo")
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("title%d", i)
		ids = append(ids, id)
		c.send(t, op(room, id, "finding.update", version, map[string]any{"id": fnd.ID, "fields": map[string]any{"title": fmt.Sprintf("Big %d", i)}}))
	}
	for id, fr := range c.answers(t, ids...) {
		if fr.Type != "ack" {
			t.Fatalf("%s: %+v", id, fr)
		}
	}
	for _, id := range ids {
		e := b.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == id })
		if n := len(e.Payload); n > 500 {
			t.Errorf("the entry of a title edit is %d bytes: %s", n, e.Payload)
		}
	}
	b.send(t, map[string]any{"type": "ping"})
	b.next(t, ofType("pong")) // fails if b was dropped
	if got, err := f.store.Finding(context.Background(), fnd.ID); err != nil || got.Title != "Big 7" || got.WhatDone != long {
		t.Fatalf("the finding after the edits: title %q (%v)", got.Title, err)
	}
}

// TestLiveRoomConvergesWith80Clients: 80 people in one room create,
// vote, comment, edit and withdraw votes at once. Every client ends with
// the log's entries in its order, and the state each builds from them
// (findings, votes, comments) is what the database holds. Edits of one
// field of one finding, all based on the same version, are applied for
// the first and refused as conflicts for the rest.
func TestLiveRoomConvergesWith80Clients(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	ctx := context.Background()
	const n, each = 80, 5
	head0, _ := f.store.Head(ctx, room)
	start := roomState(t, f, w.ID)
	seed, _ := f.store.WorkshopFindings(ctx, w.ID)
	if len(seed) < 2 {
		t.Fatalf("the demo workshop has %d findings, want at least 2", len(seed))
	}
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = f.MustMember(t, domain.RoleParticipant, w, "FI", "police").Dial(t, f.srv.URL)
		if j := clients[i].join(t, room, head0); j.Type != "joined" {
			t.Fatalf("join: %+v", j)
		}
	}
	// Client i edits one of a few text fields of seed finding i%len(seed):
	// several clients share each (finding, field).
	fields := []string{"results", "transferability", "what_done"}
	edit := func(i int) (int64, string) {
		return seed[i%len(seed)].ID, fields[(i/len(seed))%len(fields)]
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *client) {
			defer wg.Done()
			target := seed[i%len(seed)]
			for k := 0; k < each; k++ {
				id := fmt.Sprintf("c%d-%d", i, k)
				switch k {
				case 0:
					c.send(t, op(room, id, "finding.create", 0, map[string]any{"title": "From client " + id, "countries": []string{"FI"}}))
				case 1:
					c.send(t, op(room, id, "vote", 0, map[string]any{"finding_id": target.ID}))
				case 2:
					c.send(t, op(room, id, "comment", 0, map[string]any{"finding_id": seed[0].ID, "text": "Agree, " + id}))
				case 3:
					fid, field := edit(i)
					c.send(t, op(room, id, "finding.update", int64(target.Version), map[string]any{"id": fid, "fields": map[string]any{field: "Edited by " + id}}))
				case 4:
					if i%2 == 0 { // half take their vote back
						c.send(t, op(room, id, "unvote", 0, map[string]any{"finding_id": target.ID}))
					} else {
						c.send(t, op(room, id, "vote", 0, map[string]any{"finding_id": seed[(i+1)%len(seed)].ID}))
					}
				}
			}
		}(i, c)
	}
	wg.Wait()
	// Every op is answered: acked, or (only an edit) refused as a conflict.
	entries := make([][]frame, n)
	acked := map[string]int64{}
	winners := map[string]int{} // "finding/field": edits applied
	edited := func(i int) string { fid, field := edit(i); return fmt.Sprintf("%d/%s", fid, field) }
	for i := range n {
		winners[edited(i)] = 0
	}
	for i, c := range clients {
		answered := 0
		for answered < each {
			fr := c.next(t, func(f frame) bool { return f.Type == "entry" || f.Type == "ack" || f.Type == "error" })
			switch {
			case fr.Type == "entry":
				entries[i] = append(entries[i], fr)
				continue
			case fr.Type == "ack":
				acked[fr.OpID] = fr.Seq
			case fr.Code != "conflict" || !strings.HasSuffix(fr.OpID, "-3"):
				t.Fatalf("client %d: %+v", i, fr)
			}
			if fr.Type == "ack" && strings.HasSuffix(fr.OpID, "-3") {
				winners[edited(i)]++
			}
			answered++
		}
	}
	for k, v := range winners {
		if v != 1 {
			t.Errorf("%s: %d edits applied, want exactly 1 (the rest are conflicts)", k, v)
		}
	}
	head, _ := f.store.Head(ctx, room)
	logEntries, err := f.store.EntriesAfter(ctx, room, head0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(logEntries)) != head-head0 || len(logEntries) != len(acked) {
		t.Fatalf("log has %d new entries up to seq %d, for %d acked ops", len(logEntries), head, len(acked))
	}
	for _, e := range logEntries {
		if seq, ok := acked[e.OpID]; !ok || seq != e.Seq {
			t.Fatalf("log entry %d:%s; its op was acked with seq %d (%v)", e.Seq, e.OpID, seq, ok)
		}
	}
	// Every client has the log's entries in order, and builds from them
	// the state the database holds.
	end := roomState(t, f, w.ID)
	for i, c := range clients {
		for len(entries[i]) == 0 || entries[i][len(entries[i])-1].Seq < head {
			entries[i] = append(entries[i], c.nextOr(t, ofType("entry"), func() {
				t.Fatalf("client %d: has %d entries of %d", i, len(entries[i]), len(logEntries))
			}))
		}
		if len(entries[i]) != len(logEntries) {
			t.Fatalf("client %d: %d entries, log has %d", i, len(entries[i]), len(logEntries))
		}
		for k, e := range logEntries {
			if got := entries[i][k]; got.Seq != e.Seq || got.OpID != e.OpID {
				t.Fatalf("client %d entry %d = %d:%s, log has %d:%s", i, k, got.Seq, got.OpID, e.Seq, e.OpID)
			}
		}
		got := start.clone()
		for _, e := range entries[i] {
			got.apply(t, e)
		}
		if diff := got.diff(end); diff != "" {
			t.Fatalf("client %d's state is not the database's: %s", i, diff)
		}
	}
}

// TestEntriesCarryWhatReleasesAndKeyMarksChange: a client that builds
// the room from its entries while findings are marked key, unmarked,
// reordered, shared and released (some to what they are already) ends
// with what the database holds, versions and times of change included.
func TestEntriesCarryWhatReleasesAndKeyMarksChange(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	ctx := context.Background()
	head0, _ := f.store.Head(ctx, room)
	start := roomState(t, f, w.ID)
	follower := f.MustMember(t, domain.RoleParticipant, w, "SE", "ngo").Dial(t, f.srv.URL)
	follower.join(t, room, head0)
	rap := f.MustMember(t, domain.RoleRapporteur, w, "FI", "police").Dial(t, f.srv.URL)
	rap.join(t, room, head0)
	org := f.MustMember(t, domain.RoleOrganizer, nil, "DK", "coordinator").Dial(t, f.srv.URL)
	org.join(t, room, head0)
	n := 0
	do := func(c *client, kind string, body map[string]any) frame {
		t.Helper()
		n++
		id := fmt.Sprintf("k%d", n)
		c.send(t, op(room, id, kind, 0, body))
		fr := c.next(t, answerTo(id))
		if fr.Type != "ack" {
			t.Fatalf("%s %v: %+v", kind, body, fr)
		}
		return fr
	}
	var ids []int64
	var entries []frame
	for i := range 4 {
		do(rap, "finding.create", map[string]any{"title": fmt.Sprintf("Key candidate %d", i)})
		e := follower.next(t, ofType("entry"))
		entries = append(entries, e)
		ids = append(ids, int64(jsonObject(t, e.Payload)["id"].(float64)))
	}
	a, b, c, d := ids[0], ids[1], ids[2], ids[3]
	do(rap, "key.mark", map[string]any{"finding_id": a})
	do(rap, "key.mark", map[string]any{"finding_id": b})
	do(rap, "key.mark", map[string]any{"finding_id": c})
	do(rap, "key.reorder", map[string]any{"finding_ids": []int64{c, a, b}})
	do(rap, "key.unmark", map[string]any{"finding_id": a})
	do(rap, "key.mark", map[string]any{"finding_id": b})   // key already
	do(rap, "key.unmark", map[string]any{"finding_id": d}) // not key
	do(rap, "finding.share", map[string]any{"finding_id": a})
	do(rap, "finding.share", map[string]any{"finding_id": a}) // shared already
	do(org, "finding.release", map[string]any{"finding_id": b, "state": "released"})
	do(org, "finding.release", map[string]any{"finding_id": b, "state": "released"}) // released already
	do(org, "finding.release", map[string]any{"finding_id": a, "state": "draft"})
	do(rap, "vote", map[string]any{"finding_id": c})
	do(rap, "key.mark", map[string]any{"finding_id": d})

	head, _ := f.store.Head(ctx, room)
	for int64(len(entries)) < head-head0 {
		entries = append(entries, follower.next(t, ofType("entry")))
	}
	got := start.clone()
	for i, e := range entries {
		if e.Seq != head0+int64(i)+1 {
			t.Fatalf("entry %d is seq %d, want %d", i, e.Seq, head0+int64(i)+1)
		}
		got.apply(t, e)
	}
	want := roomState(t, f, w.ID)
	got.keyRanks()
	want.keyRanks()
	if diff := got.diff(want); diff != "" {
		t.Fatalf("the state built from entries is not the database's: %s", diff)
	}
	// A release to the state it has changes nothing, not even the version.
	var versions []int
	if err := f.store.DB().NewRaw("SELECT version FROM findings WHERE id IN (?) ORDER BY id", bun.In([]int64{a, b})).Scan(ctx, &versions); err != nil {
		t.Fatal(err)
	}
	if want := []int{5, 3}; !slices.Equal(versions, want) { // a: made, marked, unmarked, shared, back to draft; b: made, marked, released
		t.Errorf("versions of the findings: %v, want %v", versions, want)
	}
}

// liveState is a room's findings (each as its JSON object, times as
// instants) and comments, as a client builds them from entries.
type liveState struct {
	findings map[int64]map[string]any
	comments map[int64]string // id: "finding id: body"
}

// roomState reads workshop wid's findings and comments from the database.
func roomState(tb testing.TB, f *fixture, wid int64) liveState {
	tb.Helper()
	ctx := context.Background()
	fs, err := f.store.WorkshopFindings(ctx, wid)
	if err != nil {
		tb.Fatal(err)
	}
	s := liveState{findings: map[int64]map[string]any{}, comments: map[int64]string{}}
	for _, fnd := range fs {
		b, _ := json.Marshal(fnd)
		s.findings[fnd.ID] = jsonObject(tb, b)
	}
	var rows []struct {
		ID        int64
		FindingID int64
		Body      string
	}
	if err := f.store.DB().NewRaw("SELECT c.id, c.finding_id, c.body FROM comments c JOIN findings f ON f.id = c.finding_id WHERE f.workshop_id = ? AND f.deleted_at IS NULL AND c.deleted_at IS NULL", wid).Scan(ctx, &rows); err != nil {
		tb.Fatal(err)
	}
	for _, r := range rows {
		s.comments[r.ID] = fmt.Sprintf("%d: %s", r.FindingID, r.Body)
	}
	return s
}

// jsonObject decodes b, with times as UTC instants and nulls left out, so
// that two encodings of one finding compare equal.
func jsonObject(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("%s: %v", b, err)
	}
	for k, v := range m {
		if v == nil {
			delete(m, k)
		} else if s, ok := v.(string); ok && strings.HasSuffix(k, "_at") {
			if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
				m[k] = tm.UTC().Format(time.RFC3339Nano)
			}
		}
	}
	return m
}

func (s liveState) clone() liveState {
	c := liveState{findings: map[int64]map[string]any{}, comments: maps.Clone(s.comments)}
	for id, m := range s.findings {
		c.findings[id] = maps.Clone(m)
	}
	return c
}

// apply is what a client does with entry e.
func (s liveState) apply(tb testing.TB, e frame) {
	tb.Helper()
	var p struct {
		Changes      json.RawMessage `json:"changes"`
		FindingID    int64           `json:"finding_id"`
		Votes        *float64        `json:"votes"`
		ID           int64           `json:"id"`
		Body         string          `json:"body"`
		Order        []int64         `json:"order"`
		ReleaseState string          `json:"release_state"`
		Version      *float64        `json:"version"`
		UpdatedAt    *time.Time      `json:"updated_at"`
	}
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		tb.Fatalf("entry %d: %v", e.Seq, err)
	}
	switch e.Kind {
	case "finding.create":
		m := jsonObject(tb, e.Payload)
		s.findings[p.ID] = m
	case "finding.update":
		m := s.findings[p.ID]
		if m == nil || p.Version == nil || p.UpdatedAt == nil {
			tb.Fatalf("entry %d: an update of finding %d, not known or without its version and time: %s", e.Seq, p.ID, e.Payload)
		}
		maps.Copy(m, jsonObject(tb, p.Changes))
		m["version"] = *p.Version
		m["updated_at"] = p.UpdatedAt.UTC().Format(time.RFC3339Nano)
	case "vote", "unvote":
		if s.findings[p.FindingID] == nil || p.Votes == nil {
			tb.Fatalf("entry %d: %s of finding %d: %s", e.Seq, e.Kind, p.FindingID, e.Payload)
		}
		s.findings[p.FindingID]["votes"] = *p.Votes
	case "comment":
		s.comments[p.ID] = fmt.Sprintf("%d: %s", p.FindingID, p.Body)
	case "finding.release", "key.mark", "key.unmark", "key.reorder":
		if e.Kind == "finding.release" {
			s.findings[p.FindingID]["release_state"] = p.ReleaseState
		} else {
			for id, m := range s.findings {
				if i := slices.Index(p.Order, id); i >= 0 {
					m["is_key"], m["key_position"] = true, float64(i+1)
				} else {
					m["is_key"] = false
					delete(m, "key_position")
				}
			}
		}
		if e.Kind != "key.reorder" {
			if p.Version == nil || p.UpdatedAt == nil {
				tb.Fatalf("entry %d: %s without the finding's version and time: %s", e.Seq, e.Kind, e.Payload)
			}
			s.findings[p.FindingID]["version"] = *p.Version
			s.findings[p.FindingID]["updated_at"] = p.UpdatedAt.UTC().Format(time.RFC3339Nano)
		}
	default:
		tb.Fatalf("entry %d: unexpected kind %s", e.Seq, e.Kind)
	}
}

// keyRanks puts key_position as each key finding's place among them: the
// database keeps a sort key with gaps, an entry's order has none.
func (s liveState) keyRanks() {
	var key []int64
	for id, m := range s.findings {
		if m["key_position"] != nil {
			key = append(key, id)
		}
	}
	slices.SortFunc(key, func(a, b int64) int {
		return cmp.Compare(s.findings[a]["key_position"].(float64), s.findings[b]["key_position"].(float64))
	})
	for i, id := range key {
		s.findings[id]["key_position"] = float64(i + 1)
	}
}

// diff says how s differs from want, or "" when they are the same.
func (s liveState) diff(want liveState) string {
	if !maps.Equal(s.comments, want.comments) {
		return fmt.Sprintf("comments %v, want %v", s.comments, want.comments)
	}
	if len(s.findings) != len(want.findings) {
		return fmt.Sprintf("%d findings, want %d", len(s.findings), len(want.findings))
	}
	for id, w := range want.findings {
		if g := s.findings[id]; !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("finding %d is %v, want %v", id, g, w)
		}
	}
	return ""
}

func TestRetriedOpIsAppliedOnce(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[1]
	room := store.WorkshopRoom(w.ID)
	m := f.MustMember(t, domain.RoleParticipant, w, "SE", "ngo")
	ctx := context.Background()
	c := m.Dial(t, f.srv.URL)
	c.join(t, room, 0)
	// The room's row locked, as another op's transaction would: the op is
	// surely in flight, waiting for it, when the connection drops.
	tx, err := f.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO rooms (id, seq) VALUES (?, 0) ON CONFLICT (id) DO UPDATE SET seq = rooms.seq", room); err != nil {
		t.Fatal(err)
	}
	c.send(t, op(room, "retry-1", "finding.create", 0, map[string]any{"title": "Sent once, retried"}))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := f.store.DB().NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(ctx, &waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the op never waited for the room's lock")
		}
	}
	c.ws.Close() // dropped mid-op: the client never sees the ack
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := f.store.OpSeq(ctx, room, "retry-1"); err == nil {
			break // applied, its ack lost
		}
		if time.Now().After(deadline) {
			t.Fatal("the op in flight was not applied after its connection dropped")
		}
	}
	c2 := m.Dial(t, f.srv.URL)
	c2.join(t, room, 0)
	c2.send(t, op(room, "retry-1", "finding.create", 0, map[string]any{"title": "Sent once, retried"}))
	ack := c2.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" })
	if ack.Type != "ack" {
		t.Fatalf("retry: %+v", ack)
	}
	c2.send(t, op(room, "retry-1", "finding.create", 0, map[string]any{"title": "Sent once, retried"}))
	again := c2.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" })
	if again.Type != "ack" || again.Seq != ack.Seq {
		t.Fatalf("second retry: %+v, want ack with seq %d", again, ack.Seq)
	}
	var count int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM findings WHERE title = 'Sent once, retried'").Scan(ctx, &count); err != nil {
		t.Fatal(err)
	}
	if count != 1 {
		t.Fatalf("%d findings, want 1", count)
	}
}

// TestACreateIsAckedWithItsFinding: the ack of a create names the finding
// it made, also when the create is resent after its ack was lost and the
// client's resume was answered with a snapshot (a deletion since), in
// which the create's entry never comes and the findings carry no op id.
// Before, such a client could not tell which finding it had made.
func TestACreateIsAckedWithItsFinding(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[2]
	room := store.WorkshopRoom(w.ID)
	m := f.MustMember(t, domain.RoleParticipant, w, "DK", "ngo")
	ctx := context.Background()
	idOf := func(raw json.RawMessage) int64 {
		t.Helper()
		var r struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("result %s: %v", raw, err)
		}
		return r.ID
	}
	c := m.Dial(t, f.srv.URL)
	since := c.join(t, room, 0).Seq
	c.send(t, op(room, "online", "finding.create", 0, map[string]any{"title": "Made online"}))
	var ack frame
	var fnd domain.Finding
	for ack.Type == "" || fnd.ID == 0 { // the entry may come first
		switch fr := c.next(t, func(fr frame) bool { return fr.OpID == "online" }); fr.Type {
		case "entry":
			json.Unmarshal(fr.Payload, &fnd)
		default:
			ack = fr
		}
	}
	if ack.Type != "ack" || idOf(ack.Result) != fnd.ID {
		t.Fatalf("ack of a create: %+v (result %s), want the id of finding %d", ack, ack.Result, fnd.ID)
	}
	since++
	c.ws.Close()
	// The next create was applied, its ack lost with the connection.
	made, err := f.store.CreateFinding(ctx, &m.id, w.ID, "offline", store.FindingInput{Title: "Made offline"})
	if err != nil {
		t.Fatal(err)
	}
	var mine domain.Finding
	json.Unmarshal(made.Entry.Payload, &mine)
	gone, err := f.store.CreateFinding(ctx, nil, w.ID, "gone", store.FindingInput{Title: "Gone"})
	if err != nil {
		t.Fatal(err)
	}
	var g domain.Finding
	json.Unmarshal(gone.Entry.Payload, &g)
	if _, err := f.store.DeleteFinding(ctx, nil, w.ID, "gone-deleted", g.ID, 0); err != nil {
		t.Fatal(err)
	}
	c = m.Dial(t, f.srv.URL)
	c.send(t, map[string]any{"type": "join", "room": room, "since": since})
	if fr := c.next(t, func(fr frame) bool { return fr.Type == "snapshot" || fr.Type == "entry" }); fr.Type != "snapshot" {
		t.Fatalf("resume across a deletion: %s, want a snapshot", fr.Type)
	}
	c.next(t, ofType("joined"))
	c.send(t, op(room, "offline", "finding.create", 0, map[string]any{"title": "Made offline"}))
	if ack := c.next(t, answerTo("offline")); ack.Type != "ack" || ack.Seq != made.Entry.Seq || idOf(ack.Result) != mine.ID {
		t.Fatalf("ack of the resent create: %+v (result %s), want seq %d and finding %d", ack, ack.Result, made.Entry.Seq, mine.ID)
	}
}

// TestCreatedResult: the id is read from jsonb's text, and from any other
// JSON of a finding.
func TestCreatedResult(t *testing.T) {
	for _, tc := range []struct{ payload, want string }{
		{`{"id": 31, "ps": [], "title": "x"}`, `{"id":31}`},
		{`{"id": 7}`, `{"id":7}`},
		{`{"title":"x","id":12}`, `{"id":12}`},
		{`{"title": "x"}`, ``},
		{`{"id": -3, "x": 1}`, ``},
		{`not json`, ``},
	} {
		if got := string(createdResult(json.RawMessage(tc.payload))); got != tc.want {
			t.Errorf("createdResult(%s) = %s, want %s", tc.payload, got, tc.want)
		}
	}
}

// TestAResendWhileItsFirstCopyIsOnItsWayIsNotRefused: a rapporteur's op
// is on its way in when the connection drops; the role is then taken
// back, and the client resends the op. While the first copy can still be
// applied, the resend is not answered forbidden (which tells the client
// to drop an op as not saved). On the process where the first copy waits
// for its turn, the resend is unavailable, to be sent again. On another
// process, a first copy already in its transaction is waited for, even
// one that is making the room's row. Once the first copy is applied, the
// resend is acked with its seq. Before, the resend was refused and the
// first copy then saved the op.
func TestAResendWhileItsFirstCopyIsOnItsWayIsNotRefused(t *testing.T) {
	f, other, w, room := twoProcesses(t)
	ctx := context.Background()
	m := f.MustMember(t, domain.RoleRapporteur, w, "SE", "ngo")
	lockWaiters := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			var waiting int
			if err := f.store.DB().NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(ctx, &waiting); err != nil {
				t.Fatal(err)
			}
			if waiting >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d waiting for a lock, want %d", waiting, n)
			}
		}
	}
	exec := func(db bun.IDB, q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	setRole := func(role string) {
		exec(f.store.DB(), "UPDATE memberships SET role = ? WHERE person_id = ? AND workshop_id = ?", role, m.id, w.ID)
	}
	answer := func(c *client, o map[string]any) frame {
		t.Helper()
		return c.next(t, answerTo(o["op_id"].(string)))
	}
	acked := func(c *client, o map[string]any, fr frame) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); fr.Code == hub.CodeUnavailable && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond) // as a client waits before sending again
			c.send(t, o)
			fr = answer(c, o)
		}
		seq, err := f.store.OpSeq(ctx, room, o["op_id"].(string))
		if err != nil {
			t.Fatalf("the first copy was not applied (%v); the resend was answered %+v", err, fr)
		}
		if fr.Type != "ack" || fr.Seq != seq {
			t.Fatalf("resend once the first copy is applied: %+v, want its ack at %d", fr, seq)
		}
	}

	// On the same process: the first copy waits for the room, which
	// another transaction holds.
	a, err := f.store.CreateFinding(ctx, &m.id, w.ID, "to-share", store.FindingInput{Title: "Shared on its way"})
	if err != nil {
		t.Fatal(err)
	}
	var fnd domain.Finding
	json.Unmarshal(a.Entry.Payload, &fnd)
	share := op(room, "share", "finding.share", 0, map[string]any{"finding_id": fnd.ID})
	c := m.Dial(t, f.srv.URL)
	c.join(t, room, 0)
	tx, err := f.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	exec(tx, "UPDATE rooms SET seq = seq WHERE id = ?", room)
	c.send(t, share)
	lockWaiters(1)
	c.ws.Close() // dropped before its ack
	setRole(domain.RoleParticipant)
	again := m.Dial(t, f.srv.URL)
	again.join(t, room, 0)
	again.send(t, share)
	if fr := answer(again, share); fr.Code != hub.CodeUnavailable {
		t.Fatalf("a resend on the process where its first copy waits: %+v, want unavailable", fr)
	}
	tx.Rollback()
	again.send(t, share)
	acked(again, share, answer(again, share))

	// On another process: the first copy is in its transaction, which
	// makes the room's row (as if nothing was written in it yet), and
	// waits for the workshop's row, which an organizer's edit holds.
	setRole(domain.RoleRapporteur)
	exec(f.store.DB(), "DELETE FROM log_entries WHERE room = ?", room)
	exec(f.store.DB(), "DELETE FROM rooms WHERE id = ?", room)
	var version int64
	if err := f.store.DB().NewRaw("SELECT key_messages_version FROM workshops WHERE id = ?", w.ID).Scan(ctx, &version); err != nil {
		t.Fatal(err)
	}
	set := op(room, "key-messages", "keymessages.set", version, map[string]any{"text": "Saved on its way"})
	c = m.Dial(t, f.srv.URL)
	c.join(t, room, 0)
	tx, err = f.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	exec(tx, "SELECT 1 FROM workshops WHERE id = ? FOR UPDATE", w.ID)
	c.send(t, set)
	lockWaiters(1)
	c.ws.Close()
	setRole(domain.RoleParticipant)
	again = m.Dial(t, other.URL)
	again.join(t, room, 0)
	again.send(t, set)
	lockWaiters(2) // the resend's look-up waits for the first copy
	tx.Rollback()
	acked(again, set, answer(again, set))
}

// TestOpResentAfterItsRoleWentIsAcked: an op applied, whose ack was lost,
// is resent after the person lost the role that allowed it (a rapporteur
// made a participant). It was applied, so it is acked with its seq, not
// refused as forbidden (a client would say "not saved"); a new op of the
// kind is refused.
func TestOpResentAfterItsRoleWentIsAcked(t *testing.T) {
	// Postgres ends a statement after 1.8 s (see statementTimeout).
	f := MustFixture(t, map[string]string{"DATABASE_URL": pgtest.WithParams(pg.NewDB(t), "read_timeout=2s")})
	w := &f.ws[1]
	room := store.WorkshopRoom(w.ID)
	m := f.MustMember(t, domain.RoleRapporteur, w, "SE", "ngo")
	ctx := context.Background()
	created, err := f.store.CreateFinding(ctx, &m.id, w.ID, "to-share", store.FindingInput{Title: "Shared before the change"})
	if err != nil {
		t.Fatal(err)
	}
	var fnd domain.Finding
	json.Unmarshal(created.Entry.Payload, &fnd)
	c := m.Dial(t, f.srv.URL)
	c.join(t, room, 0)
	c.send(t, op(room, "share-1", "finding.share", 0, map[string]any{"finding_id": fnd.ID}))
	first := c.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" })
	if first.Type != "ack" {
		t.Fatalf("share: %+v", first)
	}
	c.ws.Close() // as if the ack never came
	if _, err := f.store.DB().ExecContext(ctx, "UPDATE memberships SET role = 'participant' WHERE person_id = ? AND workshop_id = ?", m.id, w.ID); err != nil {
		t.Fatal(err)
	}
	c2 := m.Dial(t, f.srv.URL)
	c2.join(t, room, 0)
	c2.send(t, op(room, "share-1", "finding.share", 0, map[string]any{"finding_id": fnd.ID}))
	if again := c2.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" }); again.Type != "ack" || again.Seq != first.Seq {
		t.Fatalf("the share resent after the role went: %+v, want ack with seq %d", again, first.Seq)
	}
	c2.send(t, op(room, "share-2", "finding.share", 0, map[string]any{"finding_id": fnd.ID}))
	if refused := c2.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" }); refused.Type != "error" || refused.Code != "forbidden" {
		t.Fatalf("a new share by a participant: %+v, want forbidden", refused)
	}
	// While the log cannot be read, a refused op is not answered
	// forbidden: it may be one applied before, which the client would
	// then drop as not saved.
	tx, err := f.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE log_entries IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	c2.send(t, op(room, "share-3", "finding.share", 0, map[string]any{"finding_id": fnd.ID}))
	if unsure := c2.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" }); unsure.Type != "error" || unsure.Code != "unavailable" {
		t.Fatalf("a refused op while the log cannot be read: %+v, want unavailable", unsure)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	c2.send(t, op(room, "share-3", "finding.share", 0, map[string]any{"finding_id": fnd.ID}))
	if refused := c2.next(t, func(f frame) bool { return f.Type == "ack" || f.Type == "error" }); refused.Type != "error" || refused.Code != "forbidden" {
		t.Fatalf("the same op once the log answers: %+v, want forbidden", refused)
	}
}

func TestResumeGetsExactlyTheMissedEntries(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[2]
	room := store.WorkshopRoom(w.ID)
	m := f.MustMember(t, domain.RoleParticipant, w, "NO", "police")
	c := m.Dial(t, f.srv.URL)
	joined := c.join(t, room, 0)
	since := joined.Seq
	c.ws.Close()
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		if _, err := f.store.CreateFinding(ctx, &m.id, w.ID, fmt.Sprintf("away-%d", i), store.FindingInput{Title: fmt.Sprintf("While away %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	c = m.Dial(t, f.srv.URL)
	c.send(t, map[string]any{"type": "join", "room": room, "since": since})
	for i := 0; i < 200; i++ {
		fr := c.next(t, func(f frame) bool { return f.Type != "presence" })
		if fr.Type != "entry" || fr.Seq != since+int64(i)+1 || fr.OpID != fmt.Sprintf("away-%d", i) {
			t.Fatalf("resumed frame %d = %s seq %d op %s, want entry seq %d op away-%d", i, fr.Type, fr.Seq, fr.OpID, since+int64(i)+1, i)
		}
	}
	if fr := c.next(t, func(f frame) bool { return f.Type != "presence" }); fr.Type != "joined" || fr.Seq != since+200 {
		t.Fatalf("after the missed entries: %+v, want joined at %d", fr, since+200)
	}

	// Past the history limit (1000 entries) a client gets a snapshot
	// instead, with the comments made meanwhile.
	commented, err := f.store.CreateFinding(ctx, &m.id, w.ID, "to-comment", store.FindingInput{Title: "Commented"})
	if err != nil {
		t.Fatal(err)
	}
	var cf domain.Finding
	json.Unmarshal(commented.Entry.Payload, &cf)
	if _, err := f.store.AddComment(ctx, m.id, w.ID, "a-comment", cf.ID, "Seen in Oslo too"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1001; i++ {
		if _, err := f.store.CreateFinding(ctx, &m.id, w.ID, fmt.Sprintf("far-%d", i), store.FindingInput{Title: "Far"}); err != nil {
			t.Fatal(err)
		}
	}
	c2 := m.Dial(t, f.srv.URL)
	c2.send(t, map[string]any{"type": "join", "room": room, "since": since + 200})
	snap := c2.next(t, func(f frame) bool { return f.Type != "presence" })
	if snap.Type != "snapshot" || snap.Seq != since+1203 {
		t.Fatalf("far behind: %s at %d, want a snapshot at %d", snap.Type, snap.Seq, since+1203)
	}
	var st store.WorkshopState
	json.Unmarshal(snap.State, &st)
	all, _ := f.store.WorkshopFindings(ctx, w.ID)
	if len(st.Findings) != len(all) {
		t.Fatalf("snapshot holds %d findings, the database %d", len(st.Findings), len(all))
	}
	if len(st.Comments) != 1 || st.Comments[0].FindingID != cf.ID || st.Comments[0].Body != "Seen in Oslo too" {
		t.Errorf("snapshot comments %+v, want the one on finding %d", st.Comments, cf.ID)
	}
}

func TestBadOpsGetErrorFramesAndWriteNothing(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	own, other := &f.ws[0], &f.ws[1]
	room := store.WorkshopRoom(own.ID)
	c := f.MustMember(t, domain.RoleParticipant, own, "DK", "ngo").Dial(t, f.srv.URL)
	c.join(t, room, 0)
	ctx := context.Background()
	created, err := f.store.CreateFinding(ctx, nil, own.ID, "mine", store.FindingInput{Title: "Mine"})
	if err != nil {
		t.Fatal(err)
	}
	var mf domain.Finding
	json.Unmarshal(created.Entry.Payload, &mf)
	mine := mf.ID
	head, _ := f.store.Head(ctx, room)
	otherHead, _ := f.store.Head(ctx, store.WorkshopRoom(other.ID))
	// Every row an op may write, in any room.
	const rowsSQL = "SELECT (SELECT count(*) FROM findings) + (SELECT count(*) FROM votes) + (SELECT count(*) FROM comments) + (SELECT count(*) FROM log_entries)"
	var rows int
	if err := f.store.DB().NewRaw(rowsSQL).Scan(ctx, &rows); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		raw  string
		code string
	}{
		{"malformed JSON", `{"type":"op",`, "bad_frame"},
		{"unknown frame type", `{"type":"dance"}`, "unknown_type"},
		{"wrong field type", `{"type":"op","room":"` + room + `","op_id":5,"kind":"vote","body":{}}`, "bad_frame"},
		{"missing op id", `{"type":"op","room":"` + room + `","kind":"vote","body":{}}`, "bad_frame"},
		{"room not joined", `{"type":"op","room":"workshop:` + fmt.Sprint(other.ID) + `","op_id":"x1","kind":"finding.create","body":{"title":"t"}}`, "not_joined"},
		{"body of the wrong shape", `{"type":"op","room":"` + room + `","op_id":"x2","kind":"finding.create","body":{"title":7}}`, "invalid"},
		{"an id that is text", `{"type":"op","room":"` + room + `","op_id":"x2b","kind":"vote","body":{"id":"1"}}`, "invalid"},
		{"terms that are not a list of text", `{"type":"op","room":"` + room + `","op_id":"x2c","kind":"finding.create","body":{"title":"t","countries":[1]}}`, "invalid"},
		{"an id beyond 64 bits", `{"type":"op","room":"` + room + `","op_id":"x2d","kind":"vote","body":{"id":9223372036854775808}}`, "invalid"},
		{"the finding named twice", `{"type":"op","room":"` + room + `","op_id":"x2e","kind":"vote","body":{"id":0,"finding_id":` + fmt.Sprint(mine) + `}}`, "invalid"},
		{"unknown body field", `{"type":"op","room":"` + room + `","op_id":"x3","kind":"finding.create","body":{"title":"t","colour":"red"}}`, "invalid"},
		{"unknown taxonomy term", `{"type":"op","room":"` + room + `","op_id":"x4","kind":"finding.create","body":{"title":"t","countries":["XX"]}}`, "invalid"},
		{"op the role may not do", `{"type":"op","room":"` + room + `","op_id":"x5","kind":"key.mark","body":{"finding_id":1}}`, "forbidden"},
		{"unknown op kind", `{"type":"op","room":"` + room + `","op_id":"x6","kind":"finding.explode","body":{}}`, "invalid"},
		{"comment without its finding", `{"type":"op","room":"` + room + `","op_id":"x7","kind":"comment","body":{"text":"c"}}`, "invalid"},
		{"update to a blank title", `{"type":"op","room":"` + room + `","op_id":"x8","kind":"finding.update","base":1,"body":{"id":` + fmt.Sprint(mine) + `,"fields":{"title":"   "}}}`, "invalid"},
		{"update with a number for a title", `{"type":"op","room":"` + room + `","op_id":"x8b","kind":"finding.update","base":1,"body":{"id":` + fmt.Sprint(mine) + `,"fields":{"title":5}}}`, "invalid"},
		{"update with text for a list", `{"type":"op","room":"` + room + `","op_id":"x8c","kind":"finding.update","base":1,"body":{"id":` + fmt.Sprint(mine) + `,"fields":{"countries":"FI"}}}`, "invalid"},
		{"a text that is not UTF-8", "{\"type\":\"op\",\"room\":\"" + room + "\",\"op_id\":\"x8d\",\"kind\":\"finding.create\",\"body\":{\"title\":\"bad \xff\"}}", "bad_frame"},
		{"oversized frame", `{"type":"op","room":"` + room + `","op_id":"x9","kind":"finding.create","body":{"title":"t","results":"` + strings.Repeat("x", 70000) + `"}}`, "too_large"},
	}
	// What a person is told of a body of the wrong shape.
	wording := map[string]string{
		"body of the wrong shape":           `"title" must be a string`,
		"an id that is text":                `"id" must be an integer`,
		"terms that are not a list of text": `"countries" must be a list of strings`,
		"an id beyond 64 bits":              `"id" is out of range`,
		"the finding named twice":           `not both`,
		"update with a number for a title":  `title must be a string`,
		"update with text for a list":       `countries must be a list of strings`,
		"a text that is not UTF-8":          `not UTF-8`,
	}
	for _, tc := range cases {
		c.mu.Lock()
		c.ws.WriteMessage(websocket.TextMessage, []byte(tc.raw))
		c.mu.Unlock()
		fr := c.next(t, func(f frame) bool { return f.Type == "error" || f.Type == "ack" })
		if fr.Type != "error" || fr.Code != tc.code || fr.Message == "" {
			t.Errorf("%s: %+v, want error %s with a message", tc.name, fr, tc.code)
		}
		if strings.Contains(fr.Message, "Go ") || strings.Contains(fr.Message, "json:") {
			t.Errorf("%s: the message %q speaks Go, not to people", tc.name, fr.Message)
		}
		if want := wording[tc.name]; !strings.Contains(fr.Message, want) {
			t.Errorf("%s: the message %q does not say %q", tc.name, fr.Message, want)
		}
	}
	// Joining another group's room is refused too, and so is the own room
	// spelt another way (it would be a hub room of its own, apart from the log).
	if j := c.join(t, store.WorkshopRoom(other.ID), 0); j.Type != "error" || j.Code != "forbidden" {
		t.Errorf("join of another group: %+v, want forbidden", j)
	}
	for _, alias := range []string{"workshop:0" + fmt.Sprint(own.ID), "workshop:+" + fmt.Sprint(own.ID), "workshop: " + fmt.Sprint(own.ID)} {
		if j := c.join(t, alias, 0); j.Type != "error" || j.Code != "not_found" {
			t.Errorf("join of %q: %+v, want not_found", alias, j)
		}
	}
	if after, _ := f.store.Head(ctx, room); after != head {
		t.Fatalf("bad ops moved the room from %d to %d", head, after)
	}
	if after, _ := f.store.Head(ctx, store.WorkshopRoom(other.ID)); after != otherHead {
		t.Fatalf("bad ops moved the other group's room from %d to %d", otherHead, after)
	}
	var rowsAfter int
	if err := f.store.DB().NewRaw(rowsSQL).Scan(ctx, &rowsAfter); err != nil {
		t.Fatal(err)
	}
	if rowsAfter != rows {
		t.Fatalf("bad ops changed the rows of findings, votes, comments and the log from %d to %d", rows, rowsAfter)
	}
	// The connection survived: a good op still works.
	c.send(t, op(room, "good", "finding.create", 0, map[string]any{"title": "Still here"}))
	if fr := c.next(t, func(f frame) bool { return f.Type == "error" || f.Type == "ack" }); fr.Type != "ack" {
		t.Fatalf("good op after bad ones: %+v", fr)
	}
}

// An op body is strict (PROTOCOL.md): a null, a key spelt in another
// case, or a required key left out is invalid and changes nothing, where
// encoding/json alone would take it as empty (a keymessages.set of {}
// wiped the key messages).
func TestStrictOpBodies(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	c := f.MustMember(t, domain.RoleRapporteur, w, "NO", "police").Dial(t, f.srv.URL)
	c.join(t, room, 0)
	c.send(t, op(room, "km", "keymessages.set", 0, map[string]any{"text": "Ours"}))
	if fr := c.next(t, answerTo("km")); fr.Type != "ack" {
		t.Fatalf("first key messages: %+v", fr)
	}
	c.send(t, op(room, "new", "finding.create", 0, map[string]any{"title": "A finding"}))
	_, fnd := c.created(t, "new")
	ctx := context.Background()
	head, _ := f.store.Head(ctx, room)
	for i, tc := range []struct {
		name, kind, body string
	}{
		{"key messages without text", "keymessages.set", `{}`},
		{"key messages of null", "keymessages.set", `{"text":null}`},
		{"a key in another case", "keymessages.set", `{"TEXT":"Theirs"}`},
		{"a reorder without its list", "key.reorder", `{"finding_ids":null}`},
		{"a null list of terms", "finding.create", `{"title":"t","countries":null}`},
		{"a null id beside the finding's", "vote", fmt.Sprintf(`{"finding_id":%d,"id":null}`, fnd.ID)},
		{"two ids of the finding", "vote", fmt.Sprintf(`{"finding_id":%d,"id":%d}`, fnd.ID, fnd.ID+1)},
		{"two ids of one finding", "finding.delete", fmt.Sprintf(`{"finding_id":%d,"id":%d}`, fnd.ID, fnd.ID)},
	} {
		id := fmt.Sprintf("bad%d", i)
		c.send(t, map[string]any{"type": "op", "room": room, "op_id": id, "kind": tc.kind, "base": 1, "body": json.RawMessage(tc.body)})
		if fr := c.next(t, answerTo(id)); fr.Type != "error" || fr.Code != "invalid" {
			t.Errorf("%s: %+v, want invalid", tc.name, fr)
		}
	}
	if after, _ := f.store.Head(ctx, room); after != head {
		t.Fatalf("bad bodies moved the room from %d to %d", head, after)
	}
	if ws, err := f.store.Workshop(ctx, w.ID); err != nil || ws.KeyMessages != "Ours" {
		t.Fatalf("key messages %q (%v), want them kept", ws.KeyMessages, err)
	}
}

func TestConflictingEditsAreNotOverwritten(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	a, b := f.mustJoined(t, w, "FI", "police"), f.mustJoined(t, w, "SE", "ngo")
	a.send(t, op(room, "new", "finding.create", 0, map[string]any{"title": "Draft"}))
	_, fnd := a.created(t, "new")
	a.send(t, op(room, "a1", "finding.update", 1, map[string]any{"id": fnd.ID, "fields": map[string]any{"title": "Title by A"}}))
	if fr := a.next(t, answerTo("a1")); fr.Type != "ack" {
		t.Fatalf("A's edit: %+v", fr)
	}
	b.send(t, op(room, "b1", "finding.update", 1, map[string]any{"id": fnd.ID, "fields": map[string]any{"results": "Results by B"}}))
	if fr := b.next(t, answerTo("b1")); fr.Type != "ack" {
		t.Fatalf("B's edit of another field: %+v, want a merge", fr)
	}
	b.send(t, op(room, "b2", "finding.update", 1, map[string]any{"id": fnd.ID, "fields": map[string]any{"title": "Title by B"}}))
	fr := b.next(t, answerTo("b2"))
	if fr.Type != "error" || fr.Code != "conflict" || !strings.Contains(string(fr.Detail), "Title by A") {
		t.Fatalf("B's stale title edit: %+v, want a conflict carrying A's title", fr)
	}
	got, _ := f.store.Finding(context.Background(), fnd.ID)
	if got.Title != "Title by A" || got.Results != "Results by B" {
		t.Fatalf("finding = %q / %q", got.Title, got.Results)
	}
	// A delete from A, who saw the finding at version 2, does not take
	// B's results with it unseen; from the version that has them, it does.
	a.send(t, op(room, "a-del", "finding.delete", 2, map[string]any{"finding_id": fnd.ID}))
	if fr := a.next(t, answerTo("a-del")); fr.Type != "error" || fr.Code != "conflict" || !strings.Contains(string(fr.Detail), "Results by B") {
		t.Fatalf("A's delete over version 2: %+v, want a conflict carrying B's results", fr)
	}
	a.send(t, op(room, "a-del-3", "finding.delete", 3, map[string]any{"finding_id": fnd.ID}))
	if fr := a.next(t, answerTo("a-del-3")); fr.Type != "ack" {
		t.Fatalf("A's delete over version 3: %+v", fr)
	}
}

// One person on two devices: the tablet, whose copy is behind, does not
// save over the title they wrote since on the laptop. Each device names
// its client in its ops; the laptop's own later save of the field, based
// on the same version, is no conflict. The entries never carry a client.
func TestAStaleDeviceOfThePersonDoesNotSaveOverTheirNewerText(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	m := f.MustMember(t, domain.RoleParticipant, w, "FI", "police")
	laptop, tablet := m.Dial(t, f.srv.URL), m.Dial(t, f.srv.URL)
	laptop.join(t, room, 0)
	tablet.join(t, room, 0)
	from := func(client, id string, base int64, title string, fid int64) map[string]any {
		o := op(room, id, "finding.update", base, map[string]any{"id": fid, "fields": map[string]any{"title": title}})
		o["client"] = client
		return o
	}
	laptop.send(t, op(room, "new", "finding.create", 0, map[string]any{"title": "Draft"}))
	_, fnd := laptop.created(t, "new")
	laptop.send(t, from("laptop", "l1", 1, "Written on the laptop", fnd.ID))
	if fr := laptop.next(t, answerTo("l1")); fr.Type != "ack" {
		t.Fatalf("the laptop's save: %+v", fr)
	}
	laptop.send(t, from("laptop", "l2", 1, "Written on the laptop, again", fnd.ID))
	if fr := laptop.next(t, answerTo("l2")); fr.Type != "ack" {
		t.Fatalf("the laptop's second save on version 1: %+v, want its own", fr)
	}
	// (The tablet's page would have had it by now; its save was queued
	// before, based on version 1.)
	e := tablet.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == "l2" })
	if strings.Contains(string(e.Payload), `"client"`) {
		t.Fatalf("an entry names its client: %s", e.Payload)
	}
	tablet.send(t, from("tablet", "t1", 1, "Typed on the tablet offline", fnd.ID))
	fr := tablet.next(t, answerTo("t1"))
	if fr.Type != "error" || fr.Code != "conflict" || !strings.Contains(string(fr.Detail), "Written on the laptop, again") {
		t.Fatalf("the tablet's stale save: %+v, want a conflict carrying the laptop's title", fr)
	}
	if got, _ := f.store.Finding(context.Background(), fnd.ID); got.Title != "Written on the laptop, again" {
		t.Fatalf("title %q, want the laptop's", got.Title)
	}
	// A bad name is the frame's error, and the connection goes on.
	tablet.send(t, from("tab\tlet", "t2", 1, "x", fnd.ID))
	if fr := tablet.next(t, answerTo("t2")); fr.Type != "error" || fr.Code != "bad_frame" || !strings.Contains(fr.Message, "client") {
		t.Fatalf("a client with a tab: %+v, want bad_frame naming client", fr)
	}
	tablet.send(t, from("tablet", "t3", 3, "Typed on the tablet, seen the laptop's", fnd.ID))
	if fr := tablet.next(t, answerTo("t3")); fr.Type != "ack" {
		t.Fatalf("the tablet's save over the version it has seen: %+v", fr)
	}
}

// A save that fails on a database error holds back the ops sent after it
// until it is sent again: two saves of one title, the first failing, end
// with the second, not with the first applied last on its resend.
func TestFailedOpHoldsBackTheOpsSentAfterIt(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	a := f.mustJoined(t, w, "FI", "police")
	a.send(t, op(room, "new", "finding.create", 0, map[string]any{"title": "Draft"}))
	_, fnd := a.created(t, "new")

	// A real database error, for as long as the title is listed.
	ctx := context.Background()
	db := f.store.DB()
	for _, q := range []string{
		`CREATE TABLE test_failing_titles (title text PRIMARY KEY)`,
		`CREATE FUNCTION test_fail_title() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF EXISTS (SELECT 1 FROM test_failing_titles WHERE title = NEW.title) THEN
				RAISE EXCEPTION 'test: title % fails', NEW.title;
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER test_fail_title BEFORE UPDATE ON findings FOR EACH ROW EXECUTE FUNCTION test_fail_title()`,
		`INSERT INTO test_failing_titles VALUES ('First save')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	save := func(id, title string) map[string]any {
		return op(room, id, "finding.update", int64(fnd.Version), map[string]any{"id": fnd.ID, "fields": map[string]any{"title": title}})
	}
	// The first save gets a transaction of its own (two saves of one
	// transaction are one write): it waits for the room's lock while the
	// second is sent.
	lock, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `SELECT 1 FROM rooms WHERE id = ? FOR UPDATE`, room); err != nil {
		t.Fatal(err)
	}
	a.send(t, save("s1", "First save"))
	deadline := time.Now().Add(10 * time.Second)
	for waiting := 0; waiting == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first save does not wait for the room's lock")
		}
		if err := db.NewRaw(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(ctx, &waiting); err != nil {
			t.Fatal(err)
		}
	}
	a.send(t, save("s2", "Second save"))
	time.Sleep(50 * time.Millisecond) // the second save queued behind the first, or not yet read: both must hold
	lock.Rollback()
	got := a.answers(t, "s1", "s2") // the two answers may come in either order
	if fr := got["s1"]; fr.Type != "error" || fr.Code != "internal" {
		t.Fatalf("first save: %+v, want internal", fr)
	}
	if fr := got["s2"]; fr.Type != "error" || fr.Code != "unavailable" {
		t.Fatalf("second save, sent right after the first: %+v, want unavailable until the first comes again", fr)
	}
	a.send(t, op(room, "c1", "comment", 0, map[string]any{"finding_id": fnd.ID, "text": "Sent later"}))
	if fr := a.next(t, answerTo("c1")); fr.Type != "error" || fr.Code != "unavailable" {
		t.Fatalf("an op sent later: %+v, want unavailable until the first save comes again", fr)
	}
	if now, _ := f.store.Finding(ctx, fnd.ID); now.Title != "Draft" {
		t.Fatalf("title = %q while the first save failed, want Draft", now.Title)
	}

	if _, err := db.ExecContext(ctx, `DELETE FROM test_failing_titles`); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]any{save("s1", "First save"), save("s2", "Second save"),
		op(room, "c1", "comment", 0, map[string]any{"finding_id": fnd.ID, "text": "Sent later"})} {
		a.send(t, m)
	}
	for id, fr := range a.answers(t, "s1", "s2", "c1") {
		if fr.Type != "ack" {
			t.Fatalf("%s resent in order: %+v, want ack", id, fr)
		}
	}
	if now, _ := f.store.Finding(ctx, fnd.ID); now.Title != "Second save" {
		t.Fatalf("title = %q, want the second save's", now.Title)
	}
}

// TestContactsStayOffTheRoom: a finding's contact, given with consent,
// is stored, but entries and snapshots, which reach every tablet of the
// room, leave it out.
func TestContactsStayOffTheRoom(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	a, b := f.mustJoined(t, w, "FI", "police"), f.mustJoined(t, w, "SE", "ngo")
	a.send(t, op(room, "new", "finding.create", 0, map[string]any{"title": "Joint inspections",
		"contact_consent": true, "contact_name": "Anna Berg", "contact_email": "anna@example.org"}))
	created, fnd := b.created(t, "new")
	a.send(t, op(room, "mail", "finding.update", int64(fnd.Version), map[string]any{"id": fnd.ID, "fields": map[string]any{"contact_email": "berg@example.org"}}))
	updated := b.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == "mail" })
	c := f.MustMember(t, domain.RoleParticipant, w, "NO", "ngo").Dial(t, f.srv.URL)
	c.send(t, map[string]any{"type": "join", "room": room, "since": -1})
	snap := c.next(t, ofType("snapshot"))
	for what, b := range map[string][]byte{"create entry": created.Payload, "update entry": updated.Payload, "snapshot": snap.State} {
		if bytes.Contains(b, []byte("Anna")) || bytes.Contains(b, []byte("example.org")) {
			t.Errorf("the %s carries the contact: %s", what, b)
		}
	}
	if !strings.Contains(string(updated.Payload), `"contact_email"`) {
		t.Errorf("the update entry does not name the field changed: %s", updated.Payload)
	}
	got, err := f.store.Finding(context.Background(), fnd.ID)
	if err != nil || got.ContactName != "Anna Berg" || got.ContactEmail != "berg@example.org" {
		t.Fatalf("stored contact %q %q (%v)", got.ContactName, got.ContactEmail, err)
	}
}

// twoProcesses starts a fixture's server and a second process on its
// database, and returns a workshop and its room.
func twoProcesses(t *testing.T) (f *fixture, other *server, w *domain.Workshop, room string) {
	t.Helper()
	dsn := pg.NewDB(t)
	f = MustFixture(t, map[string]string{"DATABASE_URL": dsn})
	other = MustStart(t, map[string]string{"DATABASE_URL": dsn, "NO_DEMO": "1"})
	w = &f.ws[3]
	return f, other, w, store.WorkshopRoom(w.ID)
}

func TestTwoProcessesShareARoom(t *testing.T) {
	f, other, w, room := twoProcesses(t)
	a := f.MustMember(t, domain.RoleParticipant, w, "IS", "police").Dial(t, f.srv.URL)
	bm := f.MustMember(t, domain.RoleParticipant, w, "IS", "ngo")
	// B signs in on process A (sessions are in Postgres) and connects to process B.
	b := bm.Dial(t, other.URL)
	a.join(t, room, 0)
	b.join(t, room, 0)
	start := time.Now()
	a.send(t, op(room, "cross", "finding.create", 0, map[string]any{"title": "Across processes"}))
	fr := b.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == "cross" })
	if fr.Kind != "finding.create" || fr.Actor != "IS · police" {
		t.Fatalf("entry on process B: %+v", fr)
	}
	// Under the 5 s safety poll, which starts with the room's first join:
	// only the NOTIFY can have brought it.
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s to cross processes; NOTIFY should make it near-instant", d)
	}
	start = time.Now()
	b.send(t, op(room, "back", "finding.create", 0, map[string]any{"title": "And back"}))
	a.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == "back" })
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s to cross back", d)
	}
}

// TestUnannouncedEntryIsFoundByThePoll: an entry whose NOTIFY never came
// (lost with the listener's connection, or a process killed between its
// commit and the NOTIFY) still reaches the room's clients, by the slow
// poll of the log, within its interval (5 s).
func TestUnannouncedEntryIsFoundByThePoll(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[1]
	room := store.WorkshopRoom(w.ID)
	ctx := context.Background()
	seed, _ := f.store.WorkshopFindings(ctx, w.ID)
	c := f.mustJoined(t, w, "FI", "ngo")
	start := time.Now()
	// As the store writes an entry, but without its NOTIFY.
	if _, err := f.store.DB().ExecContext(ctx, `WITH s AS (UPDATE rooms SET seq = seq + 1 WHERE id = ? RETURNING seq)
		INSERT INTO log_entries (room, seq, op_id, kind, payload) SELECT ?, seq, 'unannounced', 'vote', ?::jsonb FROM s`,
		room, room, fmt.Sprintf(`{"finding_id":%d,"votes":0}`, seed[0].ID)); err != nil {
		t.Fatal(err)
	}
	c.nextOr(t, func(f frame) bool { return f.Type == "entry" && f.OpID == "unannounced" }, func() {
		t.Fatalf("the entry never came (waited %s)", time.Since(start))
	})
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the entry came after %s; the poll runs every 5 s", d)
	}
}

// createAll creates n findings titled as their op ids, prefix-1 on, and
// returns their ids once their entries came.
func (c *client) createAll(tb testing.TB, room, prefix string, n int) []int64 {
	tb.Helper()
	var ids []int64
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		c.send(tb, op(room, id, "finding.create", 0, map[string]any{"title": id}))
		_, fnd := c.created(tb, id)
		ids = append(ids, fnd.ID)
	}
	return ids
}

// restoreRoom cuts room's log back to its entry keep and deletes the
// findings made after it, as a restore from a backup taken then would.
func restoreRoom(tb testing.TB, f *fixture, room string, keep int64, made []int64) {
	tb.Helper()
	for _, q := range []string{
		`DELETE FROM log_entries WHERE room = ?0 AND seq > ?1`,
		`UPDATE rooms SET seq = ?1 WHERE id = ?0`,
		`DELETE FROM findings WHERE id IN (?2)`,
	} {
		if _, err := f.store.DB().NewRaw(q, room, keep, bun.In(made)).Exec(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestARestoredDatabaseUnderTheServer: the database is restored from a
// backup while the server runs, its room's log now two entries past where
// a member held it, not eight. A join from the old head gets a snapshot
// of the log as it is; the members holding the other log's entries are
// closed, to join again with a snapshot; a join from the restored head is
// sent the entries written since, not the ones of the other log the
// server had kept in memory. Before, the room sent nothing until its log
// passed the old head, and a resume was sent the other log's entries.
func TestARestoredDatabaseUnderTheServer(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[1]
	room := store.WorkshopRoom(w.ID)
	am := f.MustMember(t, domain.RoleParticipant, w, "FI", "police")
	a := am.Dial(t, f.srv.URL)
	s0 := a.join(t, room, 0).Seq
	made := a.createAll(t, room, "before", 8)
	b := f.MustMember(t, domain.RoleParticipant, w, "FI", "ngo").Dial(t, f.srv.URL)
	if j := b.join(t, room, s0); j.Seq != s0+8 { // reads the eight from the log: the server keeps them
		t.Fatalf("joined at %d, want %d", j.Seq, s0+8)
	}

	// The backup was taken after the first two.
	keep := s0 + 2
	restoreRoom(t, f, room, keep, made[2:])

	c := am.Dial(t, f.srv.URL)
	c.send(t, map[string]any{"type": "join", "room": room, "since": s0 + 8})
	if fr := c.next(t, func(f frame) bool { return f.Type != "presence" }); fr.Type != "snapshot" || fr.Seq != keep {
		t.Fatalf("joining from %d a log restored to %d: %s at %d, want a snapshot", s0+8, keep, fr.Type, fr.Seq)
	}
	c.next(t, ofType("joined"))
	a.mustCloseWith(t, hub.CloseLogRestored, 10*time.Second, "a member holding the other log")
	b.mustCloseWith(t, hub.CloseLogRestored, 10*time.Second, "another member holding the other log")

	c.send(t, op(room, "after", "finding.create", 0, map[string]any{"title": "After the restore"}))
	if ack := c.next(t, answerTo("after")); ack.Type != "ack" || ack.Seq != keep+1 {
		t.Fatalf("op after the restore: %+v, want acked at %d", ack, keep+1)
	}
	d := am.Dial(t, f.srv.URL)
	d.send(t, map[string]any{"type": "join", "room": room, "since": keep})
	if fr := d.next(t, func(f frame) bool { return f.Type != "presence" }); fr.Type != "entry" || fr.Seq != keep+1 || fr.OpID != "after" {
		t.Fatalf("joining from %d: %s %d of op %q, want the entry of op after", keep, fr.Type, fr.Seq, fr.OpID)
	}
}

// TestARestoreFoundByOneProcessReachesTheOther: process A finds a restore
// of the room's log (a join from the old head) and its room goes on
// writing past the old head. Process B's member, holding the replaced
// log's entries, is closed to join again with a snapshot, and a join on B
// from the restored head gets the new log's entries, not the replaced
// ones B had cached. Before, B was never told: its own poll looks only
// while nothing new comes, so it sent the new log's entries on top of the
// old one's, and its clients kept a state the database does not have.
func TestARestoreFoundByOneProcessReachesTheOther(t *testing.T) {
	f, other, w, room := twoProcesses(t)
	am := f.MustMember(t, domain.RoleParticipant, w, "FI", "police")
	bm := f.MustMember(t, domain.RoleParticipant, w, "FI", "ngo")
	a := am.Dial(t, f.srv.URL)
	s0 := a.join(t, room, 0).Seq
	b := bm.Dial(t, other.URL)
	if j := b.join(t, room, s0); j.Seq != s0 {
		t.Fatalf("b joined at %d, want %d", j.Seq, s0)
	}
	made := a.createAll(t, room, "before", 6)
	for i := range 6 { // B reads them, and caches them
		b.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == fmt.Sprintf("before-%d", i+1) })
	}
	keep := restoreAndGoOn(t, f, am, room, s0, made)
	b.mustCloseWith(t, hub.CloseLogRestored, 10*time.Second, "B's member holding the replaced log")
	b = bm.Dial(t, other.URL)
	b.send(t, map[string]any{"type": "join", "room": room, "since": keep})
	for i := range 6 {
		fr := b.next(t, func(f frame) bool { return f.Type == "entry" || f.Type == "snapshot" || f.Type == "joined" })
		if fr.Type != "entry" || fr.Seq != keep+int64(i)+1 || fr.OpID != fmt.Sprintf("after-%d", i+1) {
			t.Fatalf("join on B from the restored head, frame %d: %s %d %q, want the entry of after-%d", i, fr.Type, fr.Seq, fr.OpID, i+1)
		}
	}
}

// restoreAndGoOn restores room's log, whose six entries made after s0 a
// member on another process read, to the second of them (see
// restoreRoom); a client of am on f's process finds it, joining from the
// old head, and writes six entries past that head ("after-1"…). It
// returns the restored head.
func restoreAndGoOn(t *testing.T, f *fixture, am member, room string, s0 int64, made []int64) (keep int64) {
	t.Helper()
	keep = s0 + 2
	restoreRoom(t, f, room, keep, made[2:])
	c := am.Dial(t, f.srv.URL)
	c.send(t, map[string]any{"type": "join", "room": room, "since": s0 + 6})
	if fr := c.next(t, func(f frame) bool { return f.Type != "presence" }); fr.Type != "snapshot" || fr.Seq != keep {
		t.Fatalf("join on A from the old head: %s at %d, want a snapshot at %d", fr.Type, fr.Seq, keep)
	}
	c.next(t, ofType("joined"))
	c.createAll(t, room, "after", 6) // past the old head
	return keep
}

// TestARestoreFoundByThePollDropsTheCache: the server's cache holds the
// room's entries up to some seq, the room sent more (offered, not read),
// and the restored log grows past the cache's newest before anyone joins.
// The room's poll finds the restore; the cache must go with it, though
// the head is not below what it holds: a resume would be sent the other
// log's entries from it.
func TestARestoreFoundByThePollDropsTheCache(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[2]
	room := store.WorkshopRoom(w.ID)
	ctx := context.Background()
	am := f.MustMember(t, domain.RoleParticipant, w, "SE", "police")
	a := am.Dial(t, f.srv.URL)
	s0 := a.join(t, room, 0).Seq
	made := a.createAll(t, room, "read", 6)
	b := am.Dial(t, f.srv.URL)
	if j := b.join(t, room, s0); j.Seq != s0+6 { // the cache holds up to s0+6
		t.Fatalf("joined at %d, want %d", j.Seq, s0+6)
	}
	made = append(made, a.createAll(t, room, "offered", 4)...) // the room sent up to s0+10

	keep := s0 + 2
	restoreRoom(t, f, room, keep, made[2:])
	for i := range 6 { // the restored log grows to s0+8, past the cache's s0+6
		if _, err := f.store.CreateFinding(ctx, &am.id, w.ID, fmt.Sprintf("new-%d", i), store.FindingInput{Title: "After the restore"}); err != nil {
			t.Fatal(err)
		}
	}
	a.mustCloseWith(t, hub.CloseLogRestored, 10*time.Second, "a member, at the poll") // the poll runs every 5 s
	c := am.Dial(t, f.srv.URL)
	c.send(t, map[string]any{"type": "join", "room": room, "since": keep})
	if fr := c.next(t, func(f frame) bool { return f.Type != "presence" }); fr.Type != "entry" || fr.Seq != keep+1 || fr.OpID != "new-0" {
		t.Fatalf("joining from %d: %s %d of op %q, want the entry of op new-0", keep, fr.Type, fr.Seq, fr.OpID)
	}
}

// A room's presence lists its people on every process serving it, and
// drops them there when they leave.
func TestTwoProcessesSharePresence(t *testing.T) {
	f, other, w, room := twoProcesses(t)
	am := f.MustMember(t, domain.RoleParticipant, w, "IS", "police")
	bm := f.MustMember(t, domain.RoleParticipant, w, "IS", "ngo")
	a, b := am.Dial(t, f.srv.URL), bm.Dial(t, other.URL)
	a.join(t, room, 0)
	b.join(t, room, 0)
	both := func(f frame) bool {
		return f.Type == "presence" && f.Count == 2 &&
			strings.Contains(string(f.People), am.name) && strings.Contains(string(f.People), bm.name)
	}
	a.next(t, both)
	b.next(t, both)
	b.send(t, map[string]any{"type": "presence", "room": room, "editing": "f-9"})
	a.next(t, func(f frame) bool {
		return f.Type == "presence" && strings.Contains(string(f.People), `"editing":"f-9"`)
	})
	b.ws.Close()
	a.next(t, func(f frame) bool {
		return f.Type == "presence" && f.Count == 1 && !strings.Contains(string(f.People), bm.name)
	})
}

func TestWebSocketRefusesForeignOriginAndAnonymous(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	m := f.MustMember(t, domain.RoleParticipant, &f.ws[0], "FI", "police")
	if _, err := m.dial("http://evil.example"); err == nil {
		t.Fatal("dial with a foreign Origin succeeded")
	}
	// Dial builds the URL from base; use the real server with a forged Origin.
	h := http.Header{"Origin": {"http://evil.example"}}
	req, _ := http.NewRequest("GET", f.srv.URL+"/ws", nil)
	for _, ck := range m.http.Jar.Cookies(req.URL) {
		req.AddCookie(ck)
	}
	h.Set("Cookie", req.Header.Get("Cookie"))
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/ws", h)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Origin: err %v, resp %v; want 403", err, resp)
	}
	_, resp, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/ws", http.Header{"Origin": {f.srv.URL}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no session: err %v, resp %v; want 401", err, resp)
	}
}

// The plenary, which anyone signed in may watch, says how many are there
// but not who; a workshop room lists its people by name.
func TestPlenaryPresenceIsACountOnly(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	a := f.MustMember(t, domain.RoleParticipant, w, "FI", "police")
	b := f.MustMember(t, domain.RoleObserver, nil, "SE", "ngo")
	plenary := fmt.Sprintf("plenary:%d", f.event.ID)
	ca, cb := a.Dial(t, f.srv.URL), b.Dial(t, f.srv.URL)
	if fr := ca.join(t, plenary, 0); fr.Type != "joined" {
		t.Fatalf("join the plenary: %+v", fr)
	}
	if fr := cb.join(t, plenary, 0); fr.Type != "joined" || string(fr.Presence) != "[]" || fr.Count != 2 {
		t.Fatalf("second in the plenary: %s, presence %s, count %d; want joined, [] and 2", fr.Type, fr.Presence, fr.Count)
	}
	fr := ca.next(t, func(f frame) bool { return f.Type == "presence" && f.Count == 2 })
	if string(fr.People) != "[]" || strings.Contains(string(fr.People), a.name) {
		t.Errorf("plenary presence lists %s, want no one", fr.People)
	}
	// In the workshop room, names.
	if fr := ca.join(t, store.WorkshopRoom(w.ID), 0); fr.Type != "joined" || !strings.Contains(string(fr.Presence), a.name) {
		t.Errorf("workshop presence %s, want %q in it", fr.Presence, a.name)
	}
}

// TestSlowDatabaseIsUnavailable: an op whose database work outlasts the
// statement timeout (a lock held elsewhere) is answered unavailable, as
// PROTOCOL.md says of a database that is too slow, not internal (which a
// client shows as the server's fault and, after three, gives up on). Its
// transaction ends, holding up no other op of the room, and the op
// applies once when resent.
func TestSlowDatabaseIsUnavailable(t *testing.T) {
	f := MustFixture(t, map[string]string{"DATABASE_URL": pgtest.WithParams(pg.NewDB(t), "read_timeout=2s")})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	ctx := context.Background()
	seed, _ := f.store.WorkshopFindings(ctx, w.ID)
	c := f.mustJoined(t, w, "DK", "police")
	tx, err := f.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM findings WHERE id = ? FOR UPDATE", seed[0].ID); err != nil {
		t.Fatal(err)
	}
	edit := op(room, "slow-1", "finding.update", int64(seed[0].Version), map[string]any{"id": seed[0].ID, "fields": map[string]any{"results": "Saved once"}})
	c.send(t, edit)
	if fr := c.next(t, answerTo("slow-1")); fr.Type != "error" || fr.Code != "unavailable" {
		t.Fatalf("an op held up by the database: %+v, want error unavailable", fr)
	}
	// Postgres ended the statement itself (statement_timeout), so its
	// transaction let go of the room: another op there goes through while
	// the finding is still locked.
	other := f.mustJoined(t, w, "SE", "ngo")
	other.send(t, op(room, "slow-2", "finding.create", 0, map[string]any{"title": "Not held up"}))
	if fr := other.next(t, answerTo("slow-2")); fr.Type != "ack" {
		t.Fatalf("another op of the room meanwhile: %+v, want ack", fr)
	}
	tx.Rollback()
	c.send(t, edit)
	if fr := c.next(t, answerTo("slow-1")); fr.Type != "ack" {
		t.Fatalf("the op resent: %+v, want ack", fr)
	}
	var n int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM log_entries WHERE room = ? AND op_id = 'slow-1'", room).Scan(ctx, &n); err != nil || n != 1 {
		t.Fatalf("%d log entries of the op (%v), want 1", n, err)
	}
}

// TestOpIDOfSomeoneElseIsRefused: op ids are kept per room, so another
// person's op with an id the log has (a client that makes poor ids, the
// demo's seed-N) was acked with the first op's seq while nothing of it
// was applied: the screen said saved. It is refused; the first op's own
// resend is still acked.
func TestOpIDOfSomeoneElseIsRefused(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	ctx := context.Background()
	anna, bo := f.mustJoined(t, w, "SE", "ngo"), f.mustJoined(t, w, "NO", "police")
	anna.send(t, op(room, "same-1", "finding.create", 0, map[string]any{"title": "Anna's finding"}))
	first := anna.next(t, answerTo("same-1"))
	if first.Type != "ack" {
		t.Fatalf("Anna's create: %+v", first)
	}
	var seedOp string
	if err := f.store.DB().NewRaw("SELECT op_id FROM log_entries WHERE room = ? AND actor_id IS NULL ORDER BY seq LIMIT 1", room).Scan(ctx, &seedOp); err != nil {
		t.Fatalf("the demo's entries: %v", err)
	}
	head, _ := f.store.Head(ctx, room)
	for _, id := range []string{"same-1", seedOp} {
		bo.send(t, op(room, id, "finding.create", 0, map[string]any{"title": "Bo's finding"}))
		if fr := bo.next(t, answerTo(id)); fr.Type != "error" || fr.Code != "invalid" {
			t.Fatalf("Bo's op with the id %s: %+v, want error invalid", id, fr)
		}
	}
	if h, _ := f.store.Head(ctx, room); h != head {
		t.Fatalf("the room moved from %d to %d", head, h)
	}
	anna.send(t, op(room, "same-1", "finding.create", 0, map[string]any{"title": "Anna's finding"}))
	if fr := anna.next(t, answerTo("same-1")); fr.Type != "ack" || fr.Seq != first.Seq {
		t.Fatalf("Anna's resend: %+v, want ack with seq %d", fr, first.Seq)
	}
}

// TestVoteEntriesNameNoActor: a support is anonymous. Entries carry their
// actor's country and actor type, which in a small group can tell who it
// was, so vote and unvote entries carry none: not live, not in a
// catch-up read from the log later. Other entries keep theirs.
func TestVoteEntriesNameNoActor(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	a := f.mustJoined(t, w, "FI", "police")
	b := f.mustJoined(t, w, "SE", "ngo")
	a.send(t, op(room, "c1", "finding.create", 0, map[string]any{"title": "Supported"}))
	created, fnd := b.created(t, "c1")
	if created.Actor != "FI · police" {
		t.Fatalf("a create's entry names %q, want FI · police", created.Actor)
	}
	a.send(t, op(room, "v1", "vote", 0, map[string]any{"finding_id": fnd.ID}))
	a.send(t, op(room, "u1", "unvote", 0, map[string]any{"finding_id": fnd.ID}))
	for _, id := range []string{"v1", "u1"} {
		if e := b.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == id }); e.Actor != "" {
			t.Errorf("%s entry sent live names %q", e.Kind, e.Actor)
		}
	}
	// A new screen reads them from the log.
	c := f.MustMember(t, domain.RoleParticipant, w, "DK", "ngo").Dial(t, f.srv.URL)
	c.send(t, map[string]any{"type": "join", "room": room, "since": 0})
	kinds := map[string]string{}
	for e := c.next(t, ofType("entry")); ; e = c.next(t, ofType("entry")) {
		kinds[e.Kind] = e.Actor
		if e.OpID == "u1" {
			break
		}
	}
	if kinds["finding.create"] != "FI · police" || kinds["vote"] != "" || kinds["unvote"] != "" {
		t.Errorf("entries of a catch-up name (kind: actor) %q; only the create should", kinds)
	}
}

// TestADeletedFindingsTextIsNotSentAgain: a finding deleted (text typed
// by mistake, a victim's name) is not sent again from the log to a
// screen that joins from before its deletion, a new one included: that
// join gets a snapshot, which holds the room as it is. A join from the
// deletion on gets entries, as before.
func TestADeletedFindingsTextIsNotSentAgain(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	a := f.mustJoined(t, w, "FI", "police")
	const secret = "Case of Jane Doe, Tampere"
	a.send(t, op(room, "c1", "finding.create", 0, map[string]any{"title": secret}))
	created, fnd := a.created(t, "c1")
	a.send(t, op(room, "d1", "finding.delete", 0, map[string]any{"finding_id": fnd.ID}))
	deleted := a.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == "d1" })
	a.send(t, op(room, "c2", "finding.create", 0, map[string]any{"title": "Kept"}))
	last, _ := a.created(t, "c2")

	// joinFrom joins a new screen from since and returns what came before joined.
	joinFrom := func(since int64) []frame {
		c := f.MustMember(t, domain.RoleParticipant, w, "DK", "ngo").Dial(t, f.srv.URL)
		c.send(t, map[string]any{"type": "join", "room": room, "since": since})
		var got []frame
		for fr := c.next(t, func(frame) bool { return true }); fr.Type != "joined"; fr = c.next(t, func(frame) bool { return true }) {
			got = append(got, fr)
		}
		return got
	}
	for _, since := range []int64{0, created.Seq} {
		got := joinFrom(since)
		if len(got) != 1 || got[0].Type != "snapshot" || got[0].Seq != last.Seq {
			t.Errorf("join from %d, before the deletion: %d frames, want one snapshot at %d", since, len(got), last.Seq)
			continue
		}
		if bytes.Contains(got[0].State, []byte("Jane Doe")) || !bytes.Contains(got[0].State, []byte("Kept")) {
			t.Errorf("join from %d: snapshot %s", since, got[0].State)
		}
	}
	got := joinFrom(deleted.Seq)
	if len(got) != 1 || got[0].Type != "entry" || got[0].OpID != "c2" {
		t.Errorf("join from the deletion: %+v, want the entry of c2", got)
	}
}

// TestOnlyTheRapporteurDeletesWhatTheyChose: the rapporteur curates the
// group's findings. A participant may delete a finding, but not a key
// finding nor one shared with the event: that would undo the rapporteur's
// choice behind their back (a key finding left the presentation, a
// shared one the other groups' screens). The rapporteur may.
func TestOnlyTheRapporteurDeletesWhatTheyChose(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	p := f.mustJoined(t, w, "FI", "police")
	rap := f.MustMember(t, domain.RoleRapporteur, w, "SE", "ngo").Dial(t, f.srv.URL)
	rap.join(t, room, 0)
	n := 0
	do := func(c *client, kind string, body map[string]any) frame {
		t.Helper()
		n++
		id := fmt.Sprintf("o%d", n)
		c.send(t, op(room, id, kind, 0, body))
		return c.next(t, answerTo(id))
	}
	ids := map[string]int64{}
	for _, title := range []string{"key", "shared", "plain"} {
		p.send(t, op(room, "c-"+title, "finding.create", 0, map[string]any{"title": title}))
		_, fnd := p.created(t, "c-"+title)
		ids[title] = fnd.ID
	}
	if a := do(rap, "key.mark", map[string]any{"finding_id": ids["key"]}); a.Type != "ack" {
		t.Fatalf("key.mark: %+v", a)
	}
	if a := do(rap, "finding.share", map[string]any{"finding_id": ids["shared"]}); a.Type != "ack" {
		t.Fatalf("finding.share: %+v", a)
	}
	for _, title := range []string{"key", "shared"} {
		if a := do(p, "finding.delete", map[string]any{"finding_id": ids[title]}); a.Type != "error" || a.Code != "forbidden" {
			t.Errorf("a participant's delete of the %s finding: %+v, want forbidden", title, a)
		}
		if got, err := f.store.Finding(context.Background(), ids[title]); err != nil || got.DeletedAt != nil {
			t.Errorf("the %s finding after a refused delete: %v %v", title, got.DeletedAt, err)
		}
	}
	if a := do(p, "finding.delete", map[string]any{"finding_id": ids["plain"]}); a.Type != "ack" {
		t.Errorf("a participant's delete of a plain finding: %+v", a)
	}
	for _, title := range []string{"key", "shared"} {
		if a := do(rap, "finding.delete", map[string]any{"finding_id": ids[title]}); a.Type != "ack" {
			t.Errorf("the rapporteur's delete of the %s finding: %+v", title, a)
		}
	}
}

// TestEntriesWithdrawAsTheHeadSays: the hub checks a catch-up's entries
// for one that withdrew earlier ones (deleted meanwhile), and the head
// for the newest such entry; the two must name the same entries.
func TestEntriesWithdrawAsTheHeadSays(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	w := f.ws[0]
	room := store.WorkshopRoom(w.ID)
	for i := range 3 {
		a, err := f.store.CreateFinding(ctx, nil, w.ID, fmt.Sprint("c", i), store.FindingInput{Title: "Gone"})
		if err != nil {
			t.Fatal(err)
		}
		var made struct{ ID int64 }
		json.Unmarshal(a.Entry.Payload, &made)
		if i < 2 {
			if _, err := f.store.DeleteFinding(ctx, nil, w.ID, fmt.Sprint("d", i), made.ID, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, withdrawn, err := f.store.HeadWithdrawn(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	es, err := (&live{store: f.store}).After(ctx, room, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var newest int64
	n := 0
	for _, e := range es {
		if e.Withdraws {
			newest = e.Seq
			n++
		}
	}
	if n != 2 || newest != withdrawn || withdrawn == 0 {
		t.Errorf("%d entries withdraw, the newest at %d; the head says %d", n, newest, withdrawn)
	}
}

// TestReportAuthorsSeeNoNamesInAWorkshop: a report author may follow a
// group's room, but under the Chatham House rule is not shown who is
// there and what each edits (which ties a name to a finding): only how
// many. The group and organizers see everyone, the author too.
func TestReportAuthorsSeeNoNamesInAWorkshop(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	p := f.mustJoined(t, w, "FI", "police")
	org := f.MustMember(t, domain.RoleOrganizer, nil, "SE", "ngo").Dial(t, f.srv.URL)
	org.join(t, room, 0)
	author := f.MustMember(t, domain.RoleReportAuthor, nil, "DK", "academia").Dial(t, f.srv.URL)
	j := author.join(t, room, 0)
	if j.Type != "joined" || string(j.Presence) != "[]" || j.Count != 3 {
		t.Fatalf("a report author's joined: %s %s, %d; want no one listed, 3 counted", j.Type, j.Presence, j.Count)
	}
	p.send(t, map[string]any{"type": "presence", "room": room, "editing": "f-42"})
	for _, c := range []*client{p, org} {
		c.next(t, func(f frame) bool {
			return f.Type == "presence" && f.Count == 3 && bytes.Contains(f.People, []byte(`"editing":"f-42"`)) && bytes.Count(f.People, []byte(`"name"`)) == 3
		})
	}
	fr := author.next(t, func(f frame) bool { return f.Type == "presence" })
	if string(fr.People) != "[]" || fr.Count != 3 {
		t.Errorf("presence to a report author: %s, %d; want no one listed, 3 counted", fr.People, fr.Count)
	}
}

// TestReleasedKeyMessagesAreChangedOnlyByAnOrganizer: once a workshop is
// released its key messages are public (the workshops route, search). A
// rapporteur's new text would go out without the review a release is:
// it is refused and changes nothing; an organizer's is applied.
func TestReleasedKeyMessagesAreChangedOnlyByAnOrganizer(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	ctx := context.Background()
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	if _, err := f.store.SetKeyMessages(ctx, nil, w.ID, "km-1", 0, "Reviewed key messages"); err != nil {
		t.Fatal(err)
	}
	// Released by an organizer (no route does it yet).
	if _, err := f.store.DB().ExecContext(ctx, "UPDATE workshops SET release_state = 'released' WHERE id = ?", w.ID); err != nil {
		t.Fatal(err)
	}
	public := func() string {
		t.Helper()
		resp, err := http.Get(f.srv.URL + "/api/events/" + f.event.Slug + "/workshops")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ws []domain.Workshop
		if err := json.NewDecoder(resp.Body).Decode(&ws); err != nil {
			t.Fatal(err)
		}
		for _, x := range ws {
			if x.ID == w.ID {
				return x.KeyMessages
			}
		}
		t.Fatalf("workshop %d not listed", w.ID)
		return ""
	}
	if got := public(); got != "Reviewed key messages" {
		t.Fatalf("released key messages to the public: %q", got)
	}
	rap := f.MustMember(t, domain.RoleRapporteur, w, "SE", "ngo").Dial(t, f.srv.URL)
	rap.join(t, room, 0)
	head, _ := f.store.Head(ctx, room)
	rap.send(t, op(room, "km-2", "keymessages.set", 1, map[string]any{"text": "Unreviewed text"}))
	if fr := rap.next(t, answerTo("km-2")); fr.Type != "error" || fr.Code != "forbidden" {
		t.Errorf("a rapporteur's keymessages.set of a released workshop: %+v, want forbidden", fr)
	}
	if got := public(); got != "Reviewed key messages" {
		t.Errorf("after a rapporteur's refused change the public key messages are %q", got)
	}
	if now, _ := f.store.Head(ctx, room); now != head {
		t.Errorf("a refused change logged entries: head %d → %d", head, now)
	}
	org := f.MustMember(t, domain.RoleOrganizer, nil, "DK", "coordinator").Dial(t, f.srv.URL)
	org.join(t, room, 0)
	org.send(t, op(room, "km-3", "keymessages.set", 1, map[string]any{"text": "Corrected by an organizer"}))
	if fr := org.next(t, answerTo("km-3")); fr.Type != "ack" {
		t.Fatalf("an organizer's keymessages.set of a released workshop: %+v, want ack", fr)
	}
	if got := public(); got != "Corrected by an organizer" {
		t.Errorf("after an organizer's change the public key messages are %q", got)
	}
}

// TestABurstOfBigEditsDropsNoOne: one person sends eight long edits at
// once (each well within the frame limit). The store commits them in one
// transaction, whose entries the hub fans out together: over a megabyte,
// more than a connection's send queue holds. A member reading as fast as
// it can gets them all. (Found by a review: every member, the sender too,
// was closed with 4008; text with "<" made entries six times the bytes
// sent.)
func TestABurstOfBigEditsDropsNoOne(t *testing.T) {
	f := MustFixture(t, map[string]string{})
	w := &f.ws[0]
	room := store.WorkshopRoom(w.ID)
	sender := f.mustJoined(t, w, "FI", "police")
	watcher := f.mustJoined(t, w, "SE", "ngo")
	sender.send(t, op(room, "c1", "finding.create", 0, map[string]any{"title": "t"}))
	_, fnd := sender.created(t, "c1")
	watcher.next(t, func(f frame) bool { return f.Type == "entry" && f.OpID == "c1" })
	long := strings.Repeat("<", 15000)
	const n = 8
	for i := range n {
		// Sent as written: WriteJSON would escape "<" itself.
		raw := fmt.Sprintf(`{"type":"op","room":%q,"op_id":"big%d","kind":"finding.update","base":%d,"body":{"id":%d,"fields":{"what_done":"%s","results":"%s","transferability":"%s","nordic_proposal":"%s"}}}`,
			room, i, fnd.Version, fnd.ID, long[i:], long[i:], long[i:], long[i:])
		if err := sender.ws.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*client{watcher, sender} {
		for got := 0; got < n; {
			select {
			case fr, ok := <-c.frames:
				if !ok {
					t.Fatalf("a member reading as fast as it can was closed after %d of %d entries: %v", got, n, <-c.closed)
				}
				if fr.Type == "entry" && strings.HasPrefix(fr.OpID, "big") {
					got++
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%d of %d entries in 10 s", got, n)
			}
		}
	}
}
