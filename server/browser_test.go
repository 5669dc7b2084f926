package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
	"github.com/rapporteur/rapporteur/web"
)

// MustBrowser starts headless Chromium for tb. Without Chromium the test
// is skipped on a developer's machine and fails in CI, which installs it.
func MustBrowser(tb testing.TB) context.Context {
	tb.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("Chromium is not installed; .ci/run should have installed it")
		}
		tb.Skip("Chromium is not installed (apt-get install chromium)")
	}
	// A start is tried three times: Chromium now and then dies as it
	// starts on a loaded machine ("Zygote could not fork"), which says
	// nothing of the page under test.
	var err error
	for range 3 {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
			chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(tb.TempDir()))
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		if err = chromedp.Do(ctx); err == nil {
			tb.Cleanup(func() { cancel(); cancelAlloc() })
			return ctx
		}
		cancel()
		cancelAlloc()
		tb.Logf("start Chromium: %v; trying again", err)
	}
	tb.Fatalf("start Chromium: %v", err)
	return nil
}

// waitText waits until an element matching the CSS selector sel contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return pollAcross(fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).some(e => e.textContent.includes(%q))`, sel, want),
		fmt.Sprintf("%q in %s", want, sel))
}

// pollAcross polls js until it is true. A poll started while a page
// replaces another (a new tab's first page, a form's answer) can find its
// JavaScript context gone; it then starts again in the new page's.
func pollAcross(js, what string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			_, err := chromedp.Poll[bool](js)(ctx, t)
			if err != nil && (strings.Contains(err.Error(), "Cannot find context with specified id") || strings.Contains(err.Error(), "Inspected target navigated")) && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
			return nil
		}
	})
}

// tablet is a signed-in participant's browser on a workshop page, with a
// server it can stop and start again on the same address.
type tablet struct {
	f       *fixture
	env     map[string]string
	browser context.Context
	page    string
	person  domain.Person
	w       domain.Workshop
}

// MustTablet starts a server and Chromium, and signs a participant of the
// first workshop in through a personal link (as when scanning the QR code).
func MustTablet(t *testing.T) *tablet { return MustTabletWith(t, nil) }

// MustTabletWith is MustTablet with the server's environment added to.
func MustTabletWith(t *testing.T, extra map[string]string) *tablet {
	return mustTabletAs(t, extra, domain.RoleParticipant)
}

// mustTabletAs is MustTabletWith for a person of role in the workshop.
func mustTabletAs(t *testing.T, extra map[string]string, role string) *tablet {
	browser := MustBrowser(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	env := map[string]string{"DATABASE_URL": pg.NewDB(t), "ADDR": addr, "BASE_URL": "http://" + addr}
	maps.Copy(env, extra)
	f := MustFixture(t, env)
	w := f.ws[0]
	p, token := mustInvite(t, f.store, f.event.ID, store.PersonInput{Name: "Tablet user", Country: "FI", ActorType: "police"}, role, w.ID)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	t.Cleanup(cancel)
	tb := &tablet{f: f, env: env, browser: ctx, page: fmt.Sprintf("%s/events/%s/workshops/%d", f.srv.URL, f.event.Slug, w.ID), person: p, w: w}
	if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/signin/"+token)); err != nil {
		t.Fatal(err)
	}
	return tb
}

// twoTabs opens the workshop page in the tablet's tab and in a second tab
// of the same browser (one device), each live.
func (tb *tablet) twoTabs(t *testing.T) (a, b context.Context) {
	t.Helper()
	a = tb.browser
	b, closeB := chromedp.NewContext(a)
	t.Cleanup(closeB)
	for _, tab := range []context.Context{a, b} {
		if err := chromedp.Do(tab, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

// demoFinding is the first of the demo's findings in the tablet's
// workshop, and the selector of its item in the page's list.
func (tb *tablet) demoFinding(t *testing.T) (domain.Finding, string) {
	t.Helper()
	fs, err := tb.f.store.WorkshopFindings(context.Background(), tb.w.ID)
	if err != nil || len(fs) == 0 {
		t.Fatalf("demo findings: %v, %d", err, len(fs))
	}
	return fs[0], fmt.Sprintf(`#findings li[data-id="%d"]`, fs[0].ID)
}

// openWithSaved opens the workshop page and saves a finding with title.
func (tb *tablet) openWithSaved(t *testing.T, title string) {
	t.Helper()
	err := chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		typeFinding(title),
		waitText("#findings li.saved", title),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// storeKey is the device's storage key of the page's key (queue, failed, state2).
func (tb *tablet) storeKey(key string) string {
	return fmt.Sprintf("rapporteur:%d:%s:%s", tb.person.ID, store.WorkshopRoom(tb.w.ID), key)
}

// stored is what the page keeps on the device under key (queue, failed, state).
func (tb *tablet) stored(t *testing.T, ctx context.Context, key string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`localStorage.getItem(%q) || ""`, tb.storeKey(key))))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// keptBy returns the id of the one tab whose kind of text ("draft", the
// finding form; "km", the key messages) the device keeps for the room,
// as ctx's page sees it.
func (tb *tablet) keptBy(t *testing.T, ctx context.Context, kind string) string {
	t.Helper()
	prefix := tb.storeKey(kind + ":")
	tab, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`Object.keys(localStorage).filter(k => k.startsWith(%q)).map(k => k.slice(%d)).join(" ")`, prefix, len(prefix))))
	if err != nil || tab == "" || strings.Contains(tab, " ") {
		t.Fatalf("the tab whose %s the device keeps: %q (%v), want one", kind, tab, err)
	}
	return tab
}

// mustBeSavedOnce fails unless exactly one finding titled title is in the database.
func (tb *tablet) mustBeSavedOnce(t *testing.T, title string) {
	t.Helper()
	if n := tb.findings(t, title); n != 1 {
		t.Fatalf("%q saved %d times, want once", title, n)
	}
}

// findings counts the findings titled title in the database.
func (tb *tablet) findings(t *testing.T, title string) int {
	t.Helper()
	var n int
	if err := tb.f.store.DB().NewRaw("SELECT count(*) FROM findings WHERE title = ?", title).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// typeFinding fills in a finding's title and submits the form.
func typeFinding(title string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), title),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)))
}

// TestTabletKeepsUnsavedFindingsAndResendsThem drives the workshop page
// in Chromium: a finding saved live, another typed while the server is
// down (kept on the device and shown as not saved), then resent by itself
// after the server is back, and saved exactly once.
func TestTabletKeepsUnsavedFindingsAndResendsThem(t *testing.T) {
	tb := MustTablet(t)
	f, w, ctx := tb.f, tb.w, tb.browser
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), "Saved while online"),
		chromedp.Click(chromedp.CSS(`input[name=countries][value=FI]`)),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.saved:last-child", "Saved while online"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}

	// Someone else in the room adds a finding: it appears live.
	other := f.MustMember(t, domain.RoleParticipant, &w, "SE", "ngo").Dial(t, f.srv.URL)
	room := store.WorkshopRoom(w.ID)
	other.join(t, room, 0)
	other.send(t, op(room, "next-door", "finding.create", 0, map[string]any{"title": "From the tablet next door"}))
	if err := chromedp.Do(ctx, waitText("#findings", "From the tablet next door")); err != nil {
		t.Fatal(err)
	}

	// The server goes away; what is typed now stays on the device.
	f.srv.Stop(t)
	err = chromedp.Do(ctx,
		waitText("#status", "Offline"),
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), "Typed while offline"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.pending", "Typed while offline"),
		waitText("#findings li.pending", "not saved yet"),
		waitText("#status", "kept on this device"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if stored := tb.stored(t, ctx, "queue"); !strings.Contains(stored, "Typed while offline") {
		t.Fatalf("the unsaved finding is not in the device's storage: %s", stored)
	}

	// The server is back: the page reconnects by itself and resends.
	MustStart(t, tb.env)
	err = chromedp.Do(ctx,
		waitText("#status", "every change is saved"),
		waitText("#findings li.saved", "Typed while offline"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Typed while offline")
	pending, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#findings li.pending").length`))
	if err != nil {
		t.Fatal(err)
	}
	if pending != 0 {
		t.Fatalf("%d findings still shown as not saved", pending)
	}
	if path := os.Getenv("RAPPORTEUR_SCREENSHOT"); path != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(path, png, 0o644)
		}
	}
}

// tap clicks the first element matching sel once there is one, in one
// step in the page: the list is drawn anew on every message the page
// gets, so a node found first and clicked after may be gone.
func tap(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, sel)
		if _, err := chromedp.Poll[bool](js)(ctx, t); err != nil {
			return fmt.Errorf("tap %s: %w", sel, err)
		}
		return nil
	})
}

// evalJS runs js in the page, for a test's setup.
func evalJS(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](js+"; true")(ctx, t)
		return err
	})
}

// onEveryPage runs js in every page the tab loads from now on, before the
// page's own scripts, for a test's setup.
func onEveryPage(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return err
	})
}

// waitNone waits until no element matches the CSS selector sel.
func waitNone(sel string) chromedp.Action[chromedp.Void] {
	return pollAcross(fmt.Sprintf(`document.querySelectorAll(%q).length === 0`, sel), "no "+sel)
}

// addGoneCountry adds a country the event's taxonomy does not have to the
// form, checked: a finding with it is refused.
var addGoneCountry = evalJS(`document.querySelector("fieldset.terms").insertAdjacentHTML("beforeend",
		'<label class="chip"><input type="checkbox" name="countries" value="XX"> Gone</label>');
		document.querySelector("input[value=XX]").checked = true`)

// TestTabletKeepsWhatTheServerRefuses: a finding the server refuses (here
// a country the event's taxonomy no longer has) stays on the device, shown
// as not saved with the reason, across a reload, and the status says so;
// "Edit again" brings it back into the form, and saved from there it is
// saved once. A finding too big for one frame is not sent at all: the form
// keeps it and says why, and later findings still go through.
func TestTabletKeepsWhatTheServerRefuses(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		addGoneCountry,
		typeFinding("Refused for its country"),
		waitText("#findings li.failed", "Not saved: Unknown country term"),
		waitText("#status", "1 change not saved"),
		chromedp.Reload(),
		waitText("#status", "Live"),
		waitText("#findings li.failed", "Refused for its country"),
		waitText("#status", "1 change not saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if s := tb.stored(t, ctx, "failed"); !strings.Contains(s, "Refused for its country") {
		t.Fatalf("the refused finding is not kept on the device: %q", s)
	}
	// The country the taxonomy lacks comes back into the form as a box of
	// its own, checked: the person sees it and takes it out.
	err = chromedp.Do(ctx,
		tap(`#findings li.failed button.edit`),
		waitText("#new-finding label.chip.extra", "XX (not in the list)"),
		chromedp.Click(chromedp.CSS(`#new-finding input[name=countries][value=XX]`)),
		chromedp.Click(chromedp.CSS(`input[name=countries][value=SE]`)),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.saved", "Refused for its country"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Refused for its country")
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#findings li.failed").length`)); err != nil || n != 0 {
		t.Fatalf("%d findings still shown as refused (%v)", n, err)
	}

	// Each field within its 20,000 characters (TestALongPasteIsKeptWholeAndSaidTooLong),
	// but 120,000 bytes in all: over one frame.
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`textarea[name=what_done]`), strings.Repeat("ä", 20000)),
		chromedp.SetValue(chromedp.CSS(`textarea[name=results]`), strings.Repeat("ö", 20000)),
		chromedp.SetValue(chromedp.CSS(`textarea[name=transferability]`), strings.Repeat("å", 20000)),
		typeFinding("Far too long"),
		waitText("#form-error", "Too long to send"),
	)
	if err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name=title]`)))
	if err != nil || title != "Far too long" {
		t.Fatalf("the form lost the text it could not send: title %q (%v)", title, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`textarea[name=what_done]`), "Short now."),
		evalJS(`document.querySelector("textarea[name=results]").value = ""; document.querySelector("textarea[name=transferability]").value = ""`),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.saved", "Far too long"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// TestTabletSetsAsideAChangeTheServerKeepsFailing: the server fails on
// one finding every time (a fault of that finding, here a trigger), and
// is otherwise working. It holds the tablet's later changes back until
// that one is saved; after three failures the page sets it aside as not
// saved, kept on the device, and the next finding is saved. The tablet is
// alone in its room: nothing else shows the server works but /readyz.
//
// A code the page does not know counts as internal (PROTOCOL.md): here
// the page reads the server's "internal" as a code of a later server.
func TestTabletSetsAsideAChangeTheServerKeepsFailing(t *testing.T) {
	t.Run("internal", func(t *testing.T) { testSetsAside(t, "") })
	t.Run("unknown code", func(t *testing.T) {
		testSetsAside(t, `const data = Object.getOwnPropertyDescriptor(MessageEvent.prototype, "data");
			Object.defineProperty(MessageEvent.prototype, "data", { configurable: true, get() {
				const v = data.get.call(this);
				return typeof v === "string" ? v.replaceAll('"code":"internal"', '"code":"not_known_yet"') : v;
			} })`)
	})
}

// testSetsAside runs TestTabletSetsAsideAChangeTheServerKeepsFailing
// with js run in the page first.
func testSetsAside(t *testing.T, js string) {
	tb := MustTablet(t)
	ctx := tb.browser
	tb.failCreating(t, "Fails every time")
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		evalJS(js),
		typeFinding("Fails every time"),
		typeFinding("Saved after it"),
		waitText("#findings li.failed", "Not saved: The server failed on this change three times while it was otherwise working"),
		waitText("#findings li.saved", "Saved after it"),
		waitText("#status", "1 change not saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Saved after it")
	if s := tb.stored(t, ctx, "failed"); !strings.Contains(s, "Fails every time") {
		t.Fatalf("the finding set aside is not kept on the device: %q", s)
	}
	if n := tb.findings(t, "Fails every time"); n != 0 {
		t.Fatalf("%d findings saved with the failing title", n)
	}
}

// failCreating makes the database fail every insert of a finding titled
// title, as a bug set off by its content would; drop ends that.
func (tb *tablet) failCreating(t *testing.T, title string) (drop func()) {
	t.Helper()
	db, bg := tb.f.store.DB(), context.Background()
	for _, q := range []string{
		`CREATE FUNCTION test_fail_finding() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.title = ` + "'" + strings.ReplaceAll(title, "'", "''") + "'" + ` THEN RAISE EXCEPTION 'test: this finding fails'; END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER test_fail_finding BEFORE INSERT ON findings FOR EACH ROW EXECUTE FUNCTION test_fail_finding()`,
	} {
		if _, err := db.ExecContext(bg, q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		if _, err := db.ExecContext(bg, `DROP TRIGGER test_fail_finding ON findings`); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTabletSetsNothingAsideInAnOutage: a change fails as internal while
// /readyz says the server is not working either (an outage, here faked in
// the page). Those failures are the server's, not the change's: it is not
// set aside however often it fails, and it is saved once the server works.
func TestTabletSetsNothingAsideInAnOutage(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	drop := tb.failCreating(t, "Fails in the outage")
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		evalJS(`window.readyzDown = true; window.readyzAsked = 0;
			const realFetch = window.fetch;
			window.fetch = function (url, opts) {
				if (String(url).includes("/readyz") && window.readyzDown) {
					window.readyzAsked++;
					return Promise.resolve(new Response("database down", { status: 503 }));
				}
				return realFetch.call(this, url, opts);
			};`),
		typeFinding("Fails in the outage"),
		typeFinding("Saved after it"),
		pollAcross(`window.readyzAsked >= 3`, "three failures blamed on the server"),
		chromedp.Sleep(300*time.Millisecond), // the page acts on the last answer
	)
	if err != nil {
		t.Fatal(err)
	}
	if aside, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#findings li.failed").length`)); err != nil || aside != 0 {
		t.Fatalf("%d changes set aside in an outage (%v), want none", aside, err)
	}
	drop()
	err = chromedp.Do(ctx,
		evalJS(`window.readyzDown = false`),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Fails in the outage")
	tb.mustBeSavedOnce(t, "Saved after it")
}

// TestTabletSeesWhoIsHereOnAnotherProcess: the tablet's page lists a
// person whose device is connected to another server process of the same
// database, and drops them when they leave.
func TestTabletSeesWhoIsHereOnAnotherProcess(t *testing.T) {
	tb := MustTablet(t)
	other := MustStart(t, map[string]string{"DATABASE_URL": tb.env["DATABASE_URL"], "NO_DEMO": "1"})
	m := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live"))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Dial(t, other.URL)
	c.join(t, store.WorkshopRoom(tb.w.ID), 0)
	err = chromedp.Do(tb.browser, waitText("#presence", "Also here: "+m.name))
	if err != nil {
		t.Fatal(err)
	}
	c.ws.Close()
	err = chromedp.Do(tb.browser, pollAcross(fmt.Sprintf(`!document.querySelector("#presence").textContent.includes(%q)`, m.name), m.name+" gone from the page"))
	if err != nil {
		t.Fatal(err)
	}
}

