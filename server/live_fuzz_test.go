package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rapporteur/rapporteur/hub"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// FuzzApplyOp fuzzes op validation behind the hub's frame decoding: any op
// frame a client can send that DecodeFrame accepts goes to the server's
// Backend (live.Apply) against a real Postgres, from a person in any role
// or a rapporteur of another workshop. The op is either applied, with
// exactly one new log entry (the one Apply returns) and its finding still
// valid, or refused with an error frame's code and nothing written; an op
// the sender's role does not allow (PROTOCOL.md's op table) is refused. It
// never panics and never ends in an internal error, which would hide from
// the client why its op failed.
func FuzzApplyOp(f *testing.F) {
	ctx := context.Background()
	st := pg.MustStore(f)
	ev, ws := mustDemoEvent(f, st)
	if len(ws) < 2 {
		f.Fatalf("the demo event has %d workshops; the fuzzer needs 2", len(ws))
	}
	w := ws[0]
	// Who sends the op: each role, and a rapporteur of another workshop.
	var people []hub.Identity
	for _, m := range []struct {
		role string
		wid  int64
	}{{"rapporteur", w.ID}, {"participant", w.ID}, {"observer", 0}, {"organizer", 0}, {"rapporteur", ws[1].ID}} {
		p, _, err := st.AddMember(ctx, nil, ev.ID, store.PersonInput{Name: "Fuzz " + m.role, Country: "FI"}, m.role, m.wid)
		if err != nil {
			f.Fatal(err)
		}
		ms, err := st.AllMemberships(ctx, p.ID)
		if err != nil {
			f.Fatal(err)
		}
		people = append(people, hub.Identity{ID: fmt.Sprint(p.ID), Name: p.Name, Data: &viewer{Person: p, Memberships: ms}})
	}
	fs, err := st.WorkshopFindings(ctx, w.ID)
	if err != nil || len(fs) == 0 {
		f.Fatalf("demo findings: %v, %d", err, len(fs))
	}
	tax, err := st.Taxonomy(ctx, ev.ID)
	if err != nil {
		f.Fatal(err)
	}
	l := &live{store: st}
	room := store.WorkshopRoom(w.ID)

	fid := fs[0].ID
	for _, s := range []struct {
		who  uint8
		kind string
		base int64
		body string
	}{
		{2, "finding.create", 0, `{"title":"An observer's finding"}`},
		{3, "finding.release", 0, fmt.Sprintf(`{"finding_id":%d,"state":"released"}`, fid)},
		{4, "comment", 0, fmt.Sprintf(`{"finding_id":%d,"text":"From another group"}`, fid)},
		{1, "key.mark", 0, fmt.Sprintf(`{"finding_id":%d}`, fid)},
		{1, "vote", 0, fmt.Sprintf(`{"finding_id":%d}`, fid)},
		{0, "finding.create", 0, `{"title":"Joint inspections","countries":["FI","SE"],"themes":["identification"],"language":"sv"}`},
		{0, "finding.create", 0, `{"title":"  ","countries":["XX"]}`},
		{0, "finding.create", 0, `{"title":"Contact","contact_consent":true,"contact_name":"A","contact_email":"a@example.org"}`},
		{0, "finding.update", 1, fmt.Sprintf(`{"id":%d,"fields":{"title":"New title","countries":["NO"]}}`, fid)},
		{0, "finding.update", 1, fmt.Sprintf(`{"id":%d,"fields":{"contact_consent":"yes"}}`, fid)},
		{0, "finding.delete", 0, `{"finding_id":99999}`},
		{0, "finding.share", 0, fmt.Sprintf(`{"finding_id":%d}`, fid)},
		{0, "finding.release", 0, fmt.Sprintf(`{"finding_id":%d,"state":"released"}`, fid)},
		{0, "vote", 0, fmt.Sprintf(`{"finding_id":%d}`, fid)},
		{0, "unvote", 0, fmt.Sprintf(`{"id":%d}`, fid)},
		{0, "comment", 0, fmt.Sprintf(`{"finding_id":%d,"text":"Which agencies?"}`, fid)},
		{0, "key.mark", 0, fmt.Sprintf(`{"finding_id":%d}`, fid)},
		{0, "key.reorder", 0, fmt.Sprintf(`{"finding_ids":[%d]}`, fid)},
		{0, "keymessages.set", 0, `{"text":"Share one checklist."}`},
		// NUL, which Postgres stores in neither text nor jsonb.
		{0, "finding.create", 0, `{"title":"a\u0000b"}`},
		{0, "finding.create", 0, `{"title":"t","countries":["F\u0000I"]}`},
		{0, "finding.update", 1, fmt.Sprintf(`{"id":%d,"fields":{"results":"x\u0000"}}`, fid)},
		{0, "comment", 0, fmt.Sprintf(`{"finding_id":%d,"text":"a\u0000"}`, fid)},
		{0, "keymessages.set", 0, `{"text":"\u0000"}`},
		// One seed breaking each rule of a finding, so that the seeds alone
		// (what CI runs) catch a rule that went missing.
		{0, "finding.create", 0, `{"title":"No consent","contact_name":"A","contact_email":"a@example.org"}`},
		{0, "finding.update", 1, fmt.Sprintf(`{"id":%d,"fields":{"contact_name":"A"}}`, fid)},
		{0, "finding.create", 0, `{"title":"Bad email","contact_consent":true,"contact_email":"not an address"}`},
		{0, "finding.create", 0, `{"title":"Language","language":"de"}`},
		{0, "finding.update", 1, fmt.Sprintf(`{"id":%d,"fields":{"attribution":"everyone"}}`, fid)},
		{0, "finding.create", 0, `{"title":"` + strings.Repeat("é", 301) + `"}`},
		{0, "finding.update", 1, fmt.Sprintf(`{"id":%d,"fields":{"title":""}}`, fid)},
		{0, "finding.create", 0, `{"title":"Unknown theme","themes":["no-such-theme"]}`},
		{0, "vote", 0, fmt.Sprintf(`{"finding_id":%d,"id":%d}`, fid, fid+1)},
		{0, "comment", 0, `[1,2]`},
		{0, "no.such.kind", 0, `{}`},
	} {
		f.Add(s.who, s.kind, s.base, []byte(s.body))
	}

	codes := []string{hub.CodeForbidden, hub.CodeNotFound, hub.CodeConflict, hub.CodeInvalid, hub.CodeTooLarge}
	// Who may do what, as PROTOCOL.md's op table says (people's order
	// above): an op of anyone else must be refused.
	curate := []string{"finding.share", "key.mark", "key.unmark", "key.reorder", "keymessages.set"}
	mayApply := func(who int, kind string) bool {
		switch who {
		case 0: // the group's rapporteur
			return kind != "finding.release"
		case 1: // a participant of the group
			return kind != "finding.release" && !slices.Contains(curate, kind)
		case 3: // an organizer
			return true
		}
		return false // an observer; another group's rapporteur
	}
	n := 0
	f.Fuzz(func(t *testing.T, who uint8, kind string, base int64, body []byte) {
		n++
		if !json.Valid(body) {
			return // not a frame: DecodeFrame's own fuzzer covers that
		}
		raw, err := json.Marshal(map[string]any{"type": "op", "room": room, "op_id": fmt.Sprintf("fuzz-%d-%d", os.Getpid(), n),
			"kind": kind, "base": base, "body": json.RawMessage(body)})
		if err != nil {
			return
		}
		fr, oe := hub.DecodeFrame(raw)
		if oe != nil {
			return // the hub answers it and the Backend never sees it
		}
		op := hub.Op{Room: fr.Room, OpID: fr.OpID, Kind: fr.Kind, Base: fr.Base, Body: fr.Body}
		before := fingerprint(t, st, room, w.ID)
		e, err := l.Apply(ctx, people[int(who)%len(people)], op)
		after := fingerprint(t, st, room, w.ID)
		if err != nil {
			if !errors.As(err, &oe) || !slices.Contains(codes, oe.Code) {
				t.Fatalf("%s base %d body %s: %v; want an error frame with one of %v", fr.Kind, fr.Base, fr.Body, err, codes)
			}
			if after != before {
				t.Fatalf("%s base %d body %s: refused (%s) but wrote: %+v → %+v", fr.Kind, fr.Base, fr.Body, oe.Code, before, after)
			}
			return
		}
		if !mayApply(int(who)%len(people), fr.Kind) {
			t.Fatalf("%s body %s: applied for %s, whose role does not allow it", fr.Kind, fr.Body, people[int(who)%len(people)].Name)
		}
		if after.head != before.head+1 || e.Seq != after.head || e.OpID != op.OpID || e.Room != room {
			t.Fatalf("%s body %s: applied as %+v, log head %d → %d; want one entry for op %s", fr.Kind, fr.Body, e, before.head, after.head, op.OpID)
		}
		var ref struct {
			ID      int64 `json:"id"`
			Finding struct {
				ID int64 `json:"id"`
			} `json:"finding"`
		}
		json.Unmarshal(e.Payload, &ref)
		if id := max(ref.ID, ref.Finding.ID); (fr.Kind == "finding.create" || fr.Kind == "finding.update") && id > 0 {
			got, err := st.Finding(ctx, id)
			if err != nil {
				t.Fatalf("%s body %s: read finding %d back: %v", fr.Kind, fr.Body, id, err)
			}
			if err := checkFinding(got, tax); err != nil {
				t.Fatalf("%s body %s: applied, and finding %d is not valid: %v\n%+v", fr.Kind, fr.Body, id, err, got)
			}
		}
	})
}

