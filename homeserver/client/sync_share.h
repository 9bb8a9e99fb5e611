/* sync_share.h — identical /sync requests that run at the same time share
 * one answer, as Synapse's sync response cache does.
 *
 * A client's retries, and several connections of one device waiting on the
 * same token (woken together by the same message), would otherwise each
 * build the same response from the database. The first becomes the owner
 * and builds; the others, arriving while it builds, wait for its answer and
 * get a copy of it. Only answers with news are shared (an empty one means
 * the owner parks, and so does each of the others on its own).
 *
 * A finished answer stays for those arriving a little later (woken
 * together but served after the first ones, the workers being busy) only
 * while nothing at all has committed since it was built: same token, same
 * request, same answer. A client that acted meanwhile moved the token, so
 * it never gets an answer that predates what it did. */
#ifndef CLIENT_SYNC_SHARE_H
#define CLIENT_SYNC_SHARE_H

#include <jansson.h>
#include <stdbool.h>

#include "sync_token.h"

typedef struct sync_share sync_share;

/* Join the build for key (user, device and every parameter that shapes the
 * answer) at the server's token now (the owner builds up to it). *owner
 * true: the caller builds and must call sync_share_end. NULL when the table
 * is full: build alone. */
sync_share *sync_share_begin(const char *key, const sync_token *now, bool *owner);

/* The owner's answer: resp (not taken; copied) when it has news, NULL when
 * it has none or failed. Wakes the others. */
void sync_share_end(sync_share *s, const json_t *resp);

/* A non-owner's wait: a copy of the owner's answer (caller owns it), or NULL
 * when there is none to share (then build alone). */
json_t *sync_share_wait(sync_share *s);

#endif