// TestTabletSendsAtOnceOnANewConnection: the server refuses the page's
// ops for their rate and asks it to wait 20 s; the connection drops
// meanwhile. The new connection has a rate of its own: the page sends at
// once, not after a wait that was the old connection's (it used to wait
// forever).
func TestTabletSendsAtOnceOnANewConnection(t *testing.T) {
	tb := MustTabletWith(t, map[string]string{"HUB_OPS_PER_SECOND": "0.05"}) // after a burst of 100, an op every 20 s
	ctx := tb.browser
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		evalJS(`for (let i = 0; i < 110; i++) {
			document.querySelector("#new-finding input[name=title]").value = "Bulk " + i;
			document.querySelector("#new-finding button[type=submit]").click();
		}`),
		pollAcross(`document.querySelectorAll("#findings li.saved").length >= 95 && document.querySelectorAll("#findings li.pending").length > 0`,
			"the rate to hold the last ops back"),
	)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the page waits for the rate now
	tb.f.srv.Stop(t)
	MustStart(t, tb.env)
	wait, cancel := context.WithTimeout(ctx, 15*time.Second) // well before the old wait would end
	defer cancel()
	if err := chromedp.Do(wait, waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tb.f.store.DB().NewRaw("SELECT count(DISTINCT title) FROM findings WHERE title LIKE 'Bulk %'").Scan(context.Background(), &n); err != nil || n != 110 {
		t.Fatalf("%d of the 110 findings saved (%v)", n, err)
	}
}

// TestTabletPacesItsOpsAfterARateLimit: the person saves more findings at
// once than the server's rate allows (a burst of 100, then 5 a second).
// Once refused for the rate, the page sends the rest no faster than the
// rate allows, as PROTOCOL.md asks, and each is saved once. (It sent all
// it had in flight again at each wait, and the server refused all but the
// first again: about 15 refusals per op saved. Held-back ops are refused
// with the same code, and took the pace for their own.)
func TestTabletPacesItsOpsAfterARateLimit(t *testing.T) {
	tb := MustTabletWith(t, map[string]string{"HUB_OPS_PER_SECOND": "5"})
	ctx := tb.browser
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		evalJS(`window.refused = 0;
		const data = Object.getOwnPropertyDescriptor(MessageEvent.prototype, "data");
		Object.defineProperty(MessageEvent.prototype, "data", { configurable: true, get() {
			const v = data.get.call(this);
			if (typeof v === "string") v.split("\n").forEach(l => {
				if (!l.includes('"type":"error"') || !l.includes('"code":"rate_limited"')) return;
				if (window.refused++ === 0) window.pendingThen = document.querySelectorAll("#findings li.pending").length;
			});
			return v;
		} })`),
		evalJS(`for (let i = 0; i < 160; i++) {
			document.querySelector("#new-finding input[name=title]").value = "Paced " + i;
			document.querySelector("#new-finding button[type=submit]").click();
		}`),
	)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, waitText("#status", "every change is saved")); err != nil {
		dbg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`window.refused + " refused; " + document.querySelectorAll("#findings li.pending").length + " pending; " + document.getElementById("status").textContent`))
		t.Fatal(err, dbg)
	}
	var n, rows int
	if err := tb.f.store.DB().NewRaw("SELECT count(DISTINCT title), count(*) FROM findings WHERE title LIKE 'Paced %'").Scan(context.Background(), &n, &rows); err != nil || n != 160 || rows != 160 {
		t.Fatalf("%d of the 160 findings saved, in %d rows (%v)", n, rows, err)
	}
	type counts struct{ Refused, PendingThen int }
	got, err := chromedp.Run(ctx, chromedp.Evaluate[counts](`({refused: window.refused, pendingThen: window.pendingThen || 0})`))
	if err != nil {
		t.Fatal(err)
	}
	// The first refusal comes with the ops then in flight, held back
	// behind it (at most 16 in all); paced, the rest are not refused.
	// Unpaced, each op left then was refused about ten times.
	if got.PendingThen < 30 {
		t.Skipf("%d ops were left when the rate was first spent, too few to tell: a machine too busy to spend the burst of 100 at over 5 ops a second", got.PendingThen)
	}
	if got.Refused > 32 {
		t.Errorf("%d ops refused for the rate, %d left when first refused; want at most 32 refusals", got.Refused, got.PendingThen)
	}
}

// TestTabletBacksOffAnOutageWhilePaced: the page is pacing its ops after
// a rate refusal when the server starts failing one as internal (and
// says it is not working: nothing is set aside). The page waits 2 s, then
// 4 s, before sending it again, as in any outage, not at the pace. (The
// pace's timer used to override the wait: 68 failures in 8 s.)
func TestTabletBacksOffAnOutageWhilePaced(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	tb.failCreating(t, "Fails in the outage")
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		// The first internal failure comes as a rate refusal: the page paces.
		evalJS(`window.internal = 0; window.faked = false;
			const get = window.fetch;
			window.fetch = function (u, o) {
				if (String(u).includes("/readyz")) return Promise.resolve(new Response("down", { status: 503 }));
				return get.call(this, u, o);
			};
			const data = Object.getOwnPropertyDescriptor(MessageEvent.prototype, "data");
			Object.defineProperty(MessageEvent.prototype, "data", { configurable: true, get() {
				let v = data.get.call(this);
				if (typeof v !== "string") return v;
				if (!this.counted) { this.counted = true; v.split("\n").forEach(l => { if (l.includes('"code":"internal"')) window.internal++; }); }
				if (!window.faked && v.includes('"code":"internal"')) { window.faked = true; v = v.replace('"code":"internal"', '"code":"rate_limited","detail":{"retry_after_ms":100}'); }
				return v;
			} })`),
		typeFinding("Fails in the outage"),
		typeFinding("After it 1"),
		typeFinding("After it 2"),
	)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(7 * time.Second)
	type counts struct {
		Internal int
		Faked    bool
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[counts](`({internal: window.internal, faked: window.faked})`))
	if err != nil {
		t.Fatal(err)
	}
	// Sent at 0 (the fake refusal), about 0.1, 2.1 and 6.1 s.
	if !got.Faked || got.Internal < 3 || got.Internal > 4 {
		t.Errorf("the op failed %d times in 7 s (the first shown as a rate refusal: %v); backing off 2 s, then 4 s, it fails 3 or 4 times", got.Internal, got.Faked)
	}
}

// blackHole listens at addr (where the server was) and takes every
// connection without ever answering, as a link that went dead does. taken
// tells of each; stop stops listening (the connections taken are closed
// at the test's end).
func blackHole(t *testing.T, addr string) (taken <-chan struct{}, stop func()) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 1000)
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			ch <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ch, func() { l.Close() }
}

// TestTabletGivesUpAHandshakeNoOneAnswers: while the server is away, the
// page's reconnection reaches something that takes the connection and
// never answers the upgrade (a lost reply, a link gone dead meanwhile).
// The browser would wait for it for minutes; the page gives up on it,
// connects again once the server is back, and sends what it kept.
func TestTabletGivesUpAHandshakeNoOneAnswers(t *testing.T) {
	tb := MustTablet(t)
	if err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	if err := chromedp.Do(tb.browser, waitText("#status", "Offline"), typeFinding("Past a dead handshake"), waitText("#findings li.pending", "Past a dead handshake")); err != nil {
		t.Fatal(err)
	}
	taken, stop := blackHole(t, tb.env["ADDR"])
	select {
	case <-taken:
	case <-time.After(30 * time.Second):
		t.Fatal("the page did not try to connect within 30 s")
	}
	stop()
	MustStart(t, tb.env)
	// 10 s to give up, then the backoff's wait (at most 30 s): the browser
	// alone waited for minutes.
	wait, cancel := context.WithTimeout(tb.browser, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, waitText("#status", "every change is saved"), waitText("#findings li.saved", "Past a dead handshake")); err != nil {
		t.Fatalf("the page still waits for the handshake no one answers: %v", err)
	}
	tb.mustBeSavedOnce(t, "Past a dead handshake")
}

// TestTabletJoinsOverALinkSlowerThanItsPatience: the answer to a join
// (a snapshot or catch-up on a slow link, or from a busy database) takes
// longer to come than the page first waits for it. The page gives that
// join up, and waits longer for the next: it joins and sends what was
// typed meanwhile. (It used to wait as long each time, ask for the same
// answer again for ever, and send nothing.) Once joined, it waits as long
// at once for the next join over the same link: after the server's
// restart it joins on its first connection. The page's clock runs ten
// times as fast here, so its 40 s of patience are 4 s of the test's, and
// a join's answer comes 5 s late.
func TestTabletJoinsOverALinkSlowerThanItsPatience(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	err := chromedp.Do(ctx, onEveryPage(slowJoinFastClock(10, 5000)), chromedp.Navigate(tb.page), typeFinding("Typed while the join is slow"))
	if err != nil {
		t.Fatal(err)
	}
	// Polled from here: chromedp's own polls time out by the page's clock.
	saved := func(title string) (opened int) {
		t.Helper()
		type pageState struct {
			Shown  string
			Opened int
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			got, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](`({opened: window.opened, shown: document.getElementById("status").textContent + " | " +
				Array.from(document.querySelectorAll("#findings li.saved h3"), h => h.textContent).join(" | ")})`))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got.Shown, "every change is saved") && strings.Contains(got.Shown, title) {
				tb.mustBeSavedOnce(t, title)
				return got.Opened
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page has not joined over the slow link in 30 s: %q", got.Shown)
			}
		}
	}
	// Joined on the second connection (the first given up), unless a
	// stall of the page's timers let the first answer in before its
	// watchdog looked: then the doubling was not needed this time.
	first := saved("Typed while the join is slow")
	t.Logf("joined on connection %d", first)
	tb.f.srv.Stop(t)
	MustStart(t, tb.env)
	if err := chromedp.Do(ctx, typeFinding("Typed after the restart")); err != nil {
		t.Fatal(err)
	}
	if again := saved("Typed after the restart"); again != first+1 {
		t.Errorf("after the restart, %d connections opened up to the one that joined, want 1", again-first)
	}
}

// slowJoinFastClock is a script that makes a page's clock run k times as
// fast (performance.now, setTimeout and setInterval), and hands the page
// what its WebSockets bring up to a "joined" frame delay ms (of real time)
// late, the rest as it comes, all in order: a join answered over a slow
// link. window.opened counts the connections opened.
func slowJoinFastClock(k, delay int) string {
	return fmt.Sprintf(`(() => {
  const k = %d, delay = %d, st = window.setTimeout.bind(window), si = window.setInterval.bind(window);
  const real = performance.now.bind(performance), t0 = real();
  performance.now = () => t0 + (real() - t0) * k;
  window.setTimeout = (f, ms, ...a) => st(f, (ms || 0) / k, ...a);
  window.setInterval = (f, ms, ...a) => si(f, (ms || 0) / k, ...a);
  window.opened = 0;
  const Orig = window.WebSocket;
  function W(u, p) {
    const s = p === undefined ? new Orig(u) : new Orig(u, p);
    s.addEventListener("open", () => window.opened++);
    let h = null, joined = false, q = [], timer = null;
    const due = () => {
      timer = null;
      while (q.length && q[0].at <= real()) { const e = q.shift().e; if (h) h(e); }
      if (q.length) timer = st(due, q[0].at - real());
    };
    Object.defineProperty(s, "onmessage", { configurable: true,
      get() { return h; },
      set(fn) {
        if (h === null) s.addEventListener("message", e => {
          q.push({ e, at: real() + (joined ? 0 : delay) });
          joined = joined || String(e.data).includes('"type":"joined"');
          if (!timer) timer = st(due, Math.max(0, q[0].at - real()));
        });
        h = fn;
      } });
    return s;
  }
  W.prototype = Orig.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(n => W[n] = Orig[n]);
  window.WebSocket = W;
})();`, k, delay)
}

// TestTabletTabsShareUnsentChanges: two tabs of the workshop page on one
// device, each with a finding typed while the server is down. The first
// tab is closed before the server is back; the second sends both, and
// each is saved once. (Each tab used to write its own queue over the
// other's.)
func TestTabletTabsShareUnsentChanges(t *testing.T) {
	tb := MustTablet(t)
	a, b := tb.twoTabs(t)
	tb.f.srv.Stop(t)
	if err := chromedp.Do(a, waitText("#status", "Offline"), typeFinding("From tab A"), waitText("#findings li.pending", "From tab A")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, waitText("#status", "Offline"), typeFinding("From tab B"), waitText("#findings li.pending", "From tab B")); err != nil {
		t.Fatal(err)
	}
	// Tab A's page goes away: what it typed is now only in the device's storage.
	if err := chromedp.Do(a, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	if err := chromedp.Do(b, waitText("#status", "every change is saved"),
		waitText("#findings li.saved", "From tab A"), waitText("#findings li.saved", "From tab B")); err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"From tab A", "From tab B"} {
		if n := tb.findings(t, title); n != 1 {
			t.Errorf("%q saved %d times, want once", title, n)
		}
	}
}

