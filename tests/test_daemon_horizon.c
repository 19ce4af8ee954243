/* Daemons: the observed horizon — map, logical time, bloom encoding, merge. */
#include "meshrt/mrt_daemon.h"
#include "daemons/observe.h" /* white box: the host's inline observe */
#include "tests/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/*
 * Independent statement of the encoding: bytes assembled by hand, bit
 * positions computed in 64-bit arithmetic with an explicit % 64.
 */
static void ref_bits(uint64_t origin, unsigned pos[3])
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(origin >> (8 * i));
    uint64_t h = XXH3_64bits(b, 8);
    uint64_t h1 = h & 0xFFFFFFFFull;
    uint64_t h2 = (h >> 32) | 1ull;
    pos[0] = (unsigned)(h1 % 64);
    pos[1] = (unsigned)((h1 + h2) % 64);
    pos[2] = (unsigned)((h1 + 2 * h2) % 64);
}

static uint64_t ref_mask(uint64_t origin)
{
    unsigned p[3];
    ref_bits(origin, p);
    return (1ull << p[0]) | (1ull << p[1]) | (1ull << p[2]);
}

START_TEST(bit_positions_match_reference)
{
    uint64_t s = 7;
    uint64_t fixed[] = { 0, 1, 2, UINT64_MAX, 0x8000000000000000ull, 0x0123456789ABCDEFull };
    for (size_t i = 0; i < 10000 + sizeof fixed / sizeof fixed[0]; i++) {
        uint64_t o = i < sizeof fixed / sizeof fixed[0] ? fixed[i] : splitmix(&s);
        unsigned p[3];
        ref_bits(o, p);
        uint64_t m = mrt_horizon_origin_bits(o);
        ck_assert_uint_eq(m, ref_mask(o));
        /* h2 is odd, so the three positions are distinct. */
        ck_assert_int_eq(__builtin_popcountll(m), 3);
        ck_assert(mrt_horizon_encoding_may_contain(m, o));
    }
}
END_TEST

START_TEST(encoding_is_or_of_origins)
{
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, 32), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_encoded(&h), 0);
    uint64_t s = 99, expect = 0;
    for (int i = 0; i < 20; i++) {
        uint64_t o = splitmix(&s);
        ck_assert_int_eq(mrt_horizon_observe(&h, o, (uint64_t)i), MRT_OK);
        expect |= ref_mask(o);
        ck_assert_uint_eq(mrt_horizon_encoded(&h), expect);
    }
    ck_assert_uint_eq(mrt_horizon_count(&h), 20);
    mrt_horizon_destroy(&h);
}
END_TEST

/*
 * The cached encoding is recomputed only when an observe adds an origin:
 * poison the cache; a known origin (even with a higher sequence) leaves the
 * poison alone, a new origin ORs its bits into it.
 */
START_TEST(known_origin_leaves_encoding_untouched)
{
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, 8), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&h, 111, 1), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&h, 0, 1), MRT_OK);
    const uint64_t poison = 0x5A5A000000000000ull;
    h.encoded = poison;
    ck_assert_int_eq(mrt_horizon_observe(&h, 111, 50), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&h, 111, 3), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&h, 0, 9), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_encoded(&h), poison);
    ck_assert_int_eq(mrt_horizon_observe(&h, 222, 0), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_encoded(&h), poison | ref_mask(222));
    mrt_horizon_destroy(&h);
}
END_TEST

/* The same through the inline observe the host uses on its hot path. */
START_TEST(inline_observe_leaves_encoding_untouched)
{
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, 8), MRT_OK);
    ck_assert_int_eq(mrt_dm_horizon_observe(&h, 111, 1), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_encoded(&h), ref_mask(111));
    const uint64_t poison = 0x00000000A5A50000ull;
    h.encoded = poison;
    ck_assert_int_eq(mrt_dm_horizon_observe(&h, 111, 70), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_encoded(&h), poison);
    ck_assert(mrt_horizon_has_observed(&h, 111, 70));
    ck_assert_int_eq(mrt_dm_horizon_observe(&h, 333, 2), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_encoded(&h), poison | ref_mask(333));
    ck_assert_int_eq(mrt_dm_horizon_observe(&h, 0, 2), MRT_OK);
    ck_assert(mrt_horizon_has_observed(&h, 0, 2));
    ck_assert_uint_eq(mrt_horizon_logical_time(&h), 4);
    mrt_horizon_destroy(&h);
}
END_TEST

