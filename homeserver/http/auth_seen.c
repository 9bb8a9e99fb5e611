/* auth_seen.c — device activity and refresh-token retirement on token use.
 *
 * Privacy: an address or user agent is written only when the admin enabled
 * track_client_ips, and an hourly sweep (per process, on the next request)
 * erases those older than user_ips_max_age — or every one of them when
 * tracking is off, so turning it off forgets what was kept. */
#include "auth_seen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "auth_cache.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"

#define SEEN_GRANULARITY_MS 60000LL
#define SWEEP_INTERVAL_MS 3600000LL

static atomic_llong last_sweep;

static void sweep(hs_req *r, db_conn *c, long long now) {
    static db_stmt old = DB_STMT(
        "UPDATE devices SET last_seen_ip = NULL, last_seen_user_agent = NULL"
        " WHERE (last_seen_ip IS NOT NULL OR last_seen_user_agent IS NOT NULL)"
        " AND (last_seen_ts IS NULL OR last_seen_ts < $1)");
    long long prev = atomic_load(&last_sweep);
    if (now - prev < SWEEP_INTERVAL_MS || !atomic_compare_exchange_strong(&last_sweep, &prev, now))
        return;
    const cfg *cf = r->srv->cfg;
    /* Tracking off: everything kept so far goes (cutoff in the future). */
    long long cutoff = cf->track_client_ips ? now - cf->user_ips_max_age : now + 1;
    char b[24];
    snprintf(b, sizeof b, "%lld", cutoff);
    hs_err err = {0};
    if (db_exec(c, &old, 1, (const char *[]){b}, &err) < 0) hs_warn("erasing old client IPs: %s", err.msg);
}

static void touch_device(hs_req *r, db_conn *c, long long now) {
    static db_stmt plain = DB_STMT(
        "UPDATE devices SET last_seen_ts = $3 WHERE user_id = $1 AND device_id = $2");
    static db_stmt tracked = DB_STMT(
        "UPDATE devices SET last_seen_ts = $3, last_seen_ip = $4, last_seen_user_agent = $5"
        " WHERE user_id = $1 AND device_id = $2");
    char ts[24], ip[INET6_ADDRSTRLEN + 1] = "", ua[513] = "";
    snprintf(ts, sizeof ts, "%lld", now);
    bool track = r->srv->cfg->track_client_ips;
    if (track) {
        hs_req_client_ip(r, ip, sizeof ip);
        const char *h = hs_req_header(r, "User-Agent");
        snprintf(ua, sizeof ua, "%s", h ? h : "");
    }
    const char *p[] = {r->user_id, r->device_id, ts, *ip ? ip : NULL, *ua ? ua : NULL};
    hs_err err = {0};
    if (db_exec(c, track ? &tracked : &plain, track ? 5 : 3, p, &err) < 0)
        hs_warn("recording device activity: %s", err.msg);
}

void hs_auth_seen(hs_req *r, db_conn *c, const char *token_hex, const char *revokes_refresh_id,
                  long long last_seen_ts) {
    static db_stmt retire = DB_STMT("DELETE FROM refresh_tokens WHERE id = $1");
    static db_stmt clear = DB_STMT(
        "UPDATE access_tokens SET revokes_refresh_id = NULL WHERE token_hash = $1::bytea");
    hs_err err = {0};
    if (revokes_refresh_id &&
        (db_exec(c, &retire, 1, (const char *[]){revokes_refresh_id}, &err) < 0 ||
         db_exec(c, &clear, 1, (const char *[]){token_hex}, &err) < 0))
        hs_warn("retiring a refresh token: %s", err.msg);
    /* That took the previous access token with it (ON DELETE CASCADE). */
    if (revokes_refresh_id) {
        hs_auth_cache_forget_all();
        if (db_script(c, "NOTIFY " HS_AUTH_CACHE_CHANNEL, &err) < 0)
            hs_warn("announcing a retired token: %s", err.msg);
    }
    long long now = hs_now_ms();
    if (last_seen_ts < 0 || now - last_seen_ts >= SEEN_GRANULARITY_MS) touch_device(r, c, now);
    sweep(r, c, now);
}
