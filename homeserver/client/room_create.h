/* room_create.h — what other areas reuse of POST /createRoom (room_create.c). */
#ifndef CLIENT_ROOM_CREATE_H
#define CLIENT_ROOM_CREATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "homeserver/http/http.h"

/* A new random room ID "!<18 letters>:server_name" (room versions before
 * 12; version 12 derives it from the create event). */
void client_room_random_id(char *out, size_t n, const char *server_name);

/* Who creates a room, from what. */
typedef struct client_room_create_opts {
    const char *creator;           /* a local user's ID */
    bool is_admin;                 /* the creator is a server admin (directory rules) */
    const json_t *body;            /* a POST /createRoom body, checked as that endpoint does */
    const json_t *creator_profile; /* NULL: the creator's join carries their own profile;
                                    * else these fields (displayname, avatar_url) */
    bool server_room;              /* a room the server runs (server notices): no channel
                                    * policy, so no forced encryption (the server's own
                                    * user has no device to encrypt with) */
} client_room_create_opts;

/* POST /createRoom's work, for the endpoint and for rooms the server makes
 * itself: every event in one transaction, then the wake-ups. Writes the new
 * room's ID to room_id; 0, or -1 with err as the endpoint answers. */
int client_room_create(hs_server *srv, const client_room_create_opts *o, char *room_id,
                       size_t room_id_len, hs_err *err);

#endif
