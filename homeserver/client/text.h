/* text.h — small text measures the account endpoints share. */
#ifndef CLIENT_TEXT_H
#define CLIENT_TEXT_H

#include <stddef.h>

/* Characters (code points) in a valid UTF-8 string: Synapse's limits count
 * Python characters, not bytes. */
static inline size_t client_utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

#endif
