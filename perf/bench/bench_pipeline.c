/*
 * meshrt-bench pipeline: one event through the compute-shaped path.
 *
 *   injector thread --mrt_svc_inject_event--> shard 0 ingress ring
 *   -> router daemon (host on shard 0; emits a copy of the event)
 *   -> output callback: mrt_svc_send_routed(daemon 0: the selection names
 *      the worker) over a snapshot of the 2 shards' workers, round robin
 *   -> shard 0 itself or the 0 -> 1 ring -> worker daemon (host) delivers
 *   -> completion back to shard 0 (mrt_lb_complete).
 *
 * Two pinned shard threads (as in bench_ring.c); the injector is the
 * benchmark's own thread, unpinned (a third thread: on a 2-CPU machine it
 * shares a CPU with a shard). It keeps at most `window` events in the
 * pipeline, so pools and in-flight tables never refuse. Reported, payloads
 * 16 B, 64 B, 1 KiB:
 *   pipeline_<len>   routed events delivered per second (millions)
 *   unrouted_<len>   the same path with mrt_svc_send to the same shards: no
 *                    selection, no completion (completion cost = 1 - ratio)
 *   raw_ring_32B     rte_ring SPSC bursts of 32-byte messages between the
 *                    same two CPUs, measured in the same run
 *   latency          one event in flight at a time, 16 B: p50/p99/p99.9 of
 *                    (delivery - injection) on the mesh's TSC clock
 * Allocations per event are counted in a separate pass, in a forked child
 * (mrt_bench_counted), never in a timed run.
 */
#include "bench.h"

#include "meshrt/mrt_services.h"
#include "meshrt/mrt_topo.h"

#include <pthread.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSH 2
#define MAX_LEN 1024

typedef struct pl_ctx pl_ctx;

typedef struct pl_shard {
    pl_ctx *c;
    unsigned i;
    mrt_host *router, *worker;
    int rc;
    mrt_alloc_counts a0, a1;   /* allocation counters at the phase mark and at the end */
    _Atomic bool marked;
    _Alignas(128) _Atomic uint64_t delivered;
} pl_shard;

struct pl_ctx {
    mrt_mesh *mesh;
    mrt_svc *svc;
    mrt_lb_domain *dom;
    bool routed, latency;
    uint32_t len;
    uint64_t router_id, worker_id[NSH];
    const mrt_topo *topo;
    mrt_cpu cpu[NSH];
    bool pinned;
    pthread_barrier_t bar;
    pl_shard sh[NSH];
    _Alignas(128) _Atomic uint64_t lost;
    _Atomic bool phase;        /* set after the warm-up: shards mark their allocation counters */
    uint64_t *lat;             /* latency mode: one sample per timed event */
    uint64_t lat_off;          /* events before the first timed one (the warm-up) */
    _Atomic uint64_t lat_last; /* the last delivery time (latency mode) */
};

static int router_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)state;
    return mrt_daemon_emit_copy(sink, ev->payload, ev->payload_len);
}

static int worker_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)sink;
    pl_shard *p = state;
    if (p->c->latency) {
        /* The benchmark's timestamp, on the mesh's TSC clock (latency pass only). */
        atomic_store_explicit(&p->c->lat_last, mrt_mesh_clock(p->c->mesh), memory_order_relaxed);
    } else if (ev->payload_len) {
        __asm__ volatile("" : : "r"(((const uint8_t *)ev->payload)[0]));
    }
    atomic_store_explicit(&p->delivered, atomic_load_explicit(&p->delivered, memory_order_relaxed) + 1,
                          memory_order_release);
    return MRT_OK;
}

static const mrt_daemon_vtable router_vt = { .name = "router", .process = router_process };
static const mrt_daemon_vtable worker_vt = { .name = "worker", .process = worker_process };

