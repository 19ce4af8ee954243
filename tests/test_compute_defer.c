/*
 * Compute under backpressure: a daemon that forwards every event, sixteen
 * times over, to a daemon on another shard whose ring (16 slots) is full
 * most of the time. Its outputs are deferred, its own input is pushed back
 * when the deferral queue could not take a whole delivery's outputs, and
 * nothing is lost: every output arrives, in order, with valid chains,
 * drained with daemon-produced traffic still in flight.
 */
#include "test_compute_common.h"

START_TEST(forward_into_full_ring_loses_nothing)
{
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 16);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type fan = tc_type("fan", 16), relay = tc_type("relay", 1);
    uint16_t tf, tr;
    ck_assert_int_eq(mrt_compute_register_type(c, &fan, &tf), MRT_OK);
    ck_assert_int_eq(mrt_compute_register_type(c, &relay, &tr), MRT_OK);
    tc_start(rt);
    mrt_compute_ref f, k;
    uint32_t sixteen = 16;
    ck_assert_int_eq(mrt_compute_spawn(c, tf, 0, NULL, &sixteen, sizeof sixteen, &f), MRT_OK);
    ck_assert_int_eq(mrt_compute_spawn(c, tr, 1, NULL, NULL, 0, &k), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, f, MRT_COMPUTE_TO_DAEMON, k), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, k, MRT_COMPUTE_TO_EGRESS, k), MRT_OK);

    /* Inject until both the deferral and the push-back have happened (and a floor). */
    tc_egress eg;
    memset(&eg, 0, sizeof eg);
    uint64_t injected = 0;
    mrt_wait w = mrt_wait_begin();
    for (;;) {
        mrt_compute_stats s0;
        ck_assert_int_eq(mrt_compute_stats_get(c, 0, &s0), MRT_OK);
        if (injected >= 2000 && s0.deferred > 0 && s0.pushed_back > 0)
            break;
        MRT_WAIT_CHECK(&w, "deferrals and push-backs on shard 0 (%llu deferred, %llu pushed "
                           "back, %llu injected)", (unsigned long long)s0.deferred,
                       (unsigned long long)s0.pushed_back, (unsigned long long)injected);
        uint8_t p[24] = { 0 };
        memcpy(p, &injected, 8);
        tc_inject_eg(c, f, p, sizeof p, &eg);
        injected++;
    }
    /* Stop with traffic in flight: the drain waits for deferred and held events. */
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    mrt_compute_stats s = tc_totals(rt);
    ck_assert_uint_eq(s.injected, injected);
    ck_assert_uint_eq(s.handed_back, 0);
    ck_assert_uint_eq(s.daemon_errors, 0);
    ck_assert_uint_eq(s.delivered, injected + 16 * injected);
    ck_assert_uint_eq(s.routed_daemon, 16 * injected);
    ck_assert_uint_eq(s.egressed, 16 * injected);
    ck_assert_uint_eq(s.buffers_out, 0);
    /* What the test polled plus what the stop drained: every output, none handed back. */
    ck_assert_uint_eq(eg.total + mrt_compute_egress_unclaimed(c), 16 * injected);
    ck_assert_uint_eq(eg.bad_chain, 0);
    ck_assert_uint_eq(eg.out_of_order, 0);
    mrt_runtime_destroy(rt);
}
END_TEST

/* The same with the application draining egress to the end: every chain validates. */
START_TEST(forward_into_full_ring_chains_validate)
{
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 16);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type fan = tc_type("fan", 16), relay = tc_type("relay", 1);
    uint16_t tf, tr;
    ck_assert_int_eq(mrt_compute_register_type(c, &fan, &tf), MRT_OK);
    ck_assert_int_eq(mrt_compute_register_type(c, &relay, &tr), MRT_OK);
    tc_egress eg;
    memset(&eg, 0, sizeof eg);
    ck_assert_int_eq(mrt_compute_set_egress_drain(c, tc_on_egress, &eg), MRT_OK);
    tc_start(rt);
    mrt_compute_ref f, k;
    uint32_t sixteen = 16;
    ck_assert_int_eq(mrt_compute_spawn(c, tf, 0, NULL, &sixteen, sizeof sixteen, &f), MRT_OK);
    ck_assert_int_eq(mrt_compute_spawn(c, tr, 1, NULL, NULL, 0, &k), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, f, MRT_COMPUTE_TO_DAEMON, k), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, k, MRT_COMPUTE_TO_EGRESS, k), MRT_OK);
    enum { N = 3000 };
    for (uint64_t i = 0; i < N; i++) {
        uint8_t p[24] = { 0 };
        memcpy(p, &i, 8);
        tc_inject_eg(c, f, p, sizeof p, &eg);
    }
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK); /* drains egress into tc_on_egress */
    ck_assert_uint_eq(eg.total, 16 * N);
    ck_assert_uint_eq(eg.nfrom, 1);
    ck_assert_uint_eq(eg.bad_chain, 0);
    ck_assert_uint_eq(eg.out_of_order, 0);
    ck_assert_uint_eq(eg.last_seq[0], N - 1);
    ck_assert_uint_eq(mrt_compute_egress_unclaimed(c), 0);
    mrt_compute_stats s = tc_totals(rt);
    ck_assert_uint_eq(s.handed_back, 0);
    ck_assert_uint_eq(s.buffers_out, 0);
    mrt_runtime_destroy(rt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("compute_defer");
    TCase *tc = tcase_create("compute_defer");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, forward_into_full_ring_loses_nothing);
    tcase_add_test(tc, forward_into_full_ring_chains_validate);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
