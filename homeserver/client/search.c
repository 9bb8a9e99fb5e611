/* search.c — POST /search: full-text search of the rooms a user is joined to.
 *
 * Unencrypted text only (event_search holds m.room.message bodies and room
 * names and topics, relations_store.c): encrypted rooms stay unreadable to
 * the server. PostgreSQL's full-text search ('english', websearch syntax,
 * as Synapse) finds candidates; history visibility and the request's
 * RoomEventFilter then decide what the user gets, a page at a time as
 * Synapse does (twice the limit per round, at most five rounds).
 * next_batch is URL-safe base64 of "group\nkey\nposition": recent order
 * pages by (origin_server_ts, stream ordering), rank order by offset. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "client.h"
#include "events_read.h"
#include "homeserver/core/base64.h"
#include "relations_internal.h"
#include "room_access.h"
#include "search.h"

#define SEARCH_DEFAULT_LIMIT 10   /* Synapse's filter default */
#define SEARCH_MAX_LIMIT 100
#define SEARCH_ROUNDS 5
#define CONTEXT_DEFAULT 5
#define CONTEXT_MAX 100
#define MAX_TEXT_FOR_HIGHLIGHTS 4096

static const char *const all_keys[] = {"content.body", "content.name", "content.topic"};

/* ---- the request ---- */

static int bad(hs_err *err, const char *what) {
    return hs_err_set(err, 400, "M_BAD_JSON", "%s", what);
}

static int parse_keys(const json_t *keys, search_req *s, hs_err *err) {
    const char *list[3];
    size_t n = 0, i;
    json_t *k;
    if (!keys) {
        s->keys = db_text_array(all_keys, 3);
        return 0;
    }
    if (!json_is_array(keys)) return bad(err, "'keys' must be an array");
    json_array_foreach(keys, i, k) {
        const char *v = json_string_value(k);
        int found = -1;
        for (int a = 0; a < 3 && v; a++)
            if (!strcmp(v, all_keys[a])) found = a;
        if (found < 0)
            return hs_err_set(err, 400, "M_INVALID_PARAM",
                              "'keys' may hold content.body, content.name and content.topic");
        if (n < 3) list[n++] = all_keys[found];
    }
    s->keys = db_text_array(list, n);
    return 0;
}

static int parse_limit(const json_t *o, const char *key, long *out, hs_err *err) {
    const json_t *v = json_object_get(o, key);
    if (!v) return *out = CONTEXT_DEFAULT, 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return hs_err_set(err, 400, "M_BAD_JSON", "'%s' must be a non-negative integer", key);
    *out = json_integer_value(v) > CONTEXT_MAX ? CONTEXT_MAX : (long)json_integer_value(v);
    return 0;
}

static int parse_context(const json_t *ec, search_req *s, hs_err *err) {
    if (!ec) return 0;
    if (!json_is_object(ec)) return bad(err, "'event_context' must be an object");
    const json_t *p = json_object_get(ec, "include_profile");
    if (p && !json_is_boolean(p)) return bad(err, "'include_profile' must be a boolean");
    s->context = true;
    s->profile = json_is_true(p);
    return parse_limit(ec, "before_limit", &s->before, err) < 0 ? -1
           : parse_limit(ec, "after_limit", &s->after, err);
}

static int parse_groupings(const json_t *g, search_req *s, hs_err *err) {
    if (!g) return 0;
    const json_t *by = json_object_get(g, "group_by"), *e;
    if (!json_is_object(g) || (by && !json_is_array(by)))
        return bad(err, "'groupings' must be an object with a 'group_by' array");
    size_t i;
    json_array_foreach(by, i, e) {
        const char *k = json_string_value(json_object_get(e, "key"));
        if (k && !strcmp(k, "room_id")) s->group_room = true;
        else if (k && !strcmp(k, "sender")) s->group_sender = true;
        else return hs_err_set(err, 400, "M_INVALID_PARAM", "group_by keys are room_id or sender");
    }
    return 0;
}

