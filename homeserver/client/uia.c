/* uia.c — User-Interactive Authentication sessions and the stages we check.
 *
 * One request is one transaction: load (or open) the session row locked,
 * try the stage the client submitted, record it, and either report success
 * or build the 401 challenge. A failed stage still commits, so a new session
 * survives the client's first wrong password. */
#include "uia.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "registration_tokens.h"
#include "tokens.h"
#include "users.h"

#define SESSION_LIFETIME_MS (48LL * 3600 * 1000) /* Synapse's */

/* ---- identifiers and passwords ---- */

static char *third_party_refused(hs_err *err) {
    /* The spec: a 3PID the server does not know gives 403; we know none. */
    hs_err_set(err, 403, "M_FORBIDDEN", "Invalid username or password");
    return NULL;
}

static char *local_user(const char *name, const char *server_name, hs_err *err) {
    char *lower = strdup(name);
    if (!lower) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory"), NULL;
    /* Synapse matches user names case-insensitively; ours are all lower case. */
    char *end = lower[0] == '@' ? strchr(lower, ':') : NULL;
    for (char *p = lower; *p && p != end; p++) *p = (char)tolower((unsigned char)*p);
    hs_err ignored = {0};
    char *id = hs_user_id_from_name(lower, server_name, &ignored);
    free(lower);
    /* Another server's user, or a name no account can have: nobody we know. */
    if (!id) hs_err_set(err, 403, "M_FORBIDDEN", "Invalid username or password");
    return id;
}

char *client_identifier_user(const json_t *sub, const char *server_name, hs_err *err) {
    const json_t *id = json_object_get(sub, "identifier");
    const char *legacy_user = json_string_value(json_object_get(sub, "user"));
    const char *medium = json_string_value(json_object_get(sub, "medium"));
    const char *address = json_string_value(json_object_get(sub, "address"));
    /* The deprecated top-level keys win, as in Synapse. */
    if (legacy_user && *legacy_user) return local_user(legacy_user, server_name, err);
    if (medium && address) return third_party_refused(err);
    if (!id) return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid login submission"), NULL;
    if (!json_is_object(id))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'identifier' must be an object"), NULL;
    const char *type = json_string_value(json_object_get(id, "type"));
    if (!type)
        return hs_err_set(err, 400, "M_MISSING_PARAM", "'identifier' has no 'type'"), NULL;
    if (!strcmp(type, "m.id.user")) {
        const char *u = json_string_value(json_object_get(id, "user"));
        if (!u || !*u)
            return hs_err_set(err, 400, "M_MISSING_PARAM", "'identifier' has no 'user'"), NULL;
        return local_user(u, server_name, err);
    }
    if (!strcmp(type, "m.id.thirdparty")) {
        if (!json_is_string(json_object_get(id, "medium")) ||
            !json_is_string(json_object_get(id, "address")))
            return hs_err_set(err, 400, "M_MISSING_PARAM",
                              "'identifier' needs 'medium' and 'address'"), NULL;
        return third_party_refused(err);
    }
    if (!strcmp(type, "m.id.phone")) {
        const json_t *phone = json_object_get(id, "phone");
        if (!phone) phone = json_object_get(id, "number"); /* Synapse's older spelling */
        if (!json_is_string(json_object_get(id, "country")) || !json_is_string(phone))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid phone-type identifier"), NULL;
        return third_party_refused(err);
    }
    hs_err_set(err, 400, "M_UNKNOWN", "Unknown login identifier type '%s'", type);
    return NULL;
}

char *client_check_password_login(db_conn *c, const json_t *sub, const char *server_name,
                                  hs_err *err) {
    const char *password = json_string_value(json_object_get(sub, "password"));
    if (!password) return hs_err_set(err, 400, "M_INVALID_PARAM", "Bad parameter: password"), NULL;
    char *user = client_identifier_user(sub, server_name, err);
    if (!user) return NULL;
    hs_err db_err = {0};
    if (hs_user_check_password(c, user, password, &db_err)) return user;
    free(user);
    if (db_err.status) return *err = db_err, NULL;
    /* The same answer for an unknown user, a wrong password and a
     * deactivated account (its password is gone). */
    hs_err_set(err, 403, "M_FORBIDDEN", "Invalid username or password");
    return NULL;
}

