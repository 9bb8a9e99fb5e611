/* auth_power.c — power levels: reading them in every room version's format,
 * and the rule for changing them.
 *
 * Values are read straight from the jansson content of the power-levels
 * event: nothing is copied or canonicalised on this hot path. */
#include <ctype.h>
#include <string.h>

#include "auth_internal.h"
#include "event_internal.h"

/* Stringy values can spell any integer; beyond ±2^62 they are clamped, far
 * above anything a real room uses and below ROOM_PL_INFINITE. */
#define PL_CLAMP (1LL << 62)

static bool is_ws(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* The v1 "stringy power levels" format: optional whitespace, one optional
 * sign, base-10 digits (leading zeros allowed), optional whitespace. */
static bool parse_stringy(const char *s, long long *out) {
    while (is_ws(*s)) s++;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (!isdigit((unsigned char)*s)) return false;
    long long n = 0;
    for (; isdigit((unsigned char)*s); s++)
        n = n >= PL_CLAMP ? PL_CLAMP : n * 10 + (*s - '0');
    while (is_ws(*s)) s++;
    if (*s) return false;
    if (n > PL_CLAMP) n = PL_CLAMP;
    *out = neg ? -n : n;
    return true;
}

bool room_pl_value(const room_version *v, const json_t *val, long long *out) {
    if (json_is_integer(val)) {
        *out = json_integer_value(val);
        return true;
    }
    if (v->integer_power_levels) return false;
    if (json_is_string(val)) return parse_stringy(json_string_value(val), out);
    if (json_is_real(val) && !v->strict_canonicaljson) {
        /* The v1 "floaty power levels": truncated toward zero, which is what
         * the cast does. (Parsed events never hold floats; see event_validate.c.) */
        double d = json_real_value(val);
        if (d != d) return false;
        *out = d >= (double)PL_CLAMP ? PL_CLAMP : d <= -(double)PL_CLAMP ? -PL_CLAMP : (long long)d;
        return true;
    }
    return false;
}

/* obj[key] read as a power level; false when absent, null or unreadable. */
static bool pl_get(const room_version *v, const json_t *obj, const char *key, long long *out) {
    json_t *val = json_object_get(obj, key);
    return val && room_pl_value(v, val, out);
}

long long room_pl_named(const room_version *v, const room_event *power, const char *name,
                        long long def) {
    long long n;
    return power && pl_get(v, power->content, name, &n) ? n : def;
}

bool room_is_creator(const room_event *create, const char *user) {
    if (!create || !user) return false;
    if (strcmp(create->sender, user) == 0) return true;
    json_t *extra = json_object_get(create->content, "additional_creators");
    size_t i;
    json_t *u;
    json_array_foreach(extra, i, u) {
        if (json_is_string(u) && strcmp(json_string_value(u), user) == 0) return true;
    }
    return false;
}

const char *room_creator(const room_version *v, const room_event *create) {
    if (!create) return NULL;
    return v->implicit_room_creator ? create->sender : room_json_str(create->content, "creator");
}

long long room_pl_user(const room_version *v, const room_event *create, const room_event *power,
                       const char *user) {
    if (v->hydra && room_is_creator(create, user)) return ROOM_PL_INFINITE;
    long long n;
    if (power) {
        if (pl_get(v, json_object_get(power->content, "users"), user, &n)) return n;
        return room_pl_named(v, power, "users_default", 0);
    }
    /* No power-levels event yet: the creator has 100, everyone else 0. */
    const char *creator = room_creator(v, create);
    return creator && user && strcmp(creator, user) == 0 ? 100 : 0;
}

long long room_pl_required(const room_version *v, const room_event *power, const char *type,
                           bool is_state) {
    long long n;
    if (power && pl_get(v, json_object_get(power->content, "events"), type, &n)) return n;
    return is_state ? room_pl_named(v, power, "state_default", 50)
                    : room_pl_named(v, power, "events_default", 0);
}

long long room_user_power_level(const room_version *v, const char *user_id,
                                room_state_lookup lookup, void *ctx) {
    const room_event *create = lookup ? lookup(ctx, "m.room.create", "") : NULL;
    const room_event *power = lookup ? lookup(ctx, "m.room.power_levels", "") : NULL;
    return room_pl_user(v, create, power, user_id);
}

/* ---- rule 10: changing the power levels ---------------------------------- */

static const char *const named_levels[] = {
    "users_default", "events_default", "state_default", "ban", "redact", "kick", "invite", NULL,
};

/* Every value must be readable in this version's format. From v10 that is
 * the spec's rule 10.1–10.3; before it the spec only checks "users", but a
 * value that no server can read breaks every later check of the room
 * (Synapse fails with an exception), so we refuse it up front. */
static int check_map(room_auth *a, const json_t *content, const char *key, bool user_keys) {
    json_t *map = json_object_get(content, key);
    if (!map) return 0;
    if (!json_is_object(map))
        return ROOM_AUTH_REJECT_CONTENT(a, "power levels: '%s' must be an object", key);
    const char *k;
    json_t *val;
    long long n;
    json_object_foreach(map, k, val) {
        if (user_keys && !room_valid_user_id(k, strlen(k)))
            return ROOM_AUTH_REJECT_CONTENT(a, "power levels: '%s' is not a valid user ID", k);
        if (!room_pl_value(a->v, val, &n))
            return ROOM_AUTH_REJECT_CONTENT(a, "power levels: %s.%s is not an integer", key, k);
    }
    return 0;
}

static int check_format(room_auth *a, const json_t *content) {
    long long n;
    for (const char *const *k = named_levels; *k; k++) {
        json_t *val = json_object_get(content, *k);
        if (val && !room_pl_value(a->v, val, &n))
            return ROOM_AUTH_REJECT_CONTENT(a, "power levels: '%s' is not an integer", *k);
    }
    return check_map(a, content, "events", false) || check_map(a, content, "notifications", false) ||
                   check_map(a, content, "users", true)
               ? -1
               : 0;
}

/* v12 rule 10.4: creators' power is fixed, so they may not be listed. */
static int check_no_creators(room_auth *a, const json_t *users) {
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)users, k, val) {
        if (room_is_creator(a->create, k))
            return ROOM_AUTH_REJECT_CONTENT(a, "power levels: room creator %s cannot be listed in users", k);
    }
    return 0;
}

