/*
 * The pipeline suite's runs: two shards with services, a router and a
 * worker daemon each, driven one of three ways (one thread, two busy
 * shards, an injector): bench_pipeline.c describes the variants.
 */
#include "pipeline.h"

#include "bench.h"

#include "meshrt/mrt_services.h"
#include "meshrt/mrt_topo.h"

#include <pthread.h>
#include <rte_pause.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LEN 1024
#define PROD_BURST 32 /* events a producer hook sends per iteration, at most */

typedef struct pl_ctx pl_ctx;

typedef struct pl_shard {
    pl_ctx *c;
    unsigned i;
    mrt_svc_shard *ss;
    mrt_lb_shard *lb;          /* mrt_svc_lb(ss) and */
    mrt_shard *shard;          /* mrt_svc_shard_get(ss), read once (routed_local) */
    mrt_host *router, *worker;
    int rc;
    mrt_alloc_counts a0, a1;   /* allocation counters at the phase mark and at the end */
    _Atomic bool marked;
    /* Producer (one_, shard_): this shard's thread only. */
    uint64_t produced, refused, errors;
    unsigned rr;
    uint64_t seen;             /* delivered count the hook saw last */
    int tstate;                /* the timing phase this shard last saw (shard_) */
    uint64_t cpu0, now0, cpu1, now1; /* thread CPU clock and shard clock at its start and end */
    _Alignas(128) _Atomic uint64_t quota;     /* events this shard may have produced (main) */
    _Alignas(128) _Atomic uint64_t delivered; /* by this shard's worker */
    _Atomic uint64_t last_at;  /* shard clock of the last iteration that saw a delivery */
    _Atomic int tstate_seen;   /* tstate, for the benchmark thread */
} pl_shard;

