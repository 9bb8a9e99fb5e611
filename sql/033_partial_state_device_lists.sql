-- 033_partial_state_device_lists: the device-lists stream position at a
-- partial-state join (sql/018). While the room's state is partial our users'
-- device-list updates go to the servers we know of; when the full state
-- shows servers we did not know (or believed gone), the updates made since
-- this position are sent to them too (federation/partial_state.c), as
-- Synapse does. Rows marked before this column existed replay nothing.
ALTER TABLE fed_partial_state_rooms ADD COLUMN device_list_pos bigint NOT NULL DEFAULT 0;
