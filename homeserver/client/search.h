/* search.h — POST /search's pieces shared between its files (not for other
 * areas): the parsed request, and the result context (search_context.c). */
#ifndef CLIENT_SEARCH_H
#define CLIENT_SEARCH_H

#include <jansson.h>
#include <stdbool.h>

#include "filters.h"
#include "homeserver/db/db.h"

typedef struct search_req {
    const char *term;
    const char *device;            /* the searcher's (unsigned.transaction_id) */
    char *keys;                    /* text[] literal of the keys searched */
    bool recent;                   /* order_by: recent (else rank) */
    bool group_room, group_sender; /* groupings.group_by */
    bool context, profile, include_state;
    long before, after;            /* event_context limits */
    client_filter_part *filter;
    int limit;
    /* next_batch: a group ("all", "room_id", "sender"), its key, and where
     * the previous page stopped (recent: ts and stream; rank: offset). */
    char group[16];
    char *group_key;
    bool have_pos;
    long long pos_ts, pos_stream, offset;
} search_req;

/* One search hit the viewer may see, in result order. */
typedef struct search_hit {
    json_t *event;     /* client format (borrowed from the caller's array) */
    double rank;
    long long ts, stream;
    long long offset;  /* rank order: the position after this hit */
} search_hit;

/* The "context" of a hit: events before and after, pagination tokens, and
 * with include_profile the senders' profiles as of the last of them. */
json_t *search_context(db_conn *c, const char *viewer, const search_req *s,
                       const search_hit *h, hs_err *err);

/* The current state of each room among the hits: {room_id: [events]}. */
json_t *search_rooms_state(db_conn *c, const search_hit *hits, size_t n, hs_err *err);

#endif
