/* room_upgrade.c — POST /rooms/{roomId}/upgrade (r0; additional_creators v1.16).
 *
 * The spec's steps, in one transaction so a failed upgrade leaves nothing
 * behind: the tombstone in the old room (its auth rules are the permission
 * check), the replacement room with `predecessor` (event_id only before
 * version 12, whose room ID comes from its create event, so there the
 * create event goes first and the tombstone follows it), the transferable
 * state (join rules, history visibility, guest access, encryption, server
 * ACLs, name, topic, avatar, space children, power levels), bans, the local
 * aliases and the directory listing, and last the old room's power levels
 * restricted so regular users stop talking there. The old room's canonical
 * alias and power levels are best effort (Synapse): each runs under a
 * savepoint and a refusal is logged, not fatal. After the commit, the local
 * members' push rules for the room are copied to the new one
 * (push_rules_copy.h); tags and m.direct entries follow each user's first
 * join of the new room, the upgrader's at once (upgrade_follow.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "homeserver/db/streams.h"
#include "notifier.h"
#include "profile.h"
#include "push_actions.h"
#include "push_rules_copy.h"
#include "relations.h"
#include "room_access.h"
#include "room_create.h"
#include "room_send.h"
#include "room_upgrade.h"
#include "upgrade_follow.h"
#include "rooms/rooms.h"

/* State events copied as they are, in the order createRoom sends its own. */
static const char *const copied[] = {"m.room.join_rules", "m.room.history_visibility",
                                     "m.room.guest_access", "m.room.encryption",
                                     "m.room.server_acl", "m.room.name", "m.room.topic",
                                     "m.room.avatar", NULL};

typedef struct old_room {
    json_t *create, *pl, *canonical; /* contents (or NULL) */
    json_t *state;                   /* copied[] type → content */
    json_t *children, *bans;         /* [{state_key, content}] */
    json_t *creators;                /* v12: the create's sender and additional_creators */
} old_room;

typedef struct upgrade_job {
    hs_server *srv;
    const char *user_id, *old_id;
    const room_version *old_v, *new_v;
    const json_t *additional;
    char new_id[300];
    long long *pos; /* stream positions, reserved on first use, reused on a retry */
    size_t n_pos, used;
} upgrade_job;

static void old_room_free(old_room *o) {
    json_decref(o->create), json_decref(o->pl), json_decref(o->canonical);
    json_decref(o->state), json_decref(o->children), json_decref(o->bans), json_decref(o->creators);
}

static void keep_state(old_room *o, const char *type, const char *sk, const json_t *ev) {
    json_t *content = json_object_get(ev, "content");
    if (!json_is_object(content)) return;
    if (!strcmp(type, "m.room.create")) {
        o->create = json_incref(content);
        o->creators = json_pack("[O]", json_object_get(ev, "sender"));
        json_t *extra = json_object_get(content, "additional_creators");
        if (json_is_array(extra)) json_array_extend(o->creators, extra);
    } else if (!strcmp(type, "m.room.power_levels")) {
        o->pl = json_incref(content);
    } else if (!strcmp(type, "m.room.canonical_alias")) {
        o->canonical = json_incref(content);
    } else if (!strcmp(type, "m.space.child")) {
        /* An empty content is a child removed from the space. */
        if (json_object_size(content))
            json_array_append_new(o->children, json_pack("{s:s, s:O}", "state_key", sk, "content", content));
    } else if (!strcmp(type, "m.room.member")) {
        json_array_append_new(o->bans, json_pack("{s:s, s:O}", "state_key", sk, "content", content));
    } else if (!*sk) {
        json_object_set(o->state, type, content);
    }
}