START_TEST(observe_tracks_highest_and_time)
{
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, 4), MRT_OK);
    ck_assert(!mrt_horizon_contains_origin(&h, 5));
    ck_assert(!mrt_horizon_has_observed(&h, 5, 0));
    ck_assert_int_eq(mrt_horizon_observe(&h, 5, 10), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&h, 5, 4), MRT_OK); /* lower: kept at 10 */
    uint64_t hi = 0;
    ck_assert(mrt_horizon_highest(&h, 5, &hi));
    ck_assert_uint_eq(hi, 10);
    ck_assert(mrt_horizon_has_observed(&h, 5, 0));
    ck_assert(mrt_horizon_has_observed(&h, 5, 10));
    ck_assert(!mrt_horizon_has_observed(&h, 5, 11));
    ck_assert(mrt_horizon_contains_origin(&h, 5));
    ck_assert(!mrt_horizon_contains_origin(&h, 6));
    ck_assert_uint_eq(mrt_horizon_logical_time(&h), 2);
    /* Origin 0 is an origin like any other. */
    ck_assert(!mrt_horizon_contains_origin(&h, 0));
    ck_assert_int_eq(mrt_horizon_observe(&h, 0, 3), MRT_OK);
    ck_assert(mrt_horizon_has_observed(&h, 0, 3));
    ck_assert(!mrt_horizon_has_observed(&h, 0, 4));
    ck_assert_uint_eq(mrt_horizon_count(&h), 2);
    ck_assert_uint_eq(mrt_horizon_encoded(&h), ref_mask(5) | ref_mask(0));
    /* Saturation. */
    h.logical_time = UINT64_MAX - 1;
    ck_assert_int_eq(mrt_horizon_observe(&h, 5, 1), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&h, 5, 1), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_logical_time(&h), UINT64_MAX);
    mrt_horizon_clear(&h);
    ck_assert_uint_eq(mrt_horizon_count(&h), 0);
    ck_assert_uint_eq(mrt_horizon_encoded(&h), 0);
    ck_assert(!mrt_horizon_contains_origin(&h, 5));
    mrt_horizon_destroy(&h);
}
END_TEST

START_TEST(full_horizon_is_an_error)
{
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, 3), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&h, 1, 1), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&h, 2, 1), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&h, 3, 1), MRT_OK);
    uint64_t enc = mrt_horizon_encoded(&h), t = mrt_horizon_logical_time(&h);
    ck_assert_int_eq(mrt_horizon_observe(&h, 4, 1), MRT_DAEMON_EHORIZONFULL);
    ck_assert_int_eq(mrt_horizon_observe(&h, 0, 1), MRT_DAEMON_EHORIZONFULL);
    ck_assert(!mrt_horizon_contains_origin(&h, 4));
    ck_assert(!mrt_horizon_contains_origin(&h, 0));
    ck_assert_uint_eq(mrt_horizon_encoded(&h), enc);
    ck_assert_uint_eq(mrt_horizon_logical_time(&h), t);
    /* Known origins still advance. */
    ck_assert_int_eq(mrt_horizon_observe(&h, 2, 9), MRT_OK);
    ck_assert(mrt_horizon_has_observed(&h, 2, 9));
    mrt_horizon_destroy(&h);
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, 0), MRT_EINVAL);
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, MRT_HORIZON_MAX_ORIGINS + 1), MRT_EINVAL);
}
END_TEST

/* Many origins colliding in the table (forced by a tiny table) are all found. */
START_TEST(dense_table)
{
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, 1000), MRT_OK);
    for (uint64_t o = 1; o <= 1000; o++)
        ck_assert_int_eq(mrt_horizon_observe(&h, o << 40, o), MRT_OK);
    for (uint64_t o = 1; o <= 1000; o++) {
        ck_assert(mrt_horizon_has_observed(&h, o << 40, o));
        ck_assert(!mrt_horizon_has_observed(&h, o << 40, o + 1));
    }
    ck_assert_int_eq(mrt_horizon_observe(&h, 1001ull << 40, 1), MRT_DAEMON_EHORIZONFULL);
    mrt_horizon_destroy(&h);
}
END_TEST

