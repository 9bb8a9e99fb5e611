/* sync_lazy_members.c — the memberships each device was sent
 * (sync_lazy_members.h): a few hundred devices, each with the IDs of the
 * last hundred member events it was sent, the device used longest ago
 * making room for a new one. Lookups scan (a hundred short strings, under
 * one lock): cheaper than the member event it saves sending. */
#include "sync_lazy_members.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEVICES 256
#define MEMBERS 100

typedef struct device {
    char *user_id, *device_id;
    char *sent[MEMBERS]; /* member event IDs */
    size_t n, next; /* entries used; where the next one goes once full */
    unsigned long used;
} device;

static device devices[DEVICES];
static unsigned long tick;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void clear_members(device *d) {
    for (size_t i = 0; i < d->n; i++) free(d->sent[i]);
    d->n = d->next = 0;
}

static device *find(const char *user_id, const char *device_id) {
    for (int i = 0; i < DEVICES; i++)
        if (devices[i].user_id && !strcmp(devices[i].user_id, user_id) &&
            !strcmp(devices[i].device_id, device_id)) {
            devices[i].used = ++tick;
            return &devices[i];
        }
    return NULL;
}

/* The device's entry, made (in a free slot, or the one used longest ago)
 * when it has none; NULL when out of memory. */
static device *find_or_make(const char *user_id, const char *device_id) {
    device *d = find(user_id, device_id);
    if (d) return d;
    d = &devices[0];
    for (int i = 0; i < DEVICES && d->user_id; i++)
        if (!devices[i].user_id || devices[i].used < d->used) d = &devices[i];
    char *u = strdup(user_id), *dev = strdup(device_id);
    if (!u || !dev) return free(u), free(dev), NULL;
    clear_members(d);
    free(d->user_id), free(d->device_id);
    d->user_id = u, d->device_id = dev;
    d->used = ++tick;
    return d;
}

static bool holds(const device *d, const char *event_id) {
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->sent[i], event_id)) return true;
    return false;
}

void client_ll_members_reset(const char *user_id, const char *device_id) {
    if (!device_id) return;
    pthread_mutex_lock(&mu);
    device *d = find(user_id, device_id);
    if (d) clear_members(d);
    pthread_mutex_unlock(&mu);
}

bool client_ll_members_sent(const char *user_id, const char *device_id, const char *event_id) {
    if (!device_id) return false;
    pthread_mutex_lock(&mu);
    device *d = find(user_id, device_id);
    bool sent = d && holds(d, event_id);
    pthread_mutex_unlock(&mu);
    return sent;
}

void client_ll_members_note(const char *user_id, const char *device_id, const char *event_id) {
    if (!device_id) return;
    char *ev = strdup(event_id);
    if (!ev) return;
    pthread_mutex_lock(&mu);
    device *d = find_or_make(user_id, device_id);
    if (d && !holds(d, event_id)) {
        if (d->n < MEMBERS) {
            d->sent[d->n++] = ev;
        } else { /* full: the oldest goes */
            free(d->sent[d->next]);
            d->sent[d->next] = ev;
            d->next = (d->next + 1) % MEMBERS;
        }
        ev = NULL;
    }
    pthread_mutex_unlock(&mu);
    free(ev);
}
