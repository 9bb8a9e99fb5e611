/* room_access.c — membership look-ups on the current_state table. */
#include "room_access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *client_membership(db_conn *c, const char *room_id, const char *user_id, char *buf,
                              size_t n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT membership FROM current_state"
        " WHERE room_id = $1 AND type = 'm.room.member' AND state_key = $2");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, user_id}, err);
    if (!r) return NULL;
    snprintf(buf, n, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return buf;
}

int client_require_joined(db_conn *c, const char *room_id, const char *user_id, hs_err *err) {
    char m[32];
    if (!client_membership(c, room_id, user_id, m, sizeof m, err)) return -1;
    if (strcmp(m, "join") != 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "User %s not in room %s", user_id, room_id);
    return 0;
}

int client_joined_rooms(db_conn *c, const char *user_id, char ***ids, size_t *n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1"
        " AND membership = 'join' ORDER BY room_id");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    *n = (size_t)PQntuples(r);
    *ids = calloc(*n ? *n : 1, sizeof **ids);
    for (size_t i = 0; i < *n; i++) (*ids)[i] = strdup(PQgetvalue(r, (int)i, 0));
    PQclear(r);
    return 0;
}
