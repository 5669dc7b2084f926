package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
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
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(tb.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// waitText waits until an element matching the CSS selector sel contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		js := fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).some(e => e.textContent.includes(%q))`, sel, want)
		if _, err := chromedp.Poll[bool](js)(ctx, t); err != nil {
			return fmt.Errorf("waiting for %q in %s: %w", want, sel, err)
		}
		return nil
	})
}

// TestTabletKeepsUnsavedFindingsAndResendsThem drives the workshop page
// in Chromium: a finding saved live, another typed while the server is
// down (kept on the device and shown as not saved), then resent by itself
// after the server is back, and saved exactly once.
func TestTabletKeepsUnsavedFindingsAndResendsThem(t *testing.T) {
	browser := MustBrowser(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	dsn := pg.NewDB(t)
	env := map[string]string{"DATABASE_URL": dsn, "ADDR": addr, "BASE_URL": "http://" + addr}
	f := MustFixture(t, env)
	w := f.ws[0]
	p, err := f.store.AddMember(context.Background(), nil, f.event.ID, store.PersonInput{Name: "Tablet user", Country: "FI", ActorType: "police"}, domain.RoleParticipant, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	token, hash := auth.NewInviteToken()
	if _, err := f.store.CreateInvite(context.Background(), store.Invite{EventID: f.event.ID, PersonID: p.ID, TokenHash: hash, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	page := fmt.Sprintf("%s/events/%s/workshops/%d", f.srv.URL, f.event.Slug, w.ID)
	err = chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+"/signin/"+token), // scanning the QR code
		chromedp.Navigate(page),
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
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("rapporteur:`+room+`:queue")`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stored, "Typed while offline") {
		t.Fatalf("the unsaved finding is not in the device's storage: %s", stored)
	}

	// The server is back: the page reconnects by itself and resends.
	MustStart(t, env)
	err = chromedp.Do(ctx,
		waitText("#status", "every change is saved"),
		waitText("#findings li.saved", "Typed while offline"),
	)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	f.store.DB().NewRaw("SELECT count(*) FROM findings WHERE title = 'Typed while offline'").Scan(context.Background(), &n)
	if n != 1 {
		t.Fatalf("%d findings typed offline in the database, want exactly 1", n)
	}
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
