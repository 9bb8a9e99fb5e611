/* jsonb.h — client JSON into and out of PostgreSQL jsonb columns.
 *
 * Account data, filters and receipts keep what clients send as jsonb. jsonb
 * refuses U+0000 inside strings, which JSON (and our parser) allow, so such a
 * value is refused up front with 400 M_BAD_JSON instead of failing the
 * INSERT with a 500. */
#ifndef CLIENT_JSONB_H
#define CLIENT_JSONB_H

#include <jansson.h>

#include "homeserver/core/err.h"

/* v as compact JSON text for a jsonb parameter (malloc'd), or NULL with
 * 400 M_BAD_JSON when a string holds U+0000. */
char *client_jsonb_dump(const json_t *v, hs_err *err);

/* A jsonb column's text back as a value (new reference); NULL only if the
 * text is not JSON, which PostgreSQL never returns. */
json_t *client_jsonb_load(const char *text);

#endif
