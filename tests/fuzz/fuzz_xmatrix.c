/* fuzz_xmatrix.c — libFuzzer target: untrusted Authorization headers through
 * the X-Matrix parser (and, since they are as exposed, the well-known body
 * and SRV message parsers of discovery). A header that parses must yield
 * bounded, NUL-terminated fields and a request object we can canonicalise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "federation/transport_internal.h"
#include "homeserver/core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    fed_xmatrix x;
    hs_err err;
    if (fed_xmatrix_parse(s, &x, &err) == 0) {
        if (strlen(x.origin) >= sizeof x.origin || strlen(x.key) >= sizeof x.key ||
            strlen(x.sig) >= sizeof x.sig || !x.origin[0] || !hs_server_name_valid(x.origin))
            abort();
        json_t *o = fed_xmatrix_request_json("GET", "/_matrix/federation/v1/version", x.origin,
                                             x.has_destination ? x.destination : "me.example", NULL);
        char *c = o ? hs_json_canonical(o, NULL, &err) : NULL;
        if (o && !c) abort(); /* strings from a header are valid JSON strings */
        free(c);
        json_decref(o);
    }
    char out[300];
    fed_wellknown_parse((const char *)data, size, out, sizeof out);
    fed_srv_record recs[8];
    fed_srv_parse(data, (int)(size > 65535 ? 65535 : size), recs, 8);
    free(s);
    return 0;
}
