/* test_federation_discovery.c — server discovery without a network: the
 * spec's resolution steps with scripted well-known and SRV answers, the
 * server-name grammar, well-known bodies and cache lifetimes, SRV messages
 * as a DNS server sends them, and the outbound IP policy. */
#include <arpa/inet.h>
#include <check.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "homeserver/core/ip_range.h"
#include "federation/transport_internal.h"

/* ---- scripted lookups ---------------------------------------------------------- */

typedef struct script {
    const char *wk;            /* delegated name, or NULL: no (valid) well-known */
    long long wk_expires;
    const char *srv_name;      /* the only SRV name that has records */
    fed_srv_record recs[4];
    int n_recs;
    int wk_calls, srv_calls;
    char asked[4][300];        /* SRV names asked, in order */
} script;

static int fake_wk(void *ctx, const char *host, char *out, size_t cap, long long *expires) {
    script *s = ctx;
    (void)host;
    s->wk_calls++;
    *expires = s->wk_expires;
    if (!s->wk) return -1;
    snprintf(out, cap, "%s", s->wk);
    return 0;
}

static int fake_srv(void *ctx, const char *qname, fed_srv_record *out, int max) {
    script *s = ctx;
    if (s->srv_calls < 4) snprintf(s->asked[s->srv_calls], 300, "%s", qname);
    s->srv_calls++;
    if (!s->srv_name || strcmp(qname, s->srv_name)) return 0;
    int n = s->n_recs < max ? s->n_recs : max;
    memcpy(out, s->recs, (size_t)n * sizeof *out);
    return n;
}

static fed_target resolve_ok(script *s, const char *name, long long *expires) {
    fed_resolver_ops ops = {fake_wk, fake_srv, s};
    fed_target t;
    hs_err err = {0};
    long long e;
    ck_assert_msg(fed_resolve_with(&ops, name, &t, 1000, expires ? expires : &e, &err) == 0,
                  "%s: %s", name, err.msg);
    return t;
}

static void expect(const fed_target *t, const char *tls, int port, const char *connect,
                   const char *host) {
    ck_assert_str_eq(t->tls_host, tls);
    ck_assert_int_eq(t->port, port);
    ck_assert_str_eq(t->connect_host, connect);
    ck_assert_str_eq(t->host_header, host);
}

START_TEST(ip_literals_and_explicit_ports_skip_lookups) {
    script s = {.wk = "elsewhere.example:1"};
    long long exp;
    fed_target t = resolve_ok(&s, "1.2.3.4", &exp);
    expect(&t, "1.2.3.4", 8448, "", "1.2.3.4");
    ck_assert(exp == LLONG_MAX);
    t = resolve_ok(&s, "1.2.3.4:8000", NULL);
    expect(&t, "1.2.3.4", 8000, "", "1.2.3.4:8000");
    t = resolve_ok(&s, "[2001:db8::1]", NULL);
    expect(&t, "2001:db8::1", 8448, "", "[2001:db8::1]");
    t = resolve_ok(&s, "[::1]:9000", NULL);
    expect(&t, "::1", 9000, "", "[::1]:9000");
    t = resolve_ok(&s, "example.org:8081", NULL); /* step 2 */
    expect(&t, "example.org", 8081, "", "example.org:8081");
    ck_assert_int_eq(s.wk_calls, 0);
    ck_assert_int_eq(s.srv_calls, 0);
}
END_TEST

START_TEST(well_known_delegation) {
    /* 3.1: an IP literal, with or without port; Host is the delegated name. */
    script s = {.wk = "10.0.0.5", .wk_expires = 5000};
    long long exp;
    fed_target t = resolve_ok(&s, "example.org", &exp);
    expect(&t, "10.0.0.5", 8448, "", "10.0.0.5");
    ck_assert_int_eq(exp, 5000);
    s.wk = "[2001:db8::2]:1234";
    t = resolve_ok(&s, "example.org", NULL);
    expect(&t, "2001:db8::2", 1234, "", "[2001:db8::2]:1234");
    /* 3.2: a host with a port: no SRV. */
    s.wk = "matrix.example.org:443";
    t = resolve_ok(&s, "example.org", NULL);
    expect(&t, "matrix.example.org", 443, "", "matrix.example.org:443");
    ck_assert_int_eq(s.srv_calls, 0);
    /* 3.5: a host without port and no SRV: 8448, Host the delegated host. */
    s.wk = "matrix.example.org";
    t = resolve_ok(&s, "example.org", NULL);
    expect(&t, "matrix.example.org", 8448, "", "matrix.example.org");
    ck_assert_int_eq(s.srv_calls, 2);
    ck_assert_str_eq(s.asked[0], "_matrix-fed._tcp.matrix.example.org");
    ck_assert_str_eq(s.asked[1], "_matrix._tcp.matrix.example.org");
}
END_TEST

