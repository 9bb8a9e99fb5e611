/* streams.h — stream positions: the order in which clients see changes.
 *
 * Each stream takes its positions from a PostgreSQL sequence, so several
 * writers never collide. Transactions commit out of order, so a reader may
 * only be told a position once everything below it has committed: a writer
 * reserves its position before it writes and reports it done after COMMIT (or
 * ROLLBACK); db_stream_current never passes a position still in flight.
 * (Tracking is per process: several processes sharing a database must route
 * each stream's writes through one of them.) */
#ifndef DB_STREAMS_H
#define DB_STREAMS_H

#include <stdbool.h>

#include "db.h"

typedef enum db_stream {
    DB_STREAM_EVENTS,        /* room events (events_stream_seq) */
    DB_STREAM_ACCOUNT_DATA,
    DB_STREAM_RECEIPTS,
    DB_STREAM_TYPING,        /* in memory only: typing is never stored */
    DB_STREAM_TO_DEVICE,
    DB_STREAM_DEVICE_LISTS,
    DB_STREAM_PRESENCE,
    DB_STREAM_COUNT
} db_stream;

/* Read each stream's last position from the database (at start-up). */
int db_streams_init(db_pool *p, hs_err *err);

/* The next position of stream s, reserved until db_stream_done. */
long long db_stream_reserve(db_conn *c, db_stream s, hs_err *err);
void db_stream_done(db_stream s, long long pos);

/* The highest position below which every reserved position is done. */
long long db_stream_current(db_stream s);

/* Per stream, the highest position done when it is above
 * db_stream_current (a write that committed while an earlier one is still
 * in flight, which readers cannot be shown yet), else 0; false when no
 * stream holds anything back. */
bool db_streams_held_back(long long upto[DB_STREAM_COUNT]);

/* Whether every stream's current position has reached upto (0: any). */
bool db_streams_reached(const long long upto[DB_STREAM_COUNT]);

/* fn runs (no locks of ours held, in the writer's thread) when
 * db_stream_done shows positions done while that one was in flight: the
 * notifier uses it to wake again the readers of the writes held back. One
 * hook; NULL removes it. */
void db_stream_on_advance(void (*fn)(void));

#endif
