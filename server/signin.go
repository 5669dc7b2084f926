package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// authConfig is the sign-in configuration: staff OIDC and invite links.
type authConfig struct {
	Issuer       string // OIDC_ISSUER: empty means sign-in by OIDC is not offered
	ClientID     string // OIDC_CLIENT_ID
	ClientSecret string // OIDC_CLIENT_SECRET
	RolesClaim   string // OIDC_ROLES_CLAIM: claim with groups or roles, e.g. "groups"
	RoleMapText  string // OIDC_ROLE_MAP: "claim-value=role,…"
	Event        string // OIDC_EVENT: slug of the event the role map grants roles in (default: the first event)
	// TrustEmailText is OIDC_TRUST_EMAIL: "true" takes every email the
	// provider sends as verified (a provider, such as Entra ID, that
	// sends no email_verified, and whose addresses its admins manage).
	TrustEmailText string
	TrustEmail     bool
	InviteGrace    time.Duration
	RoleMap        map[string][]string // parsed RoleMapText: claim value → our roles
}

func authFlags(fs *flag.FlagSet, env func(k, def string) string, c *authConfig) {
	fs.StringVar(&c.Issuer, "oidc-issuer", env("OIDC_ISSUER", ""), "OIDC issuer URL for staff sign-in; empty: not offered (OIDC_ISSUER)")
	fs.StringVar(&c.ClientID, "oidc-client-id", env("OIDC_CLIENT_ID", ""), "OIDC client id (OIDC_CLIENT_ID)")
	// No default from the environment (parseConfig reads it): -help would print the secret.
	fs.StringVar(&c.ClientSecret, "oidc-client-secret", "", "OIDC client secret (OIDC_CLIENT_SECRET, or a file named by OIDC_CLIENT_SECRET_FILE)")
	fs.StringVar(&c.RolesClaim, "oidc-roles-claim", env("OIDC_ROLES_CLAIM", ""), "ID token claim with groups or roles, e.g. groups (OIDC_ROLES_CLAIM)")
	fs.StringVar(&c.RoleMapText, "oidc-role-map", env("OIDC_ROLE_MAP", ""), "claim values to roles, e.g. admins=organizer,authors=report_author (OIDC_ROLE_MAP)")
	fs.StringVar(&c.Event, "oidc-event", env("OIDC_EVENT", ""), "slug of the event OIDC_ROLE_MAP grants roles in; default the first event (OIDC_EVENT)")
	fs.StringVar(&c.TrustEmailText, "oidc-trust-email", env("OIDC_TRUST_EMAIL", "false"), "true: take the provider's emails as verified though it does not say so; only for a provider whose addresses its admins manage (OIDC_TRUST_EMAIL)")
	grace, err := time.ParseDuration(env("INVITE_GRACE", "168h"))
	if err != nil {
		grace = -1 // reported by check
	}
	fs.DurationVar(&c.InviteGrace, "invite-grace", grace, "how long sign-in links stay valid after the event ends (INVITE_GRACE)")
}

