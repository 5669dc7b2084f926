package main

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// linkProxy forwards TCP connections to a server. freeze turns the
// connections open at that moment into dead links that still look open,
// as after a tablet slept or changed access point: what they carry either
// way is dropped, and nothing closes them. New connections work.
type linkProxy struct {
	addr     string
	accepted atomic.Int32
	mu       sync.Mutex
	links    []*atomic.Bool // each connection's "dead"
	conns    []net.Conn
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
			p.accepted.Add(1)
			dead := new(atomic.Bool)
			p.mu.Lock()
			p.links = append(p.links, dead)
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			open.Add(2)
			pipe := func(dst, src net.Conn) {
				defer open.Done()
				defer dst.Close()
				defer src.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 && !dead.Load() {
						if _, err := dst.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return p
}

// freeze makes every connection open now a dead link.
func (p *linkProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.links {
		d.Store(true)
	}
}

// mustDeadLinkTablet is a tablet that reaches its server through a
// linkProxy (BASE_URL is the proxy's, so the Origin check passes).
func mustDeadLinkTablet(t *testing.T) (*tablet, *linkProxy) {
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
	return tb, p
}

// TestTabletGivesUpADeadLinkSoon: a change typed while the link is dead
// but looks open is shown as not saved, and saved through a new
// connection within seconds: the page does not wait out the quiet-link
// watchdog (40 s before) while a change of the person waits for its answer.
func TestTabletGivesUpADeadLinkSoon(t *testing.T) {
	tb, p := mustDeadLinkTablet(t)
	ctx := tb.browser
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	before := p.accepted.Load()
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
	if p.accepted.Load() == before {
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
	if err := chromedp.Do(ctx, chromedp.Navigate(tb.page), waitText("#status", "Live")); err != nil {
		t.Fatal(err)
	}
	before := p.accepted.Load()
	p.freeze()
	start := time.Now()
	if err := chromedp.Do(ctx, evalJS(`document.dispatchEvent(new Event("visibilitychange"))`)); err != nil {
		t.Fatal(err)
	}
	// 8 s of patience after the ping, with room to spare on a busy
	// machine; the quiet-link watchdog alone takes 40 s.
	for p.accepted.Load() == before {
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