// TestTabletWritesBackWhatAnotherTabLeftOut: tabs write their whole
// lists, and learn of each other's writes only a moment later, so a tab
// can write lists without an op the other has just typed. The other tab
// writes it back at once: a tablet can end the page without a pagehide,
// and what is only in the page's memory goes with it.
func TestTabletWritesBackWhatAnotherTabLeftOut(t *testing.T) {
	tb := MustTablet(t)
	a, b := tb.twoTabs(t)
	tb.f.srv.Stop(t)
	if err := chromedp.Do(a, waitText("#status", "Offline"), typeFinding("Only in tab A"), waitText("#findings li.pending", "Only in tab A")); err != nil {
		t.Fatal(err)
	}
	// Tab B writes its queue as it was before it saw tab A's write.
	key := fmt.Sprintf("rapporteur:%d:%s:queue", tb.person.ID, store.WorkshopRoom(tb.w.ID))
	if err := chromedp.Do(b, evalJS(fmt.Sprintf(`localStorage.setItem(%q, "[]")`, key))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(tb.stored(t, b, "queue"), "Only in tab A") {
		if time.Now().After(deadline) {
			t.Fatalf("tab A still shows its finding as kept on this device, but the device's storage lacks it: %s", tb.stored(t, b, "queue"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Both pages go without a word: the device's storage is all there is.
	for _, tab := range []context.Context{a, b} {
		if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
			t.Fatal(err)
		}
	}
	MustStart(t, tb.env)
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "every change is saved"), waitText("#findings li.saved", "Only in tab A")); err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Only in tab A")
}

// TestTabletWritesWhatItSettledFirst: a tab writes its lists one after
// another, and another tab may read them midway (across processes). A
// reader that found an op gone from the queue but not yet among the
// settled ones would take it for one left out and write it back (see
// TestTabletWritesBackWhatAnotherTabLeftOut): a discarded change would
// come back, an applied one be sent again. So the settled ids are written
// first; here, when a refused finding is discarded.
func TestTabletWritesWhatItSettledFirst(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live"),
		addGoneCountry, typeFinding("Discarded"), waitText("#findings li.failed", "Discarded"),
		evalJS(`window.confirm = () => true; window.written = [];
			const set = Storage.prototype.setItem;
			Storage.prototype.setItem = function (k, v) { window.written.push(k.split(":").pop()); return set.call(this, k, v); }`),
		tap(`#findings li.failed button.discard`), waitNone("#findings li.failed"))
	if err != nil {
		t.Fatal(err)
	}
	written, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.written.filter(k => ["done", "queue", "failed"].includes(k)).join(" ")`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(written, "done queue failed") {
		t.Fatalf("the lists were written in the order %q, want the settled ids (done) first", written)
	}
}

// TestTabletTabsAgreeOnWhatIsSettled: a refused finding shows in both tabs
// of a device; taken back into the form in one tab, it goes from the other
// too and does not come back when either tab saves or reloads.
func TestTabletTabsAgreeOnWhatIsSettled(t *testing.T) {
	tb := MustTablet(t)
	a, b := tb.twoTabs(t)
	if err := chromedp.Do(a, addGoneCountry, typeFinding("Refused in tab A"), waitText("#findings li.failed", "Refused in tab A")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, waitText("#findings li.failed", "Refused in tab A")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(a, tap(`#findings li.failed button.edit`), waitNone("#findings li.failed")); err != nil {
		t.Fatal(err)
	}
	// Tab B lets it go, and writes its lists without it.
	if err := chromedp.Do(b, waitNone("#findings li.failed"), typeFinding("From tab B"),
		waitText("#findings li.saved", "From tab B")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(a, chromedp.Reload(), waitText("#status", "every change is saved"), waitText("#findings li.saved", "From tab B")); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(a, chromedp.Evaluate[int](`document.querySelectorAll("#findings li.failed").length`)); err != nil || n != 0 {
		t.Fatalf("tab A shows %d refused findings after reloading, want none (%v)", n, err)
	}
	if s := tb.stored(t, a, "failed"); strings.Contains(s, "Refused in tab A") {
		t.Fatalf("the finding taken back into the form is still kept as refused: %s", s)
	}
}

// TestTabletEditsFindingsAndShowsConflicts: a saved finding is edited on
// the tablet (the room sees who edits what) and saved; an edit based on a
// version someone else changed since is refused as a conflict, shown with
// the person's text kept, and saved after "Edit again"; a delete removes
// the finding for the group.
func TestTabletEditsFindingsAndShowsConflicts(t *testing.T) {
	tb := MustTablet(t)
	ctx, st := tb.browser, tb.f.store
	bg := context.Background()
	other := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	created, err := st.CreateFinding(bg, &other.id, tb.w.ID, "seed", store.FindingInput{Title: "Joint inspections", Countries: []string{"SE"}})
	if err != nil {
		t.Fatal(err)
	}
	var seed domain.Finding
	json.Unmarshal(created.Entry.Payload, &seed)
	room := store.WorkshopRoom(tb.w.ID)
	watcher := other.Dial(t, tb.f.srv.URL)
	if fr := watcher.join(t, room, 0); fr.Type != "joined" {
		t.Fatalf("join: %+v", fr)
	}
	title := func() string {
		t.Helper()
		f, err := st.Finding(bg, seed.ID)
		if err != nil {
			t.Fatal(err)
		}
		return f.Title
	}
	mine := fmt.Sprintf(`#findings li[data-id="%d"]`, seed.ID)
	setTitle := func(s string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			evalJS(`document.querySelector("#new-finding input[name=title]").value = ""`),
			chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), s))
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		waitText(mine+".saved", "Joint inspections"),
		tap(mine+`.saved button.edit`),
		waitText("#form-title", "Edit"),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The room hears which finding the tablet edits, and the tablet who else is there.
	editing := fmt.Sprintf(`"editing":"f-%d"`, seed.ID)
	watcher.next(t, func(f frame) bool { return f.Type == "presence" && strings.Contains(string(f.People), editing) })
	watcher.send(t, map[string]any{"type": "presence", "room": room, "editing": fmt.Sprintf("f-%d", seed.ID)})
	err = chromedp.Do(ctx,
		waitText("#presence", "Also here: "+other.name),
		waitText(mine+".saved .editing", other.name+" is editing this"),
		setTitle("Joint labour inspections"),
		// The status does not say all is saved without the form's text.
		waitText("#status", "the form's text is kept on this device until you save it"),
		chromedp.Click(chromedp.CSS(`input[name=countries][value=NO]`)),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.saved", "Joint labour inspections"),
		waitText("#status", "every change is saved"),
		waitText("#form-title", "Record a best practice"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status"))); err != nil || strings.Contains(st, "form's text") {
		t.Fatalf("status after saving the form: %q (%v), want no word of the form", st, err)
	}
	if got, _ := st.Finding(bg, seed.ID); got.Title != "Joint labour inspections" || !sameSet(got.Countries, []string{"NO", "SE"}) || got.Version != 2 {
		t.Fatalf("after the tablet's edit: %q %v version %d", got.Title, got.Countries, got.Version)
	}

	// Someone else changes the title while the tablet has the form open.
	err = chromedp.Do(ctx, tap(mine+`.saved button.edit`), waitText("#form-title", "Edit"))
	if err != nil {
		t.Fatal(err)
	}
	// It changes the results too, a field the list does not show: the
	// tablet must still show both values of each field in conflict.
	raw, _ := json.Marshal("Inspections, by the other")
	rawResults, _ := json.Marshal("Fewer cases, says the other")
	if _, err := st.UpdateFinding(bg, &other.id, tb.w.ID, "other", seed.ID, 2, map[string]json.RawMessage{"title": raw, "results": rawResults}); err != nil {
		t.Fatal(err)
	}
	// The other's change has come: Save shows, beside each field in
	// conflict, what the other saved, and sends nothing (a change the
	// page had not heard of is refused by the server as a conflict: see
	// TestTabletDeleteOrKeyChangeOverANewerEditIsNotSaved).
	err = chromedp.Do(ctx,
		waitText("#findings li.saved", "Inspections, by the other"),
		setTitle("Inspections, as the tablet says"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding textarea[name=results]`), "More cases, says the tablet"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#form-error", "Changed meanwhile"),
		waitText(`#new-finding .theirs[data-field=title]`, "Inspections, by the other"),
		waitText(`#new-finding .theirs[data-field=results]`, "Fewer cases, says the other"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := title(); got != "Inspections, by the other" {
		t.Fatalf("the conflict wrote: title %q", got)
	}
	if q := tb.stored(t, ctx, "queue"); strings.Contains(q, "as the tablet says") {
		t.Fatalf("an edit over a change not seen was queued: %.300s", q)
	}
	// The tablet keeps its title and takes the other's results.
	err = chromedp.Do(ctx,
		tap(`#new-finding .theirs[data-field=results] button.use-theirs`),
		waitNone(`#new-finding .theirs[data-field=results]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name=title]`))); err != nil || v != "Inspections, as the tablet says" {
		t.Fatalf("after a conflict the form holds %q (%v), want the tablet's text", v, err)
	}
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`textarea[name=results]`))); err != nil || v != "Fewer cases, says the other" {
		t.Fatalf("Use theirs: the form holds %q (%v), want the other's results", v, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.saved", "Inspections, as the tablet says"),
		waitText("#status", "every change is saved"),
		waitNone("#findings li.failed"),
		waitNone("#new-finding .theirs"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.Finding(bg, seed.ID); err != nil || got.Title != "Inspections, as the tablet says" || got.Results != "Fewer cases, says the other" {
		t.Fatalf("after Edit again: %q, results %q (%v)", got.Title, got.Results, err)
	}

	// Delete, confirmed.
	err = chromedp.Do(ctx,
		evalJS(`window.confirm = () => true`),
		tap(mine+`.saved button.delete`),
		waitNone(mine),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Finding(bg, seed.ID); domain.ErrorCode(err) != domain.NotFound {
		t.Fatalf("after the delete: %v, want not_found", err)
	}
}

// sameSet tells whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestTabletKeepsEditsOfFindingsDeletedMeanwhile: what is typed in the
// form is kept on the device (a reload keeps an edit half done); an edit
// of a finding someone deletes stays in the form, to be saved as new; and
// an edit saved offline for a finding deleted meanwhile comes back as not
// saved, with "Save as new finding".
func TestTabletKeepsEditsOfFindingsDeletedMeanwhile(t *testing.T) {
	tb := MustTablet(t)
	ctx, st := tb.browser, tb.f.store
	bg := context.Background()
	other := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	seed := func(title string) int64 {
		t.Helper()
		a, err := st.CreateFinding(bg, &other.id, tb.w.ID, "seed "+title, store.FindingInput{Title: title})
		if err != nil {
			t.Fatal(err)
		}
		var f domain.Finding
		json.Unmarshal(a.Entry.Payload, &f)
		return f.ID
	}
	del := func(id int64) {
		t.Helper()
		if _, err := st.DeleteFinding(bg, &other.id, tb.w.ID, fmt.Sprint("delete ", id), id, 0); err != nil {
			t.Fatal(err)
		}
	}
	titleInForm := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#new-finding input[name=title]`)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first := seed("First to go")
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		tap(fmt.Sprintf(`#findings li[data-id="%d"] button.edit`, first)),
		waitText("#form-title", "First to go"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), ", half edited"),
		chromedp.Reload(),
		waitText("#status", "Live"),
		waitText("#form-title", "Edit"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v := titleInForm(); v != "First to go, half edited" {
		t.Fatalf("after a reload the form holds %q, want the half-done edit", v)
	}
	del(first)
	err = chromedp.Do(ctx,
		waitText("#form-error", "deleted meanwhile"),
		waitText("#form-title", "Record a best practice"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v := titleInForm(); v != "First to go, half edited" {
		t.Fatalf("after the delete the form holds %q, want the text kept", v)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)), waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "First to go, half edited")

	// Offline: an edit saved on the device; the finding is deleted before
	// the server is back.
	second := seed("Second to go")
	err = chromedp.Do(ctx,
		waitText(fmt.Sprintf(`#findings li[data-id="%d"]`, second), "Second to go"),
		tap(fmt.Sprintf(`#findings li[data-id="%d"] button.edit`, second)),
		waitText("#form-title", "Second to go"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err = chromedp.Do(ctx,
		waitText("#status", "Offline"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=results]`), "Results typed offline."),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#findings li.pending", "Second to go"),
	)
	if err != nil {
		t.Fatal(err)
	}
	del(second)
	MustStart(t, tb.env)
	err = chromedp.Do(ctx,
		waitText("#findings li.failed", "Not saved: There is no finding"),
		tap(`#findings li.failed button.edit`),
		waitText("#form-title", "Record a best practice"),
	)
	if err != nil {
		t.Fatal(err)
	}
	results, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`textarea[name=results]`)))
	if err != nil || results != "Results typed offline." || titleInForm() != "Second to go" {
		t.Fatalf("Save as new finding: the form holds %q / %q (%v)", titleInForm(), results, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)), waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.DB().NewRaw("SELECT count(*) FROM findings WHERE title = 'Second to go' AND results = 'Results typed offline.' AND deleted_at IS NULL").Scan(bg, &n); err != nil || n != 1 {
		t.Fatalf("%d live findings with the offline edit's text, want 1 (%v)", n, err)
	}
}

// TestTabletOffersTheFormOfAClosedTab: text typed in a tab's form, never
// saved, is kept on the device; when that tab is gone, another tab offers
// it as not saved, and "Edit again" saves it once. An edit form left with
// nothing changed in a tab gone is not offered: nothing was typed.
func TestTabletOffersTheFormOfAClosedTab(t *testing.T) {
	tb := MustTablet(t)
	a := tb.browser
	err := chromedp.Do(a,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		typeFinding("Only looked at"),
		waitText("#findings li.saved", "Only looked at"),
		tap(`#findings li.saved button.edit`),
		waitText("#form-title", "Edit"),
	)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("rapporteur:%d:%s:draft:", tb.person.ID, store.WorkshopRoom(tb.w.ID))
	drafts := fmt.Sprintf(`Object.keys(localStorage).filter(k => k.startsWith(%q))`, prefix)
	// The edit form as kept, opened and left unchanged: kept again below
	// as a tab gone.
	untouched, err := chromedp.Run(a, chromedp.Evaluate[string](`localStorage.getItem(`+drafts+`[0])`))
	if err != nil || !strings.Contains(untouched, `"editing":{`) {
		t.Fatalf("the edit form kept: %q (%v)", untouched, err)
	}
	err = chromedp.Do(a,
		chromedp.Click(chromedp.CSS(`#cancel-edit`)),
		waitText("#form-title", "Record"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Typed in a closed tab"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tabA, err := chromedp.Run(a, chromedp.Evaluate[string](fmt.Sprintf(`%s.map(k => k.slice(%d)).join(" ")`, drafts, len(prefix))))
	if err != nil || tabA == "" || strings.Contains(tabA, " ") {
		t.Fatalf("tab A's kept form: %q (%v), want one", tabA, err)
	}
	if s := tb.stored(t, a, "draft:"+tabA); !strings.Contains(s, "Typed in a closed tab") {
		t.Fatalf("the form's text is not kept on the device: %q", s)
	}
	untouchedKey, _ := json.Marshal(prefix + "tab-gone-untouched")
	if err := chromedp.Do(a, evalJS(fmt.Sprintf(`localStorage.setItem(%s, %q)`, untouchedKey, untouched)), chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	b, closeB := chromedp.NewContext(a)
	defer closeB()
	// Tab A's last sign of life is made old, rather than waited for.
	alive := fmt.Sprintf("rapporteur:%d:%s:alive:%s", tb.person.ID, store.WorkshopRoom(tb.w.ID), tabA)
	err = chromedp.Do(b,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		evalJS(fmt.Sprintf(`localStorage.setItem(%q, "0")`, alive)),
		waitText("#findings li.failed", "Typed in a closed tab"),
		waitText("#findings li.failed", "typed in another tab or window, closed or asleep"),
		waitText("#status", "1 change not saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("#findings li.failed").length`)); err != nil || n != 1 {
		t.Fatalf("%d forms of tabs gone offered, want 1: the untouched edit form is no change (%v)", n, err)
	}
	// Nor is it kept: a copy of a group's finding, no one's to keep.
	if s := tb.stored(t, b, "draft:tab-gone-untouched"); s != "" {
		t.Fatalf("the untouched edit form of a tab gone is still kept: %q", s)
	}
	err = chromedp.Do(b,
		tap(`#findings li.failed button.edit`),
		waitNone("#findings li.failed"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := chromedp.Run(b, chromedp.Value(chromedp.CSS(`#new-finding input[name=title]`))); err != nil || v != "Typed in a closed tab" {
		t.Fatalf("Edit again put %q in the form (%v)", v, err)
	}
	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)), waitText("#findings li.saved", "Typed in a closed tab")); err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Typed in a closed tab")
}

// TestTabletAsleepKeepsItsUntouchedEditForm: another tab takes a tab
// that has not beaten for a while for gone, and clears its edit form,
// unchanged, from the device. The tab was only asleep: it keeps the form
// open, and kept on the device.
func TestTabletAsleepKeepsItsUntouchedEditForm(t *testing.T) {
	tb := MustTablet(t)
	a, b := tb.twoTabs(t)
	err := chromedp.Do(a,
		tap(`#findings li.saved button.edit`),
		waitText("#form-title", "Edit"),
		evalJS(`window.heard = []; window.addEventListener("storage", e => window.heard.push(e.key))`),
	)
	if err != nil {
		t.Fatal(err)
	}
	prefix := tb.storeKey("draft:")
	tabA := tb.keptBy(t, a, "draft")
	// Tab A asleep, as a tablet suspends a page in the background: it
	// answers no other page's question (a frozen page still would) and
	// beats no more, and its last beat is made old. Tab B looks at once (shown again), and
	// takes A for gone.
	if err := chromedp.Do(a, evalJS(`BroadcastChannel.prototype.postMessage = function () {};
		const set = Storage.prototype.setItem;
		Storage.prototype.setItem = function (k, v) { if (!k.includes(":alive:")) set.call(this, k, v); }`)); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(b,
		evalJS(fmt.Sprintf(`localStorage.setItem(%q, "0"); window.dispatchEvent(new Event("focus"))`, tb.storeKey("alive:"+tabA))),
		pollAcross(fmt.Sprintf(`localStorage.getItem(%q) === null`, prefix+tabA), "tab B to clear tab A's untouched form"),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(a,
		pollAcross(fmt.Sprintf(`window.heard.includes(%q)`, prefix+tabA), "tab A to hear its form cleared"),
		pollAcross(fmt.Sprintf(`localStorage.getItem(%q) !== null`, prefix+tabA), "tab A's form kept again"),
		waitText("#form-title", "Edit"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := chromedp.Run(a, chromedp.Text(chromedp.CSS("#form-error"))); err != nil || strings.Contains(msg, "taken into another tab") {
		t.Fatalf("tab A says %q (%v)", msg, err)
	}
}

// TestTabletFormComesBackToItsTab: what was typed in a form comes back in
// the same tab after a page of another room was opened there, and after a
// reload when the device's storage is full (the hand-over of the tab's id
// is kept before anything else).
func TestTabletFormComesBackToItsTab(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleOrganizer)
	ctx := tb.browser
	title := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#new-finding input[name=title]`)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	other := fmt.Sprintf("%s/events/%s/workshops/%d", tb.f.srv.URL, tb.f.event.Slug, tb.f.ws[1].ID)
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page), waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Typed in room A"),
		chromedp.Navigate(other), waitText("#status", "Live"),
		chromedp.Navigate(tb.page), waitText("#status", "Live"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := title(); got != "Typed in room A" {
		t.Fatalf("back from another room, the form holds %q", got)
	}
	err = chromedp.Do(ctx,
		evalJS(`for (let n = 1 << 20, i = 0; n > 0; n >>= 1) { try { for (;;) localStorage.setItem("junk-" + n + "-" + i++, "x".repeat(n)); } catch (e) {} }`),
		chromedp.Reload(), waitText("#status", "Live"),
	)
	if err != nil {
		t.Fatal(err)
	}
	got := title()
	if err := chromedp.Do(ctx, evalJS(`Object.keys(localStorage).filter(k => k.startsWith("junk-")).forEach(k => localStorage.removeItem(k))`)); err != nil {
		t.Fatal(err)
	}
	if got != "Typed in room A" {
		t.Fatalf("reloaded with the storage full, the form holds %q", got)
	}
}

// TestTabletDuplicatedTabKeepsItsOwnForm: a tab duplicated from one that
// had a workshop page open copies its id (sessionStorage); a page opened
// in the copy while the first page is open makes an id of its own. Given
// the same one, it showed the other page's form, and emptying its own
// emptied the other's, the text kept nowhere.
func TestTabletDuplicatedTabKeepsItsOwnForm(t *testing.T) {
	tb := MustTablet(t)
	a := tb.browser
	err := chromedp.Do(a,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "Typed in tab A"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tabA := tb.keptBy(t, a, "draft")
	b, closeB := chromedp.NewContext(a)
	defer closeB()
	err = chromedp.Do(b,
		chromedp.Navigate(tb.f.srv.URL+"/"),
		evalJS(fmt.Sprintf(`sessionStorage.setItem("rapporteur:tab", %q)`, tabA)), // as the copy has it
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := chromedp.Run(b, chromedp.Value(chromedp.CSS(`#new-finding input[name=title]`))); err != nil || v != "" {
		t.Fatalf("the copy's page opened with %q in its form (%v), want it empty", v, err)
	}
	// Tab A hears of the storage changes in order: once it has heard of
	// the last one, it has acted on those before.
	if err := chromedp.Do(a, evalJS(`window.heard = []; window.addEventListener("storage", e => window.heard.push(e.key))`)); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(b,
		chromedp.SendKeys(chromedp.CSS(`#new-finding input[name=title]`), "x"),
		evalJS(`const i = document.querySelector("#new-finding input[name=title]"); i.value = ""; i.dispatchEvent(new Event("input", {bubbles: true}))`),
		evalJS(`localStorage.setItem("test:last", "1")`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(a, pollAcross(`window.heard.includes("test:last")`, "tab A to hear of tab B's changes")); err != nil {
		t.Fatal(err)
	}
	if v, err := chromedp.Run(a, chromedp.Value(chromedp.CSS(`#new-finding input[name=title]`))); err != nil || v != "Typed in tab A" {
		t.Fatalf("tab A's form holds %q (%v), want what was typed in it", v, err)
	}
	if s := tb.stored(t, a, "draft:"+tabA); !strings.Contains(s, "Typed in tab A") {
		t.Fatalf("tab A's form is not kept on the device: %q", s)
	}
}

// mustTabletWithKeptPage is MustTablet with the workshop page open, live,
// and kept on the device with its files.
func mustTabletWithKeptPage(t *testing.T) *tablet {
	tb := MustTablet(t)
	if err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	mustKeepPage(t, tb.browser)
	return tb
}

// mustKeepPage waits until the page open in ctx and its files are kept on
// the device (by the service worker).
func mustKeepPage(t *testing.T, ctx context.Context) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// The page and the three files it names, by version.
		kept, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`Promise.all([location.pathname].concat(Array.from(document.querySelectorAll('script[src^="/static/"], link[href^="/static/"]'), e => e.getAttribute("src") || e.getAttribute("href"))).map(u => caches.match(u))).then(rs => rs.length === 4 && rs.every(r => !!r))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if kept {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the page is not kept on the device")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageKept tells whether the service worker keeps path for the page open in ctx.
func pageKept(t *testing.T, ctx context.Context, path string) bool {
	t.Helper()
	kept, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`caches.match(%q).then(r => !!r)`, path), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return kept
}

// TestTabletSignedOutElsewhereForgetsItsKeptPage: an organizer signs the
// tablet's person out everywhere (a lost tablet). The open page hears its
// session ended and lets go of the page the service worker keeps, as a
// sign-out on the tablet does: offline, the next person would have been
// shown the last person's page, with their unsent changes.
func TestTabletSignedOutElsewhereForgetsItsKeptPage(t *testing.T) {
	tb := mustTabletWithKeptPage(t)
	ctx := tb.browser
	org := tb.f.MustMember(t, domain.RoleOrganizer, nil, "FI", "coordinator")
	if resp := signOutEverywhere(t, tb.f, org, tb.person.ID); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign out everywhere: %s", resp.Status)
	}
	if err := chromedp.Do(ctx, waitText("#status", "Signed out")); err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(tb.page, tb.f.srv.URL)
	for deadline := time.Now().Add(10 * time.Second); pageKept(t, ctx, path); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the page of the person signed out is still kept on the tablet")
		}
	}
}

// standIn takes the workshop page as the server gives it (to the page
// open in ctx), stops the tablet's server and listens on its address in
// its place: the test serves there what it needs. path is the page's.
func (tb *tablet) standIn(t *testing.T, ctx context.Context) (html, path string, l net.Listener) {
	t.Helper()
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(location.href, {cache: "no-store"}).then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	if l, err = net.Listen("tcp", tb.env["ADDR"]); err != nil {
		t.Fatal(err)
	}
	return html, strings.TrimPrefix(tb.page, tb.f.srv.URL), l
}

// TestTabletLateAnswerIsNotKeptAfterSignOut: on a slow link the page is
// answered with its copy, and the network's answer, asked for with the
// last person's cookie, comes after they signed out: it is not kept.
func TestTabletLateAnswerIsNotKeptAfterSignOut(t *testing.T) {
	tb := mustTabletWithKeptPage(t)
	ctx := tb.browser
	html, path, l := tb.standIn(t, ctx)
	answered := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == path: // a slow link: the copy answers first
			select {
			case <-time.After(6 * time.Second):
			case <-r.Context().Done():
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, html)
			close(answered)
		case r.URL.Path == "/auth/logout":
			http.Redirect(w, r, "/", http.StatusSeeOther)
		case r.URL.Path == "/":
			io.WriteString(w, "<!doctype html><p id=home>signed out</p>")
		default: // the WebSocket and the rest: no answer
			<-r.Context().Done()
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	wait, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, chromedp.Reload(), waitText("#status", "Offline"),
		chromedp.Click(chromedp.CSS(`form[action="/auth/logout"] button`)), waitText("#home", "signed out")); err != nil {
		t.Fatal(err)
	}
	if pageKept(t, ctx, path) {
		t.Fatal("the page is kept right after the sign-out")
	}
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the late answer was not asked for")
	}
	time.Sleep(time.Second) // the worker keeps an answer as it comes, if it does
	if pageKept(t, ctx, path) {
		t.Fatal("the late answer, asked for before the sign-out, is kept")
	}
}

// TestTabletHardReloadedPageSignedOutKeepsNoCopy: a page loaded past the
// service worker (a hard reload) asks it to keep the page, and the
// session ends while that keep is under way. The page tells the worker,
// though it does not control the page, and the worker keeps nothing it
// was asked for before: offline, the next person on the tablet would
// have been shown the page.
func TestTabletHardReloadedPageSignedOutKeepsNoCopy(t *testing.T) {
	tb := mustTabletWithKeptPage(t)
	ctx := tb.browser
	html, path, l := tb.standIn(t, ctx)
	files := http.StripPrefix("/static/", http.FileServerFS(web.Static()))
	var once sync.Once
	answered := make(chan struct{}) // the worker's keep was answered
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == path && r.Method == http.MethodHead: // the page's probe: the session ended
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == path && r.Header.Get("Sec-Fetch-Mode") == "navigate":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, html)
		case r.URL.Path == path: // the worker's keep, slow
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, html)
			once.Do(func() { close(answered) })
		case strings.HasPrefix(r.URL.Path, "/static/"):
			files.ServeHTTP(w, r)
		default: // the WebSocket, refused
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			bypass := true
			_, err := cdp.Call(ctx, tg, page.Reload, page.ReloadParams{IgnoreCache: &bypass})
			return err
		}),
		waitText("#status", "Signed out"),
	)
	if err != nil {
		t.Fatal(err)
	}
	controlled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!navigator.serviceWorker.controller`))
	if err != nil || controlled {
		t.Fatalf("the hard reload left the page under the worker (%v): the test tests nothing", err)
	}
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the page did not ask the worker to keep it")
	}
	time.Sleep(time.Second) // the worker keeps the page and its files as they come, if it does
	if pageKept(t, ctx, path) {
		t.Fatal("the page asked for before the session ended is kept after it")
	}
}

// TestTabletPageAskedForDuringASignOutIsNotKept: one tab signs out while
// another reloads the workshop page. The reload goes out before the
// sign-out's answer, with the last person's cookie, and its page comes
// after: it is not kept, or the next person on the tablet would be shown
// it offline.
func TestTabletPageAskedForDuringASignOutIsNotKept(t *testing.T) {
	tb := MustTablet(t)
	a, b := tb.twoTabs(t)
	mustKeepPage(t, a)
	html, path, l := tb.standIn(t, a)
	files := http.StripPrefix("/static/", http.FileServerFS(web.Static()))
	signingOut := make(chan struct{})
	reloading := make(chan struct{}, 1)
	signedOut := make(chan struct{})
	answered := make(chan struct{}, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/auth/logout": // answered once the other tab's reload is out
			close(signingOut)
			select {
			case <-reloading:
			case <-time.After(10 * time.Second):
			}
			http.Redirect(w, r, "/", http.StatusSeeOther)
			w.(http.Flusher).Flush()
			close(signedOut)
		case r.URL.Path == "/":
			io.WriteString(w, "<!doctype html><p id=home>signed out</p>")
		case r.URL.Path == path && r.Header.Get("Sec-Fetch-Mode") == "navigate":
			reloading <- struct{}{}
			<-signedOut
			time.Sleep(300 * time.Millisecond)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, html)
			answered <- struct{}{}
		case strings.HasPrefix(r.URL.Path, "/static/"):
			files.ServeHTTP(w, r)
		default: // the WebSocket and the rest: no answer
			<-r.Context().Done()
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	if err := chromedp.Do(a, chromedp.Click(chromedp.CSS(`form[action="/auth/logout"] button`))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-signingOut:
	case <-time.After(10 * time.Second):
		t.Fatal("the sign-out did not reach the server")
	}
	if err := chromedp.Do(b, evalJS("location.reload()")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-answered:
	case <-time.After(20 * time.Second):
		t.Fatal("the reload was not answered")
	}
	if err := chromedp.Do(a, waitText("#home", "signed out")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the worker keeps the page and its files as they come, if it does
	if pageKept(t, a, path) {
		t.Fatal("the page asked for with the last person's cookie, during the sign-out, is kept")
	}
}

// TestOrganisationSignOutReachesTheProvider: signing out of an
// organisation account in a browser ends the session at the provider too:
// the browser arrives at the provider's sign-out, so the next person on
// the device cannot sign in as the last. The sign-out form's redirect
// straight to the provider was held by our CSP (form-action 'self'): the
// page stayed, still saying "Signed in as".
func TestOrganisationSignOutReachesTheProvider(t *testing.T) {
	p := startTestIDP(t)
	p.endSession.Store(true)
	f := MustFixture(t, p.env(pg.NewDB(t)))
	p.m.QueueUser(&mockoidc.MockUser{Subject: "staff-out", Email: "ulla@example.fi", EmailVerified: true,
		PreferredUsername: "Ulla Lindqvist", Groups: []string{"rapporteur-admins"}})
	ctx := MustBrowser(t)
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := chromedp.Do(wait,
		chromedp.Navigate(f.srv.URL+"/auth/login?next=/"),
		waitText("header", "Ulla Lindqvist"),
		chromedp.Click(chromedp.CSS(`form[action="/auth/logout"] button`)),
		waitText("#provider", "Signed out at the provider"),
	)
	if err != nil {
		where, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " | " + document.documentElement.outerHTML.slice(0, 1500)`))
		t.Fatalf("the sign-out did not reach the provider: %v\n%s", err, where)
	}
	var left int
	if err := f.store.DB().NewRaw("SELECT count(*) FROM sessions").Scan(context.Background(), &left); err != nil || left != 0 {
		t.Fatalf("%d sessions left after the sign-out (%v)", left, err)
	}
}

// TestTabletPageLoadsOverALinkThatAnswersNothing: a reload over a link
// that takes the request and never answers (a dead access point) shows
// the page kept on the device after a few seconds, not a blank page for
// minutes.
func TestTabletPageLoadsOverALinkThatAnswersNothing(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live"), typeFinding("Kept for a dead link"),
		waitText("#findings li.saved", "Kept for a dead link")); err != nil {
		t.Fatal(err)
	}
	mustKeepPage(t, ctx)
	tb.f.srv.Stop(t)
	blackHole(t, tb.env["ADDR"])
	// 5 s for the page, 5 s for its files: the browser alone waited for
	// minutes.
	wait, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, chromedp.Reload(), waitText("#status", "Offline"), waitText("#findings li.saved", "Kept for a dead link")); err != nil {
		t.Fatalf("the page kept on the device did not load: %v", err)
	}
}

// TestTabletBackFromThePageCacheShowsTheNewerForm: a page restored from
// the browser's page cache (Safari keeps pages with a WebSocket there)
// shares its tab's id with the page loaded in the tab meanwhile, whose
// form the device keeps. The restored page shows that form, not its own
// older one: a finding saved meanwhile would be saved twice, newer text
// written over. The page cache is played by the event it fires, with the
// device's storage as the newer page left it, handing the id back.
//
// When the id was not handed back, a page of another tab holds it (the
// tab was duplicated, and the copy opened the page): the restored page
// makes its own id and leaves that page's form alone.
func TestTabletBackFromThePageCacheShowsTheNewerForm(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	prefix := tb.storeKey("draft:")
	handBack := evalJS(`localStorage.setItem("rapporteur:hand:" + window.tabOfTest, String(Date.now()))`)
	restored := evalJS(`window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }))`)
	title := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#new-finding input[name=title]").value`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	newer := fmt.Sprintf(`localStorage.setItem(%q + window.tabOfTest, JSON.stringify({ editing: null,
		body: { title: "Begun on the next page", what_done: "", results: "", transferability: "", countries: [], themes: [] } }))`, prefix)
	err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), "Typed before going on"),
		evalJS(fmt.Sprintf(`window.tabOfTest = Object.keys(localStorage).find(k => k.startsWith(%q)).slice(%d)`, prefix, len(prefix))),
		// The page loaded next in the tab saved that and began another.
		evalJS(newer), handBack, restored)
	if err != nil {
		t.Fatal(err)
	}
	if got := title(); got != "Begun on the next page" {
		t.Fatalf("the restored page's form holds %q, want the newer page's text", got)
	}
	// Saved there too: the form is empty.
	if err := chromedp.Do(ctx, evalJS(fmt.Sprintf(`Object.keys(localStorage).filter(k => k.startsWith(%q)).forEach(k => localStorage.removeItem(k))`, prefix)), handBack, restored); err != nil {
		t.Fatal(err)
	}
	if got := title(); got != "" {
		t.Fatalf("the restored page's form holds %q, want it empty (the newer page saved it)", got)
	}
	// Not handed back: a page of a duplicated tab holds the id and its form.
	err = chromedp.Do(ctx, evalJS(newer), restored,
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), "Typed on the restored page"))
	if err != nil {
		t.Fatal(err)
	}
	if got := title(); got != "Typed on the restored page" {
		t.Fatalf("the restored page's form holds %q, want only what was typed on it", got)
	}
	tab, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.tabOfTest`))
	if err != nil {
		t.Fatal(err)
	}
	if s := tb.stored(t, ctx, "draft:"+tab); !strings.Contains(s, "Begun on the next page") {
		t.Fatalf("the other page's kept form is now %q", s)
	}
}

// TestTabletPageFromItsCopyTakesItsFilesFromTheCopy: a page answered
// with the copy kept on the device (its server not answering) gets the
// script kept with it, even when the network serves the script: after an
// upgrade of the server the two would be of different versions. So does
// a page the older service worker kept, which names its files without a
// version.
func TestTabletPageFromItsCopyTakesItsFilesFromTheCopy(t *testing.T) {
	for _, older := range []bool{false, true} {
		t.Run(map[bool]string{false: "versioned", true: "kept by the older worker"}[older], func(t *testing.T) {
			tb := MustTablet(t)
			ctx := tb.browser
			if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
				t.Fatal(err)
			}
			mustKeepPage(t, ctx)
			if older {
				olderWorkersCopy(t, ctx, true)
			}
			tb.f.srv.Stop(t)
			// Another version of the server, slow to answer pages: its script
			// says it is the network's.
			script, err := fs.ReadFile(web.Static(), "live.js")
			if err != nil {
				t.Fatal(err)
			}
			l, err := net.Listen("tcp", tb.env["ADDR"])
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/static/live.js" {
					w.Header().Set("Content-Type", "text/javascript")
					io.WriteString(w, "window.fromNetwork = true;\n"+string(script))
					return
				}
				<-r.Context().Done() // pages and the WebSocket: no answer
			})}
			go srv.Serve(l)
			defer srv.Close()
			wait, cancel := context.WithTimeout(ctx, 40*time.Second)
			defer cancel()
			if err := chromedp.Do(wait, chromedp.Reload(), waitText("#status", "Offline")); err != nil {
				t.Fatalf("the page kept on the device did not load: %v", err)
			}
			from, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.fromNetwork === true`))
			if err != nil || from {
				t.Fatalf("the page from its copy runs the network's script (%v)", err)
			}
		})
	}
}

