-- 006_account_data: what /sync carries besides room events — account data
-- (global and per room; room tags are the room's m.tag, the fully read marker
-- its m.fully_read), stored filters, read receipts and presence. Typing lives
-- in memory only. Each row carries the stream position of its last change
-- (the sequences are in 003), so /sync reads the changes in (from, to].

CREATE TABLE account_data (
    user_id    text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    room_id    text NOT NULL DEFAULT '',        -- '': global account data
    type       text NOT NULL,
    content    jsonb NOT NULL,
    stream_id  bigint NOT NULL,                 -- account_data_stream_seq
    PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX account_data_stream ON account_data (user_id, stream_id);

-- Filters are numbered per user from 0, as Synapse does; an identical filter
-- uploaded again gets its old ID (clients upload theirs at every start).
CREATE TABLE user_filters (
    user_id    text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    filter_id  bigint NOT NULL,
    filter     jsonb NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

-- One receipt per (room, type, user, thread); thread_id '' is unthreaded.
-- data is what clients see under the user: {"ts"[, "thread_id"]}.
CREATE TABLE receipts (
    room_id       text NOT NULL,
    receipt_type  text NOT NULL,                -- m.read, m.read.private
    user_id       text NOT NULL,
    thread_id     text NOT NULL DEFAULT '',
    event_id      text NOT NULL,
    data          jsonb NOT NULL,
    stream_id     bigint NOT NULL,              -- receipts_stream_seq
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX receipts_room_stream ON receipts (room_id, stream_id);

-- A user's presence as others see it. last_sync_ts (the last /sync or
-- activity) times a silent client out to offline; last_active_ts (activity)
-- turns online into unavailable when idle.
CREATE TABLE presence (
    user_id           text PRIMARY KEY,
    state             text NOT NULL,            -- online, unavailable, offline
    status_msg        text,
    last_active_ts    bigint NOT NULL DEFAULT 0,
    last_sync_ts      bigint NOT NULL DEFAULT 0,
    currently_active  boolean NOT NULL DEFAULT false,
    stream_id         bigint NOT NULL           -- presence_stream_seq
);
CREATE INDEX presence_stream ON presence (stream_id);
CREATE INDEX presence_awake ON presence (last_sync_ts) WHERE state <> 'offline';
