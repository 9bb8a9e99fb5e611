/* test_client_sync_share.c — identical syncs share one answer: the first
 * caller builds, the others arriving meanwhile wait and get copies; an
 * answer without news is not shared; a finished answer is reused only at
 * the token it was built at. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "homeserver/client/sync_share.h"

static json_t *got[8];
static const sync_token T1 = {{1, 1, 1, 1, 1, 1, 1}}, T2 = {{2, 1, 1, 1, 1, 1, 1}};

static void *waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    bool owner = true;
    sync_share *s = sync_share_begin("k1", &T1, &owner);
    ck_assert(!owner);
    got[i] = sync_share_wait(s);
    return NULL;
}

START_TEST(waiters_get_copies_of_the_owners_answer) {
    bool owner = false;
    sync_share *s = sync_share_begin("k1", &T1, &owner);
    ck_assert(owner);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, waiter, (void *)(intptr_t)i);
    usleep(300000); /* they wait for the owner */
    json_t *answer = json_pack("{s:s}", "next_batch", "s1");
    sync_share_end(s, answer);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        ck_assert_ptr_nonnull(got[i]);
        ck_assert_ptr_ne(got[i], answer); /* a copy each */
        ck_assert(json_equal(got[i], answer));
        json_decref(got[i]);
    }
    /* done: at the same token, a late one gets the kept answer at once */
    s = sync_share_begin("k1", &T1, &owner);
    ck_assert(!owner);
    json_t *late = sync_share_wait(s);
    ck_assert(late && json_equal(late, answer));
    json_decref(late);
    /* once anything committed (the client may have acted), it builds anew */
    s = sync_share_begin("k1", &T2, &owner);
    ck_assert(owner);
    sync_share_end(s, NULL);
    s = sync_share_begin("k1", &T1, &owner); /* and the old answer is gone */
    ck_assert(owner);
    sync_share_end(s, NULL);
    json_decref(answer);
}
END_TEST

START_TEST(nothing_to_share) {
    bool owner = false;
    sync_share *s = sync_share_begin("k2", &T1, &owner);
    ck_assert(owner);
    bool other = true;
    sync_share *w = sync_share_begin("k2", &T1, &other);
    ck_assert(!other);
    sync_share_end(s, NULL); /* no news: the owner parks, the waiter looks itself */
    ck_assert_ptr_null(sync_share_wait(w));
    s = sync_share_begin("k2", &T1, &owner);
    ck_assert(owner); /* and nothing was kept */
    sync_share_end(s, NULL);
    /* other keys are other requests */
    s = sync_share_begin("k3", &T1, &owner);
    ck_assert(owner);
    w = sync_share_begin("k4", &T1, &other);
    ck_assert(other);
    sync_share_end(w, NULL);
    /* a build in flight is not joined by a request at a newer token */
    w = sync_share_begin("k3", &T2, &other);
    ck_assert(other);
    sync_share_end(s, NULL);
    sync_share_end(w, NULL);
}
END_TEST

int main(void) {
    Suite *su = suite_create("client_sync_share");
    TCase *tc = tcase_create("share");
    tcase_add_test(tc, waiters_get_copies_of_the_owners_answer);
    tcase_add_test(tc, nothing_to_share);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
