/* device_lists.c — who must re-fetch whose keys: the device_lists section
 * of /sync, GET /keys/changes, and the hooks that feed them (membership
 * changes, devices created or deleted).
 *
 * Everything lives on DB_STREAM_DEVICE_LISTS: key changes in
 * e2e_device_list_changes (written by keys.c, cross_signing.c and
 * client_e2ee_devices_changed), membership changes in
 * e2e_device_list_memberships (client_e2ee_on_membership). A sync between two
 * positions reads both ranges and judges "shares a room" by the current
 * state, as Synapse does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_internal.h"
#include "notifier.h"
#include "sync_token.h"

/* ---- sets of user IDs (JSON objects used as sets) ------------------------ */

static void set_add(json_t *set, const char *u) { json_object_set_new(set, u, json_true()); }
static void set_del(json_t *set, const char *u) { json_object_del(set, u); }

/* Every user joined to room_id into set (or out of it when del). */
static int room_members(db_conn *c, const char *room_id, json_t *set, bool del, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join'");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++)
        del ? set_del(set, PQgetvalue(r, i, 0)) : set_add(set, PQgetvalue(r, i, 0));
    PQclear(r);
    return 0;
}

/* ---- the sync section ---------------------------------------------------- */

/* Key changes of users who share a joined room with me now (or are me), and
 * changes meant for me alone (my user-signing signatures). */
static int key_changes(db_conn *c, const char *me, const char *from, const char *to,
                       json_t *changed, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT d.user_id FROM e2e_device_list_changes d"
        " WHERE d.stream_id > $2 AND d.stream_id <= $3"
        " AND (d.only_for = $1 OR (d.only_for IS NULL AND (d.user_id = $1 OR EXISTS ("
        "  SELECT 1 FROM current_state mine JOIN current_state theirs"
        "   ON theirs.room_id = mine.room_id AND theirs.type = 'm.room.member'"
        "   AND theirs.state_key = d.user_id AND theirs.membership = 'join'"
        "  WHERE mine.type = 'm.room.member' AND mine.state_key = $1"
        "   AND mine.membership = 'join'))))");
    PGresult *r = db_run(c, &q, 3, (const char *[]){me, from, to}, err);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) set_add(changed, PQgetvalue(r, i, 0));
    PQclear(r);
    return 0;
}

/* Membership changes in rooms I am joined to now, and my own, in order:
 * whoever joins (or is invited, or knocks) is `changed`, whoever leaves a
 * `left` candidate; my joining a room makes its members `changed`, my
 * leaving one makes them candidates. */
static int membership_changes(db_conn *c, const char *me, const char *from, const char *to,
                              json_t *changed, json_t *left, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT m.room_id, m.user_id, m.membership FROM e2e_device_list_memberships m"
        " WHERE m.stream_id > $2 AND m.stream_id <= $3 AND (m.user_id = $1 OR EXISTS ("
        "  SELECT 1 FROM current_state mine WHERE mine.room_id = m.room_id"
        "   AND mine.type = 'm.room.member' AND mine.state_key = $1 AND mine.membership = 'join'))"
        " ORDER BY m.stream_id");
    PGresult *r = db_run(c, &q, 3, (const char *[]){me, from, to}, err);
    if (!r) return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *room = PQgetvalue(r, i, 0), *who = PQgetvalue(r, i, 1);
        const char *m = PQgetvalue(r, i, 2);
        bool in = !strcmp(m, "join") || !strcmp(m, "invite") || !strcmp(m, "knock");
        if (strcmp(who, me) != 0) {
            in ? set_add(changed, who) : set_add(left, who);
            in ? set_del(left, who) : set_del(changed, who);
        } else if (!strcmp(m, "join")) {
            rc = room_members(c, room, changed, false, err);
            if (rc == 0) rc = room_members(c, room, left, true, err);
        } else if (!in) {
            rc = room_members(c, room, left, false, err);
        }
    }
    PQclear(r);
    return rc;
}

