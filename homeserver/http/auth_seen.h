/* auth_seen.h — what an accepted access token updates (http/auth.c calls
 * this once per authenticated request):
 *  - the device's last_seen_ts, at most once a minute;
 *  - only with track_client_ips: its last IP address and user agent, erased
 *    again after user_ips_max_age (and all of them when tracking is off);
 *  - the first use of a refreshed access token retires the refresh token it
 *    replaced (spec: "Refreshing access tokens").
 * Failures are logged and never fail the request. */
#ifndef HS_AUTH_SEEN_H
#define HS_AUTH_SEEN_H

#include "http.h"

/* token_hex: the token's hash as a bytea literal; revokes_refresh_id: the
 * access token's pending revocation (NULL: none); last_seen_ts: the device's
 * (-1: never seen, or no device row). Runs on c, the caller's connection. */
void hs_auth_seen(hs_req *r, db_conn *c, const char *token_hex, const char *revokes_refresh_id,
                  long long last_seen_ts);

#endif