/* The router's outputs go on: routed (daemon from the selection) or to the same shards directly. */
static void on_output(mrt_svc_shard *ss, mrt_host *host, const mrt_event *outs, size_t n,
                      void *ctx)
{
    (void)host;
    pl_ctx *c = ctx;
    static _Thread_local unsigned rr;
    for (size_t k = 0; k < n; k++) {
        int rc;
        if (c->routed) {
            rc = mrt_svc_send_routed(ss, NULL, 0, &outs[k].link, outs[k].payload,
                                     outs[k].payload_len, NULL);
        } else {
            unsigned d = rr++ & 1u;
            rc = mrt_svc_send(ss, d, c->worker_id[d], &outs[k].link, outs[k].payload,
                              outs[k].payload_len);
        }
        if (rc != MRT_OK)
            atomic_fetch_add(&c->lost, 1);
    }
}

static void mark_hook(mrt_svc_shard *ss, bool draining, void *ctx)
{
    (void)ss;
    (void)draining;
    pl_shard *p = ctx;
    if (!atomic_load_explicit(&p->marked, memory_order_relaxed) &&
        atomic_load_explicit(&p->c->phase, memory_order_relaxed)) {
        p->a0 = mrt_alloc_counts_now();
        atomic_store_explicit(&p->marked, true, memory_order_release);
    }
}

static void host_key(unsigned kind, unsigned i, uint8_t key[MRT_HOST_KEY_SIZE])
{
    memset(key, 0, MRT_HOST_KEY_SIZE);
    memcpy(key, "bench-pipeline", 14);
    key[14] = (uint8_t)kind;
    key[15] = (uint8_t)i;
}

static int make_host(pl_shard *p, mrt_svc_shard *ss, unsigned kind, mrt_host **out)
{
    mrt_host_config hc = { .alloc = mrt_svc_allocator(ss), .max_outputs = 1,
                           .payload_bytes = 2 * MAX_LEN, .max_origins = 8 };
    host_key(kind, p->i, hc.key);
    mrt_daemon d = { kind ? &worker_vt : &router_vt, p };
    int rc = mrt_host_create(&hc, d, out);
    return rc == MRT_OK ? mrt_svc_host_add(ss, *out) : rc;
}

static void *shard_main(void *arg)
{
    pl_shard *p = arg;
    pl_ctx *c = p->c;
    if (c->pinned)
        (void)mrt_topo_bind_thread(c->topo, &c->cpu[p->i]);
    mrt_shard *s = mrt_mesh_shard(c->mesh, p->i);
    mrt_svc_shard *ss = NULL;
    p->rc = mrt_shard_init_local(s);
    if (p->rc == MRT_OK)
        p->rc = mrt_svc_shard_init(c->svc, s, &ss);
    if (p->rc == MRT_OK && p->i == 0)
        p->rc = make_host(p, ss, 0, &p->router);
    if (p->rc == MRT_OK)
        p->rc = make_host(p, ss, 1, &p->worker);
    if (p->rc == MRT_OK)
        p->rc = mrt_svc_add_hook(ss, mark_hook, p);
    pthread_barrier_wait(&c->bar);
    if (p->rc == MRT_OK)
        mrt_shard_run(s);
    p->a1 = mrt_alloc_counts_now();
    if (ss) {
        if (p->router)
            (void)mrt_svc_host_remove(ss, mrt_host_origin(p->router), NULL);
        if (p->worker)
            (void)mrt_svc_host_remove(ss, mrt_host_origin(p->worker), NULL);
        mrt_svc_shard_fini(ss);
    }
    mrt_host_destroy(p->router);
    mrt_host_destroy(p->worker);
    if (p->rc == MRT_OK)
        (void)mrt_shard_fini_local(s);
    return NULL;
}

static uint64_t delivered(pl_ctx *c)
{
    uint64_t n = atomic_load(&c->lost);
    for (unsigned i = 0; i < NSH; i++)
        n += atomic_load_explicit(&c->sh[i].delivered, memory_order_acquire);
    return n;
}

