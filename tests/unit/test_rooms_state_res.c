/* test_rooms_state_res.c — state resolution v1, v2 and v2.1.
 *
 * The v2 scenarios are the ones Synapse (tests/state/test_v2.py), Ruma and
 * Dendrite test against: a room's DAG is played forward event by event, the
 * state before each event being the resolution of the states after its
 * prev_events and its auth_events being picked from that state, and the
 * state at END is compared with the expected one. The v2.1 cases are
 * Synapse's test_v21.py and MSC4297's problems A and B (Ruma's fixtures),
 * each also run under v2 to show the state reset v2.1 exists to prevent.
 * The v1 cases are Synapse's tests/test_state.py branches. */
#include <check.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms/auth.h"
#include "rooms/state_res.h"

#define ALICE "@alice:example.com"
#define BOB "@bob:example.com"
#define CHARLIE "@charlie:example.com"
#define EVELYN "@evelyn:example.com"
#define ZARA "@zara:example.com"

#define T_MAX 64

/* ---- a room in memory --------------------------------------------------- */

typedef struct t_room {
    const room_version *v;
    const char *room_id; /* v1–11; v12 derives it from the create event */
    room_event *ev[T_MAX];
    size_t n;
    long long ts;
    int fetches;
    const char *fail_on; /* fetching this ID fails like a dead database */
    /* What the prefetch hook was told, and fetches it was not told about. */
    char *prefetched[512];
    size_t n_prefetched;
    int prefetch_calls, cold_fetches;
} t_room;

static void t_room_init(t_room *r, const char *version, const char *room_id) {
    memset(r, 0, sizeof *r);
    r->v = room_version_get(version);
    ck_assert_ptr_nonnull(r->v);
    r->room_id = room_id;
}

static void t_room_free(t_room *r) {
    for (size_t i = 0; i < r->n; i++) room_event_free(r->ev[i]);
    for (size_t i = 0; i < r->n_prefetched; i++) free(r->prefetched[i]);
    r->n = r->n_prefetched = 0;
}

static bool t_was_prefetched(const t_room *r, const char *id) {
    for (size_t i = 0; i < r->n_prefetched; i++)
        if (strcmp(r->prefetched[i], id) == 0) return true;
    return false;
}

static int t_prefetch(void *ctx, const char *const *ids, size_t n, hs_err *err) {
    t_room *r = ctx;
    r->prefetch_calls++;
    for (size_t i = 0; i < n; i++) {
        if (r->fail_on && strcmp(r->fail_on, ids[i]) == 0)
            return hs_err_set(err, 503, "M_UNKNOWN", "database unavailable");
        ck_assert_msg(!t_was_prefetched(r, ids[i]), "%s prefetched twice", ids[i]);
        ck_assert_uint_lt(r->n_prefetched, 512);
        r->prefetched[r->n_prefetched++] = strdup(ids[i]);
    }
    return 0;
}

static room_event *t_find(const t_room *r, const char *id) {
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->ev[i]->event_id, id) == 0) return r->ev[i];
    return NULL;
}

static int t_fetch(void *ctx, const char *id, const room_event **ev, hs_err *err) {
    t_room *r = ctx;
    r->fetches++;
    if (r->fail_on && strcmp(r->fail_on, id) == 0)
        return hs_err_set(err, 503, "M_UNKNOWN", "database unavailable");
    if (r->prefetch_calls && !t_was_prefetched(r, id)) r->cold_fetches++;
    *ev = t_find(r, id);
    return 0;
}

static json_t *t_id_list(const room_version *v, const char *const *ids) {
    json_t *a = json_array();
    for (size_t i = 0; ids && ids[i]; i++) {
        json_t *ref = json_string(ids[i]);
        if (v->event_format == ROOM_EVFMT_V1)
            ref = json_pack("[o,{s:s}]", ref, "sha256", "aGFzaA");
        json_array_append_new(a, ref);
    }
    return a;
}

static const char **t_collect(const room_version *v, const json_t *list, size_t *n) {
    *n = json_array_size(list);
    const char **ids = calloc(*n + 1, sizeof *ids);
    for (size_t i = 0; i < *n; i++) {
        json_t *ref = json_array_get(list, i);
        if (v->event_format == ROOM_EVFMT_V1) ref = json_array_get(ref, 0);
        ids[i] = json_string_value(ref);
    }
    return ids;
}

/* The skeleton of a PDU: enough for the auth events selection. */
static json_t *t_skeleton(const char *type, const char *state_key,
                          const char *sender, const char *content) {
    json_error_t jerr;
    json_t *c = json_loads(content ? content : "{}", 0, &jerr);
    ck_assert_msg(c != NULL, "bad test content %s", content);
    json_t *j = json_pack("{s:s,s:s,s:o}", "type", type, "sender", sender, "content", c);
    if (state_key) json_object_set_new(j, "state_key", json_string(state_key));
    return j;
}

/* Add an event as a room_event_parse would give it, with the auth and prev
 * events named (NULL-terminated lists of event IDs). depth 0: one more than
 * the deepest prev event. */
static room_event *t_add(t_room *r, const char *id, const char *type, const char *state_key,
                         const char *sender, const char *content, const char *const *auth,
                         const char *const *prev, long long depth) {
    ck_assert_uint_lt(r->n, T_MAX);
    const room_version *v = r->v;
    bool hydra_create = v->hydra && strcmp(type, "m.room.create") == 0;
    if (depth == 0) {
        long long deepest = 0;
        for (size_t i = 0; prev && prev[i]; i++) {
            const room_event *p = t_find(r, prev[i]);
            if (p && p->depth > deepest) deepest = p->depth;
        }
        depth = deepest + 1;
    }
    json_t *j = t_skeleton(type, state_key, sender, content);
    if (v->event_format == ROOM_EVFMT_V1) json_object_set_new(j, "event_id", json_string(id));
    if (!hydra_create) json_object_set_new(j, "room_id", json_string(r->room_id));
    json_object_set_new(j, "depth", json_integer(depth));
    json_object_set_new(j, "origin_server_ts", json_integer(r->ts++));
    json_object_set_new(j, "auth_events", t_id_list(v, auth));
    json_object_set_new(j, "prev_events", t_id_list(v, prev));
    json_object_set_new(j, "hashes", json_pack("{s:s}", "sha256", "aGFzaA"));
    json_object_set_new(j, "signatures", json_object());

    room_event *e = calloc(1, sizeof *e);
    e->json = j;
    e->ver = v;
    e->event_id = strdup(id);
    e->type = json_string_value(json_object_get(j, "type"));
    e->sender = json_string_value(json_object_get(j, "sender"));
    e->state_key = json_string_value(json_object_get(j, "state_key"));
    e->content = json_object_get(j, "content");
    if (strcmp(type, "m.room.member") == 0)
        e->membership = json_string_value(json_object_get(e->content, "membership"));
    e->depth = depth;
    e->origin_server_ts = json_integer_value(json_object_get(j, "origin_server_ts"));
    e->auth_events = t_collect(v, json_object_get(j, "auth_events"), &e->n_auth);
    e->prev_events = t_collect(v, json_object_get(j, "prev_events"), &e->n_prev);
    if (hydra_create) {
        /* v12: the room ID is the create event's ID with "!" for "$". */
        e->owned_room_id = strdup(id);
        e->owned_room_id[0] = '!';
        e->room_id = e->owned_room_id;
        r->room_id = e->owned_room_id;
    } else {
        e->room_id = json_string_value(json_object_get(j, "room_id"));
    }
    r->ev[r->n++] = e;
    return e;
}

/* ---- state maps ---------------------------------------------------------- */

/* A state map of the events named (NULL-terminated). */
static room_state_map *t_state(const t_room *r, const char *const *ids) {
    room_state_map *m = room_state_map_new();
    for (size_t i = 0; ids[i]; i++) {
        const room_event *e = t_find(r, ids[i]);
        ck_assert_msg(e && e->state_key, "no state event %s", ids[i]);
        ck_assert_int_eq(room_state_map_set(m, e->type, e->state_key, e->event_id), 0);
    }
    return m;
}

static char *t_dump(const room_state_map *m) {
    static char buf[4096];
    size_t it = 0, off = 0;
    const char *t, *k, *id;
    buf[0] = '\0';
    while (room_state_map_next(m, &it, &t, &k, &id) && off < sizeof buf - 200)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "\n  (%s, %s) -> %s", t, k, id);
    return buf;
}

static void t_assert_state(const room_state_map *got, const room_state_map *want) {
    if (room_state_map_equal(got, want)) return;
    char g[4096];
    snprintf(g, sizeof g, "%s", t_dump(got));
    ck_abort_msg("resolved state differs.\ngot:%s\nwant:%s", g, t_dump(want));
}

static room_state_map *t_resolve(t_room *r, room_state_map **states, size_t n) {
    room_state_map *out = room_state_map_new();
    hs_err err = {0};
    int rc = room_state_resolve(r->v, (const room_state_map *const *)states, n, t_fetch, r, out,
                                &err);
    ck_assert_msg(rc == 0, "resolution failed: %s", err.msg);
    return out;
}

