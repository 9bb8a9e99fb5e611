/* policy.c — whom we talk to: federation_domain_whitelist, the outbound IP
 * policy (ip_range_blacklist / ip_range_whitelist) and the server-name
 * grammar every name from the network is held to.
 *
 * The IP lists are parsed on every check: a connection attempt is rare next
 * to what it costs, and nothing stale can survive a config change. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "federation.h"
#include "transport_internal.h"

bool fed_domain_allowed(const cfg *c, const char *server_name) {
    if (!c->has_federation_domain_whitelist) return true;
    for (size_t i = 0; i < c->federation_domain_whitelist.n; i++)
        if (!strcmp(c->federation_domain_whitelist.v[i], server_name)) return true;
    return false;
}

bool fed_cidr_parse(const char *s, fed_cidr *out) {
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

bool fed_cidr_match(const fed_cidr *c, int family, const unsigned char *addr) {
    if (c->family != family) return false;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, (size_t)full) != 0) return false;
    if (!rest) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

static bool in_list(const cfg_strlist *l, int family, const unsigned char *addr) {
    for (size_t i = 0; i < l->n; i++) {
        fed_cidr c;
        if (fed_cidr_parse(l->v[i], &c) && fed_cidr_match(&c, family, addr)) return true;
    }
    return false;
}

static bool addr_allowed(const cfg *c, int family, const unsigned char *addr) {
    if (in_list(&c->ip_range_whitelist, family, addr)) return true;
    return !in_list(&c->ip_range_blacklist, family, addr);
}

bool fed_ip_allowed(const cfg *c, const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return addr_allowed(c, AF_INET,
                            (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family != AF_INET6) return false;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    /* ::ffff:10.0.0.1 reaches 10.0.0.1: judge it as that, and as itself. */
    if (IN6_IS_ADDR_V4MAPPED(a6) && !addr_allowed(c, AF_INET, a6->s6_addr + 12)) return false;
    return addr_allowed(c, AF_INET6, a6->s6_addr);
}

/* dns-name: [A-Za-z0-9.-]{1,255}, labels of 1-63 characters. */
static bool dns_name_valid(const char *h, size_t len) {
    if (len == 0 || len > 255) return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = h[i];
        if (ch == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
        if (++label > 63) return false;
    }
    return label > 0;
}

int fed_parse_server_name(const char *name, char *host, size_t hostcap, int *port, int *ip_family) {
    size_t hl;
    int fam = 0;
    const char *h = name;
    if (!name || !*name) return -1;
    if (name[0] == '[') {
        const char *e = strchr(name, ']');
        if (!e) return -1;
        h = name + 1;
        hl = (size_t)(e - h);
        char a[64];
        unsigned char buf[16];
        if (hl == 0 || hl >= sizeof a) return -1;
        memcpy(a, h, hl);
        a[hl] = 0;
        if (inet_pton(AF_INET6, a, buf) != 1) return -1;
        fam = 6;
        name = e + 1;
    } else {
        hl = strcspn(name, ":");
        char a[64];
        unsigned char buf[4];
        if (!dns_name_valid(name, hl)) return -1;
        if (strspn(name, "0123456789.") >= hl) { /* digits and dots: must be IPv4 */
            if (hl >= sizeof a) return -1;
            memcpy(a, name, hl);
            a[hl] = 0;
            if (inet_pton(AF_INET, a, buf) != 1) return -1;
            fam = 4;
        }
        name += hl;
    }
    int p = 0;
    if (*name == ':') {
        const char *d = name + 1;
        size_t n = strlen(d);
        if (n < 1 || n > 5 || strspn(d, "0123456789") != n) return -1;
        p = atoi(d);
        if (p < 1 || p > 65535) return -1;
    } else if (*name) {
        return -1;
    }
    if (hl + 1 > hostcap) return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = p;
    *ip_family = fam;
    return 0;
}

bool fed_server_name_valid(const char *s) {
    char host[256];
    int port, fam;
    return fed_parse_server_name(s, host, sizeof host, &port, &fam) == 0;
}
