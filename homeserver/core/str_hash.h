/* str_hash.h — a string's hash for the small in-process tables (direct-mapped
 * caches keyed by room or user ID): djb2, cheap and good enough for them. */
#ifndef HS_CORE_STR_HASH_H
#define HS_CORE_STR_HASH_H

static inline unsigned long hs_str_hash(const char *s) {
    unsigned long h = 5381;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = h * 33 + *p;
    return h;
}

#endif
