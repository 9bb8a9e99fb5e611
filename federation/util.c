/* util.c — small helpers of the room files of federation/: repeated query
 * parameters (ver=1&ver=2, v=$a&v=$b), IDs, paths and transactions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "rooms_internal.h"

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..len) ('+' is a space in query strings). */
static char *decode(const char *s, size_t len) {
    char *out = malloc(len + 1), *w = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            *w++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *w++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *w = 0;
    return out;
}

size_t fed_query_values(const char *uri, const char *key, char **out, size_t max) {
    const char *q = uri ? strchr(uri, '?') : NULL;
    size_t n = 0, klen = strlen(key);
    if (!q) return 0;
    for (const char *p = q + 1; *p && n < max;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        char *name = decode(p, nlen);
        if (name && strlen(name) == klen && !memcmp(name, key, klen)) {
            char *v = eq ? decode(eq + 1, len - nlen - 1) : strdup("");
            if (v) out[n++] = v;
        }
        free(name);
        if (!end) break;
        p = end + 1;
    }
    return n;
}

void fed_strv_free(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
}

const char *fed_id_domain(const char *id) {
    const char *c = id ? strchr(id, ':') : NULL;
    return c ? c + 1 : "";
}

bool fed_user_of(const char *user_id, const char *server) {
    return user_id && user_id[0] == '@' && strchr(user_id, ':') && strlen(user_id) <= 255 &&
           !strcmp(fed_id_domain(user_id), server);
}

char *fed_path2(const char *prefix, const char *a, const char *b) {
    char *ea = fed_escape(a), *eb = b ? fed_escape(b) : NULL, *out = NULL;
    if (ea && (!b || eb) && asprintf(&out, "%s/%s%s%s", prefix, ea, b ? "/" : "", b ? eb : "") < 0)
        out = NULL;
    free(ea);
    free(eb);
    return out;
}

json_t *fed_transaction(const hs_server *srv, json_t *pdus) {
    return json_pack("{s:s, s:I, s:o}", "origin", srv->cfg->server_name, "origin_server_ts",
                     (json_int_t)hs_now_ms(), "pdus", pdus ? pdus : json_array());
}

json_t *fed_str_array(const char *const *ids, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(ids[i]));
    return a;
}

int fed_auth_chain(db_conn *c, const char *room_id, const char *const *ids, size_t n, char ***out,
                   size_t *n_out, hs_err *err) {
    if (room_store_auth_chain(c, ids, n, out, n_out, err) < 0) return -1;
    hs_err miss = {0};
    const room_version *v = room_store_room_version(c, room_id, &miss);
    if (!v || !v->hydra || !n || room_id[0] != '!') return 0;
    /* v12: the create event is every event's auth event without being cited. */
    char *create = NULL;
    if (asprintf(&create, "$%s", room_id + 1) < 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    for (size_t i = 0; i < *n_out; i++)
        if (!strcmp((*out)[i], create)) return free(create), 0;
    char **more = realloc(*out, (*n_out + 2) * sizeof *more);
    if (!more) return free(create), hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    more[(*n_out)++] = create;
    *out = more;
    return 0;
}

json_t *fed_v1_answer(json_t *body) {
    return json_pack("[i, o]", 200, body);
}
