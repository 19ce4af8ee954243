/*
 * The horizon against origins chosen by a sender. Origins crafted to share
 * one slot under the old unkeyed hash, or under a key the attacker guessed,
 * must cost a bounded number of probes (counted, not timed); if the key is
 * known, the probe bound refuses new origins with an error instead of
 * letting lookups degrade to O(n), and a merge that meets it changes nothing.
 */
#include "daemons/observe.h" /* white box: probe counts, the key, the inline observe */
#include "meshrt/mrt_daemon.h"
#include "tests/check_main.h"

#include <check.h>
#include <stdint.h>
#include <xxhash.h>

/* The slot function before the fix: Fibonacci hashing, unkeyed and invertible. */
static uint32_t old_slot(uint64_t origin, uint32_t mask)
{
    return (uint32_t)((origin * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* Inverse of an odd 64-bit multiplier (Newton's iteration). */
static uint64_t inverse(uint64_t a)
{
    uint64_t x = a;
    for (int i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

/* Slots examined to look `origin` up. */
static uint32_t probes(const mrt_horizon *h, uint64_t origin)
{
    uint32_t n = 0;
    (void)mrt_dm_horizon_probe_n(h, origin, &n);
    return n;
}

/* Origins whose slot under `key` is `target`: what an attacker holding the key would send. */
static uint32_t craft_for_key(uint64_t key, uint32_t mask, uint32_t target, uint64_t *out,
                              uint32_t want)
{
    uint32_t got = 0;
    for (uint64_t o = 1; got < want; o++) {
        uint8_t b[8];
        mrt_dm_store_le64(b, o);
        if (((uint32_t)XXH3_64bits_withSeed(b, sizeof b, key) & mask) == target)
            out[got++] = o;
    }
    return got;
}

enum { N_OLD = 20000 };

START_TEST(origins_colliding_under_old_hash)
{
    static uint64_t o[N_OLD];
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, N_OLD), MRT_OK);
    /* origin_i * phi = i << 48: all map to old slot 0 in this 65,536-slot table. */
    const uint64_t inv = inverse(0x9E3779B97F4A7C15ull);
    for (uint64_t i = 0; i < N_OLD; i++) {
        o[i] = inv * ((i + 1) << 48);
        ck_assert_uint_eq(old_slot(o[i], h.mask), 0);
    }
    for (uint32_t i = 0; i < N_OLD; i++)
        ck_assert_int_eq(mrt_horizon_observe(&h, o[i], i), MRT_OK);
    uint64_t total = 0;
    uint32_t max = 0;
    for (uint32_t i = 0; i < N_OLD; i++) {
        ck_assert(mrt_horizon_has_observed(&h, o[i], i));
        uint32_t p = probes(&h, o[i]);
        total += p;
        max = p > max ? p : max;
    }
    /* Old layout: origin i sat i slots from home, mean 10,000 probes. Keyed: ~1.2. */
    ck_assert_msg(total <= 2ull * N_OLD, "mean probes %.2f", (double)total / N_OLD);
    ck_assert_uint_lt(max, MRT_HORIZON_MAX_PROBE);
    /* the fast inline path agrees */
    ck_assert_int_eq(mrt_dm_horizon_observe(&h, o[N_OLD - 1], N_OLD + 5), MRT_OK);
    ck_assert(mrt_horizon_has_observed(&h, o[N_OLD - 1], N_OLD + 5));
    mrt_horizon_destroy(&h);
}
END_TEST

enum { CAP = 512, M = 400 };

/* The attacker guesses a key (0, or any constant) and crafts collisions for it. */
START_TEST(origins_colliding_under_a_guessed_key)
{
    const uint64_t guesses[] = { 0, 0x9E3779B97F4A7C15ull, 1 };
    for (size_t g = 0; g < sizeof guesses / sizeof guesses[0]; g++) {
        mrt_horizon h;
        ck_assert_int_eq(mrt_horizon_init(&h, NULL, CAP), MRT_OK);
        ck_assert_uint_ne(h.key, guesses[g]); /* 2^-64 odds of a false failure */
        uint64_t o[M];
        ck_assert_uint_eq(craft_for_key(guesses[g], h.mask, 7, o, M), M);
        for (uint32_t i = 0; i < M; i++)
            ck_assert_int_eq(mrt_horizon_observe(&h, o[i], 1), MRT_OK);
        uint64_t total = 0;
        for (uint32_t i = 0; i < M; i++) {
            ck_assert(mrt_horizon_contains_origin(&h, o[i]));
            total += probes(&h, o[i]);
        }
        ck_assert_msg(total <= 2ull * M, "guess %zu: mean probes %.2f", g, (double)total / M);
        mrt_horizon_destroy(&h);
    }
}
END_TEST

/* If the key leaks, the bound holds: new origins past it are refused, lookups stay bounded. */
START_TEST(known_key_meets_the_probe_bound)
{
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, CAP), MRT_OK);
    h.key = 42; /* white box: the attacker's key is the table's */
    uint64_t o[M];
    craft_for_key(h.key, h.mask, 7, o, M);
    uint32_t accepted = 0, refused = 0;
    for (uint32_t i = 0; i < M; i++) {
        uint32_t before = mrt_horizon_count(&h);
        uint64_t enc = mrt_horizon_encoded(&h), lt = mrt_horizon_logical_time(&h);
        int rc = mrt_horizon_observe(&h, o[i], 1);
        if (rc == MRT_OK) {
            accepted++;
            continue;
        }
        ck_assert_int_eq(rc, MRT_DAEMON_EHORIZONPROBE);
        ck_assert_str_eq(mrt_daemon_strerror(rc), "horizon probe bound reached for a new origin");
        /* nothing recorded */
        ck_assert_uint_eq(mrt_horizon_count(&h), before);
        ck_assert_uint_eq(mrt_horizon_encoded(&h), enc);
        ck_assert_uint_eq(mrt_horizon_logical_time(&h), lt);
        ck_assert(!mrt_horizon_contains_origin(&h, o[i]));
        refused++;
    }
    ck_assert_uint_eq(accepted, MRT_HORIZON_MAX_PROBE);
    ck_assert_uint_eq(refused, M - MRT_HORIZON_MAX_PROBE);
    for (uint32_t i = 0; i < M; i++) {
        ck_assert_uint_le(probes(&h, o[i]), MRT_HORIZON_MAX_PROBE);
        ck_assert(mrt_horizon_contains_origin(&h, o[i]) == (i < MRT_HORIZON_MAX_PROBE));
    }
    /* a known origin inside the cluster still updates; an origin homed elsewhere is still taken */
    ck_assert_int_eq(mrt_horizon_observe(&h, o[MRT_HORIZON_MAX_PROBE - 1], 9), MRT_OK);
    ck_assert(mrt_horizon_has_observed(&h, o[MRT_HORIZON_MAX_PROBE - 1], 9));
    uint64_t other;
    craft_for_key(h.key, h.mask, 700, &other, 1);
    ck_assert_int_eq(mrt_horizon_observe(&h, other, 1), MRT_OK);
    mrt_horizon_destroy(&h);
}
END_TEST

static int sum_entries(void *ctx, uint64_t origin, uint64_t seq)
{
    *(uint64_t *)ctx += XXH3_64bits(&origin, sizeof origin) ^ (seq * 0x9E3779B97F4A7C15ull);
    return 0;
}

/* A merge whose new origins meet the bound changes nothing in dst. */
START_TEST(merge_meeting_the_bound_changes_nothing)
{
    mrt_horizon dst, src;
    ck_assert_int_eq(mrt_horizon_init(&dst, NULL, CAP), MRT_OK);
    ck_assert_int_eq(mrt_horizon_init(&src, NULL, CAP), MRT_OK);
    dst.key = 42;
    uint64_t o[M];
    craft_for_key(dst.key, dst.mask, 3, o, M);
    for (uint32_t i = 0; i < 100; i++)
        ck_assert_int_eq(mrt_horizon_observe(&dst, o[i], 5), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&dst, 0, 1), MRT_OK);
    /* src: some of dst's origins with higher sequences, and 100 more of the cluster */
    for (uint32_t i = 50; i < 200; i++)
        ck_assert_int_eq(mrt_horizon_observe(&src, o[i], 9), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&src, 0, 9), MRT_OK);
    uint64_t sum0 = 0, sum1 = 0;
    mrt_horizon_foreach(&dst, sum_entries, &sum0);
    uint32_t count0 = mrt_horizon_count(&dst);
    uint64_t enc0 = mrt_horizon_encoded(&dst), lt0 = mrt_horizon_logical_time(&dst);
    ck_assert_int_eq(mrt_horizon_merge(&dst, &src), MRT_DAEMON_EHORIZONPROBE);
    mrt_horizon_foreach(&dst, sum_entries, &sum1);
    ck_assert_uint_eq(sum1, sum0);
    ck_assert_uint_eq(mrt_horizon_count(&dst), count0);
    ck_assert_uint_eq(mrt_horizon_encoded(&dst), enc0);
    ck_assert_uint_eq(mrt_horizon_logical_time(&dst), lt0);
    for (uint32_t i = 0; i < 200; i++)
        ck_assert(mrt_horizon_contains_origin(&dst, o[i]) == (i < 100));
    ck_assert(!mrt_horizon_has_observed(&dst, o[60], 9));
    /* the same merge within the bound goes through */
    mrt_horizon_clear(&src);
    for (uint32_t i = 50; i < 120; i++)
        ck_assert_int_eq(mrt_horizon_observe(&src, o[i], 9), MRT_OK);
    ck_assert_int_eq(mrt_horizon_merge(&dst, &src), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_count(&dst), 121);
    ck_assert(mrt_horizon_has_observed(&dst, o[60], 9));
    ck_assert(mrt_horizon_has_observed(&dst, o[10], 5));
    mrt_horizon_destroy(&src);
    mrt_horizon_destroy(&dst);
}
END_TEST

/* One key per process: every horizon gets it, and it is not a constant. */
START_TEST(key_is_per_process)
{
    mrt_horizon a, b;
    ck_assert_int_eq(mrt_horizon_init(&a, NULL, 4), MRT_OK);
    ck_assert_int_eq(mrt_horizon_init(&b, NULL, 4), MRT_OK);
    ck_assert_uint_eq(a.key, b.key);
    ck_assert_uint_ne(a.key, 0);
    mrt_horizon_destroy(&a);
    mrt_horizon_destroy(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("daemon_horizon_adversarial");
    TCase *t = tcase_create("adversarial");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, origins_colliding_under_old_hash);
    tcase_add_test(t, origins_colliding_under_a_guessed_key);
    tcase_add_test(t, known_key_meets_the_probe_bound);
    tcase_add_test(t, merge_meeting_the_bound_changes_nothing);
    tcase_add_test(t, key_is_per_process);
    suite_add_tcase(s, t);
    return mrt_check_run(s);
}
