package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
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
