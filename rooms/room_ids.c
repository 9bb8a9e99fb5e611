/* room_ids.c — the identifier grammar events are checked against (appendix
 * "Identifier Grammar"): server names, user IDs, room IDs and event IDs.
 *
 * Localparts are checked as leniently as the spec's "historical user IDs"
 * demand (anything but ':' and NUL), because rooms full of such senders
 * exist and rejecting them would split us from the rest of the federation;
 * the server name part is checked strictly, since every server that
 * federates needs a valid one. */
#include "event_internal.h"

#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static bool valid_port(const char *s, size_t len) {
    if (len < 1 || len > 5) return false;
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i])) return false;
    return true;
}

/* IPv4 literals are a subset of this grammar, so they need no branch. */
static bool valid_dns_name(const char *s, size_t len) {
    if (len < 1 || len > 255) return false;
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i]) && !is_alpha(s[i]) && s[i] != '-' && s[i] != '.') return false;
    return true;
}

static bool valid_ipv6_body(const char *s, size_t len) {
    if (len < 2 || len > 45) return false;
    for (size_t i = 0; i < len; i++)
        if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.') return false;
    return true;
}

bool room_valid_server_name(const char *s, size_t len) {
    if (len == 0) return false;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close) return false;
        size_t host = (size_t)(close - s) + 1;
        if (!valid_ipv6_body(s + 1, host - 2)) return false;
        if (host == len) return true;
        return s[host] == ':' && valid_port(s + host + 1, len - host - 1);
    }
    const char *colon = memchr(s, ':', len);
    if (!colon) return valid_dns_name(s, len);
    size_t host = (size_t)(colon - s);
    return valid_dns_name(s, host) && valid_port(colon + 1, len - host - 1);
}

/* sigil localpart ":" server_name, the shape shared by user, room (v1–11)
 * and event (v1–2) IDs. */
static bool valid_sigil_id(char sigil, const char *s, size_t len) {
    if (len < 2 || len > ROOM_ID_MAX_BYTES || s[0] != sigil) return false;
    if (memchr(s, '\0', len)) return false;
    const char *colon = memchr(s + 1, ':', len - 1);
    if (!colon) return false;
    size_t off = (size_t)(colon - s) + 1;
    return room_valid_server_name(s + off, len - off);
}

bool room_valid_user_id(const char *s, size_t len) { return valid_sigil_id('@', s, len); }

bool room_valid_room_id_with_domain(const char *s, size_t len) { return valid_sigil_id('!', s, len); }

bool room_valid_event_id_with_domain(const char *s, size_t len) {
    return valid_sigil_id('$', s, len);
}

bool room_valid_room_id_hash(const char *s, size_t len) {
    if (len != 44 || s[0] != '!') return false;
    for (size_t i = 1; i < len; i++)
        if (!is_digit(s[i]) && !is_alpha(s[i]) && s[i] != '-' && s[i] != '_') return false;
    return true;
}

const char *room_id_domain(const char *id) {
    const char *colon = id ? strchr(id, ':') : NULL;
    return colon ? colon + 1 : "";
}

const char *room_json_str(const json_t *obj, const char *key) {
    json_t *s = json_object_get(obj, key);
    if (!json_is_string(s)) return NULL;
    const char *v = json_string_value(s);
    if (strlen(v) != json_string_length(s)) return NULL; /* embedded NUL */
    return v;
}

bool room_is_create(const char *type, const char *state_key) {
    return type && state_key && state_key[0] == '\0' && strcmp(type, "m.room.create") == 0;
}
