/* server_notices.c — server notices (server_notices.h): the notices room of
 * each local user and Synapse's admin API that sends into it,
 *   POST /_synapse/admin/v1/send_server_notice
 *   PUT  /_synapse/admin/v1/send_server_notice/{txnId}
 * with {"user_id", "content"[, "type", "state_key"]}, answering {"event_id"}.
 *
 * The room is made as POST /createRoom makes one (room_create.h), by the
 * system user: the private_chat preset with users_default -10 (the user may
 * read and leave, not write), the configured name, topic and avatar, no
 * forced encryption. Which room belongs to whom is kept in
 * server_notice_rooms (sql/031), so a user who left is invited back to the
 * same room, as Synapse does. Every event goes through client_room_send:
 * the auth rules, stream positions and /sync wake-ups are the usual ones. */
#include "server_notices.h"

#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "homeserver/core/clock.h"
#include "profile.h"
#include "room_access.h"
#include "room_create.h"
#include "room_send.h"

#define NOTICE_TAG "m.server_notice" /* the spec's room tag for the notices room */

char *client_server_notices_mxid(const cfg *c) {
    if (!c->server_notices || !c->server_notices_localpart) return NULL;
    char *id = NULL;
    if (asprintf(&id, "@%s:%s", c->server_notices_localpart, c->server_name) < 0) return NULL;
    return id;
}

static bool str_eq(const char *a, const char *b) {
    return a == b || (a && b && !strcmp(a, b));
}

/* ---- the room ----------------------------------------------------------- */

/* The user's notices room made by this system user: 1 (room filled), 0
 * none, -1 error. */
static int find_room(hs_server *srv, const char *user_id, const char *system, char *room,
                     size_t n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT room_id FROM server_notice_rooms WHERE user_id = $1 AND system_user = $2");
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, &q, 2, (const char *[]){user_id, system}, err) : NULL;
    db_release(srv->db, c);
    if (!r) return -1;
    int found = PQntuples(r) > 0;
    if (found) snprintf(room, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return found;
}

/* Record a new room; a room recorded meanwhile by a concurrent first notice
 * of the same system user wins (room then names it), so later notices all
 * go to one room. 0 or -1. */
static int record_room(hs_server *srv, const char *user_id, const char *system, char *room,
                       size_t n, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO server_notice_rooms (user_id, room_id, system_user) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id) DO UPDATE SET room_id = EXCLUDED.room_id,"
        "  system_user = EXCLUDED.system_user"
        " WHERE server_notice_rooms.system_user <> EXCLUDED.system_user");
    db_conn *c = db_acquire(srv->db, err);
    long rc = c ? db_exec(c, &ins, 3, (const char *[]){user_id, room, system}, err) : -1;
    db_release(srv->db, c);
    if (rc < 0) return -1;
    return find_room(srv, user_id, system, room, n, err) < 0 ? -1 : 0;
}

/* The system user's join carries the configured display name and avatar
 * (NULL: none of either configured, the join carries no profile). */
static json_t *system_profile(const cfg *cf) {
    if (!cf->server_notices_display_name && !cf->server_notices_avatar_url) return NULL;
    json_t *p = json_object();
    if (cf->server_notices_display_name)
        json_object_set_new(p, "displayname", json_string(cf->server_notices_display_name));
    if (cf->server_notices_avatar_url)
        json_object_set_new(p, "avatar_url", json_string(cf->server_notices_avatar_url));
    return p;
}

/* The topic as createRoom writes it (plain and the m.topic form), so an
 * unchanged topic compares equal and is not sent again. */
static json_t *topic_content(const char *topic) {
    if (!*topic) return json_pack("{s:s}", "topic", "");
    return json_pack("{s:s, s:{s:[{s:s}]}}", "topic", topic, "m.topic", "m.text", "body", topic);
}

