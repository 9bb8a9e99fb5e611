/* cross_signing.c — POST /keys/device_signing/upload and
 * POST /keys/signatures/upload.
 *
 * Uploading cross-signing keys needs user-interactive auth only when it
 * would replace keys the server already has (spec v1.11+): the first upload,
 * and a repeat of exactly the stored keys, go through without. Self-signing
 * and user-signing keys must carry a valid signature of the master key (the
 * one in the request, else the stored one). Signatures uploaded later are
 * checked against the signer's key and the stored copy of the signed key
 * before they are kept (Synapse's rules). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_internal.h"
#include "uia.h"

static const char *const cs_types[3] = {"master", "self_signing", "user_signing"};
static const char *const cs_fields[3] = {"master_key", "self_signing_key", "user_signing_key"};

/* ---- /keys/device_signing/upload ----------------------------------------- */

/* A CrossSigningKey of user_id for `usage`, optionally signed by the master
 * key master_pk. Synapse's errors: M_INVALID_PARAM, M_INVALID_SIGNATURE. */
static int check_cs_key(const json_t *k, const char *user_id, const char *usage,
                        const char *master_pk, hs_err *err) {
    const json_t *uses = json_object_get(k, "usage");
    bool has_usage = false;
    size_t i;
    json_t *u;
    json_array_foreach(uses, i, u) if (json_is_string(u) && !strcmp(json_string_value(u), usage))
        has_usage = true;
    const char *uid = json_string_value(json_object_get(k, "user_id"));
    if (!json_is_object(k) || !uid || strcmp(uid, user_id) != 0 || !has_usage ||
        !e2ee_cs_key_public(k))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid %s key", usage);
    const json_t *sigs = json_object_get(k, "signatures");
    if (sigs && !json_is_object(sigs))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid %s key: bad signatures", usage);
    if (!master_pk) return 0;
    char kid[128];
    snprintf(kid, sizeof kid, "ed25519:%s", master_pk);
    char what[64];
    snprintf(what, sizeof what, "Invalid signature on %s key", usage);
    return e2ee_verify(k, user_id, kid, master_pk, what, err);
}

typedef struct cs_upload {
    hs_req *r;
    const json_t *keys[3];  /* from the request, NULL when absent */
    bool authenticated;     /* UIA was passed for this request */
    long long pos;
} cs_upload;

/* Whether the request holds a key that differs from the stored one (or is
 * new): only then is there anything to do (Synapse's has_different_keys). */
static int differs(db_conn *c, const cs_upload *u, bool *out, bool *has_master, hs_err *err) {
    *out = false;
    json_t *m = e2ee_cs_key_load(c, u->r->user_id, "master", err);
    if (!m && err->status) return -1;
    *has_master = m != NULL;
    json_decref(m);
    for (int i = 0; i < 3; i++) {
        if (!u->keys[i]) continue;
        json_t *old = e2ee_cs_key_load(c, u->r->user_id, cs_types[i], err);
        if (!old && err->status) return -1;
        char *a = old ? e2ee_canonical(old, false, err) : NULL;
        char *b = e2ee_canonical(u->keys[i], false, err);
        if (!b) return json_decref(old), free(a), -1;
        if (!a || strcmp(a, b) != 0) *out = true;
        free(a), free(b);
        json_decref(old);
    }
    return 0;
}

/* The spec: a cross-signing public key may not be one of the user's device IDs. */
static int not_a_device_id(db_conn *c, const char *user_id, const char *pk, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM devices WHERE user_id = $1 AND device_id = $2");
    PGresult *r = db_run(c, &q, 2, (const char *[]){user_id, pk}, err);
    if (!r) return -1;
    int n = PQntuples(r);
    PQclear(r);
    return n ? hs_err_set(err, 403, "M_FORBIDDEN", "Key ID in use") : 0;
}

