// Package domain holds Rapporteur's domain types and its one error type.
package domain

import (
	"errors"
	"fmt"
)

// Code classifies an Error; the HTTP layer and the hub map codes to statuses
// and error frames, so they are stable API.
type Code string

// The error codes.
const (
	Invalid      Code = "invalid"      // the input is wrong; the message says how
	NotFound     Code = "not_found"    // no such thing (or not visible to the caller)
	Conflict     Code = "conflict"     // someone changed it since; Detail holds the current state
	Unauthorized Code = "unauthorized" // not signed in
	Forbidden    Code = "forbidden"    // signed in, but the role does not allow it
	Unavailable  Code = "unavailable"  // try again later (e.g. the search index is rebuilding)
	Internal     Code = "internal"     // a bug or an outage; the message is generic
	TooLarge     Code = "too_large"    // the request is bigger than allowed
	RateLimited  Code = "rate_limited" // slow down
	BadCSRF      Code = "csrf"         // a state-changing request without a valid CSRF token
	NotReady     Code = "not_ready"    // the database is unreachable or not migrated
)

// Error is the application's error: a code, a message fit to show a person,
// optional detail for the client, and the underlying cause for the log.
type Error struct {
	Code    Code
	Message string
	Detail  any
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, Internal for errors that are not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the message of err fit to show a person; errors that
// are not an *Error get a generic message so internals never leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred."
}
