/* auth_cache_listen.c — other processes' account changes reach this one's
 * access-token cache: a thread LISTENs on HS_AUTH_CACHE_CHANNEL with a
 * connection of its own and forgets every cached token on each NOTIFY.
 *
 * A notification sent while the connection was down is lost, so after every
 * (re)connection the cache is forgotten as well. */
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_cache.h"
#include "homeserver/core/log.h"

static pthread_t thread;
static bool running;
static atomic_bool stop;
static char *conninfo;

static PGconn *connect_and_listen(void) {
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, "LISTEN " HS_AUTH_CACHE_CHANNEL) : NULL;
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        hs_warn("auth cache: cannot listen for account changes: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    hs_auth_cache_forget_all(); /* whatever was announced while we did not listen */
    return c;
}

static void *listen_loop(void *arg) {
    (void)arg;
    PGconn *c = NULL;
    while (!atomic_load(&stop)) {
        if (!c && !(c = connect_and_listen())) {
            for (int i = 0; i < 20 && !atomic_load(&stop); i++) usleep(100000); /* retry in 2 s */
            continue;
        }
        /* A short poll, so that stopping never waits long. */
        struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
        if (poll(&p, 1, 500) <= 0) continue;
        if (!PQconsumeInput(c)) {
            hs_warn("auth cache: lost the listening connection: %s", PQerrorMessage(c));
            PQfinish(c);
            c = NULL;
            continue;
        }
        PGnotify *n;
        bool any = false;
        while ((n = PQnotifies(c))) any = true, PQfreemem(n);
        if (any) hs_auth_cache_forget_all();
    }
    PQfinish(c);
    return NULL;
}

int hs_auth_cache_listen_start(const char *info) {
    if (running) return 0;
    conninfo = strdup(info ? info : "");
    atomic_store(&stop, false);
    if (pthread_create(&thread, NULL, listen_loop, NULL) != 0) {
        free(conninfo);
        conninfo = NULL;
        return -1;
    }
    running = true;
    return 0;
}

void hs_auth_cache_listen_stop(void) {
    if (!running) return;
    atomic_store(&stop, true);
    pthread_join(thread, NULL);
    running = false;
    free(conninfo);
    conninfo = NULL;
}

void hs_auth_cache_announce(db_pool *p) {
    hs_err err = {0};
    db_conn *c = db_acquire(p, &err);
    if (!c || db_script(c, "NOTIFY " HS_AUTH_CACHE_CHANNEL, &err) < 0)
        hs_warn("auth cache: cannot tell other processes of a token change: %s", err.msg);
    db_release(p, c);
}
