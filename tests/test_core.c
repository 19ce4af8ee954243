/* Core: allocator handle and allocation counters. */
#include "meshrt/mrt_core.h"
#include "tests/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(version_is_the_headers)
{
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", MRT_VERSION_MAJOR, MRT_VERSION_MINOR, MRT_VERSION_PATCH);
    ck_assert_str_eq(MRT_VERSION_STRING, v);
    ck_assert_str_eq(mrt_version(), MRT_VERSION_STRING);
}
END_TEST

START_TEST(alloc_roundtrip)
{
    mrt_allocator a;
    ck_assert_int_eq(mrt_allocator_create_arena(&a), MRT_OK);
    char *p = mrt_alloc(&a, 100);
    ck_assert_ptr_nonnull(p);
    memset(p, 7, 100);
    p = mrt_realloc(&a, p, 1000);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p[99], 7);
    mrt_free(&a, p, 0);
    char *z = mrt_calloc(&a, 64);
    ck_assert_ptr_nonnull(z);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(z[i], 0);
    mrt_free(&a, z, 64);
    void *al = mrt_alloc_aligned(&a, 200, 128);
    ck_assert_ptr_nonnull(al);
    ck_assert_uint_eq((uintptr_t)al % 128, 0);
    mrt_free_aligned(&a, al, 200, 128);
}
END_TEST

START_TEST(alloc_bad_input)
{
    ck_assert_ptr_null(mrt_alloc(NULL, 0));
    ck_assert_ptr_null(mrt_alloc_aligned(NULL, 16, 3));
    ck_assert_int_eq(mrt_allocator_create_arena(NULL), MRT_EINVAL);
    mrt_free(NULL, NULL, 0);
    ck_assert_str_eq(mrt_core_strerror(MRT_EINVAL), "invalid argument");
    mrt_allocator d = mrt_allocator_or_default(NULL);
    ck_assert_uint_eq(d.arena, MRT_ARENA_DEFAULT);
    ck_assert_int_eq(d.flags, 0);
    mrt_allocator given = mrt_allocator_for_arena(3);
    mrt_allocator copy = mrt_allocator_or_default(&given);
    ck_assert_uint_eq(copy.arena, 3);
    ck_assert_int_eq(copy.flags, given.flags);
    ck_assert_ptr_null(mrt_core_strerror(-150));
}
END_TEST

START_TEST(arena_placement)
{
#ifdef MRT_ALLOC_LIBC
    ck_assert_uint_eq(mrt_arena_of(&(int){ 0 }), MRT_ARENA_DEFAULT);
    MRT_SKIP("arena", "sanitizer builds allocate through libc: there are no arenas");
#else
    mrt_allocator a;
    ck_assert_int_eq(mrt_allocator_create_arena(&a), MRT_OK);
    void *p = mrt_alloc(&a, 48);
    ck_assert_uint_eq(mrt_arena_of(p), a.arena);
    mrt_free(&a, p, 48);
    mrt_allocator bound;
    ck_assert_int_eq(mrt_allocator_bind_thread(a.arena, &bound), MRT_OK);
    void *q = mrt_alloc(&bound, 48);
    void *m = malloc(24);
    ck_assert_uint_eq(mrt_arena_of(q), a.arena);
    ck_assert_uint_eq(mrt_arena_of(m), a.arena);
    free(m);
    mrt_free(&bound, q, 48);
    ck_assert_int_eq(mrt_allocator_bind_thread(MRT_ARENA_DEFAULT, &bound), MRT_EINVAL);
#endif
}
END_TEST

START_TEST(counting_sees_allocations)
{
    if (mrt_alloc_counting_enable() != MRT_OK)
        MRT_SKIP("alloc-count",
                 "sanitizer builds allocate through libc, which jemalloc's hook cannot count");
    mrt_alloc_counts before = mrt_alloc_counts_now();
    void *p = mrt_alloc(NULL, 32);
    void *q = mrt_alloc(NULL, 4096);
    mrt_alloc_counts after = mrt_alloc_counts_now();
    mrt_free(NULL, p, 32);
    mrt_free(NULL, q, 4096);
    ck_assert_uint_eq(after.allocs - before.allocs, 2);
    ck_assert_uint_ge(after.bytes - before.bytes, 32 + 4096);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("alloc");
    tcase_add_test(tc, version_is_the_headers);
    tcase_add_test(tc, alloc_roundtrip);
    tcase_add_test(tc, alloc_bad_input);
    tcase_add_test(tc, arena_placement);
    tcase_add_test(tc, counting_sees_allocations);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
