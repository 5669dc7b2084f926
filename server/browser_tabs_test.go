package main

// Tests of the tablet page's tabs: forms that come back, tabs that ask
// each other, edits in another tab, a device whose storage is full.

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

// TestEditFormEndedWithoutAWordComesBackAsAnEdit: the tab's page,
// with changes to a saved finding in its form, is ended without a word;
// the tab loads the page again over a slow link, and the device holds no
// copy of the room (storage nearly full drops it first: see save). The
// form comes back by itself after ~1 s (lookAgain), before the room is
// known: it must come back as the edit it was, not as a new finding
// (saving which would record the finding twice and leave it unchanged).
func TestEditFormEndedWithoutAWordComesBackAsAnEdit(t *testing.T) {
	tb := MustTablet(t)
	_, mine := tb.ownFinding(t, "Edited finding")
	ctx := tb.browser
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page), waitText("#status", "Live"),
		tap(mine+` button.edit`), waitText("#form-title", "Edit"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding textarea[name=what_done]`), ", and more"),
		waitText("#status", "kept on this device"),
	)
	if err != nil {
		t.Fatal(err)
	}
	// A slow link: every message comes 3 s late.
	err = chromedp.Do(ctx, onEveryPage(`const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
			Object.defineProperty(WebSocket.prototype, "onmessage", { configurable: true, get() { return d.get.call(this); },
				set(fn) { d.set.call(this, e => setTimeout(() => fn(e), 3000)); } })`))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		evalJS(fmt.Sprintf(`localStorage.removeItem(%q); localStorage.removeItem(%q)`, tb.storeKey("state2"), tb.storeKey("acked"))),
		evalJS(`Storage.prototype.setItem = function () {}; Storage.prototype.removeItem = function () {}`),
		chromedp.Reload(),
		pollAcross(`document.querySelector("#new-finding textarea[name=what_done]").value.includes("and more")`, "the form to come back"),
		waitText("#status", "Live"),
	)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	title, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#form-title")))
	if title != `Edit “Edited finding”` {
		t.Fatalf("the edit form came back as %q: saving it would record the finding anew", title)
	}
}

// TestOwnTrimmedEditIsNoChangeMeanwhile: offline, the person edits a
// finding's title (a tablet keyboard leaves a trailing space), saves, and
// opens the finding again to go on. Back online, the server saves the
// title trimmed. Saving the form again must not say "Changed meanwhile
// (by someone else, or in another tab or window)": no one else changed it.
func TestOwnTrimmedEditIsNoChangeMeanwhile(t *testing.T) {
	tb := MustTablet(t)
	_, mine := tb.ownFinding(t, "Shared title")
	ctx := tb.browser
	setTitle := func(s string) chromedp.Action[chromedp.Void] { return setField("input[name=title]", s) }
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Shared title")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err := chromedp.Do(ctx,
		waitText("#status", "Offline"),
		tap(mine+` button.edit`), waitText("#form-title", "Edit"),
		setTitle("Shared title, edited "),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#status", "1 change kept on this device"),
		tap(mine+` button.edit`), waitText("#form-title", "Edit"),
		setTitle("Shared title, edited twice"),
	)
	if err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	err = chromedp.Do(ctx, waitText("#status", "every change is saved"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#form-title", "Record a best practice"))
	if err != nil {
		t.Fatalf("%v; %s", err, formSays(ctx))
	}
}

// TestEditAgainAfterAConflictSavesWhileTheEntryIsLate: someone else
// changed the title; the tablet, not having its entry yet (it waits on
// another server process), saves its own title: a conflict, with the
// finding now. "Edit again" puts the tablet's text over the finding now;
// Save must send it (based on the version the conflict showed), not show
// the title the tablet had before as "changed meanwhile".
func TestEditAgainAfterAConflictSavesWhileTheEntryIsLate(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, mine := tb.ownFinding(t, "Seed title")
	other := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	ctx := tb.browser
	err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Seed title"),
		withholdEntries("Title by the other"),
		tap(mine+` button.edit`), waitText("#form-title", "Edit"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal("Title by the other")
	if _, err := tb.f.store.UpdateFinding(bg, &other.id, tb.w.ID, "other", seed.ID, 1, map[string]json.RawMessage{"title": raw}); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		evalJS(`document.querySelector("#new-finding input[name=title]").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Title by the tablet"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.failed", "Now: Title by the other"),
		tap(`#findings li.failed button.edit`),
		waitText(`#new-finding .theirs[data-field=title]`, "Title by the other"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#form-title", "Record a best practice"),
	)
	if err != nil {
		t.Fatalf("%v; %s", err, formSays(ctx))
	}
}

// TestReloadWithoutSessionStorageKeepsTheForm: a browser that gives the
// page no sessionStorage (it throws, as when site data is restricted) but
// a localStorage. A reload does not leave the form typed before empty,
// with "every change is saved", for 20 s: the hand-over mark and the last
// save are left as the page goes all the same.
func TestReloadWithoutSessionStorageKeepsTheForm(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	err := chromedp.Do(ctx, onEveryPage(`Object.defineProperty(window, "sessionStorage", { configurable: true, get() { throw new DOMException("denied", "SecurityError"); } })`))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Typed before the reload"),
		waitText("#status", "kept on this device"),
		chromedp.Reload(),
		waitText("#status", "Live"),
	)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	err = chromedp.Do(wait, pollAcross(`document.querySelector("#new-finding input[name=title]").value === "Typed before the reload" ||
		Array.from(document.querySelectorAll("#findings li.failed")).some(e => e.textContent.includes("Typed before the reload"))`, "the form typed before the reload"))
	if err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
		t.Fatalf("8 s after a reload without sessionStorage the form typed before is neither back nor offered: %v; status %q", err, status)
	}
}

