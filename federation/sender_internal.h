/* sender_internal.h — what the outbound sender's files share: sender.c (the
 * thread, the workers, back-off), sender_queue.c (the queue in PostgreSQL,
 * transactions), sender_edus.c (EDUs from the local streams), and the pure
 * parts the unit tests reach. */
#ifndef FED_SENDER_INTERNAL_H
#define FED_SENDER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "federation.h"

/* The spec's limits on one transaction. */
#define FED_TXN_MAX_PDUS 50
#define FED_TXN_MAX_EDUS 100

/* Back-off per destination, Synapse's (once the quick retries below are
 * spent): the first failure waits 10 minutes,
 * each further one about twice as long (times 0.8–1.4 so many servers that
 * failed together do not retry together), at most a day. For tests only,
 * PVYHS_FEDERATION_MIN_RETRY_MS shortens the first wait. */
#define FED_RETRY_MIN_MS (10LL * 60 * 1000)
#define FED_RETRY_MAX_MS (24LL * 3600 * 1000)
#define FED_RETRY_MULTIPLIER 2

/* Before it backs off, a destination gets the quick retries Synapse makes
 * within one /send request (its long_retries): a transaction that got no
 * answer, a 5xx or a 429 is tried again after 4 s, 16 s, then every 60 s
 * (times 0.8–1.4), ten times in all, about eight minutes; only then does
 * the back-off above start. So a server down for a restart gets what waited
 * within a minute of coming back, even if it has nothing to send us. A 401
 * or 404 backs off at once (Synapse does not retry those either). For tests
 * only, PVYHS_FEDERATION_SEND_RETRIES sets how many (0: none). */
#define FED_SEND_RETRIES 10
#define FED_SEND_RETRY_MAX_MS 60000LL

/* A destination back from a failure with more PDUs than this queued gets
 * only the newest queued PDU of each room; it fetches what lies between
 * with /get_missing_events (and /backfill) as the spec intends. Below it,
 * everything is resent in order. For tests only,
 * PVYHS_FEDERATION_CATCHUP_MAX_PDUS lowers it. */
#define FED_CATCHUP_MAX_PDUS 50000

/* Stream positions read per batch (one database transaction each). */
#define FED_ENQUEUE_BATCH 500

/* ---- pure parts (unit-tested) ---------------------------------------------- */

/* The next retry interval after a failure: min_ms after success (interval
 * 0), else interval * FED_RETRY_MULTIPLIER * (0.8 + 0.6 * rnd), capped at
 * max_ms. rnd in [0, 1). */
long long fed_backoff_next(long long interval, long long min_ms, long long max_ms, double rnd);

/* The wait before quick retry n (1 ..): 4^n s capped at
 * FED_SEND_RETRY_MAX_MS, times (0.8 + 0.6 * rnd). rnd in [0, 1). */
long long fed_send_retry_delay(int n, double rnd);

/* Whether a failed /send (HTTP status, 0: no answer) may be retried quickly. */
bool fed_send_retry_quickly(long status);

/* How a /send attempt ended, from the HTTP status (0: no answer) and the
 * error our side reported. */
typedef enum fed_send_outcome {
    FED_SENT,       /* 2xx: delete what was sent, the destination is up */
    FED_RETRY,      /* no answer, 5xx, 401, 404, 429: keep it, back off */
    FED_DROP,       /* any other 4xx, or our own policy refused it: drop the
                     * transaction (it would never be accepted), no back-off */
} fed_send_outcome;
fed_send_outcome fed_send_classify(long status, const hs_err *err);

/* The m.device_list_update prev_id for an update at stream_id, given the
 * last update queued to the same destination for the same user (last, and
 * the prev_id that one carried; 0: none). Several devices change at one
 * stream position: they all name what came before that position. */
long long fed_device_list_prev(long long stream_id, long long last, long long last_prev);

/* A partial-state join of room_id completed and showed servers (dests, a
 * set) we did not know were in it: queue for them, in the caller's
 * transaction, the device-list changes of the room's local members after
 * device-list position `since` (the join). 0, or -1 with err. */
int fed_edus_device_lists_replay(db_conn *c, hs_server *srv, const char *room_id, long long since,
                                 const json_t *dests, hs_err *err);

/* Which of n sender instances sends to destination (stable hash). */
unsigned fed_sender_shard_of(const char *destination, unsigned n);

/* ---- the queue (sender_queue.c) ---------------------------------------------- */

