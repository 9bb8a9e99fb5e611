/* xmatrix.c — the X-Matrix Authorization scheme: signing what we send and
 * verifying what we receive ("Request Authentication" in the spec).
 *
 * The signed object is {method, uri, origin, destination[, content]}. We
 * always send destination (v1.3+) and quote every value; we accept what the
 * spec says recipients must: any order, case-insensitive names, token or
 * quoted values with backslash escapes, ':' in unquoted values, unknown
 * parameters, requests without destination. Several X-Matrix headers (one
 * per key) are allowed if they name the same origin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "transport_internal.h"

json_t *fed_xmatrix_request_json(const char *method, const char *uri, const char *origin,
                                 const char *destination, const json_t *content) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "method", method, "uri", uri, "origin", origin,
                          "destination", destination);
    if (o && content) json_object_set_new(o, "content", json_deep_copy(content));
    return o;
}

char *fed_xmatrix_sign(const hs_server *srv, const char *destination, const char *method,
                       const char *uri, const json_t *content, hs_err *err) {
    const char *origin = srv->cfg->server_name;
    json_t *o = fed_xmatrix_request_json(method, uri, origin, destination, content);
    if (!o) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory"), NULL;
    char *out = NULL;
    if (hs_json_sign(o, origin, &srv->key, err) == 0) {
        const char *sig = json_string_value(
            json_object_get(json_object_get(json_object_get(o, "signatures"), origin), srv->key.key_id));
        /* Server names, key IDs and base64 hold no '"' or '\\': no escaping needed. */
        if (!sig || asprintf(&out, "X-Matrix origin=\"%s\",destination=\"%s\",key=\"%s\",sig=\"%s\"",
                             origin, destination, srv->key.key_id, sig) < 0)
            out = NULL, hs_err_set(err, 500, "M_UNKNOWN", "cannot sign the request");
    }
    json_decref(o);
    return out;
}

/* ---- parsing ------------------------------------------------------------------- */

static int bad(hs_err *err, const char *why) {
    return hs_err_set(err, 401, "M_UNAUTHORIZED", "Malformed X-Matrix Authorization header: %s",
                      why);
}

static bool is_ws(char c) { return c == ' ' || c == '\t'; }

/* RFC 9110 tchar. */
static bool is_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Reads one value at *pp into out (cap bytes with the NUL). */
static int read_value(const char **pp, char *out, size_t cap, hs_err *err) {
    const char *p = *pp;
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p != '"'; p++) {
            if (!*p) return bad(err, "unterminated quoted value");
            if (*p == '\\' && !*++p) return bad(err, "unterminated quoted value");
            if ((unsigned char)*p < 0x20 && *p != '\t') return bad(err, "control character");
            if (*p == 0x7f) return bad(err, "control character");
            if (n + 1 >= cap) return bad(err, "value too long");
            out[n++] = *p;
        }
        p++;
    } else {
        /* A token, plus ':' which older servers send unquoted; we take any
         * visible character but ',' and '"' (base64 '/' and '=' too). */
        for (; (unsigned char)*p > 0x20 && *p != 0x7f && *p != ',' && *p != '"'; p++) {
            if (n + 1 >= cap) return bad(err, "value too long");
            out[n++] = *p;
        }
        if (n == 0) return bad(err, "empty value");
    }
    out[n] = 0;
    *pp = p;
    return 0;
}

int fed_xmatrix_parse(const char *header, fed_xmatrix *out, hs_err *err) {
    memset(out, 0, sizeof *out);
    if (!header || strncasecmp(header, "X-Matrix", 8) != 0 || !is_ws(header[8]))
        return bad(err, "the scheme is not X-Matrix");
    const char *p = header + 8;
    bool seen[4] = {0};
    while (*p) {
        while (is_ws(*p) || *p == ',') p++; /* empty list elements are allowed */
        if (!*p) break;
        const char *name = p;
        while (is_tchar(*p)) p++;
        size_t nl = (size_t)(p - name);
        if (nl == 0 || *p != '=') return bad(err, "expected name=value");
        p++;
        char value[512];
        if (read_value(&p, value, sizeof value, err) < 0) return -1;
        static const char *const names[] = {"origin", "destination", "key", "sig"};
        char *slots[] = {out->origin, out->destination, out->key, out->sig};
        size_t caps[] = {sizeof out->origin, sizeof out->destination, sizeof out->key,
                         sizeof out->sig};
        for (int i = 0; i < 4; i++) {
            if (strlen(names[i]) != nl || strncasecmp(names[i], name, nl)) continue;
            if (seen[i]) return bad(err, "a parameter is given twice");
            if (strlen(value) >= caps[i]) return bad(err, "value too long");
            strcpy(slots[i], value);
            seen[i] = true;
        }
        while (is_ws(*p)) p++;
        if (*p && *p != ',') return bad(err, "expected ',' between parameters");
    }
    out->has_destination = seen[1];
    if (!seen[0] || !seen[2] || !seen[3]) return bad(err, "origin, key and sig are required");
    if (!hs_server_name_valid(out->origin)) return bad(err, "origin is not a server name");
    return 0;
}

