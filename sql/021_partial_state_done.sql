-- 021_partial_state_done: when each room joined with partial state (sql/018)
-- got its full state, as a position of the events stream. A /sync whose
-- filter does not lazy-load members leaves a partial-state room out, as
-- Synapse does (its member list would be incomplete); the position lets the
-- next incremental sync whose since token lies before it send the room as
-- newly joined, with its whole state (homeserver/client/partial_rooms.h).
-- The resync writes it in the transaction that removes the 018 row; a later
-- partial join of the same room overwrites it when that one completes.
CREATE TABLE fed_partial_state_done (
    room_id         text PRIMARY KEY,
    stream_ordering bigint NOT NULL     -- reserved in the events stream by the resync
);
