-- 012_channels: what a channel (room) looks like from outside — the published
-- room directory, room summaries and space hierarchies read this — and the
-- pagination sessions of /hierarchy.

-- One row per room, kept up to date by a trigger on current_state, so the
-- directory can list, filter and page thousands of channels with one indexed
-- query instead of loading each room's state.
CREATE TABLE room_summaries (
    room_id             text PRIMARY KEY,
    room_type           text,                   -- m.room.create content.type
    federate            boolean NOT NULL DEFAULT true,
    join_rule           text,
    join_allow          jsonb,                  -- the join rules' "allow" list
    history_visibility  text,
    guest_access        text,
    name                text,
    topic               text,
    canonical_alias     text,
    avatar_url          text,
    encryption          text,                   -- m.room.encryption algorithm
    joined_members      integer NOT NULL DEFAULT 0
);
CREATE INDEX room_summaries_size ON room_summaries (joined_members DESC, room_id DESC);

-- A string field of a JSON object, NULL for anything else (a number where a
-- name belongs is not a name).
CREATE FUNCTION room_summaries_str(j jsonb, k text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(j -> k) = 'string' THEN j ->> k END
$$;

CREATE FUNCTION room_summaries_track() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rid   text;
    typ   text;
    sk    text;
    c     jsonb;
    delta integer := 0;
BEGIN
    IF TG_OP = 'DELETE' THEN
        rid := OLD.room_id; typ := OLD.type; sk := OLD.state_key;
    ELSE
        rid := NEW.room_id; typ := NEW.type; sk := NEW.state_key;
    END IF;
    IF typ = 'm.room.member' THEN
        IF TG_OP <> 'INSERT' AND OLD.membership IS NOT DISTINCT FROM 'join' THEN delta := delta - 1; END IF;
        IF TG_OP <> 'DELETE' AND NEW.membership IS NOT DISTINCT FROM 'join' THEN delta := delta + 1; END IF;
        IF delta <> 0 THEN
            INSERT INTO room_summaries (room_id, joined_members) VALUES (rid, greatest(delta, 0))
            ON CONFLICT (room_id) DO UPDATE
                SET joined_members = greatest(room_summaries.joined_members + delta, 0);
        END IF;
        RETURN NULL;
    END IF;
    IF sk <> '' OR typ NOT IN ('m.room.create', 'm.room.join_rules', 'm.room.history_visibility',
                               'm.room.guest_access', 'm.room.name', 'm.room.topic',
                               'm.room.canonical_alias', 'm.room.avatar', 'm.room.encryption') THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        SELECT convert_from(e.json, 'UTF8')::jsonb -> 'content' INTO c
        FROM events e WHERE e.event_id = NEW.event_id;
    END IF;
    IF jsonb_typeof(c) IS DISTINCT FROM 'object' THEN c := '{}'; END IF;
    INSERT INTO room_summaries (room_id) VALUES (rid) ON CONFLICT (room_id) DO NOTHING;
    CASE typ
    WHEN 'm.room.create' THEN
        UPDATE room_summaries SET room_type = room_summaries_str(c, 'type'),
            federate = coalesce(c -> 'm.federate' <> 'false'::jsonb, true) WHERE room_id = rid;
    WHEN 'm.room.join_rules' THEN
        UPDATE room_summaries SET join_rule = room_summaries_str(c, 'join_rule'),
            join_allow = CASE WHEN jsonb_typeof(c -> 'allow') = 'array' THEN c -> 'allow' END
        WHERE room_id = rid;
    WHEN 'm.room.history_visibility' THEN
        UPDATE room_summaries SET history_visibility = room_summaries_str(c, 'history_visibility')
        WHERE room_id = rid;
    WHEN 'm.room.guest_access' THEN
        UPDATE room_summaries SET guest_access = room_summaries_str(c, 'guest_access')
        WHERE room_id = rid;
    WHEN 'm.room.name' THEN
        UPDATE room_summaries SET name = nullif(room_summaries_str(c, 'name'), '') WHERE room_id = rid;
    WHEN 'm.room.topic' THEN
        -- The plain-text topic: "topic", else the text/plain entry of m.topic (v1.15).
        UPDATE room_summaries SET topic = nullif(coalesce(room_summaries_str(c, 'topic'),
            (SELECT room_summaries_str(t, 'body')
             FROM jsonb_array_elements(CASE WHEN jsonb_typeof(c -> 'm.topic' -> 'm.text') = 'array'
                                       THEN c -> 'm.topic' -> 'm.text' ELSE '[]' END) t
             WHERE coalesce(room_summaries_str(t, 'mimetype'), 'text/plain') = 'text/plain'
             LIMIT 1)), '')
        WHERE room_id = rid;
    WHEN 'm.room.canonical_alias' THEN
        UPDATE room_summaries SET canonical_alias = room_summaries_str(c, 'alias') WHERE room_id = rid;
    WHEN 'm.room.avatar' THEN
        UPDATE room_summaries SET avatar_url = nullif(room_summaries_str(c, 'url'), '')
        WHERE room_id = rid;
    WHEN 'm.room.encryption' THEN
        UPDATE room_summaries SET encryption = room_summaries_str(c, 'algorithm') WHERE room_id = rid;
    END CASE;
    RETURN NULL;
END
$$;

CREATE TRIGGER room_summaries_track AFTER INSERT OR UPDATE OR DELETE ON current_state
    FOR EACH ROW EXECUTE FUNCTION room_summaries_track();

-- Rooms that exist already: member counts, then every summarised state event
-- once more through the trigger.
INSERT INTO room_summaries (room_id, joined_members)
    SELECT room_id, count(*) FILTER (WHERE type = 'm.room.member' AND membership = 'join')
    FROM current_state GROUP BY room_id;
UPDATE current_state SET event_id = event_id WHERE type <> 'm.room.member' AND state_key = '';

-- /hierarchy pagination: the rest of a depth-first walk, kept for a few
-- minutes under a random token (as Synapse keeps it).
CREATE TABLE hierarchy_sessions (
    token           text PRIMARY KEY,
    user_id         text NOT NULL,
    room_id         text NOT NULL,
    suggested_only  boolean NOT NULL,
    max_depth       integer NOT NULL,
    queue           jsonb NOT NULL,   -- [[room_id, depth, [via…]], …], next last
    processed       jsonb NOT NULL,   -- [room_id, …]
    created_ts      bigint NOT NULL
);
CREATE INDEX hierarchy_sessions_created ON hierarchy_sessions (created_ts);
