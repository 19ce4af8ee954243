/*
 * Balancer strategies: nginx's smooth-WRR sequence and exact long-run
 * shares, weighted random / random / power-of-two distributions (fixed
 * seeds, tolerances stated per test), least-* picks against a brute-force
 * min, least load, adaptive, bursts, and zero allocations per select. The
 * hashing strategies: test_balancer_hashing.c.
 */
#include "balancer/lb_internal.h"
#include "meshrt/mrt_balancer.h"
#include "tests/check_main.h"
#include "tests/test_balancer_common.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ smooth WRR */

START_TEST(wrr_nginx_sequence)
{
    fx f;
    int64_t w[3] = { 5, 1, 1 }; /* a, b, c */
    fx_init(&f, MRT_LB_WEIGHTED_ROUND_ROBIN, 3, w, NULL);
    fx_compile(&f);
    const uint32_t want[7] = { 0, 0, 1, 0, 2, 0, 0 }; /* a a b a c a a */
    const lb_pool *P = &f.S->pools[0];
    EQ(P->wrr_len, 7);
    for (int i = 0; i < 7; i++)
        EQ(P->wrr_seq[i], want[i]);
    /* a shard starts at a random offset of the period: 14 picks are a rotation of it */
    uint32_t got[14];
    for (int i = 0; i < 14; i++)
        got[i] = pick1(&f, NULL);
    int rotations = 0;
    for (int off = 0; off < 7; off++) {
        bool match = true;
        for (int i = 0; i < 14 && match; i++)
            match = got[i] == want[(off + i) % 7];
        rotations += match;
    }
    ck_assert_int_ge(rotations, 1);
    fx_free(&f);
}
END_TEST

START_TEST(wrr_long_run_shares_exact)
{
    fx f;
    int64_t w[6] = { 5, 1, 1, 3, 7, 2 };
    fx_init(&f, MRT_LB_WEIGHTED_ROUND_ROBIN, 6, w, NULL);
    fx_compile(&f);
    uint64_t cnt[6] = { 0 };
    const int periods = 1000;
    for (int i = 0; i < 19 * periods; i++)
        cnt[pick1(&f, NULL)]++;
    for (int i = 0; i < 6; i++)
        EQ(cnt[i], (uint64_t)w[i] * periods); /* exact over whole periods */
    /* degraded halves the effective weight: 1 healthy + 1 degraded of equal weight give 2:1 */
    uint8_t id[32];
    node(id, 1);
    for (int i = 2; i < 6; i++) {
        node(id, (uint32_t)i);
        OK(mrt_lb_registry_set_enabled(f.r, id, false));
    }
    node(id, 1);
    OK(mrt_lb_registry_set_weight(f.r, id, 5));
    OK(mrt_lb_registry_set_health(f.r, id, MRT_LB_DEGRADED));
    fx_compile(&f);
    memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < 3 * 1000; i++)
        cnt[pick1(&f, NULL)]++;
    EQ(cnt[0], 2000);
    EQ(cnt[1], 1000);
    fx_free(&f);
}
END_TEST

