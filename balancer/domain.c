/*
 * Snapshot publication domain: quiescent-state based reclamation. One
 * writer (the control plane) publishes and frees; each reader (a shard)
 * announces at its poll-iteration boundary the epoch it has seen. The
 * protocol and its argument are in mrt_balancer.h and balancer/README.md.
 * C11 atomics only; no locks, no waiting on either side.
 */
#include "balancer/lb_internal.h"

#include <stdatomic.h>
#include <string.h>

#define OFFLINE UINT64_MAX

/* Process-wide so that ids differ across domains too; 64 bits never wrap in practice. */
static _Atomic uint64_t next_publish_id = 1;

typedef struct lb_reader {
    _Atomic uint64_t seen;          /* shared: written by the reader, read by the writer */
    uint64_t last;                  /* reader-private from here on */
    const mrt_lb_snapshot *snap;
    mrt_lb_shard *sh;               /* last synced through this reader: offline detaches it */
    bool online;
} lb_reader;

/* One reader per cache line so announcements never share a line. */
typedef struct lb_reader_slot {
    _Alignas(64) lb_reader r;
} lb_reader_slot;

struct mrt_lb_domain {
    /* shared line: changes once per publish */
    _Alignas(64) _Atomic uint64_t epoch;
    _Atomic(mrt_lb_snapshot *) current;
    /* writer-private */
    _Alignas(64) mrt_allocator alloc;
    uint32_t nreaders;
    lb_reader_slot *readers;
    mrt_lb_snapshot *retired;       /* list through retire_next */
    uint64_t published, nretired, freed, pending;
};

int mrt_lb_domain_create(const mrt_allocator *a, uint32_t nreaders, mrt_lb_domain **out)
{
    if (out == NULL || nreaders < 1 || nreaders > 1024)
        return MRT_LB_EINVAL;
    mrt_allocator al = mrt_allocator_or_default(a);
    mrt_lb_domain *d = mrt_alloc_aligned(&al, sizeof(*d), 64);
    lb_reader_slot *rs = mrt_alloc_aligned(&al, (size_t)nreaders * sizeof(*rs), 64);
    if (d == NULL || rs == NULL) {
        mrt_free_aligned(&al, d, sizeof(*d), 64);
        mrt_free_aligned(&al, rs, (size_t)nreaders * sizeof(*rs), 64);
        return MRT_LB_ENOMEM;
    }
    memset(d, 0, sizeof(*d));
    memset(rs, 0, (size_t)nreaders * sizeof(*rs));
    atomic_init(&d->epoch, 0);
    atomic_init(&d->current, NULL);
    d->alloc = al;
    d->nreaders = nreaders;
    d->readers = rs;
    for (uint32_t i = 0; i < nreaders; i++)
        atomic_init(&rs[i].r.seen, OFFLINE);
    *out = d;
    return MRT_OK;
}

void mrt_lb_domain_destroy(mrt_lb_domain *d)
{
    if (d == NULL)
        return;
    mrt_lb_snapshot *cur = atomic_load_explicit(&d->current, memory_order_acquire);
    mrt_lb_snapshot_free(cur);
    for (mrt_lb_snapshot *s = d->retired; s != NULL;) {
        mrt_lb_snapshot *next = s->retire_next;
        mrt_lb_snapshot_free(s);
        s = next;
    }
    mrt_allocator a = d->alloc;
    mrt_free_aligned(&a, d->readers, (size_t)d->nreaders * sizeof(*d->readers), 64);
    mrt_free_aligned(&a, d, sizeof(*d), 64);
}

size_t mrt_lb_domain_reclaim(mrt_lb_domain *d)
{
    if (d == NULL)
        return 0;
    uint64_t min_seen = OFFLINE;
    for (uint32_t i = 0; i < d->nreaders; i++) {
        uint64_t v = atomic_load_explicit(&d->readers[i].r.seen, memory_order_seq_cst);
        if (v < min_seen)
            min_seen = v;
    }
    size_t n = 0;
    mrt_lb_snapshot **link = &d->retired;
    while (*link != NULL) {
        mrt_lb_snapshot *s = *link;
        if (s->retire_epoch <= min_seen) {
            *link = s->retire_next;
            mrt_lb_snapshot_free(s);
            n++;
        } else {
            link = &s->retire_next;
        }
    }
    d->freed += n;
    d->pending -= n;
    return n;
}

