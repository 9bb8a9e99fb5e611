/* register_guest.c — guest accounts (the spec's Guest Access module):
 * POST /register?kind=guest, and the upgrade of a guest to a full account.
 *
 * A guest upgrades through the ordinary POST /register (kind=user, with its
 * UIA) by adding guest_access_token — its own access token — and, as the spec
 * asks, username set to its localpart (left out, the guest's is used). The
 * account keeps its user ID, rooms, devices and profile; it gets the password
 * and loses the guest flag, so the guest's own tokens now act as a full
 * user's too. As in Synapse, a token that is not a guest's, or a username
 * that is not the guest's, is refused with 403 M_FORBIDDEN. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "homeserver/http/auth_cache.h"
#include "homeserver/http/ratelimit.h"
#include "register.h"
#include "tokens.h"

/* A free numeric localpart from user_localpart_seq (Synapse's scheme). */
char *client_generate_user_id(db_conn *c, const char *server_name, hs_err *err) {
    static db_stmt next = DB_STMT(
        "SELECT n FROM (SELECT nextval('user_localpart_seq') AS n) s"
        " WHERE NOT EXISTS (SELECT 1 FROM users WHERE user_id = '@' || s.n || ':' || $1)");
    for (int tries = 0; tries < 100; tries++) {
        PGresult *r = db_run(c, &next, 1, (const char *[]){server_name}, err);
        if (!r) return NULL;
        char *id = NULL;
        if (PQntuples(r) == 1 && asprintf(&id, "@%s:%s", PQgetvalue(r, 0, 0), server_name) < 0)
            id = NULL;
        PQclear(r);
        if (id) return id;
    }
    hs_err_set(err, 500, "M_UNKNOWN", "could not find a free user ID");
    return NULL;
}

/* ---- POST /register?kind=guest ---- */

typedef struct guest_job {
    hs_server *srv;
    const char *device_name;
    json_t *out;
    bool created;
} guest_job;

static int guest_txn(db_conn *c, void *arg, hs_err *err) {
    guest_job *j = arg;
    json_object_clear(j->out);
    j->created = false;
    char *user_id = client_generate_user_id(c, j->srv->cfg->server_name, err);
    int rc = user_id && client_account_create(c, user_id, NULL, false, true, NULL, err) == 0 &&
                     client_session_start(j->srv, c, user_id, NULL, j->device_name, false, j->out,
                                          &j->created, err) == 0
                 ? 0
                 : -1;
    free(user_id);
    return rc;
}

/* Guests get no UIA, and the spec has the server ignore every parameter but
 * the device's display name. */
int client_register_guest(hs_req *r, json_t **out, hs_err *err) {
    if (!r->srv->cfg->allow_guest_access)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Guest access is disabled");
    char ip[64];
    hs_req_client_ip(r, ip, sizeof ip);
    if (hs_ratelimit("register", ip, &r->srv->cfg->rc_registration, err) < 0) return -1;
    const json_t *name = json_object_get(r->json, "initial_device_display_name");
    guest_job j = {.srv = r->srv, .device_name = json_string_value(name), .out = json_object()};
    if (db_txn(r->srv->db, guest_txn, &j, err) < 0) return json_decref(j.out), -1;
    if (j.created) client_announce_device(r->srv, j.out);
    *out = j.out;
    return 200;
}

/* ---- upgrading a guest ---- */

static int not_this_guest(hs_err *err) {
    return hs_err_set(err, 403, "M_FORBIDDEN",
                      "Cannot register taken user ID without valid guest credentials for that user.");
}

int client_guest_name_matches(const char *guest, const json_t *params, hs_err *err) {
    const char *name = json_string_value(json_object_get(params, "username"));
    if (!name) return 0;
    size_t n = strcspn(guest + 1, ":");
    if (strlen(name) != n) return not_this_guest(err);
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)name[i]) != guest[1 + i]) return not_this_guest(err);
    return 0;
}

int client_guest_to_upgrade(hs_req *r, char **guest, hs_err *err) {
    *guest = NULL;
    const json_t *t = json_object_get(r->json, "guest_access_token");
    if (!t || json_is_null(t)) return 0;
    if (!json_is_string(t)) return hs_err_set(err, 400, "M_BAD_JSON", "'guest_access_token' must be a string");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    hs_err dberr = {0};
    *guest = hs_auth_guest_of_token(c, json_string_value(t), &dberr);
    db_release(r->srv->db, c);
    if (!*guest) return dberr.status ? (*err = dberr, -1) : not_this_guest(err);
    if (client_guest_name_matches(*guest, r->json, err) == 0) return 0;
    free(*guest), *guest = NULL;
    return -1;
}

int client_guest_upgrade(db_conn *c, const char *guest, const char *password_hash, hs_err *err) {
    static db_stmt up = DB_STMT(
        "UPDATE users SET password_hash = $2, is_guest = false, upgraded_ts = $3"
        " WHERE user_id = $1 AND is_guest AND NOT deactivated");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    long n = db_exec(c, &up, 3, (const char *[]){guest, password_hash, now}, err);
    if (n < 0) return -1;
    hs_auth_cache_forget_all(); /* the guest's cached tokens said is_guest */
    return n == 1 ? 0 : not_this_guest(err); /* upgraded meanwhile, or deactivated */
}