START_TEST(merge_union)
{
    mrt_horizon a, b;
    ck_assert_int_eq(mrt_horizon_init(&a, NULL, 4), MRT_OK);
    ck_assert_int_eq(mrt_horizon_init(&b, NULL, 8), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&a, 10, 5), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&a, 20, 1), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&b, 20, 7), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&b, 30, 2), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&b, 0, 4), MRT_OK);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(mrt_horizon_observe(&b, 30, 1), MRT_OK);
    ck_assert_int_eq(mrt_horizon_merge(&a, &b), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_count(&a), 4);
    ck_assert(mrt_horizon_has_observed(&a, 10, 5));
    ck_assert(mrt_horizon_has_observed(&a, 20, 7));
    ck_assert(!mrt_horizon_has_observed(&a, 20, 8));
    ck_assert(mrt_horizon_has_observed(&a, 30, 2));
    ck_assert(mrt_horizon_has_observed(&a, 0, 4));
    ck_assert_uint_eq(mrt_horizon_encoded(&a), mrt_horizon_encoded(&b) | ref_mask(10));
    ck_assert_uint_eq(mrt_horizon_logical_time(&a), 8); /* max(2, 8) */
    /* b unchanged. */
    ck_assert_uint_eq(mrt_horizon_count(&b), 3);
    ck_assert(!mrt_horizon_contains_origin(&b, 10));
    /* Merge into self is a no-op. */
    ck_assert_int_eq(mrt_horizon_merge(&a, &a), MRT_OK);
    ck_assert_uint_eq(mrt_horizon_count(&a), 4);
    /* All or nothing: a is full, b gains an origin a lacks. */
    ck_assert_int_eq(mrt_horizon_observe(&b, 40, 1), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&b, 20, 100), MRT_OK);
    uint64_t enc = mrt_horizon_encoded(&a);
    ck_assert_int_eq(mrt_horizon_merge(&a, &b), MRT_DAEMON_EHORIZONFULL);
    ck_assert_uint_eq(mrt_horizon_count(&a), 4);
    ck_assert(!mrt_horizon_has_observed(&a, 20, 100));
    ck_assert_uint_eq(mrt_horizon_encoded(&a), enc);
    mrt_horizon_destroy(&a);
    mrt_horizon_destroy(&b);
}
END_TEST

START_TEST(potentially_concurrent)
{
    /* Neither contains the other: concurrent. */
    ck_assert(mrt_horizon_potentially_concurrent(0x3, 0x6));
    ck_assert(mrt_horizon_potentially_concurrent(0x6, 0x3));
    /* Nested or equal: possibly ordered, not concurrent. */
    ck_assert(!mrt_horizon_potentially_concurrent(0x3, 0x7));
    ck_assert(!mrt_horizon_potentially_concurrent(0x7, 0x3));
    ck_assert(!mrt_horizon_potentially_concurrent(0x7, 0x7));
    ck_assert(!mrt_horizon_potentially_concurrent(0, 0xFF));
    ck_assert(!mrt_horizon_potentially_concurrent(0, 0));
    /* Hosts that saw disjoint origins emit concurrent horizons; one that merged the other's does not. */
    mrt_horizon a, b;
    ck_assert_int_eq(mrt_horizon_init(&a, NULL, 8), MRT_OK);
    ck_assert_int_eq(mrt_horizon_init(&b, NULL, 8), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&a, 1001, 0), MRT_OK);
    ck_assert_int_eq(mrt_horizon_observe(&b, 2002, 0), MRT_OK);
    uint64_t ea = mrt_horizon_encoded(&a), eb = mrt_horizon_encoded(&b);
    if ((ea & ~eb) && (eb & ~ea))
        ck_assert(mrt_horizon_potentially_concurrent(ea, eb));
    ck_assert_int_eq(mrt_horizon_merge(&b, &a), MRT_OK);
    ck_assert(!mrt_horizon_potentially_concurrent(ea, mrt_horizon_encoded(&b)));
    mrt_horizon_destroy(&a);
    mrt_horizon_destroy(&b);
}
END_TEST

/*
 * False-positive rate of the encoding. What is measured: the probability
 * that an origin NOT in the set has all three of its bits set in the
 * encoding of a fixed set of n random origins, estimated over 200 000
 * random non-member probes (fixed seeds, so deterministic).
 *
 * The exact value for a given encoding E is computable: an origin's bits
 * depend only on (h1 mod 64, h2 mod 64) with h2 odd — 64 * 32 equally likely
 * pairs — so FPR(E) = #{pairs whose three bits are in E} / 2048. The
 * measured rate must agree with it (binomial, 6 sigma).
 *
 * For 8 origins (24 bit-sets into 64 bits) the rate is ~3 %, and it cannot
 * reach 5 %: even with 24 distinct bits, FPR <= C(24,3)/C(64,3) ~= 4.9 %.
 * The 5 %–25 % band therefore holds from ~11 to ~20 origins; it is
 * checked at 16, and the 8-origin rate is checked against its own bounds.
 */
