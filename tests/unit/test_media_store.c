/* test_media_store.c — the media store's pure core: encrypted files that
 * round-trip and refuse to open when cut, altered or under another key;
 * file keys sealed to their address; the names and headers served. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "media/media_internal.h"

static char store[] = "/tmp/pvyhs_media_XXXXXX";
static media_keys keys, other_keys;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void setup(void) {
    ck_assert_int_ge(sodium_init(), 0);
    strcpy(store, "/tmp/pvyhs_media_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(store));
    unsigned char master[32];
    randombytes_buf(master, sizeof master);
    media_keys_derive(master, &keys);
    master[0] ^= 1;
    media_keys_derive(master, &other_keys);
}

static void teardown(void) { nftw(store, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* Write n bytes (in odd-sized pieces) and install; returns the writer. */
static media_writer *write_blob(const unsigned char *data, size_t n) {
    hs_err err = {0};
    media_writer *w = media_writer_new(store, &keys, &err);
    ck_assert_msg(w, "%s", err.msg);
    for (size_t off = 0; off < n;) {
        size_t take = n - off < 7777 ? n - off : 7777;
        ck_assert_int_eq(media_writer_write(w, data + off, take, &err), 0);
        off += take;
    }
    ck_assert_int_eq(media_writer_finish(w, &err), 0);
    ck_assert_int_eq(media_writer_install(w, store, &err), 0);
    return w;
}

static ssize_t read_all(const unsigned char *addr, const unsigned char *key, unsigned char *out,
                        size_t cap) {
    hs_err err = {0};
    media_reader *r = media_reader_open(store, addr, key, &err);
    if (!r) return -1;
    size_t got = 0;
    ssize_t n;
    while ((n = media_reader_read(r, out + got, cap - got)) > 0) got += (size_t)n;
    media_reader_free(r);
    return n < 0 ? -1 : (ssize_t)got;
}

START_TEST(test_round_trip_sizes) {
    /* Empty, one byte, exactly one message, one more, several messages. */
    const size_t sizes[] = {0, 1, MEDIA_CHUNK, MEDIA_CHUNK + 1, 3 * MEDIA_CHUNK + 123};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        unsigned char *data = malloc(n + 1), *back = malloc(n + 16);
        randombytes_buf(data, n);
        media_writer *w = write_blob(data, n);
        ck_assert_int_eq(media_writer_length(w), (long long)n);
        ck_assert_int_eq(read_all(media_writer_address(w), media_writer_key(w), back, n + 16),
                         (ssize_t)n);
        ck_assert(n == 0 || memcmp(data, back, n) == 0);
        hs_err err = {0};
        unsigned char *all = media_blob_slurp(store, media_writer_address(w), media_writer_key(w),
                                              n, &err);
        ck_assert_ptr_nonnull(all);
        ck_assert(n == 0 || memcmp(all, data, n) == 0);
        free(all);
        media_writer_free(w);
        free(data), free(back);
    }
}
END_TEST

START_TEST(test_address_is_keyed_and_dedups) {
    unsigned char data[1000];
    randombytes_buf(data, sizeof data);
    media_writer *a = write_blob(data, sizeof data), *b = write_blob(data, sizeof data);
    /* Same content, same address; each file still has its own key. */
    ck_assert_mem_eq(media_writer_address(a), media_writer_address(b), MEDIA_ADDR_LEN);
    ck_assert(memcmp(media_writer_key(a), media_writer_key(b), MEDIA_KEY_LEN) != 0);
    /* Not the plain SHA-256 of the content. */
    unsigned char sha[32];
    crypto_hash_sha256(sha, data, sizeof data);
    ck_assert(memcmp(sha, media_writer_address(a), 32) != 0);
    media_writer_free(a), media_writer_free(b);
}
END_TEST

/* Change the stored file with fn, then expect it to refuse to open. */
static void expect_refused(void (*fn)(FILE *f, long size)) {
    unsigned char data[3 * MEDIA_CHUNK], back[sizeof data + 16];
    randombytes_buf(data, sizeof data);
    media_writer *w = write_blob(data, sizeof data);
    char *path = media_blob_path(store, media_writer_address(w));
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    fn(f, ftell(f));
    fclose(f);
    ck_assert_int_eq(read_all(media_writer_address(w), media_writer_key(w), back, sizeof back), -1);
    free(path);
    media_writer_free(w);
}