START_TEST(srv_after_well_known) {
    /* 3.3: SRV of the delegated host; certificate and Host stay that host. */
    script s = {.wk = "deleg.example.org", .wk_expires = 10000000,
                .srv_name = "_matrix-fed._tcp.deleg.example.org",
                .recs = {{.priority = 10, .weight = 5, .port = 8449, .target = "fed1.example.net",
                          .ttl = 300}},
                .n_recs = 1};
    long long exp;
    fed_target t = resolve_ok(&s, "example.org", &exp);
    expect(&t, "deleg.example.org", 8449, "fed1.example.net", "deleg.example.org");
    ck_assert_int_eq(exp, 1000 + 300 * 1000); /* the SRV TTL is shorter */
    ck_assert_int_eq(s.srv_calls, 1);
    /* 3.4: only the deprecated _matrix._tcp record. */
    script d = s;
    d.srv_name = "_matrix._tcp.deleg.example.org";
    d.srv_calls = 0;
    t = resolve_ok(&d, "example.org", NULL);
    expect(&t, "deleg.example.org", 8449, "fed1.example.net", "deleg.example.org");
    ck_assert_int_eq(d.srv_calls, 2);
    /* A target equal to the host needs no redirection of the connection. */
    script same = s;
    strcpy(same.recs[0].target, "DELEG.example.org");
    t = resolve_ok(&same, "example.org", NULL);
    expect(&t, "deleg.example.org", 8449, "", "deleg.example.org");
}
END_TEST

START_TEST(srv_without_well_known) {
    /* 4-6: the well-known failed: SRV of the server's own host, then 8448. */
    script s = {.wk = NULL, .wk_expires = 1000 + 3600000,
                .srv_name = "_matrix-fed._tcp.example.org",
                .recs = {{.priority = 0, .weight = 0, .port = 443, .target = "matrix.example.org",
                          .ttl = 7200}},
                .n_recs = 1};
    long long exp;
    fed_target t = resolve_ok(&s, "example.org", &exp);
    expect(&t, "example.org", 443, "matrix.example.org", "example.org");
    ck_assert_int_eq(exp, 1000 + 3600000);
    s.srv_name = NULL;
    t = resolve_ok(&s, "example.org", &exp);
    expect(&t, "example.org", 8448, "", "example.org");
    /* An invalid delegated name counts as no well-known. */
    s.wk = "not a name:99999";
    t = resolve_ok(&s, "example.org", NULL);
    expect(&t, "example.org", 8448, "", "example.org");
}
END_TEST

START_TEST(srv_no_service_and_bad_names) {
    script s = {.srv_name = "_matrix-fed._tcp.example.org",
                .recs = {{.port = 0, .target = ".", .ttl = 60}}, .n_recs = 1};
    fed_resolver_ops ops = {fake_wk, fake_srv, &s};
    fed_target t;
    hs_err err = {0};
    long long exp;
    ck_assert_int_eq(fed_resolve_with(&ops, "example.org", &t, 0, &exp, &err), -1);
    ck_assert_int_eq(err.status, 502);
    const char *bad[] = {"", "exa mple.org", "example.org:", "example.org:0", "example.org:65536",
                         "[::1", "[nope]:80", "1.2.3.256", "a..b", ".a", "a.", "a:b:c",
                         "example.org:80x", NULL};
    for (int i = 0; bad[i]; i++) {
        ck_assert_msg(fed_resolve_with(&ops, bad[i], &t, 0, &exp, &err) == -1, "%s", bad[i]);
        ck_assert_int_eq(err.status, 400);
        ck_assert_str_eq(err.errcode, "M_INVALID_PARAM");
        ck_assert(!hs_server_name_valid(bad[i]));
    }
    const char *good[] = {"example.org", "localhost:8448", "1.2.3.4", "[1234:5678::abcd]:5678",
                          "matrix-01.example.org", "a", NULL};
    for (int i = 0; good[i]; i++) ck_assert_msg(hs_server_name_valid(good[i]), "%s", good[i]);
}
END_TEST