static int parse_filter(const json_t *f, search_req *s, hs_err *err) {
    if (f && !json_is_object(f)) return bad(err, "'filter' must be an object");
    char *text = f ? json_dumps(f, JSON_COMPACT) : NULL;
    s->filter = client_room_event_filter_load(text, err);
    free(text);
    if (!s->filter) return -1;
    s->limit = client_filter_limit(s->filter, SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT);
    /* A filter may say 0 (an empty timeline for /sync); a page of search
     * results holds at least one. */
    if (s->limit < 1) s->limit = 1;
    return 0;
}

/* 1 with s filled, 0 when the body asks for no room events, -1 on error. */
static int parse_body(const json_t *body, search_req *s, hs_err *err) {
    const json_t *cats = json_object_get(body, "search_categories");
    if (!cats) return hs_err_set(err, 400, "M_MISSING_PARAM", "'search_categories' is required");
    if (!json_is_object(cats)) return bad(err, "'search_categories' must be an object");
    const json_t *re = json_object_get(cats, "room_events");
    if (!re) return 0;
    if (!json_is_object(re)) return bad(err, "'room_events' must be an object");
    const json_t *term = json_object_get(re, "search_term");
    if (!term) return hs_err_set(err, 400, "M_MISSING_PARAM", "'search_term' is required");
    if (!(s->term = json_string_value(term))) return bad(err, "'search_term' must be a string");
    const json_t *order = json_object_get(re, "order_by"), *st = json_object_get(re, "include_state");
    const char *o = json_string_value(order);
    if (order && (!o || (strcmp(o, "rank") && strcmp(o, "recent"))))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'order_by' must be rank or recent");
    s->recent = o && !strcmp(o, "recent");
    if (st && !json_is_boolean(st)) return bad(err, "'include_state' must be a boolean");
    s->include_state = json_is_true(st);
    if (parse_keys(json_object_get(re, "keys"), s, err) < 0 ||
        parse_context(json_object_get(re, "event_context"), s, err) < 0 ||
        parse_groupings(json_object_get(re, "groupings"), s, err) < 0 ||
        parse_filter(json_object_get(re, "filter"), s, err) < 0)
        return -1;
    return 1;
}

static int parse_batch(const char *batch, search_req *s, hs_err *err) {
    if (!batch) return 0;
    size_t len = strlen(batch), n = 0;
    unsigned char *raw = malloc(len + 1);
    int ok = hs_b64_decode(batch, len, raw, len, &n, true) == 0;
    raw[ok ? n : 0] = 0;
    char *nl1 = ok ? strchr((char *)raw, '\n') : NULL, *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
    if (nl2) {
        *nl1 = *nl2 = 0;
        char *pos = nl2 + 1, *end;
        snprintf(s->group, sizeof s->group, "%s", (char *)raw);
        s->group_key = strdup(nl1 + 1);
        if (s->recent) {
            s->pos_ts = strtoll(pos, &end, 10);
            ok = *end == ',' && (s->pos_stream = strtoll(end + 1, &end, 10), !*end);
        } else {
            s->offset = strtoll(pos, &end, 10);
            ok = *pos && !*end && s->offset >= 0;
        }
        s->have_pos = true;
    }
    ok = ok && nl2 && (!strcmp(s->group, "all") || !strcmp(s->group, "room_id") ||
                       !strcmp(s->group, "sender"));
    free(raw);
    return ok ? 0 : hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid next_batch");
}

static char *make_batch(const char *group, const char *key, const search_req *s,
                        const search_hit *last) {
    char buf[1024];
    if (s->recent) snprintf(buf, sizeof buf, "%s\n%s\n%lld,%lld", group, key, last->ts, last->stream);
    else snprintf(buf, sizeof buf, "%s\n%s\n%lld", group, key, last->offset);
    return hs_b64_encode((const unsigned char *)buf, strlen(buf), true);
}

/* ---- the queries ---- */