/* ---- inbound ----------------------------------------------------------------------- */

#define MAX_AUTH_HEADERS 8

typedef struct auth_headers {
    const char *v[MAX_AUTH_HEADERS];
    int n;
} auth_headers;

static enum MHD_Result collect_auth(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
    (void)kind;
    auth_headers *a = cls;
    if (key && value && !strcasecmp(key, "Authorization") && a->n < MAX_AUTH_HEADERS)
        a->v[a->n++] = value;
    return MHD_YES;
}

static int unauthorized(hs_err *err, const char *msg) {
    return hs_err_set(err, 401, "M_UNAUTHORIZED", "%s", msg);
}

/* The signatures of every X-Matrix header into one request object. */
static int gather(hs_req *r, json_t *sigs, char *origin, hs_err *err) {
    auth_headers a = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_auth, &a);
    int n = 0;
    for (int i = 0; i < a.n; i++) {
        if (strncasecmp(a.v[i], "X-Matrix", 8)) continue; /* another scheme: not ours */
        fed_xmatrix x;
        if (fed_xmatrix_parse(a.v[i], &x, err) < 0) return -1;
        if (n && strcmp(origin, x.origin))
            return unauthorized(err, "X-Matrix headers name different origins");
        if (x.has_destination && strcmp(x.destination, r->srv->cfg->server_name))
            return hs_err_set(err, 401, "M_UNAUTHORIZED",
                              "Destination mismatch in auth header, received: '%.256s'",
                              x.destination);
        strcpy(origin, x.origin);
        json_object_set_new(sigs, x.key, json_string(x.sig));
        n++;
    }
    return n ? 0 : unauthorized(err, "Missing Authorization headers");
}

static int verify(hs_req *r, const char *origin, json_t *sigs, const json_t *content, hs_err *err) {
    json_t *o = fed_xmatrix_request_json(r->method, r->uri ? r->uri : r->path, origin,
                                         r->srv->cfg->server_name, content);
    json_object_set_new(o, "signatures", json_pack("{s:O}", origin, sigs));
    int rc = fed_verify_json_signed_by(r->srv, o, origin, hs_now_ms(), err);
    json_decref(o);
    return rc;
}

int fed_authenticate_request(hs_req *r, hs_err *err) {
    char origin[256] = "";
    json_t *sigs = json_object();
    int rc = gather(r, sigs, origin, err);
    if (rc == 0 && !fed_domain_allowed(r->srv->cfg, origin))
        rc = hs_err_set(err, 403, "M_FORBIDDEN", "Federation denied with %s.", origin);
    if (rc < 0) {
        json_decref(sigs);
        return -1;
    }
    /* Synapse's rule: PUT and POST sign their JSON body as content. */
    bool has_content = !strcmp(r->method, "PUT") || !strcmp(r->method, "POST");
    json_t *content = has_content ? json_incref(r->json) : NULL;
    if (has_content && !content && r->body_len) {
        content = hs_json_parse(r->body, r->body_len, err);
        if (!content) return json_decref(sigs), -1;
    }
    if (has_content && !content) content = json_object();
    rc = verify(r, origin, sigs, content, err);
    /* An empty body may have been signed as "no content" rather than {}. */
    if (rc < 0 && has_content && r->body_len == 0) {
        hs_err e2;
        if (verify(r, origin, sigs, NULL, &e2) == 0) rc = 0;
    }
    json_decref(content);
    json_decref(sigs);
    /* A body that has no canonical JSON form (a float, an integer out of
     * range) cannot have been signed: the request is bad, 400 M_BAD_JSON,
     * as Synapse answers it. */
    if (rc < 0 && err->status == 400 && !strcmp(err->errcode, "M_BAD_JSON")) {
        hs_info("federation: refused a request from %s: %s", origin, err->msg);
        return -1;
    }
    if (rc < 0) {
        if (err->status != 401 || strcmp(err->errcode, "M_UNAUTHORIZED")) {
            char msg[sizeof err->msg];
            memcpy(msg, err->msg, sizeof msg);
            hs_err_set(err, 401, "M_UNAUTHORIZED", "%s", msg);
        }
        hs_info("federation: refused a request from %s: %s", origin, err->msg);
        return -1;
    }
    r->origin = strdup(origin);
    return r->origin ? 0 : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
}
