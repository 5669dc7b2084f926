DROP INDEX IF EXISTS invites_person_idx;
DROP TABLE IF EXISTS oidc_role_grants, oidc_attempts;
