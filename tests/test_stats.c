/*
 * Observation: the per-shard stats block is read whole while shards write
 * it (torn-read test), the histograms count what the pipeline did, and the
 * hosts' counters are real and match the pipeline's own counts.
 */
#include "meshrt/mrt_runtime.h"

#include "check_main.h"

#include <pthread.h>
#include <stdatomic.h>

/* A runtime of 2 shards (unpinned beyond the machine's CPUs) running the built-in workload. */
static mrt_runtime *start_rt(mrt_workload **wl)
{
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.allow_unbound = true;
    cfg.shards = 2;
    cfg.idle_sleep_max_us = 0;
    cfg.stall_ms = 0; /* a loaded machine deschedules shards; stalls are test_stall's subject */
    char err[256] = "";
    mrt_runtime *rt = NULL;
    ck_assert_msg(mrt_runtime_create(&cfg, &rt, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_msg(mrt_workload_create(rt, wl, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_msg(mrt_runtime_start(rt, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_msg(mrt_workload_start(*wl, err, sizeof err) == MRT_OK, "%s", err);
    return rt;
}

static void poll_until(mrt_workload *wl, uint64_t target)
{
    mrt_wait wt = mrt_wait_begin();
    mrt_workload_stats t;
    for (;;) {
        (void)mrt_workload_poll(wl, 256);
        mrt_workload_stats_get(wl, -1, &t);
        ck_assert_msg(t.problems == 0, "the workload found inconsistencies");
        if (t.drained >= target)
            return;
        MRT_WAIT_CHECK(&wt, "%llu outputs (%llu so far)", (unsigned long long)target,
                       (unsigned long long)t.drained);
    }
}

static void stop_and_judge(mrt_workload *wl, mrt_workload_stats *t)
{
    ck_assert_int_eq(mrt_workload_stop(wl), MRT_OK);
    char problems[2048];
    ck_assert_msg(mrt_workload_verdict(wl, problems, sizeof problems) == 0, "%s", problems);
    mrt_workload_stats_get(wl, -1, t);
}

/* ---- torn reads ------------------------------------------------------------ */

#define TORN_READS 200000u
#define TORN_MOVES 200u

typedef struct reader {
    mrt_runtime *rt;
    _Atomic bool done;
    uint64_t reads, broken, progressed, versions_back;
    char first[256];
} reader;

/*
 * Invariants the shard keeps at every instant it publishes, across fields
 * that different modules count at different moments of an iteration: a
 * reader that mixed two publications would see them broken.
 */
static bool block_ok(const mrt_runtime_shard_stats *b, char *why, size_t len)
{
    const mrt_svc_stats *v = &b->svc;
    if (v->received < v->delivered + v->deliver_errors) {
        snprintf(why, len, "received %llu < delivered %llu + errors %llu",
                 (unsigned long long)v->received, (unsigned long long)v->delivered,
                 (unsigned long long)v->deliver_errors);
        return false;
    }
    /* Compute derives its counts from services' in its hook, right before the block is composed. */
    if (b->compute.delivered != v->delivered || b->compute.completions != v->completions) {
        snprintf(why, len, "compute delivered %llu / completions %llu vs services %llu / %llu",
                 (unsigned long long)b->compute.delivered,
                 (unsigned long long)b->compute.completions, (unsigned long long)v->delivered,
                 (unsigned long long)v->completions);
        return false;
    }
    /* Every delivery ran the daemon once (processed may exceed it by failed stampings only). */
    if (b->hosts.processed < v->delivered ||
        b->hosts.processed > v->delivered + v->deliver_errors) {
        snprintf(why, len, "hosts processed %llu vs delivered %llu",
                 (unsigned long long)b->hosts.processed, (unsigned long long)v->delivered);
        return false;
    }
    if (b->msgs_in[MRT_RT_MSG_EVENT] != v->received || b->lb.selects < v->routed) {
        snprintf(why, len, "kinds/selects vs services");
        return false;
    }
    return true;
}

static void *read_loop(void *arg)
{
    reader *r = arg;
    unsigned n = mrt_runtime_shards(r->rt);
    uint64_t last_version[2] = { 0, 0 }, last_delivered[2] = { 0, 0 };
    /* At least TORN_READS reads, and on until the counters moved under it often enough. */
    for (uint64_t k = 0; k < TORN_READS || r->progressed < TORN_MOVES; k++) {
        unsigned i = (unsigned)(k % n);
        mrt_runtime_shard_stats b;
        if (mrt_runtime_stats_read(r->rt, i, &b) != MRT_OK) {
            r->broken++;
            continue;
        }
        char why[200];
        if (!block_ok(&b, why, sizeof why) && r->broken++ == 0)
            snprintf(r->first, sizeof r->first, "shard %u version %llu: %s", i,
                     (unsigned long long)b.version, why);
        if (b.version < last_version[i])
            r->versions_back++;
        if (b.svc.delivered != last_delivered[i])
            r->progressed++;
        last_version[i] = b.version;
        last_delivered[i] = b.svc.delivered;
        r->reads++;
    }
    atomic_store(&r->done, true);
    return NULL;
}

START_TEST(torn_read_never_seen)
{
    mrt_workload *wl = NULL;
    mrt_runtime *rt = start_rt(&wl);
    ck_assert_uint_eq(mrt_runtime_shards(rt), 2);
    poll_until(wl, 1000); /* the pipeline runs before the reader starts */
    reader r = { .rt = rt };
    atomic_init(&r.done, false);
    pthread_t tid;
    ck_assert_int_eq(pthread_create(&tid, NULL, read_loop, &r), 0);
    mrt_wait wt = mrt_wait_begin();
    while (!atomic_load(&r.done)) {
        (void)mrt_workload_poll(wl, 256); /* keeps the pipeline moving under the reader */
        MRT_WAIT_CHECK(&wt, "the reader's %u reads", TORN_READS);
    }
    pthread_join(tid, NULL);
    mrt_workload_stats t;
    stop_and_judge(wl, &t);
    printf("torn_read_never_seen: %llu reads, %llu broken, %llu saw new deliveries\n",
           (unsigned long long)r.reads, (unsigned long long)r.broken,
           (unsigned long long)r.progressed);
    ck_assert_msg(r.broken == 0, "%llu of %llu reads broken; first: %s",
                  (unsigned long long)r.broken, (unsigned long long)r.reads, r.first);
    ck_assert_uint_ge(r.reads, TORN_READS);
    ck_assert_uint_eq(r.versions_back, 0);
    /* Not vacuous: the counters moved while they were read. */
    ck_assert_uint_ge(r.progressed, TORN_MOVES);
    mrt_workload_destroy(wl);
    mrt_runtime_destroy(rt);
}
END_TEST

/* ---- after a run: histograms and hosts -------------------------------------- */

typedef struct run_result {
    mrt_workload_stats t;
    mrt_runtime_shard_stats s[2];
    mrt_hist merged[MRT_RT_HIST_KINDS];
    mrt_hist per[2][MRT_RT_HIST_KINDS];
} run_result;

static void run_pipeline(run_result *res, uint64_t events)
{
    mrt_workload *wl = NULL;
    mrt_runtime *rt = start_rt(&wl);
    poll_until(wl, events);
    stop_and_judge(wl, &res->t);
    for (unsigned i = 0; i < 2; i++) {
        ck_assert_int_eq(mrt_runtime_stats_read(rt, i, &res->s[i]), MRT_OK);
        for (unsigned k = 0; k < MRT_RT_HIST_KINDS; k++)
            ck_assert_int_eq(
                mrt_runtime_hist_read(rt, (int)i, (mrt_runtime_hist_kind)k, &res->per[i][k]),
                MRT_OK);
    }
    for (unsigned k = 0; k < MRT_RT_HIST_KINDS; k++)
        ck_assert_int_eq(mrt_runtime_hist_read(rt, -1, (mrt_runtime_hist_kind)k, &res->merged[k]),
                         MRT_OK);
    mrt_hist h;
    ck_assert_int_eq(mrt_runtime_hist_read(rt, 2, MRT_RT_HIST_ITER_BUSY, &h), MRT_EINVAL);
    ck_assert_int_eq(mrt_runtime_hist_read(rt, -2, MRT_RT_HIST_ITER_BUSY, &h), MRT_EINVAL);
    ck_assert_int_eq(mrt_runtime_hist_read(rt, 0, MRT_RT_HIST_KINDS, &h), MRT_EINVAL);
    mrt_runtime_shard_stats b;
    ck_assert_int_eq(mrt_runtime_stats_read(rt, 2, &b), MRT_EINVAL);
    mrt_workload_destroy(wl);
    mrt_runtime_destroy(rt);
}

static uint64_t bucket_sum(const mrt_hist *h)
{
    uint64_t n = 0;
    for (unsigned b = 0; b < MRT_HIST_BUCKETS; b++)
        n += h->bucket[b];
    return n;
}

START_TEST(histograms_count_the_events)
{
    run_result res;
    run_pipeline(&res, 20000);
    const mrt_workload_stats *t = &res.t;
    /* Every event a shard sent another (workers' and aggregators' inputs) was timed once. */
    const mrt_hist *rd = &res.merged[MRT_RT_HIST_ROUTE_DELIVER];
    ck_assert_uint_eq(rd->count, t->delivered[MRT_WL_WORKER] + t->delivered[MRT_WL_AGGREGATOR]);
    /* One round trip per completed selection. */
    ck_assert_uint_eq(res.merged[MRT_RT_HIST_COMPLETION_RTT].count, t->completions);
    ck_assert_uint_eq(t->completions, t->routed_set);
    uint64_t iterations = 0, rtt_sum = 0;
    for (unsigned i = 0; i < 2; i++) {
        iterations += res.s[i].shard.iterations;
        rtt_sum += res.s[i].completion_rtt_sum_ns;
    }
    ck_assert_uint_eq(rtt_sum, res.merged[MRT_RT_HIST_COMPLETION_RTT].sum);
    ck_assert_uint_gt(res.merged[MRT_RT_HIST_ITER_BUSY].count, 0);
    ck_assert_uint_le(res.merged[MRT_RT_HIST_ITER_BUSY].count, iterations);
    ck_assert_uint_gt(res.merged[MRT_RT_HIST_RING_OCCUPANCY].count, 0);
    for (unsigned k = 0; k < MRT_RT_HIST_KINDS; k++) {
        const mrt_hist *m = &res.merged[k];
        ck_assert_uint_eq(bucket_sum(m), m->count);
        ck_assert_uint_eq(res.per[0][k].count + res.per[1][k].count, m->count);
        ck_assert_uint_eq(res.per[0][k].sum + res.per[1][k].sum, m->sum);
        uint64_t p50 = mrt_hist_quantile(m, 0.5), p99 = mrt_hist_quantile(m, 0.99),
                 p999 = mrt_hist_quantile(m, 0.999);
        printf("%s: count %llu p50 %llu p99 %llu p99.9 %llu\n",
               mrt_runtime_hist_name((mrt_runtime_hist_kind)k), (unsigned long long)m->count,
               (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)p999);
        ck_assert_uint_le(p50, p99);
        ck_assert_uint_le(p99, p999);
        if (k != MRT_RT_HIST_RING_OCCUPANCY) { /* times: a later coarse clock, never equal */
            ck_assert_uint_gt(p50, 0);
            ck_assert_uint_gt(m->sum, 0);
        }
    }
}
END_TEST

START_TEST(host_stats_match_the_pipeline)
{
    run_result res;
    run_pipeline(&res, 20000);
    const mrt_workload_stats *t = &res.t;
    mrt_host_stats h = { 0 };
    uint64_t live = 0, hosted = 0, in_ev = 0, out_ev = 0, injected = 0, delivered = 0;
    for (unsigned i = 0; i < 2; i++) {
        const mrt_runtime_shard_stats *s = &res.s[i];
        ck_assert_uint_gt(s->version, 0);
        ck_assert_uint_gt(s->hosts.processed, 0); /* every shard hosts a stage of each kind */
        h.processed += s->hosts.processed;
        h.emitted += s->hosts.emitted;
        h.errors += s->hosts.errors;
        h.spills += s->hosts.spills;
        live += s->hosts_live;
        hosted += s->compute.hosted;
        in_ev += s->msgs_in[MRT_RT_MSG_EVENT];
        out_ev += s->msgs_out[MRT_RT_MSG_EVENT];
        injected += s->shard.injected;
        delivered += s->svc.delivered;
        ck_assert_uint_eq(s->stalls, 0); /* detector off: nothing reported */
        ck_assert_uint_eq(s->tsc_hz, mrt_tsc_hz());
        ck_assert_uint_ge(s->lb.selects, s->svc.routed);
    }
    uint64_t stages = 0;
    for (unsigned k = 0; k < MRT_WL_STAGES; k++)
        stages += t->delivered[k];
    ck_assert_uint_eq(h.processed, stages);
    ck_assert_uint_eq(h.processed, delivered);
    ck_assert_uint_eq(h.emitted, t->emitted);
    ck_assert_uint_eq(h.errors, 0);
    /* The daemons still hosted when the last block was published: every one spawned. */
    ck_assert_uint_eq(live, 2 * (2 + MRT_WORKLOAD_WORKERS_PER_SHARD));
    ck_assert_uint_eq(hosted, live);
    /* Every event a shard sent was received by one; the rest came in through ingress. */
    ck_assert_uint_eq(in_ev, out_ev + injected);
    ck_assert_uint_eq(injected, t->injected);
}
END_TEST

START_TEST(before_start_and_bad_arguments)
{
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.allow_unbound = true;
    cfg.shards = 2;
    char err[256];
    mrt_runtime *rt = NULL;
    ck_assert_int_eq(mrt_runtime_create(&cfg, &rt, err, sizeof err), MRT_OK);
    mrt_runtime_shard_stats b;
    memset(&b, 0xff, sizeof b);
    ck_assert_int_eq(mrt_runtime_stats_read(rt, 1, &b), MRT_OK);
    ck_assert_uint_eq(b.version, 0); /* never published */
    ck_assert_uint_eq(b.svc.delivered, 0);
    mrt_hist h;
    ck_assert_int_eq(mrt_runtime_hist_read(rt, -1, MRT_RT_HIST_ROUTE_DELIVER, &h), MRT_OK);
    ck_assert_uint_eq(h.count, 0);
    ck_assert_int_eq(mrt_runtime_stats_read(NULL, 0, &b), MRT_EINVAL);
    ck_assert_int_eq(mrt_runtime_stats_read(rt, 0, NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_runtime_hist_read(rt, 0, MRT_RT_HIST_ITER_BUSY, NULL), MRT_EINVAL);
    ck_assert_str_eq(mrt_runtime_msg_kind_name(MRT_RT_MSG_COMPLETION), "completion");
    ck_assert_ptr_null(mrt_runtime_msg_kind_name(MRT_RT_MSG_KINDS));
    ck_assert_str_eq(mrt_runtime_hist_name(MRT_RT_HIST_RING_OCCUPANCY), "ring_occupancy");
    mrt_runtime_destroy(rt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("stats");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, torn_read_never_seen);
    tcase_add_test(tc, histograms_count_the_events);
    tcase_add_test(tc, host_stats_match_the_pipeline);
    tcase_add_test(tc, before_start_and_bad_arguments);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
