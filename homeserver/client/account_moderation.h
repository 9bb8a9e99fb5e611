/* account_moderation.h — suspending and locking local accounts (spec:
 * account moderation; v1.18 GET/PUT /_matrix/client/v1/admin/suspend|lock).
 * Used by the admin endpoints and the `pvyhs user suspend|lock` commands. */
#ifndef CLIENT_ACCOUNT_MODERATION_H
#define CLIENT_ACCOUNT_MODERATION_H

#include <stdbool.h>

#include "homeserver/core/err.h"
#include "homeserver/db/db.h"

typedef enum { CLIENT_MOD_SUSPEND, CLIENT_MOD_LOCK } client_mod_kind;

/* The JSON field and word of a kind: "suspended" / "locked". */
const char *client_mod_field(client_mod_kind k);

/* Whether user_id (a local account) is suspended / locked, and whether it
 * is a server admin (admin may be NULL). 404 M_NOT_FOUND when there is no
 * such account or it is deactivated. */
int client_mod_get(db_conn *c, const char *user_id, client_mod_kind k, bool *on, bool *admin,
                   hs_err *err);

/* Turn the state on or off (on again keeps when it began). 404 M_NOT_FOUND
 * as above. Cached access tokens carry the state: this process forgets
 * them, and every serving process is told to (http/auth_cache.h). Run it
 * outside a transaction, or the others learn of it only at its COMMIT. */
int client_mod_set(db_conn *c, const char *user_id, client_mod_kind k, bool on, hs_err *err);

/* -1 with 401 M_USER_LOCKED when user_id is locked (login and refresh
 * issue no token then), else 0. */
int client_mod_refuse_locked(db_conn *c, const char *user_id, hs_err *err);

#endif
