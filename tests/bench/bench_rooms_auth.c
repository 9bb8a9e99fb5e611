/* bench_rooms_auth.c — authorization checks per second on one core.
 *
 * A room (version 12 and version 10) with 2,000 joined members, power
 * levels, join rules and a name; then a realistic mix of 100,000 events
 * checked against the current state through a hash-table lookup:
 *   80% messages from members, 6% reactions, 4% topic/name changes (half by
 *   the admin, half refused), 4% joins and leaves, 2% power level changes,
 *   2% invites, 2% messages from non-members (refused).
 * Every result is compared with the expected one, so a wrong answer cannot
 * pass for a fast one. Parsing is not timed: the check is.
 *
 * Usage: bench_rooms_auth [runs]   (default 5; prints the best rate) */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rooms/auth.h"

#define MEMBERS 2000
#define EVENTS 100000
#define ADMIN "@admin:example.org"

typedef struct state {
    const room_event **slot; /* open addressing on (type, state_key) */
    size_t mask;
} state;

static uint64_t hash2(const char *a, const char *b) {
    uint64_t h = 1469598103934665603ULL;
    for (; *a; a++) h = (h ^ (unsigned char)*a) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (; *b; b++) h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h;
}

static const room_event *lookup(void *ctx, const char *type, const char *sk) {
    state *s = ctx;
    for (size_t i = hash2(type, sk) & s->mask; s->slot[i]; i = (i + 1) & s->mask)
        if (strcmp(s->slot[i]->state_key, sk) == 0 && strcmp(s->slot[i]->type, type) == 0)
            return s->slot[i];
    return NULL;
}

static void put(state *s, const room_event *e) {
    size_t i = hash2(e->type, e->state_key) & s->mask;
    while (s->slot[i] && !(strcmp(s->slot[i]->type, e->type) == 0 &&
                           strcmp(s->slot[i]->state_key, e->state_key) == 0))
        i = (i + 1) & s->mask;
    s->slot[i] = e;
}

typedef struct bench {
    const room_version *v;
    char room_id[64];
    int seq;
} bench;

static room_event *make(bench *b, const char *type, const char *sender, const char *sk,
                        json_t *content) {
    int seq = ++b->seq;
    json_t *j = json_pack("{s:s,s:s,s:o,s:i,s:I,s:{s:s},s:{},s:[s],s:[s,s]}", "type", type,
                          "sender", sender, "content", content, "depth", seq,
                          "origin_server_ts", (json_int_t)1700000000000 + seq, "hashes",
                          "sha256", "x", "signatures", "prev_events", "$prev", "auth_events",
                          "$a1", "$a2");
    if (sk) json_object_set_new(j, "state_key", json_string(sk));
    bool create = strcmp(type, "m.room.create") == 0;
    if (!(create && b->v->hydra)) json_object_set_new(j, "room_id", json_string(b->room_id));
    if (create) json_object_set_new(j, "prev_events", json_array());
    hs_err err = {0};
    room_event *e = room_event_parse(b->v, j, &err);
    json_decref(j);
    if (!e) {
        fprintf(stderr, "bench: cannot parse %s: %s\n", type, err.msg);
        exit(1);
    }
    return e;
}

static void user(char *buf, size_t n, const char *kind, int i) {
    snprintf(buf, n, "@%s%d:example.org", kind, i);
}

/* The room's state: create, members, power levels, join rules, name. */
static void build_state(bench *b, state *s, room_event **owned, size_t *n_owned) {
    snprintf(b->room_id, sizeof b->room_id, "!bench:example.org");
    room_event *create = make(b, "m.room.create", ADMIN, "",
                              b->v->implicit_room_creator ? json_object()
                                                          : json_pack("{s:s}", "creator", ADMIN));
    if (b->v->hydra) snprintf(b->room_id, sizeof b->room_id, "%s", create->room_id);
    owned[(*n_owned)++] = create;
    json_t *users = json_object();
    if (!b->v->hydra) json_object_set_new(users, ADMIN, json_integer(100));
    json_object_set_new(users, "@mod0:example.org", json_integer(50));
    owned[(*n_owned)++] = make(b, "m.room.power_levels", ADMIN, "",
                               json_pack("{s:o,s:i,s:i,s:{s:i}}", "users", users, "state_default",
                                         50, "invite", 0, "events", "m.room.name", 50));
    owned[(*n_owned)++] = make(b, "m.room.join_rules", ADMIN, "", json_pack("{s:s}", "join_rule", "public"));
    owned[(*n_owned)++] = make(b, "m.room.name", ADMIN, "", json_pack("{s:s}", "name", "bench"));
    owned[(*n_owned)++] = make(b, "m.room.member", ADMIN, ADMIN, json_pack("{s:s}", "membership", "join"));
    char u[64];
    for (int i = 0; i < MEMBERS; i++) {
        user(u, sizeof u, i == 0 ? "mod" : "user", i);
        owned[(*n_owned)++] = make(b, "m.room.member", u, u, json_pack("{s:s}", "membership", "join"));
    }
    for (size_t i = 0; i < *n_owned; i++) put(s, owned[i]);
}