static int load_old(db_conn *c, const char *room_id, old_room *o, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.type, cs.state_key, convert_from(e.json, 'UTF8') FROM current_state cs"
        " JOIN events e USING (event_id) WHERE cs.room_id = $1 AND ((cs.state_key = ''"
        " AND cs.type = ANY($2::text[])) OR cs.type = 'm.space.child'"
        " OR (cs.type = 'm.room.member' AND cs.membership = 'ban'))");
    const char *types[16] = {"m.room.create", "m.room.power_levels", "m.room.canonical_alias"};
    size_t n = 3;
    for (const char *const *t = copied; *t; t++) types[n++] = *t;
    char *arr = db_text_array(types, n);
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, arr}, err);
    free(arr);
    if (!r) return -1;
    *o = (old_room){.state = json_object(), .children = json_array(), .bans = json_array()};
    for (int i = 0; i < PQntuples(r); i++) {
        hs_err ignored = {0};
        json_t *ev = hs_json_parse(PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2), &ignored);
        if (ev) keep_state(o, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), ev);
        json_decref(ev);
    }
    PQclear(r);
    /* Only a space's children travel with it (Synapse). */
    const char *rtype = json_string_value(json_object_get(o->create, "type"));
    if (!rtype || strcmp(rtype, "m.space") != 0) json_array_clear(o->children);
    return 0;
}

static json_t *proto(const char *type, const char *state_key, json_t *content) {
    json_t *p = json_pack("{s:s, s:o}", "type", type, "content", content);
    if (state_key) json_object_set_new(p, "state_key", json_string(state_key));
    return p;
}

/* Build, authorise and persist one event of the upgrader's (proto is
 * consumed), with the hooks every event runs in its transaction. */
static room_event *up_send(db_conn *c, upgrade_job *j, const room_version *v, const char *room_id,
                        json_t *p, hs_err *err) {
    json_object_set_new(p, "sender", json_string(j->user_id));
    if (j->used == j->n_pos) {
        long long pos = db_stream_reserve(c, DB_STREAM_EVENTS, err);
        if (pos < 0) return json_decref(p), NULL;
        j->pos = realloc(j->pos, (j->n_pos + 1) * sizeof *j->pos);
        j->pos[j->n_pos++] = pos;
    }
    room_event *ev = room_send_local(c, v, room_id, p, j->srv->cfg->server_name, &j->srv->key,
                                     j->pos[j->used++], err);
    json_decref(p);
    if (ev && (client_push_process_event(c, j->srv, ev, err) < 0 ||
               client_relations_on_event(c, ev, err) < 0))
        room_event_free(ev), ev = NULL;
    return ev;
}

static int send_free(db_conn *c, upgrade_job *j, const char *room_id, json_t *p, hs_err *err) {
    room_event *ev = up_send(c, j, NULL, room_id, p, err);
    room_event_free(ev);
    return ev ? 0 : -1;
}

/* Best effort: a refusal (of the auth rules) rolls back this event only. */
static int send_optional(db_conn *c, upgrade_job *j, const char *room_id, json_t *p, hs_err *err) {
    if (db_script(c, "SAVEPOINT upgrade_optional", err) < 0) return json_decref(p), -1;
    char what[300];
    snprintf(what, sizeof what, "%s", json_string_value(json_object_get(p, "type")));
    hs_err why = {0};
    if (send_free(c, j, room_id, p, &why) == 0)
        return db_script(c, "RELEASE SAVEPOINT upgrade_optional", err);
    if (why.status >= 500) return *err = why, -1; /* the database: the whole transaction retries */
    hs_warn("room upgrade: %s in %s refused: %s", what, room_id, why.msg);
    return db_script(c, "ROLLBACK TO SAVEPOINT upgrade_optional", err);
}

/* The replacement's create event: first for v12 (its hash is the room ID
 * the tombstone names), after the tombstone before (to name it). */
static int send_create(db_conn *c, upgrade_job *j, const old_room *o, const char *tombstone_id,
                       hs_err *err) {
    json_t *content = upgrade_create_content(o->create, j->old_id, tombstone_id, j->new_v,
                                             j->user_id, j->additional);
    room_event *ev = up_send(c, j, j->new_v, j->new_id, proto("m.room.create", "", content), err);
    if (!ev) return -1;
    snprintf(j->new_id, sizeof j->new_id, "%s", ev->room_id);
    room_event_free(ev);
    return 0;
}

