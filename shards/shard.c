/* Shards: inbound rings, outbound bursts, the poll loop, the drain. */
#include "shards/shard_internal.h"

#include <rte_pause.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RING_NAME "mrt"

/*
 * A 32-byte message travels as two 16-byte ring elements. DPDK copies
 * 16-byte elements with 32-byte memcpys but 32-byte elements one 32-bit
 * word at a time (it cannot prove the tables do not alias): measured with
 * meshrt-bench ring, the same 32 bytes move several times faster this way.
 * Producers enqueue whole messages only (bulk, even element counts) and
 * consumers dequeue even counts, so a message is never split.
 */
#define ELEM_SIZE 16u
#define ELEMS_PER_MSG (sizeof(mrt_msg) / ELEM_SIZE)
_Static_assert(sizeof(mrt_msg) == 2 * ELEM_SIZE, "a message is two ring elements");

/* Single producer: enqueue up to n whole messages, return how many went. */
static inline unsigned ring_put_sp(struct rte_ring *r, const mrt_msg *m, unsigned n)
{
    unsigned free_space;
    if (rte_ring_sp_enqueue_bulk_elem(r, m, ELEM_SIZE, n * ELEMS_PER_MSG, &free_space))
        return n;
    unsigned fit = free_space / ELEMS_PER_MSG;
    if (fit == 0)
        return 0;
    return rte_ring_sp_enqueue_bulk_elem(r, m, ELEM_SIZE, fit * ELEMS_PER_MSG, NULL) ? fit : 0;
}

/*
 * Multi producer: one whole message or nothing. The ingress and control
 * rings are single-producer rings whose producers (any thread) take the
 * ring's lock: DPDK's MP modes do not give the ordering a consumer needs
 * under C11 (default mode: a producer waits for the previous tail with a
 * relaxed load) or that ThreadSanitizer can see (HTS/RTS: 32-bit halves of
 * a 64-bit word); see core/spin.h. The lock's release/acquire orders each
 * producer's slots and tail store before the next producer's tail store,
 * so the consumer's acquire of the last tail orders every earlier message.
 */
static inline bool ring_put_mp(struct rte_ring *r, mrt_spin *lock, const mrt_msg *m)
{
    mrt_spin_lock(lock);
    bool ok = rte_ring_sp_enqueue_bulk_elem(r, m, ELEM_SIZE, ELEMS_PER_MSG, NULL) != 0;
    mrt_spin_unlock(lock);
    return ok;
}

/* Single consumer: up to max whole messages. */
static inline unsigned ring_get_sc(struct rte_ring *r, mrt_msg *buf, unsigned max)
{
    return rte_ring_sc_dequeue_burst_elem(r, buf, ELEM_SIZE, max * ELEMS_PER_MSG, NULL) /
           ELEMS_PER_MSG;
}

const char *mrt_shard_strerror(int status)
{
    switch (status) {
    case MRT_SHARD_EFULL: return "destination ring and overflow queue are full";
    case MRT_SHARD_EDEST: return "no such destination shard";
    case MRT_SHARD_ETYPE: return "message type out of range";
    case MRT_SHARD_ECONFIG: return "invalid mesh configuration";
    case MRT_SHARD_ERING: return "rte_ring_init refused the ring";
    case MRT_SHARD_ESTOPPED: return "shard no longer accepts messages";
    case MRT_SHARD_ENOTREADY: return "destination shard is not initialised";
    default: return NULL;
    }
}