/* Resolve states in the given order and reversed: the result must not
 * depend on the order of the forks. */
static room_state_map *t_resolve_both(t_room *r, room_state_map **states, size_t n) {
    room_state_map *out = t_resolve(r, states, n);
    room_state_map *rev[T_MAX];
    ck_assert_uint_le(n, T_MAX);
    for (size_t i = 0; i < n; i++) rev[i] = states[n - 1 - i];
    room_state_map *out2 = t_resolve(r, rev, n);
    t_assert_state(out2, out);
    room_state_map_free(out2);
    return out;
}

/* ---- playing a DAG forward (Synapse's do_check) --------------------------- */

typedef struct t_node {
    const char *name, *type, *state_key, *sender, *content;
    long long depth; /* 0: from the prev events */
} t_node;

typedef struct t_sim {
    t_room room;
    const t_node *node[T_MAX];
    size_t n;
    bool prev[T_MAX][T_MAX]; /* prev[a][b]: b is a prev event of a */
    room_state_map *after[T_MAX];
    char id[T_MAX][80];
} t_sim;

static size_t sim_index(const t_sim *s, const char *name) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->node[i]->name, name) == 0) return i;
    ck_abort_msg("no node %s", name);
    return 0;
}

static void sim_nodes(t_sim *s, const t_node *nodes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_lt(s->n, T_MAX);
        snprintf(s->id[s->n], sizeof s->id[0], "$%s:example.com", nodes[i].name);
        s->node[s->n++] = &nodes[i];
    }
}

/* {"A", "B", "C", NULL}: B is a prev event of A, C of B. */
static void sim_chain(t_sim *s, const char *const *names) {
    for (size_t i = 0; names[i] && names[i + 1]; i++)
        s->prev[sim_index(s, names[i])][sim_index(s, names[i + 1])] = true;
}

/* The next event to play: of those whose prev events are all played, the
 * smallest name (Synapse plays them in this order, which fixes the
 * origin_server_ts tie-breaks). */
static size_t sim_next(const t_sim *s, const bool *done) {
    size_t pick = SIZE_MAX;
    for (size_t i = 0; i < s->n; i++) {
        bool ready = !done[i];
        for (size_t j = 0; ready && j < s->n; j++) ready = !s->prev[i][j] || done[j];
        if (ready && (pick == SIZE_MAX || strcmp(s->node[i]->name, s->node[pick]->name) < 0))
            pick = i;
    }
    ck_assert_msg(pick != SIZE_MAX, "the scenario's graph has a cycle");
    return pick;
}

/* Play node i: resolve the state before it, cite auth events from it. */
static void sim_play(t_sim *s, size_t i) {
    const t_node *nd = s->node[i];
    room_state_map *states[T_MAX];
    const char *prev_ids[T_MAX + 1];
    size_t np = 0;
    for (size_t j = 0; j < s->n; j++)
        if (s->prev[i][j]) states[np] = s->after[j], prev_ids[np++] = s->id[j];
    prev_ids[np] = NULL;
    room_state_map *before = np == 0   ? room_state_map_new()
                             : np == 1 ? room_state_map_copy(states[0])
                                       : t_resolve_both(&s->room, states, np);
    json_t *sk = t_skeleton(nd->type, nd->state_key, nd->sender, nd->content);
    room_state_key keys[16];
    size_t nk = room_auth_types_for_event(s->room.v, sk, keys, 16);
    const char *auth[17];
    size_t na = 0;
    for (size_t k = 0; k < nk; k++) {
        const char *id = room_state_map_get(before, keys[k].type, keys[k].state_key);
        if (id) auth[na++] = id;
    }
    auth[na] = NULL;
    t_add(&s->room, s->id[i], nd->type, nd->state_key, nd->sender, nd->content, auth, prev_ids,
          nd->depth);
    json_decref(sk);
    if (nd->state_key) room_state_map_set(before, nd->type, nd->state_key, s->id[i]);
    s->after[i] = before;
}

static void sim_run(t_sim *s) {
    bool done[T_MAX] = {0};
    for (size_t step = 0; step < s->n; step++) {
        size_t i = sim_next(s, done);
        sim_play(s, i);
        done[i] = true;
    }
}

static void sim_free(t_sim *s) {
    for (size_t i = 0; i < s->n; i++) room_state_map_free(s->after[i]);
    t_room_free(&s->room);
}

/* The state after `end`, less the keys unchanged since `start`, must be
 * exactly the expected events (Synapse's comparison). */
static void sim_check(t_sim *s, const char *start, const char *end, const char *const *expected) {
    room_state_map *want = room_state_map_new(), *got = room_state_map_new();
    for (size_t i = 0; expected[i]; i++) {
        const t_node *nd = s->node[sim_index(s, expected[i])];
        room_state_map_set(want, nd->type, nd->state_key, s->id[sim_index(s, expected[i])]);
    }
    const room_state_map *st = s->after[sim_index(s, start)], *en = s->after[sim_index(s, end)];
    size_t it = 0;
    const char *t, *k, *id;
    while (room_state_map_next(en, &it, &t, &k, &id)) {
        const char *was = room_state_map_get(st, t, k);
        if (room_state_map_get(want, t, k) || !was || strcmp(was, id) != 0)
            room_state_map_set(got, t, k, id);
    }
    t_assert_state(got, want);
    room_state_map_free(want);
    room_state_map_free(got);
}

/* ---- the v2 scenarios ------------------------------------------------------ */

#define JOIN "{\"membership\":\"join\"}"
#define BAN "{\"membership\":\"ban\"}"

/* Every scenario starts from this room: Alice creates it and is admin, it is
 * public, Bob, Charlie and Zara join. */
static const t_node initial_events[] = {
    {"CREATE", "m.room.create", "", ALICE, "{\"creator\":\"" ALICE "\"}", 0},
    {"IMA", "m.room.member", ALICE, ALICE, JOIN, 0},
    {"IPOWER", "m.room.power_levels", "", ALICE, "{\"users\":{\"" ALICE "\":100}}", 0},
    {"IJR", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"public\"}", 0},
    {"IMB", "m.room.member", BOB, BOB, JOIN, 0},
    {"IMC", "m.room.member", CHARLIE, CHARLIE, JOIN, 0},
    {"IMZ", "m.room.member", ZARA, ZARA, JOIN, 0},
    {"START", "m.room.message", NULL, ZARA, "{}", 0},
    {"END", "m.room.message", NULL, ZARA, "{}", 0},
};
static const char *const initial_edges[] = {"START", "IMZ",    "IMC", "IMB", "IJR",
                                            "IPOWER", "IMA", "CREATE", NULL};

#define PL2(a, b) "{\"users\":{\"" ALICE "\":" #a ",\"" BOB "\":" #b "}}"
#define TOPIC(name, who) {name, "m.room.topic", "", who, "{}", 0}

/* Play initial + scenario events with the chains given (NULL-separated,
 * NULL-NULL-terminated) in room version `version`, and compare END. */
