/* media.h — the content repository: uploads, downloads, thumbnails, and the
 * admin's retention tools.
 *
 * Every file is stored encrypted at rest under media_store_path, addressed by
 * a keyed hash of its content (so the same file is stored once), each under
 * its own random key; those keys are kept in the database only sealed by the
 * media master key (media_encryption_key_path or $PVYHS_MEDIA_KEY), which
 * never enters the database. Uploads and downloads stream in constant memory. */
#ifndef MEDIA_MEDIA_H
#define MEDIA_MEDIA_H

#include <stdbool.h>

#include "homeserver/db/db.h"
#include "homeserver/http/http.h"

/* Register the Client-Server media endpoints (/_matrix/client/v1/media/…,
 * /_matrix/media/v3|r0|v1/…). */
void media_routes(hs_router *rt);

/* Load (or on the very first start, create) the media master key and check it
 * against the one the database's media was sealed with. Runs by itself on the
 * first media request; call it at start-up to find a missing or wrong key
 * before serving. 0, or -1 with err saying what the admin must do. */
int media_start(hs_server *srv, hs_err *err);

/* Admin operations (the `pvyhs media` command), on a connection to the
 * database; they need no master key. media names "mxc://server/id" or
 * "server/id". Each returns the number of media affected, or -1 with err. */
long media_quarantine(db_conn *c, const char *media, const char *by, bool undo, hs_err *err);
long media_quarantine_user(db_conn *c, const char *user_id, const char *by, bool undo,
                           hs_err *err);
/* Delete media, their thumbnails, and the stored files no other media uses. */
long media_delete(db_conn *c, const cfg *cf, const char *media, hs_err *err);
/* Delete local (remote false) or cached remote (remote true) media last
 * accessed before before_ms. */
long media_delete_before(db_conn *c, const cfg *cf, bool remote, long long before_ms,
                         hs_err *err);

#endif
