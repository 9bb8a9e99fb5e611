/* validate.c — checks on single values that a type alone can't express:
 * Matrix server names, IP literals and CIDR ranges, URLs, log levels, files
 * that must exist. Each check names the key and line of the bad value. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "homeserver/core/log.h"

/* dns-name per the spec's grammar: [A-Za-z0-9.-], no empty labels. A name of
 * only digits and dots is meant as IPv4, so it must be a valid one. */
static bool cfg_host_valid(const char *h, size_t len, const char **why) {
    char buf[256];
    if (len == 0) return *why = "the host name is empty", false;
    if (len > 255) return *why = "the host name is longer than 255 characters", false;
    memcpy(buf, h, len);
    buf[len] = 0;
    if (strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != len)
        return *why = "a host name may only hold letters, digits, '-' and '.'", false;
    if (buf[0] == '.' || buf[len - 1] == '.' || strstr(buf, ".."))
        return *why = "a host name may not start or end with '.' or hold '..'", false;
    for (const char *l = buf; *l;) {
        size_t n = strcspn(l, ".");
        if (n > 63) return *why = "a part of the host name is longer than 63 characters", false;
        l += n + (l[n] == '.');
    }
    struct in_addr a4;
    if (strspn(buf, "0123456789.") == len && inet_pton(AF_INET, buf, &a4) != 1)
        return *why = "not a valid IPv4 address", false;
    return true;
}

static bool cfg_port_valid(const char *p) {
    size_t n = strlen(p);
    if (n < 1 || n > 5 || strspn(p, "0123456789") != n) return false;
    long v = strtol(p, NULL, 10);
    return v >= 1 && v <= 65535;
}

/* Length of the host part: "[...]" for IPv6, else up to ':' or the end. */
static size_t cfg_host_len(const char *s) {
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        return e ? (size_t)(e - s) + 1 : strlen(s);
    }
    return strcspn(s, ":");
}

bool cfg_server_name_valid(const char *s, const char **why) {
    size_t hl = cfg_host_len(s);
    if (s[0] == '[') {
        char a[64];
        struct in6_addr a6;
        if (hl < 3 || s[hl - 1] != ']' || hl - 2 >= sizeof a)
            return *why = "an IPv6 address must be written as [address]", false;
        memcpy(a, s + 1, hl - 2);
        a[hl - 2] = 0;
        if (inet_pton(AF_INET6, a, &a6) != 1) return *why = "not a valid IPv6 address", false;
    } else if (!cfg_host_valid(s, hl, why)) {
        return false;
    }
    if (s[hl] == ':' && !cfg_port_valid(s + hl + 1))
        return *why = "the port after ':' must be a number from 1 to 65535", false;
    if (s[hl] && s[hl] != ':') return *why = "unexpected characters after the host", false;
    return true;
}

char *cfg_server_name_host(const char *s) {
    return strndup(s, cfg_host_len(s));
}

bool cfg_ip_literal_valid(const char *s) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool cfg_cidr_valid(const char *s, const char **why) {
    char addr[64];
    unsigned char buf[sizeof(struct in6_addr)];
    size_t al = strcspn(s, "/");
    if (al == 0 || al >= sizeof addr) return *why = "expected an address/prefix such as 10.0.0.0/8", false;
    memcpy(addr, s, al);
    addr[al] = 0;
    int bits = inet_pton(AF_INET, addr, buf) == 1 ? 32 : inet_pton(AF_INET6, addr, buf) == 1 ? 128 : 0;
    if (!bits) return *why = "not a valid IPv4 or IPv6 address", false;
    if (!s[al]) return true; /* a bare address is a single host, as in Synapse */
    const char *p = s + al + 1;
    size_t pl = strlen(p);
    if (pl < 1 || pl > 3 || strspn(p, "0123456789") != pl || atoi(p) > bits)
        return *why = bits == 32 ? "the prefix length must be 0 to 32" : "the prefix length must be 0 to 128",
               false;
    return true;
}

