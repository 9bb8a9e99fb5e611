/* config.h — the homeserver.yaml model, its loader and its validation.
 *
 * Keys carry Synapse's homeserver.yaml names wherever the concept is the same
 * so an admin coming from Synapse recognises them; data_dir and log_level (and
 * a few later additions) are ours. Every key, its type and default is listed in
 * config/homeserver.example.yaml. Relative paths in the file are resolved
 * against the directory holding the config file. */
#ifndef CFG_CONFIG_H
#define CFG_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "../homeserver/core/err.h"

typedef struct cfg_strlist {
    char **v;
    size_t n;
} cfg_strlist;

typedef struct cfg_listener {
    int port;
    cfg_strlist bind_addresses; /* default ["::", "0.0.0.0"]-like: see example */
    bool tls;
    bool x_forwarded;
    bool res_client;           /* resources: names include "client" */
    bool res_federation;       /* resources: names include "federation" (or "keys") */
} cfg_listener;

/* One entry of trusted_key_servers (Synapse's format): a notary we ask for
 * other servers' signing keys. */
typedef struct cfg_key_server {
    char *server_name;
    bool has_verify_keys;         /* verify_keys given: answers must carry its signature */
    cfg_strlist key_ids;          /* verify_keys: "ed25519:abc" ... */
    cfg_strlist keys;             /* ... and the unpadded base64 public key of each */
    bool accept_keys_insecurely;  /* no verify_keys although certificates go unchecked */
} cfg_key_server;

/* encryption_enabled_by_default_for_room_type: which presets get m.room.encryption. */
enum { CFG_ENCRYPT_OFF = 0, CFG_ENCRYPT_INVITE = 1, CFG_ENCRYPT_ALL = 2 };

/* One room_list_publication_rules entry (Synapse's format): globs matched
 * against the publishing user, the room ID and the room's aliases. */
typedef struct cfg_room_rule {
    char *user_id, *room_id, *alias; /* "*" when not given */
    bool allow;                      /* action: allow (default) | deny */
} cfg_room_rule;

typedef struct cfg_ratelimit {
    double per_second;
    int burst_count;
} cfg_ratelimit;

/* thumbnail_sizes: one size thumbnails are made at. */
typedef struct cfg_thumbnail_size {
    int width, height;
    bool crop; /* method: crop (the exact size, cut to fit) or scale (fit inside) */
} cfg_thumbnail_size;

/* media_upload_limits: at most max_size bytes uploaded per user per time_period. */
typedef struct cfg_upload_limit {
    long long time_period; /* ms */
    long long max_size;    /* bytes */
} cfg_upload_limit;

/* url_preview_url_blacklist (Synapse's key): a URL is never previewed when,
 * for one entry, every component the entry names matches its pattern -- a
 * glob, or a POSIX extended regular expression when it starts with ^. The
 * components are those of Python's urllib.parse.urlsplit. */
enum {
    CFG_URL_SCHEME, CFG_URL_NETLOC, CFG_URL_PATH, CFG_URL_QUERY, CFG_URL_FRAGMENT,
    CFG_URL_USERNAME, CFG_URL_PASSWORD, CFG_URL_HOSTNAME, CFG_URL_PORT, CFG_URL_NPARTS
};
extern const char *const cfg_url_parts[CFG_URL_NPARTS]; /* "scheme", "netloc" … */
typedef struct cfg_url_rule {
    char *pattern[CFG_URL_NPARTS]; /* NULL: this component is not looked at */
} cfg_url_rule;

