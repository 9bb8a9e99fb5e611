/* room_upgrade.h — the pure parts of POST /rooms/{roomId}/upgrade
 * (room_upgrade_state.c), separate from the transaction (room_upgrade.c) so
 * unit tests can reach them. */
#ifndef CLIENT_ROOM_UPGRADE_H
#define CLIENT_ROOM_UPGRADE_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/core/err.h"
#include "rooms/room_version.h"

/* A power levels content with every level an integer (numeric strings
 * converted, anything else dropped), as v10+ rooms require: new reference. */
json_t *upgrade_pl_fixup(const json_t *pl);

/* The new room's power levels (new references), from the old room's
 * content (NULL: none, then the upgrader gets 100 in versions before 12):
 * *final is what the room keeps; *initial is the same with the upgrader
 * raised, if needed, to the level of every state event, ban and event type
 * so they can copy the state (Synapse), and is sent first.
 * Creators carry over: from a v12 room into an older version, the old
 * creators (infinite power there) get max(100, that level); into v12, the
 * upgrader and additional_creators are left out of "users", as v12 demands. */
void upgrade_power_levels(const json_t *old_pl, const room_version *old_v,
                          const room_version *new_v, const char *upgrader,
                          const json_t *old_creators, const json_t *additional,
                          json_t **initial, json_t **final);

/* The old room's power levels after the upgrade: events_default and invite
 * raised to max(50, users_default + 1) (spec, Synapse). NULL when they
 * already are that high (nothing to send). */
json_t *upgrade_restricted_pl(const json_t *old_pl);

/* Local aliases move to the new room: the canonical alias content for the
 * new room (local alias and alt_aliases) and what the old one keeps (the
 * rest). New references; *new_content is NULL when it names nothing. */
void upgrade_split_aliases(const json_t *canonical, const char *server_name,
                           json_t **new_content, json_t **old_content);

/* The replacement room's m.room.create content (spec 1.16): room_version,
 * predecessor {room_id, and event_id when tombstone_id is given}, the old
 * room's type and m.federate: false, creator for versions that name one,
 * additional_creators for v12. New reference. */
json_t *upgrade_create_content(const json_t *old_create, const char *old_room_id,
                               const char *tombstone_id, const room_version *new_v,
                               const char *upgrader, const json_t *additional);

/* additional_creators as the spec and Synapse accept it: an array of valid
 * user IDs. 0, or -1 with 400 M_BAD_JSON. */
int upgrade_check_creators(const json_t *additional, hs_err *err);

#endif
