/* keys.c — POST /keys/upload and POST /keys/query.
 *
 * Signatures are the clients' to check (they verify every key they use), and
 * Synapse checks none on upload: keys without the device's self-signature
 * are taken. One that is there must verify, though (device keys against
 * their own ed25519 key; signed one-time and fallback keys against the
 * device's, when the server knows it, which it does once the device has
 * uploaded its identity keys, first or in the same request): a wrong
 * signature is a broken client, told so at once. Keys are stored as the
 * canonical JSON the client signed and served back byte for byte, plus
 * "unsigned" and the cross-signatures uploaded later. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_internal.h"
#include "e2ee_remote.h"
#include "fed_outbound.h"
#include "homeserver/core/clock.h"

/* ---- validating an upload ------------------------------------------------ */

static bool all_strings(const json_t *o) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) if (!json_is_string(v)) return false;
    return true;
}

static int check_signatures_shape(const json_t *sigs, hs_err *err) {
    const char *k;
    json_t *v;
    if (!json_is_object(sigs))
        return hs_err_set(err, 400, "M_BAD_JSON", "'signatures' must be an object");
    json_object_foreach((json_t *)sigs, k, v) if (!json_is_object(v) || !all_strings(v)) return
        hs_err_set(err, 400, "M_BAD_JSON", "'signatures' must map user IDs to key IDs to strings");
    return 0;
}

/* Does obj carry a signature by signer's key_id? */
static bool signed_by(const json_t *obj, const char *signer, const char *key_id) {
    return json_object_get(json_object_get(json_object_get(obj, "signatures"), signer), key_id);
}

/* The DeviceKeys object: shape, owner, and the device's self-signature
 * when it has one. */
static int check_device_keys(const e2ee_dev *r, const json_t *dk, hs_err *err) {
    if (!json_is_object(dk))
        return hs_err_set(err, 400, "M_BAD_JSON", "'device_keys' must be an object");
    const char *uid = json_string_value(json_object_get(dk, "user_id"));
    const char *did = json_string_value(json_object_get(dk, "device_id"));
    const json_t *algs = json_object_get(dk, "algorithms"), *keys = json_object_get(dk, "keys");
    if (!uid || !did || !json_is_array(algs) || !json_is_object(keys) || !all_strings(keys))
        return hs_err_set(err, 400, "M_BAD_JSON",
                          "'device_keys' needs user_id, device_id, algorithms and keys");
    size_t i;
    json_t *a;
    json_array_foreach(algs, i, a) if (!json_is_string(a)) return hs_err_set(
        err, 400, "M_BAD_JSON", "'device_keys.algorithms' must be a list of strings");
    if (check_signatures_shape(json_object_get(dk, "signatures"), err) < 0) return -1;
    /* Synapse's errors: the keys are for the authenticated device only. */
    if (strcmp(uid, r->user_id) != 0)
        return hs_err_set(err, 400, "M_BAD_JSON",
                          "Provided `user_id` in `device_keys` does not match that of the "
                          "authenticated user");
    if (strcmp(did, r->device_id) != 0)
        return hs_err_set(err, 400, "M_BAD_JSON",
                          "Provided `device_id` in `device_keys` does not match that of the "
                          "authenticated user device");
    char kid[300];
    snprintf(kid, sizeof kid, "ed25519:%s", did);
    if (!signed_by(dk, uid, kid)) return 0;
    const char *ed = json_string_value(json_object_get(keys, kid));
    if (!ed) return hs_err_set(err, 400, "M_BAD_JSON", "'device_keys.keys' has no %s", kid);
    return e2ee_verify(dk, uid, kid, ed, "device_keys", err);
}

/* A one-time or fallback key map: "<algorithm>:<key_id>" → string or a
 * {"key", "signatures"} object, whose signature by the device, if any, must
 * verify when ed25519 is known. */
