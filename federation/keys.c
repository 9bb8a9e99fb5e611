/* keys.c — other servers' signing keys: fetched from the server itself
 * (GET /_matrix/key/v2/server) or through the notaries of
 * trusted_key_servers (POST /_matrix/key/v2/query), verified, and kept in
 * PostgreSQL (sql/009_federation_keys.sql) with how long each may be trusted.
 *
 * Order of lookups, as Synapse: the database, the notaries, the server. A
 * response counts only if it is signed by one of its own verify_keys, names
 * the server we asked about and, from a notary with configured verify_keys,
 * carries the notary's signature too. Validity is capped at 7 days after the
 * fetch (spec). A server is asked at most once per FED_KEY_REFETCH_MS, and
 * threads that need the same server's keys wait for one fetch. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/base64.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "transport_internal.h"

#define FED_KEY_REFETCH_MS 10000LL
#define FED_KEY_FETCH_TIMEOUT_MS 10000L /* Synapse gives key servers 10 s too */

static int unauth(hs_err *err, const char *fmt, const char *a, const char *b) {
    return hs_err_set(err, 401, "M_UNAUTHORIZED", fmt, a, b);
}

static int decode_key(const char *b64, unsigned char pk[32]) {
    size_t n = 0;
    if (!b64 || hs_b64_decode(b64, strlen(b64), pk, 32, &n, false) < 0 || n != 32) return -1;
    return 0;
}

static bool is_ed25519(const char *key_id) { return !strncmp(key_id, "ed25519:", 8); }

/* ---- checking a response ---------------------------------------------------- */

static int check_shape(const json_t *r, const char *server_name, hs_err *err) {
    const char *name = json_string_value(json_object_get(r, "server_name"));
    json_t *vk = json_object_get(r, "verify_keys"), *old = json_object_get(r, "old_verify_keys");
    json_t *sigs = json_object_get(json_object_get(r, "signatures"), server_name);
    if (!name || strcmp(name, server_name))
        return unauth(err, "key response for '%.200s' names '%.200s'", server_name,
                      name ? name : "nobody");
    if (!json_is_object(vk) || (old && !json_is_object(old)) || !json_is_object(sigs) ||
        !json_is_integer(json_object_get(r, "valid_until_ts")))
        return unauth(err, "malformed key response from %s%s", server_name, "");
    const char *id;
    json_t *k;
    json_t *lists[] = {vk, old};
    for (int l = 0; l < 2; l++)
        json_object_foreach(lists[l], id, k) {
            unsigned char pk[32];
            if (!is_ed25519(id)) continue; /* other algorithms: not ours to judge */
            if (!json_is_object(k) || decode_key(json_string_value(json_object_get(k, "key")), pk) ||
                (l == 1 && !json_is_integer(json_object_get(k, "expired_ts"))))
                return unauth(err, "malformed key %s in the response from %s", id, server_name);
        }
    return 0;
}

int fed_key_response_check(const json_t *r, const char *server_name, hs_err *err) {
    if (!json_is_object(r)) return unauth(err, "key response from %s is not an object%s", server_name, "");
    if (check_shape(r, server_name, err) < 0) return -1;
    json_t *vk = json_object_get(r, "verify_keys");
    json_t *sigs = json_object_get(json_object_get(r, "signatures"), server_name);
    int verified = 0;
    const char *id;
    json_t *s;
    json_object_foreach(sigs, id, s) {
        unsigned char pk[32];
        json_t *k = json_object_get(vk, id);
        if (!k || !is_ed25519(id)) continue; /* e.g. a notary's own key, or an old one */
        decode_key(json_string_value(json_object_get(k, "key")), pk);
        if (hs_json_verify(r, server_name, id, pk, err) < 0) return -1;
        verified++;
    }
    if (!verified)
        return unauth(err, "key response for %s is not signed by any of its keys%s", server_name, "");
    return 0;
}

/* ---- storage ---------------------------------------------------------------------- */

typedef struct store_ctx {
    const json_t *resp;
    const char *server_name, *from;
    const char *key_json;
    long long now;
} store_ctx;

