/* sender_edus.c — EDUs for other servers, read from the streams local
 * changes are written to:
 *
 *   receipts      m.receipt for our users' public read receipts, to the
 *                 servers in the room
 *   presence      m.presence for our users, to the servers sharing a room
 *                 with them (nothing when presence is disabled)
 *   device lists  m.device_list_update for our users' devices (keys added,
 *                 changed, signed, or the device deleted) and
 *                 m.signing_key_update for their master and self-signing
 *                 keys, to the servers sharing a room with them
 *
 * Typing lives in memory (sender.c) and to-device messages are queued by
 * the E2EE code itself. Device display names go into device list updates
 * only with allow_device_name_lookup_over_federation (off by default, as in
 * Synapse): they often name the person's phone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/jsonb.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "sender_internal.h"

static void range(long long from, long long to, char f[24], char t[24]) {
    snprintf(f, 24, "%lld", from);
    snprintf(t, 24, "%lld", to);
}

/* ---- receipts ---------------------------------------------------------------- */

int fed_edus_receipts(db_conn *c, hs_server *srv, long long from, long long to, json_t *woken,
                      hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT room_id, user_id, thread_id, event_id, data::text FROM receipts"
        " WHERE stream_id > $1 AND stream_id <= $2 AND receipt_type = 'm.read'"
        " AND substr(user_id, strpos(user_id, ':') + 1) = $3 ORDER BY stream_id");
    char f[24], t[24];
    range(from, to, f, t);
    PGresult *r = db_run(c, &q, 3, (const char *[]){f, t, srv->cfg->server_name}, err);
    if (!r) return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *room = PQgetvalue(r, i, 0), *user = PQgetvalue(r, i, 1);
        json_t *dests = json_object();
        if ((rc = fed_room_hosts(c, srv, room, dests, err)) < 0 || !json_object_size(dests)) {
            json_decref(dests);
            continue;
        }
        json_t *data = client_jsonb_load(PQgetvalue(r, i, 4));
        if (!json_is_object(data)) json_decref(data), data = json_object();
        json_t *content = json_pack("{s:{s:{s:{s:[s], s:o}}}}", room, "m.read", user, "event_ids",
                                    PQgetvalue(r, i, 3), "data", data);
        /* A newer receipt of the user in that room (and thread) replaces an
         * unsent one. */
        char *key = NULL;
        if (asprintf(&key, "m.receipt %s %s %s", room, user, PQgetvalue(r, i, 2)) < 0) key = NULL;
        rc = key ? fed_queue_edu(c, dests, "m.receipt", content, key, err) : -1;
        if (rc == 0) json_object_update(woken, dests);
        free(key);
        json_decref(content);
        json_decref(dests);
    }
    PQclear(r);
    return rc;
}

/* ---- presence ------------------------------------------------------------------ */

int fed_edus_presence(db_conn *c, hs_server *srv, long long from, long long to, json_t *woken,
                      hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT user_id, state, status_msg, last_active_ts, currently_active FROM presence"
        " WHERE stream_id > $1 AND stream_id <= $2"
        " AND substr(user_id, strpos(user_id, ':') + 1) = $3 ORDER BY stream_id");
    if (!srv->cfg->presence_enabled) return 0;
    char f[24], t[24];
    range(from, to, f, t);
    PGresult *r = db_run(c, &q, 3, (const char *[]){f, t, srv->cfg->server_name}, err);
    if (!r) return -1;
    int rc = 0;
    long long now = hs_now_ms();
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *user = PQgetvalue(r, i, 0);
        json_t *dests = json_object();
        if ((rc = fed_user_hosts(c, srv, user, dests, err)) < 0 || !json_object_size(dests)) {
            json_decref(dests);
            continue;
        }
        long long last = atoll(PQgetvalue(r, i, 3));
        json_t *p = json_pack("{s:s, s:s, s:I, s:b}", "user_id", user, "presence",
                              PQgetvalue(r, i, 1), "last_active_ago",
                              (json_int_t)(last && now > last ? now - last : 0),
                              "currently_active", PQgetvalue(r, i, 4)[0] == 't');
        if (!PQgetisnull(r, i, 2))
            json_object_set_new(p, "status_msg", json_string(PQgetvalue(r, i, 2)));
        json_t *content = json_pack("{s:[o]}", "push", p);
        char *key = NULL;
        if (asprintf(&key, "m.presence %s", user) < 0) key = NULL;
        rc = key ? fed_queue_edu(c, dests, "m.presence", content, key, err) : -1;
        if (rc == 0) json_object_update(woken, dests);
        free(key);
        json_decref(content);
        json_decref(dests);
    }
    PQclear(r);
    return rc;
}

/* ---- device lists -------------------------------------------------------------------- */