#define MATCHES                                                                                \
    " FROM websearch_to_tsquery('english', $1) q (q), event_search s"                          \
    " JOIN events e ON e.event_id = s.event_id"                                                 \
    " WHERE s.vector @@ q.q AND s.room_id = ANY($2::text[]) AND s.key = ANY($3::text[])"        \
    " AND ($4::text IS NULL OR e.sender = $4) AND" REL_EVENT_OK("e")
#define HIT_COLS "SELECT s.event_id, ts_rank_cd(s.vector, q.q), e.origin_server_ts, e.stream_ordering"

/* One round of candidates after the position given, best first. */
static PGresult *candidates(db_conn *c, const search_req *s, const char *rooms, const char *sender,
                            long long ts, long long stream, long long offset, int n, hs_err *err) {
    static db_stmt recent = DB_STMT(HIT_COLS MATCHES
        " AND (e.origin_server_ts, e.stream_ordering) < ($5::bigint, $6::bigint)"
        " ORDER BY e.origin_server_ts DESC, e.stream_ordering DESC LIMIT $7");
    static db_stmt rank = DB_STMT(HIT_COLS MATCHES
        " ORDER BY 2 DESC, e.stream_ordering DESC LIMIT $5 OFFSET $6");
    char a[24], b[24], l[24];
    snprintf(l, sizeof l, "%d", n);
    if (s->recent) {
        snprintf(a, sizeof a, "%lld", ts);
        snprintf(b, sizeof b, "%lld", stream);
        return db_run(c, &recent, 7, (const char *[]){s->term, rooms, s->keys, sender, a, b, l}, err);
    }
    snprintf(a, sizeof a, "%lld", offset);
    return db_run(c, &rank, 6, (const char *[]){s->term, rooms, s->keys, sender, l, a}, err);
}

static long long count_matches(db_conn *c, const search_req *s, const char *rooms,
                               const char *sender, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT count(*)" MATCHES);
    PGresult *r = db_run(c, &q, 4, (const char *[]){s->term, rooms, s->keys, sender}, err);
    if (!r) return -1;
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* The words of the hits that match the query's terms once stemmed, so a
 * client can highlight "martian" for a search for "martians". */
static json_t *highlights(db_conn *c, const search_req *s, const search_hit *hits, size_t n,
                          hs_err *err) {
    if (n == 0) return json_array();
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT lower(d.token) FROM unnest($1::text[]) t (txt), ts_debug('english', t.txt) d"
        " WHERE d.lexemes && (SELECT coalesce(array_agg(l), '{}') FROM ts_debug('english', $2) x,"
        " unnest(x.lexemes) l) ORDER BY 1");
    const char **texts = calloc(n + 1, sizeof *texts);
    char **owned = calloc(n + 1, sizeof *owned);
    for (size_t i = 0; i < n; i++) {
        json_t *content = json_object_get(hits[i].event, "content");
        const char *t = json_string_value(json_object_get(content, "body"));
        if (!t) t = json_string_value(json_object_get(content, "name"));
        if (!t) t = json_string_value(json_object_get(content, "topic"));
        owned[i] = strndup(t ? t : "", MAX_TEXT_FOR_HIGHLIGHTS);
        texts[i] = owned[i];
    }
    char *arr = db_text_array(texts, n);
    PGresult *r = db_run(c, &q, 2, (const char *[]){arr, s->term}, err);
    free(arr);
    for (size_t i = 0; i < n; i++) free(owned[i]);
    free(owned), free(texts);
    if (!r) return NULL;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++) json_array_append_new(out, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
    return out;
}

/* ---- one page of hits ---- */

typedef struct page {
    search_hit *hits;
    size_t n;
    json_t *events; /* owns the hits' events */
    bool full;      /* the page reached the limit: there may be more */
} page;

/* Keep the candidates in r the viewer may see, the filter lets through and
 * whose sender the viewer does not ignore (ignored: the ignored_users
 * object, or NULL; state events stay, as the spec's exception), in r's
 * order, until the page is full (base_offset: r's first row's, in rank
 * order). */
