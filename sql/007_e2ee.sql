-- 007_e2ee: end-to-end encryption support.
--
-- The server keeps public keys, signatures, opaque to-device messages and
-- encrypted key backups; it never holds a private key or a plaintext.
--
-- Device keys, cross-signing keys, their signatures and the device-list
-- change log hold local and remote users alike: `origin` is the server part of
-- the user ID, so federation (user keys query/claim, m.device_list_update and
-- m.signing_key_update EDUs) reads and fills the same tables. One-time keys,
-- fallback keys, the to-device inbox and key backups exist for local devices
-- and users only and go with them (ON DELETE CASCADE).

-- Identity keys of a device, exactly as the device signed them.
CREATE TABLE e2e_device_keys (
    user_id       text NOT NULL,
    device_id     text NOT NULL,
    origin        text GENERATED ALWAYS AS (substr(user_id, strpos(user_id, ':') + 1)) STORED,
    key_json      text NOT NULL,          -- canonical JSON of the uploaded DeviceKeys
    display_name  text,                   -- remote devices only; local ones use devices.display_name
    added_ts      bigint NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
CREATE INDEX e2e_device_keys_origin ON e2e_device_keys (origin);

-- One-time keys, handed out once each in upload order (seq).
CREATE TABLE e2e_one_time_keys (
    user_id    text NOT NULL,
    device_id  text NOT NULL,
    algorithm  text NOT NULL,
    key_id     text NOT NULL,
    key_json   text NOT NULL,             -- canonical JSON (or a JSON string for unsigned keys)
    seq        bigserial,
    PRIMARY KEY (user_id, device_id, algorithm, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX e2e_one_time_keys_order ON e2e_one_time_keys (user_id, device_id, algorithm, seq);

-- At most one fallback key per (device, algorithm); it stays when claimed and
-- is only marked used.
CREATE TABLE e2e_fallback_keys (
    user_id    text NOT NULL,
    device_id  text NOT NULL,
    algorithm  text NOT NULL,
    key_id     text NOT NULL,
    key_json   text NOT NULL,
    used       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, device_id, algorithm),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- The current cross-signing keys of a user (local or remote).
CREATE TABLE e2e_cross_signing_keys (
    user_id     text NOT NULL,
    keytype     text NOT NULL CHECK (keytype IN ('master', 'self_signing', 'user_signing')),
    origin      text GENERATED ALWAYS AS (substr(user_id, strpos(user_id, ':') + 1)) STORED,
    public_key  text NOT NULL,            -- unpadded base64: the key's "device ID"
    key_json    text NOT NULL,            -- canonical JSON of the CrossSigningKey
    stream_id   bigint NOT NULL,          -- device-lists position of the last change
    PRIMARY KEY (user_id, keytype)
);

-- Signatures uploaded with /keys/signatures/upload, merged into served keys.
-- target_key_id is a device ID or a cross-signing public key.
CREATE TABLE e2e_cross_signing_signatures (
    target_user_id  text NOT NULL,
    target_key_id   text NOT NULL,
    signer_user_id  text NOT NULL,
    signer_key_id   text NOT NULL,        -- "ed25519:<device ID or public key>"
    signature       text NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);

-- The device-list stream: one row per change to a user's devices or
-- cross-signing keys, at a position of device_lists_stream_seq. Federation's
-- m.device_list_update needs the per-device stream IDs (prev_id chains).
CREATE TABLE e2e_device_list_changes (
    stream_id  bigint NOT NULL,
    user_id    text NOT NULL,             -- whose devices or keys changed
    device_id  text,                      -- the device or cross-signing public key; NULL: not one
    only_for   text,                      -- NULL: all who share a room; else only this user
    origin     text GENERATED ALWAYS AS (substr(user_id, strpos(user_id, ':') + 1)) STORED
);
CREATE INDEX e2e_device_list_changes_stream ON e2e_device_list_changes (stream_id);
CREATE INDEX e2e_device_list_changes_user ON e2e_device_list_changes (user_id, stream_id);

-- Membership changes on the same stream, recorded by client_e2ee_on_membership:
-- whoever starts sharing a room with a user shows up in its `changed`, whoever
-- stops sharing every room in its `left`.
CREATE TABLE e2e_device_list_memberships (
    stream_id   bigint NOT NULL,
    room_id     text NOT NULL,
    user_id     text NOT NULL,
    membership  text NOT NULL
);
CREATE INDEX e2e_device_list_memberships_stream ON e2e_device_list_memberships (stream_id);
-- "Which rooms is this user joined to" for a user: current_state_member
-- (state_key, membership) in 002 already serves it.

-- To-device messages waiting for a local device, deleted once a later sync
-- token acknowledges them.
CREATE TABLE device_inbox (
    user_id       text NOT NULL,
    device_id     text NOT NULL,
    stream_id     bigint NOT NULL,
    message_json  text NOT NULL,          -- {"sender", "type", "content"}
    PRIMARY KEY (user_id, device_id, stream_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- To-device messages for remote users, one m.direct_to_device EDU content per
-- (request, destination), for the federation sender to deliver and delete.
CREATE TABLE device_federation_outbox (
    destination   text NOT NULL,
    stream_id     bigint NOT NULL,
    edu_json      text NOT NULL,
    queued_ts     bigint NOT NULL,
    PRIMARY KEY (destination, stream_id)
);

-- PUT /sendToDevice/{type}/{txnId} is idempotent per sending device and
-- path (the spec scopes a transaction ID to a device and an endpoint).
CREATE TABLE to_device_txns (
    user_id     text NOT NULL,
    device_id   text NOT NULL,
    event_type  text NOT NULL,
    txn_id      text NOT NULL,
    created_ts  bigint NOT NULL,
    PRIMARY KEY (user_id, device_id, event_type, txn_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- Server-side key backups: versions are 1, 2, … per user; a deleted version
-- keeps its row (deleted) so its number is never reused.
CREATE TABLE e2e_room_keys_versions (
    user_id    text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    version    bigint NOT NULL,
    algorithm  text NOT NULL,
    auth_data  text NOT NULL,             -- JSON object, opaque but for the algorithm's checks
    etag       bigint NOT NULL DEFAULT 0, -- bumped whenever the stored keys change
    deleted    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE e2e_room_keys (
    user_id              text NOT NULL,
    version              bigint NOT NULL,
    room_id              text NOT NULL,
    session_id           text NOT NULL,
    first_message_index  bigint NOT NULL,
    forwarded_count      bigint NOT NULL,
    is_verified          boolean NOT NULL,
    session_data         text NOT NULL,   -- JSON object, encrypted by the client
    PRIMARY KEY (user_id, version, room_id, session_id),
    FOREIGN KEY (user_id, version) REFERENCES e2e_room_keys_versions (user_id, version)
        ON DELETE CASCADE
);

-- A user's dehydrated device (MSC3814): a device with keys but no access
-- token, whose pickled account (device_data, encrypted by the client) a new
-- login rehydrates to read what was sent while it had no device online.
CREATE TABLE e2e_dehydrated_devices (
    user_id      text PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    device_id    text NOT NULL,
    device_data  text NOT NULL,           -- JSON object, opaque
    created_ts   bigint NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- A local device's identity keys and the cross-signatures on it go with the
-- device (logout, DELETE /devices). Remote devices have no devices row, so
-- this is a trigger rather than a foreign key.
CREATE FUNCTION e2e_device_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM e2e_device_keys WHERE user_id = OLD.user_id AND device_id = OLD.device_id;
    DELETE FROM e2e_cross_signing_signatures
        WHERE target_user_id = OLD.user_id AND target_key_id = OLD.device_id;
    RETURN OLD;
END $$;
CREATE TRIGGER e2e_device_deleted AFTER DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION e2e_device_deleted();
