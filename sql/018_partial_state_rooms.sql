-- 018_partial_state_rooms: rooms joined with partial state (MSC3706,
-- "faster joins"): send_join answered without most m.room.member events, so
-- the state we hold for the room lacks them until a background resync
-- (federation/partial_state.c) fetches the full state at our join and
-- rewrites the state of the join and of every event after it. A row lives
-- from the join until that resync commits; on start-up the resync resumes
-- for every row.
CREATE TABLE fed_partial_state_rooms (
    room_id         text PRIMARY KEY,
    join_event_id   text NOT NULL,      -- our join: the full state is fetched at it
    servers         text[] NOT NULL,    -- servers_in_room of the send_join answer, the
                                        -- server that answered first: the servers to ask,
                                        -- and to send our events to meanwhile
    joined_ts       bigint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_try_ts     bigint NOT NULL DEFAULT 0
);
