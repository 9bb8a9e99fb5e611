/* room_create.c — POST /createRoom.
 *
 * The events go in the order the spec lists (create, the creator's join,
 * power levels, canonical alias, preset events, initial_state, name, topic,
 * invites), all in one transaction: a room exists whole or not at all. The
 * power levels follow Synapse's defaults so rooms look the same as there. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "client.h"
#include "fed_outbound.h"
#include "homeserver/core/clock.h"
#include "homeserver/db/streams.h"
#include "notifier.h"
#include "profile.h"
#include "push_actions.h"
#include "relations.h"
#include "room_create.h"
#include "room_send.h"
#include "rooms/rooms.h"
#include "users.h"

#define MAX_CREATE_EVENTS 128

typedef struct create_job {
    hs_server *srv;
    const room_version *v;
    json_t *protos;        /* array of {type, state_key?, content, sender} */
    const char *alias;     /* "#name:server" or NULL */
    const char *creator;
    bool publish, is_admin;
    char room_id[300];
    long long pos[MAX_CREATE_EVENTS];
    size_t n_pos;
} create_job;

static json_t *proto(const char *type, const char *state_key, json_t *content) {
    json_t *p = json_pack("{s:s, s:o}", "type", type, "content", content);
    if (state_key) json_object_set_new(p, "state_key", json_string(state_key));
    return p;
}

static json_t *default_power_levels(const room_version *v, const char *creator, json_t *invites,
                                    const char *preset) {
    json_t *users = json_object();
    if (!v->hydra) json_object_set_new(users, creator, json_integer(100));
    json_t *pl = json_pack(
        "{s:o, s:i, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}, s:i, s:i, s:i, s:i, s:i, s:i,"
        " s:i}",
        "users", users, "users_default", 0, "events", "m.room.name", 50, "m.room.power_levels",
        100, "m.room.history_visibility", 100, "m.room.canonical_alias", 50, "m.room.avatar", 50,
        "m.room.tombstone", v->hydra ? 150 : 100, "m.room.server_acl", 100, "m.room.encryption",
        100, "events_default", 0, "state_default", 50, "ban", 50, "kick", 50, "redact", 50,
        "invite", 50, "historical", 100);
    if (!strcmp(preset, "trusted_private_chat") && !v->hydra) {
        size_t i;
        json_t *u;
        json_array_foreach(invites, i, u) json_object_set(users, json_string_value(u), json_integer(100));
    }
    if (!strcmp(preset, "public_chat"))
        json_object_set_new(json_object_get(pl, "events"), "m.call.invite", json_integer(50));
    else
        json_object_set_new(pl, "invite", json_integer(0));
    return pl;
}

static int check_user_list(const json_t *invites, hs_err *err) {
    size_t i;
    json_t *u;
    if (!json_is_array(invites)) return hs_err_set(err, 400, "M_BAD_JSON", "'invite' must be a list");
    json_array_foreach(invites, i, u) {
        const char *s = json_string_value(u);
        if (!s || s[0] != '@' || !strchr(s, ':'))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "'invite' holds an invalid user ID");
    }
    return 0;
}

/* The create event's content: creation_content, version, creator, creators. */
static json_t *create_content(const room_version *v, const json_t *body, const char *creator,
                              const char *preset, json_t *invites, hs_err *err) {
    const json_t *cc = json_object_get(body, "creation_content");
    if (cc && !json_is_object(cc))
        return hs_err_set(err, 400, "M_BAD_JSON", "'creation_content' must be an object"), NULL;
    json_t *c = cc ? json_deep_copy(cc) : json_object();
    json_object_set_new(c, "room_version", json_string(v->id));
    if (!v->implicit_room_creator) json_object_set_new(c, "creator", json_string(creator));
    else json_object_del(c, "creator");
    if (v->hydra && !strcmp(preset, "trusted_private_chat") && json_array_size(invites)) {
        json_t *extra = json_object_get(c, "additional_creators");
        json_t *all = json_is_array(extra) ? json_deep_copy(extra) : json_array();
        size_t i;
        json_t *u;
        json_array_foreach(invites, i, u) {
            bool dup = false;
            for (size_t k = 0; k < json_array_size(all); k++)
                dup |= json_equal(json_array_get(all, k), u);
            if (!dup) json_array_append(all, u);
        }
        json_object_set_new(c, "additional_creators", all);
    }
    return c;
}

static bool has_state(const json_t *initial, const char *type) {
    size_t i;
    json_t *e;
    json_array_foreach(initial, i, e) {
        const char *sk = json_string_value(json_object_get(e, "state_key"));
        if (!strcmp(json_string_value(json_object_get(e, "type")), type) && (!sk || !*sk))
            return true;
    }
    return false;
}