/* Keep in `left` only users who share no joined room with me now. */
static int still_shared(db_conn *c, const char *me, json_t *left, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT theirs.state_key FROM current_state mine JOIN current_state theirs"
        " ON theirs.room_id = mine.room_id AND theirs.type = 'm.room.member'"
        " AND theirs.membership = 'join'"
        " WHERE mine.type = 'm.room.member' AND mine.state_key = $1 AND mine.membership = 'join'"
        " AND theirs.state_key = ANY($2::text[])");
    set_del(left, me);
    size_t n = json_object_size(left);
    if (!n) return 0;
    const char **ids = calloc(n + 1, sizeof *ids);
    const char *u;
    json_t *v;
    size_t i = 0;
    json_object_foreach(left, u, v) ids[i++] = u;
    char *arr = db_text_array(ids, n);
    PGresult *r = db_run(c, &q, 2, (const char *[]){me, arr}, err);
    free(arr);
    free(ids);
    if (!r) return -1;
    for (int k = 0; k < PQntuples(r); k++) set_del(left, PQgetvalue(r, k, 0));
    PQclear(r);
    return 0;
}

/* Append the set's members to arr unless already there. */
static void append_set(json_t *arr, json_t *set) {
    const char *u;
    json_t *v;
    json_object_foreach(set, u, v) {
        bool dup = false;
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) if (!strcmp(json_string_value(e), u)) dup = true;
        if (!dup) json_array_append_new(arr, json_string(u));
    }
}

int client_device_lists_sync(db_conn *c, const char *user_id, long long from, long long to,
                             json_t *changed, json_t *left, hs_err *err) {
    if (to <= from) return 0;
    char f[24], t[24];
    snprintf(f, sizeof f, "%lld", from);
    snprintf(t, sizeof t, "%lld", to);
    json_t *ch = json_object(), *lf = json_object();
    int rc = key_changes(c, user_id, f, t, ch, err) < 0 ||
                     membership_changes(c, user_id, f, t, ch, lf, err) < 0 ||
                     still_shared(c, user_id, lf, err) < 0
                 ? -1
                 : 0;
    if (rc == 0) {
        const char *u;
        json_t *v;
        json_object_foreach(lf, u, v) set_del(ch, u);
        append_set(changed, ch);
        append_set(left, lf);
    }
    json_decref(ch);
    json_decref(lf);
    return rc;
}

int client_device_lists_rooms_joined(db_conn *c, const char *user_id, const char *const *room_ids,
                                     size_t n, json_t *changed, json_t *left, hs_err *err) {
    json_t *set = json_object();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = room_members(c, room_ids[i], set, false, err);
    set_del(set, user_id);
    if (rc == 0) {
        append_set(changed, set);
        for (size_t i = json_array_size(left); i > 0; i--)
            if (json_object_get(set, json_string_value(json_array_get(left, i - 1))))
                json_array_remove(left, i - 1);
    }
    json_decref(set);
    return rc;
}

/* ---- GET /keys/changes --------------------------------------------------- */

static int get_keys_changes(hs_req *r, json_t **out, hs_err *err) {
    const char *from = hs_req_query(r, "from"), *to = hs_req_query(r, "to");
    if (!from) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing string query param: from");
    sync_token ft, tt;
    if (!sync_token_parse(from, &ft))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'from' is not a sync token");
    /* `to` is a hint (Synapse ignores it): never past what has committed. */
    long long now = db_stream_current(DB_STREAM_DEVICE_LISTS), upto = now;
    if (to && *to) {
        if (!sync_token_parse(to, &tt))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "'to' is not a sync token");
        if (tt.pos[DB_STREAM_DEVICE_LISTS] < now) upto = tt.pos[DB_STREAM_DEVICE_LISTS];
    }
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *changed = json_array(), *left = json_array();
    int rc = client_device_lists_sync(c, r->user_id, ft.pos[DB_STREAM_DEVICE_LISTS], upto,
                                      changed, left, err);
    db_release(r->srv->db, c);
    if (rc < 0) return json_decref(changed), json_decref(left), -1;
    *out = json_pack("{s:o, s:o}", "changed", changed, "left", left);
    return 200;
}

