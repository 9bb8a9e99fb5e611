/* upgrade_follow.c — what follows an upgraded room (upgrade_follow.h). */
#include "upgrade_follow.h"

#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "homeserver/core/log.h"
#include "push_rules_copy.h"

int client_upgrade_move_listing(db_conn *c, const char *old_room, const char *new_room,
                                hs_err *err) {
    static db_stmt move = DB_STMT("UPDATE room_aliases SET room_id = $2 WHERE room_id = $1");
    /* Only a public listing moves: asked again (a second local join), the
     * old room is private by then and must not unlist the new one. */
    static db_stmt list = DB_STMT(
        "INSERT INTO room_directory (room_id, visibility) SELECT $2, 'public'"
        " WHERE EXISTS (SELECT 1 FROM room_directory WHERE room_id = $1 AND visibility = 'public')"
        " ON CONFLICT (room_id) DO UPDATE SET visibility = 'public'");
    static db_stmt hide = DB_STMT("UPDATE room_directory SET visibility = 'private' WHERE room_id = $1");
    const char *p[] = {old_room, new_room};
    return db_exec(c, &move, 2, p, err) < 0 || db_exec(c, &list, 2, p, err) < 0 ||
                   db_exec(c, &hide, 1, p, err) < 0
               ? -1
               : 0;
}

typedef struct listing_job {
    const char *old_room, *new_room;
} listing_job;

static int listing_txn(db_conn *c, void *arg, hs_err *err) {
    listing_job *j = arg;
    return client_upgrade_move_listing(c, j->old_room, j->new_room, err);
}

/* The user's m.direct: the new room joins every list that names the old. */
static int follow_direct(hs_server *srv, db_conn *c, const char *user_id, const char *old_room,
                         const char *new_room, hs_err *err) {
    hs_err none = {0};
    json_t *direct = client_account_data_get(c, user_id, NULL, "m.direct", &none);
    if (!direct) return none.status == 404 ? 0 : (*err = none, -1);
    bool changed = false;
    const char *k;
    json_t *list;
    json_object_foreach(direct, k, list) {
        if (!json_is_array(list)) continue;
        bool has_old = false, has_new = false;
        size_t i;
        json_t *id;
        json_array_foreach(list, i, id) {
            has_old |= json_is_string(id) && !strcmp(json_string_value(id), old_room);
            has_new |= json_is_string(id) && !strcmp(json_string_value(id), new_room);
        }
        if (has_old && !has_new) json_array_append_new(list, json_string(new_room)), changed = true;
    }
    int rc = changed ? client_account_data_put(srv, user_id, NULL, "m.direct", direct, err) : 0;
    json_decref(direct);
    return rc;
}

/* The user's tags of the old room, each set on the new one. */
static int follow_tags(hs_server *srv, db_conn *c, const char *user_id, const char *old_room,
                       const char *new_room, hs_err *err) {
    hs_err none = {0};
    json_t *v = client_account_data_get(c, user_id, old_room, "m.tag", &none);
    if (!v) return none.status == 404 ? 0 : (*err = none, -1);
    int rc = 0;
    const char *tag;
    json_t *content;
    json_t *tags = json_object_get(v, "tags");
    json_object_foreach(tags, tag, content) {
        if (!json_is_object(content)) continue;
        char *text = json_dumps(content, JSON_COMPACT);
        if (!text || client_tag_set(srv, user_id, new_room, tag, text, err) < 0) rc = -1;
        free(text);
        if (rc < 0) break;
    }
    json_decref(v);
    return rc;
}

int client_upgrade_follow_join(hs_server *srv, const char *room_id, const char *user_id,
                               hs_err *err) {
    /* The predecessor, when this join is the user's first in the room (a
     * later one finds things as the user left them), and whether the old
     * room's tombstone names this room. */
    static db_stmt q = DB_STMT(
        "SELECT p.old, EXISTS (SELECT 1 FROM current_state t JOIN events te USING (event_id)"
        "  WHERE t.room_id = p.old AND t.type = 'm.room.tombstone' AND t.state_key = ''"
        "  AND convert_from(te.json, 'UTF8')::json->'content'->>'replacement_room' = $1)"
        " FROM (SELECT convert_from(e.json, 'UTF8')::json->'content'->'predecessor'->>'room_id'"
        "  AS old FROM current_state cs JOIN events e USING (event_id)"
        "  WHERE cs.room_id = $1 AND cs.type = 'm.room.create' AND cs.state_key = ''"
        "  AND (SELECT count(*) FROM events m WHERE m.room_id = $1 AND m.type = 'm.room.member'"
        "   AND m.state_key = $2 AND NOT m.outlier"
        "   AND convert_from(m.json, 'UTF8')::json->'content'->>'membership' = 'join') <= 1) p"
        " WHERE p.old IS NOT NULL");
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, user_id}, err);
    if (!r) return db_release(srv->db, c), -1;
    char *old = PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    bool tombstoned = PQntuples(r) && PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    int rc = 0;
    if (old) {
        rc = follow_direct(srv, c, user_id, old, room_id, err);
        if (rc == 0) rc = follow_tags(srv, c, user_id, old, room_id, err);
    }
    db_release(srv->db, c);
    if (old && rc == 0) rc = client_push_rules_copy_room(srv, user_id, old, room_id, err);
    if (old && rc == 0 && tombstoned) {
        listing_job j = {old, room_id};
        rc = db_txn(srv->db, listing_txn, &j, err);
    }
    free(old);
    return rc;
}