static int create_room(hs_server *srv, const char *user_id, const char *system, char *room,
                       size_t n, hs_err *err) {
    const cfg *cf = srv->cfg;
    json_t *body = json_pack("{s:s, s:{s:i}}", "preset", "private_chat",
                             "power_level_content_override", "users_default", -10);
    if (cf->server_notices_room_name && *cf->server_notices_room_name)
        json_object_set_new(body, "name", json_string(cf->server_notices_room_name));
    if (cf->server_notices_room_topic && *cf->server_notices_room_topic)
        json_object_set_new(body, "topic", json_string(cf->server_notices_room_topic));
    if (cf->server_notices_room_avatar_url && *cf->server_notices_room_avatar_url)
        json_object_set_new(body, "initial_state",
                            json_pack("[{s:s, s:s, s:{s:s}}]", "type", "m.room.avatar",
                                      "state_key", "", "content", "url",
                                      cf->server_notices_room_avatar_url));
    json_t *profile = system_profile(cf);
    client_room_create_opts o = {.creator = system, .body = body, .creator_profile = profile,
                                 .server_room = true};
    int rc = client_room_create(srv, &o, room, n, err);
    json_decref(body);
    json_decref(profile);
    if (rc < 0 || record_room(srv, user_id, system, room, n, err) < 0) return -1;
    /* Clients show the room apart as the server's (spec: the m.server_notice tag). */
    return client_tag_set(srv, user_id, room, NOTICE_TAG, "{}", err) < 0 ? -1 : 0;
}

/* One string of the room's current state ("" when absent). */
static char *state_string(hs_server *srv, const char *room, const char *type, const char *sk,
                          const char *key, hs_err *err) {
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return NULL;
    hs_err e = {0};
    room_event *ev = room_store_current_event(c, room, type, sk, &e);
    db_release(srv->db, c);
    if (!ev && e.status != 404) return *err = e, NULL;
    const char *v = ev ? json_string_value(json_object_get(ev->content, key)) : NULL;
    char *out = strdup(v ? v : "");
    room_event_free(ev);
    return out;
}

static int send_state(hs_server *srv, const char *room, const char *sender, const char *type,
                      const char *sk, json_t *content, hs_err *err) {
    room_event *ev = client_room_send_state(srv, room, sender, type, sk, content, err);
    json_decref(content);
    if (!ev) return -1;
    room_event_free(ev);
    return 0;
}

/* The room's name, avatar or topic as the config now says, sent only when
 * it differs (unset and empty are the same), as Synapse updates it. */
static int follow_info(hs_server *srv, const char *room, const char *system, const char *type,
                       const char *key, const char *want, hs_err *err) {
    char *have = state_string(srv, room, type, "", key, err);
    if (!have) return -1;
    bool same = !strcmp(have, want ? want : "");
    free(have);
    if (same) return 0;
    json_t *content = !strcmp(type, "m.room.topic") ? topic_content(want ? want : "")
                                                     : json_pack("{s:s}", key, want ? want : "");
    return send_state(srv, room, system, type, "", content, err);
}

/* The system user's profile in the room as the config now says. */
static int follow_profile(hs_server *srv, const char *room, const char *system, hs_err *err) {
    const cfg *cf = srv->cfg;
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    hs_err e = {0};
    room_event *ev = room_store_current_event(c, room, "m.room.member", system, &e);
    db_release(srv->db, c);
    if (!ev) return e.status == 404 ? 0 : (*err = e, -1);
    bool same = str_eq(json_string_value(json_object_get(ev->content, "displayname")),
                       cf->server_notices_display_name) &&
                str_eq(json_string_value(json_object_get(ev->content, "avatar_url")),
                       cf->server_notices_avatar_url);
    bool joined = ev->membership && !strcmp(ev->membership, "join");
    room_event_free(ev);
    if (same || !joined) return 0;
    json_t *content = json_pack("{s:s}", "membership", "join");
    json_t *p = system_profile(cf);
    if (p) json_object_update(content, p);
    json_decref(p);
    return send_state(srv, room, system, "m.room.member", system, content, err);
}

/* One first notice at a time in this process: two at once for the same user
 * would each make a room, and the one record_room drops would stay behind
 * with the user invited to it. Rare (a room is made once per user), so one
 * lock for all users; another process (the CLI) is still caught by
 * record_room. */
static pthread_mutex_t creating = PTHREAD_MUTEX_INITIALIZER;