static bool is_pow2(unsigned v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static uint32_t next_pow2(uint32_t v)
{
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

void mrt_mesh_config_default(mrt_mesh_config *cfg, unsigned shards)
{
    cfg->shards = shards;
    cfg->ring_size = 1024;
    cfg->burst = 32;
    cfg->overflow = 0;   /* 0 = ring_size */
    cfg->budget = 0;     /* 0 = 4 * burst * shards */
    cfg->idle_spin = 1024;
    cfg->idle_sleep_max_us = 100;
    cfg->stats_interval_ms = 1000;
}

int mrt_mesh_config_check(const mrt_mesh_config *cfg, const char **why)
{
    const char *w = NULL;
    if (cfg == NULL)
        w = "configuration is NULL";
    else if (cfg->shards == 0)
        w = "shard count is 0";
    else if (cfg->shards > MRT_MAX_SHARDS)
        w = "too many shards";
    else if (cfg->burst == 0 || cfg->burst > MRT_MAX_BURST)
        w = "burst must be 1..256";
    else if (!is_pow2(cfg->ring_size))
        w = "ring size must be a power of two";
    else if (cfg->ring_size <= cfg->burst)
        w = "ring size must be larger than the burst size";
    else if (cfg->ring_size > (1u << 24))
        w = "ring size above 16M slots";
    else if (cfg->overflow > (1u << 24))
        w = "overflow above 16M messages";
    else if (cfg->stats_interval_ms == 0)
        w = "stats interval is 0";
    if (why)
        *why = w;
    return w ? MRT_SHARD_ECONFIG : MRT_OK;
}

int mrt_mesh_create(const mrt_mesh_config *cfg, mrt_mesh **out)
{
    int rc = mrt_mesh_config_check(cfg, NULL);
    if (rc != MRT_OK)
        return rc;
    if (out == NULL)
        return MRT_EINVAL;
    mrt_mesh *m = mrt_alloc_aligned(NULL, sizeof(*m), MRT_NO_SHARE);
    if (m == NULL)
        return MRT_ENOMEM;
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    if (m->cfg.overflow == 0)
        m->cfg.overflow = m->cfg.ring_size;
    if (m->cfg.budget == 0)
        m->cfg.budget = 4 * m->cfg.burst * m->cfg.shards;
    m->shards = mrt_calloc(NULL, sizeof(*m->shards) * cfg->shards);
    if (m->shards == NULL) {
        mrt_free_aligned(NULL, m, sizeof(*m), MRT_NO_SHARE);
        return MRT_ENOMEM;
    }
    uint64_t tsc0 = mrt_rdtsc();
    double ns_per_cycle = 1e9 / (double)mrt_tsc_hz();
    m->tsc0 = tsc0;
    m->ns_per_cycle = ns_per_cycle;
    for (unsigned i = 0; i < cfg->shards; i++) {
        mrt_shard *s = mrt_alloc_aligned(NULL, sizeof(*s), MRT_NO_SHARE);
        if (s == NULL) {
            mrt_mesh_destroy(m);
            return MRT_ENOMEM;
        }
        memset(s, 0, sizeof(*s));
        s->mesh = m;
        s->id = i;
        s->n = cfg->shards;
        s->burst = m->cfg.burst;
        s->budget = m->cfg.budget;
        s->outq_cap = next_pow2(m->cfg.burst + m->cfg.overflow);
        s->arena = MRT_ARENA_DEFAULT;
        s->tsc0 = tsc0;
        s->ns_per_cycle = ns_per_cycle;
        s->stats_interval_ns = (uint64_t)m->cfg.stats_interval_ms * 1000000u;
        s->perf.set = MRT_PERF_SET_NONE;
        atomic_init(&s->ready, false);
        m->shards[i] = s;
    }
    *out = m;
    return MRT_OK;
}

/* Free the shard's rings and queues through `a` (the owner's handle, or an arena-explicit one). */
static void shard_free_local(mrt_shard *s, const mrt_allocator *a)
{
    if (s->in) {
        for (unsigned i = 0; i < s->n; i++)
            mrt_free_aligned(a, s->in[i], s->ring_bytes, MRT_CACHELINE);
        mrt_free(a, s->in, sizeof(*s->in) * s->n);
    }
    mrt_free_aligned(a, s->ingress, s->mp_ring_bytes, MRT_CACHELINE);
    mrt_free_aligned(a, s->control, s->mp_ring_bytes, MRT_CACHELINE);
    if (s->out) {
        for (unsigned i = 0; i < s->n; i++)
            mrt_free(a, s->out[i].buf, sizeof(mrt_msg) * s->outq_cap);
        mrt_free(a, s->out, sizeof(*s->out) * s->n);
    }
    mrt_free(a, s->dirty, sizeof(*s->dirty) * s->n);
    s->in = NULL;
    s->out = NULL;
    s->tx = (mrt_shard_tx_){ 0 }; /* the inline send must not reach the freed lanes */
    s->dirty = NULL;
    s->ingress = s->control = NULL;
}

/* The shard no longer has an arena: give it back (unless a live thread is still bound to it). */
static void shard_drop_arena(mrt_shard *s)
{
    if (s->arena == MRT_ARENA_DEFAULT)
        return;
    mrt_allocator_unbind_thread(s->arena); /* only if the calling thread is the one bound */
    (void)mrt_allocator_release_arena(s->arena);
    s->arena = MRT_ARENA_DEFAULT;
    s->alloc = mrt_allocator_for_arena(MRT_ARENA_DEFAULT);
}

int mrt_shard_fini_local(mrt_shard *s)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (!atomic_load_explicit(&s->ready, memory_order_relaxed) || s->finished)
        return MRT_ESTATE;
    atomic_store_explicit(&s->ready, false, memory_order_release);
    s->finished = true;
    /* On the owner: through its thread cache, then flushed back to the arena by the unbind. */
    shard_free_local(s, &s->alloc);
    shard_drop_arena(s);
    return MRT_OK;
}

void mrt_mesh_destroy(mrt_mesh *m)
{
    if (m == NULL)
        return;
    for (unsigned i = 0; i < m->cfg.shards; i++) {
        mrt_shard *s = m->shards[i];
        if (s == NULL)
            continue;
        mrt_perf_close(&s->perf);
        if (s->arena != MRT_ARENA_DEFAULT) {
            /* Not finalised by its owner: straight into its arena, correct from any thread. */
            mrt_allocator a = mrt_allocator_for_arena(s->arena);
            shard_free_local(s, &a);
            shard_drop_arena(s);
        }
        mrt_free_aligned(NULL, s, sizeof(*s), MRT_NO_SHARE);
    }
    mrt_free(NULL, m->shards, sizeof(*m->shards) * m->cfg.shards);
    mrt_free_aligned(NULL, m, sizeof(*m), MRT_NO_SHARE);
}

unsigned mrt_mesh_size(const mrt_mesh *m)
{
    return m->cfg.shards;
}

mrt_shard *mrt_mesh_shard(mrt_mesh *m, unsigned i)
{
    return (m && i < m->cfg.shards) ? m->shards[i] : NULL;
}

/* A ring of `count` message slots in the shard's memory; *rc says why on NULL. */
static struct rte_ring *ring_new(const mrt_allocator *a, unsigned count, unsigned flags,
                                 size_t *bytes, int *rc)
{
    count *= ELEMS_PER_MSG; /* capacity: count - 1 messages */
    ssize_t sz = rte_ring_get_memsize_elem(ELEM_SIZE, count);
    *rc = MRT_SHARD_ERING;
    if (sz < 0)
        return NULL;
    *bytes = (size_t)sz;
    *rc = MRT_ENOMEM;
    struct rte_ring *r = mrt_alloc_aligned(a, (size_t)sz, MRT_CACHELINE);
    if (r == NULL)
        return NULL;
    if (rte_ring_init(r, RING_NAME, count, flags) != 0) {
        mrt_free_aligned(a, r, (size_t)sz, MRT_CACHELINE);
        *rc = MRT_SHARD_ERING;
        return NULL;
    }
    *rc = MRT_OK;
    return r;
}

int mrt_shard_init_local(mrt_shard *s)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (atomic_load_explicit(&s->ready, memory_order_relaxed) || s->finished)
        return MRT_ESTATE;
    mrt_allocator arena;
    int rc = mrt_allocator_create_arena(&arena);
    if (rc != MRT_OK)
        return rc;
    rc = mrt_allocator_bind_thread(arena.arena, &s->alloc);
    if (rc != MRT_OK) {
        (void)mrt_allocator_release_arena(arena.arena);
        return rc;
    }
    s->arena = arena.arena;
    const mrt_allocator *a = &s->alloc;
    const mrt_mesh_config *cfg = &s->mesh->cfg;

    rc = MRT_ENOMEM;
    s->in = mrt_calloc(a, sizeof(*s->in) * s->n);
    s->out = mrt_calloc(a, sizeof(*s->out) * s->n);
    s->dirty = mrt_calloc(a, sizeof(*s->dirty) * s->n);
    if (!s->in || !s->out || !s->dirty)
        goto fail;
    for (unsigned i = 0; i < s->n; i++) {
        s->in[i] = ring_new(a, cfg->ring_size, RING_F_SP_ENQ | RING_F_SC_DEQ, &s->ring_bytes, &rc);
        if (s->in[i] == NULL)
            goto fail;
        rc = MRT_ENOMEM;
        s->out[i].buf = mrt_alloc(a, sizeof(mrt_msg) * s->outq_cap);
        if (s->out[i].buf == NULL)
            goto fail;
    }
    /* Ingress and control take producers from any thread: SP rings, producers serialised by
     * ingress_put/control_put (ring_put_mp), single consumer. */
    mrt_spin_init(&s->ingress_put);
    mrt_spin_init(&s->control_put);
    s->ingress = ring_new(a, cfg->ring_size, RING_F_SP_ENQ | RING_F_SC_DEQ, &s->mp_ring_bytes, &rc);
    if (s->ingress == NULL)
        goto fail;
    s->control = ring_new(a, cfg->ring_size, RING_F_SP_ENQ | RING_F_SC_DEQ, &s->mp_ring_bytes, &rc);
    if (s->control == NULL)
        goto fail;
    s->last_tsc = mrt_rdtsc();
    atomic_store_explicit(&s->ready, true, memory_order_release);
    return MRT_OK;
fail:
    shard_free_local(s, &s->alloc);
    shard_drop_arena(s);
    return rc;
}