START_TEST(server_name_parts) {
    char host[256];
    int port, fam;
    ck_assert_int_eq(hs_server_name_parse("[::1]:8448", host, sizeof host, &port, &fam), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 8448);
    ck_assert_int_eq(fam, 6);
    ck_assert_int_eq(hs_server_name_parse("127.0.0.1", host, sizeof host, &port, &fam), 0);
    ck_assert_int_eq(fam, 4);
    ck_assert_int_eq(port, 0);
    ck_assert_int_eq(hs_server_name_parse("Example.ORG:1", host, sizeof host, &port, &fam), 0);
    ck_assert_str_eq(host, "Example.ORG");
    ck_assert_int_eq(fam, 0);
    ck_assert_int_eq(hs_server_name_parse("example.org", host, 5, &port, &fam), -1); /* too small */
}
END_TEST

/* ---- well-known bodies and caching ------------------------------------------------- */

START_TEST(well_known_bodies) {
    char out[300];
    const char *ok = "{\"m.server\": \"matrix.example.org:443\", \"other\": 1}";
    ck_assert_int_eq(fed_wellknown_parse(ok, strlen(ok), out, sizeof out), 0);
    ck_assert_str_eq(out, "matrix.example.org:443");
    const char *v6 = "{\"m.server\": \"[2001:db8::1]\"}";
    ck_assert_int_eq(fed_wellknown_parse(v6, strlen(v6), out, sizeof out), 0);
    const char *bad[] = {"", "not json", "[]", "{}", "{\"m.server\": 5}", "{\"m.server\": \"\"}",
                         "{\"m.server\": \"https://example.org\"}",
                         "{\"m.server\": \"a:b\"}", "{\"m.server\": \"x\", \"m.server\": \"y\"}",
                         NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(fed_wellknown_parse(bad[i], strlen(bad[i]), out, sizeof out) == -1, "%s",
                      bad[i]);
    ck_assert_int_eq(fed_wellknown_parse(ok, strlen(ok), out, 5), -1);
}
END_TEST

START_TEST(well_known_cache_periods) {
    const long long H = 3600000, now = 1700000000000LL;
    ck_assert_int_eq(fed_wellknown_cache_ms(NULL, NULL, now), 24 * H);
    ck_assert_int_eq(fed_wellknown_cache_ms("max-age=3600", NULL, now), H);
    ck_assert_int_eq(fed_wellknown_cache_ms("public, max-age=7200", NULL, now), 2 * H);
    ck_assert_int_eq(fed_wellknown_cache_ms("Max-Age = 7200", NULL, now), 2 * H);
    ck_assert_int_eq(fed_wellknown_cache_ms("max-age=10", NULL, now), FED_WK_MIN_MS);
    ck_assert_int_eq(fed_wellknown_cache_ms("max-age=99999999999", NULL, now), 48 * H);
    ck_assert_int_eq(fed_wellknown_cache_ms("no-store", NULL, now), FED_WK_MIN_MS);
    ck_assert_int_eq(fed_wellknown_cache_ms("no-cache, no-store", NULL, now), FED_WK_MIN_MS);
    /* max-age wins over Expires. */
    ck_assert_int_eq(fed_wellknown_cache_ms("max-age=3600", "Thu, 01 Jan 1970 00:00:00 GMT", now), H);
    /* Expires: 6 hours after now; a bad date is "expired"; the past too. */
    char date[64];
    time_t t = (time_t)(now / 1000) + 6 * 3600;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
    ck_assert_int_eq(fed_wellknown_cache_ms(NULL, date, now), 6 * H);
    ck_assert_int_eq(fed_wellknown_cache_ms(NULL, "0", now), FED_WK_MIN_MS);
    ck_assert_int_eq(fed_wellknown_cache_ms("private", "Thu, 01 Jan 1970 00:00:00 GMT", now),
                     FED_WK_MIN_MS);
    /* Unknown directives alone leave the default. */
    ck_assert_int_eq(fed_wellknown_cache_ms("public", NULL, now), 24 * H);
}
END_TEST

/* ---- SRV messages ---------------------------------------------------------------------- */

typedef struct msg {
    unsigned char b[1024];
    int n;
} msg;

static void put8(msg *m, unsigned v) { m->b[m->n++] = (unsigned char)v; }
static void put16(msg *m, unsigned v) { put8(m, v >> 8), put8(m, v & 255); }
static void put32(msg *m, unsigned v) { put16(m, v >> 16), put16(m, v & 0xffff); }

static void put_name(msg *m, const char *name) {
    while (*name) {
        size_t l = strcspn(name, ".");
        put8(m, (unsigned)l);
        memcpy(m->b + m->n, name, l);
        m->n += (int)l;
        name += l + (name[l] == '.');
    }
    put8(m, 0);
}

/* An answer to "_matrix-fed._tcp.example.org" (the question at offset 12):
 * two SRV records, one target compressed, and a CNAME that is skipped. */
static msg srv_answer(void) {
    msg m = {.n = 0};
    put16(&m, 0x1234), put16(&m, 0x8180), put16(&m, 1), put16(&m, 3), put16(&m, 0), put16(&m, 0);
    put_name(&m, "_matrix-fed._tcp.example.org");
    put16(&m, 33), put16(&m, 1);
    /* CNAME answer first */
    put16(&m, 0xC00C), put16(&m, 5), put16(&m, 1), put32(&m, 60);
    put16(&m, 2), put16(&m, 0xC00C);
    /* SRV 10 60 8448 fed.example.net */
    put16(&m, 0xC00C), put16(&m, 33), put16(&m, 1), put32(&m, 3600);
    int len_at = m.n;
    put16(&m, 0);
    int start = m.n;
    put16(&m, 10), put16(&m, 60), put16(&m, 8448);
    put_name(&m, "fed.example.net");
    m.b[len_at] = (unsigned char)((m.n - start) >> 8), m.b[len_at + 1] = (unsigned char)(m.n - start);
    /* SRV 5 0 443 example.org (compressed: pointer to "example.org" in the question) */
    put16(&m, 0xC00C), put16(&m, 33), put16(&m, 1), put32(&m, 120);
    put16(&m, 8);
    put16(&m, 5), put16(&m, 0), put16(&m, 443);
    put16(&m, 0xC000 | (12 + 1 + 11 + 1 + 4)); /* "\x0bexample\x03org" after _matrix-fed, _tcp */
    return m;
}

START_TEST(srv_message_parsing) {
    msg m = srv_answer();
    fed_srv_record r[4];
    ck_assert_int_eq(fed_srv_parse(m.b, m.n, r, 4), 2);
    ck_assert_uint_eq(r[0].priority, 10);
    ck_assert_uint_eq(r[0].weight, 60);
    ck_assert_uint_eq(r[0].port, 8448);
    ck_assert_uint_eq(r[0].ttl, 3600);
    ck_assert_str_eq(r[0].target, "fed.example.net");
    ck_assert_uint_eq(r[1].priority, 5);
    ck_assert_uint_eq(r[1].port, 443);
    ck_assert_str_eq(r[1].target, "example.org");
    ck_assert_int_eq(fed_srv_pick(r, 2, 0.99), 1); /* the lower priority, whatever the weights */
    ck_assert_int_eq(fed_srv_parse(m.b, m.n, r, 1), 1);
    /* Truncated anywhere: an error, never a crash. */
    for (int cut = 0; cut < m.n; cut++) ck_assert_int_le(fed_srv_parse(m.b, cut, r, 4), 2);
    ck_assert_int_eq(fed_srv_parse(m.b, 5, r, 4), -1);
    ck_assert_int_eq(fed_srv_parse(m.b, 0, r, 4), -1);
}
END_TEST

START_TEST(srv_root_target_and_weights) {
    msg m = {.n = 0};
    put16(&m, 1), put16(&m, 0x8180), put16(&m, 0), put16(&m, 1), put16(&m, 0), put16(&m, 0);
    put_name(&m, "_matrix._tcp.example.org");
    put16(&m, 33), put16(&m, 1), put32(&m, 30), put16(&m, 7);
    put16(&m, 0), put16(&m, 0), put16(&m, 0), put8(&m, 0); /* target "." */
    fed_srv_record r[2];
    ck_assert_int_eq(fed_srv_parse(m.b, m.n, r, 2), 1);
    ck_assert_str_eq(r[0].target, ".");

    fed_srv_record w[3] = {{.priority = 1, .weight = 10}, {.priority = 1, .weight = 30},
                           {.priority = 2, .weight = 100}};
    ck_assert_int_eq(fed_srv_pick(w, 3, 0.0), 0);
    ck_assert_int_eq(fed_srv_pick(w, 3, 0.24), 0);
    ck_assert_int_eq(fed_srv_pick(w, 3, 0.26), 1);
    ck_assert_int_eq(fed_srv_pick(w, 3, 0.999), 1);
    fed_srv_record z[2] = {{.priority = 3}, {.priority = 3}};
    ck_assert_int_eq(fed_srv_pick(z, 2, 0.7), 0);
    ck_assert_int_eq(fed_srv_pick(z, 0, 0.5), -1);
}
END_TEST

/* ---- IP policy ---------------------------------------------------------------------------- */

static struct sockaddr_storage sa_of(const char *ip) {
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) s6->sin6_family = AF_INET6;
    else ck_abort_msg("bad test address %s", ip);
    return ss;
}

