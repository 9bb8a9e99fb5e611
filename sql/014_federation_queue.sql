-- 014_federation_queue: the outbound federation sender (federation/sender*.c).
--
-- The sender reads the streams local changes are written to (room events,
-- receipts, presence, device lists) from where it left off, and queues what
-- each other server must get: PDUs by reference, EDUs as their content.
-- Reading a batch, queueing it and moving the position happen in one
-- transaction, and a queued row is deleted only once its destination
-- answered 200, so nothing is lost across a restart or a crash.
-- To-device messages are queued by the E2EE code in device_federation_outbox
-- (007) and drained from there.

-- How far the sender has read each stream.
CREATE TABLE federation_sender_positions (
    stream  text PRIMARY KEY,                   -- events, receipts, presence, device_lists
    pos     bigint NOT NULL
);
-- Start at the current positions: what happened before this table existed
-- was never meant for anyone.
INSERT INTO federation_sender_positions (stream, pos)
SELECT 'events', CASE WHEN is_called THEN last_value ELSE 0 END FROM events_stream_seq
UNION ALL
SELECT 'receipts', CASE WHEN is_called THEN last_value ELSE 0 END FROM receipts_stream_seq
UNION ALL
SELECT 'presence', CASE WHEN is_called THEN last_value ELSE 0 END FROM presence_stream_seq
UNION ALL
SELECT 'device_lists', CASE WHEN is_called THEN last_value ELSE 0 END FROM device_lists_stream_seq;

-- Back-off per destination (Synapse's destinations table): retry_interval_ms
-- 0 means the destination is fine; otherwise nothing is sent to it before
-- retry_last_ts + retry_interval_ms.
CREATE TABLE federation_destinations (
    destination        text PRIMARY KEY,
    failure_ts         bigint,                  -- when it started failing; NULL: it is not
    retry_last_ts      bigint NOT NULL DEFAULT 0,
    retry_interval_ms  bigint NOT NULL DEFAULT 0,
    last_success_ts    bigint
);

-- PDUs waiting for a destination, sent in stream order.
CREATE TABLE federation_outbound_pdus (
    destination      text NOT NULL,
    stream_ordering  bigint NOT NULL,
    event_id         text NOT NULL,
    room_id          text NOT NULL,
    PRIMARY KEY (destination, stream_ordering)
);

-- EDUs waiting for a destination, sent in seq order. A newer EDU with the
-- same dedupe_key (presence of a user, a user's receipt in a room, a user's
-- signing keys) replaces one not yet sent.
CREATE SEQUENCE federation_outbound_edus_seq;
CREATE TABLE federation_outbound_edus (
    destination  text NOT NULL,
    seq          bigint NOT NULL DEFAULT nextval('federation_outbound_edus_seq'),
    edu_type     text NOT NULL,
    content      text NOT NULL,                 -- canonical JSON
    dedupe_key   text,
    PRIMARY KEY (destination, seq)
);
CREATE UNIQUE INDEX federation_outbound_edus_dedupe ON federation_outbound_edus (destination, dedupe_key)
    WHERE dedupe_key IS NOT NULL;

-- The last m.device_list_update queued to a destination for each local
-- user (and the prev_id it carried), so the next one names it in prev_id.
CREATE TABLE federation_device_list_sent (
    destination  text NOT NULL,
    user_id      text NOT NULL,
    stream_id    bigint NOT NULL,
    prev_id      bigint,                        -- what that update named (NULL: nothing)
    PRIMARY KEY (destination, user_id)
);