static int upsert_key(db_conn *c, store_ctx *x, const char *id, const char *b64, long long until,
                      const long long *expired, hs_err *err) {
    static db_stmt q = DB_STMT(
        "INSERT INTO server_signing_keys (server_name, key_id, verify_key, valid_until_ts,"
        " expired_ts, from_server, fetched_ts) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (server_name, key_id) DO UPDATE SET verify_key = EXCLUDED.verify_key,"
        " valid_until_ts = EXCLUDED.valid_until_ts, expired_ts = EXCLUDED.expired_ts,"
        " from_server = EXCLUDED.from_server, fetched_ts = EXCLUDED.fetched_ts"
        /* The server's own word wins; a notary's only if it reaches further. */
        " WHERE EXCLUDED.from_server = EXCLUDED.server_name"
        " OR EXCLUDED.valid_until_ts >= server_signing_keys.valid_until_ts");
    char u[24], e[24], f[24];
    snprintf(u, sizeof u, "%lld", until);
    snprintf(f, sizeof f, "%lld", x->now);
    if (expired) snprintf(e, sizeof e, "%lld", *expired);
    const char *p[] = {x->server_name, id, b64, u, expired ? e : NULL, x->from, f};
    return db_exec(c, &q, 7, p, err) < 0 ? -1 : 0;
}

static int store_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt q = DB_STMT(
        "INSERT INTO server_key_responses (server_name, from_server, fetched_ts, valid_until_ts,"
        " key_json) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (server_name) DO UPDATE SET from_server = EXCLUDED.from_server,"
        " fetched_ts = EXCLUDED.fetched_ts, valid_until_ts = EXCLUDED.valid_until_ts,"
        " key_json = EXCLUDED.key_json"
        " WHERE EXCLUDED.from_server = EXCLUDED.server_name"
        " OR EXCLUDED.valid_until_ts >= server_key_responses.valid_until_ts");
    store_ctx *x = arg;
    long long valid = json_integer_value(json_object_get(x->resp, "valid_until_ts"));
    long long cap = x->now + FED_KEY_MAX_VALIDITY_MS;
    char f[24], v[24];
    snprintf(f, sizeof f, "%lld", x->now);
    snprintf(v, sizeof v, "%lld", valid);
    const char *p[] = {x->server_name, x->from, f, v, x->key_json};
    if (db_exec(c, &q, 5, p, err) < 0) return -1;
    const char *id;
    json_t *k;
    json_object_foreach(json_object_get(x->resp, "verify_keys"), id, k) {
        if (!is_ed25519(id)) continue;
        if (upsert_key(c, x, id, json_string_value(json_object_get(k, "key")),
                       valid < cap ? valid : cap, NULL, err) < 0)
            return -1;
    }
    json_object_foreach(json_object_get(x->resp, "old_verify_keys"), id, k) {
        if (!is_ed25519(id)) continue;
        long long exp = json_integer_value(json_object_get(k, "expired_ts"));
        if (upsert_key(c, x, id, json_string_value(json_object_get(k, "key")), exp, &exp, err) < 0)
            return -1;
    }
    return 0;
}

/* Store a checked response; the copy kept has only the server's signatures. */
static int store_response(hs_server *srv, const json_t *resp, const char *server_name,
                          const char *from, hs_err *err) {
    json_t *copy = json_deep_copy(resp);
    json_t *sigs = json_object_get(copy, "signatures");
    json_t *own = json_incref(json_object_get(sigs, server_name));
    json_object_clear(sigs);
    json_object_set_new(sigs, server_name, own);
    char *canon = hs_json_canonical(copy, NULL, err);
    json_decref(copy);
    if (!canon) return -1;
    store_ctx x = {resp, server_name, from, canon, hs_now_ms()};
    int rc = db_txn(srv->db, store_txn, &x, err);
    free(canon);
    return rc;
}

/* Keys read from the database, kept in memory for a few minutes: every PDU
 * and every signed request of a busy peer asks for the same one or two keys.
 * Only a key still good enough is taken from here (fed_get_server_key);
 * every other path reads the database, which refreshes the entry. */
#define KEY_CACHE_SLOTS 64
#define KEY_CACHE_TTL_MS (5 * 60 * 1000LL)
static struct {
    char server_name[256], key_id[64];
    unsigned char pk[32];
    long long valid_until, cached_at;
} key_cache[KEY_CACHE_SLOTS];
static unsigned key_cache_next;
static pthread_mutex_t key_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static int key_cache_find(const char *server_name, const char *key_id) {
    for (int i = 0; i < KEY_CACHE_SLOTS; i++)
        if (!strcmp(key_cache[i].server_name, server_name) && !strcmp(key_cache[i].key_id, key_id))
            return i;
    return -1;
}