static int take_round(db_conn *c, const char *viewer, const search_req *s, const json_t *ignored,
                      PGresult *r, long long base_offset, page *pg, hs_err *err) {
    int n = PQntuples(r);
    const char **ids = calloc((size_t)n + 1, sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = PQgetvalue(r, i, 0);
    json_t *found = json_array(), *by_id = json_object(), *ev;
    int rc = client_events_by_ids_for(c, viewer, s->device, ids, (size_t)n, true, found, err);
    free(ids);
    size_t k;
    json_array_foreach(found, k, ev)
        json_object_set(by_id, json_string_value(json_object_get(ev, "event_id")), ev);
    for (int i = 0; rc == 0 && i < n && pg->n < (size_t)s->limit; i++) {
        ev = json_object_get(by_id, PQgetvalue(r, i, 0));
        if (!ev || !client_filter_event_allowed(s->filter, ev)) continue;
        if (client_ignored_event(ignored, ev)) continue;
        json_array_append(pg->events, ev);
        pg->hits[pg->n++] = (search_hit){.event = ev, .rank = atof(PQgetvalue(r, i, 1)),
                                         .ts = atoll(PQgetvalue(r, i, 2)),
                                         .stream = atoll(PQgetvalue(r, i, 3)),
                                         .offset = base_offset + i + 1};
    }
    json_decref(found);
    json_decref(by_id);
    return rc;
}

static int fill_page(db_conn *c, const char *viewer, const search_req *s, const json_t *ignored,
                     const char *rooms, const char *sender, page *pg, hs_err *err) {
    long long ts = s->have_pos ? s->pos_ts : LLONG_MAX, stream = s->have_pos ? s->pos_stream : LLONG_MAX;
    long long offset = s->have_pos ? s->offset : 0;
    int want = s->limit * 2;
    for (int round = 0; round < SEARCH_ROUNDS && pg->n < (size_t)s->limit; round++) {
        PGresult *r = candidates(c, s, rooms, sender, ts, stream, offset, want, err);
        if (!r) return -1;
        int n = PQntuples(r);
        int rc = take_round(c, viewer, s, ignored, r, offset, pg, err);
        if (n > 0) {
            ts = atoll(PQgetvalue(r, n - 1, 2));
            stream = atoll(PQgetvalue(r, n - 1, 3));
        }
        offset += n;
        PQclear(r);
        if (rc < 0) return -1;
        if (n < want) break; /* no more candidates */
    }
    /* A full page may be followed by an empty one; Synapse pages the same way. */
    pg->full = pg->n >= (size_t)s->limit;
    return 0;
}

/* ---- the answer ---- */

/* groups[key][value] = {results, order, next_batch}: order is the rank of
 * the group's first hit among the groups (1 = best). */
static json_t *groups(const search_req *s, const page *pg, const char *field, const char *group) {
    json_t *out = json_object();
    for (size_t i = 0; i < pg->n; i++) {
        const char *v = json_string_value(json_object_get(pg->hits[i].event, field));
        if (!v) continue;
        json_t *g = json_object_get(out, v);
        if (!g) {
            g = json_pack("{s:[], s:I}", "results", "order", (json_int_t)json_object_size(out) + 1);
            json_object_set_new(out, v, g);
        }
        json_array_append(json_object_get(g, "results"), json_object_get(pg->hits[i].event, "event_id"));
        /* Each group continues after the page's last hit, within itself. */
        if (pg->full) {
            char *nb = make_batch(group, v, s, &pg->hits[pg->n - 1]);
            json_object_set_new(g, "next_batch", json_string(nb));
            free(nb);
        }
    }
    return out;
}

static json_t *results(db_conn *c, const char *viewer, const search_req *s, const page *pg,
                       hs_err *err) {
    json_t *out = json_array();
    for (size_t i = 0; i < pg->n; i++) {
        json_t *res = json_pack("{s:f, s:O}", "rank", pg->hits[i].rank, "result", pg->hits[i].event);
        if (s->context) {
            json_t *ctx = search_context(c, viewer, s, &pg->hits[i], err);
            if (!ctx) {
                json_decref(res);
                json_decref(out);
                return NULL;
            }
            json_object_set_new(res, "context", ctx);
        }
        json_array_append_new(out, res);
    }
    return out;
}

static int answer(db_conn *c, const char *viewer, const search_req *s, const page *pg,
                  long long count, json_t **out, hs_err *err) {
    json_t *res = results(c, viewer, s, pg, err);
    json_t *hl = res ? highlights(c, s, pg->hits, pg->n, err) : NULL;
    json_t *state = hl && s->include_state ? search_rooms_state(c, pg->hits, pg->n, err) : NULL;
    if (!hl || (s->include_state && !state)) {
        json_decref(res), json_decref(hl);
        return -1;
    }
    json_t *re = json_pack("{s:o, s:I, s:o}", "results", res, "count", (json_int_t)count,
                           "highlights", hl);
    if (state) json_object_set_new(re, "state", state);
    if (s->group_room || s->group_sender) {
        json_t *g = json_object();
        if (s->group_room) json_object_set_new(g, "room_id", groups(s, pg, "room_id", "room_id"));
        if (s->group_sender) json_object_set_new(g, "sender", groups(s, pg, "sender", "sender"));
        json_object_set_new(re, "groups", g);
    }
    if (pg->full) {
        /* Paging on from a group's token stays in that group. */
        char *nb = make_batch(s->group_key ? s->group : "all", s->group_key ? s->group_key : "", s,
                              &pg->hits[pg->n - 1]);
        json_object_set_new(re, "next_batch", json_string(nb));
        free(nb);
    }
    *out = json_pack("{s:{s:o}}", "search_categories", "room_events", re);
    return 200;
}

/* The joined rooms the filter (and a room_id group) lets through, as text[]. */
static char *search_rooms(db_conn *c, const char *user_id, const search_req *s, hs_err *err) {
    char **ids;
    size_t n, k = 0;
    if (client_joined_rooms(c, user_id, &ids, &n, err) < 0) return NULL;
    const char **keep = calloc(n + 1, sizeof *keep);
    bool only = !strcmp(s->group, "room_id");
    for (size_t i = 0; i < n; i++)
        if (client_filter_room_allowed(s->filter, ids[i]) && (!only || !strcmp(ids[i], s->group_key)))
            keep[k++] = ids[i];
    char *arr = db_text_array(keep, k);
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids), free(keep);
    return arr;
}

