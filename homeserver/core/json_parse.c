/* json_parse.c — turning untrusted bytes into jansson values.
 *
 * jansson does the parsing; this file chooses its flags and sorts its errors
 * into the two Matrix errcodes a client can act on: M_NOT_JSON when the bytes
 * are not JSON text at all, M_BAD_JSON when they are JSON that breaks one of
 * our rules (duplicate keys, numbers too large to hold, nesting too deep). */
#include "json.h"

#include <stdbool.h>
#include <string.h>

/* Duplicate keys are rejected because two parsers that keep different copies
 * of a duplicated key would disagree about what was signed. NUL is allowed in
 * strings (it is valid JSON and canonical JSON escapes it); scalars at the top
 * level are allowed so that callers decide what shape they need. */
#define PARSE_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY)

/* jansson files lone UTF-16 surrogates (\ud800) under invalid_syntax. They
 * are well-formed JSON grammar but not Unicode text, so they are a rule
 * violation rather than "not JSON"; its message is the only way to tell. */
static bool is_bad_unicode_escape(const json_error_t *je) {
    return strncmp(je->text, "invalid Unicode", 15) == 0;
}

static void classify(const json_error_t *je, hs_err *err) {
    switch (json_error_code(je)) {
    case json_error_out_of_memory:
        hs_err_set(err, 500, "M_UNKNOWN", "Out of memory parsing JSON");
        return;
    case json_error_stack_overflow:
    case json_error_null_byte_in_key:
    case json_error_duplicate_key:
    case json_error_numeric_overflow:
        hs_err_set(err, 400, "M_BAD_JSON", "Bad JSON: %s at byte %d", je->text,
                   je->position);
        return;
    case json_error_invalid_syntax:
        if (is_bad_unicode_escape(je)) {
            hs_err_set(err, 400, "M_BAD_JSON", "Bad JSON: %s at byte %d", je->text,
                       je->position);
            return;
        }
        break;
    default:
        break;
    }
    /* invalid_utf8, premature_end_of_input, end_of_input_expected (trailing
     * garbage), invalid_syntax (including NaN, Infinity, a BOM): not JSON. */
    hs_err_set(err, 400, "M_NOT_JSON", "Content not JSON: %s at byte %d", je->text,
               je->position);
}

json_t *hs_json_parse(const char *buf, size_t len, hs_err *err) {
    if (!buf || len == 0) {
        hs_err_set(err, 400, "M_NOT_JSON", "Content not JSON: empty body");
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(buf, len, PARSE_FLAGS, &je);
    if (!v) classify(&je, err);
    return v;
}

json_t *hs_json_parse_object(const char *buf, size_t len, hs_err *err) {
    json_t *v = hs_json_parse(buf, len, err);
    if (v && !json_is_object(v)) {
        json_decref(v);
        hs_err_set(err, 400, "M_BAD_JSON", "Content must be a JSON object");
        return NULL;
    }
    return v;
}
