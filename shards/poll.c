/* Shards: the poll loop (dispatch, ring drains, idle policy, stats publication, perf sampling). */
#include "shards/shard_internal.h"

#include <errno.h>
#include <rte_pause.h>
#include <string.h>

/* Single consumer: up to max whole messages. */
static inline unsigned ring_get_sc(struct rte_ring *r, mrt_msg *buf, unsigned max)
{
    return rte_ring_sc_dequeue_burst_elem(r, buf, ELEM_SIZE, max * ELEMS_PER_MSG, NULL) /
           ELEMS_PER_MSG;
}

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
        unsigned j = i + 1;
        while (j < n && buf[j].type == t)
            j++;
        mrt_stall_type(&s->stall, t); /* once per run of one type */
        mrt_burst_handler bh = t < MRT_MSG_TYPES ? s->burst_handler[t] : NULL;
        if (bh != NULL) {
            bh(s, &buf[i], j - i, s->handler_ctx[t]);
            i = j;
            continue;
        }
        while (i < j)
            dispatch(s, &buf[i++]);
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
    if (n == 0)
        return 0;
    mrt_stall_phase(&s->stall, MRT_STALL_PH_CONTROL);
    for (unsigned i = 0; i < n; i++) {
        mrt_msg *m = &buf[i];
        m->src = MRT_SRC_EXTERNAL;
        mrt_stall_type(&s->stall, MRT_STALL_CONTROL | m->type);
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
    mrt_stall_phase(&s->stall, MRT_STALL_PH_DATA);
    mrt_stall_type(&s->stall, MRT_STALL_NO_TYPE);
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
    atomic_store_explicit(&p->sleeps, s->st.sleeps, memory_order_relaxed);
    atomic_store_explicit(&p->wakeups, s->st.wakeups, memory_order_relaxed);
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
        atomic_store_explicit(&s->pub.perf_interval_ns, s->tx.now - s->perf_prev_ns,
                              memory_order_relaxed);
    }
    atomic_store_explicit(&s->pub.perf_set, (int)smp.set, memory_order_relaxed);
    atomic_store_explicit(&s->pub.perf_user_only, s->perf.user_only, memory_order_relaxed);
    s->perf_prev = smp;
    s->perf_prev_ns = s->tx.now ? s->tx.now : 1;
}

unsigned mrt_shard_poll_once(mrt_shard *s)
{
    mrt_mesh *mesh = s->mesh;
    /*
     * The one clock read of the iteration; everything else uses tx.now. It
     * also closes the previous iteration's busy/idle accounting.
     */
    uint64_t tsc = mrt_rdtsc();
    s->tx.now = (uint64_t)((double)(tsc - s->tsc0) * s->ns_per_cycle);
    if (s->last_busy)
        s->st.busy_cycles += tsc - s->last_tsc;
    else
        s->st.idle_cycles += tsc - s->last_tsc;
    s->last_tsc = tsc;
    mrt_stall_begin(&s->stall, s->tx.now);

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
    mrt_stall_type(&s->stall, MRT_STALL_NO_TYPE);
    mrt_stall_phase(&s->stall, MRT_STALL_PH_TICK);
    if (s->tick)
        s->tick(s, s->draining, s->tick_ctx);
    mrt_stall_phase(&s->stall, MRT_STALL_PH_FLUSH);
    mrt_shard_flush(s);

    s->st.iterations++;
    unsigned sent = (unsigned)(s->st.sent - sent_before);
    s->last_busy = handled || nctl || sent;

    if (s->tx.now >= s->next_stats_ns) {
        s->next_stats_ns = s->tx.now + s->stats_interval_ns;
        sample_perf(s);
    }
    publish_stats(s);
    if (s->draining && !s->stop_acked) {
        /* After a draining tick and a flush: this shard produces nothing new from here. */
        s->stop_acked = true;
        atomic_fetch_add_explicit(&mesh->stop_acks, 1, memory_order_acq_rel);
    }
    mrt_stall_end(&s->stall);
    return handled + nctl + sent;
}

/* The idle back-off: up to `us` microseconds, ended early by a producer (see shard_wake). */
static void idle_wait(mrt_shard *s, unsigned us)
{
    if (!s->idle_wake) {
        s->st.sleeps++;
        idle_sleep(us);
        return;
    }
    atomic_store_explicit(&s->sleeping, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    /* Nothing waits in any ring this shard consumes: data (mrt_shard_backlog) or control. */
    if (mrt_shard_backlog(s) == 0 && mrt_ring_entries(s->control) == 0 &&
        !atomic_load_explicit(&s->mesh->stop_requested, memory_order_relaxed)) {
        struct timespec ts = us_timespec(us);
        /* Published at once (the idle path only): readers see a wait begin and end. */
        atomic_store_explicit(&s->pub.sleeps, ++s->st.sleeps, memory_order_relaxed);
        /* 0: woken (or spuriously); EAGAIN: a producer cleared the word before the wait began. */
        if (syscall(SYS_futex, (uint32_t *)&s->sleeping, FUTEX_WAIT_PRIVATE, 1, &ts, NULL, 0) == 0 ||
            errno == EAGAIN)
            atomic_store_explicit(&s->pub.wakeups, ++s->st.wakeups, memory_order_relaxed);
    }
    atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
}

/* The one CPU this thread may run on, or -1 (not pinned, or unknown). */
static int pinned_cpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) != 1)
        return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            return c;
    return -1;
}

void mrt_shard_run(mrt_shard *s)
{
    const mrt_mesh_config *cfg = &s->mesh->cfg;
    (void)mrt_perf_open(&s->perf); /* falls back to software counters, or none */
    mrt_stall_arm(&s->stall);      /* only when a detector watches (threshold set) */
    atomic_store_explicit(&s->pinned_cpu, s->idle_wake ? pinned_cpu() : -1, memory_order_relaxed);
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
        idle_wait(s, sleep_us);
        if (sleep_us < cfg->idle_sleep_max_us)
            sleep_us = sleep_us * 2 > cfg->idle_sleep_max_us ? cfg->idle_sleep_max_us : sleep_us * 2;
    }
    mrt_stall_disarm(&s->stall);
    sample_perf(s);
    publish_stats(s);
    mrt_perf_close(&s->perf);
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
    out->sleeps = atomic_load_explicit(&p->sleeps, memory_order_relaxed);
    out->wakeups = atomic_load_explicit(&p->wakeups, memory_order_relaxed);
    out->perf_set = atomic_load_explicit(&p->perf_set, memory_order_relaxed);
    out->perf_user_only = atomic_load_explicit(&p->perf_user_only, memory_order_relaxed);
    for (unsigned k = 0; k < sizeof out->perf / sizeof out->perf[0]; k++)
        out->perf[k] = atomic_load_explicit(&p->perf[k], memory_order_relaxed);
    out->perf_interval_ns = atomic_load_explicit(&p->perf_interval_ns, memory_order_relaxed);
    out->pending = atomic_load_explicit(&p->pending, memory_order_acquire);
}
