-- 032_sliding_sync_connections: what each simplified sliding sync (MSC4186)
-- connection has been sent (homeserver/client/sliding_conn.c), as Synapse's
-- sliding_sync_connection_* tables: one row per pos handed out, the latest
-- two of each connection kept (a client whose response was lost retries the
-- previous pos). rooms: {"rooms": {room_id: {"to", "rs", "tl", "lazy", …}},
-- "rs": [required_state arrays the rooms' "rs" index]}. Rows unused for a
-- week, or of a deleted device, go when their user starts a connection.
CREATE TABLE sliding_sync_connections (
    user_id    text NOT NULL,
    device_id  text NOT NULL,
    conn_id    text NOT NULL,
    pos        text NOT NULL,
    rooms      jsonb NOT NULL,
    used_ts    bigint NOT NULL,
    PRIMARY KEY (user_id, device_id, conn_id, pos)
);
CREATE INDEX sliding_sync_connections_used ON sliding_sync_connections (user_id, used_ts);
