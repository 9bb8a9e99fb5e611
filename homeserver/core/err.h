/* err.h — the error value every fallible function fills.
 *
 * Functions return 0 on success or a negative code and fill an hs_err with the
 * HTTP status, the Matrix errcode and a human message; HTTP handlers turn it
 * into {"errcode": ..., "error": ...} unchanged. */
#ifndef HS_ERR_H
#define HS_ERR_H

typedef struct hs_err {
    int status;        /* HTTP status to answer with (400, 403, 500 …) */
    char errcode[48];  /* Matrix errcode, e.g. "M_BAD_JSON" */
    char msg[512];     /* human-readable, safe to show to the client */
    long long retry_after_ms; /* with 429 M_LIMIT_EXCEEDED: when to try again */
    char room_version[32];    /* with M_INCOMPATIBLE_ROOM_VERSION: the room's version */
} hs_err;

/* Fill e (if not NULL) and return -1, so callers can `return hs_err_set(...)`. */
int hs_err_set(hs_err *e, int status, const char *errcode, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reset e to "no error". */
void hs_err_clear(hs_err *e);

#endif
