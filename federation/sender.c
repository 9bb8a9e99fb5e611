/* sender.c — the federation sender: its thread, its workers, back-off.
 *
 * One thread (the dispatcher) follows the local streams: when a stream's
 * position moves (db_stream_current, checked every 100 ms and at once when
 * woken), it queues what changed for each destination (sender_queue.c) and
 * hands destinations with work to a small pool of workers. A worker owns
 * one destination at a time, so each destination gets one transaction at a
 * time, in order: it sends up to 50 PDUs and 100 EDUs per
 * PUT /_matrix/federation/v1/send/{txnId} and deletes them once the
 * destination answered 200, until the queue is empty. The HTTP itself runs
 * on the shared libcurl multi thread (http_client.c).
 *
 * A failure (no answer, 5xx, 429) is first retried quickly, as Synapse
 * retries within one /send request: after 4 s, 16 s, then every minute, ten
 * times (in memory only: a restart simply tries again). After those, or at
 * once on a 401 or 404, the destination backs off, Synapse's way: 10
 * minutes, then about twice as long each time, at most a day, stored in
 * federation_destinations so a restart honours it. Its queue
 * stays and grows. Success, or an authenticated request from that server
 * (it is evidently up), ends the back-off; the destination then catches up
 * with everything queued, or, past FED_CATCHUP_MAX_PDUS, with the newest PDU
 * of each room (it fetches the gap with /get_missing_events).
 *
 * Typing notifications are the only thing kept in memory: they are
 * worthless a minute later, so a destination that is backing off does not
 * get them at all.
 *
 * Several processes: federation_sender_shard: "i/n" (0 <= i < n) in process
 * i's config; it then sends only to the destinations whose name hashes to i
 * (fed_sender_shard_of), leaving the rest of the shared queue to the others.
 * Queueing happens in whichever process writes a stream (streams.h: one
 * writer per stream). The environment variables read here are for tests. */
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "homeserver/client/fed_outbound.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "homeserver/db/streams.h"
#include "sender_internal.h"
#include "transport_internal.h"

#define N_WORKERS 8
#define N_BUCKETS 256
#define POLL_MS 100
#define RESCAN_MS 60000
#define DB_RETRY_MS 5000

typedef struct dest {
    struct dest *next;
    char *name;
    bool busy;            /* a worker has it */
    bool has_work;        /* something may be queued */
    bool came_back;       /* it sent us a request while backing off */
    int quick;            /* quick retries made since the last answer (FED_SEND_RETRIES) */
    long long retry_until;
    long long interval;   /* current back-off; 0: fine */
    long long failure_ts;
    json_t *typing;       /* m.typing EDUs waiting */
} dest;

typedef struct typing_note {
    char *room_id, *user_id;
    bool typing;
} typing_note;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* the dispatcher waits here */
    pthread_cond_t work_cv;   /* workers wait here */
    bool running, stop, kick;
    bool data_kick; /* the kick came from new local data (fed_sender_wake) */
    bool rescan;    /* rows were queued directly: the next round reads the queue */
    hs_server *srv;
    pthread_t dispatcher, workers[N_WORKERS];
    bool has_dispatcher;
    int n_workers;
    dest *buckets[N_BUCKETS];
    dest **ready;
    size_t n_ready, cap_ready;
    typing_note *typing;
    size_t n_typing, cap_typing;
    long long pos[FED_STREAM_N], to_device_pos;
    unsigned shard_i, shard_n;
    long long min_retry_ms, catchup_max;
    int send_retries;
    long long started_ms;
    atomic_llong next_txn;
    long long last_error_log;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .work_cv = PTHREAD_COND_INITIALIZER};

/* ---- pure parts --------------------------------------------------------------- */

long long fed_backoff_next(long long interval, long long min_ms, long long max_ms, double rnd) {
    if (interval <= 0) return min_ms;
    double next = (double)interval * FED_RETRY_MULTIPLIER * (0.8 + 0.6 * rnd);
    return next >= (double)max_ms ? max_ms : (long long)next;
}

