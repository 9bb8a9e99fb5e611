-- 013_federation_rooms: rooms across servers.

-- PUT /_matrix/federation/v1/send/{txnId} is idempotent per (origin, txnId):
-- a retried transaction gets the first answer again and changes nothing.
-- Rows older than a day are dropped as new transactions arrive (a sender
-- retries within minutes).
CREATE TABLE fed_received_txns (
    origin       text NOT NULL,
    txn_id       text NOT NULL,
    response     text NOT NULL,           -- the JSON answered the first time
    received_ts  bigint NOT NULL,
    PRIMARY KEY (origin, txn_id)
);
CREATE INDEX fed_received_txns_ts ON fed_received_txns (received_ts);

-- A local user's invite to, knock on, or rejected invite / retracted knock
-- of a room this server is not in (no local user joined): the room's events
-- are not here, only the membership event and the stripped state the other
-- server sent, which /sync shows in its invite, knock and leave sections.
-- A join through federation makes the room ours and deletes the row.
CREATE TABLE fed_remote_memberships (
    room_id          text NOT NULL,
    user_id          text NOT NULL,
    membership       text NOT NULL,       -- invite, knock, leave
    event_id         text NOT NULL,
    event_json       text NOT NULL,       -- the membership event (canonical JSON)
    room_version     text NOT NULL,
    sender           text NOT NULL,       -- the inviter (or the user for knock/leave)
    via              text NOT NULL,       -- the server to leave through: the inviter's, or
                                          -- the one that took the knock
    stripped_state   text NOT NULL,       -- JSON array of stripped state events (client format)
    stream_ordering  bigint NOT NULL,     -- a position of events_stream_seq
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX fed_remote_memberships_user ON fed_remote_memberships (user_id, stream_ordering);

-- m.direct_to_device EDUs are delivered once per (origin, message_id), even
-- when a transaction is retried under another ID.
CREATE TABLE fed_to_device_seen (
    origin       text NOT NULL,
    message_id   text NOT NULL,
    received_ts  bigint NOT NULL,
    PRIMARY KEY (origin, message_id)
);
CREATE INDEX fed_to_device_seen_ts ON fed_to_device_seen (received_ts);
