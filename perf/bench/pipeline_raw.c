/* The pipeline suite's rte_ring baselines (see pipeline_raw.h). */
#include "pipeline_raw.h"

#include "bench.h"

#include <pthread.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <stdatomic.h>
#include <string.h>

#define RAW_SLOTS 2048 /* 16-byte elements: 1024 raw or 512 event messages */
#define BURST 32
#define MAX_WORDS 8

const char *const pl_raw_name[PL_RAW_COUNT] = { "raw_ring_32B_1t", "raw_ring_32B",
                                                "raw_ring_32B_duplex", "event_ring_64B_1t",
                                                "event_ring_64B" };
const char *const pl_raw_only[PL_RAW_COUNT] = { "raw_1t", "raw", "raw_duplex", "event_1t",
                                                "event" };

static bool is_event(pl_raw_kind k)
{
    return k == PL_EV_1T || k == PL_EV_1WAY;
}

int pl_raw_threads(pl_raw_kind k)
{
    return k == PL_RAW_1T || k == PL_EV_1T ? 1 : 2;
}

unsigned pl_raw_bytes(pl_raw_kind k)
{
    return is_event(k) ? 64 : 32;
}

/*
 * The daemon stand-in: reads the link's origin and sequence and the
 * payload, as a process callback would. Called through a volatile pointer
 * so it stays a call, as a vtable's is.
 */
static __attribute__((noinline)) void ev_deliver(uint64_t *sink, const uint64_t *msg)
{
    *sink += (msg[1] ^ msg[2]) + msg[5] + msg[6];
}

typedef void (*ev_fn)(uint64_t *, const uint64_t *);
static ev_fn volatile ev_deliver_ptr = ev_deliver;

/* One side's view: message size in words, and whether it carries an event. */
typedef struct raw_io {
    struct rte_ring *ring;
    unsigned words;
    bool event;
    _Alignas(64) uint64_t buf[BURST * MAX_WORDS];
} raw_io;

static struct rte_ring *ring_new(void)
{
    ssize_t sz = rte_ring_get_memsize_elem(16, RAW_SLOTS);
    struct rte_ring *r = sz > 0 ? mrt_alloc_aligned(NULL, (size_t)sz, 64) : NULL;
    if (r)
        rte_ring_init(r, "pl", RAW_SLOTS, RING_F_SP_ENQ | RING_F_SC_DEQ);
    return r;
}

static void ring_free(struct rte_ring *r)
{
    if (r)
        mrt_free_aligned(NULL, r, (size_t)rte_ring_get_memsize_elem(16, RAW_SLOTS), 64);
}

/* Write n messages (raw: the sequence in word 0; event: every word) and enqueue them all or none. */
static inline unsigned put(raw_io *io, uint64_t seq, unsigned n)
{
    unsigned w = io->words;
    for (unsigned i = 0; i < n; i++) {
        uint64_t *m = &io->buf[i * w];
        if (!io->event) {
            m[0] = seq + i;
        } else {
            m[0] = (uint64_t)16 << 32 | 7; /* payload length, daemon index */
            m[1] = 1;                      /* link: origin hash */
            m[2] = seq + i;                /* sequence */
            m[3] = seq ^ 0x9e3779b97f4a7c15ull; /* parent hash */
            m[4] = 1;                      /* horizon */
            m[5] = seq;                    /* 16 B payload */
            m[6] = ~seq;
            m[7] = seq;                    /* send time */
        }
    }
    return rte_ring_sp_enqueue_bulk_elem(io->ring, io->buf, 16, n * w / 2, NULL) ? n : 0;
}

/* Dequeue up to a burst and read each message (raw: word 0; event: handed to ev_deliver). */
static inline unsigned get(raw_io *io, uint64_t *sink)
{
    unsigned w = io->words;
    unsigned k = rte_ring_sc_dequeue_burst_elem(io->ring, io->buf, 16, BURST * w / 2, NULL) * 2 / w;
    for (unsigned i = 0; i < k; i++) {
        if (io->event)
            ev_deliver_ptr(sink, &io->buf[i * w]);
        else
            *sink += io->buf[i * w];
    }
    return k;
}

/* One thread: a burst in, the same burst out; CPU ns of the calling thread. */
static uint64_t run_1t(bool event, uint64_t total)
{
    static raw_io in, out; /* one baseline at a time */
    in.ring = out.ring = ring_new();
    if (in.ring == NULL)
        return 0;
    in.words = out.words = event ? 8 : 4;
    in.event = out.event = event;
    memset(out.buf, 0, sizeof out.buf);
    uint64_t sink = 0, got = 0;
    for (uint64_t seq = 0; seq < 4096; seq += put(&out, seq, BURST)) /* warm-up */
        (void)get(&in, &sink);
    uint64_t t0 = mrt_bench_thread_cpu_ns();
    for (uint64_t seq = 0; seq < total;) {
        unsigned n = total - seq < BURST ? (unsigned)(total - seq) : BURST;
        seq += put(&out, seq, n);
        got += get(&in, &sink);
    }
    uint64_t ns = mrt_bench_thread_cpu_ns() - t0;
    __asm__ volatile("" : : "r"(sink), "r"(got));
    ring_free(in.ring);
    return ns ? ns : 1;
}

