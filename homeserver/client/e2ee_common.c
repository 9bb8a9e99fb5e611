/* e2ee_common.c — what the end-to-end encryption files share: user IDs,
 * key decoding and signature checks, cross-signing key loading, the
 * device-lists stream (reserve, record, release, wake) and the route list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2ee_internal.h"
#include "homeserver/core/base64.h"
#include "homeserver/core/json.h"
#include "homeserver/core/signing.h"
#include "homeserver/db/streams.h"
#include "notifier.h"

void client_e2ee_routes(hs_router *rt) {
    e2ee_keys_routes(rt);
    e2ee_claim_routes(rt);
    e2ee_cross_signing_routes(rt);
    e2ee_to_device_routes(rt);
    e2ee_device_lists_routes(rt);
    e2ee_key_backup_routes(rt);
    e2ee_room_keys_routes(rt);
    e2ee_dehydrated_routes(rt);
}

/* ---- users and keys ------------------------------------------------------ */

const char *e2ee_user_server(const char *user_id) {
    if (!user_id || user_id[0] != '@') return NULL;
    const char *colon = strchr(user_id, ':');
    if (!colon || colon == user_id + 1 || !colon[1] || strlen(user_id) > 255) return NULL;
    return colon + 1;
}

bool e2ee_is_local(const hs_req *r, const char *user_id) {
    const char *s = e2ee_user_server(user_id);
    return s && !strcmp(s, r->srv->cfg->server_name);
}

int e2ee_ed25519_decode(const char *b64, unsigned char pk[32]) {
    size_t n = 0;
    if (!b64 || hs_b64_decode(b64, strlen(b64), pk, 32, &n, false) < 0 || n != 32) return -1;
    return 0;
}

int e2ee_verify(const json_t *obj, const char *signer, const char *key_id, const char *pk_b64,
                const char *what, hs_err *err) {
    unsigned char pk[32];
    if (e2ee_ed25519_decode(pk_b64, pk) < 0)
        return hs_err_set(err, 400, "M_INVALID_SIGNATURE", "%s: %s is not an ed25519 key", what,
                          key_id);
    hs_err why = {0};
    if (hs_json_verify(obj, signer, key_id, pk, &why) < 0)
        return hs_err_set(err, 400, "M_INVALID_SIGNATURE", "%s: %s", what, why.msg);
    return 0;
}

static const char *const not_signed[] = {"signatures", "unsigned", NULL};

char *e2ee_canonical(const json_t *v, bool unsigned_only, hs_err *err) {
    return hs_json_canonical_ex(v, unsigned_only ? not_signed : NULL, 0, NULL, err);
}

json_t *e2ee_parse_stored(const char *text) {
    return json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

json_t *e2ee_failure(const hs_err *e) {
    return json_pack("{s:s, s:s}", "errcode", e->errcode[0] ? e->errcode : "M_UNKNOWN", "error",
                     e->msg);
}

/* ---- cross-signing keys -------------------------------------------------- */

json_t *e2ee_cs_key_load(db_conn *c, const char *user_id, const char *keytype, hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT key_json FROM e2e_cross_signing_keys WHERE user_id = $1 AND keytype = $2");
    PGresult *r = db_run(c, &q, 2, (const char *[]){user_id, keytype}, err);
    if (!r) return NULL;
    json_t *k = PQntuples(r) ? e2ee_parse_stored(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return k;
}

const char *e2ee_cs_key_public(const json_t *key) {
    const json_t *keys = json_object_get(key, "keys");
    if (!json_is_object(keys) || json_object_size(keys) != 1) return NULL;
    const char *id = json_object_iter_key(json_object_iter((json_t *)keys));
    const char *pk = json_string_value(json_object_get(keys, id));
    unsigned char raw[32];
    if (!pk || strncmp(id, "ed25519:", 8) != 0 || strcmp(id + 8, pk) != 0 ||
        e2ee_ed25519_decode(pk, raw) < 0)
        return NULL;
    return pk;
}

/* ---- transactions, streams and wake-ups ---------------------------------- */

int e2ee_txn(db_conn *c, db_txn_fn fn, void *arg, hs_err *err) {
    for (int attempt = 0;; attempt++) {
        if (db_script(c, "BEGIN", err) < 0) return -1;
        c->in_txn = true;
        int rc = fn(c, arg, err);
        if (rc == 0) rc = db_script(c, "COMMIT", err);
        else db_script(c, "ROLLBACK", NULL);
        c->in_txn = false;
        if (rc == 0) return 0;
        /* A deadlock (two uploads locking rows in different orders) did
         * nothing and may simply run again. */
        if (attempt >= 3 || !strstr(err->msg, "database error 40P01")) return -1;
        if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) db_script(c, "ROLLBACK", NULL);
        struct timespec ts = {0, 5000000L * (attempt + 1)};
        nanosleep(&ts, NULL);
    }
}

int e2ee_dl_reserve(db_conn *c, long long *pos, hs_err *err) {
    if (*pos > 0) return 0;
    long long p = db_stream_reserve(c, DB_STREAM_DEVICE_LISTS, err);
    if (p < 0) return -1;
    *pos = p;
    return 0;
}

int e2ee_dl_record(db_conn *c, long long pos, const char *user_id, const char *device_id,
                   const char *only_for, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO e2e_device_list_changes (stream_id, user_id, device_id, only_for)"
        " VALUES ($1, $2, $3, $4)");
    char p[24];
    snprintf(p, sizeof p, "%lld", pos);
    return db_exec(c, &ins, 4, (const char *[]){p, user_id, device_id, only_for}, err) < 0 ? -1
                                                                                            : 0;
}