static double exact_fpr(uint64_t enc)
{
    unsigned hit = 0;
    for (unsigned h1 = 0; h1 < 64; h1++)
        for (unsigned h2 = 1; h2 < 64; h2 += 2) {
            uint64_t m = (1ull << h1) | (1ull << ((h1 + h2) % 64)) | (1ull << ((h1 + 2 * h2) % 64));
            hit += (enc & m) == m;
        }
    return hit / 2048.0;
}

static double measure_fpr(unsigned n, uint64_t seed, double *exact)
{
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, n), MRT_OK);
    uint64_t s = seed;
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(mrt_horizon_observe(&h, splitmix(&s), 0), MRT_OK);
    uint64_t enc = mrt_horizon_encoded(&h);
    const unsigned probes = 200000;
    unsigned fp = 0, done = 0;
    uint64_t p = seed ^ 0xABCDEF;
    while (done < probes) {
        uint64_t o = splitmix(&p);
        if (mrt_horizon_contains_origin(&h, o))
            continue;
        fp += mrt_horizon_encoding_may_contain(enc, o);
        done++;
    }
    mrt_horizon_destroy(&h);
    double rate = (double)fp / probes;
    *exact = exact_fpr(enc);
    double sigma = __builtin_sqrt(*exact * (1 - *exact) / probes);
    ck_assert_msg(rate > *exact - 6 * sigma && rate < *exact + 6 * sigma,
                  "measured FPR %.4f vs exact %.4f", rate, *exact);
    return rate;
}

START_TEST(false_positive_rate_8_origins)
{
    double exact;
    double rate = measure_fpr(8, 2024, &exact);
    fprintf(stderr, "horizon FPR, 8 origins: measured %.4f, exact %.4f\n", rate, exact);
    ck_assert(rate >= 0.005 && rate <= 0.0487);
}
END_TEST

START_TEST(false_positive_rate_16_origins)
{
    double exact;
    double rate = measure_fpr(16, 2024, &exact);
    fprintf(stderr, "horizon FPR, 16 origins: measured %.4f, exact %.4f\n", rate, exact);
    ck_assert(rate >= 0.05 && rate <= 0.25);
}
END_TEST

struct visit_acc {
    uint64_t sum;
    unsigned n;
};

static int visit(void *ctx, uint64_t origin, uint64_t seq)
{
    struct visit_acc *a = ctx;
    a->sum += origin * 1000 + seq;
    a->n++;
    return 0;
}

static int stop_at_two(void *ctx, uint64_t origin, uint64_t seq)
{
    (void)origin;
    (void)seq;
    return ++*(int *)ctx == 2 ? 42 : 0;
}

START_TEST(foreach_visits_all)
{
    mrt_horizon h;
    ck_assert_int_eq(mrt_horizon_init(&h, NULL, 16), MRT_OK);
    uint64_t sum = 0;
    for (uint64_t o = 0; o < 10; o++) {
        ck_assert_int_eq(mrt_horizon_observe(&h, o * 3, o + 1), MRT_OK);
        sum += o * 3 * 1000 + o + 1;
    }
    struct visit_acc acc = { 0, 0 };
    ck_assert_int_eq(mrt_horizon_foreach(&h, visit, &acc), 0);
    ck_assert_uint_eq(acc.n, 10);
    ck_assert_uint_eq(acc.sum, sum);
    int calls = 0;
    ck_assert_int_eq(mrt_horizon_foreach(&h, stop_at_two, &calls), 42);
    ck_assert_int_eq(calls, 2);
    mrt_horizon_destroy(&h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("daemon_horizon");
    TCase *t = tcase_create("horizon");
    tcase_add_test(t, bit_positions_match_reference);
    tcase_add_test(t, encoding_is_or_of_origins);
    tcase_add_test(t, known_origin_leaves_encoding_untouched);
    tcase_add_test(t, inline_observe_leaves_encoding_untouched);
    tcase_add_test(t, observe_tracks_highest_and_time);
    tcase_add_test(t, full_horizon_is_an_error);
    tcase_add_test(t, dense_table);
    tcase_add_test(t, merge_union);
    tcase_add_test(t, potentially_concurrent);
    tcase_add_test(t, false_positive_rate_8_origins);
    tcase_add_test(t, false_positive_rate_16_origins);
    tcase_add_test(t, foreach_visits_all);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return mrt_check_run(suite());
}