long long fed_send_retry_delay(int n, double rnd) {
    long long ms = 1000;
    for (int i = 0; i < n && ms < FED_SEND_RETRY_MAX_MS; i++) ms *= 4;
    if (ms > FED_SEND_RETRY_MAX_MS) ms = FED_SEND_RETRY_MAX_MS;
    return (long long)((double)ms * (0.8 + 0.6 * rnd));
}

bool fed_send_retry_quickly(long status) {
    return status == 0 || status >= 500 || status == 429;
}

fed_send_outcome fed_send_classify(long status, const hs_err *err) {
    if (status >= 200 && status < 300) return FED_SENT;
    if (status == 0) /* ours: the whitelist, the IP policy or a bad name forbid it */
        return err && (err->status == 403 || err->status == 400) ? FED_DROP : FED_RETRY;
    if (status >= 500 || status == 401 || status == 404 || status == 429) return FED_RETRY;
    return FED_DROP;
}

long long fed_device_list_prev(long long stream_id, long long last, long long last_prev) {
    if (last <= 0) return 0;
    return last == stream_id ? last_prev : last;
}

unsigned fed_sender_shard_of(const char *destination, unsigned n) {
    if (n <= 1) return 0;
    unsigned h = 2166136261u; /* FNV-1a: stable across processes and builds */
    for (const unsigned char *p = (const unsigned char *)destination; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % n;
}

/* ---- destinations (under S.mu) ---------------------------------------------------- */

static size_t bucket_of(const char *s) {
    size_t h = 5381;
    for (; *s; s++) h = h * 33 + (unsigned char)*s;
    return h % N_BUCKETS;
}

static dest *find_dest(const char *name, bool create) {
    dest **b = &S.buckets[bucket_of(name)];
    for (dest *d = *b; d; d = d->next)
        if (!strcmp(d->name, name)) return d;
    if (!create) return NULL;
    dest *d = calloc(1, sizeof *d);
    d->name = strdup(name);
    d->typing = json_array();
    d->next = *b;
    *b = d;
    return d;
}

static void mark_work(const json_t *set) {
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)set, name, v) find_dest(name, true)->has_work = true;
}

static bool mine(const char *name) { return fed_sender_shard_of(name, S.shard_n) == S.shard_i; }

/* Hand every destination that has work and may be tried to the workers;
 * returns when the next backed-off one becomes due (0: none). */
static long long dispatch(long long now) {
    long long next = 0;
    for (size_t b = 0; b < N_BUCKETS; b++)
        for (dest *d = S.buckets[b]; d; d = d->next) {
            if (d->busy || !d->has_work || !mine(d->name)) continue;
            if (d->retry_until > now) {
                if (!next || d->retry_until < next) next = d->retry_until;
                continue;
            }
            if (S.n_ready == S.cap_ready) {
                S.cap_ready = S.cap_ready ? S.cap_ready * 2 : 32;
                S.ready = realloc(S.ready, S.cap_ready * sizeof *S.ready);
            }
            d->busy = true;
            d->has_work = false;
            S.ready[S.n_ready++] = d;
            pthread_cond_signal(&S.work_cv);
        }
    return next;
}

/* ---- logging without flooding ------------------------------------------------------ */

static void log_db_error(const char *what, const hs_err *err) {
    long long now = hs_now_ms();
    pthread_mutex_lock(&S.mu);
    bool say = now - S.last_error_log > 30000;
    if (say) S.last_error_log = now;
    pthread_mutex_unlock(&S.mu);
    if (say) hs_error("federation sender: %s: %s", what, err->msg);
}

/* ---- the dispatcher's rounds ------------------------------------------------------------- */

static db_stream stream_of(fed_stream s) {
    switch (s) {
    case FED_STREAM_EVENTS: return DB_STREAM_EVENTS;
    case FED_STREAM_RECEIPTS: return DB_STREAM_RECEIPTS;
    case FED_STREAM_PRESENCE: return DB_STREAM_PRESENCE;
    default: return DB_STREAM_DEVICE_LISTS;
    }
}

/* Queue what the local streams gained since the last round. */
static void follow_streams(json_t *woken) {
    for (int s = 0; s < FED_STREAM_N; s++) {
        long long cur = db_stream_current(stream_of((fed_stream)s));
        while (S.pos[s] < cur) {
            hs_err err = {0};
            long long p = fed_queue_enqueue(S.srv, (fed_stream)s, cur, woken, &err);
            if (p < 0) {
                log_db_error(fed_stream_names[s], &err);
                break;
            }
            if (p <= S.pos[s]) break;
            S.pos[s] = p;
        }
    }
}