static int store_cs_key(db_conn *c, cs_upload *u, int i, hs_err *err) {
    static db_stmt old = DB_STMT(
        "SELECT public_key FROM e2e_cross_signing_keys WHERE user_id = $1 AND keytype = $2");
    static db_stmt up = DB_STMT(
        "INSERT INTO e2e_cross_signing_keys (user_id, keytype, public_key, key_json, stream_id)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, keytype) DO UPDATE"
        " SET public_key = $3, key_json = $4, stream_id = $5");
    /* Signatures made by a replaced self- or user-signing key vouch for
     * nothing any more. */
    static db_stmt drop = DB_STMT(
        "DELETE FROM e2e_cross_signing_signatures WHERE signer_user_id = $1"
        " AND signer_key_id = 'ed25519:' || $2 AND $2 <> $3");
    const char *uid = u->r->user_id, *pk = e2ee_cs_key_public(u->keys[i]);
    if (not_a_device_id(c, uid, pk, err) < 0) return -1;
    PGresult *r = db_run(c, &old, 2, (const char *[]){uid, cs_types[i]}, err);
    if (!r) return -1;
    char *prev = PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    char *canon = e2ee_canonical(u->keys[i], false, err);
    char pos[24];
    snprintf(pos, sizeof pos, "%lld", u->pos);
    int rc = canon && db_exec(c, &up, 5, (const char *[]){uid, cs_types[i], pk, canon, pos}, err) >= 0
                 ? 0
                 : -1;
    if (rc == 0 && prev && i > 0 && db_exec(c, &drop, 3, (const char *[]){uid, prev, pk}, err) < 0)
        rc = -1;
    /* Master and self-signing keys concern everyone who shares a room; the
     * user-signing key only the user (Synapse's notification semantics). */
    if (rc == 0) rc = e2ee_dl_record(c, u->pos, uid, pk, i == 2 ? uid : NULL, err);
    free(prev), free(canon);
    return rc;
}

static int cs_upload_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt lock = DB_STMT("SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE");
    cs_upload *u = arg;
    PGresult *r = db_run(c, &lock, 1, (const char *[]){u->r->user_id}, err);
    if (!r) return -1;
    PQclear(r);
    /* Under the lock: a concurrent first upload may have won since the
     * check before UIA; replacing its keys needs the password. */
    bool different, has_master;
    if (differs(c, u, &different, &has_master, err) < 0) return -1;
    if (has_master && different && !u->authenticated)
        return hs_err_set(err, 403, "M_FORBIDDEN",
                          "cross-signing keys were uploaded concurrently; retry to authenticate");
    json_t *stored = NULL;
    const char *mpk = u->keys[0] ? e2ee_cs_key_public(u->keys[0]) : NULL;
    if (!mpk) {
        stored = e2ee_cs_key_load(c, u->r->user_id, "master", err);
        if (!stored && err->status) return -1;
        mpk = stored ? e2ee_cs_key_public(stored) : NULL;
        if (!mpk) return json_decref(stored),
                   hs_err_set(err, 400, "M_MISSING_PARAM", "No master key available");
    }
    int rc = 0;
    for (int i = 1; i < 3 && rc == 0; i++)
        if (u->keys[i]) rc = check_cs_key(u->keys[i], u->r->user_id, cs_types[i], mpk, err);
    if (rc == 0) rc = e2ee_dl_reserve(c, &u->pos, err);
    for (int i = 0; i < 3 && rc == 0; i++)
        if (u->keys[i]) rc = store_cs_key(c, u, i, err);
    json_decref(stored);
    return rc;
}