/* One event of the mix and whether it should be allowed. */
static room_event *mix_event(bench *b, int i, bool *allowed) {
    int kind = i % 100, who = 1 + (i * 7919) % (MEMBERS - 1);
    char u[64], t[64];
    user(u, sizeof u, "user", who);
    *allowed = true;
    if (kind < 80) return make(b, "m.room.message", u, NULL, json_pack("{s:s,s:s}", "msgtype", "m.text", "body", "hello"));
    if (kind < 86) return make(b, "m.reaction", u, NULL, json_pack("{s:{s:s}}", "m.relates_to", "key", "+1"));
    if (kind < 88) return make(b, "m.room.topic", ADMIN, "", json_pack("{s:s}", "topic", "t"));
    if (kind < 90) {
        *allowed = false;
        return make(b, "m.room.name", u, "", json_pack("{s:s}", "name", "x"));
    }
    if (kind < 92) {
        user(t, sizeof t, "new", i);
        return make(b, "m.room.member", t, t, json_pack("{s:s}", "membership", "join"));
    }
    if (kind < 94) return make(b, "m.room.member", u, u, json_pack("{s:s}", "membership", "leave"));
    if (kind < 96) {
        json_t *users = json_pack("{s:i,s:i}", "@mod0:example.org", 50, u, 10);
        if (!b->v->hydra) json_object_set_new(users, ADMIN, json_integer(100));
        return make(b, "m.room.power_levels", ADMIN, "",
                    json_pack("{s:o,s:i,s:i,s:{s:i}}", "users", users, "state_default", 50,
                              "invite", 0, "events", "m.room.name", 50));
    }
    if (kind < 98) {
        user(t, sizeof t, "guest", i);
        return make(b, "m.room.member", u, t, json_pack("{s:s}", "membership", "invite"));
    }
    *allowed = false;
    user(t, sizeof t, "stranger", i);
    return make(b, "m.room.message", t, NULL, json_pack("{s:s}", "body", "spam"));
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double run(const char *ver, int runs) {
    bench b = {.v = room_version_get(ver)};
    size_t n_owned = 0;
    room_event **owned = calloc(MEMBERS + 16, sizeof *owned);
    state s = {.mask = 8191};
    s.slot = calloc(s.mask + 1, sizeof *s.slot);
    build_state(&b, &s, owned, &n_owned);
    room_event **evs = malloc(EVENTS * sizeof *evs);
    bool *want = malloc(EVENTS);
    for (int i = 0; i < EVENTS; i++) evs[i] = mix_event(&b, i, &want[i]);
    double best = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        for (int i = 0; i < EVENTS; i++) {
            hs_err err;
            bool ok = room_auth_check(evs[i], lookup, &s, &err) == 0;
            if (ok != want[i]) {
                fprintf(stderr, "bench: event %d %s: got %s (%s)\n", i, evs[i]->type,
                        ok ? "allowed" : "rejected", ok ? "" : err.msg);
                exit(1);
            }
        }
        double rate = EVENTS / (now() - t0);
        if (rate > best) best = rate;
    }
    for (int i = 0; i < EVENTS; i++) room_event_free(evs[i]);
    for (size_t i = 0; i < n_owned; i++) room_event_free(owned[i]);
    free(evs);
    free(want);
    free(owned);
    free(s.slot);
    return best;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1) runs = 1;
    const char *vers[] = {"10", "12"};
    for (int i = 0; i < 2; i++)
        printf("room version %s: %.0f auth checks/s (best of %d runs of %d events)\n", vers[i],
               run(vers[i], runs), runs, EVENTS);
    return 0;
}