static int run_search(hs_req *r, const search_req *s, json_t **out, hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = -1;
    const char *sender = !strcmp(s->group, "sender") ? s->group_key : NULL;
    char *rooms = search_rooms(c, r->user_id, s, err);
    page pg = {.hits = calloc((size_t)s->limit + 1, sizeof *pg.hits), .events = json_array()};
    hs_err none = {0};
    json_t *ign = client_account_data_get(c, r->user_id, NULL, "m.ignored_user_list", &none);
    long long count = rooms ? count_matches(c, s, rooms, sender, err) : -1;
    if (count >= 0 && fill_page(c, r->user_id, s, json_object_get(ign, "ignored_users"), rooms,
                                sender, &pg, err) == 0)
        rc = answer(c, r->user_id, s, &pg, count, out, err);
    free(pg.hits);
    json_decref(pg.events);
    json_decref(ign);
    free(rooms);
    db_release(r->srv->db, c);
    return rc;
}

static int post_search(hs_req *r, json_t **out, hs_err *err) {
    search_req s = {.group = "all", .device = r->device_id};
    int rc = parse_body(r->json, &s, err);
    if (rc == 0) {
        *out = json_pack("{s:{}}", "search_categories"); /* nothing asked, nothing searched */
        rc = 200;
    } else if (rc > 0) {
        rc = parse_batch(hs_req_query(r, "next_batch"), &s, err) < 0 ? -1 : run_search(r, &s, out, err);
    }
    free(s.keys);
    free(s.group_key);
    client_filter_part_free(s.filter);
    return rc;
}

void client_search_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/search", post_search, HS_AUTH | HS_R0);
}
