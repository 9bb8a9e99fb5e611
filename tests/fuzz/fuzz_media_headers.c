/* fuzz_media_headers.c — libFuzzer target: what a client controls in media
 * requests that pvyhs parses by hand -- the Range header of a download
 * (against file sizes around the input's length) and a URL to preview,
 * split like Python's urlsplit and matched against a blacklist of globs and
 * regexes. A satisfiable range must lie inside the file; a split URL must
 * have its always-present parts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/media_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    const long long sizes[] = {0, 1, (long long)size, 65536, 1LL << 40};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        long long first = -1, last = -1;
        int rc = media_parse_range(s, sizes[i], &first, &last);
        if (rc == 1 && !(first >= 0 && first <= last && last < sizes[i])) abort();
        if (rc < -1 || rc > 1) abort();
    }
    char *parts[CFG_URL_NPARTS];
    if (media_url_split(s, parts) == 0) {
        static const int always[] = {CFG_URL_SCHEME, CFG_URL_NETLOC, CFG_URL_PATH, CFG_URL_QUERY,
                                     CFG_URL_FRAGMENT};
        for (size_t i = 0; i < sizeof always / sizeof *always; i++)
            if (!parts[always[i]]) abort();
        media_url_parts_free(parts);
    }
    cfg_url_rule rules[3] = {0};
    rules[0].pattern[CFG_URL_NETLOC] = "*.example.[a-z]*";
    rules[1].pattern[CFG_URL_PATH] = "^/(a|b)+[0-9]*$";
    rules[1].pattern[CFG_URL_PORT] = "8*";
    rules[2].pattern[CFG_URL_USERNAME] = "*";
    cfg cf = {0};
    cf.url_preview_url_blacklist = rules;
    cf.n_url_preview_url_blacklist = 3;
    int b = media_url_blocked(&cf, s);
    if (b < -1 || b > 1) abort();
    free(s);
    return 0;
}