static bool key_cache_get(const char *server_name, const char *key_id, unsigned char pk[32],
                          long long *valid_until) {
    pthread_mutex_lock(&key_cache_mu);
    int i = key_cache_find(server_name, key_id);
    bool hit = i >= 0 && hs_now_ms() - key_cache[i].cached_at < KEY_CACHE_TTL_MS;
    if (hit) memcpy(pk, key_cache[i].pk, 32), *valid_until = key_cache[i].valid_until;
    pthread_mutex_unlock(&key_cache_mu);
    return hit;
}

static void key_cache_put(const char *server_name, const char *key_id, const unsigned char pk[32],
                          long long valid_until) {
    if (strlen(server_name) >= sizeof key_cache[0].server_name ||
        strlen(key_id) >= sizeof key_cache[0].key_id)
        return;
    pthread_mutex_lock(&key_cache_mu);
    int i = key_cache_find(server_name, key_id);
    if (i < 0) i = (int)(key_cache_next++ % KEY_CACHE_SLOTS);
    snprintf(key_cache[i].server_name, sizeof key_cache[i].server_name, "%s", server_name);
    snprintf(key_cache[i].key_id, sizeof key_cache[i].key_id, "%s", key_id);
    memcpy(key_cache[i].pk, pk, 32);
    key_cache[i].valid_until = valid_until;
    key_cache[i].cached_at = hs_now_ms();
    pthread_mutex_unlock(&key_cache_mu);
}

/* 1 with the key, 0 when we have none, -1 on a database error. */
static int lookup_key(hs_server *srv, const char *server_name, const char *key_id,
                      unsigned char pk[32], long long *valid_until, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT verify_key, valid_until_ts FROM server_signing_keys"
                               " WHERE server_name = $1 AND key_id = $2");
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    PGresult *res = db_run(c, &q, 2, (const char *[]){server_name, key_id}, err);
    db_release(srv->db, c);
    if (!res) return -1;
    int rc = 0;
    if (PQntuples(res) == 1 && decode_key(PQgetvalue(res, 0, 0), pk) == 0) {
        *valid_until = atoll(PQgetvalue(res, 0, 1));
        key_cache_put(server_name, key_id, pk, *valid_until);
        rc = 1;
    }
    PQclear(res);
    return rc;
}

json_t *fed_keys_stored_response(hs_server *srv, const char *server_name, long long *fetched_ts,
                                 long long *valid_until_ts, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT key_json, fetched_ts, valid_until_ts"
                               " FROM server_key_responses WHERE server_name = $1");
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return NULL;
    PGresult *res = db_run(c, &q, 1, (const char *[]){server_name}, err);
    db_release(srv->db, c);
    if (!res) return NULL;
    json_t *o = NULL;
    if (PQntuples(res) == 1) {
        o = hs_json_parse_object(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), err);
        *fetched_ts = atoll(PQgetvalue(res, 0, 1));
        *valid_until_ts = atoll(PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    return o;
}

/* ---- fetching ------------------------------------------------------------------------ */

static int fetch_direct(hs_server *srv, const char *server_name, hs_err *err) {
    fed_request_opts o = {.timeout_ms = FED_KEY_FETCH_TIMEOUT_MS, .max_response = 1 << 20};
    json_t *resp = NULL;
    long status;
    if (fed_request_ex(srv, server_name, "GET", "/_matrix/key/v2/server", NULL, &o, &status,
                       &resp, err) < 0) {
        json_decref(resp);
        return -1;
    }
    int rc = fed_key_response_check(resp, server_name, err);
    if (rc == 0) rc = store_response(srv, resp, server_name, server_name, err);
    json_decref(resp);
    return rc;
}

/* The notary's signature, with the keys the admin configured for it. */
static int check_notary_sig(const cfg_key_server *ks, const json_t *entry, hs_err *err) {
    json_t *sigs = json_object_get(json_object_get(entry, "signatures"), ks->server_name);
    int verified = 0;
    for (size_t i = 0; i < ks->key_ids.n; i++) {
        unsigned char pk[32];
        if (!json_object_get(sigs, ks->key_ids.v[i]) || decode_key(ks->keys.v[i], pk) < 0) continue;
        if (hs_json_verify(entry, ks->server_name, ks->key_ids.v[i], pk, err) < 0) return -1;
        verified++;
    }
    if (!verified)
        return unauth(err, "the answer of notary %s is not signed with a key configured in "
                           "trusted_key_servers%s", ks->server_name, "");
    return 0;
}

