/* test_http_timer.c — the deadline list: callbacks run in deadline order
 * (ties in insertion order) whatever order they were added in, cancelled
 * timers never run, and cancelling from any position keeps the list intact. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "homeserver/core/clock.h"
#include "homeserver/http/timer.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int order[64], fired;

static void record(void *arg) {
    pthread_mutex_lock(&mu);
    order[fired++] = (int)(intptr_t)arg;
    pthread_mutex_unlock(&mu);
}

static int fired_count(void) {
    pthread_mutex_lock(&mu);
    int n = fired;
    pthread_mutex_unlock(&mu);
    return n;
}

static void wait_for(int n) {
    for (int i = 0; i < 400 && fired_count() < n; i++) usleep(5000);
}

START_TEST(deadline_order_and_cancel) {
    fired = 0;
    long long base = hs_now_ms() + 150;
    /* offsets in ms; ids are the index; ties at 40 must keep insertion order */
    static const int offs[] = {50, 10, 40, 90, 40, 0, 70, 40, 20, 60};
    hs_timer *t[10];
    for (int i = 0; i < 10; i++) t[i] = hs_timer_add(base + offs[i], record, (void *)(intptr_t)i);
    /* cancel the head (5: offset 0), a middle tie (4) and the tail (3) */
    ck_assert(hs_timer_cancel(t[5]));
    ck_assert(hs_timer_cancel(t[4]));
    ck_assert(hs_timer_cancel(t[3]));
    wait_for(7);
    usleep(50000);
    static const int want[] = {1, 8, 2, 7, 0, 9, 6};
    ck_assert_int_eq(fired_count(), 7);
    for (int i = 0; i < 7; i++) ck_assert_int_eq(order[i], want[i]);
    /* cancelling a timer that already ran reports it and frees it */
    ck_assert(!hs_timer_cancel(t[0]));
    for (int i = 1; i < 10; i++)
        if (i != 3 && i != 4 && i != 5) ck_assert(!hs_timer_cancel(t[i]));
}
END_TEST

START_TEST(earlier_deadline_wakes_the_thread) {
    fired = 0;
    /* a far deadline first, then a near one: the near one must not wait */
    hs_timer *far = hs_timer_add(hs_now_ms() + 60000, record, (void *)(intptr_t)1);
    long long t0 = hs_now_ms();
    hs_timer *near = hs_timer_add(t0 + 20, record, (void *)(intptr_t)2);
    wait_for(1);
    ck_assert_int_eq(fired_count(), 1);
    ck_assert_int_eq(order[0], 2);
    ck_assert(hs_now_ms() - t0 < 1000);
    ck_assert(hs_timer_cancel(far));
    ck_assert(!hs_timer_cancel(near));
}
END_TEST

START_TEST(many_timers_same_timeout) {
    fired = 0;
    enum { N = 20000 };
    hs_timer **t = malloc(N * sizeof *t);
    long long base = hs_now_ms() + 60000;
    for (int i = 0; i < N; i++) t[i] = hs_timer_add(base + i / 100, record, NULL);
    /* every other one cancelled, from the middle outwards */
    for (int i = 0; i < N; i += 2) ck_assert(hs_timer_cancel(t[(i + N / 2) % N]));
    for (int i = 1; i < N; i += 2) ck_assert(hs_timer_cancel(t[(i + N / 2) % N]));
    ck_assert_int_eq(fired_count(), 0);
    free(t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("http_timer");
    TCase *tc = tcase_create("timer");
    tcase_add_test(tc, deadline_order_and_cancel);
    tcase_add_test(tc, earlier_deadline_wakes_the_thread);
    tcase_add_test(tc, many_timers_same_timeout);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
