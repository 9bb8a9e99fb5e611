/* auth_membership.c — the m.room.member rules: join (incl. restricted
 * joins), invite (incl. third-party invites), leave/kick, ban and knock.
 *
 * Numbering in messages follows room version 12's list (5.x); earlier
 * versions have the same rules under other numbers. */
#include <string.h>

#include "auth_internal.h"
#include "event_internal.h"
#include "homeserver/core/base64.h"
#include "homeserver/core/signing.h"

static bool eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

typedef struct member_ctx {
    const char *target;     /* state_key */
    const char *sender_m;   /* sender's current membership, NULL if none */
    const char *target_m;   /* target's current membership */
    const char *join_rule;  /* "invite" when there is no join rules event */
} member_ctx;

/* ---- join ---------------------------------------------------------------- */

/* 5.3.5: a restricted join needs a joined member able to invite, whose server
 * vouches for the join. */
static int restricted_join(room_auth *a, const member_ctx *m) {
    if (eq(m->sender_m, "join") || eq(m->sender_m, "invite")) return 0;
    const char *via = room_json_str(a->ev->content, "join_authorised_via_users_server");
    if (!via) return ROOM_AUTH_REJECT(a, "5.3.5: restricted join without an authorising user");
    const char *via_m;
    if (room_auth_membership(a, via, &via_m)) return -1;
    if (!eq(via_m, "join"))
        return ROOM_AUTH_REJECT(a, "5.3.5: authorising user %s is not joined", via);
    long long invite = room_pl_named(a->v, a->power, "invite", 0);
    if (room_pl_user(a->v, a->create, a->power, via) < invite)
        return ROOM_AUTH_REJECT(a, "5.3.5: authorising user %s cannot invite", via);
    return 0;
}

static bool is_rule(const room_version *v, const char *rule, const char *name) {
    if (!eq(rule, name)) return false;
    if (strcmp(name, "knock") == 0) return v->knock;
    if (strcmp(name, "restricted") == 0) return v->restricted_join;
    if (strcmp(name, "knock_restricted") == 0) return v->knock_restricted;
    return true;
}

static int member_join(room_auth *a, const member_ctx *m) {
    const room_event *ev = a->ev;
    /* 5.3.1: the creator's own first join, right after the create event. */
    if (ev->n_prev == 1 && eq(ev->prev_events[0], a->create->event_id) &&
        eq(room_creator(a->v, a->create), m->target))
        return 0;
    if (!eq(ev->sender, m->target))
        return ROOM_AUTH_REJECT(a, "5.3.2: cannot make another user join");
    if (eq(m->sender_m, "ban")) return ROOM_AUTH_REJECT(a, "5.3.3: %s is banned", ev->sender);
    const char *r = m->join_rule;
    if (is_rule(a->v, r, "invite") || is_rule(a->v, r, "knock")) {
        if (eq(m->sender_m, "invite") || eq(m->sender_m, "join")) return 0;
        return ROOM_AUTH_REJECT(a, "5.3.4: join rule '%s' needs an invite", r);
    }
    if (is_rule(a->v, r, "restricted") || is_rule(a->v, r, "knock_restricted"))
        return restricted_join(a, m);
    if (eq(r, "public")) return 0;
    return ROOM_AUTH_REJECT(a, "5.3.7: join rule '%s' does not allow joining", r ? r : "(none)");
}

/* ---- third-party invites --------------------------------------------------- */

/* Public keys are unpadded base64, in either alphabet depending on the
 * identity server. */
static bool decode_key(const json_t *s, unsigned char pk[32]) {
    size_t n = 0;
    if (!json_is_string(s)) return false;
    const char *b = json_string_value(s);
    size_t len = json_string_length(s);
    return (hs_b64_decode(b, len, pk, 32, &n, false) == 0 && n == 32) ||
           (hs_b64_decode(b, len, pk, 32, &n, true) == 0 && n == 32);
}

