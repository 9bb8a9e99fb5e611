/* fed_outbound.c — the hooks of fed_outbound.h: installed once by
 * federation before the first request, read by every request after. */
#include "fed_outbound.h"

#include <stdatomic.h>

static _Atomic(const client_fed_outbound *) hooks;

void client_fed_set_outbound(const client_fed_outbound *o) { atomic_store(&hooks, o); }

static const client_fed_outbound *get(void) { return atomic_load(&hooks); }

void client_fed_event_committed(hs_server *srv, const room_event *ev) {
    const client_fed_outbound *o = get();
    if (o && o->event_committed) o->event_committed(srv, ev);
}

void client_fed_typing(hs_server *srv, const char *room_id, const char *user_id, bool typing) {
    const client_fed_outbound *o = get();
    if (o && o->typing) o->typing(srv, room_id, user_id, typing);
}

static int unreachable(hs_err *err) {
    return hs_err_set(err, 502, "M_UNKNOWN", "this server cannot reach other servers");
}

int client_fed_profile(hs_server *srv, const char *user_id, const char *field, json_t **out,
                       hs_err *err) {
    const client_fed_outbound *o = get();
    *out = NULL;
    return o && o->profile ? o->profile(srv, user_id, field, out, err) : unreachable(err);
}

/* Without federation every server asked is a failure, as the spec's
 * `failures` map describes an unreachable server. */
static void fail_all(const json_t *by_server, json_t *failures) {
    const char *server;
    json_t *v;
    json_object_foreach((json_t *)by_server, server, v)
        json_object_set_new(failures, server,
                            json_pack("{s:i, s:s}", "status", 503, "message",
                                      "this server cannot reach other servers"));
}

void client_fed_keys_query(hs_server *srv, const json_t *by_server, long timeout_ms,
                           json_t *device_keys, json_t *master_keys, json_t *self_signing_keys,
                           json_t *failures) {
    const client_fed_outbound *o = get();
    if (o && o->keys_query)
        o->keys_query(srv, by_server, timeout_ms, device_keys, master_keys, self_signing_keys,
                      failures);
    else fail_all(by_server, failures);
}

void client_fed_keys_claim(hs_server *srv, const json_t *by_server, long timeout_ms,
                           json_t *one_time_keys, json_t *failures) {
    const client_fed_outbound *o = get();
    if (o && o->keys_claim) o->keys_claim(srv, by_server, timeout_ms, one_time_keys, failures);
    else fail_all(by_server, failures);
}
