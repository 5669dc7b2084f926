package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/rapporteur/rapporteur/server/domain"
)

// paste inserts text at the focused field, as a paste does.
func paste(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}

// TestALongPasteIsKeptWholeAndSaidTooLong: a text pasted over the
// server's limit is kept whole in the form (a maxlength cut it without a
// word), the page says by how much it is too long, and nothing is sent
// until it is short enough.
func TestALongPasteIsKeptWholeAndSaidTooLong(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	long := strings.Repeat("word ", 4100) // 20,500 characters
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "A long account"),
		chromedp.Focus(chromedp.CSS(`#new-finding textarea[name=what_done]`)),
		paste(long),
		waitText("#form-error", "is 20,500 characters long; at most 20,000"),
	)
	if err != nil {
		t.Fatal(err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector("textarea[name=what_done]").value.length`))
	if err != nil || n != len(long) {
		t.Fatalf("the form keeps %d of the %d characters pasted (%v)", n, len(long), err)
	}
	// Saved as it is: refused here, nothing kept to send.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#form-error", "Please shorten it")); err != nil {
		t.Fatal(err)
	}
	if q := tb.stored(t, ctx, "queue"); strings.Contains(q, "A long account") {
		t.Fatalf("a text too long was queued: %.200s", q)
	}
	// Shortened to the limit: the word goes, and the finding is saved.
	err = chromedp.Do(ctx,
		evalJS(`(() => { const a = document.querySelector("textarea[name=what_done]"); a.value = a.value.slice(0, 20000); a.dispatchEvent(new Event("input", {bubbles: true})); })()`),
		pollAcross(`document.getElementById("form-error").textContent === ""`, "the length's word to go"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#status", "every change is saved"))
	if err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "A long account")
}

// TestAReopenedPageOffersTheFormOfATabJustClosed: a tab closed by mistake
// with a finding typed in it, and the page opened again at once in a new
// tab. The text is offered there within seconds, not after 20 s of the
// closed tab's silence (an empty form and "every change is saved" the
// while, and the person typing it again).
func TestAReopenedPageOffersTheFormOfATabJustClosed(t *testing.T) {
	tb := MustTablet(t)
	a, closeA := chromedp.NewContext(tb.browser)
	err := chromedp.Do(a,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Typed before the tab was closed"),
		waitText("#status", "kept on this device"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Cancel(a); err != nil { // closed, pagehide and all
		t.Fatal(err)
	}
	closeA()
	b, closeB := chromedp.NewContext(tb.browser)
	defer closeB()
	ctx, cancel := context.WithTimeout(b, 8*time.Second)
	defer cancel()
	err = chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#findings li.failed", "Typed before the tab was closed"),
		waitText("#status", "1 change not saved"),
	)
	if err != nil {
		t.Fatalf("the form of a tab just closed, within 8 s of opening the page again: %v", err)
	}
}

// TestATabEndedWithoutAWordGetsItsFormBack: a tablet ends a sleeping
// tab's page without a pagehide (to free memory); when the person comes
// back the tab loads the page again. What was typed comes back into the
// form, not into an empty form with "every change is saved".
func TestATabEndedWithoutAWordGetsItsFormBack(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding textarea[name=what_done]`), "Typed before the tablet slept"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Asleep"),
		waitText("#status", "kept on this device"),
		// Nothing the page does as it goes reaches the storage, as when
		// the system ends it: no hand-over, no last word.
		evalJS(`Storage.prototype.setItem = function () {}; Storage.prototype.removeItem = function () {}`),
		chromedp.Reload(),
		waitText("#status", "Live"),
	)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	err = chromedp.Do(wait,
		pollAcross(`document.querySelector("#new-finding textarea[name=what_done]").value === "Typed before the tablet slept" &&
			document.querySelector("#new-finding input[name=title]").value === "Asleep"`, "the form typed before to come back"),
		waitText("#status", "the form's text is kept on this device"))
	if err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
		t.Fatalf("%v; status %q", err, status)
	}
	// Saved from there, once.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)), waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Asleep")
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#findings li.failed").length`)); err != nil || n != 0 {
		t.Errorf("%d changes listed as not saved after the form came back and was saved (%v)", n, err)
	}
}

