/* json.h — parsing untrusted JSON and writing canonical JSON.
 *
 * Canonical JSON is the spec appendix's: object keys sorted by Unicode code
 * point, no insignificant whitespace, UTF-8 unescaped, the shortest escapes
 * ("\\", "\"", \b \f \n \r \t, other controls as \u00XX with lowercase hex),
 * integers only within ±(2^53−1), no floats. Signatures and hashes depend on
 * every byte of it, so it is checked byte for byte against python3-canonicaljson. */
#ifndef HS_JSON_H
#define HS_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

#define HS_JSON_MAX_SAFE_INT 9007199254740991LL /* 2^53 - 1 */

/* Parse a request or event body. Rejects invalid UTF-8, duplicate object keys,
 * NaN/Infinity and trailing garbage. Bytes that are not JSON at all give
 * 400 M_NOT_JSON; JSON that breaks a rule above gives 400 M_BAD_JSON.
 * Returns a new reference or NULL with err filled.
 *
 * Precisely: empty input, bad syntax, invalid UTF-8, NaN/Infinity, a BOM and
 * trailing garbage are M_NOT_JSON; duplicate keys, numbers jansson cannot hold
 * (integers beyond int64, reals beyond double), lone UTF-16 surrogate escapes,
 * U+0000 in an object key (jansson cannot store it) and nesting deeper than
 * 2048 are M_BAD_JSON. U+0000 in strings is accepted; any top-level value is
 * accepted (see hs_json_parse_object); integers beyond ±(2^53−1) are accepted
 * here and refused by hs_json_canonical. */
json_t *hs_json_parse(const char *buf, size_t len, hs_err *err);

/* hs_json_parse, then require an object (what request bodies and events are):
 * anything else gives 400 M_BAD_JSON. */
json_t *hs_json_parse_object(const char *buf, size_t len, hs_err *err);

/* Encode v as canonical JSON. Returns a malloc'd NUL-terminated string (the
 * caller frees it) and its length in *len (may be NULL). Floats and integers
 * outside ±(2^53−1) give NULL with 400 M_BAD_JSON in err.
 *
 * "Floats" means numbers with a fractional part (and NaN/Inf): a jansson real
 * whose value is a whole number within ±(2^53−1), such as 1e10 or -0.0, is
 * written as that integer, as the spec appendix's example demands
 * ({"a":-0,"b":1e10} -> {"a":0,"b":10000000000}). Strings may contain U+0000.
 * Nesting deeper than HS_JSON_MAX_DEPTH gives 400 M_BAD_JSON (this also stops
 * a cyclic value built by hand). */
char *hs_json_canonical(const json_t *v, size_t *len, hs_err *err);

#define HS_JSON_MAX_DEPTH 4096

/* Flags for hs_json_canonical_ex. */
enum {
    /* Accept every integer jansson holds (int64): events of room versions 1-5
     * may carry integers outside ±(2^53−1), and the spec asks servers to cope. */
    HS_JSON_CANON_ANY_INT = 1u << 0,
};

/* hs_json_canonical with options: when v is an object, its top-level members
 * named in skip (a NULL-terminated list, or NULL) are left out, which is what
 * signing ("signatures", "unsigned") and hashing need without copying v. */
char *hs_json_canonical_ex(const json_t *v, const char *const *skip, unsigned flags,
                           size_t *len, hs_err *err);

#endif
