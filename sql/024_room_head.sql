-- 024_room_head: the room's one forward extremity and its depth, on the row
-- every local event locks anyway, so building the next event needs no query
-- of forward_extremities (a join with events and a sort, over a table whose
-- every message deletes and inserts a row).
--
-- head_event is set only when forward_extremities holds exactly that event
-- (rooms/store_current.c's linear advance writes both); any other change of
-- the extremities sets it to NULL, and NULL means "ask forward_extremities".
-- Neither column is indexed, so writing them is a HOT update of the row.
ALTER TABLE rooms ADD COLUMN head_event text, ADD COLUMN head_depth bigint;