/* The owner's own cross-signatures on target (a device or a key), merged
 * into obj's "signatures" as /keys/query shows them. */
static int merge_own_signatures(db_conn *c, const char *user, const char *target, json_t *obj,
                                hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT signer_key_id, signature FROM e2e_cross_signing_signatures"
        " WHERE target_user_id = $1 AND target_key_id = $2 AND signer_user_id = $1");
    PGresult *r = db_run(c, &q, 2, (const char *[]){user, target}, err);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *sigs = json_object_get(obj, "signatures");
        if (!json_is_object(sigs)) json_object_set_new(obj, "signatures", sigs = json_object());
        json_t *by = json_object_get(sigs, user);
        if (!json_is_object(by)) json_object_set_new(sigs, user, by = json_object());
        json_object_set_new(by, PQgetvalue(r, i, 0), json_string(PQgetvalue(r, i, 1)));
    }
    PQclear(r);
    return 0;
}

/* The user's cross-signing key of that type whose public key is pk: 1 (and
 * *keytype), 0 when pk is not one. */
static int cs_key_type(db_conn *c, const char *user, const char *pk, char *keytype, size_t cap,
                       hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT keytype FROM e2e_cross_signing_keys WHERE user_id = $1 AND public_key = $2");
    PGresult *r = db_run(c, &q, 2, (const char *[]){user, pk}, err);
    if (!r) return -1;
    int found = PQntuples(r) > 0;
    if (found) snprintf(keytype, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return found;
}

/* m.signing_key_update: the user's current master and self-signing keys. */
static json_t *signing_key_update(db_conn *c, const char *user, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT keytype, key_json, public_key FROM e2e_cross_signing_keys WHERE user_id = $1"
        " AND keytype IN ('master', 'self_signing')");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user}, err);
    if (!r) return NULL;
    json_t *content = json_pack("{s:s}", "user_id", user);
    for (int i = 0; i < PQntuples(r); i++) {
        hs_err perr;
        const char *text = PQgetvalue(r, i, 1);
        json_t *key = hs_json_parse_object(text, strlen(text), &perr);
        if (!key) continue;
        if (merge_own_signatures(c, user, PQgetvalue(r, i, 2), key, err) < 0) {
            json_decref(key), json_decref(content), PQclear(r);
            return NULL;
        }
        json_object_set_new(content, !strcmp(PQgetvalue(r, i, 0), "master") ? "master_key"
                                                                            : "self_signing_key",
                            key);
    }
    PQclear(r);
    return content;
}

/* m.device_list_update without prev_id (added per destination): the
 * device's keys as now stored, or deleted when the device is gone. Its
 * display name too when names may leave the server: the servers following
 * the list answer their clients' /keys/query from these updates, so a
 * rename only reaches them this way (Synapse's device_display_name). */
static json_t *device_update(db_conn *c, const hs_server *srv, const char *user,
                             const char *device, long long sid, hs_err *err) {
    static db_stmt dev =
        DB_STMT("SELECT display_name FROM devices WHERE user_id = $1 AND device_id = $2");
    static db_stmt keys = DB_STMT(
        "SELECT key_json FROM e2e_device_keys WHERE user_id = $1 AND device_id = $2");
    const char *p[] = {user, device};
    PGresult *r = db_run(c, &dev, 2, p, err);
    if (!r) return NULL;
    bool exists = PQntuples(r) > 0;
    json_t *content = json_pack("{s:s, s:s, s:I}", "user_id", user, "device_id", device,
                                "stream_id", (json_int_t)sid);
    /* An empty name is no name, as Synapse leaves it out. */
    if (exists && srv->cfg->allow_device_name_lookup_over_federation && !PQgetisnull(r, 0, 0) &&
        *PQgetvalue(r, 0, 0))
        json_object_set_new(content, "device_display_name", json_string(PQgetvalue(r, 0, 0)));
    PQclear(r);
    if (!exists) {
        json_object_set_new(content, "deleted", json_true());
        return content;
    }
    if (!(r = db_run(c, &keys, 2, p, err))) return json_decref(content), NULL;
    hs_err perr;
    json_t *k = PQntuples(r) ? hs_json_parse_object(PQgetvalue(r, 0, 0),
                                                    strlen(PQgetvalue(r, 0, 0)), &perr)
                             : NULL;
    PQclear(r);
    if (k && merge_own_signatures(c, user, device, k, err) < 0)
        return json_decref(k), json_decref(content), NULL;
    if (k) json_object_set_new(content, "keys", k);
    return content;
}

/* Queue a device list update for one destination, naming in prev_id the
 * last update that destination got for the user. */