bool cfg_file_readable(cfg_ctx *x, int line, const char *key, const char *path) {
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cfg_error(x, line, key, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    if (dir) cfg_error(x, line, key, "%s is a directory, not a file", path);
    return !dir;
}

bool cfg_sender_shard_parse(const char *s, unsigned *i, unsigned *n) {
    char *end;
    if (!s || !isdigit((unsigned char)s[0])) return false;
    unsigned long a = strtoul(s, &end, 10);
    if (*end != '/' || !isdigit((unsigned char)end[1])) return false;
    unsigned long b = strtoul(end + 1, &end, 10);
    if (*end || b == 0 || b > 1024 || a >= b) return false;
    *i = (unsigned)a, *n = (unsigned)b;
    return true;
}

bool cfg_check_server_name(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    const char *why;
    if (cfg_server_name_valid(*(char **)field, &why)) return true;
    cfg_error(x, v->line, key, "'%s' is not a valid server name: %s", *(char **)field, why);
    return false;
}

/* "i/n": this process is sender i of n (0 <= i < n). */
bool cfg_check_sender_shard(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    unsigned i, n;
    if (cfg_sender_shard_parse(*(char **)field, &i, &n)) return true;
    cfg_error(x, v->line, key, "expected i/n with 0 <= i < n (such as 0/2), got '%s'",
              *(char **)field);
    return false;
}

/* A room version this server supports ("1" … "12", rooms/room_version.c:
 * the config layer sits below rooms/ and keeps its own copy of the range). */
bool cfg_check_room_version(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    char **s = field;
    char *end = NULL;
    long n = *s && **s != '0' ? strtol(*s, &end, 10) : 0;
    if (!end || *end || n < 1 || n > 12) {
        cfg_error(x, v->line, key, "must be a room version this server supports, 1 to 12; got '%s'",
                  *s ? *s : "");
        return false;
    }
    return true;
}

bool cfg_check_log_level(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    static const char *const names[] = {"debug", "info", "warning", "error"};
    char **s = field;
    int lvl = hs_log_level_parse(*s);
    if (lvl < 0) {
        cfg_error(x, v->line, key, "must be one of debug, info, warning, error; got '%s'", *s);
        return false;
    }
    char *canon = strdup(names[lvl]);
    if (!canon) return cfg_oom(x, v->line, key), false;
    free(*s);
    *s = canon;
    return true;
}

/* Clients build every URL from public_baseurl, so it must end in '/' and
 * carry no query or fragment (as Synapse insists). */
bool cfg_check_public_baseurl(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    char **s = field;
    const char *u = *s;
    size_t skip = !strncasecmp(u, "https://", 8) ? 8 : !strncasecmp(u, "http://", 7) ? 7 : 0;
    const char *why = NULL;
    if (!skip) why = "must start with https:// or http://";
    else if (!u[skip] || u[skip] == '/') why = "has no host name";
    else if (strpbrk(u, "?# \t")) why = "may not contain spaces, a query (?) or a fragment (#)";
    if (why) {
        cfg_error(x, v->line, key, "'%s' %s", u, why);
        return false;
    }
    size_t n = strlen(u);
    if (u[n - 1] == '/') return true;
    char *r = malloc(n + 2);
    if (!r) return cfg_oom(x, v->line, key), false;
    memcpy(r, u, n);
    memcpy(r + n, "/", 2);
    free(*s);
    *s = r;
    return true;
}

/* The list checks below see the converted list and the YAML list it came from,
 * whose items line up one to one. */
typedef bool (*cfg_item_fn)(const char *s, const char **why);

static bool cfg_check_items(cfg_ctx *x, const cfg_node *v, const char *key, void *field,
                            cfg_item_fn ok, const char *what) {
    const cfg_strlist *l = field;
    char ikey[CFG_PATH_MAX];
    bool all = true;
    for (size_t i = 0; i < l->n && i < v->n; i++) {
        const char *why = NULL;
        if (ok(l->v[i], &why)) continue;
        cfg_path_index(ikey, sizeof ikey, key, i);
        cfg_error(x, v->vals[i]->line, ikey, "'%s' is not %s%s%s", l->v[i], what, why ? ": " : "",
                  why ? why : "");
        all = false;
    }
    return all;
}

static bool cfg_item_ip(const char *s, const char **why) {
    (void)why;
    return cfg_ip_literal_valid(s);
}

bool cfg_check_cidrs(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    return cfg_check_items(x, v, key, field, cfg_cidr_valid, "an IP range");
}

bool cfg_check_server_names(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    return cfg_check_items(x, v, key, field, cfg_server_name_valid, "a valid server name");
}

bool cfg_check_ip_literals(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    return cfg_check_items(x, v, key, field, cfg_item_ip,
                           "an IP address (such as 127.0.0.1, 0.0.0.0 or ::)");
}

bool cfg_check_files(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    const cfg_strlist *l = field;
    char ikey[CFG_PATH_MAX];
    bool all = true;
    for (size_t i = 0; i < l->n && i < v->n; i++) {
        cfg_path_index(ikey, sizeof ikey, key, i);
        if (!cfg_file_readable(x, v->vals[i]->line, ikey, l->v[i])) all = false;
    }
    return all;
}
