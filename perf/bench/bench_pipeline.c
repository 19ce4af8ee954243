/*
 * meshrt-bench pipeline: one event through the compute-shaped path, three ways.
 *
 *   one_<len>      ONE thread drives both shards by hand (mrt_shard_poll_once
 *                  on shard 0, then shard 1). Each shard's per-iteration hook
 *                  produces events: mrt_svc_send_routed (daemon from the
 *                  selection, round robin over the two shards' workers) ->
 *                  ring (or the diagonal) -> worker host delivers -> buffer
 *                  returned and completion back. Timed with the thread's CPU
 *                  clock: the per-event cost with no scheduler in it (the
 *                  stable figure on a shared 2-core machine).
 *   shard_<len>    the same path on two pinned shard threads (mrt_shard_run),
 *                  idle sleep off (busy polling), no third busy thread: each
 *                  shard's hook produces. Wall time from the start signal to
 *                  the last delivery, on the mesh's TSC clock.
 *   ingress_<len>  the typical embedding path: an injector thread
 *                  (mrt_svc_inject_event, at most 256 events in the pipeline)
 *                  -> shard 0's ingress -> router daemon, whose output
 *                  callback sends routed -> worker -> completion, default idle
 *                  policy (sleeps up to 100 us). Three busy threads: on a
 *                  2-CPU machine this measures the scheduler as much as the
 *                  pipeline.
 *   *_unrouted_<len>  one_ and shard_ with mrt_svc_send to the same alternating
 *                  shards: no selection, no in-flight slot, no completion.
 *                  routing share = 1 - routed/unrouted, paired per repetition
 *                  (selection + completion: what routing costs in all).
 *   *_routed_local_<len>  one_ and shard_ with the same selection as the
 *                  routed send (this shard's balancer, mrt_lb_select on its
 *                  adopted snapshot with the same NULL request and the shard's
 *                  clock, the daemon read from node_id bytes 0..7 LE), completed
 *                  at once on the sending shard (mrt_lb_complete, ok, latency
 *                  0: what meshrt did before completions travelled back), then
 *                  mrt_svc_send to the selected shard and daemon.
 *                  completion share = 1 - routed/routed_local, paired per
 *                  repetition: the in-flight slot and the completion travelling
 *                  back and being applied, the selection cancelled out.
 * Baselines in the same run, measured the same way: raw_ring_32B_1t (one
 * thread enqueues a burst of 32 messages of 32 bytes and dequeues it, CPU
 * clock), raw_ring_32B (SPSC between the two pinned CPUs, wall clock) and
 * raw_ring_32B_duplex (two pinned threads, each producing to the other and
 * consuming its inbound ring, as the shards do), and the event floor,
 * event_ring_64B_1t and event_ring_64B: the 16 B event inline in a 64-byte
 * message handed to a daemon-like function, nothing else (pipeline_raw.h).
 * Latency: one event in flight through the ingress path, 16 B. Allocations
 * per event in a separate pass in a forked child (mrt_bench_counted), never
 * in a timed run.
 *
 * --only VARIANT [--len L]: repeat one variant (--reps times, each printed),
 * for profiling: one, one_unrouted, one_routed_local, shard, shard_unrouted,
 * shard_routed_local, ingress, raw_1t, raw, raw_duplex, event_1t, event.
 */
#include "pipeline.h"
#include "pipeline_raw.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the suite ------------------------------------------------------------------ */

static const uint32_t lens[] = { 16, 64, 1024 };
#define NLEN (sizeof lens / sizeof lens[0])

/* Each routed variant v is followed by its twins: v + 1 unrouted, v + 2 routed_local. */
enum { V_ONE, V_ONE_U, V_ONE_L, V_SHARD, V_SHARD_U, V_SHARD_L, V_INGRESS, V_COUNT };
#define V_UNROUTED(v) ((v) + 1)
#define V_LOCAL(v) ((v) + 2)
static const char *const vname[V_COUNT] = { "one", "one_unrouted", "one_routed_local", "shard",
                                            "shard_unrouted", "shard_routed_local", "ingress" };
