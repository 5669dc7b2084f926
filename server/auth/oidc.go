package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// attemptTTL is how long a started sign-in stays valid.
const attemptTTL = 10 * time.Minute

// OIDCConfig configures staff sign-in with the organisation's provider.
type OIDCConfig struct {
	Issuer       string   // must equal the discovery document's "issuer" exactly
	ClientID     string   // also the required ID token audience
	ClientSecret string   // sent to the token endpoint
	RedirectURL  string   // this server's callback URL, registered at the provider
	Scopes       []string // default: openid email profile; "openid" is always added
	RolesClaim   string   // optional claim with the user's roles or groups, e.g. "groups" or "realm_access.roles"

	// Attempts keeps sign-ins in progress; nil means NewMemoryAttempts()
	// (fine for one process; use a shared store when running several).
	Attempts AttemptStore
}

// Identity is a verified staff user as the provider describes them.
type Identity struct {
	Issuer        string
	Subject       string // stable user id at the issuer; (Issuer, Subject) identifies a person
	Email         string
	EmailVerified bool   // the provider's email_verified claim; do not match people by an unverified email
	Name          string // "name", or "preferred_username" when there is no name
	Roles         []string
}

// OIDC signs staff in with the authorization code flow, PKCE (S256), state
// bound to the browser by a cookie, and a nonce checked in the ID token.
type OIDC struct {
	cfg        OIDCConfig
	oauth      *oauth2.Config
	verifier   *oidc.IDTokenVerifier
	client     *http.Client
	attempts   AttemptStore
	endSession string
	cookieName string
	secure     bool
	now        func() time.Time
}

// NewOIDC discovers the provider at cfg.Issuer (through httpClient, or
// http.DefaultClient when nil) and prepares the client. It fails with
// "issuer_mismatch" when the provider names a different issuer.
func NewOIDC(ctx context.Context, cfg OIDCConfig, httpClient *http.Client) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, newErr(CodeConfig, "OIDC needs an issuer, a client id and a redirect URL", nil)
	}
	ru, err := url.Parse(cfg.RedirectURL)
	if err != nil || (ru.Scheme != "https" && ru.Scheme != "http") || ru.Host == "" {
		return nil, newErr(CodeConfig, fmt.Sprintf("OIDC redirect URL %q is not an absolute http(s) URL", cfg.RedirectURL), err)
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, httpClient), cfg.Issuer)
	if err != nil {
		var mm *oidc.IssuerMismatchError
		if errors.As(err, &mm) {
			return nil, newErr(CodeIssuerMismatch, fmt.Sprintf("the provider at %q calls itself %q; the issuer must match exactly", mm.Provided, mm.Discovered), err)
		}
		return nil, newErr(CodeDiscovery, fmt.Sprintf("cannot discover the OIDC provider at %q: %v", cfg.Issuer, oneLine(err.Error())), err)
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = provider.Claims(&meta)

	attempts := cfg.Attempts
	if attempts == nil {
		attempts = NewMemoryAttempts()
	}
	secure := ru.Scheme == "https"
	name := "rapporteur_oidc"
	if secure {
		name = "__Host-rapporteur_oidc"
	}
	return &OIDC{
		cfg: cfg,
		oauth: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  cfg.RedirectURL,
			Scopes:       scopes,
		},
		verifier:   provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		client:     httpClient,
		attempts:   attempts,
		endSession: meta.EndSession,
		cookieName: name,
		secure:     secure,
		now:        time.Now,
	}, nil
}

// Begin starts a sign-in: it stores a new attempt, binds it to this browser
// with an HttpOnly cookie, and returns the provider URL to redirect to.
// returnTo must be a local path ("/…"); anything else becomes "/". One
// attempt per browser is live: a newer Begin replaces the cookie, and the
// older tab's callback then fails with bad_state.
func (o *OIDC) Begin(w http.ResponseWriter, r *http.Request, returnTo string) (string, error) {
	a := Attempt{
		State:    randomToken(32),
		Nonce:    randomToken(32),
		Verifier: oauth2.GenerateVerifier(),
		ReturnTo: LocalPath(returnTo),
		Expires:  o.now().Add(attemptTTL),
	}
	if err := o.attempts.PutAttempt(r.Context(), a); err != nil {
		return "", asAuthError(err, "cannot record the sign-in attempt")
	}
	http.SetCookie(w, &http.Cookie{
		Name:     o.cookieName,
		Value:    a.State,
		Path:     "/",
		MaxAge:   int(attemptTTL / time.Second),
		HttpOnly: true,
		Secure:   o.secure,
		SameSite: http.SameSiteLaxMode, // sent on the provider's top-level redirect back
	})
	return o.oauth.AuthCodeURL(a.State, oidc.Nonce(a.Nonce), oauth2.S256ChallengeOption(a.Verifier)), nil
}

