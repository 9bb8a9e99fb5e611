-- 016_backfill.sql — history pulled from other servers (federation/backfill_pull.c).
--
-- Backfilled events are older than everything a room's timeline held when
-- they arrive, so they take negative stream positions, each batch below the
-- last (as Synapse's backfill stream): /messages walks into them going
-- backwards, /sync (which only moves forwards) never sees them.
CREATE SEQUENCE backfill_stream_seq;

-- The history visibility in force at a backfilled event (from the state
-- before it; '' when the room had none), since the visibility event itself
-- may lie further back than anything pulled so far. NULL for other events,
-- whose visibility is read from the timeline.
ALTER TABLE events ADD COLUMN history_visibility_at text;
