/* sync_token.c — writing and reading stream tokens. */
#include "sync_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sync_token_parse(const char *s, sync_token *t) {
    if (!s || s[0] != 's') return false;
    const char *p = s + 1;
    for (int i = 0; i < DB_STREAM_COUNT; i++) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0) return false;
        t->pos[i] = v;
        if (i < DB_STREAM_COUNT - 1) {
            if (*end != '_') return false;
            p = end + 1;
        } else if (*end) {
            return false;
        }
    }
    return true;
}

void sync_token_format(const sync_token *t, char *out, size_t n) {
    size_t w = (size_t)snprintf(out, n, "s");
    for (int i = 0; i < DB_STREAM_COUNT && w < n; i++)
        w += (size_t)snprintf(out + w, n - w, i ? "_%lld" : "%lld", t->pos[i]);
}

void sync_token_now(sync_token *t) {
    for (int i = 0; i < DB_STREAM_COUNT; i++) t->pos[i] = db_stream_current((db_stream)i);
}

bool sync_token_equal(const sync_token *a, const sync_token *b) {
    return memcmp(a->pos, b->pos, sizeof a->pos) == 0;
}

long long sync_token_events_pos(const char *s) {
    if (!s) return -1;
    if (s[0] == 't') {
        char *end;
        long long v = strtoll(s + 1, &end, 10);
        return end == s + 1 || *end || v < 0 ? -1 : v;
    }
    sync_token t;
    return sync_token_parse(s, &t) ? t.pos[DB_STREAM_EVENTS] : -1;
}

bool sync_token_pagination_pos(const char *s, long long *pos) {
    if (s && s[0] == 't' && s[1] == '-') {
        char *end;
        long long v = strtoll(s + 1, &end, 10);
        if (end == s + 2 || *end || v >= 0 || v <= SYNC_TOKEN_POS_MIN) return false;
        return *pos = v, true;
    }
    *pos = sync_token_events_pos(s);
    return *pos >= 0;
}
