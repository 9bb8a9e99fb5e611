/* relations_store.c — recording each persisted event's relationship, thread
 * and searchable text, and the checks a local user's relation must pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relations.h"
#include "relations_internal.h"

#define ANNOTATION_KEY_MAX 500 /* characters, Synapse's limit */

/* The thread of a child that is not itself m.thread: its parent's thread, so
 * an edit or reaction in a thread belongs there (threaded receipts). */
static int record_relation(db_conn *c, const room_event *ev, const json_t *rt, const char *rel,
                           const char *parent, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO event_relations (event_id, relates_to_id, rel_type, room_id, sender, type,"
        " aggregation_key, thread_id) VALUES ($1, $2, $3, $4, $5, $6, $7,"
        " CASE WHEN $3 = 'm.thread' THEN $2"
        "  ELSE (SELECT p.thread_id FROM event_relations p WHERE p.event_id = $2) END)"
        " ON CONFLICT (event_id) DO NOTHING");
    /* The thread's latest event, by stream order, among accepted timeline events. */
    static db_stmt thread = DB_STMT(
        "INSERT INTO threads (room_id, thread_id, latest_event_id, latest_stream)"
        " SELECT e.room_id, $2, e.event_id, e.stream_ordering FROM events e"
        " WHERE e.event_id = $1 AND e.stream_ordering IS NOT NULL AND NOT e.outlier"
        " AND e.rejected_reason IS NULL AND NOT e.soft_failed"
        " ON CONFLICT (room_id, thread_id) DO UPDATE SET latest_event_id = EXCLUDED.latest_event_id,"
        " latest_stream = EXCLUDED.latest_stream WHERE threads.latest_stream < EXCLUDED.latest_stream");
    const char *key = !strcmp(rel, "m.annotation") ? json_string_value(json_object_get(rt, "key"))
                                                    : NULL;
    const char *p[] = {ev->event_id, parent, rel, ev->room_id, ev->sender, ev->type, key};
    if (db_exec(c, &ins, 7, p, err) < 0) return -1;
    if (strcmp(rel, "m.thread") != 0) return 0;
    return db_exec(c, &thread, 2, (const char *[]){ev->event_id, parent}, err) < 0 ? -1 : 0;
}

/* The one searchable text of an unencrypted event, and the key it is under. */
static const char *search_text(const room_event *ev, const char **key) {
    const char *field = NULL;
    if (!ev->state_key && !strcmp(ev->type, "m.room.message")) field = "body";
    else if (ev->state_key && !*ev->state_key && !strcmp(ev->type, "m.room.name")) field = "name";
    else if (ev->state_key && !*ev->state_key && !strcmp(ev->type, "m.room.topic")) field = "topic";
    if (!field) return NULL;
    *key = !strcmp(field, "body") ? "content.body" : !strcmp(field, "name") ? "content.name"
                                                                            : "content.topic";
    return json_string_value(json_object_get(ev->content, field));
}

static int index_search(db_conn *c, const room_event *ev, hs_err *err) {
    /* 'english', as Synapse: stemming helps the most users; any word still
     * matches itself. */
    static db_stmt ins = DB_STMT(
        "INSERT INTO event_search (event_id, room_id, key, vector)"
        " VALUES ($1, $2, $3, to_tsvector('english', $4)) ON CONFLICT (event_id) DO NOTHING");
    const char *key = NULL, *text = search_text(ev, &key);
    if (!text) return 0;
    const char *p[] = {ev->event_id, ev->room_id, key, text};
    return db_defer(c, &ins, 4, p, NULL, NULL, err);
}

