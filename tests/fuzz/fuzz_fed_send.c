/* fuzz_fed_send.c — libFuzzer target: untrusted PUT /send bodies through the
 * transaction parser (fed_txn_parse), then what the handler does with the
 * parts before any database is touched: each PDU parsed as an event of the
 * room versions most rooms have (its event ID computed), the PDU list
 * stripped as invite/knock state is for clients, each EDU's content judged
 * as a server ACL; and the input as a request target through the repeated
 * query parameter parser. A transaction that parses must respect the
 * spec's limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "federation/rooms_internal.h"
#include "homeserver/core/json.h"

static void pdus(const json_t *list) {
    static const char *const versions[] = {"1", "4", "10", "12"};
    size_t i;
    json_t *pdu;
    json_array_foreach(list, i, pdu) {
        for (size_t k = 0; k < sizeof versions / sizeof *versions; k++) {
            hs_err err;
            room_event *ev = room_event_parse(room_version_get(versions[k]), pdu, &err);
            if (ev && (!ev->event_id || ev->event_id[0] != '$')) abort();
            room_event_free(ev);
        }
    }
    json_t *stripped = fed_strip_for_clients(list);
    if (json_array_size(stripped) > json_array_size(list)) abort();
    json_decref(stripped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hs_err err;
    json_t *body = hs_json_parse_object((const char *)data, size, &err);
    const json_t *p = NULL, *e = NULL;
    if (body && fed_txn_parse(body, "origin.example", &p, &e, &err) == 0) {
        if (json_array_size(p) > FED_TXN_MAX_PDUS || json_array_size(e) > FED_TXN_MAX_EDUS) abort();
        pdus(p);
        size_t i;
        json_t *edu;
        json_array_foreach(e, i, edu)
            room_acl_content_allows(json_object_get(edu, "content"), "origin.example:8448");
    }
    json_decref(body);
    char *uri = malloc(size + 2);
    if (!uri) return 0;
    uri[0] = '?';
    memcpy(uri + 1, data, size);
    uri[size + 1] = 0;
    char *vals[8];
    size_t n = fed_query_values(uri, "v", vals, 8);
    for (size_t k = 0; k < n; k++)
        if (strlen(vals[k]) > size) abort();
    fed_strv_free(vals, n);
    free(uri);
    return 0;
}