static void run_scenario(const char *version, const t_node *events, size_t n,
                         const char *const *chains, const char *const *expected) {
    t_sim s;
    memset(&s, 0, sizeof s);
    t_room_init(&s.room, version, "!test:example.com");
    sim_nodes(&s, initial_events, sizeof initial_events / sizeof initial_events[0]);
    sim_nodes(&s, events, n);
    sim_chain(&s, initial_edges);
    for (const char *const *c = chains; *c; c += 1) {
        sim_chain(&s, c);
        while (*c) c++;
    }
    sim_run(&s);
    sim_check(&s, "START", "END", expected);
    sim_free(&s);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A ban and a concurrent power levels change by the banned user: the ban
 * wins, and so does the power levels event it was based on. */
START_TEST(ban_vs_power_levels) {
    static const t_node ev[] = {
        {"PA", "m.room.power_levels", "", ALICE, PL2(100, 50), 0},
        {"MA", "m.room.member", ALICE, ALICE, JOIN, 0},
        {"MB", "m.room.member", BOB, ALICE, BAN, 0},
        {"PB", "m.room.power_levels", "", BOB, PL2(100, 50), 0},
    };
    static const char *const chains[] = {"END", "MB", "MA", "PA", "START", NULL,
                                         "END", "PB", "PA", NULL, NULL};
    static const char *const want[] = {"PA", "MA", "MB", NULL};
    run_scenario("2", ev, N(ev), chains, want);
}
END_TEST

/* Evelyn joins while the room turns private behind her: the join rules win
 * and her join, not allowed by them, is dropped. */
START_TEST(join_rule_evasion) {
    static const t_node ev[] = {
        {"JR", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"private\"}", 0},
        {"ME", "m.room.member", EVELYN, EVELYN, JOIN, 0},
    };
    static const char *const chains[] = {"END", "JR", "START", NULL,
                                         "END", "ME", "START", NULL, NULL};
    static const char *const want[] = {"JR", NULL};
    run_scenario("2", ev, N(ev), chains, want);
}
END_TEST

/* Charlie, promoted by Bob, demotes himself on one fork; the other fork
 * never saw the promotion. The latest valid chain wins. */
START_TEST(offtopic_power_levels) {
    static const t_node ev[] = {
        {"PA", "m.room.power_levels", "", ALICE, PL2(100, 50), 0},
        {"PB", "m.room.power_levels", "", BOB,
         "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50,\"" CHARLIE "\":50}}", 0},
        {"PC", "m.room.power_levels", "", CHARLIE,
         "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50,\"" CHARLIE "\":0}}", 0},
    };
    static const char *const chains[] = {"END", "PC", "PB", "PA", "START", NULL,
                                         "END", "PA", NULL, NULL};
    static const char *const want[] = {"PC", NULL};
    run_scenario("2", ev, N(ev), chains, want);
}
END_TEST

/* Alice demotes Bob while Bob, on his fork, re-asserts his level and sets a
 * topic: Alice's power levels win and Bob's topic goes with his power. */
START_TEST(topic_basic) {
    static const t_node ev[] = {
        TOPIC("T1", ALICE),
        {"PA1", "m.room.power_levels", "", ALICE, PL2(100, 50), 0},
        TOPIC("T2", ALICE),
        {"PA2", "m.room.power_levels", "", ALICE, PL2(100, 0), 0},
        {"PB", "m.room.power_levels", "", BOB, PL2(100, 50), 0},
        TOPIC("T3", BOB),
    };
    static const char *const chains[] = {"END", "PA2", "T2", "PA1", "T1", "START", NULL,
                                         "END", "T3", "PB", "PA1", NULL, NULL};
    static const char *const want[] = {"PA2", "T2", NULL};
    run_scenario("2", ev, N(ev), chains, want);
}
END_TEST

/* Bob sets a topic and is banned; a fork from before all that must not
 * bring his topic back: the ban wins and the topic resets to T1. */
START_TEST(topic_reset) {
    static const t_node ev[] = {
        TOPIC("T1", ALICE),
        {"PA", "m.room.power_levels", "", ALICE, PL2(100, 50), 0},
        TOPIC("T2", BOB),
        {"MB", "m.room.member", BOB, ALICE, BAN, 0},
    };
    static const char *const chains[] = {"END", "MB", "T2", "PA", "T1", "START", NULL,
                                         "END", "T1", NULL, NULL};
    static const char *const want[] = {"T1", "MB", "PA", NULL};
    run_scenario("2", ev, N(ev), chains, want);
}
END_TEST

/* topic_basic with a merge in the middle (MZ1) and a later topic by Alice. */
START_TEST(topic) {
    static const t_node ev[] = {
        TOPIC("T1", ALICE),
        {"PA1", "m.room.power_levels", "", ALICE, PL2(100, 50), 0},
        TOPIC("T2", ALICE),
        {"PA2", "m.room.power_levels", "", ALICE, PL2(100, 0), 0},
        {"PB", "m.room.power_levels", "", BOB, PL2(100, 50), 0},
        TOPIC("T3", BOB),
        {"MZ1", "m.room.message", NULL, ZARA, "{}", 0},
        TOPIC("T4", ALICE),
    };
    static const char *const chains[] = {"END", "T4", "MZ1", "PA2", "T2", "PA1", "T1", "START",
                                         NULL, "END", "MZ1", "T3", "PB", "PA1", NULL, NULL};
    static const char *const want[] = {"T4", "PA2", NULL};
    run_scenario("2", ev, N(ev), chains, want);
}
END_TEST

/* T3 is based on the newer power levels (PA2) than T4 (PB, off the
 * mainline), so T3 is applied last and wins although T4 was sent later. */
START_TEST(mainline_sort) {
    static const t_node ev[] = {
        TOPIC("T1", ALICE),
        {"PA1", "m.room.power_levels", "", ALICE, PL2(100, 50), 0},
        TOPIC("T2", ALICE),
        {"PA2", "m.room.power_levels", "", ALICE,
         "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50},\"events\":{\"m.room.power_levels\":100}}",
         0},
        {"PB", "m.room.power_levels", "", BOB, PL2(100, 50), 0},
        TOPIC("T3", BOB),
        TOPIC("T4", ALICE),
    };
    static const char *const chains[] = {"END", "T3", "PA2", "T2", "PA1", "T1", "START", NULL,
                                         "END", "T4", "PB", "PA1", NULL, NULL};
    static const char *const want[] = {"T3", "PA2", NULL};
    run_scenario("2", ev, N(ev), chains, want);
}
END_TEST

/* ---- v2.1: the state resets it fixes --------------------------------------- */

/* A PDU of a fixture. v12 leaves the create event out of auth_events; for
 * room version 11 it is prepended, and content11 (if any) replaces content
 * (v12 creators need no power levels entry). */
typedef struct t_pdu {
    const char *id, *type, *state_key, *sender, *content, *content11;
    long long ts;
    const char *auth[6];
} t_pdu;

/* Each PDU's prev event is the one before it in the table, as in Ruma's
 * fixtures; it matters to the auth rules only for the creator's first
 * join, which must follow the create event. */
static void t_add_pdus(t_room *r, const t_pdu *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *prev[2] = {i ? p[i - 1].id : NULL, NULL};
        const char *auth[8];
        size_t na = 0;
        if (!r->v->hydra && strcmp(p[i].type, "m.room.create") != 0) auth[na++] = p[0].id;
        for (size_t k = 0; p[i].auth[k]; k++) auth[na++] = p[i].auth[k];
        auth[na] = NULL;
        r->ts = p[i].ts;
        const char *content = !r->v->hydra && p[i].content11 ? p[i].content11 : p[i].content;
        t_add(r, p[i].id, p[i].type, p[i].state_key, p[i].sender, content, auth, prev,
              (long long)i + 1);
    }
}

/* Resolve the states (each a NULL-terminated list of event IDs, the list of
 * them NULL-terminated) in room `version` and compare with want. */
static void t_check(const char *version, const t_pdu *p, size_t n,
                    const char *const *const *states, const char *const *want) {
    t_room r;
    t_room_init(&r, version, "!room:example.com");
    t_add_pdus(&r, p, n);
    room_state_map *maps[8];
    size_t ns = 0;
    for (; states[ns]; ns++) maps[ns] = t_state(&r, states[ns]);
    room_state_map *got = t_resolve_both(&r, maps, ns), *exp = t_state(&r, want);
    t_assert_state(got, exp);
    for (size_t i = 0; i < ns; i++) room_state_map_free(maps[i]);
    room_state_map_free(got);
    room_state_map_free(exp);
    t_room_free(&r);
}

#define CREATE12 "{\"room_version\":\"12\"}"
#define CREATE11 "{\"room_version\":\"11\"}"
#define C "$00-m-room-create"
#define MA "$00-m-room-member-join-alice"
#define P0 "$00-m-room-power_levels"
#define JR0 "$00-m-room-join_rules"
#define MB "$00-m-room-member-join-bob"
#define MC "$00-m-room-member-join-charlie"

/* MSC4297 problem A: Alice makes the room invite-only and leaves; Bob and
 * Charlie rename on forks that each miss one of the newer join rules'
 * supporting events. v2 loses the join rules altogether (they are
 * conflicted, and Alice's unconflicted leave makes them fail the replay);
 * v2.1 replays from the auth events and keeps them. */
static const t_pdu problem_a[] = {
    {C, "m.room.create", "", ALICE, CREATE12, CREATE11, 0, {NULL}},
    {MA, "m.room.member", ALICE, ALICE, "{\"displayname\":\"alice\",\"membership\":\"join\"}", NULL,
     1, {NULL}},
    {P0, "m.room.power_levels", "", ALICE, "{}", "{\"users\":{\"" ALICE "\":100}}", 2, {MA}},
    {JR0, "m.room.join_rules", "", ALICE, "{\"join_rule\":\"public\"}", NULL, 3, {MA, P0}},
    {MB, "m.room.member", BOB, BOB, "{\"displayname\":\"bob\",\"membership\":\"join\"}", NULL, 4,
     {P0, JR0}},
    {MC, "m.room.member", CHARLIE, CHARLIE, "{\"displayname\":\"charlie\",\"membership\":\"join\"}",
     NULL, 5, {P0, JR0}},
    {"$01-m-room-join_rules", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"invite\"}", NULL, 6,
     {P0, MA}},
    {"$01-m-room-member-leave-alice", "m.room.member", ALICE, ALICE,
     "{\"displayname\":\"alice\",\"membership\":\"leave\"}", NULL, 7, {P0, MA}},
    {"$01-m-room-member-change-display-name-bob", "m.room.member", BOB, BOB,
     "{\"displayname\":\"bob++\",\"membership\":\"join\"}", NULL, 8,
     {P0, MB, "$01-m-room-join_rules"}},
    {"$01-m-room-member-change-display-name-charlie", "m.room.member", CHARLIE, CHARLIE,
     "{\"displayname\":\"charlie++\",\"membership\":\"join\"}", NULL, 9,
     {P0, MC, "$01-m-room-join_rules"}},
};
static const char *const problem_a_bob[] = {C, P0, MC, "$01-m-room-join_rules",
                                            "$01-m-room-member-leave-alice",
                                            "$01-m-room-member-change-display-name-bob", NULL};
