package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/oauth2-proxy/mockoidc"
)

// idp is a real OIDC provider (mockoidc) on loopback. All its requests
// run under mu: mockoidc's own session map is not synchronised, and
// FastForward must not race with its handlers.
type idp struct {
	m       *mockoidc.MockOIDC
	mu      sync.Mutex
	altJWKS atomic.Pointer[[]byte] // when set, served instead of the real key set
}

func startIDP(t *testing.T) *idp {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{m: m}
	err = m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if alt := p.altJWKS.Load(); alt != nil && r.URL.Path == mockoidc.JWKSEndpoint {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(*alt)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return p
}

// fastForward moves the provider's clock (negative: into the past).
func (p *idp) fastForward(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m.FastForward(d)
}

const testRedirect = "http://127.0.0.1:1/auth/callback" // never contacted

func newTestOIDC(t *testing.T, p *idp) *OIDC {
	t.Helper()
	o, err := NewOIDC(context.Background(), OIDCConfig{
		Issuer:       p.m.Issuer(),
		ClientID:     p.m.ClientID,
		ClientSecret: p.m.ClientSecret,
		RedirectURL:  testRedirect,
		Scopes:       []string{"openid", "email", "profile", "groups"},
		RolesClaim:   "groups",
	}, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	return o
}

// begin runs Begin and returns the provider URL and the browser's cookie.
func begin(t *testing.T, o *OIDC, returnTo string) (string, *http.Cookie) {
	t.Helper()
	rec := httptest.NewRecorder()
	authURL, err := o.Begin(rec, httptest.NewRequest("GET", "/auth/login", nil), returnTo)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	cs := rec.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("Begin set %d cookies, want 1", len(cs))
	}
	return authURL, cs[0]
}

// authorize plays the browser at the provider: it follows authURL and
// returns the callback URL the provider redirects to.
func authorize(t *testing.T, authURL string) *url.URL {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("authorize: status %d: %s", resp.StatusCode, b)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.String(), testRedirect+"?") {
		t.Fatalf("provider redirected to %s", u)
	}
	return u
}

func callbackReq(u *url.URL, c *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", u.RequestURI(), nil)
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

// wantAuthErr asserts a refused sign-in: an *AuthError with code, no identity.
func wantAuthErr(t *testing.T, id *Identity, err error, code, msgPart string) {
	t.Helper()
	if id != nil {
		t.Errorf("got identity %+v with a failed sign-in", id)
	}
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not *AuthError", err, err)
	}
	if ae.Code != code {
		t.Fatalf("code %q (%s), want %q", ae.Code, ae.Message, code)
	}
	if !strings.Contains(strings.ToLower(ae.Message), msgPart) {
		t.Errorf("message %q does not mention %q", ae.Message, msgPart)
	}
	if strings.ContainsAny(ae.Message, "\r\n") {
		t.Errorf("message is not one line: %q", ae.Message)
	}
}

