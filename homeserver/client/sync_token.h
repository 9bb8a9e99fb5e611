/* sync_token.h — /sync's next_batch: one position per stream.
 *
 * "s<events>_<account data>_<receipts>_<typing>_<to-device>_<device lists>_<presence>",
 * opaque to clients. /messages also takes it (using the events position), and
 * its own "t<events>" tokens. */
#ifndef CLIENT_SYNC_TOKEN_H
#define CLIENT_SYNC_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include "homeserver/db/streams.h"

typedef struct sync_token {
    long long pos[DB_STREAM_COUNT];
} sync_token;

/* Parse; false on a malformed token. */
bool sync_token_parse(const char *s, sync_token *t);
void sync_token_format(const sync_token *t, char *out, size_t n);
/* Every stream's committed position now. */
void sync_token_now(sync_token *t);
bool sync_token_equal(const sync_token *a, const sync_token *b);

/* The events position of a sync ("s…") or pagination ("t…") token; -1 if invalid. */
long long sync_token_events_pos(const char *s);
/* The same, taking the negative positions of backfilled history ("t-12",
 * /messages only); false if invalid. */
bool sync_token_pagination_pos(const char *s, long long *pos);
/* Below every position, backfilled or not. */
#define SYNC_TOKEN_POS_MIN (-(1LL << 62))

#endif