/* Inject `n` events, at most `window` in the pipeline. */
static void inject(pl_ctx *c, uint64_t *seq, uint64_t n, uint64_t window)
{
    static uint8_t payload[MAX_LEN];
    uint64_t end = *seq + n;
    uint64_t done = delivered(c);
    while (*seq < end) {
        if (*seq - done >= window) {
            done = delivered(c);
            if (*seq - done >= window)
                rte_pause();
            continue;
        }
        mrt_causal_link link = { .origin_hash = 7, .sequence = *seq };
        if (c->latency) {
            uint64_t t = mrt_mesh_clock(c->mesh);
            memcpy(payload, &t, sizeof t);
        }
        if (mrt_svc_inject_event(c->svc, 0, c->router_id, &link, payload, c->len) == MRT_OK)
            ++*seq;
        else
            rte_pause(); /* backpressure */
        if (c->latency) {
            uint64_t t0;
            memcpy(&t0, payload, sizeof t0);
            while (delivered(c) < *seq)
                rte_pause();
            uint64_t t1 = atomic_load_explicit(&c->lat_last, memory_order_relaxed);
            if (*seq > c->lat_off)
                c->lat[*seq - 1 - c->lat_off] = t1 > t0 ? t1 - t0 : 0;
            done = *seq;
        }
    }
    while (delivered(c) < end)
        rte_pause();
}

typedef struct pl_result {
    uint64_t ns;           /* timed part */
    uint64_t events, lost;
    uint64_t allocs;       /* shards + injector, from the phase mark to the end */
    bool ok;
} pl_result;

/* One whole run: set up, warm up, time `events`, drain, tear down. */
static pl_result pipeline_once(const mrt_topo *topo, const mrt_cpu *cpu, bool pinned, bool routed,
                               uint32_t len, uint64_t events, uint64_t *lat)
{
    pl_result res = { 0 };
    static pl_ctx c; /* large and aligned; one run at a time */
    memset(&c, 0, sizeof c);
    c.routed = routed;
    c.len = len;
    c.latency = lat != NULL;
    c.lat = lat;
    c.topo = topo;
    c.pinned = pinned;
    for (unsigned i = 0; i < NSH; i++) {
        c.cpu[i] = cpu[i];
        c.sh[i].c = &c;
        c.sh[i].i = i;
    }
    uint8_t key[MRT_HOST_KEY_SIZE];
    host_key(0, 0, key);
    c.router_id = mrt_host_origin_from_key(key);
    mrt_lb_config lc;
    mrt_lb_config_default(&lc);
    lc.strategy = MRT_LB_ROUND_ROBIN;
    mrt_lb_registry *reg = NULL;
    if (mrt_lb_registry_create(NULL, &lc, &reg) != MRT_OK)
        return res;
    for (unsigned i = 0; i < NSH; i++) {
        host_key(1, i, key);
        c.worker_id[i] = mrt_host_origin_from_key(key);
        uint8_t nid[MRT_LB_NODE_ID_LEN] = { 0 };
        for (unsigned b = 0; b < 8; b++)
            nid[b] = (uint8_t)(c.worker_id[i] >> (8 * b));
        mrt_lb_endpoint_spec spec;
        mrt_lb_endpoint_spec_init(&spec, nid);
        spec.user_data = i;
        (void)mrt_lb_registry_add(reg, &spec, NULL);
    }
    mrt_lb_snapshot *snap = NULL;
    mrt_mesh_config mc;
    mrt_mesh_config_default(&mc, NSH);
    mrt_svc_config sc;
    mrt_svc_config_default(&sc);
    sc.max_payload = 4096;
    if (mrt_lb_domain_create(NULL, NSH, &c.dom) != MRT_OK ||
        mrt_lb_registry_compile(reg, 0, NULL, &snap) != MRT_OK ||
        mrt_lb_domain_publish(c.dom, snap) < 1 || mrt_mesh_create(&mc, &c.mesh) != MRT_OK)
        goto out;
    sc.domain = c.dom;
    if (mrt_svc_create(c.mesh, &sc, &c.svc) != MRT_OK ||
        mrt_svc_set_output(c.svc, on_output, &c) != MRT_OK)
        goto out;
    pthread_barrier_init(&c.bar, NULL, NSH + 1);
    pthread_t tid[NSH];
    for (unsigned i = 0; i < NSH; i++)
        pthread_create(&tid[i], NULL, shard_main, &c.sh[i]);
    pthread_barrier_wait(&c.bar);
    bool up = c.sh[0].rc == MRT_OK && c.sh[1].rc == MRT_OK;
    uint64_t seq = 0, window = lat ? 1 : 256;
    if (up) {
        inject(&c, &seq, lat ? 100 : 2000, window); /* warm-up: connections, caches */
        atomic_store(&c.phase, true);
        mrt_alloc_counts a0 = mrt_alloc_counts_now();
        uint64_t done0 = delivered(&c);
        while (!atomic_load(&c.sh[0].marked) || !atomic_load(&c.sh[1].marked))
            rte_pause(); /* each shard marks in its next iteration */
        uint64_t t0 = mrt_bench_now_ns();
        c.lat_off = seq; /* samples indexed from the first timed event */
        inject(&c, &seq, events, window);
        res.ns = mrt_bench_now_ns() - t0;
        mrt_alloc_counts a1 = mrt_alloc_counts_now();
        res.events = delivered(&c) - done0;
        res.allocs = a1.allocs - a0.allocs;
    }
    mrt_mesh_stop(c.mesh);
    for (unsigned i = 0; i < NSH; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&c.bar);
    for (unsigned i = 0; i < NSH && up; i++)
        res.allocs += c.sh[i].a1.allocs - c.sh[i].a0.allocs;
    res.lost = atomic_load(&c.lost);
    res.ok = up && res.lost == 0;
out:
    mrt_svc_destroy(c.svc);
    mrt_mesh_destroy(c.mesh);
    mrt_lb_domain_destroy(c.dom);
    mrt_lb_registry_destroy(reg);
    return res;
}

