/* log.h — one-line logs to stderr: "2026-11-26T05:41:01Z INFO  message".
 * The server learns as little as it can: never log access tokens, passwords
 * or client IP addresses. */
#ifndef HS_LOG_H
#define HS_LOG_H

enum hs_log_level { HS_LOG_DEBUG, HS_LOG_INFO, HS_LOG_WARN, HS_LOG_ERROR };

void hs_log_set_level(enum hs_log_level lvl);
/* Parse "debug" / "info" / "warning" / "warn" / "error"; -1 if unknown. */
int hs_log_level_parse(const char *s);
void hs_log(enum hs_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define hs_debug(...) hs_log(HS_LOG_DEBUG, __VA_ARGS__)
#define hs_info(...) hs_log(HS_LOG_INFO, __VA_ARGS__)
#define hs_warn(...) hs_log(HS_LOG_WARN, __VA_ARGS__)
#define hs_error(...) hs_log(HS_LOG_ERROR, __VA_ARGS__)

#endif
