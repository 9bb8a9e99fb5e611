/* device_list_resync.c — inbound m.device_list_update EDUs, in order (spec
 * "Device management"): each carries the sender's stream_id for the change
 * and, in prev_id, the updates it follows. An update that follows the last
 * one we applied for the user is applied; one we have already seen is
 * dropped; otherwise we missed something (or never had the list: a user we
 * just came to share a room with, an update with no prev_id) and the whole
 * list is fetched again with GET /_matrix/federation/v1/user/devices/{userId},
 * whose stream_id we continue from. Synapse decides the same way
 * (_need_to_do_resync). When that fetch fails, an update of a list we
 * follow is applied as it came, and the list is fetched on the next
 * update; one of a list we never had is dropped, as Synapse drops it: we
 * hold nothing to apply it to (/keys/query keeps asking its server), and
 * telling our users of a change we cannot show them would only make them
 * ask again.
 *
 * Only users we share a room with are followed; the others' updates are not
 * for us. While we follow a user, /keys/query answers for them from what we
 * hold (homeserver/client/keys.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/e2ee_remote.h"
#include "homeserver/core/log.h"
#include "rooms_internal.h"

#define RESYNC_TIMEOUT_MS 10000L

/* Does this update follow stream_id `known` directly? */
static bool follows(const json_t *prev_id, long long known) {
    if (!json_is_array(prev_id) || !json_array_size(prev_id)) return false;
    size_t i;
    json_t *p;
    json_array_foreach(prev_id, i, p) if (!json_is_integer(p) || json_integer_value(p) != known)
        return false;
    return true;
}

static int resync(hs_server *srv, const char *origin, const char *user_id, hs_err *err) {
    char *u = fed_escape(user_id), *path = NULL;
    if (!u || asprintf(&path, "/_matrix/federation/v1/user/devices/%s", u) < 0) path = NULL;
    free(u);
    if (!path) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    fed_request_opts o = {.timeout_ms = RESYNC_TIMEOUT_MS, .max_response = 4 * 1024 * 1024};
    long status = 0;
    json_t *resp = NULL;
    int rc = fed_request_ex(srv, origin, "GET", path, NULL, &o, &status, &resp, err);
    free(path);
    const char *about = json_string_value(json_object_get(resp, "user_id"));
    if (rc == 0 && (!about || strcmp(about, user_id)))
        rc = hs_err_set(err, 502, "M_UNKNOWN", "%s answered about another user", origin);
    if (rc == 0) rc = client_e2ee_remote_devices_resynced(srv, user_id, resp, err);
    if (rc == 0)
        hs_info("federation: device list of %s fetched again from %s (stream_id %lld)", user_id,
                origin, (long long)json_integer_value(json_object_get(resp, "stream_id")));
    json_decref(resp);
    return rc;
}

int fed_device_list_update(hs_server *srv, const char *origin, const json_t *content,
                           hs_err *err) {
    const char *user_id = json_string_value(json_object_get(content, "user_id"));
    const json_t *sid = json_object_get(content, "stream_id");
    if (!fed_user_of(user_id, origin) || !json_is_integer(sid))
        return client_e2ee_remote_device_update(srv, origin, content, err);
    long long known = 0, stream_id = json_integer_value(sid);
    int state = client_e2ee_remote_device_state(srv, user_id, &known, err);
    if (state < 0) return -1;
    if (state == 0) return 0; /* no room in common: not ours to follow */
    if (state == 2 && stream_id <= known) return 0; /* seen already */
    if (state == 2 && follows(json_object_get(content, "prev_id"), known)) {
        if (client_e2ee_remote_device_update(srv, origin, content, err) < 0) return -1;
        return client_e2ee_remote_device_stream(srv, user_id, stream_id, err);
    }
    hs_err e = {0};
    if (resync(srv, origin, user_id, &e) == 0) return 0;
    hs_info("federation: device list of %s not fetched from %s: %s", user_id, origin, e.msg);
    if (state != 2) return 0;
    return client_e2ee_remote_device_update(srv, origin, content, err);
}
