/* Shards: the send path (outbound FIFOs, bursts, flush; the out-of-line half of mrt_shard_send). */
#include "shards/shard_internal.h"

#include <stddef.h>
#include <string.h>

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
        if (k && s->idle_wake) {
            atomic_thread_fence(memory_order_seq_cst);
            shard_wake(s->mesh->shards[dst]);
        }
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
        if (done && s->idle_wake) {
            atomic_thread_fence(memory_order_seq_cst);
            shard_wake(s->mesh->shards[dst]);
        }
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

void mrt_shard_outbound_backlog(const mrt_shard *s, uint32_t *used, uint32_t *cap)
{
    uint32_t most = 0;
    for (unsigned i = 0; i < s->ndirty; i++) { /* a lane with pending messages is listed */
        uint32_t c = s->out[s->dirty[i]].count;
        if (c > most)
            most = c;
    }
    *used = most;
    *cap = s->outq_cap;
}
