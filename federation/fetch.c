/* fetch.c — one event from another server (GET /event/{eventId}), checked
 * as any received PDU is and held to be the event and the room we asked
 * for: a server answering with another event gets nothing stored. */
#include <stdlib.h>
#include <string.h>

#include "rooms_internal.h"

room_event *fed_fetch_event(hs_server *srv, const char *dest, const room_version *v,
                            const char *room_id, const char *event_id, hs_err *err) {
    char *path = fed_path2("/_matrix/federation/v1/event", event_id, NULL);
    if (!path) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory"), NULL;
    long status;
    json_t *resp = NULL;
    fed_request_opts o = {.timeout_ms = 30000, .max_response = 1024 * 1024};
    int rc = fed_request_ex(srv, dest, "GET", path, NULL, &o, &status, &resp, err);
    free(path);
    if (rc < 0) return json_decref(resp), NULL;
    json_t *pdus = json_object_get(resp, "pdus");
    room_event *ev = NULL;
    if (json_array_size(pdus) != 1) {
        hs_err_set(err, 502, "M_UNKNOWN", "%s answered /event/%s without one PDU", dest, event_id);
    } else if ((ev = fed_event_verify(srv, v, json_array_get(pdus, 0), err)) &&
               (strcmp(ev->event_id, event_id) != 0 || strcmp(ev->room_id, room_id) != 0)) {
        hs_err_set(err, 502, "M_UNKNOWN", "%s answered /event/%s with %s of %s", dest, event_id,
                   ev->event_id, ev->room_id);
        room_event_free(ev);
        ev = NULL;
    }
    json_decref(resp);
    return ev;
}
