/* test_config_load.c — homeserver.yaml loading as an admin meets it: defaults,
 * one diagnostic line per problem naming file, line and key, the example file
 * and the file `pvyhs init` writes. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_internal.h"

static char tmpdir[PATH_MAX]; /* realpath'd, so it matches what cfg_load resolves */
static char *diag_text;       /* diagnostics of the last load */
static int n_err, n_warn;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void setup(void) {
    char t[] = "/tmp/pvyhs_cfg_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(t));
    ck_assert_ptr_nonnull(realpath(t, tmpdir));
}

static void teardown(void) {
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(diag_text);
    diag_text = NULL;
}

/* tmpdir/name, as a malloc'd string. */
static char *tpath(const char *name) {
    char *p;
    ck_assert_int_ge(asprintf(&p, "%s/%s", tmpdir, name), 0);
    return p;
}

static char *write_file(const char *name, const char *text) {
    char *p = tpath(name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void mkdir_t(const char *name) {
    char *p = tpath(name);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    free(p);
}

static cfg *load_path(const char *path) {
    size_t len;
    FILE *d;
    free(diag_text);
    diag_text = NULL;
    d = open_memstream(&diag_text, &len);
    ck_assert_ptr_nonnull(d);
    cfg *c = cfg_load(path, d, &n_err, &n_warn);
    fclose(d);
    return c;
}

/* Writes text as tmpdir/homeserver.yaml and loads it. */
static cfg *load_text(const char *text) {
    char *p = write_file("homeserver.yaml", text);
    cfg *c = load_path(p);
    free(p);
    return c;
}

/* The diagnostics hold "<tmpdir>/homeserver.yaml:<line>: <kind>: <key>: <what…>". */
static void expect_diag(int line, const char *kind, const char *key, const char *what) {
    char *want;
    ck_assert_int_ge(asprintf(&want, "%s/homeserver.yaml:%d: %s: %s: %s", tmpdir, line, kind, key,
                              what), 0);
    ck_assert_msg(strstr(diag_text, want), "missing diagnostic\n  %s\nin\n%s", want, diag_text);
    free(want);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

START_TEST(test_defaults) {
    cfg *c = load_text("server_name: example.org\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_err, 0);
    ck_assert_int_eq(n_warn, 0);
    ck_assert_str_eq(diag_text, "");
    char *p = tpath("homeserver.yaml"), *d = tpath("data"), *m = tpath("data/media_store"),
         *k = tpath("example.org.signing.key");
    ck_assert_str_eq(c->path, p);
    ck_assert_str_eq(c->server_name, "example.org");
    ck_assert_str_eq(c->public_baseurl, "http://example.org:8008/");
    ck_assert_uint_eq(c->n_listeners, 1);
    ck_assert_int_eq(c->listeners[0].port, 8008);
    ck_assert_uint_eq(c->listeners[0].bind_addresses.n, 1);
    ck_assert_str_eq(c->listeners[0].bind_addresses.v[0], "127.0.0.1");
    ck_assert(c->listeners[0].res_client && c->listeners[0].res_federation);
    ck_assert(!c->listeners[0].tls && !c->listeners[0].x_forwarded);
    ck_assert(c->db_embedded);
    ck_assert_ptr_null(c->db_dsn);
    ck_assert_int_eq(c->db_cp_min, 5);
    ck_assert_int_eq(c->db_cp_max, 10);
    ck_assert_str_eq(c->data_dir, d);
    ck_assert_str_eq(c->media_store_path, m);
    ck_assert_str_eq(c->signing_key_path, k);
    ck_assert_str_eq(c->log_level, "info");
    ck_assert_str_eq(c->default_room_version, "12");
    ck_assert_ptr_null(c->tls_certificate_path);
    ck_assert_ptr_null(c->registration_shared_secret);
    ck_assert(!c->enable_registration && !c->enable_registration_without_verification);
    ck_assert(!c->registration_requires_token && !c->allow_guest_access);
    ck_assert(!c->has_federation_domain_whitelist && c->federation_verify_certificates);
    ck_assert(!c->url_preview_enabled);
    ck_assert_int_eq(c->max_upload_size, 50LL * 1024 * 1024);
    ck_assert_uint_eq(c->ip_range_blacklist.n, 19);
    ck_assert_str_eq(c->ip_range_blacklist.v[0], "127.0.0.0/8");
    ck_assert_str_eq(c->ip_range_blacklist.v[18], "fec0::/10");
    ck_assert_uint_eq(c->ip_range_whitelist.n, 0);
    ck_assert_uint_eq(c->app_service_config_files.n, 0);
    ck_assert_double_eq_tol(c->rc_message.per_second, 0.2, 1e-9);
    ck_assert_int_eq(c->rc_message.burst_count, 10);
    ck_assert_double_eq_tol(c->rc_registration.per_second, 0.17, 1e-9);
    ck_assert_int_eq(c->rc_registration.burst_count, 3);
    ck_assert_double_eq_tol(c->rc_login_address.per_second, 0.003, 1e-9);
    ck_assert_int_eq(c->rc_login_account.burst_count, 5);
    ck_assert_double_eq_tol(c->rc_login_failed_attempts.per_second, 0.17, 1e-9);
    ck_assert_double_eq_tol(c->rc_joins_local.per_second, 0.1, 1e-9);
    ck_assert_double_eq_tol(c->rc_joins_remote.per_second, 0.01, 1e-9);
    ck_assert_double_eq_tol(c->rc_invites_per_room.per_second, 0.3, 1e-9);
    ck_assert_int_eq(c->rc_invites_per_user.burst_count, 5);
    ck_assert_double_eq_tol(c->rc_admin_redaction.per_second, 0, 1e-12);
    free(p), free(d), free(m), free(k);
    cfg_free(c);
}
END_TEST

START_TEST(test_values_are_read) {
    cfg *c = load_text("server_name: '[::1]:8448'\n"
                       "public_baseurl: https://matrix.example.org\n"
                       "log_level: WARN\n"
                       "enable_registration: yes\n"
                       "registration_requires_token: True\n"
                       "registration_shared_secret: 12345\n"
                       "allow_guest_access: on\n"
                       "federation_domain_whitelist: []\n"
                       "federation_verify_certificates: false\n"
                       "url_preview_enabled: true\n"
                       "rc_message: {per_second: 1, burst_count: 20}\n"
                       "rc_login:\n"
                       "  failed_attempts: {per_second: 0.5}\n"
                       "rc_admin_redaction: {per_second: 2.5, burst_count: 50}\n"
                       "pid_file: /var/run/synapse.pid\n"
                       "report_stats: false\n"
                       "trusted_key_servers: [{server_name: matrix.org, accept_keys_insecurely: true}]\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert_str_eq(c->server_name, "[::1]:8448");
    ck_assert_str_eq(c->public_baseurl, "https://matrix.example.org/"); /* '/' added */
    ck_assert_str_eq(c->log_level, "warning");
    ck_assert(c->enable_registration && c->registration_requires_token && c->allow_guest_access);
    ck_assert_str_eq(c->registration_shared_secret, "12345");
    ck_assert(c->has_federation_domain_whitelist);
    ck_assert_uint_eq(c->federation_domain_whitelist.n, 0);
    ck_assert(!c->federation_verify_certificates && c->url_preview_enabled);
    ck_assert_double_eq_tol(c->rc_message.per_second, 1, 1e-9);
    ck_assert_int_eq(c->rc_message.burst_count, 20);
    /* A sub-key left out keeps its own default. */
    ck_assert_double_eq_tol(c->rc_login_failed_attempts.per_second, 0.5, 1e-9);
    ck_assert_int_eq(c->rc_login_failed_attempts.burst_count, 3);
    ck_assert_double_eq_tol(c->rc_login_address.per_second, 0.003, 1e-9);
    ck_assert_double_eq_tol(c->rc_admin_redaction.per_second, 2.5, 1e-9);
    ck_assert_int_eq(c->rc_admin_redaction.burst_count, 50);
    /* The default key file is named after the server, port and brackets included. */
    char *k = tpath("[::1]:8448.signing.key");
    ck_assert_str_eq(c->signing_key_path, k);
    free(k);
    cfg_free(c);
}
END_TEST

START_TEST(test_type_errors_name_key_file_and_line) {
    cfg *c = load_text("server_name: example.org\n"                      /* 1 */
                       "enable_registration: maybe\n"                    /* 2 */
                       "max_upload_size: lots\n"                         /* 3 */
                       "listeners:\n"                                    /* 4 */
                       "  - port: \"8008\"\n"                            /* 5 */
                       "    tls: 1\n"                                    /* 6 */
                       "rc_message:\n"                                   /* 7 */
                       "  per_second: fast\n"                            /* 8 */
                       "rc_login:\n"                                     /* 9 */
                       "  address: {per_second: 1, burst_count: -1}\n"   /* 10 */
                       "log_level: loud\n"                               /* 11 */
                       "ip_range_whitelist: 10.0.0.0/8\n"                /* 12 */
                       "data_dir: [a, b]\n"                              /* 13 */
                       "rc_joins: 5\n"                                   /* 14 */
                       "default_room_version: \"13\"\n");               /* 15 */
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "enable_registration", "expected true or false, got 'maybe'");
    expect_diag(3, "error", "max_upload_size", "expected a size such as 50M");
    expect_diag(5, "error", "listeners[0].port", "expected a whole number, got '8008' (remove the quotes)");
    expect_diag(6, "error", "listeners[0].tls", "expected true or false, got '1'");
    expect_diag(8, "error", "rc_message.per_second", "expected a number, got 'fast'");
    expect_diag(10, "error", "rc_login.address.burst_count", "must be between 0 and");
    expect_diag(11, "error", "log_level", "must be one of debug, info, warning, error; got 'loud'");
    expect_diag(12, "error", "ip_range_whitelist", "expected a list");
    expect_diag(13, "error", "data_dir", "expected a file or folder path, got a list");
    expect_diag(14, "error", "rc_joins", "expected a mapping, got '5'");
    expect_diag(15, "error", "default_room_version", "must be a room version this server supports");
    /* Every problem reported, each once, and nothing else. */
    ck_assert_int_eq(n_err, 11);
    ck_assert_int_eq(n_warn, 0);
    ck_assert_int_eq(count_lines(diag_text), 11);
}
END_TEST

START_TEST(test_unknown_keys_warn_with_line) {
    cfg *c = load_text("server_name: example.org\n"
                       "enable_registrtion: true\n"
                       "rc_joins:\n"
                       "  locl: {per_second: 1}\n"
                       "listeners:\n"
                       "  - port: 8008\n"
                       "    bind_adresses: ['::']\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_err, 0);
    ck_assert_int_eq(n_warn, 3);
    expect_diag(2, "warning", "enable_registrtion", "unknown key");
    expect_diag(4, "warning", "rc_joins.locl", "unknown key");
    expect_diag(7, "warning", "listeners[0].bind_adresses", "unknown key");
    ck_assert(!c->enable_registration);
    cfg_free(c);
}
END_TEST

START_TEST(test_yaml_syntax_error) {
    cfg *c = load_text("server_name: example.org\n"
                       "listeners:\n"
                       "  - port: 8008\n"
                       "  bad indentation: [1, 2\n"
                       "log_level: info\n");
    ck_assert_ptr_null(c);
    ck_assert_int_eq(n_err, 1);
    expect_diag(4, "error", "yaml", "did not find expected '-' indicator");
    c = load_text("server_name: example.org\n\tlog_level: info\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "yaml", "found a tab character that violates indentation");
}
END_TEST

START_TEST(test_structure_errors) {
    cfg *c = load_text("- a\n- b\n");
    ck_assert_ptr_null(c);
    expect_diag(1, "error", "config", "the file must be a mapping");
    c = load_text("server_name: example.org\nlog_level: info\nserver_name: other.org\n");
    ck_assert_ptr_null(c);
    expect_diag(3, "error", "server_name", "duplicate key");
    c = load_text("");
    ck_assert_ptr_null(c);
    ck_assert_int_eq(n_err, 1);
    expect_diag(1, "error", "server_name", "missing required key");
    c = load_text("# nothing but a comment\nserver_name:\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "server_name", "must not be empty");
    /* Aliases expanding to a huge tree, and an alias inside its own anchor. */
    c = load_text("server_name: example.org\n"
                  "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                  "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                  "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                  "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n");
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(diag_text, "too deep or too large"), "%s", diag_text);
    c = load_text("server_name: example.org\nloop: &l [*l]\n");
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_unreadable_file) {
    char *p = tpath("nope.yaml");
    cfg *c = load_path(p);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(n_err, 1);
    char *want;
    ck_assert_int_ge(asprintf(&want, "%s:0: error: config: cannot read %s: No such file", p, p), 0);
    ck_assert_msg(strstr(diag_text, want), "%s", diag_text);
    free(want);
    free(p);
    c = load_path(tmpdir);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(diag_text, "is a directory"), "%s", diag_text);
    ck_assert_ptr_null(cfg_load(tmpdir, NULL, NULL, NULL)); /* no diag, no counts: no crash */
}
END_TEST

START_TEST(test_server_names) {
    static const char *const good[] = {"example.org", "localhost", "matrix.example.org:8448",
                                       "1.2.3.4", "1.2.3.4:80", "[::1]", "[2001:db8::1]:8448",
                                       "a-b.c", "xn--bcher-kva.example", NULL};
    static const char *const bad[] = {"", "exa mple.org", ".example.org", "example..org",
                                      "example.org.", "999.1.1.1", "example.org:0",
                                      "example.org:65536", "example.org:", "example.org:80a",
                                      "[::1", "[::1]x", "[not-v6]", "::1", "ex_ample.org",
                                      "user@example.org", NULL};
    const char *why;
    for (const char *const *s = good; *s; s++)
        ck_assert_msg(cfg_server_name_valid(*s, &why), "%s should be valid", *s);
    for (const char *const *s = bad; *s; s++)
        ck_assert_msg(!cfg_server_name_valid(*s, &why), "%s should be invalid", *s);
    cfg *c = load_text("server_name: 'example.org:99999'\n");
    ck_assert_ptr_null(c);
    expect_diag(1, "error", "server_name", "'example.org:99999' is not a valid server name: the port");
}
END_TEST

START_TEST(test_size_strings) {
    static const struct { const char *s; long long v; } ok[] = {
        {"100K", 100LL << 10}, {"50M", 50LL << 20}, {"1G", 1LL << 30}, {"2T", 2LL << 40},
        {"12345", 12345},      {"1m", 1LL << 20},   {"0", 0},
    };
    static const char *const bad[] = {"", "M", "12X", "-5", "1.5M", "50 M", "50MB", "K50",
                                      "99999999999999999999", "9999999999T", NULL};
    long long v;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ck_assert_msg(cfg_parse_size(ok[i].s, &v), "%s", ok[i].s);
        ck_assert_int_eq(v, ok[i].v);
    }
    for (const char *const *s = bad; *s; s++) ck_assert_msg(!cfg_parse_size(*s, &v), "%s", *s);

    cfg *c = load_text("server_name: example.org\nmax_upload_size: 100K\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(c->max_upload_size, 102400);
    cfg_free(c);
    c = load_text("server_name: example.org\nmax_upload_size: 1048576\n");
    ck_assert_int_eq(c->max_upload_size, 1048576);
    cfg_free(c);
    c = load_text("server_name: example.org\nmax_upload_size: \"1G\"\n");
    ck_assert_int_eq(c->max_upload_size, 1LL << 30);
    cfg_free(c);
    c = load_text("server_name: example.org\nmax_upload_size: 0\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "max_upload_size", "must be at least 1 bytes");
}
END_TEST

START_TEST(test_cidr_validation) {
    cfg *c = load_text("server_name: example.org\n"
                       "ip_range_blacklist:\n"
                       "  - 10.0.0.0/8\n"      /* 3 */
                       "  - 10.0.0.0/33\n"     /* 4: [1] */
                       "  - 'fe80::/10'\n"     /* 5 */
                       "  - 'fe80::/129'\n"    /* 6: [3] */
                       "  - 300.1.1.1/8\n"     /* 7: [4] */
                       "  - 192.168.1.1\n"     /* 8: bare address */
                       "  - '::1'\n"           /* 9 */
                       "  - 10.0.0.0/\n"       /* 10: [7] */
                       "  - 10.0.0.0/-1\n"     /* 11: [8] */
                       "  - example.org/8\n"   /* 12: [9] */
                       "ip_range_whitelist: ['192.168.1.0/24', '10.1.2.3/1000']\n"); /* 13 */
    ck_assert_ptr_null(c);
    ck_assert_int_eq(n_err, 7);
    expect_diag(4, "error", "ip_range_blacklist[1]", "'10.0.0.0/33' is not an IP range: the prefix length must be 0 to 32");
    expect_diag(6, "error", "ip_range_blacklist[3]", "'fe80::/129' is not an IP range: the prefix length must be 0 to 128");
    expect_diag(7, "error", "ip_range_blacklist[4]", "'300.1.1.1/8' is not an IP range: not a valid IPv4 or IPv6 address");
    expect_diag(10, "error", "ip_range_blacklist[7]", "'10.0.0.0/'");
    expect_diag(11, "error", "ip_range_blacklist[8]", "'10.0.0.0/-1'");
    expect_diag(12, "error", "ip_range_blacklist[9]", "'example.org/8'");
    expect_diag(13, "error", "ip_range_whitelist[1]", "'10.1.2.3/1000'");

    c = load_text("server_name: example.org\n"
                  "ip_range_blocklist: ['10.0.0.0/8', '::/0']\n"
                  "ip_range_allowlist: ['10.1.0.0/16']\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_uint_eq(c->ip_range_blacklist.n, 2);
    ck_assert_str_eq(c->ip_range_blacklist.v[1], "::/0");
    ck_assert_uint_eq(c->ip_range_whitelist.n, 1);
    cfg_free(c);
    c = load_text("server_name: example.org\n"
                  "ip_range_blacklist: []\n"
                  "ip_range_blocklist: []\n");
    ck_assert_ptr_null(c);
    expect_diag(3, "error", "ip_range_blocklist", "is another name for ip_range_blacklist");
    /* An explicitly empty blacklist is honoured, not replaced by the default. */
    c = load_text("server_name: example.org\nip_range_blacklist: []\n");
    ck_assert_uint_eq(c->ip_range_blacklist.n, 0);
    cfg_free(c);
}
END_TEST

/* libpq's own parser, when the library is present, so the quoting is checked
 * by the code that will read it rather than by our idea of it. */
typedef struct { char *keyword, *envvar, *compiled, *val, *label, *dispchar; int dispsize; } pq_opt;

static void check_with_libpq(const char *dsn, const char *keyword, const char *want) {
    void *h = dlopen("libpq.so.5", RTLD_NOW);
    if (!h) return;
    pq_opt *(*parse)(const char *, char **) = (pq_opt * (*)(const char *, char **)) dlsym(h, "PQconninfoParse");
    void (*opt_free)(pq_opt *) = (void (*)(pq_opt *))dlsym(h, "PQconninfoFree");
    void (*mem_free)(void *) = (void (*)(void *))dlsym(h, "PQfreemem");
    ck_assert(parse && opt_free && mem_free);
    char *err = NULL;
    pq_opt *o = parse(dsn, &err);
    ck_assert_msg(o, "libpq rejects %s: %s", dsn, err ? err : "?");
    bool found = false;
    for (pq_opt *i = o; i->keyword; i++)
        if (!strcmp(i->keyword, keyword)) {
            ck_assert_pstr_eq(i->val, want);
            found = true;
        }
    ck_assert(found);
    opt_free(o);
    dlclose(h);
}

START_TEST(test_database_dsn) {
    cfg *c = load_text("server_name: example.org\n"
                       "database:\n"
                       "  name: psycopg2\n"
                       "  txn_limit: 10000\n"
                       "  args:\n"
                       "    user: synapse user\n"
                       "    password: \"it's a \\\"secret\\\" \\\\ path\"\n"
                       "    database: matrix\n"
                       "    host: /var/run/postgresql\n"
                       "    port: 5433\n"
                       "    cp_min: 2\n"
                       "    cp_max: 7\n"
                       "    sslmode: require\n"
                       "    pasword: typo\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 1);
    expect_diag(14, "warning", "database.args.pasword", "unknown key");
    ck_assert(!c->db_embedded);
    ck_assert_str_eq(c->db_dsn, "user='synapse user' password='it\\'s a \"secret\" \\\\ path' "
                                "dbname='matrix' host='/var/run/postgresql' port='5433' "
                                "sslmode='require'");
    ck_assert_int_eq(c->db_cp_min, 2);
    ck_assert_int_eq(c->db_cp_max, 7);
    check_with_libpq(c->db_dsn, "password", "it's a \"secret\" \\ path");
    check_with_libpq(c->db_dsn, "user", "synapse user");
    cfg_free(c);

    /* dsn first, args after it (libpq: the later one wins); empty values kept. */
    c = load_text("server_name: example.org\n"
                  "database: {name: postgres, args: {dsn: 'host=db dbname=x', user: u, password: ''}}\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_str_eq(c->db_dsn, "host=db dbname=x user='u' password=''");
    check_with_libpq(c->db_dsn, "password", "");
    cfg_free(c);
    c = load_text("server_name: example.org\n"
                  "database: {name: psycopg2, args: {dsn: 'postgresql://u@db/x'}}\n");
    ck_assert_str_eq(c->db_dsn, "postgresql://u@db/x");
    cfg_free(c);
    c = load_text("server_name: example.org\ndatabase: {name: psycopg2}\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_str_eq(c->db_dsn, ""); /* libpq defaults and PG* variables */
    cfg_free(c);
}
END_TEST

START_TEST(test_database_errors) {
    cfg *c = load_text("server_name: example.org\n"
                       "database:\n"
                       "  name: sqlite3\n"
                       "  args: {database: homeserver.db}\n");
    ck_assert_ptr_null(c);
    expect_diag(3, "error", "database.name", "SQLite is not supported");
    c = load_text("server_name: example.org\ndatabase:\n  args: {user: x}\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "database.name", "missing required key");
    c = load_text("server_name: example.org\n"
                  "database:\n"
                  "  name: psycopg2\n"
                  "  args:\n"
                  "    database: a\n"
                  "    dbname: b\n"                       /* 6 */
                  "    port: abc\n"                       /* 7 */
                  "    cp_min: 20\n"
                  "    cp_max: 0\n"                       /* 9 */
                  "    dsn: 'postgresql://db/x'\n"        /* 10 */
                  "    host: [a]\n");                     /* 11 */
    ck_assert_ptr_null(c);
    expect_diag(6, "error", "database.args.dbname", "give either database or dbname, not both");
    expect_diag(7, "error", "database.args.port", "must be a port number from 1 to 65535, got 'abc'");
    expect_diag(9, "error", "database.args.cp_max", "must be between 1 and 1000, got 0");
    expect_diag(10, "error", "database.args.dsn", "a postgresql:// URI can't be combined");
    expect_diag(11, "error", "database.args.host", "expected a string, got a list");
    c = load_text("server_name: example.org\n"
                  "database: {name: psycopg2, args: {cp_min: 20, cp_max: 10}}\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "database.args.cp_min", "is 20, more than cp_max (10)");
}
END_TEST

START_TEST(test_relative_paths) {
    mkdir_t("conf");
    mkdir_t("conf/bridges");
    free(write_file("conf/bridges/a.yaml", "id: a\n"));
    free(write_file("conf/ca.pem", "x\n"));
    free(write_file("conf/homeserver.yaml",
                    "server_name: example.org\n"
                    "data_dir: state\n"
                    "signing_key_path: ./keys/sk\n"
                    "media_store_path: /srv/media\n"
                    "app_service_config_files: [bridges/a.yaml]\n"
                    "federation_custom_ca_list: [ca.pem]\n"));
    /* Loaded through a relative path from another folder: paths still start
     * at the config file's folder, not the current directory. */
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    cfg *c = load_path("conf/homeserver.yaml");
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(c, "%s", diag_text);
    char *state = tpath("conf/state"), *sk = tpath("conf/keys/sk"), *a = tpath("conf/bridges/a.yaml"),
         *ca = tpath("conf/ca.pem"), *p = tpath("conf/homeserver.yaml");
    ck_assert_str_eq(c->path, p);
    ck_assert_str_eq(c->data_dir, state);
    ck_assert_str_eq(c->signing_key_path, sk);
    ck_assert_str_eq(c->media_store_path, "/srv/media");
    ck_assert_uint_eq(c->app_service_config_files.n, 1);
    ck_assert_str_eq(c->app_service_config_files.v[0], a);
    ck_assert_str_eq(c->federation_custom_ca_list.v[0], ca);
    free(state), free(sk), free(a), free(ca), free(p);
    cfg_free(c);

    c = load_text("server_name: example.org\napp_service_config_files: [missing.yaml]\n");
    ck_assert_ptr_null(c);
    char *m = tpath("missing.yaml");
    char *what;
    ck_assert_int_ge(asprintf(&what, "cannot read %s: No such file or directory", m), 0);
    expect_diag(2, "error", "app_service_config_files[0]", what);
    free(what), free(m);
}
END_TEST

START_TEST(test_listeners) {
    cfg *c = load_text("server_name: example.org\n"
                       "listeners:\n"
                       "  - port: 9000\n"
                       "    type: metrics\n"                     /* 4: skipped */
                       "  - port: 8448\n"
                       "    resources: [{names: [keys]}, {names: [media], compress: true}]\n"
                       "  - port: 8008\n"
                       "    x_forwarded: true\n"
                       "    bind_addresses: ['::1', '127.0.0.1']\n"
                       "    resources: [{names: [client]}]\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 1);
    expect_diag(4, "warning", "listeners[0].type", "'metrics' listeners are not supported");
    ck_assert_uint_eq(c->n_listeners, 2);
    ck_assert_int_eq(c->listeners[0].port, 8448);
    ck_assert_uint_eq(c->listeners[0].bind_addresses.n, 2); /* Synapse's default */
    ck_assert_str_eq(c->listeners[0].bind_addresses.v[0], "::");
    ck_assert_str_eq(c->listeners[0].bind_addresses.v[1], "0.0.0.0");
    ck_assert(c->listeners[0].res_federation && !c->listeners[0].res_client);
    ck_assert(c->listeners[1].res_client && !c->listeners[1].res_federation);
    ck_assert(c->listeners[1].x_forwarded);
    /* public_baseurl follows the listener that serves clients. */
    ck_assert_str_eq(c->public_baseurl, "http://example.org:8008/");
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "listeners:\n"
                  "  - port: 0\n"                                 /* 3 */
                  "    bind_addresses: ['localhost', '::']\n"     /* 4 */
                  "  - type: websocket\n"                         /* 5 */
                  "    port: 80\n"
                  "  - bind_addresses: ['::']\n"                  /* 7: no port */
                  "  - port: 443\n"
                  "    resources: [{names: [client, chat]}]\n"    /* 9 */
                  "  - port: 444\n"
                  "    resources: [{compress: true}]\n");         /* 11 */
    ck_assert_ptr_null(c);
    ck_assert_int_eq(n_err, 6);
    expect_diag(3, "error", "listeners[0].port", "must be between 1 and 65535, got 0");
    expect_diag(4, "error", "listeners[0].bind_addresses[0]", "'localhost' is not an IP address");
    expect_diag(5, "error", "listeners[1].type", "unknown listener type 'websocket'");
    expect_diag(7, "error", "listeners[2].port", "missing required key");
    expect_diag(9, "error", "listeners[3].resources[0].names[1]", "unknown resource 'chat'");
    expect_diag(11, "error", "listeners[4].resources[0].names", "missing required key");

    c = load_text("server_name: example.org\nlisteners: []\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "listeners", "expected a list of listeners such as [{port: 8008, type: http}], got an empty list");
    c = load_text("server_name: example.org\nlisteners: [{port: 9000, type: manhole}]\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "listeners", "no http listener");
}
END_TEST

START_TEST(test_tls_files) {
    cfg *c = load_text("server_name: example.org\n"
                       "listeners:\n"
                       "  - port: 8448\n"
                       "    tls: true\n");
    ck_assert_ptr_null(c);
    ck_assert_int_eq(n_err, 2);
    expect_diag(4, "error", "tls_certificate_path", "missing: a listener has tls: true");
    expect_diag(4, "error", "tls_private_key_path", "missing: a listener has tls: true");

    c = load_text("server_name: example.org\n"
                  "listeners: [{port: 8448, tls: true}]\n"
                  "tls_certificate_path: cert.pem\n"
                  "tls_private_key_path: key.pem\n");
    ck_assert_ptr_null(c);
    expect_diag(3, "error", "tls_certificate_path", "cannot read");
    expect_diag(4, "error", "tls_private_key_path", "cannot read");

    free(write_file("cert.pem", "c\n"));
    free(write_file("key.pem", "k\n"));
    c = load_text("server_name: example.org\n"
                  "listeners: [{port: 8448, tls: true}]\n"
                  "tls_certificate_path: cert.pem\n"
                  "tls_private_key_path: key.pem\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_str_eq(c->public_baseurl, "https://example.org:8448/");
    char *cert = tpath("cert.pem");
    ck_assert_str_eq(c->tls_certificate_path, cert);
    free(cert);
    cfg_free(c);
}
END_TEST

START_TEST(test_registration_guard_and_checks) {
    cfg *c = load_text("server_name: example.org\nenable_registration: true\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "enable_registration", "open registration without verification");
    c = load_text("server_name: example.org\nenable_registration: true\n"
                  "enable_registration_without_verification: true\n");
    ck_assert_msg(c, "%s", diag_text);
    cfg_free(c);
    c = load_text("server_name: example.org\n"
                  "registration_shared_secret: ''\n"
                  "public_baseurl: ftp://example.org/\n"
                  "federation_domain_whitelist: [matrix.org, 'bad name']\n"
                  "rc_message: {per_second: -1}\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "registration_shared_secret", "must not be empty");
    expect_diag(3, "error", "public_baseurl", "'ftp://example.org/' must start with https:// or http://");
    expect_diag(4, "error", "federation_domain_whitelist[1]", "'bad name' is not a valid server name");
    expect_diag(5, "error", "rc_message.per_second", "must be at least 0");
    /* null means "the default", as in Synapse */
    c = load_text("server_name: example.org\npublic_baseurl: ~\ndatabase:\nlisteners: null\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert(c->db_embedded);
    ck_assert_uint_eq(c->n_listeners, 1);
    cfg_free(c);
}
END_TEST

/* Sessions, devices, the user directory and TURN: Synapse's durations and
 * keys, privacy-first defaults. */
START_TEST(test_accounts_devices_voip_keys) {
    static const struct { const char *s; long long ms; } ok[] = {
        {"1500", 1500}, {"30s", 30000}, {"5m", 300000}, {"1h", 3600000},
        {"28d", 28LL * 86400000}, {"2w", 14LL * 86400000}, {"1y", 365LL * 86400000}, {"0", 0},
    };
    static const char *const bad[] = {"", "m", "5x", "-5m", "1.5h", "5 m", "5mm", "h5", NULL};
    long long v;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ck_assert_msg(cfg_parse_duration(ok[i].s, &v), "%s", ok[i].s);
        ck_assert_int_eq(v, ok[i].ms);
    }
    for (const char *const *s = bad; *s; s++) ck_assert_msg(!cfg_parse_duration(*s, &v), "%s", *s);

    cfg *c = load_text("server_name: example.org\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert(!c->track_client_ips);
    ck_assert_int_eq(c->user_ips_max_age, 28LL * 86400000);
    ck_assert_int_eq(c->refreshable_access_token_lifetime, 300000);
    ck_assert_int_eq(c->refresh_token_lifetime, 0);
    ck_assert_int_eq(c->nonrefreshable_access_token_lifetime, 0);
    ck_assert(!c->login_via_existing_session);
    ck_assert_int_eq(c->login_via_existing_token_timeout, 300000);
    ck_assert(c->user_directory_enabled && !c->user_directory_search_all_users);
    ck_assert_uint_eq(c->turn_uris.n, 0);
    ck_assert_ptr_null(c->turn_shared_secret);
    ck_assert_int_eq(c->turn_user_lifetime, 3600000);
    ck_assert(c->turn_allow_guests);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "track_client_ips: true\n"
                  "user_ips_max_age: 7d\n"
                  "refreshable_access_token_lifetime: 90000\n"
                  "login_via_existing_session: {enabled: true, require_ui_auth: false, token_timeout: 2m}\n"
                  "user_directory: {search_all_users: true}\n"
                  "turn_uris: ['turn:turn.example.org?transport=udp', 'turns:turn.example.org']\n"
                  "turn_shared_secret: s3cret\n"
                  "turn_user_lifetime: 1d\n"
                  "turn_allow_guests: false\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert(c->track_client_ips);
    ck_assert_int_eq(c->user_ips_max_age, 7LL * 86400000);
    ck_assert_int_eq(c->refreshable_access_token_lifetime, 90000);
    ck_assert(c->login_via_existing_session);
    ck_assert_int_eq(c->login_via_existing_token_timeout, 120000);
    ck_assert(c->user_directory_enabled && c->user_directory_search_all_users);
    ck_assert_uint_eq(c->turn_uris.n, 2);
    ck_assert_str_eq(c->turn_uris.v[1], "turns:turn.example.org");
    ck_assert_str_eq(c->turn_shared_secret, "s3cret");
    ck_assert_int_eq(c->turn_user_lifetime, 86400000);
    ck_assert(!c->turn_allow_guests);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "user_ips_max_age: 4 weeks\n"
                  "turn_uris: ['stun:stun.example.org']\n"
                  "turn_user_lifetime: 10\n"
                  "track_client_ips: 'yes'\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "user_ips_max_age", "expected a duration such as 30s");
    expect_diag(3, "error", "turn_uris", "'stun:stun.example.org' must start with turn: or turns:");
    expect_diag(4, "error", "turn_user_lifetime", "must be at least 1000 ms");
    expect_diag(5, "error", "track_client_ips", "expected true or false");

    c = load_text("server_name: example.org\nturn_uris: ['turn:t.example.org']\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 1);
    expect_diag(2, "warning", "turn_uris", "has no effect without turn_shared_secret");
    cfg_free(c);
}
END_TEST

/* presence: Synapse's section, its defaults, durations and bad values. */
START_TEST(test_presence_keys) {
    cfg *c = load_text("server_name: example.org\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert(c->presence_enabled && !c->presence_include_offline_users_on_sync);
    ck_assert_int_eq(c->presence_last_active_granularity, 60000);
    ck_assert_int_eq(c->presence_sync_online_timeout, 30000);
    ck_assert_int_eq(c->presence_idle_timeout, 300000);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "presence:\n"
                  "  enabled: false\n"
                  "  include_offline_users_on_sync: true\n"
                  "  last_active_granularity: 10s\n"
                  "  sync_online_timeout: 45000\n"
                  "  idle_timeout: 1h\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert(!c->presence_enabled && c->presence_include_offline_users_on_sync);
    ck_assert_int_eq(c->presence_last_active_granularity, 10000);
    ck_assert_int_eq(c->presence_sync_online_timeout, 45000);
    ck_assert_int_eq(c->presence_idle_timeout, 3600000);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "presence:\n"
                  "  enabled: maybe\n"
                  "  idle_timeout: 5 minutes\n"
                  "  sync_online_timeout: 10\n");
    ck_assert_ptr_null(c);
    expect_diag(3, "error", "presence.enabled", "expected true or false");
    expect_diag(4, "error", "presence.idle_timeout", "expected a duration such as 30s");
    expect_diag(5, "error", "presence.sync_online_timeout", "must be at least 1000 ms");

    c = load_text("server_name: example.org\npresence: {enabled: true, busy: true}\n");
    ck_assert_msg(c, "%s", diag_text);
    expect_diag(2, "warning", "presence.busy", "unknown key");
    cfg_free(c);
}
END_TEST

/* trusted_key_servers in Synapse's format; no notary by default (Synapse's
 * default, matrix.org, would learn every server we federate with). */
START_TEST(test_trusted_key_servers) {
    cfg *c = load_text("server_name: example.org\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_uint_eq(c->n_trusted_key_servers, 0);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "trusted_key_servers:\n"
                  "  - server_name: notary.example.org:8448\n"
                  "    verify_keys:\n"
                  "      \"ed25519:auto\": \"Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw\"\n"
                  "  - server_name: other.example\n"
                  "    accept_keys_insecurely: true\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert_uint_eq(c->n_trusted_key_servers, 2);
    cfg_key_server *k = &c->trusted_key_servers[0];
    ck_assert_str_eq(k->server_name, "notary.example.org:8448");
    ck_assert(k->has_verify_keys && !k->accept_keys_insecurely);
    ck_assert_uint_eq(k->key_ids.n, 1);
    ck_assert_str_eq(k->key_ids.v[0], "ed25519:auto");
    ck_assert_str_eq(k->keys.v[0], "Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw");
    k = &c->trusted_key_servers[1];
    ck_assert(!k->has_verify_keys && k->accept_keys_insecurely);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "trusted_key_servers: matrix.org\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "trusted_key_servers", "expected a list");

    c = load_text("server_name: example.org\n"
                  "trusted_key_servers:\n"
                  "  - matrix.org\n"
                  "  - verify_keys: {}\n"
                  "  - server_name: 'bad name'\n"
                  "  - server_name: a.example\n"
                  "    verify_keys: {\"rsa:1\": \"abc\", \"ed25519:1\": \"tooshort\"}\n"
                  "    colour: blue\n");
    ck_assert_ptr_null(c);
    expect_diag(3, "error", "trusted_key_servers[0]", "expected a mapping");
    expect_diag(4, "error", "trusted_key_servers[1]", "missing required key server_name");
    expect_diag(5, "error", "trusted_key_servers[2].server_name", "'bad name' is not a valid server name");
    expect_diag(7, "error", "trusted_key_servers[3].verify_keys.rsa:1", "unsupported key ID");
    expect_diag(7, "error", "trusted_key_servers[3].verify_keys.ed25519:1", "expected the unpadded base64");
    expect_diag(8, "warning", "trusted_key_servers[3].colour", "unknown key");

    /* Without certificate checks a notary is only as good as its verify_keys. */
    c = load_text("server_name: example.org\n"
                  "federation_verify_certificates: false\n"
                  "trusted_key_servers:\n"
                  "  - server_name: notary.example.org\n");
    ck_assert_ptr_null(c);
    expect_diag(4, "error", "trusted_key_servers[0]", "with federation_verify_certificates: false");
}
END_TEST

/* The shape `synapse --generate-config` writes, with PostgreSQL: it must load
 * with no warnings, the Synapse-only keys silently ignored. */
START_TEST(test_synapse_config_carries_over) {
    free(write_file("appservice.yaml", "id: bridge\n"));
    cfg *c = load_text("server_name: \"my.domain.name\"\n"
                       "pid_file: /data/homeserver.pid\n"
                       "listeners:\n"
                       "  - port: 8008\n"
                       "    tls: false\n"
                       "    type: http\n"
                       "    x_forwarded: true\n"
                       "    resources:\n"
                       "      - names: [client, federation]\n"
                       "        compress: false\n"
                       "database:\n"
                       "  name: psycopg2\n"
                       "  args:\n"
                       "    user: synapse_user\n"
                       "    password: secretpassword\n"
                       "    dbname: synapse\n"
                       "    host: localhost\n"
                       "    cp_min: 5\n"
                       "    cp_max: 10\n"
                       "log_config: \"/data/my.domain.name.log.config\"\n"
                       "media_store_path: /data/media_store\n"
                       "registration_shared_secret: \"Fh3;k=\"\n"
                       "report_stats: false\n"
                       "macaroon_secret_key: \"x\"\n"
                       "form_secret: \"y\"\n"
                       "signing_key_path: \"/data/my.domain.name.signing.key\"\n"
                       "app_service_config_files:\n"
                       "  - appservice.yaml\n"
                       "trusted_key_servers:\n"
                       "  - server_name: \"matrix.org\"\n"
                       "suppress_key_server_warning: true\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert_str_eq(c->db_dsn, "user='synapse_user' password='secretpassword' dbname='synapse' "
                                "host='localhost'");
    ck_assert_str_eq(c->signing_key_path, "/data/my.domain.name.signing.key");
    ck_assert_str_eq(c->public_baseurl, "http://my.domain.name:8008/");
    ck_assert_str_eq(c->listeners[0].bind_addresses.v[0], "::");
    cfg_free(c);
}
END_TEST

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    ck_assert_int_ge(n, 0);
    return buf;
}

START_TEST(test_example_file_loads_and_documents_every_key) {
    const char *path = PVYHS_SOURCE_DIR "/config/homeserver.example.yaml";
    cfg *ex = load_path(path);
    ck_assert_msg(ex, "%s", diag_text);
    ck_assert_int_eq(n_err, 0);
    ck_assert_int_eq(n_warn, 0);
    /* The values it spells out are the real defaults. */
    cfg *def = load_text("server_name: example.org\n");
    ck_assert_ptr_nonnull(def);
    ck_assert_uint_eq(ex->ip_range_blacklist.n, def->ip_range_blacklist.n);
    for (size_t i = 0; i < def->ip_range_blacklist.n; i++)
        ck_assert_str_eq(ex->ip_range_blacklist.v[i], def->ip_range_blacklist.v[i]);
    ck_assert_int_eq(ex->max_upload_size, def->max_upload_size);
    ck_assert_mem_eq(&ex->rc_message, &def->rc_message, sizeof def->rc_message);
    ck_assert_mem_eq(&ex->rc_login_address, &def->rc_login_address,
                     (char *)(&def->rc_invites_per_user + 1) - (char *)&def->rc_login_address);
    ck_assert_str_eq(ex->log_level, def->log_level);
    ck_assert_str_eq(ex->public_baseurl, "http://example.org:8008/");
    cfg_free(def);
    cfg_free(ex);
    /* Every top-level key appears, set or as a commented example. */
    char *text = slurp(path);
    for (const cfg_key *k = cfg_top_keys; k->name; k++) {
        char *a, *b;
        if (k->alias_of) { /* old names are mentioned next to the key they alias */
            ck_assert_msg(strstr(text, k->name), "%s is not in the example", k->name);
            continue;
        }
        ck_assert_int_ge(asprintf(&a, "\n%s:", k->name), 0);
        ck_assert_int_ge(asprintf(&b, "\n#%s:", k->name), 0);
        ck_assert_msg(strstr(text, a) || strstr(text, b), "%s is not in the example", k->name);
        free(a), free(b);
    }
    free(text);
}
END_TEST

START_TEST(test_write_default_round_trip) {
    hs_err err;
    char *p = tpath("homeserver.yaml");
    ck_assert_int_eq(cfg_write_default(p, "example.org", "state", "keys/example.org.key", 8448, &err), 0);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    cfg *c = load_path(p);
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_err, 0);
    ck_assert_int_eq(n_warn, 0);
    ck_assert_str_eq(c->server_name, "example.org");
    ck_assert_uint_eq(c->n_listeners, 1);
    ck_assert_int_eq(c->listeners[0].port, 8448);
    ck_assert_str_eq(c->listeners[0].bind_addresses.v[0], "127.0.0.1");
    ck_assert(c->listeners[0].res_client && c->listeners[0].res_federation);
    ck_assert_str_eq(c->public_baseurl, "http://example.org:8448/");
    char *d = tpath("state"), *k = tpath("keys/example.org.key");
    ck_assert_str_eq(c->data_dir, d);
    ck_assert_str_eq(c->signing_key_path, k);
    ck_assert(!c->enable_registration);
    ck_assert(c->db_embedded);
    free(d), free(k);
    cfg_free(c);
    free(p);

    /* Values that need quoting survive; absent ones fall back to defaults. */
    p = tpath("quoted.yaml");
    ck_assert_int_eq(cfg_write_default(p, "[::1]:8448", "/srv/it's data: #1", NULL, 8008, &err), 0);
    c = load_path(p);
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert_str_eq(c->server_name, "[::1]:8448");
    ck_assert_str_eq(c->data_dir, "/srv/it's data: #1");
    k = tpath("[::1]:8448.signing.key");
    ck_assert_str_eq(c->signing_key_path, k);
    free(k);
    cfg_free(c);
    free(p);
}
END_TEST

START_TEST(test_write_default_refuses) {
    hs_err err;
    char *p = write_file("homeserver.yaml", "server_name: mine.example\n");
    int rc = cfg_write_default(p, "example.org", "data", NULL, 8008, &err);
    ck_assert_int_eq(rc, -EEXIST);
    ck_assert_msg(strstr(err.msg, "refusing to overwrite"), "%s", err.msg);
    char *text = slurp(p);
    ck_assert_str_eq(text, "server_name: mine.example\n");
    free(text);
    free(p);

    p = tpath("new.yaml");
    ck_assert_int_eq(cfg_write_default(p, "not a name", "data", NULL, 8008, &err), -EINVAL);
    ck_assert_msg(strstr(err.msg, "invalid server name"), "%s", err.msg);
    ck_assert_int_eq(cfg_write_default(p, "example.org", "data", NULL, 0, &err), -EINVAL);
    ck_assert_int_eq(cfg_write_default(p, "example.org", "da\nta", NULL, 8008, &err), -EINVAL);
    ck_assert_int_eq(access(p, F_OK), -1); /* nothing written */
    char *dir = tpath("no/such/dir.yaml");
    ck_assert_int_eq(cfg_write_default(dir, "example.org", NULL, NULL, 8008, NULL), -ENOENT);
    free(dir);
    free(p);
}
END_TEST

/* The media keys: Synapse's shapes for thumbnail_sizes, media_retention and
 * media_upload_limits, our media_encryption_key_path, and their errors. */
START_TEST(test_media_keys) {
    cfg *c = load_text("server_name: example.org\n");
    ck_assert_msg(c, "%s", diag_text);
    char *k = tpath("media.key");
    ck_assert_str_eq(c->media_encryption_key_path, k);
    free(k);
    ck_assert(c->enable_authenticated_media && !c->dynamic_thumbnails);
    ck_assert_int_eq(c->max_image_pixels, 32LL << 20);
    ck_assert_uint_eq(c->n_thumbnail_sizes, 5);
    ck_assert(c->thumbnail_sizes[0].width == 32 && c->thumbnail_sizes[0].crop);
    ck_assert(c->thumbnail_sizes[4].width == 800 && c->thumbnail_sizes[4].height == 600 &&
              !c->thumbnail_sizes[4].crop);
    ck_assert_int_eq(c->media_local_lifetime, 0);
    ck_assert_int_eq(c->media_remote_lifetime, 0);
    ck_assert_uint_eq(c->n_media_upload_limits, 0);
    ck_assert_int_eq(c->max_pending_media_uploads, 5);
    ck_assert_int_eq(c->unused_expiration_time, 24LL * 3600000);
    ck_assert_uint_eq(c->url_preview_ip_range_blacklist.n, 19);
    ck_assert_uint_eq(c->url_preview_ip_range_whitelist.n, 0);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "media_encryption_key_path: keys/m.key\n"
                  "enable_authenticated_media: false\n"
                  "dynamic_thumbnails: true\n"
                  "thumbnail_sizes:\n"
                  "  - {width: 64, height: 48, method: scale}\n"
                  "media_retention:\n"
                  "  local_media_lifetime: 90d\n"
                  "  remote_media_lifetime: 14d\n"
                  "media_upload_limits:\n"
                  "  - time_period: 1h\n"
                  "    max_size: 100M\n"
                  "url_preview_ip_range_blacklist: ['10.0.0.0/8']\n"
                  "max_pending_media_uploads: 2\n"
                  "unused_expiration_time: 10m\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    k = tpath("keys/m.key");
    ck_assert_str_eq(c->media_encryption_key_path, k);
    free(k);
    ck_assert(!c->enable_authenticated_media && c->dynamic_thumbnails);
    ck_assert_uint_eq(c->n_thumbnail_sizes, 1);
    ck_assert(c->thumbnail_sizes[0].width == 64 && c->thumbnail_sizes[0].height == 48 &&
              !c->thumbnail_sizes[0].crop);
    ck_assert_int_eq(c->media_local_lifetime, 90LL * 86400000);
    ck_assert_int_eq(c->media_remote_lifetime, 14LL * 86400000);
    ck_assert_uint_eq(c->n_media_upload_limits, 1);
    ck_assert_int_eq(c->media_upload_limits[0].time_period, 3600000);
    ck_assert_int_eq(c->media_upload_limits[0].max_size, 100LL << 20);
    ck_assert_uint_eq(c->url_preview_ip_range_blacklist.n, 1);
    ck_assert_int_eq(c->max_pending_media_uploads, 2);
    ck_assert_int_eq(c->unused_expiration_time, 600000);
    cfg_free(c);

    c = load_text("server_name: example.org\n"                           /* 1 */
                  "thumbnail_sizes:\n"                                    /* 2 */
                  "  - {width: 0, height: 32, method: crop}\n"            /* 3 */
                  "  - {width: 32, height: 32, method: stretch}\n"        /* 4 */
                  "  - {width: 32}\n"                                     /* 5 */
                  "media_upload_limits: {time_period: 1d}\n"              /* 6 */
                  "media_retention: {local_media_lifetime: soon}\n");     /* 7 */
    ck_assert_ptr_null(c);
    expect_diag(3, "error", "thumbnail_sizes[0].width", "");
    expect_diag(4, "error", "thumbnail_sizes[1].method", "must be crop or scale, got 'stretch'");
    expect_diag(5, "error", "thumbnail_sizes[2].height", "missing required key");
    expect_diag(6, "error", "media_upload_limits", "expected a list");
    expect_diag(7, "error", "media_retention.local_media_lifetime", "");
}
END_TEST

/* url_preview_url_blacklist: Synapse's list of component -> pattern maps. */
START_TEST(test_url_blacklist_key) {
    cfg *c = load_text("server_name: example.org\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_uint_eq(c->n_url_preview_url_blacklist, 0);
    cfg_free(c);
    c = load_text("server_name: example.org\n"
                  "url_preview_url_blacklist:\n"
                  "  - username: '*'\n"
                  "  - netloc: 'www.acme.com'\n"
                  "    path: '/foo'\n"
                  "  - netloc: '^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$'\n"
                  "  - port: 8080\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert_uint_eq(c->n_url_preview_url_blacklist, 4);
    ck_assert_str_eq(c->url_preview_url_blacklist[0].pattern[CFG_URL_USERNAME], "*");
    ck_assert_ptr_null(c->url_preview_url_blacklist[0].pattern[CFG_URL_NETLOC]);
    ck_assert_str_eq(c->url_preview_url_blacklist[1].pattern[CFG_URL_NETLOC], "www.acme.com");
    ck_assert_str_eq(c->url_preview_url_blacklist[1].pattern[CFG_URL_PATH], "/foo");
    ck_assert_str_eq(c->url_preview_url_blacklist[2].pattern[CFG_URL_NETLOC],
                     "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$");
    ck_assert_str_eq(c->url_preview_url_blacklist[3].pattern[CFG_URL_PORT], "8080");
    cfg_free(c);
    c = load_text("server_name: example.org\n"                      /* 1 */
                  "url_preview_url_blacklist:\n"                     /* 2 */
                  "  - host: example.com\n"                          /* 3 */
                  "  - netloc: '^(unclosed'\n"                       /* 4 */
                  "  - path: [a, b]\n"                               /* 5 */
                  "  - just a string\n");                            /* 6 */
    ck_assert_ptr_null(c);
    expect_diag(3, "error", "url_preview_url_blacklist[0].host", "not a URL component");
    expect_diag(4, "error", "url_preview_url_blacklist[1].netloc", "not a POSIX extended regular expression");
    expect_diag(5, "error", "url_preview_url_blacklist[2].path", "expected a pattern");
    expect_diag(6, "error", "url_preview_url_blacklist[3]", "expected a mapping");
    c = load_text("server_name: example.org\n"
                  "url_preview_url_blacklist:\n"
                  "  - {}\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 1);
    expect_diag(3, "warning", "url_preview_url_blacklist[0]", "an empty entry matches every URL");
    cfg_free(c);
    c = load_text("server_name: example.org\nurl_preview_url_blacklist: {netloc: x}\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "url_preview_url_blacklist", "expected a list");
}
END_TEST

START_TEST(test_federation_sender_shard) {
    cfg *c = load_text("server_name: example.org\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_ptr_null(c->federation_sender_shard);
    cfg_free(c);
    c = load_text("server_name: example.org\nfederation_sender_shard: \"2/3\"\n");
    ck_assert_msg(c, "%s", diag_text);
    unsigned i = 9, n = 9;
    ck_assert(cfg_sender_shard_parse(c->federation_sender_shard, &i, &n));
    ck_assert_uint_eq(i, 2);
    ck_assert_uint_eq(n, 3);
    cfg_free(c);
    const char *bad[] = {"3/3", "1/0", "1", "a/2", "1/2x", "-1/2", "1/ 2", "0/2000"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char text[128];
        snprintf(text, sizeof text, "server_name: example.org\nfederation_sender_shard: \"%s\"\n",
                 bad[k]);
        c = load_text(text);
        ck_assert_msg(!c, "%s accepted", bad[k]);
        expect_diag(2, "error", "federation_sender_shard", "expected i/n with 0 <= i < n");
    }
}
END_TEST

START_TEST(test_channel_keys) {
    cfg *c = load_text("server_name: example.org\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(c->encryption_default, CFG_ENCRYPT_INVITE);
    ck_assert(!c->forbid_unencrypted_private_rooms && c->enable_room_list_search);
    ck_assert(!c->has_room_list_publication_rules);
    ck_assert_uint_eq(c->n_room_list_publication_rules, 0);
    ck_assert(!c->allow_public_rooms_without_auth && !c->allow_public_rooms_over_federation);
    ck_assert_uint_eq(c->public_rooms_federation_allowlist.n, 0);
    ck_assert_double_eq_tol(c->rc_knocks_per_user.per_second, 0.1, 1e-9);
    ck_assert_int_eq(c->rc_knocks_per_room.burst_count, 10);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "encryption_enabled_by_default_for_room_type: off\n"
                  "forbid_unencrypted_private_rooms: true\n"
                  "room_list_publication_rules:\n"
                  "  - user_id: '@bot:*'\n"
                  "    action: deny\n"
                  "  - alias: '#*:example.org'\n"
                  "allow_public_rooms_without_auth: true\n"
                  "public_rooms_federation_allowlist: [friends.example.org]\n"
                  "rc_knocks: {per_room: {per_second: 1, burst_count: 2}}\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert_int_eq(c->encryption_default, CFG_ENCRYPT_OFF);
    ck_assert(c->forbid_unencrypted_private_rooms && c->allow_public_rooms_without_auth);
    ck_assert(c->has_room_list_publication_rules);
    ck_assert_uint_eq(c->n_room_list_publication_rules, 2);
    ck_assert_str_eq(c->room_list_publication_rules[0].user_id, "@bot:*");
    ck_assert_str_eq(c->room_list_publication_rules[0].alias, "*");
    ck_assert(!c->room_list_publication_rules[0].allow);
    ck_assert_str_eq(c->room_list_publication_rules[1].alias, "#*:example.org");
    ck_assert_str_eq(c->room_list_publication_rules[1].room_id, "*");
    ck_assert(c->room_list_publication_rules[1].allow);
    ck_assert_str_eq(c->public_rooms_federation_allowlist.v[0], "friends.example.org");
    ck_assert_int_eq(c->rc_knocks_per_room.burst_count, 2);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "encryption_enabled_by_default_for_room_type: ALL\n"
                  "room_list_publication_rules: []\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(c->encryption_default, CFG_ENCRYPT_ALL);
    ck_assert(c->has_room_list_publication_rules);
    ck_assert_uint_eq(c->n_room_list_publication_rules, 0);
    cfg_free(c);

    c = load_text("server_name: example.org\n"                                     /* 1 */
                  "encryption_enabled_by_default_for_room_type: private\n"        /* 2 */
                  "room_list_publication_rules:\n"                                /* 3 */
                  "  - {action: maybe}\n"                                         /* 4 */
                  "  - just a string\n"                                           /* 5 */
                  "public_rooms_federation_allowlist: ['bad name!']\n");          /* 6 */
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "encryption_enabled_by_default_for_room_type",
                "expected all, invite or off, got 'private'");
    expect_diag(4, "error", "room_list_publication_rules[0].action", "expected allow or deny");
    expect_diag(5, "error", "room_list_publication_rules[1]", "expected a mapping");
    expect_diag(6, "error", "public_rooms_federation_allowlist[0]", "'bad name!' is not a valid");
}
END_TEST

/* Synapse's server_notices block: off when absent, on when given, its
 * localpart required and checked. */
START_TEST(test_server_notices_keys) {
    cfg *c = load_text("server_name: example.org\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert(!c->server_notices);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "server_notices:\n"
                  "  system_mxid_localpart: _server\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert(c->server_notices && !c->server_notices_auto_join);
    ck_assert_str_eq(c->server_notices_localpart, "_server");
    ck_assert_str_eq(c->server_notices_room_name, "Server Notices");
    ck_assert_ptr_null(c->server_notices_display_name);
    ck_assert_ptr_null(c->server_notices_room_topic);
    cfg_free(c);

    c = load_text("server_name: example.org\n"
                  "server_notices:\n"
                  "  system_mxid_localpart: notices\n"
                  "  system_mxid_display_name: Server Alert\n"
                  "  system_mxid_avatar_url: mxc://example.org/a\n"
                  "  room_name: Alerts\n"
                  "  room_avatar_url: mxc://example.org/b\n"
                  "  room_topic: From the admins\n"
                  "  auto_join: true\n");
    ck_assert_msg(c, "%s", diag_text);
    ck_assert_int_eq(n_warn, 0);
    ck_assert(c->server_notices && c->server_notices_auto_join);
    ck_assert_str_eq(c->server_notices_display_name, "Server Alert");
    ck_assert_str_eq(c->server_notices_avatar_url, "mxc://example.org/a");
    ck_assert_str_eq(c->server_notices_room_name, "Alerts");
    ck_assert_str_eq(c->server_notices_room_avatar_url, "mxc://example.org/b");
    ck_assert_str_eq(c->server_notices_room_topic, "From the admins");
    cfg_free(c);

    c = load_text("server_name: example.org\n"  /* 1 */
                  "server_notices:\n"          /* 2 */
                  "  room_name: Alerts\n");    /* 3 */
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "server_notices.system_mxid_localpart", "missing required key");
    c = load_text("server_name: example.org\n"
                  "server_notices: {system_mxid_localpart: 'Big Brother'}\n");
    ck_assert_ptr_null(c);
    expect_diag(2, "error", "server_notices.system_mxid_localpart",
                "'Big Brother' is not a valid localpart");
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config_load");
    TCase *t = tcase_create("load");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_defaults);
    tcase_add_test(t, test_values_are_read);
    tcase_add_test(t, test_type_errors_name_key_file_and_line);
    tcase_add_test(t, test_unknown_keys_warn_with_line);
    tcase_add_test(t, test_yaml_syntax_error);
    tcase_add_test(t, test_structure_errors);
    tcase_add_test(t, test_unreadable_file);
    tcase_add_test(t, test_server_names);
    tcase_add_test(t, test_size_strings);
    tcase_add_test(t, test_cidr_validation);
    tcase_add_test(t, test_database_dsn);
    tcase_add_test(t, test_database_errors);
    tcase_add_test(t, test_relative_paths);
    tcase_add_test(t, test_listeners);
    tcase_add_test(t, test_tls_files);
    tcase_add_test(t, test_registration_guard_and_checks);
    tcase_add_test(t, test_accounts_devices_voip_keys);
    tcase_add_test(t, test_presence_keys);
    tcase_add_test(t, test_trusted_key_servers);
    tcase_add_test(t, test_synapse_config_carries_over);
    tcase_add_test(t, test_example_file_loads_and_documents_every_key);
    tcase_add_test(t, test_write_default_round_trip);
    tcase_add_test(t, test_write_default_refuses);
    tcase_add_test(t, test_media_keys);
    tcase_add_test(t, test_url_blacklist_key);
    tcase_add_test(t, test_channel_keys);
    tcase_add_test(t, test_federation_sender_shard);
    tcase_add_test(t, test_server_notices_keys);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    SRunner *r = srunner_create(config_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
