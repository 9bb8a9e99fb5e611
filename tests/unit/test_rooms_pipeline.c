/* test_rooms_pipeline.c — the two ways into a room, on a real PostgreSQL:
 * room_send_local (build, authorise, persist) in room versions 1, 10 and 12,
 * and room_receive's verdicts: accepted, rejected (by its auth events or the
 * state before it), soft failed (by the current state), and history pulled
 * by backfill (room_receive_history). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "homeserver/core/clock.h"
#include "homeserver/db/db.h"
#include "homeserver/db/embedded_pg.h"
#include "rooms/rooms.h"

static db_embedded *pg;
static db_pool *pool;
static db_conn *c;
static hs_signing_key key;
static char tmpdir[] = "/tmp/pvyhs-pipeline-test-XXXXXX";

static void setup(void) {
    hs_err err = {0};
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    chmod(tmpdir, 0755);
    pg = db_embedded_start(tmpdir, true, &err);
    ck_assert_ptr_nonnull(pg);
    pool = db_pool_new(db_embedded_conninfo(pg), 1, 1, 0, &err);
    ck_assert_int_eq(db_migrate(pool, &err), 0);
    c = db_acquire(pool, &err);
    hs_signing_key_generate(&key);
}

static void teardown(void) {
    db_release(pool, c);
    db_pool_free(pool);
    db_embedded_stop(pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* Send an event; returns it (caller frees) or NULL with *status set. */
static room_event *send(const room_version *v, const char *room_id, const char *type,
                        const char *sk, const char *sender, const char *content, int *status) {
    json_error_t je;
    json_t *p = json_pack("{s:s, s:s, s:o}", "type", type, "sender", sender, "content",
                          json_loads(content, 0, &je));
    if (sk) json_object_set_new(p, "state_key", json_string(sk));
    hs_err err = {0};
    db_script(c, "BEGIN", &err);
    room_event *ev = room_send_local(c, v, room_id, p, "example.org", &key, 0, &err);
    db_script(c, ev ? "COMMIT" : "ROLLBACK", &err);
    json_decref(p);
    if (status) *status = ev ? 200 : err.status;
    if (!ev && !status) fprintf(stderr, "send %s: %s\n", type, err.msg);
    return ev;
}

static const char *membership(const char *room_id, const char *user) {
    static char buf[32];
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(max(membership), '') FROM current_state WHERE room_id = '%s'"
             " AND type = 'm.room.member' AND state_key = '%s'", room_id, user);
    PGresult *r = PQexec(c->pg, sql);
    snprintf(buf, sizeof buf, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return buf;
}

/* A private room of alice's: create, join, power levels, invite-only. */
static char *make_room(const char *ver) {
    const room_version *v = room_version_get(ver);
    static int n;
    char rid[64], content[128];
    snprintf(rid, sizeof rid, "!room%d:example.org", ++n);
    snprintf(content, sizeof content, "{\"room_version\":\"%s\"%s}", ver,
             v->implicit_room_creator ? "" : ",\"creator\":\"@alice:example.org\"");
    room_event *cr = send(v, rid, "m.room.create", "", "@alice:example.org", content, NULL);
    ck_assert_ptr_nonnull(cr);
    char *room_id = strdup(cr->room_id);
    room_event_free(cr);
    /* From v12 the creator has infinite power and may not be listed in users. */
    const char *steps[][3] = {
        {"m.room.member", "@alice:example.org", "{\"membership\":\"join\"}"},
        {"m.room.power_levels", "",
         v->hydra ? "{\"invite\":50}" : "{\"users\":{\"@alice:example.org\":100},\"invite\":50}"},
        {"m.room.join_rules", "", "{\"join_rule\":\"invite\"}"},
    };
    for (int i = 0; i < 3; i++) {
        room_event *e = send(NULL, room_id, steps[i][0], steps[i][1], "@alice:example.org",
                             steps[i][2], NULL);
        ck_assert_ptr_nonnull(e);
        room_event_free(e);
    }
    return room_id;
}

