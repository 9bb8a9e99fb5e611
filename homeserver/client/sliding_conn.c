/* sliding_conn.c — what each sliding sync connection has been sent.
 *
 * A connection is (user, device, conn_id). For each room it has been sent
 * it remembers the events position the room is up to date with, the
 * required_state and timeline_limit it was sent with, the members sent
 * lazily and whether the extensions sent its account data and receipts; the
 * next request on that connection sends only what is new.
 *
 * The records are kept in PostgreSQL (sliding_sync_connections), per `pos`
 * handed out, the latest and the one before: a client whose response was
 * lost retries with the previous pos and gets the same answer again rather
 * than a gap (Synapse keys its sliding_sync_connection_positions the same
 * way). Any other pos is unknown: 400 M_UNKNOWN_POS, and the client starts
 * over without one, as MSC4186 provides. Being in the database, a
 * connection survives a restart and is shared by several processes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "sliding_sync.h"

#define IDLE_MS (7LL * 24 * 3600 * 1000) /* a connection unused this long is dropped */

/* Stored form: the rooms' required_state arrays, mostly the same few for
 * hundreds of rooms, stored once each and referred to by index. */
static json_t *pack_rooms(const json_t *rooms) {
    json_t *out = json_object(), *by_room = json_object(), *dict = json_array();
    const char *id;
    json_t *rec;
    json_object_foreach((json_t *)rooms, id, rec) {
        json_t *copy = json_copy(rec), *rs = json_object_get(rec, "rs");
        size_t i, at = json_array_size(dict);
        json_t *known;
        json_array_foreach(dict, i, known) if (json_equal(known, rs)) {
            at = i;
            break;
        }
        if (at == json_array_size(dict)) json_array_append(dict, rs ? rs : json_null());
        json_object_set_new(copy, "rs", json_integer((json_int_t)at));
        json_object_set_new(by_room, id, copy);
    }
    json_object_set_new(out, "rooms", by_room);
    json_object_set_new(out, "rs", dict);
    return out;
}

static json_t *unpack_rooms(json_t *stored) {
    json_t *rooms = json_object(), *dict = json_object_get(stored, "rs"), *rec;
    const char *id;
    json_object_foreach(json_object_get(stored, "rooms"), id, rec) {
        json_t *copy = json_copy(rec);
        json_t *rs = json_array_get(dict, (size_t)json_integer_value(json_object_get(rec, "rs")));
        json_object_set(copy, "rs", json_is_array(rs) ? rs : json_array());
        json_object_set_new(rooms, id, copy);
    }
    return rooms;
}

json_t *ss_conn_begin(db_conn *c, const ss_conn_id *id, const char *pos, hs_err *err) {
    if (!pos) {
        /* A new connection clears the user's stale ones: idle, or of a
         * device since deleted (no foreign key: appservice users may sync
         * without a device row). */
        static db_stmt stale = DB_STMT(
            "DELETE FROM sliding_sync_connections s WHERE s.user_id = $1 AND (s.used_ts < $2"
            " OR (s.device_id <> $3 AND NOT EXISTS (SELECT 1 FROM devices d"
            "  WHERE d.user_id = s.user_id AND d.device_id = s.device_id)))");
        char before[24];
        snprintf(before, sizeof before, "%lld", hs_now_ms() - IDLE_MS);
        if (db_exec(c, &stale, 3, (const char *[]){id->user_id, before, id->device_id}, err) < 0)
            return NULL;
        return json_object();
    }
    static db_stmt q = DB_STMT(
        "SELECT rooms::text FROM sliding_sync_connections WHERE user_id = $1 AND device_id = $2"
        " AND conn_id = $3 AND pos = $4");
    PGresult *r = db_run(c, &q, 4, (const char *[]){id->user_id, id->device_id, id->conn_id, pos}, err);
    if (!r) return NULL;
    json_t *rooms = NULL;
    if (PQntuples(r)) {
        hs_err perr = {0};
        const char *text = PQgetvalue(r, 0, 0);
        json_t *stored = hs_json_parse_object(text, strlen(text), &perr);
        rooms = stored ? unpack_rooms(stored) : NULL;
        json_decref(stored);
    }
    PQclear(r);
    if (!rooms) hs_err_set(err, 400, "M_UNKNOWN_POS", "Unknown position: start again without pos");
    return rooms;
}

int ss_conn_commit(db_conn *c, const ss_conn_id *id, const char *pos_in, const char *pos_out,
                   const json_t *rooms, hs_err *err) {
    /* Keep the new pos and the one the request came with (a retry of it may
     * come); a request without pos starts the connection over. */
    static db_stmt q = DB_STMT(
        "WITH gone AS (DELETE FROM sliding_sync_connections WHERE user_id = $1 AND device_id = $2"
        "  AND conn_id = $3 AND pos <> $4 AND pos IS DISTINCT FROM $5)"
        " INSERT INTO sliding_sync_connections (user_id, device_id, conn_id, pos, rooms, used_ts)"
        " VALUES ($1, $2, $3, $4, $6::jsonb, $7) ON CONFLICT (user_id, device_id, conn_id, pos)"
        " DO UPDATE SET rooms = EXCLUDED.rooms, used_ts = EXCLUDED.used_ts");
    json_t *packed = pack_rooms(rooms);
    char *text = json_dumps(packed, JSON_COMPACT);
    json_decref(packed);
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    long rc = text ? db_exec(c, &q, 7, (const char *[]){id->user_id, id->device_id, id->conn_id,
                                                          pos_out, pos_in, text, now}, err)
                   : hs_err_set(err, 500, "M_UNKNOWN", "Cannot encode the connection");
    free(text);
    return rc < 0 ? -1 : 0;
}
