/* schema.c — the keys of homeserver.yaml as tables, and the walker that applies
 * a table to a YAML mapping.
 *
 * A new key is a new row: its name, type, place in struct cfg, default and an
 * optional check. The walker sets every default first, then converts the keys
 * the file gives, warns about keys no row knows (typos stay visible without
 * stopping the server) and reports required keys that are missing. Keep the
 * rows in the order of config/homeserver.example.yaml, which documents each. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define OFF(f) offsetof(cfg, f)

/* Synapse's DEFAULT_IP_RANGE_BLOCKLIST: never make outbound requests here, so a
 * DNS name pointed at the LAN can't turn the server against its own network. */
const char *const cfg_default_ip_blacklist[] = {
    "127.0.0.0/8",    "10.0.0.0/8",      "172.16.0.0/12", "192.168.0.0/16",
    "100.64.0.0/10",  "192.0.0.0/24",    "169.254.0.0/16", "192.88.99.0/24",
    "198.18.0.0/15",  "192.0.2.0/24",    "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4",    "::1/128",         "fe80::/10",     "fc00::/7",
    "2001:db8::/32",  "ff00::/8",        "fec0::/10",     NULL,
};

static bool cfg_check_nonempty(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    if (**(char **)field) return true;
    cfg_error(x, v->line, key, "must not be empty (remove the key to leave it unset)");
    return false;
}

/* TURN URIs as RFC 7065 writes them; a typo here silently breaks calls. */
static bool cfg_check_turn_uris(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    const cfg_strlist *l = field;
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->v[i], "turn:", 5) && strncmp(l->v[i], "turns:", 6)) {
            cfg_error(x, v->line, key, "'%s' must start with turn: or turns:", l->v[i]);
            return false;
        }
    return true;
}

static const cfg_key cfg_ratelimit_keys[] = {
    {.name = "per_second", .type = CFG_T_NUM, .off = offsetof(cfg_ratelimit, per_second)},
    {.name = "burst_count", .type = CFG_T_INT, .off = offsetof(cfg_ratelimit, burst_count),
     .max = INT_MAX},
    {0},
};

#define RATELIMIT(n, field, ps, burst) \
    {.name = n, .type = CFG_T_RATELIMIT, .off = OFF(field), .def_num = ps, .def_int = burst}

#define DURATION(n, field, def) \
    {.name = n, .type = CFG_T_DURATION, .off = OFF(field), .def_int = def}

static const cfg_key cfg_login_existing_keys[] = {
    {.name = "enabled", .type = CFG_T_BOOL, .off = OFF(login_via_existing_session)},
    {.name = "require_ui_auth", .type = CFG_T_IGNORED}, /* always: the spec says MUST */
    {.name = "token_timeout", .type = CFG_T_DURATION, .off = OFF(login_via_existing_token_timeout),
     .def_int = 5 * 60000LL, .min = 1000},
    {0},
};

static const cfg_key cfg_user_directory_keys[] = {
    {.name = "enabled", .type = CFG_T_BOOL, .off = OFF(user_directory_enabled), .def_int = 1},
    {.name = "search_all_users", .type = CFG_T_BOOL, .off = OFF(user_directory_search_all_users)},
    {0},
};

static const cfg_key cfg_presence_keys[] = {
    {.name = "enabled", .type = CFG_T_BOOL, .off = OFF(presence_enabled), .def_int = 1},
    {.name = "include_offline_users_on_sync", .type = CFG_T_BOOL,
     .off = OFF(presence_include_offline_users_on_sync)},
    {.name = "last_active_granularity", .type = CFG_T_DURATION,
     .off = OFF(presence_last_active_granularity), .def_int = 60000LL, .min = 1000},
    {.name = "sync_online_timeout", .type = CFG_T_DURATION,
     .off = OFF(presence_sync_online_timeout), .def_int = 30000LL, .min = 1000},
    {.name = "idle_timeout", .type = CFG_T_DURATION, .off = OFF(presence_idle_timeout),
     .def_int = 5 * 60000LL, .min = 1000},
    {0},
};