static const pl_mode vmode[V_COUNT] = { PL_ONE, PL_ONE, PL_ONE, PL_SHARD, PL_SHARD, PL_SHARD,
                                        PL_INGRESS };
static const pl_route vroute[V_COUNT] = { RT_ROUTED, RT_UNROUTED, RT_LOCAL, RT_ROUTED,
                                          RT_UNROUTED, RT_LOCAL, RT_ROUTED };


typedef struct pl_setup {
    const mrt_topo *topo;
    mrt_cpu cpu[NSH];
    bool pinned;
    bool idle_wake; /* --idle-wake: mrt_mesh_config.idle_wake in every run */
    uint64_t events, ingress_events, raw_events;
} pl_setup;

static pl_result run_variant(const pl_setup *s, int v, uint32_t len)
{
    return pl_pipeline_once(vmode[v], s->topo, s->cpu, s->pinned, s->idle_wake, vroute[v], len,
                         vmode[v] == PL_INGRESS ? s->ingress_events : s->events, NULL);
}

static double raw_variant(const pl_setup *s, int r, double *oncpu)
{
    return pl_raw_mops((pl_raw_kind)r, s->topo, s->cpu, s->pinned, s->raw_events, oncpu);
}

static double mops_of(const pl_result *r)
{
    return r->ok && r->ns ? (double)r->events / (double)r->ns * 1e3 : 0;
}

