/* uia.h — User-Interactive Authentication (spec: "User-Interactive
 * Authentication API"), as a service any endpoint can put in front of its
 * work, plus the user identifier objects that /login shares with it.
 *
 * Sessions live in PostgreSQL (uia_sessions), so a client may continue a
 * session on another process. A session is bound to the method and path of
 * the request that opened it (403 M_FORBIDDEN if it is reused for another
 * operation) and to the user it was opened for; it expires after 48 hours.
 * Stages must be completed in the order of one of the flows; a completed
 * stage is never asked for again.
 *
 * Stages this server can check:
 *   m.login.password            identifier (m.id.user, m.id.thirdparty,
 *                               m.id.phone, or the legacy "user" / "medium" +
 *                               "address" keys) and password; the 3PID forms
 *                               always fail with M_FORBIDDEN: we hold no 3PIDs
 *   m.login.dummy               always succeeds
 *   m.login.registration_token  a valid registration token (only /register
 *                               offers it; the use is counted as pending)
 *
 * The common case — an endpoint that re-confirms the logged-in user, such as
 * device deletion or uploading cross-signing keys:
 *
 *     static int post_thing(hs_req *r, json_t **out, hs_err *err) {
 *         ...validate the request body first (so nobody types a password
 *            for a request that fails anyway)...
 *         int rc = client_uia_reauth(r, "upload your cross-signing keys", out, err);
 *         if (rc != 0) return rc;       // 401 with the challenge in *out, or -1
 *         ...do the work...
 *     }
 *
 * The handler's route needs HS_AUTH (or HS_AUTH_OPTIONAL, see below). The
 * challenge body is the spec's: {flows, params, session[, completed]
 * [, errcode, error]}. */
#ifndef CLIENT_UIA_H
#define CLIENT_UIA_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/http/http.h"

/* One flow: its stage types in order, NULL-terminated. */
typedef const char *const *client_uia_flow;

typedef struct client_uia_spec {
    const client_uia_flow *flows;  /* NULL-terminated list of flows */
    /* The user the password stage must authenticate; NULL: any user (the
     * result's user_id says who), as for /account/password without a token. */
    const char *user_id;
    /* Forget the session once it succeeds, so the next call asks again (get
     * a login token: the spec demands a fresh consent each time). */
    bool single_use;
} client_uia_spec;

typedef struct client_uia_result {
    char session_id[40];
    char *user_id;      /* who m.login.password authenticated (or spec.user_id); malloc'd */
    /* The request's parameters: this body without "auth", or — when the
     * body carries nothing but "auth" — those of the session's first request.
     * Secret keys ("password", "new_password") are never stored, so they are
     * only here if this request carries them. New reference. */
    json_t *params;
} client_uia_result;

void client_uia_result_free(client_uia_result *res);

/* Run the request's "auth" through the flows. Returns
 *   0    every stage of some flow is complete: go ahead (res is filled);
 *   401  more is needed: *challenge is the 401 body (new reference) — return
 *        401 from the handler with *out = *challenge;
 *   -1   the request is wrong in a way retrying a stage can't fix (unknown
 *        session 400, operation changed 403 …), err is filled.
 * res may be NULL when the caller needs nothing from it. */
int client_uia_check(hs_req *r, const client_uia_spec *spec, client_uia_result *res,
                     json_t **challenge, hs_err *err);

/* Re-authenticate the request's own user (r->user_id) with their password:
 * client_uia_check with the single flow [m.login.password]. description is
 * what the user is confirming (kept for logs and future fallback pages).
 * Returns 0 to go ahead, else the handler's return value (401 with *out set,
 * or -1 with err). */
int client_uia_reauth(hs_req *r, const char *description, json_t **out, hs_err *err);

/* The rules of flows (pure; for tests): may stage `type` come after the
 * stages `completed` (a JSON array, in order) — is there a flow that starts
 * with them and continues with type? And is some flow entirely completed? */
bool client_uia_stage_expected(const client_uia_flow *flows, const json_t *completed,
                               const char *type);
bool client_uia_flows_done(const client_uia_flow *flows, const json_t *completed);

/* The session a request names in auth.session (NULL if none). */
const char *client_uia_session_of(const json_t *body);

/* Turn a login or m.login.password submission's identifier into a local user
 * ID (malloc'd, lower-cased). Errors as Synapse gives them: 400 for a
 * malformed identifier, 403 M_FORBIDDEN for a third-party ID or phone number
 * (none is bound to any account here) and for users of other servers. */
char *client_identifier_user(const json_t *submission, const char *server_name, hs_err *err);

/* m.login.password: identifier + password. Returns the user (malloc'd) or
 * NULL with 403 M_FORBIDDEN "Invalid username or password" (the same for an
 * unknown user, a wrong password and a deactivated account) or a 400. */
char *client_check_password_login(db_conn *c, const json_t *submission, const char *server_name,
                                  hs_err *err);

#endif