START_TEST(wrr_flat_and_quantized)
{
    /* equal weights reduce to a period of N (one load per pick at any N) */
    fx f;
    fx_init(&f, MRT_LB_WEIGHTED_ROUND_ROBIN, 10000, NULL, NULL);
    fx_compile(&f);
    EQ(f.S->pools[0].wrr_len, 10000);
    ck_assert(!mrt_lb_snapshot_wrr_quantized(f.S));
    fx_free(&f);
    /* weights whose period exceeds wrr_max_period are scaled down, flagged */
    mrt_lb_config c;
    mrt_lb_config_default(&c);
    c.wrr_max_period = 16;
    int64_t w[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    fx_init(&f, MRT_LB_WEIGHTED_ROUND_ROBIN, 10, w, &c);
    fx_compile(&f);
    ck_assert(mrt_lb_snapshot_wrr_quantized(f.S));
    ck_assert_uint_le(f.S->pools[0].wrr_len, 16 + 10);
    uint64_t cnt[10] = { 0 };
    for (uint32_t i = 0; i < f.S->pools[0].wrr_len * 10; i++)
        cnt[pick1(&f, NULL)]++;
    for (int i = 0; i < 10; i++) {
        ck_assert_uint_gt(cnt[i], 0);
        if (i > 0)
            ck_assert_uint_ge(cnt[i], cnt[i - 1]); /* order of weights kept */
    }
    fx_free(&f);
}
END_TEST

/* ------------------------------------------------------------------ random family */

START_TEST(weighted_random_distribution)
{
    fx f;
    int64_t w[4] = { 100, 200, 300, 400 };
    fx_init(&f, MRT_LB_WEIGHTED_RANDOM, 4, w, NULL);
    fx_compile(&f);
    const int N = 1000000;
    uint64_t cnt[4] = { 0 };
    for (int i = 0; i < N; i++)
        cnt[pick1(&f, NULL)]++;
    /* tolerance: 2% relative; smallest share 0.1 has sigma 0.3% relative at 1M samples */
    for (int i = 0; i < 4; i++) {
        double want = (double)w[i] / 1000.0;
        double got = (double)cnt[i] / N;
        ck_assert_msg(fabs(got - want) <= 0.02 * want, "endpoint %d: %f vs %f", i, got, want);
    }
    fx_free(&f);
}
END_TEST

START_TEST(random_uniform)
{
    fx f;
    fx_init(&f, MRT_LB_RANDOM, 8, NULL, NULL);
    fx_compile(&f);
    const int N = 800000;
    uint64_t cnt[8] = { 0 };
    for (int i = 0; i < N; i++)
        cnt[pick1(&f, NULL)]++;
    for (int i = 0; i < 8; i++) /* 2% relative; sigma 0.4% */
        ck_assert_msg(fabs((double)cnt[i] / N - 0.125) <= 0.02 * 0.125, "%d: %lu", i,
                      (unsigned long)cnt[i]);
    fx_free(&f);
}
END_TEST

START_TEST(power_of_two_choices)
{
    fx f;
    /* two endpoints: both are always sampled, so fewer in-flight wins every time */
    fx_init(&f, MRT_LB_POWER_OF_TWO, 2, NULL, NULL);
    fx_compile(&f);
    mrt_lb_selection sel;
    for (int i = 0; i < 1000; i++) {
        OK(mrt_lb_select(f.S, f.sh, NULL, 0, &sel));
        int d = (int)mrt_lb_shard_inflight(f.sh, 0) - (int)mrt_lb_shard_inflight(f.sh, 1);
        ck_assert_int_le(abs(d), 1);
    }
    fx_free(&f);
    /* ten endpoints, no completes: two choices keep the spread tiny (one choice: ~+-300) */
    fx_init(&f, MRT_LB_POWER_OF_TWO, 10, NULL, NULL);
    fx_compile(&f);
    for (int i = 0; i < 100000; i++)
        OK(mrt_lb_select(f.S, f.sh, NULL, 0, &sel));
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t i = 0; i < 10; i++) {
        uint32_t v = mrt_lb_shard_inflight(f.sh, i);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    ck_assert_msg(hi - lo <= 5, "spread %u", hi - lo);
    fx_free(&f);
    /* with immediate completes all are tied: uniform within 2% */
    fx_init(&f, MRT_LB_POWER_OF_TWO, 10, NULL, NULL);
    fx_compile(&f);
    uint64_t cnt[10] = { 0 };
    for (int i = 0; i < 500000; i++)
        cnt[pick1(&f, NULL)]++;
    for (int i = 0; i < 10; i++)
        ck_assert_msg(fabs((double)cnt[i] / 500000 - 0.1) <= 0.002, "%d", i);
    fx_free(&f);
}
END_TEST

/* ------------------------------------------------------------------ least-* */

static double lkey(mrt_lb_strategy st, fx *f, uint32_t id)
{
    mrt_lb_endpoint_shard_info inf;
    OK(mrt_lb_shard_endpoint(f->sh, id, 0, &inf));
    if (st == MRT_LB_LEAST_LATENCY) /* peak EWMA: (ewma + 1 us) x (in-flight + 1) */
        return (inf.latency_ewma_ns + 1000.0) * (inf.inflight + 1.0);
    if (st == MRT_LB_WEIGHTED_LEAST_CONN) {
        int64_t slot = mrt_lb_snapshot_slot_of(f->S, id);
        return (inf.inflight + 1.0) / f->S->weights[slot];
    }
    return inf.inflight;
}

/* Random select/complete traffic; every pick must be the brute-force min (ties: lowest slot). */
static void least_matches_bruteforce(mrt_lb_strategy st, bool zoned)
{
    enum { N = 24, STEPS = 20000 };
    fx f;
    int64_t w[N];
    for (int i = 0; i < N; i++)
        w[i] = 1 + (i * 7) % 5;
    mrt_lb_config c;
    mrt_lb_config_default(&c);
    c.breaker_threshold = 0;
    c.strategy = st;
    OK(mrt_lb_registry_create(NULL, &c, &f.r));
    uint16_t zone_b = 0;
    for (uint32_t i = 0; i < N; i++) {
        mrt_lb_endpoint_spec s;
        uint8_t id[32];
        node(id, i);
        mrt_lb_endpoint_spec_init(&s, id);
        s.weight = w[i];
        s.zone = (i % 3 == 1) ? "b" : "a";
        OK(mrt_lb_registry_add(f.r, &s, NULL));
    }
    OK(mrt_lb_registry_zone(f.r, "b", &zone_b));
    OK(mrt_lb_shard_create(NULL, 9, &f.sh));
    f.S = NULL;
    fx_compile(&f);
    mrt_lb_request rq;
    mrt_lb_request_init(&rq);
    if (zoned)
        rq.zone = zone_b;
    static mrt_lb_selection out[STEPS];
    uint32_t nout = 0;
    uint64_t rng = 12345;
    for (int step = 0; step < STEPS; step++) {
        uint64_t r = lb_rand(&rng);
        if (nout > 0 && (r & 3) == 0) {
            uint32_t k = (uint32_t)((r >> 8) % nout);
            OK(mrt_lb_complete(f.sh, &out[k], true, 1000 + (r >> 40) % 5000, 0));
            out[k] = out[--nout];
            continue;
        }
        /* expected: min over the pool's members, lowest slot on ties */
        double best = INFINITY;
        uint32_t best_id = UINT32_MAX;
        for (uint32_t i = 0; i < N; i++) {
            if (zoned && i % 3 != 1)
                continue;
            double k = lkey(st, &f, i);
            if (k < best) {
                best = k;
                best_id = i;
            }
        }
        OK(mrt_lb_select(f.S, f.sh, &rq, 0, &out[nout]));
        if (out[nout].endpoint_id != best_id)
            ck_assert_msg(0, "step %d: got %u want %u", step, out[nout].endpoint_id, best_id);
        nout++;
    }
    fx_free(&f);
}

START_TEST(least_connections_is_min)
{
    least_matches_bruteforce(MRT_LB_LEAST_CONNECTIONS, false);
    least_matches_bruteforce(MRT_LB_LEAST_CONNECTIONS, true);
}
END_TEST

START_TEST(weighted_least_connections_is_min)
{
    least_matches_bruteforce(MRT_LB_WEIGHTED_LEAST_CONN, false);
    least_matches_bruteforce(MRT_LB_WEIGHTED_LEAST_CONN, true);
}
END_TEST

START_TEST(least_latency_is_min)
{
    least_matches_bruteforce(MRT_LB_LEAST_LATENCY, false);
    least_matches_bruteforce(MRT_LB_LEAST_LATENCY, true);
}
END_TEST

START_TEST(least_load_order)
{
    fx f;
    mrt_lb_config c;
    mrt_lb_config_default(&c);
    c.max_connections = 1;
    fx_init(&f, MRT_LB_LEAST_LOAD, 5, NULL, &c);
    double cpu[5] = { 0.5, 0.1, 0.9, 0.3, 0.2 };
    for (uint32_t i = 0; i < 5; i++) {
        uint8_t id[32];
        node(id, i);
        mrt_lb_metrics m = { .cpu = cpu[i] };
        OK(mrt_lb_registry_update_metrics(f.r, id, &m));
    }
    fx_compile(&f);
    /* with max 1 each, successive selects walk the load order: 1, 4, 3, 0, 2 */
    const uint32_t order[5] = { 1, 4, 3, 0, 2 };
    mrt_lb_selection sel[6];
    for (int i = 0; i < 5; i++) {
        OK(mrt_lb_select(f.S, f.sh, NULL, 0, &sel[i]));
        EQ(sel[i].endpoint_id, order[i]);
    }
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, NULL, 0, &sel[5]), MRT_LB_EMAXCONN);
    OK(mrt_lb_complete(f.sh, &sel[2], true, 1, 0));
    OK(mrt_lb_select(f.S, f.sh, NULL, 0, &sel[5]));
    EQ(sel[5].endpoint_id, 3);
    fx_free(&f);
}
END_TEST

