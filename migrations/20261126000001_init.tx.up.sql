-- The foundation schema: events and their structure, people and roles,
-- findings and what hangs off them, the per-room event log, sessions,
-- invites and the audit trail.
--
-- Multi-valued taxonomy fields of a finding (countries, themes, ...) are
-- text[] arrays of term keys rather than link tables: a finding is always
-- read and written with all its terms at once, the store validates the keys
-- against the event's taxonomy_terms on every write, and filtering and
-- faceting are Bleve's job (a GIN index can be added when a SQL filter
-- needs one). Link tables would add a join per dimension and six tables
-- to keep in step on the hottest write path, for no query we need.

CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    title       text NOT NULL CHECK (title <> ''),
    description text NOT NULL DEFAULT '',
    venue       text NOT NULL DEFAULT '',
    timezone    text NOT NULL DEFAULT 'UTC',
    language    text NOT NULL DEFAULT 'en',
    starts_at   timestamptz,
    ends_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE parts (
    id          bigserial PRIMARY KEY,
    event_id    bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    position    int NOT NULL,
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    kind        text NOT NULL CHECK (kind IN ('talks', 'workshops', 'plenary')),
    starts_at   timestamptz,
    ends_at     timestamptz,
    streamed    boolean NOT NULL DEFAULT false,
    UNIQUE (event_id, position)
);

CREATE TABLE workshops (
    id                bigserial PRIMARY KEY,
    event_id          bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    part_id           bigint NOT NULL REFERENCES parts(id) ON DELETE CASCADE,
    position          int NOT NULL,
    name              text NOT NULL CHECK (name <> ''),
    description       text NOT NULL DEFAULT '',
    room_name         text NOT NULL DEFAULT '',
    key_messages      text NOT NULL DEFAULT '',
    key_messages_version int NOT NULL DEFAULT 0,
    release_state     text NOT NULL DEFAULT 'draft' CHECK (release_state IN ('draft', 'shared', 'released')),
    UNIQUE (part_id, position)
);
CREATE INDEX workshops_event_idx ON workshops (event_id);

CREATE TABLE side_events (
    id            bigserial PRIMARY KEY,
    event_id      bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    position      int NOT NULL,
    title         text NOT NULL CHECK (title <> ''),
    organiser     text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    starts_at     timestamptz,
    ends_at       timestamptz,
    release_state text NOT NULL DEFAULT 'draft' CHECK (release_state IN ('draft', 'shared', 'released')),
    UNIQUE (event_id, position)
);

CREATE TABLE people (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL CHECK (name <> ''),
    email        text,
    organisation text NOT NULL DEFAULT '',
    country      text NOT NULL DEFAULT '',
    actor_type   text NOT NULL DEFAULT '',
    oidc_issuer  text,
    oidc_subject text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (oidc_issuer, oidc_subject)
);
CREATE UNIQUE INDEX people_email_idx ON people (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE memberships (
    id          bigserial PRIMARY KEY,
    event_id    bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    person_id   bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('organizer', 'rapporteur', 'participant', 'report_author', 'observer')),
    workshop_id bigint REFERENCES workshops(id) ON DELETE CASCADE,
    -- How this person's contributions may be attributed: by country and
    -- actor type (Chatham House rule, the default), by organisation, or by name.
    attribution text NOT NULL DEFAULT 'chatham' CHECK (attribution IN ('chatham', 'organisation', 'named')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (role NOT IN ('rapporteur', 'participant') OR workshop_id IS NOT NULL)
);
CREATE UNIQUE INDEX memberships_unique_idx ON memberships (event_id, person_id, role, coalesce(workshop_id, 0));
CREATE INDEX memberships_person_idx ON memberships (person_id);

CREATE TABLE taxonomy_terms (
    event_id  bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    dimension text NOT NULL CHECK (dimension IN ('country', 'p', 'form', 'theme', 'victim', 'actor')),
    key       text NOT NULL CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$'),
    label     text NOT NULL CHECK (label <> ''),
    position  int NOT NULL,
    PRIMARY KEY (event_id, dimension, key)
);

CREATE TABLE findings (
    id              bigserial PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    workshop_id     bigint REFERENCES workshops(id) ON DELETE CASCADE,
    side_event_id   bigint REFERENCES side_events(id) ON DELETE CASCADE,
    author_id       bigint REFERENCES people(id) ON DELETE SET NULL,
    title           text NOT NULL CHECK (title <> ''),
    what_done       text NOT NULL DEFAULT '',
    results         text NOT NULL DEFAULT '',
    transferability text NOT NULL DEFAULT '',
    nordic_proposal text NOT NULL DEFAULT '',
    countries       text[] NOT NULL DEFAULT '{}',
    themes          text[] NOT NULL DEFAULT '{}',
    ps              text[] NOT NULL DEFAULT '{}',
    forms           text[] NOT NULL DEFAULT '{}',
    victim_groups   text[] NOT NULL DEFAULT '{}',
    actor_types     text[] NOT NULL DEFAULT '{}',
    language        text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'da', 'fi', 'no', 'sv')),
    contact_name    text NOT NULL DEFAULT '',
    contact_email   text NOT NULL DEFAULT '',
    contact_consent boolean NOT NULL DEFAULT false,
    attribution     text NOT NULL DEFAULT 'chatham' CHECK (attribution IN ('chatham', 'organisation', 'named')),
    release_state   text NOT NULL DEFAULT 'draft' CHECK (release_state IN ('draft', 'shared', 'released')),
    is_key          boolean NOT NULL DEFAULT false,
    key_position    int,
    -- version counts every change; field_versions maps a field name to the
    -- version that last changed it, so concurrent edits of different fields
    -- merge and edits of the same field conflict.
    version         int NOT NULL DEFAULT 1,
    field_versions  jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CHECK (contact_consent OR (contact_name = '' AND contact_email = ''))
);
CREATE INDEX findings_event_idx ON findings (event_id) WHERE deleted_at IS NULL;
CREATE INDEX findings_workshop_idx ON findings (workshop_id) WHERE deleted_at IS NULL;

