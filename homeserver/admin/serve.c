/* serve.c — `pvyhs serve`: run the homeserver until SIGTERM/SIGINT.
 *
 * Shutdown order matters: stop accepting, let in-flight requests finish
 * (they need the database), then close the pool and stop PostgreSQL. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "federation/federation.h"
#include "homeserver/client/channels.h"
#include "homeserver/client/client.h"
#include "homeserver/client/notifier.h"
#include "homeserver/core/log.h"
#include "homeserver/http/auth_cache.h"
#include "homeserver/http/http.h"
#include "media/media.h"

static const char usage[] =
    "usage: pvyhs serve [--config FILE]\n"
    "\n"
    "Run the homeserver. Without --config, uses ./homeserver.yaml and, if it does\n"
    "not exist, first writes one for server_name 'localhost' (data in ./data).\n"
    "Logs go to stderr. SIGTERM or SIGINT stops it cleanly.\n";

/* systemd's sd_notify protocol: one datagram to $NOTIFY_SOCKET. */
static void sd_notify_msg(const char *msg) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path) return;
    memcpy(sa.sun_path, path, n);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = 0; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    ssize_t w = sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    (void)w;
    close(fd);
}

/* First start without a config: write homeserver.yaml and go on. */
static int first_start(const char *path) {
    if (access(path, F_OK) == 0) return 0;
    hs_err err = {0};
    if (cfg_write_default(path, "localhost", "data", "localhost.signing.key", 8008, &err) < 0) {
        hs_error("cannot write %s: %s", path, err.msg);
        return -1;
    }
    hs_info("wrote %s for server_name 'localhost'; edit it and restart to change that", path);
    return 0;
}

/* Load the signing key, generating it on first start (as Synapse does). */
static int load_key(const cfg *c, hs_signing_key *k) {
    hs_err err = {0};
    if (access(c->signing_key_path, F_OK) != 0) {
        if (hs_signing_key_generate(k) < 0 || hs_signing_key_save(c->signing_key_path, k, &err) < 0) {
            hs_error("cannot write the signing key %s: %s", c->signing_key_path, err.msg);
            return -1;
        }
        hs_info("generated signing key %s in %s: back it up", k->key_id, c->signing_key_path);
        return 0;
    }
    if (hs_signing_key_load(c->signing_key_path, k, &err) < 0) {
        hs_error("%s", err.msg);
        return -1;
    }
    return 0;
}

/* Each waiting /sync holds a socket: take all the descriptors we may have. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) hs_warn("cannot raise the open-file limit");
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 12000)
        hs_warn("the open-file limit is %llu: fewer than 10,000 clients can wait on /sync",
                (unsigned long long)rl.rlim_cur);
}

static int run(cfg *c) {
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    /* Blocked before any thread exists, so only sigwait below sees them. */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    hs_server srv = {.cfg = c, .started_ts = hs_now_ms()};
    if (load_key(c, &srv.key) < 0) return EXIT_RUNTIME;
    admin_runtime rt;
    int rc = admin_runtime_open(&rt, c, true);
    if (rc) return rc;
    srv.db = rt.db;
    srv.router = hs_router_new();
    client_routes(srv.router);
    fed_routes(srv.router);
    fed_policy_server_install(&srv); /* our events in rooms with a Policy Server */
    /* Channels reach other servers' directories and spaces through it. */
    client_channels_set_federation(fed_request);
    media_routes(srv.router);
    hs_err err = {0};
    if (hs_http_start(&srv, &err) < 0) {
        hs_error("%s", err.msg);
        rc = EXIT_RUNTIME;
    } else {
        hs_info("pvyhs serving %s", c->server_name);
        fed_sender_start(&srv); /* queued PDUs and EDUs go out from now on */
        fed_partial_state_start(&srv); /* rooms joined with partial state get the rest */
        /* Suspensions and locks made by `pvyhs user` reach the token cache. */
        if (hs_auth_cache_listen_start(rt.pg ? db_embedded_conninfo(rt.pg) : c->db_dsn) < 0)
            hs_warn("cannot start the auth cache listener: account changes made by the "
                    "command line apply within %lld s", HS_AUTH_CACHE_TTL_MS / 1000);
        sd_notify_msg("READY=1");
        /* Between signals, every half minute, give memory freed after a
         * burst (a big initial sync, a load peak) back to the system: glibc
         * keeps it in its per-thread arenas otherwise, and the idle server
         * would stay at its peak size. */
        int sig;
        struct timespec half_minute = {30, 0};
        while ((sig = sigtimedwait(&sigs, NULL, &half_minute)) < 0) malloc_trim(0);
        hs_info("received %s; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        sd_notify_msg("STOPPING=1");
        /* Parked long-polls answer now rather than hold the shutdown. */
        atomic_store(&srv.stopping, true);
        hs_notify_all();
        hs_http_stop(&srv, 10000);
        hs_auth_cache_listen_stop();
        fed_shutdown(); /* the outbound HTTP thread, after the last request that used it */
    }
    hs_router_free(srv.router);
    admin_runtime_close(&rt);
    hs_info("stopped");
    return rc;
}

int admin_serve(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (o == 'c') path = optarg;
        else if (o == 'h') return admin_usage(usage, EXIT_OK);
        else return admin_usage(usage, EXIT_USAGE);
    }
    if (optind != argc) return admin_usage(usage, EXIT_USAGE);
    if (!path) {
        path = "homeserver.yaml";
        if (first_start(path) < 0) return EXIT_RUNTIME;
    }
    cfg *c = admin_load_config(path);
    if (!c) return EXIT_USAGE;
    int rc = run(c);
    cfg_free(c);
    return rc;
}