static void local_flow(const char *ver) {
    char *rid = make_room(ver);
    int st;
    room_event *e = send(NULL, rid, "m.room.member", "@bob:example.org", "@bob:example.org",
                         "{\"membership\":\"join\"}", &st);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(st, 403); /* invite-only */
    ck_assert_str_eq(membership(rid, "@bob:example.org"), "");
    e = send(NULL, rid, "m.room.member", "@bob:example.org", "@alice:example.org",
             "{\"membership\":\"invite\"}", NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(membership(rid, "@bob:example.org"), "invite");
    room_event_free(e);
    e = send(NULL, rid, "m.room.member", "@bob:example.org", "@bob:example.org",
             "{\"membership\":\"join\"}", NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(membership(rid, "@bob:example.org"), "join");
    /* bob (power 0) cannot change the power levels. */
    room_event *pl = send(NULL, rid, "m.room.power_levels", "", "@bob:example.org",
                          "{\"users\":{\"@bob:example.org\":100}}", &st);
    ck_assert_ptr_null(pl);
    ck_assert_int_eq(st, 403);
    room_event *msg = send(NULL, rid, "m.room.message", NULL, "@bob:example.org",
                           "{\"msgtype\":\"m.text\",\"body\":\"hi\"}", NULL);
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_eq(msg->depth, e->depth + 1);
    ck_assert_int_eq(msg->n_prev, 1);
    ck_assert_str_eq(msg->prev_events[0], e->event_id);
    const room_version *v = room_version_get(ver);
    json_t *prev0 = json_array_get(json_object_get(msg->json, "prev_events"), 0);
    if (v->event_format == ROOM_EVFMT_V1) ck_assert(json_is_array(prev0)); /* [id, {sha256}] */
    else ck_assert(json_is_string(prev0));
    /* auth_events: (create,) power levels, bob's membership */
    ck_assert_int_eq(msg->n_auth, v->hydra ? 2 : 3);
    hs_err err = {0};
    ck_assert_int_eq(room_event_check_content_hash(msg->json, &err), 0);
    room_event_free(msg);
    room_event_free(e);
    free(rid);
}

START_TEST(local_v1) { local_flow("1"); }
END_TEST
START_TEST(local_v10) { local_flow("10"); }
END_TEST
START_TEST(local_v12) { local_flow("12"); }
END_TEST

/* An event "from another server", built by hand on given prev/auth events. */
static room_event *remote(const room_version *v, const char *rid, const char *type,
                          const char *sk, const char *sender, const char *content,
                          const char *prev, const char *const *auth, int n_auth, long long depth) {
    json_error_t je;
    json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:[s]}", "type", type, "sender", sender,
                          "room_id", rid, "content", json_loads(content, 0, &je), "depth",
                          (json_int_t)depth, "origin_server_ts", (json_int_t)hs_now_ms(),
                          "prev_events", prev);
    if (sk) json_object_set_new(j, "state_key", json_string(sk));
    json_t *a = json_array();
    for (int i = 0; i < n_auth; i++) json_array_append_new(a, json_string(auth[i]));
    json_object_set_new(j, "auth_events", a);
    hs_err err = {0};
    ck_assert_int_eq(room_event_finish(v, j, "other.org", &key, &err), 0);
    room_event *ev = room_event_parse(v, j, &err);
    ck_assert_ptr_nonnull(ev);
    json_decref(j);
    return ev;
}

static room_verdict receive(const room_event *ev, int *status, char *why) {
    hs_err err = {0};
    room_verdict v = ROOM_ACCEPTED;
    db_script(c, "BEGIN", &err);
    int rc = room_receive(c, ev, NULL, 0, &v, why, 256, &err);
    db_script(c, rc == 0 ? "COMMIT" : "ROLLBACK", &err);
    *status = rc == 0 ? 200 : err.status;
    return v;
}