// TestRefusedChangeWithStorageFullIsSaidToBeAtRisk: the device's
// storage takes nothing; a finding made online is sent, and the server
// refuses it. It is now kept only by the page: the status must say it may
// be lost if the page closes, not only that changes from now on are sent.
func TestRefusedChangeWithStorageFullIsSaidToBeAtRisk(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		evalJS(localStorageTakesNothing),
		addGoneCountry,
		typeFinding("Refused with no storage"),
		waitText("#findings li.failed", "Refused with no storage"),
		waitText("#status", "1 change not saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
	if err != nil {
		t.Fatal(err)
	}
	if q := tb.stored(t, ctx, "failed"); q != "" && q != "[]" {
		t.Logf("kept on the device: %s", q)
	}
	const want = "may be lost if the page closes"
	if !strings.Contains(status, want) {
		t.Fatalf("the refused change is kept by the page alone; status %q does not say %q", status, want)
	}
}

// TestFormLeftInARoomIsOfferedWhileItsTabIsElsewhere: tab A has a
// finding typed in room 1's form, then opens room 2's page (same tab, same
// tab id). Room 1's page is gone; its form is kept under room 1, and
// another tab on room 1 offers it: room 2's page answers for the tab id
// in room 2 only.
func TestFormLeftInARoomIsOfferedWhileItsTabIsElsewhere(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleOrganizer)
	a := tb.browser
	other := fmt.Sprintf("%s/events/%s/workshops/%d", tb.f.srv.URL, tb.f.event.Slug, tb.f.ws[1].ID)
	err := chromedp.Do(a,
		chromedp.Navigate(tb.page), waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Typed in room 1"),
		waitText("#status", "kept on this device"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tabA := tb.keptBy(t, a, "draft")
	if err := chromedp.Do(a, chromedp.Navigate(other), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	b, closeB := chromedp.NewContext(a)
	defer closeB()
	// Room 1's page in tab A has been silent for 20 s (its last beat made old).
	err = chromedp.Do(b, chromedp.Navigate(tb.page), waitText("#status", "Live"),
		evalJS(fmt.Sprintf(`localStorage.setItem(%q, "0"); window.dispatchEvent(new Event("focus"))`, tb.storeKey("alive:"+tabA))))
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(b, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, waitText("#findings li.failed", "Typed in room 1")); err != nil {
		status, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("#status")))
		t.Fatalf("room 1's form, typed in a tab now in room 2, is not offered in room 1's other tab: %v; status %q", err, status)
	}
}

// ownFinding makes a finding of the tablet's person, titled title, and
// returns it with the selector of its item in the page's list.
func (tb *tablet) ownFinding(t *testing.T, title string) (domain.Finding, string) {
	t.Helper()
	created, err := tb.f.store.CreateFinding(context.Background(), &tb.person.ID, tb.w.ID, "seed-own", store.FindingInput{Title: title, WhatDone: "Old text"})
	if err != nil {
		t.Fatal(err)
	}
	var f domain.Finding
	if err := json.Unmarshal(created.Entry.Payload, &f); err != nil {
		t.Fatal(err)
	}
	return f, fmt.Sprintf(`#findings li[data-id="%d"]`, f.ID)
}

// setField empties the form's field sel (a CSS selector within it) and
// types s there.
func setField(sel, s string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		evalJS(fmt.Sprintf(`document.querySelector(%q).value = ""`, "#new-finding "+sel)),
		chromedp.SendKeys(chromedp.CSS("#new-finding "+sel), s))
}

// ownInTwoTabs makes the person's own finding "Shared title" and opens
// the page in tab A and, with script (see secondTab), in tab B, which
// opens the finding's edit form when form is set, and then runs js.
func (tb *tablet) ownInTwoTabs(t *testing.T, script string, form bool, js string) (seed domain.Finding, mine string, a, b context.Context) {
	t.Helper()
	seed, mine = tb.ownFinding(t, "Shared title")
	a = tb.browser
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Shared title")); err != nil {
		t.Fatal(err)
	}
	var then []chromedp.Action[chromedp.Void]
	if form {
		then = append(then, tap(mine+`.saved button.edit`), waitText("#form-title", "Edit"))
	}
	return seed, mine, a, tb.secondTab(t, a, script, mine, "Shared title", append(then, evalJS(js))...)
}

// secondTab opens the page in a second tab of ctx's browser, with script
// run in every page before its own (a WebSocket filter: deafLink,
// deafAfterAck, noEntries), once it is live and lists item saved as
// title; then it does then there.
func (tb *tablet) secondTab(t *testing.T, ctx context.Context, script, item, title string, then ...chromedp.Action[chromedp.Void]) context.Context {
	t.Helper()
	b, closeB := chromedp.NewContext(ctx)
	t.Cleanup(closeB)
	steps := append([]chromedp.Action[chromedp.Void]{onEveryPage(script), chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(item+".saved", title)}, then...)
	if err := chromedp.Do(b, steps...); err != nil {
		t.Fatal(err)
	}
	return b
}

// editSavedTitle is editTitle of item as listed saved (not a refused
// change of it, listed apart).
func editSavedTitle(item, title string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(tap(item+`.saved button.edit`), waitText("#form-title", "Edit"),
		setField("input[name=title]", title), chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)))
}

// retitledBySomeoneElse has another member of the room set the title of
// finding f, at its version, to title.
func (tb *tablet) retitledBySomeoneElse(t *testing.T, f domain.Finding, title string) {
	t.Helper()
	other := tb.f.mustJoined(t, &tb.w, "SE", "ngo")
	other.send(t, op(store.WorkshopRoom(tb.w.ID), "other-upd", "finding.update", int64(f.Version), map[string]any{"id": f.ID, "fields": map[string]any{"title": title}}))
	if fr := other.next(t, answerTo("other-upd")); fr.Type != "ack" {
		t.Fatalf("someone else's update: %+v", fr)
	}
}

