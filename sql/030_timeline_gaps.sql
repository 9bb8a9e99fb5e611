-- 030_timeline_gaps: where the timeline has a hole. An event that entered
-- the timeline (not an outlier, not backfilled history) while one of its
-- prev_events was not in it — a gap too wide for get_missing_events, whose
-- oldest event got its state from /state_ids, or the join of a remote room —
-- is recorded at its stream position. An incremental /sync whose span
-- holds such a position starts the room's timeline at the latest one and
-- says `limited`, so the client paginates over the hole instead of showing
-- what came before it and after it as one run (Synapse's timeline_gaps).
CREATE TABLE timeline_gaps (
    room_id          text NOT NULL,
    stream_ordering  bigint NOT NULL,
    PRIMARY KEY (room_id, stream_ordering)
);