static bool allowed(const cfg *c, const char *ip) {
    struct sockaddr_storage ss = sa_of(ip);
    return fed_ip_allowed(c, (struct sockaddr *)&ss);
}

START_TEST(ip_policy) {
    char *black[] = {"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "::1/128", "fe80::/10",
                     "192.168.1.1"};
    char *white[] = {"127.0.0.0/8", "10.1.2.0/24"};
    cfg c = {0};
    c.ip_range_blacklist = (cfg_strlist){black, 6};
    ck_assert(!allowed(&c, "127.0.0.1"));
    ck_assert(!allowed(&c, "10.200.0.1"));
    ck_assert(!allowed(&c, "172.31.255.255"));
    ck_assert(allowed(&c, "172.32.0.1"));
    ck_assert(!allowed(&c, "::1"));
    ck_assert(!allowed(&c, "fe80::1"));
    ck_assert(allowed(&c, "fec0::1"));
    ck_assert(!allowed(&c, "192.168.1.1"));
    ck_assert(allowed(&c, "192.168.1.2"));
    ck_assert(allowed(&c, "8.8.8.8"));
    ck_assert(!allowed(&c, "::ffff:10.0.0.1")); /* IPv4-mapped counts as IPv4 */
    ck_assert(allowed(&c, "::ffff:8.8.8.8"));
    c.ip_range_whitelist = (cfg_strlist){white, 2};
    ck_assert(allowed(&c, "127.0.0.1"));
    ck_assert(allowed(&c, "127.255.0.9"));
    ck_assert(allowed(&c, "10.1.2.3"));
    ck_assert(!allowed(&c, "10.1.3.3"));
    ck_assert(!allowed(&c, "::1"));
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    ck_assert(!fed_ip_allowed(&c, &unix_sa));

    /* The ranges themselves (homeserver/core/ip_range.c, shared with URL previews). */
    unsigned char any[4] = {1, 2, 3, 4}, v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff};
    char *all4[] = {"0.0.0.0/0"}, *bad[] = {"10.0.0.0/33", "10.0.0.0/", "nope/8", "1.2.3.4/x"};
    char *doc6[] = {"2001:db8::/32"}, *other6[] = {"2001:db9::/32"};
    ck_assert(hs_ip_in_ranges(AF_INET, any, all4, 1));
    ck_assert(!hs_ip_in_ranges(AF_INET6, v6, all4, 1));
    ck_assert(!hs_ip_in_ranges(AF_INET, any, bad, 4)); /* malformed entries match nothing */
    ck_assert(hs_ip_in_ranges(AF_INET6, v6, doc6, 1));
    ck_assert(!hs_ip_in_ranges(AF_INET6, v6, other6, 1));
}
END_TEST

