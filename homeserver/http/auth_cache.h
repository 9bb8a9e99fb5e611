/* auth_cache.h — accepted access tokens, kept in memory for a short while so
 * that most requests authenticate without a database round trip.
 *
 * An entry is used only while it is younger than HS_AUTH_CACHE_TTL_MS and no
 * token, device or account changed since it was made: every write that can
 * end a token (logout, device deletion, refresh, password change,
 * deactivation, guest upgrade, suspending or locking the account) calls
 * hs_auth_cache_forget_all, and is announced to the other processes sharing
 * the database (HS_AUTH_CACHE_CHANNEL below); a process that missed the
 * announcement (its listening connection was down) forgets everything when
 * it reconnects, and no entry outlives the TTL. */
#ifndef HS_AUTH_CACHE_H
#define HS_AUTH_CACHE_H

#include <stdbool.h>

#include "homeserver/db/db.h"

#define HS_AUTH_CACHE_TTL_MS 30000LL

typedef struct hs_auth_entry {
    char user_id[256], device_id[256];
    bool admin, guest;
    bool suspended, locked; /* users.suspended_ts / locked_ts set */
    long long valid_until_ts; /* 0: no expiry */
    long long last_seen_ts;   /* the device's, as last written */
} hs_auth_entry;

/* The entry of a token hash (SHA-256, 32 bytes), if cached and still valid. */
bool hs_auth_cache_get(const unsigned char hash[32], hs_auth_entry *out);

/* Cache e, read from the database after hs_auth_cache_generation() gave gen:
 * dropped if anything was forgotten since (the read may predate it). */
void hs_auth_cache_put(const unsigned char hash[32], const hs_auth_entry *e, unsigned long gen);
unsigned long hs_auth_cache_generation(void);

/* Drop every entry: a token, device or account changed. Call it where the
 * change is made; the HTTP server calls it again once the handler that made
 * it returned (its transaction committed). */
void hs_auth_cache_forget_all(void);

/* Changes made by another process sharing the database (the CLI, another
 * pvyhs): a write that must reach every process's cache at once sends
 * NOTIFY on this channel after it (in the same transaction, or after its
 * commit); a serving process listens with hs_auth_cache_listen_start (a
 * thread with its own connection to conninfo) and forgets all on each.
 * Every change that ends a token announces itself this way (the HTTP server
 * does it after the handler that made it, hs_auth_cache_announce). */
#define HS_AUTH_CACHE_CHANNEL "pvyhs_auth_cache"
int hs_auth_cache_listen_start(const char *conninfo);
void hs_auth_cache_announce(db_pool *p);
void hs_auth_cache_listen_stop(void);

#endif
