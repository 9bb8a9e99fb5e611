/* state_res.c — state resolution v1, v2 and v2.1.
 *
 * Every event the algorithms touch becomes a node in one table (event ID ->
 * node index, open addressing); auth_events become integer edges resolved
 * once. The walks, the topological sort and the mainline ordering then run
 * over integers, and each event is fetched, hashed and has its sender's
 * power level computed at most once. The auth chain of the unconflicted
 * state is walked once; the per-state walks stop where it begins (anything
 * below an unconflicted event is in every state's auth chain), so only the
 * forked part of the DAG is walked per state.
 *
 * Where the spec leaves room, we do what Synapse and Ruma do, so that rooms
 * shared with them converge; each such choice is commented where it is made. */
#include "state_res.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define SR_NONE UINT32_MAX
#define SR_MAX_AUTH_KEYS 16

enum {
    SR_FETCHED = 1 << 0,
    SR_REJECTED = 1 << 1,
    SR_EDGES = 1 << 2,     /* edges resolved */
    SR_IN_ALL = 1 << 3,    /* in the auth chain (with itself) of the unconflicted state */
    SR_CONFLICTED = 1 << 4,
    SR_FULL = 1 << 5,      /* in the full conflicted set */
    SR_POWER = 1 << 6,     /* in X: power events and their conflicted auth chain */
    SR_MAINLINE = 1 << 7,  /* on the mainline of the resolved power levels */
    SR_ML_KNOWN = 1 << 8,  /* ml below is computed */
    SR_PL_KNOWN = 1 << 9,  /* pl_auth below is computed */
};

typedef struct sr_node {
    const char *id;
    const room_event *ev; /* NULL: unknown to us */
    uint64_t hash;
    uint32_t edge_off, n_edges; /* auth events, deduplicated, into sr.edges */
    uint32_t pl_auth;           /* the m.room.power_levels among the auth events */
    uint32_t stamp;             /* last walk that visited this node */
    uint32_t count;             /* how many state sets' auth chains hold it */
    uint32_t dedup;             /* scratch for deduplicating edges */
    uint32_t aux;               /* scratch of the current phase */
    uint32_t xi;                /* position in X during the power sort */
    uint32_t ml;                /* mainline depth (1 = oldest), 0 = none */
    uint32_t flags;
    long long sender_pl;        /* power of the sender per its auth events */
} sr_node;

typedef struct sr_vec {
    uint32_t *v;
    size_t n, cap;
} sr_vec;

typedef struct sr {
    const room_version *ver;
    room_event_fetch fetch;
    room_event_prefetch prefetch; /* may be NULL */
    void *ctx;
    hs_err *err;
    int failed; /* err already filled: stop */
    sr_node *nodes;
    size_t n_nodes, cap_nodes;
    uint32_t *index; /* node index + 1; 0 = empty */
    size_t n_index;
    sr_vec edges;
    sr_vec stack, next; /* scratch of the walks */
    const char **pf_ids; /* scratch of sr_prefetch */
    size_t pf_cap;
    uint32_t stamp;
    char *create_id; /* v12: the implicit create auth event, "$" + room ID */
    const char *create_room;
} sr;

/* ---- small helpers --------------------------------------------------- */

static int sr_oom(sr *s) {
    if (!s->failed) hs_err_set(s->err, 500, "M_UNKNOWN", "state resolution: out of memory");
    s->failed = 1;
    return -1;
}

static int vec_push(sr *s, sr_vec *v, uint32_t x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint32_t *p = realloc(v->v, cap * sizeof *p);
        if (!p) return sr_oom(s);
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

static uint64_t sr_hash(const char *str) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)str; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static bool is_key(const room_event *ev, const char *type, const char *state_key) {
    return ev && ev->state_key && strcmp(ev->type, type) == 0 &&
           strcmp(ev->state_key, state_key) == 0;
}

/* ---- the node table --------------------------------------------------- */

static int sr_index_grow(sr *s) {
    size_t n = s->n_index ? s->n_index * 2 : 1024;
    uint32_t *idx = calloc(n, sizeof *idx);
    if (!idx) return sr_oom(s);
    for (size_t k = 0; k < s->n_nodes; k++) {
        size_t i = (size_t)s->nodes[k].hash & (n - 1);
        while (idx[i]) i = (i + 1) & (n - 1);
        idx[i] = (uint32_t)(k + 1);
    }
    free(s->index);
    s->index = idx;
    s->n_index = n;
    return 0;
}

/* The node of event_id, created if new; SR_NONE when out of memory. The
 * string must outlive the resolution (it comes from the input maps or from
 * an event the fetch callback keeps alive). Node pointers do not survive a
 * call to this function: the table may move. */
static uint32_t sr_intern(sr *s, const char *event_id) {
    uint64_t h = sr_hash(event_id);
    if (s->n_index) {
        size_t mask = s->n_index - 1;
        for (size_t i = (size_t)h & mask; s->index[i]; i = (i + 1) & mask) {
            sr_node *n = &s->nodes[s->index[i] - 1];
            if (n->hash == h && strcmp(n->id, event_id) == 0) return s->index[i] - 1;
        }
    }
    if ((s->n_nodes + 1) * 2 > s->n_index && sr_index_grow(s) < 0) return SR_NONE;
    if (s->n_nodes == s->cap_nodes) {
        size_t cap = s->cap_nodes ? s->cap_nodes * 2 : 1024;
        if (cap >= SR_NONE) return sr_oom(s), SR_NONE;
        sr_node *p = realloc(s->nodes, cap * sizeof *p);
        if (!p) return sr_oom(s), SR_NONE;
        s->nodes = p;
        s->cap_nodes = cap;
    }
    uint32_t k = (uint32_t)s->n_nodes++;
    s->nodes[k] = (sr_node){.id = event_id, .hash = h, .pl_auth = SR_NONE};
    size_t mask = s->n_index - 1, i = (size_t)h & mask;
    while (s->index[i]) i = (i + 1) & mask;
    s->index[i] = k + 1;
    return k;
}

