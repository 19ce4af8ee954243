/*
 * The balancer-routed set: outputs of a daemon on each shard spread by
 * that shard's balancer over worker daemons on both shards; every
 * selection completes on the selecting shard (0 in flight after the
 * drain) under round robin, least connections and power of two, and every
 * strategy reaches every worker.
 */
#include "test_compute_common.h"

enum { WORKERS = 4, N = 4000 };

static void run_set(mrt_lb_strategy lb)
{
    mrt_runtime *rt = tc_runtime(2, lb, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type relay = tc_type("relay", 1);
    uint16_t tr;
    ck_assert_int_eq(mrt_compute_register_type(c, &relay, &tr), MRT_OK);
    tc_start(rt);
    mrt_compute_ref src[2], w[WORKERS];
    for (unsigned i = 0; i < 2; i++) {
        ck_assert_int_eq(mrt_compute_spawn(c, tr, (uint16_t)i, NULL, NULL, 0, &src[i]), MRT_OK);
        ck_assert_int_eq(mrt_compute_subscribe(c, src[i], MRT_COMPUTE_TO_SET, src[i]), MRT_OK);
    }
    for (unsigned i = 0; i < WORKERS; i++) {
        ck_assert_int_eq(mrt_compute_spawn(c, tr, MRT_COMPUTE_ANY_SHARD, NULL, NULL, 0, &w[i]),
                         MRT_OK);
        ck_assert_uint_eq(w[i].shard, i % 2); /* placement alternates: least hosted */
        ck_assert_int_eq(mrt_compute_subscribe(c, w[i], MRT_COMPUTE_TO_EGRESS, w[i]), MRT_OK);
        ck_assert_int_eq(mrt_compute_set_add(c, w[i], 0), MRT_OK);
    }
    mrt_compute_ref gone = { .id = 12345, .shard = 1 };
    ck_assert_int_eq(mrt_compute_set_add(c, gone, 0), MRT_CP_ENODAEMON);
    ck_assert_int_eq(mrt_runtime_control_tick(rt, false), 1); /* the set changed: published */
    ck_assert_int_eq(mrt_runtime_control_tick(rt, false), 0);

    /*
     * Until a shard adopted the snapshot its selections fail (no endpoints)
     * and the outputs are handed back: probe each source until one routes.
     */
    tc_egress eg;
    memset(&eg, 0, sizeof eg);
    uint64_t probes = 0;
    for (unsigned i = 0; i < 2; i++) {
        mrt_wait wt = mrt_wait_begin();
        mrt_compute_stats s;
        uint64_t mine = 0;
        for (;;) {
            ck_assert_int_eq(mrt_compute_stats_get(c, i, &s), MRT_OK);
            if (s.routed_set > 0)
                break;
            MRT_WAIT_CHECK(&wt, "shard %u to route to the set", i);
            uint64_t seq = 0;
            tc_inject_eg(c, src[i], &seq, sizeof seq, &eg);
            probes++;
            mine++;
            /* The probe's outcome, routed or handed back, before the next one. */
            MRT_WAIT_UNTIL(mrt_compute_stats_get(c, i, &s) == MRT_OK &&
                               s.routed_set + s.handed_back == mine,
                           "the outcome of probe %llu on shard %u", (unsigned long long)mine, i);
        }
    }
    mrt_compute_stats before = tc_totals(rt);
    for (uint64_t k = 1; k <= N; k++)
        for (unsigned i = 0; i < 2; i++)
            tc_inject_eg(c, src[i], &k, sizeof k, &eg);
    tc_egress_until(c, &eg, 2 * N + before.routed_set);
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    mrt_compute_stats s = tc_totals(rt);
    ck_assert_uint_eq(s.handed_back, before.handed_back); /* none after the adoption */
    ck_assert_uint_eq(s.routed_set, 2 * N + before.routed_set);
    ck_assert_uint_eq(s.routed_set + s.handed_back, 2 * N + probes);
    ck_assert_uint_eq(s.completions, s.routed_set); /* every selection completed ... */
    ck_assert_uint_eq(s.inflight, 0);               /* ... and none left reserved */
    ck_assert_uint_eq(s.buffers_out, 0);
    ck_assert_uint_eq(eg.bad_chain, 0);
    ck_assert_uint_eq(eg.nfrom, WORKERS);
    for (unsigned i = 0; i < WORKERS; i++)
        ck_assert_msg(tc_count_of(&eg, w[i].id) > 0, "%s: worker %u got nothing",
                      mrt_lb_strategy_name(lb), i);
    mrt_runtime_destroy(rt);
}

START_TEST(set_round_robin) { run_set(MRT_LB_ROUND_ROBIN); }
END_TEST
START_TEST(set_least_connections) { run_set(MRT_LB_LEAST_CONNECTIONS); }
END_TEST
START_TEST(set_power_of_two) { run_set(MRT_LB_POWER_OF_TWO); }
END_TEST

int main(void)
{
    Suite *s = suite_create("compute_set");
    TCase *tc = tcase_create("compute_set");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, set_round_robin);
    tcase_add_test(tc, set_least_connections);
    tcase_add_test(tc, set_power_of_two);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