/* A user ID's localpart as the spec's grammar has it (lower case, digits,
 * ._=-/+), so the server's own user ID is one every server accepts. */
static bool cfg_check_localpart(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    const char *s = *(char **)field;
    bool ok = *s != 0 && strlen(s) <= 200;
    for (const char *p = s; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._=-/+", *p);
    if (!ok)
        cfg_error(x, v->line, key, "'%s' is not a valid localpart: use a-z, 0-9 and ._=-/+", s);
    return ok;
}

static const cfg_key cfg_server_notices_keys[] = {
    {.name = "system_mxid_localpart", .type = CFG_T_STR, .off = OFF(server_notices_localpart),
     .flags = CFG_REQUIRED, .check = cfg_check_localpart},
    {.name = "system_mxid_display_name", .type = CFG_T_STR, .off = OFF(server_notices_display_name)},
    {.name = "system_mxid_avatar_url", .type = CFG_T_STR, .off = OFF(server_notices_avatar_url)},
    {.name = "room_name", .type = CFG_T_STR, .off = OFF(server_notices_room_name),
     .def_str = "Server Notices"},
    {.name = "room_avatar_url", .type = CFG_T_STR, .off = OFF(server_notices_room_avatar_url)},
    {.name = "room_topic", .type = CFG_T_STR, .off = OFF(server_notices_room_topic)},
    {.name = "auto_join", .type = CFG_T_BOOL, .off = OFF(server_notices_auto_join)},
    {0},
};

static const cfg_key cfg_media_retention_keys[] = {
    {.name = "local_media_lifetime", .type = CFG_T_DURATION, .off = OFF(media_local_lifetime)},
    {.name = "remote_media_lifetime", .type = CFG_T_DURATION, .off = OFF(media_remote_lifetime)},
    {0},
};

static const cfg_key cfg_rc_login_keys[] = {
    RATELIMIT("address", rc_login_address, 0.003, 5),
    RATELIMIT("account", rc_login_account, 0.003, 5),
    RATELIMIT("failed_attempts", rc_login_failed_attempts, 0.17, 3),
    {0},
};

static const cfg_key cfg_rc_joins_keys[] = {
    RATELIMIT("local", rc_joins_local, 0.1, 10),
    RATELIMIT("remote", rc_joins_remote, 0.01, 10),
    {0},
};

static const cfg_key cfg_rc_invites_keys[] = {
    RATELIMIT("per_room", rc_invites_per_room, 0.3, 10),
    RATELIMIT("per_user", rc_invites_per_user, 0.003, 5),
    {0},
};

static const cfg_key cfg_rc_knocks_keys[] = {
    RATELIMIT("per_user", rc_knocks_per_user, 0.1, 10),
    RATELIMIT("per_room", rc_knocks_per_room, 0.3, 10),
    {0},
};

#define STR(n, field, ...) {.name = n, .type = CFG_T_STR, .off = OFF(field), __VA_ARGS__}
#define PATH(n, field, ...) {.name = n, .type = CFG_T_PATH, .off = OFF(field), __VA_ARGS__}
#define BOOL(n, field, def) {.name = n, .type = CFG_T_BOOL, .off = OFF(field), .def_int = def}
#define LIST(n, field, ...) {.name = n, .type = CFG_T_STRLIST, .off = OFF(field), __VA_ARGS__}
#define PATHS(n, field, ...) {.name = n, .type = CFG_T_PATHLIST, .off = OFF(field), __VA_ARGS__}
#define SECTION(n, table) {.name = n, .type = CFG_T_SECTION, .sub = table}
#define IGNORED(n) {.name = n, .type = CFG_T_IGNORED}

const cfg_key cfg_top_keys[] = {
    STR("server_name", server_name, .flags = CFG_REQUIRED, .check = cfg_check_server_name),
    STR("public_baseurl", public_baseurl, .check = cfg_check_public_baseurl),
    {.name = "listeners", .type = CFG_T_CUSTOM, .parse = cfg_parse_listeners},
    PATH("tls_certificate_path", tls_certificate_path),
    PATH("tls_private_key_path", tls_private_key_path),
    {.name = "database", .type = CFG_T_CUSTOM, .parse = cfg_parse_database},
    PATH("data_dir", data_dir, .def_str = "data"),
    STR("log_level", log_level, .def_str = "info", .check = cfg_check_log_level),
    PATH("signing_key_path", signing_key_path),  /* default needs server_name: load.c */
    PATH("media_store_path", media_store_path),  /* default needs data_dir: load.c */
    BOOL("enable_registration", enable_registration, 0),
    BOOL("enable_registration_without_verification", enable_registration_without_verification, 0),
    BOOL("registration_requires_token", registration_requires_token, 0),
    STR("registration_shared_secret", registration_shared_secret, .check = cfg_check_nonempty),
    BOOL("allow_guest_access", allow_guest_access, 0),
    DURATION("refreshable_access_token_lifetime", refreshable_access_token_lifetime, 5 * 60000LL),
    DURATION("refresh_token_lifetime", refresh_token_lifetime, 0),
    DURATION("nonrefreshable_access_token_lifetime", nonrefreshable_access_token_lifetime, 0),
    SECTION("login_via_existing_session", cfg_login_existing_keys),
    BOOL("track_client_ips", track_client_ips, 0),
    DURATION("user_ips_max_age", user_ips_max_age, 28 * 86400000LL),
    SECTION("user_directory", cfg_user_directory_keys),
    SECTION("presence", cfg_presence_keys),
    {.name = "server_notices", .type = CFG_T_SECTION, .sub = cfg_server_notices_keys,
     .flags = CFG_HAS, .has_off = OFF(server_notices)},
    {.name = "encryption_enabled_by_default_for_room_type", .type = CFG_T_CUSTOM,
     .parse = cfg_parse_encryption_default},
    BOOL("forbid_unencrypted_private_rooms", forbid_unencrypted_private_rooms, 0),
    BOOL("forget_rooms_on_leave", forget_rooms_on_leave, 0),
    BOOL("allow_device_name_lookup_over_federation", allow_device_name_lookup_over_federation, 0),
    STR("default_room_version", default_room_version, .def_str = "12",
        .check = cfg_check_room_version),
    BOOL("enable_room_list_search", enable_room_list_search, 1),
    {.name = "room_list_publication_rules", .type = CFG_T_CUSTOM, .parse = cfg_parse_room_rules},
    BOOL("allow_public_rooms_without_auth", allow_public_rooms_without_auth, 0),
    BOOL("allow_public_rooms_over_federation", allow_public_rooms_over_federation, 0),
    LIST("public_rooms_federation_allowlist", public_rooms_federation_allowlist,
         .check = cfg_check_server_names),
    LIST("turn_uris", turn_uris, .check = cfg_check_turn_uris),
    STR("turn_shared_secret", turn_shared_secret, .check = cfg_check_nonempty),
    STR("turn_username", turn_username),
    STR("turn_password", turn_password),
    {.name = "turn_user_lifetime", .type = CFG_T_DURATION, .off = OFF(turn_user_lifetime),
     .def_int = 3600000LL, .min = 1000},
    BOOL("turn_allow_guests", turn_allow_guests, 1),
    PATHS("app_service_config_files", app_service_config_files, .check = cfg_check_files),
    LIST("federation_domain_whitelist", federation_domain_whitelist, .flags = CFG_HAS,
         .has_off = OFF(has_federation_domain_whitelist), .check = cfg_check_server_names),
    BOOL("federation_verify_certificates", federation_verify_certificates, 1),
    PATHS("federation_custom_ca_list", federation_custom_ca_list, .check = cfg_check_files),
    STR("federation_sender_shard", federation_sender_shard, .check = cfg_check_sender_shard),
    BOOL("url_preview_enabled", url_preview_enabled, 0),
    LIST("url_preview_ip_range_blacklist", url_preview_ip_range_blacklist,
         .def_list = cfg_default_ip_blacklist, .check = cfg_check_cidrs),
    LIST("url_preview_ip_range_blocklist", url_preview_ip_range_blacklist,
         .alias_of = "url_preview_ip_range_blacklist", .check = cfg_check_cidrs),
    LIST("url_preview_ip_range_whitelist", url_preview_ip_range_whitelist, .check = cfg_check_cidrs),
    LIST("url_preview_ip_range_allowlist", url_preview_ip_range_whitelist,
         .alias_of = "url_preview_ip_range_whitelist", .check = cfg_check_cidrs),
    {.name = "url_preview_url_blacklist", .type = CFG_T_CUSTOM, .parse = cfg_parse_url_blacklist},
    {.name = "max_upload_size", .type = CFG_T_SIZE, .off = OFF(max_upload_size),
     .def_int = 50LL << 20, .min = 1},
    PATH("media_encryption_key_path", media_encryption_key_path, .def_str = "media.key"),
    BOOL("enable_authenticated_media", enable_authenticated_media, 1),
    {.name = "max_image_pixels", .type = CFG_T_SIZE, .off = OFF(max_image_pixels),
     .def_int = 32LL << 20, .min = 1},
    BOOL("dynamic_thumbnails", dynamic_thumbnails, 0),
    {.name = "thumbnail_sizes", .type = CFG_T_CUSTOM, .parse = cfg_parse_thumbnail_sizes},
    SECTION("media_retention", cfg_media_retention_keys),
    {.name = "media_upload_limits", .type = CFG_T_CUSTOM, .parse = cfg_parse_media_upload_limits},
    {.name = "max_pending_media_uploads", .type = CFG_T_INT, .off = OFF(max_pending_media_uploads),
     .def_int = 5, .min = 1, .max = 100000},
    DURATION("unused_expiration_time", unused_expiration_time, 24 * 3600000LL),
    LIST("ip_range_blacklist", ip_range_blacklist, .def_list = cfg_default_ip_blacklist,
         .check = cfg_check_cidrs),
    LIST("ip_range_blocklist", ip_range_blacklist, .alias_of = "ip_range_blacklist",
         .check = cfg_check_cidrs),
    LIST("ip_range_whitelist", ip_range_whitelist, .check = cfg_check_cidrs),
    LIST("ip_range_allowlist", ip_range_whitelist, .alias_of = "ip_range_whitelist",
         .check = cfg_check_cidrs),
    {.name = "trusted_key_servers", .type = CFG_T_CUSTOM, .parse = cfg_parse_key_servers},
    RATELIMIT("rc_message", rc_message, 0.2, 10),
    RATELIMIT("rc_registration", rc_registration, 0.17, 3),
    SECTION("rc_login", cfg_rc_login_keys),
    SECTION("rc_joins", cfg_rc_joins_keys),
    SECTION("rc_invites", cfg_rc_invites_keys),
    RATELIMIT("rc_admin_redaction", rc_admin_redaction, 0, 0),
    SECTION("rc_knocks", cfg_rc_knocks_keys),
    /* Synapse keys with no meaning here; a config carried over from Synapse
     * should load without a wall of warnings. */
    IGNORED("report_stats"),
    IGNORED("pid_file"),
    IGNORED("log_config"),
    IGNORED("macaroon_secret_key"),
    IGNORED("form_secret"),
    IGNORED("suppress_key_server_warning"),
    {0},
};

static const cfg_key *cfg_find(const cfg_key *t, const char *name) {
    for (; t->name; t++)
        if (!strcmp(t->name, name)) return t;
    return NULL;
}

static bool cfg_default_list(cfg_ctx *x, const cfg_key *k, cfg_strlist *l) {
    for (const char *const *s = k->def_list; s && *s; s++) {
        char *v = k->type == CFG_T_PATHLIST ? cfg_resolve_path(x->dir, *s) : strdup(*s);
        int rc = v ? cfg_strlist_push(l, v) : -1;
        free(v);
        if (rc < 0) return false;
    }
    return true;
}

static void cfg_table_defaults(cfg_ctx *x, const cfg_key *t, void *base) {
    for (; t->name; t++) {
        void *f = (char *)base + t->off;
        bool ok = true;
        if (t->alias_of) continue;
        switch (t->type) {
        case CFG_T_STR: if (t->def_str) ok = (*(char **)f = strdup(t->def_str)) != NULL; break;
        case CFG_T_PATH:
            if (t->def_str) ok = (*(char **)f = cfg_resolve_path(x->dir, t->def_str)) != NULL;
            break;
        case CFG_T_BOOL: *(bool *)f = t->def_int != 0; break;
        case CFG_T_INT: *(int *)f = (int)t->def_int; break;
        case CFG_T_NUM: *(double *)f = t->def_num; break;
        case CFG_T_SIZE:
        case CFG_T_DURATION: *(long long *)f = t->def_int; break;
        case CFG_T_STRLIST:
        case CFG_T_PATHLIST: ok = cfg_default_list(x, t, f); break;
        case CFG_T_RATELIMIT: *(cfg_ratelimit *)f = (cfg_ratelimit){t->def_num, (int)t->def_int}; break;
        case CFG_T_SECTION: cfg_table_defaults(x, t->sub, base); break;
        case CFG_T_CUSTOM:
        case CFG_T_IGNORED: break;
        }
        if (!ok) cfg_oom(x, 0, t->name);
    }
}

static bool cfg_expect_map(cfg_ctx *x, const cfg_node *v, const char *key, const char *what) {
    char buf[80];
    if (v->kind == CFG_MAP) return true;
    cfg_error(x, v->line, key, "expected %s, got %s", what, cfg_node_what(v, buf, sizeof buf));
    return false;
}

/* Lists are converted into a scratch list and only replace the default once
 * they passed their check, so the field never holds half a list. */
static void cfg_apply_list(cfg_ctx *x, const cfg_key *k, const cfg_node *v, const char *key,
                           cfg_strlist *f) {
    cfg_strlist t;
    if (!cfg_get_strlist(x, v, key, k->type == CFG_T_PATHLIST, &t)) return;
    if (k->check && !k->check(x, v, key, &t)) {
        cfg_strlist_free(&t);
        return;
    }
    cfg_strlist_free(f);
    *f = t;
}

static bool cfg_apply_number(cfg_ctx *x, const cfg_key *k, const cfg_node *v, const char *key,
                             void *f) {
    long long n;
    switch (k->type) {
    case CFG_T_INT:
        if (!cfg_get_int(x, v, key, k->min, k->max, &n)) return false;
        *(int *)f = (int)n;
        return true;
    case CFG_T_NUM: return cfg_get_number(x, v, key, (double)k->min, f);
    case CFG_T_SIZE:
        if (!cfg_get_size(x, v, key, &n)) return false;
        if (n < k->min || (k->max && n > k->max)) {
            cfg_error(x, v->line, key, "must be at least %lld bytes", k->min);
            return false;
        }
        *(long long *)f = n;
        return true;
    case CFG_T_DURATION:
        if (!cfg_get_duration(x, v, key, &n)) return false;
        if (n < k->min || (k->max && n > k->max)) {
            cfg_error(x, v->line, key, "must be at least %lld ms%s", k->min,
                      k->max ? " and at most the maximum" : "");
            return false;
        }
        *(long long *)f = n;
        return true;
    default: return false;
    }
}

static void cfg_apply_value(cfg_ctx *x, const cfg_key *k, const cfg_node *v, const char *key,
                            int kline, void *base) {
    void *f = (char *)base + k->off;
    bool ok = false;
    if (k->type == CFG_T_IGNORED) return;
    if (cfg_node_is_null(v)) {
        if (k->flags & CFG_REQUIRED) cfg_error(x, kline, key, "must not be empty");
        else if (k->type == CFG_T_CUSTOM) k->parse(x, NULL, key, kline, base);
        return; /* null means "the default", as in Synapse */
    }
    if (k->flags & CFG_HAS) *(bool *)((char *)base + k->has_off) = true;
    switch (k->type) {
    case CFG_T_STR: ok = cfg_get_string(x, v, key, f); break;
    case CFG_T_PATH: ok = cfg_get_path(x, v, key, f); break;
    case CFG_T_BOOL: ok = cfg_get_bool(x, v, key, f); break;
    case CFG_T_INT:
    case CFG_T_NUM:
    case CFG_T_SIZE:
    case CFG_T_DURATION: ok = cfg_apply_number(x, k, v, key, f); break;
    case CFG_T_STRLIST:
    case CFG_T_PATHLIST: cfg_apply_list(x, k, v, key, f); return;
    case CFG_T_RATELIMIT:
        if (cfg_expect_map(x, v, key, "a mapping with per_second and burst_count"))
            cfg_apply_table(x, cfg_ratelimit_keys, v, kline, key, f, false);
        return;
    case CFG_T_SECTION:
        if (cfg_expect_map(x, v, key, "a mapping"))
            cfg_apply_table(x, k->sub, v, kline, key, base, false);
        return;
    case CFG_T_CUSTOM: k->parse(x, v, key, kline, base); return;
    case CFG_T_IGNORED: return;
    }
    if (ok && k->check) k->check(x, v, key, f);
}

/* Rows the file did not mention: custom sections still get their defaults and
 * required keys are reported (unless given under an old name). */
static void cfg_apply_absent(cfg_ctx *x, const cfg_key *t, const bool *seen, int map_line,
                             const char *prefix, void *base) {
    char key[CFG_PATH_MAX];
    for (size_t i = 0; t[i].name; i++) {
        if (seen[i] || t[i].alias_of) continue;
        cfg_path_key(key, sizeof key, prefix, t[i].name);
        if (t[i].type == CFG_T_CUSTOM) t[i].parse(x, NULL, key, map_line, base);
        if (!(t[i].flags & CFG_REQUIRED)) continue;
        bool via_alias = false;
        for (size_t j = 0; t[j].name; j++)
            if (seen[j] && t[j].alias_of && !strcmp(t[j].alias_of, t[i].name)) via_alias = true;
        if (!via_alias) cfg_error(x, map_line, key, "missing required key");
    }
}

void cfg_apply_table(cfg_ctx *x, const cfg_key *table, const cfg_node *map, int map_line,
                     const char *prefix, void *base, bool defaults) {
    char key[CFG_PATH_MAX];
    size_t n = 0;
    while (table[n].name) n++;
    bool *seen = calloc(n + 1, sizeof *seen);
    if (!seen) {
        cfg_oom(x, map_line, prefix && *prefix ? prefix : "config");
        return;
    }
    if (defaults) cfg_table_defaults(x, table, base);
    for (size_t i = 0; map && i < map->n; i++) {
        const cfg_node *kn = map->keys[i];
        const cfg_key *k = cfg_find(table, kn->str);
        cfg_path_key(key, sizeof key, prefix, kn->str);
        if (!k) {
            cfg_warning(x, kn->line, key, "unknown key");
            continue;
        }
        seen[k - table] = true;
        if (k->alias_of && cfg_map_get(map, k->alias_of)) {
            cfg_error(x, kn->line, key, "is another name for %s; give only one of them", k->alias_of);
            continue;
        }
        cfg_apply_value(x, k, map->vals[i], key, kn->line, base);
    }
    cfg_apply_absent(x, table, seen, map_line, prefix, base);
    free(seen);
}

void cfg_table_free(const cfg_key *t, void *base) {
    for (; t->name; t++) {
        void *f = (char *)base + t->off;
        if (t->alias_of) continue; /* shares its field with the row it names */
        switch (t->type) {
        case CFG_T_STR:
        case CFG_T_PATH: free(*(char **)f); *(char **)f = NULL; break;
        case CFG_T_STRLIST:
        case CFG_T_PATHLIST: cfg_strlist_free(f); break;
        case CFG_T_SECTION: cfg_table_free(t->sub, base); break;
        default: break;
        }
    }
}
