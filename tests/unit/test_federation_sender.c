/* test_federation_sender.c — the outbound sender's decisions that need no
 * network or database: Synapse's back-off curve, what a /send answer means
 * for the queue, the prev_id chain of m.device_list_update, and the shard a
 * destination belongs to. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "federation/sender_internal.h"

START_TEST(backoff_curve) {
    const long long min = FED_RETRY_MIN_MS, max = FED_RETRY_MAX_MS;
    /* The first failure waits the minimum, whatever the dice say. */
    ck_assert_int_eq(fed_backoff_next(0, min, max, 0.0), min);
    ck_assert_int_eq(fed_backoff_next(0, min, max, 0.99), min);
    /* Then about twice as long: x2 times 0.8 .. 1.4. */
    ck_assert_int_eq(fed_backoff_next(min, min, max, 0.0), (long long)(min * 2 * 0.8));
    long long hi = fed_backoff_next(min, min, max, 0.999999);
    ck_assert(hi > min * 2 && hi <= (long long)(min * 2 * 1.4));
    ck_assert_int_eq(fed_backoff_next(min, min, max, 0.5), (long long)(min * 2 * 1.1));
    /* It never passes a day, and reaches it after a handful of failures. */
    long long i = 0;
    int steps = 0;
    while (i < max && steps < 100) i = fed_backoff_next(i, min, max, 0.0), steps++;
    ck_assert_int_eq(i, max);
    ck_assert(steps >= 8 && steps <= 14); /* 12 at the slowest growth */
    ck_assert_int_eq(fed_backoff_next(max, min, max, 0.99), max);
    ck_assert_int_eq(fed_backoff_next(max - 1, min, max, 0.0), max);
    /* A test's short minimum grows the same way. */
    ck_assert_int_eq(fed_backoff_next(0, 1000, max, 0.3), 1000);
    ck_assert_int_eq(fed_backoff_next(1000, 1000, max, 0.0), 1600);
}
END_TEST

START_TEST(quick_retries) {
    /* Synapse's long_retries: 4 s, 16 s, then 60 s, times 0.8 .. 1.4. */
    ck_assert_int_eq(fed_send_retry_delay(1, 0.0), 3200);
    ck_assert_int_eq(fed_send_retry_delay(1, 0.5), 4400);
    ck_assert_int_eq(fed_send_retry_delay(2, 0.0), 12800);
    ck_assert_int_eq(fed_send_retry_delay(3, 0.0), 48000);
    ck_assert_int_eq(fed_send_retry_delay(10, 0.0), 48000);
    long long hi = fed_send_retry_delay(FED_SEND_RETRIES, 0.999999);
    ck_assert(hi > 60000 && hi <= 84000);
    /* All ten take minutes, not the hours of the back-off after them. */
    long long total = 0;
    for (int n = 1; n <= FED_SEND_RETRIES; n++) total += fed_send_retry_delay(n, 0.5);
    ck_assert(total > 5 * 60000 && total < 15 * 60000);
    /* No answer, 5xx and 429 are retried quickly; 401 and 404 back off at once. */
    ck_assert(fed_send_retry_quickly(0));
    ck_assert(fed_send_retry_quickly(500) && fed_send_retry_quickly(502));
    ck_assert(fed_send_retry_quickly(429));
    ck_assert(!fed_send_retry_quickly(401) && !fed_send_retry_quickly(404));
}
END_TEST

START_TEST(send_outcomes) {
    hs_err none = {0}, policy = {.status = 403}, bad_name = {.status = 400};
    hs_err unreachable = {.status = 502};
    ck_assert_int_eq(fed_send_classify(200, &none), FED_SENT);
    ck_assert_int_eq(fed_send_classify(204, &none), FED_SENT);
    /* No answer: try again later, unless our own policy forbids the server. */
    ck_assert_int_eq(fed_send_classify(0, &unreachable), FED_RETRY);
    ck_assert_int_eq(fed_send_classify(0, &policy), FED_DROP);
    ck_assert_int_eq(fed_send_classify(0, &bad_name), FED_DROP);
    /* Synapse backs off on 5xx, 401, 404 (a server that is not one) and 429. */
    long retry[] = {500, 502, 503, 401, 404, 429};
    for (size_t k = 0; k < sizeof retry / sizeof *retry; k++)
        ck_assert_int_eq(fed_send_classify(retry[k], &none), FED_RETRY);
    /* Other refusals would never change: the transaction is dropped. */
    long drop[] = {400, 403, 405, 413, 418};
    for (size_t k = 0; k < sizeof drop / sizeof *drop; k++)
        ck_assert_int_eq(fed_send_classify(drop[k], &none), FED_DROP);
    ck_assert_int_eq(fed_send_classify(301, &none), FED_DROP);
}
END_TEST

START_TEST(device_list_prev_ids) {
    /* The first update to a destination names nothing: it resyncs. */
    ck_assert_int_eq(fed_device_list_prev(7, 0, 0), 0);
    /* Then each names the one before. */
    ck_assert_int_eq(fed_device_list_prev(9, 7, 0), 7);
    ck_assert_int_eq(fed_device_list_prev(12, 9, 7), 9);
    /* Two devices changed at position 12: both name 9, not each other. */
    ck_assert_int_eq(fed_device_list_prev(12, 12, 9), 9);
    ck_assert_int_eq(fed_device_list_prev(12, 12, 0), 0);
}
END_TEST

START_TEST(shards) {
    const char *names[] = {"matrix.org", "example.com", "localhost:8448", "[::1]:8448",
                           "a.example", "b.example", "c.example", "d.example"};
    for (size_t k = 0; k < 8; k++) {
        ck_assert_int_eq(fed_sender_shard_of(names[k], 1), 0);
        ck_assert_int_eq(fed_sender_shard_of(names[k], 0), 0);
        unsigned s = fed_sender_shard_of(names[k], 3);
        ck_assert(s < 3);
        ck_assert_int_eq(fed_sender_shard_of(names[k], 3), s); /* stable */
    }
    /* FNV-1a of "matrix.org": the same in every process and build. */
    ck_assert_int_eq(fed_sender_shard_of("matrix.org", 1000), 707115060u % 1000);
    /* Many names spread over every shard. */
    int seen[4] = {0};
    char name[32];
    for (int k = 0; k < 200; k++) {
        snprintf(name, sizeof name, "server%d.example", k);
        seen[fed_sender_shard_of(name, 4)]++;
    }
    for (int k = 0; k < 4; k++) ck_assert(seen[k] > 20);
}
END_TEST

START_TEST(user_domains) {
    ck_assert(fed_user_is_on("@a:example.org", "example.org"));
    ck_assert(fed_user_is_on("@a:localhost:8448", "localhost:8448"));
    ck_assert(!fed_user_is_on("@a:localhost:8448", "localhost"));
    ck_assert(!fed_user_is_on("@a:example.org.evil", "example.org"));
    ck_assert(!fed_user_is_on("a:example.org", "example.org"));
    ck_assert(!fed_user_is_on("@a", "example.org"));
    ck_assert(!fed_user_is_on(NULL, "example.org"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("federation_sender");
    TCase *t = tcase_create("sender");
    tcase_add_test(t, backoff_curve);
    tcase_add_test(t, quick_retries);
    tcase_add_test(t, send_outcomes);
    tcase_add_test(t, device_list_prev_ids);
    tcase_add_test(t, shards);
    tcase_add_test(t, user_domains);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
