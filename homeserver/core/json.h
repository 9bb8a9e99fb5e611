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
 * Returns a new reference or NULL with err filled. */
json_t *hs_json_parse(const char *buf, size_t len, hs_err *err);

/* Encode v as canonical JSON. Returns a malloc'd NUL-terminated string (the
 * caller frees it) and its length in *len (may be NULL). Floats and integers
 * outside ±(2^53−1) give NULL with 400 M_BAD_JSON in err. */
char *hs_json_canonical(const json_t *v, size_t *len, hs_err *err);

#endif
