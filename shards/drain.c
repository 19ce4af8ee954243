/* The mesh from any thread: ingress and control admission, the stop and drain protocol. */
#include "shards/shard_internal.h"

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

/*
 * Admission into one of d's multi-producer rings, the same for ingress and
 * control: announce (inflight), then check `closed` — the closer sets it,
 * then waits for inflight to reach 0 (seq_cst, the mirror image) — count
 * before the enqueue so no consumer handles an uncounted message, and wake
 * d after (the seq_cst decrement orders the enqueue before the wake's read).
 */
static int admit(mrt_mesh *m, mrt_shard *d, _Atomic uint64_t *inflight, _Atomic bool *closed,
                 _Atomic uint64_t *accepted, struct rte_ring *r, mrt_spin *lock,
                 const mrt_msg *msg)
{
    if (!atomic_load_explicit(&d->ready, memory_order_acquire))
        return MRT_SHARD_ENOTREADY;
    atomic_fetch_add(inflight, 1);
    int rc = MRT_OK;
    if (atomic_load(closed)) {
        rc = MRT_SHARD_ESTOPPED;
    } else {
        atomic_fetch_add(accepted, 1);
        if (!ring_put_mp(r, lock, msg)) {
            atomic_fetch_sub(accepted, 1);
            rc = MRT_SHARD_EFULL;
        }
    }
    atomic_fetch_sub(inflight, 1);
    if (rc == MRT_OK && m->cfg.idle_wake)
        shard_wake(d);
    return rc;
}

int mrt_mesh_inject(mrt_mesh *m, unsigned dst, const mrt_msg *msg)
{
    if (m == NULL || msg == NULL)
        return MRT_EINVAL;
    if (dst >= m->cfg.shards)
        return MRT_SHARD_EDEST;
    mrt_shard *d = m->shards[dst];
    /* Closed by mrt_mesh_request_stop. */
    return admit(m, d, &m->inject_inflight, &m->stop_requested, &m->ext_accepted, d->ingress,
                 &d->ingress_put, msg);
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
    /* Closed by mrt_mesh_try_drain once it found the mesh quiescent. */
    return admit(m, d, &m->ctl_inflight, &m->ctl_closed, &m->ctl_accepted, d->control,
                 &d->control_put, msg);
}

void mrt_mesh_request_stop(mrt_mesh *m)
{
    atomic_store(&m->stop_requested, true);
    for (unsigned i = 0; i < m->cfg.shards; i++)
        if (m->shards[i] != NULL)
            shard_wake_now(m->shards[i]); /* sees the stop now, even pinned to this CPU */
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
bool mrt_mesh_drained(const mrt_mesh *m)
{
    return atomic_load_explicit(&m->drained, memory_order_acquire);
}
