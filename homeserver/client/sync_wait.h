/* sync_wait.h — long-polling for /sync and sliding sync: a request parks on
 * its suspended connection (no thread) until something it can see changes or
 * its timeout passes, then its handler runs again. */
#ifndef CLIENT_SYNC_WAIT_H
#define CLIENT_SYNC_WAIT_H

#include <stdbool.h>

#include "homeserver/http/http.h"
#include "sync_token.h"

/* Call first in the handler: on a resumed run it stops listening and returns
 * the original deadline; on the first run it sets the wait up (deadline =
 * now + timeout_ms) or returns 0 when timeout_ms is 0. */
long long sync_wait_begin(hs_req *r, long long timeout_ms);

/* Listen for the user and these rooms, and park the request unless something
 * committed since `seen`. true: parked (the handler returns HS_SUSPENDED);
 * false: look again now. Needs sync_wait_begin with a timeout first. */
bool sync_wait_park(hs_req *r, char **rooms, size_t n, const sync_token *seen);

#endif