static int post_device_signing_upload(hs_req *r, json_t **out, hs_err *err) {
    cs_upload u = {.r = r};
    for (int i = 0; i < 3; i++) {
        const json_t *k = json_object_get(r->json, cs_fields[i]);
        if (k && !json_is_object(k))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid %s key", cs_types[i]);
        u.keys[i] = k;
    }
    if (u.keys[0] && check_cs_key(u.keys[0], r->user_id, "master", NULL, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    bool different = false, has_master = false;
    int rc = differs(c, &u, &different, &has_master, err);
    db_release(r->srv->db, c);
    if (rc < 0) return -1;
    if (!different) {
        *out = json_object(); /* the same keys again: idempotent, no UIA */
        return 200;
    }
    /* Replacing existing keys takes the password; the first upload does not. */
    if (has_master) {
        if ((rc = client_uia_reauth(r, "reset your cross-signing keys", out, err)) != 0) return rc;
        u.authenticated = true;
    }
    if (!(c = db_acquire(r->srv->db, err))) return -1;
    rc = e2ee_txn(c, cs_upload_txn, &u, err);
    if (u.pos > 0) e2ee_dl_done(c, u.pos, r->user_id, NULL);
    db_release(r->srv->db, c);
    if (rc < 0) return -1;
    *out = json_object();
    return 200;
}

/* ---- /keys/signatures/upload --------------------------------------------- */

typedef struct sig_item {
    char *target_user, *target_key, *signer_key, *signature;
    const char *only_for; /* who must see the change (user-signing: the signer) */
} sig_item;

typedef struct sig_upload {
    hs_req *r;
    sig_item *items;
    size_t n, cap;
    json_t *failures;
    long long pos;
} sig_upload;

static void fail(sig_upload *s, const char *user, const char *key, const hs_err *e) {
    json_t *u = json_object_get(s->failures, user);
    if (!u) json_object_set_new(s->failures, user, u = json_object());
    json_object_set_new(u, key, e2ee_failure(e));
}

static void keep(sig_upload *s, const char *tu, const char *tk, const char *sk, const char *sig,
                 const char *only_for) {
    if (s->n == s->cap) s->items = realloc(s->items, (s->cap = s->cap * 2 + 8) * sizeof *s->items);
    s->items[s->n++] = (sig_item){strdup(tu), strdup(tk), strdup(sk), strdup(sig), only_for};
}

/* The uploaded object must be the stored key, apart from signatures. */
static int same_key(const json_t *sent, const json_t *stored, hs_err *err) {
    char *a = e2ee_canonical(sent, true, err), *b = stored ? e2ee_canonical(stored, true, err) : NULL;
    int rc = a && b && !strcmp(a, b) ? 0 : hs_err_set(err, 400, "M_INVALID_PARAM", "Key does not match");
    free(a), free(b);
    return rc;
}

/* The stored device keys of the user's device, or NULL (err 404 when absent). */
static json_t *device_keys(db_conn *c, const char *uid, const char *did, hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT key_json FROM e2e_device_keys WHERE user_id = $1 AND device_id = $2");
    PGresult *r = db_run(c, &q, 2, (const char *[]){uid, did}, err);
    if (!r) return NULL;
    json_t *k = PQntuples(r) ? e2ee_parse_stored(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    if (!k) hs_err_set(err, 404, "M_NOT_FOUND", "Unknown device");
    return k;
}

/* The user's devices sign its master key: every signature in signatures[me]
 * must come from a device of the user, by that device's ed25519 key. */
static int master_signed_by_devices(db_conn *c, sig_upload *s, const char *mpk, const json_t *obj,
                                    const json_t *master, hs_err *err) {
    const char *me = s->r->user_id, *kid;
    json_t *v;
    if (same_key(obj, master, err) < 0) return -1;
    json_object_foreach(json_object_get(json_object_get(obj, "signatures"), me), kid, v) {
        if (strncmp(kid, "ed25519:", 8) != 0 || !json_is_string(v))
            return hs_err_set(err, 400, "M_INVALID_SIGNATURE", "Invalid signature");
        json_t *dev = device_keys(c, me, kid + 8, err);
        const char *pk = json_string_value(json_object_get(json_object_get(dev, "keys"), kid));
        int rc = pk ? e2ee_verify(obj, me, kid, pk, "Invalid signature", err)
                    : hs_err_set(err, 400, "M_INVALID_SIGNATURE", "Invalid signature");
        json_decref(dev);
        if (rc < 0) return -1;
    }
    json_object_foreach(json_object_get(json_object_get(obj, "signatures"), me), kid, v)
        keep(s, me, mpk, kid, json_string_value(v), NULL);
    return 0;
}

/* The self-signing key signs the user's devices. */
static int device_signed(db_conn *c, sig_upload *s, const char *did, const json_t *obj,
                         const char *spk, hs_err *err) {
    const char *me = s->r->user_id;
    char kid[128];
    snprintf(kid, sizeof kid, "ed25519:%s", spk);
    const char *sig = json_string_value(
        json_object_get(json_object_get(json_object_get(obj, "signatures"), me), kid));
    if (!sig) return hs_err_set(err, 400, "M_INVALID_SIGNATURE", "Invalid signature");
    json_t *dev = device_keys(c, me, did, err);
    int rc = dev && same_key(obj, dev, err) == 0 &&
                     e2ee_verify(obj, me, kid, spk, "Invalid signature", err) == 0
                 ? 0
                 : -1;
    json_decref(dev);
    if (rc == 0) keep(s, me, did, kid, sig, NULL);
    return rc;
}

static int self_signatures(db_conn *c, sig_upload *s, const json_t *map, hs_err *dberr) {
    const char *me = s->r->user_id, *id;
    json_t *obj;
    hs_err e = {0};
    json_t *ssk = e2ee_cs_key_load(c, me, "self_signing", &e);
    json_t *master = !e.status ? e2ee_cs_key_load(c, me, "master", &e) : NULL;
    if (e.status >= 500) return *dberr = e, json_decref(ssk), json_decref(master), -1;
    const char *spk = ssk ? e2ee_cs_key_public(ssk) : NULL;
    const char *mpk = master ? e2ee_cs_key_public(master) : NULL;
    json_object_foreach((json_t *)map, id, obj) {
        hs_err f = {0};
        if (!spk || !mpk)
            hs_err_set(&f, 404, "M_NOT_FOUND", "No %s key found for %s",
                       spk ? "master" : "self_signing", me);
        else if (!json_is_object(json_object_get(json_object_get(obj, "signatures"), me)))
            hs_err_set(&f, 400, "M_INVALID_SIGNATURE", "Invalid signature");
        else if (!strcmp(id, mpk))
            master_signed_by_devices(c, s, mpk, obj, master, &f);
        else
            device_signed(c, s, id, obj, spk, &f);
        if (f.status >= 500) return *dberr = f, json_decref(ssk), json_decref(master), -1;
        if (f.status) fail(s, me, id, &f);
    }
    json_decref(ssk), json_decref(master);
    return 0;
}

/* The user-signing key signs other users' master keys, and nothing else. */
static int other_signatures(db_conn *c, sig_upload *s, const char *target, const json_t *map,
                            hs_err *dberr) {
    const char *me = s->r->user_id, *id;
    json_t *obj;
    hs_err e = {0};
    json_t *usk = e2ee_cs_key_load(c, me, "user_signing", &e);
    json_t *master = !e.status ? e2ee_cs_key_load(c, target, "master", &e) : NULL;
    if (e.status >= 500) return *dberr = e, json_decref(usk), json_decref(master), -1;
    const char *upk = usk ? e2ee_cs_key_public(usk) : NULL;
    const char *mpk = master ? e2ee_cs_key_public(master) : NULL;
    char kid[128];
    snprintf(kid, sizeof kid, "ed25519:%s", upk ? upk : "");
    json_object_foreach((json_t *)map, id, obj) {
        hs_err f = {0};
        const char *sig = json_string_value(
            json_object_get(json_object_get(json_object_get(obj, "signatures"), me), kid));
        if (!upk)
            hs_err_set(&f, 404, "M_NOT_FOUND", "No user_signing key found for %s", me);
        else if (!mpk || strcmp(id, mpk) != 0)
            hs_err_set(&f, 404, "M_NOT_FOUND", "Unknown device");
        else if (!sig)
            hs_err_set(&f, 400, "M_INVALID_SIGNATURE", "Invalid signature");
        else if (same_key(obj, master, &f) == 0 &&
                 e2ee_verify(obj, me, kid, upk, "Invalid signature", &f) == 0)
            keep(s, target, mpk, kid, sig, me);
        if (f.status >= 500) return *dberr = f, json_decref(usk), json_decref(master), -1;
        if (f.status) fail(s, target, id, &f);
    }
    json_decref(usk), json_decref(master);
    return 0;
}

static int sig_store_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO e2e_cross_signing_signatures"
        " (target_user_id, target_key_id, signer_user_id, signer_key_id, signature)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (target_user_id, target_key_id, signer_user_id,"
        " signer_key_id) DO UPDATE SET signature = $5");
    sig_upload *s = arg;
    if (e2ee_dl_reserve(c, &s->pos, err) < 0) return -1;
    for (size_t i = 0; i < s->n; i++) {
        sig_item *it = &s->items[i];
        const char *p[] = {it->target_user, it->target_key, s->r->user_id, it->signer_key,
                           it->signature};
        if (db_exec(c, &ins, 5, p, err) < 0 ||
            e2ee_dl_record(c, s->pos, it->target_user, it->only_for ? NULL : it->target_key,
                           it->only_for, err) < 0)
            return -1;
    }
    return 0;
}

static int check_signature_body(const json_t *body, hs_err *err) {
    const char *u, *k;
    json_t *m, *o;
    json_object_foreach((json_t *)body, u, m) {
        if (!json_is_object(m)) return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid parameter");
        json_object_foreach(m, k, o) if (!json_is_object(o)) return hs_err_set(
            err, 400, "M_INVALID_PARAM", "Invalid parameter");
    }
    return 0;
}

static void sig_upload_free(sig_upload *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].target_user), free(s->items[i].target_key);
        free(s->items[i].signer_key), free(s->items[i].signature);
    }
    free(s->items);
}