void e2ee_device_lists_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/keys/changes", get_keys_changes, HS_AUTH | HS_R0 | HS_GUEST);
}

/* ---- hooks for other areas ----------------------------------------------- */

typedef struct member_job {
    const char *room_id, *membership;
    const char *const *user_ids;
    size_t n;
    long long pos;
} member_job;

static int member_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO e2e_device_list_memberships (stream_id, room_id, user_id, membership)"
        " SELECT $1, $2, unnest($3::text[]), $4");
    /* A remote user we share no room with any more: their device list is
     * no longer followed (sql/017), so after a return it is fetched again
     * rather than trusted with the updates missed meanwhile. */
    static db_stmt unfollow = DB_STMT(
        "DELETE FROM fed_device_list_remote f WHERE f.user_id = ANY($1::text[]) AND NOT EXISTS"
        " (SELECT 1 FROM current_state WHERE type = 'm.room.member' AND state_key = f.user_id"
        " AND membership = 'join')");
    member_job *j = arg;
    if (e2ee_dl_reserve(c, &j->pos, err) < 0) return -1;
    char p[24], *ids = db_text_array(j->user_ids, j->n);
    snprintf(p, sizeof p, "%lld", j->pos);
    long rc = ids ? 0 : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    if (rc == 0 && strcmp(j->membership, "join"))
        rc = db_exec(c, &unfollow, 1, (const char *[]){ids}, err);
    if (rc >= 0) rc = db_exec(c, &ins, 4, (const char *[]){p, j->room_id, ids, j->membership}, err);
    free(ids);
    return rc < 0 ? -1 : 0;
}

static int outside_txn(db_conn *c, const char *who, hs_err *err) {
    if (c->in_txn || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return hs_err_set(err, 500, "M_UNKNOWN",
                          "%s must be called after COMMIT, outside a transaction", who);
    return 0;
}

/* One device-list position for the membership of user_ids in room_id. */
static int record_memberships(db_conn *c, const char *room_id, const char *const *user_ids,
                              size_t n, const char *membership, hs_err *err) {
    member_job j = {room_id, membership, user_ids, n, 0};
    int rc = e2ee_txn(c, member_txn, &j, err);
    if (j.pos > 0) db_stream_done(DB_STREAM_DEVICE_LISTS, j.pos);
    hs_notify_room(room_id);
    return rc;
}

int client_e2ee_on_membership(db_conn *c, const char *room_id, const char *user_id,
                              const char *membership, hs_err *err) {
    if (outside_txn(c, "client_e2ee_on_membership", err) < 0) return -1;
    int rc = record_memberships(c, room_id, (const char *const[]){user_id}, 1, membership, err);
    hs_notify_users((const char *const[]){user_id}, 1);
    return rc;
}

int client_e2ee_on_members_learned(db_conn *c, const char *room_id, const char *const *user_ids,
                                   size_t n, hs_err *err) {
    if (outside_txn(c, "client_e2ee_on_members_learned", err) < 0) return -1;
    return n ? record_memberships(c, room_id, user_ids, n, "join", err) : 0;
}

typedef struct devices_job {
    const char *user_id;
    const char *const *device_ids;
    size_t n;
    long long pos;
} devices_job;

static int devices_txn(db_conn *c, void *arg, hs_err *err) {
    devices_job *j = arg;
    if (e2ee_dl_reserve(c, &j->pos, err) < 0) return -1;
    for (size_t i = 0; i < j->n; i++)
        if (e2ee_dl_record(c, j->pos, j->user_id, j->device_ids[i], NULL, err) < 0) return -1;
    return 0;
}

int client_e2ee_devices_changed(db_conn *c, const char *user_id, const char *const *device_ids,
                                size_t n, hs_err *err) {
    if (outside_txn(c, "client_e2ee_devices_changed", err) < 0) return -1;
    if (!n) return 0;
    devices_job j = {user_id, device_ids, n, 0};
    int rc = e2ee_txn(c, devices_txn, &j, err);
    e2ee_dl_done(c, j.pos, user_id, NULL);
    return rc;
}