// conflictThenTabASavesWhatDone sets up the person's own finding in two
// tabs: tab A with its edit form open at version 1, tab B losing every
// entry. Someone else retitles the finding (v2); tab B's title change is
// refused as a conflict with that copy; then tab A saves What was done
// from its v1 form (v3).
func (tb *tablet) conflictThenTabASavesWhatDone(t *testing.T) (seed domain.Finding, mine string, b context.Context) {
	t.Helper()
	seed, mine = tb.ownFinding(t, "Shared title")
	a := tb.browser
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Shared title"),
		tap(mine+`.saved button.edit`), waitText("#form-title", "Edit")); err != nil {
		t.Fatal(err)
	}
	b = tb.secondTab(t, a, noEntries, mine, "Shared title", evalJS(`window.noEntries = true`))
	tb.retitledBySomeoneElse(t, seed, "Title P by someone else")
	if err := chromedp.Do(b, editSavedTitle(mine, "Title Z from tab B"),
		waitText("#findings li.failed", "Title Z from tab B")); err != nil {
		t.Fatalf("tab B's conflict: %v", err)
	}
	// Tab A, its form opened before the retitle: What was done.
	if err := chromedp.Do(a, waitText(mine, "Title P by someone else"),
		setField("textarea[name=what_done]", "Done as typed in tab A"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText(mine+".saved", "Done as typed in tab A")); err != nil {
		t.Fatalf("tab A: %v; %s", err, formSays(a))
	}
	tb.mustStore(t, seed.ID, "tab A's save", func(f domain.Finding) bool { return f.WhatDone == "Done as typed in tab A" })
	return seed, mine, b
}