/* The searchable texts of several events, one statement for all. */
static int index_search_many(db_conn *c, const room_event *const *evs, size_t n,
                             hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO event_search (event_id, room_id, key, vector)"
        " SELECT id, room, key, to_tsvector('english', text)"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(id, room, key, text)"
        " ON CONFLICT (event_id) DO NOTHING");
    const char **col[4];
    for (int k = 0; k < 4; k++) col[k] = calloc(n ? n : 1, sizeof(char *));
    char *arr[4] = {0};
    size_t m = 0;
    int rc = -1;
    for (int k = 0; k < 4; k++)
        if (!col[k]) goto done;
    for (size_t i = 0; i < n; i++) {
        const char *key = NULL, *text = search_text(evs[i], &key);
        if (!text) continue;
        col[0][m] = evs[i]->event_id, col[1][m] = evs[i]->room_id;
        col[2][m] = key, col[3][m++] = text;
    }
    rc = 0;
    if (m == 0) goto done;
    for (int k = 0; k < 4; k++)
        if (!(arr[k] = db_text_array(col[k], m))) {
            rc = hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
            goto done;
        }
    rc = db_defer(c, &ins, 4, (const char *const *)arr, NULL, NULL, err);
done:
    if (rc < 0 && !err->status) hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    for (int k = 0; k < 4; k++) free(col[k]), free(arr[k]);
    return rc;
}

int client_relations_on_events(db_conn *c, const room_event *const *evs, size_t n,
                               hs_err *err) {
    for (size_t i = 0; i < n; i++) {
        const char *rel, *parent;
        const json_t *rt = rel_of(evs[i]->content, &rel, &parent);
        if (rt && record_relation(c, evs[i], rt, rel, parent, err) < 0) return -1;
    }
    return n == 1 ? index_search(c, evs[0], err) : index_search_many(c, evs, n, err);
}

int client_relations_on_event(db_conn *c, const room_event *ev, hs_err *err) {
    return client_relations_on_events(c, &ev, 1, err);
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int check_annotation(db_conn *c, const room_event *ev, const json_t *rt,
                            const char *parent, hs_err *err) {
    static db_stmt dup = DB_STMT(
        "SELECT 1 FROM event_relations r JOIN events e ON e.event_id = r.event_id"
        " WHERE r.relates_to_id = $1 AND r.rel_type = 'm.annotation' AND r.type = $2"
        " AND r.sender = $3 AND r.aggregation_key = $4 AND r.event_id <> $5 AND" REL_EVENT_OK("e")
        " LIMIT 1");
    const char *key = json_string_value(json_object_get(rt, "key"));
    if (!key) return hs_err_set(err, 400, "M_UNKNOWN", "Missing aggregation key");
    if (utf8_chars(key) > ANNOTATION_KEY_MAX)
        return hs_err_set(err, 400, "M_UNKNOWN", "Aggregation key is too long");
    const char *p[] = {parent, ev->type, ev->sender, key, ev->event_id};
    PGresult *r = db_run(c, &dup, 5, p, err);
    if (!r) return -1;
    int found = PQntuples(r);
    PQclear(r);
    return found ? hs_err_set(err, 400, "M_DUPLICATE_ANNOTATION", "Can't send same reaction twice")
                 : 0;
}

int client_relations_check_local(db_conn *c, const room_event *ev, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT (SELECT room_id FROM events WHERE event_id = $1),"
        " EXISTS (SELECT 1 FROM event_relations WHERE relates_to_id = $1),"
        " EXISTS (SELECT 1 FROM event_relations WHERE event_id = $1)");
    const char *rel, *parent;
    const json_t *rt = rel_of(ev->content, &rel, &parent);
    if (!rt) return 0;
    PGresult *r = db_run(c, &q, 1, (const char *[]){parent}, err);
    if (!r) return -1;
    int rc = 0;
    bool known = !PQgetisnull(r, 0, 0);
    if (known && strcmp(PQgetvalue(r, 0, 0), ev->room_id) != 0)
        rc = hs_err_set(err, 400, "M_UNKNOWN", "Relations must be in the same room");
    /* A parent we don't have is fine if others relate to it: then the
     * client has a reason to know it (Synapse). */
    else if (!known && PQgetvalue(r, 0, 1)[0] != 't')
        rc = hs_err_set(err, 400, "M_UNKNOWN", "Can't send relation to unknown event");
    else if (!strcmp(rel, "m.thread") && PQgetvalue(r, 0, 2)[0] == 't')
        rc = hs_err_set(err, 400, "M_UNKNOWN", "Cannot start threads from an event with a relation");
    PQclear(r);
    if (rc == 0 && !strcmp(rel, "m.annotation")) rc = check_annotation(c, ev, rt, parent, err);
    return rc;
}