START_TEST(adaptive_branches)
{
    /* low load: key -> the consistent-hash pick, no key -> smooth WRR */
    fx f, ch;
    fx_init(&f, MRT_LB_ADAPTIVE, 30, NULL, NULL);
    fx_compile(&f);
    fx_init(&ch, MRT_LB_CONSISTENT_HASH, 30, NULL, NULL);
    fx_compile(&ch);
    for (uint64_t k = 0; k < 1000; k++) {
        mrt_lb_request rq;
        mrt_lb_request_init(&rq);
        rq.session_id = &k;
        rq.session_id_len = sizeof k;
        mrt_lb_selection sel;
        OK(mrt_lb_select(f.S, f.sh, &rq, 0, &sel));
        ck_assert_int_eq(sel.strategy, MRT_LB_CONSISTENT_HASH);
        EQ(sel.endpoint_id, pick1(&ch, &rq));
        OK(mrt_lb_complete(f.sh, &sel, true, 1, 0));
    }
    mrt_lb_selection sel;
    OK(mrt_lb_select(f.S, f.sh, NULL, 0, &sel));
    ck_assert_int_eq(sel.strategy, MRT_LB_WEIGHTED_ROUND_ROBIN);
    OK(mrt_lb_complete(f.sh, &sel, true, 1, 0));
    /* mean load > 0.7: least connections, keyed or not */
    mrt_lb_metrics hot = { .cpu = 1, .memory = 1, .active_connections = 1e5,
                           .avg_response_ms = 5000, .error_rate = 0.2 };
    for (uint32_t i = 0; i < 30; i++) {
        uint8_t id[32];
        node(id, i);
        OK(mrt_lb_registry_update_metrics(f.r, id, &hot));
    }
    fx_compile(&f);
    ck_assert(f.S->pools[0].mean_load > 0.7);
    mrt_lb_selection held[30];
    for (int i = 0; i < 30; i++) {
        uint64_t key = (uint64_t)i;
        mrt_lb_request rq;
        mrt_lb_request_init(&rq);
        rq.routing_key = &key;
        rq.routing_key_len = 8;
        OK(mrt_lb_select(f.S, f.sh, &rq, 0, &held[i]));
        ck_assert_int_eq(held[i].strategy, MRT_LB_LEAST_CONNECTIONS);
        EQ(held[i].endpoint_id, (uint32_t)i); /* each idle one in turn */
    }
    for (int i = 0; i < 30; i++)
        OK(mrt_lb_complete(f.sh, &held[i], true, 1, 0));
    fx_free(&f);
    fx_free(&ch);
}
END_TEST