/* Fetch the node's event once. 0, or -1 if the fetch callback failed. */
static int sr_load(sr *s, uint32_t k) {
    sr_node *n = &s->nodes[k];
    if (n->flags & SR_FETCHED) return 0;
    const room_event *ev = NULL;
    if (s->fetch(s->ctx, n->id, &ev, s->err) < 0) {
        s->failed = 1;
        return -1;
    }
    n = &s->nodes[k];
    n->ev = ev;
    n->flags |= SR_FETCHED | (ev && ev->rejected ? SR_REJECTED : 0);
    return 0;
}

/* The event of a node, fetched on demand; NULL if unknown (or on failure,
 * with s->failed set). */
static const room_event *sr_event(sr *s, uint32_t k) {
    if (k == SR_NONE || sr_load(s, k) < 0) return NULL;
    return s->nodes[k].ev;
}

/* v12 events do not list the create event: its ID is the room ID with "$"
 * for "!". Like Synapse and Ruma we treat it as an auth event of every
 * other event, so auth chains, power levels and the empty-start iterative
 * auth checks of v2.1 all see it. */
static const char *sr_implicit_create(sr *s, const room_event *ev) {
    if (!s->ver->hydra || is_key(ev, "m.room.create", "")) return NULL;
    if (!ev->room_id || ev->room_id[0] != '!') return NULL;
    if (s->create_id && strcmp(s->create_room, ev->room_id) == 0) return s->create_id;
    if (s->create_id) return NULL; /* events from two rooms: not ours to guess */
    size_t len = strlen(ev->room_id);
    s->create_id = malloc(len + 1);
    if (!s->create_id) return sr_oom(s), NULL;
    s->create_id[0] = '$';
    memcpy(s->create_id + 1, ev->room_id + 1, len);
    s->create_room = ev->room_id;
    return s->create_id;
}

static int sr_add_edge(sr *s, uint32_t k, const char *id) {
    uint32_t a = sr_intern(s, id);
    if (a == SR_NONE) return -1;
    /* dedup holds the owner + 1 of the last edge list a was added to, so a
     * repeated auth event costs O(1) and counts once, as in Synapse's sets. */
    if (s->nodes[a].dedup == k + 1) return 0;
    s->nodes[a].dedup = k + 1;
    return vec_push(s, &s->edges, a);
}

/* Resolve the node's auth events to node indices, once. */
static int sr_edges(sr *s, uint32_t k) {
    if (s->nodes[k].flags & SR_EDGES) return 0;
    const room_event *ev = sr_event(s, k);
    if (s->failed) return -1;
    uint32_t off = (uint32_t)s->edges.n;
    if (ev) {
        for (size_t i = 0; i < ev->n_auth; i++)
            if (ev->auth_events[i] && sr_add_edge(s, k, ev->auth_events[i]) < 0) return -1;
        const char *create = sr_implicit_create(s, ev);
        if (s->failed || (create && sr_add_edge(s, k, create) < 0)) return -1;
    }
    sr_node *n = &s->nodes[k];
    n->edge_off = off;
    n->n_edges = (uint32_t)(s->edges.n - off);
    n->flags |= SR_EDGES;
    return 0;
}

/* The m.room.power_levels event among k's auth events (the first, as
 * Synapse and Ruma take), or SR_NONE. */
static uint32_t sr_pl_auth(sr *s, uint32_t k) {
    if (s->nodes[k].flags & SR_PL_KNOWN) return s->nodes[k].pl_auth;
    if (sr_edges(s, k) < 0) return SR_NONE;
    uint32_t found = SR_NONE;
    for (uint32_t i = 0; i < s->nodes[k].n_edges; i++) {
        uint32_t a = s->edges.v[s->nodes[k].edge_off + i];
        if (is_key(sr_event(s, a), "m.room.power_levels", "")) {
            found = a;
            break;
        }
        if (s->failed) return SR_NONE;
    }
    s->nodes[k].pl_auth = found;
    s->nodes[k].flags |= SR_PL_KNOWN;
    return found;
}

/* ---- walks over auth edges ---------------------------------------------- */

/* Tell the prefetch hook which of the nodes in `level` are still to be
 * fetched: the walks go one level of auth events at a time, so a database
 * behind the fetch callback answers each level with one query. */
static int sr_prefetch(sr *s, const sr_vec *level) {
    if (!s->prefetch || !level->n) return 0;
    if (level->n > s->pf_cap) {
        const char **p = realloc(s->pf_ids, level->n * sizeof *p);
        if (!p) return sr_oom(s);
        s->pf_ids = p;
        s->pf_cap = level->n;
    }
    size_t n = 0;
    for (size_t i = 0; i < level->n; i++)
        if (!(s->nodes[level->v[i]].flags & SR_FETCHED)) s->pf_ids[n++] = s->nodes[level->v[i]].id;
    if (n && s->prefetch(s->ctx, s->pf_ids, n, s->err) < 0) {
        s->failed = 1;
        return -1;
    }
    return 0;
}

static void sr_swap(sr_vec *a, sr_vec *b) {
    sr_vec t = *a;
    *a = *b;
    *b = t;
}

/* Mark the nodes of `from` and their whole auth chains with `flag`, level by
 * level, not descending below nodes that have it already (their chains have
 * it too). */
static int sr_mark_chain(sr *s, const sr_vec *from, uint32_t flag) {
    sr_vec *cur = &s->stack, *next = &s->next;
    cur->n = 0;
    for (size_t i = 0; i < from->n; i++)
        if (!(s->nodes[from->v[i]].flags & flag)) {
            s->nodes[from->v[i]].flags |= flag;
            if (vec_push(s, cur, from->v[i]) < 0) return -1;
        }
    while (cur->n) {
        if (sr_prefetch(s, cur) < 0) return -1;
        next->n = 0;
        for (size_t j = 0; j < cur->n; j++) {
            uint32_t k = cur->v[j];
            if (sr_edges(s, k) < 0) return -1;
            for (uint32_t i = 0; i < s->nodes[k].n_edges; i++) {
                uint32_t a = s->edges.v[s->nodes[k].edge_off + i];
                if (s->nodes[a].flags & flag) continue;
                s->nodes[a].flags |= flag;
                if (vec_push(s, next, a) < 0) return -1;
            }
        }
        sr_swap(cur, next);
    }
    return 0;
}

/* Enter k into this walk (stamp st) unless seen or in every state's chain;
 * count that one more state reaches it. */
