/* bench_state_res.c — how long state resolution takes on a large fork.
 *
 * Builds a room with 20,000 state events (create, Alice's join, power
 * levels, join rules and 19,996 joined users), then two forks from it that
 * disagree on 1,000 keys: on fork A, 998 users change their display name,
 * Alice sets a topic; on fork B, Alice promotes a moderator (new power
 * levels, cited by what follows), bans 100 of those 998 users and the other
 * 898 change their names differently. Resolves the two forks under v2 (room
 * version 11) and v2.1 (room version 12) and prints the time in ms.
 *
 * Usage: bench_state_res [runs]   (default 7; prints min and median) */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rooms/state_res.h"

#define USERS 19996
#define FORKED 998
#define BANNED 100
#define ALICE "@alice:example.com"

/* ---- events by ID ------------------------------------------------------- */

typedef struct bench_room {
    const room_version *v;
    char room_id[64];
    room_event **ev;
    size_t n, cap;
    uint32_t *index; /* event index + 1 */
    size_t n_index;
    long long ts;
} bench_room;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static const room_event *find(const bench_room *r, const char *id) {
    size_t mask = r->n_index - 1;
    for (size_t i = hash_str(id) & mask; r->index[i]; i = (i + 1) & mask)
        if (strcmp(r->ev[r->index[i] - 1]->event_id, id) == 0) return r->ev[r->index[i] - 1];
    return NULL;
}

static int fetch(void *ctx, const char *id, const room_event **ev, hs_err *err) {
    (void)err;
    *ev = find(ctx, id);
    return 0;
}

/* Counts what a database behind the callbacks would see: one query per
 * prefetch batch, and fetches the batches did not announce. */
typedef struct bench_counts {
    bench_room *r;
    long batches, announced, fetches;
} bench_counts;

static int count_fetch(void *ctx, const char *id, const room_event **ev, hs_err *err) {
    bench_counts *c = ctx;
    c->fetches++;
    return fetch(c->r, id, ev, err);
}

static int count_prefetch(void *ctx, const char *const *ids, size_t n, hs_err *err) {
    (void)ids, (void)err;
    bench_counts *c = ctx;
    c->batches++;
    c->announced += (long)n;
    return 0;
}

static void die(const char *what) {
    fprintf(stderr, "bench_state_res: %s\n", what);
    exit(1);
}

static const char **collect(const json_t *list, size_t *n) {
    *n = json_array_size(list);
    const char **ids = calloc(*n + 1, sizeof *ids);
    if (!ids) die("out of memory");
    for (size_t i = 0; i < *n; i++) ids[i] = json_string_value(json_array_get(list, i));
    return ids;
}

static void insert(bench_room *r, room_event *e) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        if (!(r->ev = realloc(r->ev, r->cap * sizeof *r->ev))) die("out of memory");
    }
    r->ev[r->n++] = e;
    size_t mask = r->n_index - 1, i = hash_str(e->event_id) & mask;
    while (r->index[i]) i = (i + 1) & mask;
    r->index[i] = (uint32_t)r->n;
}

/* Add a state event citing auth (NULL-terminated). Returns its event ID. */
static const char *add(bench_room *r, const char *id, const char *type, const char *state_key,
                       const char *sender, json_t *content, const char *const *auth) {
    bool create = strcmp(type, "m.room.create") == 0;
    json_t *a = json_array();
    for (size_t i = 0; auth && auth[i]; i++) json_array_append_new(a, json_string(auth[i]));
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:I,s:I,s:o,s:[]}", "type", type, "state_key",
                          state_key, "sender", sender, "content", content, "depth",
                          (json_int_t)r->n + 1, "origin_server_ts", (json_int_t)r->ts++,
                          "auth_events", a, "prev_events");
    if (!create || !r->v->hydra) json_object_set_new(j, "room_id", json_string(r->room_id));
    room_event *e = calloc(1, sizeof *e);
    if (!j || !e) die("out of memory");
    e->json = j;
    e->ver = r->v;
    e->event_id = strdup(id);
    e->type = json_string_value(json_object_get(j, "type"));
    e->sender = json_string_value(json_object_get(j, "sender"));
    e->state_key = json_string_value(json_object_get(j, "state_key"));
    e->content = json_object_get(j, "content");
    if (strcmp(type, "m.room.member") == 0)
        e->membership = json_string_value(json_object_get(e->content, "membership"));
    e->depth = (long long)r->n + 1;
    e->origin_server_ts = r->ts - 1;
    e->auth_events = collect(a, &e->n_auth);
    e->prev_events = collect(json_object_get(j, "prev_events"), &e->n_prev);
    e->room_id = create && r->v->hydra ? r->room_id : json_string_value(json_object_get(j, "room_id"));
    insert(r, e);
    return e->event_id;
}