// Finish completes a sign-in from the provider's callback request. The
// attempt is consumed on first use, so a replayed callback fails. On any
// failure it returns an *AuthError and no identity.
func (o *OIDC) Finish(ctx context.Context, r *http.Request) (*Identity, string, error) {
	q := r.URL.Query()
	state := q.Get("state")
	cookieState := ""
	if c, err := r.Cookie(o.cookieName); err == nil {
		cookieState = c.Value
	}
	bound := state != "" && cookieState != "" && subtle.ConstantTimeCompare([]byte(state), []byte(cookieState)) == 1

	if perr := q.Get("error"); perr != "" {
		if bound {
			_, _ = o.attempts.TakeAttempt(ctx, state) // the attempt is over either way
		}
		// Anyone can send a browser here with any text in these, so the
		// page says only a code of the standard's; the rest is logged.
		detail := fmt.Errorf("provider error %q: %s", oneLine(perr), oneLine(q.Get("error_description")))
		return nil, "", newErr(CodeProviderError, "the sign-in provider refused: "+knownOAuthError(perr), detail)
	}
	switch {
	case state == "":
		return nil, "", newErr(CodeBadState, "the sign-in callback carries no state; please sign in again", nil)
	case cookieState == "":
		return nil, "", newErr(CodeBadState, "this sign-in was not started in this browser (no sign-in cookie); please sign in again", nil)
	case !bound:
		return nil, "", newErr(CodeBadState, "the sign-in callback does not belong to this browser's sign-in; please sign in again", nil)
	}
	a, err := o.attempts.TakeAttempt(ctx, state)
	if err != nil {
		if errors.Is(err, ErrNoAttempt) {
			return nil, "", newErr(CodeBadState, "this sign-in is unknown or was already used; please sign in again", err)
		}
		return nil, "", asAuthError(err, "cannot read the sign-in attempt")
	}
	if !o.now().Before(a.Expires) {
		return nil, "", newErr(CodeBadState, "this sign-in took longer than 10 minutes and expired; please sign in again", nil)
	}
	code := q.Get("code")
	if code == "" {
		return nil, "", newErr(CodeExchangeFailed, "the sign-in callback carries no authorization code", nil)
	}

	tok, err := o.oauth.Exchange(oidc.ClientContext(ctx, o.client), code, oauth2.VerifierOption(a.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			// The provider's own answer to this server (no one else's text).
			msg := "the provider refused the authorization code: " + oneLine(re.ErrorCode)
			if re.ErrorDescription != "" {
				msg += " (" + oneLine(re.ErrorDescription) + ")"
			}
			return nil, "", newErr(CodeExchangeFailed, msg, err)
		}
		return nil, "", newErr(CodeExchangeFailed, "the sign-in could not be completed with the provider; please try again", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", newErr(CodeTokenInvalid, "the provider returned no ID token", nil)
	}
	idt, err := o.verifier.Verify(oidc.ClientContext(ctx, o.client), raw)
	if err != nil {
		return nil, "", tokenError(err)
	}
	if idt.Nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(a.Nonce)) != 1 {
		return nil, "", newErr(CodeBadNonce, "the ID token's nonce does not match this sign-in (possible replayed token)", nil)
	}
	id, err := o.identity(idt)
	if err != nil {
		return nil, "", err
	}
	return id, a.ReturnTo, nil
}

// ClearCookie removes the sign-in attempt cookie; call it after Finish.
// (It expires by itself after 10 minutes, and a used state is dead anyway.)
func (o *OIDC) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: o.cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: o.secure, SameSite: http.SameSiteLaxMode})
}

