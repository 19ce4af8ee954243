/*
 * Publication: each shard composes its stats — shard, services, compute,
 * balancer, hosts, histograms — into one block once per poll iteration
 * (a services hook, after compute's) and writes it under a sequence lock;
 * readers on any thread copy it and retry until they got one publication
 * whole (stats.c). Field-by-field reads of counters the shard is bumping
 * were torn: ~96 % of reads of main's first cut broke `in >= delivered`.
 *
 * The seqlock, in C11 terms (Boehm, "Can seqlocks get along with
 * programming language memory models?", 2012): the data words are relaxed
 * atomics (no data race, TSan sees none); the writer makes the sequence
 * odd, a release fence keeps the data stores after it, and the even store
 * is a release; the reader loads the sequence with acquire, copies, and an
 * acquire fence keeps the copy before its re-check of the sequence.
 */
#include "runtime/rt_internal.h"

#include "compute/cp_internal.h"
#include "services/svc_internal.h"

#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

#define STATS_WORDS (sizeof(mrt_runtime_shard_stats) / sizeof(uint64_t))
#define HIST_WORDS (sizeof(mrt_hist) / sizeof(uint64_t))
_Static_assert(sizeof(mrt_runtime_shard_stats) % sizeof(uint64_t) == 0, "stats in words");
_Static_assert(sizeof(mrt_hist) % sizeof(uint64_t) == 0, "histogram in words");

/*
 * One shard's block: written by the shard only, read by anyone. Aligned and
 * padded to 128 bytes (an adjacent-line prefetch pair), so no two shards'
 * blocks share a line and the shard's hot counters live elsewhere.
 */
struct rt_pub_block {
    alignas(128) _Atomic uint64_t seq; /* odd while the shard writes */
    _Atomic uint64_t stats[STATS_WORDS];
    _Atomic uint64_t hist[MRT_RT_HIST_KINDS][HIST_WORDS];
};

/*
 * An idle iteration changes nothing but the idle cycles and the iteration
 * count: publishing each one tripled an idle iteration (62 -> 186 ns of
 * shard CPU, measured), which is how late a spinning shard notices a
 * message (skipped, the check costs no more than no hook at all, measured
 * in the same build). So a block goes out after every iteration with services
 * activity, after the one that follows it (its busy time is accounted at
 * the next iteration's start), and at least every IDLE_PUB_NS otherwise.
 */
#define IDLE_PUB_NS 1000000u

/* Above this many hosts, the host sums are refreshed at most once per HOST_SUM_NS. */
#define HOST_SUM_EVERY_ITER 64u
#define HOST_SUM_NS 1000000u

/* The shard's side: owner only, from the shard's arena. */
typedef struct rt_obs {
    struct rt_pub_block *blk;
    mrt_mesh *mesh;
    mrt_shard *shard;
    mrt_svc_shard *ss;
    const cp_shard *cs;          /* compute's part (its init ran before this one's) */
    unsigned id;
    double ns_per_cycle;
    uint64_t version;
    uint64_t sig;                /* activity signature at the last publication */
    uint64_t last_pub_ns;
    bool trail;                  /* the next iteration publishes too */
    uint64_t prev_busy_cycles;
    uint64_t prev_in;            /* messages in (all kinds) at the previous publication */
    uint64_t host_mark;          /* activity figure at the last host sum */
    uint64_t host_sum_ns;
    bool host_stale;
    mrt_hist busy, occ;          /* recorded here; services records the other two */
    uint64_t hist_pub[MRT_RT_HIST_KINDS]; /* count of each copy in the block */
    mrt_runtime_shard_stats b;   /* the block being composed */
} rt_obs;

static inline void store_words(_Atomic uint64_t *dst, const void *src, size_t words)
{
    const unsigned char *p = src;
    for (size_t k = 0; k < words; k++) {
        uint64_t v;
        memcpy(&v, p + k * sizeof v, sizeof v);
        atomic_store_explicit(&dst[k], v, memory_order_relaxed);
    }
}

static inline void load_words(const _Atomic uint64_t *src, void *dst, size_t words)
{
    unsigned char *p = dst;
    for (size_t k = 0; k < words; k++) {
        uint64_t v = atomic_load_explicit(&src[k], memory_order_relaxed);
        memcpy(p + k * sizeof v, &v, sizeof v);
    }
}

static void host_add(mrt_host_stats *sum, const mrt_host_stats *h)
{
    sum->processed += h->processed;
    sum->emitted += h->emitted;
    sum->errors += h->errors;
    sum->snapshots += h->snapshots;
    sum->restores += h->restores;
    sum->spills += h->spills;
}

/*
 * Host counters summed over the live hosts plus the retired ones. Hosts
 * change only while this shard handles messages, so the sum is redone only
 * after some were: O(hosts) per busy iteration, rate-limited beyond
 * HOST_SUM_EVERY_ITER hosts (the sum may then lag by up to HOST_SUM_NS).
 */
