-- 015_media_url_cache.sql — link previews kept for an hour (media/preview_cache.c),
-- as Synapse's local_media_repository_url_cache, so a link posted in a busy
-- room is fetched once, not once per reader.
--
-- Like the rest of the media store, nothing here is readable without the
-- media master key: the URL only as a keyed hash, the preview sealed.

CREATE TABLE media_url_cache (
    url_hash    bytea NOT NULL,   -- HMAC-SHA-256 of the URL under a master-derived key
    og          bytea NOT NULL,   -- the preview's JSON, sealed under the master key
    download_ts bigint NOT NULL,
    expires_ts  bigint NOT NULL
);
CREATE INDEX media_url_cache_url_idx ON media_url_cache (url_hash, download_ts DESC);
CREATE INDEX media_url_cache_expires_idx ON media_url_cache (expires_ts);