static void flip_a_bit(FILE *f, long size) {
    fseek(f, size / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, size / 2, SEEK_SET);
    fputc(c ^ 0x10, f);
}

static void cut_last_message(FILE *f, long size) {
    ck_assert_int_eq(ftruncate(fileno(f), size - 100), 0);
}

static void drop_final_message(FILE *f, long size) {
    (void)size;
    /* Magic, header, then the first two of four messages only. */
    long keep = 8 + crypto_secretstream_xchacha20poly1305_HEADERBYTES +
                2 * (MEDIA_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES);
    ck_assert_int_eq(ftruncate(fileno(f), keep), 0);
}

static void append_garbage(FILE *f, long size) {
    (void)size;
    fseek(f, 0, SEEK_END);
    fputs("more", f);
}

START_TEST(test_tampering_is_detected) {
    expect_refused(flip_a_bit);
    expect_refused(cut_last_message);
    expect_refused(drop_final_message);
    expect_refused(append_garbage);
}
END_TEST

/* Read want bytes from offset after a seek; -1 if the seek or a read fails. */
static ssize_t read_from(const unsigned char *addr, const unsigned char *key, long long offset,
                         unsigned char *out, size_t want) {
    hs_err err = {0};
    media_reader *r = media_reader_open(store, addr, key, &err);
    ck_assert_ptr_nonnull(r);
    size_t got = 0;
    ssize_t n = 0;
    if (media_reader_seek(r, offset) == 0)
        while (got < want && (n = media_reader_read(r, out + got, want - got)) > 0) got += (size_t)n;
    else
        n = -1;
    media_reader_free(r);
    return n < 0 ? -1 : (ssize_t)got;
}

START_TEST(test_seek_lands_on_the_right_byte) {
    ck_assert(media_reader_fast_seek()); /* libsodium fast-forwards as documented */
    const size_t n = 5 * MEDIA_CHUNK + 321;
    unsigned char *data = malloc(n), *back = malloc(n);
    randombytes_buf(data, n);
    media_writer *w = write_blob(data, n);
    const long long offsets[] = {0, 1, MEDIA_CHUNK - 1, MEDIA_CHUNK, MEDIA_CHUNK + 1,
                                 3 * MEDIA_CHUNK + 77, 5 * MEDIA_CHUNK, (long long)n - 1,
                                 (long long)n};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        long long off = offsets[i];
        size_t want = n - (size_t)off;
        /* To the end: the FINAL tag is still checked. */
        ck_assert_int_eq(read_from(media_writer_address(w), media_writer_key(w), off, back, n),
                         (ssize_t)want);
        ck_assert(want == 0 || memcmp(back, data + off, want) == 0);
    }
    /* A skipped message's MAC altered (its first 8 bytes, the ones chained
     * into the next nonce): the message sought no longer opens. */
    char *path = media_blob_path(store, media_writer_address(w));
    FILE *f = fopen(path, "r+b");
    long at = 8 + crypto_secretstream_xchacha20poly1305_HEADERBYTES +
              (MEDIA_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES) - 16 + 2;
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    free(path);
    ck_assert_int_eq(read_from(media_writer_address(w), media_writer_key(w), 3 * MEDIA_CHUNK, back,
                               100), -1);
    media_writer_free(w);
    /* Messages 1 and 2 swapped on disk: neither opens where it now lies. */
    data[0] ^= 1; /* another address */
    w = write_blob(data, n);
    path = media_blob_path(store, media_writer_address(w));
    f = fopen(path, "r+b");
    const long sealed = MEDIA_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES;
    const long base = 8 + crypto_secretstream_xchacha20poly1305_HEADERBYTES;
    unsigned char *m1 = malloc((size_t)sealed), *m2 = malloc((size_t)sealed);
    fseek(f, base + sealed, SEEK_SET);
    ck_assert_int_eq(fread(m1, 1, (size_t)sealed, f), sealed);
    ck_assert_int_eq(fread(m2, 1, (size_t)sealed, f), sealed);
    fseek(f, base + sealed, SEEK_SET);
    fwrite(m2, 1, (size_t)sealed, f);
    fwrite(m1, 1, (size_t)sealed, f);
    fclose(f);
    free(path), free(m1), free(m2);
    ck_assert_int_eq(read_from(media_writer_address(w), media_writer_key(w), MEDIA_CHUNK, back, 10), -1);
    ck_assert_int_eq(read_from(media_writer_address(w), media_writer_key(w), 2 * MEDIA_CHUNK, back, 10), -1);
    /* The untouched messages around them still read (what a range serves is
     * only ever bytes that were written there). */
    ck_assert_int_eq(read_from(media_writer_address(w), media_writer_key(w), 10, back, 10), 10);
    ck_assert_mem_eq(back, data + 10, 10);
    ck_assert_int_eq(read_from(media_writer_address(w), media_writer_key(w), 3 * MEDIA_CHUNK, back, 10), 10);
    ck_assert_mem_eq(back, data + 3 * MEDIA_CHUNK, 10);
    media_writer_free(w);
    free(data), free(back);
}
END_TEST

