/* policy.c — whom we talk to: federation_domain_whitelist and the outbound
 * IP policy (ip_range_blacklist / ip_range_whitelist, checked by the core's
 * ip_range.c as URL previews are). */
#include <string.h>

#include "federation.h"
#include "homeserver/core/ip_range.h"

bool fed_domain_allowed(const cfg *c, const char *server_name) {
    if (!c->has_federation_domain_whitelist) return true;
    for (size_t i = 0; i < c->federation_domain_whitelist.n; i++)
        if (!strcmp(c->federation_domain_whitelist.v[i], server_name)) return true;
    return false;
}

bool fed_ip_allowed(const cfg *c, const struct sockaddr *sa) {
    return hs_ip_allowed(sa, c->ip_range_blacklist.v, c->ip_range_blacklist.n,
                         c->ip_range_whitelist.v, c->ip_range_whitelist.n);
}
