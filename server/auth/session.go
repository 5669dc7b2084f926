package auth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Session is a signed-in browser as stored server-side. The browser's
// cookie holds a random 32-byte token; the store keeps only ID, the token's
// SHA-256 (HashToken), so a leaked session table cannot be replayed.
type Session struct {
	ID       string // HashToken(cookie token); the store's key
	PersonID int64
	CSRF     string // per-session CSRF token to echo in X-CSRF-Token / csrf_token
	Created  time.Time
	LastSeen time.Time
}

// SessionStore persists sessions. GetSession returns ErrNoSession (or an
// *AuthError with Code "no_session") when id is unknown.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	TouchSession(ctx context.Context, id string, seen time.Time) error
	DeleteSession(ctx context.Context, id string) error
}

// SessionConfig configures a Sessions manager. Zero values get defaults.
type SessionConfig struct {
	CookieName string           // default "__Host-rapporteur_session" when Secure, else "rapporteur_session"
	Secure     bool             // set the cookie's Secure flag (serve over https)
	Idle       time.Duration    // end a session unused this long; default 12h
	Absolute   time.Duration    // end a session this long after sign-in; default 7 days
	Now        func() time.Time // clock; default time.Now
}

// touchEvery limits LastSeen writes to one a minute per session.
const touchEvery = time.Minute

// Sessions issues, loads and ends cookie sessions.
type Sessions struct {
	store SessionStore
	cfg   SessionConfig
}

// NewSessions returns a session manager over store.
func NewSessions(store SessionStore, cfg SessionConfig) *Sessions {
	if cfg.CookieName == "" {
		cfg.CookieName = "rapporteur_session"
		if cfg.Secure {
			cfg.CookieName = "__Host-rapporteur_session"
		}
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 12 * time.Hour
	}
	if cfg.Absolute <= 0 {
		cfg.Absolute = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sessions{store: store, cfg: cfg}
}

// Start signs personID in: it deletes the session named by the request's
// cookie, if any, and always issues a new token (no session fixation).
// It returns the id of the session the cookie named ("" for none), whose
// live connections the caller closes: on a shared tablet it was perhaps
// another person's.
func (m *Sessions) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, personID int64) (s Session, replaced string, err error) {
	if c, err := r.Cookie(m.cfg.CookieName); err == nil && c.Value != "" {
		replaced = HashToken(c.Value)
		if err := m.store.DeleteSession(ctx, replaced); err != nil && !errors.Is(err, ErrNoSession) {
			return Session{}, "", asAuthError(err, "cannot end the previous session")
		}
	}
	token := randomToken(32)
	now := m.cfg.Now()
	s = Session{ID: HashToken(token), PersonID: personID, CSRF: randomToken(32), Created: now, LastSeen: now}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return Session{}, replaced, asAuthError(err, "cannot create the session")
	}
	http.SetCookie(w, m.cookie(token, int(m.cfg.Absolute/time.Second)))
	return s, replaced, nil
}

// Load returns the request's live session. An idle or too-old session is
// deleted and not returned. LastSeen is updated at most once a minute.
// Any store failure counts as "not signed in" (see Read).
func (m *Sessions) Load(r *http.Request) (Session, bool) {
	s, err := m.Read(r)
	return s, err == nil
}

// Read is Load telling why there is no session: ErrNoSession when the
// request has none (no cookie, or one of an ended session), another error
// when the store could not tell. A page must not take the latter for a
// sign-out: the tablet would forget what it keeps for its person.
func (m *Sessions) Read(r *http.Request) (Session, error) {
	c, err := r.Cookie(m.cfg.CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return Session{}, ErrNoSession
	}
	return m.use(r.Context(), HashToken(c.Value))
}

// Keep tells whether the session with ID id is still live, for a
// connection opened in it, and counts the connection as use (as Load
// counts a request): a tablet whose page stays open does not idle out.
// An ended or expired session is (false, nil); a store that cannot answer
// is an error, which says nothing about the session.
func (m *Sessions) Keep(ctx context.Context, id string) (bool, error) {
	_, err := m.use(ctx, id)
	if errors.Is(err, ErrNoSession) {
		return false, nil
	}
	return err == nil, err
}

// use returns the live session with ID id and marks it used: an idle or too-old
// session is deleted and is ErrNoSession, as is one that does not exist.
// LastSeen is updated at most once a minute.
func (m *Sessions) use(ctx context.Context, id string) (Session, error) {
	s, err := m.store.GetSession(ctx, id)
	if err != nil {
		return Session{}, err
	}
	now := m.cfg.Now()
	if now.Sub(s.Created) >= m.cfg.Absolute || now.Sub(s.LastSeen) >= m.cfg.Idle {
		_ = m.store.DeleteSession(ctx, id)
		return Session{}, ErrNoSession
	}
	if now.Sub(s.LastSeen) >= touchEvery {
		if m.store.TouchSession(ctx, id, now) == nil {
			s.LastSeen = now
		}
	}
	return s, nil
}

// End signs the browser out: the session is deleted and the cookie cleared.
func (m *Sessions) End(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, m.cookie("", -1))
	if c, err := r.Cookie(m.cfg.CookieName); err == nil && c.Value != "" {
		if err := m.store.DeleteSession(ctx, HashToken(c.Value)); err != nil && !errors.Is(err, ErrNoSession) {
			return asAuthError(err, "cannot delete the session")
		}
	}
	return nil
}

func (m *Sessions) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     m.cfg.CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   m.cfg.Secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// MemorySessions is a concurrency-safe in-memory SessionStore for tests
// and single-process use.
type MemorySessions struct {
	mu sync.Mutex
	m  map[string]Session
}

// NewMemorySessions returns an empty in-memory SessionStore.
func NewMemorySessions() *MemorySessions {
	return &MemorySessions{m: make(map[string]Session)}
}

// CreateSession stores s.
func (s *MemorySessions) CreateSession(_ context.Context, sess Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[sess.ID] = sess
	return nil
}

// GetSession returns the session with id, or ErrNoSession.
func (s *MemorySessions) GetSession(_ context.Context, id string) (Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if !ok {
		return Session{}, ErrNoSession
	}
	return sess, nil
}

// TouchSession sets LastSeen.
func (s *MemorySessions) TouchSession(_ context.Context, id string, seen time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if !ok {
		return ErrNoSession
	}
	sess.LastSeen = seen
	s.m[id] = sess
	return nil
}

// DeleteSession removes id; deleting an unknown id is not an error.
func (s *MemorySessions) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}
