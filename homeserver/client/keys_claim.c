/* keys_claim.c — POST /keys/claim.
 *
 * Each one-time key is handed out at most once: the claim is one
 * DELETE … RETURNING of the oldest key, whose row is picked with
 * FOR UPDATE SKIP LOCKED, so concurrent claims take different keys and never
 * wait on each other. When a device has none left, its fallback key for the
 * algorithm is returned instead; it stays and is marked used, which the
 * device learns from device_unused_fallback_key_types in /sync. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_internal.h"
#include "fed_outbound.h"

/* Claim one key of algorithm alg for (uid, did) into into["alg:key_id"].
 * Nothing (and 0) when the device has neither kind. */
static int claim_one(db_conn *c, const char *uid, const char *did, const char *alg,
                     json_t *into, hs_err *err) {
    static db_stmt otk = DB_STMT(
        "DELETE FROM e2e_one_time_keys WHERE (user_id, device_id, algorithm, key_id) IN ("
        " SELECT user_id, device_id, algorithm, key_id FROM e2e_one_time_keys"
        " WHERE user_id = $1 AND device_id = $2 AND algorithm = $3"
        " ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING key_id, key_json");
    static db_stmt fb = DB_STMT(
        "UPDATE e2e_fallback_keys SET used = true"
        " WHERE user_id = $1 AND device_id = $2 AND algorithm = $3"
        " RETURNING key_id, key_json");
    const char *p[] = {uid, did, alg};
    PGresult *res = db_run(c, &otk, 3, p, err);
    if (!res) return -1;
    if (!PQntuples(res)) {
        PQclear(res);
        if (!(res = db_run(c, &fb, 3, p, err))) return -1;
    }
    if (PQntuples(res)) {
        json_t *key = e2ee_parse_stored(PQgetvalue(res, 0, 1));
        char name[600];
        snprintf(name, sizeof name, "%s:%s", alg, PQgetvalue(res, 0, 0));
        if (key) json_object_set_new(into, name, key);
    }
    PQclear(res);
    return 0;
}

static int check_claim(const json_t *otks, hs_err *err) {
    if (!json_is_object(otks))
        return hs_err_set(err, 400, "M_BAD_JSON", "'one_time_keys' must be a JSON object");
    const char *u, *d;
    json_t *devs, *alg;
    json_object_foreach((json_t *)otks, u, devs) {
        if (!json_is_object(devs))
            return hs_err_set(err, 400, "M_BAD_JSON",
                              "'one_time_keys' must map user IDs to device IDs to algorithms");
        json_object_foreach(devs, d, alg) if (!json_is_string(alg)) return hs_err_set(
            err, 400, "M_BAD_JSON", "the algorithm for %s's device %s must be a string", u, d);
    }
    return 0;
}

int client_keys_claim_local(db_conn *c, const json_t *otks, json_t *out, hs_err *err) {
    const char *u, *d;
    json_t *devs, *alg;
    json_object_foreach((json_t *)otks, u, devs) {
        json_object_foreach(devs, d, alg) {
            json_t *got = json_object();
            if (claim_one(c, u, d, json_string_value(alg), got, err) < 0) {
                json_decref(got);
                return -1;
            }
            if (json_object_size(got) == 0) {
                json_decref(got);
                continue;
            }
            json_t *ud = json_object_get(out, u);
            if (!ud) json_object_set_new(out, u, ud = json_object());
            json_object_set_new(ud, d, got);
        }
    }
    return 0;
}

/* Local devices' keys from our tables; remote ones are claimed from their
 * servers (through federation, all at once, within the request's timeout). */
static int post_keys_claim(hs_req *r, json_t **out, hs_err *err) {
    const json_t *otks = json_object_get(r->json, "one_time_keys");
    if (check_claim(otks, err) < 0) return -1;
    const json_t *t = json_object_get(r->json, "timeout");
    long timeout = json_is_integer(t) && json_integer_value(t) > 0 ? (long)json_integer_value(t)
                                                                   : 10000;
    json_t *local = json_object(), *remote = json_object();
    const char *u;
    json_t *devs;
    json_object_foreach((json_t *)otks, u, devs) {
        const char *server = e2ee_user_server(u);
        if (!server) continue;
        if (e2ee_is_local(r, u)) {
            json_object_set(local, u, devs);
            continue;
        }
        json_t *s = json_object_get(remote, server);
        if (!s) json_object_set_new(remote, server, s = json_object());
        json_object_set(s, u, devs);
    }
    json_t *keys = json_object(), *failures = json_object();
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = c && client_keys_claim_local(c, local, keys, err) == 0 ? 200 : -1;
    db_release(r->srv->db, c);
    if (rc == 200 && json_object_size(remote))
        client_fed_keys_claim(r->srv, remote, timeout, keys, failures);
    json_decref(local), json_decref(remote);
    if (rc < 0) {
        json_decref(keys), json_decref(failures);
        return -1;
    }
    *out = json_pack("{s:o, s:o}", "one_time_keys", keys, "failures", failures);
    return 200;
}

void e2ee_claim_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/keys/claim", post_keys_claim, HS_AUTH | HS_R0 | HS_GUEST);
}