static int check_key_map(const e2ee_dev *r, const json_t *m, const char *name, const char *ed25519,
                         hs_err *err) {
    if (!json_is_object(m)) return hs_err_set(err, 400, "M_BAD_JSON", "'%s' must be an object", name);
    const char *id;
    json_t *v;
    char kid[300];
    snprintf(kid, sizeof kid, "ed25519:%s", r->device_id);
    json_object_foreach((json_t *)m, id, v) {
        const char *colon = strchr(id, ':');
        if (!colon || colon == id || !colon[1] || strchr(colon + 1, ':') || strlen(id) > 255)
            return hs_err_set(err, 400, "M_BAD_JSON",
                              "Invalid %s key '%s'. Expected \"<algorithm>:<key_id>\".", name, id);
        if (json_is_string(v)) continue;
        if (!json_is_object(v) || !json_is_string(json_object_get(v, "key")))
            return hs_err_set(err, 400, "M_BAD_JSON", "%s '%s' must be a string or have a 'key'",
                              name, id);
        const json_t *sigs = json_object_get(v, "signatures");
        if (sigs && check_signatures_shape(sigs, err) < 0) return -1;
        if (ed25519 && signed_by(v, r->user_id, kid) &&
            e2ee_verify(v, r->user_id, kid, ed25519, id, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- storing an upload --------------------------------------------------- */

typedef struct upload_job {
    e2ee_dev dev;
    const json_t *dk, *otks, *fbks;
    long long pos;    /* device-lists position, when the device keys changed */
    bool changed;
} upload_job;

/* The stored ed25519 key of the device, for checking signed one-time keys. */
static char *stored_ed25519(db_conn *c, const e2ee_dev *r, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT (key_json::jsonb) -> 'keys' ->> ('ed25519:' || $2) FROM e2e_device_keys"
        " WHERE user_id = $1 AND device_id = $2");
    PGresult *res = db_run(c, &q, 2, (const char *[]){r->user_id, r->device_id}, err);
    if (!res) return NULL;
    char *k = PQntuples(res) && !PQgetisnull(res, 0, 0) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    return k;
}

static int store_device_keys(db_conn *c, upload_job *j, hs_err *err) {
    static db_stmt cur =
        DB_STMT("SELECT key_json FROM e2e_device_keys WHERE user_id = $1 AND device_id = $2");
    static db_stmt up = DB_STMT(
        "INSERT INTO e2e_device_keys (user_id, device_id, key_json, added_ts) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = $3, added_ts = $4");
    const e2ee_dev *r = &j->dev;
    char *canon = e2ee_canonical(j->dk, false, err);
    if (!canon) return -1;
    PGresult *res = db_run(c, &cur, 2, (const char *[]){r->user_id, r->device_id}, err);
    int rc = res ? 0 : -1;
    bool same = res && PQntuples(res) && !strcmp(PQgetvalue(res, 0, 0), canon);
    PQclear(res);
    if (rc == 0 && !same) {
        char now[24];
        snprintf(now, sizeof now, "%lld", hs_now_ms());
        /* Only a real change tells everyone sharing a room to re-query. */
        rc = e2ee_dl_reserve(c, &j->pos, err) < 0 ||
                     db_exec(c, &up, 4, (const char *[]){r->user_id, r->device_id, canon, now},
                             err) < 0 ||
                     e2ee_dl_record(c, j->pos, r->user_id, r->device_id, NULL, err) < 0
                 ? -1
                 : 0;
        j->changed = rc == 0;
    }
    free(canon);
    return rc;
}

/* A one-time key ID already stored with other content is refused; the same
 * key again (a retried upload, perhaps re-signed) is skipped. */
static int store_one_time_key(db_conn *c, const e2ee_dev *r, const char *id, const json_t *v,
                              hs_err *err) {
    static db_stmt get = DB_STMT(
        "SELECT key_json FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = $2"
        " AND algorithm = $3 AND key_id = $4");
    static db_stmt ins = DB_STMT(
        "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json)"
        " VALUES ($1, $2, $3, $4, $5)");
    const char *colon = strchr(id, ':');
    char alg[256];
    snprintf(alg, sizeof alg, "%.*s", (int)(colon - id), id);
    const char *p[] = {r->user_id, r->device_id, alg, colon + 1, NULL};
    PGresult *res = db_run(c, &get, 4, p, err);
    if (!res) return -1;
    int rc = 0;
    if (PQntuples(res)) {
        json_t *old = e2ee_parse_stored(PQgetvalue(res, 0, 0));
        char *a = old ? e2ee_canonical(old, true, err) : NULL, *b = e2ee_canonical(v, true, err);
        if (!a || !b || strcmp(a, b) != 0)
            rc = hs_err_set(err, 400, "M_INVALID_PARAM",
                            "One time key %s already exists with different content", id);
        free(a), free(b);
        json_decref(old);
    } else {
        char *canon = e2ee_canonical(v, false, err);
        p[4] = canon;
        rc = canon && db_exec(c, &ins, 5, p, err) >= 0 ? 0 : -1;
        free(canon);
    }
    PQclear(res);
    return rc;
}

/* One fallback key per algorithm; re-uploading the current one keeps its
 * "used" mark (Synapse), a new one starts unused. */
static int store_fallback_key(db_conn *c, const e2ee_dev *r, const char *id, const json_t *v,
                              hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)"
        " VALUES ($1, $2, $3, $4, $5, false)"
        " ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = $4, key_json = $5,"
        " used = false WHERE e2e_fallback_keys.key_json <> $5 OR e2e_fallback_keys.key_id <> $4");
    const char *colon = strchr(id, ':');
    char alg[256];
    snprintf(alg, sizeof alg, "%.*s", (int)(colon - id), id);
    char *canon = e2ee_canonical(v, false, err);
    if (!canon) return -1;
    long n = db_exec(c, &up, 5, (const char *[]){r->user_id, r->device_id, alg, colon + 1, canon},
                     err);
    free(canon);
    return n < 0 ? -1 : 0;
}

static int fallback_one_per_algorithm(const json_t *fbks, hs_err *err) {
    const char *a, *b;
    json_t *v, *w;
    json_object_foreach((json_t *)fbks, a, v) json_object_foreach((json_t *)fbks, b, w) {
        if (a == b) continue;
        size_t la = strcspn(a, ":"), lb = strcspn(b, ":");
        if (la == lb && !strncmp(a, b, la))
            return hs_err_set(err, 400, "M_INVALID_PARAM",
                              "at most one fallback key per algorithm ('%s' and '%s')", a, b);
    }
    return 0;
}

static int store_keys(db_conn *c, upload_job *j, hs_err *err) {
    static db_stmt lock =
        DB_STMT("SELECT 1 FROM devices WHERE user_id = $1 AND device_id = $2 FOR UPDATE");
    const e2ee_dev *r = &j->dev;
    j->changed = false;
    /* One upload per device at a time, so a retried request cannot race its
     * original into duplicate keys; and the device must still exist. */
    PGresult *res = db_run(c, &lock, 2, (const char *[]){r->user_id, r->device_id}, err);
    if (!res) return -1;
    int found = PQntuples(res);
    PQclear(res);
    if (!found) return hs_err_set(err, 401, "M_UNKNOWN_TOKEN", "the device no longer exists");
    char kid[300];
    snprintf(kid, sizeof kid, "ed25519:%s", r->device_id);
    /* Device keys without an ed25519 key of this device's ID are accepted
     * (unsigned, as Synapse accepts them); then nothing checks the one-time
     * keys' signatures. */
    const char *up_ed = j->dk ? json_string_value(json_object_get(json_object_get(j->dk, "keys"), kid))
                              : NULL;
    char *ed = j->dk ? (up_ed ? strdup(up_ed) : NULL) : stored_ed25519(c, r, err);
    if (!ed && err->status) return -1;
    int rc = (j->otks && check_key_map(r, j->otks, "one_time_keys", ed, err) < 0) ||
                     (j->fbks && check_key_map(r, j->fbks, "fallback_keys", ed, err) < 0)
                 ? -1
                 : 0;
    free(ed);
    if (rc < 0 || (j->dk && store_device_keys(c, j, err) < 0)) return -1;
    const char *id;
    json_t *v;
    if (j->otks)
        json_object_foreach((json_t *)j->otks, id, v) if (store_one_time_key(c, r, id, v, err) < 0) return -1;
    if (j->fbks)
        json_object_foreach((json_t *)j->fbks, id, v) if (store_fallback_key(c, r, id, v, err) < 0) return -1;
    return 0;
}

static int upload_txn(db_conn *c, void *arg, hs_err *err) { return store_keys(c, arg, err); }

/* An optional member that must be an object when present (null is refused,
 * as Synapse does for device_keys). */
static int optional_object(const json_t *body, const char *name, const json_t **out, hs_err *err) {
    const json_t *v = json_object_get(body, name);
    if (v && !json_is_object(v))
        return hs_err_set(err, 400, "M_BAD_JSON", "'%s' must be an object", name);
    *out = v && json_object_size(v) ? v : NULL;
    return 0;
}

/* The checks that need no database: shapes, owner, device self-signature. */
static int parse_upload(upload_job *j, const json_t *body, hs_err *err) {
    if (optional_object(body, "device_keys", &j->dk, err) < 0 ||
        optional_object(body, "one_time_keys", &j->otks, err) < 0 ||
        optional_object(body, "fallback_keys", &j->fbks, err) < 0)
        return -1;
    if (json_object_get(body, "device_keys") && !j->dk)
        return hs_err_set(err, 400, "M_BAD_JSON", "'device_keys' is empty");
    if ((j->dk && check_device_keys(&j->dev, j->dk, err) < 0) ||
        (j->fbks && fallback_one_per_algorithm(j->fbks, err) < 0))
        return -1;
    return 0;
}

int e2ee_keys_store(db_conn *c, const e2ee_dev *dev, const json_t *body, long long *pos,
                    hs_err *err) {
    upload_job j = {.dev = *dev, .pos = *pos};
    int rc = parse_upload(&j, body, err) == 0 ? store_keys(c, &j, err) : -1;
    *pos = j.pos;
    return rc;
}

static int post_keys_upload(hs_req *r, json_t **out, hs_err *err) {
    upload_job j = {.dev = {r->user_id, r->device_id}};
    if (parse_upload(&j, r->json, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = e2ee_txn(c, upload_txn, &j, err);
    if (j.pos > 0) e2ee_dl_done(c, j.pos, r->user_id, NULL);
    json_t *counts = rc == 0 ? e2ee_otk_count_object(c, r->user_id, r->device_id, err) : NULL;
    db_release(r->srv->db, c);
    if (!counts) return -1;
    *out = json_pack("{s:o}", "one_time_key_counts", counts);
    return 200;
}

/* ---- /keys/query --------------------------------------------------------- */

typedef struct query_out {
    json_t *device_keys, *failures, *master, *self_signing, *user_signing;
} query_out;

/* Local users' device keys (with display names for our own clients),
 * filtered to the devices asked for (an empty list: all of them). Every
 * queried local user appears, even with no keys, as Synapse does. Remote
 * users whose device lists we follow (e2ee_remote.h) are answered the same
 * way from what their server sent; a local device must still exist. */
static int query_devices(db_conn *c, const json_t *asked, const char *arr, bool names,
                         query_out *q, hs_err *err) {
    static db_stmt sel = DB_STMT(
        "SELECT k.user_id, k.device_id, k.key_json, coalesce(d.display_name, k.display_name)"
        " FROM e2e_device_keys k LEFT JOIN devices d USING (user_id, device_id)"
        " WHERE k.user_id = ANY($1::text[]) AND (d.device_id IS NOT NULL"
        "  OR NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = k.user_id))");
    PGresult *res = db_run(c, &sel, 1, (const char *[]){arr}, err);
    if (!res) return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *uid = PQgetvalue(res, i, 0), *did = PQgetvalue(res, i, 1);
        const json_t *want = json_object_get(asked, uid);
        bool wanted = json_array_size(want) == 0;
        size_t k;
        json_t *w;
        json_array_foreach(want, k, w) if (!strcmp(json_string_value(w), did)) wanted = true;
        json_t *keys = wanted ? e2ee_parse_stored(PQgetvalue(res, i, 2)) : NULL;
        if (!keys) continue;
        json_t *uns = json_object();
        if (names && !PQgetisnull(res, i, 3))
            json_object_set_new(uns, "device_display_name", json_string(PQgetvalue(res, i, 3)));
        json_object_set_new(keys, "unsigned", uns);
        json_object_set_new(json_object_get(q->device_keys, uid), did, keys);
    }
    PQclear(res);
    return 0;
}

static json_t *section_for(query_out *q, const char *keytype) {
    return !strcmp(keytype, "master") ? q->master
           : !strcmp(keytype, "self_signing") ? q->self_signing : q->user_signing;
}

/* Cross-signing keys: master and self-signing keys of everyone queried, the
 * user-signing key only of the requester itself. */
static int query_cross_signing(db_conn *c, const char *me, const char *arr, query_out *q,
                               hs_err *err) {
    static db_stmt sel = DB_STMT(
        "SELECT user_id, keytype, key_json FROM e2e_cross_signing_keys"
        " WHERE user_id = ANY($1::text[])");
    PGresult *res = db_run(c, &sel, 1, (const char *[]){arr}, err);
    if (!res) return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *uid = PQgetvalue(res, i, 0), *type = PQgetvalue(res, i, 1);
        if (!strcmp(type, "user_signing") && (!me || strcmp(uid, me) != 0)) continue;
        json_t *k = e2ee_parse_stored(PQgetvalue(res, i, 2));
        if (k) json_object_set_new(section_for(q, type), uid, k);
    }
    PQclear(res);
    return 0;
}

static void add_signature(json_t *obj, const char *signer, const char *key_id, const char *sig) {
    json_t *sigs = json_object_get(obj, "signatures");
    if (!json_is_object(sigs)) json_object_set_new(obj, "signatures", sigs = json_object());
    json_t *by = json_object_get(sigs, signer);
    if (!json_is_object(by)) json_object_set_new(sigs, signer, by = json_object());
    json_object_set_new(by, key_id, json_string(sig));
}

/* The cross-signatures a requester may see (spec, "Key and signature
 * security"): those the key's owner made on its own devices and keys, and the
 * requester's own ones on the owner's master key. Others' user-signing
 * signatures stay hidden. */
static int merge_signatures(db_conn *c, const char *me, const char *arr, query_out *q,
                            hs_err *err) {
    static db_stmt sel = DB_STMT(
        "SELECT target_user_id, target_key_id, signer_user_id, signer_key_id, signature"
        " FROM e2e_cross_signing_signatures WHERE target_user_id = ANY($1::text[])"
        " AND (signer_user_id = target_user_id OR signer_user_id = $2)");
    PGresult *res = db_run(c, &sel, 2, (const char *[]){arr, me}, err);
    if (!res) return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *uid = PQgetvalue(res, i, 0), *target = PQgetvalue(res, i, 1);
        const char *signer = PQgetvalue(res, i, 2), *kid = PQgetvalue(res, i, 3);
        const char *sig = PQgetvalue(res, i, 4);
        bool own = !strcmp(signer, uid);
        json_t *dev = json_object_get(json_object_get(q->device_keys, uid), target);
        if (dev && own) add_signature(dev, signer, kid, sig);
        json_t *master = json_object_get(q->master, uid);
        const char *mpk = master ? e2ee_cs_key_public(master) : NULL;
        if (mpk && !strcmp(mpk, target)) add_signature(master, signer, kid, sig);
        json_t *ssk = json_object_get(q->self_signing, uid);
        const char *spk = ssk ? e2ee_cs_key_public(ssk) : NULL;
        if (own && spk && !strcmp(spk, target)) add_signature(ssk, signer, kid, sig);
    }
    PQclear(res);
    return 0;
}

