// Package auth is Rapporteur's sign-in and authorisation layer: OIDC sign-in
// for staff, server-side sessions, CSRF checks, security headers, invite
// tokens and their QR codes, the participant CSV import, and the permission
// table that decides every HTTP route and every hub operation.
//
// It imports nothing else from this module. Storage is behind small
// interfaces (AttemptStore, SessionStore) that the server implements in
// Postgres; in-memory implementations are provided for tests and for a
// single process.
package auth