/* ------------------------------------------------------------------ bursts */

START_TEST(burst_equals_sequential)
{
    for (int st = 0; st < MRT_LB_STRATEGY_COUNT; st++) {
        mrt_lb_config c;
        mrt_lb_config_default(&c);
        c.strategy = (mrt_lb_strategy)st;
        c.max_connections = 3;
        mrt_lb_registry *r;
        OK(mrt_lb_registry_create(NULL, &c, &r));
        const char *tags[1] = { "gpu" };
        for (uint32_t i = 0; i < 40; i++) {
            mrt_lb_endpoint_spec s;
            uint8_t id[32];
            node(id, i);
            mrt_lb_endpoint_spec_init(&s, id);
            s.zone = (i % 3) ? "a" : "b";
            s.tags = tags;
            s.ntags = i % 2;
            s.weight = 1 + i % 5;
            OK(mrt_lb_registry_add(r, &s, NULL));
        }
        uint64_t mask;
        uint16_t za;
        OK(mrt_lb_registry_declare_filter(r, tags, 1, &mask));
        OK(mrt_lb_registry_zone(r, "a", &za));
        mrt_lb_snapshot *S;
        OK(mrt_lb_registry_compile(r, 0, NULL, &S));
        mrt_lb_shard *a, *b;
        OK(mrt_lb_shard_create(NULL, 77, &a));
        OK(mrt_lb_shard_create(NULL, 77, &b));
        OK(mrt_lb_shard_adopt(a, S));
        OK(mrt_lb_shard_adopt(b, S));
        enum { M = 150 };
        mrt_lb_request rq[M];
        uint64_t keys[M];
        for (int i = 0; i < M; i++) {
            mrt_lb_request_init(&rq[i]);
            keys[i] = (uint64_t)i * 31;
            if (i % 4 != 3) {
                rq[i].routing_key = &keys[i];
                rq[i].routing_key_len = 8;
            }
            if (i % 5 == 1)
                rq[i].zone = za;
            if (i % 7 == 2)
                rq[i].required_tags = mask;
        }
        mrt_lb_selection sa[M], sb[M];
        int rca[M];
        size_t okn = mrt_lb_select_burst(S, a, rq, M, 5, sa, rca);
        size_t okb = 0;
        for (int i = 0; i < M; i++) {
            int rcb = mrt_lb_select(S, b, &rq[i], 5, &sb[i]);
            EQ((uint32_t)rca[i], (uint32_t)rcb);
            okb += rcb == MRT_OK;
            if (rcb == MRT_OK) {
                EQ(sa[i].endpoint_id, sb[i].endpoint_id);
                EQ(sa[i].flags, sb[i].flags);
                EQ(sa[i].strategy, sb[i].strategy);
            }
        }
        EQ(okn, okb);
        ck_assert_uint_gt(okn, 100); /* 40 endpoints x max 3: some hit the cap */
        /* keyless bursts too (everything is at its cap by now: same errors) */
        EQ(mrt_lb_select_burst(S, a, NULL, 5, 5, sa, rca), 0);
        for (int i = 0; i < 5; i++)
            EQ((uint32_t)rca[i], (uint32_t)mrt_lb_select(S, b, NULL, 5, &sb[i]));
        mrt_lb_shard_destroy(a);
        mrt_lb_shard_destroy(b);
        mrt_lb_snapshot_free(S);
        mrt_lb_registry_destroy(r);
    }
}
END_TEST