int mrt_shard_set_handler(mrt_shard *s, uint16_t type, mrt_msg_handler fn, void *ctx)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (type >= MRT_MSG_TYPES)
        return MRT_SHARD_ETYPE;
    s->handler[type] = fn;
    s->burst_handler[type] = NULL;
    s->handler_ctx[type] = ctx;
    return MRT_OK;
}

int mrt_shard_set_burst_handler(mrt_shard *s, uint16_t type, mrt_burst_handler fn, void *ctx)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (type >= MRT_MSG_TYPES)
        return MRT_SHARD_ETYPE;
    s->burst_handler[type] = fn;
    s->handler[type] = NULL;
    s->handler_ctx[type] = ctx;
    return MRT_OK;
}

int mrt_shard_set_tick(mrt_shard *s, mrt_tick_hook fn, void *ctx)
{
    if (s == NULL)
        return MRT_EINVAL;
    /* One owner: a second producer would silently replace the first (services owns it). */
    if (fn != NULL && s->tick != NULL)
        return MRT_ESTATE;
    s->tick = fn;
    s->tick_ctx = ctx;
    return MRT_OK;
}

void mrt_shard_set_pending(mrt_shard *s, uint64_t n)
{
    s->pending = n;
}

bool mrt_shard_ready(const mrt_shard *s)
{
    return s != NULL && atomic_load_explicit(&s->ready, memory_order_acquire);
}