/* In the forked child: allocations per event of the routed variants (7 figures). */
static void count_allocs(void *arg, double *out)
{
    const pl_setup *s = arg;
    int k = 0;
    for (unsigned l = 0; l < NLEN; l++)
        for (int v = V_ONE; v <= V_SHARD; v += V_SHARD - V_ONE) {
            pl_result r = pl_pipeline_once(vmode[v], s->topo, s->cpu, s->pinned, s->idle_wake, RT_ROUTED, lens[l],
                                        s->events, NULL);
            out[k++] = r.ok && r.events ? (double)r.allocs / (double)r.events : -1;
        }
    pl_result r = pl_pipeline_once(PL_INGRESS, s->topo, s->cpu, s->pinned, s->idle_wake, RT_ROUTED, 16,
                                s->ingress_events, NULL);
    out[k] = r.ok && r.events ? (double)r.allocs / (double)r.events : -1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Median over repetitions of a per-repetition quantity. */
static double med_of(const double *v, int reps)
{
    double tmp[64];
    memcpy(tmp, v, sizeof(double) * (size_t)reps);
    return mrt_bench_median(tmp, reps);
}

/*
 * --only latency: one event in flight through ingress, `n` events; prints
 * p50/p90/p99/p99.9/max and writes every sample (ns, sorted) to `path`.
 */
static int only_latency(const pl_setup *s, uint32_t len, uint64_t n, const char *path)
{
    if (n < 1000)
        n = 1000;
    uint64_t *lat = calloc(n, sizeof *lat);
    if (lat == NULL)
        return 1;
    pl_result r = pl_pipeline_once(PL_INGRESS, s->topo, s->cpu, s->pinned, s->idle_wake, RT_ROUTED, len, n, lat);
    int rc = r.ok ? 0 : 1;
    if (r.ok) {
        qsort(lat, n, sizeof *lat, cmp_u64);
        printf("latency_%uB events %llu p50 %llu p90 %llu p99 %llu p99.9 %llu max %llu ns\n", len,
               (unsigned long long)n, (unsigned long long)lat[n / 2],
               (unsigned long long)lat[n * 9 / 10], (unsigned long long)lat[n * 99 / 100],
               (unsigned long long)lat[n * 999 / 1000], (unsigned long long)lat[n - 1]);
        FILE *f = path ? fopen(path, "w") : NULL;
        if (path && f == NULL) {
            fprintf(stderr, "meshrt-bench pipeline: cannot write %s\n", path);
            rc = 1;
        }
        for (uint64_t k = 0; f && k < n; k++)
            fprintf(f, "%llu\n", (unsigned long long)lat[k]);
        if (f && fclose(f) != 0)
            rc = 1;
    } else {
        fprintf(stderr, "meshrt-bench pipeline: latency pass failed\n");
    }
    free(lat);
    return rc;
}

static int pl_usage(const char *why, const char *arg)
{
    fprintf(stderr, "meshrt-bench pipeline: %s%s%s\n", why, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: meshrt-bench pipeline [--only one|one_unrouted|one_routed_local|shard|"
                    "shard_unrouted|shard_routed_local|ingress|raw_1t|raw|raw_duplex|event_1t|event|"
                    "latency "
                    "[--len 0..4096] [--samples FILE (latency)]] [--idle-wake]\n");
    return 2;
}

/* The suite's options. */
typedef struct pl_args {
    const char *only;         /* --only: one variant, each repetition printed */
    const char *samples_path; /* --samples (with --only latency) */
    bool idle_wake;
    uint32_t only_len;
    int only_v, only_r;       /* the --only variant: pipeline or raw ring (-1: neither) */
    bool only_lat;
} pl_args;

static int parse_args(int argc, char **argv, pl_args *a)
{
    memset(a, 0, sizeof *a);
    a->only_len = 16;
    a->only_v = a->only_r = -1;
    for (int i = 1; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (strcmp(argv[i], "--only") == 0 && has_value) {
            a->only = argv[++i];
        } else if (strcmp(argv[i], "--len") == 0 && has_value) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || end == argv[i] || v > 4096)
                return pl_usage("--len must be a payload size 0..4096, not", argv[i]);
            a->only_len = (uint32_t)v;
        } else if (strcmp(argv[i], "--samples") == 0 && has_value) {
            a->samples_path = argv[++i];
        } else if (strcmp(argv[i], "--idle-wake") == 0) {
            a->idle_wake = true;
        } else if (strcmp(argv[i], "--only") == 0 || strcmp(argv[i], "--len") == 0 ||
                   strcmp(argv[i], "--samples") == 0) {
            return pl_usage("missing value after", argv[i]);
        } else {
            return pl_usage("unknown option", argv[i]);
        }
    }
    for (int v = 0; a->only != NULL && v < V_COUNT; v++)
        if (strcmp(a->only, vname[v]) == 0)
            a->only_v = v;
    for (int r = 0; a->only != NULL && r < PL_RAW_COUNT; r++)
        if (strcmp(a->only, pl_raw_only[r]) == 0)
            a->only_r = r;
    a->only_lat = a->only != NULL && strcmp(a->only, "latency") == 0;
    if (a->only != NULL && a->only_v < 0 && a->only_r < 0 && !a->only_lat)
        return pl_usage("no such variant for --only:", a->only);
    if (a->samples_path != NULL && !a->only_lat)
        return pl_usage("--samples goes with --only latency", NULL);
    return 0;
}

/* Two CPUs of this NUMA node when there are (pinned), and the events per run. */
static void setup(const mrt_bench_opts *o, bool idle_wake, const mrt_topo *topo, pl_setup *s)
{
    static mrt_topo_selection sel;
    memset(s, 0, sizeof *s);
    s->idle_wake = idle_wake;
    if (topo != NULL && mrt_topo_select_node(topo, mrt_topo_current_node(topo), &sel) == MRT_OK &&
        sel.count >= 2) {
        s->cpu[0] = sel.cpus[0];
        s->cpu[1] = sel.cpus[1];
        s->pinned = true;
    }
    s->topo = topo;
    s->events = mrt_bench_iters(o, 400000);
    s->ingress_events = mrt_bench_iters(o, 100000);
    s->raw_events = mrt_bench_iters(o, 2000000);
    if (s->events < 64)
        s->events = 64;
    if (s->ingress_events < 64)
        s->ingress_events = 64;
    if (s->raw_events < 64)
        s->raw_events = 64;
}