// olderWorkersCopy makes the copy kept of the open page one the service
// worker before versioned files kept: its files under their bare paths,
// and, bare, the page names them so too (kept before the upgrade; else
// the upgraded page, kept by the older worker on its first load). It
// empties the browser's own cache, whose copies would answer for them.
func olderWorkersCopy(t *testing.T, ctx context.Context, bare bool) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(async () => {
		const c = await caches.open("rapporteur-pages-v1");
		for (const e of document.querySelectorAll('script[src^="/static/"], link[href^="/static/"]')) {
			const f = e.getAttribute("src") || e.getAttribute("href");
			const r = await c.match(f);
			if (!r) throw new Error(f + " is not kept");
			await c.put(f.split("?")[0], r);
			await c.delete(f);
		}
		if (%t) {
			const p = await c.match(location.pathname);
			const html = (await p.text()).replace(/(\/static\/[^"?]+)\?v=[0-9a-f]+/g, "$1");
			await c.put(location.pathname, new Response(html, { headers: p.headers }));
		}
		return true;
	})()`, bare), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, clearHTTPCache()); err != nil {
		t.Fatal(err)
	}
}

// clearHTTPCache empties the browser's own HTTP cache, whose copies of
// files asked for by version would answer for the service worker's.
func clearHTTPCache() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.ClearBrowserCache, cdp.Empty{})
		return err
	})
}

// TestTabletPageKeptByTheOlderWorkerLoadsOffline: on the morning of an
// upgrade the older service worker answers the first load and keeps the
// new page, which names its files by version, with the files under their
// bare paths. Behind a dead access point (it takes each connection and
// never answers), the page still gets them: the copies under the bare
// paths answer for the version they are, without asking the network.
func TestTabletPageKeptByTheOlderWorkerLoadsOffline(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	tb.openWithSaved(t, "Saved on the morning of the upgrade")
	mustKeepPage(t, ctx)
	olderWorkersCopy(t, ctx, false)
	tb.f.srv.Stop(t)
	blackHole(t, tb.env["ADDR"])
	wait, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	err := chromedp.Do(wait,
		chromedp.Reload(),
		waitText("#status", "Offline"),
		waitText("#findings li.saved", "Saved on the morning of the upgrade"),
	)
	if err != nil {
		t.Fatalf("offline, the page the older worker kept did not work: %v", err)
	}
	mustKeepPage(t, ctx) // and its files are kept by version now
}

// TestTabletGetsItsFilesWithTheStorageFull: a device whose storage is
// full cannot keep the page's files, and the page still gets them from
// the network: with the network up, nothing is lost by the copy failing.
func TestTabletGetsItsFilesWithTheStorageFull(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	quota := float64(2000) // bytes: less than any file
	err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, storage.OverrideQuotaForOrigin, storage.OverrideQuotaForOriginParams{Origin: tb.f.srv.URL, QuotaSize: &quota})
			return err
		}),
		chromedp.Navigate(tb.page), waitText("#status", "Live"),
		pollAcross(`!!navigator.serviceWorker.controller`, "the service worker"),
	)
	if err != nil {
		t.Fatal(err)
	}
	full, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`caches.open("probe").then(c => c.put("/probe", new Response("x".repeat(100000)))).then(() => false, () => true)`, chromedp.EvalAwaitPromise))
	if err != nil || !full {
		t.Fatalf("the storage is not full (%v)", err)
	}
	if err := chromedp.Do(ctx, clearHTTPCache()); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = chromedp.Do(wait, evalJS("window.beforeReload = true; location.reload()"),
		pollAcross(`!window.beforeReload && document.getElementById("status").textContent.includes("Live")`, "the reloaded page live"))
	if err != nil {
		t.Fatalf("with the storage full, the page did not get its script: %v", err)
	}
}

// TestTabletKeepsAPageOnlyWithItsFiles: the server is upgraded while a
// tablet keeps its page, and the new page comes over a link too slow for
// its new script. The script kept, of the older version, is not run with
// the new page, and the page's copy stays the older one, whose files are
// all kept: offline, the tablet still opens a page that works, with what
// it saved. Before, the copy answered for the script after 5 s, and the
// new page replaced the copy, paired with the older script from then on.
func TestTabletKeepsAPageOnlyWithItsFiles(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	tb.openWithSaved(t, "Saved before the upgrade")
	mustKeepPage(t, ctx)
	path := strings.TrimPrefix(tb.page, tb.f.srv.URL)
	keptPage := func() string {
		t.Helper()
		html, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`caches.match(%q).then(r => r ? r.text() : "")`, path), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		return html
	}
	html := keptPage()
	script := regexp.MustCompile(`/static/live\.js\?v=[0-9a-f]+`)
	if !script.MatchString(html) {
		t.Fatalf("the page kept names no versioned script:\n%s", html)
	}
	// The next version: another script, which the link is too slow to bring.
	upgraded := script.ReplaceAllString(html, "/static/live.js?v=0123456789abcdef")
	upgraded = strings.Replace(upgraded, "<main>", `<main><p id="upgraded">The next version</p>`, 1)
	if !strings.Contains(upgraded, `id="upgraded"`) {
		t.Fatal("the page has no main element to mark")
	}
	tb.f.srv.Stop(t)
	code, err := fs.ReadFile(web.Static(), "live.js")
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan struct{}, 10) // a script of another version was sent
	asked := make(chan string, 10)      // the page asked with a query: its form went off as a GET
	// serve serves the new page; its script never comes, or, when wrong,
	// comes of another version than the page names. Its other files and
	// the WebSocket get no answer.
	serve := func(wrong bool) *http.Server {
		l, err := net.Listen("tcp", tb.env["ADDR"])
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == path:
				if r.URL.RawQuery != "" {
					asked <- r.URL.RawQuery
				}
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				io.WriteString(w, upgraded)
				return
			case r.URL.Path == "/static/live.js" && wrong:
				w.Header().Set("Content-Type", "text/javascript")
				io.WriteString(w, "window.ranScript = true;\n"+string(code))
				answered <- struct{}{}
				return
			}
			<-r.Context().Done()
		})}
		go srv.Serve(l)
		return srv
	}
	srv := serve(false)
	// Not chromedp.Reload: it waits for the page's load, which its script holds up.
	err = chromedp.Do(ctx, evalJS("location.reload()"), waitText("#upgraded", "The next version"))
	if err != nil {
		t.Fatalf("the new page did not load: %v", err)
	}
	time.Sleep(7 * time.Second) // past the 5 s after which a copy kept answers
	status, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if status != "Connecting…" {
		t.Fatalf("a script ran with the new page before its own came: the status says %q", status)
	}
	if strings.Contains(keptPage(), "upgraded") {
		t.Fatal("the new page is kept though its script is not")
	}
	// Its form is on the screen meanwhile: a finding typed and saved is
	// not sent off as a plain GET (the text in the address bar, the page
	// back with an empty form), but stays in the form.
	const typed = "Typed while the script was on its way"
	err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`input[name=title]`), typed),
		evalJS(`document.querySelector("#new-finding button[type=submit]").click()`))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("input[name=title]") || {}).value || ""`))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case q := <-asked:
		t.Fatalf("the form was sent as GET %s?%s; the form now holds %q", path, q, title)
	default:
	}
	if title != typed {
		t.Fatalf("the form holds %q, want what was typed", title)
	}
	// The script comes now, but of another version than the page names
	// (a server upgraded again between the page and its script): it is
	// not run, nor kept.
	srv.Close() // what it left unanswered fails
	srv = serve(true)
	err = chromedp.Do(ctx, evalJS("location.reload()"), waitText("#upgraded", "The next version"))
	if err != nil {
		t.Fatalf("the new page did not load: %v", err)
	}
	select {
	case <-answered:
	case <-time.After(20 * time.Second):
		t.Fatal("the script was not asked for")
	}
	time.Sleep(2 * time.Second)
	ran, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.ranScript === true`))
	if err != nil || ran {
		t.Fatalf("the page ran a script of another version than it names (%v)", err)
	}
	if strings.Contains(keptPage(), "upgraded") {
		t.Fatal("the new page is kept with a script of another version")
	}
	// The network gone: the older page and its files answer, whole.
	srv.Close()
	err = chromedp.Do(ctx,
		chromedp.Reload(),
		waitText("#status", "Offline"),
		waitText("#findings li.saved", "Saved before the upgrade"),
	)
	if err != nil {
		t.Fatalf("offline, the page kept did not work: %v", err)
	}
}

// withholdEntries keeps from the page the entries whose line holds text,
// as if they were on their way.
func withholdEntries(text string) chromedp.Action[chromedp.Void] {
	return evalJS(fmt.Sprintf(`const data = Object.getOwnPropertyDescriptor(MessageEvent.prototype, "data");
		Object.defineProperty(MessageEvent.prototype, "data", { configurable: true, get() {
			const v = data.get.call(this);
			if (typeof v !== "string") return v;
			const lines = v.split("\n").filter(l => !(l.includes('"type":"entry"') && l.includes(%q)));
			return lines.length ? lines.join("\n") : '{"type":"pong"}';
		} })`, text))
}

// TestTabletReloadedBeforeTheEntryShowsTheAckedChange: the server acks a
// finding whose entry has not reached the tablet yet (the entry waits for
// an earlier one of another server process, say); the tablet reloads
// offline. The page shows the finding as saved: it is, and the person
// would type it again. The entry is kept from the page here. Another tab
// of the device, whose entry is late too and which does not send the
// change itself (it hears of it from the device), shows it saved as well.
func TestTabletReloadedBeforeTheEntryShowsTheAckedChange(t *testing.T) {
	tb := MustTablet(t)
	ctx, other := tb.twoTabs(t)
	mustKeepPage(t, ctx)
	err := chromedp.Do(other, withholdEntries("Entry on its way"),
		evalJS(`const send = WebSocket.prototype.send;
			WebSocket.prototype.send = function (d) { if (!String(d).includes('"type":"op"')) send.call(this, d); }`))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		withholdEntries("Entry on its way"),
		typeFinding("Entry on its way"),
		waitText("#findings li.saved", "Entry on its way"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Entry on its way")
	if err := chromedp.Do(other, waitText("#findings li.saved", "Entry on its way"), waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err = chromedp.Do(ctx,
		chromedp.Reload(),
		waitText("#status", "Offline"),
		waitText("#findings li.saved", "Entry on its way"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if pending, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#findings li.pending").length`)); err != nil || pending != 0 {
		t.Fatalf("%d changes shown as not yet saved (%v), want none", pending, err)
	}
}

