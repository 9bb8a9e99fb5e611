/* outliers.c — storing events whose place in the room we do not know: the
 * state and auth chain a send_join or /state answer brings, auth events an
 * incoming event cites that we lack. Each is stored as an outlier (its own
 * row and auth edges, no state, never shown to clients), after the checks
 * an outlier can have: its signatures and hash, and its auth events, which
 * are stored first (fetched from the server we are talking to when nobody
 * gave them) and must authorise it, else it is stored rejected. A rejected
 * event can never authorise another one, so forged auth chains go nowhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/log.h"
#include "rooms/state_lookup.h"
#include "rooms_internal.h"

typedef struct ol_item {
    room_event *ev;
    int mark;     /* topological sort: 0 new, 1 on the stack, 2 placed */
    bool missing; /* an auth event can't be had: not stored */
} ol_item;

typedef struct ol_set {
    hs_server *srv;
    const char *dest, *room_id;
    const room_version *v;
    ol_item *items;
    size_t n, cap;
    size_t *slots; /* open addressing over items by event ID: index + 1, 0 empty */
    size_t nslots;
    char *create_id; /* v12: every event depends on the create event */
} ol_set;

static size_t hash_id(const char *s) {
    size_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static ol_item *find(const ol_set *s, const char *id) {
    if (!s->nslots) return NULL;
    for (size_t i = hash_id(id) & (s->nslots - 1);; i = (i + 1) & (s->nslots - 1)) {
        if (!s->slots[i]) return NULL;
        if (!strcmp(s->items[s->slots[i] - 1].ev->event_id, id)) return &s->items[s->slots[i] - 1];
    }
}

static void slot_put(size_t *slots, size_t nslots, const ol_item *items, size_t idx) {
    size_t i = hash_id(items[idx].ev->event_id) & (nslots - 1);
    while (slots[i]) i = (i + 1) & (nslots - 1);
    slots[i] = idx + 1;
}

/* Takes ev; false (ev freed) when it is a duplicate or memory runs out. */
static bool add(ol_set *s, room_event *ev) {
    if (find(s, ev->event_id)) return room_event_free(ev), false;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        ol_item *items = realloc(s->items, cap * sizeof *items);
        size_t *slots = calloc(cap * 2, sizeof *slots);
        if (!items || !slots) {
            if (items) s->items = items;
            free(slots);
            room_event_free(ev);
            return false;
        }
        s->items = items, s->cap = cap;
        free(s->slots);
        s->slots = slots, s->nslots = cap * 2;
        for (size_t i = 0; i < s->n; i++) slot_put(s->slots, s->nslots, s->items, i);
    }
    s->items[s->n] = (ol_item){.ev = ev};
    slot_put(s->slots, s->nslots, s->items, s->n++);
    return true;
}

static void set_free(ol_set *s) {
    for (size_t i = 0; i < s->n; i++) room_event_free(s->items[i].ev);
    free(s->items);
    free(s->slots);
    free(s->create_id);
}

/* The IDs among ids that are stored (as anything), as a sorted array. */
static int stored_ids(db_conn *c, const char *const *ids, size_t n, char ***out, size_t *n_out,
                      hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id FROM events WHERE event_id = ANY($1::text[]) ORDER BY event_id COLLATE \"C\"");
    char *arr = db_text_array(ids, n);
    PGresult *r = db_run(c, &q, 1, (const char *[]){arr}, err);
    free(arr);
    if (!r) return -1;
    *n_out = (size_t)PQntuples(r);
    *out = calloc(*n_out + 1, sizeof **out);
    for (size_t i = 0; *out && i < *n_out; i++) (*out)[i] = strdup(PQgetvalue(r, (int)i, 0));
    PQclear(r);
    return *out ? 0 : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool in_sorted(char **v, size_t n, const char *id) {
    return n && bsearch(&id, v, n, sizeof *v, cmp_str) != NULL;
}

/* The auth dependencies of an event: its auth events, and in v12 the create event. */
static size_t deps_of(const ol_set *s, const room_event *ev, const char **out, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < ev->n_auth && n < max; i++) out[n++] = ev->auth_events[i];
    if (s->create_id && strcmp(ev->event_id, s->create_id) != 0 && n < max) out[n++] = s->create_id;
    return n;
}