void mrt_shard_set_handback(mrt_shard *s, mrt_handback_hook fn, void *ctx)
{
    s->handback = fn;
    s->handback_ctx = ctx;
}

int mrt_shard_set_control_handler(mrt_shard *s, uint16_t ctype, mrt_msg_handler fn, void *ctx)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (ctype >= MRT_CTL_TYPES)
        return MRT_SHARD_ETYPE;
    s->ctl_handler[ctype] = fn;
    s->ctl_ctx[ctype] = ctx;
    return MRT_OK;
}

void mrt_shard_set_control_handback(mrt_shard *s, mrt_handback_hook fn, void *ctx)
{
    s->ctl_handback = fn;
    s->ctl_handback_ctx = ctx;
}

unsigned mrt_shard_id(const mrt_shard *s)
{
    return s->id;
}

const mrt_allocator *mrt_shard_allocator(const mrt_shard *s)
{
    return &s->alloc;
}

uint64_t mrt_shard_now(const mrt_shard *s)
{
    return s->now_ns;
}

/* ---- outbound ------------------------------------------------------------ */

_Static_assert(offsetof(struct mrt_shard, tx) == 0, "the inline send reads a shard as its tx");

static inline void publish_sent(mrt_shard *s)
{
    /* Inline sends count here, before anything of theirs can reach a ring. */
    s->st.sent += s->tx.sent;
    s->tx.sent = 0;
    /*
     * Release before any enqueue: whoever handles a message has then seen a
     * `sent` that includes it, which the drain's termination check relies on.
     */
    atomic_store_explicit(&s->pub.sent, s->st.sent, memory_order_release);
}

/*
 * How many appends the inline mrt_shard_send may make to dst: none unless
 * the lane is connected and listed dirty (the inline path does neither),
 * and never the one that fills the FIFO or completes a burst, so the
 * out-of-line path still does the refusal, the counting and the flush.
 */
static inline void lane_arm(mrt_shard *s, mrt_outq *q)
{
    uint32_t f = 0;
    if (q->dirty && q->ring != NULL && q->fresh + 1 < s->burst) {
        f = s->burst - 1 - q->fresh;
        if (f > s->outq_cap - q->count)
            f = s->outq_cap - q->count;
    }
    q->fast = f;
}

/* Push as much of dst's FIFO as its ring takes. True when the FIFO emptied. */
static bool flush_dst(mrt_shard *s, unsigned dst)
{
    mrt_outq *q = &s->out[dst];
    uint32_t mask = s->outq_cap - 1;
    bool emptied = true;
    q->fresh = 0;
    while (q->count > 0) {
        uint32_t n = q->count;
        if (q->head + n > s->outq_cap)
            n = s->outq_cap - q->head; /* contiguous part first */
        unsigned k = ring_put_sp(q->ring, &q->buf[q->head], n);
        q->head = (q->head + k) & mask;
        q->count -= k;
        if (k < n) {
            s->st.ring_full++;
            emptied = false;
            break;
        }
    }
    if (emptied)
        q->head = 0; /* refill the same slots: they are still in L1, the next ones are not */
    lane_arm(s, q);
    return emptied;
}

static inline int connect_dst(mrt_shard *s, unsigned dst)
{
    mrt_shard *d = s->mesh->shards[dst];
    if (!atomic_load_explicit(&d->ready, memory_order_acquire))
        return MRT_SHARD_ENOTREADY;
    s->out[dst].ring = d->in[s->id];
    return MRT_OK;
}

static inline void mark_dirty(mrt_shard *s, unsigned dst)
{
    mrt_outq *q = &s->out[dst];
    if (!q->dirty) {
        q->dirty = 1;
        s->dirty[s->ndirty++] = dst;
    }
}

/* Room in dst's FIFO, trying a flush first when it is full. */
static inline uint32_t outq_room(mrt_shard *s, unsigned dst)
{
    mrt_outq *q = &s->out[dst];
    if (q->count == s->outq_cap) {
        publish_sent(s);
        flush_dst(s, dst);
    }
    return s->outq_cap - q->count;
}

/* A full burst goes at once; behind a full ring, retry once per new burst, not per message. */
static inline void maybe_flush(mrt_shard *s, unsigned dst)
{
    if (s->out[dst].fresh >= s->burst) {
        publish_sent(s);
        flush_dst(s, dst);
    }
}

static inline int check_dst(mrt_shard *s, unsigned dst)
{
    if (dst >= s->n)
        return MRT_SHARD_EDEST;
    if (__builtin_expect(s->out[dst].ring == NULL, 0))
        return connect_dst(s, dst);
    return MRT_OK;
}

