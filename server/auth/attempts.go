package auth

import (
	"context"
	"sync"
	"time"
)

// Attempt is one OIDC sign-in in progress, kept server-side between Begin
// and Finish. State is its key.
type Attempt struct {
	State    string // random; sent to the provider and held in the browser's cookie
	Nonce    string // random; must come back inside the ID token
	Verifier string // PKCE code verifier; never leaves the server
	ReturnTo string // local path to go to after sign-in
	Expires  time.Time
}

// AttemptStore keeps sign-in attempts. TakeAttempt must be atomic get-and-
// delete (in Postgres: DELETE … RETURNING), so a state can be used once;
// it returns ErrNoAttempt when the state is unknown. Stores may keep
// expired attempts; Finish checks Expires itself.
type AttemptStore interface {
	PutAttempt(ctx context.Context, a Attempt) error
	TakeAttempt(ctx context.Context, state string) (Attempt, error)
}

// maxMemoryAttempts bounds the in-memory store against a flood of
// unauthenticated sign-in starts.
const maxMemoryAttempts = 10000

// MemoryAttempts is a concurrency-safe in-memory AttemptStore that drops
// expired attempts. For tests and single-process use.
type MemoryAttempts struct {
	mu  sync.Mutex
	m   map[string]Attempt
	now func() time.Time
}

// NewMemoryAttempts returns an empty in-memory AttemptStore.
func NewMemoryAttempts() *MemoryAttempts {
	return &MemoryAttempts{m: make(map[string]Attempt), now: time.Now}
}

// PutAttempt stores a, after dropping expired attempts.
func (s *MemoryAttempts) PutAttempt(_ context.Context, a Attempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.m {
		if now.After(v.Expires) {
			delete(s.m, k)
		}
	}
	if len(s.m) >= maxMemoryAttempts {
		return ErrTooManyAttempts
	}
	s.m[a.State] = a
	return nil
}

// TakeAttempt returns and deletes the attempt for state.
func (s *MemoryAttempts) TakeAttempt(_ context.Context, state string) (Attempt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.m[state]
	if !ok {
		return Attempt{}, ErrNoAttempt
	}
	delete(s.m, state)
	return a, nil
}