/* ---- sessions ---- */

typedef struct uia_job {
    hs_req *r;
    const client_uia_spec *spec;
    const json_t *auth;       /* the submitted auth dict, or NULL */
    json_t *params;           /* the body without auth (borrowed from the job's copy) */
    /* results, rebuilt on every (re)try of the transaction */
    char sid[40];
    json_t *completed;        /* array of stage names */
    char *user_id;
    json_t *stored_params;
    hs_err stage_err;         /* a failed stage: goes into the challenge */
    bool done;
} uia_job;

static void job_reset(uia_job *j) {
    json_decref(j->completed), j->completed = NULL;
    json_decref(j->stored_params), j->stored_params = NULL;
    free(j->user_id), j->user_id = NULL;
    memset(&j->stage_err, 0, sizeof j->stage_err);
    j->done = false;
}

/* Params as the session keeps them: never a password or an access token. */
static json_t *storable(const json_t *params) {
    json_t *p = json_deep_copy(params);
    json_object_del(p, "password");
    json_object_del(p, "new_password");
    json_object_del(p, "guest_access_token");
    return p;
}

static int session_open(db_conn *c, uia_job *j, hs_err *err) {
    static db_stmt purge = DB_STMT("DELETE FROM uia_sessions WHERE created_ts < $1");
    static db_stmt ins = DB_STMT(
        "INSERT INTO uia_sessions (session_id, method, uri, created_ts, params, user_id)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6)");
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (int i = 0; i < 24; i++) j->sid[i] = alpha[randombytes_uniform(sizeof alpha - 1)];
    j->sid[24] = 0;
    char now[24], old[24];
    long long t = hs_now_ms();
    snprintf(now, sizeof now, "%lld", t);
    snprintf(old, sizeof old, "%lld", t - SESSION_LIFETIME_MS);
    json_t *sp = storable(j->params);
    char *ps = json_dumps(sp, JSON_COMPACT);
    json_decref(sp);
    const char *p[] = {j->sid, j->r->method, j->r->path, now, ps, j->spec->user_id};
    int rc = db_exec(c, &purge, 1, (const char *[]){old}, err) < 0 ||
                     db_exec(c, &ins, 6, p, err) < 0
                 ? -1
                 : 0;
    free(ps);
    j->completed = json_array();
    j->user_id = j->spec->user_id ? strdup(j->spec->user_id) : NULL;
    return rc;
}

/* Load the named session (locked); check it is this operation's. */
static int session_load(db_conn *c, uia_job *j, const char *sid, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT method, uri, created_ts, params::text, completed::text, user_id"
        " FROM uia_sessions WHERE session_id = $1 FOR UPDATE");
    PGresult *r = db_run(c, &q, 1, (const char *[]){sid}, err);
    if (!r) return -1;
    int rc = -1;
    if (PQntuples(r) == 0 || atoll(PQgetvalue(r, 0, 2)) < hs_now_ms() - SESSION_LIFETIME_MS) {
        hs_err_set(err, 400, "M_UNKNOWN", "Unknown session ID: %s", sid);
    } else if (strcmp(PQgetvalue(r, 0, 0), j->r->method) || strcmp(PQgetvalue(r, 0, 1), j->r->path)) {
        hs_err_set(err, 403, "M_FORBIDDEN",
                   "Requested operation has changed during the UI authentication session.");
    } else if (j->spec->user_id && !PQgetisnull(r, 0, 5) &&
               strcmp(PQgetvalue(r, 0, 5), j->spec->user_id)) {
        hs_err_set(err, 403, "M_FORBIDDEN", "This session belongs to another user");
    } else {
        snprintf(j->sid, sizeof j->sid, "%s", sid);
        j->stored_params = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
        j->completed = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
        if (!j->completed) j->completed = json_array();
        if (!PQgetisnull(r, 0, 5)) j->user_id = strdup(PQgetvalue(r, 0, 5));
        rc = 0;
    }
    PQclear(r);
    return rc;
}

