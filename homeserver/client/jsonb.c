/* jsonb.c — client JSON to and from jsonb text. */
#include "jsonb.h"

#include <stdbool.h>
#include <string.h>

static bool has_nul(const json_t *v, int depth) {
    if (depth > 4096) return true; /* deeper than our parser ever builds */
    const char *k;
    size_t i;
    json_t *x;
    switch (json_typeof(v)) {
    case JSON_STRING: return memchr(json_string_value(v), 0, json_string_length(v)) != NULL;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, k, x)
            if (has_nul(x, depth + 1)) return true;
        return false;
    case JSON_ARRAY:
        json_array_foreach(v, i, x)
            if (has_nul(x, depth + 1)) return true;
        return false;
    default: return false;
    }
}

char *client_jsonb_dump(const json_t *v, hs_err *err) {
    if (has_nul(v, 0)) {
        hs_err_set(err, 400, "M_BAD_JSON", "strings may not contain U+0000");
        return NULL;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) hs_err_set(err, 500, "M_UNKNOWN", "out of memory encoding JSON");
    return s;
}

json_t *client_jsonb_load(const char *text) {
    return json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}