static int check_initial_state(const json_t *initial, hs_err *err) {
    size_t i;
    json_t *e;
    if (!json_is_array(initial))
        return hs_err_set(err, 400, "M_BAD_JSON", "'initial_state' must be a list");
    json_array_foreach(initial, i, e) {
        const json_t *sk = json_object_get(e, "state_key");
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "type")) ||
            !json_is_object(json_object_get(e, "content")) || (sk && !json_is_string(sk)))
            return hs_err_set(err, 400, "M_BAD_JSON",
                              "each initial_state entry needs a type, a content object and a "
                              "string state_key");
    }
    return 0;
}

/* Events 3 to 8 of the spec's list, after create and the creator's join. */
static int add_state_events(json_t *list, const room_version *v, const json_t *body,
                            const char *creator, const char *preset, const char *alias,
                            json_t *invites) {
    const json_t *initial = json_object_get(body, "initial_state");
    const json_t *pl_override = json_object_get(body, "power_level_content_override");
    json_t *pl_initial = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(initial, i, e)
        if (!strcmp(json_string_value(json_object_get(e, "type")), "m.room.power_levels"))
            pl_initial = json_object_get(e, "content");
    json_t *pl = pl_initial ? json_deep_copy(pl_initial)
                            : default_power_levels(v, creator, invites, preset);
    if (!pl_initial && json_is_object(pl_override)) json_object_update(pl, (json_t *)pl_override);
    json_array_append_new(list, proto("m.room.power_levels", "", pl));
    if (alias && !has_state(initial, "m.room.canonical_alias"))
        json_array_append_new(list, proto("m.room.canonical_alias", "", json_pack("{s:s}", "alias", alias)));
    bool pub = !strcmp(preset, "public_chat");
    if (!has_state(initial, "m.room.join_rules"))
        json_array_append_new(list, proto("m.room.join_rules", "",
                                          json_pack("{s:s}", "join_rule", pub ? "public" : "invite")));
    if (!has_state(initial, "m.room.history_visibility"))
        json_array_append_new(list, proto("m.room.history_visibility", "",
                                          json_pack("{s:s}", "history_visibility", "shared")));
    if (!pub && !has_state(initial, "m.room.guest_access"))
        json_array_append_new(list, proto("m.room.guest_access", "",
                                          json_pack("{s:s}", "guest_access", "can_join")));
    json_array_foreach(initial, i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        if (!strcmp(type, "m.room.power_levels")) continue;
        const char *sk = json_string_value(json_object_get(e, "state_key"));
        json_array_append_new(list, proto(type, sk ? sk : "", json_deep_copy(json_object_get(e, "content"))));
    }
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *topic = json_string_value(json_object_get(body, "topic"));
    if (name) json_array_append_new(list, proto("m.room.name", "", json_pack("{s:s}", "name", name)));
    /* The plain topic, and the same as the v1.15 rich representation (its
     * mimetype defaults to text/plain), as Synapse writes it. */
    if (topic)
        json_array_append_new(list, proto("m.room.topic", "",
                                          json_pack("{s:s, s:{s:[{s:s}]}}", "topic", topic,
                                                    "m.topic", "m.text", "body", topic)));
    bool direct = json_is_true(json_object_get(body, "is_direct"));
    json_array_foreach(invites, i, e) {
        json_t *content = json_pack("{s:s}", "membership", "invite");
        if (direct) json_object_set_new(content, "is_direct", json_true());
        json_array_append_new(list, proto("m.room.member", json_string_value(e), content));
    }
    return 0;
}

static int claim_alias(db_conn *c, const char *alias, const char *room_id, const char *creator,
                       hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO room_aliases (alias, room_id, creator, created_ts) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (alias) DO NOTHING");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    long n = db_exec(c, &ins, 4, (const char *[]){alias, room_id, creator, now}, err);
    if (n < 0) return -1;
    return n == 0 ? hs_err_set(err, 400, "M_ROOM_IN_USE", "the alias %s is taken", alias) : 0;
}