/* --only VARIANT: for profiling, every repetition printed; 1 when a run failed. */
static int run_only(const pl_setup *s, const pl_args *a, int reps)
{
    int rc = 0;
    for (int k = 0; k < reps; k++) {
        if (a->only_r >= 0) {
            double oc;
            double m = raw_variant(s, a->only_r, &oc);
            printf("%s %.2f mops (%.2f ns/msg) on-cpu %.2f\n", pl_raw_name[a->only_r], m, 1e3 / m, oc);
            continue;
        }
        int v = a->only_v;
        pl_result r = run_variant(s, v, a->only_len);
        double m = mops_of(&r);
        printf("%s_%uB %.3f mops (%.1f ns/event) events %llu refused %llu lost %llu "
               "on-cpu %.2f%s\n", vname[v], a->only_len, m, m > 0 ? 1e3 / m : 0,
               (unsigned long long)r.events, (unsigned long long)r.refused,
               (unsigned long long)r.lost, vmode[v] == PL_SHARD ? r.oncpu : 1.0,
               r.ok ? "" : " FAILED");
        rc |= !r.ok;
    }
    return rc;
}

/* What the suite measured, per repetition: the input of every figure it reports. */
typedef struct pl_suite {
    int reps;
    double mops[V_COUNT][NLEN][64], raw[PL_RAW_COUNT][64];
    /* Thread CPU time / wall time of each run (1 on one thread). */
    double oncpu[V_COUNT][NLEN][64], raw_oncpu[PL_RAW_COUNT][64];
    double al[MRT_BENCH_MAX_COUNTS];                         /* allocations per event, or -1 */
    uint64_t *lat;                                           /* [nlat] latency pass, or NULL */
    uint64_t nlat;
    bool lat_ok;
} pl_suite;

/* Every variant, interleaved per repetition, then the latency pass and the allocation count. */
static bool measure(const mrt_bench_opts *o, const pl_setup *s, pl_suite *m)
{
    bool ok = true;
    /* Interleaved per repetition: drift on a shared machine hits every variant alike. */
    for (int k = 0; k < m->reps; k++) {
        for (int r = 0; r < PL_RAW_COUNT; r++)
            m->raw[r][k] = raw_variant(s, r, &m->raw_oncpu[r][k]);
        for (unsigned l = 0; l < NLEN; l++)
            for (int v = 0; v < V_COUNT; v++) {
                pl_result res = run_variant(s, v, lens[l]);
                if (!res.ok)
                    fprintf(stderr, "meshrt-bench pipeline: %s_%uB failed: events %llu lost %llu "
                                    "refused %llu\n", vname[v], lens[l],
                            (unsigned long long)res.events, (unsigned long long)res.lost,
                            (unsigned long long)res.refused);
                ok &= res.ok;
                m->mops[v][l][k] = mops_of(&res);
                m->oncpu[v][l][k] = vmode[v] == PL_SHARD ? res.oncpu : 1.0;
            }
    }
    if (!ok)
        return false;
    /* Latency: one event in flight through ingress, 16 B. */
    m->nlat = mrt_bench_iters(o, 20000);
    if (m->nlat < 1000)
        m->nlat = 1000;
    m->lat = calloc(m->nlat, sizeof *m->lat);
    if (m->lat) {
        pl_result lr = pl_pipeline_once(PL_INGRESS, s->topo, s->cpu, s->pinned, s->idle_wake,
                                     RT_ROUTED, 16, m->nlat, m->lat);
        m->lat_ok = lr.ok;
    }
    /* Allocations: a separate, untimed pass in a forked child. */
    pl_setup cs = *s;
    cs.events = mrt_bench_iters(o, 100000) < 64 ? 64 : mrt_bench_iters(o, 100000);
    cs.ingress_events = cs.events;
    (void)mrt_bench_counted(count_allocs, &cs, m->al, 2 * (int)NLEN + 1);
    return true;
}