/* The out-of-line part of the inline mrt_shard_send: a one-message burst. */
int mrt_shard_send_slow_(mrt_shard *s, unsigned dst, const mrt_msg *m)
{
    return mrt_shard_send_burst(s, dst, m, 1, NULL);
}

/*
 * Messages are copied as they are: `src` is stamped by the receiver from the
 * ring they arrive on (a narrow store here, right before the burst's copy to
 * the ring, would defeat store-to-load forwarding).
 */
int mrt_shard_send_burst(mrt_shard *s, unsigned dst, const mrt_msg *msgs, unsigned n,
                         unsigned *accepted)
{
    unsigned done = 0;
    if (__builtin_expect(s->tx.lane == NULL, 0) && s->out != NULL) {
        /* Out-of-line first: the inline path never sees a shard without lanes. */
        s->tx.mask = s->outq_cap - 1;
        s->tx.lane = s->out;
        s->tx.n = s->n;
    }
    int rc = check_dst(s, dst);
    if (rc == MRT_OK && s->out[dst].count == 0 && n >= s->burst) {
        /*
         * Nothing pending for dst and at least a burst in hand: straight from
         * the caller's array to the ring, one copy fewer. `sent` is published
         * (over-counted, never under-counted: the drain stays safe) first.
         */
        s->st.sent += n;
        publish_sent(s);
        done = ring_put_sp(s->out[dst].ring, msgs, n);
        s->st.sent -= n - done;
    }
    while (rc == MRT_OK && done < n) {
        uint32_t room = outq_room(s, dst);
        if (room == 0) {
            s->st.send_refused += n - done;
            rc = MRT_SHARD_EFULL;
            break;
        }
        mrt_outq *q = &s->out[dst];
        uint32_t tail = (q->head + q->count) & (s->outq_cap - 1);
        uint32_t k = n - done;
        if (k > room)
            k = room;
        if (k > s->outq_cap - tail)
            k = s->outq_cap - tail; /* up to the wrap; the loop takes the rest */
        memcpy(&q->buf[tail], &msgs[done], k * sizeof(mrt_msg));
        q->count += k;
        q->fresh += k;
        s->st.sent += k;
        done += k;
        mark_dirty(s, dst);
        maybe_flush(s, dst);
        lane_arm(s, q);
    }
    if (accepted)
        *accepted = done;
    return rc;
}

void mrt_shard_flush(mrt_shard *s)
{
    if (s->ndirty == 0)
        return;
    publish_sent(s);
    unsigned keep = 0;
    for (unsigned i = 0; i < s->ndirty; i++) {
        unsigned dst = s->dirty[i];
        if (flush_dst(s, dst)) {
            s->out[dst].dirty = 0;
            s->out[dst].fast = 0; /* the next send re-lists it, out of line */
        } else {
            s->dirty[keep++] = dst;
        }
    }
    s->ndirty = keep;
}

/* ---- inbound ------------------------------------------------------------- */

static inline void dispatch(mrt_shard *s, const mrt_msg *m)
{
    mrt_msg_handler h = m->type < MRT_MSG_TYPES ? s->handler[m->type] : NULL;
    if (__builtin_expect(h != NULL, 1)) {
        h(s, m, s->handler_ctx[m->type]);
        return;
    }
    s->st.handed_back[MRT_HB_NO_HANDLER]++;
    if (s->handback)
        s->handback(s, m, MRT_HB_NO_HANDLER, s->handback_ctx);
}

/*
 * Dequeue one burst and dispatch it; `src` is the ring's producer
 * (MRT_SRC_EXTERNAL for MP rings). Runs of one type with a burst handler
 * go to it in one call.
 */
static unsigned drain_ring(mrt_shard *s, struct rte_ring *r, unsigned max, mrt_msg *buf,
                           uint16_t src)
{
    unsigned n = ring_get_sc(r, buf, max);
    for (unsigned i = 0; i < n; i++)
        buf[i].src = src;
    for (unsigned i = 0; i < n;) {
        uint16_t t = buf[i].type;
        mrt_burst_handler bh = t < MRT_MSG_TYPES ? s->burst_handler[t] : NULL;
        if (bh == NULL) {
            dispatch(s, &buf[i++]);
            continue;
        }
        unsigned j = i + 1;
        while (j < n && buf[j].type == t)
            j++;
        bh(s, &buf[i], j - i, s->handler_ctx[t]);
        i = j;
    }
    return n;
}

/*
 * One burst from the control ring, to the control handlers: a space of its
 * own, counted apart from data (control_handled, control_handed_back).
 */
