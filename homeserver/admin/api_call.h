/* api_call.h — requests to the Client-Server API (and Synapse's admin API)
 * from the `pvyhs` commands, as a named local user: over HTTP to the
 * running server, or through the same handlers in this process when it is
 * stopped (api_call.c says why). */
#ifndef ADMIN_API_CALL_H
#define ADMIN_API_CALL_H

#include <jansson.h>
#include <stdbool.h>

#include "admin.h"
#include "homeserver/http/http.h"

typedef struct admin_api {
    const cfg *cfg;
    db_pool *db;      /* one connection: none may be held while a request runs */
    bool remote;      /* the server runs: HTTP */
    char base[300];   /* its client listener */
    bool tls;
    hs_server srv;    /* in this process otherwise */
    db_pool *own_pool;
} admin_api;

/* Open the way in for an open runtime; 0, or -1 with err. Close it with
 * admin_api_close (also after a failed open). */
int admin_api_open(admin_api *a, admin_runtime *rt, hs_err *err);
void admin_api_close(admin_api *a);

/* Status and body (*resp, a new reference; the error object for a refused
 * request) of one request as user `as`; -1 when it could not be made. */
int admin_api_call(admin_api *a, const char *as, const char *method, const char *path,
                   const json_t *body, json_t **resp, hs_err *err);

/* s percent-encoded for a path segment (malloc'd). */
char *admin_api_escape(const char *s);

/* The oldest active server admin's user ID (malloc'd), or NULL with 404
 * M_NOT_FOUND when there is none (or another error). */
char *admin_oldest_admin(db_conn *c, hs_err *err);

#endif