START_TEST(test_range_headers) {
    struct {
        const char *h;
        long long size;
        int rc;
        long long first, last;
    } cases[] = {
        {"bytes=0-99", 1000, 1, 0, 99},
        {"bytes=10-", 1000, 1, 10, 999},
        {"bytes=-100", 1000, 1, 900, 999},
        {"bytes=-5000", 1000, 1, 0, 999},           /* more than there is: all of it */
        {"bytes=990-5000", 1000, 1, 990, 999},      /* clipped to the end */
        {"bytes=999-999", 1000, 1, 999, 999},
        {"bytes=0-99999999999999999999999", 1000, 1, 0, 999}, /* saturates */
        {"Bytes = 5-6", 1000, 1, 5, 6},
        {"bytes=1000-", 1000, -1, 0, 0},            /* past the end */
        {"bytes=1000-2000", 1000, -1, 0, 0},
        {"bytes=99999999999999999999999-", 1000, -1, 0, 0},
        {"bytes=-0", 1000, -1, 0, 0},
        {"bytes=0-", 0, -1, 0, 0},                  /* nothing to give */
        {"bytes=-10", 0, -1, 0, 0},
        {NULL, 1000, 0, 0, 0},                      /* no header, or one to ignore: */
        {"bytes=5-1", 1000, 0, 0, 0},
        {"bytes=0-1,5-6", 1000, 0, 0, 0},
        {"items=0-1", 1000, 0, 0, 0},
        {"bytes=-", 1000, 0, 0, 0},
        {"bytes=a-b", 1000, 0, 0, 0},
        {"bytes=1-2x", 1000, 0, 0, 0},
        {"bytes 1-2", 1000, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        long long first = -7, last = -7;
        int rc = media_parse_range(cases[i].h, cases[i].size, &first, &last);
        ck_assert_msg(rc == cases[i].rc, "%s: %d", cases[i].h ? cases[i].h : "(none)", rc);
        if (rc == 1) {
            ck_assert_int_eq(first, cases[i].first);
            ck_assert_int_eq(last, cases[i].last);
        }
    }
}
END_TEST

/* The split as Python's urllib.parse.urlsplit gives it (the expectations
 * are urlsplit's own output), so Synapse's blacklist entries mean the same. */
START_TEST(test_url_split_like_urlsplit) {
    static const struct {
        const char *url;
        const char *want[CFG_URL_NPARTS];
    } cases[] = {
        {"https://example.com/a/b?x=1#frag", {"https", "example.com", "/a/b", "x=1", "frag", NULL, NULL, "example.com", NULL}},
        {"HTTP://User:Pa:ss@WWW.Example.COM:080/p", {"http", "User:Pa:ss@WWW.Example.COM:080", "/p", "", "", "User", "Pa:ss", "www.example.com", "80"}},
        {"http://@host/", {"http", "@host", "/", "", "", "", NULL, "host", NULL}},
        {"http://u@h:/x", {"http", "u@h:", "/x", "", "", "u", NULL, "h", NULL}},
        {"http://[::1]:8448/x?y", {"http", "[::1]:8448", "/x", "y", "", NULL, NULL, "::1", "8448"}},
        {"https://h?q@x/y#z?w", {"https", "h", "", "q@x/y", "z?w", NULL, NULL, "h", NULL}},
        {"http://a#b?c/d", {"http", "a", "", "", "b?c/d", NULL, NULL, "a", NULL}},
        {"http://example.com", {"http", "example.com", "", "", "", NULL, NULL, "example.com", NULL}},
        {"https://user@example.com:443?only", {"https", "user@example.com:443", "", "only", "", "user", NULL, "example.com", "443"}},
        {" \thttp://ex\nample.com/\r", {"http", "example.com", "/", "", "", NULL, NULL, "example.com", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *parts[CFG_URL_NPARTS];
        ck_assert_int_eq(media_url_split(cases[i].url, parts), 0);
        for (int p = 0; p < CFG_URL_NPARTS; p++) {
            if (!cases[i].want[p])
                ck_assert_msg(!parts[p], "%s: %s is '%s'", cases[i].url, cfg_url_parts[p], parts[p]);
            else
                ck_assert_msg(parts[p] && !strcmp(parts[p], cases[i].want[p]), "%s: %s is '%s'",
                              cases[i].url, cfg_url_parts[p], parts[p] ? parts[p] : "(none)");
        }
        media_url_parts_free(parts);
    }
    char *parts[CFG_URL_NPARTS];
    ck_assert_int_eq(media_url_split("http://h:99999/", parts), -1); /* urlsplit: ValueError */
    ck_assert_int_eq(media_url_split("http://h:8a/", parts), -1);
}
END_TEST

START_TEST(test_url_blacklist_semantics) {
    /* Synapse's documented examples, plus a port and a regex on the path. */
    cfg_url_rule rules[6] = {0};
    rules[0].pattern[CFG_URL_USERNAME] = "*";
    rules[1].pattern[CFG_URL_NETLOC] = "google.com";
    rules[2].pattern[CFG_URL_NETLOC] = "*.google.com";
    rules[3].pattern[CFG_URL_NETLOC] = "www.acme.com";
    rules[3].pattern[CFG_URL_PATH] = "/foo";
    rules[4].pattern[CFG_URL_NETLOC] = "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$";
    rules[5].pattern[CFG_URL_PORT] = "8[0-9]*";
    rules[5].pattern[CFG_URL_PATH] = "^/private(/|$)";
    cfg cf = {0};
    cf.url_preview_url_blacklist = rules;
    cf.n_url_preview_url_blacklist = 6;
    static const struct {
        const char *url;
        int blocked;
    } cases[] = {
        {"https://alice@example.com/", 1},     /* any user name */
        {"https://@example.com/", 1},          /* an empty one is still one */
        {"https://example.com/", 0},
        {"https://google.com/search", 1},
        {"https://mail.google.com/", 1},
        {"https://notgoogle.com/", 0},
        {"https://GOOGLE.com/", 0},             /* netloc keeps its case; globs are exact */
        {"https://www.acme.com/foo", 1},
        {"https://www.acme.com/foo/bar", 0},    /* a glob matches the whole path */
        {"https://www.acme.com/bar", 0},
        {"http://10.1.2.3/x", 1},
        {"http://10.1.2.3:80/x", 0},            /* netloc includes the port */
        {"http://example.com:8080/private", 1},
        {"http://example.com:8080/private/x", 1},
        {"http://example.com:8080/privately", 0},
        {"http://example.com/private", 0},      /* no port: the entry cannot match */
        {"http://example.com:99999/", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        ck_assert_msg(media_url_blocked(&cf, cases[i].url) == cases[i].blocked, "%s", cases[i].url);
    cf.n_url_preview_url_blacklist = 0;
    ck_assert_int_eq(media_url_blocked(&cf, "https://alice@example.com/"), 0);
    /* An empty entry blocks everything. */
    cfg_url_rule all = {0};
    cf.url_preview_url_blacklist = &all;
    cf.n_url_preview_url_blacklist = 1;
    ck_assert_int_eq(media_url_blocked(&cf, "https://example.com/"), 1);
}
END_TEST

START_TEST(test_keys_are_sealed_to_their_address_and_master) {
    unsigned char key[MEDIA_KEY_LEN], addr[MEDIA_ADDR_LEN], other[MEDIA_ADDR_LEN];
    unsigned char wrapped[MEDIA_WRAPPED_LEN], out[MEDIA_KEY_LEN];
    randombytes_buf(key, sizeof key);
    randombytes_buf(addr, sizeof addr);
    memcpy(other, addr, sizeof addr);
    other[5] ^= 1;
    media_wrap_key(&keys, key, addr, sizeof addr, wrapped);
    ck_assert_int_eq(media_unwrap_key(&keys, wrapped, sizeof wrapped, addr, sizeof addr, out), 0);
    ck_assert_mem_eq(out, key, sizeof key);
    /* Moved to another blob, or opened under another master key: refused. */
    ck_assert_int_ne(media_unwrap_key(&keys, wrapped, sizeof wrapped, other, sizeof other, out), 0);
    ck_assert_int_ne(media_unwrap_key(&other_keys, wrapped, sizeof wrapped, addr, sizeof addr, out),
                     0);
    ck_assert(memmem(wrapped, sizeof wrapped, key, 8) == NULL);
    size_t n;
    unsigned char *sealed = media_seal_str(&keys, "secret plan.pdf", "name:a/b", &n);
    ck_assert(memmem(sealed, n, "secret", 6) == NULL);
    char *name = media_open_str(&keys, sealed, n, "name:a/b");
    ck_assert_str_eq(name, "secret plan.pdf");
    free(name);
    ck_assert_ptr_null(media_open_str(&keys, sealed, n, "name:a/c"));
    ck_assert_ptr_null(media_open_str(&other_keys, sealed, n, "name:a/b"));
    free(sealed);
}
END_TEST

START_TEST(test_names_and_headers) {
    ck_assert(media_id_valid("abcXYZ019_-"));
    ck_assert(!media_id_valid(""));
    ck_assert(!media_id_valid("../etc"));
    ck_assert(!media_id_valid("a.b"));
    ck_assert(!media_id_valid("a/b"));
    char id[MEDIA_ID_LEN + 1];
    media_random_id(id);
    ck_assert_int_eq(strlen(id), MEDIA_ID_LEN);
    ck_assert(media_id_valid(id));
    char *o, *m;
    hs_err err;
    ck_assert_int_eq(media_parse_mxc("mxc://example.org:8448/abc", &o, &m, &err), 0);
    ck_assert_str_eq(o, "example.org:8448");
    ck_assert_str_eq(m, "abc");
    free(o), free(m);
    ck_assert_int_eq(media_parse_mxc("[::1]:8448/x_y", &o, &m, &err), 0);
    free(o), free(m);
    ck_assert_int_eq(media_parse_mxc("mxc://example.org/../x", &o, &m, &err), -1);
    ck_assert_int_eq(media_parse_mxc("mxc://exa mple/x", &o, &m, &err), -1);
    ck_assert_int_eq(media_parse_mxc("nothing", &o, &m, &err), -1);
    ck_assert(media_inline_type("image/png"));
    ck_assert(media_inline_type("text/plain; charset=utf-8"));
    ck_assert(media_inline_type("AUDIO/OGG"));
    ck_assert(!media_inline_type("text/html"));
    ck_assert(!media_inline_type("image/svg+xml"));
    ck_assert(!media_inline_type("application/octet-stream"));
    ck_assert(!media_inline_type(NULL));
    char *d = media_disposition(true, "cat.png");
    ck_assert_str_eq(d, "inline; filename=cat.png");
    free(d);
    d = media_disposition(false, NULL);
    ck_assert_str_eq(d, "attachment");
    free(d);
    d = media_disposition(false, "a \"b\";c\r\n.txt");
    ck_assert_str_eq(d, "attachment; filename*=utf-8''a%20%22b%22%3Bc%0D%0A.txt");
    free(d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("media_store");
    TCase *t = tcase_create("store");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_round_trip_sizes);
    tcase_add_test(t, test_address_is_keyed_and_dedups);
    tcase_add_test(t, test_tampering_is_detected);
    tcase_add_test(t, test_seek_lands_on_the_right_byte);
    tcase_add_test(t, test_range_headers);
    tcase_add_test(t, test_url_split_like_urlsplit);
    tcase_add_test(t, test_url_blacklist_semantics);
    tcase_add_test(t, test_keys_are_sealed_to_their_address_and_master);
    tcase_add_test(t, test_names_and_headers);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
