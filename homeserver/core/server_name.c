/* server_name.c — the spec's server-name grammar (appendix "Server Name"):
 * a DNS name, an IPv4 literal or a bracketed IPv6 literal, with an optional
 * :port. Federation holds every name from the network to it, and the rooms
 * layer needs the host part to evaluate server ACLs. */
#include "server_name.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

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

int hs_server_name_parse(const char *name, char *host, size_t hostcap, int *port, int *ip_family) {
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

bool hs_server_name_valid(const char *s) {
    char host[256];
    int port, fam;
    return hs_server_name_parse(s, host, sizeof host, &port, &fam) == 0;
}
