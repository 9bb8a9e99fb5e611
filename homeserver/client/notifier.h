/* notifier.h — waking the /sync requests that wait for something to change.
 *
 * A waiting /sync registers the user it serves and the rooms it can see; a
 * writer calls hs_notify_* after its COMMIT (and after db_stream_done), and
 * exactly the waiters that can see the change are woken. */
#ifndef CLIENT_NOTIFIER_H
#define CLIENT_NOTIFIER_H

#include <stddef.h>

typedef struct hs_waiter hs_waiter;

/* Register a waiter for user_id and the rooms it is in (copied). wake(arg)
 * is called at most once, from the notifying thread, without locks held. */
hs_waiter *hs_waiter_add(const char *user_id, const char *const *room_ids, size_t n_rooms,
                         void (*wake)(void *arg), void *arg);

/* Unregister (after it was woken, or on time-out). Safe against a wake in
 * progress: returns once no wake call for w is running. */
void hs_waiter_remove(hs_waiter *w);

/* Something for these users changed (account data, to-device, invites,
 * device lists, their own membership). */
void hs_notify_users(const char *const *user_ids, size_t n);

/* Something in this room changed (an event, typing, a receipt): wakes every
 * waiter that is in the room. */
void hs_notify_room(const char *room_id);

/* Wake every waiter (shutdown). */
void hs_notify_all(void);

/* How many requests are waiting (for tests and metrics). */
size_t hs_waiters_count(void);

#endif
