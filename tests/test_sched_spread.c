/*
 * The shard scheduler (sched/): a group's spread (strict, best effort, in
 * the full ranking's order), exclusions, drained and failed shards,
 * migration targets and picking from candidates.
 */
#include "meshrt/mrt_runtime.h"
#include "meshrt/mrt_sched.h"
#include "tests/check_main.h"
#include "tests/test_sched_common.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ spread */

START_TEST(strict_spread)
{
    mrt_sched *s = mk(5);
    for (uint32_t i = 1; i < 5; i++)
        OK(mrt_sched_shard_add_tag(s, i, "w"));
    mrt_sched_filter f;
    OK(mrt_sched_filter_init(&f));
    OK(mrt_sched_filter_require(s, &f, "w"));
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.filter = &f;
    load(s, 3, 0.0, 0, 0, 0, 50.0); /* best by latency */
    uint32_t out[6] = { 99, 99, 99, 99, 99, 99 };
    OK(mrt_sched_place(s, &rq, 4, out));
    ck_assert_uint_eq(out[0], 3);
    ck_assert_uint_eq(out[1], 1);
    ck_assert_uint_eq(out[2], 2);
    ck_assert_uint_eq(out[3], 4);
    ck_assert_uint_eq(out[4], 99);
    for (int i = 0; i < 6; i++)
        out[i] = 99;
    RC(mrt_sched_place(s, &rq, 5, out), MRT_SCHED_ESPREAD);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(out[i], 99); /* nothing partially chosen */
    /* The call left no scratch state behind: the same request places the same. */
    OK(mrt_sched_place(s, &rq, 4, out));
    ck_assert_uint_eq(out[0], 3);
    ck_assert_uint_eq(out[3], 4);
    /* Drain one: three eligible. */
    OK(mrt_sched_shard_set_drained(s, 2, true));
    RC(mrt_sched_place(s, &rq, 4, out), MRT_SCHED_ESPREAD);
    OK(mrt_sched_place(s, &rq, 3, out));
    for (int i = 0; i < 3; i++)
        ck_assert_uint_ne(out[i], 2);
    mrt_sched_destroy(s);
}
END_TEST

START_TEST(best_effort_spread)
{
    mrt_sched *s = mk(4);
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.spread = MRT_SCHED_SPREAD_BEST_EFFORT;
    OK(mrt_sched_shard_set_failed(s, 3, true));
    uint32_t out[7];
    OK(mrt_sched_place(s, &rq, 7, out));
    unsigned count[4] = { 0 };
    ck_assert_uint_eq(out[0], 0);
    ck_assert_uint_eq(out[1], 1);
    ck_assert_uint_eq(out[2], 2); /* distinct first */
    for (int i = 0; i < 7; i++)
        count[out[i]]++;
    ck_assert_uint_eq(count[3], 0);
    ck_assert_uint_eq(count[0], 3); /* then least loaded, counting this call's members */
    ck_assert_uint_eq(count[1], 2);
    ck_assert_uint_eq(count[2], 2);
    /* An idler shard takes the overflow until it is as loaded as the others. */
    load(s, 0, 0.0, 6, 0, 0, 0);
    load(s, 1, 0.0, 6, 0, 0, 0);
    load(s, 2, 0.0, 0, 0, 0, 0);
    OK(mrt_sched_place(s, &rq, 7, out));
    memset(count, 0, sizeof count);
    for (int i = 0; i < 7; i++)
        count[out[i]]++;
    /* Distinct first (2, 0, 1), then every overflow member to 2: 8/(8+0+e) > 8/(8+6+1) while e < 7. */
    ck_assert_uint_eq(count[2], 5);
    ck_assert_uint_eq(count[0], 1);
    ck_assert_uint_eq(count[1], 1);
    /* Best-effort with no eligible shard is still an error. */
    for (uint32_t i = 0; i < 3; i++)
        OK(mrt_sched_shard_set_drained(s, i, true));
    RC(mrt_sched_place(s, &rq, 2, out), MRT_SCHED_ENOCANDIDATE);
    mrt_sched_destroy(s);
}
END_TEST