/* ---- raw rte_ring baseline: 32-byte messages as two 16-byte elements, bursts of 32 ---- */

typedef struct raw_ctx {
    struct rte_ring *ring;
    uint64_t total;
    const mrt_topo *topo;
    const mrt_cpu *cpu;
    bool pinned;
    atomic_int ready;
    atomic_bool go;
} raw_ctx;

static void *raw_consumer(void *arg)
{
    raw_ctx *r = arg;
    if (r->pinned)
        (void)mrt_topo_bind_thread(r->topo, &r->cpu[1]);
    _Alignas(64) uint64_t buf[32 * 4];
    atomic_fetch_add(&r->ready, 1);
    while (!atomic_load(&r->go))
        rte_pause();
    uint64_t got = 0, sink = 0;
    while (got < r->total) {
        unsigned k = rte_ring_sc_dequeue_burst_elem(r->ring, buf, 16, 64, NULL) / 2;
        if (k == 0)
            rte_pause();
        for (unsigned i = 0; i < k; i++)
            sink += buf[i * 4];
        got += k;
    }
    __asm__ volatile("" : : "r"(sink));
    return NULL;
}

static uint64_t raw_once(const mrt_topo *topo, const mrt_cpu *cpu, bool pinned, uint64_t total)
{
    ssize_t sz = rte_ring_get_memsize_elem(16, 2048);
    raw_ctx r = { .total = total, .topo = topo, .cpu = cpu, .pinned = pinned };
    r.ring = mrt_alloc_aligned(NULL, (size_t)sz, 64);
    rte_ring_init(r.ring, "pl", 2048, RING_F_SP_ENQ | RING_F_SC_DEQ);
    atomic_init(&r.ready, 0);
    atomic_init(&r.go, false);
    pthread_t t;
    pthread_create(&t, NULL, raw_consumer, &r);
    /* The producer runs on a thread of its own, pinned to the first CPU. */
    while (atomic_load(&r.ready) < 1)
        rte_pause();
    _Alignas(64) uint64_t buf[32 * 4];
    memset(buf, 0, sizeof buf);
    uint64_t t0 = mrt_bench_now_ns();
    atomic_store(&r.go, true);
    for (uint64_t seq = 0; seq < total;) {
        unsigned n = total - seq < 32 ? (unsigned)(total - seq) : 32;
        for (unsigned i = 0; i < n; i++)
            buf[i * 4] = seq + i;
        while (rte_ring_sp_enqueue_bulk_elem(r.ring, buf, 16, n * 2, NULL) == 0)
            rte_pause();
        seq += n;
    }
    pthread_join(t, NULL);
    uint64_t ns = mrt_bench_now_ns() - t0;
    mrt_free_aligned(NULL, r.ring, (size_t)sz, 64);
    return ns;
}

