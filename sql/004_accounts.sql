-- 004_accounts: sessions, devices, registration and profiles.
-- Every secret a client or admin is handed (refresh, login, OpenID and
-- registration tokens) is stored as its SHA-256 only, like access tokens.

-- Deactivated users keep their row (their ID is never handed out again);
-- erased ones asked for their content to be hidden from later readers.
ALTER TABLE users ADD COLUMN erased boolean NOT NULL DEFAULT false;

-- When a device was last used. Its address and user agent only when the
-- admin turned on track_client_ips, and then for user_ips_max_age at most.
ALTER TABLE devices ADD COLUMN last_seen_ts bigint;
ALTER TABLE devices ADD COLUMN last_seen_ip text;
ALTER TABLE devices ADD COLUMN last_seen_user_agent text;

-- Refresh tokens (spec "Refreshing access tokens"). A refresh replaces the
-- token with a new one whose prev_id points back; the old one stays usable
-- until the new refresh token or its access token is first used.
CREATE TABLE refresh_tokens (
    id              bigserial PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE,
    user_id         text NOT NULL,
    device_id       text NOT NULL,
    created_ts      bigint NOT NULL,
    valid_until_ts  bigint,                      -- NULL: no expiry
    prev_id         bigint REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_prev ON refresh_tokens (prev_id) WHERE prev_id IS NOT NULL;

-- An access token issued with a refresh token dies with it; revokes_refresh_id
-- is the refresh token its first use revokes (then cleared).
ALTER TABLE access_tokens ADD COLUMN refresh_token_id bigint
    REFERENCES refresh_tokens (id) ON DELETE CASCADE;
ALTER TABLE access_tokens ADD COLUMN revokes_refresh_id bigint;
CREATE INDEX access_tokens_refresh ON access_tokens (refresh_token_id)
    WHERE refresh_token_id IS NOT NULL;

-- m.login.token: single-use, short-lived (POST /login/get_token).
CREATE TABLE login_tokens (
    token_hash      bytea PRIMARY KEY,
    user_id         text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_ts      bigint NOT NULL,
    valid_until_ts  bigint NOT NULL
);

-- User-interactive authentication sessions, shared by every process.
CREATE TABLE uia_sessions (
    session_id          text PRIMARY KEY,
    method              text NOT NULL,          -- the operation the session is bound to
    uri                 text NOT NULL,
    created_ts          bigint NOT NULL,
    params              jsonb NOT NULL DEFAULT '{}',  -- request body without auth / password
    completed           jsonb NOT NULL DEFAULT '[]',  -- stages done, in order
    user_id             text,                   -- who the session authenticated (or is for)
    password_hash       text,                   -- /register: argon2id of the chosen password
    registration_token  bytea,                  -- /register: sha256 of the token accepted
    registered_user_id  text                    -- /register: the account this session made
);
CREATE INDEX uia_sessions_created ON uia_sessions (created_ts);
CREATE INDEX uia_sessions_pending_token ON uia_sessions (registration_token)
    WHERE registration_token IS NOT NULL AND registered_user_id IS NULL;

-- Registration tokens (m.login.registration_token). A use is counted when a
-- registration completes; sessions still under way hold a pending use.
CREATE TABLE registration_tokens (
    token_hash    bytea PRIMARY KEY,
    hint          text NOT NULL,                -- first characters, so `list` can name it
    uses_allowed  integer,                      -- NULL: unlimited
    completed     integer NOT NULL DEFAULT 0,
    expiry_ts     bigint,                       -- NULL: never expires
    created_ts    bigint NOT NULL
);

-- Nonces of shared-secret registration (/_synapse/admin/v1/register):
-- single use, 60 seconds.
CREATE TABLE registration_nonces (
    nonce       text PRIMARY KEY,
    created_ts  bigint NOT NULL
);

-- Localparts for accounts registered without a username (and guests).
CREATE SEQUENCE user_localpart_seq;

-- Profiles of local users: the two classic fields and v1.16's others
-- (m.tz and namespaced custom keys) in fields.
CREATE TABLE profiles (
    user_id      text PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    displayname  text,
    avatar_url   text,
    fields       jsonb NOT NULL DEFAULT '{}'
);

-- OpenID tokens (POST /user/{userId}/openid/request_token), checked by
-- federation's /openid/userinfo.
CREATE TABLE openid_tokens (
    token_hash      bytea PRIMARY KEY,
    user_id         text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    valid_until_ts  bigint NOT NULL
);