// TestATabThatAnswersIsNotTakenForGone: a page in a hidden tab beats
// rarely (its timers are slowed), but it is there, with its form: another
// tab asks, hears it, and does not offer that form as a tab gone's.
func TestATabThatAnswersIsNotTakenForGone(t *testing.T) {
	tb := MustTablet(t)
	a, b := tb.twoTabs(t)
	err := chromedp.Do(a,
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Typed in a hidden tab"),
		waitText("#status", "kept on this device"),
		// Its timers slowed: it beats no more.
		evalJS(`window.setInterval = function () { return 0; }`),
	)
	if err != nil {
		t.Fatal(err)
	}
	tabA := tb.keptBy(t, a, "draft")
	// A's last beat made old, as 20 s of slowed timers would; B looks.
	err = chromedp.Do(b, evalJS(fmt.Sprintf(`localStorage.setItem(%q, "0"); window.dispatchEvent(new Event("focus"))`, tb.storeKey("alive:"+tabA))))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("#findings li.failed").length`)); err != nil || n != 0 {
		t.Errorf("tab B offers %d forms of tabs gone, want none: tab A is there (%v)", n, err)
	}
	if v, err := chromedp.Run(a, chromedp.Value(chromedp.CSS(`#new-finding input[name=title]`))); err != nil || v != "Typed in a hidden tab" {
		t.Errorf("tab A's form holds %q (%v)", v, err)
	}
}

// localStorageTakesNothing makes the page's localStorage refuse every
// write from then on, as a full device's (or a private window's without
// any) does.
const localStorageTakesNothing = `Storage.prototype.setItem = function (k) {
	if (this === window.localStorage) throw new DOMException("quota 0", "QuotaExceededError");
}`

// TestADeviceWhoseStorageTakesNothingStillSaves: where the device's
// storage takes nothing (full, or a private window without any), a change
// made online is sent all the same, kept by the page until saved, and the
// page says that it is not kept on the device. Refused, as before, nothing
// could ever be saved from that device.
func TestADeviceWhoseStorageTakesNothingStillSaves(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		evalJS(localStorageTakesNothing),
		typeFinding("Typed with no storage"),
		waitText("#form-error", "not kept on it: it is being sent now"),
		waitText("#findings li.saved", "Typed with no storage"),
		waitText("#status", "storage is full: changes from now on are sent but not kept on it"),
	)
	if err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
		t.Fatalf("%v; status %q", err, status)
	}
	tb.mustBeSavedOnce(t, "Typed with no storage")
}

// TestAnEditInAnotherTabIsNotOverwrittenUnseen: one person has a finding
// open for editing in two tabs (or on a tablet and a laptop). Tab A saves
// a new text; tab B, whose form still holds the old one, saves its own.
// The server takes both for one person's changes, no conflict: tab B
// shows both values instead, and saves nothing until asked again.
func TestAnEditInAnotherTabIsNotOverwrittenUnseen(t *testing.T) {
	tb := MustTablet(t)
	bg := context.Background()
	seed, mine := tb.ownFinding(t, "Shared title")
	a, b := tb.twoTabs(t)
	setWhat := func(s string) chromedp.Action[chromedp.Void] { return setField("textarea[name=what_done]", s) }
	for _, tab := range []context.Context{a, b} {
		if err := chromedp.Do(tab, waitText(mine+".saved", "Shared title"), tap(mine+`.saved button.edit`), waitText("#form-title", "Edit")); err != nil {
			t.Fatal(err)
		}
	}
	err := chromedp.Do(a, setWhat("Written in tab A"), chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#status", "every change is saved"))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, waitText(mine+".saved", "Written in tab A")); err != nil { // tab A's entry
		t.Fatal(err)
	}
	err = chromedp.Do(b, setWhat("Written in tab B"), chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#form-error", "Changed meanwhile"),
		waitText(`#new-finding .theirs[data-field=what_done]`, "Written in tab A"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tb.f.store.Finding(bg, seed.ID); err != nil || got.WhatDone != "Written in tab A" {
		t.Fatalf("what was done: %q (%v), want tab A's kept", got.WhatDone, err)
	}
	// Saved again, knowingly: tab B's text.
	err = chromedp.Do(b, chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)), waitText("#status", "every change is saved"), waitNone("#new-finding .theirs"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tb.f.store.Finding(bg, seed.ID); err != nil || got.WhatDone != "Written in tab B" {
		t.Fatalf("saved again: what was done %q (%v), want tab B's", got.WhatDone, err)
	}
}

// TestReleasedKeyMessagesAreReadOnlyForTheRapporteur: once the workshop
// is released its key messages are public, and the server takes a change
// of them from an organizer only. The rapporteur's page shows them read
// only, and says why, instead of a box whose every save is refused; an
// organizer's page still writes them.
func TestReleasedKeyMessagesAreReadOnlyForTheRapporteur(t *testing.T) {
	for _, role := range []string{domain.RoleRapporteur, domain.RoleOrganizer} {
		t.Run(role, func(t *testing.T) {
			tb := mustTabletAs(t, nil, role)
			bg := context.Background()
			if _, err := tb.f.store.SetKeyMessages(bg, nil, tb.w.ID, "km-before", 0, "Reviewed key messages"); err != nil {
				t.Fatal(err)
			}
			if _, err := tb.f.store.DB().ExecContext(bg, "UPDATE workshops SET release_state = 'released' WHERE id = ?", tb.w.ID); err != nil {
				t.Fatal(err)
			}
			ctx := tb.browser
			if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#km-shown", "Reviewed key messages")); err != nil {
				t.Fatal(err)
			}
			locked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const f = document.getElementById("km-form");
				return !f.hidden && f.elements.text.readOnly && f.querySelector("button[type=submit]").disabled; })()`))
			if err != nil {
				t.Fatal(err)
			}
			if role == domain.RoleRapporteur {
				if !locked {
					t.Fatal("a rapporteur on a released workshop is offered the key messages to write")
				}
				if err := chromedp.Do(ctx, waitText("#km-state", "only an organizer can change the key messages now")); err != nil {
					t.Fatal(err)
				}
				return
			}
			if locked {
				t.Fatal("an organizer on a released workshop is not offered the key messages to write")
			}
			err = chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.CSS(`#km-form textarea`), " Corrected."),
				tap(`#km-form button[type=submit]`),
				waitText("#km-state", "Saved"),
				waitText("#status", "every change is saved"))
			if err != nil {
				t.Fatal(err)
			}
			if w, err := tb.f.store.Workshop(bg, tb.w.ID); err != nil || w.KeyMessages != "Reviewed key messages Corrected." {
				t.Fatalf("key messages after the organizer's save: %q (%v)", w.KeyMessages, err)
			}
		})
	}
}

