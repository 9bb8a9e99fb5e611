/* base64.h — the unpadded base64 Matrix uses (libsodium underneath).
 * Standard alphabet for keys, signatures and hashes; URL-safe for event IDs of
 * room versions 4 and later. */
#ifndef HS_BASE64_H
#define HS_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Encode len bytes without padding. Returns a malloc'd string (caller frees). */
char *hs_b64_encode(const unsigned char *in, size_t len, bool urlsafe);

/* Decode inlen characters, accepting padded or unpadded input of the given
 * alphabet. Writes at most outmax bytes to out and their count to *outlen.
 * Returns 0, or -1 on invalid input or a too small buffer. Like Python's
 * decoder (and so Synapse), it ignores set bits after the last byte: "Zh"
 * decodes as "Zg" does, and the spec's test-vector seed needs that. */
int hs_b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outmax,
                  size_t *outlen, bool urlsafe);

#endif
