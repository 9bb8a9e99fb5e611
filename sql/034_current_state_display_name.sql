-- 034_current_state_display_name: a member's display name in the room, kept
-- beside the membership in current_state. Push rules read it for every
-- recipient of every message (contains_display_name); reading it here
-- spares the join to events and a parse of each member event per message.
-- Only a string counts as a display name, as in the event's own rules.
ALTER TABLE current_state ADD COLUMN display_name text;
UPDATE current_state cs
   SET display_name = convert_from(e.json, 'UTF8')::json #>> '{content,displayname}'
  FROM events e
 WHERE e.event_id = cs.event_id AND cs.type = 'm.room.member'
   AND json_typeof(convert_from(e.json, 'UTF8')::json #> '{content,displayname}') = 'string';
