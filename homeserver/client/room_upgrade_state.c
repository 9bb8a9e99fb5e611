/* room_upgrade_state.c — what a room upgrade carries over, computed without
 * the database: power levels, aliases and the new create event. */
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/err.h"
#include "room_upgrade.h"

static const char *const pl_ints[] = {"ban", "events_default", "invite", "kick", "redact",
                                      "state_default", "users_default", NULL};
static const char *const pl_maps[] = {"events", "users", "notifications", NULL};

/* A level as an integer: ints, or strings holding one (pre-v10 rooms). */
static bool level_of(const json_t *v, long long *out) {
    if (json_is_integer(v)) return *out = json_integer_value(v), true;
    const char *s = json_string_value(v);
    if (!s) return false;
    char *end;
    *out = strtoll(s, &end, 10);
    return *s && !*end;
}

static long long level(const json_t *o, const char *key, long long dflt) {
    long long v;
    return level_of(json_object_get(o, key), &v) ? v : dflt;
}

json_t *upgrade_pl_fixup(const json_t *pl) {
    json_t *out = json_deep_copy(json_is_object(pl) ? pl : NULL);
    if (!out) out = json_object();
    long long v;
    for (const char *const *k = pl_ints; *k; k++) {
        json_t *x = json_object_get(out, *k);
        if (!x) continue;
        if (level_of(x, &v)) json_object_set_new(out, *k, json_integer(v));
        else json_object_del(out, *k);
    }
    for (const char *const *k = pl_maps; *k; k++) {
        json_t *m = json_object_get(out, *k), *x, *fixed = json_object();
        const char *key;
        if (!m) {
            json_decref(fixed);
            continue;
        }
        json_object_foreach(m, key, x)
            if (level_of(x, &v)) json_object_set_new(fixed, key, json_integer(v));
        json_object_set_new(out, *k, fixed);
    }
    return out;
}

/* The level needed to copy the state: every state event and ban (Synapse). */
static long long needed_level(const json_t *pl) {
    long long need = level(pl, "state_default", 50), ban = level(pl, "ban", 50), v;
    if (ban > need) need = ban;
    const char *k;
    json_t *x;
    json_object_foreach(json_object_get(pl, "events"), k, x)
        if (level_of(x, &v) && v > need) need = v;
    return need;
}

static json_t *users_of(json_t *pl) {
    json_t *u = json_object_get(pl, "users");
    if (!json_is_object(u)) json_object_set_new(pl, "users", u = json_object());
    return u;
}

void upgrade_power_levels(const json_t *old_pl, const room_version *old_v,
                          const room_version *new_v, const char *upgrader,
                          const json_t *old_creators, const json_t *additional,
                          json_t **initial, json_t **final) {
    json_t *pl = upgrade_pl_fixup(old_pl), *users = users_of(pl), *u;
    size_t i;
    if (!old_pl && !new_v->hydra) json_object_set_new(users, upgrader, json_integer(100));
    long long need = needed_level(pl);
    if (old_v->hydra && !new_v->hydra) {
        /* Infinite power has no number: the old creators stay above the
         * rest as far as a number can say it. */
        long long top = need > 100 ? need : 100;
        json_array_foreach(old_creators, i, u)
            if (json_is_string(u)) json_object_set_new(users, json_string_value(u), json_integer(top));
    }
    if (new_v->hydra) {
        json_object_del(users, upgrader);
        json_array_foreach(additional, i, u)
            if (json_is_string(u)) json_object_del(users, json_string_value(u));
    }
    *final = pl;
    *initial = json_deep_copy(pl);
    if (!new_v->hydra && level(users, upgrader, level(pl, "users_default", 0)) < need)
        json_object_set_new(users_of(*initial), upgrader, json_integer(need));
}

json_t *upgrade_restricted_pl(const json_t *old_pl) {
    if (!json_is_object(old_pl)) return NULL;
    json_t *pl = upgrade_pl_fixup(old_pl);
    long long users_default = level(pl, "users_default", 0);
    long long restricted = users_default + 1 > 50 ? users_default + 1 : 50;
    bool changed = false;
    const char *keys[] = {"invite", "events_default"};
    for (int k = 0; k < 2; k++)
        if (level(pl, keys[k], 0) < restricted) {
            json_object_set_new(pl, keys[k], json_integer(restricted));
            changed = true;
        }
    if (!changed) json_decref(pl), pl = NULL;
    return pl;
}

static bool local_alias(const json_t *a, const char *server_name) {
    const char *s = json_string_value(a), *colon = s ? strchr(s, ':') : NULL;
    return s && s[0] == '#' && colon && !strcmp(colon + 1, server_name);
}

void upgrade_split_aliases(const json_t *canonical, const char *server_name,
                           json_t **new_content, json_t **old_content) {
    json_t *old = json_deep_copy(json_is_object(canonical) ? canonical : NULL);
    if (!old) old = json_object();
    json_t *fresh = json_object(), *alias = json_object_get(old, "alias");
    if (local_alias(alias, server_name)) {
        json_object_set(fresh, "alias", alias);
        json_object_del(old, "alias");
    }
    json_t *alt = json_object_get(old, "alt_aliases");
    if (json_is_array(alt)) {
        json_t *keep = json_array(), *moved = json_array(), *a;
        size_t i;
        json_array_foreach(alt, i, a) json_array_append(local_alias(a, server_name) ? moved : keep, a);
        if (json_array_size(moved)) json_object_set(fresh, "alt_aliases", moved);
        if (json_array_size(keep)) json_object_set(old, "alt_aliases", keep);
        else json_object_del(old, "alt_aliases");
        json_decref(keep), json_decref(moved);
    }
    if (!json_object_size(fresh)) json_decref(fresh), fresh = NULL;
    *new_content = fresh;
    *old_content = old;
}

json_t *upgrade_create_content(const json_t *old_create, const char *old_room_id,
                               const char *tombstone_id, const room_version *new_v,
                               const char *upgrader, const json_t *additional) {
    json_t *pred = json_pack("{s:s}", "room_id", old_room_id);
    if (tombstone_id) json_object_set_new(pred, "event_id", json_string(tombstone_id));
    json_t *c = json_pack("{s:s, s:o}", "room_version", new_v->id, "predecessor", pred);
    const json_t *type = json_object_get(old_create, "type");
    if (type) json_object_set(c, "type", (json_t *)type);
    if (json_is_false(json_object_get(old_create, "m.federate")))
        json_object_set_new(c, "m.federate", json_false());
    if (!new_v->implicit_room_creator) json_object_set_new(c, "creator", json_string(upgrader));
    if (new_v->hydra && json_array_size(additional))
        json_object_set(c, "additional_creators", (json_t *)additional);
    return c;
}

int upgrade_check_creators(const json_t *additional, hs_err *err) {
    size_t i;
    json_t *u;
    if (!json_is_array(additional))
        return hs_err_set(err, 400, "M_BAD_JSON", "additional_creators must be an array");
    json_array_foreach(additional, i, u) {
        const char *s = json_string_value(u), *colon = s ? strchr(s, ':') : NULL;
        if (!s || s[0] != '@' || !colon || colon == s + 1 || !colon[1] || strlen(s) > 255)
            return hs_err_set(err, 400, "M_BAD_JSON",
                              "entry in additional_creators is not a valid user ID");
    }
    return 0;
}