static int create_txn(db_conn *c, void *arg, hs_err *err) {
    create_job *j = arg;
    for (size_t i = 0; i < json_array_size(j->protos); i++) {
        json_t *p = json_array_get(j->protos, i);
        if (i == j->n_pos) {
            long long pos = db_stream_reserve(c, DB_STREAM_EVENTS, err);
            if (pos < 0) return -1;
            j->pos[j->n_pos++] = pos;
        }
        room_event *ev = room_send_local(c, i == 0 ? j->v : NULL, j->room_id, p,
                                         j->srv->cfg->server_name, &j->srv->key, j->pos[i], err);
        if (!ev) return -1;
        if (i == 0) snprintf(j->room_id, sizeof j->room_id, "%s", ev->room_id);
        /* Invites sent by createRoom (how a DM starts) must notify; one of
         * another server's user is signed by that server first (room_send.h),
         * and its refusal undoes the whole room. */
        int pushed = client_room_invite_remote(c, j->srv, ev, err);
        if (pushed == 0) pushed = client_push_process_event(c, j->srv, ev, err);
        /* The name and topic become searchable (relations.h). */
        if (pushed == 0) pushed = client_relations_on_event(c, ev, err);
        room_event_free(ev);
        if (pushed < 0) return -1;
        /* The alias must be ours before the canonical alias event names it. */
        if (i == 0 && j->alias && claim_alias(c, j->alias, j->room_id, j->creator, err) < 0) return -1;
    }
    static db_stmt dir = DB_STMT(
        "INSERT INTO room_directory (room_id, visibility) VALUES ($1, $2)"
        " ON CONFLICT (room_id) DO UPDATE SET visibility = EXCLUDED.visibility");
    /* Refused by room_list_publication_rules: created, not published (Synapse). */
    const char *aliases[] = {j->alias};
    bool pub = j->publish && client_directory_rules_allow(j->srv->cfg, j->creator, j->is_admin,
                                                          j->room_id, aliases, j->alias ? 1 : 0);
    return db_exec(c, &dir, 2, (const char *[]){j->room_id, pub ? "public" : "private"},
                   err) < 0 ? -1 : 0;
}

/* Device lists of the creator and the invitees follow their memberships. */
static void membership_hooks(hs_server *srv, const char *room_id, const char *creator,
                             json_t *invites) {
    room_event join = {.room_id = room_id, .state_key = creator, .membership = "join"};
    client_room_membership_changed(srv, &join);
    size_t i;
    json_t *u;
    json_array_foreach(invites, i, u) {
        room_event inv = {.room_id = room_id, .state_key = json_string_value(u), .membership = "invite"};
        client_room_membership_changed(srv, &inv);
    }
}

void client_room_random_id(char *out, size_t n, const char *server_name) {
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char local[19];
    for (int i = 0; i < 18; i++) local[i] = alpha[randombytes_uniform(52)];
    local[18] = 0;
    snprintf(out, n, "!%s:%s", local, server_name);
}

/* Validate the request; fills the preset, version and alias. */
static int check_body(hs_server *srv, const json_t *b, const char **preset,
                      const room_version **v, char *alias, size_t alias_len, hs_err *err) {
    const char *vis = json_string_value(json_object_get(b, "visibility"));
    if (json_object_get(b, "visibility") && (!vis || (strcmp(vis, "public") && strcmp(vis, "private"))))
        return hs_err_set(err, 400, "M_BAD_JSON", "'visibility' must be public or private");
    *preset = json_string_value(json_object_get(b, "preset"));
    if (json_object_get(b, "preset") &&
        (!*preset || (strcmp(*preset, "private_chat") && strcmp(*preset, "public_chat") &&
                      strcmp(*preset, "trusted_private_chat"))))
        return hs_err_set(err, 400, "M_BAD_JSON", "unknown preset");
    if (!*preset) *preset = vis && !strcmp(vis, "public") ? "public_chat" : "private_chat";
    const json_t *ver = json_object_get(b, "room_version");
    if (ver && !json_is_string(ver)) /* e.g. 10 for "10": Synapse's answer */
        return hs_err_set(err, 400, "M_BAD_JSON", "room_version must be a string");
    *v = ver ? room_version_get(json_string_value(ver)) : room_version_default();
    if (!*v) return hs_err_set(err, 400, "M_UNSUPPORTED_ROOM_VERSION", "unsupported room version");
    const char *fields[] = {"name", "topic", "room_alias_name"};
    for (int i = 0; i < 3; i++)
        if (json_object_get(b, fields[i]) && !json_is_string(json_object_get(b, fields[i])))
            return hs_err_set(err, 400, "M_BAD_JSON", "'%s' must be a string", fields[i]);
    const json_t *plo = json_object_get(b, "power_level_content_override");
    if (plo && !json_is_object(plo))
        return hs_err_set(err, 400, "M_BAD_JSON", "'power_level_content_override' must be an object");
    const char *an = json_string_value(json_object_get(b, "room_alias_name"));
    *alias = 0;
    if (an) {
        if (!*an || strpbrk(an, ":# \t\n"))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "invalid room_alias_name");
        snprintf(alias, alias_len, "#%s:%s", an, srv->cfg->server_name);
        if (strlen(alias) > 255) return hs_err_set(err, 400, "M_INVALID_PARAM", "alias too long");
    }
    const json_t *initial = json_object_get(b, "initial_state");
    if (initial && check_initial_state(initial, err) < 0) return -1;
    const json_t *inv = json_object_get(b, "invite");
    return inv ? check_user_list(inv, err) : 0;
}

