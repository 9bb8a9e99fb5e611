-- 002_rooms: the room DAG, state groups and current state.
--
-- Events keep the exact canonical JSON that was hashed and signed (without
-- "unsigned", which is per-server and computed when served) plus the columns
-- queries need. The state before and after each event is a state group: a
-- snapshot, or a delta over a parent group, packed in one bytea
-- ("type\0state_key\0event_id\0" per entry; an empty event_id removes the key).

CREATE TABLE rooms (
    room_id              text PRIMARY KEY,
    room_version         text NOT NULL,
    created_ts           bigint NOT NULL,
    current_state_group  bigint                    -- the resolved state of the extremities
);

CREATE SEQUENCE events_stream_seq;

CREATE TABLE state_groups (
    id          bigserial PRIMARY KEY,
    room_id     text NOT NULL,
    prev_group  bigint REFERENCES state_groups (id),   -- NULL: a snapshot
    chain_len   integer NOT NULL,                      -- deltas between here and the snapshot
    n_entries   integer NOT NULL,                      -- entries of the full state
    entries     bytea NOT NULL
);
CREATE INDEX state_groups_room ON state_groups (room_id);

CREATE TABLE events (
    event_id            text PRIMARY KEY,
    room_id             text NOT NULL,
    type                text NOT NULL,
    state_key           text,                      -- NULL: not a state event
    sender              text NOT NULL,
    depth               bigint NOT NULL,
    origin_server_ts    bigint NOT NULL,
    stream_ordering     bigint UNIQUE,             -- NULL for outliers
    outlier             boolean NOT NULL DEFAULT false,
    soft_failed         boolean NOT NULL DEFAULT false,
    rejected_reason     text,                      -- NULL: accepted
    state_before        bigint REFERENCES state_groups (id),
    state_after         bigint REFERENCES state_groups (id),
    json                bytea NOT NULL
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
CREATE INDEX events_room_depth ON events (room_id, depth);

CREATE TABLE event_edges (
    event_id       text NOT NULL,
    prev_event_id  text NOT NULL,
    room_id        text NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
);
CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

CREATE TABLE event_auth (
    event_id  text NOT NULL,
    auth_id   text NOT NULL,
    PRIMARY KEY (event_id, auth_id)
);

CREATE TABLE forward_extremities (
    room_id   text NOT NULL,
    event_id  text NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- The current state, materialised for membership and state queries.
CREATE TABLE current_state (
    room_id     text NOT NULL,
    type        text NOT NULL,
    state_key   text NOT NULL,
    event_id    text NOT NULL,
    membership  text,                               -- for m.room.member
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX current_state_member ON current_state (state_key, membership)
    WHERE type = 'm.room.member';