static const char *cur_id(const char *rid, const char *type, const char *sk) {
    static char buf[128];
    room_state_map *m = room_state_map_new();
    hs_err err = {0};
    room_store_current_state(c, rid, m, &err);
    const char *id = room_state_map_get(m, type, sk);
    snprintf(buf, sizeof buf, "%s", id ? id : "");
    room_state_map_free(m);
    return buf;
}

/* Two v12 createRoom calls by one user in the same millisecond build the same
 * create event, hence the same room ID: the second steps its timestamp back. */
START_TEST(create_same_millisecond) {
    const room_version *v = room_version_get("12");
    json_error_t je;
    json_t *p = json_pack("{s:s, s:s, s:s, s:o, s:I}", "type", "m.room.create", "state_key", "",
                          "sender", "@alice:example.org", "content",
                          json_loads("{\"room_version\":\"12\"}", 0, &je), "origin_server_ts",
                          (json_int_t)1700000000000);
    hs_err err = {0};
    room_event *ev[3];
    for (int i = 0; i < 3; i++) {
        db_script(c, "BEGIN", &err);
        ev[i] = room_send_local(c, v, NULL, p, "example.org", &key, 0, &err);
        ck_assert_msg(ev[i] != NULL, "create %d: %s", i, err.msg);
        db_script(c, "COMMIT", &err);
    }
    ck_assert_int_eq(ev[0]->origin_server_ts, 1700000000000);
    ck_assert_int_eq(ev[1]->origin_server_ts, 1699999999999);
    ck_assert_int_eq(ev[2]->origin_server_ts, 1699999999998);
    ck_assert_str_ne(ev[0]->room_id, ev[1]->room_id);
    ck_assert_str_ne(ev[1]->room_id, ev[2]->room_id);
    ck_assert_str_ne(ev[0]->room_id, ev[2]->room_id);
    for (int i = 0; i < 3; i++) room_event_free(ev[i]);
    json_decref(p);
}
END_TEST

START_TEST(receive_verdicts) {
    const room_version *v = room_version_get("12");
    char *rid = make_room("12");
    /* Open the room and let carol of other.org join. */
    room_event *jr = send(NULL, rid, "m.room.join_rules", "", "@alice:example.org",
                          "{\"join_rule\":\"public\"}", NULL);
    hs_err err = {0};
    char **ext;
    size_t n;
    long long depth;
    room_store_extremities(c, rid, &ext, &n, &depth, &err);
    room_state_map *st = room_state_map_new();
    room_store_current_state(c, rid, st, &err);
    const char *pl = strdup(room_state_map_get(st, "m.room.power_levels", ""));
    room_event *join = remote(v, rid, "m.room.member", "@carol:other.org", "@carol:other.org",
                              "{\"membership\":\"join\"}", ext[0],
                              (const char *[]){pl, jr->event_id}, 2, depth + 1);
    int status;
    char why[256];
    ck_assert_int_eq(receive(join, &status, why), ROOM_ACCEPTED);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(membership(rid, "@carol:other.org"), "join");

    /* Rejected: mallory never joined, and cites no membership of hers. */
    room_event *bad = remote(v, rid, "m.room.topic", "", "@mallory:other.org", "{\"topic\":\"x\"}",
                             join->event_id, (const char *[]){pl}, 1, depth + 2);
    ck_assert_int_eq(receive(bad, &status, why), ROOM_REJECTED);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strlen(why) ? why : NULL);
    ck_assert_str_eq(cur_id(rid, "m.room.topic", ""), "");
    room_event *stored = room_store_get_event(c, bad->event_id, &err);
    ck_assert(stored && stored->rejected);
    room_event_free(stored);

    /* Soft failed: carol's message built before alice bans her arrives after. */
    room_event *ban = send(NULL, rid, "m.room.member", "@carol:other.org", "@alice:example.org",
                           "{\"membership\":\"ban\"}", NULL);
    ck_assert_ptr_nonnull(ban);
    room_event *late = remote(v, rid, "m.room.message", NULL, "@carol:other.org",
                              "{\"msgtype\":\"m.text\",\"body\":\"late\"}",
                              join->event_id, (const char *[]){pl, join->event_id}, 2, depth + 2);
    ck_assert_int_eq(receive(late, &status, why), ROOM_SOFT_FAILED);
    ck_assert_str_eq(cur_id(rid, "m.room.topic", ""), "");
    room_store_free_ids(ext, n);
    room_store_extremities(c, rid, &ext, &n, NULL, &err);
    for (size_t i = 0; i < n; i++) ck_assert_str_ne(ext[i], late->event_id);

    /* A missing auth event: an error, nothing stored. */
    room_event *orphan = remote(v, rid, "m.room.topic", "", "@alice:example.org", "{\"topic\":\"o\"}",
                                ban->event_id, (const char *[]){pl, "$missing"}, 2, depth + 3);
    receive(orphan, &status, why);
    ck_assert_int_eq(status, 404);
    ck_assert_ptr_null(room_store_get_event(c, orphan->event_id, &err));

    room_store_free_ids(ext, n);
    room_event_free(orphan), room_event_free(late), room_event_free(ban), room_event_free(bad);
    room_event_free(join), room_event_free(jr);
    room_state_map_free(st);
    free((char *)pl);
    free(rid);
}
END_TEST

