/* room_version.h — what differs between room versions 1–12.
 * One table row per version; code asks for a property, never compares IDs. */
#ifndef ROOM_VERSION_H
#define ROOM_VERSION_H

#include <stdbool.h>

enum room_event_format {
    ROOM_EVFMT_V1 = 1,  /* v1–v2: event_id carried in the event, "$x:server" */
    ROOM_EVFMT_V3 = 3,  /* v3: event_id = "$" + standard unpadded b64 reference hash */
    ROOM_EVFMT_V4 = 4,  /* v4+: URL-safe unpadded b64 reference hash */
};

enum room_state_res { ROOM_STATE_RES_V1 = 1, ROOM_STATE_RES_V2 = 2, ROOM_STATE_RES_V2_1 = 21 };

typedef struct room_version {
    const char *id;                      /* "1" … "12" */
    bool stable;
    enum room_event_format event_format;
    enum room_state_res state_res;
    bool special_case_aliases_auth;      /* v1–v5: m.room.aliases auth rule */
    bool strict_canonicaljson;           /* v6+: ints in range, no floats */
    bool limit_notifications_power_levels; /* v6+ */
    bool knock;                          /* v7+ */
    bool restricted_join;                /* v8+ */
    bool restricted_join_redaction;      /* v9+: keep join_authorised_via_users_server */
    bool knock_restricted;               /* v10+ */
    bool integer_power_levels;           /* v10+: power level values must be ints */
    bool v11_redaction;                  /* v11+: redaction algorithm changes, create keeps all content */
    bool implicit_room_creator;          /* v11+: creator from sender, no content.creator */
    bool updated_redaction_rules;        /* v11+: redacts moved into content */
    bool strict_event_byte_limits;       /* v11+: an ID, type or state_key over 255 bytes (but
                                          * not over 255 codepoints) is dropped; before v11
                                          * Synapse counted codepoints, so such an event is
                                          * stored rejected to keep the room's DAG whole */
    bool hydra;                          /* v12: room ID = "!" + create event hash, creators with infinite power */
} room_version;

/* The version with this ID, or NULL when unknown. */
const room_version *room_version_get(const char *id);

/* The default for new rooms ("12", or the config's default_room_version,
 * set once at start-up: 0, or -1 for a version not known here). */
const room_version *room_version_default(void);
int room_version_set_default(const char *id);

/* All known versions in order, terminated by a row with id == NULL. */
const room_version *room_versions_all(void);

#endif
