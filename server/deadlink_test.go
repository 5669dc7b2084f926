package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rapporteur/rapporteur/server/store"
)

// linkProxy forwards TCP connections to a server. freeze turns the
// connections open at that moment into dead links that still look open,
// as after a tablet slept or changed access point: what they carry either
// way is dropped, and nothing closes them. New connections work.
type linkProxy struct {
	addr     string
	upgrades atomic.Int32 // WebSocket connections asked for (GET /ws)
	mu       sync.Mutex
	links    []*link
	conns    []net.Conn
	stopped  bool
}

// link is one forwarded connection.
type link struct {
	dead    atomic.Bool // what it carries is dropped
	ws      atomic.Bool // the browser asked for a WebSocket on it
	open    atomic.Bool // and sent on it after the handshake (its join): it is open
	mu      sync.Mutex  // held over each write to the browser
	browser net.Conn
}

// startLinkProxy listens on a port of its own and forwards to target.
func startLinkProxy(t *testing.T, target string) *linkProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{addr: l.Addr().String()}
	var open sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		p.stopped = true
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		open.Wait()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			ln := &link{browser: c}
			p.mu.Lock()
			if p.stopped {
				p.mu.Unlock()
				c.Close()
				s.Close()
				return
			}
			p.links = append(p.links, ln)
			p.conns = append(p.conns, c, s)
			open.Add(2)
			p.mu.Unlock()
			pipe := func(dst, src net.Conn, fromBrowser bool) {
				defer open.Done()
				defer dst.Close()
				defer src.Close()
				buf := make([]byte, 32<<10)
				for first := true; ; first = false {
					n, err := src.Read(buf)
					if first && fromBrowser && bytes.HasPrefix(buf[:n], []byte("GET /ws ")) {
						p.upgrades.Add(1)
						ln.ws.Store(true)
					} else if fromBrowser && n > 0 && ln.ws.Load() {
						ln.open.Store(true)
					}
					if n > 0 {
						if !fromBrowser {
							ln.mu.Lock()
						}
						var werr error
						if !ln.dead.Load() {
							_, werr = dst.Write(buf[:n])
						}
						if !fromBrowser {
							ln.mu.Unlock()
						}
						if werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			go pipe(s, c, true)
			go pipe(c, s, false)
		}
	}()
	return p
}

// freeze makes every connection open now a dead link.
func (p *linkProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.dead.Store(true)
	}
}

// kick closes the WebSockets open now as the server does: a close frame
// with code, then the end of the connection (only once open, as the
// server: a close frame in the handshake's place is no close code). It
// says how many it closed.
func (p *linkProxy) kick(code uint16) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.links {
		if !l.open.Load() || l.dead.Load() {
			continue
		}
		l.mu.Lock()
		l.dead.Store(true)
		l.browser.Write([]byte{0x88, 2, byte(code >> 8), byte(code)})
		l.browser.Close()
		l.mu.Unlock()
		n++
	}
	return n
}

// mustDeadLinkTablet is a tablet, live on its workshop page, that reaches
// its server through a linkProxy (BASE_URL is the proxy's, so the Origin
// check passes).
func mustDeadLinkTablet(t *testing.T) (*tablet, *linkProxy) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := startLinkProxy(t, addr)
	tb := MustTabletWith(t, map[string]string{"ADDR": addr, "BASE_URL": "http://" + p.addr})
	if !strings.Contains(tb.page, p.addr) {
		t.Fatalf("the page %s is not reached through the proxy %s", tb.page, p.addr)
	}
	if err := chromedp.Do(tb.browser, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	return tb, p
}

