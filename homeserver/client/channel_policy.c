/* channel_policy.c — the rules channels follow here beyond the auth rules.
 *
 * Encryption by default: createRoom adds m.room.encryption for the presets
 * encryption_enabled_by_default_for_room_type names (Synapse's semantics; the
 * client cannot opt out, which Element learns from /versions), and for every
 * private room when forbid_unencrypted_private_rooms is set.
 *
 * Encryption for good: once a room has an m.room.encryption algorithm, a
 * local client may neither replace it with another (or none) nor redact it.
 * This is a rule for our own clients only; an event from another server
 * that passes the auth rules is accepted, as the spec demands.
 *
 * Invite blocking (v1.18): a local user whose m.invite_permission_config has
 * default_action "block" gets no invites from local clients (403
 * M_INVITE_BLOCKED) — except an invite that answers their own knock, which
 * is what they asked for. */
#include <string.h>

#include "channels.h"
#include "channels_internal.h"

static const char *jstr(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static bool is_type(const json_t *proto, const char *type) {
    const char *t = jstr(proto, "type"), *sk = jstr(proto, "state_key");
    return t && !strcmp(t, type) && sk && !*sk;
}

bool channel_is_local(const char *user_id, const char *server_name) {
    const char *colon = user_id ? strchr(user_id, ':') : NULL;
    return colon && !strcmp(colon + 1, server_name);
}

int client_invites_blocked(db_conn *c, const char *user_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM account_data WHERE user_id = $1 AND room_id = ''"
        " AND type = 'm.invite_permission_config' AND content ->> 'default_action' = 'block'");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    int blocked = PQntuples(r) > 0;
    PQclear(r);
    return blocked;
}

/* ---- createRoom ---------------------------------------------------------- */

/* Where Synapse puts the default encryption event: after initial_state,
 * before the name and topic from the request and the invites. */
static size_t encryption_slot(const json_t *body, const json_t *protos) {
    size_t n = json_array_size(protos), name = n, topic = n, invite = n;
    for (size_t i = 2; i < n; i++) {
        const json_t *p = json_array_get(protos, i);
        if (is_type(p, "m.room.name")) name = i;
        if (is_type(p, "m.room.topic")) topic = i;
        const char *m = jstr(json_object_get(p, "content"), "membership");
        if (invite == n && !strcmp(jstr(p, "type"), "m.room.member") && m && !strcmp(m, "invite"))
            invite = i;
    }
    if (json_is_string(json_object_get(body, "name"))) return name;
    if (json_is_string(json_object_get(body, "topic"))) return topic;
    return invite;
}

/* The last event of protos with this type and an empty state key. */
static const json_t *last_state(const json_t *protos, const char *type) {
    const json_t *found = NULL;
    for (size_t i = 0; i < json_array_size(protos); i++)
        if (is_type(json_array_get(protos, i), type)) found = json_array_get(protos, i);
    return found;
}

static bool wants_encryption(const cfg *c, const char *preset, bool is_private) {
    if (c->encryption_default == CFG_ENCRYPT_ALL) return true;
    if (c->forbid_unencrypted_private_rooms && is_private) return true;
    return c->encryption_default == CFG_ENCRYPT_INVITE && strcmp(preset, "public_chat") != 0;
}

static int check_invitees(hs_server *srv, const json_t *protos, hs_err *err) {
    db_conn *c = NULL;
    int rc = 0;
    for (size_t i = 2; i < json_array_size(protos) && rc == 0; i++) {
        const json_t *p = json_array_get(protos, i);
        const char *m = jstr(json_object_get(p, "content"), "membership");
        const char *who = jstr(p, "state_key");
        if (strcmp(jstr(p, "type"), "m.room.member") || !m || strcmp(m, "invite") ||
            !channel_is_local(who, srv->cfg->server_name))
            continue;
        if (!c && !(c = db_acquire(srv->db, err))) return -1;
        int b = client_invites_blocked(c, who, err);
        if (b < 0) rc = -1;
        else if (b) rc = hs_err_set(err, 403, "M_INVITE_BLOCKED", "%s does not accept invites", who);
    }
    db_release(srv->db, c);
    return rc;
}

int client_channel_create_hook(hs_server *srv, const char *preset, const json_t *body,
                               json_t *protos, hs_err *err) {
    if (check_invitees(srv, protos, err) < 0) return -1;
    const json_t *jr = last_state(protos, "m.room.join_rules");
    const char *rule = jr ? jstr(json_object_get(jr, "content"), "join_rule") : NULL;
    bool is_private = !rule || strcmp(rule, "public") != 0;
    const json_t *enc = last_state(protos, "m.room.encryption");
    if (enc) {
        if (!jstr(json_object_get(enc, "content"), "algorithm") && is_private &&
            srv->cfg->forbid_unencrypted_private_rooms)
            return hs_err_set(err, 403, "M_FORBIDDEN",
                              "This server does not allow unencrypted private rooms");
        return 0; /* the client chose its encryption */
    }
    if (!wants_encryption(srv->cfg, preset, is_private)) return 0;
    json_t *e = json_pack("{s:s, s:s, s:{s:s}}", "type", "m.room.encryption", "state_key", "",
                          "content", "algorithm", CLIENT_MEGOLM);
    json_array_insert_new(protos, encryption_slot(body, protos), e);
    return 0;
}

