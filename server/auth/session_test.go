package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestSessions(secure bool) (*Sessions, *MemorySessions, *clock) {
	st := NewMemorySessions()
	clk := &clock{t: time.Date(2021, 11, 18, 10, 0, 0, 0, time.UTC)}
	return NewSessions(st, SessionConfig{Secure: secure, Idle: time.Hour, Absolute: 3 * time.Hour, Now: clk.Now}), st, clk
}

func start(t *testing.T, m *Sessions, r *http.Request, person int64) (Session, *http.Cookie) {
	t.Helper()
	rec := httptest.NewRecorder()
	s, _, err := m.Start(context.Background(), rec, r, person)
	if err != nil {
		t.Fatal(err)
	}
	cs := rec.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("%d cookies", len(cs))
	}
	return s, cs[0]
}

func reqWith(c *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

func TestSessionCookieAndStorage(t *testing.T) {
	for _, secure := range []bool{false, true} {
		m, st, _ := newTestSessions(secure)
		s, c := start(t, m, reqWith(nil), 7)
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != secure || c.MaxAge != 3*3600 {
			t.Errorf("secure=%v: cookie %+v", secure, c)
		}
		if wantName := map[bool]string{false: "rapporteur_session", true: "__Host-rapporteur_session"}[secure]; c.Name != wantName {
			t.Errorf("cookie name %q", c.Name)
		}
		if len(c.Value) != 43 { // 32 bytes, base64url
			t.Errorf("token %q is not 32 random bytes", c.Value)
		}
		if s.ID != HashToken(c.Value) || s.ID == c.Value {
			t.Error("the store key is not the token's hash")
		}
		if _, err := st.GetSession(context.Background(), c.Value); !errors.Is(err, ErrNoSession) {
			t.Error("the raw token finds a session in the store")
		}
		if s.PersonID != 7 || len(s.CSRF) != 43 || s.CSRF == c.Value {
			t.Errorf("session %+v", s)
		}
		got, ok := m.Load(reqWith(c))
		if !ok || got.ID != s.ID || got.PersonID != 7 || got.CSRF != s.CSRF {
			t.Errorf("Load: %+v %v", got, ok)
		}
		if _, ok := m.Load(reqWith(&http.Cookie{Name: c.Name, Value: c.Value + "x"})); ok {
			t.Error("a wrong token loaded a session")
		}
		if _, ok := m.Load(reqWith(nil)); ok {
			t.Error("no cookie loaded a session")
		}
	}
}

func TestSessionRotationAtSignIn(t *testing.T) {
	m, st, _ := newTestSessions(false)
	old, oc := start(t, m, reqWith(nil), 1)
	// Signing in again from the same browser, even as another person,
	// never reuses the session id and kills the old one.
	s, nc := start(t, m, reqWith(oc), 2)
	if s.ID == old.ID || nc.Value == oc.Value || s.CSRF == old.CSRF {
		t.Fatal("session not rotated")
	}
	if _, err := st.GetSession(context.Background(), old.ID); !errors.Is(err, ErrNoSession) {
		t.Errorf("old session still stored: %v", err)
	}
	if _, ok := m.Load(reqWith(oc)); ok {
		t.Error("old cookie still signs in")
	}
	if got, ok := m.Load(reqWith(nc)); !ok || got.PersonID != 2 {
		t.Error("new session not loaded")
	}
	// Start names the session the cookie named, whose connections the
	// caller closes (even when it had ended already: they may not have).
	for _, tc := range []struct {
		cookie *http.Cookie
		want   string
	}{{nc, s.ID}, {oc, old.ID}, {nil, ""}} {
		_, replaced, err := m.Start(context.Background(), httptest.NewRecorder(), reqWith(tc.cookie), 3)
		if err != nil || replaced != tc.want {
			t.Errorf("Start with cookie %v: replaced %q (%v), want %q", tc.cookie, replaced, err, tc.want)
		}
	}
}

func TestSessionIdleTimeoutAndTouch(t *testing.T) {
	m, st, clk := newTestSessions(false)
	s, c := start(t, m, reqWith(nil), 1)
	ctx := context.Background()

	clk.Add(30 * time.Second)
	if got, ok := m.Load(reqWith(c)); !ok || !got.LastSeen.Equal(s.Created) {
		t.Fatalf("touched within the first minute: %+v", got)
	}
	clk.Add(31 * time.Second)
	got, ok := m.Load(reqWith(c))
	if !ok || !got.LastSeen.Equal(clk.Now()) {
		t.Fatalf("not touched after a minute: %+v", got)
	}
	if stored, _ := st.GetSession(ctx, s.ID); !stored.LastSeen.Equal(clk.Now()) {
		t.Fatalf("touch not stored: %+v", stored)
	}
	clk.Add(59 * time.Minute) // under an hour idle
	if _, ok := m.Load(reqWith(c)); !ok {
		t.Fatal("expired before the idle limit")
	}
	clk.Add(time.Hour) // an hour without a request
	if _, ok := m.Load(reqWith(c)); ok {
		t.Fatal("idle session loaded")
	}
	if _, err := st.GetSession(ctx, s.ID); !errors.Is(err, ErrNoSession) {
		t.Error("idle session not deleted")
	}
}

func TestSessionAbsoluteTimeout(t *testing.T) {
	m, st, clk := newTestSessions(false)
	s, c := start(t, m, reqWith(nil), 1)
	// Busy all the time, yet it ends 3 hours after sign-in.
	for i := 0; i < 5; i++ {
		clk.Add(30 * time.Minute)
		if _, ok := m.Load(reqWith(c)); !ok {
			t.Fatalf("ended early at %d", i)
		}
	}
	clk.Add(30 * time.Minute) // exactly 3h
	if _, ok := m.Load(reqWith(c)); ok {
		t.Fatal("session outlived the absolute limit")
	}
	if _, err := st.GetSession(context.Background(), s.ID); !errors.Is(err, ErrNoSession) {
		t.Error("expired session not deleted")
	}
}

func TestSessionEnd(t *testing.T) {
	m, st, _ := newTestSessions(true)
	s, c := start(t, m, reqWith(nil), 1)
	rec := httptest.NewRecorder()
	if err := m.End(context.Background(), rec, reqWith(c)); err != nil {
		t.Fatal(err)
	}
	cs := rec.Result().Cookies()
	if len(cs) != 1 || cs[0].MaxAge >= 0 || cs[0].Value != "" || !cs[0].Secure || !cs[0].HttpOnly {
		t.Errorf("clearing cookie %+v", cs)
	}
	if _, err := st.GetSession(context.Background(), s.ID); !errors.Is(err, ErrNoSession) {
		t.Error("session not deleted")
	}
	if _, ok := m.Load(reqWith(c)); ok {
		t.Error("ended session loads")
	}
}

func TestMemoryStoresConcurrent(t *testing.T) {
	st := NewMemorySessions()
	at := NewMemoryAttempts()
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				tok := randomToken(8)
				_ = st.CreateSession(ctx, Session{ID: tok})
				_, _ = st.GetSession(ctx, tok)
				_ = st.TouchSession(ctx, tok, time.Now())
				_ = st.DeleteSession(ctx, tok)
				_ = at.PutAttempt(ctx, Attempt{State: tok, Expires: time.Now().Add(time.Minute)})
				if _, err := at.TakeAttempt(ctx, tok); err != nil {
					t.Error(err)
				}
				if _, err := at.TakeAttempt(ctx, tok); !errors.Is(err, ErrNoAttempt) {
					t.Error("attempt taken twice")
				}
			}
		}()
	}
	wg.Wait()
	// Expired attempts are dropped on the next Put.
	_ = at.PutAttempt(ctx, Attempt{State: "old", Expires: time.Now().Add(-time.Second)})
	_ = at.PutAttempt(ctx, Attempt{State: "new", Expires: time.Now().Add(time.Minute)})
	if _, err := at.TakeAttempt(ctx, "old"); !errors.Is(err, ErrNoAttempt) {
		t.Error("expired attempt kept")
	}
}

