/* rooms_fixture.h — helpers the rooms unit tests share: JSON from literals
 * with single quotes, parsing in a given room version, and a small room
 * state with a lookup callback. Header-only: each test is its own binary. */
#ifndef ROOMS_FIXTURE_H
#define ROOMS_FIXTURE_H

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms/auth.h"
#include "rooms/event.h"

/* JSON from a literal written with ' for " (readable in C). */
static inline json_t *fx_json(const char *text) {
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    json_error_t e;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (!j) fprintf(stderr, "fixture JSON: %s in %s\n", e.text, s);
    free(s);
    ck_assert_ptr_nonnull(j);
    return j;
}

static inline const room_version *fx_ver(const char *id) {
    const room_version *v = room_version_get(id);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* Parse j (stealing the caller's reference), expecting success. */
static inline room_event *fx_parse(const char *ver, json_t *j) {
    hs_err err = {0};
    room_event *e = room_event_parse(fx_ver(ver), j, &err);
    if (!e) fprintf(stderr, "parse failed: %s\n", err.msg);
    ck_assert_ptr_nonnull(e);
    json_decref(j);
    return e;
}

/* Parse j (stealing it), expecting failure with a message containing want. */
static inline void fx_parse_fails(const char *ver, json_t *j, const char *want) {
    hs_err err = {0};
    room_event *e = room_event_parse(fx_ver(ver), j, &err);
    json_decref(j);
    if (e) room_event_free(e);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(err.status, 400);
    if (!strstr(err.msg, want)) fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, want);
    ck_assert_ptr_nonnull(strstr(err.msg, want));
}

/* ---- a room: a create event, a state map and events made against it ---- */

#define FX_MAX_STATE 64

typedef struct fx_room {
    const room_version *v;
    char room_id[300];
    room_event *create;
    room_event *state[FX_MAX_STATE]; /* current state, one per (type, state_key) */
    size_t n_state;
    room_event *owned[512]; /* everything made, freed at the end */
    size_t n_owned;
    int seq;
} fx_room;

static inline const room_event *fx_lookup(void *ctx, const char *type, const char *sk) {
    fx_room *r = ctx;
    for (size_t i = 0; i < r->n_state; i++)
        if (strcmp(r->state[i]->type, type) == 0 && strcmp(r->state[i]->state_key, sk) == 0)
            return r->state[i];
    return NULL;
}

/* Fill in what every PDU needs and parse it in r's version. */
static inline room_event *fx_event_json(fx_room *r, json_t *j) {
    const room_version *v = r->v;
    bool create = strcmp(json_string_value(json_object_get(j, "type")), "m.room.create") == 0;
    if (!json_object_get(j, "room_id") && !(create && v->hydra))
        json_object_set_new(j, "room_id", json_string(r->room_id));
    if (!json_object_get(j, "depth")) json_object_set_new(j, "depth", json_integer(++r->seq));
    json_object_set_new(j, "origin_server_ts", json_integer(1000 + r->seq));
    if (!json_object_get(j, "hashes")) json_object_set_new(j, "hashes", fx_json("{'sha256':'x'}"));
    if (!json_object_get(j, "signatures")) json_object_set_new(j, "signatures", json_object());
    if (!json_object_get(j, "prev_events")) json_object_set_new(j, "prev_events", json_array());
    if (!json_object_get(j, "auth_events")) json_object_set_new(j, "auth_events", json_array());
    if (v->event_format == ROOM_EVFMT_V1 && !json_object_get(j, "event_id"))
        json_object_set_new(j, "event_id", json_sprintf("$e%d:example.org", ++r->seq));
    room_event *e = fx_parse(v->id, j);
    r->owned[r->n_owned++] = e;
    return e;
}

/* An event of sender with the given type, state_key (NULL: none) and content. */
static inline room_event *fx_event(fx_room *r, const char *type, const char *sender,
                                   const char *state_key, const char *content) {
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string(type));
    json_object_set_new(j, "sender", json_string(sender));
    if (state_key) json_object_set_new(j, "state_key", json_string(state_key));
    json_object_set_new(j, "content", fx_json(content));
    return fx_event_json(r, j);
}

/* Put e into the state, replacing what was at its (type, state_key). */
static inline room_event *fx_set(fx_room *r, room_event *e) {
    for (size_t i = 0; i < r->n_state; i++)
        if (strcmp(r->state[i]->type, e->type) == 0 &&
            strcmp(r->state[i]->state_key, e->state_key) == 0) {
            r->state[i] = e;
            return e;
        }
    r->state[r->n_state++] = e;
    return e;
}

/* A room of version ver created by @alice:example.org (content.creator
 * for versions that need it), with alice joined and, if pl is not NULL,
 * power levels with that content. */
static inline void fx_room_init(fx_room *r, const char *ver, const char *pl) {
    memset(r, 0, sizeof *r);
    r->v = fx_ver(ver);
    snprintf(r->room_id, sizeof r->room_id, "!room:example.org");
    const char *content = r->v->implicit_room_creator ? "{}" : "{'creator':'@alice:example.org'}";
    r->create = fx_set(r, fx_event(r, "m.room.create", "@alice:example.org", "", content));
    if (r->v->hydra) snprintf(r->room_id, sizeof r->room_id, "%s", r->create->room_id);
    fx_set(r, fx_event(r, "m.room.member", "@alice:example.org", "@alice:example.org",
                       "{'membership':'join'}"));
    if (pl) fx_set(r, fx_event(r, "m.room.power_levels", "@alice:example.org", "", pl));
}

static inline void fx_room_free(fx_room *r) {
    for (size_t i = 0; i < r->n_owned; i++) room_event_free(r->owned[i]);
    r->n_owned = r->n_state = 0;
}

/* Set user's membership in the state directly (as if it had been allowed). */
static inline void fx_member(fx_room *r, const char *user, const char *membership) {
    char content[128];
    snprintf(content, sizeof content, "{'membership':'%s'}", membership);
    fx_set(r, fx_event(r, "m.room.member", user, user, content));
}

/* Is e allowed against r's state? The reason goes to *why when not. */
static inline bool fx_allowed(fx_room *r, const room_event *e) {
    hs_err err = {0};
    int rc = room_auth_check(e, fx_lookup, r, &err);
    /* Refused: 403 M_FORBIDDEN, or 400 M_BAD_JSON for malformed content. */
    if (rc)
        ck_assert_msg((err.status == 403 && !strcmp(err.errcode, "M_FORBIDDEN")) ||
                          (err.status == 400 && !strcmp(err.errcode, "M_BAD_JSON")),
                      "refused with %d %s", err.status, err.errcode);
    return rc == 0;
}

#define FX_ALLOW(r, e) ck_assert_msg(fx_allowed((r), (e)), "expected allowed: %s", #e)
#define FX_DENY(r, e) ck_assert_msg(!fx_allowed((r), (e)), "expected rejected: %s", #e)

#endif