static int send_tombstone(db_conn *c, upgrade_job *j, char *id, size_t id_len, hs_err *err) {
    json_t *content = json_pack("{s:s, s:s}", "body", "This room has been replaced",
                                "replacement_room", j->new_id);
    room_event *ev = up_send(c, j, NULL, j->old_id, proto("m.room.tombstone", "", content), err);
    if (!ev) return -1;
    snprintf(id, id_len, "%s", ev->event_id);
    room_event_free(ev);
    return 0;
}

/* Everything after the create event, in createRoom's order. */
static int fill_new_room(db_conn *c, upgrade_job *j, const old_room *o, hs_err *err) {
    json_t *join = json_pack("{s:s}", "membership", "join");
    if (client_profile_fill_member(c, j->user_id, join, err) < 0) return json_decref(join), -1;
    if (send_free(c, j, j->new_id, proto("m.room.member", j->user_id, join), err) < 0) return -1;
    json_t *initial, *final;
    upgrade_power_levels(o->pl, j->old_v, j->new_v, j->user_id, o->creators, j->additional,
                         &initial, &final);
    bool same = json_equal(initial, final);
    int rc = send_free(c, j, j->new_id, proto("m.room.power_levels", "", initial), err);
    json_t *new_alias = NULL, *old_alias = NULL;
    upgrade_split_aliases(o->canonical, j->srv->cfg->server_name, &new_alias, &old_alias);
    json_decref(old_alias);
    if (rc == 0 && new_alias) rc = send_free(c, j, j->new_id, proto("m.room.canonical_alias", "", new_alias), err);
    else json_decref(new_alias);
    for (const char *const *t = copied; rc == 0 && *t; t++) {
        json_t *content = json_object_get(o->state, *t);
        /* What the old room lacks of the private_chat preset's state comes
         * from the preset, as Synapse builds the new room with it under the
         * copied state (so a room without m.room.guest_access gets
         * "can_join"; SyTest's upgrade tests wait for it). */
        json_t *preset = content                                 ? NULL
                         : !strcmp(*t, "m.room.join_rules")        ? json_pack("{s:s}", "join_rule", "invite")
                         : !strcmp(*t, "m.room.history_visibility") ? json_pack("{s:s}", "history_visibility", "shared")
                         : !strcmp(*t, "m.room.guest_access")      ? json_pack("{s:s}", "guest_access", "can_join")
                                                                   : NULL;
        if (content) rc = send_free(c, j, j->new_id, proto(*t, "", json_deep_copy(content)), err);
        else if (preset) rc = send_free(c, j, j->new_id, proto(*t, "", preset), err);
    }
    size_t i;
    json_t *e;
    json_array_foreach(o->children, i, e) {
        if (rc < 0) break;
        rc = send_free(c, j, j->new_id, proto("m.space.child", json_string_value(json_object_get(e, "state_key")),
                                              json_deep_copy(json_object_get(e, "content"))), err);
    }
    /* Bans follow (Synapse); one the auth rules refuse (a banned user with
     * more power than the upgrader) is skipped. */
    json_array_foreach(o->bans, i, e) {
        if (rc < 0) break;
        rc = send_optional(c, j, j->new_id, proto("m.room.member", json_string_value(json_object_get(e, "state_key")),
                                                   json_deep_copy(json_object_get(e, "content"))), err);
    }
    if (rc == 0 && !same) rc = send_free(c, j, j->new_id, proto("m.room.power_levels", "", final), err);
    else json_decref(final);
    return rc;
}

/* The old room after the tombstone: its local aliases and directory listing
 * move, its canonical alias keeps only the rest, and regular users lose
 * the power to talk and invite. */
