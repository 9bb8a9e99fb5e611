/* room_membership.c — join, leave, invite, kick, ban, unban, knock, forget.
 *
 * Each is an m.room.member event through client_room_send: the auth rules
 * decide what is allowed, and their refusal is the 403 the client sees.
 * Rooms no local user is joined to are joined, knocked on and left through
 * another server (room_membership_remote.h: federation's make_ and send_
 * handshakes); with no server to ask, 404 as Synapse answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "client.h"
#include "guest_rooms.h"
#include "homeserver/http/ratelimit.h"
#include "profile.h"
#include "remote_rooms.h"
#include "room_access.h"
#include "room_membership_remote.h"
#include "room_send.h"
#include "server_notices.h"

/* "!room" as is, "#alias:server" through the alias table, or through its
 * server's directory for another server's alias (*servers then names the
 * servers to join through; NULL otherwise). */
static char *resolve_room(hs_req *r, const char *id_or_alias, json_t **servers, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT room_id FROM room_aliases WHERE alias = $1");
    *servers = NULL;
    if (id_or_alias[0] == '!') return strdup(id_or_alias);
    const char *colon = strchr(id_or_alias, ':');
    if (id_or_alias[0] != '#' || !colon)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' is neither a room ID nor an alias",
                          id_or_alias),
               NULL;
    if (strcmp(colon + 1, r->srv->cfg->server_name) != 0)
        return client_room_resolve_remote_alias(r, id_or_alias, servers, err);
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return NULL;
    PGresult *res = db_run(c, &q, 1, (const char *[]){id_or_alias}, err);
    db_release(r->srv->db, c);
    if (!res) return NULL;
    char *id = PQntuples(res) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    if (!id) hs_err_set(err, 404, "M_NOT_FOUND", "Room alias %s not found", id_or_alias);
    return id;
}

static int room_known(hs_req *r, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM rooms WHERE room_id = $1 AND current_state_group IS NOT NULL");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = db_run(c, &q, 1, (const char *[]){room_id}, err);
    db_release(r->srv->db, c);
    if (!res) return -1;
    int known = PQntuples(res) > 0;
    PQclear(res);
    return known ? 0 : hs_err_set(err, 404, "M_NOT_FOUND", "No known servers to join %s through", room_id);
}

/* A join carries the joiner's display name and avatar; an invite of a local
 * user carries the invitee's, as Synapse sends them. */
static int fill_profile(hs_req *r, const char *target, const char *m, json_t *content,
                        hs_err *err) {
    const char *colon = strchr(target, ':');
    bool local = colon && !strcmp(colon + 1, r->srv->cfg->server_name);
    if (!local || (strcmp(m, "join") && strcmp(m, "invite"))) return 0;
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = c ? client_profile_fill_member(c, target, content, err) : -1;
    db_release(r->srv->db, c);
    return rc;
}

/* A room joined with partial state lacks most member events, and a
 * membership change is judged by the target's current membership (an invite
 * we only heard of through /invite, say): wait for the full state first, as
 * /members does. */
static void await_members(hs_req *r, const char *room_id) {
    hs_err e = {0};
    db_conn *c = db_acquire(r->srv->db, &e);
    int partial = c ? client_room_is_partial(c, room_id, &e) : 0;
    db_release(r->srv->db, c);
    if (partial > 0) client_await_full_state(r->srv, room_id);
}

/* What the target's current membership allows before any event is made
 * (Synapse's update_membership): a kick needs the target in the room
 * (joined, invited or knocking); kicking one who left, was banned or never
 * came is 403, though the auth rules would admit that leave event. */
static int check_transition(hs_req *r, const char *room_id, const char *target, bool kick,
                            hs_err *err) {
    if (!kick) return 0;
    db_conn *c = db_acquire(r->srv->db, err);
    char cur[32];
    const char *now = c ? client_membership(c, room_id, target, cur, sizeof cur, err) : NULL;
    db_release(r->srv->db, c);
    if (!now) return -1;
    if (strcmp(now, "join") && strcmp(now, "invite") && strcmp(now, "knock"))
        return hs_err_set(err, 403, "M_FORBIDDEN", "The target user is not in the room");
    return 0;
}