static unsigned drain_control(mrt_shard *s, mrt_msg *buf)
{
    unsigned n = ring_get_sc(s->control, buf, s->burst);
    for (unsigned i = 0; i < n; i++) {
        mrt_msg *m = &buf[i];
        m->src = MRT_SRC_EXTERNAL;
        mrt_msg_handler h = m->type < MRT_CTL_TYPES ? s->ctl_handler[m->type] : NULL;
        if (h != NULL) {
            h(s, m, s->ctl_ctx[m->type]);
            continue;
        }
        s->st.control_handed_back[MRT_HB_NO_HANDLER]++;
        if (s->ctl_handback)
            s->ctl_handback(s, m, MRT_HB_NO_HANDLER, s->ctl_handback_ctx);
    }
    s->st.control_handled += n;
    return n;
}

static void publish_stats(mrt_shard *s)
{
    mrt_shard_pub *p = &s->pub;
    for (unsigned i = 0; i < MRT_HB_REASONS; i++) {
        atomic_store_explicit(&p->handed_back[i], s->st.handed_back[i], memory_order_relaxed);
        atomic_store_explicit(&p->control_handed_back[i], s->st.control_handed_back[i],
                              memory_order_relaxed);
    }
    /*
     * Release, after the iteration's flush published `sent`: the drain's reads
     * rely on it. `pending` before `handled`: a drain that read this
     * iteration's `handled` reads this iteration's `pending` or a later one.
     */
    atomic_store_explicit(&p->pending, s->pending, memory_order_release);
    atomic_store_explicit(&p->handled, s->st.handled, memory_order_release);
    atomic_store_explicit(&p->control_handled, s->st.control_handled, memory_order_release);
    atomic_store_explicit(&p->ring_full, s->st.ring_full, memory_order_relaxed);
    atomic_store_explicit(&p->send_refused, s->st.send_refused, memory_order_relaxed);
    atomic_store_explicit(&p->injected, s->st.injected, memory_order_relaxed);
    atomic_store_explicit(&p->iterations, s->st.iterations, memory_order_relaxed);
    atomic_store_explicit(&p->busy_cycles, s->st.busy_cycles, memory_order_relaxed);
    atomic_store_explicit(&p->idle_cycles, s->st.idle_cycles, memory_order_relaxed);
}

static void sample_perf(mrt_shard *s)
{
    mrt_perf_sample smp;
    if (mrt_perf_read(&s->perf, &smp) != MRT_OK)
        return;
    /* Readers get whole intervals, whatever the phase of their own clock. */
    if (s->perf_prev_ns != 0) {
        for (unsigned i = 0; i < smp.count && i < MRT_PERF_MAX_EVENTS; i++)
            atomic_store_explicit(&s->pub.perf[i], smp.value[i] - s->perf_prev.value[i],
                                  memory_order_relaxed);
        atomic_store_explicit(&s->pub.perf_interval_ns, s->now_ns - s->perf_prev_ns,
                              memory_order_relaxed);
    }
    atomic_store_explicit(&s->pub.perf_set, (int)smp.set, memory_order_relaxed);
    atomic_store_explicit(&s->pub.perf_user_only, s->perf.user_only, memory_order_relaxed);
    s->perf_prev = smp;
    s->perf_prev_ns = s->now_ns ? s->now_ns : 1;
}

unsigned mrt_shard_poll_once(mrt_shard *s)
{
    mrt_mesh *mesh = s->mesh;
    /*
     * The one clock read of the iteration; everything else uses now_ns. It
     * also closes the previous iteration's busy/idle accounting.
     */
    uint64_t tsc = mrt_rdtsc();
    s->now_ns = (uint64_t)((double)(tsc - s->tsc0) * s->ns_per_cycle);
    if (s->last_busy)
        s->st.busy_cycles += tsc - s->last_tsc;
    else
        s->st.idle_cycles += tsc - s->last_tsc;
    s->last_tsc = tsc;

    mrt_msg buf[MRT_MAX_BURST];
    unsigned handled = 0;
    uint64_t sent_before = s->st.sent;

    /* Control first: it may change how the data below is treated. Not counted as data. */
    unsigned nctl = drain_control(s, buf);

    /*
     * Data: sources 0..n-1 are the inbound rings, source n is ingress. One
     * burst per source per pass from a rotating start, within the budget:
     * ingress is one of the sources, so saturated shard-to-shard traffic
     * cannot spend the whole budget before it (it used to be read last, and
     * under load never).
     */
    unsigned nsrc = s->n + 1;
    unsigned start = s->rr_start;
    s->rr_start = (start + 1 == nsrc) ? 0 : start + 1;
    bool more = true;
    while (more && handled < s->budget) {
        more = false;
        for (unsigned k = 0; k < nsrc && handled < s->budget; k++) {
            unsigned src = start + k;
            if (src >= nsrc)
                src -= nsrc;
            unsigned room = s->budget - handled;
            unsigned max = room < s->burst ? room : s->burst;
            unsigned got;
            if (src < s->n) {
                got = drain_ring(s, s->in[src], max, buf, (uint16_t)src);
            } else {
                got = drain_ring(s, s->ingress, max, buf, MRT_SRC_EXTERNAL);
                s->st.injected += got;
            }
            handled += got;
            more |= (got == s->burst);
        }
    }
    s->st.handled += handled;

    if (!s->draining && atomic_load_explicit(&mesh->stop_requested, memory_order_acquire))
        s->draining = true;
    if (s->tick)
        s->tick(s, s->draining, s->tick_ctx);
    mrt_shard_flush(s);

    s->st.iterations++;
    unsigned sent = (unsigned)(s->st.sent - sent_before);
    s->last_busy = handled || nctl || sent;

    if (s->now_ns >= s->next_stats_ns) {
        s->next_stats_ns = s->now_ns + s->stats_interval_ns;
        sample_perf(s);
    }
    publish_stats(s);
    if (s->draining && !s->stop_acked) {
        /* After a draining tick and a flush: this shard produces nothing new from here. */
        s->stop_acked = true;
        atomic_fetch_add_explicit(&mesh->stop_acks, 1, memory_order_acq_rel);
    }
    return handled + nctl + sent;
}

