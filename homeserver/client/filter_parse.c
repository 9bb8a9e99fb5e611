/* filter_parse.c — checking, parsing and applying filters (no I/O).
 *
 * The schema is the spec's sync_filter / event_filter / room_event_filter,
 * which is also what Synapse enforces; unknown keys pass, as both allow for
 * forward compatibility. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters.h"
#include "homeserver/core/json.h"

/* ---- checking ---- */

static int bad(hs_err *err, const char *path, const char *key, const char *what) {
    return hs_err_set(err, 400, "M_BAD_JSON", "%s%s%s %s", path, *path ? "." : "", key, what);
}

/* An ID with its sigil and a non-empty rest; user IDs also need ":server".
 * (Room IDs of version 12 have no server part.) */
static bool id_ok(const char *s, char sigil) {
    if (s[0] != sigil || !s[1] || strlen(s) > 255) return false;
    if (sigil != '@') return true;
    const char *colon = strchr(s, ':');
    return colon && colon > s + 1 && colon[1];
}

static int check_list(const json_t *o, const char *path, const char *key, char sigil, hs_err *err) {
    const json_t *v = json_object_get(o, key), *x;
    size_t i;
    if (!v) return 0;
    if (!json_is_array(v)) return bad(err, path, key, "must be an array of strings");
    json_array_foreach(v, i, x) {
        if (!json_is_string(x)) return bad(err, path, key, "must be an array of strings");
        if (sigil && !id_ok(json_string_value(x), sigil))
            return bad(err, path, key, sigil == '@' ? "must hold user IDs" : "must hold room IDs");
    }
    return 0;
}

static int check_bool(const json_t *o, const char *path, const char *key, hs_err *err) {
    const json_t *v = json_object_get(o, key);
    return v && !json_is_boolean(v) ? bad(err, path, key, "must be a boolean") : 0;
}

/* An integer, 0 or more: the spec says "greater than 0", but Synapse takes 0
 * (an empty timeline, which Complement's archived-rooms test asks for);
 * 10.0 counts as the integer it is. */
static int check_limit(const json_t *o, const char *path, hs_err *err) {
    const json_t *v = json_object_get(o, "limit");
    if (!v) return 0;
    double d = json_number_value(v);
    /* (no floor(): the client layer doesn't link libm) */
    bool integral = json_is_integer(v) || (json_is_real(v) && isfinite(d) && d > -9e15 &&
                                           d < 9e15 && d == (double)(long long)d);
    if (!integral || d < 0) return bad(err, path, "limit", "must be an integer, 0 or more");
    return 0;
}

static int check_event_filter(const json_t *f, const char *path, bool room_event, hs_err *err) {
    if (!json_is_object(f))
        return hs_err_set(err, 400, "M_BAD_JSON", "%s must be an object", path);
    if (check_limit(f, path, err) < 0 || check_list(f, path, "types", 0, err) < 0 ||
        check_list(f, path, "not_types", 0, err) < 0 ||
        check_list(f, path, "senders", '@', err) < 0 ||
        check_list(f, path, "not_senders", '@', err) < 0)
        return -1;
    if (!room_event) return 0;
    if (check_list(f, path, "rooms", '!', err) < 0 || check_list(f, path, "not_rooms", '!', err) < 0)
        return -1;
    static const char *const bools[] = {"contains_url", "lazy_load_members",
                                        "include_redundant_members",
                                        "unread_thread_notifications", NULL};
    for (const char *const *b = bools; *b; b++)
        if (check_bool(f, path, *b, err) < 0) return -1;
    return 0;
}

static int check_room_filter(const json_t *room, hs_err *err) {
    static const char *const parts[] = {"ephemeral", "state", "timeline", "account_data", NULL};
    if (!json_is_object(room)) return hs_err_set(err, 400, "M_BAD_JSON", "room must be an object");
    if (check_list(room, "room", "rooms", '!', err) < 0 ||
        check_list(room, "room", "not_rooms", '!', err) < 0 ||
        check_bool(room, "room", "include_leave", err) < 0)
        return -1;
    for (const char *const *p = parts; *p; p++) {
        const json_t *v = json_object_get(room, *p);
        char path[32];
        snprintf(path, sizeof path, "room.%s", *p);
        if (v && check_event_filter(v, path, true, err) < 0) return -1;
    }
    return 0;
}