/* ---- the room and its forks --------------------------------------------- */

typedef struct bench_ids {
    const char *create, *alice, *pl, *jr;
    const char *join[USERS];
} bench_ids;

/* Start an auth list: the create event, except in v12 where it is implied.
 * Returns how many entries it wrote. */
static size_t cite_create(const bench_room *r, const bench_ids *ids, const char **auth) {
    if (r->v->hydra) return 0;
    auth[0] = ids->create;
    return 1;
}

static void build_base(bench_room *r, bench_ids *ids, room_state_map *base) {
    const char *auth[6];
    char id[64], user[64];
    size_t n;
    ids->create = add(r, "$create", "m.room.create", "", ALICE,
                      json_pack("{s:s}", "room_version", r->v->id), NULL);
    n = cite_create(r, ids, auth);
    auth[n] = NULL;
    ids->alice = add(r, "$alice", "m.room.member", ALICE, ALICE,
                     json_pack("{s:s}", "membership", "join"), auth);
    auth[n] = ids->alice, auth[n + 1] = NULL;
    ids->pl = add(r, "$pl", "m.room.power_levels", "", ALICE,
                  r->v->hydra ? json_pack("{s:{}}", "users")
                              : json_pack("{s:{s:i}}", "users", ALICE, 100),
                  auth);
    auth[n + 1] = ids->pl, auth[n + 2] = NULL;
    ids->jr = add(r, "$jr", "m.room.join_rules", "", ALICE,
                  json_pack("{s:s}", "join_rule", "public"), auth);
    const char *ev[] = {ids->create, ids->alice, ids->pl, ids->jr};
    for (int i = 0; i < 4; i++) {
        const room_event *e = find(r, ev[i]);
        room_state_map_set(base, e->type, e->state_key, e->event_id);
    }
    for (int u = 0; u < USERS; u++) {
        snprintf(id, sizeof id, "$join%d", u);
        snprintf(user, sizeof user, "@u%d:example.com", u);
        auth[n] = ids->pl, auth[n + 1] = ids->jr, auth[n + 2] = NULL;
        ids->join[u] = add(r, id, "m.room.member", user, user,
                           json_pack("{s:s,s:s}", "membership", "join", "displayname", user),
                           auth);
        room_state_map_set(base, "m.room.member", user, ids->join[u]);
    }
}

static void set_state(room_state_map *m, const bench_room *r, const char *id) {
    const room_event *e = find(r, id);
    room_state_map_set(m, e->type, e->state_key, e->event_id);
}

/* Fork A: renames and a topic, all under the base power levels. */
static void build_fork_a(bench_room *r, const bench_ids *ids, room_state_map *a) {
    const char *auth[6];
    char id[64], user[64];
    size_t n = cite_create(r, ids, auth);
    auth[n] = ids->pl, auth[n + 1] = ids->alice, auth[n + 2] = NULL;
    set_state(a, r, add(r, "$topic", "m.room.topic", "", ALICE,
                        json_pack("{s:s}", "topic", "fork A"), auth));
    for (int u = 0; u < FORKED; u++) {
        snprintf(id, sizeof id, "$a%d", u);
        snprintf(user, sizeof user, "@u%d:example.com", u);
        auth[n] = ids->pl, auth[n + 1] = ids->join[u], auth[n + 2] = NULL;
        set_state(a, r, add(r, id, "m.room.member", user, user,
                            json_pack("{s:s,s:s}", "membership", "join", "displayname", "A"),
                            auth));
    }
}