static void idle_sleep(unsigned us)
{
    struct timespec ts = { .tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000 };
    nanosleep(&ts, NULL);
}

void mrt_shard_run(mrt_shard *s)
{
    const mrt_mesh_config *cfg = &s->mesh->cfg;
    (void)mrt_perf_open(&s->perf); /* falls back to software counters, or none */
    s->last_tsc = mrt_rdtsc();
    unsigned idle = 0, sleep_us = 1;
    while (!atomic_load_explicit(&s->mesh->drained, memory_order_acquire)) {
        if (mrt_shard_poll_once(s) != 0 || s->ndirty != 0) {
            idle = 0;
            sleep_us = 1;
            continue;
        }
        if (++idle <= cfg->idle_spin || cfg->idle_sleep_max_us == 0) {
            rte_pause();
            continue;
        }
        idle_sleep(sleep_us);
        if (sleep_us < cfg->idle_sleep_max_us)
            sleep_us = sleep_us * 2 > cfg->idle_sleep_max_us ? cfg->idle_sleep_max_us : sleep_us * 2;
    }
    sample_perf(s);
    publish_stats(s);
    mrt_perf_close(&s->perf);
}

/* ---- any thread ---------------------------------------------------------- */

int mrt_mesh_inject(mrt_mesh *m, unsigned dst, const mrt_msg *msg)
{
    if (m == NULL || msg == NULL)
        return MRT_EINVAL;
    if (dst >= m->cfg.shards)
        return MRT_SHARD_EDEST;
    mrt_shard *d = m->shards[dst];
    if (!atomic_load_explicit(&d->ready, memory_order_acquire))
        return MRT_SHARD_ENOTREADY;
    /* Announce first, then check: mrt_mesh_request_stop does the mirror image (seq_cst). */
    atomic_fetch_add(&m->inject_inflight, 1);
    int rc = MRT_OK;
    if (atomic_load(&m->stop_requested)) {
        rc = MRT_SHARD_ESTOPPED;
    } else {
        /* Counted before the enqueue so no consumer can handle an uncounted message. */
        atomic_fetch_add(&m->ext_accepted, 1);
        if (!ring_put_mp(d->ingress, &d->ingress_put, msg)) {
            atomic_fetch_sub(&m->ext_accepted, 1);
            rc = MRT_SHARD_EFULL;
        }
    }
    atomic_fetch_sub(&m->inject_inflight, 1);
    return rc;
}

int mrt_mesh_control(mrt_mesh *m, unsigned dst, const mrt_msg *msg)
{
    if (m == NULL || msg == NULL)
        return MRT_EINVAL;
    if (dst >= m->cfg.shards)
        return MRT_SHARD_EDEST;
    if (msg->type >= MRT_CTL_TYPES)
        return MRT_SHARD_ETYPE;
    mrt_shard *d = m->shards[dst];
    if (!atomic_load_explicit(&d->ready, memory_order_acquire))
        return MRT_SHARD_ENOTREADY;
    /* Announce, then check: mrt_mesh_try_drain closes, then checks (seq_cst, as for ingress). */
    atomic_fetch_add(&m->ctl_inflight, 1);
    int rc = MRT_OK;
    if (atomic_load(&m->ctl_closed)) {
        rc = MRT_SHARD_ESTOPPED;
    } else {
        /* Counted before the enqueue so the drain never sees a handled, uncounted message. */
        atomic_fetch_add(&m->ctl_accepted, 1);
        if (!ring_put_mp(d->control, &d->control_put, msg)) {
            atomic_fetch_sub(&m->ctl_accepted, 1);
            rc = MRT_SHARD_EFULL;
        }
    }
    atomic_fetch_sub(&m->ctl_inflight, 1);
    return rc;
}

void mrt_mesh_request_stop(mrt_mesh *m)
{
    atomic_store(&m->stop_requested, true);
}

/*
 * Everything accepted has been handled: data (sent + injected) and control,
 * each balanced on its own, and no shard holds pending work. Handled counts are read before accepted ones: a
 * message handled by the time of the first reads was accepted (and
 * published) before them, so it is in the second reads too; equal counts
 * therefore mean nothing accepted is pending or in a ring, and no handler —
 * data or control — is still producing (its sends would be in `sent` but its
 * message not yet in a handled count).
 */