static const char *const problem_a_charlie[] = {
    C, P0, JR0, MB, "$01-m-room-member-leave-alice",
    "$01-m-room-member-change-display-name-charlie", NULL};
static const char *const *const problem_a_states[] = {problem_a_bob, problem_a_charlie, NULL};

START_TEST(msc4297_problem_a_v2_1) {
    static const char *const want[] = {C, P0, "$01-m-room-join_rules",
                                       "$01-m-room-member-leave-alice",
                                       "$01-m-room-member-change-display-name-bob",
                                       "$01-m-room-member-change-display-name-charlie", NULL};
    t_check("12", problem_a, N(problem_a), problem_a_states, want);
}
END_TEST

START_TEST(msc4297_problem_a_v2_resets) {
    static const char *const want[] = {C, P0, "$01-m-room-member-leave-alice",
                                       "$01-m-room-member-change-display-name-bob",
                                       "$01-m-room-member-change-display-name-charlie", NULL};
    t_check("11", problem_a, N(problem_a), problem_a_states, want);
}
END_TEST

/* MSC4297 problem B: Eve's rename cites the newest power levels, but her
 * fork's state holds the oldest. v2 resets the power levels to P0; v2.1
 * replays the conflicted state subgraph (P1, P2) and keeps P2. */
static const t_pdu problem_b[] = {
    {C, "m.room.create", "", ALICE, CREATE12, CREATE11, 0, {NULL}},
    {MA, "m.room.member", ALICE, ALICE, "{\"displayname\":\"alice\",\"membership\":\"join\"}", NULL,
     1, {NULL}},
    {P0, "m.room.power_levels", "", ALICE, "{}", "{\"users\":{\"" ALICE "\":100}}", 2, {MA}},
    {JR0, "m.room.join_rules", "", ALICE, "{\"join_rule\":\"public\"}", NULL, 3, {MA, P0}},
    {MB, "m.room.member", BOB, BOB, "{\"displayname\":\"bob\",\"membership\":\"join\"}", NULL, 4,
     {P0, JR0}},
    {MC, "m.room.member", CHARLIE, CHARLIE, "{\"displayname\":\"charlie\",\"membership\":\"join\"}",
     NULL, 5, {P0, JR0}},
    {"$01-m-room-power_levels", "m.room.power_levels", "", ALICE, "{\"users\":{\"" BOB "\":50}}",
     "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50}}", 6, {P0, MA}},
    {"$02-m-room-power_levels", "m.room.power_levels", "", BOB,
     "{\"users\":{\"" BOB "\":50,\"" CHARLIE "\":50}}",
     "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50,\"" CHARLIE "\":50}}", 7,
     {"$01-m-room-power_levels", MB}},
    {"$00-m-room-member-join-zara", "m.room.member", ZARA, ZARA,
     "{\"displayname\":\"zara\",\"membership\":\"join\"}", NULL, 8,
     {"$02-m-room-power_levels", JR0}},
    {"$00-m-room-member-join-eve", "m.room.member", "@eve:example.com", "@eve:example.com",
     "{\"displayname\":\"eve\",\"membership\":\"join\"}", NULL, 9,
     {"$02-m-room-power_levels", JR0}},
    {"$01-m-room-member-change-display-name-eve", "m.room.member", "@eve:example.com",
     "@eve:example.com", "{\"displayname\":\"eve++\",\"membership\":\"join\"}", NULL, 9,
     {"$02-m-room-power_levels", "$00-m-room-member-join-eve", JR0}},
};
static const char *const problem_b_eve[] = {
    C, MA, P0, JR0, MB, MC, "$01-m-room-member-change-display-name-eve", NULL};
static const char *const problem_b_zara[] = {
    C, MA, JR0, MB, MC, "$02-m-room-power_levels", "$00-m-room-member-join-zara", NULL};
static const char *const *const problem_b_states[] = {problem_b_eve, problem_b_zara, NULL};

START_TEST(msc4297_problem_b_v2_1) {
    static const char *const want[] = {C, MA, JR0, MB, MC, "$02-m-room-power_levels",
                                       "$00-m-room-member-join-zara",
                                       "$01-m-room-member-change-display-name-eve", NULL};
    t_check("12", problem_b, N(problem_b), problem_b_states, want);
}
END_TEST

START_TEST(msc4297_problem_b_v2_resets) {
    static const char *const want[] = {C, MA, JR0, MB, MC, P0, "$00-m-room-member-join-zara",
                                       "$01-m-room-member-change-display-name-eve", NULL};
    t_check("11", problem_b, N(problem_b), problem_b_states, want);
}
END_TEST

/* Synapse's test_state_reset_replay_conflicted_subgraph: Eve's rename (E10)
 * cites the old power levels but, through her join, the new ones; the
 * dodgy fork carries the old ones. Eve's rename is replayed in the old
 * epoch, her join in the new one, which therefore wins. */
START_TEST(replay_conflicted_subgraph) {
    static const t_pdu ev[] = {
        {"$e1", "m.room.create", "", ALICE, "{\"creator\":\"" ALICE "\"}", NULL, 1, {NULL}},
        {"$e2", "m.room.member", ALICE, ALICE, JOIN, NULL, 2, {NULL}},
        {"$e3", "m.room.power_levels", "", ALICE, "{\"users\":{}}", NULL, 3, {"$e2"}},
        {"$e4", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"public\"}", NULL, 4,
         {"$e2", "$e3"}},
        {"$e5", "m.room.member", BOB, BOB, JOIN, NULL, 5, {"$e3", "$e4"}},
        {"$e6", "m.room.member", CHARLIE, CHARLIE, JOIN, NULL, 6, {"$e3", "$e4"}},
        {"$e7", "m.room.power_levels", "", ALICE, "{\"users\":{\"" BOB "\":50}}", NULL, 7,
         {"$e2", "$e3"}},
        {"$e8", "m.room.power_levels", "", BOB,
         "{\"users\":{\"" BOB "\":50,\"" CHARLIE "\":50}}", NULL, 8, {"$e5", "$e7"}},
        {"$e9", "m.room.member", EVELYN, EVELYN, JOIN, NULL, 9, {"$e8", "$e4"}},
        {"$e10", "m.room.member", EVELYN, EVELYN, JOIN, NULL, 10, {"$e3", "$e4", "$e9"}},
        {"$e11", "m.room.member", ZARA, ZARA, JOIN, NULL, 11, {"$e8", "$e4"}},
    };
    static const char *const dodgy[] = {"$e1", "$e2", "$e5", "$e6", "$e10", "$e3", "$e4", NULL};
    static const char *const sensible[] = {"$e1", "$e2", "$e5", "$e6", "$e11", "$e8", "$e4", NULL};
    static const char *const *const states[] = {dodgy, sensible, NULL};
    static const char *const want[] = {"$e1", "$e2", "$e5", "$e6", "$e9", "$e11", "$e8", "$e4",
                                       NULL};
    t_check("12", ev, N(ev), states, want);
}
END_TEST

/* Synapse's test_state_reset_start_empty_set: a fork with stale join rules
 * whose sender (Alice) has since left must not erase the newer ones. */
START_TEST(start_empty_set) {
    static const t_pdu ev[] = {
        {"$e1", "m.room.create", "", ALICE, "{\"creator\":\"" ALICE "\"}", NULL, 1, {NULL}},
        {"$e2", "m.room.member", ALICE, ALICE, JOIN, NULL, 2, {NULL}},
        {"$e3", "m.room.power_levels", "", ALICE, "{\"users\":{\"" BOB "\":100}}", NULL, 3,
         {"$e2"}},
        {"$e4", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"public\"}", NULL, 4,
         {"$e2", "$e3"}},
        {"$e5", "m.room.member", BOB, BOB, JOIN, NULL, 5, {"$e3", "$e4"}},
        {"$e6", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"invite\"}", NULL, 6,
         {"$e2", "$e3"}},
        {"$e7", "m.room.member", ALICE, ALICE, "{\"membership\":\"leave\"}", NULL, 7,
         {"$e3", "$e2"}},
    };
    static const char *const correct[] = {"$e1", "$e7", "$e5", "$e3", "$e6", NULL};
    static const char *const incorrect[] = {"$e1", "$e7", "$e5", "$e3", "$e4", NULL};
    static const char *const *const states[] = {correct, incorrect, NULL};
    static const char *const want[] = {"$e1", "$e7", "$e5", "$e3", "$e6", NULL};
    t_check("12", ev, N(ev), states, want);
}
END_TEST

/* ---- Ruma's fixtures, each PDU its own state map ---------------------------- */

/* Ruma resolves its fixtures "atomically": every PDU alone in a state map,
 * all of them at once, which must give the state of the whole history.
 * The rooms are version 10 and start from this public chat (the create
 * event is prepended to every auth list by t_add_pdus). */
