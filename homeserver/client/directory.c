/* directory.c — the published room directory: GET/POST /publicRooms and
 * GET/PUT /directory/list/room/{roomId}, with room_list_publication_rules.
 *
 * The list reads room_summaries (sql/012) joined with room_directory: one
 * indexed query per page, largest rooms first (room ID breaking ties), as
 * Synapse orders it. Like Synapse it shows published rooms that someone can
 * get into or read — join rule public, knock or knock_restricted, or
 * world-readable history — and that still have members. Pagination tokens
 * carry the last room's member count and ID and the direction.
 *
 * Privacy by default: without a login the list answers only when
 * allow_public_rooms_without_auth is set, and other servers only see it when
 * allow_public_rooms_over_federation is set or they are on
 * public_rooms_federation_allowlist (the federation route lives here too,
 * flagged HS_FEDERATION, because it is the same query). A server a room's
 * m.room.server_acl denies does not see that room in the list (Synapse's
 * rule: each page looks ten rooms further to make up for those).
 *
 * Who may publish: server admins, and members able to set the room's
 * canonical alias (Synapse's moderator test); configured rules must then
 * allow it too. Application-service network lists (third_party_instance_id)
 * are not kept here yet: every such network is empty. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "channels_internal.h"
#include "client.h"
#include "homeserver/core/base64.h"
#include "homeserver/core/clock.h"
#include "push_rules.h"
#include "room_access.h"
#include "rooms/server_acl.h"
#include "rooms/state_lookup.h"

#define MAX_PUBLIC_ROOMS 100 /* per page, Synapse's cap */

typedef struct dir_query {
    char *search;         /* lowercase LIKE pattern, NULL: no search */
    char *types;          /* text[] literal of room_types, NULL: any type */
    bool null_type;       /* room_types holds null: rooms without a type */
    long limit;
    bool has_bound, forward;
    long long bound_members;
    char bound_room[300];
    bool no_network;      /* an application-service network: none are kept */
    bool federation;      /* leave out rooms with m.federate false */
    const char *origin;   /* the asking server: rooms whose server ACL denies it are left out */
} dir_query;

static void query_free(dir_query *q) {
    free(q->search);
    free(q->types);
}

/* ---- pagination tokens ---------------------------------------------------- */

static char *make_token(bool forward, long long members, const char *room_id) {
    char raw[400];
    int n = snprintf(raw, sizeof raw, "%c%lld,%s", forward ? 'f' : 'b', members, room_id);
    return hs_b64_encode((const unsigned char *)raw, (size_t)n, true);
}

static int parse_token(const char *tok, dir_query *q, hs_err *err) {
    unsigned char raw[400];
    size_t n = 0;
    if (hs_b64_decode(tok, strlen(tok), raw, sizeof raw - 1, &n, true) < 0 || n < 3)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid 'since' token");
    raw[n] = 0;
    char *s = (char *)raw, *comma = strchr(s, ',');
    char *end;
    q->bound_members = strtoll(s + 1, &end, 10);
    if ((s[0] != 'f' && s[0] != 'b') || !comma || end != comma || end == s + 1 ||
        strlen(comma + 1) >= sizeof q->bound_room)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid 'since' token");
    q->forward = s[0] == 'f';
    q->has_bound = true;
    snprintf(q->bound_room, sizeof q->bound_room, "%s", comma + 1);
    return 0;
}

/* ---- the request ------------------------------------------------------------ */

/* generic_search_term into a LIKE pattern: %term%, lowercase, its own
 * wildcards escaped. */
static char *like_pattern(const char *term) {
    size_t n = strlen(term);
    char *p = malloc(2 * n + 3), *o = p;
    *o++ = '%';
    for (const char *s = term; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\') *o++ = '\\';
        *o++ = (*s >= 'A' && *s <= 'Z') ? (char)(*s + 32) : *s;
    }
    *o++ = '%';
    *o = 0;
    return p;
}