/* device_keys must map user IDs to lists of device IDs (Synapse's checks). */
static int check_query(const json_t *dk, hs_err *err) {
    if (!json_is_object(dk))
        return hs_err_set(err, 400, "M_BAD_JSON", "'device_keys' must be a JSON object");
    const char *u;
    json_t *v;
    json_object_foreach((json_t *)dk, u, v) {
        size_t i;
        json_t *d;
        if (!json_is_array(v))
            return hs_err_set(err, 400, "M_BAD_JSON", "'device_keys' values must be a list of strings");
        json_array_foreach(v, i, d) if (!json_is_string(d)) return hs_err_set(
            err, 400, "M_BAD_JSON", "'device_keys' values must be a list of strings");
    }
    return 0;
}

static void query_out_free(query_out *q) {
    json_decref(q->device_keys), json_decref(q->failures), json_decref(q->master);
    json_decref(q->self_signing), json_decref(q->user_signing);
}

int client_keys_query_local(db_conn *c, const char *requester, const json_t *users,
                            bool display_names, json_t *out, hs_err *err) {
    query_out q = {json_object(), NULL, json_object(), json_object(), json_object()};
    size_t n = 0;
    const char **ids = calloc(json_object_size(users) + 1, sizeof *ids);
    const char *u;
    json_t *v;
    json_object_foreach((json_t *)users, u, v) {
        ids[n++] = u;
        json_object_set_new(q.device_keys, u, json_object());
    }
    char *arr = db_text_array(ids, n);
    free(ids);
    int rc = query_devices(c, users, arr, display_names, &q, err) == 0 &&
                     query_cross_signing(c, requester, arr, &q, err) == 0 &&
                     merge_signatures(c, requester, arr, &q, err) == 0
                 ? 0
                 : -1;
    free(arr);
    if (rc == 0) {
        json_object_set(out, "device_keys", q.device_keys);
        json_object_set(out, "master_keys", q.master);
        json_object_set(out, "self_signing_keys", q.self_signing);
        json_object_set(out, "user_signing_keys", q.user_signing);
    }
    query_out_free(&q);
    return rc;
}