/* ---- sending -------------------------------------------------------------- */

/* The room's current encryption algorithm (malloc'd, NULL: none) and the ID
 * of its m.room.encryption event (NULL: none). */
static int current_encryption(db_conn *c, const char *room_id, char **alg, char **event_id,
                              hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT s.encryption, cs.event_id FROM room_summaries s"
        " LEFT JOIN current_state cs ON cs.room_id = s.room_id"
        "  AND cs.type = 'm.room.encryption' AND cs.state_key = ''"
        " WHERE s.room_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    *alg = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    *event_id = PQntuples(r) && !PQgetisnull(r, 0, 1) ? strdup(PQgetvalue(r, 0, 1)) : NULL;
    PQclear(r);
    return 0;
}

static int check_encryption(db_conn *c, const hs_server *srv, const char *room_id,
                            const json_t *proto, hs_err *err) {
    const char *type = jstr(proto, "type");
    bool enc = is_type(proto, "m.room.encryption"), redact = !strcmp(type, "m.room.redaction");
    bool join_rules = srv->cfg->forbid_unencrypted_private_rooms && is_type(proto, "m.room.join_rules");
    if (!enc && !redact && !join_rules) return 0;
    char *alg = NULL, *event_id = NULL;
    if (current_encryption(c, room_id, &alg, &event_id, err) < 0) return -1;
    const json_t *content = json_object_get(proto, "content");
    int rc = 0;
    if (enc && alg) {
        const char *want = jstr(content, "algorithm");
        if (!want || strcmp(want, alg) != 0)
            rc = hs_err_set(err, 403, "M_FORBIDDEN",
                            "This room is encrypted with %s: encryption cannot be changed or "
                            "turned off", alg);
    } else if (redact && alg && event_id) {
        const char *target = jstr(proto, "redacts");
        if (!target) target = jstr(content, "redacts");
        if (target && !strcmp(target, event_id))
            rc = hs_err_set(err, 403, "M_FORBIDDEN", "The room's encryption cannot be redacted");
    } else if (join_rules && !alg) {
        const char *rule = jstr(content, "join_rule");
        if (!rule || strcmp(rule, "public") != 0)
            rc = hs_err_set(err, 403, "M_FORBIDDEN",
                            "This server does not allow unencrypted private rooms: enable "
                            "encryption first");
    }
    free(alg);
    free(event_id);
    return rc;
}

static int check_invite(db_conn *c, const hs_server *srv, const char *room_id,
                        const json_t *proto, hs_err *err) {
    const char *target = jstr(proto, "state_key"), *sender = jstr(proto, "sender");
    const char *m = jstr(json_object_get(proto, "content"), "membership");
    if (strcmp(jstr(proto, "type"), "m.room.member") || !m || strcmp(m, "invite") || !target ||
        (sender && !strcmp(sender, target)) || !channel_is_local(target, srv->cfg->server_name))
        return 0;
    int b = client_invites_blocked(c, target, err);
    if (b <= 0) return b;
    char now[32];
    const char *cur = channel_membership(c, room_id, target, now, sizeof now, err);
    if (!cur) return -1;
    if (!strcmp(cur, "knock")) return 0; /* approving their own request */
    return hs_err_set(err, 403, "M_INVITE_BLOCKED", "%s does not accept invites", target);
}

/* Is the event one of those the checks look at? */
static bool concerns_policy(const hs_server *srv, const json_t *proto) {
    const char *type = jstr(proto, "type");
    if (!type) return false;
    if (!strcmp(type, "m.room.encryption") || !strcmp(type, "m.room.redaction")) return true;
    if (!strcmp(type, "m.room.join_rules")) return srv->cfg->forbid_unencrypted_private_rooms;
    const char *m = jstr(json_object_get(proto, "content"), "membership");
    return !strcmp(type, "m.room.member") && m && !strcmp(m, "invite");
}

int client_channel_check_send(db_conn *c, const hs_server *srv, const char *room_id,
                              const json_t *proto, hs_err *err) {
    if (!concerns_policy(srv, proto)) return 0;
    /* Someone outside the room gets the auth rules' refusal, which tells
     * them nothing about its encryption or its members' settings. */
    char m[32];
    const char *mem = channel_membership(c, room_id, jstr(proto, "sender") ? jstr(proto, "sender") : "",
                                         m, sizeof m, err);
    if (!mem) return -1;
    if (strcmp(mem, "join") != 0) return 0;
    if (check_encryption(c, srv, room_id, proto, err) < 0) return -1;
    return check_invite(c, srv, room_id, proto, err);
}

json_t *client_channel_unstable_features(const cfg *c) {
    bool all = c->encryption_default == CFG_ENCRYPT_ALL;
    bool priv = all || c->encryption_default == CFG_ENCRYPT_INVITE ||
                c->forbid_unencrypted_private_rooms;
    return json_pack("{s:b, s:b, s:b, s:b}", "io.element.e2ee_forced.public", all,
                     "io.element.e2ee_forced.private", priv,
                     "io.element.e2ee_forced.trusted_private", priv, "org.matrix.msc3266", 1);
}
