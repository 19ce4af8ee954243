/* The built-in workload's reorder window (runtime/wl_window.c), white box. */
#include "runtime/wl_window.h"
#include "meshrt/mrt_core.h"
#include "tests/check_main.h"

#include <check.h>
#include <string.h>

/* Out of order in, in order out; every sequence exactly once, its data intact. */
START_TEST(reorders_and_keeps_data)
{
    wl_window w;
    ck_assert_int_eq(wl_window_init(&w, sizeof(uint64_t)), MRT_OK);
    enum { N = 20 * 1024 }; /* beyond the first window: it has to grow, keeping what it holds */
    for (uint64_t i = 0; i < N; i++) {
        uint64_t s = i ^ 1023; /* blocks of 1024 reversed */
        uint64_t v = s * 7 + 3;
        ck_assert_int_eq(wl_window_put(&w, s, &v), WIN_OK);
    }
    for (uint64_t s = 0; s < N; s++) {
        const uint8_t *p = wl_window_peek(&w);
        ck_assert_ptr_nonnull(p);
        uint64_t v;
        memcpy(&v, p, sizeof v);
        ck_assert_uint_eq(v, s * 7 + 3);
        wl_window_next(&w);
    }
    ck_assert_ptr_null(wl_window_peek(&w)); /* N has not arrived */
    wl_window_fini(&w);
}
END_TEST

START_TEST(duplicates_and_runaways_are_told_apart)
{
    wl_window w;
    ck_assert_int_eq(wl_window_init(&w, 0), MRT_OK);
    ck_assert_int_eq(wl_window_put(&w, 5, NULL), WIN_OK);
    ck_assert_int_eq(wl_window_put(&w, 5, NULL), WIN_DUP);  /* seen, still in the window */
    ck_assert_ptr_null(wl_window_peek(&w));                 /* 0 is missing: nothing in order */
    ck_assert_int_eq(wl_window_put(&w, 0, NULL), WIN_OK);
    ck_assert_ptr_nonnull(wl_window_peek(&w));
    wl_window_next(&w);
    ck_assert_int_eq(wl_window_put(&w, 0, NULL), WIN_DUP);  /* below the base: consumed */
    ck_assert_int_eq(wl_window_put(&w, (uint64_t)1 << 30, NULL), WIN_FAR); /* beyond any window */
    ck_assert_int_eq(wl_window_put(&w, 1, NULL), WIN_OK);   /* the window still works */
    wl_window_fini(&w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wl_window");
    TCase *tc = tcase_create("wl_window");
    tcase_add_test(tc, reorders_and_keeps_data);
    tcase_add_test(tc, duplicates_and_runaways_are_told_apart);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