static int sr_count_visit(sr *s, uint32_t k, uint32_t st, sr_vec *level, sr_vec *touched) {
    sr_node *n = &s->nodes[k];
    if (n->stamp == st || (n->flags & SR_IN_ALL)) return 0;
    n->stamp = st;
    if (n->count++ == 0 && vec_push(s, touched, k) < 0) return -1;
    return vec_push(s, level, k);
}

/* Count, for every node in the auth chain of one state's conflicted events
 * (themselves included, as Synapse and Ruma build a state's full auth
 * chain), that this state reaches it. Nodes in the unconflicted state's
 * chain are in every state's chain: the walk stops there. New nodes are
 * appended to `touched`. */
static int sr_count_chain(sr *s, const sr_vec *from, sr_vec *touched) {
    uint32_t st = ++s->stamp;
    sr_vec *cur = &s->stack, *next = &s->next;
    cur->n = 0;
    for (size_t i = 0; i < from->n; i++)
        if (sr_count_visit(s, from->v[i], st, cur, touched) < 0) return -1;
    while (cur->n) {
        if (sr_prefetch(s, cur) < 0) return -1;
        next->n = 0;
        for (size_t j = 0; j < cur->n; j++) {
            uint32_t k = cur->v[j];
            if (sr_edges(s, k) < 0) return -1;
            for (uint32_t i = 0; i < s->nodes[k].n_edges; i++)
                if (sr_count_visit(s, s->edges.v[s->nodes[k].edge_off + i], st, next, touched) < 0)
                    return -1;
        }
        sr_swap(cur, next);
    }
    return 0;
}

/* v2.1's conflicted state subgraph: the nodes on an auth path from one
 * conflicted event to another, endpoints included. A depth-first walk from
 * every conflicted event visits exactly the nodes reachable from one; on
 * the way back up, a node is in the subgraph if it is conflicted or one of
 * its auth events is. aux: 1 on the stack, 2 done outside, 3 done inside
 * (valid where stamp is this walk's); a cycle, which only a forged event can
 * make, counts as not reaching. */
static int sr_subgraph(sr *s, const sr_vec *conflicted, sr_vec *out) {
    uint32_t st = ++s->stamp;
    for (size_t r = 0; r < conflicted->n; r++) {
        uint32_t root = conflicted->v[r];
        if (s->nodes[root].stamp == st) continue;
        s->stack.n = 0;
        if (vec_push(s, &s->stack, root) < 0 || vec_push(s, &s->stack, 0) < 0) return -1;
        s->nodes[root].stamp = st;
        s->nodes[root].aux = 1;
        while (s->stack.n) {
            uint32_t k = s->stack.v[s->stack.n - 2], next = s->stack.v[s->stack.n - 1];
            if (sr_edges(s, k) < 0) return -1;
            if (next < s->nodes[k].n_edges) {
                s->stack.v[s->stack.n - 1]++;
                uint32_t a = s->edges.v[s->nodes[k].edge_off + next];
                if (s->nodes[a].stamp == st) continue;
                s->nodes[a].stamp = st;
                s->nodes[a].aux = 1;
                if (vec_push(s, &s->stack, a) < 0 || vec_push(s, &s->stack, 0) < 0) return -1;
                continue;
            }
            s->stack.n -= 2;
            bool in = s->nodes[k].flags & SR_CONFLICTED;
            for (uint32_t i = 0; !in && i < s->nodes[k].n_edges; i++)
                in = s->nodes[s->edges.v[s->nodes[k].edge_off + i]].aux == 3;
            s->nodes[k].aux = in ? 3 : 2;
            if (in && vec_push(s, out, k) < 0) return -1;
        }
    }
    return 0;
}

/* ---- power of an event's sender, per its own auth events --------------- */

typedef struct sr_auth_lookup {
    sr *s;
    uint32_t k;
} sr_auth_lookup;

/* room_state_lookup over k's auth events (the first of a key, unrejected or
 * not, as Synapse's and Ruma's power-level-for-sender do). */
static const room_event *sr_lookup_auth_events(void *ctx, const char *type,
                                               const char *state_key) {
    sr_auth_lookup *l = ctx;
    sr *s = l->s;
    for (uint32_t i = 0; i < s->nodes[l->k].n_edges; i++) {
        const room_event *a = sr_event(s, s->edges.v[s->nodes[l->k].edge_off + i]);
        if (is_key(a, type, state_key)) return a;
    }
    return NULL;
}

/* The power level of k's sender when looking at its auth events: the
 * m.room.power_levels there, or the creator rule when it has none (v12:
 * creators are above every number). */
static int sr_sender_power(sr *s, uint32_t k) {
    if (sr_edges(s, k) < 0) return -1;
    const room_event *ev = s->nodes[k].ev;
    sr_auth_lookup l = {s, k};
    long long pl = ev ? room_user_power_level(s->ver, ev->sender, sr_lookup_auth_events, &l) : 0;
    if (s->failed) return -1;
    s->nodes[k].sender_pl = pl;
    return 0;
}

/* ---- reverse topological power ordering ------------------------------- */

/* x < y: greater sender power, then smaller origin_server_ts, then smaller
 * event ID (byte order, which is code point order for UTF-8). */
static bool sr_power_less(const sr *s, uint32_t x, uint32_t y) {
    const sr_node *a = &s->nodes[x], *b = &s->nodes[y];
    if (a->sender_pl != b->sender_pl) return a->sender_pl > b->sender_pl;
    if (a->ev->origin_server_ts != b->ev->origin_server_ts)
        return a->ev->origin_server_ts < b->ev->origin_server_ts;
    return strcmp(a->id, b->id) < 0;
}

typedef struct sr_heap {
    uint32_t *v;
    size_t n;
} sr_heap;