static int parse_filter(const json_t *f, dir_query *q, hs_err *err) {
    if (!f || json_is_null(f)) return 0;
    if (!json_is_object(f)) return hs_err_set(err, 400, "M_BAD_JSON", "'filter' must be an object");
    const json_t *term = json_object_get(f, "generic_search_term");
    if (term && !json_is_null(term) && !json_is_string(term))
        return hs_err_set(err, 400, "M_BAD_JSON", "'generic_search_term' must be a string");
    if (json_string_length(term)) q->search = like_pattern(json_string_value(term));
    const json_t *types = json_object_get(f, "room_types");
    if (!types || json_is_null(types)) return 0;
    if (!json_is_array(types)) return hs_err_set(err, 400, "M_BAD_JSON", "'room_types' must be a list");
    if (!json_array_size(types)) return 0; /* as Synapse: an empty list filters nothing */
    const char **v = calloc(json_array_size(types) + 1, sizeof *v);
    size_t i, n = 0;
    const json_t *t;
    json_array_foreach(types, i, t) {
        if (json_is_null(t)) q->null_type = true;
        else if (json_is_string(t)) v[n++] = json_string_value(t);
        else return free(v), hs_err_set(err, 400, "M_BAD_JSON", "'room_types' holds strings or null");
    }
    q->types = db_text_array(v, n);
    free(v);
    return 0;
}

/* The options common to GET and POST, client and federation. */
static int parse_options(const json_t *limit, const char *since, const json_t *all_networks,
                         const json_t *network, dir_query *q, hs_err *err) {
    q->forward = true;
    q->limit = MAX_PUBLIC_ROOMS;
    if (limit && !json_is_null(limit)) {
        if (!json_is_integer(limit) || json_integer_value(limit) < 0)
            return hs_err_set(err, 400, "M_INVALID_PARAM", "'limit' must be a non-negative integer");
        if (json_integer_value(limit) > 0 && json_integer_value(limit) < MAX_PUBLIC_ROOMS)
            q->limit = (long)json_integer_value(limit);
    }
    if (since && *since && parse_token(since, q, err) < 0) return -1;
    if (all_networks && !json_is_null(all_networks) && !json_is_boolean(all_networks))
        return hs_err_set(err, 400, "M_BAD_JSON", "'include_all_networks' must be a boolean");
    if (network && !json_is_null(network)) {
        const char *id = json_string_value(network);
        if (!id) return hs_err_set(err, 400, "M_BAD_JSON", "'third_party_instance_id' must be a string");
        if (json_is_true(all_networks))
            return hs_err_set(err, 400, "M_INVALID_PARAM",
                              "Can't use include_all_networks with an explicit network");
        const char *bar = strchr(id, '|');
        if (!bar || bar == id || !bar[1] || strchr(bar + 1, '|'))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid third_party_instance_id %s", id);
        q->no_network = true;
    }
    return 0;
}

/* A query-string integer as JSON (NULL when absent), or -1 when malformed. */
static int query_int(hs_req *r, const char *name, json_t **out, hs_err *err) {
    const char *s = hs_req_query(r, name);
    *out = NULL;
    if (!s || !*s) return 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end) return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' must be an integer", name);
    *out = json_integer(v);
    return 0;
}

