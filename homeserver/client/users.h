/* users.h — local accounts: IDs, creation, passwords. Used by /register,
 * /login and the `pvyhs user` commands alike. */
#ifndef CLIENT_USERS_H
#define CLIENT_USERS_H

#include <stdbool.h>

#include "homeserver/core/err.h"
#include "homeserver/db/db.h"

/* Check a localpart against the spec's user ID grammar for new accounts
 * (a-z 0-9 . _ = - / +, and the whole ID ≤ 255 bytes). 0 or -1 with
 * 400 M_INVALID_USERNAME. */
int hs_localpart_check(const char *localpart, const char *server_name, hs_err *err);

/* Turn "alice" or "@alice:server" into "@alice:server" (malloc'd) after
 * checking it is local and valid; NULL with err otherwise. */
char *hs_user_id_from_name(const char *name, const char *server_name, hs_err *err);

/* Create a user with an argon2id password hash (password may be NULL: no
 * password login). 400 M_USER_IN_USE if the ID is taken. */
int hs_user_create(db_conn *c, const char *user_id, const char *password, bool admin,
                   bool guest, hs_err *err);

/* Does password match the user's stored hash? false also when unknown. */
bool hs_user_check_password(db_conn *c, const char *user_id, const char *password, hs_err *err);

#endif