static void heap_push(const sr *s, sr_heap *h, uint32_t k) {
    size_t i = h->n++;
    while (i && sr_power_less(s, k, h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = k;
}

static uint32_t heap_pop(const sr *s, sr_heap *h) {
    uint32_t top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && sr_power_less(s, h->v[c + 1], h->v[c])) c++;
        if (!sr_power_less(s, h->v[c], last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* Spec: power levels, join rules, and a leave or ban of someone else; the
 * events that can take away someone's ability to act. */
static bool sr_is_power_event(const room_event *ev) {
    if (is_key(ev, "m.room.power_levels", "") || is_key(ev, "m.room.join_rules", ""))
        return true;
    /* Synapse and Ruma count the create event too. It is only ever
     * conflicted in a forged room, and there this sorts it first. */
    if (is_key(ev, "m.room.create", "")) return true;
    if (strcmp(ev->type, "m.room.member") != 0 || !ev->membership) return false;
    return (strcmp(ev->membership, "leave") == 0 || strcmp(ev->membership, "ban") == 0) &&
           strcmp(ev->sender, ev->state_key) != 0;
}

/* Collect X: the power events of the full conflicted set and, from each,
 * the auth events that are in the full conflicted set, recursively. Like
 * Synapse and Ruma, the walk only passes through full-conflicted-set
 * events. */
static int sr_collect_power(sr *s, const sr_vec *full, sr_vec *x) {
    s->stack.n = 0;
    for (size_t i = 0; i < full->n; i++) {
        if (sr_is_power_event(s->nodes[full->v[i]].ev)) {
            s->nodes[full->v[i]].flags |= SR_POWER;
            if (vec_push(s, &s->stack, full->v[i]) < 0 || vec_push(s, x, full->v[i]) < 0) return -1;
        }
    }
    while (s->stack.n) {
        uint32_t k = s->stack.v[--s->stack.n];
        if (sr_edges(s, k) < 0) return -1;
        for (uint32_t i = 0; i < s->nodes[k].n_edges; i++) {
            uint32_t a = s->edges.v[s->nodes[k].edge_off + i];
            if ((s->nodes[a].flags & (SR_FULL | SR_POWER)) != SR_FULL) continue;
            s->nodes[a].flags |= SR_POWER;
            if (vec_push(s, &s->stack, a) < 0 || vec_push(s, x, a) < 0) return -1;
        }
    }
    return 0;
}

/* Kahn's algorithm from the oldest events (no auth events inside X), always
 * taking the smallest candidate; x is rewritten in that order. aux holds a
 * node's outdegree inside X, xi its position in x; who cites whom is kept
 * as compressed rows (parents[start[i]..start[i+1]) cite x->v[i]). */
static int sr_power_sort(sr *s, sr_vec *x) {
    size_t n = x->n, cap = n ? n : 1;
    uint32_t *start = calloc(n + 1, sizeof *start), *pos = malloc(cap * sizeof *pos);
    uint32_t *out = malloc(cap * sizeof *out), *parents = NULL;
    sr_heap h = {malloc(cap * sizeof(uint32_t)), 0};
    int rc = -1;
    if (!start || !pos || !out || !h.v) goto done;
    for (size_t i = 0; i < n; i++) s->nodes[x->v[i]].xi = (uint32_t)i;
    for (size_t i = 0; i < n; i++) {
        if (sr_sender_power(s, x->v[i]) < 0) goto done;
        sr_node *nd = &s->nodes[x->v[i]];
        nd->aux = 0;
        for (uint32_t e = 0; e < nd->n_edges; e++) {
            const sr_node *a = &s->nodes[s->edges.v[nd->edge_off + e]];
            if (a->flags & SR_POWER) nd->aux++, start[a->xi + 1]++;
        }
    }
    for (size_t i = 0; i < n; i++) start[i + 1] += start[i], pos[i] = start[i];
    if (!(parents = malloc((start[n] ? start[n] : 1) * sizeof *parents))) goto done;
    for (size_t i = 0; i < n; i++) {
        const sr_node *nd = &s->nodes[x->v[i]];
        for (uint32_t e = 0; e < nd->n_edges; e++) {
            const sr_node *a = &s->nodes[s->edges.v[nd->edge_off + e]];
            if (a->flags & SR_POWER) parents[pos[a->xi]++] = x->v[i];
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!s->nodes[x->v[i]].aux) heap_push(s, &h, x->v[i]);
    size_t m = 0;
    while (h.n) {
        uint32_t k = heap_pop(s, &h), li = s->nodes[k].xi;
        out[m++] = k;
        for (uint32_t p = start[li]; p < start[li + 1]; p++)
            if (--s->nodes[parents[p]].aux == 0) heap_push(s, &h, parents[p]);
    }
    /* A cycle (forged events only) leaves nodes unsorted: they are dropped. */
    if (m) memcpy(x->v, out, m * sizeof *out);
    x->n = m;
    rc = 0;
done:
    if (rc < 0 && !s->failed) sr_oom(s);
    free(start), free(pos), free(parents), free(h.v), free(out);
    return rc;
}

/* ---- the partially resolved state --------------------------------------- */

/* R: resolved entries over an optional base. The base is the unconflicted
 * state (v1, and v2's first iterative auth checks), read in place from the
 * input maps rather than copied: a key not conflicted has the same event in
 * every state that has it. `over` shadows one key (v1's trial of an event). */
typedef struct sr_state {
    room_state_map *resolved;
    const room_state_map *const *states; /* NULL: no base */
    size_t n_states;
    const room_state_map *conflicted_keys;
    const char *over_type, *over_key, *over_id;
} sr_state;

static const char *sr_state_get(const sr_state *r, const char *type, const char *state_key) {
    if (r->over_id && strcmp(r->over_type, type) == 0 && strcmp(r->over_key, state_key) == 0)
        return r->over_id;
    const char *id = room_state_map_get(r->resolved, type, state_key);
    if (id || !r->states || room_state_map_get(r->conflicted_keys, type, state_key)) return id;
    for (size_t i = 0; i < r->n_states; i++)
        if ((id = room_state_map_get(r->states[i], type, state_key))) return id;
    return NULL;
}

/* The event at a key of R, if we have it and it was not rejected. */
static const room_event *sr_state_event(sr *s, const sr_state *r, const char *type,
                                        const char *state_key) {
    const char *id = sr_state_get(r, type, state_key);
    uint32_t k = id ? sr_intern(s, id) : SR_NONE;
    const room_event *ev = k == SR_NONE ? NULL : sr_event(s, k);
    return ev && !(s->nodes[k].flags & SR_REJECTED) ? ev : NULL;
}

/* ---- iterative auth checks ---------------------------------------------- */

typedef struct sr_auth_set {
    size_t n;
    const char *type[SR_MAX_AUTH_KEYS + 1], *key[SR_MAX_AUTH_KEYS + 1];
    const room_event *ev[SR_MAX_AUTH_KEYS + 1];
} sr_auth_set;

static const room_event *sr_lookup_auth_set(void *ctx, const char *type, const char *state_key) {
    const sr_auth_set *a = ctx;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->type[i], type) == 0 && strcmp(a->key[i], state_key) == 0) return a->ev[i];
    return NULL;
}

/* The auth events k is checked against: for each key the auth rules need
 * (its auth types, and the create event), the event in R, else the one
 * among k's own auth events (the last, as Synapse's and Ruma's dicts keep),
 * unless rejected. In v12 the create event is always the one the room ID
 * names (k's implicit auth event), never R's: the room ID commits to it. */
static int sr_build_auth_set(sr *s, uint32_t k, const sr_state *r, sr_auth_set *a) {
    const room_event *ev = s->nodes[k].ev;
    room_state_key keys[SR_MAX_AUTH_KEYS + 1];
    size_t nk = room_auth_types_for_event(s->ver, ev->json, keys, SR_MAX_AUTH_KEYS);
    if (nk > SR_MAX_AUTH_KEYS) nk = SR_MAX_AUTH_KEYS;
    keys[nk++] = (room_state_key){"m.room.create", ""};
    if (sr_edges(s, k) < 0) return -1;
    a->n = 0;
    for (size_t i = 0; i < nk; i++) {
        if (sr_lookup_auth_set(a, keys[i].type, keys[i].state_key)) continue; /* listed twice */
        bool implied = s->ver->hydra && i == nk - 1;
        const room_event *found =
            implied ? NULL : sr_state_event(s, r, keys[i].type, keys[i].state_key);
        for (uint32_t e = 0; !found && e < s->nodes[k].n_edges; e++) {
            uint32_t ai = s->edges.v[s->nodes[k].edge_off + s->nodes[k].n_edges - 1 - e];
            const room_event *aev = sr_event(s, ai);
            if (is_key(aev, keys[i].type, keys[i].state_key) && !(s->nodes[ai].flags & SR_REJECTED))
                found = aev;
        }
        if (s->failed) return -1;
        if (found) {
            a->type[a->n] = keys[i].type;
            a->key[a->n] = keys[i].state_key;
            a->ev[a->n++] = found;
        }
    }
    return 0;
}

/* Apply each event of `order` to R if the auth rules allow it against
 * sr_build_auth_set. An event once rejected is checked afresh, as the spec
 * says (Synapse keeps such events out; Ruma follows the spec). */
static int sr_iterative_auth(sr *s, const sr_vec *order, sr_state *r) {
    for (size_t i = 0; i < order->n; i++) {
        uint32_t k = order->v[i];
        const room_event *ev = sr_event(s, k);
        if (s->failed) return -1;
        if (!ev || !ev->state_key) continue;
        sr_auth_set a;
        if (sr_build_auth_set(s, k, r, &a) < 0) return -1;
        hs_err why;
        if (room_auth_check(ev, sr_lookup_auth_set, &a, &why) != 0) continue;
        if (s->failed) return -1;
        if (room_state_map_set(r->resolved, ev->type, ev->state_key, s->nodes[k].id) < 0)
            return sr_oom(s);
    }
    return 0;
}

/* ---- mainline ordering ---------------------------------------------------- */

/* Mark the mainline of pl: ml = 1 for the oldest power levels, up to the
 * length for pl itself (Synapse's numbering: larger is closer to pl). */
static int sr_mark_mainline(sr *s, uint32_t pl, sr_vec *line) {
    uint32_t st = ++s->stamp;
    line->n = 0;
    for (uint32_t p = pl; p != SR_NONE && s->nodes[p].stamp != st; p = sr_pl_auth(s, p)) {
        s->nodes[p].stamp = st; /* a forged loop of power levels ends here */
        if (vec_push(s, line, p) < 0) return -1;
    }
    if (s->failed) return -1;
    for (size_t i = 0; i < line->n; i++) {
        sr_node *n = &s->nodes[line->v[i]];
        n->flags |= SR_MAINLINE | SR_ML_KNOWN;
        n->ml = (uint32_t)(line->n - i);
    }
    return 0;
}

/* The mainline depth of the first mainline event in [p, pl(p), ...], 0 if
 * none, memoised on every power levels event the walk passes. */
static int sr_mainline_of(sr *s, uint32_t p, uint32_t *out, sr_vec *path) {
    uint32_t st = ++s->stamp, depth = 0;
    path->n = 0;
    for (; p != SR_NONE; p = sr_pl_auth(s, p)) {
        sr_node *n = &s->nodes[p];
        if (n->flags & SR_ML_KNOWN) {
            depth = n->ml;
            break;
        }
        if (n->stamp == st) break; /* forged loop */
        n->stamp = st;
        if (vec_push(s, path, p) < 0) return -1;
    }
    if (s->failed) return -1;
    for (size_t i = 0; i < path->n; i++) {
        s->nodes[path->v[i]].ml = depth;
        s->nodes[path->v[i]].flags |= SR_ML_KNOWN;
    }
    *out = depth;
    return 0;
}

typedef struct sr_ml_key {
    uint32_t depth;
    long long ts;
    const char *id;
    uint32_t k;
} sr_ml_key;

/* Spec: x < y if x's mainline position is greater (older; none = ∞ first),
 * then origin_server_ts, then event ID. With depth counted from the oldest
 * and 0 for none, that is ascending (depth, ts, id). */
static int sr_ml_cmp(const void *pa, const void *pb) {
    const sr_ml_key *a = pa, *b = pb;
    if (a->depth != b->depth) return a->depth < b->depth ? -1 : 1;
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* Sort `rest` by the mainline ordering based on the power levels event pl
 * (SR_NONE: no mainline, so by timestamp and ID alone). An event's position
 * comes from the power levels among its auth events, not from itself. */
static int sr_mainline_sort(sr *s, uint32_t pl, sr_vec *rest) {
    sr_vec tmp = {0};
    sr_ml_key *keys = malloc((rest->n ? rest->n : 1) * sizeof *keys);
    int rc = -1;
    if (!keys || (pl != SR_NONE && sr_mark_mainline(s, pl, &tmp) < 0)) goto done;
    for (size_t i = 0; i < rest->n; i++) {
        uint32_t k = rest->v[i], depth = 0, p = sr_pl_auth(s, k);
        if (s->failed || (p != SR_NONE && pl != SR_NONE && sr_mainline_of(s, p, &depth, &tmp) < 0))
            goto done;
        keys[i] = (sr_ml_key){depth, s->nodes[k].ev->origin_server_ts, s->nodes[k].id, k};
    }
    qsort(keys, rest->n, sizeof *keys, sr_ml_cmp);
    for (size_t i = 0; i < rest->n; i++) rest->v[i] = keys[i].k;
    rc = 0;
done:
    if (rc < 0 && !s->failed) sr_oom(s);
    free(keys);
    free(tmp.v);
    return rc;
}

/* ---- v2 and v2.1 --------------------------------------------------------- */

typedef struct sr_split {
    room_state_map *conflicted_keys; /* the keys only; values unused */
    sr_vec unconflicted;             /* events of unconflicted keys */
    sr_vec conflicted;               /* the conflicted state set */
    sr_vec *per_state;               /* each state's events at conflicted keys */
} sr_split;

static int sr_add_conflicted(sr *s, sr_split *w, size_t i, const char *id) {
    uint32_t k = sr_intern(s, id);
    if (k == SR_NONE || vec_push(s, &w->per_state[i], k) < 0) return -1;
    if (s->nodes[k].flags & SR_CONFLICTED) return 0;
    s->nodes[k].flags |= SR_CONFLICTED;
    return vec_push(s, &w->conflicted, k);
}

/* One key, met first in states[i] with event id (earlier states lack it). */
static int sr_split_key(sr *s, const room_state_map *const *states, size_t n, size_t i,
                        const char *t, const char *k, const char *id, sr_split *w) {
    bool same = i == 0;
    for (size_t j = i + 1; same && j < n; j++) {
        const char *o = room_state_map_get(states[j], t, k);
        same = o && strcmp(o, id) == 0;
    }
    if (same) {
        uint32_t node = sr_intern(s, id);
        return node == SR_NONE ? -1 : vec_push(s, &w->unconflicted, node);
    }
    if (room_state_map_set(w->conflicted_keys, t, k, "") < 0) return sr_oom(s);
    for (size_t j = i; j < n; j++) {
        const char *o = room_state_map_get(states[j], t, k);
        if (o && sr_add_conflicted(s, w, j, o) < 0) return -1;
    }
    return 0;
}

/* Spec: a key is unconflicted when every state has it with the same event;
 * otherwise (a state lacking the key included) its events are conflicted. */
static int sr_split_v2(sr *s, const room_state_map *const *states, size_t n, sr_split *w) {
    for (size_t i = 0; i < n; i++) {
        size_t it = 0;
        const char *t, *k, *id;
        while (room_state_map_next(states[i], &it, &t, &k, &id)) {
            bool earlier = false;
            for (size_t j = 0; j < i && !earlier; j++) earlier = room_state_map_get(states[j], t, k);
            if (!earlier && sr_split_key(s, states, n, i, t, k, id, w) < 0) return -1;
        }
    }
    return 0;
}

static int sr_add_full(sr *s, uint32_t k, sr_vec *full) {
    if (s->nodes[k].flags & SR_FULL) return 0;
    const room_event *ev = sr_event(s, k);
    if (s->failed) return -1;
    /* Events we do not have cannot be checked, and only state events can
     * enter a state: both stay out, as in Synapse and Ruma. */
    if (!ev || !ev->state_key) return 0;
    s->nodes[k].flags |= SR_FULL;
    return vec_push(s, full, k);
}

/* The full conflicted set: the conflicted state set, the auth difference
 * and, for v2.1, the conflicted state subgraph. */
static int sr_full_set(sr *s, const sr_split *w, size_t n, sr_vec *full) {
    sr_vec touched = {0}, sub = {0};
    int rc = -1;
    if (sr_mark_chain(s, &w->unconflicted, SR_IN_ALL) < 0) goto done;
    for (size_t i = 0; i < n; i++)
        if (sr_count_chain(s, &w->per_state[i], &touched) < 0) goto done;
    for (size_t i = 0; i < w->conflicted.n; i++)
        if (sr_add_full(s, w->conflicted.v[i], full) < 0) goto done;
    for (size_t i = 0; i < touched.n; i++)
        if (s->nodes[touched.v[i]].count < n && sr_add_full(s, touched.v[i], full) < 0) goto done;
    if (s->ver->state_res == ROOM_STATE_RES_V2_1 && sr_subgraph(s, &w->conflicted, &sub) < 0)
        goto done;
    for (size_t i = 0; i < sub.n; i++)
        if (sr_add_full(s, sub.v[i], full) < 0) goto done;
    rc = 0;
done:
    free(touched.v);
    free(sub.v);
    return rc;
}

/* Steps 1–4 of the algorithm, on the full conflicted set, into r. */
static int sr_replay(sr *s, sr_vec *full, sr_state *r) {
    sr_vec x = {0}, rest = {0};
    int rc = -1;
    if (sr_collect_power(s, full, &x) < 0 || sr_power_sort(s, &x) < 0) goto done;
    if (sr_iterative_auth(s, &x, r) < 0) goto done;
    for (size_t i = 0; i < full->n; i++)
        if (!(s->nodes[full->v[i]].flags & SR_POWER) && vec_push(s, &rest, full->v[i]) < 0)
            goto done;
    const char *pl_id = sr_state_get(r, "m.room.power_levels", "");
    uint32_t pl = pl_id ? sr_intern(s, pl_id) : SR_NONE;
    if (s->failed || sr_mainline_sort(s, pl, &rest) < 0) goto done;
    rc = sr_iterative_auth(s, &rest, r);
done:
    free(x.v);
    free(rest.v);
    return rc;
}

static int sr_copy_into(sr *s, room_state_map *out, const room_state_map *from,
                        const room_state_map *skip_keys) {
    size_t it = 0;
    const char *t, *k, *id;
    while (room_state_map_next(from, &it, &t, &k, &id))
        if (!(skip_keys && room_state_map_get(skip_keys, t, k)) &&
            room_state_map_set(out, t, k, id) < 0)
            return sr_oom(s);
    return 0;
}

static int sr_resolve_v2(sr *s, const room_state_map *const *states, size_t n,
                         room_state_map *out) {
    sr_split w = {.conflicted_keys = room_state_map_new(), .per_state = calloc(n, sizeof(sr_vec))};
    sr_state r = {.resolved = room_state_map_new(), .conflicted_keys = w.conflicted_keys};
    sr_vec full = {0};
    int rc = -1;
    if (!w.conflicted_keys || !w.per_state || !r.resolved) {
        sr_oom(s);
        goto done;
    }
    if (sr_split_v2(s, states, n, &w) < 0) goto done;
    if (w.conflicted.n == 0) {
        rc = sr_copy_into(s, out, states[0], NULL);
        goto done;
    }
    if (sr_full_set(s, &w, n, &full) < 0) goto done;
    /* v2 starts from the unconflicted state; v2.1 from nothing, so that state
     * can only come from events that pass the auth checks again. */
    if (s->ver->state_res != ROOM_STATE_RES_V2_1) r.states = states, r.n_states = n;
    if (sr_replay(s, &full, &r) < 0) goto done;
    /* Step 5: the unconflicted state wins over whatever the replay set. */
    rc = sr_copy_into(s, out, r.resolved, NULL);
    if (rc == 0) rc = sr_copy_into(s, out, states[0], w.conflicted_keys);
done:
    for (size_t i = 0; w.per_state && i < n; i++) free(w.per_state[i].v);
    free(w.per_state);
    free(w.unconflicted.v);
    free(w.conflicted.v);
    free(full.v);
    room_state_map_free(w.conflicted_keys);
    room_state_map_free(r.resolved);
    return rc;
}

/* ---- v1 -------------------------------------------------------------------- */

/* One conflicted key and its events, ascending by depth then descending by
 * sha1(event_id): the order of the spec's auth-event passes. */
typedef struct sr_v1_ev {
    long long depth;
    unsigned char sha1[20];
    uint32_t k;
} sr_v1_ev;

typedef struct sr_v1_block {
    const char *type, *state_key;
    sr_v1_ev *evs;
    size_t n;
} sr_v1_block;

static int sr_v1_cmp(const void *pa, const void *pb) {
    const sr_v1_ev *a = pa, *b = pb;
    if (a->depth != b->depth) return a->depth < b->depth ? -1 : 1;
    return -memcmp(a->sha1, b->sha1, sizeof a->sha1);
}

/* v1 has no notion of rejected events in its inputs: like Synapse, which
 * loads them without rejected events, we treat rejected as absent. */
static const room_event *sr_v1_event(sr *s, uint32_t k) {
    const room_event *ev = sr_event(s, k);
    return ev && !(s->nodes[k].flags & SR_REJECTED) && ev->state_key ? ev : NULL;
}

/* Gather a conflicted key's distinct events we have into b, sorted. */
static int sr_v1_block_fill(sr *s, const room_state_map *const *states, size_t n,
                            sr_v1_block *b) {
    if (!(b->evs = calloc(n, sizeof *b->evs))) return sr_oom(s);
    for (size_t j = 0; j < n; j++) {
        const char *id = room_state_map_get(states[j], b->type, b->state_key);
        uint32_t k = id ? sr_intern(s, id) : SR_NONE;
        if (k == SR_NONE) {
            if (s->failed) return -1;
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < b->n && !dup; i++) dup = b->evs[i].k == k;
        const room_event *ev = dup ? NULL : sr_v1_event(s, k);
        if (s->failed) return -1;
        if (!ev) continue;
        unsigned int len = 0;
        if (!EVP_Digest(ev->event_id, strlen(ev->event_id), b->evs[b->n].sha1, &len, EVP_sha1(),
                        NULL))
            return sr_oom(s);
        b->evs[b->n].depth = ev->depth;
        b->evs[b->n++].k = k;
    }
    qsort(b->evs, b->n, sizeof *b->evs, sr_v1_cmp);
    return 0;
}

/* v1 conflicts: a key is conflicted when two states hold different events
 * for it; a key some states lack is not. */
static int sr_v1_split(sr *s, const room_state_map *const *states, size_t n,
                       room_state_map *conflicted_keys, sr_v1_block **blocks, size_t *nb) {
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        size_t it = 0;
        const char *t, *k, *id;
        while (room_state_map_next(states[i], &it, &t, &k, &id)) {
            bool seen = false, conflict = false;
            for (size_t j = 0; j < i && !seen; j++) seen = room_state_map_get(states[j], t, k);
            for (size_t j = i + 1; !seen && !conflict && j < n; j++) {
                const char *o = room_state_map_get(states[j], t, k);
                conflict = o && strcmp(o, id) != 0;
            }
            if (seen || !conflict) continue;
            if (room_state_map_set(conflicted_keys, t, k, "") < 0) return sr_oom(s);
            if (*nb == cap) {
                sr_v1_block *p = realloc(*blocks, (cap = cap ? 2 * cap : 16) * sizeof *p);
                if (!p) return sr_oom(s);
                *blocks = p;
            }
            (*blocks)[(*nb)++] = (sr_v1_block){.type = t, .state_key = k};
        }
    }
    return 0;
}

/* Load the conflicted events: one prefetch for all, then sorted blocks. */
static int sr_v1_fill(sr *s, const room_state_map *const *states, size_t n,
                      sr_v1_block *blocks, size_t nb) {
    sr_vec all = {0};
    uint32_t st = ++s->stamp; /* each event once, though several states hold it */
    int rc = -1;
    for (size_t i = 0; i < nb; i++)
        for (size_t j = 0; j < n; j++) {
            const char *id = room_state_map_get(states[j], blocks[i].type, blocks[i].state_key);
            uint32_t k = id ? sr_intern(s, id) : SR_NONE;
            if (id && k == SR_NONE) goto done;
            if (k == SR_NONE || s->nodes[k].stamp == st) continue;
            s->nodes[k].stamp = st;
            if (vec_push(s, &all, k) < 0) goto done;
        }
    if (sr_prefetch(s, &all) < 0) goto done;
    for (size_t i = 0; i < nb; i++)
        if (sr_v1_block_fill(s, states, n, &blocks[i]) < 0) goto done;
    rc = 0;
done:
    free(all.v);
    return rc;
}

/* Is k allowed by the auth rules in R (v1 checks against R alone)? */
typedef struct sr_v1_lookup {
    sr *s;
    const sr_state *r;
} sr_v1_lookup;

static const room_event *sr_v1_lookup_state(void *ctx, const char *type, const char *state_key) {
    sr_v1_lookup *l = ctx;
    const char *id = sr_state_get(l->r, type, state_key);
    uint32_t k = id ? sr_intern(l->s, id) : SR_NONE;
    return k == SR_NONE ? NULL : sr_v1_event(l->s, k);
}

static bool sr_v1_allowed(sr *s, const sr_state *r, uint32_t k) {
    sr_v1_lookup l = {s, r};
    hs_err why;
    return room_auth_check(s->nodes[k].ev, sr_v1_lookup_state, &l, &why) == 0 && !s->failed;
}

/* Power levels, join rules, members: start from the oldest event and move
 * to each next one while the auth rules allow it in R with the previous
 * one in place; stop at the first refusal. */
static uint32_t sr_v1_auth_block(sr *s, sr_state *r, const sr_v1_block *b) {
    uint32_t prev = b->evs[0].k;
    r->over_type = b->type, r->over_key = b->state_key;
    for (size_t i = 1; i < b->n; i++) {
        r->over_id = s->nodes[prev].id;
        if (!sr_v1_allowed(s, r, b->evs[i].k)) break;
        prev = b->evs[i].k;
    }
    r->over_id = NULL;
    return prev;
}

/* Other keys: the highest depth, lowest sha1 event allowed in R; if none
 * is, the lowest one (Synapse and Dendrite both fall back to it). */
static uint32_t sr_v1_normal_block(sr *s, const sr_state *r, const sr_v1_block *b) {
    for (size_t i = b->n; i-- > 1;)
        if (sr_v1_allowed(s, r, b->evs[i].k)) return b->evs[i].k;
    return b->evs[0].k;
}

/* The spec's passes: power levels, then join rules, then members, then the
 * rest. R takes a pass's results when the pass ends (as in Synapse and
 * Dendrite), so members resolved in one pass do not authorise each other. */
static int sr_v1_class(const sr_v1_block *b) {
    if (strcmp(b->type, "m.room.power_levels") == 0 && b->state_key[0] == '\0') return 0;
    if (strcmp(b->type, "m.room.join_rules") == 0) return 1;
    if (strcmp(b->type, "m.room.member") == 0) return 2;
    return 3;
}

static int sr_v1_passes(sr *s, sr_state *r, sr_v1_block *blocks, size_t nb, uint32_t *res) {
    for (int pass = 0; pass < 4; pass++) {
        for (size_t i = 0; i < nb; i++) {
            if (blocks[i].n < 2 || sr_v1_class(&blocks[i]) != pass) continue;
            res[i] = pass < 3 ? sr_v1_auth_block(s, r, &blocks[i])
                              : sr_v1_normal_block(s, r, &blocks[i]);
            if (s->failed) return -1;
        }
        for (size_t i = 0; i < nb; i++)
            if (blocks[i].n >= 2 && sr_v1_class(&blocks[i]) == pass &&
                room_state_map_set(r->resolved, blocks[i].type, blocks[i].state_key,
                                   s->nodes[res[i]].id) < 0)
                return sr_oom(s);
    }
    return 0;
}

static int sr_resolve_v1(sr *s, const room_state_map *const *states, size_t n,
                         room_state_map *out) {
    room_state_map *ck = room_state_map_new();
    sr_state r = {.resolved = room_state_map_new(), .states = states, .n_states = n,
                  .conflicted_keys = ck};
    sr_v1_block *blocks = NULL;
    size_t nb = 0;
    uint32_t *res = NULL;
    int rc = -1;
    if (!ck || !r.resolved) {
        sr_oom(s);
        goto done;
    }
    if (sr_v1_split(s, states, n, ck, &blocks, &nb) < 0 ||
        sr_v1_fill(s, states, n, blocks, nb) < 0)
        goto done;
    if (nb && !(res = calloc(nb, sizeof *res))) {
        sr_oom(s);
        goto done;
    }
    if (sr_v1_passes(s, &r, blocks, nb, res) < 0) goto done;
    for (size_t i = 0; i < n; i++)
        if (sr_copy_into(s, out, states[i], ck) < 0) goto done;
    /* A conflict down to one event we have is no conflict (Synapse): it
     * joins the result but, as there, was not in R for the passes. */
    for (size_t i = 0; i < nb; i++)
        if (blocks[i].n == 1 && room_state_map_set(out, blocks[i].type, blocks[i].state_key,
                                                   s->nodes[blocks[i].evs[0].k].id) < 0) {
            sr_oom(s);
            goto done;
        }
    rc = sr_copy_into(s, out, r.resolved, NULL);
done:
    for (size_t i = 0; i < nb; i++) free(blocks[i].evs);
    free(blocks);
    free(res);
    room_state_map_free(ck);
    room_state_map_free(r.resolved);
    return rc;
}

/* ---- entry point ------------------------------------------------------------ */

int room_state_resolve_batched(const room_version *v, const room_state_map *const *states,
                               size_t n_states, room_event_fetch fetch,
                               room_event_prefetch prefetch, void *ctx, room_state_map *out,
                               hs_err *err) {
    if (!v || !out || (n_states && (!states || !fetch)))
        return hs_err_set(err, 500, "M_UNKNOWN", "state resolution: bad arguments");
    room_state_map_clear(out);
    sr s = {.ver = v, .fetch = fetch, .prefetch = prefetch, .ctx = ctx, .err = err};
    int rc;
    if (n_states == 0)
        rc = 0;
    else if (n_states == 1)
        rc = sr_copy_into(&s, out, states[0], NULL);
    else if (v->state_res == ROOM_STATE_RES_V1)
        rc = sr_resolve_v1(&s, states, n_states, out);
    else
        rc = sr_resolve_v2(&s, states, n_states, out);
    if (rc < 0) room_state_map_clear(out);
    free(s.nodes);
    free(s.index);
    free(s.edges.v);
    free(s.stack.v);
    free(s.next.v);
    free(s.pf_ids);
    free(s.create_id);
    return rc < 0 ? -1 : 0;
}

int room_state_resolve(const room_version *v, const room_state_map *const *states,
                       size_t n_states, room_event_fetch fetch, void *ctx,
                       room_state_map *out, hs_err *err) {
    return room_state_resolve_batched(v, states, n_states, fetch, NULL, ctx, out, err);
}
