package auth

import "net/http"

// Error codes carried by *AuthError.
const (
	CodeBadState       = "bad_state"        // OIDC state missing, tampered, unknown, expired or replayed
	CodeBadNonce       = "bad_nonce"        // ID token nonce differs from the one sent
	CodeTokenInvalid   = "token_invalid"    // ID token rejected (expired, audience, issuer, signature…)
	CodeExchangeFailed = "exchange_failed"  // the provider refused the code exchange (e.g. PKCE)
	CodeProviderError  = "provider_error"   // the provider sent error=… to the callback
	CodeIssuerMismatch = "issuer_mismatch"  // discovery document names another issuer
	CodeDiscovery      = "discovery_failed" // provider discovery failed
	CodeConfig         = "config"           // invalid configuration
	CodeNoAttempt      = "no_attempt"       // AttemptStore: no such sign-in attempt
	CodeNoSession      = "no_session"       // SessionStore: no such session
	CodeCSRF           = "csrf"             // CSRF or cross-origin check failed
	CodeInternal       = "internal"         // storage or other internal failure
	CodeTooMany        = "too_many"         // AttemptStore: too many sign-ins in progress
)

// AuthError is the one error type of this package: a machine-readable Code
// and a one-line human Message. The cause, if any, is available to
// errors.Unwrap for logging but is never part of Message.
type AuthError struct {
	Code    string
	Message string
	err     error
}

// ErrNoSession is returned by SessionStore.GetSession for an unknown id.
// Stores may return it or any *AuthError with Code "no_session".
var ErrNoSession error = &AuthError{Code: CodeNoSession, Message: "no such session"}

// ErrNoAttempt is returned by AttemptStore.TakeAttempt for an unknown state.
// Stores may return it or any *AuthError with Code "no_attempt".
var ErrNoAttempt error = &AuthError{Code: CodeNoAttempt, Message: "no such sign-in attempt"}

// ErrTooManyAttempts is returned by AttemptStore.PutAttempt when it keeps
// as many sign-ins in progress as it may: each unauthenticated visit of
// the sign-in starts one.
var ErrTooManyAttempts error = &AuthError{Code: CodeTooMany, Message: "too many staff sign-ins are under way on this server; try again in a few minutes"}

func (e *AuthError) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the underlying cause, if any.
func (e *AuthError) Unwrap() error { return e.err }

// Is reports whether target is an *AuthError with the same Code, so that
// errors.Is(err, ErrNoSession) works for any store's error value.
func (e *AuthError) Is(target error) bool {
	t, ok := target.(*AuthError)
	return ok && t.Code == e.Code
}

// HTTPStatus is the status a handler should answer with for this error.
func (e *AuthError) HTTPStatus() int {
	switch e.Code {
	case CodeCSRF:
		return http.StatusForbidden
	case CodeInternal, CodeDiscovery, CodeConfig, CodeIssuerMismatch:
		return http.StatusInternalServerError
	case CodeNoSession:
		return http.StatusUnauthorized
	case CodeTooMany:
		return http.StatusTooManyRequests
	default:
		return http.StatusBadRequest
	}
}

func newErr(code, msg string, cause error) *AuthError {
	return &AuthError{Code: code, Message: msg, err: cause}
}