int fed_notary_entry_check(const cfg_key_server *ks, const json_t *entry, const char *server_name,
                           hs_err *err) {
    const char *name = json_string_value(json_object_get(entry, "server_name"));
    if (!name || strcmp(name, server_name))
        return unauth(err, "notary answer about '%.200s', not %.200s", name ? name : "nobody",
                      server_name);
    if (ks->has_verify_keys && check_notary_sig(ks, entry, err) < 0) return -1;
    return fed_key_response_check(entry, server_name, err);
}

static int fetch_notary(hs_server *srv, const cfg_key_server *ks, const char *server_name,
                        const char *key_id, long long min_valid, hs_err *err) {
    fed_request_opts o = {.timeout_ms = FED_KEY_FETCH_TIMEOUT_MS, .max_response = 1 << 20};
    json_t *crit = min_valid > 0 ? json_pack("{s:I}", "minimum_valid_until_ts", (json_int_t)min_valid)
                                 : json_object();
    json_t *body = json_pack("{s:{s:{s:o}}}", "server_keys", server_name, key_id, crit);
    json_t *resp = NULL;
    long status;
    int rc = fed_request_ex(srv, ks->server_name, "POST", "/_matrix/key/v2/query", body, &o,
                            &status, &resp, err);
    json_decref(body);
    int stored = 0;
    json_t *arr = json_object_get(resp, "server_keys");
    size_t i;
    json_t *entry;
    json_array_foreach(rc == 0 ? arr : NULL, i, entry) {
        hs_err e = {0};
        const char *name = json_string_value(json_object_get(entry, "server_name"));
        if (!name || strcmp(name, server_name)) continue; /* we asked about one server */
        if (fed_notary_entry_check(ks, entry, server_name, &e) < 0 ||
            store_response(srv, entry, server_name, ks->server_name, &e) < 0) {
            hs_warn("federation: notary %s about %s: %s", ks->server_name, server_name, e.msg);
            *err = e;
            continue;
        }
        stored++;
    }
    json_decref(resp);
    if (rc == 0 && !stored && !err->msg[0])
        unauth(err, "notary %s knows no keys of %s", ks->server_name, server_name);
    return stored ? 0 : -1;
}

/* ---- one fetch per server at a time, and not too often ---------------------------- */

#define SLOTS 64

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct {
        char name[300];
        bool busy;
        long long last_ms;
    } s[SLOTS];
} F = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static unsigned slot_of(const char *name) {
    unsigned h = 2166136261u;
    for (; *name; name++) h = (h ^ (unsigned char)*name) * 16777619u;
    return h % SLOTS;
}

/* Waits while another thread fetches for this slot, then claims it, unless
 * server_name was asked within FED_KEY_REFETCH_MS. true: claimed. */
static bool begin_fetch(const char *server_name) {
    unsigned i = slot_of(server_name);
    pthread_mutex_lock(&F.mu);
    while (F.s[i].busy) pthread_cond_wait(&F.cv, &F.mu);
    long long now = hs_now_ms();
    bool recent = !strcmp(F.s[i].name, server_name) && now - F.s[i].last_ms < FED_KEY_REFETCH_MS;
    if (!recent) {
        F.s[i].busy = true;
        F.s[i].last_ms = now;
        snprintf(F.s[i].name, sizeof F.s[i].name, "%s", server_name);
    }
    pthread_mutex_unlock(&F.mu);
    return !recent;
}

static void end_fetch(const char *server_name) {
    pthread_mutex_lock(&F.mu);
    F.s[slot_of(server_name)].busy = false;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
}

int fed_fetch_server_keys_direct(hs_server *srv, const char *server_name, hs_err *err) {
    if (!fed_domain_allowed(srv->cfg, server_name))
        return hs_err_set(err, 403, "M_FORBIDDEN", "Federation denied with %s.", server_name);
    if (!begin_fetch(server_name))
        return hs_err_set(err, 503, "M_UNKNOWN", "keys of %s were fetched moments ago", server_name);
    int rc = fetch_direct(srv, server_name, err);
    end_fetch(server_name);
    if (rc < 0) hs_info("federation: cannot fetch the keys of %s: %s", server_name, err->msg);
    return rc;
}