START_TEST(spread_never_falls_back_to_excluded)
{
    mrt_sched *s = mk(4);
    uint32_t excl[2] = { 0, 1 };
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.exclude = excl;
    rq.nexclude = 2;
    OK(mrt_sched_shard_set_failed(s, 3, true));
    ck_assert_uint_eq(place1(s, &rq), 2);
    uint32_t out[5] = { 99, 99, 99, 99, 99 };
    RC(mrt_sched_place(s, &rq, 2, out), MRT_SCHED_ESPREAD);
    ck_assert_uint_eq(out[0], 99);
    rq.spread = MRT_SCHED_SPREAD_BEST_EFFORT;
    OK(mrt_sched_place(s, &rq, 5, out));
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(out[i], 2);
    /* Every shard that matches is excluded: a specific error, nothing chosen. */
    OK(mrt_sched_shard_set_drained(s, 2, true));
    RC(mrt_sched_place(s, &rq, 1, out), MRT_SCHED_EEXCLUDED);
    RC(mrt_sched_place(s, &rq, 3, out), MRT_SCHED_EEXCLUDED);
    mrt_sched_destroy(s);

    /* Randomised: whatever the exclusion set, load and mode, no excluded shard comes back. */
    s = mk(16);
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 2000; round++) {
        uint32_t ex[16], nex = 0;
        for (uint32_t i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            load(s, i, (double)(x % 100) / 100.0, (uint32_t)(x >> 8) % 5, 0, 0,
                 (double)((x >> 16) % 3) * 100.0);
            if ((x >> 24) % 3 == 0)
                ex[nex++] = i;
        }
        mrt_sched_request r2;
        mrt_sched_request_init(&r2);
        r2.exclude = ex;
        r2.nexclude = nex;
        r2.spread = (round & 1) ? MRT_SCHED_SPREAD_BEST_EFFORT : MRT_SCHED_SPREAD_STRICT;
        uint32_t k = 1 + (uint32_t)(x >> 32) % 20, got[20];
        int rc = mrt_sched_place(s, &r2, k, got);
        if (nex == 16) {
            RC(rc, MRT_SCHED_EEXCLUDED);
            continue;
        }
        if (r2.spread == MRT_SCHED_SPREAD_STRICT && k > 16 - nex) {
            RC(rc, MRT_SCHED_ESPREAD);
            continue;
        }
        OK(rc);
        for (uint32_t m = 0; m < k; m++)
            for (uint32_t j = 0; j < nex; j++)
                ck_assert_uint_ne(got[m], ex[j]);
    }
    mrt_sched_destroy(s);
}
END_TEST

/* The documented ranking, written out independently: score, latency (0 = unmeasured), free, id. */
struct ranked {
    uint32_t id;
    double score, lat, free;
};

static int rank_cmp(const void *a_, const void *b_)
{
    const struct ranked *a = a_, *b = b_;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->lat != b->lat) {
        if (a->lat == 0.0 || b->lat == 0.0)
            return a->lat == 0.0 ? 1 : -1;
        return a->lat < b->lat ? -1 : 1;
    }
    if (a->free != b->free)
        return a->free > b->free ? -1 : 1;
    return a->id < b->id ? -1 : 1;
}

