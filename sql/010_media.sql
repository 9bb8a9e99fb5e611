-- 010_media.sql — the content repository (media/).
--
-- Stored files are encrypted and content-addressed: media rows (one per
-- mxc://origin/media_id) point at blobs, so the same content is stored once.
-- A blob's own key is kept here only sealed by the media master key, which
-- never enters the database; the address is a keyed hash (HMAC-SHA-256 under
-- a key derived from the master key), so neither reveals the content.

CREATE TABLE media_blobs (
    address     bytea PRIMARY KEY,   -- the file is <media_store_path>/blobs/ab/cd/<hex>
    wrapped_key bytea NOT NULL,      -- XChaCha20-Poly1305(master-derived key, file key; ad = address)
    length      bigint NOT NULL,     -- plaintext bytes
    created_ts  bigint NOT NULL
);

CREATE TABLE media (
    origin         text NOT NULL,       -- server_name for local media
    media_id       text NOT NULL,
    remote         boolean NOT NULL,    -- a cached copy of another server's media
    user_id        text,                -- local uploader
    content_type   text,
    upload_name    bytea,               -- the file name, sealed under the master key
    address        bytea REFERENCES media_blobs (address),  -- NULL: created, not yet uploaded
    length         bigint,
    created_ts     bigint NOT NULL,     -- created (local) or cached (remote)
    last_access_ts bigint NOT NULL,     -- for media_retention
    authenticated  boolean NOT NULL,    -- after the freeze: never served unauthenticated
    quarantined_by text,
    PRIMARY KEY (origin, media_id)
);
CREATE INDEX media_user_idx ON media (user_id, created_ts) WHERE user_id IS NOT NULL;
CREATE INDEX media_address_idx ON media (address) WHERE address IS NOT NULL;
CREATE INDEX media_access_idx ON media (remote, last_access_ts);

CREATE TABLE media_thumbnails (
    origin       text NOT NULL,
    media_id     text NOT NULL,
    width        int NOT NULL,
    height       int NOT NULL,
    method       text NOT NULL,         -- crop | scale
    animated     boolean NOT NULL,
    content_type text NOT NULL,
    address      bytea NOT NULL REFERENCES media_blobs (address),
    length       bigint NOT NULL,
    PRIMARY KEY (origin, media_id, width, height, method, animated),
    FOREIGN KEY (origin, media_id) REFERENCES media (origin, media_id) ON DELETE CASCADE
);
CREATE INDEX media_thumbnails_address_idx ON media_thumbnails (address);

-- Recognises the master key (a value derived from it), so a wrong or lost
-- key is reported instead of silently making every stored file unreadable.
CREATE TABLE media_key_check (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    check_value bytea NOT NULL
);
