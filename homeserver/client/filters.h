/* filters.h — the spec's filters, stored (POST/GET /user/{userId}/filter)
 * and parsed for the endpoints that apply them (/sync, /messages, /context).
 *
 * A filter is checked against the spec's schema when it arrives (unknown
 * keys are kept, for forward compatibility) and parsed into client_filter:
 * one client_filter_part per EventFilter / RoomEventFilter it holds. A part
 * that the filter leaves out is an empty part, which lets everything through. */
#ifndef CLIENT_FILTERS_H
#define CLIENT_FILTERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "homeserver/db/db.h"

typedef struct client_strlist {
    char **v;
    size_t n;
    bool given; /* the key was present (an empty given list matches nothing) */
} client_strlist;

/* An EventFilter or RoomEventFilter. */
typedef struct client_filter_part {
    long long limit;                 /* -1: not given (see client_filter_limit) */
    client_strlist types, not_types; /* event types; '*' matches any run of characters */
    client_strlist senders, not_senders;
    client_strlist rooms, not_rooms;
    int contains_url;                /* -1 not given, 0 only events without content.url, 1 only with */
    bool lazy_load_members;
    bool include_redundant_members;
    bool unread_thread_notifications;
} client_filter_part;

typedef struct client_filter {
    json_t *json;                        /* the whole filter as given or stored */
    client_filter_part presence;         /* "presence" */
    client_filter_part account_data;     /* "account_data": global account data */
    client_filter_part room;             /* "room": only its rooms / not_rooms */
    client_filter_part timeline;         /* "room.timeline" */
    client_filter_part state;            /* "room.state" (lazy_load_members lives here) */
    client_filter_part ephemeral;        /* "room.ephemeral" */
    client_filter_part room_account_data;/* "room.account_data" */
    bool include_leave;                  /* "room.include_leave" */
    bool federation_format;              /* "event_format": "federation" */
    client_strlist event_fields;         /* "event_fields" (see client_filter_project) */
} client_filter;

/* Check a filter (a JSON object) against the spec: 0, or -1 with
 * 400 M_BAD_JSON naming the offending key (e.g. "room.timeline.limit"). */
int client_filter_check(const json_t *filter, hs_err *err);

/* Check and parse a filter. The result holds its own reference to filter. */
client_filter *client_filter_parse(json_t *filter, hs_err *err);

/* The filter a request names: filter_param is a filter ID of user_id's, or
 * inline JSON (it starts with '{'); NULL or "" gives the empty filter. Errors
 * as Synapse gives them on /sync: 400 M_NOT_JSON for inline text that is not
 * JSON, 400 M_BAD_JSON for an invalid filter, 400 M_INVALID_PARAM for an
 * unknown filter ID. */
client_filter *client_filter_load(db_conn *c, const char *user_id, const char *filter_param,
                                  hs_err *err);
void client_filter_free(client_filter *f);

/* For /messages and /context: their `filter` query parameter, a
 * RoomEventFilter as JSON (NULL or "": the empty filter). 400 M_NOT_JSON /
 * M_BAD_JSON as above. Free with client_filter_part_free. */
client_filter_part *client_room_event_filter_load(const char *filter_param, hs_err *err);
void client_filter_part_free(client_filter_part *p);

/* Does the part's rooms / not_rooms let this room through? (not_rooms wins.)
 * /sync asks &f->room first (is the room shown at all), then the part of the
 * section it fills, since events inside /sync carry no room_id. */
bool client_filter_room_allowed(const client_filter_part *p, const char *room_id);

/* Does the part let this event through: type against types / not_types
 * (with '*' globs), sender against senders / not_senders, room_id (when the
 * event has one) against rooms / not_rooms, content.url against contains_url.
 * A not_* match always excludes. Works on room events, presence events
 * (sender) and account data events (type only). */
bool client_filter_event_allowed(const client_filter_part *p, const json_t *event);

/* Does the glob pattern ('*' = any run of characters) match s? */
bool client_filter_glob(const char *pattern, const char *s);

/* True when the part can let nothing through (types: [], a "*" in not_types,
 * senders: [], …), so a caller can skip the work. */
bool client_filter_blocks_all(const client_filter_part *p);

/* True when the part can refuse some event (it names types, senders,
 * rooms or contains_url), so a caller can skip applying it. */
bool client_filter_sifts(const client_filter_part *p);

/* The part's limit, or dflt when it gives none, never above max. */
int client_filter_limit(const client_filter_part *p, int dflt, int max);

/* The event reduced to the filter's event_fields (dot-separated paths, with
 * "\." and "\\" escapes), or the event itself when it names none. New
 * reference either way. */
json_t *client_filter_project(const client_filter *f, const json_t *event);

#endif
