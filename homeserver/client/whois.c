/* whois.c — GET /_matrix/client/v3/admin/whois/{userId} (r0).
 *
 * For server admins, or for users asking about themselves (the spec lets a
 * server allow both). Each device is one session whose connection shows
 * when it was last used; its IP address and user agent only exist when the
 * admin turned on track_client_ips (devices.c, http/auth_seen.c), so by
 * default the answer holds no address at all. */
#include <stdlib.h>
#include <string.h>

#include "client.h"

static json_t *connection(PGresult *r, int i) {
    json_t *conn = json_object();
    if (!PQgetisnull(r, i, 1)) json_object_set_new(conn, "last_seen", json_integer(atoll(PQgetvalue(r, i, 1))));
    if (!PQgetisnull(r, i, 2)) json_object_set_new(conn, "ip", json_string(PQgetvalue(r, i, 2)));
    if (!PQgetisnull(r, i, 3)) json_object_set_new(conn, "user_agent", json_string(PQgetvalue(r, i, 3)));
    return conn;
}

static int get_whois(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt user = DB_STMT("SELECT 1 FROM users WHERE user_id = $1");
    static db_stmt devices = DB_STMT(
        "SELECT device_id, last_seen_ts, last_seen_ip, last_seen_user_agent FROM devices"
        " WHERE user_id = $1 ORDER BY device_id");
    const char *target = r->params[0];
    /* Who may ask comes first, so others learn nothing about the account. */
    if (!r->is_admin && strcmp(target, r->user_id) != 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "You are not a server admin");
    const char *colon = strchr(target, ':');
    if (target[0] != '@' || !colon || strcmp(colon + 1, r->srv->cfg->server_name) != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Can only whois a local user");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *u = db_run(c, &user, 1, (const char *[]){target}, err);
    PGresult *d = u && PQntuples(u) ? db_run(c, &devices, 1, (const char *[]){target}, err) : NULL;
    db_release(r->srv->db, c);
    int rc = -1;
    if (u && !PQntuples(u)) {
        hs_err_set(err, 404, "M_NOT_FOUND", "User not found");
    } else if (d) {
        json_t *devs = json_object();
        for (int i = 0; i < PQntuples(d); i++) {
            json_t *conns = json_array();
            if (!PQgetisnull(d, i, 1) || !PQgetisnull(d, i, 2) || !PQgetisnull(d, i, 3))
                json_array_append_new(conns, connection(d, i));
            json_object_set_new(devs, PQgetvalue(d, i, 0),
                                json_pack("{s:[{s:o}]}", "sessions", "connections", conns));
        }
        *out = json_pack("{s:s, s:o}", "user_id", target, "devices", devs);
        rc = 200;
    }
    if (u) PQclear(u);
    if (d) PQclear(d);
    return rc;
}

void client_whois_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/admin/whois/{userId}", get_whois, HS_AUTH | HS_R0);
}