static int get_or_create_room(hs_server *srv, const char *user_id, const char *system,
                              char *room, size_t n, hs_err *err) {
    pthread_mutex_lock(&creating);
    int found = find_room(srv, user_id, system, room, n, err);
    if (found == 0) found = create_room(srv, user_id, system, room, n, err) < 0 ? -1 : 2;
    pthread_mutex_unlock(&creating);
    if (found < 0) return -1;
    if (found == 2) return 0;
    const cfg *cf = srv->cfg;
    if (follow_profile(srv, room, system, err) < 0 ||
        follow_info(srv, room, system, "m.room.name", "name", cf->server_notices_room_name, err) < 0 ||
        follow_info(srv, room, system, "m.room.avatar", "url", cf->server_notices_room_avatar_url,
                    err) < 0 ||
        follow_info(srv, room, system, "m.room.topic", "topic", cf->server_notices_room_topic, err) < 0)
        return -1;
    return 0;
}

/* Invite the user unless invited or joined already; with auto_join, join
 * them too. Both carry the user's profile, as any invite and join do. */
static int invite_user(hs_server *srv, const char *room, const char *system, const char *user_id,
                       hs_err *err) {
    char m[32];
    db_conn *c = db_acquire(srv->db, err);
    const char *now = c ? client_membership(c, room, user_id, m, sizeof m, err) : NULL;
    json_t *inv = json_pack("{s:s}", "membership", "invite");
    json_t *join = json_pack("{s:s}", "membership", "join");
    int rc = now && client_profile_fill_member(c, user_id, inv, err) == 0 &&
                     client_profile_fill_member(c, user_id, join, err) == 0
                 ? 0
                 : -1;
    db_release(srv->db, c);
    if (rc == 0 && strcmp(now, "invite") && strcmp(now, "join")) {
        rc = send_state(srv, room, system, "m.room.member", user_id, inv, err);
        inv = NULL;
        if (rc == 0 && srv->cfg->server_notices_auto_join) {
            rc = send_state(srv, room, user_id, "m.room.member", user_id, join, err);
            join = NULL;
        }
    }
    json_decref(inv);
    json_decref(join);
    return rc;
}

int client_server_notice_send(hs_server *srv, const char *user_id, const char *type,
                              const char *state_key, const json_t *content, char **event_id,
                              hs_err *err) {
    char *system = client_server_notices_mxid(srv->cfg);
    if (!system)
        return hs_err_set(err, 400, "M_UNKNOWN", "Server notices are not enabled on this server");
    char room[300];
    int rc = get_or_create_room(srv, user_id, system, room, sizeof room, err);
    if (rc == 0) rc = invite_user(srv, room, system, user_id, err);
    if (rc == 0) {
        json_t *p = json_pack("{s:s, s:s, s:O}", "type", type ? type : "m.room.message", "sender",
                              system, "content", content);
        if (state_key) json_object_set_new(p, "state_key", json_string(state_key));
        room_event *ev = client_room_send(srv, NULL, room, p, err);
        json_decref(p);
        if (ev) *event_id = strdup(ev->event_id);
        else rc = -1;
        room_event_free(ev);
    }
    free(system);
    return rc;
}

int client_server_notice_check_leave(hs_server *srv, const char *room_id, const char *user_id,
                                     hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM server_notice_rooms WHERE room_id = $1 AND system_user = $2");
    char *system = client_server_notices_mxid(srv->cfg);
    if (!system) return 0; /* off: its rooms are rooms like any other (Synapse) */
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, &q, 2, (const char *[]){room_id, system}, err) : NULL;
    free(system);
    int rc = r ? 0 : -1;
    char m[32];
    const char *now = r && PQntuples(r) ? client_membership(c, room_id, user_id, m, sizeof m, err)
                                        : "";
    PQclear(r);
    db_release(srv->db, c);
    if (!now) return -1;
    if (rc == 0 && !strcmp(now, "invite"))
        return hs_err_set(err, 403, "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", "You cannot reject this invite");
    return rc;
}

/* ---- the admin API -------------------------------------------------------- */

/* A PUT's transaction already answered for this admin device: its event ID
 * (malloc'd), NULL when new (or on error, with err). */
static char *txn_event(hs_req *r, const char *txn_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id FROM server_notice_txns"
        " WHERE admin_user = $1 AND device_id = $2 AND txn_id = $3");
    db_conn *c = db_acquire(r->srv->db, err);
    PGresult *res = c ? db_run(c, &q, 3, (const char *[]){r->user_id, r->device_id, txn_id}, err)
                      : NULL;
    db_release(r->srv->db, c);
    char *id = res && PQntuples(res) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    return id;
}