CREATE TABLE votes (
    finding_id bigint NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
    person_id  bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (finding_id, person_id)
);

CREATE TABLE comments (
    id         bigserial PRIMARY KEY,
    finding_id bigint NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
    person_id  bigint REFERENCES people(id) ON DELETE SET NULL,
    body       text NOT NULL CHECK (body <> ''),
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX comments_finding_idx ON comments (finding_id);

CREATE TABLE conclusions (
    id         bigserial PRIMARY KEY,
    event_id   bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('conclusion', 'recommendation')),
    position   int NOT NULL,
    title      text NOT NULL CHECK (title <> ''),
    body       text NOT NULL DEFAULT '',
    author_id  bigint REFERENCES people(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conclusion_findings (
    conclusion_id bigint NOT NULL REFERENCES conclusions(id) ON DELETE CASCADE,
    finding_id    bigint NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
    PRIMARY KEY (conclusion_id, finding_id)
);

-- rooms hands out per-room sequence numbers: a writer takes the row lock
-- with UPDATE ... RETURNING and keeps it to commit, so the entries of one
-- room commit in seq order and a reader of seq > n never skips one.
CREATE TABLE rooms (
    id  text PRIMARY KEY,
    seq bigint NOT NULL
);

-- log_entries is the event log: every change a client makes, in the
-- transaction that makes it. Screens and the search index follow it.
CREATE TABLE log_entries (
    room     text NOT NULL,
    seq      bigint NOT NULL,
    op_id    text NOT NULL CHECK (length(op_id) BETWEEN 1 AND 100),
    actor_id bigint REFERENCES people(id) ON DELETE SET NULL,
    kind     text NOT NULL,
    payload  jsonb NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room, seq),
    UNIQUE (room, op_id)
);

CREATE TABLE sessions (
    id         text PRIMARY KEY, -- SHA-256 of the cookie token
    person_id  bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL
);
CREATE INDEX sessions_person_idx ON sessions (person_id);

-- invites are personal sign-in links (QR codes on tablets, and the
-- one-time organizer link of the embedded default).
CREATE TABLE invites (
    id         bigserial PRIMARY KEY,
    event_id   bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    person_id  bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE,
    once       boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);

-- settings holds the server's own facts, such as whether the demo event
-- was loaded once (so it is never loaded twice).
CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor_id bigint REFERENCES people(id) ON DELETE SET NULL,
    event_id bigint REFERENCES events(id) ON DELETE CASCADE,
    action   text NOT NULL,
    target   text NOT NULL DEFAULT '',
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_event_idx ON audit_log (event_id, at);
