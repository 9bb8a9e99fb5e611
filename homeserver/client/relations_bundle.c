/* relations_bundle.c — bundled aggregations: unsigned["m.relations"] of
 * served events (spec "Aggregations of child events").
 *
 * One query finds, for a batch of parents, their thread summary (count,
 * latest event, whether the viewer took part), their latest valid edit and
 * their references; one more loads the latest events and edits, which get
 * their own aggregations the same way (a thread's latest event can be
 * edited). m.annotation is not aggregated (spec v1.7). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events_read.h"
#include "relations.h"
#include "relations_internal.h"

/* The candidates (in $1, with the room they are in) and their children of
 * each aggregated kind. Edits follow the spec's validity rules: same type
 * and sender as the original, neither a state event, and m.new_content
 * (unless encrypted, where it hides in the ciphertext); the latest by
 * origin_server_ts, then event ID. */
#define PARENTS \
    "WITH p AS (SELECT event_id, room_id, type, sender, state_key FROM events" \
    " WHERE event_id = ANY($1::text[]))"
#define CHILDREN(REL)                                                                    \
    " FROM p JOIN event_relations r ON r.relates_to_id = p.event_id AND r.room_id = p.room_id" \
    " AND r.rel_type = '" REL "' JOIN events e ON e.event_id = r.event_id WHERE" REL_EVENT_OK("e")

static db_stmt aggregations = DB_STMT(
    PARENTS
    " (SELECT 'm.thread', r.relates_to_id, (array_agg(r.event_id ORDER BY e.stream_ordering DESC))[1],"
    "  count(*), bool_or(r.sender = $2)" CHILDREN("m.thread")
    "  AND" REL_NOT_IGNORED("r.sender", "$2") " GROUP BY r.relates_to_id)"
    " UNION ALL"
    " (SELECT DISTINCT ON (r.relates_to_id) 'm.replace', r.relates_to_id, r.event_id, 0, false"
    "  " CHILDREN("m.replace")
    "  AND e.type = p.type AND e.sender = p.sender AND e.state_key IS NULL AND p.state_key IS NULL"
    "  AND (e.type = 'm.room.encrypted' OR json_typeof(convert_from(e.json, 'UTF8')::json"
    "   ->'content'->'m.new_content') = 'object')"
    "  ORDER BY r.relates_to_id, e.origin_server_ts DESC, e.event_id DESC)"
    " UNION ALL"
    " (SELECT 'm.reference', r.relates_to_id, r.event_id, e.stream_ordering, false"
    "  " CHILDREN("m.reference") " AND" REL_NOT_IGNORED("r.sender", "$2") ")"
    " ORDER BY 1, 2, 4");

/* Events that may carry aggregations: not state events, and not edits or
 * annotations (nothing may relate to those). */
static bool candidate(const json_t *ev) {
    if (json_object_get(ev, "state_key")) return false;
    const char *rel, *parent;
    if (!rel_of(json_object_get(ev, "content"), &rel, &parent)) return true;
    return strcmp(rel, "m.replace") != 0 && strcmp(rel, "m.annotation") != 0;
}

/* unsigned["m.relations"] of ev, created when missing (borrowed). */
static json_t *relations_of(json_t *ev) {
    json_t *uns = json_object_get(ev, "unsigned");
    if (!uns) json_object_set_new(ev, "unsigned", uns = json_object());
    json_t *rel = json_object_get(uns, "m.relations");
    if (!rel) json_object_set_new(uns, "m.relations", rel = json_object());
    return rel;
}

/* Attach one row's aggregation to every copy of its parent in by_id
 * (parent ID → array of the parent's events). */
