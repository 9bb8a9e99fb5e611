/* sync_format.c — event_format "federation" and event_fields for /sync.
 *
 * Applied to the finished response, so the sync passes keep reading the
 * client fields they need (membership, state keys), and the PDUs are read
 * in one query for the whole response rather than per room. As Synapse,
 * only the room events are rewritten: presence, account data, ephemeral and
 * to-device events have no federation form and are left whole. */
#include <stdlib.h>

#include "sync_format.h"
#include "homeserver/core/json.h"

static const char *const SECTIONS[] = {"join", "leave"};
static const char *const PARTS[] = {"timeline", "state", "state_after"};

typedef void (*visit_fn)(json_t *events, size_t i, json_t *ev, void *ctx);

static void each_event(json_t *rooms, visit_fn fn, void *ctx) {
    for (size_t s = 0; s < sizeof SECTIONS / sizeof *SECTIONS; s++) {
        const char *room_id;
        json_t *entry;
        json_object_foreach(json_object_get(rooms, SECTIONS[s]), room_id, entry) {
            for (size_t p = 0; p < sizeof PARTS / sizeof *PARTS; p++) {
                json_t *events = json_object_get(json_object_get(entry, PARTS[p]), "events");
                size_t i;
                json_t *ev;
                json_array_foreach(events, i, ev) fn(events, i, ev, ctx);
            }
        }
    }
}

static void collect_id(json_t *events, size_t i, json_t *ev, void *ctx) {
    (void)events, (void)i;
    json_t *id = json_object_get(ev, "event_id");
    if (json_is_string(id)) json_object_set_new(ctx, json_string_value(id), json_null());
}

/* The client event with the PDU's other top-level fields added: the client
 * side keeps its content (pruned if redacted) and unsigned. */
static void to_federation(json_t *events, size_t i, json_t *ev, void *ctx) {
    json_t *pdu = json_object_get(ctx, json_string_value(json_object_get(ev, "event_id")));
    if (!json_is_object(pdu)) return;
    json_t *out = json_copy(ev);
    const char *k;
    json_t *v;
    json_object_foreach(pdu, k, v)
        if (!json_object_get(out, k)) json_object_set(out, k, v);
    json_array_set_new(events, i, out);
}

static void project(json_t *events, size_t i, json_t *ev, void *ctx) {
    json_array_set_new(events, i, client_filter_project(ctx, ev));
}

/* event_id → PDU of every room event in the response that this server
 * stores (a rejected remote invite's leave is not in events: it stays in
 * client format). */
static json_t *load_pdus(db_conn *c, json_t *rooms) {
    static db_stmt q = DB_STMT("SELECT event_id, convert_from(json, 'UTF8') FROM events"
                               " WHERE event_id = ANY($1::text[])");
    json_t *ids = json_object(), *pdus = json_object();
    each_event(rooms, collect_id, ids);
    size_t n = json_object_size(ids), k = 0;
    const char **list = calloc(n ? n : 1, sizeof *list);
    const char *id;
    json_t *v;
    json_object_foreach(ids, id, v) list[k++] = id;
    char *arr = n ? db_text_array(list, n) : NULL;
    hs_err err = {0};
    PGresult *r = arr ? db_run(c, &q, 1, (const char *[]){arr}, &err) : NULL;
    for (int i = 0; r && i < PQntuples(r); i++) {
        hs_err perr = {0};
        json_t *pdu = hs_json_parse(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), &perr);
        if (json_is_object(pdu)) json_object_set_new(pdus, PQgetvalue(r, i, 0), pdu);
        else json_decref(pdu);
    }
    PQclear(r);
    free(arr);
    free(list);
    json_decref(ids);
    return pdus;
}

void client_sync_format(db_conn *c, const client_filter *f, json_t *rooms) {
    if (!f || (!f->federation_format && !f->event_fields.given)) return;
    if (f->federation_format) {
        json_t *pdus = load_pdus(c, rooms);
        each_event(rooms, to_federation, pdus);
        json_decref(pdus);
    }
    if (f->event_fields.given) each_event(rooms, project, (void *)f);
}
