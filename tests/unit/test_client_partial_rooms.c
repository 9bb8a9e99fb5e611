/* test_client_partial_rooms.c — what /sync and sliding sync show of a room
 * joined with partial state (homeserver/client/partial_rooms.h): hidden from
 * a client that does not lazy-load members until the resync, then sent once
 * as newly joined; which sliding sync required_state needs the full state. */
#include <check.h>
#include <stdlib.h>

#include "homeserver/client/partial_rooms.h"

START_TEST(test_lazy_clients_see_the_room) {
    ck_assert_int_eq(sync_partial_view_of(true, true, 0, -1, 50), SYNC_PARTIAL_SHOW);
    ck_assert_int_eq(sync_partial_view_of(true, true, 0, 10, 50), SYNC_PARTIAL_SHOW);
    /* No "newly joined" replay for them: they had the room all along. */
    ck_assert_int_eq(sync_partial_view_of(true, false, 40, 10, 50), SYNC_PARTIAL_SHOW);
}
END_TEST

START_TEST(test_non_lazy_clients_wait_for_the_full_state) {
    /* Partial: hidden, initial or incremental. */
    ck_assert_int_eq(sync_partial_view_of(false, true, 0, -1, 50), SYNC_PARTIAL_HIDE);
    ck_assert_int_eq(sync_partial_view_of(false, true, 0, 10, 50), SYNC_PARTIAL_HIDE);
    /* A partial rejoin after an earlier resync: hidden again. */
    ck_assert_int_eq(sync_partial_view_of(false, true, 5, 10, 50), SYNC_PARTIAL_HIDE);
    /* The resync committed after the token's position was taken: not done
     * for this token (the next sync will see it within its span). */
    ck_assert_int_eq(sync_partial_view_of(false, false, 51, 10, 50), SYNC_PARTIAL_HIDE);
    ck_assert_int_eq(sync_partial_view_of(false, false, 51, -1, 50), SYNC_PARTIAL_HIDE);
    /* Done within (since, to]: newly joined, whole. */
    ck_assert_int_eq(sync_partial_view_of(false, false, 50, 10, 50), SYNC_PARTIAL_NEWLY_JOINED);
    ck_assert_int_eq(sync_partial_view_of(false, false, 11, 10, 50), SYNC_PARTIAL_NEWLY_JOINED);
    /* Done at or before since, or an initial sync: an ordinary room. */
    ck_assert_int_eq(sync_partial_view_of(false, false, 10, 10, 50), SYNC_PARTIAL_SHOW);
    ck_assert_int_eq(sync_partial_view_of(false, false, 30, -1, 50), SYNC_PARTIAL_SHOW);
    ck_assert_int_eq(sync_partial_view_of(false, false, 0, 10, 50), SYNC_PARTIAL_SHOW);
}
END_TEST

static bool needs(const char *required_state) {
    json_error_t je;
    json_t *rs = json_loads(required_state, 0, &je);
    ck_assert_ptr_nonnull(rs);
    bool v = ss_needs_full_state(rs, "here.test");
    json_decref(rs);
    return v;
}

START_TEST(test_sliding_required_state) {
    ck_assert(!needs("[]"));
    ck_assert(!needs("[[\"m.room.name\", \"\"], [\"m.room.topic\", \"*\"]]"));
    /* Element X's room list: the user and the timeline's senders. */
    ck_assert(!needs("[[\"m.room.member\", \"$LAZY\"], [\"m.room.member\", \"$ME\"],"
                     " [\"m.room.create\", \"\"]]"));
    ck_assert(!needs("[[\"m.room.member\", \"@ann:here.test\"]]"));
    ck_assert(needs("[[\"m.room.member\", \"@bob:there.test\"]]"));
    ck_assert(needs("[[\"m.room.member\", \"@bob:here.test.there\"]]"));
    ck_assert(needs("[[\"m.room.member\", \"*\"]]"));
    ck_assert(needs("[[\"*\", \"*\"]]"));
    ck_assert(!needs("[[\"*\", \"\"], [\"*\", \"$ME\"], [\"*\", \"@ann:here.test\"]]"));
    ck_assert(needs("[[\"*\", \"@bob:there.test\"]]"));
    /* Malformed entries need nothing. */
    ck_assert(!needs("[[\"m.room.member\"], 3, [1, 2]]"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("client_partial_rooms");
    TCase *t = tcase_create("partial_rooms");
    tcase_add_test(t, test_lazy_clients_see_the_room);
    tcase_add_test(t, test_non_lazy_clients_wait_for_the_full_state);
    tcase_add_test(t, test_sliding_required_state);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