/* Does any ed25519 signature in signed verify with pk? */
static bool signed_by_key(const json_t *signed_, const unsigned char pk[32]) {
    const char *server, *key_id;
    json_t *sigs, *sig;
    json_object_foreach(json_object_get(signed_, "signatures"), server, sigs) {
        json_object_foreach(sigs, key_id, sig) {
            if (strncmp(key_id, "ed25519:", 8) == 0 &&
                hs_json_verify(signed_, server, key_id, pk, NULL) == 0)
                return true;
        }
    }
    return false;
}

/* 5.4.1.7: any signature in signed matching any public key of the invite. */
static bool signed_by_invite(const json_t *signed_, const room_event *invite) {
    unsigned char pk[32];
    if (decode_key(json_object_get(invite->content, "public_key"), pk) && signed_by_key(signed_, pk))
        return true;
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(invite->content, "public_keys"), i, entry) {
        if (decode_key(json_object_get(entry, "public_key"), pk) && signed_by_key(signed_, pk))
            return true;
    }
    return false;
}

static int third_party_invite(room_auth *a, const member_ctx *m, const json_t *tpi) {
    if (eq(m->target_m, "ban")) return ROOM_AUTH_REJECT(a, "5.4.1.1: %s is banned", m->target);
    json_t *signed_ = json_object_get(tpi, "signed");
    if (!json_is_object(signed_))
        return ROOM_AUTH_REJECT(a, "5.4.1.2: third_party_invite has no 'signed'");
    const char *mxid = room_json_str(signed_, "mxid"), *token = room_json_str(signed_, "token");
    if (!mxid || !token) return ROOM_AUTH_REJECT(a, "5.4.1.3: 'signed' lacks mxid or token");
    if (!eq(mxid, m->target)) return ROOM_AUTH_REJECT(a, "5.4.1.4: mxid does not match state_key");
    const room_event *invite;
    if (room_auth_fetch(a, "m.room.third_party_invite", token, &invite)) return -1;
    if (!invite) return ROOM_AUTH_REJECT(a, "5.4.1.5: no third-party invite for this token");
    if (!eq(invite->sender, a->ev->sender))
        return ROOM_AUTH_REJECT(a, "5.4.1.6: sender did not send the third-party invite");
    if (signed_by_invite(signed_, invite)) return 0;
    return ROOM_AUTH_REJECT(a, "5.4.1.8: no signature matches the invite's public keys");
}

/* ---- invite, leave, ban, knock ---------------------------------------------- */

static int member_invite(room_auth *a, const member_ctx *m) {
    json_t *tpi = json_object_get(a->ev->content, "third_party_invite");
    if (tpi) return third_party_invite(a, m, tpi);
    if (!eq(m->sender_m, "join")) return ROOM_AUTH_REJECT(a, "5.4.2: inviter is not joined");
    if (eq(m->target_m, "join") || eq(m->target_m, "ban"))
        return ROOM_AUTH_REJECT(a, "5.4.3: %s is %s", m->target,
                                eq(m->target_m, "ban") ? "banned" : "already joined");
    long long invite = room_pl_named(a->v, a->power, "invite", 0);
    if (room_pl_user(a->v, a->create, a->power, a->ev->sender) >= invite) return 0;
    return ROOM_AUTH_REJECT(a, "5.4.5: sender's power is below the invite level %lld", invite);
}

static int member_leave(room_auth *a, const member_ctx *m) {
    if (eq(a->ev->sender, m->target)) {
        const char *s = m->sender_m;
        if (eq(s, "invite") || eq(s, "join") || (a->v->knock && eq(s, "knock"))) return 0;
        return ROOM_AUTH_REJECT(a, "5.5.1: cannot leave with membership '%s'", s ? s : "none");
    }
    if (!eq(m->sender_m, "join")) return ROOM_AUTH_REJECT(a, "5.5.2: sender is not joined");
    long long me = room_pl_user(a->v, a->create, a->power, a->ev->sender);
    if (eq(m->target_m, "ban") && me < room_pl_named(a->v, a->power, "ban", 50))
        return ROOM_AUTH_REJECT(a, "5.5.3: sender's power is below the ban level");
    long long target = room_pl_user(a->v, a->create, a->power, m->target);
    if (me >= room_pl_named(a->v, a->power, "kick", 50) && target < me) return 0;
    return ROOM_AUTH_REJECT(a, "5.5.4: sender cannot kick %s", m->target);
}

