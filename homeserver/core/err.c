/* err.c — filling hs_err values. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int hs_err_set(hs_err *e, int status, const char *errcode, const char *fmt, ...) {
    if (!e) return -1;
    e->status = status;
    snprintf(e->errcode, sizeof e->errcode, "%s", errcode);
    e->room_version[0] = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

void hs_err_clear(hs_err *e) {
    if (!e) return;
    memset(e, 0, sizeof *e);
}
