/* pdus_serve.c — stored events as PDUs for another server, with history
 * visibility applied as Synapse's filter_events_for_server does: an event
 * whose history visibility (in the state after it) is "invited" or "joined"
 * goes out redacted unless the asking server had a member invited (for
 * "invited") or joined at that point; "shared" and "world_readable" events,
 * and outliers (whose state we do not know), go out whole; an erased user's
 * events always go out redacted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/json.h"
#include "rooms_internal.h"

/* What a state group says about one server: visible, for its events. */
typedef struct vis_cache {
    long long group[16];
    bool visible[16];
    size_t n;
} vis_cache;

static const char *history_visibility(db_conn *c, const room_state_map *st, char *buf, size_t n,
                                      hs_err *err) {
    const char *id = room_state_map_get(st, "m.room.history_visibility", "");
    snprintf(buf, n, "shared");
    if (!id) return buf;
    room_event *ev = room_store_get_event(c, id, err);
    if (!ev) return NULL;
    const char *hv = json_string_value(json_object_get(ev->content, "history_visibility"));
    if (hv) snprintf(buf, n, "%s", hv);
    room_event_free(ev);
    return buf;
}

/* Has server a member with one of the memberships (join; invite too when
 * invited_counts) in st? */
static int server_member(db_conn *c, const room_state_map *st, const char *server,
                         bool invited_counts, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM events WHERE event_id = ANY($1::text[]) AND"
        " convert_from(json, 'UTF8')::json #>> '{content,membership}' = ANY($2::text[]) LIMIT 1");
    size_t it = 0, n = 0, cap = 16;
    const char *t, *k, *id;
    const char **ids = malloc(cap * sizeof *ids);
    while (ids && room_state_map_next(st, &it, &t, &k, &id)) {
        if (strcmp(t, "m.room.member") || strcmp(fed_id_domain(k), server)) continue;
        if (n == cap) {
            const char **more = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!more) break;
            ids = more;
        }
        ids[n++] = id;
    }
    if (!ids) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    int rc = 0;
    if (n) {
        char *arr = db_text_array(ids, n);
        PGresult *r = db_run(
            c, &q, 2, (const char *[]){arr, invited_counts ? "{join,invite}" : "{join}"}, err);
        free(arr);
        rc = r ? PQntuples(r) > 0 : -1;
        PQclear(r);
    }
    free(ids);
    return rc;
}

static int visible_at(db_conn *c, vis_cache *vc, long long group, const char *server, bool *visible,
                      hs_err *err) {
    for (size_t i = 0; i < vc->n; i++)
        if (vc->group[i] == group) return *visible = vc->visible[i], 0;
    room_state_map *st = room_state_map_new();
    char hv[32];
    int rc = st && room_state_group_load(c, group, st, err) == 0 ? 0 : -1;
    if (rc == 0 && !history_visibility(c, st, hv, sizeof hv, err)) rc = -1;
    if (rc == 0) {
        bool restricted = !strcmp(hv, "invited") || !strcmp(hv, "joined");
        int m = restricted ? server_member(c, st, server, !strcmp(hv, "invited"), err) : 1;
        if (m < 0) rc = -1;
        *visible = m > 0;
    }
    room_state_map_free(st);
    if (rc == 0 && vc->n < 16) vc->group[vc->n] = group, vc->visible[vc->n++] = *visible;
    return rc;
}

static json_t *served(db_conn *c, PGresult *r, int i, const char *origin, vis_cache *vc,
                      hs_err *err) {
    hs_err perr = {0};
    json_t *j = hs_json_parse(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), &perr);
    if (!j || !origin) return j;
    /* An erased user's events (deactivated with erase) go to other servers
     * redacted, whoever they are (Synapse's filter_events_for_server). */
    bool visible = PQgetvalue(r, i, 5)[0] != 't';
    if (visible && (PQgetvalue(r, i, 2)[0] == 't' || PQgetisnull(r, i, 4))) return j;
    if (visible && visible_at(c, vc, atoll(PQgetvalue(r, i, 4)), origin, &visible, err) < 0) {
        json_decref(j);
        return NULL;
    }
    if (visible) return j;
    json_t *red = room_event_redact(room_version_get(PQgetvalue(r, i, 3)), j);
    json_decref(j);
    return red;
}

typedef struct row_ref {
    const char *id;
    int row;
} row_ref;

static int by_id(const void *a, const void *b) {
    return strcmp(((const row_ref *)a)->id, ((const row_ref *)b)->id);
}

int fed_pdus_for_server(db_conn *c, const char *origin, const char *const *ids, size_t n,
                        bool timeline_only, json_t *out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT e.event_id, convert_from(e.json, 'UTF8'), e.outlier, r.room_version, e.state_after,"
        " EXISTS (SELECT 1 FROM users u WHERE u.user_id = e.sender AND u.erased)"
        " FROM events e JOIN rooms r USING (room_id)"
        " WHERE e.event_id = ANY($1::text[]) AND e.rejected_reason IS NULL"
        " AND (NOT $2 OR NOT e.outlier)");
    if (!n) return 0;
    char *arr = db_text_array(ids, n);
    PGresult *r = db_run(c, &q, 2, (const char *[]){arr, timeline_only ? "t" : "f"}, err);
    free(arr);
    if (!r) return -1;
    size_t rows = (size_t)PQntuples(r);
    row_ref *idx = calloc(rows + 1, sizeof *idx);
    if (!idx) return PQclear(r), hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    for (size_t i = 0; i < rows; i++) idx[i] = (row_ref){PQgetvalue(r, (int)i, 0), (int)i};
    qsort(idx, rows, sizeof *idx, by_id);
    vis_cache vc = {.n = 0};
    int rc = 0;
    /* In the caller's order, each ID once. */
    for (size_t k = 0; k < n && rc == 0; k++) {
        row_ref key = {ids[k], 0}, *hit = bsearch(&key, idx, rows, sizeof *idx, by_id);
        if (!hit || hit->row < 0) continue;
        json_t *pdu = served(c, r, hit->row, origin, &vc, err);
        if (!pdu) rc = -1;
        else json_array_append_new(out, pdu);
        hit->row = -1;
    }
    free(idx);
    PQclear(r);
    return rc;
}