START_TEST(domain_whitelist) {
    char *names[] = {"a.example", "b.example:8448"};
    cfg c = {0};
    ck_assert(fed_domain_allowed(&c, "anyone.example"));
    c.has_federation_domain_whitelist = true; /* present but empty: no one */
    ck_assert(!fed_domain_allowed(&c, "a.example"));
    c.federation_domain_whitelist = (cfg_strlist){names, 2};
    ck_assert(fed_domain_allowed(&c, "a.example"));
    ck_assert(fed_domain_allowed(&c, "b.example:8448"));
    ck_assert(!fed_domain_allowed(&c, "b.example"));
    ck_assert(!fed_domain_allowed(&c, "A.example"));
}
END_TEST

START_TEST(escaping) {
    char *e = fed_escape("!room:example.org/x y$€");
    ck_assert_str_eq(e, "%21room%3Aexample.org%2Fx%20y%24%E2%82%AC");
    free(e);
    e = fed_escape("");
    ck_assert_str_eq(e, "");
    free(e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("federation_discovery");
    TCase *t = tcase_create("discovery");
    tcase_add_test(t, ip_literals_and_explicit_ports_skip_lookups);
    tcase_add_test(t, well_known_delegation);
    tcase_add_test(t, srv_after_well_known);
    tcase_add_test(t, srv_without_well_known);
    tcase_add_test(t, srv_no_service_and_bad_names);
    tcase_add_test(t, server_name_parts);
    tcase_add_test(t, well_known_bodies);
    tcase_add_test(t, well_known_cache_periods);
    tcase_add_test(t, srv_message_parsing);
    tcase_add_test(t, srv_root_target_and_weights);
    tcase_add_test(t, ip_policy);
    tcase_add_test(t, domain_whitelist);
    tcase_add_test(t, escaping);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