#define P1 "$01-m-room-power_levels"
#define RUMA_BOOTSTRAP                                                                             \
    {C, "m.room.create", "", ALICE, "{\"creator\":\"" ALICE "\",\"room_version\":\"10\"}", NULL,  \
     0, {NULL}},                                                                                   \
        {MA, "m.room.member", ALICE, ALICE, "{\"displayname\":\"alice\",\"membership\":\"join\"}",  \
         NULL, 1, {NULL}},                                                                         \
        {P0, "m.room.power_levels", "", ALICE, "{\"users\":{\"" ALICE "\":100}}", NULL, 2, {MA}},  \
        {JR0, "m.room.join_rules", "", ALICE, "{\"join_rule\":\"public\"}", NULL, 3, {MA, P0}},    \
        {"$00-m-room-history_visibility", "m.room.history_visibility", "", ALICE,                  \
         "{\"history_visibility\":\"shared\"}", NULL, 4, {MA, P0}},                                \
        {"$00-m-room-guest_access", "m.room.guest_access", "", ALICE,                              \
         "{\"guest_access\":\"forbidden\"}", NULL, 5, {MA, P0}},                                   \
        {MB, "m.room.member", BOB, BOB, "{\"displayname\":\"bob\",\"membership\":\"join\"}", NULL,  \
         6, {P0, JR0}},                                                                            \
        {P1, "m.room.power_levels", "", ALICE,                                                     \
         "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50}}", NULL, 7, {P0, MA}}
#define RUMA_BASE C, MA, JR0, "$00-m-room-history_visibility", "$00-m-room-guest_access"
#define ELLA "@ella:example.com"

static void t_check_atomic(const t_pdu *p, size_t n, const char *const *want) {
    t_room r;
    t_room_init(&r, "10", "!room:example.com");
    t_add_pdus(&r, p, n);
    room_state_map *maps[T_MAX];
    for (size_t i = 0; i < n; i++) maps[i] = t_state(&r, (const char *[]){p[i].id, NULL});
    room_state_map *got = t_resolve_both(&r, maps, n), *exp = t_state(&r, want);
    t_assert_state(got, exp);
    for (size_t i = 0; i < n; i++) room_state_map_free(maps[i]);
    room_state_map_free(got);
    room_state_map_free(exp);
    t_room_free(&r);
}

START_TEST(ruma_minimal_public_chat) {
    static const t_pdu ev[] = {RUMA_BOOTSTRAP};
    static const char *const want[] = {RUMA_BASE, MB, P1, NULL};
    t_check_atomic(ev, N(ev), want);
}
END_TEST

/* Alice bans Bob while Bob changes the topic: the ban wins, Bob's topic
 * (sent when he was still a moderator) falls with it. */
START_TEST(ruma_topic_vs_ban) {
    static const t_pdu ev[] = {
        RUMA_BOOTSTRAP,
        {"$00-m-room-topic", "m.room.topic", "", ALICE, "{\"topic\":\"Room toppic\"}", NULL, 8,
         {P1, MA}},
        {"$00-m-room-member-ban-bob", "m.room.member", BOB, ALICE, BAN, NULL, 8, {P1, MA, MB}},
        {"$01-m-room-topic", "m.room.topic", "", BOB, "{\"topic\":\"Room managed by Bob\"}", NULL,
         8, {P1, MB}},
    };
    static const char *const want[] = {RUMA_BASE, "$00-m-room-member-ban-bob", P1,
                                       "$00-m-room-topic", NULL};
    t_check_atomic(ev, N(ev), want);
}
END_TEST

/* The room goes invite-only as Ella joins: the join rules win, Ella's join
 * does not pass them. */
START_TEST(ruma_join_rules_vs_join) {
    static const t_pdu ev[] = {
        RUMA_BOOTSTRAP,
        {"$02-m-room-power_levels", "m.room.power_levels", "", BOB,
         "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50}}", NULL, 8, {P1, MB}},
        {"$01-m-room-join_rules", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"invite\"}",
         NULL, 9, {"$02-m-room-power_levels", MA}},
        {"$00-m-room-member-join-ella", "m.room.member", ELLA, ELLA,
         "{\"displayname\":\"ella\",\"membership\":\"join\"}", NULL, 9,
         {"$02-m-room-power_levels", JR0}},
    };
    static const char *const want[] = {C, MA, MB, "$00-m-room-history_visibility",
                                       "$00-m-room-guest_access", "$01-m-room-join_rules",
                                       "$02-m-room-power_levels", NULL};
    t_check_atomic(ev, N(ev), want);
}
END_TEST

START_TEST(ruma_concurrent_joins) {
    static const t_pdu ev[] = {
        RUMA_BOOTSTRAP,
        {"$00-m-room-member-join-charlie", "m.room.member", CHARLIE, CHARLIE,
         "{\"displayname\":\"charlie\",\"membership\":\"join\"}", NULL, 8, {P1, JR0}},
        {"$00-m-room-member-join-ella", "m.room.member", ELLA, ELLA,
         "{\"displayname\":\"ella\",\"membership\":\"join\"}", NULL, 8, {P1, JR0}},
    };
    static const char *const want[] = {RUMA_BASE, MB, "$00-m-room-member-join-charlie",
                                       "$00-m-room-member-join-ella", P1, NULL};
    t_check_atomic(ev, N(ev), want);
}
END_TEST

/* Alice sets a topic and then demotes Bob, who concurrently sets his own
 * topic: the demotion wins and Alice's topic stands. */
START_TEST(ruma_topic_vs_power_levels) {
    static const t_pdu ev[] = {
        RUMA_BOOTSTRAP,
        {"$00-m-room-topic-alice", "m.room.topic", "", ALICE,
         "{\"topic\":\"Room managed by Alice\"}", NULL, 8, {P1, MA}},
        {"$02-m-room-power_levels-alice", "m.room.power_levels", "", ALICE,
         "{\"users\":{\"" ALICE "\":100,\"" BOB "\":0}}", NULL, 9, {P1, MA}},
        {"$01-m-room-topic-bob", "m.room.topic", "", BOB, "{\"topic\":\"Room topic\"}", NULL, 8,
         {P1, MB}},
    };
    static const char *const want[] = {RUMA_BASE, MB, "$02-m-room-power_levels-alice",
                                       "$00-m-room-topic-alice", NULL};
    t_check_atomic(ev, N(ev), want);
}
END_TEST

START_TEST(ruma_ban_vs_power_levels) {
    static const t_pdu ev[] = {
        RUMA_BOOTSTRAP,
        {"$00-m-room-member-ban-bob", "m.room.member", BOB, ALICE, BAN, NULL, 8, {P1, MA, MB}},
        {"$02-m-room-power_levels", "m.room.power_levels", "", BOB,
         "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50}}", NULL, 8, {P1, MB}},
    };
    static const char *const want[] = {RUMA_BASE, "$00-m-room-member-ban-bob", P1, NULL};
    t_check_atomic(ev, N(ev), want);
}
END_TEST

/* ---- v1 (Synapse's tests/test_state.py) ----------------------------------- */

#define U1 "@user_id:example.com"
#define U2 "@user_id_2:example.com"

static void sim_v1_init(t_sim *s, const t_node *nodes, size_t n) {
    memset(s, 0, sizeof *s);
    t_room_init(&s->room, "1", "!room_id:example.com");
    sim_nodes(s, nodes, n);
}

/* The whole state after `at` must be exactly the events named. */
static void sim_expect(t_sim *s, const char *at, const char *const *names) {
    room_state_map *want = room_state_map_new();
    for (size_t i = 0; names[i]; i++) {
        const t_node *nd = s->node[sim_index(s, names[i])];
        room_state_map_set(want, nd->type, nd->state_key, s->id[sim_index(s, names[i])]);
    }
    t_assert_state(s->after[sim_index(s, at)], want);
    room_state_map_free(want);
}

START_TEST(v1_branch_no_conflict) {
    static const t_node ev[] = {
        {"START", "m.room.create", "", U1, "{}", 1},
        {"A", "m.room.message", NULL, U1, "{}", 2},
        {"B", "m.room.message", NULL, U1, "{}", 3},
        {"C", "m.room.name", "", U1, "{}", 3},
        {"D", "m.room.message", NULL, U1, "{}", 4},
    };
    static const char *const edges[] = {"A", "START", NULL, "B", "A", NULL, "C", "A", NULL,
                                        "D", "B", NULL, "D", "C", NULL, NULL};
    static const char *const want[] = {"START", "C", NULL};
    t_sim s;
    sim_v1_init(&s, ev, N(ev));
    for (const char *const *c = edges; *c; c += 3) sim_chain(&s, c);
    sim_run(&s);
    sim_expect(&s, "D", want);
    sim_free(&s);
}
END_TEST

/* Two names: the deeper one that passes the auth rules wins. */
START_TEST(v1_branch_basic_conflict) {
    static const t_node ev[] = {
        {"START", "m.room.create", "", U1, "{\"creator\":\"" U1 "\"}", 1},
        {"A", "m.room.member", U1, U1, JOIN, 2},
        {"B", "m.room.name", "", U1, "{}", 3},
        {"C", "m.room.name", "", U1, "{}", 4},
        {"D", "m.room.message", NULL, U1, "{}", 5},
    };
    static const char *const edges[] = {"A", "START", NULL, "B", "A", NULL, "C", "A", NULL,
                                        "D", "B", NULL, "D", "C", NULL, NULL};
    static const char *const want[] = {"START", "A", "C", NULL};
    t_sim s;
    sim_v1_init(&s, ev, N(ev));
    for (const char *const *c = edges; *c; c += 3) sim_chain(&s, c);
    sim_run(&s);
    sim_expect(&s, "D", want);
    sim_free(&s);
}
END_TEST

