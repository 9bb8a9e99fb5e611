-- 025_room_state_stamp: a counter on the room's row that moves whenever its
-- current_state rows may have changed. Every writer of current_state also
-- updates the row's current_state_group in the same transaction, and those
-- UPDATEs bump it (rooms/store_current.c, rooms/state_rebase.c). A process
-- that keeps current-state events in memory (rooms/current_cache.c) reads
-- the stamp with the room's lock and uses its copy only while it is unchanged.
ALTER TABLE rooms ADD COLUMN state_stamp bigint NOT NULL DEFAULT 0;
