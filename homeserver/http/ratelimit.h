/* ratelimit.h — token buckets for the rc_* limits, in memory.
 *
 * A key ("msg:@alice:example.org", "login-ip:192.0.2.1") gets a bucket of
 * burst_count tokens refilled at per_second; an action takes one. Keys live
 * only in this process's memory and expire when full again, so rate limiting
 * by address stores no address anywhere. */
#ifndef HS_RATELIMIT_H
#define HS_RATELIMIT_H

#include <stdbool.h>

#include "config/config.h"
#include "homeserver/core/err.h"

/* Take a token for key under rl. 0 when allowed; otherwise -1 with
 * 429 M_LIMIT_EXCEEDED and retry_after_ms in err (see hs_err's retry_after_ms).
 * per_second 0 means unlimited. */
int hs_ratelimit(const char *kind, const char *who, const cfg_ratelimit *rl, hs_err *err);

/* Only check (do not take): for "failed attempts" limits that count failures. */
int hs_ratelimit_check(const char *kind, const char *who, const cfg_ratelimit *rl, hs_err *err);

#endif
