-- 008_client_rooms: what the Client-Server API keeps about rooms beyond the DAG.

-- PUT /send/{type}/{txnId} is idempotent per device: the same txnId gives the same event.
CREATE TABLE event_txn_ids (
    user_id     text NOT NULL,
    device_id   text NOT NULL,
    txn_id      text NOT NULL,
    room_id     text NOT NULL,
    event_id    text NOT NULL,
    created_ts  bigint NOT NULL,
    PRIMARY KEY (user_id, device_id, room_id, txn_id)
);

-- Local room aliases (#name:our.server → room).
CREATE TABLE room_aliases (
    alias       text PRIMARY KEY,
    room_id     text NOT NULL,
    creator     text NOT NULL,
    created_ts  bigint NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

-- Rooms a user has forgotten (after leaving): hidden from /sync's leave section.
CREATE TABLE room_forgotten (
    user_id  text NOT NULL,
    room_id  text NOT NULL,
    PRIMARY KEY (user_id, room_id)
);

-- The directory's visibility of a room (public rooms list).
CREATE TABLE room_directory (
    room_id     text PRIMARY KEY,
    visibility  text NOT NULL DEFAULT 'private'
);

-- Membership history per user for /sync: every membership event of a local
-- user, in stream order, so joins, leaves and invites since a token are one
-- indexed range scan.
CREATE INDEX events_member_of ON events (state_key, stream_ordering)
    WHERE type = 'm.room.member';

-- Which event redacts which: served events are redacted when a redaction of
-- theirs is stored (the rooms store records it when it persists one).
CREATE TABLE redactions (
    event_id  text PRIMARY KEY,     -- the m.room.redaction
    redacts   text NOT NULL,
    applies   boolean               -- NULL: the target was unknown when it arrived
);
CREATE INDEX redactions_redacts ON redactions (redacts);