/* Send target's membership, optionally with a reason, as the requester;
 * kick: a leave of another user by POST /kick. */
static int membership(hs_req *r, const char *room_id, const char *target, const char *m,
                      bool kick, hs_err *err) {
    const json_t *reason = json_object_get(r->json, "reason");
    if (reason && !json_is_string(reason))
        return hs_err_set(err, 400, "M_BAD_JSON", "'reason' must be a string");
    json_t *content = json_pack("{s:s}", "membership", m);
    if (reason) json_object_set(content, "reason", (json_t *)reason);
    if (fill_profile(r, target, m, content, err) < 0) return json_decref(content), -1;
    if (!strcmp(m, "join") && !strcmp(target, r->user_id))
        client_join_content_from_body(r->json, content);
    await_members(r, room_id);
    /* The same membership again (a second join with an unchanged profile)
     * makes no new event: the send answers with the current one. */
    if (check_transition(r, room_id, target, kick, err) < 0) return json_decref(content), -1;
    /* Restricted rooms: a local member authorises the join, or another
     * server's does when none of ours may (channels.h). */
    json_t *via = NULL;
    int plan = strcmp(m, "join") ? 0
                                 : client_channel_join_content(r->srv, room_id, target, content,
                                                               &via, err);
    if (plan != 0) {
        int rc = plan > 0 ? client_room_remote_join_through(r, room_id, via, content, err) : -1;
        json_decref(via);
        json_decref(content);
        return rc;
    }
    room_event *ev = client_room_send_state(r->srv, room_id, r->user_id, "m.room.member", target,
                                            content, err);
    json_decref(content);
    if (!ev) return -1;
    room_event_free(ev);
    return 0;
}

/* A join or knock: ours to make when a local user is in the room, else
 * another server's (room_membership_remote.h). */
static int join_or_knock(hs_req *r, const char *room_id, const char *m, const json_t *servers,
                         hs_err *err) {
    int remote = client_room_local_or_remote(r, room_id, err);
    if (remote < 0) return -1;
    /* A guest joins only where m.room.guest_access says can_join; of a room
     * this server is not in, only an invite's stripped state can say so. */
    if (remote && r->is_guest &&
        client_guest_may_join_remote(r->srv, room_id, r->user_id, err) < 0)
        return -1;
    if (remote) return client_room_remote_membership(r, m, room_id, servers, err);
    if (room_known(r, room_id, err) < 0) return -1;
    if (r->is_guest && client_guest_may_join(r->srv, room_id, err) < 0) return -1;
    return membership(r, room_id, r->user_id, m, false, err);
}

static int do_join(hs_req *r, const char *room_id, const json_t *servers, json_t **out,
                   hs_err *err) {
    if (hs_ratelimit("join", r->user_id, &r->srv->cfg->rc_joins_local, err) < 0) return -1;
    if (join_or_knock(r, room_id, "join", servers, err) < 0) return -1;
    *out = json_pack("{s:s}", "room_id", room_id);
    return 200;
}

static int post_room_join(hs_req *r, json_t **out, hs_err *err) {
    return do_join(r, r->params[0], NULL, out, err);
}

static int post_join_alias(hs_req *r, json_t **out, hs_err *err) {
    json_t *servers;
    char *room_id = resolve_room(r, r->params[0], &servers, err);
    if (!room_id) return -1;
    int rc = do_join(r, room_id, servers, out, err);
    json_decref(servers);
    free(room_id);
    return rc;
}

static int post_knock(hs_req *r, json_t **out, hs_err *err) {
    json_t *servers;
    char *room_id = resolve_room(r, r->params[0], &servers, err);
    if (!room_id) return -1;
    int rc = client_channel_knock_ratelimit(r->srv, r->user_id, room_id, err) == 0 &&
                     join_or_knock(r, room_id, "knock", servers, err) == 0
                 ? 200
                 : -1;
    if (rc == 200) *out = json_pack("{s:s}", "room_id", room_id);
    json_decref(servers);
    free(room_id);
    return rc;
}