/* Fork B: new power levels, then bans and renames that cite them. */
static void build_fork_b(bench_room *r, const bench_ids *ids, room_state_map *b) {
    const char *auth[6];
    char id[64], user[64];
    size_t n = cite_create(r, ids, auth);
    auth[n] = ids->pl, auth[n + 1] = ids->alice, auth[n + 2] = NULL;
    json_t *users = r->v->hydra ? json_object() : json_pack("{s:i}", ALICE, 100);
    json_object_set_new(users, "@u0:example.com", json_integer(50));
    const char *pl2 = add(r, "$pl2", "m.room.power_levels", "", ALICE,
                          json_pack("{s:o}", "users", users), auth);
    set_state(b, r, pl2);
    for (int u = 0; u < FORKED; u++) {
        snprintf(id, sizeof id, "$b%d", u);
        snprintf(user, sizeof user, "@u%d:example.com", u);
        bool ban = u >= FORKED - BANNED;
        auth[n] = pl2, auth[n + 1] = ban ? ids->alice : ids->join[u];
        auth[n + 2] = ban ? ids->join[u] : NULL, auth[n + 3] = NULL;
        json_t *c = ban ? json_pack("{s:s}", "membership", "ban")
                         : json_pack("{s:s,s:s}", "membership", "join", "displayname", "B");
        set_state(b, r, add(r, id, "m.room.member", user, ban ? ALICE : user, c, auth));
    }
}

/* ---- timing ---------------------------------------------------------------- */

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t conflicted_keys(const room_state_map *a, const room_state_map *b) {
    size_t n = 0, it = 0;
    const char *t, *k, *id;
    while (room_state_map_next(a, &it, &t, &k, &id)) {
        const char *o = room_state_map_get(b, t, k);
        n += !o || strcmp(o, id) != 0;
    }
    for (it = 0; room_state_map_next(b, &it, &t, &k, &id);) n += !room_state_map_get(a, t, k);
    return n;
}

/* The result must be the one the algorithm gives, or the time means nothing. */
static void check(const room_state_map *out) {
    const char *pl = room_state_map_get(out, "m.room.power_levels", "");
    const char *banned = room_state_map_get(out, "m.room.member", "@u997:example.com");
    const char *topic = room_state_map_get(out, "m.room.topic", "");
    if (room_state_map_count(out) != USERS + 5 || !pl || strcmp(pl, "$pl2") != 0 || !banned ||
        strcmp(banned, "$b997") != 0 || !topic)
        die("unexpected resolved state");
}

static void run(const char *version, int runs) {
    bench_room r = {.v = room_version_get(version), .n_index = 1 << 17};
    if (!r.v || !(r.index = calloc(r.n_index, sizeof *r.index))) die("setup");
    snprintf(r.room_id, sizeof r.room_id, "%s", r.v->hydra ? "!create" : "!bench:example.com");
    bench_ids *ids = calloc(1, sizeof *ids);
    room_state_map *base = room_state_map_new(), *out = room_state_map_new();
    build_base(&r, ids, base);
    room_state_map *a = room_state_map_copy(base), *b = room_state_map_copy(base);
    build_fork_a(&r, ids, a);
    build_fork_b(&r, ids, b);
    const room_state_map *states[2] = {a, b};
    double *ms = calloc((size_t)runs, sizeof *ms);
    for (int i = 0; i < runs; i++) {
        hs_err err;
        double t0 = now_ms();
        if (room_state_resolve(r.v, states, 2, fetch, &r, out, &err) < 0) die(err.msg);
        ms[i] = now_ms() - t0;
        check(out);
    }
    bench_counts counts = {.r = &r};
    hs_err err;
    if (room_state_resolve_batched(r.v, states, 2, count_fetch, count_prefetch, &counts, out,
                                   &err) < 0)
        die(err.msg);
    check(out);
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    printf("state res %-4s (room v%-2s): %zu state events, %zu conflicted keys, %zu events: "
           "min %.1f ms, median %.1f ms\n",
           r.v->state_res == ROOM_STATE_RES_V2_1 ? "v2.1" : "v2", version,
           room_state_map_count(a), conflicted_keys(a, b), r.n, ms[0], ms[runs / 2]);
    printf("  with a prefetch hook: %ld fetches, %ld announced in %ld batches\n",
           counts.fetches, counts.announced, counts.batches);
    free(ms);
    room_state_map_free(a), room_state_map_free(b), room_state_map_free(base);
    room_state_map_free(out);
    for (size_t i = 0; i < r.n; i++) room_event_free(r.ev[i]);
    free(r.ev), free(r.index), free(ids);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    if (runs < 1) runs = 1;
    run("11", runs);
    run("12", runs);
    return 0;
}
