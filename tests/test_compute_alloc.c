/*
 * The whole event path allocates nothing in steady state, counted end to
 * end on every thread (jemalloc's hook is process-wide): injection from
 * the main thread, delivery to a source daemon, the shard's balancer
 * selection over the set, the cross-shard send, delivery to a worker, the
 * completion back to the selecting shard, the buffer returns, egress and
 * its returns.
 */
#include "test_compute_common.h"

enum { WORKERS = 2, WARM = 2000, N = 20000 };

/*
 * The counted phase runs no Check assertion: each one records its location
 * with a strdup and a malloc, which the process-wide count would charge to
 * the event path. Failures are kept here and asserted afterwards.
 */
typedef struct quiet {
    int bad_rc;
    bool expired;
} quiet;

static void quiet_inject(mrt_compute *c, mrt_compute_ref d, uint64_t v, tc_egress *eg, quiet *q)
{
    mrt_wait w = mrt_wait_begin();
    int rc;
    while ((rc = mrt_compute_inject(c, d, &v, sizeof v)) == MRT_SHARD_EFULL ||
           rc == MRT_SVC_EPOOL) {
        if (mrt_wait_expired(&w)) {
            q->expired = true;
            return;
        }
        if (mrt_compute_egress_poll(c, tc_on_egress, eg, 256) == 0)
            sched_yield();
    }
    if (rc != MRT_OK && q->bad_rc == MRT_OK)
        q->bad_rc = rc;
}

static void quiet_egress_until(mrt_compute *c, tc_egress *eg, uint64_t target, quiet *q)
{
    mrt_wait w = mrt_wait_begin();
    while (eg->total < target && !q->expired) {
        if (mrt_wait_expired(&w))
            q->expired = true;
        else if (mrt_compute_egress_poll(c, tc_on_egress, eg, 256) == 0)
            sched_yield();
    }
}

START_TEST(event_path_allocates_nothing)
{
    if (mrt_alloc_counting_enable() != MRT_OK)
        MRT_SKIP("alloc-count", "sanitizer builds allocate through libc, which jemalloc's hook cannot count");
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type relay = tc_type("relay", 1);
    uint16_t tr;
    ck_assert_int_eq(mrt_compute_register_type(c, &relay, &tr), MRT_OK);
    tc_start(rt);
    mrt_compute_ref src, w[WORKERS];
    ck_assert_int_eq(mrt_compute_spawn(c, tr, 0, NULL, NULL, 0, &src), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, src, MRT_COMPUTE_TO_SET, src), MRT_OK);
    for (unsigned i = 0; i < WORKERS; i++) {
        ck_assert_int_eq(mrt_compute_spawn(c, tr, (uint16_t)i, NULL, NULL, 0, &w[i]), MRT_OK);
        ck_assert_int_eq(mrt_compute_subscribe(c, w[i], MRT_COMPUTE_TO_EGRESS, w[i]), MRT_OK);
        ck_assert_int_eq(mrt_compute_set_add(c, w[i], 0), MRT_OK);
    }
    ck_assert_int_eq(mrt_runtime_control_tick(rt, false), 1);

    /* Until shard 0 adopted the set's snapshot its selections fail: probe until one routes. */
    tc_egress eg;
    memset(&eg, 0, sizeof eg);
    mrt_compute_stats s;
    uint64_t probes = 0;
    mrt_wait wt = mrt_wait_begin();
    for (;;) {
        ck_assert_int_eq(mrt_compute_stats_get(c, 0, &s), MRT_OK);
        if (s.routed_set > 0)
            break;
        MRT_WAIT_CHECK(&wt, "shard 0 to route to the set");
        uint64_t seq = 0;
        tc_inject_eg(c, src, &seq, sizeof seq, &eg);
        probes++;
        MRT_WAIT_UNTIL(mrt_compute_stats_get(c, 0, &s) == MRT_OK &&
                           s.routed_set + s.handed_back == probes,
                       "the outcome of probe %llu", (unsigned long long)probes);
    }
    /* Warm up: rings connected, pools and thread caches primed. */
    for (uint64_t k = 1; k <= WARM; k++)
        tc_inject_eg(c, src, &k, sizeof k, &eg);
    tc_egress_until(c, &eg, WARM + s.routed_set);
    uint64_t base = eg.total;

    quiet q = { .bad_rc = MRT_OK, .expired = false };
    mrt_alloc_counts before = mrt_alloc_counts_now();
    for (uint64_t k = 1; k <= N && !q.expired; k++)
        quiet_inject(c, src, WARM + k, &eg, &q);
    quiet_egress_until(c, &eg, base + N, &q);
    mrt_alloc_counts after = mrt_alloc_counts_now();
    ck_assert_msg(!q.expired, "hang guard: the counted events did not all come out of egress "
                              "(%llu of %d)", (unsigned long long)(eg.total - base), N);
    ck_assert_msg(q.bad_rc == MRT_OK, "inject: %s", mrt_strerror(q.bad_rc));
    ck_assert_uint_eq(eg.total - base, N);
    ck_assert_uint_eq(after.allocs - before.allocs, 0);
    ck_assert_uint_eq(after.bytes - before.bytes, 0);

    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    mrt_compute_stats t = tc_totals(rt);
    ck_assert_uint_eq(t.completions, t.routed_set); /* every selection came back ... */
    ck_assert_uint_eq(t.inflight, 0);               /* ... none left reserved */
    ck_assert_uint_eq(t.buffers_out, 0);
    ck_assert_uint_eq(eg.bad_chain, 0);
    ck_assert_uint_eq(eg.out_of_order, 0);
    for (unsigned i = 0; i < WORKERS; i++)
        ck_assert_msg(tc_count_of(&eg, w[i].id) > N / 4, "worker %u got %llu", i,
                      (unsigned long long)tc_count_of(&eg, w[i].id));
    mrt_runtime_destroy(rt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("compute_alloc");
    TCase *tc = tcase_create("steady_state");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, event_path_allocates_nothing);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