typedef struct raw_ctx {
    struct rte_ring *ring[2]; /* [0]: CPU 0 -> CPU 1, [1]: CPU 1 -> CPU 0 */
    uint64_t total;
    const mrt_topo *topo;
    const mrt_cpu *cpu;
    bool pinned, duplex, event;
    atomic_int ready;
    atomic_bool go;
    uint64_t t_end[2];
    double oncpu[2];
} raw_ctx;

typedef struct raw_arg {
    raw_ctx *r;
    int me;
    raw_io tx, rx;
} raw_arg;

/* Side `me`. One-way: side 0 produces, side 1 consumes; duplex: each does half of both. */
static void *side(void *arg)
{
    raw_arg *a = arg;
    raw_ctx *r = a->r;
    int me = a->me;
    if (r->pinned)
        (void)mrt_topo_bind_thread(r->topo, &r->cpu[me]);
    uint64_t to_send = r->duplex ? r->total / 2 : (me == 0 ? r->total : 0);
    uint64_t to_get = r->duplex ? r->total / 2 : (me == 1 ? r->total : 0);
    a->tx.ring = r->ring[me];
    a->rx.ring = r->ring[r->duplex ? 1 - me : 0];
    a->tx.words = a->rx.words = r->event ? 8 : 4;
    a->tx.event = a->rx.event = r->event;
    atomic_fetch_add(&r->ready, 1);
    while (!atomic_load(&r->go))
        rte_pause();
    uint64_t sent = 0, got = 0, sink = 0;
    uint64_t c0 = mrt_bench_thread_cpu_ns(), w0 = mrt_bench_now_ns();
    while (sent < to_send || got < to_get) {
        unsigned work = 0;
        if (sent < to_send) {
            unsigned n = to_send - sent < BURST ? (unsigned)(to_send - sent) : BURST;
            unsigned k = put(&a->tx, sent, n);
            sent += k;
            work += k;
        }
        if (got < to_get) {
            unsigned k = get(&a->rx, &sink);
            got += k;
            work += k;
        }
        if (work == 0)
            rte_pause();
    }
    r->t_end[me] = mrt_bench_now_ns();
    uint64_t c1 = mrt_bench_thread_cpu_ns();
    r->oncpu[me] = r->t_end[me] > w0 ? (double)(c1 - c0) / (double)(r->t_end[me] - w0) : 1;
    __asm__ volatile("" : : "r"(sink));
    return NULL;
}

/* Two threads; wall ns from the start signal to the later side's end. */
static uint64_t run_2t(const mrt_topo *topo, const mrt_cpu *cpu, bool pinned, bool duplex,
                       bool event, uint64_t total, double *oncpu)
{
    raw_ctx r = { .total = total & ~1ull, .topo = topo, .cpu = cpu, .pinned = pinned,
                  .duplex = duplex, .event = event };
    static raw_arg args[2]; /* one baseline at a time */
    r.ring[0] = ring_new();
    r.ring[1] = ring_new();
    atomic_init(&r.ready, 0);
    atomic_init(&r.go, false);
    uint64_t ns = 0;
    if (r.ring[0] && r.ring[1]) {
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            args[i].r = &r;
            args[i].me = i;
            pthread_create(&t[i], NULL, side, &args[i]);
        }
        while (atomic_load(&r.ready) < 2)
            rte_pause();
        uint64_t t0 = mrt_bench_now_ns();
        atomic_store(&r.go, true);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        uint64_t t1 = r.t_end[0] > r.t_end[1] ? r.t_end[0] : r.t_end[1];
        ns = t1 > t0 ? t1 - t0 : 1;
        *oncpu = r.oncpu[0] < r.oncpu[1] ? r.oncpu[0] : r.oncpu[1];
    }
    ring_free(r.ring[0]);
    ring_free(r.ring[1]);
    return ns;
}

double pl_raw_mops(pl_raw_kind k, const mrt_topo *topo, const mrt_cpu cpu[2], bool pinned,
                   uint64_t total, double *oncpu)
{
    *oncpu = 1;
    uint64_t ns = pl_raw_threads(k) == 1
                      ? run_1t(is_event(k), total)
                      : run_2t(topo, cpu, pinned, k == PL_RAW_DUPLEX, is_event(k), total, oncpu);
    return ns ? (double)(total & ~1ull) / (double)ns * 1e3 : 0;
}
