/* ip_range.c — IP ranges and the outbound deny/allow check. Lists are parsed
 * on every check: connections are rare next to what that costs, and a
 * changed config can't leave anything stale behind. */
#include "ip_range.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

typedef struct ip_range {
    int family;
    unsigned char addr[16];
    int bits;
} ip_range;

static bool parse(const char *s, ip_range *out) {
    char addr[64];
    size_t al = strcspn(s, "/");
    if (al == 0 || al >= sizeof addr) return false;
    memcpy(addr, s, al);
    addr[al] = 0;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, addr, out->addr) == 1) out->family = AF_INET, out->bits = 32;
    else if (inet_pton(AF_INET6, addr, out->addr) == 1) out->family = AF_INET6, out->bits = 128;
    else return false;
    if (!s[al]) return true; /* a bare address: that host only */
    char *end;
    long b = strtol(s + al + 1, &end, 10);
    if (end == s + al + 1 || *end || b < 0 || b > out->bits) return false;
    out->bits = (int)b;
    return true;
}

static bool match(const ip_range *r, int family, const unsigned char *addr) {
    if (r->family != family) return false;
    int full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(r->addr, addr, (size_t)full) != 0) return false;
    if (!rest) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (r->addr[full] & mask) == (addr[full] & mask);
}

bool hs_ip_in_ranges(int family, const unsigned char *addr, char *const *ranges, size_t n) {
    for (size_t i = 0; i < n; i++) {
        ip_range r;
        if (parse(ranges[i], &r) && match(&r, family, addr)) return true;
    }
    return false;
}

static bool allowed(int family, const unsigned char *addr, char *const *deny, size_t n_deny,
                    char *const *allow, size_t n_allow) {
    if (hs_ip_in_ranges(family, addr, allow, n_allow)) return true;
    return !hs_ip_in_ranges(family, addr, deny, n_deny);
}

bool hs_ip_allowed(const struct sockaddr *sa, char *const *deny, size_t n_deny,
                   char *const *allow, size_t n_allow) {
    if (sa->sa_family == AF_INET)
        return allowed(AF_INET, (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr,
                       deny, n_deny, allow, n_allow);
    if (sa->sa_family != AF_INET6) return false;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6) && !allowed(AF_INET, a6->s6_addr + 12, deny, n_deny, allow, n_allow))
        return false;
    return allowed(AF_INET6, a6->s6_addr, deny, n_deny, allow, n_allow);
}