static int queue_device_update(db_conn *c, const char *dest, const char *user,
                               const json_t *content, long long sid, hs_err *err) {
    static db_stmt get = DB_STMT(
        "SELECT stream_id, coalesce(prev_id, 0) FROM federation_device_list_sent"
        " WHERE destination = $1 AND user_id = $2");
    static db_stmt set = DB_STMT(
        "INSERT INTO federation_device_list_sent (destination, user_id, stream_id, prev_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (destination, user_id)"
        " DO UPDATE SET stream_id = $3, prev_id = $4");
    PGresult *r = db_run(c, &get, 2, (const char *[]){dest, user}, err);
    if (!r) return -1;
    long long last = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    long long last_prev = PQntuples(r) ? atoll(PQgetvalue(r, 0, 1)) : 0;
    PQclear(r);
    long long prev = fed_device_list_prev(sid, last, last_prev);
    json_t *edu = json_deep_copy(content);
    json_object_set_new(edu, "prev_id", prev ? json_pack("[I]", (json_int_t)prev) : json_array());
    json_t *one = json_pack("{s:b}", dest, 1);
    int rc = fed_queue_edu(c, one, "m.device_list_update", edu, NULL, err);
    json_decref(one), json_decref(edu);
    char s[24], pv[24];
    snprintf(s, sizeof s, "%lld", sid);
    snprintf(pv, sizeof pv, "%lld", prev);
    if (rc == 0 && db_exec(c, &set, 4, (const char *[]){dest, user, s, prev ? pv : NULL}, err) < 0)
        rc = -1;
    return rc;
}

/* One change row: a device (keys, signatures, deletion) or a cross-signing
 * key of the user, to `to` (NULL: every server sharing a room with the
 * user). The user-signing key is the user's business alone. */
static int device_list_change(db_conn *c, hs_server *srv, const char *user, const char *id,
                              long long sid, const json_t *to, json_t *woken, hs_err *err) {
    json_t *dests = to ? json_deep_copy(to) : json_object();
    if (!to && fed_user_hosts(c, srv, user, dests, err) < 0) return json_decref(dests), -1;
    if (!json_object_size(dests)) return json_decref(dests), 0;
    char keytype[32];
    int cs = cs_key_type(c, user, id, keytype, sizeof keytype, err);
    int rc = cs < 0 ? -1 : 0;
    if (cs > 0 && strcmp(keytype, "user_signing") != 0) {
        json_t *content = signing_key_update(c, user, err);
        char *key = NULL;
        if (content && asprintf(&key, "m.signing_key_update %s", user) < 0) key = NULL;
        rc = key ? fed_queue_edu(c, dests, "m.signing_key_update", content, key, err) : -1;
        free(key);
        json_decref(content);
    } else if (cs == 0) {
        json_t *content = device_update(c, srv, user, id, sid, err);
        const char *d;
        json_t *v;
        if (!content) rc = -1;
        json_object_foreach(dests, d, v) if (rc == 0) rc = queue_device_update(c, d, user, content,
                                                                              sid, err);
        json_decref(content);
    }
    if (rc == 0 && cs >= 0) json_object_update(woken, dests);
    json_decref(dests);
    return rc;
}

int fed_edus_device_lists(db_conn *c, hs_server *srv, long long from, long long to,
                          json_t *woken, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT stream_id, user_id, device_id FROM e2e_device_list_changes"
        " WHERE stream_id > $1 AND stream_id <= $2 AND origin = $3 AND only_for IS NULL"
        " AND device_id IS NOT NULL ORDER BY stream_id, user_id, device_id");
    char f[24], t[24];
    range(from, to, f, t);
    PGresult *r = db_run(c, &q, 3, (const char *[]){f, t, srv->cfg->server_name}, err);
    if (!r) return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = device_list_change(c, srv, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                                atoll(PQgetvalue(r, i, 0)), NULL, woken, err);
    PQclear(r);
    return rc;
}

int fed_edus_device_lists_replay(db_conn *c, hs_server *srv, const char *room_id, long long since,
                                 const json_t *dests, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT d.stream_id, d.user_id, d.device_id FROM e2e_device_list_changes d"
        " JOIN current_state m ON m.room_id = $2 AND m.type = 'm.room.member'"
        "  AND m.state_key = d.user_id AND m.membership = 'join'"
        " WHERE d.stream_id > $1 AND d.origin = $3 AND d.only_for IS NULL"
        " AND d.device_id IS NOT NULL ORDER BY 1, 2, 3");
    char f[24];
    snprintf(f, sizeof f, "%lld", since);
    PGresult *r = db_run(c, &q, 3, (const char *[]){f, room_id, srv->cfg->server_name}, err);
    if (!r) return -1;
    json_t *woken = json_object();
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = device_list_change(c, srv, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                                atoll(PQgetvalue(r, i, 0)), dests, woken, err);
    PQclear(r);
    json_decref(woken);
    return rc;
}
