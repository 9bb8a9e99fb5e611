/* typing.h — who is typing in which room: PUT /rooms/{roomId}/typing/{userId}
 * and the m.typing events /sync delivers.
 *
 * Typing is never stored: it lives in this process's memory, each change
 * (a user starts, stops, or times out) takes a DB_STREAM_TYPING position and
 * wakes the room's waiting /sync requests. A timer thread ends typing at its
 * time-out, so a client that vanishes mid-word stops "typing" on time. */
#ifndef CLIENT_TYPING_H
#define CLIENT_TYPING_H

#include <jansson.h>
#include <stdbool.h>

/* The longest a single typing notification lasts, as in Synapse. */
#define CLIENT_TYPING_MAX_TIMEOUT_MS 120000

/* Mark user_id as typing in room_id for timeout_ms (capped), or not typing.
 * No check of who may: the endpoint does that (and federation will, for
 * remote users). Starting again only extends the time-out; nothing changes
 * for readers, so nothing is woken. */
void client_typing_set(const char *room_id, const char *user_id, bool typing,
                       long long timeout_ms);

/* For /sync: the room's m.typing event ({"type": "m.typing", "content":
 * {"user_ids": [...]}}, new reference) when who types there changed in
 * typing stream positions (from, to]; NULL when it did not. */
json_t *client_typing_sync(const char *room_id, long long from, long long to);

#endif
