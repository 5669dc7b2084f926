package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// One person on two devices: their tablet, offline, keeps an edit of a
// finding's title; meanwhile they change the title on their laptop. Back
// online, the tablet's edit is not saved over the laptop's title: the page
// names its browser in its ops, so the server takes the laptop's change
// for one the tablet has not seen. The tablet says so, and the person's
// text stays on it, to be edited again.
func TestATabletBehindDoesNotSaveOverItsPersonsNewerText(t *testing.T) {
	tb := MustTablet(t)
	ctx, st := context.Background(), tb.f.store
	f, item := tb.ownFinding(t, "Start title")
	tb.editOffline(t, item, editTitle(item, "Typed on the tablet offline"))
	// The laptop: the same person, another browser.
	if _, err := st.UpdateFinding(store.WithClient(ctx, "the laptop's browser"), &tb.person.ID, tb.w.ID, "laptop title", f.ID, f.Version,
		map[string]json.RawMessage{"title": json.RawMessage(`"Written on the laptop"`)}); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	err := chromedp.Do(tb.browser,
		waitText("#findings li.failed", "Not saved: You (on another device or browser) changed the title since version"),
		waitText("#findings li.failed .conflict", "changed meanwhile, by you on another device or browser"),
		waitText(item+".saved", "Written on the laptop"),
	)
	if err != nil {
		status, _ := chromedp.Run(tb.browser, chromedp.Text(chromedp.CSS("#status")))
		got, _ := st.Finding(ctx, f.ID)
		t.Fatalf("%v; status %q; title saved %q", err, status, got.Title)
	}
	if got, err := st.Finding(ctx, f.ID); err != nil || got.Title != "Written on the laptop" {
		t.Fatalf("title %q (%v), want the laptop's", got.Title, err)
	}
	// The tablet's text is not lost: Edit again brings it back beside the
	// laptop's.
	err = chromedp.Do(tb.browser,
		tap(`#findings li.failed button.edit`),
		waitText("#form-title", "Edit"),
	)
	if err != nil {
		t.Fatal(err)
	}
	v, err := chromedp.Run(tb.browser, chromedp.Value(chromedp.CSS(`#new-finding input[name=title]`)))
	if err != nil || !strings.Contains(v, "Typed on the tablet offline") {
		t.Fatalf("the form after Edit again holds %q (%v), want the tablet's text; %s", v, err, formSays(tb.browser))
	}
}

// TestAConflictSaysWhoChangedEachField: the tablet, offline, edits the
// title and the results. Meanwhile the same person changes the title on
// their laptop, and someone else changes the results. Back online, the
// refusal names each field's changer: the person for the title, someone
// else for the results.
func TestAConflictSaysWhoChangedEachField(t *testing.T) {
	tb := MustTablet(t)
	ctx, st := context.Background(), tb.f.store
	f, item := tb.ownFinding(t, "Start title")
	other := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	tb.editOffline(t, item, chromedp.Steps(
		tap(item+" button.edit"),
		waitText("#form-title", "Edit"),
		setField("input[name=title]", "Title typed on the tablet"),
		setField("textarea[name=results]", "Results typed on the tablet"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
	))
	if _, err := st.UpdateFinding(store.WithClient(ctx, "the laptop's browser"), &tb.person.ID, tb.w.ID, "laptop title", f.ID, f.Version,
		map[string]json.RawMessage{"title": json.RawMessage(`"Title written on the laptop"`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateFinding(ctx, &other.id, tb.w.ID, "other's results", f.ID, f.Version+1,
		map[string]json.RawMessage{"results": json.RawMessage(`"Results of someone else"`)}); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	err := chromedp.Do(tb.browser,
		waitText("#findings li.failed", "Not saved: Someone else changed the results, and you (on another device or browser) the title, since version"),
		waitText(item+".saved", "Title written on the laptop"),
	)
	if err != nil {
		got, _ := st.Finding(ctx, f.ID)
		t.Fatalf("%v; saved: title %q, results %q", err, got.Title, got.Results)
	}
	said, err := chromedp.Run(tb.browser, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#findings li.failed .conflict strong")].map(e => e.textContent)`))
	want := []string{"Title was changed meanwhile, by you on another device or browser.", "Results or evidence was changed meanwhile by someone else."}
	slices.Sort(said)
	slices.Sort(want)
	if err != nil || !slices.Equal(said, want) {
		t.Fatalf("the conflict's fields say %q (%v), want %q", said, err, want)
	}
}

// TestOwnEditsConflictNotWhenTheNameWasNotKeptAtFirst: a device whose
// storage is full when it first opens the page (copies of other rooms kept
// on it) cannot keep the browser's name at once; the page's first save
// frees space. Offline, the person edits a title, reloads, and edits the
// same title again. Back online both apply, in order: one person in one
// browser, who had seen the first edit, is no conflict with it.
func TestOwnEditsConflictNotWhenTheNameWasNotKeptAtFirst(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	f, item := tb.ownFinding(t, "Start title")
	// Fill the origin's localStorage with this person's copies of other rooms.
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`(() => {
		let i = 0, size = 1 << 20;
		while (size >= 1) {
			try { localStorage.setItem("rapporteur:%d:workshop:" + (900000 + i) + ":state2", "x".repeat(size)); i++; }
			catch (e) { size = Math.floor(size / 2); }
		}
		return i;
	})()`, tb.person.ID)))
	if err != nil || n == 0 {
		t.Fatalf("fill the storage: %d keys (%v)", n, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		waitText(item+".saved", "Start title"),
	)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("rapporteur:client") || ""`))
	t.Logf("client kept after the first load: %q", first)
	mustKeepPage(t, ctx)
	tb.f.srv.Stop(t)
	err = chromedp.Do(ctx,
		waitText("#status", "Offline"),
		editTitle(item, "First offline edit"),
		waitText("#status", "kept on this device"),
		chromedp.Reload(),
		waitText("#status", "Offline"),
		waitText(item, "First offline edit"),
	)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("rapporteur:client") || ""`))
	queue, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`localStorage.getItem(%q) || ""`, tb.storeKey("queue"))))
	t.Logf("client kept after the reload: %q; queue: %s", second, queue)
	tb.mustSaveAnotherEditOffline(t, f.ID, item, "Second offline edit")
}