// TestTabletGivesUpADeadLinkSoon: a change typed while the link is dead
// but looks open is shown as not saved, and saved through a new
// connection within seconds: the page does not wait out the quiet-link
// watchdog (40 s before) while a change of the person waits for its answer.
func TestTabletGivesUpADeadLinkSoon(t *testing.T) {
	tb, p := mustDeadLinkTablet(t)
	ctx := tb.browser
	before := p.upgrades.Load()
	p.freeze()
	start := time.Now()
	err := chromedp.Do(ctx,
		typeFinding("Typed on a dead link"),
		waitText("#findings li.pending", "not saved yet"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, waitText("#findings li.saved", "Typed on a dead link")); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// 3 s before the ping and 8 s of patience after it, with room to spare
	// on a busy machine; the quiet-link watchdog alone takes 40 s.
	if took > 25*time.Second {
		t.Fatalf("the change was saved %v after it was typed on a dead link", took.Round(time.Millisecond))
	}
	if p.upgrades.Load() == before {
		t.Fatal("saved without a new connection: the link was not dead")
	}
	tb.mustBeSavedOnce(t, "Typed on a dead link")
	t.Logf("saved %v after it was typed on a dead link", took.Round(time.Millisecond))
}

// TestTabletChecksItsLinkWhenItWakes: a page shown again (a tablet woken
// from sleep) pings at once and, on a dead link, connects again within
// seconds, with nothing waiting to be sent.
func TestTabletChecksItsLinkWhenItWakes(t *testing.T) {
	tb, p := mustDeadLinkTablet(t)
	ctx := tb.browser
	before := p.upgrades.Load()
	p.freeze()
	start := time.Now()
	if err := chromedp.Do(ctx, evalJS(`document.dispatchEvent(new Event("visibilitychange"))`)); err != nil {
		t.Fatal(err)
	}
	// 8 s of patience after the ping, with room to spare on a busy
	// machine; the quiet-link watchdog alone takes 40 s.
	for p.upgrades.Load() == before {
		if time.Since(start) > 20*time.Second {
			t.Fatal("a woken page did not leave its dead link within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	if err := chromedp.Do(ctx, waitText("#status", "Live · every change is saved")); err != nil {
		t.Fatal(err)
	}
	t.Logf("connected again %v after waking on a dead link", took.Round(time.Millisecond))
}

// TestTabletWaitsOutASlowDatabase: a change the database holds up (the
// room's lock held elsewhere) is not taken for a dead link: the server
// answers the page's pings meanwhile, so the page keeps its connection,
// shows the change as not saved yet, and saves it once the lock goes.
func TestTabletWaitsOutASlowDatabase(t *testing.T) {
	tb, p := mustDeadLinkTablet(t)
	ctx := tb.browser
	before := p.upgrades.Load()
	bg := context.Background()
	tx, err := tb.f.store.DB().BeginTx(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(bg, "INSERT INTO rooms (id, seq) VALUES (?, 0) ON CONFLICT (id) DO UPDATE SET seq = rooms.seq", store.WorkshopRoom(tb.w.ID)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, typeFinding("Typed while the database is slow"), waitText("#findings li.pending", "not saved yet")); err != nil {
		t.Fatal(err)
	}
	// Longer than a ping's wait and patience (3 s and 8 s), and than the
	// statement timeout (9 s), after which the page sends it again.
	time.Sleep(16 * time.Second)
	if got := p.upgrades.Load(); got != before {
		t.Fatalf("the page connected anew %d time(s) while the database was slow", got-before)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, waitText("#findings li.saved", "Typed while the database is slow"), waitText("#status", "every change is saved")); err != nil {
		t.Fatal(err)
	}
	tb.mustBeSavedOnce(t, "Typed while the database is slow")
	if got := p.upgrades.Load(); got != before {
		t.Fatalf("the page connected anew %d time(s)", got-before)
	}
}

// TestTabletResumesAfterRepeatedKicksLessOften: a page closed with 4008
// (too slow for its room) resumes at once, but when the server keeps
// closing it, it waits longer each time rather than costing the server
// a catch-up every few hundred milliseconds; it is still live at the end.
func TestTabletResumesAfterRepeatedKicksLessOften(t *testing.T) {
	tb, p := mustDeadLinkTablet(t)
	ctx := tb.browser
	before := p.upgrades.Load()
	start := time.Now()
	if p.kick(4008) != 1 {
		t.Fatal("the tablet's WebSocket was not found on the proxy")
	}
	// The first resume is at once.
	for p.upgrades.Load() == before {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the page did not resume within 2 s of a 4008")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Then the server closes it again as soon as it is open, for 8 s.
	kicks := 1
	for time.Since(start) < 8*time.Second {
		kicks += p.kick(4008)
		time.Sleep(20 * time.Millisecond)
	}
	resumes := int(p.upgrades.Load() - before)
	// Waits of 0, 0.5–1, 1–2, 2–4 and 4–8 s: at most 5 resumes in 8 s.
	// At once each time, it was one per handshake and join.
	if resumes > 6 {
		t.Fatalf("%d resumes in 8 s of 4008s (%d kicks): the page does not wait longer as they repeat", resumes, kicks)
	}
	if resumes < 3 {
		t.Fatalf("only %d resumes in 8 s of 4008s", resumes)
	}
	if err := chromedp.Do(ctx, waitText("#status", "Live · every change is saved")); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d resumes, %d kicks in 8 s", resumes, kicks)
}
