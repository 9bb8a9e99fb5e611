/* request.c — fed_request: one signed JSON request to another server.
 *
 * Policy first (whitelist), then discovery, then the X-Matrix signature over
 * exactly the bytes we send, then the transfer on the curl thread. The URL
 * names the TLS host (SNI and certificate check); CURLOPT_CONNECT_TO sends
 * the connection to an SRV target instead when there is one; the Host
 * header is what the spec asks for, which curl would not always produce. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "transport_internal.h"

char *fed_escape(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *w = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = 0;
    return out;
}

/* "host" or "[v6]" as a URL needs it. */
static void url_host(const char *h, char *out, size_t cap) {
    snprintf(out, cap, strchr(h, ':') ? "[%s]" : "%s", h);
}

/* Headers of the request; NULL on OOM. */
static struct curl_slist *headers_for(const fed_target *t, const char *auth, bool json) {
    char host[320], *a = NULL;
    struct curl_slist *l = NULL, *n;
    snprintf(host, sizeof host, "Host: %s", t->host_header);
    if (asprintf(&a, "Authorization: %s", auth) < 0) return NULL;
    const char *hs[] = {host, a, json ? "Content-Type: application/json" : NULL};
    for (size_t i = 0; i < 3; i++) {
        if (!hs[i]) continue;
        if (!(n = curl_slist_append(l, hs[i]))) {
            curl_slist_free_all(l);
            free(a);
            return NULL;
        }
        l = n;
    }
    free(a);
    return l;
}

bool fed_endpoint_unknown(long status, const hs_err *err) {
    return status == 405 || ((status == 404 || status == 400) &&
                             (!strcmp(err->errcode, "M_UNRECOGNIZED") ||
                              (status == 404 && !strcmp(err->errcode, "M_UNKNOWN"))));
}

/* A non-2xx answer becomes the error: the remote's status, errcode, message. */
static int remote_error(const char *dest, long status, const json_t *body, hs_err *err) {
    const char *code = json_string_value(json_object_get(body, "errcode"));
    const char *msg = json_string_value(json_object_get(body, "error"));
    if (!code || strlen(code) >= sizeof err->errcode) code = "M_UNKNOWN";
    hs_err_set(err, (int)status, code, "%s answered %ld: %.300s", dest, status,
               msg ? msg : "no error message");
    const char *ver = json_string_value(json_object_get(body, "room_version"));
    if (!strcmp(code, "M_INCOMPATIBLE_ROOM_VERSION") && ver &&
        strlen(ver) < sizeof err->room_version)
        strcpy(err->room_version, ver);
    return -1;
}

/* Sets URL, method, headers and body on h->easy. */
static int setup(fed_http *h, const fed_target *t, const char *method, const char *pq,
                 const char *payload, size_t len, struct curl_slist *hdrs) {
    char host[300], url[4096 + 320], connect_to[700];
    url_host(t->tls_host, host, sizeof host);
    if (snprintf(url, sizeof url, "https://%s:%d%s", host, t->port, pq) >= (int)sizeof url)
        return -1;
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* the signature names this URI only */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    if (t->connect_host[0]) {
        char ch[300];
        url_host(t->connect_host, ch, sizeof ch);
        snprintf(connect_to, sizeof connect_to, "%s:%d:%s:%d", host, t->port, ch, t->port);
        struct curl_slist *ct = curl_slist_append(NULL, connect_to);
        if (!ct) return -1;
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, ct);
        h->connect_to = ct;
    }
    if (payload) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, payload);
    }
    if (strcmp(method, "GET")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    else curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    return 0;
}

/* The transfer and what came back. */
static int transfer(hs_server *srv, const char *dest, const fed_target *t, const char *method,
                    const char *pq, const char *payload, size_t len, const char *auth,
                    const fed_request_opts *o, long *status, json_t **response, hs_err *err) {
    fed_http h;
    struct curl_slist *hdrs = NULL;
    int rc = -1;
    if (fed_http_prepare(&h, srv->cfg, o ? o->timeout_ms : 0, o ? o->max_response : 0) < 0 ||
        !(hdrs = headers_for(t, auth, payload != NULL)) ||
        setup(&h, t, method, pq, payload, len, hdrs) < 0) {
        hs_err_set(err, 500, "M_UNKNOWN", "cannot prepare a request to %s", dest);
        goto done;
    }
    if (fed_http_perform(&h) != CURLE_OK) {
        if (h.blocked) hs_err_set(err, 403, "M_FORBIDDEN", "%s: %s", dest, fed_http_strerror(&h));
        else hs_err_set(err, 502, "M_UNKNOWN", "%s: %s", dest, fed_http_strerror(&h));
        hs_debug("federation: %s %s%s failed: %s", method, dest, pq, err->msg);
        goto done;
    }
    curl_easy_getinfo(h.easy, CURLINFO_RESPONSE_CODE, status);
    hs_err perr;
    json_t *body = !h.body_len              ? NULL
                   : o && o->array_ok && *status >= 200 && *status < 300
                       ? hs_json_parse(h.body, h.body_len, &perr)
                       : hs_json_parse_object(h.body, h.body_len, &perr);
    hs_debug("federation: %s %s%s -> %ld", method, dest, pq, *status);
    if (*status >= 200 && *status < 300 && !body) {
        hs_err_set(err, 502, "M_UNKNOWN", "%s sent a response that is not a JSON object", dest);
    } else if (*status < 200 || *status >= 300) {
        remote_error(dest, *status, body, err);
    } else {
        rc = 0;
    }
    if (response) *response = body;
    else json_decref(body);
done:
    curl_slist_free_all(hdrs);
    fed_http_cleanup(&h);
    return rc;
}

int fed_request_ex(hs_server *srv, const char *destination, const char *method,
                   const char *path_and_query, const json_t *body, const fed_request_opts *o,
                   long *status, json_t **response, hs_err *err) {
    *status = 0;
    if (response) *response = NULL;
    if (!hs_server_name_valid(destination))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%.300s' is not a valid server name",
                          destination);
    if (!fed_domain_allowed(srv->cfg, destination))
        return hs_err_set(err, 403, "M_FORBIDDEN",
                          "federation with %s is not allowed (federation_domain_whitelist)",
                          destination);
    if (path_and_query[0] != '/' || strpbrk(path_and_query, " \r\n"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "bad request target");
    fed_target t;
    if (fed_resolve_server(srv, destination, &t, err) < 0) return -1;
    /* POST and PUT always carry a JSON object (spec), signed as content. */
    bool has_body = body || !strcmp(method, "POST") || !strcmp(method, "PUT");
    json_t *content = body ? json_incref((json_t *)body) : has_body ? json_object() : NULL;
    size_t len = 0;
    char *payload = content ? hs_json_canonical(content, &len, err) : NULL;
    char *auth = (!content || payload)
                     ? fed_xmatrix_sign(srv, destination, method, path_and_query, content, err)
                     : NULL;
    int rc = -1;
    if (auth)
        rc = transfer(srv, destination, &t, method, path_and_query, payload, len, auth, o, status,
                      response, err);
    json_decref(content);
    free(payload);
    free(auth);
    return rc;
}

int fed_request(hs_server *srv, const char *destination, const char *method,
                const char *path_and_query, const json_t *body, long *status, json_t **response,
                hs_err *err) {
    return fed_request_ex(srv, destination, method, path_and_query, body, NULL, status, response,
                          err);
}
