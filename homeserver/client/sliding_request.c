/* sliding_request.c — the pure parts of a sliding sync request: its pos,
 * the shape of its body, and whether a room's required_state widened.
 * Unit-tested (tests/unit/test_client_sliding.c). */
#include <stdlib.h>
#include <string.h>

#include "sliding_sync.h"

bool ss_pos_parse(const char *pos, long long *seq, sync_token *t) {
    const char *slash = strchr(pos, '/');
    if (!slash) return false;
    char *end = NULL;
    long long n = strtoll(pos, &end, 10);
    if (end != slash || slash == pos || n < 0 || n > (1LL << 52)) return false;
    *seq = n;
    return sync_token_parse(slash + 1, t);
}

static bool pair_of_strings(const json_t *p) {
    return json_is_array(p) && json_array_size(p) == 2 && json_is_string(json_array_get(p, 0)) &&
           json_is_string(json_array_get(p, 1));
}

static bool pair_of_counts(const json_t *p) {
    return json_is_array(p) && json_array_size(p) == 2 && json_is_integer(json_array_get(p, 0)) &&
           json_is_integer(json_array_get(p, 1)) && json_integer_value(json_array_get(p, 0)) >= 0 &&
           json_integer_value(json_array_get(p, 1)) >= json_integer_value(json_array_get(p, 0));
}

static bool all(const json_t *arr, bool (*ok)(const json_t *)) {
    size_t i;
    json_t *v;
    if (!json_is_array(arr)) return false;
    json_array_foreach(arr, i, v) if (!ok(v)) return false;
    return true;
}

/* A list's or subscription's common part (Synapse: CommonRoomParameters;
 * both keys optional here, as Synapse's predecessor proxy had them). */
static const char *room_params_error(const json_t *cfg) {
    const json_t *rs = json_object_get(cfg, "required_state"), *tl = json_object_get(cfg, "timeline_limit");
    if (!json_is_object(cfg)) return "must be an object";
    if (rs && !all(rs, pair_of_strings)) return "required_state must be an array of [type, state_key]";
    if (tl && (!json_is_integer(tl) || json_integer_value(tl) < 0))
        return "timeline_limit must be a non-negative integer";
    return NULL;
}

int ss_request_check(const json_t *body, hs_err *err) {
    const json_t *lists = json_object_get(body, "lists"), *subs = json_object_get(body, "room_subscriptions");
    const json_t *cid = json_object_get(body, "conn_id"), *cfg;
    const char *name, *why;
    if ((lists && !json_is_object(lists)) || (subs && !json_is_object(subs)))
        return hs_err_set(err, 400, "M_BAD_JSON", "lists and room_subscriptions must be objects");
    if (cid && !json_is_string(cid)) return hs_err_set(err, 400, "M_BAD_JSON", "conn_id must be a string");
    json_object_foreach((json_t *)lists, name, cfg) {
        if ((why = room_params_error(cfg))) return hs_err_set(err, 400, "M_BAD_JSON", "lists.%s: %s", name, why);
        const json_t *ranges = json_object_get(cfg, "ranges"), *filters = json_object_get(cfg, "filters");
        if (ranges && !all(ranges, pair_of_counts))
            return hs_err_set(err, 400, "M_BAD_JSON", "lists.%s: ranges must be [[start, end], …], 0 <= start <= end",
                              name);
        if (filters && !json_is_object(filters))
            return hs_err_set(err, 400, "M_BAD_JSON", "lists.%s: filters must be an object", name);
    }
    json_object_foreach((json_t *)subs, name, cfg) if ((why = room_params_error(cfg)))
        return hs_err_set(err, 400, "M_BAD_JSON", "room_subscriptions.%s: %s", name, why);
    const json_t *ext = json_object_get(body, "extensions");
    if (ext && !json_is_object(ext)) return hs_err_set(err, 400, "M_BAD_JSON", "extensions must be an object");
    return 0;
}

bool ss_required_state_widened(const json_t *before, const json_t *now) {
    size_t i, j;
    json_t *p, *o;
    json_array_foreach(now, i, p) {
        bool had = false;
        json_array_foreach(before, j, o) if (json_equal(p, o)) {
            had = true;
            break;
        }
        if (!had) return true;
    }
    return false;
}