// TestTabletLaysAckedChangesOverInLogOrder: two saves of one title were
// acked in the other order than the log applied them (PROTOCOL.md allows
// it), and the page is loaded again offline before their entries came.
// It shows the later save, which the server holds, as saved: the acked
// changes are laid over the room's copy in the log's order, not in the
// order their acks came in.
func TestTabletLaysAckedChangesOverInLogOrder(t *testing.T) {
	tb := mustTabletWithKeptPage(t)
	ctx := tb.browser
	if err := chromedp.Do(ctx, typeFinding("Acked twice"), waitText("#findings li.saved", "Acked twice"),
		pollAcross(fmt.Sprintf(`(localStorage.getItem(%q) || "").includes("Acked twice")`, tb.storeKey("state2")), "the finding's entry in the kept copy")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	// The acks as the page keeps them: the later save's first.
	js := fmt.Sprintf(`(() => {
		const s = JSON.parse(localStorage.getItem(%q));
		const f = Object.values(s.findings).find(f => f.title === "Acked twice");
		const up = (id, title, seq) => ({ op: { op_id: id, kind: "finding.update", base: f.version, body: { id: f.id, fields: { title } } }, seq: s.seq + seq });
		localStorage.setItem(%q, JSON.stringify([up("u2", "Second save", 2), up("u1", "First save", 1)]));
	})()`, tb.storeKey("state2"), tb.storeKey("acked"))
	if err := chromedp.Do(ctx, waitText("#status", "Offline"), evalJS(js), chromedp.Reload(), waitText("#status", "Offline"),
		waitText("#findings li.saved", "save")); err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#findings li.saved h3"), h => h.textContent).join(" | ")`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(shown, "Second save") || strings.Contains(shown, "First save") {
		t.Errorf("saved findings shown: %s; want the second save's title, not the first's", shown)
	}
}

// TestTabletPageLoadsWithoutTheNetwork: a workshop page opened once loads
// again while the server cannot be reached (a tablet reloading while the
// Wi-Fi is down), shows what it keeps, takes a new finding, and sends it
// once the server is back.
func TestTabletPageLoadsWithoutTheNetwork(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	tb.openWithSaved(t, "Saved before the outage")
	mustKeepPage(t, ctx)
	tb.f.srv.Stop(t)
	err := chromedp.Do(ctx,
		chromedp.Reload(),
		waitText("#status", "Offline"),
		waitText("#findings li.saved", "Saved before the outage"),
		typeFinding("Typed after an offline reload"),
		waitText("#findings li.pending", "Typed after an offline reload"),
	)
	if err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	if err := chromedp.Do(ctx, waitText("#status", "every change is saved"), waitText("#findings li.saved", "Typed after an offline reload")); err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Typed after an offline reload")
	// Signing in as someone else, or out, lets go of the pages kept: they
	// were this person's.
	pageKept := func() bool { t.Helper(); return pageKept(t, ctx, strings.TrimPrefix(tb.page, tb.f.srv.URL)) }
	_, token := mustInvite(t, tb.f.store, tb.f.event.ID, store.PersonInput{Name: "Next on this tablet"}, domain.RoleParticipant, tb.w.ID)
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.f.srv.URL+"/signin/"+token), waitText("header", "Next on this tablet")); err != nil {
		t.Fatal(err)
	}
	if pageKept() {
		t.Fatal("after someone else signed in the last person's page is still kept")
	}
	openAndKeep := func() {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !pageKept(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the page is not kept")
			}
		}
	}
	openAndKeep()
	// The session ends on the server (signed out elsewhere, expired): the
	// page answers 401 and the copy goes.
	if _, err := tb.f.store.DB().ExecContext(context.Background(), "DELETE FROM sessions"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitNone("#workshop")); err != nil {
		t.Fatal(err)
	}
	if pageKept() {
		t.Fatal("after the session ended the page is still kept")
	}
	_, token = mustInvite(t, tb.f.store, tb.f.event.ID, store.PersonInput{Name: "Third on this tablet"}, domain.RoleParticipant, tb.w.ID)
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.f.srv.URL+"/signin/"+token), waitText("header", "Third on this tablet")); err != nil {
		t.Fatal(err)
	}
	openAndKeep()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/auth/logout"] button`)), waitNone(`form[action="/auth/logout"]`)); err != nil {
		t.Fatal(err)
	}
	if pageKept() {
		t.Fatal("after signing out the page is still kept")
	}
}

