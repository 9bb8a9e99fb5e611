/* fuzz_json.c — libFuzzer target: untrusted bytes through the request-body
 * parser and, when they parse, the canonical writer; canonical output must
 * parse again to the same canonical bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hs_err err;
    json_t *v = hs_json_parse((const char *)data, size, &err);
    if (!v) return 0;
    size_t n;
    char *c = hs_json_canonical(v, &n, &err);
    if (c) {
        json_t *again = hs_json_parse(c, n, &err);
        if (!again) abort(); /* canonical JSON we wrote must parse */
        size_t m;
        char *c2 = hs_json_canonical(again, &m, &err);
        if (!c2 || m != n || memcmp(c, c2, n) != 0) abort(); /* and be a fixed point */
        free(c2);
        json_decref(again);
        free(c);
    }
    json_decref(v);
    return 0;
}