/* Remote users whose device lists we follow move from remote (by server)
 * to local: answered from our tables, as Synapse answers from its cache. */
static int answer_followed(db_conn *c, json_t *remote, json_t *local, hs_err *err) {
    const char *server;
    json_t *users, *tmp;
    json_object_foreach_safe(remote, tmp, server, users) {
        json_t *mine = client_e2ee_remote_followed(c, users, err);
        if (!mine) return -1;
        json_object_update(local, mine);
        json_decref(mine);
        if (!json_object_size(users)) json_object_del(remote, server);
    }
    return 0;
}

/* Local users are answered from our tables, and so are remote users whose
 * device lists we follow; other remote ones are asked of their servers
 * (through federation, all at once, within the request's timeout). */
static int post_keys_query(hs_req *r, json_t **out, hs_err *err) {
    const json_t *dk = json_object_get(r->json, "device_keys");
    if (check_query(dk, err) < 0) return -1;
    const json_t *t = json_object_get(r->json, "timeout");
    long timeout = json_is_integer(t) && json_integer_value(t) > 0 ? (long)json_integer_value(t)
                                                                   : 10000;
    json_t *local = json_object(), *remote = json_object();
    const char *u;
    json_t *v;
    json_object_foreach((json_t *)dk, u, v) {
        const char *server = e2ee_user_server(u);
        if (!server) continue; /* an invalid user ID is a user without keys */
        if (e2ee_is_local(r, u)) {
            json_object_set(local, u, v);
            continue;
        }
        json_t *s = json_object_get(remote, server);
        if (!s) json_object_set_new(remote, server, s = json_object());
        json_object_set(s, u, v);
    }
    json_t *res = json_object();
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = c && answer_followed(c, remote, local, err) == 0 &&
                     client_keys_query_local(c, r->user_id, local, true, res, err) == 0
                 ? 200
                 : -1;
    db_release(r->srv->db, c);
    json_t *failures = json_object();
    if (rc == 200 && json_object_size(remote))
        client_fed_keys_query(r->srv, remote, timeout, json_object_get(res, "device_keys"),
                              json_object_get(res, "master_keys"),
                              json_object_get(res, "self_signing_keys"), failures);
    json_decref(local), json_decref(remote);
    if (rc < 0) return json_decref(res), json_decref(failures), -1;
    json_object_set_new(res, "failures", failures);
    *out = res;
    return 200;
}

void e2ee_keys_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/keys/upload", post_keys_upload, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "POST", "/_matrix/client/v3/keys/query", post_keys_query, HS_AUTH | HS_R0 | HS_GUEST);
}
