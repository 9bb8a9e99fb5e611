-- 001_init: accounts, devices and access tokens.
-- Access tokens are stored as their SHA-256 only: a copy of the database
-- gives nobody a working token.

CREATE TABLE users (
    user_id        text PRIMARY KEY,            -- "@alice:example.org"
    password_hash  text,                        -- argon2id (libsodium crypto_pwhash_str); NULL = no password login
    admin          boolean NOT NULL DEFAULT false,
    is_guest       boolean NOT NULL DEFAULT false,
    deactivated    boolean NOT NULL DEFAULT false,
    created_ts     bigint NOT NULL              -- ms since the epoch
);

CREATE TABLE devices (
    user_id        text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id      text NOT NULL,
    display_name   text,
    created_ts     bigint NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE access_tokens (
    token_hash     bytea PRIMARY KEY,           -- sha256(token)
    user_id        text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id      text NOT NULL,
    created_ts     bigint NOT NULL,
    valid_until_ts bigint,                      -- NULL: no expiry
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);