// roomPrint is what an op can change in one workshop room.
type roomPrint struct {
	head                                  int64
	findings, versions, votes, comments   int64
	keyMessages                           string
	releaseStates, keyOrder, deletedCount string
}

// fingerprint reads roomPrint for the room of workshop wid.
func fingerprint(t *testing.T, st *store.Store, room string, wid int64) roomPrint {
	t.Helper()
	var p roomPrint
	err := st.DB().QueryRowContext(context.Background(), `SELECT
		(SELECT seq FROM rooms WHERE id = ?),
		(SELECT count(*) FROM findings WHERE workshop_id = ?),
		(SELECT coalesce(sum(version), 0) FROM findings WHERE workshop_id = ?),
		(SELECT count(*) FROM votes v JOIN findings f ON f.id = v.finding_id WHERE f.workshop_id = ?),
		(SELECT count(*) FROM comments c JOIN findings f ON f.id = c.finding_id WHERE f.workshop_id = ?),
		(SELECT coalesce(key_messages, '') FROM workshops WHERE id = ?),
		(SELECT coalesce(string_agg(release_state, ',' ORDER BY id), '') FROM findings WHERE workshop_id = ?),
		(SELECT coalesce(string_agg(id || ':' || coalesce(key_position, -1) || ':' || is_key, ',' ORDER BY id), '') FROM findings WHERE workshop_id = ?),
		(SELECT count(*)::text FROM findings WHERE workshop_id = ? AND deleted_at IS NOT NULL)`,
		room, wid, wid, wid, wid, wid, wid, wid, wid).Scan(&p.head, &p.findings, &p.versions, &p.votes, &p.comments,
		&p.keyMessages, &p.releaseStates, &p.keyOrder, &p.deletedCount)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	return p
}