// TestTabletPageKeptForAnotherPersonSendsNothing: a page kept on the
// device for one person (A), whose connection comes back signed in as
// someone else (B, who signed in on the same browser meanwhile), sends
// none of A's unsent changes in B's name: it loads B's page instead, and
// A's changes stay on the device under A.
func TestTabletPageKeptForAnotherPersonSendsNothing(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	b := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "NO", "ngo")
	base, _ := url.Parse(tb.f.srv.URL)
	var bSession string
	for _, c := range b.http.Jar.Cookies(base) {
		if c.Name == "rapporteur_session" {
			bSession = c.Value
		}
	}
	if bSession == "" {
		t.Fatal("B has no session cookie")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err := chromedp.Do(ctx,
		waitText("#status", "Offline"),
		typeFinding("Unsent by A"),
		waitText("#findings li.pending", "Unsent by A"),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, network.SetCookie, network.SetCookieParams{Name: "rapporteur_session", Value: bSession, URL: tb.f.srv.URL + "/"})
			return err
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	err = chromedp.Do(ctx,
		pollAcross(fmt.Sprintf(`document.getElementById("workshop") && document.getElementById("workshop").dataset.person === "%d"`, b.id), "B's page"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if n := tb.findings(t, "Unsent by A"); n != 0 {
		t.Fatalf("A's unsent finding was saved %d times under B's session", n)
	}
	if q := tb.stored(t, ctx, "queue"); !strings.Contains(q, "Unsent by A") {
		t.Fatalf("A's unsent finding is no longer kept under A: %q", q)
	}
}

// TestTabletKeepsChangesWhenStorageIsFull: with the device's storage full,
// a finding typed offline is still kept on the device (the page's copy of
// the room goes first: the server has it) and sent once the server is
// back; a damaged entry in storage does not stop the page.
func TestTabletKeepsChangesWhenStorageIsFull(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	key := fmt.Sprintf("rapporteur:%d:%s", tb.person.ID, store.WorkshopRoom(tb.w.ID))
	err := chromedp.Do(ctx,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		// Damaged entries, as a bug or another program might leave them.
		evalJS(fmt.Sprintf(`localStorage.setItem(%q, "null"); localStorage.setItem(%q, "5"); localStorage.setItem(%q, "{}")`, key+":queue", key+":failed", key+":state2")),
		chromedp.Reload(),
		waitText("#status", "Live"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err = chromedp.Do(ctx,
		waitText("#status", "Offline"),
		evalJS(`for (let n = 1 << 20, i = 0; n > 0; n >>= 1) { try { for (;;) localStorage.setItem("junk-" + n + "-" + i++, "x".repeat(n)); } catch (e) {} }`),
		typeFinding("Kept though storage is full"),
		waitText("#findings li.pending", "Kept though storage is full"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if q := tb.stored(t, ctx, "queue"); !strings.Contains(q, "Kept though storage is full") {
		t.Fatalf("with the storage full the finding is not kept on the device: queue %q", q)
	}
	if err := chromedp.Do(ctx, evalJS(`Object.keys(localStorage).filter(k => k.startsWith("junk-")).forEach(k => localStorage.removeItem(k))`)); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	if err := chromedp.Do(ctx, waitText("#status", "every change is saved"), waitText("#findings li.saved", "Kept though storage is full")); err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Kept though storage is full")
}

// TestTabletStorageWritesAllOrNothing: when the device's storage takes
// the unsent list but not the next one, a page offline lets go of the
// change (and says so, the text staying in the form); the list written
// must not bring it back at the next save and send it behind the
// person's back.
func TestTabletStorageWritesAllOrNothing(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	other := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err := chromedp.Do(ctx,
		waitText("#status", "Offline"),
		evalJS(`window.realSetItem = Storage.prototype.setItem;
			Storage.prototype.setItem = function (k, v) {
				if (String(k).endsWith(":failed")) throw new DOMException("full", "QuotaExceededError");
				return window.realSetItem.call(this, k, v);
			}`),
		typeFinding("Let go of, never sent"),
		waitText("#form-error", "storage is full"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if q := tb.stored(t, ctx, "queue"); strings.Contains(q, "Let go of, never sent") {
		t.Fatalf("the change let go of is still in the stored queue: %q", q)
	}
	// Storage works again, the server is back; the next message makes the
	// page save and merge.
	if err := chromedp.Do(ctx, evalJS(`Storage.prototype.setItem = window.realSetItem`)); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	if err := chromedp.Do(ctx, waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.f.store.CreateFinding(context.Background(), &other.id, tb.w.ID, "after", store.FindingInput{Title: "A later finding"}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, waitText("#findings li.saved", "A later finding"), waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // what a resurrected op would need to reach the server
	if n := tb.findings(t, "Let go of, never sent"); n != 0 {
		t.Fatalf("a change the page said it could not keep was saved %d times", n)
	}
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name=title]`))); err != nil || v != "Let go of, never sent" {
		t.Fatalf("the form holds %q (%v), want the text still there", v, err)
	}
}

// TestTabletRemembersOnlyItsOwnSettledOps: the list of settled op ids
// that keeps other tabs from resending a change holds this device's ops,
// not every entry of the room (those would push its own out of it).
func TestTabletRemembersOnlyItsOwnSettledOps(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	other := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := tb.f.store.CreateFinding(context.Background(), &other.id, tb.w.ID, fmt.Sprintf("theirs-%d", i), store.FindingInput{Title: fmt.Sprintf("Theirs %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	err := chromedp.Do(ctx,
		waitText("#findings", "Theirs 2"),
		typeFinding("Mine"),
		waitText("#findings li.saved", "Mine"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	done := tb.stored(t, ctx, "done")
	var ids []string
	if err := json.Unmarshal([]byte(done), &ids); err != nil {
		t.Fatalf("stored done list %q: %v", done, err)
	}
	if len(ids) != 1 || strings.HasPrefix(ids[0], "theirs-") {
		t.Fatalf("settled op ids kept: %q, want only this device's one", ids)
	}
}

// TestTabletMakesRoomByDroppingOtherRoomsCopies: when the device's storage
// is full of copies of other rooms (other groups, other people of a shared
// tablet), a change typed is still kept: those copies go, as they are the
// server's to send again, and a draft typed in the form is kept too.
func TestTabletMakesRoomByDroppingOtherRoomsCopies(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err := chromedp.Do(ctx,
		waitText("#status", "Offline"),
		evalJS(`for (let n = 1 << 20, i = 0; n > 0; n >>= 1) { try { for (;;) localStorage.setItem("rapporteur:999:workshop:" + i++ + ":state", "x".repeat(n)); } catch (e) {} }`),
		// Longer than this room's own copy, which alone would not make room.
		evalJS(`document.querySelector("#new-finding textarea[name=what_done]").value = "y".repeat(20000)`),
		typeFinding("Kept in place of other rooms"),
		waitText("#findings li.pending", "Kept in place of other rooms"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if q := tb.stored(t, ctx, "queue"); !strings.Contains(q, "Kept in place of other rooms") {
		t.Fatalf("the change is not kept on the device: queue %q", q)
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#form-error"))); err != nil || strings.Contains(msg, "storage is full") {
		t.Fatalf("form error %q (%v), want none", msg, err)
	}
	MustStart(t, tb.env)
	if err := chromedp.Do(ctx, waitText("#status", "every change is saved"), waitText("#findings li.saved", "Kept in place of other rooms")); err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Kept in place of other rooms")
}

// TestTabletShowsWhatThePersonSupports: the room's entries do not say who
// voted, so the page asks on each join which findings the person supports.
// Support turns into Take back support once saved; a vote from another
// device shows after a reload; taking support back removes the vote.
func TestTabletShowsWhatThePersonSupports(t *testing.T) {
	tb := MustTablet(t)
	ctx := context.Background()
	fs, err := tb.f.store.WorkshopFindings(ctx, tb.w.ID)
	if err != nil || len(fs) < 2 {
		t.Fatalf("demo findings: %v, %d", err, len(fs))
	}
	first, second := fs[0], fs[1]
	votes := func(id int64) int {
		t.Helper()
		var n int
		if err := tb.f.store.DB().NewRaw("SELECT count(*) FROM votes WHERE finding_id = ? AND person_id = ?", id, tb.person.ID).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	item := func(id int64) string { return fmt.Sprintf(`#findings li[data-id="%d"]`, id) }
	err = chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		// A double tap: the second lands on Take back support, drawn at once.
		evalJS(fmt.Sprintf(`document.querySelector(%q).click(); document.querySelector(%q).click()`, item(first.ID)+" button.vote", item(first.ID)+" button.unvote")),
		waitText(item(first.ID)+" button.unvote", "Take back support"),
		waitText(item(first.ID)+" .state", "you support it"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if n := votes(first.ID); n != 1 {
		t.Fatalf("%d votes of the person on the first finding, want 1", n)
	}
	// A vote given on another device shows after a reload.
	if _, err := tb.f.store.Vote(ctx, tb.person.ID, tb.w.ID, "other-device", second.ID); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		waitText(item(second.ID)+" button.unvote", "Take back support"),
		waitText(item(first.ID)+" button.unvote", "Take back support"),
		tap(item(first.ID)+" button.unvote"),
		waitText(item(first.ID)+" button.vote", "Support"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if n, m := votes(first.ID), votes(second.ID); n != 0 || m != 1 {
		t.Fatalf("votes of the person: %d on the first finding (want 0, taken back), %d on the second (want 1)", n, m)
	}
	// A participant gets none of the rapporteur's controls.
	shown, err := chromedp.Run(tb.browser, chromedp.Evaluate[string](`getComputedStyle(document.getElementById("km-form")).display + " " + document.querySelectorAll("button.mark-key, button.unmark-key, button.up, button.down").length`))
	if err != nil || shown != "none 0" {
		t.Fatalf("the rapporteur's controls on a participant's page: %q (%v), want the key messages' box hidden and no key buttons", shown, err)
	}
}

// TestTabletSaysASupportIsNotSavedYet: support given while the server is
// away is shown as kept on this device, not as saved, until it is.
func TestTabletSaysASupportIsNotSavedYet(t *testing.T) {
	tb := MustTablet(t)
	demo, item := tb.demoFinding(t)
	if err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	if err := chromedp.Do(tb.browser, waitText("#status", "Offline"), tap(item+" button.vote"),
		waitText(item+" .state", "your support: on this device, not saved yet")); err != nil {
		t.Fatal(err)
	}
	if s, err := chromedp.Run(tb.browser, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, item+" .state"))); err != nil || strings.Contains(s, "you support it") {
		t.Fatalf("an unsent support reads %q (%v)", s, err)
	}
	MustStart(t, tb.env)
	if err := chromedp.Do(tb.browser, waitText("#status", "every change is saved"), waitText(item+" .state", "you support it")); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tb.f.store.DB().NewRaw("SELECT count(*) FROM votes WHERE finding_id = ? AND person_id = ?", demo.ID, tb.person.ID).Scan(context.Background(), &n); err != nil || n != 1 {
		t.Fatalf("%d votes of the person (%v), want 1", n, err)
	}
}

// TestTabletShowsASupportAnotherTabSavedWhileItWasBusy: as
// TestTabletShowsASupportAnotherTabSaved, but the other tab is busy while
// the vote is sent and saved. Its copy of the storage lags meanwhile: it
// writes its older lists over the device's, and never reads the vote in
// the queue. The storage's events still tell it that a vote came and was
// settled. (A CI run failed so, the other tab slow on a loaded machine.)
func TestTabletShowsASupportAnotherTabSavedWhileItWasBusy(t *testing.T) {
	tb := MustTablet(t)
	_, item := tb.demoFinding(t)
	a, b := tb.twoTabs(t)
	err := chromedp.Do(b, withholdEntries(`"kind":"vote"`), waitText(item+" button.vote", "Support"),
		evalJS(`setTimeout(() => { const t = Date.now(); while (Date.now() - t < 3000) {} }, 0)`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(a, tap(item+" button.vote"), waitText(item+" .state", "you support it"), waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(b, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, pollAcross(fmt.Sprintf(`(() => { const li = document.querySelector(%q); return !!li && li.querySelector(".state").textContent.includes("you support it") && !!li.querySelector("button.unvote"); })()`, item), "the support saved")); err != nil {
		shown, _ := chromedp.Run(b, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, item)))
		t.Fatalf("the other tab shows %q (%v), want the support saved", shown, err)
	}
}

// TestTabletShowsASupportAnotherTabSaved: the person supports a finding
// in one tab; the other tab hears of it only from the device (it sends
// nothing, and the vote's entry has not reached it: it waits for an
// earlier one of another server process, say). That tab shows the support
// as saved, as the server says, not the Support button of before.
func TestTabletShowsASupportAnotherTabSaved(t *testing.T) {
	tb := MustTablet(t)
	_, item := tb.demoFinding(t)
	a, b := tb.twoTabs(t)
	err := chromedp.Do(b, withholdEntries(`"kind":"vote"`),
		evalJS(`const send = WebSocket.prototype.send;
			WebSocket.prototype.send = function (d) { if (!String(d).includes('"type":"op"')) send.call(this, d); }`),
		waitText(item+" button.vote", "Support"))
	if err != nil {
		t.Fatal(err)
	}
	// The tab that votes knows its vote: it asks the server nothing.
	countAsks := evalJS(`window.asks = 0; const get = window.fetch;
		window.fetch = function (u, o) { if (String(u).includes("/my-votes")) window.asks++; return get.call(this, u, o); }`)
	if err := chromedp.Do(a, countAsks, tap(item+" button.vote"), waitText(item+" .state", "you support it"), waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(b, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, pollAcross(fmt.Sprintf(`(() => { const li = document.querySelector(%q); return !!li && document.getElementById("status").textContent.includes("every change is saved") && li.querySelector(".state").textContent.includes("you support it") && !!li.querySelector("button.unvote"); })()`, item), "the support saved")); err != nil {
		shown, _ := chromedp.Run(b, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, item)))
		t.Fatalf("the other tab shows %q (%v), want the support saved", shown, err)
	}
	if asks, err := chromedp.Run(a, chromedp.Evaluate[int](`window.asks`)); err != nil || asks != 0 {
		t.Errorf("the voting tab asked for the person's supports %d times (%v), want none", asks, err)
	}
}

// TestTabletTakesBothShapesOfUpdateEntries: an update's entry carries
// what changed; a process of the older version, during an upgrade, logs
// the whole finding instead. The page applies both. And a copy of the
// room kept by a page of the older version (under ":state"), which
// skipped entries of the new shape, is not trusted.
func TestTabletTakesBothShapesOfUpdateEntries(t *testing.T) {
	tb := MustTablet(t)
	ctx := context.Background()
	fs, err := tb.f.store.WorkshopFindings(ctx, tb.w.ID)
	if err != nil || len(fs) == 0 {
		t.Fatalf("demo findings: %v, %d", err, len(fs))
	}
	f := fs[0]
	item := fmt.Sprintf(`#findings li[data-id="%d"] h3`, f.ID)
	room := store.WorkshopRoom(tb.w.ID)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	if err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.f.store.UpdateFinding(ctx, nil, tb.w.ID, "new-shape", f.ID, f.Version, map[string]json.RawMessage{"title": raw("Changed, new shape")}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tb.browser, waitText(item, "Changed, new shape")); err != nil {
		t.Fatal(err)
	}
	// As an older process logs it: the whole finding (from the database,
	// as it writes it), under "finding".
	older := f
	older.Title, older.Version = "Changed, older shape", f.Version+2
	_, err = tb.f.store.DB().ExecContext(ctx, `WITH r AS (UPDATE rooms SET seq = seq + 1 WHERE id = ? RETURNING seq)
		INSERT INTO log_entries (room, seq, op_id, kind, payload) SELECT ?, r.seq, 'older-shape', 'finding.update', ?::jsonb FROM r`,
		room, room, string(raw(map[string]any{"finding": older, "fields": []string{"title"}})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.f.store.DB().ExecContext(ctx, "SELECT pg_notify(?, ? || ' ' || (SELECT seq FROM rooms WHERE id = ?))", store.NotifyChannel, room, room); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tb.browser, waitText(item, "Changed, older shape")); err != nil {
		t.Fatal(err)
	}
	// An older page's copy: up to date by its seq, but without a change.
	prefix := fmt.Sprintf("rapporteur:%d:%s:", tb.person.ID, room)
	err = chromedp.Do(tb.browser, evalJS(fmt.Sprintf(`const kept = JSON.parse(localStorage.getItem(%q));
		kept.findings[%d].title = "Stale in an older page's copy";
		localStorage.setItem(%q, JSON.stringify(kept)); localStorage.removeItem(%q)`, prefix+"state2", f.ID, prefix+"state", prefix+"state2")),
		chromedp.Reload(), waitText("#status", "Live"), waitText(item, "Changed, older shape"))
	if err != nil {
		t.Fatalf("the page trusted an older page's copy: %v", err)
	}
}

// keyItem selects key finding id in the tablet page's list of key findings.
func keyItem(id int64) string { return fmt.Sprintf(`#key-findings li[data-id="%d"]`, id) }

// keyOrderShown waits until the tablet page lists the key findings ids, in
// that order.
func keyOrderShown(ids ...int64) chromedp.Action[chromedp.Void] {
	list := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ids)), ","), "[]")
	return pollAcross(fmt.Sprintf(`Array.from(document.querySelectorAll("#key-findings li")).map(li => li.dataset.id).join(",") === %q`, list), "key findings "+list)
}

// TestTabletDeleteOrKeyChangeOverANewerEditIsNotSaved: a delete and a key
// unmark made offline carry the version the tablet saw; someone else's
// change meanwhile (new results, a key mark undone and made again) makes
// them conflicts when the server is back: not saved, and shown as such,
// with the finding and the other's change kept.
func TestTabletDeleteOrKeyChangeOverANewerEditIsNotSaved(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	ctx, st := context.Background(), tb.f.store
	fs, err := st.WorkshopFindings(ctx, tb.w.ID)
	if err != nil || len(fs) < 2 {
		t.Fatalf("demo findings: %v, %d", err, len(fs))
	}
	gone, key := fs[0], fs[1]
	if _, err := st.MarkKey(ctx, nil, tb.w.ID, "setup mark", key.ID, 0); err != nil {
		t.Fatal(err)
	}
	other := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	item := func(id int64) string { return fmt.Sprintf(`#findings li[data-id="%d"]`, id) }
	err = chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		waitText(item(key.ID)+" .state", "key finding"),
		evalJS(`window.confirm = () => true`),
		// Changes typed in the finding's form go with the delete.
		tap(item(gone.ID)+" button.edit"),
		waitText("#form-title", "Edit"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=results]`), " Typed before the delete."),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else's results come while the form is open: the delete's
	// question shows them, its base has them; the form's base does not.
	a, err := st.UpdateFinding(ctx, &other.id, tb.w.ID, "other results", gone.ID, gone.Version, map[string]json.RawMessage{"results": json.RawMessage(`"Results the other wrote"`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tb.browser, pollAcross(fmt.Sprintf(`Object.keys(localStorage).some(k => k.endsWith(":state2") && JSON.parse(localStorage[k]).seq >= %d)`, a.Entry.Seq), "the other's results")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err = chromedp.Do(tb.browser,
		waitText("#status", "Offline"),
		tap(item(gone.ID)+" button.delete"),
		waitNone(item(gone.ID)+".saved"),
		tap(item(key.ID)+" button.unmark-key"),
		waitText("#status", "kept on this device"),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile, someone else: what was done; the key finding unmarked
	// and marked again (by the server: no person is the tablet's).
	if _, err := st.UpdateFinding(ctx, &other.id, tb.w.ID, "other what", gone.ID, gone.Version+1, map[string]json.RawMessage{"what_done": json.RawMessage(`"Done, says the other"`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UnmarkKey(ctx, nil, tb.w.ID, "other unmark", key.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.MarkKey(ctx, nil, tb.w.ID, "other mark", key.ID, 0); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	err = chromedp.Do(tb.browser,
		waitText("#findings li.failed", "Not saved: Someone else changed what was done since version"),
		waitText("#findings li.failed", "Not saved: Someone else made this finding a key finding since version"),
		waitText(item(gone.ID)+".saved", gone.Title),
		waitText(item(key.ID)+" .state", "key finding"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := st.Finding(ctx, gone.ID); err != nil || f.WhatDone != "Done, says the other" {
		t.Fatalf("the finding deleted over the other's text: %+v, %v; want it kept with it", f, err)
	}
	if f, err := st.Finding(ctx, key.ID); err != nil || !f.IsKey {
		t.Fatalf("the key finding unmarked over the other's mark: %+v, %v; want it key", f, err)
	}
	// The delete refused, the form's changes come back as the form had
	// them, on the version it was opened at: saved, they are a conflict
	// with the other's results (which this page has by now, so it shows
	// both and sends nothing), not written over them.
	err = chromedp.Do(tb.browser,
		tap(`#findings li.failed button.edit`),
		waitText("#form-title", "Edit"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := chromedp.Run(tb.browser, chromedp.Value(chromedp.CSS(`textarea[name=results]`))); err != nil || !strings.HasSuffix(v, " Typed before the delete.") {
		t.Fatalf("the form after Edit again holds %q (%v), want the text typed before the delete", v, err)
	}
	err = chromedp.Do(tb.browser,
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#form-error", "Changed meanwhile"),
		waitText(`#new-finding .theirs[data-field=results]`, "Results the other wrote"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := st.Finding(ctx, gone.ID); err != nil || f.Results != "Results the other wrote" {
		t.Fatalf("after saving the form again: results %q (%v), want the other's", f.Results, err)
	}
}

// TestTabletDeleteNotKeptLeavesTheForm: a delete the device cannot keep
// (its storage full) is not sent, and the changes typed in the finding's
// form stay in the form, as the page says. (Online it would be sent, kept
// by the page alone: see TestADeviceWhoseStorageTakesNothingStillSaves.)
func TestTabletDeleteNotKeptLeavesTheForm(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	demo, item := tb.demoFinding(t)
	if err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err := chromedp.Do(tb.browser,
		waitText("#status", "Offline"),
		evalJS(`window.confirm = () => true`),
		tap(item+" button.edit"),
		waitText("#form-title", "Edit"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=results]`), " TYPED"),
		evalJS(`const put = Storage.prototype.setItem;
			Storage.prototype.setItem = function (k, v) {
				if (k.endsWith(":queue")) throw new DOMException("full", "QuotaExceededError");
				return put.call(this, k, v);
			}`),
		tap(item+" button.delete"),
		waitText("#form-error", "Your text is still here"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := chromedp.Run(tb.browser, chromedp.Value(chromedp.CSS(`textarea[name=results]`))); err != nil || !strings.HasSuffix(v, " TYPED") {
		t.Fatalf("the form holds %q (%v), want the typed changes", v, err)
	}
	if _, err := tb.f.store.Finding(context.Background(), demo.ID); err != nil {
		t.Fatalf("the finding after a delete not kept: %v, want it there", err)
	}
}

// TestTabletDeleteAsksWithAllTheFindingHolds: the question before a
// delete shows every field of the finding as the room's entries left it
// on the tablet, including one the list does not show that someone else
// just changed: the delete, which names that version, deletes nothing
// unseen.
func TestTabletDeleteAsksWithAllTheFindingHolds(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	ctx, st := context.Background(), tb.f.store
	fs, err := st.WorkshopFindings(ctx, tb.w.ID)
	if err != nil || len(fs) == 0 {
		t.Fatalf("demo findings: %v, %d", err, len(fs))
	}
	gone := fs[0]
	other := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	item := fmt.Sprintf(`#findings li[data-id="%d"]`, gone.ID)
	err = chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		waitText(item, gone.Title),
		evalJS(`window.asked = []; window.confirm = (m) => { window.asked.push(m); return true; }`),
	)
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.UpdateFinding(ctx, &other.id, tb.w.ID, "other results", gone.ID, gone.Version,
		map[string]json.RawMessage{"results": json.RawMessage(`"Results the other wrote"`)})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(tb.browser,
		pollAcross(fmt.Sprintf(`Object.keys(localStorage).some(k => k.endsWith(":state2") && JSON.parse(localStorage[k]).seq >= %d)`, a.Entry.Seq), "the other's entry"),
		tap(item+" button.delete"),
		waitNone(item),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	asked, err := chromedp.Run(tb.browser, chromedp.Evaluate[string](`window.asked.join("|")`))
	if err != nil || !strings.Contains(asked, "Results or evidence: Results the other wrote") || !strings.Contains(asked, "What was done: ") {
		t.Fatalf("the delete asked %q (%v), want every field, the other's results among them", asked, err)
	}
	if _, err := st.Finding(ctx, gone.ID); domain.ErrorCode(err) != domain.NotFound {
		t.Fatalf("after the delete: %v, want not found", err)
	}

	// The question is about the version the delete names: a title this
	// device saved and has not sent yet is not in it, the room's is; and
	// a contact someone gave since, never carried, is said to be there.
	next := fs[1]
	item = fmt.Sprintf(`#findings li[data-id="%d"]`, next.ID)
	err = chromedp.Do(tb.browser,
		evalJS(`window.asked = [];
			const send = WebSocket.prototype.send; // an update held on the way, as on a slow link
			WebSocket.prototype.send = function (d) { if (String(d).includes('"finding.update"')) return; return send.call(this, d); }`),
		tap(item+" button.edit"),
		waitText("#form-title", "Edit"),
		evalJS(`document.querySelector("#new-finding input[name=title]").value = "Mine, not sent"`),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText(item, "Mine, not sent"),
	)
	if err != nil {
		t.Fatal(err)
	}
	a, err = st.UpdateFinding(ctx, &other.id, tb.w.ID, "other title and contact", next.ID, next.Version, map[string]json.RawMessage{
		"title": json.RawMessage(`"Theirs"`), "contact_consent": json.RawMessage(`true`), "contact_name": json.RawMessage(`"Anna Contact"`)})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(tb.browser,
		pollAcross(fmt.Sprintf(`Object.keys(localStorage).some(k => k.endsWith(":state2") && JSON.parse(localStorage[k]).seq >= %d)`, a.Entry.Seq), "the other's title"),
		tap(item+" button.delete"),
	)
	if err != nil {
		t.Fatal(err)
	}
	asked, err = chromedp.Run(tb.browser, chromedp.Evaluate[string](`window.asked.join("|")`))
	if err != nil || !strings.Contains(asked, "Delete \u201cTheirs\u201d") || !strings.Contains(asked, "A contact is given") {
		t.Fatalf("the delete asked %q (%v), want the room's title and the contact", asked, err)
	}
}

// TestRapporteurPicksAndOrdersKeyFindings: on the rapporteur's tablet,
// findings are marked key, listed as the plenary will have them, moved
// up, and one is taken out again; each tap is saved, in order. A mark
// made offline is kept on the device, shown as not saved, and sent when
// the server is back. A participant's page offers none of it.
func TestRapporteurPicksAndOrdersKeyFindings(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	ctx := context.Background()
	fs, err := tb.f.store.WorkshopFindings(ctx, tb.w.ID)
	if err != nil || len(fs) < 2 {
		t.Fatalf("demo findings: %v, %d", err, len(fs))
	}
	first, second := fs[0], fs[1]
	item := func(id int64) string { return fmt.Sprintf(`#findings li[data-id="%d"]`, id) }
	keyOrder := func() []int64 {
		t.Helper()
		var ids []int64
		if err := tb.f.store.DB().NewRaw("SELECT id FROM findings WHERE workshop_id = ? AND is_key ORDER BY key_position", tb.w.ID).Scan(ctx, &ids); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	err = chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		tap(item(first.ID)+" button.mark-key"),
		waitText(keyItem(first.ID)+" .state", "Saved"),
		tap(item(second.ID)+" button.mark-key"),
		waitText(keyItem(second.ID)+" .state", "Saved"),
		keyOrderShown(first.ID, second.ID),
		waitText(item(first.ID)+" .state", "key finding"),
		tap(keyItem(second.ID)+" button.up"),
		keyOrderShown(second.ID, first.ID),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := keyOrder(); !slices.Equal(got, []int64{second.ID, first.ID}) {
		t.Fatalf("key findings in the database: %v, want [%d %d]", got, second.ID, first.ID)
	}
	err = chromedp.Do(tb.browser,
		// A second tap on the same finding's button within 0.8 s is taken
		// as a double tap, and ignored: this one comes later.
		chromedp.Sleep(time.Second),
		tap(item(second.ID)+" button.unmark-key"),
		keyOrderShown(first.ID),
		waitText("#status", "every change is saved"),
		// After a reload, from the server's log (the device's copy dropped).
		evalJS(fmt.Sprintf(`localStorage.removeItem("rapporteur:%d:%s:state2")`, tb.person.ID, store.WorkshopRoom(tb.w.ID))),
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		keyOrderShown(first.ID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := keyOrder(); !slices.Equal(got, []int64{first.ID}) {
		t.Fatalf("key findings in the database after the unmark: %v, want [%d]", got, first.ID)
	}
	// Offline: the mark stays on the device, shown as not saved, and is
	// sent when the server is back.
	tb.f.srv.Stop(t)
	err = chromedp.Do(tb.browser,
		waitText("#status", "Offline"),
		tap(item(second.ID)+" button.mark-key"),
		waitText(keyItem(second.ID)+".pending .state", "not saved yet"),
		keyOrderShown(first.ID, second.ID),
		waitText("#status", "kept on this device"),
	)
	if err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	if err := chromedp.Do(tb.browser, waitText("#status", "every change is saved"), waitText(keyItem(second.ID)+".saved .state", "Saved")); err != nil {
		t.Fatal(err)
	}
	if got := keyOrder(); !slices.Equal(got, []int64{first.ID, second.ID}) {
		t.Fatalf("key findings in the database after the reconnect: %v, want [%d %d]", got, first.ID, second.ID)
	}
	// A participant's page of the same group: no rapporteur's controls.
	part := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "SE", "ngo")
	resp, err := part.http.Get(tb.page)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `data-curate=""`) {
		t.Errorf("a participant's page offers the rapporteur's controls:\n%.1500s", page)
	}
}

// TestTabletShowsAKeyOrderOthersOvertook: a new order of the key findings
// made offline, while someone else marks another finding, is laid over
// the key findings as they are when the tablet catches up (the other's
// mark shown, and saved); the server then refuses it (it no longer names
// every key finding), and the tablet says so among the changes not saved
// and shows the server's order. A key finding edited elsewhere keeps its
// place (the edit's entry carries the database's position, which has
// gaps where findings were unmarked).
func TestTabletShowsAKeyOrderOthersOvertook(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	ctx := context.Background()
	fs, err := tb.f.store.WorkshopFindings(ctx, tb.w.ID)
	if err != nil || len(fs) < 2 {
		t.Fatalf("demo findings: %v, %d", err, len(fs))
	}
	a, b := fs[0].ID, fs[1].ID
	made := map[string]int64{}
	for _, title := range []string{"Gone 1", "Gone 2", "Third finding"} {
		if _, err := tb.f.store.CreateFinding(ctx, nil, tb.w.ID, "create-"+title, store.FindingInput{Title: title}); err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := tb.f.store.DB().NewRaw("SELECT id FROM findings WHERE title = ?", title).Scan(ctx, &id); err != nil {
			t.Fatal(err)
		}
		made[title] = id
	}
	third := made["Third finding"]
	for i, id := range []int64{made["Gone 1"], made["Gone 2"], a, b} {
		if _, err := tb.f.store.MarkKey(ctx, nil, tb.w.ID, fmt.Sprintf("mark-%d", i), id, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []int64{made["Gone 1"], made["Gone 2"]} {
		if _, err := tb.f.store.UnmarkKey(ctx, nil, tb.w.ID, fmt.Sprintf("unmark-%d", i), id, 0); err != nil {
			t.Fatal(err)
		}
	}
	err = chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		keyOrderShown(a, b),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err = chromedp.Do(tb.browser,
		waitText("#status", "Offline"),
		tap(keyItem(b)+" button.up"),
		keyOrderShown(b, a),
		waitText(keyItem(b)+".pending .state", "not saved yet"),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile, on another device: the third marked. The room's lock is
	// then held, so that the tablet's order, once resent, waits.
	if _, err := tb.f.store.MarkKey(ctx, nil, tb.w.ID, "mark-third", third, 0); err != nil {
		t.Fatal(err)
	}
	tx, err := tb.f.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE rooms SET seq = seq WHERE id = ?", store.WorkshopRoom(tb.w.ID)); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	err = chromedp.Do(tb.browser,
		waitText("#status", "Saving 1 change"), // caught up, the order sent and waiting
		keyOrderShown(b, a, third),
		waitText(keyItem(third)+".saved .state", "Saved"),
		waitText(keyItem(b)+".pending .state", "not saved yet"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(tb.browser,
		waitText("#findings li.failed h3", "A new order of the key findings"),
		keyOrderShown(a, b, third),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The first edited elsewhere: it stays first.
	cur, err := tb.f.store.Finding(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.f.store.UpdateFinding(ctx, nil, tb.w.ID, "edit-a", a, cur.Version, map[string]json.RawMessage{"title": json.RawMessage(`"Edited elsewhere"`)}); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(tb.browser,
		waitText(keyItem(a)+" h3", "Edited elsewhere"),
		keyOrderShown(a, b, third),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// TestTabletKeyMoveOverAnotherOrderIsAConflict: a move of a key finding
// made offline, while someone else reordered the key findings, is not
// saved over their order: the server refuses it (it names the order it
// moved), the tablet says so among the changes not saved, and shows and
// keeps the other's order.
func TestTabletKeyMoveOverAnotherOrderIsAConflict(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	ctx := context.Background()
	if _, err := tb.f.store.CreateFinding(ctx, nil, tb.w.ID, "create-third", store.FindingInput{Title: "Third finding"}); err != nil {
		t.Fatal(err)
	}
	fs, err := tb.f.store.WorkshopFindings(ctx, tb.w.ID)
	if err != nil || len(fs) < 3 {
		t.Fatalf("findings: %v, %d", err, len(fs))
	}
	a, b, c := fs[0].ID, fs[1].ID, fs[2].ID
	for i, id := range []int64{a, b, c} {
		if _, err := tb.f.store.MarkKey(ctx, nil, tb.w.ID, fmt.Sprintf("mark-%d", i), id, 0); err != nil {
			t.Fatal(err)
		}
	}
	err = chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		keyOrderShown(a, b, c),
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err = chromedp.Do(tb.browser,
		waitText("#status", "Offline"),
		tap(keyItem(c)+" button.up"),
		keyOrderShown(a, c, b),
		waitText(keyItem(c)+".pending .state", "not saved yet"),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile, on the organizer's laptop: the second put first.
	if _, err := tb.f.store.ReorderKey(ctx, nil, tb.w.ID, "their-order", []int64{b, a, c}, []int64{a, b, c}); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	err = chromedp.Do(tb.browser,
		waitText("#findings li.failed h3", "A new order of the key findings"),
		keyOrderShown(b, a, c),
	)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	if err := tb.f.store.DB().NewRaw("SELECT id FROM findings WHERE workshop_id = ? AND is_key ORDER BY key_position", tb.w.ID).Scan(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int64{b, a, c}) {
		t.Fatalf("key findings in the database: %v, want the other's order [%d %d %d]", got, b, a, c)
	}
}

// TestRapporteurWritesKeyMessages: the group's key messages are written
// on the rapporteur's tablet. Text typed and not saved is kept on the
// device through a reload; a save made offline is kept and sent when the
// server is back; and when someone else saved meanwhile, the tablet shows
// both texts instead of saving over theirs, and "Edit again" saves the
// rapporteur's knowingly.
func TestRapporteurWritesKeyMessages(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	ctx := context.Background()
	saved := func() (string, int) {
		t.Helper()
		w, err := tb.f.store.Workshop(ctx, tb.w.ID)
		if err != nil {
			t.Fatal(err)
		}
		return w.KeyMessages, w.KeyMessagesVersion
	}
	box := `#km-form textarea[name=text]`
	err := chromedp.Do(tb.browser,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(box), "Referral works when agencies share one checklist."),
		waitText("#km-state", "Written here"),
		chromedp.Navigate(tb.page), // not saved: kept on the device
		waitText("#status", "Live"),
		pollAcross(fmt.Sprintf(`document.querySelector(%q).value === "Referral works when agencies share one checklist."`, box), "the typed text after a reload"),
		tap(`#km-form button[type=submit]`),
		waitText("#km-state", "Saved"),
		waitText("#km-shown", "Referral works"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if text, v := saved(); text != "Referral works when agencies share one checklist." || v != 1 {
		t.Fatalf("key messages saved: %q, version %d", text, v)
	}
	// Written on at once, over the rapporteur's own save: no conflict.
	err = chromedp.Do(tb.browser,
		chromedp.SendKeys(chromedp.CSS(box), " And it is cheap."),
		tap(`#km-form button[type=submit]`),
		waitText("#km-shown", "And it is cheap."),
		waitText("#km-state", "Saved"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if text, v := saved(); text != "Referral works when agencies share one checklist. And it is cheap." || v != 2 {
		t.Fatalf("key messages saved again: %q, version %d", text, v)
	}

	// Offline, while someone else saves theirs.
	tb.f.srv.Stop(t)
	err = chromedp.Do(tb.browser,
		waitText("#status", "Offline"),
		evalJS(fmt.Sprintf(`const b = document.querySelector(%q); b.value = ""; b.dispatchEvent(new Event("input", {bubbles: true}))`, box)),
		chromedp.SendKeys(chromedp.CSS(box), "Mine, written offline."),
		tap(`#km-form button[type=submit]`),
		waitText("#km-state", "not saved yet"),
		waitText("#km-shown.pending", "Mine, written offline."),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.f.store.SetKeyMessages(ctx, nil, tb.w.ID, "elsewhere", 2, "Theirs, saved elsewhere."); err != nil {
		t.Fatal(err)
	}
	MustStart(t, tb.env)
	err = chromedp.Do(tb.browser,
		waitText("#findings li.failed h3", "Key messages"),
		waitText("#findings li.failed .conflict", "Now: Theirs, saved elsewhere."),
		waitText("#findings li.failed .conflict", "Yours (not saved): Mine, written offline."),
		waitText("#km-shown", "Theirs, saved elsewhere."),
	)
	if err != nil {
		t.Fatal(err)
	}
	if text, v := saved(); text != "Theirs, saved elsewhere." || v != 3 {
		t.Fatalf("after the conflict: %q, version %d; want theirs kept", text, v)
	}
	err = chromedp.Do(tb.browser,
		tap(`#findings li.failed button.edit`),
		pollAcross(fmt.Sprintf(`document.querySelector(%q).value === "Mine, written offline."`, box), "the rapporteur's text back in the box"),
		tap(`#km-form button[type=submit]`),
		waitText("#km-state", "Saved"),
		waitText("#status", "every change is saved"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if text, v := saved(); text != "Mine, written offline." || v != 4 {
		t.Fatalf("saved again: %q, version %d", text, v)
	}
}

// TestTabletKeepsKeyMessagesOfAClosedTab: key messages typed in a tab
// that was then closed, and not saved, are taken in by the next page of
// the group on the device; two tabs do not write over each other's text.
func TestTabletKeepsKeyMessagesOfAClosedTab(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	a := tb.browser
	box := `#km-form textarea[name=text]`
	err := chromedp.Do(a,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(box), "Typed in a closed tab."),
		waitText("#km-state", "Written here"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tabA := tb.keptBy(t, a, "km")
	// Tab B, open meanwhile, types its own: A's text stays kept.
	b, closeB := chromedp.NewContext(a)
	defer closeB()
	err = chromedp.Do(b,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		chromedp.SendKeys(chromedp.CSS(box), "Typed in tab B."),
		waitText("#km-state", "Written here"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if s := tb.stored(t, b, "km:"+tabA); !strings.Contains(s, "Typed in a closed tab.") {
		t.Fatalf("tab A's text after tab B typed: %q", s)
	}
	// A is closed; B saves and is closed too; a new page takes A's text.
	if err := chromedp.Do(a, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, tap(`#km-form button[type=submit]`), waitText("#km-state", "Saved"), chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	c, closeC := chromedp.NewContext(a)
	defer closeC()
	alive := fmt.Sprintf("rapporteur:%d:%s:alive:%s", tb.person.ID, store.WorkshopRoom(tb.w.ID), tabA)
	err = chromedp.Do(c,
		chromedp.Navigate(tb.page),
		waitText("#status", "Live"),
		// A was alive moments ago (it may be back, from the page cache):
		// its text is not taken yet.
		pollAcross(fmt.Sprintf(`document.querySelector(%q).value === "Typed in tab B."`, box), "the group's key messages in the new page's box"),
		// Tab A's last sign of life is made old, rather than waited for;
		// the open page takes its text in at its next sign of life.
		evalJS(fmt.Sprintf(`localStorage.setItem(%q, "0")`, alive)),
		pollAcross(fmt.Sprintf(`document.querySelector(%q).value === "Typed in a closed tab."`, box), "tab A's key messages in the new page's box"),
		waitText("#km-state", "Written here"),
		waitText("#km-shown", "Typed in tab B."),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// TestTabletOffersNoDeleteOfWhatTheRapporteurChose: the server refuses a
// participant's delete of a key finding or of one shared with the event
// (TestOnlyTheRapporteurDeletesWhatTheyChose), so a participant's tablet
// does not offer it; other findings keep their Delete button, and the
// rapporteur's tablet offers it on those. A released finding only an
// organizer may change: no one else is offered Edit or Delete of it.
func TestTabletOffersNoDeleteOfWhatTheRapporteurChose(t *testing.T) {
	for _, role := range []string{domain.RoleParticipant, domain.RoleRapporteur, domain.RoleOrganizer} {
		t.Run(role, func(t *testing.T) {
			tb := mustTabletAs(t, nil, role)
			ctx := context.Background()
			for _, title := range []string{"Plain", "Released"} {
				if _, err := tb.f.store.CreateFinding(ctx, nil, tb.w.ID, title, store.FindingInput{Title: title}); err != nil {
					t.Fatal(err)
				}
			}
			fs, err := tb.f.store.WorkshopFindings(ctx, tb.w.ID)
			if err != nil || len(fs) < 4 {
				t.Fatalf("findings: %v, %d", err, len(fs))
			}
			if _, err := tb.f.store.MarkKey(ctx, nil, tb.w.ID, "k", fs[0].ID, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := tb.f.store.ShareFinding(ctx, nil, tb.w.ID, "s", fs[1].ID); err != nil {
				t.Fatal(err)
			}
			if _, err := tb.f.store.SetFindingRelease(ctx, nil, tb.w.ID, "r", fs[3].ID, domain.Released); err != nil {
				t.Fatal(err)
			}
			del := func(id int64) string { return fmt.Sprintf(`#findings li[data-id="%d"] button.delete`, id) }
			if err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live"),
				pollAcross(fmt.Sprintf(`document.querySelector(%q) !== null`, del(fs[2].ID)), "a Delete button of a plain finding")); err != nil {
				t.Fatal(err)
			}
			edit := fmt.Sprintf(`#findings li[data-id="%d"] button.edit`, fs[3].ID)
			shown, err := chromedp.Run(tb.browser, chromedp.Evaluate[[]bool](fmt.Sprintf(`[%q, %q, %q, %q].map(s => document.querySelector(s) !== null)`,
				del(fs[0].ID), del(fs[1].ID), del(fs[3].ID), edit)))
			if err != nil {
				t.Fatal(err)
			}
			curate, organizer := role != domain.RoleParticipant, role == domain.RoleOrganizer
			if want := []bool{curate, curate, organizer, organizer}; !slices.Equal(shown, want) {
				t.Errorf("Delete of the key, the shared and the released finding, Edit of the released one: shown %v, want %v", shown, want)
			}
		})
	}
}

// TestReportAuthorsTabletSaysHowManyAreHere: the room names no one to a
// report author (TestReportAuthorsSeeNoNamesInAWorkshop); their page says
// how many others are there instead, and no name.
func TestReportAuthorsTabletSaysHowManyAreHere(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleReportAuthor)
	p := tb.f.MustMember(t, domain.RoleParticipant, &tb.w, "FI", "police").Dial(t, tb.f.srv.URL)
	p.join(t, store.WorkshopRoom(tb.w.ID), 0)
	if err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#presence", "1 other person here")); err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(tb.browser, chromedp.Evaluate[string](`document.getElementById("presence").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(shown, "participant") {
		t.Errorf("a report author's page names who is here: %q", shown)
	}
}

// TestSigningOutForgetsTheRoomsCopy: signing out on a device drops the
// copy of the room its workshop pages keep (a group's drafts, for the next
// person to pick up a shared tablet to read in the browser's storage), in
// the tab signed out in and in another tab open on the room; what was
// typed and not yet saved stays, to be sent once its person is back.
func TestSigningOutForgetsTheRoomsCopy(t *testing.T) {
	tb := MustTablet(t)
	f, _ := tb.demoFinding(t)
	draft := f.Title
	a, b := tb.twoTabs(t)
	if err := chromedp.Do(a, waitText("#findings", draft)); err != nil {
		t.Fatal(err)
	}
	if s := tb.stored(t, a, "state2"); !strings.Contains(s, draft) {
		t.Fatalf("the device keeps no copy of the room to forget: %q", s)
	}
	drop := tb.failCreating(t, "Typed before signing out")
	defer drop()
	if err := chromedp.Do(a, typeFinding("Typed before signing out"), waitText("#findings li.pending", "Typed before signing out")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(a, tap(`form[action="/auth/logout"] button`), waitNone(`form[action="/auth/logout"]`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, waitText("#status", "Signed out")); err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector("#findings").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(shown, draft) {
		t.Errorf("the other tab still shows the group's finding %q after the sign-out", draft)
	}
	if !strings.Contains(shown, "Typed before signing out") {
		t.Errorf("the other tab no longer shows what was typed and not saved: %q", shown)
	}
	// A page that goes to the background saves: it must not write the copy back.
	if err := chromedp.Do(b, evalJS(`document.dispatchEvent(new Event("visibilitychange"))`)); err != nil {
		t.Fatal(err)
	}
	if s := tb.stored(t, a, "state2"); s != "" {
		t.Errorf("the room's copy is still on the device after signing out: %.200s", s)
	}
	if q := tb.stored(t, a, "queue"); !strings.Contains(q, "Typed before signing out") {
		t.Errorf("signing out lost what was typed and not saved: %q", q)
	}

	// Signed in again, the room's copy is back; signing out from a page
	// without the room open (the event's page) forgets it too.
	_, token := mustInvite(t, tb.f.store, tb.f.event.ID, store.PersonInput{Name: "Another user"}, domain.RoleParticipant, tb.w.ID)
	if err := chromedp.Do(b, chromedp.Navigate(tb.f.srv.URL+"/signin/"+token), chromedp.Navigate(tb.page), waitText("#status", "Live"),
		waitText("#findings", draft)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, chromedp.Navigate(tb.f.srv.URL+"/events/"+tb.f.event.Slug)); err != nil {
		t.Fatal(err)
	}
	kept, err := chromedp.Run(b, chromedp.Evaluate[int](`Object.keys(localStorage).filter(k => /:state2$/.test(k)).length`))
	if err != nil || kept == 0 {
		t.Fatalf("no room's copy kept after signing in again (%v)", err)
	}
	if err := chromedp.Do(b, tap(`form[action="/auth/logout"] button`), waitNone(`form[action="/auth/logout"]`)); err != nil {
		t.Fatal(err)
	}
	if kept, err := chromedp.Run(b, chromedp.Evaluate[int](`Object.keys(localStorage).filter(k => /:state2?$/.test(k)).length`)); err != nil || kept != 0 {
		t.Errorf("%d copies of rooms still on the device after signing out from the event's page (%v)", kept, err)
	}
}

// TestATabThatMissedTheSignOutKeepsNoCopy: a tab whose link was down when
// the device was signed out in another page never hears its 4001; the
// sign-out's time kept on the device (signout.js) stops it writing its
// copy of the room back from then on.
func TestATabThatMissedTheSignOutKeepsNoCopy(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	if s := tb.stored(t, ctx, "state2"); s == "" {
		t.Fatal("the device keeps no copy of the room")
	}
	// Another page signed the device out just now (this one heard nothing).
	if err := chromedp.Do(ctx, evalJS(`localStorage.setItem("rapporteur:signedout", String(Date.now() + 1000))`),
		typeFinding("Typed after the sign-out elsewhere")); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, waitText("#findings li.saved", "Typed after the sign-out elsewhere"),
		pollAcross(fmt.Sprintf(`localStorage.getItem(%q) === null`, tb.storeKey("state2")), "the room's copy dropped")); err != nil {
		t.Errorf("the tab wrote its copy of the room after a sign-out on the device: %v", err)
	}
	if q := tb.stored(t, ctx, "queue") + tb.stored(t, ctx, "done"); q == "" {
		t.Error("the tab stopped keeping its lists")
	}
}

// TestTheNextPersonsPageDropsTheFormerCopy: someone signs in on a tablet
// whose last person did not sign out; their workshop page drops the copy
// of the room kept for the last person (theirs to read, not this one's).
func TestTheNextPersonsPageDropsTheFormerCopy(t *testing.T) {
	tb := MustTablet(t)
	ctx := tb.browser
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	if s := tb.stored(t, ctx, "state2"); s == "" {
		t.Fatal("the device keeps no copy of the room")
	}
	_, token := mustInvite(t, tb.f.store, tb.f.event.ID, store.PersonInput{Name: "Next user"}, domain.RoleParticipant, tb.w.ID)
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.f.srv.URL+"/signin/"+token), chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	if s := tb.stored(t, ctx, "state2"); s != "" {
		t.Errorf("the copy kept for the last person is still on the device: %.100s", s)
	}
}

// TestAPageLeftOpenByTheLastPersonKeepsNoCopy: the last person's page is
// still open in a tab when the next person signs in on the device and
// opens theirs. The sign-in ends the last person's session, and their
// page at once says so and stops keeping its copy of the room (it would
// write it back on every change it hears of).
func TestAPageLeftOpenByTheLastPersonKeepsNoCopy(t *testing.T) {
	tb := MustTablet(t)
	a := tb.browser
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	b, closeB := chromedp.NewContext(a)
	defer closeB()
	_, token := mustInvite(t, tb.f.store, tb.f.event.ID, store.PersonInput{Name: "Next user"}, domain.RoleParticipant, tb.w.ID)
	if err := chromedp.Do(b, chromedp.Navigate(tb.f.srv.URL+"/signin/"+token), chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	dropped := fmt.Sprintf(`localStorage.getItem(%q) === null`, tb.storeKey("state2"))
	wait, cancel := context.WithTimeout(a, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, waitText("#status", "Signed out"), pollAcross(dropped, "the old page's copy dropped")); err != nil {
		t.Fatalf("the last person's page: %v", err)
	}
	// A change in the room: the old page does not write its copy back.
	if err := chromedp.Do(b, typeFinding("Typed by the next person"), waitText("#findings li.saved", "Typed by the next person")); err != nil {
		t.Fatal(err)
	}
	if kept, err := chromedp.Run(a, chromedp.Evaluate[bool](`!(`+dropped+`)`)); err != nil || kept {
		t.Errorf("the last person's page keeps its copy of the room again (%v)", err)
	}
}

// TestTheKeyListDoesNotCallAnUnsentTitleSaved: on the rapporteur's
// tablet a key finding's title is edited while the server is away. The
// findings list says the edit is "On this device · not saved yet"; the key
// findings list above it shows the same new title, and must not label it
// "Saved".
func TestTheKeyListDoesNotCallAnUnsentTitleSaved(t *testing.T) {
	tb := mustTabletAs(t, nil, domain.RoleRapporteur)
	fs, err := tb.f.store.WorkshopFindings(context.Background(), tb.w.ID)
	if err != nil || len(fs) == 0 {
		t.Fatalf("demo findings: %v, %d", err, len(fs))
	}
	f := fs[0]
	item := fmt.Sprintf(`#findings li[data-id="%d"]`, f.ID)
	err = chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live"),
		tap(item+" button.mark-key"), waitText(keyItem(f.ID)+" .state", "Saved"), waitText("#status", "every change is saved"))
	if err != nil {
		t.Fatal(err)
	}
	tb.f.srv.Stop(t)
	err = chromedp.Do(tb.browser, waitText("#status", "Offline"),
		tap(item+" button.edit"), waitText("#form-title", "Edit"),
		setField("input[name=title]", "Retitled offline"),
		chromedp.Click(chromedp.CSS(`#new-finding button[type=submit]`)),
		waitText("#status", "kept on this device"),
		waitText(item+".pending", "not saved yet"),
		waitText(keyItem(f.ID), "Retitled offline"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := chromedp.Run(tb.browser, chromedp.Text(chromedp.CSS(keyItem(f.ID))))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(key, "Retitled offline") && strings.Contains(key, "Saved") {
		t.Fatalf("the key findings list shows the unsent title as saved: %q", key)
	}
}

// countSockets counts the WebSockets the page opens, and the joins the
// server refuses as rate_limited, with when (performance.now()).
const countSockets = `window.wsLog = [];
	(() => {
		const W = window.WebSocket;
		const C = function (u, p) {
			const s = p === undefined ? new W(u) : new W(u, p);
			window.wsLog.push({ open: performance.now() });
			s.addEventListener("message", e => String(e.data).split("\n").forEach(l => {
				if (l.includes('"code":"rate_limited"')) window.wsLog.push({ refused: performance.now(), line: l });
			}));
			return s;
		};
		C.prototype = W.prototype; C.CONNECTING = 0; C.OPEN = 1; C.CLOSING = 2; C.CLOSED = 3;
		window.WebSocket = C;
	})()`

// TestAJoinRefusedForTheSnapshotBudgetWaitsAsTold: the person's snapshot
// budget is in debt (big room, several snapshot joins of theirs). The page
// joins with a snapshot: refused as rate_limited with retry_after_ms. The
// page must not join again before that wait (PROTOCOL.md: "join again
// after the wait"); each early join is one more refused connection. It
// says the server is busy meanwhile (not "Offline"), and joins on the
// same connection once the wait is over.
func TestAJoinRefusedForTheSnapshotBudgetWaitsAsTold(t *testing.T) {
	tb := MustTablet(t)
	room := store.WorkshopRoom(tb.w.ID)
	long := strings.Repeat("x", 19000)
	for i := 0; i < 180; i++ {
		if _, err := tb.f.store.CreateFinding(context.Background(), &tb.person.ID, tb.w.ID, fmt.Sprintf("big-%d-%d", i, time.Now().UnixNano()),
			store.FindingInput{Title: fmt.Sprintf("Big %d", i), WhatDone: long, Results: long, Transferability: long, NordicProposal: long}); err != nil {
			t.Fatal(err)
		}
	}
	a := tb.browser
	if err := chromedp.Do(a, chromedp.Navigate(tb.page), waitText("#status", "Live"), waitText("#findings", "Big 179")); err != nil {
		t.Fatal(err)
	}
	// The person's other snapshot joins (another tab, another device).
	spend := fmt.Sprintf(`window.spent = [];
		(async () => {
			for (let i = 0; i < 3; i++) {
				await new Promise(res => {
					const s = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
					s.onopen = () => s.send(JSON.stringify({ type: "join", room: %q, since: -1 }));
					s.onmessage = e => { const d = String(e.data);
						if (d.includes('"type":"joined"') || d.includes('"type":"error"')) { window.spent.push(d.slice(0, 160)); s.close(); res(); } };
				});
			}
			window.spentDone = true;
		})()`, room)
	if err := chromedp.Do(a, evalJS(spend), pollAcross(`window.spentDone === true`, "the other joins")); err != nil {
		t.Fatal(err)
	}
	spent, _ := chromedp.Run(a, chromedp.Evaluate[string](`JSON.stringify(window.spent)`))
	t.Logf("other joins: %s", spent)
	// The page is loaded again without its copy: its join needs a snapshot.
	drop := fmt.Sprintf(`localStorage.removeItem(%q)`, tb.storeKey("state2"))
	if err := chromedp.Do(a, onEveryPage(drop), onEveryPage(countSockets), chromedp.Navigate(tb.page),
		pollAcross(`window.wsLog && window.wsLog.some(x => x.refused)`, "a refused join")); err != nil {
		t.Fatal(err)
	}
	line, _ := chromedp.Run(a, chromedp.Evaluate[string](`window.wsLog.find(x => x.refused).line`))
	var f struct {
		Detail struct {
			RetryAfterMS int64 `json:"retry_after_ms"`
		} `json:"detail"`
	}
	_ = json.Unmarshal([]byte(line), &f)
	t.Logf("refused: %s", line)
	wait := time.Duration(f.Detail.RetryAfterMS) * time.Millisecond
	if wait < time.Second {
		t.Fatalf("retry after %v: the budget is not in debt enough for this test", wait)
	}
	time.Sleep(wait - 300*time.Millisecond)
	status, _ := chromedp.Run(a, chromedp.Text(chromedp.CSS("#status")))
	log, _ := chromedp.Run(a, chromedp.Evaluate[string](`(() => { const r = window.wsLog.find(x => x.refused).refused;
		return JSON.stringify(window.wsLog.map(x => x.open !== undefined ? "open@" + Math.round(x.open - r) : "refused@" + Math.round(x.refused - r))); })()`))
	opens, _ := chromedp.Run(a, chromedp.Evaluate[int](`(() => { const r = window.wsLog.find(x => x.refused).refused; return window.wsLog.filter(x => x.open > r).length; })()`))
	if opens > 0 {
		t.Fatalf("told to wait %v, the page opened %d connections (and joined) within it (ms from the first refusal): %s", wait, opens, log)
	}
	if !strings.Contains(status, "The server is busy") {
		t.Fatalf("while its join waits as told, the status says %q", status)
	}
	if err := chromedp.Do(a, waitText("#status", "Live"), waitText("#findings", "Big 179")); err != nil {
		t.Fatalf("the join again after the wait: %v", err)
	}
}