// check validates and parses the sign-in settings.
func (c *authConfig) check() error {
	if c.InviteGrace < 0 {
		return fmt.Errorf("INVITE_GRACE must be a duration such as 168h (7 days) or 72h")
	}
	trust, err := strconv.ParseBool(c.TrustEmailText)
	if err != nil {
		return fmt.Errorf("OIDC_TRUST_EMAIL must be true or false, not %q", c.TrustEmailText)
	}
	c.TrustEmail = trust
	if (c.Issuer == "") != (c.ClientID == "") {
		return fmt.Errorf("OIDC_ISSUER and OIDC_CLIENT_ID go together: set both for staff sign-in, or neither")
	}
	if c.Issuer != "" && !strings.HasPrefix(c.Issuer, "https://") && !strings.HasPrefix(c.Issuer, "http://") {
		return fmt.Errorf("OIDC_ISSUER %q must be the provider's issuer URL, e.g. https://login.example.org/realms/staff", c.Issuer)
	}
	c.RoleMap = map[string][]string{}
	for _, pair := range strings.Split(c.RoleMapText, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		claim, role, ok := strings.Cut(pair, "=")
		claim, role = strings.TrimSpace(claim), strings.TrimSpace(role)
		switch auth.Role(role) {
		case auth.RoleOrganizer, auth.RoleReportAuthor, auth.RoleObserver:
		default:
			ok = false
		}
		if !ok || claim == "" {
			return fmt.Errorf("OIDC_ROLE_MAP entry %q must be claim-value=role with role organizer, report_author or observer (workshop roles are given per person)", pair)
		}
		c.RoleMap[claim] = append(c.RoleMap[claim], role)
	}
	if len(c.RoleMap) > 0 && c.RolesClaim == "" {
		return fmt.Errorf("OIDC_ROLE_MAP needs OIDC_ROLES_CLAIM, the claim that carries the groups or roles (e.g. groups)")
	}
	return nil
}

// oidcClient discovers the provider on first use and keeps the client, so
// a provider that starts after the server (or is briefly down) only delays
// staff sign-in instead of stopping the server.
type oidcClient struct {
	cfg      auth.OIDCConfig
	discover func(context.Context, auth.OIDCConfig) (*auth.OIDC, error) // auth.NewOIDC with its HTTP client

	mu       sync.Mutex
	o        *auth.OIDC
	finding  chan struct{} // closed when the discovery under way ends; nil when none is
	err      error         // the last discovery's failure
	failedAt time.Time
}

// oidcRetry is how long a failed discovery is answered from memory: while
// the provider is down, requests are told so at once, not each made to
// wait for a discovery of its own.
const oidcRetry = 5 * time.Second

// get returns the client, discovering the provider if not done yet. One
// discovery runs at a time, in the request that began it; the others
// wait for its outcome, as long as their own requests last.
func (c *oidcClient) get(ctx context.Context) (o *auth.OIDC, err error) {
	c.mu.Lock()
	switch {
	case c.o != nil:
		defer c.mu.Unlock()
		return c.o, nil
	case c.finding != nil:
		wait := c.finding
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, &domain.Error{Code: domain.Unavailable, Message: "Staff sign-in is unavailable right now: the sign-in provider is slow to answer. Try again in a minute.", Err: ctx.Err()}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.o != nil {
			return c.o, nil
		}
		return nil, c.err
	case c.err != nil && time.Since(c.failedAt) < oidcRetry:
		defer c.mu.Unlock()
		return nil, c.err
	}
	done := make(chan struct{})
	c.finding = done
	c.mu.Unlock()
	// Whatever becomes of the discovery (a panic too: o and err are then
	// nil), its outcome is kept and the requests waiting for it go on.
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		defer close(done)
		c.finding = nil
		if o != nil {
			c.o = o
			return
		}
		if err == nil {
			err = errors.New("the provider's discovery ended without an answer")
		}
		c.err, c.failedAt = &domain.Error{Code: domain.Unavailable, Message: "Staff sign-in is unavailable right now: the sign-in provider cannot be reached. Try again in a minute.", Err: err}, time.Now()
		err = c.err
	}()
	// Not the request's context: the others wait for this discovery too.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return c.discover(dctx, c.cfg)
}

// newOIDCClient returns the staff sign-in client, or nil when OIDC is not configured.
func newOIDCClient(c authConfig, baseURL string, attempts auth.AttemptStore) *oidcClient {
	if c.Issuer == "" {
		return nil
	}
	scopes := []string{"openid", "email", "profile"}
	if c.RolesClaim == "groups" {
		scopes = append(scopes, "groups")
	}
	return &oidcClient{cfg: auth.OIDCConfig{
		Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		RedirectURL: baseURL + "/auth/callback", Scopes: scopes, RolesClaim: c.RolesClaim, Attempts: attempts,
	}, discover: func(ctx context.Context, cfg auth.OIDCConfig) (*auth.OIDC, error) {
		return auth.NewOIDC(ctx, cfg, &http.Client{Timeout: 10 * time.Second})
	}}
}