/* A name by a user banned on the other branch does not pass: the older
 * name stays. */
START_TEST(v1_branch_have_banned_conflict) {
    static const t_node ev[] = {
        {"START", "m.room.create", "", U1, "{\"creator\":\"" U1 "\"}", 1},
        {"A", "m.room.member", U1, U1, JOIN, 2},
        {"B", "m.room.name", "", U1, "{}", 3},
        {"C", "m.room.member", U2, U1, BAN, 4},
        {"D", "m.room.name", "", U2, "{}", 4},
        {"E", "m.room.message", NULL, U1, "{}", 5},
    };
    static const char *const edges[] = {"A", "START", NULL, "B", "A", NULL, "C", "B", NULL,
                                        "D", "B", NULL, "E", "C", NULL, "E", "D", NULL, NULL};
    static const char *const want[] = {"START", "A", "B", "C", NULL};
    t_sim s;
    sim_v1_init(&s, ev, N(ev));
    for (const char *const *c = edges; *c; c += 3) sim_chain(&s, c);
    sim_run(&s);
    sim_expect(&s, "E", want);
    sim_free(&s);
}
END_TEST

/* Power levels are resolved first: B demotes user 2, whose concurrent name
 * then fails; the older name stays although neither passes any more. */
START_TEST(v1_branch_have_perms_conflict) {
    static const t_node ev[] = {
        {"A1", "m.room.create", "", U1, "{\"creator\":\"" U1 "\"}", 1},
        {"A2", "m.room.member", U1, U1, JOIN, 2},
        {"A3", "m.room.member", U2, U2, JOIN, 3},
        {"A4", "m.room.power_levels", "", U1,
         "{\"events\":{\"m.room.name\":50},\"users\":{\"" U1 "\":100,\"" U2 "\":60}}", 4},
        {"A5", "m.room.name", "", U1, "{}", 5},
        {"B", "m.room.power_levels", "", U1,
         "{\"events\":{\"m.room.name\":50},\"users\":{\"" U2 "\":30}}", 6},
        {"C", "m.room.name", "", U2, "{}", 6},
        {"D", "m.room.message", NULL, U1, "{}", 7},
    };
    static const char *const edges[] = {"A2", "A1", NULL, "A3", "A2", NULL, "A4", "A3", NULL,
                                        "A5", "A4", NULL, "B",  "A5", NULL, "C",  "A5", NULL,
                                        "D",  "B",  NULL, "D",  "C",  NULL, NULL};
    static const char *const want[] = {"A1", "A2", "A3", "A5", "B", NULL};
    t_sim s;
    sim_v1_init(&s, ev, N(ev));
    for (const char *const *c = edges; *c; c += 3) sim_chain(&s, c);
    sim_run(&s);
    sim_expect(&s, "D", want);
    sim_free(&s);
}
END_TEST

static void sha1_of(const char *s, unsigned char out[20]) {
    unsigned int len = 0;
    ck_assert(EVP_Digest(s, strlen(s), out, &len, EVP_sha1(), NULL));
}

/* Equal depth: the lowest sha1(event_id) wins among events that pass. */
START_TEST(v1_sha1_tie_break) {
    t_room r;
    t_room_init(&r, "1", "!room_id:example.com");
    const char *c[] = {"$c:x", NULL}, *ca[] = {"$c:x", "$a:x", NULL};
    t_add(&r, "$c:x", "m.room.create", "", U1, "{\"creator\":\"" U1 "\"}", NULL, NULL, 1);
    t_add(&r, "$a:x", "m.room.member", U1, U1, JOIN, c, c, 2);
    t_add(&r, "$n1:x", "m.room.name", "", U1, "{}", ca, ca + 1, 3);
    t_add(&r, "$n2:x", "m.room.name", "", U1, "{}", ca, ca + 1, 3);
    room_state_map *s[2] = {t_state(&r, (const char *[]){"$c:x", "$a:x", "$n1:x", NULL}),
                            t_state(&r, (const char *[]){"$c:x", "$a:x", "$n2:x", NULL})};
    unsigned char h1[20], h2[20];
    sha1_of("$n1:x", h1);
    sha1_of("$n2:x", h2);
    const char *lower = memcmp(h1, h2, 20) < 0 ? "$n1:x" : "$n2:x";
    room_state_map *out = t_resolve_both(&r, s, 2);
    ck_assert_str_eq(room_state_map_get(out, "m.room.name", ""), lower);
    room_state_map_free(out);
    room_state_map_free(s[0]);
    room_state_map_free(s[1]);
    t_room_free(&r);
}
END_TEST

/* ---- edges of the contract -------------------------------------------------- */

/* A small v2 room: create, Alice (admin) and Bob joined, public. */
static void t_small_room(t_room *r, const char *version) {
    t_room_init(r, version, "!r:example.com");
    t_add(r, "$c:x", "m.room.create", "", ALICE, "{\"creator\":\"" ALICE "\"}", NULL, NULL, 1);
    t_add(r, "$ma:x", "m.room.member", ALICE, ALICE, JOIN, (const char *[]){"$c:x", NULL}, NULL,
          2);
    t_add(r, "$p0:x", "m.room.power_levels", "", ALICE, PL2(100, 50),
          (const char *[]){"$c:x", "$ma:x", NULL}, NULL, 3);
    t_add(r, "$jr:x", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"public\"}",
          (const char *[]){"$c:x", "$ma:x", "$p0:x", NULL}, NULL, 4);
    t_add(r, "$mb:x", "m.room.member", BOB, BOB, JOIN,
          (const char *[]){"$c:x", "$p0:x", "$jr:x", NULL}, NULL, 5);
}

#define BASE "$c:x", "$ma:x", "$p0:x", "$jr:x", "$mb:x"

START_TEST(no_and_one_state) {
    t_room r;
    t_small_room(&r, "2");
    room_state_map *a = t_state(&r, (const char *[]){BASE, NULL});
    room_state_map *out = t_resolve(&r, NULL, 0);
    ck_assert_uint_eq(room_state_map_count(out), 0);
    room_state_map_free(out);
    out = t_resolve(&r, &a, 1);
    t_assert_state(out, a);
    /* out is cleared first: resolving into a used map leaves no leftovers. */
    hs_err err;
    ck_assert_int_eq(room_state_resolve(r.v, NULL, 0, t_fetch, &r, out, &err), 0);
    ck_assert_uint_eq(room_state_map_count(out), 0);
    ck_assert_int_eq(r.fetches, 0);
    room_state_map_free(out);
    room_state_map_free(a);
    t_room_free(&r);
}
END_TEST

/* Identical forks resolve to themselves without fetching a single event. */
START_TEST(identical_states_fetch_nothing) {
    for (int v = 0; v < 3; v++) {
        t_room r;
        t_small_room(&r, (const char *[]){"1", "2", "12"}[v]);
        room_state_map *s[3] = {t_state(&r, (const char *[]){BASE, NULL}),
                                t_state(&r, (const char *[]){BASE, NULL}),
                                t_state(&r, (const char *[]){BASE, NULL})};
        room_state_map *out = t_resolve(&r, s, 3);
        t_assert_state(out, s[0]);
        ck_assert_int_eq(r.fetches, 0);
        room_state_map_free(out);
        for (int i = 0; i < 3; i++) room_state_map_free(s[i]);
        t_room_free(&r);
    }
}
END_TEST

/* A conflicted event this server does not have is left out; the other
 * side of the conflict stands. */
START_TEST(missing_event_left_out) {
    for (int v = 0; v < 2; v++) {
        t_room r;
        t_small_room(&r, v ? "2" : "1");
        t_add(&r, "$t1:x", "m.room.topic", "", ALICE, "{\"topic\":\"a\"}",
              (const char *[]){"$c:x", "$p0:x", "$ma:x", NULL}, NULL, 6);
        room_state_map *s[2] = {t_state(&r, (const char *[]){BASE, "$t1:x", NULL}),
                                t_state(&r, (const char *[]){BASE, NULL})};
        room_state_map_set(s[1], "m.room.topic", "", "$unknown:x");
        room_state_map *out = t_resolve_both(&r, s, 2);
        ck_assert_str_eq(room_state_map_get(out, "m.room.topic", ""), "$t1:x");
        ck_assert_uint_eq(room_state_map_count(out), 6);
        room_state_map_free(out);
        room_state_map_free(s[0]);
        room_state_map_free(s[1]);
        t_room_free(&r);
    }
}
END_TEST

