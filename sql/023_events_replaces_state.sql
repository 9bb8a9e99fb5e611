-- 023_events_replaces_state: the state event each state event replaced (the
-- entry for its type and state key in the state before it), as clients get it
-- in unsigned.replaces_state (v1.19) and, through it, unsigned.prev_content.
-- Written when the event is stored (rooms/store_events.c), where the state
-- before it is at hand, so serving it costs a join and no state load.
ALTER TABLE events ADD COLUMN replaces_state text;

-- Events stored before this migration: the closest earlier accepted state
-- event of the same type and key in the timeline, which is the state before
-- it wherever the room's history is linear (a fork may differ; the state
-- groups are not readable from SQL).
UPDATE events e SET replaces_state = (
    SELECT p.event_id FROM events p
    WHERE p.room_id = e.room_id AND p.type = e.type AND p.state_key = e.state_key
      AND p.stream_ordering < e.stream_ordering AND NOT p.outlier
      AND p.rejected_reason IS NULL AND NOT p.soft_failed
    ORDER BY p.stream_ordering DESC LIMIT 1)
WHERE e.state_key IS NOT NULL AND e.stream_ordering > 0 AND NOT e.outlier;
