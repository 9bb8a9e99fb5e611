-- 026_events_auth_ids: an event's auth_events as an array on its own row
-- instead of a row each in event_auth. Only ever read from an event to its
-- auth events (the auth chain, the member events a timeline's senders were
-- authorised by), never backwards, so no index is needed: every stored event
-- saves three or four heap rows and as many primary-key insertions.
ALTER TABLE events ADD COLUMN auth_ids text[];

UPDATE events e SET auth_ids = a.ids
FROM (SELECT event_id, array_agg(auth_id ORDER BY auth_id) AS ids FROM event_auth
      GROUP BY event_id) a
WHERE a.event_id = e.event_id;

DROP TABLE event_auth;
