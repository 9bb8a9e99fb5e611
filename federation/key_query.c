/* key_query.c — the notary endpoints: GET /_matrix/key/v2/query/{serverName}
 * and POST /_matrix/key/v2/query. We answer with other servers' key
 * responses as they signed them, plus our own signature.
 *
 * A stored response is served while it is fresh: valid until the asked
 * minimum_valid_until_ts (now when not given, as the spec says) and not past
 * half of its lifetime (the spec's advice to notaries). Otherwise we fetch
 * from the server itself first; if that fails the old response is still
 * served, so signatures of old events stay checkable while a server is
 * down. Like Synapse, every listener with the federation resource serves
 * this; there is no switch. */
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "transport_internal.h"

/* A request may make us fetch this many servers; others come from the cache. */
#define MAX_FETCHES_PER_QUERY 20

static bool has_key(const json_t *resp, const char *key_id) {
    return json_object_get(json_object_get(resp, "verify_keys"), key_id) ||
           json_object_get(json_object_get(resp, "old_verify_keys"), key_id);
}

/* Does the stored response answer the query (key_ids: object of key ID ->
 * criteria, or NULL for "all")? */
static bool fresh(const json_t *resp, long long fetched, long long valid, const json_t *key_ids,
                  long long min_valid, long long now) {
    if (!resp || valid < min_valid || (fetched + valid) / 2 < now) return false;
    const char *id;
    json_t *v;
    json_object_foreach((json_t *)key_ids, id, v) if (!has_key(resp, id)) return false;
    return true;
}

/* The signed responses we can vouch for about server_name, appended to out. */
static void lookup(hs_server *srv, const char *server_name, const json_t *key_ids,
                   long long min_valid, int *fetches, json_t *out) {
    hs_err err = {0};
    if (!strcmp(server_name, srv->cfg->server_name)) {
        json_t *own = fed_own_server_keys(srv, &err);
        if (own) json_array_append_new(out, own);
        return;
    }
    if (!hs_server_name_valid(server_name)) return;
    long long now = hs_now_ms(), fetched = 0, valid = 0;
    json_t *resp = fed_keys_stored_response(srv, server_name, &fetched, &valid, &err);
    if (!fresh(resp, fetched, valid, key_ids, min_valid, now) &&
        fed_domain_allowed(srv->cfg, server_name) && (*fetches)++ < MAX_FETCHES_PER_QUERY &&
        fed_fetch_server_keys_direct(srv, server_name, &err) == 0) {
        json_decref(resp);
        resp = fed_keys_stored_response(srv, server_name, &fetched, &valid, &err);
    }
    if (!resp) return;
    if (hs_json_sign(resp, srv->cfg->server_name, &srv->key, &err) == 0)
        json_array_append(out, resp);
    json_decref(resp);
}

/* minimum_valid_until_ts: absent means now; anything but an integer is refused. */
static int min_valid_of(const json_t *crit, long long now, long long *out, hs_err *err) {
    json_t *m = json_object_get(crit, "minimum_valid_until_ts");
    *out = now;
    if (!m || json_is_null(m)) return 0;
    if (!json_is_integer(m))
        return hs_err_set(err, 400, "M_BAD_JSON", "minimum_valid_until_ts must be an integer");
    *out = json_integer_value(m);
    return 0;
}

static int get_query(hs_req *r, json_t **out, hs_err *err) {
    long long now = hs_now_ms(), min_valid = now;
    const char *q = hs_req_query(r, "minimum_valid_until_ts");
    if (q) {
        char *end;
        min_valid = strtoll(q, &end, 10);
        if (!*q || *end)
            return hs_err_set(err, 400, "M_INVALID_PARAM",
                              "minimum_valid_until_ts must be an integer");
    }
    /* The deprecated /{serverName}/{keyId} form asks about one key. */
    json_t *key_ids = r->n_params > 1 && r->params[1][0] ? json_pack("{s:{}}", r->params[1]) : NULL;
    json_t *arr = json_array();
    int fetches = 0;
    lookup(r->srv, r->params[0], key_ids, min_valid, &fetches, arr);
    json_decref(key_ids);
    *out = json_pack("{s:o}", "server_keys", arr);
    return 200;
}

static int post_query(hs_req *r, json_t **out, hs_err *err) {
    json_t *sk = json_object_get(r->json, "server_keys");
    if (!json_is_object(sk))
        return hs_err_set(err, 400, "M_BAD_JSON", "server_keys must be an object");
    long long now = hs_now_ms();
    const char *name, *id;
    json_t *keys, *crit;
    json_object_foreach(sk, name, keys) {
        if (!json_is_object(keys))
            return hs_err_set(err, 400, "M_BAD_JSON", "server_keys.%.200s must be an object", name);
        json_object_foreach(keys, id, crit) {
            long long m;
            if (!json_is_object(crit))
                return hs_err_set(err, 400, "M_BAD_JSON", "the criteria for %.200s must be an object",
                                  id);
            if (min_valid_of(crit, now, &m, err) < 0) return -1;
        }
    }
    json_t *arr = json_array();
    int fetches = 0;
    json_object_foreach(sk, name, keys) {
        /* One fetch serves every key of a server: ask for the latest minimum. */
        long long min_valid = now, m;
        json_object_foreach(keys, id, crit) if (min_valid_of(crit, now, &m, err) == 0 && m > min_valid)
            min_valid = m;
        lookup(r->srv, name, json_object_size(keys) ? keys : NULL, min_valid, &fetches, arr);
    }
    *out = json_pack("{s:o}", "server_keys", arr);
    return 200;
}

void fed_key_query_routes(hs_router *rt) {
    /* Canonical like our own key response (server_keys.c), as Synapse does. */
    int f = HS_FEDERATION | HS_FED_NOAUTH | HS_CANONICAL_JSON;
    hs_route(rt, "POST", "/_matrix/key/v2/query", post_query, f);
    /* Also the form with a key ID, deprecated in v1.6 but still sent. */
    hs_route(rt, "GET", "/_matrix/key/v2/query/{serverName}/{keyId?}", get_query, f);
}