static void sum_hosts(rt_obs *o, const cp_shard *cs, uint64_t mark)
{
    mrt_runtime_shard_stats *b = &o->b;
    if (mark == o->host_mark && !o->host_stale)
        return;
    if (cs->count > HOST_SUM_EVERY_ITER && b->published_ns - o->host_sum_ns < HOST_SUM_NS &&
        o->version > 1) {
        o->host_stale = true;
        return;
    }
    mrt_host_stats sum = cs->hosts_retired;
    uint64_t live = 0;
    for (const cp_daemon *d = cs->list; d; d = d->next) {
        if (d->host == NULL)
            continue;
        mrt_host_stats hs;
        mrt_host_stats_get(d->host, &hs);
        host_add(&sum, &hs);
        live++;
    }
    b->hosts = sum;
    b->hosts_live = live;
    o->host_mark = mark;
    o->host_sum_ns = b->published_ns;
    o->host_stale = false;
}

/* Compose this iteration's block on the shard thread (no allocation, no lock, no clock read). */
static void compose(rt_obs *o)
{
    mrt_runtime_shard_stats *b = &o->b;
    b->version = ++o->version;
    b->published_ns = mrt_shard_now(o->shard);
    mrt_shard_stats_read(o->mesh, o->id, &b->shard);
    mrt_svc_stats_get(o->ss, &b->svc);
    mrt_lb_shard *lb = mrt_svc_lb(o->ss);
    if (lb)
        mrt_lb_shard_stats_get(lb, &b->lb);
    const mrt_svc_stats *v = &b->svc;
    b->msgs_in[MRT_RT_MSG_EVENT] = v->received;
    b->msgs_out[MRT_RT_MSG_EVENT] = v->sent;
    b->msgs_in[MRT_RT_MSG_RETURN] = v->ret_msgs_received;
    b->msgs_out[MRT_RT_MSG_RETURN] = v->return_msgs - v->done_msgs_sent;
    b->msgs_in[MRT_RT_MSG_COMPLETION] = v->done_msgs_received;
    b->msgs_out[MRT_RT_MSG_COMPLETION] = v->done_msgs_sent;
    b->msgs_in[MRT_RT_MSG_USER] = v->user_msgs_received;
    b->msgs_out[MRT_RT_MSG_USER] = v->user_msgs_sent;
    b->msgs_in[MRT_RT_MSG_CONTROL] = b->shard.control_handled;
    b->msgs_out[MRT_RT_MSG_EGRESS] = v->egressed;
    uint64_t in = 0;
    for (unsigned k = 0; k < MRT_RT_MSG_KINDS; k++)
        in += b->msgs_in[k];
    const cp_shard *cs = o->cs;
    if (cs) {
        b->compute = cs->st; /* compute's hook refreshed it earlier in this tick */
        for (unsigned k = 0; k < MRT_RT_HB_SLOTS && k < CP_HB_SLOTS; k++) {
            b->handback_why[k] = cs->hb[k].why;
            b->handback_count[k] = cs->hb[k].count;
        }
        b->handback_other = cs->hb_other;
        sum_hosts(o, cs, in + cs->count + cs->hosts_retired.processed);
    }
    const mrt_hist *rtt = mrt_svc_hist(o->ss, MRT_SVC_HIST_COMPLETION_RTT);
    b->completion_rtt_sum_ns = rtt ? rtt->sum : 0;
    /* Busy time of the last iteration that did work: the poll loop's own TSC accounting. */
    uint64_t busy = b->shard.busy_cycles - o->prev_busy_cycles;
    o->prev_busy_cycles = b->shard.busy_cycles;
    if (busy)
        mrt_hist_record(&o->busy, (uint64_t)((double)busy * o->ns_per_cycle));
    /* Occupancy, after this iteration's drain, when it handled something. */
    if (in != o->prev_in) {
        b->ring_occupancy = mrt_shard_backlog(o->shard);
        mrt_hist_record(&o->occ, b->ring_occupancy);
    }
    o->prev_in = in;
}

static const mrt_hist *hist_of(const rt_obs *o, unsigned k)
{
    switch (k) {
    case MRT_RT_HIST_ROUTE_DELIVER: return mrt_svc_hist(o->ss, MRT_SVC_HIST_DELIVER);
    case MRT_RT_HIST_COMPLETION_RTT: return mrt_svc_hist(o->ss, MRT_SVC_HIST_COMPLETION_RTT);
    case MRT_RT_HIST_ITER_BUSY: return &o->busy;
    default: return &o->occ;
    }
}

