-- Sign-in: OIDC attempts in progress (shared by every server process, so
-- a callback may land on another process than the one that began it), the
-- memberships an OIDC roles claim granted (so they can be taken back when
-- the claim no longer grants them, without touching roles an organizer
-- gave by hand), and an index for listing a person's invites.

CREATE TABLE oidc_attempts (
    state_hash text PRIMARY KEY, -- SHA-256 of the state sent to the provider
    nonce      text NOT NULL,
    verifier   text NOT NULL,    -- PKCE code verifier; never leaves the server
    return_to  text NOT NULL DEFAULT '/',
    expires_at timestamptz NOT NULL
);
CREATE INDEX oidc_attempts_expires_idx ON oidc_attempts (expires_at);

CREATE TABLE oidc_role_grants (
    membership_id bigint PRIMARY KEY REFERENCES memberships(id) ON DELETE CASCADE,
    claim_value   text NOT NULL
);

CREATE INDEX invites_person_idx ON invites (person_id, event_id);
