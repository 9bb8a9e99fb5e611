-- 028_events_proactively_send: false on a local event the federation sender
-- must not send by itself (Synapse's internal metadata proactively_send).
-- Our join made through a remote server's send_join is one: that server
-- already has it and sends it to the rest of the room, so a copy in our
-- /send transactions is a duplicate the resident server did not expect.
-- A constant default: PostgreSQL adds the column without rewriting events.
ALTER TABLE events ADD COLUMN proactively_send boolean NOT NULL DEFAULT true;
