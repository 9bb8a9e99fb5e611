/* room_version.c — the table of room versions 1–12 (all stable).
 *
 * Each row lists what that version changed relative to the one before, so a
 * reader can check it against the spec's "builds on version N" notes. */
#include "room_version.h"

#include <string.h>

static const room_version versions[] = {
    {.id = "1", .stable = true, .event_format = ROOM_EVFMT_V1, .state_res = ROOM_STATE_RES_V1,
     .special_case_aliases_auth = true},
    /* v2: state resolution v2 */
    {.id = "2", .stable = true, .event_format = ROOM_EVFMT_V1, .state_res = ROOM_STATE_RES_V2,
     .special_case_aliases_auth = true},
    /* v3: event IDs are reference hashes (standard base64) */
    {.id = "3", .stable = true, .event_format = ROOM_EVFMT_V3, .state_res = ROOM_STATE_RES_V2,
     .special_case_aliases_auth = true},
    /* v4: URL-safe base64 event IDs */
    {.id = "4", .stable = true, .event_format = ROOM_EVFMT_V4, .state_res = ROOM_STATE_RES_V2,
     .special_case_aliases_auth = true},
    /* v5: signing key validity (enforced by the key store, not here) */
    {.id = "5", .stable = true, .event_format = ROOM_EVFMT_V4, .state_res = ROOM_STATE_RES_V2,
     .special_case_aliases_auth = true},
    /* v6: strict canonical JSON, no aliases rule, notifications power levels */
    {.id = "6", .stable = true, .event_format = ROOM_EVFMT_V4, .state_res = ROOM_STATE_RES_V2,
     .strict_canonicaljson = true, .limit_notifications_power_levels = true},
    /* v7: knocking */
    {.id = "7", .stable = true, .event_format = ROOM_EVFMT_V4, .state_res = ROOM_STATE_RES_V2,
     .strict_canonicaljson = true, .limit_notifications_power_levels = true, .knock = true},
    /* v8: restricted joins */
    {.id = "8", .stable = true, .event_format = ROOM_EVFMT_V4, .state_res = ROOM_STATE_RES_V2,
     .strict_canonicaljson = true, .limit_notifications_power_levels = true, .knock = true,
     .restricted_join = true},
    /* v9: redaction keeps join_authorised_via_users_server */
    {.id = "9", .stable = true, .event_format = ROOM_EVFMT_V4, .state_res = ROOM_STATE_RES_V2,
     .strict_canonicaljson = true, .limit_notifications_power_levels = true, .knock = true,
     .restricted_join = true, .restricted_join_redaction = true},
    /* v10: knock_restricted, integer-only power levels */
    {.id = "10", .stable = true, .event_format = ROOM_EVFMT_V4, .state_res = ROOM_STATE_RES_V2,
     .strict_canonicaljson = true, .limit_notifications_power_levels = true, .knock = true,
     .restricted_join = true, .restricted_join_redaction = true, .knock_restricted = true,
     .integer_power_levels = true},
    /* v11: new redaction rules, creator is the create event's sender, size
     * limits strictly in bytes (Synapse's strict_event_byte_limits) */
    {.id = "11", .stable = true, .event_format = ROOM_EVFMT_V4, .state_res = ROOM_STATE_RES_V2,
     .strict_canonicaljson = true, .limit_notifications_power_levels = true, .knock = true,
     .restricted_join = true, .restricted_join_redaction = true, .knock_restricted = true,
     .integer_power_levels = true, .v11_redaction = true, .implicit_room_creator = true,
     .updated_redaction_rules = true, .strict_event_byte_limits = true},
    /* v12: room ID is the create event's hash, creators have infinite power,
     * state resolution v2.1 */
    {.id = "12", .stable = true, .event_format = ROOM_EVFMT_V4, .state_res = ROOM_STATE_RES_V2_1,
     .strict_canonicaljson = true, .limit_notifications_power_levels = true, .knock = true,
     .restricted_join = true, .restricted_join_redaction = true, .knock_restricted = true,
     .integer_power_levels = true, .v11_redaction = true, .implicit_room_creator = true,
     .updated_redaction_rules = true, .strict_event_byte_limits = true, .hydra = true},
    {.id = NULL},
};

const room_version *room_version_get(const char *id) {
    if (!id) return NULL;
    for (const room_version *v = versions; v->id; v++)
        if (strcmp(v->id, id) == 0) return v;
    return NULL;
}

static const room_version *default_version;

const room_version *room_version_default(void) {
    return default_version ? default_version : room_version_get("12");
}

int room_version_set_default(const char *id) {
    const room_version *v = room_version_get(id);
    if (!v) return -1;
    default_version = v;
    return 0;
}

const room_version *room_versions_all(void) { return versions; }