static int session_save(db_conn *c, uia_job *j, bool new_params, hs_err *err) {
    static db_stmt up = DB_STMT(
        "UPDATE uia_sessions SET completed = $2::jsonb, user_id = $3,"
        " params = coalesce($4::jsonb, params) WHERE session_id = $1");
    char *comp = json_dumps(j->completed, JSON_COMPACT);
    json_t *sp = new_params ? storable(j->params) : NULL;
    char *ps = sp ? json_dumps(sp, JSON_COMPACT) : NULL;
    json_decref(sp);
    long n = db_exec(c, &up, 4, (const char *[]){j->sid, comp, j->user_id, ps}, err);
    free(comp), free(ps);
    return n < 0 ? -1 : 0;
}

/* ---- stages ---- */

static bool in_array(const json_t *a, const char *s) {
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) if (!strcmp(json_string_value(v), s)) return true;
    return false;
}

static bool offered(const client_uia_flow *flows, const char *type) {
    for (; *flows; flows++)
        for (const char *const *s = *flows; *s; s++)
            if (!strcmp(*s, type)) return true;
    return false;
}

/* May type come next: is there a flow that starts with what is completed
 * and continues with type? */
bool client_uia_stage_expected(const client_uia_flow *flows, const json_t *completed,
                               const char *type) {
    size_t n = json_array_size(completed);
    for (; *flows; flows++) {
        size_t i = 0;
        const char *const *s = *flows;
        for (; s[i] && i < n; i++)
            if (strcmp(s[i], json_string_value(json_array_get(completed, i)))) break;
        if (i == n && s[i] && !strcmp(s[i], type)) return true;
    }
    return false;
}

bool client_uia_flows_done(const client_uia_flow *flows, const json_t *completed) {
    for (; *flows; flows++) {
        bool all = true;
        for (const char *const *s = *flows; *s && all; s++) all = in_array(completed, *s);
        if (all) return true;
    }
    return false;
}

static int stage_password(db_conn *c, uia_job *j, hs_err *err) {
    hs_err e = {0};
    char *user = client_check_password_login(c, j->auth, j->r->srv->cfg->server_name, &e);
    if (!user) {
        if (e.status >= 500) return *err = e, -1;
        if (e.status == 400) return *err = e, -1; /* malformed: not a stage attempt */
        j->stage_err = e;
        return 0;
    }
    /* Another user's valid password is no retry of this user's stage: a
     * plain 403, as Synapse answers once the auth names another user. */
    if (j->user_id && strcmp(user, j->user_id)) {
        free(user);
        return hs_err_set(err, 403, "M_FORBIDDEN", "Invalid auth: not the session's user");
    }
    if (!j->user_id) j->user_id = user;
    else free(user);
    return 1;
}

static int stage_registration_token(db_conn *c, uia_job *j, hs_err *err) {
    static db_stmt set = DB_STMT(
        "UPDATE uia_sessions SET registration_token = $2::bytea WHERE session_id = $1");
    const char *token = json_string_value(json_object_get(j->auth, "token"));
    if (!token) return hs_err_set(err, 400, "M_MISSING_PARAM", "'auth.token' is missing"), -1;
    int ok = client_regtoken_usable(c, token, true, err);
    if (ok < 0) return -1;
    if (!ok) {
        hs_err_set(&j->stage_err, 401, "M_FORBIDDEN", "Invalid registration token");
        return 0;
    }
    char hex[CLIENT_TOKEN_HEX_LEN];
    client_token_hash_hex(token, hex);
    return db_exec(c, &set, 2, (const char *[]){j->sid, hex}, err) < 0 ? -1 : 1;
}

/* 1 passed, 0 failed (j->stage_err), -1 err. */
static int try_stage(db_conn *c, uia_job *j, const char *type, hs_err *err) {
    if (!offered(j->spec->flows, type)) {
        hs_err_set(&j->stage_err, 401, "M_UNRECOGNIZED", "Stage '%s' is not offered here", type);
        return 0;
    }
    if (!client_uia_stage_expected(j->spec->flows, j->completed, type)) {
        hs_err_set(&j->stage_err, 401, "M_FORBIDDEN",
                   "Stage '%s' is out of order: follow one of the flows", type);
        return 0;
    }
    if (!strcmp(type, "m.login.dummy")) return 1;
    if (!strcmp(type, "m.login.password")) return stage_password(c, j, err);
    if (!strcmp(type, "m.login.registration_token")) return stage_registration_token(c, j, err);
    hs_err_set(&j->stage_err, 401, "M_UNRECOGNIZED", "Stage '%s' is not supported", type);
    return 0;
}

