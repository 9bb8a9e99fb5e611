-- 027_room_extremities_view: a room's forward extremities are its row's
-- head_event (sql/024) when that is set, else its forward_extremities rows.
-- The linear advance of every local message then writes only the room's row
-- (a HOT update) instead of deleting and inserting a forward_extremities row;
-- whoever moves the extremities otherwise first puts the head back into the
-- table and clears it (rooms/store_current.c). Readers use this view.
CREATE VIEW room_extremities AS
    SELECT r.room_id, r.head_event AS event_id FROM rooms r WHERE r.head_event IS NOT NULL
    UNION ALL
    SELECT f.room_id, f.event_id FROM forward_extremities f
    WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.room_id = f.room_id
                      AND r.head_event IS NOT NULL);
