/* ip_range.h — IP ranges ("10.0.0.0/8", "fc00::/7", or a bare address) and
 * the check every outbound connection of the server makes against a deny
 * list and its exceptions (URL previews; federation has the same rules). */
#ifndef HS_IP_RANGE_H
#define HS_IP_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Whether addr (4 or 16 bytes of the given family) lies in any of ranges;
 * malformed entries match nothing. */
bool hs_ip_in_ranges(int family, const unsigned char *addr, char *const *ranges, size_t n);

/* Allowed unless in deny and not in allow. An IPv4-mapped IPv6 address
 * (::ffff:10.0.0.1) is judged as the IPv4 address it reaches, too. Other
 * address families are never allowed. */
bool hs_ip_allowed(const struct sockaddr *sa, char *const *deny, size_t n_deny,
                   char *const *allow, size_t n_allow);

#endif
