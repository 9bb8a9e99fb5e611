/* state_groups.c — room states stored as snapshots and deltas.
 *
 * A group's entries are packed into one bytea, "type\0state_key\0event_id\0"
 * per entry, an empty event_id meaning "removed". A delta chain is loaded in
 * one recursive query and applied from its snapshot forward; chains stop at
 * ROOM_STATE_MAX_CHAIN so loading never walks far. The state after a state
 * event is a one-entry delta, so a room's history costs little disk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

typedef struct blob {
    char *p;
    size_t len, cap;
} blob;

static int blob_put(blob *b, const char *s) {
    size_t n = strlen(s) + 1;
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static int blob_entry(blob *b, const char *t, const char *k, const char *id) {
    return blob_put(b, t) || blob_put(b, k) || blob_put(b, id) ? -1 : 0;
}

/* Apply packed entries to m. Malformed blobs (never written by us) stop early. */
static int apply_blob(room_state_map *m, const char *p, size_t len) {
    const char *end = p + len;
    while (p < end) {
        const char *t = p, *k = memchr(t, 0, (size_t)(end - t));
        if (!k++ || k >= end) return -1;
        const char *id = memchr(k, 0, (size_t)(end - k));
        if (!id++ || id >= end) return -1;
        const char *next = memchr(id, 0, (size_t)(end - id));
        if (!next) return -1;
        if (*id) {
            if (room_state_map_set(m, t, k, id) < 0) return -1;
        } else {
            room_state_map_remove(m, t, k);
        }
        p = next + 1;
    }
    return 0;
}

int room_state_group_load(db_conn *c, long long group, room_state_map *out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "WITH RECURSIVE chain(id, prev_group, entries, depth) AS ("
        "  SELECT id, prev_group, entries, 0 FROM state_groups WHERE id = $1"
        "  UNION ALL"
        "  SELECT g.id, g.prev_group, g.entries, chain.depth + 1"
        "  FROM state_groups g JOIN chain ON g.id = chain.prev_group)"
        " SELECT entries FROM chain ORDER BY depth DESC");
    char gid[24];
    snprintf(gid, sizeof gid, "%lld", group);
    room_state_map_clear(out);
    PGresult *r = db_run_ex(c, &q, 1, (const char *[]){gid}, NULL, NULL, 1, err);
    if (!r) return -1;
    int rc = 0;
    if (PQntuples(r) == 0) rc = hs_err_set(err, 500, "M_UNKNOWN", "state group %lld is missing", group);
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        if (apply_blob(out, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0)) < 0)
            rc = hs_err_set(err, 500, "M_UNKNOWN", "state group %lld is corrupt", group);
    PQclear(r);
    return rc;
}

static long long insert_group(db_conn *c, const char *room_id, long long parent, int chain_len,
                              size_t n_entries, const blob *b, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO state_groups (room_id, prev_group, chain_len, n_entries, entries)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id");
    char pg[24], cl[16], ne[24];
    snprintf(pg, sizeof pg, "%lld", parent);
    snprintf(cl, sizeof cl, "%d", chain_len);
    snprintf(ne, sizeof ne, "%zu", n_entries);
    const char *p[] = {room_id, parent > 0 ? pg : NULL, cl, ne, b->p ? b->p : ""};
    int lens[] = {0, 0, 0, 0, (int)b->len};
    int fmts[] = {0, 0, 0, 0, 1};
    PGresult *r = db_run_ex(c, &ins, 5, p, lens, fmts, 0, err);
    if (!r) return -1;
    long long id = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return id;
}

/* chain_len and n_entries of a group; -1 if it does not exist. */
static int group_info(db_conn *c, long long group, int *chain_len, long long *n, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT chain_len, n_entries FROM state_groups WHERE id = $1");
    char gid[24];
    snprintf(gid, sizeof gid, "%lld", group);
    PGresult *r = db_run(c, &q, 1, (const char *[]){gid}, err);
    if (!r) return -1;
    int rc = PQntuples(r) == 1 ? 0 : hs_err_set(err, 500, "M_UNKNOWN", "no state group %lld", group);
    if (rc == 0) *chain_len = atoi(PQgetvalue(r, 0, 0)), *n = atoll(PQgetvalue(r, 0, 1));
    PQclear(r);
    return rc;
}

static long long store_snapshot(db_conn *c, const char *room_id, const room_state_map *state,
                                hs_err *err) {
    blob b = {0};
    size_t it = 0;
    const char *t, *k, *id;
    while (room_state_map_next(state, &it, &t, &k, &id))
        if (blob_entry(&b, t, k, id) < 0) {
            free(b.p);
            return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
        }
    long long g = insert_group(c, room_id, 0, 0, room_state_map_count(state), &b, err);
    free(b.p);
    return g;
}

long long room_state_group_store(db_conn *c, const char *room_id, long long parent,
                                 const room_state_map *parent_state,
                                 const room_state_map *state, hs_err *err) {
    int chain = 0;
    long long parent_n = 0;
    if (parent <= 0 || !parent_state || group_info(c, parent, &chain, &parent_n, err) < 0 ||
        chain + 1 >= ROOM_STATE_MAX_CHAIN)
        return store_snapshot(c, room_id, state, err);
    blob b = {0};
    size_t it = 0, changes = 0;
    const char *t, *k, *id;
    int oom = 0;
    while (room_state_map_next(state, &it, &t, &k, &id)) {
        const char *old = room_state_map_get(parent_state, t, k);
        if (!old || strcmp(old, id) != 0) oom |= blob_entry(&b, t, k, id), changes++;
    }
    it = 0;
    while (room_state_map_next(parent_state, &it, &t, &k, &id))
        if (!room_state_map_get(state, t, k)) oom |= blob_entry(&b, t, k, ""), changes++;
    long long g;
    if (oom) g = hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    else if (changes == 0) g = parent;
    /* A delta that rewrites much of the state is better as a snapshot. */
    else if (changes * 2 > room_state_map_count(state) + 1) g = store_snapshot(c, room_id, state, err);
    else g = insert_group(c, room_id, parent, chain + 1, room_state_map_count(state), &b, err);
    free(b.p);
    return g;
}

long long room_state_group_add_one(db_conn *c, const char *room_id, long long parent,
                                   const char *type, const char *state_key,
                                   const char *event_id, hs_err *err) {
    int chain = 0;
    long long n = 0;
    if (group_info(c, parent, &chain, &n, err) < 0) return -1;
    if (chain + 1 >= ROOM_STATE_MAX_CHAIN) {
        room_state_map *m = room_state_map_new();
        long long g = -1;
        if (m && room_state_group_load(c, parent, m, err) == 0 &&
            room_state_map_set(m, type, state_key, event_id) == 0)
            g = store_snapshot(c, room_id, m, err);
        room_state_map_free(m);
        return g;
    }
    blob b = {0};
    if (blob_entry(&b, type, state_key, event_id) < 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    /* n_entries may count a replaced key twice: it only steers snapshotting. */
    long long g = insert_group(c, room_id, parent, chain + 1, (size_t)n + 1, &b, err);
    free(b.p);
    return g;
}