/* Events per second of every variant and of the raw ring, and allocations per event. */
static void report_figures(const mrt_bench_opts *o, const pl_setup *s, const pl_suite *m)
{
    char params[192];
    mrt_bench_section(o, "pipeline: route -> ring -> deliver -> completion, millions of events "
                         "per second (one_: 1 thread, CPU time; shard_: 2 busy shards; ingress_: "
                         "injector + 2 shards)");
    const char *pin = s->pinned ? "true" : "false";
    for (int r = 0; r < PL_RAW_COUNT; r++) {
        snprintf(params, sizeof params, "{\"msgs\":%llu,\"msg_bytes\":%u,\"threads\":%d,"
                 "\"pinned\":%s}", (unsigned long long)s->raw_events, pl_raw_bytes(r),
                 pl_raw_threads(r), pin);
        mrt_bench_result(o, "pipeline", pl_raw_name[r], params, "mops", med_of(m->raw[r], m->reps), -1);
    }
    for (unsigned l = 0; l < NLEN; l++)
        for (int v = 0; v < V_COUNT; v++) {
            char name[48];
            snprintf(name, sizeof name, "%s_%uB", vname[v], lens[l]);
            snprintf(params, sizeof params, "{\"events\":%llu,\"payload\":%u,\"threads\":%d,"
                     "\"busy_poll\":%s,\"pinned\":%s}",
                     (unsigned long long)(vmode[v] == PL_INGRESS ? s->ingress_events : s->events),
                     lens[l], vmode[v] == PL_ONE ? 1 : vmode[v] == PL_SHARD ? 2 : 3,
                     vmode[v] == PL_INGRESS ? "false" : "true", pin);
            double a = -1;
            if (v == V_ONE || v == V_SHARD)
                a = m->al[2 * l + (v == V_SHARD)];
            else if (v == V_INGRESS && l == 0)
                a = m->al[2 * NLEN];
            mrt_bench_result(o, "pipeline", name, params, "mops", med_of(m->mops[v][l], m->reps),
                             a);
        }
    for (unsigned l = 0; l < NLEN; l++)
        for (int v = V_ONE; v <= V_SHARD; v += V_SHARD - V_ONE) {
            double a = m->al[2 * l + (v == V_SHARD)];
            if (a < 0)
                continue; /* counting unavailable */
            char name[48], num[32];
            snprintf(name, sizeof name, "allocs_per_event_%s_%uB", vname[v], lens[l]);
            snprintf(num, sizeof num, "%s_%uB", vname[v], lens[l]);
            /* Target 0: 1e-9, so exactly 0 meets it and one allocation in 1e5 events does not. */
            mrt_bench_ratio(o, "pipeline", name, num, "events", a, 1e-9, false);
        }
    if (m->al[2 * NLEN] >= 0)
        mrt_bench_ratio(o, "pipeline", "allocs_per_event_ingress_16B", "ingress_16B", "events",
                        m->al[2 * NLEN], 1e-9, false);
}

/*
 * Median of num/den paired per repetition. With `need_cpu` (two-thread
 * runs) a pair counts only when every thread of both runs was on a CPU for
 * >= 90 % of its timed wall time (thread CPU clock / wall); with no such
 * pair, every pair counts and *judged is 0. *judged: the pairs that counted.
 */
static double pair_median(const double *num, const double *num_cpu, const double *den,
                          const double *den_cpu, int reps, bool need_cpu, int *judged)
{
    double q[64];
    int n = 0;
    for (int k = 0; k < reps; k++)
        if (!need_cpu || (num_cpu[k] >= 0.9 && den_cpu[k] >= 0.9))
            q[n++] = den[k] > 0 ? num[k] / den[k] : 0;
    *judged = n;
    if (n == 0)
        for (int k = 0; k < reps; k++)
            q[n++] = den[k] > 0 ? num[k] / den[k] : 0;
    return mrt_bench_median(q, n);
}