/* A failing fetch aborts the resolution with its error and an empty map. */
START_TEST(fetch_failure_propagates) {
    for (int v = 0; v < 3; v++) {
        t_room r;
        t_small_room(&r, (const char *[]){"1", "2", "12"}[v]);
        t_add(&r, "$t1:x", "m.room.topic", "", ALICE, "{}",
              (const char *[]){"$c:x", "$p0:x", "$ma:x", NULL}, NULL, 6);
        t_add(&r, "$t2:x", "m.room.topic", "", BOB, "{}",
              (const char *[]){"$c:x", "$p0:x", "$mb:x", NULL}, NULL, 6);
        room_state_map *s[2] = {t_state(&r, (const char *[]){BASE, "$t1:x", NULL}),
                                t_state(&r, (const char *[]){BASE, "$t2:x", NULL})};
        r.fail_on = "$t2:x";
        room_state_map *out = room_state_map_new();
        room_state_map_set(out, "junk", "", "$junk");
        hs_err err = {0};
        ck_assert_int_eq(room_state_resolve(r.v, (const room_state_map *const *)s, 2, t_fetch, &r,
                                            out, &err),
                         -1);
        ck_assert_int_eq(err.status, 503);
        ck_assert_uint_eq(room_state_map_count(out), 0);
        room_state_map_free(out);
        room_state_map_free(s[0]);
        room_state_map_free(s[1]);
        t_room_free(&r);
    }
}
END_TEST

/* Bob's join was rejected. Resolution checks it afresh (the spec: events
 * rejected against the state at them are handled as usual) and it passes,
 * but as an auth event it stays unusable: his topic, which needs it, is
 * dropped. Without the rejection the topic stands. */
START_TEST(rejected_auth_event_not_used) {
    for (int rejected = 0; rejected < 2; rejected++) {
        t_room r;
        t_room_init(&r, "2", "!r:example.com");
        t_add(&r, "$c:x", "m.room.create", "", ALICE, "{\"creator\":\"" ALICE "\"}", NULL, NULL,
              1);
        t_add(&r, "$ma:x", "m.room.member", ALICE, ALICE, JOIN, (const char *[]){"$c:x", NULL},
              NULL, 2);
        t_add(&r, "$p0:x", "m.room.power_levels", "", ALICE, PL2(100, 50),
              (const char *[]){"$c:x", "$ma:x", NULL}, NULL, 3);
        t_add(&r, "$jr:x", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"public\"}",
              (const char *[]){"$c:x", "$ma:x", "$p0:x", NULL}, NULL, 4);
        room_event *mb = t_add(&r, "$mb:x", "m.room.member", BOB, BOB, JOIN,
                               (const char *[]){"$c:x", "$p0:x", "$jr:x", NULL}, NULL, 5);
        mb->rejected = rejected;
        t_add(&r, "$t:x", "m.room.topic", "", BOB, "{}",
              (const char *[]){"$c:x", "$p0:x", "$mb:x", NULL}, NULL, 6);
        room_state_map *s[2] = {t_state(&r, (const char *[]){BASE, "$t:x", NULL}),
                                t_state(&r, (const char *[]){"$c:x", "$ma:x", "$p0:x", "$jr:x",
                                                             NULL})};
        room_state_map *out = t_resolve_both(&r, s, 2);
        ck_assert_str_eq(room_state_map_get(out, "m.room.member", BOB), "$mb:x");
        if (rejected)
            ck_assert_ptr_null(room_state_map_get(out, "m.room.topic", ""));
        else
            ck_assert_str_eq(room_state_map_get(out, "m.room.topic", ""), "$t:x");
        room_state_map_free(out);
        room_state_map_free(s[0]);
        room_state_map_free(s[1]);
        t_room_free(&r);
    }
}
END_TEST

/* Three forks: a key all three agree on is unconflicted; one only two have
 * is conflicted; Alice's latest topic wins by mainline and timestamp. */
START_TEST(three_states) {
    t_room r;
    t_small_room(&r, "2");
    const char *a[] = {"$c:x", "$p0:x", "$ma:x", NULL};
    t_add(&r, "$t1:x", "m.room.topic", "", ALICE, "{}", a, NULL, 6);
    t_add(&r, "$t2:x", "m.room.topic", "", ALICE, "{}", a, NULL, 6);
    t_add(&r, "$n:x", "m.room.name", "", ALICE, "{}", a, NULL, 6);
    room_state_map *s[3] = {t_state(&r, (const char *[]){BASE, "$t1:x", "$n:x", NULL}),
                            t_state(&r, (const char *[]){BASE, "$t2:x", "$n:x", NULL}),
                            t_state(&r, (const char *[]){BASE, "$t1:x", NULL})};
    room_state_map *out = t_resolve_both(&r, s, 3);
    room_state_map *want = t_state(&r, (const char *[]){BASE, "$t2:x", "$n:x", NULL});
    t_assert_state(out, want);
    room_state_map_free(want);
    room_state_map_free(out);
    for (int i = 0; i < 3; i++) room_state_map_free(s[i]);
    t_room_free(&r);
}
END_TEST

/* Concurrent join rules by Alice (100) and, earlier, Bob (50): the power
 * ordering puts the higher-powered sender's event first, so Bob's, applied
 * after it, is what remains; by timestamp alone Alice's would. */
START_TEST(power_order_before_timestamp) {
    t_room r;
    t_small_room(&r, "2");
    r.ts = 100;
    t_add(&r, "$jb:x", "m.room.join_rules", "", BOB, "{\"join_rule\":\"public\"}",
          (const char *[]){"$c:x", "$p0:x", "$mb:x", NULL}, NULL, 6);
    t_add(&r, "$ja:x", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"invite\"}",
          (const char *[]){"$c:x", "$p0:x", "$ma:x", NULL}, NULL, 6);
    room_state_map *s[2] = {t_state(&r, (const char *[]){BASE, "$ja:x", NULL}),
                            t_state(&r, (const char *[]){BASE, "$jb:x", NULL})};
    room_state_map *out = t_resolve_both(&r, s, 2);
    ck_assert_str_eq(room_state_map_get(out, "m.room.join_rules", ""), "$jb:x");
    room_state_map_free(out);
    room_state_map_free(s[0]);
    room_state_map_free(s[1]);
    t_room_free(&r);
}
END_TEST

/* Bob joins while the room is public and kicks Zara; concurrently Charlie
 * (who may set join rules) makes it invite-only. Bob's join is in the auth
 * chain of his kick, a power event, so it is sorted with the power events:
 * Bob (50) outranks Charlie (40) and his join lands before the join rules
 * change. Sorted with the other events it would come after and fail. */
START_TEST(power_events_bring_their_auth_chain) {
    t_room r;
    t_room_init(&r, "2", "!r:example.com");
    t_add(&r, "$c:x", "m.room.create", "", ALICE, "{\"creator\":\"" ALICE "\"}", NULL, NULL, 1);
    t_add(&r, "$ma:x", "m.room.member", ALICE, ALICE, JOIN, (const char *[]){"$c:x", NULL}, NULL,
          2);
    t_add(&r, "$p0:x", "m.room.power_levels", "", ALICE,
          "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50,\"" CHARLIE "\":40},"
          "\"events\":{\"m.room.join_rules\":40}}",
          (const char *[]){"$c:x", "$ma:x", NULL}, NULL, 3);
    t_add(&r, "$jr:x", "m.room.join_rules", "", ALICE, "{\"join_rule\":\"public\"}",
          (const char *[]){"$c:x", "$ma:x", "$p0:x", NULL}, NULL, 4);
    const char *joining[] = {"$c:x", "$p0:x", "$jr:x", NULL};
    t_add(&r, "$mz:x", "m.room.member", ZARA, ZARA, JOIN, joining, NULL, 5);
    t_add(&r, "$mc:x", "m.room.member", CHARLIE, CHARLIE, JOIN, joining, NULL, 6);
    t_add(&r, "$mb:x", "m.room.member", BOB, BOB, JOIN, joining, NULL, 7);
    t_add(&r, "$kick:x", "m.room.member", ZARA, BOB, "{\"membership\":\"leave\"}",
          (const char *[]){"$c:x", "$p0:x", "$mb:x", "$mz:x", NULL}, NULL, 8);
    t_add(&r, "$invite:x", "m.room.join_rules", "", CHARLIE, "{\"join_rule\":\"invite\"}",
          (const char *[]){"$c:x", "$p0:x", "$mc:x", NULL}, NULL, 9);
    room_state_map *s[2] = {
        t_state(&r, (const char *[]){"$c:x", "$ma:x", "$p0:x", "$jr:x", "$mc:x", "$mb:x",
                                     "$kick:x", NULL}),
        t_state(&r, (const char *[]){"$c:x", "$ma:x", "$p0:x", "$invite:x", "$mc:x", "$mz:x",
                                     NULL})};
    room_state_map *out = t_resolve_both(&r, s, 2);
    room_state_map *want = t_state(&r, (const char *[]){"$c:x", "$ma:x", "$p0:x", "$invite:x",
                                                        "$mc:x", "$mb:x", "$kick:x", NULL});
    t_assert_state(out, want);
    room_state_map_free(want);
    room_state_map_free(out);
    room_state_map_free(s[0]);
    room_state_map_free(s[1]);
    t_room_free(&r);
}
END_TEST

/* v1 power levels: the deeper event by a user the shallower one demoted is
 * refused, and the pass stops at the shallower one. */