// TestAnOpKeptByTheOlderPageIsThisBrowsers: across the upgrade, a tablet
// offline keeps an edit typed on the page of the older version (its kept
// op names no client). The page of the new version (reloaded, offline)
// lets the person edit the same title again, based on the server's
// version. Back online, both apply, in order: the kept op is sent with
// this browser's name, and the next edit is no conflict with it.
func TestAnOpKeptByTheOlderPageIsThisBrowsers(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	f, item := tb.ownFinding(t, "Start title")
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		waitText(item+".saved", "Start title"),
	)
	if err != nil {
		t.Fatal(err)
	}
	mustKeepPage(t, ctx)
	tb.f.srv.Stop(t)
	err = chromedp.Do(ctx,
		waitText("#status", "Offline"),
		editTitle(item, "Typed on the older page"),
		waitText("#status", "kept on this device"),
		// The queue as the page of the older version kept it: no client.
		// (Done as the next page starts: this page writes its lists back as it goes.)
		onEveryPage(fmt.Sprintf(`(() => { const k = %q; const v = localStorage.getItem(k); if (!v) return; const q = JSON.parse(v); q.forEach(op => delete op.client); localStorage.setItem(k, JSON.stringify(q)); })()`, tb.storeKey("queue"))),
		chromedp.Reload(),
		waitText("#status", "Offline"),
		waitText(item, "Typed on the older page"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.mustSaveAnotherEditOffline(t, f.ID, item, "Typed on the new page")
}

// mustSaveAnotherEditOffline edits the title of finding id (its item's
// selector item) to title on the tablet, offline, then starts the server
// again: the edit must be saved, and nothing refused.
func (tb *tablet) mustSaveAnotherEditOffline(t *testing.T, id int64, item, title string) {
	t.Helper()
	ctx := tb.browser
	err := chromedp.Do(ctx,
		editTitle(item, title),
		waitText("#status", "kept on this device"),
	)
	if err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = chromedp.Do(wait, pollAcross(`document.getElementById("status").textContent.includes("every change is saved") ||
		document.querySelectorAll("#findings li.failed").length > 0`, "the queue settled"))
	if err != nil {
		t.Fatal(err)
	}
	failed, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#findings li.failed")).map(e => e.textContent).join(" | ")`))
	got, _ := tb.f.store.Finding(context.Background(), id)
	if failed != "" || got.Title != title {
		t.Fatalf("the person's next edit in the same browser: title saved %q; refused: %q", got.Title, failed)
	}
}

// TestANameTheServerWouldRefuseIsNotKept: a name kept on the device that
// is not one the page makes (another program's, or one changed by hand)
// would get every op refused as bad_frame: the page makes a new one.
func TestANameTheServerWouldRefuseIsNotKept(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		evalJS(`localStorage.setItem("rapporteur:client", "x".repeat(100))`),
		chromedp.Reload(),
		waitText("#status", "Live"),
		typeFinding("Saved with a bad name kept"),
		waitText("#findings li.saved", "Saved with a bad name kept"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
		t.Fatalf("%v; status %q", err, status)
	}
	tb.mustBeSavedOnce(t, "Saved with a bad name kept")
	if name, err := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("rapporteur:client")`)); err != nil || len(name) != 32 {
		t.Fatalf("the name kept now: %q (%v), want one the page made", name, err)
	}
}

// editOffline opens the page with the finding at item saved as "Start
// title", takes the server down, and makes edit offline, which the page
// keeps on the device.
func (tb *tablet) editOffline(t *testing.T, item string, edit chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		waitText(item+".saved", "Start title"),
	); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	if err := chromedp.Do(tb.browser,
		waitText("#status", "Offline"),
		edit,
		waitText("#status", "kept on this device"),
	); err != nil {
		t.Fatal(err)
	}
}

// editTitle edits the title of the finding whose item is item to title,
// and saves it.
func editTitle(item, title string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		tap(item+" button.edit"),
		waitText("#form-title", "Edit"),
		setField("input[name=title]", title),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)))
}