/* Every dependency neither in the set nor stored. */
static int missing_deps(db_conn *c, ol_set *s, char ***miss, size_t *n_miss, hs_err *err) {
    size_t cap = 64, n = 0;
    *miss = NULL, *n_miss = 0;
    const char **want = malloc(cap * sizeof *want);
    for (size_t i = 0; want && i < s->n; i++) {
        const char *d[40];
        size_t nd = deps_of(s, s->items[i].ev, d, 40);
        for (size_t k = 0; k < nd && want; k++) {
            if (find(s, d[k])) continue;
            if (n == cap) {
                const char **more = realloc(want, (cap *= 2) * sizeof *want);
                if (!more) free(want);
                want = more;
                if (!want) break;
            }
            want[n++] = d[k];
        }
    }
    if (!want) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    char **have = NULL;
    size_t n_have = 0;
    int rc = n ? stored_ids(c, want, n, &have, &n_have, err) : 0;
    *n_miss = 0;
    *miss = calloc(n + 1, sizeof **miss);
    for (size_t i = 0; rc == 0 && *miss && i < n; i++) {
        if (in_sorted(have, n_have, want[i])) continue;
        bool dup = false;
        for (size_t k = 0; k < *n_miss && !dup; k++) dup = !strcmp((*miss)[k], want[i]);
        if (!dup) (*miss)[(*n_miss)++] = strdup(want[i]);
    }
    room_store_free_ids(have, n_have);
    free(want);
    return rc;
}

/* Fetch what the set lacks from s->dest, level by level, until nothing is
 * missing or a fetch fails (those events then stay missing). */
static int fetch_closure(db_conn *c, ol_set *s, hs_err *err) {
    for (int round = 0; round < 10000; round++) {
        char **miss;
        size_t n;
        if (missing_deps(c, s, &miss, &n, err) < 0) return -1;
        size_t added = 0;
        for (size_t i = 0; i < n && s->dest && s->n < FED_FETCH_MAX_EVENTS; i++) {
            hs_err ferr = {0};
            room_event *ev = fed_fetch_event(s->srv, s->dest, s->v, s->room_id, miss[i], &ferr);
            if (!ev)
                hs_info("federation: cannot fetch auth event %s from %s: %s", miss[i], s->dest,
                        ferr.msg);
            else if (add(s, ev)) added++;
        }
        room_store_free_ids(miss, n);
        if (!added) return 0;
    }
    return 0;
}

/* Depth-first topological order over the set's dependencies (iterative:
 * auth chains run thousands of events deep). */
static int topo_order(ol_set *s, size_t *order, hs_err *err) {
    size_t placed = 0, *stack = malloc((s->n + 1) * sizeof *stack);
    if (!stack) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    for (size_t start = 0; start < s->n; start++) {
        if (s->items[start].mark) continue;
        size_t top = 0;
        stack[top++] = start;
        s->items[start].mark = 1;
        while (top) {
            ol_item *it = &s->items[stack[top - 1]];
            const char *d[40];
            size_t nd = deps_of(s, it->ev, d, 40);
            bool pushed = false;
            for (size_t k = 0; k < nd && !pushed; k++) {
                ol_item *dep = find(s, d[k]);
                if (!dep || dep->mark) continue; /* stored, absent, or a cycle (broken here) */
                dep->mark = 1;
                stack[top++] = (size_t)(dep - s->items);
                pushed = true;
            }
            if (pushed) continue;
            it->mark = 2;
            order[placed++] = stack[--top];
        }
    }
    free(stack);
    return 0;
}

/* The auth events of it, from the set or the database; false when one is
 * missing (then it can't be checked, nor stored). */
static bool gather_auth(db_conn *c, const ol_set *s, const room_event *ev, const room_event **auth,
                        room_event **owned, size_t *n_owned, hs_err *err) {
    for (size_t i = 0; i < ev->n_auth; i++) {
        ol_item *in = find(s, ev->auth_events[i]);
        if (in && in->missing) return false;
        if (in) {
            auth[i] = in->ev;
            continue;
        }
        hs_err e = {0};
        room_event *st = room_store_get_event(c, ev->auth_events[i], &e);
        if (!st) {
            if (e.status != 404) *err = e;
            return false;
        }
        auth[i] = owned[(*n_owned)++] = st;
    }
    return true;
}

/* Check it against its auth events; why gets the reason it is rejected. */
static int check_one(db_conn *c, const ol_set *s, ol_item *it, char *why, size_t why_len,
                     hs_err *err) {
    const room_event *auth[32];
    room_event *owned[32];
    size_t n_owned = 0;
    *why = 0;
    if (it->ev->n_auth > 32) return snprintf(why, why_len, "too many auth events"), 0;
    hs_err e = {0};
    bool ok = gather_auth(c, s, it->ev, auth, owned, &n_owned, &e);
    int rc = 0;
    if (!ok) {
        if (e.status) *err = e, rc = -1;
        it->missing = true;
    } else {
        hs_err deny = {0};
        room_lookup l = {.c = c, .room_id = it->ev->room_id, .set = auth, .n_set = it->ev->n_auth};
        if (room_auth_check_auth_events(it->ev, auth, it->ev->n_auth, &deny) < 0 ||
            room_auth_check(it->ev, room_lookup_get, &l, &deny) < 0)
            snprintf(why, why_len, "%s", deny.msg[0] ? deny.msg : "not allowed by its auth events");
        if (l.failed) *err = l.err, rc = -1;
        room_lookup_clear(&l);
    }
    for (size_t i = 0; i < n_owned; i++) room_event_free(owned[i]);
    return rc;
}