static int close_old_room(db_conn *c, upgrade_job *j, const old_room *o, hs_err *err) {
    if (client_upgrade_move_listing(c, j->old_id, j->new_id, err) < 0) return -1;
    if (o->canonical) {
        json_t *new_alias, *old_alias;
        upgrade_split_aliases(o->canonical, j->srv->cfg->server_name, &new_alias, &old_alias);
        json_decref(new_alias);
        if (json_equal(old_alias, o->canonical)) json_decref(old_alias);
        else if (send_optional(c, j, j->old_id, proto("m.room.canonical_alias", "", old_alias), err) < 0)
            return -1;
    }
    json_t *restricted = upgrade_restricted_pl(o->pl);
    if (!restricted) return 0;
    return send_optional(c, j, j->old_id, proto("m.room.power_levels", "", restricted), err);
}

static int upgrade_txn(db_conn *c, void *arg, hs_err *err) {
    upgrade_job *j = arg;
    j->used = 0;
    old_room o;
    if (load_old(c, j->old_id, &o, err) < 0) return -1;
    char tombstone[300] = "";
    int rc;
    if (j->new_v->hydra) {
        rc = send_create(c, j, &o, NULL, err);
        if (rc == 0) rc = send_tombstone(c, j, tombstone, sizeof tombstone, err);
    } else {
        client_room_random_id(j->new_id, sizeof j->new_id, j->srv->cfg->server_name);
        rc = send_tombstone(c, j, tombstone, sizeof tombstone, err);
        if (rc == 0) rc = send_create(c, j, &o, tombstone, err);
    }
    if (rc == 0) rc = fill_new_room(c, j, &o, err);
    if (rc == 0) rc = close_old_room(c, j, &o, err);
    old_room_free(&o);
    return rc;
}

static int post_upgrade(hs_req *r, json_t **out, hs_err *err) {
    const json_t *nv = json_object_get(r->json, "new_version");
    if (!nv) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing params: ['new_version']");
    const room_version *v = room_version_get(json_string_value(nv) ? json_string_value(nv) : "");
    if (!v) return hs_err_set(err, 400, "M_UNSUPPORTED_ROOM_VERSION",
                              "Your homeserver does not support this room version");
    /* Ignored by versions without additional creators (spec). */
    const json_t *extra = v->hydra ? json_object_get(r->json, "additional_creators") : NULL;
    if (extra && upgrade_check_creators(extra, err) < 0) return -1;
    upgrade_job j = {.srv = r->srv, .user_id = r->user_id, .old_id = r->params[0], .new_v = v,
                     .additional = extra};
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    j.old_v = room_store_room_version(c, j.old_id, err);
    int ok = j.old_v && client_require_joined(c, j.old_id, r->user_id, err) == 0;
    db_release(r->srv->db, c);
    if (!ok) return -1;
    int rc = db_txn(r->srv->db, upgrade_txn, &j, err);
    for (size_t i = 0; i < j.n_pos; i++) db_stream_done(DB_STREAM_EVENTS, j.pos[i]);
    free(j.pos);
    if (rc < 0) return -1;
    hs_notify_room(j.old_id);
    hs_notify_room(j.new_id);
    /* The upgrader's /sync waits on the rooms it knew: the new one is news. */
    const char *me = r->user_id;
    hs_notify_users(&me, 1);
    /* Every local member's push rules for the room follow it (Synapse's
     * transfer_room_state_on_room_upgrade); best effort, as there. */
    hs_err perr = {0};
    if (client_push_rules_copy_room(r->srv, NULL, j.old_id, j.new_id, &perr) < 0)
        hs_warn("push rules from %s to %s: %s", j.old_id, j.new_id, perr.msg);
    room_event join = {.room_id = j.new_id, .state_key = r->user_id, .membership = "join"};
    client_room_membership_changed(r->srv, &join);
    *out = json_pack("{s:s}", "replacement_room", j.new_id);
    return 200;
}

void client_room_upgrade_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/upgrade", post_upgrade, HS_AUTH | HS_R0 | HS_REFUSE_SUSPENDED);
}
