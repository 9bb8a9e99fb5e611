/* e2ee.h — what other areas call of end-to-end encryption support: the
 * /sync sections (to_device, device_lists, one-time key counts) and the
 * hooks that keep device lists right when memberships and devices change.
 *
 * Stream positions: to-device messages live on DB_STREAM_TO_DEVICE, device
 * list changes (keys, cross-signing keys, signatures, devices, memberships)
 * on DB_STREAM_DEVICE_LISTS. The `since`/`from`/`to` arguments below are
 * positions of those streams taken from sync tokens; `to` is what
 * db_stream_current() gave when the sync started.
 *
 * All functions run their statements on the caller's connection c; the
 * hooks that write (client_e2ee_on_membership, client_e2ee_devices_changed)
 * need c outside a transaction, because their stream position may only be
 * released after their own COMMIT. */
#ifndef CLIENT_E2EE_H
#define CLIENT_E2EE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "homeserver/core/err.h"
#include "homeserver/db/db.h"

/* The most to-device messages one /sync returns per device (Synapse's 100). */
#define E2EE_TO_DEVICE_SYNC_LIMIT 100

/* The to_device section for (user_id, device_id).
 *
 * Messages at positions <= since were delivered by the response that handed
 * out the `since` token, so they are deleted now (at-least-once delivery: a
 * client that retries with an older token gets them again). Appends messages
 * with since < pos <= to, oldest first, at most E2EE_TO_DEVICE_SYNC_LIMIT, to
 * `events` (an array of {"sender", "type", "content"}) and stores in *next
 * the to-device position for the next sync token: `to`, or the position of
 * the last message returned when the limit cut the queue (the rest follows
 * in the next sync). since = 0 for an initial sync (nothing is deleted).
 * 0, or -1 with err. */
int client_to_device_sync(db_conn *c, const char *user_id, const char *device_id,
                          long long since, long long to, json_t *events, long long *next,
                          hs_err *err);

/* client_to_device_sync with another limit (sliding sync's to_device
 * extension takes one from the client; >= 1). */
int client_to_device_sync_limit(db_conn *c, const char *user_id, const char *device_id,
                                long long since, long long to, int limit, json_t *events,
                                long long *next, hs_err *err);

/* Send client_to_device_sync's statement ahead (db_prefetch). */
void client_to_device_prefetch(db_conn *c, const char *user_id, const char *device_id,
                               long long since, long long to);

/* The device_lists section of an incremental sync (and /keys/changes) for
 * positions from < pos <= to, appended to the arrays `changed` and `left`
 * (no duplicates):
 *  - changed: users sharing a joined room with user_id (and user_id itself)
 *    whose devices, device keys or cross-signing keys changed; users who
 *    joined, were invited to or knock on a room user_id is joined to; every
 *    member of a room user_id joined; users whose master key user_id signed.
 *  - left: users who left a room user_id is in, or were in a room user_id
 *    left, and now share no joined room with it.
 * A user in `left` is not also in `changed`. 0, or -1 with err. */
int client_device_lists_sync(db_conn *c, const char *user_id, long long from, long long to,
                             json_t *changed, json_t *left, hs_err *err);

/* Rooms a /sync sends as newly joined without a join of user_id in its
 * span (a partial-state room whose members came since: partial_rooms.h):
 * their members, but user_id, join `changed` (arrays of user IDs, no
 * duplicates) and leave `left`, as Synapse does for newly joined rooms.
 * 0, or -1 with err. */
int client_device_lists_rooms_joined(db_conn *c, const char *user_id, const char *const *room_ids,
                                     size_t n, json_t *changed, json_t *left, hs_err *err);

/* device_one_time_keys_count (*counts: {"signed_curve25519": n, …}, always
 * with signed_curve25519 as Synapse does) and
 * device_unused_fallback_key_types (*unused_fallback_types: ["…"]) for a
 * device. New references; 0, or -1 with err (and nothing stored). */
int client_otk_counts(db_conn *c, const char *user_id, const char *device_id, json_t **counts,
                      json_t **unused_fallback_types, hs_err *err);

/* Send client_otk_counts's read ahead (db_prefetch). */
void client_otk_counts_prefetch(db_conn *c, const char *user_id, const char *device_id);

/* Record that user_id's membership in room_id became `membership` ("join",
 * "invite", "knock", "leave", "ban"), so the device_lists of everyone in the
 * room (and of user_id) reflect it: joiners become `changed`, leavers `left`.
 *
 * Call it after the membership event has committed (current_state shows the
 * new membership), for local and remote users alike, once per change of
 * membership (calling it for a join → join profile change only costs a
 * spurious `changed`). It reserves a DB_STREAM_DEVICE_LISTS position, writes
 * in its own transaction on c, releases the position and wakes the room's
 * waiting syncs and user_id's. c must not be inside a transaction (-1 with
 * 500 otherwise). If the process dies between the event's COMMIT and this
 * call, the device lists miss that one change: clients catch up on the next
 * key change of that user. 0, or -1 with err. */
int client_e2ee_on_membership(db_conn *c, const char *room_id, const char *user_id,
                              const char *membership, hs_err *err);

/* A partial-state room got its full state (federation/partial_state.c):
 * user_ids are the joined members it brought that the partial state did
 * not have. To the room's local members they are users who now share a
 * room with them, so they are `changed` in the device lists from here, as
 * if they had just joined (Synapse; the spec's "now share a room"). Same
 * rules as client_e2ee_on_membership. 0, or -1 with err. */
int client_e2ee_on_members_learned(db_conn *c, const char *room_id, const char *const *user_ids,
                                   size_t n, hs_err *err);

/* Local devices of user_id were created or deleted (login with a new device,
 * logout, DELETE /devices, POST /delete_devices): record a device-list
 * change per device so everyone sharing a room with user_id re-queries its
 * keys, and wake them. Deleting the devices row already removed the
 * device's keys, one-time and fallback keys and to-device inbox (007_e2ee.sql).
 * Same rules as client_e2ee_on_membership: after the COMMIT, c outside a
 * transaction. 0, or -1 with err. */
int client_e2ee_devices_changed(db_conn *c, const char *user_id, const char *const *device_ids,
                                size_t n, hs_err *err);

/* The /keys/query answer for local users (federation's /user/keys/query
 * serves the same): users maps user IDs to device IDs ([]: all devices).
 * Sets out's "device_keys" (every user asked appears, {} without keys),
 * "master_keys", "self_signing_keys" and "user_signing_keys" (requester's
 * own only). Signatures shown: the owner's own, and requester's on the
 * owner's master key; requester NULL (another server asking) sees the
 * owner's only. display_names: include each device's display name in
 * "unsigned" (not for other servers, as Synapse by default). 0, or -1. */
int client_keys_query_local(db_conn *c, const char *requester, const json_t *users,
                            bool display_names, json_t *out, hs_err *err);

/* Claim one-time keys (falling back to the fallback key) of local devices:
 * otks maps user IDs to device IDs to algorithms; what was claimed goes to
 * out[user][device]["<algorithm>:<key_id>"]. Users and devices with nothing
 * are left out. 0, or -1 with err. */
int client_keys_claim_local(db_conn *c, const json_t *otks, json_t *out, hs_err *err);

#endif
