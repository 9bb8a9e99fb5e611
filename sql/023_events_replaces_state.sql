-- 023_events_replaces_state: the state event each state event replaced (the
-- entry for its type and state key in the state before it), as clients get it
-- in unsigned.replaces_state (v1.19) and, through it, unsigned.prev_content.
-- Written when the event is stored (rooms/store_events.c), where the state
-- before it is at hand, so serving it costs a join and no state load.
ALTER TABLE events ADD COLUMN replaces_state text;

-- Events stored before this migration: the previous accepted state event of
-- the same type and key in the timeline, which is the state before it
-- wherever the room's history is linear (a fork may differ; state groups are
-- not readable from SQL). One sorted pass, not a search per event.
UPDATE events e SET replaces_state = p.prev
FROM (SELECT event_id, lag(event_id) OVER (PARTITION BY room_id, type, state_key
                                           ORDER BY stream_ordering) AS prev
      FROM events
      WHERE state_key IS NOT NULL AND stream_ordering IS NOT NULL AND NOT outlier
        AND rejected_reason IS NULL AND NOT soft_failed) p
WHERE e.event_id = p.event_id AND p.prev IS NOT NULL;