int client_filter_check(const json_t *f, hs_err *err) {
    if (!json_is_object(f)) return hs_err_set(err, 400, "M_BAD_JSON", "a filter must be an object");
    if (check_list(f, "", "event_fields", 0, err) < 0) return -1;
    const json_t *fmt = json_object_get(f, "event_format");
    const char *s = json_string_value(fmt);
    if (fmt && (!s || (strcmp(s, "client") != 0 && strcmp(s, "federation") != 0)))
        return bad(err, "", "event_format", "must be \"client\" or \"federation\"");
    const char *tops[] = {"presence", "account_data"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(f, tops[i]);
        if (v && check_event_filter(v, tops[i], false, err) < 0) return -1;
    }
    const json_t *room = json_object_get(f, "room");
    return room ? check_room_filter(room, err) : 0;
}

/* ---- parsing (after checking, so types are right) ---- */

static void strlist_parse(const json_t *o, const char *key, client_strlist *l) {
    const json_t *v = json_object_get(o, key), *x;
    size_t i;
    if (!json_is_array(v)) return;
    l->given = true;
    l->n = json_array_size(v);
    l->v = calloc(l->n ? l->n : 1, sizeof *l->v);
    json_array_foreach(v, i, x) l->v[i] = strdup(json_string_value(x));
}

static void strlist_free(client_strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    *l = (client_strlist){0};
}

static void part_parse(const json_t *o, client_filter_part *p) {
    *p = (client_filter_part){.contains_url = -1, .limit = -1};
    if (!json_is_object(o)) return;
    const json_t *lim = json_object_get(o, "limit");
    if (lim) {
        double d = json_number_value(lim);
        p->limit = d > (double)LLONG_MAX / 2 ? LLONG_MAX / 2 : (long long)d;
    }
    strlist_parse(o, "types", &p->types);
    strlist_parse(o, "not_types", &p->not_types);
    strlist_parse(o, "senders", &p->senders);
    strlist_parse(o, "not_senders", &p->not_senders);
    strlist_parse(o, "rooms", &p->rooms);
    strlist_parse(o, "not_rooms", &p->not_rooms);
    const json_t *url = json_object_get(o, "contains_url");
    if (url) p->contains_url = json_is_true(url);
    p->lazy_load_members = json_is_true(json_object_get(o, "lazy_load_members"));
    p->include_redundant_members = json_is_true(json_object_get(o, "include_redundant_members"));
    p->unread_thread_notifications = json_is_true(json_object_get(o, "unread_thread_notifications"));
}

static void part_clear(client_filter_part *p) {
    strlist_free(&p->types);
    strlist_free(&p->not_types);
    strlist_free(&p->senders);
    strlist_free(&p->not_senders);
    strlist_free(&p->rooms);
    strlist_free(&p->not_rooms);
}

client_filter *client_filter_parse(json_t *filter, hs_err *err) {
    if (client_filter_check(filter, err) < 0) return NULL;
    client_filter *f = calloc(1, sizeof *f);
    f->json = json_incref(filter);
    const json_t *room = json_object_get(filter, "room");
    part_parse(json_object_get(filter, "presence"), &f->presence);
    part_parse(json_object_get(filter, "account_data"), &f->account_data);
    part_parse(NULL, &f->room);
    strlist_parse(room, "rooms", &f->room.rooms);
    strlist_parse(room, "not_rooms", &f->room.not_rooms);
    part_parse(json_object_get(room, "timeline"), &f->timeline);
    part_parse(json_object_get(room, "state"), &f->state);
    part_parse(json_object_get(room, "ephemeral"), &f->ephemeral);
    part_parse(json_object_get(room, "account_data"), &f->room_account_data);
    f->include_leave = json_is_true(json_object_get(room, "include_leave"));
    const char *fmt = json_string_value(json_object_get(filter, "event_format"));
    f->federation_format = fmt && !strcmp(fmt, "federation");
    strlist_parse(filter, "event_fields", &f->event_fields);
    return f;
}

void client_filter_free(client_filter *f) {
    if (!f) return;
    client_filter_part *parts[] = {&f->presence, &f->account_data, &f->room, &f->timeline,
                                   &f->state, &f->ephemeral, &f->room_account_data};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) part_clear(parts[i]);
    strlist_free(&f->event_fields);
    json_decref(f->json);
    free(f);
}

