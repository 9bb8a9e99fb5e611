/* bench_state_store.c — state storage figures on a real PostgreSQL:
 *   - loading the full state at an event of a room with 50,000 state events
 *     (the worst case: the end of a full delta chain);
 *   - the disk that 10,000 successive state changes take.
 * usage: bench_state_store [DIR]   (an embedded cluster is created in DIR,
 * default a fresh folder under /tmp; PVYHS_BENCH_DSN uses an existing database) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "homeserver/db/db.h"
#include "homeserver/db/embedded_pg.h"
#include "rooms/store.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, const hs_err *err) {
    fprintf(stderr, "bench_state_store: %s: %s\n", what, err->msg);
    exit(1);
}

static long long table_bytes(db_conn *c, const char *rel) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT pg_total_relation_size('%s')", rel);
    PGresult *r = PQexec(c->pg, sql);
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* A big room: members and a few other state, as IDs of realistic length. */
static void fill(room_state_map *m, int n) {
    char key[64], id[64];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "@user%06d:example.org", i);
        snprintf(id, sizeof id, "$%043d", i);
        room_state_map_set(m, "m.room.member", key, id);
    }
}

int main(int argc, char **argv) {
    hs_err err = {0};
    char dir[] = "/tmp/pvyhs-bench-XXXXXX";
    const char *dsn = getenv("PVYHS_BENCH_DSN");
    db_embedded *pg = NULL;
    if (!dsn) {
        const char *d = argc > 1 ? argv[1] : mkdtemp(dir);
        chmod(d, 0755);
        if (!(pg = db_embedded_start(d, true, &err))) die("postgres", &err);
        dsn = db_embedded_conninfo(pg);
    }
    db_pool *pool = db_pool_new(dsn, 1, 1, 0, &err);
    if (!pool || db_migrate(pool, &err) < 0) die("database", &err);
    db_conn *c = db_acquire(pool, &err);

    /* 1. A 50,000-entry snapshot, then a full chain of one-entry deltas. */
    room_state_map *m = room_state_map_new();
    fill(m, 50000);
    db_script(c, "BEGIN", &err);
    long long g = room_state_group_store(c, "!big:example.org", 0, NULL, m, &err);
    for (int i = 0; i < ROOM_STATE_MAX_CHAIN - 2; i++) {
        char id[64];
        snprintf(id, sizeof id, "$change%036d", i);
        g = room_state_group_add_one(c, "!big:example.org", g, "m.room.topic", "", id, &err);
        if (g < 0) die("add_one", &err);
    }
    db_script(c, "COMMIT", &err);
    room_state_map *out = room_state_map_new();
    double best = 1e9, total = 0;
    int runs = 20;
    for (int i = 0; i < runs; i++) {
        double t0 = now_ms();
        if (room_state_group_load(c, g, out, &err) < 0) die("load", &err);
        double dt = now_ms() - t0;
        total += dt;
        if (dt < best) best = dt;
    }
    printf("load full state, 50,000 state events at the end of a %d-delta chain: "
           "%.1f ms mean, %.1f ms best (%zu entries)\n",
           ROOM_STATE_MAX_CHAIN - 2, total / runs, best, room_state_map_count(out));

    /* 2. 10,000 successive state changes in a room of 1,000 members. */
    room_state_map_clear(m);
    fill(m, 1000);
    long long before = table_bytes(c, "state_groups");
    db_script(c, "BEGIN", &err);
    g = room_state_group_store(c, "!mid:example.org", 0, NULL, m, &err);
    double t0 = now_ms();
    for (int i = 0; i < 10000; i++) {
        char key[64], id[64];
        snprintf(key, sizeof key, "@user%06d:example.org", i % 1000);
        snprintf(id, sizeof id, "$change%036d", i);
        g = room_state_group_add_one(c, "!mid:example.org", g, "m.room.member", key, id, &err);
        if (g < 0) die("add_one", &err);
    }
    db_script(c, "COMMIT", &err);
    double dt = now_ms() - t0;
    db_script(c, "VACUUM ANALYZE state_groups", &err);
    long long after = table_bytes(c, "state_groups");
    printf("10,000 successive state changes (room of 1,000 members): %.1f MiB of state groups "
           "(%.0f bytes per change), stored in %.0f ms\n",
           (after - before) / 1048576.0, (double)(after - before) / 10000, dt);

    room_state_map_free(m);
    room_state_map_free(out);
    db_release(pool, c);
    db_pool_free(pool);
    db_embedded_stop(pg);
    return 0;
}