struct pl_ctx {
    pl_mode mode;
    mrt_mesh *mesh;
    mrt_svc *svc;
    mrt_lb_domain *dom;
    pl_route route;
    bool latency;
    uint32_t len;
    uint64_t router_id, worker_id[NSH];
    const mrt_topo *topo;
    mrt_cpu cpu[NSH];
    bool pinned;
    pthread_barrier_t bar;
    pl_shard sh[NSH];
    _Alignas(128) _Atomic uint64_t lost;
    _Atomic bool phase;        /* set after the warm-up: shards mark their allocation counters */
    _Atomic int timing;        /* shard_: 1 while timed, 2 once done (hooks read their CPU clock) */
    uint64_t *lat;             /* latency mode: one sample per timed event */
    uint64_t lat_off;          /* events before the first timed one (the warm-up) */
    _Atomic uint64_t lat_last; /* the last delivery time (latency mode) */
    uint8_t payload[MAX_LEN];
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

/*
 * routed_local: the selection mrt_svc_send_routed makes (this shard's
 * balancer state and adopted snapshot, the same NULL request, the shard's
 * clock, destination = user_data, daemon = node_id bytes 0..7 little endian),
 * completed at once on this shard as a success with latency 0, then an
 * unrouted send. Against the routed send this leaves out only the in-flight
 * slot, the token and the completion travelling back and being applied.
 * A refused send (no buffer, full ring: a few per run) has still completed
 * as a success: reporting it as a failure would feed the breaker, which
 * opens after 5 in a row and fails every later select (MRT_LB_ECIRCUITOPEN),
 * where the routed send refuses for want of a buffer before it selects. It
 * costs a select + complete per refusal that the routed send does not pay,
 * which only lowers routed_local's figure (and the completion share).
 * `lb` and `shard` are this shard's (mrt_svc_lb, mrt_svc_shard_get), read
 * once by the caller: the routed send reads both from its own struct, so
 * two calls per event here would be cost the routed send does not have.
 */
static inline int send_local(mrt_svc_shard *ss, mrt_lb_shard *lb, mrt_shard *shard,
                             const mrt_causal_link *link, const void *payload, size_t len)
{
    const mrt_lb_snapshot *snap = lb ? mrt_lb_shard_snapshot(lb) : NULL;
    if (snap == NULL)
        return MRT_SVC_ENOBALANCER;
    mrt_lb_selection sel;
    uint64_t now = mrt_shard_now(shard);
    int rc = mrt_lb_select(snap, lb, NULL, now, &sel);
    if (rc != MRT_OK)
        return rc;
    uint64_t daemon_id = mrt_svc_node_daemon(sel.node_id);
    (void)mrt_lb_complete(lb, &sel, true, 0, now);
    return mrt_svc_send(ss, (unsigned)sel.user_data, daemon_id, link, payload, len);
}

/* Ingress mode: the router's outputs go on, routed or to the same shards directly. */
static void on_output(mrt_svc_shard *ss, mrt_host *host, const mrt_event *outs, size_t n,
                      void *ctx)
{
    (void)host;
    pl_ctx *c = ctx;
    static _Thread_local unsigned rr;
    for (size_t k = 0; k < n; k++) {
        int rc;
        if (c->route == RT_ROUTED) {
            rc = mrt_svc_send_routed(ss, NULL, 0, &outs[k].link, outs[k].payload,
                                     outs[k].payload_len, NULL);
        } else if (c->route == RT_LOCAL) {
            rc = send_local(ss, mrt_svc_lb(ss), mrt_svc_shard_get(ss), &outs[k].link,
                            outs[k].payload, outs[k].payload_len);
        } else {
            unsigned d = rr++ & 1u;
            rc = mrt_svc_send(ss, d, c->worker_id[d], &outs[k].link, outs[k].payload,
                              outs[k].payload_len);
        }
        if (rc != MRT_OK)
            atomic_fetch_add(&c->lost, 1);
    }
}

static void mark_allocs(pl_shard *p)
{
    if (!atomic_load_explicit(&p->marked, memory_order_relaxed) &&
        atomic_load_explicit(&p->c->phase, memory_order_relaxed)) {
        p->a0 = mrt_alloc_counts_now();
        atomic_store_explicit(&p->marked, true, memory_order_release);
    }
}

static void mark_hook(mrt_svc_shard *ss, bool draining, void *ctx)
{
    (void)ss;
    (void)draining;
    mark_allocs(ctx);
}

/*
 * one_ and shard_: the shard's own producer, once per poll iteration (after
 * its inbound rings, before its flush). Up to PROD_BURST events while under
 * its quota; the first refusal (no buffer, no in-flight slot, full ring:
 * backpressure) ends the burst until the next iteration.
 */
static void produce_hook(mrt_svc_shard *ss, bool draining, void *ctx)
{
    pl_shard *p = ctx;
    pl_ctx *c = p->c;
    mark_allocs(p);
    int t = atomic_load_explicit(&c->timing, memory_order_acquire);
    if (__builtin_expect(t != p->tstate, 0)) {
        /* Twice a run: how much of the timed wall time this thread was on a CPU. */
        uint64_t cpu = mrt_bench_thread_cpu_ns(), now = mrt_shard_now(mrt_svc_shard_get(ss));
        if (t == 1) {
            p->cpu0 = cpu;
            p->now0 = now;
        } else {
            p->cpu1 = cpu;
            p->now1 = now;
        }
        atomic_store_explicit(&p->c->sh[p->i].tstate_seen, t, memory_order_release);
        p->tstate = t;
    }
    uint64_t d = atomic_load_explicit(&p->delivered, memory_order_relaxed);
    if (d != p->seen) {
        p->seen = d;
        atomic_store_explicit(&p->last_at, mrt_shard_now(mrt_svc_shard_get(ss)),
                              memory_order_relaxed);
    }
    if (draining)
        return;
    uint64_t quota = atomic_load_explicit(&p->quota, memory_order_acquire);
    for (unsigned k = 0; k < PROD_BURST && p->produced < quota; k++) {
        mrt_causal_link link = { .origin_hash = p->i + 1, .sequence = p->produced };
        int rc;
        if (c->route == RT_ROUTED) {
            rc = mrt_svc_send_routed(ss, NULL, 0, &link, c->payload, c->len, NULL);
        } else if (c->route == RT_LOCAL) {
            rc = send_local(ss, p->lb, p->shard, &link, c->payload, c->len);
        } else {
            unsigned dst = p->rr++ & 1u;
            rc = mrt_svc_send(ss, dst, c->worker_id[dst], &link, c->payload, c->len);
        }
        if (rc == MRT_OK) {
            p->produced++;
        } else if (rc == MRT_SVC_EPOOL || rc == MRT_SVC_EINFLIGHT || rc == MRT_SHARD_EFULL) {
            p->refused++;
            break;
        } else {
            p->errors++;
            atomic_fetch_add(&c->lost, 1);
            break;
        }
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

/* Services, hosts and the hook of shard p, on the thread that initialised the shard. */
static int shard_setup(pl_shard *p)
{
    pl_ctx *c = p->c;
    int rc = mrt_svc_shard_init(c->svc, mrt_mesh_shard(c->mesh, p->i), &p->ss);
    if (rc == MRT_OK) {
        p->lb = mrt_svc_lb(p->ss);
        p->shard = mrt_svc_shard_get(p->ss);
    }
    if (rc == MRT_OK && c->mode == PL_INGRESS && p->i == 0)
        rc = make_host(p, p->ss, 0, &p->router);
    if (rc == MRT_OK)
        rc = make_host(p, p->ss, 1, &p->worker);
    if (rc == MRT_OK)
        rc = mrt_svc_add_hook(p->ss, c->mode == PL_INGRESS ? mark_hook : produce_hook, p);
    return rc;
}

static void shard_teardown(pl_shard *p)
{
    if (p->ss) {
        if (p->router)
            (void)mrt_svc_host_remove(p->ss, mrt_host_origin(p->router), NULL);
        if (p->worker)
            (void)mrt_svc_host_remove(p->ss, mrt_host_origin(p->worker), NULL);
        mrt_svc_shard_fini(p->ss);
    }
    mrt_host_destroy(p->router);
    mrt_host_destroy(p->worker);
    p->ss = NULL;
    p->lb = NULL;
    p->shard = NULL;
    p->router = p->worker = NULL;
}

static void *shard_main(void *arg)
{
    pl_shard *p = arg;
    pl_ctx *c = p->c;
    if (c->pinned)
        (void)mrt_topo_bind_thread(c->topo, &c->cpu[p->i]);
    mrt_shard *s = mrt_mesh_shard(c->mesh, p->i);
    p->rc = mrt_shard_init_local(s);
    bool inited = p->rc == MRT_OK;
    if (p->rc == MRT_OK)
        p->rc = shard_setup(p);
    pthread_barrier_wait(&c->bar);
    if (p->rc == MRT_OK)
        mrt_shard_run(s);
    p->a1 = mrt_alloc_counts_now();
    shard_teardown(p);
    if (inited)
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

/* Ingress mode: inject `n` events, at most `window` in the pipeline. */
static void inject(pl_ctx *c, uint64_t *seq, uint64_t n, uint64_t window)
{
    uint8_t *payload = c->payload;
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

/* shard_ mode: the benchmark thread waits asleep, so the shards have both CPUs. */
static void wait_delivered(pl_ctx *c, uint64_t target)
{
    struct timespec ts = { 0, 200000 };
    while (delivered(c) < target && atomic_load(&c->lost) == 0)
        nanosleep(&ts, NULL);
}

static void set_quota(pl_ctx *c, uint64_t per_shard)
{
    for (unsigned i = 0; i < NSH; i++)
        atomic_store_explicit(&c->sh[i].quota, per_shard, memory_order_release);
}

/* one_: both shards on this thread, polled in turn. */
static void run_one(pl_ctx *c, uint64_t events, uint64_t warm, pl_result *res)
{
    bool up = true;
    for (unsigned i = 0; i < NSH && up; i++)
        up = mrt_shard_init_local(mrt_mesh_shard(c->mesh, i)) == MRT_OK;
    for (unsigned i = 0; i < NSH && up; i++)
        up = (c->sh[i].rc = shard_setup(&c->sh[i])) == MRT_OK;
    mrt_shard *s0 = mrt_mesh_shard(c->mesh, 0), *s1 = mrt_mesh_shard(c->mesh, 1);
    if (up) {
        set_quota(c, warm);
        while (delivered(c) < 2 * warm && atomic_load(&c->lost) == 0) {
            mrt_shard_poll_once(s0);
            mrt_shard_poll_once(s1);
        }
        uint64_t done0 = delivered(c);
        uint64_t target = done0 + (events & ~1ull);
        mrt_alloc_counts a0 = mrt_alloc_counts_now();
        uint64_t t0 = mrt_bench_thread_cpu_ns();
        set_quota(c, warm + events / 2);
        while (delivered(c) < target && atomic_load(&c->lost) == 0) {
            mrt_shard_poll_once(s0);
            mrt_shard_poll_once(s1);
        }
        res->ns = mrt_bench_thread_cpu_ns() - t0;
        res->allocs = mrt_alloc_counts_now().allocs - a0.allocs;
        res->events = delivered(c) - done0;
    }
    mrt_mesh_request_stop(c->mesh);
    for (unsigned k = 0; up && k < 10000000 && !mrt_mesh_try_drain(c->mesh); k++) {
        mrt_shard_poll_once(s0);
        mrt_shard_poll_once(s1);
    }
    for (unsigned i = 0; i < NSH; i++)
        shard_teardown(&c->sh[i]);
    res->ok = up && mrt_mesh_drained(c->mesh);
}

/* shard_ and ingress_: two pinned shard threads. */
static void run_threads(pl_ctx *c, uint64_t events, uint64_t warm, pl_result *res)
{
    pthread_barrier_init(&c->bar, NULL, NSH + 1);
    pthread_t tid[NSH];
    for (unsigned i = 0; i < NSH; i++)
        pthread_create(&tid[i], NULL, shard_main, &c->sh[i]);
    pthread_barrier_wait(&c->bar);
    bool up = c->sh[0].rc == MRT_OK && c->sh[1].rc == MRT_OK;
    if (up && c->mode == PL_SHARD) {
        set_quota(c, warm);
        wait_delivered(c, 2 * warm);
        atomic_store(&c->phase, true);
        while (atomic_load(&c->lost) == 0 &&
               (!atomic_load(&c->sh[0].marked) || !atomic_load(&c->sh[1].marked)))
            rte_pause(); /* each shard marks in its next iteration */
        uint64_t done0 = delivered(c);
        uint64_t target = done0 + (events & ~1ull);
        uint64_t t0 = mrt_mesh_clock(c->mesh);
        atomic_store_explicit(&c->timing, 1, memory_order_release);
        set_quota(c, warm + events / 2);
        wait_delivered(c, target);
        atomic_store_explicit(&c->timing, 2, memory_order_release);
        struct timespec ts = { 0, 100000 };
        for (int k = 0; k < 20000 && (atomic_load(&c->sh[0].tstate_seen) != 2 ||
                                      atomic_load(&c->sh[1].tstate_seen) != 2); k++)
            nanosleep(&ts, NULL);
        res->oncpu = 1.0;
        for (unsigned i = 0; i < NSH; i++) {
            const pl_shard *p = &c->sh[i];
            double f = p->now1 > p->now0 && p->cpu1 >= p->cpu0
                           ? (double)(p->cpu1 - p->cpu0) / (double)(p->now1 - p->now0) : 0;
            res->oncpu = f < res->oncpu ? f : res->oncpu;
        }
        uint64_t t1 = 0;
        for (unsigned i = 0; i < NSH; i++) {
            uint64_t t = atomic_load_explicit(&c->sh[i].last_at, memory_order_relaxed);
            t1 = t > t1 ? t : t1;
        }
        res->ns = t1 > t0 ? t1 - t0 : 1;
        res->events = delivered(c) - done0;
    } else if (up) {
        uint64_t seq = 0, window = c->latency ? 1 : 256;
        inject(c, &seq, c->latency ? 100 : warm, window); /* warm-up: connections, caches */
        atomic_store(&c->phase, true);
        mrt_alloc_counts a0 = mrt_alloc_counts_now();
        uint64_t done0 = delivered(c);
        while (!atomic_load(&c->sh[0].marked) || !atomic_load(&c->sh[1].marked))
            rte_pause();
        uint64_t t0 = mrt_bench_now_ns();
        c->lat_off = seq; /* samples indexed from the first timed event */
        inject(c, &seq, events, window);
        res->ns = mrt_bench_now_ns() - t0;
        res->allocs = mrt_alloc_counts_now().allocs - a0.allocs;
        res->events = delivered(c) - done0;
    }
    mrt_mesh_stop(c->mesh);
    for (unsigned i = 0; i < NSH; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&c->bar);
    for (unsigned i = 0; i < NSH && up; i++)
        res->allocs += c->sh[i].a1.allocs - c->sh[i].a0.allocs;
    res->ok = up;
}

pl_result pl_pipeline_once(pl_mode mode, const mrt_topo *topo, const mrt_cpu *cpu, bool pinned,
                               bool idle_wake, pl_route route, uint32_t len, uint64_t events, uint64_t *lat)
{
    pl_result res = { 0 };
    static pl_ctx c; /* large and aligned; one run at a time */
    memset(&c, 0, sizeof c);
    c.mode = mode;
    c.route = route;
    c.len = len;
    c.latency = lat != NULL;
    c.lat = lat;
    c.topo = topo;
    c.pinned = pinned;
    for (unsigned i = 0; i < NSH; i++) {
        c.cpu[i] = cpu[i];
        c.sh[i].c = &c;
        c.sh[i].i = i;
        c.sh[i].rr = i;
    }
    for (unsigned b = 0; b < MAX_LEN; b++)
        c.payload[b] = (uint8_t)b;
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
    if (mode == PL_SHARD)
        mc.idle_sleep_max_us = 0; /* busy polling: the timed figure is the pipeline's */
    mc.idle_wake = idle_wake;
    mrt_svc_config sc;
    mrt_svc_config_default(&sc);
    sc.max_payload = 4096;
    if (mrt_lb_domain_create(NULL, NSH, &c.dom) != MRT_OK ||
        mrt_lb_registry_compile(reg, 0, NULL, &snap) != MRT_OK ||
        mrt_lb_domain_publish(c.dom, snap) < 1 || mrt_mesh_create(&mc, &c.mesh) != MRT_OK)
        goto out;
    sc.domain = c.dom;
    if (mrt_svc_create(c.mesh, &sc, &c.svc) != MRT_OK ||
        (mode == PL_INGRESS && mrt_svc_set_output(c.svc, on_output, &c) != MRT_OK))
        goto out;
    /* Warm-up: caches, connections, and (full scale) every buffer of the 64 B class used once. */
    uint64_t warm = mode == PL_INGRESS ? 2000 : events >= 8192 ? 4096 : 1024; /* per shard */
    if (mode == PL_ONE)
        run_one(&c, events, warm, &res);
    else
        run_threads(&c, events, warm, &res);
    res.lost = atomic_load(&c.lost);
    res.refused = c.sh[0].refused + c.sh[1].refused;
    res.ok = res.ok && res.lost == 0 && res.events > 0;
out:
    mrt_svc_destroy(c.svc);
    mrt_mesh_destroy(c.mesh);
    mrt_lb_domain_destroy(c.dom);
    mrt_lb_registry_destroy(reg);
    return res;
}