static int post_leave(hs_req *r, json_t **out, hs_err *err) {
    /* An invite or knock of a room no local user is in is the room's
     * servers' to end. */
    int remote = client_room_local_or_remote(r, r->params[0], err);
    int done = remote > 0 ? client_room_remote_leave(r, r->params[0], err) : remote;
    if (done < 0) return -1;
    if (done) return *out = json_object(), 200;
    /* The invite to a server notices room stays until joined. */
    if (client_server_notice_check_leave(r->srv, r->params[0], r->user_id, err) < 0) return -1;
    if (membership(r, r->params[0], r->user_id, "leave", false, err) < 0) return -1;
    *out = json_object();
    return 200;
}

static const char *target_user(hs_req *r, hs_err *err) {
    const char *u = json_string_value(json_object_get(r->json, "user_id"));
    if (!u) return hs_err_set(err, 400, "M_MISSING_PARAM", "'user_id' is required"), NULL;
    if (u[0] != '@' || !strchr(u, ':') || strlen(u) > 255)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' is not a user ID", u), NULL;
    return u;
}

/* invite, kick, ban, unban (leave): the membership for the target. */
static int target_action(hs_req *r, const char *m, json_t **out, hs_err *err) {
    bool kick = !strcmp(m, "kick");
    if (kick) m = "leave";
    const char *target = target_user(r, err);
    if (!target) return -1;
    if (!strcmp(m, "unban")) {
        db_conn *c = db_acquire(r->srv->db, err);
        char cur[32];
        const char *now = c ? client_membership(c, r->params[0], target, cur, sizeof cur, err) : NULL;
        db_release(r->srv->db, c);
        if (!now) return -1;
        if (strcmp(now, "ban") != 0) /* unbanning someone not banned changes nothing */
            return *out = json_object(), 200;
        m = "leave";
    }
    if (membership(r, r->params[0], target, m, kick, err) < 0) return -1;
    *out = json_object();
    return 200;
}

static int post_invite(hs_req *r, json_t **out, hs_err *err) {
    const char *target = json_string_value(json_object_get(r->json, "user_id"));
    if (hs_ratelimit("invite-room", r->params[0], &r->srv->cfg->rc_invites_per_room, err) < 0 ||
        (target && hs_ratelimit("invite-user", target, &r->srv->cfg->rc_invites_per_user, err) < 0))
        return -1;
    return target_action(r, "invite", out, err);
}
static int post_kick(hs_req *r, json_t **out, hs_err *err) { return target_action(r, "kick", out, err); }
static int post_ban(hs_req *r, json_t **out, hs_err *err) { return target_action(r, "ban", out, err); }
static int post_unban(hs_req *r, json_t **out, hs_err *err) { return target_action(r, "unban", out, err); }

static int post_forget(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO room_forgotten (user_id, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    char m[32];
    int rc = -1;
    if (!client_membership(c, r->params[0], r->user_id, m, sizeof m, err)) goto done;
    if (!strcmp(m, "join") || !strcmp(m, "invite") || !strcmp(m, "knock")) {
        hs_err_set(err, 400, "M_UNKNOWN", "User %s is in room %s: leave it first", r->user_id,
                   r->params[0]);
        goto done;
    }
    if (db_exec(c, &ins, 2, (const char *[]){r->user_id, r->params[0]}, err) < 0) goto done;
    *out = json_object();
    rc = 200;
done:
    db_release(r->srv->db, c);
    return rc;
}

void client_room_membership_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/join", post_room_join,
             HS_AUTH | HS_R0 | HS_GUEST | HS_REFUSE_SUSPENDED);
    hs_route(rt, "POST", "/_matrix/client/v3/join/{roomIdOrAlias}", post_join_alias,
             HS_AUTH | HS_R0 | HS_GUEST | HS_REFUSE_SUSPENDED);
    hs_route(rt, "POST", "/_matrix/client/v3/knock/{roomIdOrAlias}", post_knock, HS_AUTH | HS_REFUSE_SUSPENDED);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/leave", post_leave, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/forget", post_forget, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/invite", post_invite, HS_AUTH | HS_R0 | HS_REFUSE_SUSPENDED);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/kick", post_kick, HS_AUTH | HS_R0 | HS_REFUSE_SUSPENDED);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/ban", post_ban, HS_AUTH | HS_R0 | HS_REFUSE_SUSPENDED);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/unban", post_unban, HS_AUTH | HS_R0 | HS_REFUSE_SUSPENDED);
}