typedef struct raw_thread_arg {
    const mrt_topo *topo;
    const mrt_cpu *cpu;
    bool pinned;
    uint64_t total, ns;
} raw_thread_arg;

static void *raw_thread(void *arg)
{
    raw_thread_arg *a = arg;
    if (a->pinned)
        (void)mrt_topo_bind_thread(a->topo, &a->cpu[0]);
    a->ns = raw_once(a->topo, a->cpu, a->pinned, a->total);
    return NULL;
}

static uint64_t raw_run(const mrt_topo *topo, const mrt_cpu *cpu, bool pinned, uint64_t total)
{
    raw_thread_arg a = { topo, cpu, pinned, total, 0 };
    pthread_t t;
    pthread_create(&t, NULL, raw_thread, &a);
    pthread_join(t, NULL);
    return a.ns;
}

/* ---- the suite ------------------------------------------------------------------ */

static const uint32_t lens[] = { 16, 64, 1024 };
#define NLEN (sizeof lens / sizeof lens[0])

typedef struct count_arg {
    const mrt_topo *topo;
    const mrt_cpu *cpu;
    bool pinned;
    uint64_t events;
} count_arg;

/* In the forked child: allocations per event of the routed pipeline, per payload size. */
static void count_allocs(void *arg, double *out)
{
    count_arg *a = arg;
    for (unsigned l = 0; l < NLEN; l++) {
        pl_result r = pipeline_once(a->topo, a->cpu, a->pinned, true, lens[l], a->events, NULL);
        out[l] = r.ok && r.events ? (double)r.allocs / (double)r.events : -1;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int mrt_bench_pipeline(const mrt_bench_opts *o, int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "meshrt-bench pipeline: unknown option %s (it takes none)\n", argv[1]);
        return 2;
    }
    mrt_topo *topo = NULL;
    static mrt_topo_selection sel;
    mrt_cpu cpu[NSH];
    memset(cpu, 0, sizeof cpu);
    bool pinned = false;
    if (mrt_topo_load(&topo) == MRT_OK &&
        mrt_topo_select_node(topo, mrt_topo_current_node(topo), &sel) == MRT_OK && sel.count >= 2) {
        cpu[0] = sel.cpus[0];
        cpu[1] = sel.cpus[1];
        pinned = true;
    }
    uint64_t events = mrt_bench_iters(o, 400000);
    int reps = o->reps < 1 ? 1 : (o->reps > 64 ? 64 : o->reps);
    double routed[NLEN][64], unrouted[NLEN][64], raw[64], vs_raw[64], share[NLEN][64];
    bool ok = true;
    /* Interleaved per repetition: drift on a shared machine hits every variant alike. */
    for (int k = 0; k < reps; k++) {
        raw[k] = (double)events / (double)raw_run(topo, cpu, pinned, events) * 1e3;
        for (unsigned l = 0; l < NLEN; l++) {
            pl_result a = pipeline_once(topo, cpu, pinned, true, lens[l], events, NULL);
            pl_result b = pipeline_once(topo, cpu, pinned, false, lens[l], events, NULL);
            ok &= a.ok && b.ok;
            routed[l][k] = a.ns ? (double)a.events / (double)a.ns * 1e3 : 0;
            unrouted[l][k] = b.ns ? (double)b.events / (double)b.ns * 1e3 : 0;
            share[l][k] = unrouted[l][k] > 0 ? 1.0 - routed[l][k] / unrouted[l][k] : 1;
        }
        vs_raw[k] = raw[k] > 0 ? routed[0][k] / raw[k] : 0;
    }
    if (!ok) {
        fprintf(stderr, "meshrt-bench pipeline: set-up failed or events were refused\n");
        mrt_topo_destroy(topo);
        return 1;
    }
    /* Latency: one event in flight, 16 B. */
    uint64_t nlat = mrt_bench_iters(o, 20000);
    if (nlat < 1000)
        nlat = 1000;
    uint64_t *lat = calloc(nlat, sizeof *lat);
    pl_result lr = { 0 };
    if (lat)
        lr = pipeline_once(topo, cpu, pinned, true, 16, nlat, lat);
    /* Allocations: a separate, untimed pass in a forked child. */
    double al[MRT_BENCH_MAX_COUNTS];
    count_arg ca = { topo, cpu, pinned, mrt_bench_iters(o, 100000) };
    (void)mrt_bench_counted(count_allocs, &ca, al, (int)NLEN);

    char params[160];
    mrt_bench_section(o, "pipeline: ingress -> route -> ring -> deliver -> completion, "
                         "millions of events per second");
    snprintf(params, sizeof params, "{\"events\":%llu,\"msg_bytes\":32,\"pinned\":%s}",
             (unsigned long long)events, pinned ? "true" : "false");
    mrt_bench_result(o, "pipeline", "raw_ring_32B", params, "mops", mrt_bench_median(raw, reps), -1);
    for (unsigned l = 0; l < NLEN; l++) {
        char name[32];
        snprintf(params, sizeof params, "{\"events\":%llu,\"payload\":%u,\"pinned\":%s}",
                 (unsigned long long)events, lens[l], pinned ? "true" : "false");
        snprintf(name, sizeof name, "pipeline_%uB", lens[l]);
        mrt_bench_result(o, "pipeline", name, params, "mops", mrt_bench_median(routed[l], reps),
                         al[l]);
        snprintf(name, sizeof name, "unrouted_%uB", lens[l]);
        mrt_bench_result(o, "pipeline", name, params, "mops", mrt_bench_median(unrouted[l], reps),
                         -1);
    }
    for (unsigned l = 0; l < NLEN && al[l] >= 0; l++) { /* < 0: counting unavailable */
        char name[48], num[32];
        snprintf(name, sizeof name, "allocs_per_event_%uB", lens[l]);
        snprintf(num, sizeof num, "pipeline_%uB", lens[l]);
        /* Target 0: 1e-9, so that exactly 0 meets it and one allocation in 1e5 events does not. */
        mrt_bench_ratio(o, "pipeline", name, num, "events", al[l], 1e-9, false);
    }
    mrt_bench_ratio(o, "pipeline", "pipeline_16B_vs_raw", "pipeline_16B", "raw_ring_32B",
                    mrt_bench_median(vs_raw, reps), 0.5, true);
    for (unsigned l = 0; l < NLEN; l++) {
        char name[48], num[32], den[32];
        snprintf(name, sizeof name, "completion_share_%uB", lens[l]);
        snprintf(num, sizeof num, "pipeline_%uB", lens[l]);
        snprintf(den, sizeof den, "unrouted_%uB", lens[l]);
        /* Share of the per-event cost: 1 - routed/unrouted throughput (paired per repetition). */
        mrt_bench_ratio(o, "pipeline", name, num, den, mrt_bench_median(share[l], reps), 0.10,
                        false);
    }
    if (lat && lr.ok) {
        qsort(lat, nlat, sizeof *lat, cmp_u64);
        snprintf(params, sizeof params, "{\"events\":%llu,\"payload\":16,\"in_flight\":1}",
                 (unsigned long long)nlat);
        mrt_bench_result(o, "pipeline", "latency_p50", params, "median_ns",
                         (double)lat[nlat / 2], -1);
        mrt_bench_result(o, "pipeline", "latency_p99", params, "median_ns",
                         (double)lat[nlat * 99 / 100], -1);
        mrt_bench_result(o, "pipeline", "latency_p99.9", params, "median_ns",
                         (double)lat[nlat * 999 / 1000], -1);
    }
    free(lat);
    mrt_topo_destroy(topo);
    return 0;
}
