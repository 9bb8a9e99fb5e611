/* room_create.h — what other areas reuse of POST /createRoom (room_create.c). */
#ifndef CLIENT_ROOM_CREATE_H
#define CLIENT_ROOM_CREATE_H

#include <stddef.h>

/* A new random room ID "!<18 letters>:server_name" (room versions before
 * 12; version 12 derives it from the create event). */
void client_room_random_id(char *out, size_t n, const char *server_name);

#endif
