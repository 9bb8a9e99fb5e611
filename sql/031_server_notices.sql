-- 031_server_notices: Synapse's server notices (homeserver/client/
-- server_notices.c). Each local user's notices room, made by the system
-- user on the first notice and reused after the user left it; a room made
-- by another system user (system_mxid_localpart changed) is not reused.
CREATE TABLE server_notice_rooms (
    user_id      text PRIMARY KEY,
    room_id      text NOT NULL,
    system_user  text NOT NULL
);
CREATE INDEX server_notice_rooms_room ON server_notice_rooms (room_id);

-- PUT /_synapse/admin/v1/send_server_notice/{txnId}: a repeated transaction
-- of the same admin device answers with the first notice's event.
CREATE TABLE server_notice_txns (
    admin_user   text NOT NULL,
    device_id    text NOT NULL,
    txn_id       text NOT NULL,
    event_id     text NOT NULL,
    created_ts   bigint NOT NULL,
    PRIMARY KEY (admin_user, device_id, txn_id)
);
