/* base64.c — Matrix's unpadded base64, on top of libsodium's codec.
 *
 * libsodium's base64 functions are pure table code that does not depend on
 * sodium_init() (which only picks crypto implementations and seeds the RNG),
 * so nothing here initialises libsodium.
 *
 * libsodium's decoder is stricter than the rest of Matrix: it refuses a final
 * character whose unused low bits are not zero. Python's decoder (Synapse,
 * signedjson) ignores those bits, and the spec's own test-vector seed
 * "...XA1" has them set, so decoding clears them in the last character before
 * handing it to libsodium. Everything else libsodium checks stays checked. */
#include "base64.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

char *hs_b64_encode(const unsigned char *in, size_t len, bool urlsafe) {
    int variant = urlsafe ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
                          : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    if (len > (SIZE_MAX - 4) / 4 * 3) return NULL; /* the length below would overflow */
    size_t cap = sodium_base64_ENCODED_LEN(len, variant); /* includes the NUL */
    char *out = malloc(cap);
    if (!out) return NULL;
    if (len == 0) {
        out[0] = '\0';
        return out;
    }
    sodium_bin2base64(out, cap, in, len, variant);
    return out;
}

/* Padding is accepted only where RFC 4648 would put it: one or two '=' that
 * bring the length to a multiple of four. */
static int strip_padding(const char *in, size_t *inlen) {
    size_t n = *inlen, pad = 0;
    while (n > 0 && in[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && *inlen % 4 != 0) return -1;
    *inlen = n;
    return 0;
}

/* Decode a final group of 2 or 3 characters after zeroing the bits of its
 * last character that hold no data (4 of 6 bits after 2 chars, 2 after 3). */
static int decode_tail(const char *in, size_t n, unsigned char *out, size_t outmax,
                       size_t *outlen, int variant) {
    const char *alphabet = variant == sodium_base64_VARIANT_URLSAFE_NO_PADDING
                               ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                               : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char tail[3];
    memcpy(tail, in, n);
    const char *pos = tail[n - 1] ? strchr(alphabet, tail[n - 1]) : NULL;
    if (!pos) return -1;
    int mask = n == 2 ? 0x30 : 0x3c;
    tail[n - 1] = alphabet[(pos - alphabet) & mask];
    return sodium_base642bin(out, outmax, tail, n, NULL, outlen, NULL, variant);
}

int hs_b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outmax,
                  size_t *outlen, bool urlsafe) {
    int variant = urlsafe ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
                          : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    if (outlen) *outlen = 0;
    if (!in && inlen) return -1;
    if (strip_padding(in, &inlen)) return -1;
    /* Whole groups of four go to libsodium as they are; b64_end NULL makes it
     * fail unless it consumed every character, and when out is too small. */
    size_t whole = inlen / 4 * 4, tail = inlen - whole, n = 0, m = 0;
    if (tail == 1) return -1; /* one character cannot hold a byte */
    if (whole && sodium_base642bin(out, outmax, in, whole, NULL, &n, NULL, variant) != 0)
        return -1;
    if (tail && decode_tail(in + whole, tail, out + n, outmax - n, &m, variant) != 0)
        return -1;
    if (outlen) *outlen = n + m;
    return 0;
}
