/* server_name.h — the server-name grammar of the spec's appendix. */
#ifndef HS_SERVER_NAME_H
#define HS_SERVER_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* Split a server name into host (IPv6 without brackets) and port (0 when
 * absent); *ip_family is 4 or 6 for IP literals, else 0. 0, or -1 if the
 * name breaks the grammar or host does not fit. */
int hs_server_name_parse(const char *name, char *host, size_t hostcap, int *port, int *ip_family);

/* Whether s is a valid server name: a DNS name, IPv4 literal or [IPv6]
 * literal, with an optional :port. */
bool hs_server_name_valid(const char *s);

#endif