static int post_signatures_upload(hs_req *r, json_t **out, hs_err *err) {
    if (check_signature_body(r->json, err) < 0) return -1;
    sig_upload s = {.r = r, .failures = json_object()};
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = c ? 0 : -1;
    const char *u;
    json_t *m;
    json_object_foreach(r->json, u, m) {
        if (rc < 0) break;
        rc = !strcmp(u, r->user_id) ? self_signatures(c, &s, m, err)
                                     : other_signatures(c, &s, u, m, err);
    }
    if (rc == 0 && s.n) rc = e2ee_txn(c, sig_store_txn, &s, err);
    /* Each signed key is a change its viewers must re-query. */
    for (size_t i = 0; i < s.n && s.pos > 0; i++)
        e2ee_dl_done(c, i ? 0 : s.pos, s.items[i].target_user, s.items[i].only_for);
    db_release(r->srv->db, c);
    sig_upload_free(&s);
    if (rc < 0) return json_decref(s.failures), -1;
    *out = json_pack("{s:o}", "failures", s.failures);
    return 200;
}

void e2ee_cross_signing_routes(hs_router *rt) {
    /* v3 only: the endpoint is younger than r0 (Synapse registers it so too). */
    hs_route(rt, "POST", "/_matrix/client/v3/keys/device_signing/upload",
             post_device_signing_upload, HS_AUTH);
    hs_route(rt, "POST", "/_matrix/client/v3/keys/signatures/upload", post_signatures_upload,
             HS_AUTH | HS_R0 | HS_GUEST);
    /* The paths of MSC1756 before it was merged, which older clients still
     * call and Synapse still serves. */
    hs_route(rt, "POST", "/_matrix/client/unstable/keys/device_signing/upload",
             post_device_signing_upload, HS_AUTH);
    hs_route(rt, "POST", "/_matrix/client/unstable/keys/signatures/upload",
             post_signatures_upload, HS_AUTH | HS_GUEST);
}
