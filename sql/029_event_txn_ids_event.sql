-- 029_event_txn_ids_event: events served to a client carry
-- unsigned.transaction_id when the requesting device sent them, looked up
-- per event from the timeline queries (homeserver/client/events_read.c);
-- the primary key leads with the user, so this finds an event's row.
CREATE INDEX event_txn_ids_event ON event_txn_ids (event_id);