typedef struct cfg {
    char *path;                      /* absolute path of the file loaded */
    char *server_name;
    char *public_baseurl;            /* default "http://<server_name>:<first port>/" */
    cfg_listener *listeners;
    size_t n_listeners;
    char *tls_certificate_path;
    char *tls_private_key_path;

    /* database: absent → embedded cluster under <data_dir>/pg */
    bool db_embedded;
    char *db_dsn;                    /* libpq conninfo for an external database */
    int db_cp_min, db_cp_max;        /* database.args.cp_min / cp_max (5 / 10) */
    int db_connect_retry_s;          /* database.connect_retry_seconds (ours, 60) */

    char *data_dir;                  /* ours; default "<config dir>/data" */
    char *log_level;                 /* ours; debug|info|warning|error, default info */
    char *signing_key_path;          /* default "<config dir>/<server_name>.signing.key" */
    char *media_store_path;          /* default "<data_dir>/media_store" */

    bool enable_registration;                       /* false */
    bool enable_registration_without_verification;  /* false */
    bool registration_requires_token;               /* false */
    char *registration_shared_secret;               /* NULL: shared-secret registration off */
    bool allow_guest_access;                        /* false */

    /* Sessions, devices, directory, VoIP (homeserver/client). Durations in ms. */
    long long refreshable_access_token_lifetime;    /* 5m; 0: no refresh tokens issued */
    long long refresh_token_lifetime;               /* 0: refresh tokens don't expire */
    long long nonrefreshable_access_token_lifetime; /* 0: such access tokens don't expire */
    bool login_via_existing_session;                /* login_via_existing_session.enabled, false */
    long long login_via_existing_token_timeout;     /* login_via_existing_session.token_timeout, 5m */
    bool track_client_ips;                          /* ours, false: no last_seen_ip / user agent */
    long long user_ips_max_age;                     /* 28d: how long tracked IPs are kept */
    bool user_directory_enabled;                    /* user_directory.enabled, true */
    bool user_directory_search_all_users;           /* user_directory.search_all_users, false */
    bool presence_enabled;                          /* presence.enabled, true */
    bool presence_include_offline_users_on_sync;    /* presence.include_offline_users_on_sync, false */
    long long presence_last_active_granularity;     /* presence.last_active_granularity, 1m */
    long long presence_sync_online_timeout;         /* presence.sync_online_timeout, 30s */
    long long presence_idle_timeout;                /* presence.idle_timeout, 5m */
    /* server_notices (Synapse's block): the server's own user messages local
     * users in a room of their own. Off unless the block is given. */
    bool server_notices;                            /* the block is given */
    char *server_notices_localpart;                 /* system_mxid_localpart (required in it) */
    char *server_notices_display_name;              /* system_mxid_display_name, NULL */
    char *server_notices_avatar_url;                /* system_mxid_avatar_url, NULL */
    char *server_notices_room_name;                 /* room_name, "Server Notices" */
    char *server_notices_room_avatar_url;           /* room_avatar_url, NULL */
    char *server_notices_room_topic;                /* room_topic, NULL */
    bool server_notices_auto_join;                  /* auto_join, false: the user is invited */
    /* Channels (homeserver/client): encryption of new rooms, the published
     * room directory and who may read it. */
    int encryption_default;                         /* CFG_ENCRYPT_*; ours: invite (Synapse: off) */
    bool forbid_unencrypted_private_rooms;          /* ours, false */
    bool forget_rooms_on_leave;                     /* false: leaving keeps the room until /forget */
    char *default_room_version;                     /* "12": of new rooms (Synapse's key) */
    bool allow_device_name_lookup_over_federation;  /* false (Synapse's key and default) */
    bool enable_room_list_search;                   /* true */
    bool has_room_list_publication_rules;           /* key given: the rules decide */
    cfg_room_rule *room_list_publication_rules;     /* else: server admins and room moderators */
    size_t n_room_list_publication_rules;
    bool allow_public_rooms_without_auth;           /* false */
    bool allow_public_rooms_over_federation;        /* false */
    cfg_strlist public_rooms_federation_allowlist;  /* ours, []: servers allowed anyway */
    cfg_strlist turn_uris;                          /* [] */
    char *turn_shared_secret;                       /* NULL */
    char *turn_username, *turn_password;            /* NULL: static TURN credentials, if no secret */
    long long turn_user_lifetime;                   /* 1h */
    bool turn_allow_guests;                         /* true */

    cfg_strlist app_service_config_files;
    bool has_federation_domain_whitelist;           /* key present (even empty) */
    cfg_strlist federation_domain_whitelist;
    bool federation_verify_certificates;            /* true */
    cfg_strlist federation_custom_ca_list;
    char *federation_sender_shard;                  /* ours, "i/n"; NULL: this process sends all */
    bool url_preview_enabled;                       /* false */
    long long max_upload_size;                      /* bytes; "50M" default */

    /* Media (media/). */
    char *media_encryption_key_path;                /* ours; default "<config dir>/media.key" */
    bool enable_authenticated_media;                /* true: new media only to authenticated requests */
    long long max_image_pixels;                     /* 32M: larger images get no thumbnail */
    bool dynamic_thumbnails;                        /* false: only thumbnail_sizes are made */
    cfg_thumbnail_size *thumbnail_sizes;            /* default: Synapse's five */
    size_t n_thumbnail_sizes;
    long long media_local_lifetime;                 /* media_retention.local_media_lifetime; 0: forever */
    long long media_remote_lifetime;                /* media_retention.remote_media_lifetime; 0: forever */
    cfg_upload_limit *media_upload_limits;          /* default none */
    size_t n_media_upload_limits;
    int max_pending_media_uploads;                  /* 5: created, not yet uploaded mxc URIs per user */
    long long unused_expiration_time;               /* 24h: how long a created mxc URI waits */
    cfg_strlist url_preview_ip_range_blacklist;     /* default: as ip_range_blacklist's default */
    cfg_strlist url_preview_ip_range_whitelist;     /* [] */
    cfg_url_rule *url_preview_url_blacklist;        /* default none */
    size_t n_url_preview_url_blacklist;
    cfg_strlist ip_range_blacklist;                 /* default: private/loopback ranges */
    cfg_strlist ip_range_whitelist;
    /* Notaries for other servers' keys. Default: none (Synapse's default is
     * matrix.org; we ask each server itself, which tells matrix.org nothing). */
    cfg_key_server *trusted_key_servers;
    size_t n_trusted_key_servers;

    /* rc_* rate limits, Synapse's names and defaults */
    cfg_ratelimit rc_message;                /* 0.2 / 10 */
    cfg_ratelimit rc_registration;           /* 0.17 / 3 */
    cfg_ratelimit rc_login_address;          /* 0.003 / 5 */
    cfg_ratelimit rc_login_account;          /* 0.003 / 5 */
    cfg_ratelimit rc_login_failed_attempts;  /* 0.17 / 3 */
    cfg_ratelimit rc_joins_local;            /* 0.1 / 10 */
    cfg_ratelimit rc_joins_remote;           /* 0.01 / 10 */
    cfg_ratelimit rc_invites_per_room;       /* 0.3 / 10 */
    cfg_ratelimit rc_invites_per_user;       /* 0.003 / 5 */
    cfg_ratelimit rc_admin_redaction;        /* unset: per_second 0 means unlimited */
    cfg_ratelimit rc_knocks_per_user;        /* ours: 0.1 / 10 */
    cfg_ratelimit rc_knocks_per_room;        /* ours: 0.3 / 10 */
} cfg;

/* Load and validate path. Every problem goes to diag (may be NULL) as one line
 *   "<file>:<line>: error: <key>: <what is wrong>"   or   "...: warning: ..."
 * (unknown keys are warnings). Returns NULL when there is any error, with the
 * counts in *n_errors / *n_warnings (either may be NULL). */
cfg *cfg_load(const char *path, FILE *diag, int *n_errors, int *n_warnings);

void cfg_free(cfg *c);

/* federation_sender_shard's "i/n" (0 <= i < n <= 1024) as its two numbers;
 * false if s is anything else. */
bool cfg_sender_shard_parse(const char *s, unsigned *i, unsigned *n);

/* Write a fresh, commented homeserver.yaml for server_name with the given
 * data_dir and signing_key_path (absolute or relative to the config's folder),
 * listening on port 8008. Refuses to overwrite an existing file. */
int cfg_write_default(const char *path, const char *server_name, const char *data_dir,
                      const char *signing_key_path, int port, hs_err *err);

#endif