static void attach(PGresult *r, int i, json_t *by_id, json_t *loaded, const char *viewer) {
    const char *kind = PQgetvalue(r, i, 0), *child = PQgetvalue(r, i, 2);
    json_t *copies = json_object_get(by_id, PQgetvalue(r, i, 1)), *ev;
    size_t k;
    json_array_foreach(copies, k, ev) {
        const char *rel, *parent;
        bool related = rel_of(json_object_get(ev, "content"), &rel, &parent) != NULL;
        bool redacted = json_object_get(json_object_get(ev, "unsigned"), "redacted_because") != NULL;
        if (!strcmp(kind, "m.reference")) {
            json_t *agg = json_object_get(relations_of(ev), "m.reference");
            if (!agg) json_object_set_new(relations_of(ev), "m.reference", agg = json_pack("{s:[]}", "chunk"));
            json_array_append_new(json_object_get(agg, "chunk"), json_pack("{s:s}", "event_id", child));
            continue;
        }
        json_t *child_ev = json_object_get(loaded, child);
        if (!child_ev) continue;
        if (!strcmp(kind, "m.replace") && !redacted) {
            json_object_set_new(relations_of(ev), "m.replace", json_deep_copy(child_ev));
        } else if (!strcmp(kind, "m.thread") && !related) {
            /* A thread cannot hang off a child, so related events show none. */
            const char *sender = json_string_value(json_object_get(ev, "sender"));
            bool mine = viewer && sender && !strcmp(sender, viewer);
            json_object_set_new(relations_of(ev), "m.thread",
                                json_pack("{s:o, s:I, s:b}", "latest_event", json_deep_copy(child_ev), "count",
                                          (json_int_t)atoll(PQgetvalue(r, i, 3)),
                                          "current_user_participated",
                                          mine || PQgetvalue(r, i, 4)[0] == 't'));
        }
    }
}

/* The thread latest events and edits the rows name, in the parents'
 * format, with their own aggregations: ID → event. */
static json_t *load_children(db_conn *c, const char *viewer, PGresult *r, bool with_room_id,
                             hs_err *err) {
    int n = PQntuples(r), k = 0;
    const char **ids = calloc((size_t)n + 1, sizeof *ids);
    for (int i = 0; i < n; i++)
        if (strcmp(PQgetvalue(r, i, 0), "m.reference") != 0) ids[k++] = PQgetvalue(r, i, 2);
    json_t *arr = json_array(), *out = NULL;
    if (client_events_by_ids(c, ids, (size_t)k, with_room_id, arr, err) == 0 &&
        client_relations_bundle(c, viewer, arr, 0, NULL, err) == 0) {
        out = json_object();
        size_t i;
        json_t *ev;
        json_array_foreach(arr, i, ev)
            json_object_set(out, json_string_value(json_object_get(ev, "event_id")), ev);
    }
    json_decref(arr);
    free(ids);
    return out;
}

int client_relations_bundle(db_conn *c, const char *viewer, json_t *events, size_t from,
                            const bool *has_children, hs_err *err) {
    size_t n = json_array_size(events), k = 0;
    if (from >= n) return 0;
    const char **ids = calloc(n - from, sizeof *ids);
    json_t *by_id = json_object();
    for (size_t i = from; i < n; i++) {
        json_t *ev = json_array_get(events, i);
        const char *id = json_string_value(json_object_get(ev, "event_id"));
        if (!id || (has_children && !has_children[i - from]) || !candidate(ev)) continue;
        json_t *copies = json_object_get(by_id, id);
        if (!copies) json_object_set_new(by_id, id, copies = json_array()), ids[k++] = id;
        json_array_append(copies, ev);
    }
    int rc = 0;
    if (k > 0) {
        char *arr = db_text_array(ids, k);
        PGresult *r = db_run(c, &aggregations, 2, (const char *[]){arr, viewer}, err);
        free(arr);
        /* The children come in the parents' format (v12 create events lack a room_id). */
        bool with_room_id = false;
        for (size_t i = from; i < n && !with_room_id; i++)
            with_room_id = json_object_get(json_array_get(events, i), "room_id") != NULL;
        json_t *loaded = r ? load_children(c, viewer, r, with_room_id, err) : NULL;
        if (loaded)
            for (int i = 0; i < PQntuples(r); i++) attach(r, i, by_id, loaded, viewer);
        else rc = -1;
        json_decref(loaded);
        PQclear(r);
    }
    json_decref(by_id);
    free(ids);
    return rc;
}