typedef struct ol_batch {
    ol_set *s;
    const size_t *order;
    size_t from, to;
} ol_batch;

static int persist_batch(db_conn *c, void *arg, hs_err *err) {
    ol_batch *b = arg;
    for (size_t k = b->from; k < b->to; k++) {
        ol_item *it = &b->s->items[b->order[k]];
        char why[300];
        it->missing = false;
        hs_err miss = {0};
        room_event *stored = room_store_get_event(c, it->ev->event_id, &miss);
        if (stored) { /* known already: its verdict stands */
            it->ev->rejected = stored->rejected;
            room_event_free(stored);
            continue;
        }
        if (miss.status != 404) return *err = miss, -1;
        if (check_one(c, b->s, it, why, sizeof why, err) < 0) return -1;
        if (it->missing) {
            hs_info("federation: not storing %s: an auth event is missing", it->ev->event_id);
            continue;
        }
        it->ev->rejected = why[0] != 0;
        if (why[0]) hs_info("federation: outlier %s rejected: %s", it->ev->event_id, why);
        room_persist_item p = {
            .ev = it->ev, .outlier = true, .rejected_reason = why[0] ? why : NULL};
        if (room_store_persist(c, &p, 1, err) < 0) return -1;
    }
    return 0;
}

static int store_set(ol_set *s, hs_err *err) {
    db_conn *c = db_acquire(s->srv->db, err);
    if (!c) return -1;
    int rc = fetch_closure(c, s, err);
    db_release(s->srv->db, c);
    size_t *order = rc == 0 ? calloc(s->n + 1, sizeof *order) : NULL;
    if (rc == 0 && (!order || topo_order(s, order, err) < 0)) rc = -1;
    /* A few hundred events per transaction: a huge state does not hold one
     * transaction open for minutes, and each batch sees the ones before. */
    for (size_t from = 0; rc == 0 && from < s->n; from += 500) {
        ol_batch b = {s, order, from, from + 500 < s->n ? from + 500 : s->n};
        rc = db_txn(s->srv->db, persist_batch, &b, err);
    }
    free(order);
    return rc;
}

static void set_init(ol_set *s, hs_server *srv, const char *dest, const room_version *v,
                     const char *room_id) {
    *s = (ol_set){.srv = srv, .dest = dest, .v = v, .room_id = room_id};
    if (v->hydra && room_id[0] == '!' && asprintf(&s->create_id, "$%s", room_id + 1) < 0)
        s->create_id = NULL;
}

int fed_store_outliers(hs_server *srv, const char *dest, const room_version *v, const char *room_id,
                       const json_t *pdus, hs_err *err) {
    ol_set s;
    set_init(&s, srv, dest, v, room_id);
    size_t i;
    json_t *pdu;
    json_array_foreach(pdus, i, pdu) {
        hs_err e = {0};
        room_event *ev = fed_event_verify(srv, v, pdu, &e);
        if (!ev) {
            hs_info("federation: dropping an event of %s: %s", room_id, e.msg);
        } else if (strcmp(ev->room_id, room_id) != 0) {
            hs_info("federation: dropping %s: it is of room %s, not %s", ev->event_id, ev->room_id,
                    room_id);
            room_event_free(ev);
        } else {
            add(&s, ev);
        }
    }
    int rc = store_set(&s, err);
    set_free(&s);
    return rc;
}

int fed_ensure_events(hs_server *srv, const char *dest, const room_version *v, const char *room_id,
                      const char *const *ids, size_t n, hs_err *err) {
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    char **have = NULL;
    size_t n_have = 0;
    int rc = stored_ids(c, ids, n, &have, &n_have, err);
    db_release(srv->db, c);
    if (rc < 0) return -1;
    ol_set s;
    set_init(&s, srv, dest, v, room_id);
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        if (in_sorted(have, n_have, ids[i])) continue;
        missing++;
        hs_err e = {0};
        room_event *ev = dest ? fed_fetch_event(srv, dest, v, room_id, ids[i], &e) : NULL;
        if (ev) add(&s, ev);
        else hs_info("federation: cannot fetch %s from %s: %s", ids[i], dest ? dest : "-", e.msg);
    }
    room_store_free_ids(have, n_have);
    rc = missing ? store_set(&s, err) : 0;
    set_free(&s);
    if (rc < 0 || !missing) return rc;
    /* Stored as what, even rejected, is fine: the caller needs them known. */
    c = db_acquire(srv->db, err);
    if (!c) return -1;
    rc = stored_ids(c, ids, n, &have, &n_have, err);
    db_release(srv->db, c);
    if (rc == 0 && n_have < n)
        rc = hs_err_set(err, 404, "M_NOT_FOUND", "%zu of %zu events could not be had from %s",
                        n - n_have, n, dest ? dest : "anyone");
    if (have) room_store_free_ids(have, n_have);
    return rc;
}
