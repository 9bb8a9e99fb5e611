-- 009_federation_keys: other servers' signing keys (federation/keys.c).
-- Each key is kept with how long we may trust it; the signed responses they
-- came in are kept too, so we can vouch for them as a notary
-- (POST/GET /_matrix/key/v2/query) and keep serving them while the server is down.

-- One row per (server, key): verify_keys and old_verify_keys alike.
CREATE TABLE server_signing_keys (
    server_name    text NOT NULL,
    key_id         text NOT NULL,           -- "ed25519:abc123"
    verify_key     text NOT NULL,           -- unpadded base64 of the 32-byte ed25519 public key
    valid_until_ts bigint NOT NULL,         -- verify_keys: min(valid_until_ts, fetched_ts + 7 days);
                                            -- old_verify_keys: expired_ts
    expired_ts     bigint,                  -- set when the key was listed in old_verify_keys
    from_server    text NOT NULL,           -- the server itself, or the notary that told us
    fetched_ts     bigint NOT NULL,
    PRIMARY KEY (server_name, key_id)
);

-- The latest verified key response per server, as the server signed it
-- (other servers' signatures removed).
CREATE TABLE server_key_responses (
    server_name    text PRIMARY KEY,
    from_server    text NOT NULL,
    fetched_ts     bigint NOT NULL,
    valid_until_ts bigint NOT NULL,         -- as the response says
    key_json       text NOT NULL            -- canonical JSON
);