int64_t mrt_lb_domain_publish(mrt_lb_domain *d, mrt_lb_snapshot *s)
{
    if (d == NULL || s == NULL || s->magic != LB_MAGIC)
        return MRT_LB_EINVAL;
    /* Published before (current here, or owned by a domain that will free it). */
    if (s->publish_id != 0)
        return MRT_LB_EINVAL;
    s->publish_id = atomic_fetch_add_explicit(&next_publish_id, 1, memory_order_relaxed);
    mrt_lb_snapshot *old = atomic_exchange_explicit(&d->current, s, memory_order_seq_cst);
    uint64_t e = atomic_fetch_add_explicit(&d->epoch, 1, memory_order_seq_cst) + 1;
    d->published++;
    if (old != NULL) {
        old->retire_epoch = e;
        old->retire_next = d->retired;
        d->retired = old;
        d->nretired++;
        d->pending++;
    }
    mrt_lb_domain_reclaim(d);
    return (int64_t)e;
}

const mrt_lb_snapshot *mrt_lb_domain_adopt(mrt_lb_domain *d, uint32_t reader)
{
    if (d == NULL || reader >= d->nreaders)
        return NULL;
    lb_reader *rd = &d->readers[reader].r;
    uint64_t e = atomic_load_explicit(&d->epoch, memory_order_seq_cst);
    if (rd->online && e == rd->last)
        return rd->snap;
    /* Announce first, then look: see the proof in mrt_balancer.h. */
    atomic_store_explicit(&rd->seen, e, memory_order_seq_cst);
    rd->snap = atomic_load_explicit(&d->current, memory_order_seq_cst);
    rd->last = e;
    rd->online = true;
    return rd->snap;
}

int mrt_lb_domain_sync(mrt_lb_domain *d, uint32_t reader, mrt_lb_shard *sh)
{
    if (d == NULL || sh == NULL || reader >= d->nreaders)
        return MRT_LB_EINVAL;
    lb_reader *rd = &d->readers[reader].r;
    uint64_t e = atomic_load_explicit(&d->epoch, memory_order_seq_cst);
    /* Online, the shard's snapshot is alive (our announcement covers it): pointers compare. */
    if (rd->online && e == rd->last && rd->sh == sh && rd->snap == sh->snap)
        return 0;
    if (!rd->online) {
        /* Nothing held: announce first so what we load next cannot be freed under us. */
        atomic_store_explicit(&rd->seen, e, memory_order_seq_cst);
        rd->online = true;
        rd->last = e;
        rd->snap = NULL;
    }
    rd->sh = sh;
    /* Covered by our announcement (the previous one, or the one just made). */
    const mrt_lb_snapshot *p = atomic_load_explicit(&d->current, memory_order_seq_cst);
    int switched = 0;
    if (p != NULL) {
        /*
         * Decide by publish id: the shard may have been detached while its
         * snapshot was freed and the allocator gave that address to p.
         */
        if (sh->snap_id != p->publish_id) {
            int rc = mrt_lb_shard_adopt(sh, p);
            if (rc != MRT_OK) {
                /* Online: nothing new announced, the shard's snapshot stays alive. Coming
                 * back from offline: the shard holds nothing usable until a sync succeeds. */
                rd->snap = NULL;
                return rc;
            }
            switched = 1;
        } else if (sh->snap == NULL) {
            lb_shard_reattach(sh, p); /* the very snapshot it held: its state is current */
        }
    }
    rd->snap = p;
    if (rd->last != e) {
        atomic_store_explicit(&rd->seen, e, memory_order_seq_cst);
        rd->last = e;
    }
    return switched;
}

void mrt_lb_domain_offline(mrt_lb_domain *d, uint32_t reader)
{
    if (d == NULL || reader >= d->nreaders)
        return;
    lb_reader *rd = &d->readers[reader].r;
    rd->online = false;
    rd->snap = NULL;
    /* Before the announcement: once it is visible the snapshot may be freed. */
    if (rd->sh != NULL)
        lb_shard_detach(rd->sh);
    rd->sh = NULL;
    atomic_store_explicit(&rd->seen, OFFLINE, memory_order_seq_cst);
}

void mrt_lb_domain_stats_get(const mrt_lb_domain *d, mrt_lb_domain_stats *out)
{
    if (d == NULL || out == NULL)
        return;
    out->epoch = atomic_load_explicit(&((mrt_lb_domain *)d)->epoch, memory_order_relaxed);
    out->published = d->published;
    out->retired = d->nretired;
    out->freed = d->freed;
    out->pending = d->pending;
}