static int member_ban(room_auth *a, const member_ctx *m) {
    if (!eq(m->sender_m, "join")) return ROOM_AUTH_REJECT(a, "5.6.1: sender is not joined");
    long long me = room_pl_user(a->v, a->create, a->power, a->ev->sender);
    long long target = room_pl_user(a->v, a->create, a->power, m->target);
    if (me >= room_pl_named(a->v, a->power, "ban", 50) && target < me) return 0;
    return ROOM_AUTH_REJECT(a, "5.6.2: sender cannot ban %s", m->target);
}

static int member_knock(room_auth *a, const member_ctx *m) {
    const char *r = m->join_rule;
    if (!is_rule(a->v, r, "knock") && !is_rule(a->v, r, "knock_restricted"))
        return ROOM_AUTH_REJECT(a, "5.7.1: join rule '%s' does not allow knocking",
                                r ? r : "(none)");
    if (!eq(a->ev->sender, m->target)) return ROOM_AUTH_REJECT(a, "5.7.2: cannot knock for another");
    const char *s = m->sender_m;
    if (eq(s, "ban") || eq(s, "invite") || eq(s, "join"))
        return ROOM_AUTH_REJECT(a, "5.7.4: cannot knock with membership '%s'", s);
    return 0;
}

/* ---- entry ------------------------------------------------------------------ */

/* 5.2 (v8+): the authorising user's server must have signed. Verifying the
 * signature needs its keys, which is the signature checker's job (it must
 * check this server too); here we require that a signature is there. */
static int check_authoriser_signed(room_auth *a) {
    json_t *via = json_object_get(a->ev->content, "join_authorised_via_users_server");
    if (!a->v->restricted_join || !via) return 0;
    const char *user = room_json_str(a->ev->content, "join_authorised_via_users_server");
    if (!user || !room_valid_user_id(user, strlen(user)))
        return ROOM_AUTH_REJECT(a, "5.2: join_authorised_via_users_server is not a user ID");
    json_t *sigs = json_object_get(a->ev->json, "signatures");
    if (!json_object_get(sigs, room_id_domain(user)))
        return ROOM_AUTH_REJECT(a, "5.2: not signed by %s", room_id_domain(user));
    return 0;
}

static int load_member_ctx(room_auth *a, member_ctx *m) {
    const room_event *rules;
    m->target = a->ev->state_key;
    if (room_auth_membership(a, a->ev->sender, &m->sender_m) ||
        room_auth_membership(a, m->target, &m->target_m) ||
        room_auth_fetch(a, "m.room.join_rules", "", &rules))
        return -1;
    /* No join rules event means invite-only (Synapse; the spec is silent). */
    m->join_rule = rules ? room_json_str(rules->content, "join_rule") : "invite";
    if (rules && !json_object_get(rules->content, "join_rule")) m->join_rule = "invite";
    return 0;
}

int room_auth_member(room_auth *a) {
    const room_event *ev = a->ev;
    if (!ev->state_key || !json_object_get(ev->content, "membership"))
        return ROOM_AUTH_REJECT(a, "5.1: member event without state_key or membership");
    member_ctx m;
    if (check_authoriser_signed(a) || load_member_ctx(a, &m)) return -1;
    const char *ms = ev->membership;
    if (eq(ms, "join")) return member_join(a, &m);
    if (eq(ms, "invite")) return member_invite(a, &m);
    if (eq(ms, "leave")) return member_leave(a, &m);
    if (eq(ms, "ban")) return member_ban(a, &m);
    if (eq(ms, "knock") && a->v->knock) return member_knock(a, &m);
    return ROOM_AUTH_REJECT(a, "5.8: unknown membership '%s'", ms ? ms : "(not a string)");
}