/*
 * Against the raw ring and the event floor measured the same way, paired
 * per repetition; two-thread figures only while both threads had a CPU
 * (pair_median), printed without a verdict when no repetition had.
 * The floor against the raw ring is the ceiling the 0.5 target leaves to
 * any design that carries the event (pipeline_raw.h): reported, no target.
 */
static void report_vs_raw(const mrt_bench_opts *o, const pl_suite *m)
{
    static const struct { int v, r; double target; } vs[] = {
        { V_ONE, PL_RAW_1T, 0.5 },     { V_SHARD, PL_RAW_1WAY, 0.5 },
        { V_SHARD, PL_RAW_DUPLEX, 0 }, { V_INGRESS, PL_RAW_1WAY, 0 },
        { V_ONE, PL_EV_1T, 0 },        { V_SHARD, PL_EV_1WAY, 0 },
    };
    int reps = m->reps, judged = reps;
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        int v = vs[i].v, r = vs[i].r, n;
        bool two = vmode[v] == PL_SHARD;
        double q = pair_median(m->mops[v][0], m->oncpu[v][0], m->raw[r], m->raw_oncpu[r], reps,
                               two, &n);
        if (two && r == PL_RAW_1WAY)
            judged = n;
        char name[64], num[32];
        snprintf(num, sizeof num, "%s_16B", vname[v]);
        snprintf(name, sizeof name, "%s_vs_%s", num, pl_raw_name[r]);
        mrt_bench_ratio(o, "pipeline", name, num, pl_raw_name[r], q, n > 0 ? vs[i].target : 0,
                        true);
    }
    static const int floor_of[][2] = { { PL_EV_1T, PL_RAW_1T }, { PL_EV_1WAY, PL_RAW_1WAY } };
    for (size_t i = 0; i < sizeof floor_of / sizeof floor_of[0]; i++) {
        int e = floor_of[i][0], r = floor_of[i][1], n;
        double q = pair_median(m->raw[e], m->raw_oncpu[e], m->raw[r], m->raw_oncpu[r], reps,
                               pl_raw_threads(e) == 2, &n);
        char name[64];
        snprintf(name, sizeof name, "%s_vs_%s", pl_raw_name[e], pl_raw_name[r]);
        mrt_bench_ratio(o, "pipeline", name, pl_raw_name[e], pl_raw_name[r], q, 0, true);
    }
    double q[64];
    for (int k = 0; k < reps; k++)
        q[k] = m->oncpu[V_SHARD][0][k] < m->raw_oncpu[PL_RAW_1WAY][k]
                   ? m->oncpu[V_SHARD][0][k]
                   : m->raw_oncpu[PL_RAW_1WAY][k];
    /* The lowest thread's CPU time / wall time in shard_16B and raw_ring_32B (1: no contention). */
    mrt_bench_ratio(o, "pipeline", "two_thread_oncpu", "thread_cpu_time", "wall_time",
                    mrt_bench_median(q, reps), 0, true);
    if (judged < reps)
        fprintf(stderr, "meshrt-bench pipeline: %d of %d repetitions had both CPUs for the "
                        "two-thread runs; only those are judged (shard_ against the raw ring; "
                        "shard_ completion shares, on their own pairs)\n",
                judged, reps);
}

/*
 * Shares of the routed per-event cost, paired per repetition:
 *   routing_share_*    1 - routed/unrouted: selection + in-flight slot +
 *                      completion back (what routing costs in all);
 *                      reported, no target: the selection is paid by any
 *                      balanced send, and was before completions travelled.
 *   completion_share_* 1 - routed/routed_local: the same selection on both
 *                      sides, so only the in-flight slot and the completion
 *                      travelling back and being applied; target <= 10 %.
 * shard_: only the pairs in which all four threads had a CPU (>= 90 %),
 * as above; with none, every pair and no verdict.
 */