// mustStore waits, for up to 5 s, until the database's finding id is as
// ok says, and returns it; else it fails the test, saying what it waited
// for.
func (tb *tablet) mustStore(t *testing.T, id int64, what string, ok func(domain.Finding) bool) domain.Finding {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, err := tb.f.store.Finding(context.Background(), id)
		if err == nil && ok(f) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the database has title %q, what was done %q (%v)", what, f.Title, f.WhatDone, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// saveSavedTitle is editSavedTitle, waiting until it is saved.
func saveSavedTitle(item, title string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(editSavedTitle(item, title), waitText(item+".saved", title), waitText("#status", "every change is saved"))
}

// formSays is what the form says of a refused save, for a failure's message.
func formSays(ctx context.Context) string {
	msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#form-error")))
	theirs, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#new-finding .theirs")).map(e => e.textContent).join(" | ")`))
	return fmt.Sprintf("form says %q; shown as theirs: %q", msg, theirs)
}

// TestALaggingTabDoesNotSaveOverTheOtherTabsEdit: one person, two
// tabs of one browser, both with the finding open in the edit form. Tab
// B's link went dead unnoticed (a tablet that woke up on another access
// point: it hears nothing, its sends still go out). In tab A the person
// saves a new title: saved. In tab B, whose form and list still show the
// old title, they then save another title. The server takes both for the
// same client's changes (no conflict); live.js promises that a change made
// in another tab of this browser "is shown before anything is sent". Tab
// B must show "Changed meanwhile" (tab A's title beside its own) and not
// save over tab A's title unseen.
func TestALaggingTabDoesNotSaveOverTheOtherTabsEdit(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, mine, a, b := tb.ownInTwoTabs(t, deafLink, true, `window.deaf = true`)
	// Tab A: the title changed and saved.
	err := chromedp.Do(a, saveSavedTitle(mine, "Title typed in tab A"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tb.f.store.Finding(bg, seed.ID); err != nil || got.Title != "Title typed in tab A" {
		t.Fatalf("title after tab A: %q (%v)", got.Title, err)
	}
	time.Sleep(time.Second)
	shownInB, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS(mine)))
	t.Logf("tab B lists the finding as: %q", shownInB)
	// Tab B: the person types over the title its form still holds.
	err = chromedp.Do(b, setField("input[name=title]", "Title typed in tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	got, err := tb.f.store.Finding(bg, seed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Title typed in tab A" {
		t.Fatalf("tab B saved its title over tab A's, unseen: the title is now %q (tab A's %q lost); tab B %s",
			got.Title, "Title typed in tab A", formSays(b))
	}
	if says := formSays(b); !strings.Contains(says, "Changed meanwhile") || !strings.Contains(says, "Title typed in tab A") {
		t.Fatalf("tab B does not show tab A's title beside its own: %s", says)
	}
}

// deafAfterAck makes the page's WebSockets deliver frames as usual until
// window.deafAfterAck is set; then entries are dropped, the first message
// with an ack is delivered up to that ack, and nothing after it: the
// op's entry was behind its ack (PROTOCOL.md allows either order) when
// the link died, not noticed yet.
const deafAfterAck = `window.deaf = false; window.deafAfterAck = false;
	for (const ev of ["onclose", "onmessage"]) {
		const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, ev);
		Object.defineProperty(WebSocket.prototype, ev, { configurable: true, get() { return d.get.call(this); },
			set(fn) { d.set.call(this, e => {
				if (window.deaf) return;
				if (ev === "onmessage" && window.deafAfterAck) {
					const lines = String(e.data).split("\n").filter(l => !l.includes('"type":"entry"'));
					const i = lines.findIndex(l => l.includes('"type":"ack"'));
					if (i >= 0) window.deaf = true;
					if (lines.length) fn({ data: lines.slice(0, i >= 0 ? i + 1 : lines.length).join("\n") });
					return;
				}
				fn(e);
			}); } });
	}`

// TestATabsSavedFindingStaysWhenAnotherTabTakesASnapshot: tab A saves a
// finding; its ack comes, then its link dies before the entry does (not
// noticed yet): tab A shows the finding saved, from its acked op. The
// group deletes a finding meanwhile. The person opens a second tab B: its
// join needs a snapshot (a deletion since its copy), which has tab A's
// finding. Tab A, whose log is the same, must go on showing the finding
// it saved. (Review: a snapshot in one tab made every tab of the device
// let go of its acked ops, so tab A listed the room without the finding,
// under "every change is saved".)
func TestATabsSavedFindingStaysWhenAnotherTabTakesASnapshot(t *testing.T) {
	tb := MustTablet(t)
	room := store.WorkshopRoom(tb.w.ID)
	a := tb.browser
	if err := chromedp.Do(a, onEveryPage(deafAfterAck), chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	mustKeepPage(t, a)
	if err := chromedp.Do(a, evalJS(`window.deafAfterAck = true`), typeFinding("Saved as the link went"),
		waitText("#findings li.saved", "Saved as the link went"), pollAcross(`window.deaf`, "tab A's link to die after the ack")); err != nil {
		t.Fatal(err)
	}
	// Someone of the group creates and deletes a finding.
	other := tb.f.mustJoined(t, &tb.w, "SE", "ngo")
	other.send(t, op(room, "other-create", "finding.create", 0, map[string]any{"title": "Soon gone"}))
	_, fnd := other.created(t, "other-create")
	other.send(t, op(room, "other-delete", "finding.delete", int64(fnd.Version), map[string]any{"id": fnd.ID}))
	time.Sleep(500 * time.Millisecond)
	b, closeB := chromedp.NewContext(a)
	t.Cleanup(closeB)
	if err := chromedp.Do(b, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings li.saved", "Saved as the link went")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	shown, _ := chromedp.Run(a, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#findings li"), l => l.className + ": " + l.querySelector("h3").textContent).join(" | ")`))
	status, _ := chromedp.Run(a, chromedp.Text(chromedp.CSS("#status")))
	if !strings.Contains(shown, "Saved as the link went") {
		t.Fatalf("after tab B's snapshot, tab A no longer shows the finding it saved: %q; status %q", shown, status)
	}
}

// TestALaggingTabsOwnLaterSaveIsNotAConflictWithTheOtherTabsOlder: tab B
// has the finding open in its form; tab A saves title Y (seq H+1). Tab B,
// its link lagging (entries lost), sees "Changed meanwhile" for its title
// Z (right), saves Z anyway (acked, seq H+2, its entry not come). B then
// edits again: Z -> W. Nothing changed since Z (B's own save, after A's):
// no conflict is due. (Review: the check laid A's older op over B's newer
// acked one, and offered A's stale title as "theirs".)
func TestALaggingTabsOwnLaterSaveIsNotAConflictWithTheOtherTabsOlder(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, mine, a, b := tb.ownInTwoTabs(t, deafAfterAck, true, `window.deaf = true`)
	err := chromedp.Do(a, saveSavedTitle(mine, "Title Y from tab A"))
	if err != nil {
		t.Fatal(err)
	}
	// Tab B (which also sent tab A's op from the device's queue, its
	// answer lost) hears again, but no entry: its link lags.
	time.Sleep(time.Second)
	if err := chromedp.Do(b, evalJS(`window.deafAfterAck = true; window.deaf = false`)); err != nil {
		t.Fatal(err)
	}
	// Tab B: Z over the old title in its form: caught (right).
	err = chromedp.Do(b, setField("input[name=title]", "Title Z from tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)), waitText("#form-error", "Changed meanwhile"))
	if err != nil {
		got, _ := tb.f.store.Finding(bg, seed.ID)
		saved := tb.stored(t, b, "saved")
		st, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("#status")))
		t.Fatalf("tab B's first save not caught: %v; %s; title in db %q; :saved %s; status %q", err, formSays(b), got.Title, saved, st)
	}
	// The person keeps Z and saves again: sent, acked.
	err = chromedp.Do(b, chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		pollAcross(`window.deaf`, "tab B's ack"), waitText(mine+".saved", "Title Z from tab B"))
	if err != nil {
		t.Fatalf("tab B's second save: %v; %s", err, formSays(b))
	}
	if got, _ := tb.f.store.Finding(bg, seed.ID); got.Title != "Title Z from tab B" {
		t.Fatalf("title now %q", got.Title)
	}
	// Tab B edits its own title again.
	err = chromedp.Do(b, editSavedTitle(mine, "Title W from tab B"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	says := formSays(b)
	got, _ := tb.f.store.Finding(bg, seed.ID)
	if strings.Contains(says, "Changed meanwhile") || got.Title != "Title W from tab B" {
		t.Fatalf("tab B's edit of its own newest title was stopped as a conflict: title in the database %q; tab B %s", got.Title, says)
	}
}

// TestALaggingTabCatchesTheOtherTabsEditAfterItsNewFindings: as
// TestALaggingTabDoesNotSaveOverTheOtherTabsEdit, but tab A, after saving
// its title, records 32 new findings (a note-taker's morning) before tab
// B's save. The device's lately saved ops keep 32 ops of any kind, and
// changedMeanwhile reads only updates: the creates push tab A's title
// out, and tab B saves over it unseen.
func TestALaggingTabCatchesTheOtherTabsEditAfterItsNewFindings(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, mine, a, b := tb.ownInTwoTabs(t, deafLink, true, `window.deaf = true`)
	err := chromedp.Do(a, editSavedTitle(mine, "Title typed in tab A"),
		waitText(mine+".saved", "Title typed in tab A"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 32; i++ {
		if err := chromedp.Do(a, typeFinding(fmt.Sprintf("New finding %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(a, waitText("#findings li.saved", "New finding 31"), waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	t.Logf("32 findings in %v", time.Since(start))
	err = chromedp.Do(b, setField("input[name=title]", "Title typed in tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	got, _ := tb.f.store.Finding(bg, seed.ID)
	if got.Title != "Title typed in tab A" {
		t.Fatalf("tab B saved over tab A's title unseen: now %q; tab B %s", got.Title, formSays(b))
	}
}

// noEntries makes the page's WebSockets drop every entry frame while
// window.noEntries is set (its link lags behind the room's entries; acks,
// errors and pongs still come).
const noEntries = `window.noEntries = false;
	(() => {
		const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
		Object.defineProperty(WebSocket.prototype, "onmessage", { configurable: true, get() { return d.get.call(this); },
			set(fn) { d.set.call(this, e => {
				if (!window.noEntries) return fn(e);
				const lines = String(e.data).split("\n").filter(l => !l.includes('"type":"entry"'));
				if (lines.length) fn({ data: lines.join("\n") });
			}); } });
	})()`

// TestALaggingTabsEditAgainAfterAConflictCatchesTheOtherTabsEdit: tab B
// lags (no entries). Someone else changes the title (P); tab B's save of
// Z is refused as a conflict, with P's copy. Then, in tab A, the person
// saves title Y. In tab B they press "Edit again" and save Z: the form's
// base is P's version, newer than tab B's copy, so changedMeanwhile leaves
// it to the server, which takes tab A's Y for this client's own: Z is
// saved over Y, which tab B never showed.
func TestALaggingTabsEditAgainAfterAConflictCatchesTheOtherTabsEdit(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, mine, a, b := tb.ownInTwoTabs(t, noEntries, false, `window.noEntries = true`)
	tb.retitledBySomeoneElse(t, seed, "Title P by someone else")
	// Tab B: Z, refused as a conflict with P.
	if err := chromedp.Do(b, editSavedTitle(mine, "Title Z from tab B"),
		waitText("#findings li.failed", "Title Z from tab B")); err != nil {
		t.Fatalf("tab B's conflict: %v", err)
	}
	// Tab A (live, shows P): Y.
	if err := chromedp.Do(a, waitText(mine, "Title P by someone else"), editSavedTitle(mine, "Title Y from tab A"),
		waitText(mine+".saved", "Title Y from tab A")); err != nil {
		t.Fatal(err)
	}
	if got, _ := tb.f.store.Finding(bg, seed.ID); got.Title != "Title Y from tab A" {
		t.Fatalf("tab A's save: %q", got.Title)
	}
	time.Sleep(500 * time.Millisecond)
	// Tab B: Edit again, save.
	if err := chromedp.Do(b, tap(`#findings li.failed button.edit`), waitText("#form-title", "Edit"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	got, _ := tb.f.store.Finding(bg, seed.ID)
	if got.Title != "Title Y from tab A" {
		t.Fatalf("after Edit again, tab B saved over tab A's title unseen: now %q; tab B %s", got.Title, formSays(b))
	}
}

// TestEditAgainCatchesTheOtherTabsSaveOnAnOlderBase: tab A has the
// finding open in its form (base v1). Tab B lags (no entries). Someone
// else changes the title (v2). Tab B's title change is refused as a
// conflict (copy v2). Tab A then saves "What was done" from its form,
// still based on v1: the server applies it (v3; nobody else touched that
// field). In tab B, Edit again (base v2), the person changes "What was
// done" too: changedMeanwhile lays only ops whose base >= v2, so tab A's
// (base v1, applied after v2) is left out and tab B saves over it unseen.
func TestEditAgainCatchesTheOtherTabsSaveOnAnOlderBase(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, _, b := tb.conflictThenTabASavesWhatDone(t)
	time.Sleep(500 * time.Millisecond)
	if err := chromedp.Do(b, tap(`#findings li.failed button.edit`), waitText("#form-title", "Edit"),
		setField("textarea[name=what_done]", "Done as typed in tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	got, _ := tb.f.store.Finding(bg, seed.ID)
	if got.WhatDone != "Done as typed in tab A" {
		t.Fatalf("after Edit again, tab B saved over tab A's What was done unseen: now %q; tab B %s", got.WhatDone, formSays(b))
	}
	if says := formSays(b); !strings.Contains(says, "Changed meanwhile") || !strings.Contains(says, "Done as typed in tab A") {
		t.Errorf("after Edit again, tab B does not show tab A's What was done beside its own: %s", says)
	}
}

// TestALaggingTabsNextEditAfterEditAgainIsNotAConflict: tab B lags
// (no entries). Someone else changes the title (P, v2); tab B's save of Z
// is refused as a conflict; Edit again, save: Z is saved (v3, acked, its
// entry not come). Tab B then edits its own title again, W: nothing
// changed since Z, yet the form is based on the tab's copy (v1), and the
// server refuses W as a conflict with P's title.
func TestALaggingTabsNextEditAfterEditAgainIsNotAConflict(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, mine := tb.ownFinding(t, "Shared title")
	b := tb.browser
	if err := chromedp.Do(b, onEveryPage(noEntries), chromedp.Navigate(tb.page), waitText("#status", "Live"),
		waitText(mine+".saved", "Shared title"), evalJS(`window.noEntries = true`)); err != nil {
		t.Fatal(err)
	}
	tb.retitledBySomeoneElse(t, seed, "Title P by someone else")
	if err := chromedp.Do(b, editSavedTitle(mine, "Title Z from tab B"),
		waitText("#findings li.failed", "Title Z from tab B")); err != nil {
		t.Fatalf("tab B's conflict: %v", err)
	}
	if err := chromedp.Do(b, tap(`#findings li.failed button.edit`), waitText("#form-title", "Edit"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText(mine+".saved", "Title Z from tab B")); err != nil {
		t.Fatalf("Edit again: %v; %s", err, formSays(b))
	}
	time.Sleep(time.Second)
	if got, _ := tb.f.store.Finding(bg, seed.ID); got.Title != "Title Z from tab B" {
		t.Fatalf("after Edit again: %q", got.Title)
	}
	if err := chromedp.Do(b, editSavedTitle(mine, "Title W from tab B")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	got, _ := tb.f.store.Finding(bg, seed.ID)
	failed, _ := chromedp.Run(b, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#findings li.failed")).map(e => e.textContent).join(" | ")`))
	if got.Title != "Title W from tab B" {
		t.Fatalf("tab B's edit of its own newest title was refused: title in the database %q; %s; failed items %q", got.Title, formSays(b), failed)
	}
}

// TestADeafTabKeepsShowingItsOwnSave: tab B's link is dead, not
// noticed yet (its sends go out, nothing comes in); tab A is live. In tab
// B the person saves a new title: the op goes out on both tabs' links and
// is saved; tab A settles it on the device. Tab B should still show the
// title the person just saved there, and their next edit of it in tab B
// should not be stopped as "Changed meanwhile" with their own title.
func TestADeafTabKeepsShowingItsOwnSave(t *testing.T) {
	tb := MustTablet(t)
	seed, mine, a, b := tb.ownInTwoTabs(t, deafLink, false, `window.deaf = true`)
	if err := chromedp.Do(b, editTitle(mine, "Title Z from tab B")); err != nil {
		t.Fatal(err)
	}
	tb.mustStore(t, seed.ID, "tab B's save", func(f domain.Finding) bool { return f.Title == "Title Z from tab B" })
	if err := chromedp.Do(a, waitText(mine+".saved", "Title Z from tab B")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	shown, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS(mine)))
	status, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("#status")))
	if !strings.Contains(shown, "Title Z from tab B") {
		t.Errorf("tab B no longer shows the title saved in it: %q; status %q", shown, status)
	}
	if err := chromedp.Do(b, editTitle(mine, "Title W from tab B")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if says := formSays(b); strings.Contains(says, "Changed meanwhile") {
		t.Fatalf("tab B's next edit of its own title stopped: %s", says)
	}
}

// TestALaggingTabsEditAfterAConflictDoesNotBringBackItsOlderSave: tab B
// lags (no entries). B saves title Z (acked, v2). Someone else then sets
// title P and what_done X (v3). B changes what_done: refused as a
// conflict on what_done (copy v3, title P); newer[id] = v3. The person
// then taps Edit on the finding: the form should start from the newest
// known title (P), or its base should make the server stop a title change;
// it shows Z (the tab's acked op, older than v3, laid over the v3 copy)
// with base v3, so a title change saves over P, never shown in tab B.
func TestALaggingTabsEditAfterAConflictDoesNotBringBackItsOlderSave(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	room := store.WorkshopRoom(tb.w.ID)
	seed, mine := tb.ownFinding(t, "Shared title")
	b := tb.browser
	if err := chromedp.Do(b, onEveryPage(noEntries), chromedp.Navigate(tb.page), waitText("#status", "Live"),
		waitText(mine+".saved", "Shared title"), evalJS(`window.noEntries = true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, tap(mine+`.saved button.edit`), waitText("#form-title", "Edit"),
		setField("input[name=title]", "Title Z from tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	v := int64(tb.mustStore(t, seed.ID, "tab B's save", func(f domain.Finding) bool { return f.Title == "Title Z from tab B" }).Version)
	time.Sleep(300 * time.Millisecond)
	other := tb.f.mustJoined(t, &tb.w, "SE", "ngo")
	other.send(t, op(room, "other-upd", "finding.update", v, map[string]any{"id": seed.ID, "fields": map[string]any{"title": "Title P by someone else", "what_done": "Done by someone else"}}))
	if f := other.next(t, answerTo("other-upd")); f.Type != "ack" {
		t.Fatalf("other's update: %+v", f)
	}
	if err := chromedp.Do(b, tap(mine+`.saved button.edit`), waitText("#form-title", "Edit"),
		setField("textarea[name=what_done]", "Done by tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.failed", "Done by tab B")); err != nil {
		t.Fatalf("tab B's conflict: %v; %s", err, formSays(b))
	}
	// The person discards the refused change and opens the finding again.
	if err := chromedp.Do(b, evalJS(`window.confirm = () => true`), tap(`#findings li.failed button.discard`),
		tap(mine+`.saved button.edit`), waitText("#form-title", "Edit")); err != nil {
		t.Fatal(err)
	}
	formTitle, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector("#new-finding input[name=title]").value`))
	if err := chromedp.Do(b, setField("input[name=title]", "Title W from tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	got, _ := tb.f.store.Finding(bg, seed.ID)
	page, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("#findings")))
	if got.Title == "Title W from tab B" && !strings.Contains(formTitle, "Title P") && !strings.Contains(page, "Title P") {
		t.Fatalf("tab B's form opened with title %q (its own older save, over the v3 copy) and saved W over someone else's title P, never shown: database %q; %s", formTitle, got.Title, formSays(b))
	}
}

// TestTheDevicesAckedListEmptiesOnceBothTabsCatchUp: tab B deaf saves a
// title; tab A settles it by its entry and writes it among the acked
// ones. Once tab B hears again and joins, and both tabs hold the entry,
// the device's ":acked" list should be empty.
func TestTheDevicesAckedListEmptiesOnceBothTabsCatchUp(t *testing.T) {
	tb := MustTablet(t)
	seed, mine := tb.ownFinding(t, "Shared title")
	a := tb.browser
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Shared title")); err != nil {
		t.Fatal(err)
	}
	b := tb.secondTab(t, a, deafLink, mine, "Shared title", evalJS(`window.deaf = true`))
	if err := chromedp.Do(b, editTitle(mine, "Title Z from tab B")); err != nil {
		t.Fatal(err)
	}
	tb.mustStore(t, seed.ID, "tab B's save", func(f domain.Finding) bool { return f.Title == "Title Z from tab B" })
	if err := chromedp.Do(a, waitText(mine+".saved", "Title Z from tab B")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	t.Logf(":acked while B is deaf: %s", tb.stored(t, b, "acked"))
	// B hears again; it notices the dead link (no pong) and joins again.
	if err := chromedp.Do(b, evalJS(`window.deaf = false`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		st, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("#status")))
		acked := tb.stored(t, b, "acked")
		if acked == "" && strings.Contains(st, "Live") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the device still keeps acked ops once both tabs are live: %s; B's status %q", acked, st)
		}
		// A's next save rewrites the lists: any message does (presence, pings).
		time.Sleep(500 * time.Millisecond)
	}
}

// deadLink: while window.deaf is set, the page's WebSockets hear nothing
// and what it sends goes nowhere (a dead link, not noticed yet).
const deadLink = deafLink + `;
	(() => {
		const send = WebSocket.prototype.send;
		WebSocket.prototype.send = function (d) { if (!window.deaf) return send.call(this, d); };
	})()`

// packAcks puts a message's acks before its other frames: the server
// packs the frames queued for a connection into one message, and the
// sender may get an op's entry before or after its ack (PROTOCOL.md).
const packAcks = `window.packLog = [];
	(() => {
		const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
		Object.defineProperty(WebSocket.prototype, "onmessage", { configurable: true, get() { return d.get.call(this); },
			set(fn) { d.set.call(this, e => {
				const lines = String(e.data).split("\n");
				const acks = lines.filter(l => l.includes('"type":"ack"')), rest = lines.filter(l => !l.includes('"type":"ack"'));
				window.packLog.push(acks.concat(rest).map(l => l.slice(0, 30)).join(" / "));
				return fn({ data: acks.concat(rest).join("\n") });
			}); } });
	})()`

// TestADeadTabShowsItsSaveAckedInOneMessageWithItsEntry: tab B's link is
// dead (nothing in or out, not noticed). The person saves a title there;
// tab A sends it from the device's queue and gets its ack and its entry in
// one message. Tab B should show the title saved (as when tab A gets the
// entry first: TestADeafTabKeepsShowingItsOwnSave), not go back to the
// old one under "every change is saved".
func TestADeadTabShowsItsSaveAckedInOneMessageWithItsEntry(t *testing.T) {
	tb := MustTablet(t)
	seed, mine := tb.ownFinding(t, "Shared title")
	a := tb.browser
	if err := chromedp.Do(a, onEveryPage(packAcks), chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Shared title")); err != nil {
		t.Fatal(err)
	}
	b := tb.secondTab(t, a, deadLink, mine, "Shared title", evalJS(`window.deaf = true`))
	if err := chromedp.Do(b, editTitle(mine, "Title Z from tab B")); err != nil {
		t.Fatal(err)
	}
	tb.mustStore(t, seed.ID, "tab B's save", func(f domain.Finding) bool { return f.Title == "Title Z from tab B" })
	if err := chromedp.Do(a, waitText(mine+".saved", "Title Z from tab B")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	shown, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS(mine)))
	status, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("#status")))
	plog, _ := chromedp.Run(a, chromedp.Evaluate[string](`JSON.stringify(window.packLog)`))
	t.Logf("A got: %s", plog)
	t.Logf("B shows %q", shown)
	sendSrc, _ := chromedp.Run(b, chromedp.Evaluate[string](`WebSocket.prototype.send.toString() + " deaf=" + window.deaf`))
	t.Logf("B's send: %s", sendSrc)
	if !strings.Contains(shown, "Title Z from tab B") {
		t.Errorf("tab B no longer shows the title saved in it: %q; status %q", shown, status)
	}
}

// TestAnEditFromAConflictsCopyDoesNotSaveOverTheOtherTabsLaterSave: tab A
// has the finding open (base v1). Tab B lags. Someone else retitles (v2).
// Tab B's title change: conflict, newer = v2 copy. Tab A saves What was
// done from its v1 form (v3, base v1). Tab B discards its refused change
// and taps Edit: the form should show tab A's What was done (the list
// does), or stop a save of it; startEdit skips tab A's op (base 1 < 2).
func TestAnEditFromAConflictsCopyDoesNotSaveOverTheOtherTabsLaterSave(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, mine, b := tb.conflictThenTabASavesWhatDone(t)
	time.Sleep(500 * time.Millisecond)
	if err := chromedp.Do(b, evalJS(`window.confirm = () => true`), tap(`#findings li.failed button.discard`),
		tap(mine+`.saved button.edit`), waitText("#form-title", "Edit")); err != nil {
		t.Fatal(err)
	}
	formDone, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector("#new-finding textarea[name=what_done]").value`))
	listB, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS(mine)))
	t.Logf("tab B's list: %q; form's what_done: %q", listB, formDone)
	if err := chromedp.Do(b, setField("textarea[name=what_done]", formDone+", and more from tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	got, _ := tb.f.store.Finding(bg, seed.ID)
	if !strings.Contains(got.WhatDone, "Done as typed in tab A") {
		t.Fatalf("tab B's form opened with What was done %q (not tab A's later save, which its list shows) and saved over it unseen: database %q; %s", formDone, got.WhatDone, formSays(b))
	}
}

// TestAnEditWithoutAConflictShowsTheNewestTitle: no conflict at all.
// Tab A lags from v1; tab B from v2 (someone else's What was done). Tab A
// saves title T1, then T2 (both base v1, v3 and v4). Tab B lists T2; its
// Edit form should show T2 too. startEdit lays T1 over B's copy, and then,
// f being no longer the copy, skips T2 (base 1 < 2).
func TestAnEditWithoutAConflictShowsTheNewestTitle(t *testing.T) {
	tb := MustTablet(t)
	seed, mine := tb.ownFinding(t, "Shared title")
	a := tb.browser
	if err := chromedp.Do(a, onEveryPage(noEntries), chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Shared title")); err != nil {
		t.Fatal(err)
	}
	b := tb.secondTab(t, a, noEntries, mine, "Shared title")
	if err := chromedp.Do(a, evalJS(`window.noEntries = true`)); err != nil {
		t.Fatal(err)
	}
	other := tb.f.mustJoined(t, &tb.w, "SE", "ngo")
	other.send(t, op(store.WorkshopRoom(tb.w.ID), "other-upd", "finding.update", int64(seed.Version), map[string]any{"id": seed.ID, "fields": map[string]any{"what_done": "Done by someone else"}}))
	if fr := other.next(t, answerTo("other-upd")); fr.Type != "ack" {
		t.Fatalf("someone else's update: %+v", fr)
	}
	if err := chromedp.Do(b, waitText(mine, "Done by someone else"), evalJS(`window.noEntries = true`)); err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"Title T1 from tab A", "Title T2 from tab A"} {
		if err := chromedp.Do(a, editSavedTitle(mine, title)); err != nil {
			t.Fatal(err)
		}
		tb.mustStore(t, seed.ID, "tab A's save of "+title, func(f domain.Finding) bool { return f.Title == title })
		time.Sleep(300 * time.Millisecond)
	}
	if err := chromedp.Do(b, waitText(mine+".saved", "Title T2 from tab A"), tap(mine+`.saved button.edit`), waitText("#form-title", "Edit")); err != nil {
		t.Fatal(err)
	}
	formTitle, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector("#new-finding input[name=title]").value`))
	t.Logf(":acked %s", tb.stored(t, b, "acked"))
	if formTitle != "Title T2 from tab A" {
		t.Fatalf("tab B lists title T2 but its Edit form opened with %q", formTitle)
	}
}

// holdLink drops entries while window.noEntries, and holds the other
// frames while window.hold, delivering them at window.release().
const holdLink = `window.noEntries = false; window.deaf = false; window.hold = false; window.held = [];
	(() => {
		const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
		Object.defineProperty(WebSocket.prototype, "onmessage", { configurable: true, get() { return d.get.call(this); },
			set(fn) { d.set.call(this, e => {
				if (window.deaf) return;
				let data = String(e.data);
				if (window.noEntries) data = data.split("\n").filter(l => !l.includes('"type":"entry"')).join("\n");
				if (!data) return;
				if (window.hold) { const f = () => fn({ data }); f.data = data; window.held.push(f); return; }
				fn({ data });
			}); } });
		window.release = () => { window.hold = false; const h = window.held; window.held = []; h.forEach(f => f()); };
	})()`

// TestALateAckIsNotLaidOverTheConflictsCopy: tab A's what_done save commits
// (v2) but its ack reaches tab A late; someone else then changes
// what_done (v3); tab B (lagging at v1) gets a conflict with v3's copy;
// then tab A's ack comes (t after B's conflict). Tab B's Edit form lays
// tab A's op (already in v3, and overwritten there) over v3's copy.
func TestALateAckIsNotLaidOverTheConflictsCopy(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, mine := tb.ownFinding(t, "Shared title")
	a := tb.browser
	if err := chromedp.Do(a, onEveryPage(holdLink), chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Shared title"),
		evalJS(`window.noEntries = true`)); err != nil {
		t.Fatal(err)
	}
	b := tb.secondTab(t, a, holdLink, mine, "Shared title", evalJS(`window.noEntries = true; window.deaf = true`))
	// Tab A saves What was done; its ack is held.
	if err := chromedp.Do(a, evalJS(`window.hold = true`), tap(mine+`.saved button.edit`), waitText("#form-title", "Edit"),
		setField("textarea[name=what_done]", "Done in tab A"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	v2 := tb.mustStore(t, seed.ID, "tab A's save", func(f domain.Finding) bool { return f.WhatDone == "Done in tab A" }).Version
	// Someone else changes What was done on v2 (v3).
	other := tb.f.mustJoined(t, &tb.w, "SE", "ngo")
	other.send(t, op(store.WorkshopRoom(tb.w.ID), "other-upd", "finding.update", int64(v2), map[string]any{"id": seed.ID, "fields": map[string]any{"what_done": "Done by someone else"}}))
	if fr := other.next(t, answerTo("other-upd")); fr.Type != "ack" {
		t.Fatalf("someone else's update: %+v", fr)
	}
	cls, _ := chromedp.Run(b, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#findings li")).map(l => l.className + ":" + l.textContent.slice(0,80)).join(" | ")`))
	t.Logf("B list: %s", cls)
	// Tab B, at v1, saves What was done: conflict, with v3's copy.
	if err := chromedp.Do(b, evalJS(`window.deaf = false`), tap(mine+` button.edit`), waitText("#form-title", "Edit"),
		setField("textarea[name=what_done]", "Done in tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.failed", "Done in tab B")); err != nil {
		t.Fatalf("tab B's conflict: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	// Now tab A's ack comes.
	heldN, _ := chromedp.Run(a, chromedp.Evaluate[string](`window.held.map(f => f.data).join(" || ")`))
	nowB, _ := chromedp.Run(b, chromedp.Evaluate[float64](`Date.now()`))
	t.Logf("held in A: %s; B now %v", heldN, nowB)
	if err := chromedp.Do(a, evalJS(`window.release()`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	t.Logf(":acked %s", tb.stored(t, b, "acked"))
	if err := chromedp.Do(b, evalJS(`window.confirm = () => true`), tap(`#findings li.failed button.discard`),
		tap(mine+`.saved button.edit`), waitText("#form-title", "Edit")); err != nil {
		t.Fatal(err)
	}
	formDone, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector("#new-finding textarea[name=what_done]").value`))
	t.Logf("tab B's form what_done: %q", formDone)
	if err := chromedp.Do(b, setField("textarea[name=what_done]", formDone+", and more from tab B"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	got, _ := tb.f.store.Finding(bg, seed.ID)
	if formDone != "Done by someone else" || !strings.Contains(got.WhatDone, "Done by someone else") {
		t.Fatalf("tab B's form opened with %q (the copy says %q); database now %q; %s", formDone, "Done by someone else", got.WhatDone, formSays(b))
	}
}

// TestAnEarlyAckOfALaterCommitIsShownOnTheConflictsCopy: B's conflict (copy v2) reaches
// B after tab A's op on v2 (v3) was acked: B's form skips tab A's op.
func TestAnEarlyAckOfALaterCommitIsShownOnTheConflictsCopy(t *testing.T) {
	tb := MustTablet(t)
	seed, mine := tb.ownFinding(t, "Shared title")
	a := tb.browser
	if err := chromedp.Do(a, onEveryPage(holdLink), chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText(mine, "Shared title")); err != nil {
		t.Fatal(err)
	}
	b := tb.secondTab(t, a, holdLink, mine, "Shared title", evalJS(`window.noEntries = true`))
	tb.retitledBySomeoneElse(t, seed, "Title P by someone else")
	if err := chromedp.Do(a, waitText(mine, "Title P by someone else"), evalJS(`window.hold = true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, evalJS(`window.hold = true`), editSavedTitle(mine, "Title Z from tab B")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := chromedp.Do(a, tap(mine+` button.edit`), waitText("#form-title", "Edit"),
		setField("textarea[name=what_done]", "Done in tab A"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	tb.mustStore(t, seed.ID, "tab A's save", func(f domain.Finding) bool { return f.WhatDone == "Done in tab A" })
	if err := chromedp.Do(a, evalJS(`window.release()`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := chromedp.Do(b, evalJS(`window.release()`), waitText("#findings li.failed", "Title Z from tab B")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	t.Logf(":acked %s", tb.stored(t, b, "acked"))
	if err := chromedp.Do(b, evalJS(`window.confirm = () => true`), tap(`#findings li.failed button.discard`),
		tap(mine+`.saved button.edit`), waitText("#form-title", "Edit")); err != nil {
		t.Fatal(err)
	}
	formDone, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector("#new-finding textarea[name=what_done]").value`))
	if formDone != "Done in tab A" {
		t.Fatalf("tab B's form opened with What was done %q, not tab A's later save", formDone)
	}
}