static int query_bool(hs_req *r, const char *name, json_t **out, hs_err *err) {
    const char *s = hs_req_query(r, name);
    *out = NULL;
    if (!s) return 0;
    if (strcmp(s, "true") && strcmp(s, "false"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' must be true or false", name);
    *out = json_boolean(!strcmp(s, "true"));
    return 0;
}

/* ---- the list -------------------------------------------------------------- */

#define DIR_WHERE                                                                              \
    " FROM room_directory d JOIN room_summaries s ON s.room_id = d.room_id"                    \
    " WHERE d.visibility = 'public' AND s.joined_members > 0"                                  \
    " AND (s.join_rule IN ('public', 'knock', 'knock_restricted')"                             \
    "  OR s.history_visibility = 'world_readable')"                                            \
    " AND (NOT $4::bool OR s.federate)"                                                        \
    " AND ($1::text IS NULL OR lower(s.name) LIKE $1 OR lower(s.topic) LIKE $1"                \
    "  OR lower(s.canonical_alias) LIKE $1)"                                                   \
    " AND ($2::text[] IS NULL OR s.room_type = ANY($2::text[]) OR ($3::bool AND s.room_type IS NULL))"
#define DIR_COLUMNS                                                                            \
    "SELECT s.room_id, s.name, s.topic, s.canonical_alias, s.joined_members, s.avatar_url,"    \
    " s.history_visibility, s.guest_access, s.join_rule, s.room_type,"                        \
    " $4::bool AND EXISTS (SELECT 1 FROM current_state a WHERE a.room_id = s.room_id"           \
    "  AND a.type = 'm.room.server_acl' AND a.state_key = '')"

/* Synapse looks this many rooms past a page for the rooms a server ACL leaves
 * out of a federation request. */
#define ACL_PROBE 10

static long probe_limit(const dir_query *q) { return q->limit + 1 + (q->origin ? ACL_PROBE : 0); }

static PGresult *fetch_page(db_conn *c, const dir_query *q, hs_err *err) {
    static db_stmt fwd = DB_STMT(
        DIR_COLUMNS DIR_WHERE
        " AND ($5::int IS NULL OR (s.joined_members <= $5::int"
        "  AND (s.joined_members < $5::int OR s.room_id < $6)))"
        " ORDER BY s.joined_members DESC, s.room_id DESC LIMIT $7::int");
    static db_stmt back = DB_STMT(
        DIR_COLUMNS DIR_WHERE
        " AND ($5::int IS NULL OR (s.joined_members >= $5::int"
        "  AND (s.joined_members > $5::int OR s.room_id > $6)))"
        " ORDER BY s.joined_members ASC, s.room_id ASC LIMIT $7::int");
    char bound[24], lim[24];
    snprintf(bound, sizeof bound, "%lld", q->bound_members);
    snprintf(lim, sizeof lim, "%ld", probe_limit(q));
    const char *p[] = {q->search, q->types, q->null_type ? "t" : "f", q->federation ? "t" : "f",
                       q->has_bound ? bound : NULL, q->has_bound ? q->bound_room : NULL, lim};
    return db_run(c, q->forward ? &fwd : &back, 7, p, err);
}

/* total_room_count_estimate: counting costs a scan of every published room
 * (ten times the page itself with 10,000 of them), and the spec asks for an
 * estimate, so a count is reused for a few seconds per filter. Changes made
 * here (PUT /directory/list/room) start afresh. */
#define COUNT_SLOTS 64
#define COUNT_TTL_MS 5000
static struct {
    char *key;
    long long n, at;
} counts[COUNT_SLOTS];
static pthread_mutex_t counts_mu = PTHREAD_MUTEX_INITIALIZER;

static char *count_key(const dir_query *q) {
    size_t n = (q->search ? strlen(q->search) : 0) + (q->types ? strlen(q->types) : 0) + 16;
    char *k = malloc(n);
    snprintf(k, n, "%s\x1f%s\x1f%d%d", q->search ? q->search : "", q->types ? q->types : "",
             q->null_type, q->federation);
    return k;
}

static long long cached_count(const char *key, long long now) {
    long long n = -1;
    pthread_mutex_lock(&counts_mu);
    for (int i = 0; i < COUNT_SLOTS && n < 0; i++)
        if (counts[i].key && !strcmp(counts[i].key, key) && now - counts[i].at < COUNT_TTL_MS)
            n = counts[i].n;
    pthread_mutex_unlock(&counts_mu);
    return n;
}

static void remember_count(char *key, long long n, long long now) {
    pthread_mutex_lock(&counts_mu);
    int slot = 0;
    for (int i = 0; i < COUNT_SLOTS; i++) {
        if (counts[i].key && !strcmp(counts[i].key, key)) { slot = i; break; }
        if (!counts[i].key || counts[i].at < counts[slot].at) slot = i;
    }
    free(counts[slot].key);
    counts[slot].key = key;
    counts[slot].n = n;
    counts[slot].at = now;
    pthread_mutex_unlock(&counts_mu);
}

static void forget_counts(void) {
    pthread_mutex_lock(&counts_mu);
    for (int i = 0; i < COUNT_SLOTS; i++) free(counts[i].key), counts[i].key = NULL;
    pthread_mutex_unlock(&counts_mu);
}

static long long count_rooms(db_conn *c, const dir_query *q, hs_err *err) {
    static db_stmt cnt = DB_STMT("SELECT count(*)" DIR_WHERE);
    long long now = hs_now_ms(), n;
    char *key = count_key(q);
    if ((n = cached_count(key, now)) >= 0) return free(key), n;
    const char *p[] = {q->search, q->types, q->null_type ? "t" : "f", q->federation ? "t" : "f"};
    PGresult *r = db_run(c, &cnt, 4, p, err);
    if (!r) return free(key), -1;
    n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    remember_count(key, n, now);
    return n;
}

static json_t *chunk_entry(PGresult *r, int i) {
    const char *hist = PQgetisnull(r, i, 6) ? "" : PQgetvalue(r, i, 6);
    const char *guest = PQgetisnull(r, i, 7) ? "" : PQgetvalue(r, i, 7);
    json_t *o = json_pack("{s:s, s:I, s:b, s:b}", "room_id", PQgetvalue(r, i, 0),
                          "num_joined_members", (json_int_t)atoll(PQgetvalue(r, i, 4)),
                          "world_readable", !strcmp(hist, "world_readable"), "guest_can_join",
                          !strcmp(guest, "can_join"));
    static const struct { int col; const char *key; } opt[] = {
        {1, "name"}, {2, "topic"}, {3, "canonical_alias"}, {5, "avatar_url"}, {8, "join_rule"},
        {9, "room_type"}};
    for (size_t k = 0; k < sizeof opt / sizeof *opt; k++)
        if (!PQgetisnull(r, i, opt[k].col))
            json_object_set_new(o, opt[k].key, json_string(PQgetvalue(r, i, opt[k].col)));
    return o;
}

static void set_token(json_t *res, const char *key, bool forward, long long members,
                      const char *room_id) {
    char *t = make_token(forward, members, room_id);
    json_object_set_new(res, key, json_string(t));
    free(t);
}

static void set_row_token(json_t *res, const char *key, bool forward, PGresult *r, int row) {
    set_token(res, key, forward, atoll(PQgetvalue(r, row, 4)), PQgetvalue(r, row, 0));
}

/* Whether the asking server may see row i: a room whose server ACL denies it
 * is not shown to it (Synapse's rule). 1, 0, -1. */
static int row_visible(db_conn *c, const dir_query *q, PGresult *r, int i, hs_err *err) {
    if (!q->origin || PQgetvalue(r, i, 10)[0] != 't') return 1;
    return room_acl_allows(c, PQgetvalue(r, i, 0), q->origin, err);
}

/* The rows of one page: [near, far] were considered (shown or hidden from
 * the asking server), and more says whether a room this server would show
 * lies beyond far. */
typedef struct page_rows {
    int near, far;
    bool more;
} page_rows;

/* Fills chunk with up to q->limit visible rows of r. Past a full page it
 * looks on for a visible row before promising another page: a page whose
 * remaining rows are all hidden by server ACLs is the last one, so the
 * client is never sent on to an empty page (and a prev_batch from the last
 * page leads to the page before it). The hidden rows looked at join the
 * page's range, so the next page starts after them. 0 or -1. */
static int pick_rows(db_conn *c, const dir_query *q, PGresult *r, json_t *chunk, page_rows *p,
                     hs_err *err) {
    int n = PQntuples(r);
    *p = (page_rows){.near = -1, .far = -1};
    for (int i = 0; i < n; i++) {
        int vis = row_visible(c, q, r, i, err);
        if (vis < 0) return -1;
        if ((long)json_array_size(chunk) >= q->limit) {
            if (vis) return p->more = true, 0;
            p->far = i;
            continue;
        }
        if (p->near < 0) p->near = i;
        p->far = i;
        if (vis) json_array_append_new(chunk, chunk_entry(r, i));
    }
    p->more = n == probe_limit(q); /* the rows beyond the probe are unknown */
    return 0;
}

/* One page in the order clients get it (largest first), with its tokens.
 * Rows come nearest-to-the-bound first (backwards: smallest first); the
 * tokens name the first and last rows considered, shown or not. A page that
 * found no row at all has only a token back over the whole list, from its
 * far end (as Synapse: members 0, room ID ""; backwards: the largest count a
 * token can hold), so that it comes back to the rows its own token named. */
static int list_rooms(db_conn *c, const dir_query *q, json_t **out, hs_err *err) {
    json_t *chunk = json_array();
    *out = json_pack("{s:o}", "chunk", chunk);
    if (q->no_network) {
        json_object_set_new(*out, "total_room_count_estimate", json_integer(0));
        return 0;
    }
    PGresult *r = fetch_page(c, q, err);
    long long total = r ? count_rooms(c, q, err) : -1;
    page_rows p;
    if (total < 0 || pick_rows(c, q, r, chunk, &p, err) < 0)
        return PQclear(r), json_decref(*out), *out = NULL, -1;
    if (!q->forward) { /* largest first, as forwards */
        for (size_t i = 0, k = json_array_size(chunk); i < k / 2; i++) {
            json_t *x = json_incref(json_array_get(chunk, i));
            json_array_set(chunk, i, json_array_get(chunk, k - 1 - i));
            json_array_set_new(chunk, k - 1 - i, x);
        }
    }
    const char *along = q->forward ? "next_batch" : "prev_batch";
    const char *against = q->forward ? "prev_batch" : "next_batch";
    if (p.more) set_row_token(*out, along, q->forward, r, p.far);
    if (q->has_bound && p.near >= 0) set_row_token(*out, against, !q->forward, r, p.near);
    else if (q->has_bound) set_token(*out, against, !q->forward, q->forward ? 0 : INT32_MAX, "");
    json_object_set_new(*out, "total_room_count_estimate", json_integer(total));
    PQclear(r);
    return 0;
}

static int answer_list(hs_server *srv, dir_query *q, json_t **out, hs_err *err) {
    int rc = -1;
    if (!srv->cfg->enable_room_list_search) {
        *out = json_pack("{s:[], s:i}", "chunk", "total_room_count_estimate", 0);
        rc = 200;
    } else {
        db_conn *c = db_acquire(srv->db, err);
        if (c && list_rooms(c, q, out, err) == 0) rc = 200;
        db_release(srv->db, c);
    }
    query_free(q);
    return rc;
}

/* The server whose directory is asked for: NULL for ours. Only local users
 * may have us ask another server (over federation). */
static int check_server(hs_req *r, const char **remote, hs_err *err) {
    const char *server = hs_req_query(r, "server");
    *remote = NULL;
    if (!r->user_id && !r->srv->cfg->allow_public_rooms_without_auth)
        return hs_err_set(err, 401, "M_MISSING_TOKEN", "Missing access token");
    if (!server || !*server || !strcmp(server, r->srv->cfg->server_name)) return 0;
    if (!r->user_id) return hs_err_set(err, 401, "M_MISSING_TOKEN", "Missing access token");
    *remote = server;
    return 0;
}

/* Another server's directory, as it answers our server (it decides whether
 * it answers at all: allow_public_rooms_over_federation there). */
static int remote_list(hs_req *r, const char *server, const json_t *body, json_t **out,
                       hs_err *err) {
    char path[1200] = "/_matrix/federation/v1/publicRooms";
    const char *names[] = {"limit", "since"};
    for (int i = 0; i < 2 && !body; i++) {
        const char *v = hs_req_query(r, names[i]);
        if (!v) continue;
        char *e = channel_escape(v);
        size_t n = strlen(path);
        snprintf(path + n, sizeof path - n, "%c%s=%s", strchr(path, '?') ? '&' : '?', names[i], e);
        free(e);
    }
    json_t *res;
    if (channel_fed(r->srv, server, body ? "POST" : "GET", path, body, &res, err) < 0) return -1;
    if (!json_is_array(json_object_get(res, "chunk"))) {
        json_decref(res);
        return hs_err_set(err, 502, "M_UNKNOWN", "%s sent a room list without a chunk", server);
    }
    *out = res;
    return 200;
}

static int get_public_rooms(hs_req *r, json_t **out, hs_err *err) {
    const char *remote;
    if (check_server(r, &remote, err) < 0) return -1;
    dir_query q = {0};
    json_t *limit;
    if (query_int(r, "limit", &limit, err) < 0) return -1;
    int rc = parse_options(limit, remote ? NULL : hs_req_query(r, "since"), NULL, NULL, &q, err);
    json_decref(limit);
    if (rc < 0 || remote) return query_free(&q), rc < 0 ? -1 : remote_list(r, remote, NULL, out, err);
    return answer_list(r->srv, &q, out, err);
}

/* The body a remote gets: the request's own fields, checked. */
static json_t *remote_body(const json_t *b) {
    static const char *const keys[] = {"limit", "since", "filter", "include_all_networks",
                                       "third_party_instance_id"};
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        json_t *v = json_object_get(b, keys[i]);
        if (v && !json_is_null(v)) json_object_set(out, keys[i], v);
    }
    return out;
}

static int post_public_rooms(hs_req *r, json_t **out, hs_err *err) {
    const char *remote;
    if (check_server(r, &remote, err) < 0) return -1;
    const json_t *b = r->json;
    const json_t *since = json_object_get(b, "since");
    if (since && !json_is_null(since) && !json_is_string(since))
        return hs_err_set(err, 400, "M_BAD_JSON", "'since' must be a string");
    dir_query q = {0};
    if (parse_options(json_object_get(b, "limit"), remote ? NULL : json_string_value(since),
                      json_object_get(b, "include_all_networks"),
                      json_object_get(b, "third_party_instance_id"), &q, err) < 0 ||
        parse_filter(json_object_get(b, "filter"), &q, err) < 0)
        return query_free(&q), -1;
    if (remote) {
        query_free(&q);
        json_t *fb = remote_body(b);
        int rc = remote_list(r, remote, fb, out, err);
        json_decref(fb);
        return rc;
    }
    return answer_list(r->srv, &q, out, err);
}

/* ---- federation ------------------------------------------------------------ */

static int fed_allowed(hs_req *r, hs_err *err) {
    const cfg *c = r->srv->cfg;
    if (c->allow_public_rooms_over_federation) return 0;
    for (size_t i = 0; i < c->public_rooms_federation_allowlist.n; i++)
        if (r->origin && !strcmp(r->origin, c->public_rooms_federation_allowlist.v[i])) return 0;
    return hs_err_set(err, 403, "M_FORBIDDEN", "Federation denied with %s.",
                      r->origin ? r->origin : "this server");
}

static int fed_get_public_rooms(hs_req *r, json_t **out, hs_err *err) {
    if (fed_allowed(r, err) < 0) return -1;
    dir_query q = {.federation = true, .origin = r->origin ? r->origin : ""};
    json_t *limit, *all;
    if (query_int(r, "limit", &limit, err) < 0) return -1;
    if (query_bool(r, "include_all_networks", &all, err) < 0) return json_decref(limit), -1;
    const char *net = hs_req_query(r, "third_party_instance_id");
    json_t *network = net ? json_string(net) : NULL;
    int rc = parse_options(limit, hs_req_query(r, "since"), all, network, &q, err);
    json_decref(limit), json_decref(all), json_decref(network);
    if (rc < 0) return query_free(&q), -1;
    return answer_list(r->srv, &q, out, err);
}

static int fed_post_public_rooms(hs_req *r, json_t **out, hs_err *err) {
    if (fed_allowed(r, err) < 0) return -1;
    const json_t *b = r->json;
    const json_t *since = json_object_get(b, "since");
    if (since && !json_is_null(since) && !json_is_string(since))
        return hs_err_set(err, 400, "M_BAD_JSON", "'since' must be a string");
    dir_query q = {.federation = true, .origin = r->origin ? r->origin : ""};
    if (parse_options(json_object_get(b, "limit"), json_string_value(since),
                      json_object_get(b, "include_all_networks"),
                      json_object_get(b, "third_party_instance_id"), &q, err) < 0 ||
        parse_filter(json_object_get(b, "filter"), &q, err) < 0)
        return query_free(&q), -1;
    return answer_list(r->srv, &q, out, err);
}

/* ---- publishing ------------------------------------------------------------ */

bool client_directory_rules_allow(const cfg *c, const char *user_id, bool is_admin,
                                  const char *room_id, const char *const *aliases, size_t n) {
    if (is_admin || !c->has_room_list_publication_rules) return true;
    for (size_t i = 0; i < c->n_room_list_publication_rules; i++) {
        const cfg_room_rule *rule = &c->room_list_publication_rules[i];
        if (!push_glob_match(rule->user_id, user_id, PUSH_GLOB_WHOLE, false) ||
            !push_glob_match(rule->room_id, room_id, PUSH_GLOB_WHOLE, false))
            continue;
        bool alias_ok = !strcmp(rule->alias, "*");
        for (size_t k = 0; k < n && !alias_ok; k++)
            alias_ok = push_glob_match(rule->alias, aliases[k], PUSH_GLOB_WHOLE, false);
        if (alias_ok) return rule->allow;
    }
    return false;
}

static int room_exists(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM rooms WHERE room_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    return found ? 0 : hs_err_set(err, 404, "M_NOT_FOUND", "Room not found");
}

/* Synapse's test: joined, with the power to set the canonical alias. */
static int may_edit_listing(hs_req *r, db_conn *c, const char *room_id, hs_err *err) {
    if (r->is_admin) return 0;
    if (client_require_joined(c, room_id, r->user_id, err) < 0) return -1;
    const room_version *v = room_store_room_version(c, room_id, err);
    if (!v) return -1;
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    const room_event *pl = room_lookup_get(&l, "m.room.power_levels", "");
    const json_t *events = pl ? json_object_get(pl->content, "events") : NULL;
    const json_t *need_j = json_object_get(events, "m.room.canonical_alias");
    if (!need_j) need_j = pl ? json_object_get(pl->content, "state_default") : NULL;
    long long need = json_is_integer(need_j) ? json_integer_value(need_j)
                     : json_is_string(need_j) ? atoll(json_string_value(need_j))
                                              : 50; /* state_default's default */
    long long have = room_user_power_level(v, r->user_id, room_lookup_get, &l);
    bool failed = l.failed;
    if (failed) *err = l.err;
    room_lookup_clear(&l);
    if (failed) return -1;
    if (have < need)
        return hs_err_set(err, 403, "M_FORBIDDEN", "This server requires you to be a moderator in "
                                                  "the room to edit its room list entry");
    return 0;
}

static int check_rules(hs_req *r, db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT alias FROM room_aliases WHERE room_id = $1"
        " UNION SELECT canonical_alias FROM room_summaries"
        "  WHERE room_id = $1 AND canonical_alias IS NOT NULL");
    if (!r->srv->cfg->enable_room_list_search)
        return hs_err_set(err, 403, "M_FORBIDDEN", "This server has no public room list");
    PGresult *res = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!res) return -1;
    const char **aliases = calloc((size_t)PQntuples(res) + 1, sizeof *aliases);
    for (int i = 0; i < PQntuples(res); i++) aliases[i] = PQgetvalue(res, i, 0);
    bool ok = client_directory_rules_allow(r->srv->cfg, r->user_id, r->is_admin, room_id, aliases,
                                           (size_t)PQntuples(res));
    free(aliases);
    PQclear(res);
    return ok ? 0 : hs_err_set(err, 403, "M_FORBIDDEN", "Not allowed to publish room");
}