static void report_shares(const mrt_bench_opts *o, const pl_suite *m)
{
    for (unsigned l = 0; l < NLEN; l++)
        for (int v = V_ONE; v <= V_SHARD; v += V_SHARD - V_ONE)
            for (int twin = 0; twin < 2; twin++) {
                int w = twin == 0 ? V_UNROUTED(v) : V_LOCAL(v);
                double q[64];
                int n = 0, good = 0;
                for (int k = 0; k < m->reps; k++)
                    good += m->oncpu[v][l][k] >= 0.9 && m->oncpu[w][l][k] >= 0.9;
                for (int k = 0; k < m->reps; k++)
                    if (v == V_ONE || good == 0 ||
                        (m->oncpu[v][l][k] >= 0.9 && m->oncpu[w][l][k] >= 0.9))
                        q[n++] = m->mops[w][l][k] > 0 ? 1.0 - m->mops[v][l][k] / m->mops[w][l][k]
                                                      : 1;
                bool judge = twin == 1 && (v == V_ONE || good > 0);
                char name[64], num[32], den[48];
                snprintf(name, sizeof name, "%s_share_%s_%uB", twin ? "completion" : "routing",
                         vname[v], lens[l]);
                snprintf(num, sizeof num, "%s_%uB", vname[v], lens[l]);
                snprintf(den, sizeof den, "%s_%uB", vname[w], lens[l]);
                mrt_bench_ratio(o, "pipeline", name, num, den, mrt_bench_median(q, n),
                                judge ? 0.10 : 0, false);
            }
}

/* p50, p99, p99.9 of one event in flight through ingress. */
static void report_latency(const mrt_bench_opts *o, pl_suite *m)
{
    if (m->lat == NULL || !m->lat_ok)
        return;
    uint64_t n = m->nlat;
    qsort(m->lat, n, sizeof *m->lat, cmp_u64);
    char params[192];
    snprintf(params, sizeof params, "{\"events\":%llu,\"payload\":16,\"in_flight\":1,"
             "\"path\":\"ingress\"}", (unsigned long long)n);
    mrt_bench_result(o, "pipeline", "latency_p50", params, "median_ns", (double)m->lat[n / 2], -1);
    mrt_bench_result(o, "pipeline", "latency_p99", params, "median_ns",
                     (double)m->lat[n * 99 / 100], -1);
    mrt_bench_result(o, "pipeline", "latency_p99.9", params, "median_ns",
                     (double)m->lat[n * 999 / 1000], -1);
}

int mrt_bench_pipeline(const mrt_bench_opts *o, int argc, char **argv)
{
    pl_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc;
    mrt_topo *topo = NULL;
    if (mrt_topo_load(&topo) != MRT_OK)
        topo = NULL;
    pl_setup s;
    setup(o, a.idle_wake, topo, &s);
    int reps = o->reps < 1 ? 1 : (o->reps > 64 ? 64 : o->reps);
    if (a.only_lat) {
        rc = only_latency(&s, a.only_len, mrt_bench_iters(o, 20000), a.samples_path);
    } else if (a.only != NULL) {
        rc = run_only(&s, &a, reps);
    } else {
        static pl_suite m; /* large: one suite at a time */
        memset(&m, 0, sizeof m);
        m.reps = reps;
        if (!measure(o, &s, &m)) {
            fprintf(stderr, "meshrt-bench pipeline: set-up failed or events were refused\n");
            rc = 1;
        } else {
            report_figures(o, &s, &m);
            report_vs_raw(o, &m);
            report_shares(o, &m);
            report_latency(o, &m);
        }
        free(m.lat);
    }
    mrt_topo_destroy(topo);
    return rc;
}
