/* profile.h — local users' profiles (display name, avatar, v1.16 fields):
 * what other areas read of them. The endpoints are in profile.c.
 *
 * Remote users' profiles are asked of their servers (federation's profile
 * query, through fed_outbound.h); federation serves ours to them with
 * client_profile_load. */
#ifndef CLIENT_PROFILE_H
#define CLIENT_PROFILE_H

#include <jansson.h>

#include "homeserver/http/http.h"

#define CLIENT_PROFILE_MAX_BYTES 65536   /* the spec: a profile is under 64 KiB */
#define CLIENT_PROFILE_KEY_MAX 255       /* bytes, the spec's M_KEY_TOO_LARGE limit */
#define CLIENT_DISPLAYNAME_MAX 256       /* characters, Synapse's limit */
#define CLIENT_AVATAR_URL_MAX 1000       /* characters, Synapse's limit */

/* Is key a valid profile field name (the spec's keyName pattern, at most
 * 255 bytes)? 0, or -1 with 400 M_KEY_TOO_LARGE / M_INVALID_PARAM. */
int client_profile_key_check(const char *key, hs_err *err);

/* The whole profile of a local user (displayname, avatar_url and the other
 * fields that are set) as a new object, or NULL with 404 M_NOT_FOUND when
 * the user is unknown (500 on database errors). */
json_t *client_profile_load(db_conn *c, const char *user_id, hs_err *err);

/* Give a new account its profile (displayname may be NULL). In the caller's
 * transaction. */
int client_profile_init(db_conn *c, const char *user_id, const char *displayname, hs_err *err);

/* A local user's display name and avatar URL (each malloc'd, NULL if unset;
 * either pointer may be NULL when not wanted). 0, or -1 with err. */
int client_profile_get(db_conn *c, const char *user_id, char **displayname, char **avatar_url,
                       hs_err *err);

/* The content of a membership event for user_id as the profile says: adds
 * "displayname" / "avatar_url" to content when set. 0, or -1 with err. */
int client_profile_fill_member(db_conn *c, const char *user_id, json_t *content, hs_err *err);

/* Carry user_id's display name and avatar into every room they are joined
 * to (a new m.room.member join event each, sent through client_room_send).
 * Best effort, after the profile change committed; failures are logged. */
void client_profile_propagate(hs_server *srv, const char *user_id);

/* Erase a profile (deactivation with erase: true). */
int client_profile_erase(db_conn *c, const char *user_id, hs_err *err);

#endif