static void follow_to_device(db_conn *c, json_t *woken) {
    long long cur = db_stream_current(DB_STREAM_TO_DEVICE);
    if (cur <= S.to_device_pos) return;
    hs_err err = {0};
    if (fed_queue_to_device_destinations(c, S.to_device_pos, cur, woken, &err) < 0)
        log_db_error("to-device", &err);
    else S.to_device_pos = cur;
}

/* Typing notifications noted since the last round, to the servers in their rooms. */
static void flush_typing(db_conn *c) {
    pthread_mutex_lock(&S.mu);
    typing_note *notes = S.typing;
    size_t n = S.n_typing;
    S.typing = NULL;
    S.n_typing = S.cap_typing = 0;
    pthread_mutex_unlock(&S.mu);
    long long now = hs_now_ms();
    for (size_t i = 0; i < n; i++) {
        json_t *hosts = json_object();
        hs_err err = {0};
        if (fed_room_hosts(c, S.srv, notes[i].room_id, hosts, &err) < 0)
            log_db_error("typing", &err);
        json_t *edu = json_pack("{s:s, s:{s:s, s:s, s:b}}", "edu_type", "m.typing", "content",
                                "room_id", notes[i].room_id, "user_id", notes[i].user_id,
                                "typing", notes[i].typing);
        const char *h;
        json_t *v;
        pthread_mutex_lock(&S.mu);
        json_object_foreach(hosts, h, v) {
            dest *d = find_dest(h, true);
            if (d->retry_until > now) continue; /* stale long before it could arrive */
            json_array_append_new(d->typing, json_deep_copy(edu)); /* workers share nothing */
            d->has_work = true;
        }
        pthread_mutex_unlock(&S.mu);
        json_decref(edu);
        json_decref(hosts);
        free(notes[i].room_id), free(notes[i].user_id);
    }
    free(notes);
}

/* Everything queued, whoever queued it (at start-up, then now and then). */
static void rescan(db_conn *c, json_t *woken) {
    hs_err err = {0};
    if (fed_queue_pending_destinations(c, woken, &err) < 0) log_db_error("rescan", &err);
}

static void one_round(bool full) {
    json_t *woken = json_object();
    follow_streams(woken);
    hs_err err = {0};
    db_conn *c = db_acquire(S.srv->db, &err);
    if (c) {
        follow_to_device(c, woken);
        flush_typing(c);
        if (full) rescan(c, woken);
        db_release(S.srv->db, c);
    } else {
        log_db_error("database", &err);
    }
    pthread_mutex_lock(&S.mu);
    mark_work(woken);
    pthread_mutex_unlock(&S.mu);
    json_decref(woken);
}

/* Positions and back-off as the database has them. */
static int start_up(void) {
    hs_err err = {0};
    db_conn *c = db_acquire(S.srv->db, &err);
    fed_retry_row *rows = NULL;
    size_t n = 0;
    if (!c || fed_queue_load_positions(c, S.pos, &err) < 0 ||
        fed_queue_load_retries(c, &rows, &n, &err) < 0) {
        db_release(S.srv->db, c);
        log_db_error("cannot start", &err);
        return -1;
    }
    db_release(S.srv->db, c);
    S.to_device_pos = db_stream_current(DB_STREAM_TO_DEVICE);
    pthread_mutex_lock(&S.mu);
    for (size_t i = 0; i < n; i++) {
        dest *d = find_dest(rows[i].destination, true);
        d->interval = rows[i].retry_interval_ms;
        d->retry_until = rows[i].retry_last_ts + rows[i].retry_interval_ms;
        d->failure_ts = rows[i].failure_ts;
        free(rows[i].destination);
    }
    pthread_mutex_unlock(&S.mu);
    free(rows);
    return 0;
}

