-- 019_events_no_state_group_fk: events.state_before and state_after keep
-- pointing at state groups, but no longer through foreign keys. Each one
-- made every stored event run two referential checks that take a KEY SHARE
-- lock on the state group's row: with a room's messages all citing the same
-- group, concurrent sends wrote multixacts on one hot row. Nothing deletes
-- state groups, and the groups an event names are written by the same
-- transaction or an earlier one (rooms/store_events.c), so the check only
-- cost time.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_state_before_fkey;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_state_after_fkey;