/* Kept for a day, as message transaction IDs are (room_send.c): each new
 * notice clears the older ones, so the table stays small. */
static int record_txn(hs_req *r, const char *txn_id, const char *event_id, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "WITH old AS (DELETE FROM server_notice_txns WHERE created_ts < $5::bigint - 86400000)"
        " INSERT INTO server_notice_txns (admin_user, device_id, txn_id, event_id, created_ts)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    db_conn *c = db_acquire(r->srv->db, err);
    long rc = c ? db_exec(c, &ins, 5,
                          (const char *[]){r->user_id, r->device_id, txn_id, event_id, now}, err)
                : -1;
    db_release(r->srv->db, c);
    return rc < 0 ? -1 : 0;
}

static int local_user_exists(hs_server *srv, const char *user_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM users WHERE user_id = $1");
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, &q, 1, (const char *[]){user_id}, err) : NULL;
    db_release(srv->db, c);
    if (!r) return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    return found;
}

/* Synapse's checks, in its order: admin, body, enabled, local, known. */
static int check_request(hs_req *r, hs_err *err) {
    if (!r->is_admin) return hs_err_set(err, 403, "M_FORBIDDEN", "You are not a server admin");
    const json_t *b = r->json;
    const json_t *u = json_object_get(b, "user_id"), *content = json_object_get(b, "content");
    if (!u || !content) {
        return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing params: [%s%s%s]",
                          u ? "" : "'user_id'", !u && !content ? ", " : "",
                          content ? "" : "'content'");
    }
    const char *uid = json_string_value(u);
    const char *colon = uid ? strchr(uid, ':') : NULL;
    if (!uid || uid[0] != '@' || !colon || colon == uid + 1 || strlen(uid) > 255)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid user id");
    if (!json_is_object(content))
        return hs_err_set(err, 400, "M_BAD_JSON", "'content' must be an object");
    const json_t *type = json_object_get(b, "type"), *sk = json_object_get(b, "state_key");
    if (type && !json_is_string(type))
        return hs_err_set(err, 400, "M_BAD_JSON", "'type' must be a string");
    if (sk && !json_is_null(sk) && !json_is_string(sk))
        return hs_err_set(err, 400, "M_BAD_JSON", "'state_key' must be a string");
    /* Memberships and the create event are the server's own to manage. */
    const char *t = json_string_value(type);
    if (t && (!strcmp(t, "m.room.member") || !strcmp(t, "m.room.create")))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Server notices cannot be of type %s", t);
    if (!r->srv->cfg->server_notices)
        return hs_err_set(err, 400, "M_UNKNOWN", "Server notices are not enabled on this server");
    if (strcmp(colon + 1, r->srv->cfg->server_name) != 0)
        return hs_err_set(err, 400, "M_UNKNOWN", "Server notices can only be sent to local users");
    int known = local_user_exists(r->srv, uid, err);
    if (known < 0) return -1;
    return known ? 0 : hs_err_set(err, 404, "M_NOT_FOUND", "User not found");
}

static int do_send(hs_req *r, const char *txn_id, json_t **out, hs_err *err) {
    if (check_request(r, err) < 0) return -1;
    char *event_id = txn_id ? txn_event(r, txn_id, err) : NULL;
    if (!event_id && err->status) return -1;
    if (!event_id) {
        const json_t *b = r->json;
        if (client_server_notice_send(r->srv, json_string_value(json_object_get(b, "user_id")),
                                      json_string_value(json_object_get(b, "type")),
                                      json_string_value(json_object_get(b, "state_key")),
                                      json_object_get(b, "content"), &event_id, err) < 0)
            return -1;
        /* The first answer stands; a lost race records nothing new. */
        if (txn_id && record_txn(r, txn_id, event_id, err) < 0) return free(event_id), -1;
    }
    *out = json_pack("{s:s}", "event_id", event_id);
    free(event_id);
    return 200;
}

static int post_notice(hs_req *r, json_t **out, hs_err *err) { return do_send(r, NULL, out, err); }

static int put_notice(hs_req *r, json_t **out, hs_err *err) {
    return do_send(r, r->params[0], out, err);
}

void client_server_notices_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_synapse/admin/v1/send_server_notice", post_notice, HS_AUTH);
    hs_route(rt, "PUT", "/_synapse/admin/v1/send_server_notice/{txnId}", put_notice, HS_AUTH);
}