/* Wait for the next round; true when only new local data woke it. */
static bool wait_round(long long due) {
    long long now = hs_now_ms(), until = now + POLL_MS;
    if (due && due < until) until = due > now ? due : now;
    struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};
    if (!S.kick && !S.stop) pthread_cond_timedwait(&S.cv, &S.mu, &ts); /* CLOCK_REALTIME */
    bool data_only = S.kick && S.data_kick;
    S.kick = S.data_kick = false;
    return data_only;
}

/* Rounds at most this often: under a stream of local sends each commit
 * wakes the dispatcher, and a round (reading the new events and their rooms'
 * servers, moving the position) per message cost more database work than
 * the sends themselves. A few milliseconds gathers them into one round. */
#define ROUND_MIN_INTERVAL_MS 5

static void *dispatcher_main(void *arg) {
    (void)arg;
    bool started = start_up() == 0;
    long long last_scan = 0, last_round = 0;
    bool data_only = false;
    pthread_mutex_lock(&S.mu);
    while (!S.stop) {
        pthread_mutex_unlock(&S.mu);
        long long now = hs_now_ms();
        if (data_only && now - last_round < ROUND_MIN_INTERVAL_MS && now >= last_round) {
            struct timespec pause = {0, (ROUND_MIN_INTERVAL_MS - (now - last_round)) * 1000000L};
            nanosleep(&pause, NULL);
            now = hs_now_ms();
        }
        last_round = now;
        if (!started) started = start_up() == 0;
        if (started) {
            pthread_mutex_lock(&S.mu);
            bool asked = S.rescan;
            S.rescan = false;
            pthread_mutex_unlock(&S.mu);
            bool full = asked || now - last_scan >= RESCAN_MS;
            one_round(full);
            if (full) last_scan = now;
        }
        pthread_mutex_lock(&S.mu);
        data_only = wait_round(started ? dispatch(hs_now_ms()) : 0);
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

/* ---- a worker's destination ---------------------------------------------------------------- */

/* A failure that may be retried quickly (fed_send_retry_quickly) while d
 * has quick retries left: it is tried again soon, with nothing stored,
 * as Synapse retries within the request before its limiter counts a
 * failure. True when that is what happens. */
static bool retry_quickly(dest *d, long status, const char *why) {
    long long now = hs_now_ms(), delay = 0;
    pthread_mutex_lock(&S.mu);
    bool quick = fed_send_retry_quickly(status) && d->quick < S.send_retries;
    if (quick) {
        delay = fed_send_retry_delay(++d->quick, randombytes_uniform(1000000) / 1e6);
        d->retry_until = now + delay;
        d->came_back = false;
        d->has_work = true;
        json_array_clear(d->typing);
    }
    int n = d->quick;
    pthread_mutex_unlock(&S.mu);
    if (quick)
        hs_info("federation: cannot send to %s (%s); retry %d of %d in %lld ms", d->name, why, n,
                S.send_retries, delay);
    return quick;
}

/* Record the outcome in memory (and, when it changed, in the database). */
static void record(dest *d, bool up, const char *why) {
    long long now = hs_now_ms();
    pthread_mutex_lock(&S.mu);
    bool was_failing = d->interval > 0 || d->came_back;
    d->quick = 0;
    long long interval = up ? 0 : fed_backoff_next(d->interval, S.min_retry_ms, FED_RETRY_MAX_MS,
                                                   randombytes_uniform(1000000) / 1e6);
    if (!up && !d->failure_ts) d->failure_ts = now;
    if (up) d->failure_ts = 0;
    d->interval = interval;
    d->retry_until = up ? 0 : now + interval;
    d->came_back = false;
    long long failure_ts = d->failure_ts;
    if (!up) {
        d->has_work = true; /* the queue stays for the retry */
        json_array_clear(d->typing);
    }
    pthread_mutex_unlock(&S.mu);
    if (up && !was_failing) return;
    if (up) hs_info("federation: %s is reachable again", d->name);
    else hs_info("federation: cannot send to %s (%s); next try in %lld s", d->name, why,
                 interval / 1000);
    hs_err err = {0};
    db_conn *c = db_acquire(S.srv->db, &err);
    if (!c || fed_queue_store_retry(c, d->name, failure_ts, now, interval, &err) < 0)
        log_db_error("back-off", &err);
    db_release(S.srv->db, c);
}

/* The typing EDUs waiting for d, at most max (the rest stay). */
static json_t *take_typing(dest *d, size_t max) {
    json_t *out = json_array();
    pthread_mutex_lock(&S.mu);
    while (json_array_size(out) < max && json_array_size(d->typing)) {
        json_array_append(out, json_array_get(d->typing, 0));
        json_array_remove(d->typing, 0);
    }
    pthread_mutex_unlock(&S.mu);
    return out;
}

static bool stopping(void) {
    pthread_mutex_lock(&S.mu);
    bool s = S.stop;
    pthread_mutex_unlock(&S.mu);
    return s;
}

/* The database failed us: try again soon, without counting it against d. */
static void later(dest *d, const hs_err *err) {
    log_db_error(d->name, err);
    pthread_mutex_lock(&S.mu);
    d->has_work = true;
    if (d->retry_until < hs_now_ms() + DB_RETRY_MS) d->retry_until = hs_now_ms() + DB_RETRY_MS;
    pthread_mutex_unlock(&S.mu);
}

static void log_pdu_errors(const char *dest_name, const json_t *resp) {
    const char *id;
    json_t *v;
    json_object_foreach(json_object_get(resp, "pdus"), id, v) {
        const char *e = json_string_value(json_object_get(v, "error"));
        if (e) hs_info("federation: %s refused %s: %.200s", dest_name, id, e);
    }
}

/* Send one transaction; the outcome. */
static fed_send_outcome send_txn(dest *d, fed_txn *t, long *status_out, char *why,
                                 size_t why_len) {
    char path[96];
    /* Unique per destination for good: this start's time, then a count. */
    snprintf(path, sizeof path, "/_matrix/federation/v1/send/%lld_%lld", S.started_ms,
             (long long)atomic_fetch_add(&S.next_txn, 1));
    json_t *body = json_pack("{s:s, s:I, s:O, s:O}", "origin", S.srv->cfg->server_name,
                             "origin_server_ts", (json_int_t)hs_now_ms(), "pdus", t->pdus,
                             "edus", t->edus);
    long status = 0;
    json_t *resp = NULL;
    hs_err err = {0};
    fed_request(S.srv, d->name, "PUT", path, body, &status, &resp, &err);
    json_decref(body);
    fed_send_outcome o = fed_send_classify(status, &err);
    *status_out = status;
    if (o == FED_SENT) log_pdu_errors(d->name, resp);
    else snprintf(why, why_len, "%s", err.msg);
    hs_debug("federation: %s %s: %zu PDUs, %zu EDUs -> %ld", d->name, path,
             json_array_size(t->pdus), json_array_size(t->edus), status);
    json_decref(resp);
    return o;
}

/* Build the next transaction; -1 on a database error. */
static int next_txn(dest *d, fed_txn *t, bool first) {
    hs_err err = {0};
    db_conn *c = db_acquire(S.srv->db, &err);
    if (!c) return later(d, &err), -1;
    pthread_mutex_lock(&S.mu);
    bool catching_up = first && (d->interval > 0 || d->came_back);
    pthread_mutex_unlock(&S.mu);
    long long dropped = catching_up ? fed_queue_catch_up(c, d->name, S.catchup_max, &err) : 0;
    if (dropped > 0)
        hs_info("federation: %s catches up with the newest event of each room (%lld older"
                " ones are left for it to fetch)", d->name, dropped);
    json_t *typing = take_typing(d, FED_TXN_MAX_EDUS);
    int rc = dropped < 0 ? -1
                         : fed_queue_build(c, d->name,
                                           FED_TXN_MAX_EDUS - (int)json_array_size(typing), t, &err);
    db_release(S.srv->db, c);
    if (rc < 0) return json_decref(typing), later(d, &err), -1;
    json_array_extend(typing, t->edus); /* typing first: it ages fastest */
    json_decref(t->edus);
    t->edus = typing;
    return 0;
}

static void forget(dest *d, fed_txn *t) {
    hs_err err = {0};
    db_conn *c = db_acquire(S.srv->db, &err);
    if (!c || fed_queue_delete(c, d->name, t, &err) < 0) later(d, &err); /* resent: harmless */
    db_release(S.srv->db, c);
}

static void run_destination(dest *d) {
    for (bool first = true; !stopping(); first = false) {
        fed_txn t;
        fed_txn_init(&t);
        if (next_txn(d, &t, first) < 0) {
            fed_txn_clear(&t);
            return;
        }
        if (fed_txn_empty(&t)) {
            pthread_mutex_lock(&S.mu);
            bool came_back = d->came_back;
            pthread_mutex_unlock(&S.mu);
            if (came_back) record(d, true, NULL); /* nothing to send, but it is up */
            fed_txn_clear(&t);
            return;
        }
        char why[600] = "";
        long status = 0;
        fed_send_outcome o = send_txn(d, &t, &status, why, sizeof why);
        if (o == FED_RETRY && stopping()) { /* our shutdown cut it off */
            fed_txn_clear(&t);
            return;
        }
        if (o == FED_RETRY) {
            if (!retry_quickly(d, status, why)) record(d, false, why);
            fed_txn_clear(&t);
            return;
        }
        if (o == FED_DROP)
            hs_warn("federation: %s refused a transaction of %zu PDUs and %zu EDUs, dropped: %s",
                    d->name, json_array_size(t.pdus), json_array_size(t.edus), why);
        forget(d, &t);
        if (o == FED_SENT) record(d, true, NULL);
        fed_txn_clear(&t);
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&S.mu);
    while (!S.stop) {
        if (!S.n_ready) {
            pthread_cond_wait(&S.work_cv, &S.mu);
            continue;
        }
        dest *d = S.ready[--S.n_ready];
        pthread_mutex_unlock(&S.mu);
        run_destination(d);
        pthread_mutex_lock(&S.mu);
        d->busy = false;
        if (d->has_work) pthread_cond_signal(&S.cv);
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

/* ---- the public side ------------------------------------------------------------------------ */

void fed_sender_wake(void) {
    pthread_mutex_lock(&S.mu);
    if (!S.kick) S.data_kick = true; /* a kick already pending keeps its kind */
    S.kick = true;
    pthread_cond_signal(&S.cv);
    pthread_mutex_unlock(&S.mu);
}

void fed_sender_wake_queued(void) {
    pthread_mutex_lock(&S.mu);
    S.rescan = true;
    pthread_mutex_unlock(&S.mu);
    fed_sender_wake();
}

static void on_event_committed(hs_server *srv, const room_event *ev) {
    (void)srv, (void)ev;
    fed_sender_wake();
}

void fed_sender_typing(const char *room_id, const char *user_id, bool typing) {
    pthread_mutex_lock(&S.mu);
    if (S.running && !S.stop) {
        if (S.n_typing == S.cap_typing) {
            S.cap_typing = S.cap_typing ? S.cap_typing * 2 : 16;
            S.typing = realloc(S.typing, S.cap_typing * sizeof *S.typing);
        }
        S.typing[S.n_typing++] = (typing_note){strdup(room_id), strdup(user_id), typing};
        S.kick = true, S.data_kick = false; /* typing goes out at once */
        pthread_cond_signal(&S.cv);
    }
    pthread_mutex_unlock(&S.mu);
}

static void on_typing(hs_server *srv, const char *room_id, const char *user_id, bool typing) {
    if (fed_user_is_on(user_id, srv->cfg->server_name)) fed_sender_typing(room_id, user_id, typing);
}

void fed_sender_remote_up(const char *server_name) {
    pthread_mutex_lock(&S.mu);
    dest *d = S.running ? find_dest(server_name, false) : NULL;
    if (d && (d->interval > 0 || d->quick > 0) && d->retry_until > hs_now_ms()) {
        d->retry_until = 0;
        d->came_back = true;
        d->has_work = true;
        S.kick = true, S.data_kick = false;
        pthread_cond_signal(&S.cv);
    }
    pthread_mutex_unlock(&S.mu);
}

/* federation_sender_shard (checked when the config loaded), and the test
 * settings: PVYHS_FEDERATION_SENDER_SHARD overrides the shard so that tests
 * can run several senders on one config. */
static void read_settings(const cfg *c) {
    S.shard_i = 0, S.shard_n = 1;
    const char *sh = getenv("PVYHS_FEDERATION_SENDER_SHARD");
    unsigned i, n;
    if (!sh) sh = c->federation_sender_shard;
    if (cfg_sender_shard_parse(sh, &i, &n)) S.shard_i = i, S.shard_n = n;
    else if (sh) hs_warn("PVYHS_FEDERATION_SENDER_SHARD=%s is not i/n; sending to every server", sh);
    /* For tests only: a first back-off of seconds, a small catch-up limit. */
    S.min_retry_ms = FED_RETRY_MIN_MS;
    const char *m = getenv("PVYHS_FEDERATION_MIN_RETRY_MS");
    if (m && atoll(m) > 0) S.min_retry_ms = atoll(m);
    S.send_retries = FED_SEND_RETRIES;
    const char *sr = getenv("PVYHS_FEDERATION_SEND_RETRIES");
    if (sr && *sr && atoi(sr) >= 0 && atoi(sr) <= FED_SEND_RETRIES) S.send_retries = atoi(sr);
    S.catchup_max = FED_CATCHUP_MAX_PDUS;
    const char *cu = getenv("PVYHS_FEDERATION_CATCHUP_MAX_PDUS");
    if (cu && atoll(cu) > 0) S.catchup_max = atoll(cu);
}

int fed_sender_start(hs_server *srv) {
    pthread_mutex_lock(&S.mu);
    if (S.running) return pthread_mutex_unlock(&S.mu), 0;
    S.srv = srv;
    S.stop = false;
    read_settings(srv->cfg);
    S.started_ms = hs_now_ms();
    atomic_store(&S.next_txn, 1);
    int rc = pthread_create(&S.dispatcher, NULL, dispatcher_main, NULL);
    S.has_dispatcher = rc == 0;
    S.n_workers = 0;
    for (int i = 0; rc == 0 && i < N_WORKERS; i++)
        if ((rc = pthread_create(&S.workers[i], NULL, worker_main, NULL)) == 0) S.n_workers++;
    S.running = true; /* even half-started: fed_sender_stop joins what runs */
    pthread_mutex_unlock(&S.mu);
    if (rc != 0) hs_error("federation sender: cannot start its threads");
    else if (S.shard_n > 1)
        hs_info("federation sender: instance %u of %u", S.shard_i, S.shard_n);
    return rc == 0 ? 0 : -1;
}

static void free_all(void) {
    for (size_t b = 0; b < N_BUCKETS; b++) {
        dest *d = S.buckets[b];
        while (d) {
            dest *next = d->next;
            free(d->name);
            json_decref(d->typing);
            free(d);
            d = next;
        }
        S.buckets[b] = NULL;
    }
    for (size_t i = 0; i < S.n_typing; i++) free(S.typing[i].room_id), free(S.typing[i].user_id);
    free(S.typing), free(S.ready);
    S.typing = NULL, S.ready = NULL;
    S.n_typing = S.cap_typing = S.n_ready = S.cap_ready = 0;
}

void fed_sender_stop(void) {
    pthread_mutex_lock(&S.mu);
    if (!S.running) return (void)pthread_mutex_unlock(&S.mu);
    S.stop = true;
    pthread_cond_broadcast(&S.cv);
    pthread_cond_broadcast(&S.work_cv);
    pthread_mutex_unlock(&S.mu);
    fed_http_shutdown(); /* transactions in flight fail now; their rows stay queued */
    if (S.has_dispatcher) pthread_join(S.dispatcher, NULL);
    for (int i = 0; i < S.n_workers; i++) pthread_join(S.workers[i], NULL);
    pthread_mutex_lock(&S.mu);
    free_all();
    S.n_workers = 0;
    S.has_dispatcher = false;
    S.running = false;
    pthread_mutex_unlock(&S.mu);
}

/* ---- hooks for the Client-Server API ------------------------------------------------------------ */

static const client_fed_outbound hooks = {
    .event_committed = on_event_committed,
    .typing = on_typing,
    .profile = fed_remote_profile,
    .keys_query = fed_remote_keys_query,
    .keys_claim = fed_remote_keys_claim,
};

void fed_outbound_install(void) { client_fed_set_outbound(&hooks); }