client_filter_part *client_room_event_filter_load(const char *param, hs_err *err) {
    json_t *rf = param && *param ? hs_json_parse(param, strlen(param), err) : json_object();
    if (!rf) return NULL;
    if (check_event_filter(rf, "filter", true, err) < 0) return json_decref(rf), NULL;
    client_filter_part *p = malloc(sizeof *p);
    part_parse(rf, p);
    json_decref(rf);
    return p;
}

void client_filter_part_free(client_filter_part *p) {
    if (!p) return;
    part_clear(p);
    free(p);
}

/* ---- matching ---- */

bool client_filter_glob(const char *pat, const char *s) {
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (*pat == *s) {
            pat++, s++;
        } else if (star) {
            pat = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*') pat++;
    return !*pat;
}

static bool in_list(const client_strlist *l, const char *s, bool glob) {
    for (size_t i = 0; s && i < l->n; i++)
        if (glob ? client_filter_glob(l->v[i], s) : !strcmp(l->v[i], s)) return true;
    return false;
}

/* not_* first (it always wins), then the allow list when there is one. */
static bool allowed(const client_strlist *yes, const client_strlist *no, const char *s, bool glob) {
    if (in_list(no, s, glob)) return false;
    return !yes->given || in_list(yes, s, glob);
}

bool client_filter_room_allowed(const client_filter_part *p, const char *room_id) {
    return allowed(&p->rooms, &p->not_rooms, room_id, false);
}

bool client_filter_event_allowed(const client_filter_part *p, const json_t *ev) {
    if (!allowed(&p->types, &p->not_types, json_string_value(json_object_get(ev, "type")), true))
        return false;
    if (!allowed(&p->senders, &p->not_senders, json_string_value(json_object_get(ev, "sender")),
                 false))
        return false;
    const char *room = json_string_value(json_object_get(ev, "room_id"));
    if (room && !client_filter_room_allowed(p, room)) return false;
    if (p->contains_url >= 0) {
        const json_t *url = json_object_get(json_object_get(ev, "content"), "url");
        if (json_is_string(url) != (p->contains_url == 1)) return false;
    }
    return true;
}

static bool has_star(const client_strlist *l) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], "*")) return true;
    return false;
}

bool client_filter_blocks_all(const client_filter_part *p) {
    return (p->types.given && !p->types.n) || has_star(&p->not_types) ||
           (p->senders.given && !p->senders.n) || has_star(&p->not_senders) ||
           (p->rooms.given && !p->rooms.n) || has_star(&p->not_rooms);
}

bool client_filter_sifts(const client_filter_part *p) {
    return p->types.given || p->not_types.n || p->senders.given || p->not_senders.n ||
           p->rooms.given || p->not_rooms.n || p->contains_url >= 0;
}

int client_filter_limit(const client_filter_part *p, int dflt, int max) {
    long long n = p && p->limit >= 0 ? p->limit : dflt;
    return n > max ? max : (int)n;
}

/* ---- event_fields ---- */

/* The next segment of a dot-separated path into buf (unescaped); returns
 * where the following segment starts, or NULL at the end. */
static const char *path_segment(const char *p, char *buf, size_t size) {
    size_t n = 0;
    for (; *p && *p != '.'; p++) {
        if (*p == '\\' && (p[1] == '.' || p[1] == '\\')) p++;
        if (n + 1 < size) buf[n++] = *p;
    }
    buf[n] = 0;
    return *p == '.' ? p + 1 : NULL;
}

static void copy_path(const json_t *ev, const char *path, json_t *out) {
    char key[256];
    const json_t *src = ev;
    json_t *dst = out;
    for (const char *p = path; p;) {
        p = path_segment(p, key, sizeof key);
        const json_t *v = json_object_get(src, key);
        if (!v) return;
        if (!p) {
            json_object_set_new(dst, key, json_deep_copy(v));
            return;
        }
        if (!json_is_object(v)) return;
        json_t *next = json_object_get(dst, key);
        if (!json_is_object(next)) json_object_set_new(dst, key, next = json_object());
        src = v, dst = next;
    }
}

json_t *client_filter_project(const client_filter *f, const json_t *event) {
    if (!f || !f->event_fields.given) return json_incref((json_t *)event);
    json_t *out = json_object();
    for (size_t i = 0; i < f->event_fields.n; i++) copy_path(event, f->event_fields.v[i], out);
    return out;
}