/* Write the block: sequence odd, the words, sequence even. */
static void publish(rt_obs *o)
{
    compose(o);
    struct rt_pub_block *p = o->blk;
    uint64_t seq = atomic_load_explicit(&p->seq, memory_order_relaxed);
    atomic_store_explicit(&p->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    store_words(p->stats, &o->b, STATS_WORDS);
    for (unsigned k = 0; k < MRT_RT_HIST_KINDS; k++) {
        const mrt_hist *h = hist_of(o, k);
        if (h == NULL || h->count == o->hist_pub[k])
            continue; /* unchanged: the copy in the block is still this one */
        store_words(p->hist[k], h, HIST_WORDS);
        o->hist_pub[k] = h->count;
    }
    atomic_store_explicit(&p->seq, seq + 2, memory_order_release);
}

/* Counters that move whenever services or compute did anything (a handful of loads). */
static inline uint64_t activity(const mrt_svc_shard *ss, const cp_shard *cs)
{
    const mrt_svc_stats *v = &ss->st;
    /* Whatever a shard does starts with a message in or a send attempt (deferral included). */
    return v->received + v->sent + v->ret_msgs_received + v->done_msgs_received +
           v->user_msgs_received + v->refused_full + v->refused_pool + v->refused_inflight +
           (cs ? cs->count + cs->deferred_now : 0);
}

static void on_tick(mrt_svc_shard *ss, bool draining, void *ctx)
{
    (void)draining;
    rt_obs *o = ctx;
    uint64_t sig = activity(ss, o->cs), now = mrt_shard_now(o->shard);
    if (__builtin_expect(sig == o->sig && !o->trail, 1) && now - o->last_pub_ns < IDLE_PUB_NS)
        return;
    o->trail = sig != o->sig;
    o->sig = sig;
    o->last_pub_ns = now;
    publish(o);
}

static int obs_init(mrt_svc_shard *ss, void *ctx, void **state)
{
    mrt_runtime *rt = ctx;
    const mrt_allocator *a = mrt_svc_allocator(ss);
    rt_obs *o = mrt_alloc_aligned(a, sizeof(*o), 128);
    if (o == NULL)
        return MRT_ENOMEM;
    memset(o, 0, sizeof(*o));
    o->ss = ss;
    o->cs = cp_of(ss);
    o->shard = mrt_svc_shard_get(ss);
    o->mesh = rt->mesh;
    o->id = mrt_shard_id(o->shard);
    o->blk = &rt->pub[o->id];
    o->ns_per_cycle = 1e9 / (double)mrt_tsc_hz();
    o->b.tsc_hz = mrt_tsc_hz();
    o->host_stale = true;
    int rc = mrt_svc_add_hook(ss, on_tick, o);
    if (rc != MRT_OK) {
        mrt_free_aligned(a, o, sizeof(*o), 128);
        return rc;
    }
    publish(o);
    *state = o;
    return MRT_OK;
}

/*
 * After the drain, on the shard thread (services runs finis in reverse, so
 * before compute's): the final block. Hosts compute destroys after this
 * keep their counters in the retired sum, so the totals published here stay
 * the shard's totals.
 */
static void obs_fini(mrt_svc_shard *ss, void *ctx, void *state)
{
    (void)ctx;
    rt_obs *o = state;
    if (o == NULL)
        return;
    o->host_stale = true;
    publish(o);
    mrt_free_aligned(mrt_svc_allocator(ss), o, sizeof(*o), 128);
}

int mrt_publish_setup(mrt_runtime *rt)
{
    unsigned n = mrt_mesh_size(rt->mesh);
    rt->pub = mrt_alloc_aligned(NULL, sizeof(*rt->pub) * n, alignof(struct rt_pub_block));
    if (rt->pub == NULL)
        return MRT_ENOMEM;
    memset(rt->pub, 0, sizeof(*rt->pub) * n); /* before any shard thread exists */
    return mrt_svc_register_subsystem(rt->svc, "runtime-stats", obs_init, obs_fini, rt, NULL);
}

void mrt_publish_teardown(mrt_runtime *rt)
{
    if (rt->pub)
        mrt_free_aligned(NULL, rt->pub, sizeof(*rt->pub) * mrt_mesh_size(rt->mesh),
                         alignof(struct rt_pub_block));
    rt->pub = NULL;
}

/* A writer is mid-block: spin briefly, then let it run (it may have been preempted). */
static inline void backoff(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        return;
    }
    sched_yield();
}

/* Copy `words` words at `src` of shard i's block into dst, whole from one publication. */
static void read_consistent(const struct rt_pub_block *p, const _Atomic uint64_t *src, void *dst,
                            size_t words)
{
    unsigned spins = 0;
    for (;;) {
        uint64_t s0 = atomic_load_explicit(&p->seq, memory_order_acquire);
        if ((s0 & 1u) == 0) {
            load_words(src, dst, words);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&p->seq, memory_order_relaxed) == s0)
                return;
        }
        backoff(&spins);
    }
}

void mrt_publish_read(const mrt_runtime *rt, unsigned i, mrt_runtime_shard_stats *out)
{
    const struct rt_pub_block *p = &rt->pub[i];
    read_consistent(p, p->stats, out, STATS_WORDS);
}

void mrt_publish_read_hist(const mrt_runtime *rt, unsigned i, mrt_runtime_hist_kind kind,
                           mrt_hist *out)
{
    const struct rt_pub_block *p = &rt->pub[i];
    read_consistent(p, p->hist[kind], out, HIST_WORDS);
}
