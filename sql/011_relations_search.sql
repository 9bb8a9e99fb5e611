-- 011_relations_search: event relationships (m.relates_to), threads, the
-- full-text search index and content reports.
--
-- The first three are filled when an event is persisted, in its transaction
-- (client_relations_on_event), for local events and those that arrive over
-- federation alike. Nothing here is deleted when an event is redacted or
-- turns out rejected: readers join events and skip children that are not
-- accepted or are redacted (a redacted child breaks its relationship).

CREATE TABLE event_relations (
    event_id         text PRIMARY KEY,     -- the child
    relates_to_id    text NOT NULL,        -- the parent: m.relates_to.event_id
    rel_type         text NOT NULL,
    room_id          text NOT NULL,        -- the child's; a parent elsewhere is ignored on reading
    sender           text NOT NULL,
    type             text NOT NULL,
    aggregation_key  text,                 -- m.annotation: the key
    thread_id        text                  -- the thread root the child belongs to, if any
);
CREATE INDEX event_relations_parent ON event_relations (relates_to_id, rel_type);
CREATE INDEX event_relations_thread ON event_relations (thread_id) WHERE thread_id IS NOT NULL;

-- One row per thread, for GET /threads (newest activity first).
CREATE TABLE threads (
    room_id          text NOT NULL,
    thread_id        text NOT NULL,        -- the root's event ID
    latest_event_id  text NOT NULL,
    latest_stream    bigint NOT NULL,      -- its stream ordering
    PRIMARY KEY (room_id, thread_id)
);
CREATE INDEX threads_room_latest ON threads (room_id, latest_stream);

-- POST /search: the searchable text of unencrypted events (m.room.message's
-- body, m.room.name's name, m.room.topic's topic), one row per event.
CREATE TABLE event_search (
    event_id  text PRIMARY KEY,
    room_id   text NOT NULL,
    key       text NOT NULL,               -- content.body | content.name | content.topic
    vector    tsvector NOT NULL
);
CREATE INDEX event_search_vector ON event_search USING gin (vector);
CREATE INDEX event_search_room ON event_search (room_id);

-- GET /timestamp_to_event: the event closest to a time in a room.
CREATE INDEX events_room_ts ON events (room_id, origin_server_ts);

-- Reports of events, rooms and users, for the admin (`pvyhs report list`).
CREATE TABLE reports (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('event', 'room', 'user')),
    reporter        text NOT NULL,
    room_id         text,                  -- event and room reports
    event_id        text,                  -- event reports
    target_user_id  text,                  -- user reports
    reason          text,
    score           integer,               -- event reports before v1.18
    received_ts     bigint NOT NULL
);
CREATE INDEX reports_received ON reports (received_ts);

-- Events stored before this migration. Events whose JSON holds an escaped
-- NUL are skipped: PostgreSQL's text cannot hold it.
CREATE TEMPORARY TABLE backfill ON COMMIT DROP AS
    SELECT e.event_id, e.room_id, e.sender, e.type, e.state_key, e.stream_ordering,
           e.outlier, e.rejected_reason IS NULL AND NOT e.soft_failed AS accepted,
           convert_from(e.json, 'UTF8')::jsonb -> 'content' AS content
    FROM events e WHERE strpos(convert_from(e.json, 'UTF8'), '\u0000') = 0;

INSERT INTO event_relations (event_id, relates_to_id, rel_type, room_id, sender, type,
                             aggregation_key, thread_id)
    SELECT b.event_id, b.content -> 'm.relates_to' ->> 'event_id',
           b.content -> 'm.relates_to' ->> 'rel_type', b.room_id, b.sender, b.type,
           CASE WHEN jsonb_typeof(b.content -> 'm.relates_to' -> 'key') = 'string'
                THEN b.content -> 'm.relates_to' ->> 'key' END,
           CASE WHEN b.content -> 'm.relates_to' ->> 'rel_type' = 'm.thread'
                THEN b.content -> 'm.relates_to' ->> 'event_id' END
    FROM backfill b
    WHERE jsonb_typeof(b.content -> 'm.relates_to') = 'object'
      AND jsonb_typeof(b.content -> 'm.relates_to' -> 'rel_type') = 'string'
      AND jsonb_typeof(b.content -> 'm.relates_to' -> 'event_id') = 'string';

INSERT INTO threads (room_id, thread_id, latest_event_id, latest_stream)
    SELECT DISTINCT ON (r.room_id, r.relates_to_id) r.room_id, r.relates_to_id, r.event_id,
           b.stream_ordering
    FROM event_relations r JOIN backfill b USING (event_id)
    WHERE r.rel_type = 'm.thread' AND b.accepted AND NOT b.outlier
      AND b.stream_ordering IS NOT NULL
    ORDER BY r.room_id, r.relates_to_id, b.stream_ordering DESC;

INSERT INTO event_search (event_id, room_id, key, vector)
    SELECT b.event_id, b.room_id, k.key, to_tsvector('english', b.content ->> k.field)
    FROM backfill b JOIN (VALUES ('m.room.message', 'content.body', 'body'),
                                 ('m.room.name', 'content.name', 'name'),
                                 ('m.room.topic', 'content.topic', 'topic')) k (type, key, field)
         ON k.type = b.type
    WHERE jsonb_typeof(b.content -> k.field) = 'string'
      AND (b.type = 'm.room.message') = (b.state_key IS NULL)
      AND (b.state_key IS NULL OR b.state_key = '');