// EndSessionURL returns the provider's RP-initiated logout URL with
// post_logout_redirect_uri and client_id set, or "" when the provider does
// not advertise end_session_endpoint.
func (o *OIDC) EndSessionURL(postLogoutRedirect string) string {
	if o.endSession == "" {
		return ""
	}
	u, err := url.Parse(o.endSession)
	if err != nil {
		return ""
	}
	v := u.Query()
	v.Set("client_id", o.cfg.ClientID)
	if postLogoutRedirect != "" {
		v.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	u.RawQuery = v.Encode()
	return u.String()
}

func (o *OIDC) identity(idt *oidc.IDToken) (*Identity, error) {
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return nil, newErr(CodeTokenInvalid, "cannot read the ID token's claims", err)
	}
	if idt.Subject == "" {
		return nil, newErr(CodeTokenInvalid, "the ID token has no subject (sub)", nil)
	}
	id := &Identity{
		Issuer:        idt.Issuer,
		Subject:       idt.Subject,
		Email:         strings.TrimSpace(str(all["email"])),
		EmailVerified: truthy(all["email_verified"]),
		Name:          strings.TrimSpace(str(all["name"])),
	}
	if id.Name == "" {
		id.Name = strings.TrimSpace(str(all["preferred_username"]))
	}
	if o.cfg.RolesClaim != "" {
		id.Roles = rolesFrom(all, o.cfg.RolesClaim)
	}
	return id, nil
}

// rolesFrom reads a string or string-array claim. The name is tried as a
// literal key first (namespaced claims contain dots), then as a dotted path.
func rolesFrom(claims map[string]any, name string) []string {
	v, ok := claims[name]
	if !ok {
		var cur any = claims
		for _, part := range strings.Split(name, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				return nil
			}
			cur = m[part]
		}
		v = cur
	}
	var out []string
	switch t := v.(type) {
	case string:
		for _, f := range strings.Fields(strings.ReplaceAll(t, ",", " ")) {
			out = append(out, f)
		}
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func truthy(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return strings.EqualFold(t, "true")
	}
	return false
}

// tokenError turns a go-oidc verification error into a token_invalid error
// that names the failed check.
func tokenError(err error) *AuthError {
	var exp *oidc.TokenExpiredError
	if errors.As(err, &exp) {
		return newErr(CodeTokenInvalid, fmt.Sprintf("the ID token has expired (at %s)", exp.Expiry.UTC().Format(time.RFC3339)), err)
	}
	s := oneLine(err.Error())
	var what string
	switch {
	case strings.Contains(s, "different provider"):
		what = "was issued by the wrong issuer"
	case strings.Contains(s, "audience"):
		what = "is for the wrong audience"
	case strings.Contains(s, "signature") || strings.Contains(s, "signing algorithm"):
		what = "has a bad signature"
	case strings.Contains(s, "nbf"):
		what = "is not valid yet"
	case strings.Contains(s, "malformed"):
		what = "is malformed"
	default:
		what = "is invalid"
	}
	return newErr(CodeTokenInvalid, "the ID token "+what+": "+strings.TrimPrefix(s, "oidc: "), err)
}

// asAuthError keeps an *AuthError as is and wraps anything else as internal.
func asAuthError(err error, msg string) *AuthError {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae
	}
	return newErr(CodeInternal, msg, err)
}

// oneLine makes untrusted or multi-line text safe for a one-line message.
// knownOAuthError is code when it is one of the error codes of OAuth 2.0
// and OpenID Connect, else "an error it did not name": what a page may
// show of a provider's error.
func knownOAuthError(code string) string {
	switch code {
	case "access_denied", "invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope",
		"server_error", "temporarily_unavailable", "invalid_grant", "invalid_client", "unsupported_grant_type",
		"login_required", "consent_required", "interaction_required", "account_selection_required":
		return code
	}
	return "an error it did not name"
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return strings.TrimSpace(s)
}

// maxLocalPath is the longest path LocalPath keeps: a search page's
// address with many filters still fits, and 10,000 sign-in attempts
// (see Begin) keep at most some 40 MB of them.
const maxLocalPath = 4096

// LocalPath returns p if it is a safe same-site path ("/x", not "//host"
// nor "/\host" nor a URL with a scheme) of at most maxLocalPath bytes,
// otherwise "/". Use it for every return-to value so sign-in cannot
// become an open redirect, nor a signed-out visitor's way to store a
// megabyte with each sign-in attempt.
func LocalPath(p string) string {
	if p == "" || len(p) > maxLocalPath || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.ContainsAny(p, "\r\n\t\\") {
		return "/"
	}
	return p
}