static bool mesh_quiescent(mrt_mesh *m)
{
    uint64_t handled = 0, sent = 0, ctl_handled = 0, pending = 0;
    for (unsigned i = 0; i < m->cfg.shards; i++) {
        const mrt_shard_pub *p = &m->shards[i]->pub;
        handled += atomic_load_explicit(&p->handled, memory_order_acquire);
        ctl_handled += atomic_load_explicit(&p->control_handled, memory_order_acquire);
    }
    /*
     * Pending work (mrt_shard_set_pending) after `handled` (so it is at least
     * as recent) and before `sent`: a shard seen with nothing pending had
     * published, before, the sends that emptied it, and they are in `sent`.
     */
    for (unsigned i = 0; i < m->cfg.shards; i++)
        pending += atomic_load_explicit(&m->shards[i]->pub.pending, memory_order_acquire);
    if (pending != 0)
        return false;
    for (unsigned i = 0; i < m->cfg.shards; i++)
        sent += atomic_load_explicit(&m->shards[i]->pub.sent, memory_order_acquire);
    sent += atomic_load(&m->ext_accepted);
    uint64_t ctl_accepted = atomic_load(&m->ctl_accepted);
    return handled == sent && ctl_handled == ctl_accepted;
}

bool mrt_mesh_try_drain(mrt_mesh *m)
{
    if (atomic_load_explicit(&m->drained, memory_order_acquire))
        return true;
    if (!atomic_load(&m->stop_requested))
        return false;
    /* Every shard has stopped producing, and no injection can still slip in. */
    if (atomic_load(&m->stop_acks) != m->cfg.shards || atomic_load(&m->inject_inflight) != 0)
        return false;
    if (!mesh_quiescent(m))
        return false;
    /*
     * Control stays open while the mesh drains (the control plane may still
     * need it); it closes here, once everything is handled. Close, then
     * check (the mirror image of mrt_mesh_control): a sender that got in
     * before the close is seen in flight or in the counts below; any later
     * one sees the close and is refused.
     */
    atomic_store(&m->ctl_closed, true);
    if (atomic_load(&m->ctl_inflight) != 0 || !mesh_quiescent(m))
        return false;
    atomic_store_explicit(&m->drained, true, memory_order_release);
    return true;
}

void mrt_mesh_stop(mrt_mesh *m)
{
    mrt_mesh_request_stop(m);
    /* Control-plane wait, off the event path: the shards do the work. */
    while (!mrt_mesh_try_drain(m))
        idle_sleep(20);
}

uint64_t mrt_mesh_clock(const mrt_mesh *m)
{
    return (uint64_t)((double)(mrt_rdtsc() - m->tsc0) * m->ns_per_cycle);
}

bool mrt_mesh_drained(const mrt_mesh *m)
{
    return atomic_load_explicit(&m->drained, memory_order_acquire);
}

void mrt_shard_stats_read(const mrt_mesh *m, unsigned i, mrt_shard_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (m == NULL || i >= m->cfg.shards)
        return;
    const mrt_shard_pub *p = &m->shards[i]->pub;
    out->sent = atomic_load_explicit(&p->sent, memory_order_acquire);
    out->handled = atomic_load_explicit(&p->handled, memory_order_acquire);
    out->control_handled = atomic_load_explicit(&p->control_handled, memory_order_acquire);
    for (unsigned k = 0; k < MRT_HB_REASONS; k++) {
        out->handed_back[k] = atomic_load_explicit(&p->handed_back[k], memory_order_relaxed);
        out->control_handed_back[k] =
            atomic_load_explicit(&p->control_handed_back[k], memory_order_relaxed);
    }
    out->ring_full = atomic_load_explicit(&p->ring_full, memory_order_relaxed);
    out->send_refused = atomic_load_explicit(&p->send_refused, memory_order_relaxed);
    out->injected = atomic_load_explicit(&p->injected, memory_order_relaxed);
    out->iterations = atomic_load_explicit(&p->iterations, memory_order_relaxed);
    out->busy_cycles = atomic_load_explicit(&p->busy_cycles, memory_order_relaxed);
    out->idle_cycles = atomic_load_explicit(&p->idle_cycles, memory_order_relaxed);
    out->perf_set = atomic_load_explicit(&p->perf_set, memory_order_relaxed);
    out->perf_user_only = atomic_load_explicit(&p->perf_user_only, memory_order_relaxed);
    for (unsigned k = 0; k < sizeof out->perf / sizeof out->perf[0]; k++)
        out->perf[k] = atomic_load_explicit(&p->perf[k], memory_order_relaxed);
    out->perf_interval_ns = atomic_load_explicit(&p->perf_interval_ns, memory_order_relaxed);
    out->pending = atomic_load_explicit(&p->pending, memory_order_acquire);
}