/* Invites of local users carry the invitee's display name and avatar, as
 * Synapse sends them (clients show who was invited by name). */
static void fill_invitee_profiles(hs_server *srv, json_t *list) {
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p) {
        json_t *content = json_object_get(p, "content");
        const char *sk = json_string_value(json_object_get(p, "state_key"));
        const char *colon = sk ? strchr(sk, ':') : NULL;
        if (!c || !colon || strcmp(colon + 1, srv->cfg->server_name) ||
            strcmp(json_string_value(json_object_get(p, "type")), "m.room.member") ||
            strcmp(json_string_value(json_object_get(content, "membership")), "invite"))
            continue;
        client_profile_fill_member(c, sk, content, &err);
    }
    db_release(srv->db, c);
}

/* The creator's join: the given profile, else the creator's own. */
static json_t *creator_join(hs_server *srv, const char *creator, const json_t *profile,
                            hs_err *err) {
    json_t *join = json_pack("{s:s}", "membership", "join");
    if (profile) {
        json_object_update(join, (json_t *)profile);
        return join;
    }
    db_conn *pc = db_acquire(srv->db, err);
    int prc = pc ? client_profile_fill_member(pc, creator, join, err) : -1;
    db_release(srv->db, pc);
    if (prc < 0) json_decref(join), join = NULL;
    return join;
}

int client_room_create(hs_server *srv, const client_room_create_opts *o, char *room_id,
                       size_t room_id_len, hs_err *err) {
    const char *preset = NULL;
    const room_version *v = NULL;
    char alias[300];
    const json_t *body = o->body;
    if (check_body(srv, body, &preset, &v, alias, sizeof alias, err) < 0) return -1;
    json_t *invites = json_object_get(body, "invite");
    invites = invites ? json_incref(invites) : json_array();
    json_t *cc = create_content(v, body, o->creator, preset, invites, err);
    if (!cc) return json_decref(invites), -1;
    json_t *list = json_array();
    json_array_append_new(list, proto("m.room.create", "", cc));
    json_t *join = creator_join(srv, o->creator, o->creator_profile, err);
    if (!join) return json_decref(list), json_decref(invites), -1;
    json_array_append_new(list, proto("m.room.member", o->creator, join));
    add_state_events(list, v, body, o->creator, preset, *alias ? alias : NULL, invites);
    fill_invitee_profiles(srv, list);
    /* Encryption by default, invite blocking (channels.h). */
    if (!o->server_room && client_channel_create_hook(srv, preset, body, list, err) < 0)
        return json_decref(list), json_decref(invites), -1;
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p) json_object_set_new(p, "sender", json_string(o->creator));
    if (json_array_size(list) > MAX_CREATE_EVENTS) {
        json_decref(list), json_decref(invites);
        return hs_err_set(err, 400, "M_BAD_JSON", "too many initial events");
    }
    const char *vis = json_string_value(json_object_get(body, "visibility"));
    create_job j = {.srv = srv, .v = v, .protos = list, .alias = *alias ? alias : NULL,
                    .creator = o->creator, .publish = vis && !strcmp(vis, "public"),
                    .is_admin = o->is_admin};
    if (!v->hydra) client_room_random_id(j.room_id, sizeof j.room_id, srv->cfg->server_name);
    int rc = db_txn(srv->db, create_txn, &j, err);
    for (size_t k = 0; k < j.n_pos; k++) db_stream_done(DB_STREAM_EVENTS, j.pos[k]);
    json_decref(list);
    if (rc == 0) {
        hs_notify_room(j.room_id);
        client_fed_event_committed(srv, NULL); /* invitees on other servers */
        membership_hooks(srv, j.room_id, o->creator, invites);
        json_array_foreach(invites, i, p) {
            const char *u = json_string_value(p);
            hs_notify_users(&u, 1);
        }
        snprintf(room_id, room_id_len, "%s", j.room_id);
    } else if (err->status == 403 && strcmp(err->errcode, "M_INVITE_BLOCKED") != 0) {
        /* An event the auth rules refuse means the request asked for impossible state
         * (an invitee's server refusing an invite says so itself). */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        hs_err_set(err, 400, "M_INVALID_ROOM_STATE", "%s", why);
    }
    json_decref(invites);
    return rc == 0 ? 0 : -1;
}

static int post_create_room(hs_req *r, json_t **out, hs_err *err) {
    client_room_create_opts o = {.creator = r->user_id, .is_admin = r->is_admin, .body = r->json};
    char room_id[300];
    if (client_room_create(r->srv, &o, room_id, sizeof room_id, err) < 0) return -1;
    *out = json_pack("{s:s}", "room_id", room_id);
    return 200;
}

void client_room_create_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/createRoom", post_create_room,
             HS_AUTH | HS_R0 | HS_REFUSE_SUSPENDED);
}