/* ------------------------------------------------------------------ allocations */

START_TEST(no_allocation_per_select)
{
    if (mrt_alloc_counting_enable() != MRT_OK)
        MRT_SKIP("alloc-count",
                 "sanitizer builds allocate through libc, which jemalloc's hook cannot count");
    for (int st = 0; st < MRT_LB_STRATEGY_COUNT; st++) {
        mrt_lb_config c;
        mrt_lb_config_default(&c);
        c.strategy = (mrt_lb_strategy)st;
        c.max_connections = 4;
        mrt_lb_registry *r;
        OK(mrt_lb_registry_create(NULL, &c, &r));
        const char *tags[2] = { "gpu", "ssd" };
        for (uint32_t i = 0; i < 64; i++) {
            mrt_lb_endpoint_spec s;
            uint8_t id[32];
            node(id, i);
            mrt_lb_endpoint_spec_init(&s, id);
            s.zone = (i & 1) ? "a" : "b";
            s.tags = tags;
            s.ntags = 1 + (i % 3 == 0);
            OK(mrt_lb_registry_add(r, &s, NULL));
        }
        uint64_t mask;
        OK(mrt_lb_registry_declare_filter(r, tags, 2, &mask));
        uint16_t za;
        OK(mrt_lb_registry_zone(r, "a", &za));
        mrt_lb_snapshot *S;
        OK(mrt_lb_registry_compile(r, 0, NULL, &S));
        mrt_lb_shard *sh;
        OK(mrt_lb_shard_create(NULL, 5, &sh));
        OK(mrt_lb_shard_adopt(sh, S));
        uint64_t key = 99;
        mrt_lb_request rq;
        mrt_lb_request_init(&rq);
        mrt_alloc_counts before = mrt_alloc_counts_now();
        for (int i = 0; i < 20000; i++) {
            rq.zone = (i & 1) ? za : MRT_LB_ZONE_NONE;
            rq.required_tags = (i & 2) ? mask : 0;
            rq.routing_key = (i & 4) ? &key : NULL;
            rq.routing_key_len = (i & 4) ? 8 : 0;
            key++;
            mrt_lb_selection sel;
            OK(mrt_lb_select(S, sh, &rq, (uint64_t)i, &sel));
            OK(mrt_lb_complete(sh, &sel, (i % 7) != 0, 1000, (uint64_t)i));
        }
        mrt_alloc_counts after = mrt_alloc_counts_now();
        ck_assert_msg(after.allocs == before.allocs, "strategy %s allocated %lu times",
                      mrt_lb_strategy_name((mrt_lb_strategy)st),
                      (unsigned long)(after.allocs - before.allocs));
        mrt_lb_shard_destroy(sh);
        mrt_lb_snapshot_free(S);
        mrt_lb_registry_destroy(r);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("balancer_strategies");
    TCase *tc = tcase_create("strategies");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, wrr_nginx_sequence);
    tcase_add_test(tc, wrr_long_run_shares_exact);
    tcase_add_test(tc, wrr_flat_and_quantized);
    tcase_add_test(tc, weighted_random_distribution);
    tcase_add_test(tc, random_uniform);
    tcase_add_test(tc, power_of_two_choices);
    tcase_add_test(tc, least_connections_is_min);
    tcase_add_test(tc, weighted_least_connections_is_min);
    tcase_add_test(tc, least_latency_is_min);
    tcase_add_test(tc, least_load_order);
    tcase_add_test(tc, adaptive_branches);
    tcase_add_test(tc, burst_equals_sequential);
    tcase_add_test(tc, no_allocation_per_select);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
