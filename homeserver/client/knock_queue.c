/* knock_queue.c — the moderation queue of a channel: the users whose
 * current membership is "knock" (they asked to join and nobody answered),
 * the rate limits on asking, and naming a channel by ID or alias.
 *
 * A knock is answered with an invite (approve) or a kick (deny), sent by a
 * joined member with the power to do so — the auth rules demand it — and
 * withdrawn by the knocker's own leave. Moderators learn of each knock from
 * /sync (the membership event) and from the server-default push rule
 * .org.pvyhs.rule.knock (push_rules_default.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "homeserver/http/ratelimit.h"

json_t *client_channel_knocks(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.state_key, cs.event_id, convert_from(e.json, 'UTF8') FROM current_state cs"
        " JOIN events e ON e.event_id = cs.event_id"
        " WHERE cs.room_id = $1 AND cs.type = 'm.room.member' AND cs.membership = 'knock'"
        " ORDER BY e.origin_server_ts, cs.state_key");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return NULL;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *ev = json_loads(PQgetvalue(r, i, 2), 0, NULL);
        const json_t *content = json_object_get(ev, "content");
        json_t *k = json_pack("{s:s, s:s, s:I}", "user_id", PQgetvalue(r, i, 0), "event_id",
                              PQgetvalue(r, i, 1), "ts",
                              json_integer_value(json_object_get(ev, "origin_server_ts")));
        const char *keys[] = {"reason", "displayname"};
        for (int j = 0; j < 2; j++)
            if (json_is_string(json_object_get(content, keys[j])))
                json_object_set(k, keys[j], json_object_get(content, keys[j]));
        json_array_append_new(out, k);
        json_decref(ev);
    }
    PQclear(r);
    return out;
}

char *client_channel_resolve(db_conn *c, const char *id_or_alias, const char *server_name,
                             hs_err *err) {
    static db_stmt q = DB_STMT("SELECT room_id FROM room_aliases WHERE alias = $1");
    static db_stmt known = DB_STMT("SELECT room_id FROM rooms WHERE room_id = $1");
    char alias[512];
    bool is_id = id_or_alias[0] == '!';
    if (is_id) snprintf(alias, sizeof alias, "%s", id_or_alias);
    else if (id_or_alias[0] == '#') snprintf(alias, sizeof alias, "%s", id_or_alias);
    else snprintf(alias, sizeof alias, "#%s:%s", id_or_alias, server_name);
    PGresult *r = db_run(c, is_id ? &known : &q, 1, (const char *[]){alias}, err);
    if (!r) return NULL;
    char *id = PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    if (!id) hs_err_set(err, 404, "M_NOT_FOUND", "No channel %s on this server", alias);
    return id;
}

int client_channel_knock_ratelimit(const hs_server *srv, const char *user_id,
                                   const char *room_id, hs_err *err) {
    if (hs_ratelimit("knock-user", user_id, &srv->cfg->rc_knocks_per_user, err) < 0) return -1;
    return hs_ratelimit("knock-room", room_id, &srv->cfg->rc_knocks_per_room, err);
}
