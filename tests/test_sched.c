/*
 * The shard scheduler (sched/): capability matching, placement scores and
 * vetoes, the tie-breaker, free capacity, bad input, and no allocation on
 * the placement path. Spread, exclusion, drain and failure, migration
 * targets: test_sched_spread.c.
 */
#include "meshrt/mrt_runtime.h"
#include "meshrt/mrt_sched.h"
#include "tests/check_main.h"
#include "tests/test_sched_common.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ capabilities */

START_TEST(capability_required_and_builtin)
{
    mrt_sched *s = mk(8);
    for (uint32_t i = 0; i < 8; i++)
        OK(mrt_sched_shard_set_topology(s, i, i / 4, 100 + i));
    OK(mrt_sched_shard_add_tag(s, 5, "gpu"));
    OK(mrt_sched_shard_add_tag(s, 6, "gpu"));
    OK(mrt_sched_shard_add_tag(s, 6, "ssd"));

    bool has;
    OK(mrt_sched_shard_has_tag(s, 5, "numa:1", &has));
    ck_assert(has);
    OK(mrt_sched_shard_has_tag(s, 5, "numa:0", &has));
    ck_assert(!has);
    OK(mrt_sched_shard_has_tag(s, 5, "core:105", &has));
    ck_assert(has);
    OK(mrt_sched_shard_has_tag(s, 5, "shard:5", &has));
    ck_assert(has);
    OK(mrt_sched_shard_has_tag(s, 5, "gpu", &has));
    ck_assert(has);
    OK(mrt_sched_shard_has_tag(s, 5, "ssd", &has));
    ck_assert(!has);
    OK(mrt_sched_shard_has_tag(s, 5, "never-interned", &has));
    ck_assert(!has);

    mrt_sched_filter f;
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.filter = &f;

    OK(mrt_sched_filter_init(&f));
    ck_assert_uint_eq(place1(s, &rq), 0); /* empty filter: everyone, lowest id on ties */

    OK(mrt_sched_filter_require(s, &f, "gpu"));
    ck_assert_uint_eq(place1(s, &rq), 5);
    OK(mrt_sched_filter_require(s, &f, "ssd"));
    ck_assert_uint_eq(place1(s, &rq), 6);
    bool pass;
    OK(mrt_sched_filter_matches(s, &f, 5, &pass));
    ck_assert(!pass);
    OK(mrt_sched_filter_matches(s, &f, 6, &pass));
    ck_assert(pass);

    OK(mrt_sched_filter_init(&f));
    OK(mrt_sched_filter_require(s, &f, "numa:1"));
    ck_assert_uint_eq(place1(s, &rq), 4);
    OK(mrt_sched_filter_require(s, &f, "core:107"));
    ck_assert_uint_eq(place1(s, &rq), 7);
    OK(mrt_sched_filter_require(s, &f, "shard:7"));
    ck_assert_uint_eq(place1(s, &rq), 7);
    /* Two values of one built-in at once: nothing can match. */
    OK(mrt_sched_filter_require(s, &f, "numa:0"));
    uint32_t out = 99;
    RC(mrt_sched_place(s, &rq, 1, &out), MRT_SCHED_ENOCANDIDATE);
    ck_assert_uint_eq(out, 99);

    /* A required tag no shard carries yet: no candidate, until a shard gets it. */
    OK(mrt_sched_filter_init(&f));
    OK(mrt_sched_filter_require(s, &f, "fpga"));
    RC(mrt_sched_place(s, &rq, 1, &out), MRT_SCHED_ENOCANDIDATE);
    OK(mrt_sched_shard_add_tag(s, 3, "fpga"));
    ck_assert_uint_eq(place1(s, &rq), 3);
    OK(mrt_sched_shard_remove_tag(s, 3, "fpga"));
    RC(mrt_sched_place(s, &rq, 1, &out), MRT_SCHED_ENOCANDIDATE);
    mrt_sched_destroy(s);
}
END_TEST