// failingStore is a SessionStore whose database cannot answer.
type failingStore struct{ SessionStore }

func (failingStore) GetSession(context.Context, string) (Session, error) {
	return Session{}, errors.New("connection refused")
}

// TestSessionKeep: an open connection keeps its session in use; an expired
// or unknown session is not live; a store that cannot answer says nothing
// about the session (an error, not "ended").
func TestSessionKeep(t *testing.T) {
	m, st, clk := newTestSessions(false)
	ctx := context.Background()
	s, _ := start(t, m, reqWith(nil), 1)
	for range 3 { // 50 minutes apart, each under the hour's idle limit
		clk.Add(50 * time.Minute)
		if alive, err := m.Keep(ctx, s.ID); !alive || err != nil {
			t.Fatalf("Keep after 50 minutes: %v %v", alive, err)
		}
	}
	if stored, _ := st.GetSession(ctx, s.ID); !stored.LastSeen.Equal(clk.Now()) {
		t.Errorf("Keep did not count as use: last seen %v, now %v", stored.LastSeen, clk.Now())
	}
	if alive, err := m.Keep(ctx, "no-such-session"); alive || err != nil {
		t.Errorf("unknown session: %v %v, want not live and no error", alive, err)
	}
	clk.Add(3 * time.Hour) // past the absolute limit
	if alive, err := m.Keep(ctx, s.ID); alive || err != nil {
		t.Errorf("expired session: %v %v, want not live and no error", alive, err)
	}
	if _, err := st.GetSession(ctx, s.ID); !errors.Is(err, ErrNoSession) {
		t.Errorf("the expired session is still stored: %v", err)
	}
	down := NewSessions(failingStore{st}, SessionConfig{Now: clk.Now})
	if alive, err := down.Keep(ctx, s.ID); alive || err == nil {
		t.Errorf("a store that cannot answer: %v %v, want an error", alive, err)
	}
}