// errNoOIDC is the answer when staff sign-in is not configured.
func errNoOIDC() error {
	return domain.Errorf(domain.NotFound, "Sign-in with an organisation account is not offered on this server. Use your personal sign-in link.")
}

// handleLogin starts staff sign-in at the provider.
func (a *app) handleLogin(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		a.message(w, r, errNoOIDC())
		return
	}
	o, err := a.oidc.get(r.Context())
	if err != nil {
		a.message(w, r, err)
		return
	}
	u, err := o.Begin(w, r, r.URL.Query().Get("next"))
	if err != nil {
		a.message(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// handleCallback finishes staff sign-in: the person is found or created,
// their claim roles synced, and a new session started.
func (a *app) handleCallback(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		a.message(w, r, errNoOIDC())
		return
	}
	o, err := a.oidc.get(r.Context())
	if err != nil {
		a.message(w, r, err)
		return
	}
	id, returnTo, err := o.Finish(r.Context(), r)
	o.ClearCookie(w)
	if err != nil {
		a.logger.Info("staff sign-in refused", "err", err, "cause", errors.Unwrap(err)) // the cause is for the log only
		a.message(w, r, signInRefused(err))
		return
	}
	in := store.OIDCSignIn{Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified || a.auth.TrustEmail, Name: id.Name}
	if len(a.auth.RoleMap) > 0 {
		ev, err := a.roleMapEvent(r.Context())
		if err != nil {
			a.message(w, r, err)
			return
		}
		in.EventID, in.SyncRoles, in.Roles = ev.ID, true, map[string]string{}
		for _, v := range id.Roles {
			for _, role := range a.auth.RoleMap[v] {
				in.Roles[role] = v
			}
		}
	}
	out, err := a.store.SignInOIDC(r.Context(), in)
	if err != nil {
		a.message(w, r, err)
		return
	}
	// Sessions that others began for the person (see SignInOIDC) lose
	// their live connections too.
	a.endSessions(r.Context(), out.Ended...)
	if out.RolesChanged || out.NameChanged {
		// The person's other screens still act on the old roles, or show
		// them to their rooms by the old name: make them reconnect, so
		// every join and op is checked against the new ones.
		a.reauthorize(r.Context(), out.Person.ID)
	}
	_, replaced, err := a.sessions.Start(r.Context(), w, r, out.Person.ID)
	a.endSessions(r.Context(), replaced) // the browser's former session: perhaps another person's
	if err != nil {
		a.message(w, r, err)
		return
	}
	http.Redirect(w, r, auth.LocalPath(returnTo), http.StatusSeeOther)
}

// signInRefused words a failed OIDC sign-in for the person at the browser.
func signInRefused(err error) error {
	if de, ok := asDomain(err).(*domain.Error); ok && de.Code == domain.Unauthorized {
		return domain.Errorf(domain.Unauthorized, "Sign-in failed: %s", de.Message) // the cause is logged by the caller
	}
	return err
}

// roleMapEvent is the event OIDC_ROLE_MAP grants roles in.
func (a *app) roleMapEvent(ctx context.Context) (domain.Event, error) {
	if a.auth.Event != "" {
		return a.store.EventBySlug(ctx, a.auth.Event)
	}
	return a.store.FirstEvent(ctx) // as for the organizer link
}

// handleLogout ends the browser's session and the person's live
// connections, then leaves through the provider's sign-out when the person
// signed in there.
func (a *app) handleLogout(w http.ResponseWriter, r *http.Request) {
	ra := authOf(r)
	target := "/"
	if ra.sess() != nil {
		v, _ := ra.viewer(r.Context())
		if err := a.sessions.End(r.Context(), w, r); err != nil {
			a.message(w, r, err)
			return
		}
		pid := ra.session.PersonID
		a.endSessions(r.Context(), ra.session.ID) // this browser's; the person's other devices stay signed in
		if err := a.store.RecordSignOut(r.Context(), pid, a.now()); err != nil {
			a.logger.Warn("audit sign-out", "err", err)
		}
		if v != nil && v.Person.OIDCSubject != nil && a.providerSignOut(r.Context()) != "" {
			// Not straight to the provider: our pages' CSP (form-action
			// 'self') holds the sign-out form's redirects to our own origin.
			target = "/auth/signed-out"
		}
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// handleSignedOut sends a browser signed out of an organisation account
// on to the provider's sign-out (its end-session URL), so that its
// session there ends too: on a shared device the next person would
// otherwise sign in as the last. Without one, it goes home.
func (a *app) handleSignedOut(w http.ResponseWriter, r *http.Request) {
	if u := a.providerSignOut(r.Context()); u != "" {
		a.page(w, r, http.StatusOK, "signedout.html", map[string]any{"Provider": u})
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// providerSignOut is the provider's end-session URL, coming back home
// here, or "" when staff sign-in is off or the provider has none.
func (a *app) providerSignOut(ctx context.Context) string {
	if a.oidc == nil {
		return ""
	}
	o, err := a.oidc.get(ctx)
	if err != nil {
		return ""
	}
	return o.EndSessionURL(a.baseURL + "/")
}

// inviteExpiry is when links issued now for ev stop working: the event's
// end plus INVITE_GRACE, or now plus the grace when that is already past
// (or the event has no end), so a new link is never born expired.
func (a *app) inviteExpiry(ev domain.Event) time.Time {
	now := a.now()
	if ev.EndsAt != nil && ev.EndsAt.Add(a.auth.InviteGrace).After(now) {
		return ev.EndsAt.Add(a.auth.InviteGrace)
	}
	return now.Add(max(a.auth.InviteGrace, time.Hour))
}

// staffRoles are roles that sign in with an organisation account and get no card.
func staffRole(role string) bool {
	return slices.Contains([]string{domain.RoleOrganizer, domain.RoleReportAuthor}, role)
}

// sessionCheck is how often the sessions of open WebSockets are checked.
const sessionCheck = time.Minute

// keepSessions checks, every interval until ctx ends, the session of each
// open WebSocket: an open connection counts as use, and the connections
// of a session that expired or was deleted meanwhile are closed with 4001,
// as a request of that session would be refused. A database that cannot
// answer closes nothing.
func (a *app) keepSessions(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range a.hub.Sessions() {
			alive, err := a.sessions.Keep(ctx, s)
			if err != nil {
				if ctx.Err() == nil {
					a.logger.Warn("check a live connection's session", "err", err)
				}
				continue
			}
			if !alive {
				a.hub.EndSession(s)
			}
		}
		a.keepAccess(ctx)
	}
}

// keepAccess closes, with 4003 (reconnect and be checked again), the
// connections whose person's name, details or roles changed since the
// connection read them. The process that makes a change does so at once
// and tells the others; this is for a process that did not hear it (a
// lost notification, a listener reconnecting).
func (a *app) keepAccess(ctx context.Context) {
	ids := a.hub.Identities()
	if len(ids) == 0 {
		return
	}
	seen := map[int64]bool{}
	var pids []int64
	for _, id := range ids {
		if v, ok := id.Data.(*viewer); ok && !seen[v.Person.ID] {
			seen[v.Person.ID] = true
			pids = append(pids, v.Person.ID)
		}
	}
	if len(pids) == 0 {
		return
	}
	people, memberships, err := a.store.PeopleWithMemberships(ctx, pids)
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("check the roles of live connections", "err", err)
		}
		return
	}
	stale := map[string]bool{}
	for _, id := range ids {
		v, ok := id.Data.(*viewer)
		if ok && !stale[id.ID] && !v.holds(people[v.Person.ID], memberships[v.Person.ID]) {
			stale[id.ID] = true
			a.personChanged(id.ID) // as when the change was announced
		}
	}
}