// checkFinding tells what is wrong with a stored finding, as the event's
// rules see it.
func checkFinding(f domain.Finding, tax map[string][]domain.Term) error {
	if strings.TrimSpace(f.Title) == "" {
		return errors.New("empty title")
	}
	for _, s := range []string{f.Title, f.WhatDone, f.Results, f.Transferability, f.NordicProposal, f.ContactName, f.ContactEmail} {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return fmt.Errorf("text %q is not valid UTF-8 without NUL", s)
		}
	}
	if utf8.RuneCountInString(f.Title) > 300 {
		return errors.New("title over 300 characters")
	}
	if !slices.Contains([]string{"en", "da", "fi", "no", "sv"}, f.Language) {
		return fmt.Errorf("language %q", f.Language)
	}
	if !slices.Contains([]string{"chatham", "organisation", "named"}, f.Attribution) {
		return fmt.Errorf("attribution %q", f.Attribution)
	}
	if !f.ContactConsent && (f.ContactName != "" || f.ContactEmail != "") {
		return errors.New("a contact without consent")
	}
	if f.ContactEmail != "" {
		if _, err := mail.ParseAddress(f.ContactEmail); err != nil {
			return fmt.Errorf("contact email %q", f.ContactEmail)
		}
	}
	for dim, list := range map[string][]string{domain.DimCountry: f.Countries, domain.DimTheme: f.Themes, domain.DimP: f.Ps,
		domain.DimForm: f.Forms, domain.DimVictim: f.VictimGroups, domain.DimActor: f.ActorTypes} {
		for _, k := range list {
			if !slices.ContainsFunc(tax[dim], func(t domain.Term) bool { return t.Key == k }) {
				return fmt.Errorf("%s term %q is not in the taxonomy", dim, k)
			}
		}
	}
	return nil
}