START_TEST(capability_optional_raises_score)
{
    mrt_sched *s = mk(6);
    for (uint32_t i = 0; i < 6; i++) {
        OK(mrt_sched_shard_add_tag(s, i, "cpu"));
        OK(mrt_sched_shard_set_topology(s, i, i % 2, i));
    }
    OK(mrt_sched_shard_add_tag(s, 4, "ssd"));
    OK(mrt_sched_shard_add_tag(s, 3, "ssd"));
    OK(mrt_sched_shard_add_tag(s, 3, "avx512"));
    mrt_sched_filter f;
    OK(mrt_sched_filter_init(&f));
    OK(mrt_sched_filter_require(s, &f, "cpu"));
    OK(mrt_sched_filter_prefer(s, &f, "ssd"));
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.filter = &f;
    ck_assert_uint_eq(place1(s, &rq), 3); /* both 3 and 4 have ssd; lower id */
    OK(mrt_sched_filter_prefer(s, &f, "numa:0"));
    ck_assert_uint_eq(place1(s, &rq), 4); /* 4: ssd + numa:0 (2 of 2); 3: ssd (1 of 2) */
    OK(mrt_sched_filter_prefer(s, &f, "avx512"));
    /* 3: ssd + avx512, 4: ssd + numa:0 — equal (3 of 4): lower id. */
    ck_assert_uint_eq(place1(s, &rq), 3);
    /* Optional tags multiply the placement score: a weak placement loses to a lower-weighted strong one. */
    struct table t = { .v = { 1, 1, 1, 0.1, 0.1, 1 } };
    rq.score = table_score;
    rq.score_ctx = &t;
    ck_assert_uint_eq(place1(s, &rq), 0); /* 0: 1.0 x 2/4 (ssd no, numa:0 yes) > 3: 0.1 x 3/4 */
    /* Too many optional built-ins. */
    for (uint32_t i = 0; i < MRT_SCHED_MAX_OPT_BUILTIN - 1; i++) {
        char name[32];
        snprintf(name, sizeof name, "core:%u", i);
        OK(mrt_sched_filter_prefer(s, &f, name));
    }
    mrt_sched_filter before = f;
    RC(mrt_sched_filter_prefer(s, &f, "core:77"), MRT_SCHED_EFILTERFULL);
    ck_assert(memcmp(&before, &f, sizeof f) == 0);
    OK(mrt_sched_filter_prefer(s, &f, "core:0")); /* already there: fine */
    mrt_sched_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ scores and vetoes */

START_TEST(veto_nan_inf_dropped)
{
    mrt_sched *s = mk(8);
    struct table t = { .v = { NAN, MRT_SCHED_VETO, INFINITY, -INFINITY, 0.5, 0.7, -0.0001, 0.7 } };
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.score = table_score;
    rq.score_ctx = &t;
    ck_assert_uint_eq(place1(s, &rq), 5); /* 0.7 at 5 and 7: lower id */
    for (uint32_t i = 0; i < 8; i++)
        ck_assert_uint_eq(t.calls[i], 1);
    /* Strict spread counts only the three scoring shards. */
    uint32_t out[4] = { 99, 99, 99, 99 };
    RC(mrt_sched_place(s, &rq, 4, out), MRT_SCHED_ESPREAD);
    ck_assert_uint_eq(out[0], 99);
    OK(mrt_sched_place(s, &rq, 3, out));
    ck_assert_uint_eq(out[0], 5);
    ck_assert_uint_eq(out[1], 7);
    ck_assert_uint_eq(out[2], 4);
    /* Everything vetoed or non-finite. */
    t.v[4] = t.v[5] = t.v[7] = NAN;
    RC(mrt_sched_place(s, &rq, 1, out), MRT_SCHED_ENOCANDIDATE);
    /* Above 1 counts as 1: 5.0 does not beat 1.0 with a lower latency. */
    t.v[4] = 5.0;
    t.v[5] = 1.0;
    load(s, 5, 0, 0, 0, 0, 100.0);
    load(s, 4, 0, 0, 0, 0, 200.0);
    ck_assert_uint_eq(place1(s, &rq), 5);
    /* A score of 0 is still a score (not a veto). */
    t.v[4] = 0.0;
    t.v[5] = NAN;
    ck_assert_uint_eq(place1(s, &rq), 4);
    mrt_sched_destroy(s);
}
END_TEST

START_TEST(tie_break_latency_capacity_id)
{
    mrt_sched *s = mk(6);
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    /* Latency first: measured beats unmeasured, lower beats higher, whatever the capacity. */
    load(s, 1, 0.9, 0, 0, 0, 300.0);
    load(s, 2, 0.9, 0, 0, 0, 200.0);
    load(s, 3, 0.0, 0, 0, 0, 0.0); /* idle but unmeasured */
    ck_assert_uint_eq(place1(s, &rq), 2);
    /* Equal latency: more free capacity wins. */
    load(s, 4, 0.5, 0, 0, 0, 200.0);
    ck_assert_uint_eq(place1(s, &rq), 4);
    /* Capacity from the ring and hosted terms too. */
    load(s, 5, 0.5, 0, 0, 0, 200.0);
    ck_assert_uint_eq(place1(s, &rq), 4); /* equal in everything: lower id */
    load(s, 4, 0.5, 0, 10, 100, 200.0);
    ck_assert_uint_eq(place1(s, &rq), 5);
    load(s, 4, 0.5, 0, 0, 100, 200.0);
    load(s, 5, 0.5, 1, 0, 0, 200.0);
    ck_assert_uint_eq(place1(s, &rq), 4);
    /* Score beats all of them. */
    struct table t = { .v = { 0.5, 0.5, 0.5, 0.9, 0.5, 0.5 } };
    rq.score = table_score;
    rq.score_ctx = &t;
    ck_assert_uint_eq(place1(s, &rq), 3);
    /* Nothing measured, all idle: the lowest id. */
    mrt_sched_destroy(s);
    s = mk(6);
    rq.score = NULL;
    ck_assert_uint_eq(place1(s, &rq), 0);
    mrt_sched_destroy(s);
}
END_TEST

START_TEST(free_capacity_formula)
{
    mrt_sched_load l = { .busy = 0.5, .hosted = 8, .ring_used = 25, .ring_size = 100 };
    double f;
    OK(mrt_sched_free_capacity(&l, 8.0, &f));
    ck_assert_double_eq_tol(f, 0.5 * 0.75 * 0.5, 1e-12);
    l.ring_size = 0; /* unknown ring: no ring term (ring_used ignored) */
    OK(mrt_sched_free_capacity(&l, 8.0, &f));
    ck_assert_double_eq_tol(f, 0.25, 1e-12);
    l.busy = 1.0;
    OK(mrt_sched_free_capacity(&l, 8.0, &f));
    ck_assert_double_eq(f, 0.0);
    l = (mrt_sched_load){ .busy = 0.0, .ring_used = 64, .ring_size = 64 };
    OK(mrt_sched_free_capacity(&l, 8.0, &f));
    ck_assert_double_eq(f, 0.0); /* full ring: no capacity however idle */
    l = (mrt_sched_load){ .hosted = 4 };
    OK(mrt_sched_free_capacity(&l, 4.0, &f));
    ck_assert_double_eq_tol(f, 0.5, 1e-12);

    mrt_sched *s = mk(2);
    OK(mrt_sched_shard_capacity(s, 1, &f));
    ck_assert_double_eq(f, 1.0);
    OK(mrt_sched_set_hosted_ref(s, 2.0));
    load(s, 1, 0.0, 2, 0, 0, 0);
    OK(mrt_sched_shard_capacity(s, 1, &f));
    ck_assert_double_eq_tol(f, 0.5, 1e-12);
    OK(mrt_sched_set_hosted_ref(s, 6.0)); /* recomputed from the last load: 6 / (6 + 2) */
    OK(mrt_sched_shard_capacity(s, 1, &f));
    ck_assert_double_eq_tol(f, 0.75, 1e-12);
    OK(mrt_sched_set_hosted_ref(s, 2.0));
    /* A rejected load leaves the previous one. */
    l = (mrt_sched_load){ .busy = NAN };
    RC(mrt_sched_shard_set_load(s, 1, &l), MRT_SCHED_ELOAD);
    OK(mrt_sched_shard_capacity(s, 1, &f));
    ck_assert_double_eq_tol(f, 0.5, 1e-12);
    mrt_sched_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ bad input */

START_TEST(bad_input_codes)
{
    mrt_sched *s = NULL;
    RC(mrt_sched_create(NULL, 0, &s), MRT_SCHED_EINVAL);
    RC(mrt_sched_create(NULL, MRT_SCHED_MAX_SHARDS + 1, &s), MRT_SCHED_EINVAL);
    RC(mrt_sched_create(NULL, 4, NULL), MRT_SCHED_EINVAL);
    ck_assert_ptr_null(s);
    mrt_sched_destroy(NULL);
    ck_assert_uint_eq(mrt_sched_shard_count(NULL), 0);
    s = mk(4);
    ck_assert_uint_eq(mrt_sched_shard_count(s), 4);

    RC(mrt_sched_shard_set_topology(s, 4, 0, 0), MRT_SCHED_ESHARD);
    RC(mrt_sched_shard_set_topology(NULL, 0, 0, 0), MRT_SCHED_EINVAL);
    RC(mrt_sched_shard_set_drained(s, 9, true), MRT_SCHED_ESHARD);
    RC(mrt_sched_shard_set_failed(s, 9, true), MRT_SCHED_ESHARD);

    /* Tag names. */
    RC(mrt_sched_shard_add_tag(s, 0, ""), MRT_SCHED_ENAME);
    RC(mrt_sched_shard_add_tag(s, 0, "has space"), MRT_SCHED_ENAME);
    RC(mrt_sched_shard_add_tag(s, 0, "tab\t"), MRT_SCHED_ENAME);
    char longname[MRT_SCHED_TAG_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    RC(mrt_sched_shard_add_tag(s, 0, longname), MRT_SCHED_ENAME);
    longname[MRT_SCHED_TAG_MAX] = '\0';
    OK(mrt_sched_shard_add_tag(s, 0, longname)); /* exactly the maximum */
    RC(mrt_sched_shard_add_tag(s, 0, "numa:1"), MRT_SCHED_ERESERVED);
    RC(mrt_sched_shard_add_tag(s, 0, "shard:x"), MRT_SCHED_ERESERVED);
    RC(mrt_sched_shard_add_tag(s, 4, "ok"), MRT_SCHED_ESHARD);
    RC(mrt_sched_shard_add_tag(s, 0, NULL), MRT_SCHED_EINVAL);
    RC(mrt_sched_tag_intern(NULL, "x", NULL), MRT_SCHED_EINVAL);
    bool has;
    RC(mrt_sched_shard_has_tag(s, 0, "numa:", &has), MRT_SCHED_ENAME);
    RC(mrt_sched_shard_has_tag(s, 0, "core:12x", &has), MRT_SCHED_ENAME);
    RC(mrt_sched_shard_has_tag(s, 0, "shard:4294967295", &has), MRT_SCHED_ENAME);
    RC(mrt_sched_shard_has_tag(s, 0, "shard:99999999999999999999", &has), MRT_SCHED_ENAME);
    RC(mrt_sched_shard_has_tag(s, 0, "x", NULL), MRT_SCHED_EINVAL);
    /* 64 user tags at most (one already interned). */
    for (unsigned i = 1; i < MRT_SCHED_MAX_TAGS; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%u", i);
        unsigned bit;
        OK(mrt_sched_tag_intern(s, name, &bit));
        ck_assert_uint_eq(bit, i);
    }
    RC(mrt_sched_tag_intern(s, "one-too-many", NULL), MRT_SCHED_ETOOMANYTAGS);
    OK(mrt_sched_tag_intern(s, "t5", NULL)); /* known ones still resolve */
    mrt_sched_filter f;
    OK(mrt_sched_filter_init(&f));
    RC(mrt_sched_filter_require(s, &f, "one-too-many"), MRT_SCHED_ETOOMANYTAGS);
    RC(mrt_sched_filter_require(s, &f, "numa:z"), MRT_SCHED_ENAME);
    RC(mrt_sched_filter_require(s, NULL, "t5"), MRT_SCHED_EINVAL);
    RC(mrt_sched_filter_prefer(NULL, &f, "t5"), MRT_SCHED_EINVAL);
    RC(mrt_sched_filter_init(NULL), MRT_SCHED_EINVAL);
    bool pass;
    RC(mrt_sched_filter_matches(s, &f, 4, &pass), MRT_SCHED_ESHARD);
    RC(mrt_sched_filter_matches(s, NULL, 0, &pass), MRT_SCHED_EINVAL);

    /* Loads. */
    mrt_sched_load l = { 0 };
    double fc;
    l.busy = -0.1;
    RC(mrt_sched_shard_set_load(s, 0, &l), MRT_SCHED_ELOAD);
    l.busy = 1.5;
    RC(mrt_sched_shard_set_load(s, 0, &l), MRT_SCHED_ELOAD);
    l.busy = INFINITY;
    RC(mrt_sched_shard_set_load(s, 0, &l), MRT_SCHED_ELOAD);
    l = (mrt_sched_load){ .ring_used = 5, .ring_size = 4 };
    RC(mrt_sched_shard_set_load(s, 0, &l), MRT_SCHED_ELOAD);
    l = (mrt_sched_load){ .latency_ns = -1 };
    RC(mrt_sched_shard_set_load(s, 0, &l), MRT_SCHED_ELOAD);
    l = (mrt_sched_load){ .latency_ns = NAN };
    RC(mrt_sched_shard_set_load(s, 0, &l), MRT_SCHED_ELOAD);
    RC(mrt_sched_shard_set_load(s, 0, NULL), MRT_SCHED_EINVAL);
    RC(mrt_sched_shard_set_load(s, 7, &l), MRT_SCHED_ESHARD);
    l = (mrt_sched_load){ 0 };
    RC(mrt_sched_free_capacity(&l, 0.0, &fc), MRT_SCHED_EINVAL);
    RC(mrt_sched_free_capacity(&l, NAN, &fc), MRT_SCHED_EINVAL);
    RC(mrt_sched_free_capacity(&l, 1.0, NULL), MRT_SCHED_EINVAL);
    RC(mrt_sched_set_hosted_ref(s, -1.0), MRT_SCHED_EINVAL);
    RC(mrt_sched_shard_capacity(s, 0, NULL), MRT_SCHED_EINVAL);

    /* Requests. */
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    uint32_t out[2];
    RC(mrt_sched_place(s, NULL, 1, out), MRT_SCHED_EINVAL);
    RC(mrt_sched_place(NULL, &rq, 1, out), MRT_SCHED_EINVAL);
    RC(mrt_sched_place(s, &rq, 0, out), MRT_SCHED_EINVAL);
    RC(mrt_sched_place(s, &rq, 1, NULL), MRT_SCHED_EINVAL);
    rq.nexclude = 1;
    RC(mrt_sched_place(s, &rq, 1, out), MRT_SCHED_EINVAL); /* exclude NULL */
    uint32_t bad = 4;
    rq.exclude = &bad;
    RC(mrt_sched_place(s, &rq, 1, out), MRT_SCHED_ESHARD);
    rq.nexclude = 0;
    rq.spread = (mrt_sched_spread)7;
    RC(mrt_sched_place(s, &rq, 2, out), MRT_SCHED_EINVAL);
    rq.spread = MRT_SCHED_SPREAD_STRICT;
    f.n_opt_builtin = MRT_SCHED_MAX_OPT_BUILTIN + 1;
    rq.filter = &f;
    RC(mrt_sched_place(s, &rq, 1, out), MRT_SCHED_EINVAL);
    RC(mrt_sched_pick_from(s, &rq, NULL, 0, NULL), MRT_SCHED_EINVAL);
    RC(mrt_sched_migration_target(s, NULL, 0, 1, out, NULL), MRT_SCHED_EINVAL);
    rq.filter = NULL;
    RC(mrt_sched_pick_from(s, &rq, NULL, 2, out), MRT_SCHED_EINVAL);
    RC(mrt_sched_migration_target(s, &rq, 0, 1, NULL, NULL), MRT_SCHED_EINVAL);

    /* Every code has a name, reached through mrt_strerror too. */
    static const int codes[] = {
        MRT_SCHED_EINVAL, MRT_SCHED_ENOMEM, MRT_SCHED_ESHARD, MRT_SCHED_ENAME,
        MRT_SCHED_ERESERVED, MRT_SCHED_ETOOMANYTAGS, MRT_SCHED_ELOAD, MRT_SCHED_EFILTERFULL,
        MRT_SCHED_ENOCANDIDATE, MRT_SCHED_EEXCLUDED, MRT_SCHED_ESPREAD,
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        ck_assert_ptr_nonnull(mrt_sched_strerror(codes[i]));
        ck_assert_str_eq(mrt_strerror(codes[i]), mrt_sched_strerror(codes[i]));
    }
    ck_assert_ptr_null(mrt_sched_strerror(-950));
    ck_assert_ptr_null(mrt_sched_strerror(-899));
    ck_assert_str_eq(mrt_strerror(-950), "unknown status");
    mrt_sched_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ allocations */

START_TEST(placement_allocates_nothing)
{
    if (mrt_alloc_counting_enable() != MRT_OK)
        MRT_SKIP("alloc-count",
                 "sanitizer builds allocate through libc, which jemalloc's hook cannot count");
    mrt_sched *s = mk(256);
    mrt_sched_filter f;
    OK(mrt_sched_filter_init(&f));
    for (uint32_t i = 0; i < 256; i++) {
        OK(mrt_sched_shard_set_topology(s, i, i / 128, i));
        if (i % 4 != 0)
            OK(mrt_sched_shard_add_tag(s, i, "w"));
        if (i % 7 == 0)
            OK(mrt_sched_shard_add_tag(s, i, "ssd"));
        load(s, i, (double)(i % 10) / 10.0, i % 5, i % 3, 8, (double)(i % 4) * 50.0);
    }
    OK(mrt_sched_filter_require(s, &f, "w"));
    OK(mrt_sched_filter_prefer(s, &f, "ssd"));
    OK(mrt_sched_filter_prefer(s, &f, "numa:1"));
    struct table t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < 64; i++)
        t.v[i] = (double)(i % 5) / 4.0;
    uint32_t ex[3] = { 1, 2, 3 }, cands[4] = { 5, 6, 7, 9 };
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.filter = &f;
    rq.exclude = ex;
    rq.nexclude = 3;
    uint32_t out[16];
    int bad = 0;
    uint64_t sum = 0;
    /* Counted phase: no Check assertion in here (Check allocates its own records). */
    mrt_alloc_counts before = mrt_alloc_counts_now();
    for (int i = 0; i < 2000; i++) {
        rq.spread = (i & 1) ? MRT_SCHED_SPREAD_BEST_EFFORT : MRT_SCHED_SPREAD_STRICT;
        bad += mrt_sched_place(s, &rq, 1, out) != MRT_OK;
        sum += out[0];
        bad += mrt_sched_place(s, &rq, 8, out) != MRT_OK;
        sum += out[7];
        mrt_sched_reason why;
        bad += mrt_sched_migration_target(s, &rq, 4, 5, out, &why) != MRT_OK;
        bad += mrt_sched_pick_from(s, &rq, cands, 4, out) != MRT_OK;
    }
    rq.spread = MRT_SCHED_SPREAD_BEST_EFFORT;
    bad += mrt_sched_place(s, &rq, 16, out) != MRT_OK;
    mrt_alloc_counts after = mrt_alloc_counts_now();
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_gt(sum, 0);
    ck_assert_msg(after.allocs == before.allocs, "placement allocated %lu times",
                  (unsigned long)(after.allocs - before.allocs));
    mrt_sched_destroy(s);

    /* Best-effort overflow, counted on its own. */
    s = mk(64);
    rq.filter = NULL;
    rq.nexclude = 0;
    rq.score = table_score;
    rq.score_ctx = &t;
    before = mrt_alloc_counts_now();
    for (int i = 0; i < 500; i++)
        bad += mrt_sched_place(s, &rq, 16, out) != MRT_OK;
    bad += mrt_sched_place(s, &rq, 200, (uint32_t[200]){ 0 }) != MRT_OK;
    after = mrt_alloc_counts_now();
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_eq(after.allocs, before.allocs);
    mrt_sched_destroy(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("sched");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, capability_required_and_builtin);
    tcase_add_test(tc, capability_optional_raises_score);
    tcase_add_test(tc, veto_nan_inf_dropped);
    tcase_add_test(tc, tie_break_latency_capacity_id);
    tcase_add_test(tc, free_capacity_formula);
    tcase_add_test(tc, bad_input_codes);
    tcase_add_test(tc, placement_allocates_nothing);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