// TestOIDCFullSignIn drives the whole flow through a real app server with
// a cookie jar, as a browser would.
func TestOIDCFullSignIn(t *testing.T) {
	p := startIDP(t)
	var o *OIDC
	type result struct {
		ID       *Identity
		ReturnTo string
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth/login":
			u, err := o.Begin(w, r, r.URL.Query().Get("next"))
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			http.Redirect(w, r, u, http.StatusFound)
		case "/auth/callback":
			id, rt, err := o.Finish(r.Context(), r)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			o.ClearCookie(w)
			_ = json.NewEncoder(w).Encode(result{id, rt})
		}
	}))
	defer app.Close()
	var err error
	o, err = NewOIDC(context.Background(), OIDCConfig{
		Issuer: p.m.Issuer(), ClientID: p.m.ClientID, ClientSecret: p.m.ClientSecret,
		RedirectURL: app.URL + "/auth/callback",
		Scopes:      []string{"openid", "email", "profile", "groups"}, RolesClaim: "groups",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.m.QueueUser(&mockoidc.MockUser{
		Subject: "staff-42", Email: "Aino.Virtanen@example.fi", EmailVerified: true,
		PreferredUsername: "aino", Groups: []string{"rapporteur-organizers", "staff"},
	})

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := browser.Get(app.URL + "/auth/login?next=/events/7/report")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	var got result
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := Identity{Issuer: p.m.Issuer(), Subject: "staff-42", Email: "Aino.Virtanen@example.fi",
		EmailVerified: true, Name: "aino", Roles: []string{"rapporteur-organizers", "staff"}}
	if got.ID == nil || got.ID.Issuer != want.Issuer || got.ID.Subject != want.Subject || got.ID.Email != want.Email ||
		got.ID.EmailVerified != want.EmailVerified || got.ID.Name != want.Name || strings.Join(got.ID.Roles, ",") != strings.Join(want.Roles, ",") {
		t.Fatalf("identity %+v, want %+v", got.ID, want)
	}
	if got.ReturnTo != "/events/7/report" {
		t.Errorf("returnTo %q", got.ReturnTo)
	}
}

func TestOIDCBeginRequestAndCookie(t *testing.T) {
	p := startIDP(t)
	o := newTestOIDC(t, p)
	authURL, c := begin(t, o, "https://evil.example/phish")
	u, _ := url.Parse(authURL)
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		t.Errorf("no S256 PKCE challenge in %s", authURL)
	}
	if q.Get("code_verifier") != "" {
		t.Error("the verifier leaked into the authorization URL")
	}
	if len(q.Get("state")) < 43 || len(q.Get("nonce")) < 43 || q.Get("state") == q.Get("nonce") {
		t.Errorf("weak state/nonce: %q %q", q.Get("state"), q.Get("nonce"))
	}
	if c.Value != q.Get("state") || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 600 || c.Secure {
		t.Errorf("attempt cookie %+v", c)
	}
	// Each attempt is fresh.
	authURL2, _ := begin(t, o, "/")
	u2, _ := url.Parse(authURL2)
	if u2.Query().Get("state") == q.Get("state") || u2.Query().Get("nonce") == q.Get("nonce") || u2.Query().Get("code_challenge") == q.Get("code_challenge") {
		t.Error("state, nonce or challenge repeated across attempts")
	}
	// An open redirect is refused: returnTo became "/".
	cb := authorize(t, authURL)
	id, rt, err := o.Finish(context.Background(), callbackReq(cb, c))
	if err != nil || id == nil {
		t.Fatalf("Finish: %v", err)
	}
	if rt != "/" {
		t.Errorf("returnTo %q, want /", rt)
	}

	// https redirect URL → Secure, __Host- cookie.
	os, err := NewOIDC(context.Background(), OIDCConfig{Issuer: p.m.Issuer(), ClientID: p.m.ClientID,
		ClientSecret: p.m.ClientSecret, RedirectURL: "https://seminar.example.org/auth/callback"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, sc := begin(t, os, "/")
	if !sc.Secure || !strings.HasPrefix(sc.Name, "__Host-") {
		t.Errorf("https attempt cookie %+v", sc)
	}
}

func TestOIDCBadState(t *testing.T) {
	p := startIDP(t)
	o := newTestOIDC(t, p)
	ctx := context.Background()

	t.Run("tampered state", func(t *testing.T) {
		authURL, c := begin(t, o, "/")
		cb := authorize(t, authURL)
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		cb.RawQuery = q.Encode()
		id, _, err := o.Finish(ctx, callbackReq(cb, c))
		wantAuthErr(t, id, err, CodeBadState, "does not belong")
	})
	t.Run("unknown state with matching cookie", func(t *testing.T) {
		authURL, _ := begin(t, o, "/")
		cb := authorize(t, authURL)
		q := cb.Query()
		q.Set("state", "forged-state")
		cb.RawQuery = q.Encode()
		id, _, err := o.Finish(ctx, callbackReq(cb, &http.Cookie{Name: o.cookieName, Value: "forged-state"}))
		wantAuthErr(t, id, err, CodeBadState, "unknown")
	})
	t.Run("missing state", func(t *testing.T) {
		authURL, c := begin(t, o, "/")
		cb := authorize(t, authURL)
		q := cb.Query()
		q.Del("state")
		cb.RawQuery = q.Encode()
		id, _, err := o.Finish(ctx, callbackReq(cb, c))
		wantAuthErr(t, id, err, CodeBadState, "no state")
	})
	t.Run("callback in another browser", func(t *testing.T) {
		authURL, c := begin(t, o, "/")
		cb := authorize(t, authURL)
		id, _, err := o.Finish(ctx, callbackReq(cb, nil))
		wantAuthErr(t, id, err, CodeBadState, "not started in this browser")
		// The attempt is intact for its own browser.
		if id, _, err := o.Finish(ctx, callbackReq(cb, c)); err != nil || id == nil {
			t.Fatalf("own browser after a stolen-URL try: %v", err)
		}
	})
	t.Run("replayed callback", func(t *testing.T) {
		authURL, c := begin(t, o, "/")
		cb := authorize(t, authURL)
		if id, _, err := o.Finish(ctx, callbackReq(cb, c)); err != nil || id == nil {
			t.Fatalf("first use: %v", err)
		}
		id, _, err := o.Finish(ctx, callbackReq(cb, c))
		wantAuthErr(t, id, err, CodeBadState, "already used")
	})
	t.Run("expired attempt", func(t *testing.T) {
		authURL, c := begin(t, o, "/")
		cb := authorize(t, authURL)
		o2 := *o
		o2.now = func() time.Time { return time.Now().Add(attemptTTL + time.Second) }
		id, _, err := o2.Finish(ctx, callbackReq(cb, c))
		wantAuthErr(t, id, err, CodeBadState, "expired")
	})
}

func TestOIDCBadNonce(t *testing.T) {
	p := startIDP(t)
	o := newTestOIDC(t, p)
	authURL, c := begin(t, o, "/")
	// An attacker substitutes the nonce on the way to the provider; the
	// provider signs an ID token carrying that other nonce.
	u, _ := url.Parse(authURL)
	q := u.Query()
	q.Set("nonce", "nonce-of-another-sign-in")
	u.RawQuery = q.Encode()
	cb := authorize(t, u.String())
	id, _, err := o.Finish(context.Background(), callbackReq(cb, c))
	wantAuthErr(t, id, err, CodeBadNonce, "nonce")
}

func TestOIDCExpiredIDToken(t *testing.T) {
	p := startIDP(t)
	o := newTestOIDC(t, p)
	authURL, c := begin(t, o, "/")
	cb := authorize(t, authURL)
	// The provider's clock runs an hour behind: its ID token (10 min TTL)
	// expired 50 minutes ago by our clock.
	p.fastForward(-time.Hour)
	id, _, err := o.Finish(context.Background(), callbackReq(cb, c))
	wantAuthErr(t, id, err, CodeTokenInvalid, "expired")
}

func TestOIDCWrongAudience(t *testing.T) {
	p := startIDP(t)
	o := newTestOIDC(t, p)
	// Our verifier expects another client id than the one the provider
	// issued the token to (as if a token for another app were injected).
	prov, err := oidc.NewProvider(context.Background(), p.m.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	o.verifier = prov.Verifier(&oidc.Config{ClientID: "another-client"})
	authURL, c := begin(t, o, "/")
	cb := authorize(t, authURL)
	id, _, err := o.Finish(context.Background(), callbackReq(cb, c))
	wantAuthErr(t, id, err, CodeTokenInvalid, "audience")
}

func TestOIDCWrongIssuerInToken(t *testing.T) {
	p := startIDP(t)
	o := newTestOIDC(t, p)
	// The token is genuinely signed with the key we trust, but names a
	// different issuer than the one we expect.
	ctx := context.Background()
	o.verifier = oidc.NewVerifier(p.m.Issuer()+"/tenant-b", oidc.NewRemoteKeySet(ctx, p.m.JWKSEndpoint()), &oidc.Config{ClientID: p.m.ClientID})
	authURL, c := begin(t, o, "/")
	cb := authorize(t, authURL)
	id, _, err := o.Finish(ctx, callbackReq(cb, c))
	wantAuthErr(t, id, err, CodeTokenInvalid, "issuer")
}

func TestOIDCBadSignature(t *testing.T) {
	p := startIDP(t)
	o := newTestOIDC(t, p)
	// The provider's published keys are not the key that signed the token.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := mockoidc.NewKeypair(key)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := kp.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	p.altJWKS.Store(&jwks)
	authURL, c := begin(t, o, "/")
	cb := authorize(t, authURL)
	id, _, err := o.Finish(context.Background(), callbackReq(cb, c))
	wantAuthErr(t, id, err, CodeTokenInvalid, "signature")
}

func TestOIDCPKCEEnforced(t *testing.T) {
	p := startIDP(t)
	o := newTestOIDC(t, p)
	mem := o.attempts.(*MemoryAttempts)
	setVerifier := func(state, v string) {
		mem.mu.Lock()
		defer mem.mu.Unlock()
		a := mem.m[state]
		a.Verifier = v
		mem.m[state] = a
	}
	for _, tc := range []struct{ name, verifier, msg string }{
		{"missing verifier", "", "sent none"},
		{"wrong verifier", "a-different-verifier-of-sufficient-length-0123456789", "did not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			authURL, c := begin(t, o, "/")
			cb := authorize(t, authURL)
			setVerifier(c.Value, tc.verifier)
			id, _, err := o.Finish(context.Background(), callbackReq(cb, c))
			wantAuthErr(t, id, err, CodeExchangeFailed, tc.msg)
		})
	}
}

func TestOIDCProviderErrorAndMissingCode(t *testing.T) {
	p := startIDP(t)
	o := newTestOIDC(t, p)
	ctx := context.Background()
	authURL, c := begin(t, o, "/")
	cb := authorize(t, authURL)
	errURL := *cb
	errURL.RawQuery = url.Values{"state": {c.Value}, "error": {"access_denied"}, "error_description": {"The user\ncancelled"}}.Encode()
	id, _, err := o.Finish(ctx, callbackReq(&errURL, c))
	wantAuthErr(t, id, err, CodeProviderError, "access_denied")
	// The attempt is over: the real code can no longer be redeemed with it.
	id, _, err = o.Finish(ctx, callbackReq(cb, c))
	wantAuthErr(t, id, err, CodeBadState, "already used")

	authURL, c = begin(t, o, "/")
	cb = authorize(t, authURL)
	q := cb.Query()
	q.Del("code")
	cb.RawQuery = q.Encode()
	id, _, err = o.Finish(ctx, callbackReq(cb, c))
	wantAuthErr(t, id, err, CodeExchangeFailed, "no authorization code")
}

// discoveryProxy serves the mock's discovery document from another URL,
// optionally rewritten.
func discoveryProxy(t *testing.T, p *idp, edit func(doc map[string]any, self string)) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(p.m.DiscoveryEndpoint())
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		if edit != nil {
			edit(doc, srv.URL)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOIDCIssuerMismatchAtDiscovery(t *testing.T) {
	p := startIDP(t)
	ctx := context.Background()
	proxy := discoveryProxy(t, p, nil) // says issuer = the mock's URL
	for _, issuer := range []string{proxy.URL, p.m.Issuer() + "/"} {
		o, err := NewOIDC(ctx, OIDCConfig{Issuer: issuer, ClientID: p.m.ClientID, RedirectURL: testRedirect}, nil)
		if o != nil {
			t.Errorf("%s: got a client", issuer)
		}
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Code != CodeIssuerMismatch || !strings.Contains(ae.Message, "must match exactly") {
			t.Errorf("%s: err %v, want issuer_mismatch", issuer, err)
		}
	}
	// No provider at all.
	_, err := NewOIDC(ctx, OIDCConfig{Issuer: "http://127.0.0.1:1/none", ClientID: "x", RedirectURL: testRedirect}, nil)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Code != CodeDiscovery {
		t.Errorf("unreachable provider: %v", err)
	}
	_, err = NewOIDC(ctx, OIDCConfig{Issuer: p.m.Issuer(), ClientID: "x", RedirectURL: "/relative"}, nil)
	if !errors.As(err, &ae) || ae.Code != CodeConfig {
		t.Errorf("relative redirect: %v", err)
	}
}

func TestOIDCEndSessionURL(t *testing.T) {
	p := startIDP(t)
	if u := newTestOIDC(t, p).EndSessionURL("http://app/"); u != "" {
		t.Errorf("mockoidc advertises no end_session_endpoint, got %q", u)
	}
	proxy := discoveryProxy(t, p, func(doc map[string]any, self string) {
		doc["issuer"] = self
		doc["end_session_endpoint"] = self + "/logout?x=1"
	})
	o, err := NewOIDC(context.Background(), OIDCConfig{Issuer: proxy.URL, ClientID: "cid", RedirectURL: testRedirect}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := url.Parse(o.EndSessionURL("https://seminar.example.org/"))
	if got.Path != "/logout" || got.Query().Get("x") != "1" || got.Query().Get("client_id") != "cid" ||
		got.Query().Get("post_logout_redirect_uri") != "https://seminar.example.org/" {
		t.Errorf("EndSessionURL = %s", got)
	}
}

func TestRolesClaimShapes(t *testing.T) {
	claims := map[string]any{
		"groups":                        []any{"a", "b", 3, ""},
		"role":                          "organizer rapporteur",
		"realm_access":                  map[string]any{"roles": []any{"x"}},
		"https://example.org/roles":     []any{"ns"},
		"https://example.org/unrelated": "z",
	}
	for name, want := range map[string]string{
		"groups": "a,b", "role": "organizer,rapporteur", "realm_access.roles": "x",
		"https://example.org/roles": "ns", "missing": "", "realm_access.none": "",
	} {
		if got := strings.Join(rolesFrom(claims, name), ","); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/events/1?x=2#a": "/events/1?x=2#a", "": "/", "events": "/", "//evil.example": "/",
		"/\\evil.example": "/", "https://evil.example/": "/", "javascript:alert(1)": "/", "/a\r\nSet-Cookie: x": "/",
		"/" + strings.Repeat("a", maxLocalPath-1): "/" + strings.Repeat("a", maxLocalPath-1), "/" + strings.Repeat("a", maxLocalPath): "/",
	} {
		if got := LocalPath(in); got != want {
			t.Errorf("LocalPath(%q) = %q, want %q", in, got, want)
		}
	}
}
