-- 005_push: push rules, pushers and the notifications push rules produce.

-- A user's own rules. Server-default rules are not stored (they live in the
-- binary); only a user's changes to them are, in push_rule_default_changes.
CREATE TABLE push_rules (
    user_id     text NOT NULL,
    kind        text NOT NULL,            -- override, content, room, sender, underride
    rule_id     text NOT NULL,
    priority    bigint NOT NULL,          -- within (user, kind): higher is checked first
    conditions  jsonb,                    -- override and underride rules
    pattern     text,                     -- content rules
    actions     jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (user_id, kind, rule_id)
);

CREATE TABLE push_rule_default_changes (
    user_id     text NOT NULL,
    kind        text NOT NULL,
    rule_id     text NOT NULL,            -- a server-default rule (".m.rule.…")
    enabled     boolean,                  -- NULL: as the default
    actions     jsonb,                    -- NULL: as the default
    PRIMARY KEY (user_id, kind, rule_id)
);

-- When a user's rules last changed, as a position of the account data
-- stream: /sync sends m.push_rules in account_data when this passed its token.
-- Its row is also the lock that orders concurrent changes by one user.
CREATE TABLE push_rules_stream (
    user_id     text PRIMARY KEY,
    stream_id   bigint NOT NULL
);

-- Pushers (POST /pushers/set), per (user, app_id, pushkey). Stored only:
-- delivery to push gateways is not implemented yet. A pusher goes with the
-- device that created it, as in Synapse.
CREATE TABLE pushers (
    user_id              text NOT NULL,
    app_id               text NOT NULL,
    pushkey              text NOT NULL,
    kind                 text NOT NULL,   -- http, email
    app_display_name     text NOT NULL,
    device_display_name  text NOT NULL,
    profile_tag          text NOT NULL DEFAULT '',
    lang                 text NOT NULL,
    data                 jsonb NOT NULL,
    device_id            text NOT NULL,
    created_ts           bigint NOT NULL,
    PRIMARY KEY (user_id, app_id, pushkey),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX pushers_app_pushkey ON pushers (app_id, pushkey);

-- What push rules decided for a local user about a room event that notifies
-- or highlights: the source of /notifications and of unread counts in /sync.
CREATE TABLE event_push_actions (
    user_id          text NOT NULL,
    room_id          text NOT NULL,
    event_id         text NOT NULL,
    stream_ordering  bigint NOT NULL,
    thread_id        text NOT NULL DEFAULT 'main',  -- thread root event ID, or 'main'
    notify           boolean NOT NULL,
    highlight        boolean NOT NULL,
    actions          jsonb NOT NULL,
    ts               bigint NOT NULL,                -- when the notification was made (ms)
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX event_push_actions_room ON event_push_actions (user_id, room_id, stream_ordering);
CREATE INDEX event_push_actions_user ON event_push_actions (user_id, stream_ordering);

-- A local user's latest own event per room and thread: the spec counts
-- sending an event as moving one's read receipt there, so it ends the unread
-- count the same way an m.read receipt does.
CREATE TABLE push_sent_reads (
    user_id          text NOT NULL,
    room_id          text NOT NULL,
    thread_id        text NOT NULL,
    stream_ordering  bigint NOT NULL,
    PRIMARY KEY (user_id, room_id, thread_id)
);
