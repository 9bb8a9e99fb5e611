/* users.c — creating local accounts and checking their passwords.
 *
 * Passwords are hashed with argon2id (libsodium's crypto_pwhash_str at the
 * "interactive" cost: 64 MiB, released right after each hash). */
#include "users.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "profile.h"

int hs_localpart_check(const char *lp, const char *server_name, hs_err *err) {
    if (!*lp) return hs_err_set(err, 400, "M_INVALID_USERNAME", "the user name is empty");
    for (const char *p = lp; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr("._=-/+", ch);
        if (!ok)
            return hs_err_set(err, 400, "M_INVALID_USERNAME",
                              "user names may contain only a-z, 0-9, '.', '_', '=', '-', '/' "
                              "and '+'");
    }
    if (strlen(lp) + strlen(server_name) + 2 > 255)
        return hs_err_set(err, 400, "M_INVALID_USERNAME", "the user ID is longer than 255 bytes");
    return 0;
}

char *hs_user_id_from_name(const char *name, const char *server_name, hs_err *err) {
    char lp[256];
    if (name[0] == '@') {
        const char *colon = strchr(name, ':');
        if (!colon || strcmp(colon + 1, server_name) != 0) {
            hs_err_set(err, 400, "M_INVALID_USERNAME", "'%s' is not a user of %s", name,
                       server_name);
            return NULL;
        }
        snprintf(lp, sizeof lp, "%.*s", (int)(colon - name - 1), name + 1);
    } else {
        snprintf(lp, sizeof lp, "%s", name);
    }
    if (hs_localpart_check(lp, server_name, err) < 0) return NULL;
    size_t n = strlen(lp) + strlen(server_name) + 3;
    char *id = malloc(n);
    snprintf(id, n, "@%s:%s", lp, server_name);
    return id;
}

int hs_user_create(db_conn *c, const char *user_id, const char *password, bool admin,
                   bool guest, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO users (user_id, password_hash, admin, is_guest, created_ts)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO NOTHING");
    char hash[crypto_pwhash_STRBYTES];
    if (password &&
        crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "out of memory hashing the password");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    const char *p[] = {user_id, password ? hash : NULL, admin ? "t" : "f", guest ? "t" : "f", now};
    long n = db_exec(c, &ins, 5, p, err);
    sodium_memzero(hash, sizeof hash);
    if (n < 0) return -1;
    if (n == 0) return hs_err_set(err, 400, "M_USER_IN_USE", "the user ID %s is taken", user_id);
    /* Synapse's default display name is the localpart (profile.c). */
    char lp[256];
    snprintf(lp, sizeof lp, "%.*s", (int)(strchr(user_id, ':') - user_id - 1), user_id + 1);
    return client_profile_init(c, user_id, lp, err);
}

bool hs_user_check_password(db_conn *c, const char *user_id, const char *password, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT password_hash FROM users WHERE user_id = $1 AND NOT deactivated"
        " AND password_hash IS NOT NULL");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return false;
    bool ok = PQntuples(r) == 1 &&
              crypto_pwhash_str_verify(PQgetvalue(r, 0, 0), password, strlen(password)) == 0;
    PQclear(r);
    return ok;
}