// TestKeyMessagesTypedBeforeTheReleaseAreNotPromisedASave: the
// rapporteur types key messages (kept on the device, not saved yet); the
// organizers release the workshop; the page is loaded again. The box is
// read only and Save disabled now: the status line does not go on saying
// the text is kept "until you save them", and the text can be let go of.
func TestKeyMessagesTypedBeforeTheReleaseAreNotPromisedASave(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	ctx := tb.browser
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`#km-form textarea`), "Typed before the release"),
		waitText("#status", "key messages typed are kept on this device")); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.f.store.DB().ExecContext(context.Background(), "UPDATE workshops SET release_state = 'released' WHERE id = ?", tb.w.ID); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Reload(), waitText("#status", "Live"), waitText("#km-state", "only an organizer can change")); err != nil {
		t.Fatal(err)
	}
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
	state, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#km-state")))
	disabled, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#km-form button[type=submit]").disabled`))
	hasDiscard, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`Array.from(document.querySelectorAll("#key-section button")).some(b => /discard/i.test(b.textContent))`))
	if !disabled || strings.Contains(status, "until you save them") || !hasDiscard {
		t.Fatalf("status %q, key messages %q: save disabled %v, a discard offered %v", status, state, disabled, hasDiscard)
	}
	err := chromedp.Do(ctx, evalJS(`window.confirm = () => true`), tap(`#km-discard`),
		pollAcross(`document.querySelector("#km-form textarea").value === ""`, "the box to show the group's (none)"),
		waitNone(`#km-discard:not([hidden])`))
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status"))); strings.Contains(status, "key messages typed") {
		t.Fatalf("after the discard the status says %q", status)
	}
	if s := tb.stored(t, ctx, "km:"); s != "" {
		t.Logf("kept: %q", s)
	}
}

// TestAPageWhoseTextIsNotKeptAsksBeforeItCloses: where the device's
// storage takes nothing, the text typed in the form is not kept on the
// device, and the page says it may be lost if the page closes. The
// browser then asks before the page goes; with the text kept on the
// device, it does not.
func TestAPageWhoseTextIsNotKeptAsksBeforeItCloses(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	dialogs := make(chan string, 4)
	opening := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range opening {
			if err != nil {
				return
			}
			dialogs <- string(ev.Type)
			// Leave the page all the same, from another goroutine than the
			// one that receives the events.
			go chromedp.Run(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
				return err
			}))
		}
	}()
	typed := func() chromedp.Action[chromedp.Void] {
		// Typed: the browser asks only of a page the person has used.
		return chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Typed, not saved")
	}
	// Kept on the device: the page goes without a question.
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		typed(),
		waitText("#status", "the form's text is kept on this device until you save it"),
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
	)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-dialogs:
		t.Fatalf("a %s dialog, with the form's text kept on the device", d)
	default:
	}
	// Not kept: the browser asks.
	err = chromedp.Do(ctx,
		evalJS(localStorageTakesNothing),
		setField("input[name=title]", "Typed where nothing is kept"),
		waitText("#status", "may be lost if the page closes"),
	)
	if err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
		t.Fatalf("%v; status %q", err, status)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-dialogs:
		if d != "beforeunload" {
			t.Fatalf("a %s dialog, want beforeunload", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the page went without asking, its form's text not kept on the device")
	}
}