START_TEST(v1_power_levels_stop_at_refusal) {
    t_room r;
    t_small_room(&r, "1");
    const char *a[] = {"$c:x", "$p0:x", "$ma:x", NULL}, *b[] = {"$c:x", "$p0:x", "$mb:x", NULL};
    t_add(&r, "$pa:x", "m.room.power_levels", "", ALICE, PL2(100, 0), a, NULL, 6);
    t_add(&r, "$pb:x", "m.room.power_levels", "", BOB,
          "{\"users\":{\"" ALICE "\":100,\"" BOB "\":50,\"" CHARLIE "\":50}}", b, NULL, 7);
    room_state_map *s[2] = {t_state(&r, (const char *[]){BASE, NULL}),
                            t_state(&r, (const char *[]){BASE, NULL})};
    room_state_map_set(s[0], "m.room.power_levels", "", "$pa:x");
    room_state_map_set(s[1], "m.room.power_levels", "", "$pb:x");
    room_state_map *out = t_resolve_both(&r, s, 2);
    ck_assert_str_eq(room_state_map_get(out, "m.room.power_levels", ""), "$pa:x");
    room_state_map_free(out);
    room_state_map_free(s[0]);
    room_state_map_free(s[1]);
    t_room_free(&r);
}
END_TEST

/* With a prefetch hook, v2 and v2.1 announce every event before fetching
 * it, each once, a level of the walks at a time: one query per level
 * (bench_state_res shows the batches on a large room). */
START_TEST(prefetch_announces_every_fetch) {
    for (int v = 0; v < 2; v++) {
        t_room r;
        t_room_init(&r, v ? "12" : "11", "!room:example.com");
        t_add_pdus(&r, problem_b, N(problem_b));
        room_state_map *s[2] = {t_state(&r, problem_b_eve), t_state(&r, problem_b_zara)};
        room_state_map *out = room_state_map_new();
        hs_err err;
        ck_assert_int_eq(room_state_resolve_batched(r.v, (const room_state_map *const *)s, 2,
                                                    t_fetch, t_prefetch, &r, out, &err),
                         0);
        ck_assert_int_eq(r.cold_fetches, 0);
        ck_assert_int_eq((int)r.n_prefetched, r.fetches);
        ck_assert_int_lt(r.prefetch_calls, r.fetches);
        /* Same answer as without the hook. */
        room_state_map *plain = t_resolve(&r, s, 2);
        t_assert_state(out, plain);
        room_state_map_free(plain);
        room_state_map_free(out);
        room_state_map_free(s[0]);
        room_state_map_free(s[1]);
        t_room_free(&r);
    }
}
END_TEST

/* A failing prefetch aborts like a failing fetch. */
START_TEST(prefetch_failure_propagates) {
    for (int v = 0; v < 3; v++) {
        t_room r;
        t_small_room(&r, (const char *[]){"1", "2", "12"}[v]);
        t_add(&r, "$t1:x", "m.room.topic", "", ALICE, "{}",
              (const char *[]){"$c:x", "$p0:x", "$ma:x", NULL}, NULL, 6);
        t_add(&r, "$t2:x", "m.room.topic", "", BOB, "{}",
              (const char *[]){"$c:x", "$p0:x", "$mb:x", NULL}, NULL, 6);
        room_state_map *s[2] = {t_state(&r, (const char *[]){BASE, "$t1:x", NULL}),
                                t_state(&r, (const char *[]){BASE, "$t2:x", NULL})};
        r.fail_on = "$t2:x";
        room_state_map *out = room_state_map_new();
        hs_err err = {0};
        ck_assert_int_eq(room_state_resolve_batched(r.v, (const room_state_map *const *)s, 2,
                                                    t_fetch, t_prefetch, &r, out, &err),
                         -1);
        ck_assert_int_eq(err.status, 503);
        ck_assert_uint_eq(room_state_map_count(out), 0);
        room_state_map_free(out);
        room_state_map_free(s[0]);
        room_state_map_free(s[1]);
        t_room_free(&r);
    }
}
END_TEST

/* ---- the map itself ------------------------------------------------------------ */

START_TEST(state_map_basics) {
    room_state_map *m = room_state_map_new();
    char t[32], k[32], id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(t, sizeof t, "t%d", i % 7);
        snprintf(k, sizeof k, "@u%d:x", i);
        snprintf(id, sizeof id, "$e%d", i);
        ck_assert_int_eq(room_state_map_set(m, t, k, id), 0);
    }
    ck_assert_uint_eq(room_state_map_count(m), 5000);
    ck_assert_str_eq(room_state_map_get(m, "t3", "@u10:x"), "$e10");
    ck_assert_ptr_null(room_state_map_get(m, "t3", "@u11:x"));
    /* The separator keeps ("ab", "c") and ("a", "bc") apart. */
    room_state_map_set(m, "ab", "c", "$1");
    room_state_map_set(m, "a", "bc", "$2");
    ck_assert_str_eq(room_state_map_get(m, "ab", "c"), "$1");
    ck_assert_str_eq(room_state_map_get(m, "a", "bc"), "$2");
    room_state_map *c = room_state_map_copy(m);
    ck_assert(room_state_map_equal(m, c));
    for (int i = 0; i < 5000; i += 2) {
        snprintf(t, sizeof t, "t%d", i % 7);
        snprintf(k, sizeof k, "@u%d:x", i);
        ck_assert(room_state_map_remove(m, t, k));
        ck_assert(!room_state_map_remove(m, t, k));
    }
    ck_assert_uint_eq(room_state_map_count(m), 2502);
    for (int i = 0; i < 5000; i++) {
        snprintf(t, sizeof t, "t%d", i % 7);
        snprintf(k, sizeof k, "@u%d:x", i);
        snprintf(id, sizeof id, "$e%d", i);
        const char *got = room_state_map_get(m, t, k);
        if (i % 2) ck_assert_str_eq(got, id);
        else ck_assert_ptr_null(got);
    }
    ck_assert(!room_state_map_equal(m, c));
    room_state_map_set(c, "ab", "c", "$other");
    ck_assert_str_eq(room_state_map_get(c, "ab", "c"), "$other");
    size_t it = 0, n = 0;
    while (room_state_map_next(c, &it, NULL, NULL, NULL)) n++;
    ck_assert_uint_eq(n, 5002);
    room_state_map_clear(c);
    ck_assert_uint_eq(room_state_map_count(c), 0);
    ck_assert_ptr_null(room_state_map_get(c, "ab", "c"));
    room_state_map_free(c);
    room_state_map_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rooms_state_res");
    TCase *v2 = tcase_create("v2");
    tcase_add_test(v2, ban_vs_power_levels);
    tcase_add_test(v2, join_rule_evasion);
    tcase_add_test(v2, offtopic_power_levels);
    tcase_add_test(v2, topic_basic);
    tcase_add_test(v2, topic_reset);
    tcase_add_test(v2, topic);
    tcase_add_test(v2, mainline_sort);
    suite_add_tcase(s, v2);
    TCase *v21 = tcase_create("v2.1");
    tcase_add_test(v21, msc4297_problem_a_v2_1);
    tcase_add_test(v21, msc4297_problem_a_v2_resets);
    tcase_add_test(v21, msc4297_problem_b_v2_1);
    tcase_add_test(v21, msc4297_problem_b_v2_resets);
    tcase_add_test(v21, replay_conflicted_subgraph);
    tcase_add_test(v21, start_empty_set);
    suite_add_tcase(s, v21);
    TCase *ruma = tcase_create("ruma atomic");
    tcase_add_test(ruma, ruma_minimal_public_chat);
    tcase_add_test(ruma, ruma_topic_vs_ban);
    tcase_add_test(ruma, ruma_join_rules_vs_join);
    tcase_add_test(ruma, ruma_concurrent_joins);
    tcase_add_test(ruma, ruma_topic_vs_power_levels);
    tcase_add_test(ruma, ruma_ban_vs_power_levels);
    suite_add_tcase(s, ruma);
    TCase *v1 = tcase_create("v1");
    tcase_add_test(v1, v1_branch_no_conflict);
    tcase_add_test(v1, v1_branch_basic_conflict);
    tcase_add_test(v1, v1_branch_have_banned_conflict);
    tcase_add_test(v1, v1_branch_have_perms_conflict);
    tcase_add_test(v1, v1_sha1_tie_break);
    tcase_add_test(v1, v1_power_levels_stop_at_refusal);
    suite_add_tcase(s, v1);
    TCase *edge = tcase_create("contract");
    tcase_add_test(edge, no_and_one_state);
    tcase_add_test(edge, identical_states_fetch_nothing);
    tcase_add_test(edge, missing_event_left_out);
    tcase_add_test(edge, fetch_failure_propagates);
    tcase_add_test(edge, rejected_auth_event_not_used);
    tcase_add_test(edge, three_states);
    tcase_add_test(edge, power_order_before_timestamp);
    tcase_add_test(edge, power_events_bring_their_auth_chain);
    tcase_add_test(edge, prefetch_announces_every_fetch);
    tcase_add_test(edge, prefetch_failure_propagates);
    tcase_add_test(edge, state_map_basics);
    suite_add_tcase(s, edge);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