static bool good_enough(long long valid_until, long long min_valid) {
    return min_valid <= 0 || valid_until >= min_valid;
}

/* Notaries first, then the server, until the key is good enough. */
static void fetch_everywhere(hs_server *srv, const char *server_name, const char *key_id,
                             long long min_valid) {
    const cfg *c = srv->cfg;
    unsigned char pk[32];
    long long until;
    hs_err err = {0};
    for (size_t i = 0; i < c->n_trusted_key_servers; i++) {
        const cfg_key_server *ks = &c->trusted_key_servers[i];
        if (!strcmp(ks->server_name, c->server_name)) continue; /* that would be us asking us */
        hs_err_clear(&err);
        if (fetch_notary(srv, ks, server_name, key_id, min_valid, &err) < 0)
            hs_info("federation: notary %s had no key %s of %s: %s", ks->server_name, key_id,
                    server_name, err.msg);
        if (lookup_key(srv, server_name, key_id, pk, &until, &err) == 1 &&
            good_enough(until, min_valid))
            return;
    }
    hs_err_clear(&err);
    if (fetch_direct(srv, server_name, &err) < 0)
        hs_info("federation: cannot fetch the keys of %s: %s", server_name, err.msg);
}

int fed_get_server_key(hs_server *srv, const char *server_name, const char *key_id,
                       long long min_valid_until_ts, unsigned char pk[32], hs_err *err) {
    if (!strcmp(server_name, srv->cfg->server_name)) {
        if (strcmp(key_id, srv->key.key_id))
            return unauth(err, "%s has no key %s", server_name, key_id);
        memcpy(pk, srv->key.pk, 32);
        return 0;
    }
    long long until = 0;
    if (key_cache_get(server_name, key_id, pk, &until) && good_enough(until, min_valid_until_ts))
        return 0;
    int got = lookup_key(srv, server_name, key_id, pk, &until, err);
    if (got < 0) return -1;
    if (got && good_enough(until, min_valid_until_ts)) return 0;
    if (!fed_domain_allowed(srv->cfg, server_name))
        return hs_err_set(err, 403, "M_FORBIDDEN", "Federation denied with %s.", server_name);
    if (!hs_server_name_valid(server_name))
        return unauth(err, "'%.200s' is not a server name%s", server_name, "");
    if (begin_fetch(server_name)) {
        /* Another thread may have fetched it while we waited. */
        got = lookup_key(srv, server_name, key_id, pk, &until, err);
        if (got == 0 || (got == 1 && !good_enough(until, min_valid_until_ts)))
            fetch_everywhere(srv, server_name, key_id, min_valid_until_ts);
        end_fetch(server_name);
    }
    got = lookup_key(srv, server_name, key_id, pk, &until, err);
    if (got < 0) return -1;
    if (!got) return unauth(err, "cannot find the key %s of %s", key_id, server_name);
    if (!good_enough(until, min_valid_until_ts))
        return unauth(err, "the key %s of %s has expired", key_id, server_name);
    return 0;
}

int fed_verify_json_signed_by(hs_server *srv, const json_t *obj, const char *server_name,
                              long long min_valid_until_ts, hs_err *err) {
    json_t *sigs = json_object_get(json_object_get(obj, "signatures"), server_name);
    if (!json_is_object(sigs) || !json_object_size(sigs))
        return unauth(err, "not signed by %s%s", server_name, "");
    int verified = 0;
    hs_err last = {0};
    const char *id;
    json_t *s;
    json_object_foreach(sigs, id, s) {
        unsigned char pk[32];
        if (!is_ed25519(id)) continue;
        if (fed_get_server_key(srv, server_name, id, min_valid_until_ts, pk, &last) < 0) continue;
        if (hs_json_verify(obj, server_name, id, pk, err) < 0) return -1;
        verified++;
    }
    if (verified) return 0;
    if (last.msg[0]) return unauth(err, "%s%s", last.msg, "");
    return unauth(err, "no signature of %s with a supported key%s", server_name, "");
}