static room_verdict receive_history(const room_event *ev, long long pos, char *why) {
    hs_err err = {0};
    room_verdict v = ROOM_ACCEPTED;
    db_script(c, "BEGIN", &err);
    int rc = room_receive_history(c, ev, NULL, pos, &v, why, 256, &err);
    db_script(c, rc == 0 ? "COMMIT" : "ROLLBACK", &err);
    ck_assert_msg(rc == 0, "room_receive_history: %s", err.msg);
    return v;
}

static long long stored_pos(const char *event_id) {
    static db_stmt q = DB_STMT("SELECT stream_ordering FROM events WHERE event_id = $1");
    hs_err err = {0};
    PGresult *r = db_run(c, &q, 1, (const char *[]){event_id}, &err);
    ck_assert_ptr_nonnull(r);
    long long p = PQntuples(r) && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return p;
}

/* A public v12 room of alice's that carol of other.org joined over
 * federation: the join rules event, the power levels' and alice's member
 * event IDs, the extremity and depth carol's join was built on, her join. */
typedef struct carol_room {
    const room_version *v;
    char *rid, *pl, *alice;
    room_event *jr, *join;
    char **ext;
    size_t n;
    long long depth;
} carol_room;

static carol_room carol_joins(void) {
    carol_room r = {.v = room_version_get("12"), .rid = make_room("12")};
    r.jr = send(NULL, r.rid, "m.room.join_rules", "", "@alice:example.org",
                "{\"join_rule\":\"public\"}", NULL);
    hs_err err = {0};
    room_store_extremities(c, r.rid, &r.ext, &r.n, &r.depth, &err);
    room_state_map *st = room_state_map_new();
    room_store_current_state(c, r.rid, st, &err);
    r.pl = strdup(room_state_map_get(st, "m.room.power_levels", ""));
    r.alice = strdup(room_state_map_get(st, "m.room.member", "@alice:example.org"));
    room_state_map_free(st);
    r.join = remote(r.v, r.rid, "m.room.member", "@carol:other.org", "@carol:other.org",
                    "{\"membership\":\"join\"}", r.ext[0],
                    (const char *[]){r.pl, r.jr->event_id}, 2, r.depth + 1);
    int status;
    char why[256];
    ck_assert_int_eq(receive(r.join, &status, why), ROOM_ACCEPTED);
    return r;
}

static void carol_room_free(carol_room *r) {
    room_store_free_ids(r->ext, r->n);
    room_event_free(r->join), room_event_free(r->jr);
    free(r->pl), free(r->alice), free(r->rid);
}

/* History pulled by backfill: judged by its auth events and the state before
 * it, never by the current state, stored at the position given, and moving
 * neither the current state nor the forward extremities. */