static int uia_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt del = DB_STMT("DELETE FROM uia_sessions WHERE session_id = $1");
    uia_job *j = arg;
    job_reset(j);
    const char *sid = client_uia_session_of(j->r->json);
    if ((sid ? session_load(c, j, sid, err) : session_open(c, j, err)) < 0) return -1;
    bool new_params = sid && json_object_size(j->params) > 0;
    const char *type = json_string_value(json_object_get(j->auth, "type"));
    if (type && !in_array(j->completed, type)) {
        int ok = try_stage(c, j, type, err);
        if (ok < 0) return -1;
        if (ok) json_array_append_new(j->completed, json_string(type));
    }
    j->done = client_uia_flows_done(j->spec->flows, j->completed);
    if (j->done && j->spec->single_use)
        return db_exec(c, &del, 1, (const char *[]){j->sid}, err) < 0 ? -1 : 0;
    return session_save(c, j, new_params, err);
}

const char *client_uia_session_of(const json_t *body) {
    return json_string_value(json_object_get(json_object_get(body, "auth"), "session"));
}

static json_t *challenge_body(const uia_job *j, bool attempted) {
    json_t *flows = json_array();
    for (const client_uia_flow *f = j->spec->flows; *f; f++) {
        json_t *stages = json_array();
        for (const char *const *s = *f; *s; s++) json_array_append_new(stages, json_string(*s));
        json_array_append_new(flows, json_pack("{s:o}", "stages", stages));
    }
    json_t *b = json_pack("{s:o, s:{}, s:s}", "flows", flows, "params", "session", j->sid);
    if (attempted || json_array_size(j->completed))
        json_object_set(b, "completed", j->completed);
    if (j->stage_err.errcode[0]) {
        json_object_set_new(b, "errcode", json_string(j->stage_err.errcode));
        json_object_set_new(b, "error", json_string(j->stage_err.msg));
    }
    return b;
}

int client_uia_check(hs_req *r, const client_uia_spec *spec, client_uia_result *res,
                     json_t **challenge, hs_err *err) {
    const json_t *auth = json_object_get(r->json, "auth");
    if (auth && !json_is_object(auth))
        return hs_err_set(err, 400, "M_BAD_JSON", "'auth' must be an object");
    if (json_object_get(auth, "session") && !client_uia_session_of(r->json))
        return hs_err_set(err, 400, "M_BAD_JSON", "'auth.session' must be a string");
    if (json_object_get(auth, "type") && !json_is_string(json_object_get(auth, "type")))
        return hs_err_set(err, 400, "M_BAD_JSON", "'auth.type' must be a string");
    json_t *params = json_deep_copy(r->json);
    json_object_del(params, "auth");
    uia_job j = {.r = r, .spec = spec, .auth = auth, .params = params};
    int rc = db_txn(r->srv->db, uia_txn, &j, err);
    if (rc == 0 && j.done) {
        if (res) {
            snprintf(res->session_id, sizeof res->session_id, "%s", j.sid);
            res->user_id = j.user_id, j.user_id = NULL;
            bool only_auth = json_object_size(params) == 0 && j.stored_params;
            res->params = json_incref(only_auth ? j.stored_params : params);
        }
    } else if (rc == 0) {
        *challenge = challenge_body(&j, auth && json_object_get(auth, "type"));
        rc = 401;
    }
    job_reset(&j);
    json_decref(params);
    return rc;
}

void client_uia_result_free(client_uia_result *res) {
    free(res->user_id), res->user_id = NULL;
    json_decref(res->params), res->params = NULL;
}

int client_uia_reauth(hs_req *r, const char *description, json_t **out, hs_err *err) {
    static const char *const password[] = {"m.login.password", NULL};
    static const client_uia_flow flows[] = {password, NULL};
    client_uia_spec spec = {.flows = flows, .user_id = r->user_id};
    int rc = client_uia_check(r, &spec, NULL, out, err);
    if (rc == 0) hs_debug("%s confirmed their password to %s", r->user_id, description);
    return rc;
}