typedef enum fed_stream {
    FED_STREAM_EVENTS,
    FED_STREAM_RECEIPTS,
    FED_STREAM_PRESENCE,
    FED_STREAM_DEVICE_LISTS,
    FED_STREAM_N
} fed_stream;

extern const char *const fed_stream_names[FED_STREAM_N];

/* Positions the sender has read each stream up to. */
int fed_queue_load_positions(db_conn *c, long long pos[FED_STREAM_N], hs_err *err);

/* Read stream s after its stored position up to at most `upto` (one batch of
 * FED_ENQUEUE_BATCH positions), queue what each destination must get and
 * store the new position, in one transaction. The destinations that got
 * something are added to `woken` (a JSON object used as a set). Returns the
 * new position, or -1 with err. */
long long fed_queue_enqueue(hs_server *srv, fed_stream s, long long upto, json_t *woken,
                            hs_err *err);

/* The other servers with members joined to room_id (current state), as a set
 * (JSON object) in out. Servers we may not federate with are left out. */
int fed_room_hosts(db_conn *c, hs_server *srv, const char *room_id, json_t *out, hs_err *err);
/* The other servers sharing a joined room with local user_id. */
int fed_user_hosts(db_conn *c, hs_server *srv, const char *user_id, json_t *out, hs_err *err);

/* Queue one EDU for each destination of `dests` (a set), replacing an unsent
 * one with the same dedupe_key (may be NULL). In the caller's transaction. */
int fed_queue_edu(db_conn *c, const json_t *dests, const char *edu_type, const json_t *content,
                  const char *dedupe_key, hs_err *err);

/* Every destination with queued PDUs, EDUs or to-device messages (a set). */
int fed_queue_pending_destinations(db_conn *c, json_t *out, hs_err *err);
/* Destinations of to-device messages queued at positions (from, to]. */
int fed_queue_to_device_destinations(db_conn *c, long long from, long long to, json_t *out,
                                     hs_err *err);

/* One transaction's worth of a destination's queue. */
typedef struct fed_txn {
    json_t *pdus, *edus;      /* what is sent */
    json_t *pdu_keys;         /* stream orderings of the PDU rows (JSON integers) */
    json_t *edu_keys;         /* seq of the EDU rows */
    json_t *td_keys;          /* stream_id of the device_federation_outbox rows */
} fed_txn;

void fed_txn_init(fed_txn *t);
void fed_txn_clear(fed_txn *t);
bool fed_txn_empty(const fed_txn *t);

/* The next transaction for destination: up to FED_TXN_MAX_PDUS PDUs and
 * max_edus queued EDUs and to-device messages, oldest first. */
int fed_queue_build(db_conn *c, const char *destination, int max_edus, fed_txn *t, hs_err *err);
/* Forget the rows of t (sent, or dropped). */
int fed_queue_delete(db_conn *c, const char *destination, const fed_txn *t, hs_err *err);
/* A destination back from a failure: when more than max PDUs wait, keep
 * only the newest of each room. Returns how many were dropped, or -1. */
long long fed_queue_catch_up(db_conn *c, const char *destination, long long max, hs_err *err);

/* Back-off state of every destination that is failing. */
typedef struct fed_retry_row {
    char *destination;
    long long retry_last_ts, retry_interval_ms, failure_ts;
} fed_retry_row;
int fed_queue_load_retries(db_conn *c, fed_retry_row **rows, size_t *n, hs_err *err);
/* Record a failure (interval > 0) or that the destination is up again (0). */
int fed_queue_store_retry(db_conn *c, const char *destination, long long failure_ts,
                          long long retry_last_ts, long long interval, hs_err *err);

/* ---- EDUs from the local streams (sender_edus.c) ------------------------------- */

/* Each queues the EDUs for positions (from, to] of its stream, in the
 * caller's transaction; destinations that got one go to woken. */
int fed_edus_receipts(db_conn *c, hs_server *srv, long long from, long long to, json_t *woken,
                      hs_err *err);
int fed_edus_presence(db_conn *c, hs_server *srv, long long from, long long to, json_t *woken,
                      hs_err *err);
int fed_edus_device_lists(db_conn *c, hs_server *srv, long long from, long long to,
                          json_t *woken, hs_err *err);

/* Whether user_id ("@local:server") belongs to server_name. */
bool fed_user_is_on(const char *user_id, const char *server_name);

#endif