START_TEST(receive_history_leaves_the_present) {
    carol_room cr = carol_joins();
    const room_version *v = cr.v;
    char *rid = cr.rid, *pl = cr.pl, *alice = cr.alice;
    room_event *join = cr.join;
    long long depth = cr.depth;
    hs_err err = {0};
    char **ext = NULL;
    size_t n = 0;
    char why[256];
    room_event *ban = send(NULL, rid, "m.room.member", "@carol:other.org", "@alice:example.org",
                           "{\"membership\":\"ban\"}", NULL);
    room_store_extremities(c, rid, &ext, &n, NULL, &err);
    ck_assert_int_eq(n, 1);
    char *present = strdup(ext[0]);

    /* carol's message of before the ban: soft-failed as news, accepted as history. */
    room_event *old = remote(v, rid, "m.room.message", NULL, "@carol:other.org",
                             "{\"msgtype\":\"m.text\",\"body\":\"old\"}", join->event_id,
                             (const char *[]){pl, join->event_id}, 2, depth + 2);
    ck_assert_int_eq(receive_history(old, -7, why), ROOM_ACCEPTED);
    ck_assert_int_eq(stored_pos(old->event_id), -7);
    /* A state change of the past: stored with its state, the present keeps its own. */
    room_event *topic = remote(v, rid, "m.room.topic", "", "@alice:example.org",
                               "{\"topic\":\"long ago\"}", old->event_id,
                               (const char *[]){pl, alice}, 2, depth + 3);
    ck_assert_int_eq(receive_history(topic, -6, why), ROOM_ACCEPTED);
    ck_assert_str_eq(cur_id(rid, "m.room.topic", ""), "");
    ck_assert_str_eq(membership(rid, "@carol:other.org"), "ban");
    room_state_map *after = room_state_map_new();
    ck_assert_int_eq(room_store_state_at(c, topic->event_id, true, after, &err), 0);
    ck_assert_str_eq(room_state_map_get(after, "m.room.topic", ""), topic->event_id);
    room_store_free_ids(ext, n);
    room_store_extremities(c, rid, &ext, &n, NULL, &err);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(ext[0], present);
    /* Still rejected when its own auth events say no. */
    room_event *bad = remote(v, rid, "m.room.topic", "", "@mallory:other.org", "{\"topic\":\"x\"}",
                             join->event_id, (const char *[]){pl}, 1, depth + 2);
    ck_assert_int_eq(receive_history(bad, -5, why), ROOM_REJECTED);

    room_store_free_ids(ext, n);
    room_state_map_free(after);
    room_event_free(bad), room_event_free(topic), room_event_free(old), room_event_free(ban);
    free(present);
    carol_room_free(&cr);
}
END_TEST

