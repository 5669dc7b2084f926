package main

// Tests of the tablet page across a database restored from a backup.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// seedFindings creates n findings in the tablet's workshop through the
// store, and returns their ids and the seq of each one's entry.
func (tb *tablet) seedFindings(t *testing.T, prefix string, n int) (ids, seqs []int64) {
	t.Helper()
	for i := 1; i <= n; i++ {
		a, err := tb.f.store.CreateFinding(context.Background(), &tb.person.ID, tb.w.ID, fmt.Sprintf("%s-%d-%d", prefix, i, time.Now().UnixNano()), store.FindingInput{Title: fmt.Sprintf("%s %d", prefix, i)})
		if err != nil {
			t.Fatal(err)
		}
		var f domain.Finding
		if err := json.Unmarshal(a.Entry.Payload, &f); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
		seqs = append(seqs, a.Entry.Seq)
	}
	return ids, seqs
}

// openBeforeTheBackup seeds eight findings ("Before the backup 1"…), opens
// the page, and waits until its copy on the device is at their head.
func (tb *tablet) openBeforeTheBackup(t *testing.T) (ids, seqs []int64) {
	t.Helper()
	ids, seqs = tb.seedFindings(t, "Before the backup", 8)
	if err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings", "Before the backup 8"),
		pollAcross(fmt.Sprintf(`JSON.parse(localStorage.getItem(%q) || "{}").seq === %d`, tb.storeKey("state2"), seqs[len(seqs)-1]), "the copy at the old head")); err != nil {
		t.Fatal(err)
	}
	return ids, seqs
}

