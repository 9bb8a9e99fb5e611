/* log.c — timestamped lines on stderr, one write(2) each so threads don't interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum hs_log_level min_level = HS_LOG_INFO;

void hs_log_set_level(enum hs_log_level lvl) { min_level = lvl; }

int hs_log_level_parse(const char *s) {
    if (!strcasecmp(s, "debug")) return HS_LOG_DEBUG;
    if (!strcasecmp(s, "info")) return HS_LOG_INFO;
    if (!strcasecmp(s, "warning") || !strcasecmp(s, "warn")) return HS_LOG_WARN;
    if (!strcasecmp(s, "error")) return HS_LOG_ERROR;
    return -1;
}

void hs_log(enum hs_log_level lvl, const char *fmt, ...) {
    static const char *names[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    if (lvl < min_level) return;
    char line[2048];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, "%s ", names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    n += (size_t)m;
    if (n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