char **e2ee_joined_rooms(db_conn *c, const char *user_id, size_t *n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1"
        " AND membership = 'join'");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return NULL;
    int rows = PQntuples(r);
    char **v = calloc((size_t)rows + 1, sizeof *v);
    for (int i = 0; i < rows; i++) v[i] = strdup(PQgetvalue(r, i, 0));
    PQclear(r);
    if (n) *n = (size_t)rows;
    return v;
}

void e2ee_strv_free(char **v) {
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

void e2ee_dl_done(db_conn *c, long long pos, const char *user_id, const char *only_for) {
    if (pos > 0) db_stream_done(DB_STREAM_DEVICE_LISTS, pos);
    if (only_for) {
        hs_notify_users((const char *const[]){only_for}, 1);
        return;
    }
    hs_notify_users((const char *const[]){user_id}, 1);
    hs_err ignored = {0};
    char **rooms = e2ee_joined_rooms(c, user_id, NULL, &ignored);
    for (char **p = rooms; p && *p; p++) hs_notify_room(*p);
    e2ee_strv_free(rooms);
}

json_t *e2ee_otk_count_object(db_conn *c, const char *user_id, const char *device_id,
                              hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT algorithm, count(*) FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = $2"
        " GROUP BY algorithm");
    PGresult *r = db_run(c, &q, 2, (const char *[]){user_id, device_id}, err);
    if (!r) return NULL;
    /* Always a signed_curve25519 count, even 0, as Synapse does: clients
     * (libolm-based ones especially) look for it to decide to upload. */
    json_t *o = json_pack("{s:i}", "signed_curve25519", 0);
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(o, PQgetvalue(r, i, 0), json_integer(atoll(PQgetvalue(r, i, 1))));
    PQclear(r);
    return o;
}

/* Both in one round trip (every /sync asks): count rows are one-time key
 * counts, NULL-count rows unused fallback key algorithms. */
static db_stmt key_counts = DB_STMT(
    "SELECT algorithm, count(*) FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = $2"
    " GROUP BY algorithm"
    " UNION ALL (SELECT algorithm, NULL FROM e2e_fallback_keys WHERE user_id = $1"
    "  AND device_id = $2 AND NOT used ORDER BY algorithm)");

void client_otk_counts_prefetch(db_conn *c, const char *user_id, const char *device_id) {
    hs_err ignored = {0};
    db_prefetch(c, &key_counts, 2, (const char *[]){user_id, device_id}, 0, &ignored);
}

int client_otk_counts(db_conn *c, const char *user_id, const char *device_id, json_t **counts,
                      json_t **unused_fallback_types, hs_err *err) {
    PGresult *r = db_run(c, &key_counts, 2, (const char *[]){user_id, device_id}, err);
    if (!r) return -1;
    /* Always a signed_curve25519 count, as e2ee_otk_count_object. */
    json_t *o = json_pack("{s:i}", "signed_curve25519", 0), *a = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, 1)) json_array_append_new(a, json_string(PQgetvalue(r, i, 0)));
        else json_object_set_new(o, PQgetvalue(r, i, 0), json_integer(atoll(PQgetvalue(r, i, 1))));
    }
    PQclear(r);
    *counts = o;
    *unused_fallback_types = a;
    return 0;
}