// mustNotShowTheTakenAway fails the test, saying what, when the page lists
// any of "Before the backup 3" to 8: the findings a restore to the second
// took away (see openBeforeTheBackup).
func (tb *tablet) mustNotShowTheTakenAway(t *testing.T, what string) {
	t.Helper()
	shown, err := chromedp.Run(tb.browser, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#findings li h3"), h => h.textContent).join(" | ")`))
	if err != nil {
		t.Fatal(err)
	}
	for i := 3; i <= 8; i++ {
		if strings.Contains(shown, fmt.Sprintf("Before the backup %d", i)) {
			t.Fatalf("%s: %s", what, shown)
		}
	}
}

// deadSocketsFromNowOn makes every WebSocket the page opens from now on
// go to a port no one listens on (the tablet's link went right after).
const deadSocketsFromNowOn = `(() => {
	const W = window.WebSocket;
	const D = function (u) { return new W("ws://127.0.0.1:9/ws"); };
	D.prototype = W.prototype; D.CONNECTING = 0; D.OPEN = 1; D.CLOSING = 2; D.CLOSED = 3;
	window.WebSocket = D;
})()`

// TestAReloadAfterARestoreShowsTheRestoredLog: the database is restored
// from a backup while the page is live; the server closes the page with
// 4009 (join again with a snapshot). The page's link goes right after
// (it cannot rejoin), while the group goes on writing in the restored log
// past the old head. The tablet then reloads the page: it shows the room
// as it is, not the findings the restore took away as saved (the copy is
// kept with seq -1 at the 4009, so the next join takes a snapshot).
func TestAReloadAfterARestoreShowsTheRestoredLog(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	room := store.WorkshopRoom(tb.w.ID)
	ids, seqs := tb.openBeforeTheBackup(t)
	oldHead := seqs[len(seqs)-1]
	if err := chromedp.Do(ctx, evalJS(deadSocketsFromNowOn)); err != nil {
		t.Fatal(err)
	}
	// The backup was taken after the first two findings.
	keep := seqs[1]
	restoreRoom(t, tb.f, room, keep, ids[2:])
	// Someone joins from the old head: the server finds the restore and
	// closes the members holding the other log (4009).
	tb.joinFrom(t, room, oldHead)
	if err := chromedp.Do(ctx, waitText("#status", "Offline")); err != nil {
		t.Fatal(err)
	}
	kept := tb.stored(t, ctx, "state2")
	var k struct{ Seq int64 }
	_ = json.Unmarshal([]byte(kept), &k)
	t.Logf("after 4009, the kept copy's seq is %d (old head %d, restored to %d)", k.Seq, oldHead, keep)
	// The restored log grows past the old head.
	tb.seedFindings(t, "After the restore", int(oldHead-keep)+2)
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings", "After the restore")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	tb.mustNotShowTheTakenAway(t, "after the reload the page shows findings the restore took away as saved")
}

// deafLink makes a page's WebSockets hear nothing while window.deaf is
// set: no message, no close (a dead link, not noticed yet).
const deafLink = `window.deaf = false;
	for (const ev of ["onclose", "onmessage"]) {
		const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, ev);
		Object.defineProperty(WebSocket.prototype, ev, { configurable: true, get() { return d.get.call(this); },
			set(fn) { d.set.call(this, e => { if (!window.deaf) fn(e); }); } });
	}`

// TestATabOnTheReplacedLogDoesNotHideAFindingSavedAfterTheRestore: the
// database is restored from a backup while two tabs of the tablet are
// open. Tab A hears the 4009 and joins again with a snapshot. Tab B's
// link is dead (not noticed yet): it still holds the replaced log's copy,
// at a seq above the restored head, and keeps it as it goes to the
// background. The person records a finding in tab A: saved. The Wi-Fi
// goes, the person reloads tab A: the finding just saved is there, and
// not the findings the restore took away (tab A's copy is kept, whatever
// seq another tab's had).
func TestATabOnTheReplacedLogDoesNotHideAFindingSavedAfterTheRestore(t *testing.T) {
	tb := MustTablet(t)
	room := store.WorkshopRoom(tb.w.ID)
	ids, seqs := tb.seedFindings(t, "Before the backup", 8)
	oldHead := seqs[len(seqs)-1]
	a := tb.browser
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings", "Before the backup 8")); err != nil {
		t.Fatal(err)
	}
	mustKeepPage(t, a)
	b, closeB := chromedp.NewContext(a)
	t.Cleanup(closeB)
	err := chromedp.Do(b, onEveryPage(deafLink), chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings", "Before the backup 8"), evalJS(`window.deaf = true`))
	if err != nil {
		t.Fatal(err)
	}
	keep := seqs[1]
	restoreRoom(t, tb.f, room, keep, ids[2:])
	tb.joinFrom(t, room, oldHead)
	// Tab A joins again with a snapshot of the restored log.
	if err := chromedp.Do(a, pollAcross(`!document.querySelector("#findings").textContent.includes("Before the backup 8")`, "tab A to show the restored room"),
		waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	// The person switches from tab B to tab A: tab B goes to the background.
	if err := chromedp.Do(b, evalJS(`Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
		document.dispatchEvent(new Event("visibilitychange"))`)); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(a, typeFinding("Typed after the restore"), waitText("#findings li.saved", "Typed after the restore"),
		waitText("#status", "every change is saved"))
	if err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Typed after the restore")
	time.Sleep(time.Second)
	t.Logf("kept copy: %.200s", tb.stored(t, a, "state2"))
	tb.f.srv.Stop(t)
	err = chromedp.Do(a, chromedp.Reload(), waitText("#status", "Offline"), waitText("#findings", "Before the backup 2"))
	if err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(a, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#findings li h3"), h => h.textContent).join(" | ")`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(shown, "Typed after the restore") || strings.Contains(shown, "Before the backup 8") {
		t.Fatalf("reloaded offline, tab A shows: %s; want the finding saved after the restore, and none the restore took away", shown)
	}
	_ = fmt.Sprint
}

// TestARestoredFindingIsNotChangedMeanwhileByTheReplacedLog: a finding
// was edited after the backup ("Taken away by the restore"); the database is
// restored. Tab A rejoins with a snapshot (the finding as the backup has it);
// tab B's link is dead (not noticed yet) and keeps its replaced-log copy
// (higher seq) as it goes to the background. The person edits the finding's
// "what was done" in tab A: it must save, not say "Changed meanwhile" with
// the text the restore took away as someone else's.
func TestARestoredFindingIsNotChangedMeanwhileByTheReplacedLog(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	room := store.WorkshopRoom(tb.w.ID)
	seed, mine := tb.ownFinding(t, "Shared title")
	var keep int64
	if err := tb.f.store.DB().NewRaw("SELECT seq FROM rooms WHERE id = ?", room).Scan(bg, &keep); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.f.store.UpdateFinding(bg, &tb.person.ID, tb.w.ID, "op-taken-away", seed.ID, seed.Version,
		map[string]json.RawMessage{"what_done": json.RawMessage(`"Taken away by the restore"`)}); err != nil {
		t.Fatal(err)
	}
	ids, seqs := tb.seedFindings(t, "Before the backup", 3)
	oldHead := seqs[len(seqs)-1]
	a := tb.browser
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Taken away by the restore")); err != nil {
		t.Fatal(err)
	}
	b, closeB := chromedp.NewContext(a)
	t.Cleanup(closeB)
	err := chromedp.Do(b, onEveryPage(deafLink), chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings", "Before the backup 3"), evalJS(`window.deaf = true`))
	if err != nil {
		t.Fatal(err)
	}
	restoreRoom(t, tb.f, room, keep, ids)
	if _, err := tb.f.store.DB().ExecContext(bg, "UPDATE findings SET what_done = 'Old text', version = ? WHERE id = ?", seed.Version, seed.ID); err != nil {
		t.Fatal(err)
	}
	tb.joinFrom(t, room, oldHead)
	if err := chromedp.Do(a, pollAcross(`!document.querySelector("#findings").textContent.includes("Before the backup 3")`, "tab A to show the restored room"),
		waitText("#status", "Live"), waitText(mine, "Old text")); err != nil {
		t.Fatal(err)
	}
	t.Logf("kept copy: %.120s", tb.stored(t, a, "state2"))
	// The person opens the finding in tab A, looks at tab B a moment, and
	// comes back to tab A (tab B goes to the background).
	err = chromedp.Do(a, tap(mine+` button.edit`), waitText("#form-title", "Edit"),
		setField("textarea[name=what_done]", "Written after the restore"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := chromedp.Do(b, evalJS(`Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
		document.dispatchEvent(new Event("visibilitychange"))`)); err != nil {
		t.Fatal(err)
	}
	t.Logf("kept before the save: %.40s", tb.stored(t, a, "state2"))
	err = chromedp.Do(a, chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keep %d oldHead %d; after submit kept: %.60s", keep, oldHead, tb.stored(t, a, "state2"))
	time.Sleep(3 * time.Second)
	got, err := tb.f.store.Finding(bg, seed.ID)
	if err != nil || got.WhatDone != "Written after the restore" || strings.Contains(formSays(a), "Changed meanwhile") {
		t.Fatalf("what was done %q (%v); %s", got.WhatDone, err, formSays(a))
	}
	_ = fmt.Sprint
}

// joinFrom has someone join room from seq since, the head before a
// restore: the server then finds the restore and closes the members
// holding the other log (4009).
func (tb *tablet) joinFrom(t *testing.T, room string, since int64) {
	t.Helper()
	c := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "FI", "ngo").Dial(t, tb.f.srv.URL)
	c.send(t, map[string]any{"type": "join", "room": room, "since": since})
	c.next(t, ofType("joined"))
}

// TestAPageAwayDuringARestoreGetsTheRestoredLog: the server goes down with
// the page open; meanwhile the database is restored from a backup and the
// group writes past the old head in the restored log. The page comes back
// with its last seq and that entry's at: the log has another entry there,
// so it gets a snapshot, and shows the room as it is, not the findings the
// restore took away among the new ones.
func TestAPageAwayDuringARestoreGetsTheRestoredLog(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	room := store.WorkshopRoom(tb.w.ID)
	ids, seqs := tb.openBeforeTheBackup(t)
	oldHead := seqs[len(seqs)-1]
	tb.f.srv.Stop(t)
	if err := chromedp.Do(ctx, waitText("#status", "Offline")); err != nil {
		t.Fatal(err)
	}
	restoreRoom(t, tb.f, room, seqs[1], ids[2:]) // the backup was taken after the first two
	tb.seedFindings(t, "After the restore", int(oldHead-seqs[1])+2)
	MustStart(t, tb.env)
	if err := chromedp.Do(ctx, waitText("#status", "Live"), waitText("#findings", "After the restore 8")); err != nil {
		t.Fatal(err)
	}
	tb.mustNotShowTheTakenAway(t, "back after the restore, the page shows findings the restore took away")
}

// TestAFindingSavedBeforeARestoreIsNotShownSavedAfterIt: the page keeps
// the ops it saved lately on the device a while, for its other tabs. One
// saved just before the database is restored to a backup taken before it
// (the server down meanwhile, the restored log not grown past it) is not
// laid over the restored room as saved, neither when the page comes back
// nor after a reload.
func TestAFindingSavedBeforeARestoreIsNotShownSavedAfterIt(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	room := store.WorkshopRoom(tb.w.ID)
	ids, seqs := tb.openBeforeTheBackup(t)
	err := chromedp.Do(ctx, setField("input[name=title]", "Typed before the restore"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings", "Typed before the restore"), waitText("#status", "every change is saved"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := tb.f.store.WorkshopFindings(context.Background(), tb.w.ID)
	if err != nil {
		t.Fatal(err)
	}
	taken := ids[2:] // the backup was taken after the first two
	for _, f := range fs {
		if f.Title == "Typed before the restore" {
			taken = append(taken, f.ID)
		}
	}
	if len(taken) != len(ids)-1 {
		t.Fatalf("the finding typed is not in the database: %d taken", len(taken))
	}
	tb.f.srv.Stop(t)
	if err := chromedp.Do(ctx, waitText("#status", "Offline")); err != nil {
		t.Fatal(err)
	}
	restoreRoom(t, tb.f, room, seqs[1], taken)
	MustStart(t, tb.env)
	notShown := func(when string) {
		t.Helper()
		shown, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#findings")))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(shown, "Typed before the restore") {
			t.Fatalf("%s, the page shows the finding the restore took away: %q", when, shown)
		}
		tb.mustNotShowTheTakenAway(t, when+", the page shows findings the restore took away")
	}
	if err := chromedp.Do(ctx, waitText("#status", "Live"), pollAcross(fmt.Sprintf(`JSON.parse(localStorage.getItem(%q) || "{}").seq === %d`, tb.storeKey("state2"), seqs[1]), "the copy at the restored head")); err != nil {
		t.Fatal(err)
	}
	notShown("back after the restore")
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings", "Before the backup 2")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	notShown("after a reload")
}

// TestALaggingTabDoesNotKeepAFindingTheRestoreTookAway: two tabs of one
// tablet. Tab B's link is dead, unnoticed, at the room's head H. In tab A
// a finding is saved (seq H+1). Tab A goes elsewhere; the server goes
// down; the database is restored from a backup taken at H, before that
// finding; the server comes back. Tab B resumes from H, which the
// restored log has as it was, and tab A is opened again: neither lists
// the finding as saved. (Review: when a tab showed the device's lately
// saved ops, both did, until the group wrote again.)
func TestALaggingTabDoesNotKeepAFindingTheRestoreTookAway(t *testing.T) {
	tb := MustTablet(t)
	room := store.WorkshopRoom(tb.w.ID)
	_, seqs := tb.seedFindings(t, "Before the backup", 2)
	keep := seqs[len(seqs)-1]
	a := tb.browser
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings", "Before the backup 2")); err != nil {
		t.Fatal(err)
	}
	b, closeB := chromedp.NewContext(a)
	t.Cleanup(closeB)
	if err := chromedp.Do(b, onEveryPage(deafLink), chromedp.Navigate(tb.page), waitText("#status", "Live"),
		waitText("#findings", "Before the backup 2"), evalJS(`window.deaf = true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(a, typeFinding("Saved after the backup"), waitText("#findings li.saved", "Saved after the backup"),
		waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	taken := tb.findingsTitled(t, "Saved after the backup")
	if len(taken) != 1 {
		t.Fatalf("the finding saved in tab A: %d in the database", len(taken))
	}
	// Tab A goes elsewhere (no tab that comes back takes a snapshot);
	// tab B's link comes back just as the server goes down for the restore.
	if err := chromedp.Do(a, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, evalJS(`window.deaf = false`)); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	restoreRoom(t, tb.f, room, keep, taken)
	MustStart(t, tb.env)
	if err := chromedp.Do(b, waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	n, err := tb.f.store.WorkshopFindings(context.Background(), tb.w.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range n {
		if f.Title == "Saved after the backup" {
			t.Fatal("the restore did not take the finding away")
		}
	}
	for _, tab := range []struct {
		name string
		ctx  context.Context
	}{{"B", b}, {"A", a}} {
		saved, _ := chromedp.Run(tab.ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#findings li.saved h3"), h => h.textContent).join(" | ")`))
		status, _ := chromedp.Run(tab.ctx, chromedp.Text(chromedp.CSS("#status")))
		t.Logf("tab %s: saved %q; status %q", tab.name, saved, status)
		if strings.Contains(saved, "Saved after the backup") {
			t.Errorf("after the restore, tab %s lists the finding the restore took away as saved (status %q); the database has no such finding", tab.name, status)
		}
	}
}

// TestAnAckedFindingTheRestoreTookAwayIsNotShownSaved: a finding is saved
// and acked, and the link dies before its entry comes; the page shows it
// saved, from its ack. The database is then restored from a backup taken
// before it, the server down meanwhile. The page's copy ends at the entry
// before the finding's, which the restored log has as it was: it resumes
// from there, and the join's head is below the ack's seq. That ack is of
// the replaced log: the page no longer shows the finding as saved.
func TestAnAckedFindingTheRestoreTookAwayIsNotShownSaved(t *testing.T) {
	tb := MustTablet(t)
	room := store.WorkshopRoom(tb.w.ID)
	_, seqs := tb.seedFindings(t, "Before the backup", 2)
	a := tb.browser
	if err := chromedp.Do(a, onEveryPage(deafAfterAck), chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings", "Before the backup 2")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(a, evalJS(`window.deafAfterAck = true`), typeFinding("Acked before the restore"),
		waitText("#findings li.saved", "Acked before the restore"), pollAcross(`window.deaf`, "the link to die after the ack")); err != nil {
		t.Fatal(err)
	}
	taken := tb.findingsTitled(t, "Acked before the restore")
	if len(taken) != 1 {
		t.Fatalf("the finding acked: %d in the database", len(taken))
	}
	// The link comes back as the server goes down for the restore.
	if err := chromedp.Do(a, evalJS(`window.deafAfterAck = false; window.deaf = false`)); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	restoreRoom(t, tb.f, room, seqs[len(seqs)-1], taken)
	MustStart(t, tb.env)
	if err := chromedp.Do(a, waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	shown, err := chromedp.Run(a, chromedp.Text(chromedp.CSS("#findings")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(shown, "Acked before the restore") {
		t.Fatalf("back after the restore, the page shows the finding the restore took away: %q", shown)
	}
}

// findingsTitled is the ids of the tablet's workshop's findings titled title.
func (tb *tablet) findingsTitled(t *testing.T, title string) []int64 {
	t.Helper()
	fs, err := tb.f.store.WorkshopFindings(context.Background(), tb.w.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, f := range fs {
		if f.Title == title {
			ids = append(ids, f.ID)
		}
	}
	return ids
}