START_TEST(spread_order_matches_full_ranking)
{
    /* A group's k shards are the first k of the full ranking, in order, ties included. */
    mrt_sched *s = mk(64);
    struct table t;
    uint64_t x = 12345;
    for (int round = 0; round < 300; round++) {
        memset(&t, 0, sizeof t);
        struct ranked r[64];
        uint32_t m = 0;
        for (uint32_t i = 0; i < 64; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            double lat = (double)(x % 3) * 100.0, busy = (double)((x >> 8) % 3) / 4.0;
            load(s, i, busy, 0, 0, 0, lat);
            t.v[i] = (x >> 16) % 5 == 0 ? MRT_SCHED_VETO : (double)((x >> 20) % 3) / 2.0;
            double fc;
            OK(mrt_sched_shard_capacity(s, i, &fc));
            if (t.v[i] >= 0)
                r[m++] = (struct ranked){ i, t.v[i], lat, fc };
        }
        qsort(r, m, sizeof r[0], rank_cmp);
        mrt_sched_request rq;
        mrt_sched_request_init(&rq);
        rq.score = table_score;
        rq.score_ctx = &t;
        uint32_t k = 1 + (uint32_t)(x >> 40) % 20, out[20];
        if (k > m) {
            RC(mrt_sched_place(s, &rq, k, out), MRT_SCHED_ESPREAD);
            continue;
        }
        OK(mrt_sched_place(s, &rq, k, out));
        for (uint32_t j = 0; j < k; j++)
            ck_assert_msg(out[j] == r[j].id, "round %d k %u: member %u on %u, ranking says %u",
                          round, k, j, out[j], r[j].id);
    }
    mrt_sched_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ drain and failure */

START_TEST(drained_and_failed_never_chosen)
{
    mrt_sched *s = mk(3);
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    OK(mrt_sched_shard_set_drained(s, 0, true));
    ck_assert_uint_eq(place1(s, &rq), 1);
    /* A load refresh does not undo a drain. */
    load(s, 0, 0.0, 0, 0, 0, 1.0);
    ck_assert_uint_eq(place1(s, &rq), 1);
    OK(mrt_sched_shard_set_failed(s, 1, true));
    ck_assert_uint_eq(place1(s, &rq), 2);
    uint32_t out[3] = { 99, 99, 99 };
    RC(mrt_sched_place(s, &rq, 2, out), MRT_SCHED_ESPREAD);
    rq.spread = MRT_SCHED_SPREAD_BEST_EFFORT;
    OK(mrt_sched_place(s, &rq, 3, out));
    ck_assert_uint_eq(out[0], 2);
    ck_assert_uint_eq(out[1], 2);
    ck_assert_uint_eq(out[2], 2);
    uint32_t cands[3] = { 0, 1, 2 }, one;
    OK(mrt_sched_pick_from(s, &rq, cands, 3, &one));
    ck_assert_uint_eq(one, 2);
    OK(mrt_sched_shard_set_drained(s, 2, true));
    RC(mrt_sched_place(s, &rq, 1, out), MRT_SCHED_ENOCANDIDATE);
    RC(mrt_sched_pick_from(s, &rq, cands, 3, &one), MRT_SCHED_ENOCANDIDATE);
    /* Undrain: back (and the failed one stays out). */
    OK(mrt_sched_shard_set_drained(s, 0, false));
    ck_assert_uint_eq(place1(s, &rq), 0);
    OK(mrt_sched_shard_set_drained(s, 0, true));
    OK(mrt_sched_shard_set_failed(s, 1, false));
    ck_assert_uint_eq(place1(s, &rq), 1);
    mrt_sched_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ migration and promotion */

START_TEST(migration_target_local_fast_path)
{
    mrt_sched *s = mk(5);
    struct table t = { .v = { 0.9, 0.2, 1.0, 0.3, 0.3 } };
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.score = table_score;
    rq.score_ctx = &t;
    uint32_t out = 99;
    mrt_sched_reason why;
    /* Local eligible with a positive score: local, even though 2 scores higher. */
    OK(mrt_sched_migration_target(s, &rq, 0, 1, &out, &why));
    ck_assert_uint_eq(out, 1);
    ck_assert_int_eq(why, MRT_SCHED_REASON_LOCAL);
    /* A 0 local score never takes the fast path. */
    t.v[1] = 0.0;
    OK(mrt_sched_migration_target(s, &rq, 0, 1, &out, &why));
    ck_assert_uint_eq(out, 2);
    ck_assert_int_eq(why, MRT_SCHED_REASON_BEST);
    /* Nor does NaN or infinity (they are dropped altogether). */
    t.v[1] = NAN;
    OK(mrt_sched_migration_target(s, &rq, 0, 1, &out, &why));
    ck_assert_uint_eq(out, 2);
    t.v[1] = INFINITY;
    OK(mrt_sched_migration_target(s, &rq, 0, 1, &out, &why));
    ck_assert_uint_eq(out, 2);
    ck_assert_int_eq(why, MRT_SCHED_REASON_BEST);
    /* Local is the source: never the target. Source 2 is the best scorer: never chosen. */
    OK(mrt_sched_migration_target(s, &rq, 2, 2, &out, &why));
    ck_assert_uint_eq(out, 0);
    ck_assert_int_eq(why, MRT_SCHED_REASON_BEST);
    /* Local drained or excluded: no fast path. */
    t.v[1] = 0.5;
    OK(mrt_sched_shard_set_drained(s, 1, true));
    OK(mrt_sched_migration_target(s, &rq, 0, 1, &out, &why));
    ck_assert_uint_eq(out, 2);
    OK(mrt_sched_shard_set_drained(s, 1, false));
    uint32_t ex = 1;
    rq.exclude = &ex;
    rq.nexclude = 1;
    OK(mrt_sched_migration_target(s, &rq, 0, 1, &out, &why));
    ck_assert_uint_eq(out, 2);
    rq.nexclude = 0;
    /* No local: the best. */
    OK(mrt_sched_migration_target(s, &rq, 0, MRT_SCHED_NONE, &out, &why));
    ck_assert_uint_eq(out, 2);
    /* Only the source is eligible: no target, and the source is still placeable afterwards. */
    for (uint32_t i = 1; i < 5; i++)
        t.v[i] = MRT_SCHED_VETO;
    out = 99;
    RC(mrt_sched_migration_target(s, &rq, 0, 1, &out, &why), MRT_SCHED_ENOCANDIDATE);
    ck_assert_uint_eq(out, 99);
    ck_assert_uint_eq(place1(s, &rq), 0);
    RC(mrt_sched_migration_target(s, &rq, 5, 1, &out, &why), MRT_SCHED_ESHARD);
    RC(mrt_sched_migration_target(s, &rq, 0, 5, &out, &why), MRT_SCHED_ESHARD);
    mrt_sched_destroy(s);
}
END_TEST

START_TEST(pick_from_candidates)
{
    mrt_sched *s = mk(8);
    struct table t = { .v = { 1, 1, 1, 0.5, 0.5, 0.5, 1, 1 } };
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.score = table_score;
    rq.score_ctx = &t;
    uint32_t cands[5] = { 5, 3, 4, 3, 5 }, out = 99;
    load(s, 4, 0.0, 0, 0, 0, 10.0);
    OK(mrt_sched_pick_from(s, &rq, cands, 5, &out));
    ck_assert_uint_eq(out, 4); /* equal scores: the measured latency */
    ck_assert_uint_eq(t.calls[3], 1); /* a repeated candidate is scored once */
    ck_assert_uint_eq(t.calls[5], 1);
    ck_assert_uint_eq(t.calls[0], 0); /* non-candidates are not scored */
    uint32_t ex = 4;
    rq.exclude = &ex;
    rq.nexclude = 1;
    OK(mrt_sched_pick_from(s, &rq, cands, 5, &out));
    ck_assert_uint_eq(out, 3);
    RC(mrt_sched_pick_from(s, &rq, cands + 2, 1, &out), MRT_SCHED_EEXCLUDED);
    RC(mrt_sched_pick_from(s, &rq, cands, 0, &out), MRT_SCHED_ENOCANDIDATE);
    uint32_t bad = 8;
    RC(mrt_sched_pick_from(s, &rq, &bad, 1, &out), MRT_SCHED_ESHARD);
    /* The marks it used are cleared: a full placement still sees every shard. */
    rq.nexclude = 0;
    ck_assert_uint_eq(place1(s, &rq), 0);
    mrt_sched_destroy(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sched_spread");
    TCase *tc = tcase_create("sched_spread");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, strict_spread);
    tcase_add_test(tc, best_effort_spread);
    tcase_add_test(tc, spread_never_falls_back_to_excluded);
    tcase_add_test(tc, spread_order_matches_full_ranking);
    tcase_add_test(tc, drained_and_failed_never_chosen);
    tcase_add_test(tc, migration_target_local_fast_path);
    tcase_add_test(tc, pick_from_candidates);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
