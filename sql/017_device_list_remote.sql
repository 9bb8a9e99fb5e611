-- 017_device_list_remote.sql — other servers' users whose device lists we
-- follow (federation/device_list_resync.c), as Synapse's
-- device_lists_remote_extremeties: the last update of theirs we hold, by
-- their server's stream_id. An m.device_list_update whose prev_id is not
-- that one means we missed something: the whole list is fetched again
-- (GET /user/devices) and stream_id set from the answer. While a user has
-- a row (and shares a room with one of ours), /keys/query answers for them
-- from what we hold instead of asking their server.
CREATE TABLE fed_device_list_remote (
    user_id      text PRIMARY KEY,
    stream_id    bigint NOT NULL,
    resynced_ts  bigint NOT NULL   -- when the list was last fetched whole
);