static room_verdict receive_partial(const room_event *ev, const room_state_map *before,
                                    bool partial, char *why) {
    hs_err err = {0};
    room_verdict v = ROOM_ACCEPTED;
    db_script(c, "BEGIN", &err);
    int rc = room_receive_ex(c, ev, before, partial, 0, &v, why, 256, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    db_script(c, "ROLLBACK", &err); /* judged, not kept */
    return v;
}

/* A room joined with partial state: an event whose sender's membership the
 * state lacks is judged by its auth events (partial), not rejected; a
 * membership the state has still wins; and the rebase gives the join and
 * the events after it the full state. */
START_TEST(partial_state) {
    carol_room cr = carol_joins();
    const room_version *v = cr.v;
    char *rid = cr.rid, *pl = cr.pl;
    room_event *jr = cr.jr, *join = cr.join;
    long long depth = cr.depth;
    hs_err err = {0};
    char **ext = cr.ext;
    int status;
    char why[256];
    /* dave of other.org joined too, but we hold his join as an outlier only. */
    room_event *dave = remote(v, rid, "m.room.member", "@dave:other.org", "@dave:other.org",
                              "{\"membership\":\"join\"}", ext[0],
                              (const char *[]){pl, jr->event_id}, 2, depth + 1);
    room_persist_item it = {.ev = dave, .outlier = true};
    db_script(c, "BEGIN", &err);
    ck_assert_int_eq(room_store_persist(c, &it, 1, &err), 0);
    db_script(c, "COMMIT", &err);

    /* The state we know lacks carol's membership. */
    room_state_map *known = room_state_map_new();
    room_store_state_at(c, join->event_id, true, known, &err);
    room_state_map_remove(known, "m.room.member", "@carol:other.org");
    room_event *msg = remote(v, rid, "m.room.message", NULL, "@carol:other.org",
                             "{\"msgtype\":\"m.text\",\"body\":\"hi\"}", join->event_id,
                             (const char *[]){pl, join->event_id}, 2, depth + 2);
    ck_assert_int_eq(receive_partial(msg, known, false, why), ROOM_REJECTED);
    ck_assert_int_eq(receive_partial(msg, known, true, why), ROOM_ACCEPTED);
    /* Known to be banned in that state: partial or not, refused. */
    room_event *ban = remote(v, rid, "m.room.member", "@carol:other.org", "@alice:example.org",
                             "{\"membership\":\"ban\"}", join->event_id,
                             (const char *[]){pl, join->event_id}, 2, depth + 2);
    room_state_map_set(known, "m.room.member", "@carol:other.org", ban->event_id);
    db_script(c, "BEGIN", &err);
    it = (room_persist_item){.ev = ban, .outlier = true};
    ck_assert_int_eq(room_store_persist(c, &it, 1, &err), 0);
    db_script(c, "COMMIT", &err);
    ck_assert_int_eq(receive_partial(msg, known, true, why), ROOM_REJECTED);
    /* Someone with neither state nor auth events for them: refused. */
    room_event *mal = remote(v, rid, "m.room.message", NULL, "@mallory:other.org",
                             "{\"msgtype\":\"m.text\",\"body\":\"x\"}", join->event_id,
                             (const char *[]){pl}, 1, depth + 2);
    ck_assert_int_eq(receive_partial(mal, NULL, true, why), ROOM_REJECTED);

    /* Store the message, then rebase carol's join on a state with dave. */
    ck_assert_int_eq(receive(msg, &status, why), ROOM_ACCEPTED);
    room_state_map *full = room_state_map_new();
    room_store_state_at(c, join->event_id, false, full, &err);
    room_state_map_set(full, "m.room.member", "@dave:other.org", dave->event_id);
    ck_assert_str_eq(cur_id(rid, "m.room.member", "@dave:other.org"), "");
    db_script(c, "BEGIN", &err);
    ck_assert_msg(room_store_rebase_state(c, join->event_id, full, &err) == 0, "%s", err.msg);
    db_script(c, "COMMIT", &err);
    ck_assert_str_eq(cur_id(rid, "m.room.member", "@dave:other.org"), dave->event_id);
    ck_assert_str_eq(cur_id(rid, "m.room.member", "@carol:other.org"), join->event_id);
    room_state_map *at = room_state_map_new();
    ck_assert_int_eq(room_store_state_at(c, msg->event_id, false, at, &err), 0);
    ck_assert_str_eq(room_state_map_get(at, "m.room.member", "@dave:other.org"), dave->event_id);
    ck_assert_str_eq(room_state_map_get(at, "m.room.member", "@carol:other.org"), join->event_id);
    ck_assert_str_eq(room_state_map_get(at, "m.room.join_rules", ""), jr->event_id);

    room_state_map_free(at), room_state_map_free(full), room_state_map_free(known);
    room_event_free(mal), room_event_free(ban), room_event_free(msg), room_event_free(dave);
    carol_room_free(&cr);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rooms_pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, local_v1);
    tcase_add_test(tc, local_v10);
    tcase_add_test(tc, local_v12);
    tcase_add_test(tc, create_same_millisecond);
    tcase_add_test(tc, receive_verdicts);
    tcase_add_test(tc, partial_state);
    tcase_add_test(tc, receive_history_leaves_the_present);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