/* One entry of old vs new: reject when a changed entry's old or new value is
 * beyond what the sender may touch. old_limit_inclusive is the "users" rule
 * (10.9): others at the sender's own level cannot be changed either. */
typedef struct pl_change {
    const char *where;
    long long sender;
    bool old_limit_inclusive;
} pl_change;

static int check_entry(room_auth *a, const pl_change *c, const char *key, bool has_old,
                       long long old, bool has_new, long long new_) {
    if (has_old && has_new && old == new_) return 0;
    if (has_old && (old > c->sender || (c->old_limit_inclusive && old == c->sender)))
        return ROOM_AUTH_REJECT(a, "power levels: cannot change %s%s from %lld with power %lld",
                                c->where, key, old, c->sender);
    if (has_new && new_ > c->sender)
        return ROOM_AUTH_REJECT(a, "power levels: cannot set %s%s to %lld with power %lld",
                                c->where, key, new_, c->sender);
    return 0;
}

/* Rules 10.7–10.10 for one map ("events", "notifications", "users"). */
static int check_map_changes(room_auth *a, const json_t *old_c, const json_t *new_c,
                             const char *key, pl_change *c) {
    json_t *old_m = json_object_get(old_c, key), *new_m = json_object_get(new_c, key);
    const char *k;
    json_t *val;
    long long o, n;
    bool users = strcmp(key, "users") == 0;
    json_object_foreach(old_m, k, val) {
        if (!room_pl_value(a->v, val, &o)) continue;
        bool has_new = pl_get(a->v, new_m, k, &n);
        /* The sender may lower their own level (10.9 skips their entry). */
        c->old_limit_inclusive = users && strcmp(k, a->ev->sender) != 0;
        if (check_entry(a, c, k, true, o, has_new, n)) return -1;
    }
    c->old_limit_inclusive = false;
    json_object_foreach(new_m, k, val) {
        if (!room_pl_value(a->v, val, &n)) continue;
        bool has_old = pl_get(a->v, old_m, k, &o);
        if (!has_old && check_entry(a, c, k, false, 0, true, n)) return -1;
    }
    return 0;
}

int room_auth_power_levels(room_auth *a) {
    const json_t *new_c = a->ev->content;
    if (check_format(a, new_c)) return -1;
    if (a->v->hydra && check_no_creators(a, json_object_get(new_c, "users"))) return -1;
    if (!a->power) return 0; /* the room's first power levels */
    const json_t *old_c = a->power->content;
    pl_change c = {.where = "", .sender = room_pl_user(a->v, a->create, a->power, a->ev->sender)};
    long long o, n;
    for (const char *const *k = named_levels; *k; k++) {
        bool has_o = pl_get(a->v, old_c, *k, &o), has_n = pl_get(a->v, new_c, *k, &n);
        if (check_entry(a, &c, *k, has_o, o, has_n, n)) return -1;
    }
    c.where = "events.";
    if (check_map_changes(a, old_c, new_c, "events", &c)) return -1;
    c.where = "notifications.";
    if (a->v->limit_notifications_power_levels &&
        check_map_changes(a, old_c, new_c, "notifications", &c))
        return -1;
    c.where = "users.";
    return check_map_changes(a, old_c, new_c, "users", &c);
}