static int get_listing(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT visibility FROM room_directory WHERE room_id = $1");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = -1;
    PGresult *res = NULL;
    if (room_exists(c, r->params[0], err) == 0 &&
        (res = db_run(c, &q, 1, (const char *[]){r->params[0]}, err))) {
        bool pub = PQntuples(res) && !strcmp(PQgetvalue(res, 0, 0), "public");
        *out = json_pack("{s:s}", "visibility", pub ? "public" : "private");
        rc = 200;
    }
    PQclear(res);
    db_release(r->srv->db, c);
    return rc;
}

static int put_listing(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO room_directory (room_id, visibility) VALUES ($1, $2)"
        " ON CONFLICT (room_id) DO UPDATE SET visibility = EXCLUDED.visibility");
    const json_t *vj = json_object_get(r->json, "visibility");
    const char *vis = vj ? json_string_value(vj) : "public"; /* the spec's default */
    if (!vis || (strcmp(vis, "public") && strcmp(vis, "private")))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'visibility' must be public or private");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const char *room_id = r->params[0];
    bool pub = !strcmp(vis, "public");
    int rc = -1;
    if (room_exists(c, room_id, err) == 0 && may_edit_listing(r, c, room_id, err) == 0 &&
        (!pub || check_rules(r, c, room_id, err) == 0) &&
        db_exec(c, &up, 2, (const char *[]){room_id, vis}, err) >= 0) {
        forget_counts();
        *out = json_object();
        rc = 200;
    }
    db_release(r->srv->db, c);
    return rc;
}

void client_channels_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/publicRooms", get_public_rooms, HS_AUTH_OPTIONAL | HS_R0 | HS_GUEST);
    hs_route(rt, "POST", "/_matrix/client/v3/publicRooms", post_public_rooms, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v3/directory/list/room/{roomId}", get_listing, HS_R0);
    hs_route(rt, "PUT", "/_matrix/client/v3/directory/list/room/{roomId}", put_listing,
             HS_AUTH | HS_R0 | HS_REFUSE_SUSPENDED);
    hs_route(rt, "GET", "/_matrix/federation/v1/publicRooms", fed_get_public_rooms, HS_FEDERATION);
    hs_route(rt, "POST", "/_matrix/federation/v1/publicRooms", fed_post_public_rooms,
             HS_FEDERATION);
    channel_summary_routes(rt);
    channel_hierarchy_routes(rt);
}
