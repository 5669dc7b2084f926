package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

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
	err := chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		waitText(item+".saved", "Start title"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err = chromedp.Do(tb.browser,
		waitText("#status", "Offline"),
		tap(item+" button.edit"),
		waitText("#form-title", "Edit"),
		setField("input[name=title]", "Typed on the tablet offline"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#status", "kept on this device"),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The laptop: the same person, another browser.
	if _, err := st.UpdateFinding(store.WithClient(ctx, "the laptop's browser"), &tb.person.ID, tb.w.ID, "laptop title", f.ID, f.Version,
		map[string]json.RawMessage{"title": json.RawMessage(`"Written on the laptop"`)}); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	err = chromedp.Do(tb.browser,
		waitText("#findings li.failed", "Not saved: You (on another device or browser) changed the title since version"),
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
