/* sync_lazy_members.h — which lazy-loaded memberships each device's /sync
 * has already been sent, so an incremental sync does not send them again
 * (the filter's include_redundant_members false, the default).
 *
 * In memory only, per user and device, bounded: a device or member that
 * falls out (or a restart) only costs a membership sent twice, which
 * include_redundant_members allows anyway. As Synapse's lazy-loaded members
 * cache, but by member event ID: a user's membership differs per room. */
#ifndef CLIENT_SYNC_LAZY_MEMBERS_H
#define CLIENT_SYNC_LAZY_MEMBERS_H

#include <stdbool.h>

/* Forget what the device was sent: an initial sync starts again. */
void client_ll_members_reset(const char *user_id, const char *device_id);

/* Whether the device was sent the member event event_id. */
bool client_ll_members_sent(const char *user_id, const char *device_id, const char *event_id);

/* Note that the device is being sent the member event event_id. */
void client_ll_members_note(const char *user_id, const char *device_id, const char *event_id);

#endif
