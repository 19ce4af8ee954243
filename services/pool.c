/*
 * Per-shard buffer pools: one region from the shard's arena, cut into size
 * classes (64 B, 128 B, ... doubling, and a last class that fits exactly
 * the header plus max_payload), each with a LIFO stack of free indices.
 * LIFO so that the buffer reused next is the one most recently touched.
 * Only the owner pops or pushes; other shards send handles back.
 */
#include "services/svc_internal.h"

#include <string.h>

int svc_layout(mrt_svc *svc)
{
    const mrt_svc_config *c = &svc->cfg;
    uint64_t need = (uint64_t)SVC_BUF_HDR + c->max_payload;
    unsigned n = 0;
    uint64_t off = 0;
    for (uint64_t size = SVC_MIN_CLASS;; size <<= 1) {
        bool last = size >= need;
        uint64_t sz = last ? ((need + 63u) & ~(uint64_t)63u) : size;
        if (sz < SVC_MIN_CLASS)
            sz = SVC_MIN_CLASS;
        uint64_t count = c->pool_class_bytes / sz;
        if (count > c->pool_buffers)
            count = c->pool_buffers;
        if (count < c->pool_min_buffers)
            count = c->pool_min_buffers;
        if (n == SVC_MAX_CLASSES || count > UINT32_MAX / 2)
            return MRT_SVC_ECONFIG;
        svc->class_size[n] = (uint32_t)sz;
        svc->class_count[n] = (uint32_t)count;
        svc->class_shift[n] = (sz & (sz - 1)) == 0 ? (uint8_t)__builtin_ctzll(sz) : 0xff;
        svc->class_off[n] = off;
        off += sz * count;
        if ((uint64_t)svc->pool_total + count > UINT32_MAX / 2)
            return MRT_SVC_ECONFIG;
        svc->pool_total += (uint32_t)count;
        n++;
        if (last)
            break;
    }
    svc->class_off[n] = off;
    svc->nclasses = n;
    /* The ingress pool: the same classes, after the pool in the same region (one base). */
    for (unsigned k = 0; k < n; k++) {
        uint64_t cnt = 0;
        if (c->ingress_buffers) {
            cnt = c->ingress_class_bytes / svc->class_size[k];
            if (cnt > c->ingress_buffers)
                cnt = c->ingress_buffers;
            if (cnt == 0)
                cnt = 1;
        }
        svc->icount[k] = (uint32_t)cnt;
        svc->ioff[k] = off;
        off += cnt * svc->class_size[k];
    }
    if (off > SVC_H_OFF_MASK)
        return MRT_SVC_ECONFIG;
    svc->region_bytes = off;
    return MRT_OK;
}

unsigned svc_class_of(const mrt_svc *svc, size_t len)
{
    size_t need = len + SVC_BUF_HDR;
    if (need <= SVC_MIN_CLASS)
        return 0;
    /* ceil(log2(need)) - log2(64); the last class takes everything above. */
    unsigned c = (unsigned)(64 - __builtin_clzll((unsigned long long)need - 1)) - 6;
    return c < svc->nclasses ? c : svc->nclasses - 1;
}

/* Index of the buffer at byte `rel` of class c, or false when rel is not a buffer start. */
static inline bool class_index_n(const mrt_svc *svc, unsigned c, uint64_t rel, uint32_t count,
                                 uint32_t *idx)
{
    uint64_t i;
    if (svc->class_shift[c] != 0xff) {
        if (rel & (svc->class_size[c] - 1u))
            return false;
        i = rel >> svc->class_shift[c];
    } else {
        i = rel / svc->class_size[c]; /* only the last class: its buffers are the largest */
        if (i * svc->class_size[c] != rel)
            return false;
    }
    if (i >= count)
        return false;
    *idx = (uint32_t)i;
    return true;
}

static inline bool class_index(const mrt_svc *svc, unsigned c, uint64_t rel, uint32_t *idx)
{
    return class_index_n(svc, c, rel, svc->class_count[c], idx);
}

bool svc_ingress_index(const mrt_svc *svc, uint64_t h, uint32_t len, unsigned *cls, uint32_t *idx)
{
    unsigned c = svc_h_class(h);
    uint64_t off = svc_h_off(h);
    if (!(c & SVC_H_INGRESS))
        return false;
    c &= ~SVC_H_INGRESS;
    if (c >= svc->nclasses || off < svc->ioff[c] ||
        !class_index_n(svc, c, off - svc->ioff[c], svc->icount[c], idx) ||
        len > svc->class_size[c] - SVC_BUF_HDR)
        return false;
    *cls = c;
    return true;
}

bool svc_resolve(const mrt_svc *svc, uint64_t h, uint32_t len, uint8_t **buf)
{
    unsigned owner = svc_h_owner(h), c = svc_h_class(h);
    uint64_t off = svc_h_off(h);
    uint32_t idx;
    if (owner >= svc->n || c >= svc->nclasses || svc->base[owner] == NULL ||
        off < svc->class_off[c] || !class_index(svc, c, off - svc->class_off[c], &idx) ||
        len > svc->class_size[c] - SVC_BUF_HDR)
        return false;
    *buf = svc->base[owner] + off;
    return true;
}

/* A handle of this shard's pool comes home. Anything not handed out is counted, not freed. */
uint8_t *svc_pool_push(mrt_svc_shard *ss, uint64_t h)
{
    const mrt_svc *svc = ss->svc;
    unsigned c = svc_h_class(h);
    uint64_t off = svc_h_off(h);
    uint32_t idx;
    if (svc_h_owner(h) != ss->id || c >= svc->nclasses || off < svc->class_off[c] ||
        !class_index(svc, c, off - svc->class_off[c], &idx) || !ss->cls[c].out[idx]) {
        ss->st.returns_invalid++;
        return NULL;
    }
    svc_class *k = &ss->cls[c];
    k->out[idx] = 0;
    k->stack[k->top++] = idx;
    ss->st.pool_out--;
    return ss->region + off;
}

int svc_pool_init(mrt_svc_shard *ss)
{
    const mrt_svc *svc = ss->svc;
    ss->region_bytes = svc->region_bytes;
    ss->region = mrt_alloc_aligned(ss->alloc, ss->region_bytes, 64);
    if (ss->region == NULL)
        return MRT_ENOMEM;
    for (unsigned c = 0; c < svc->nclasses; c++) {
        svc_class *k = &ss->cls[c];
        uint32_t cnt = svc->class_count[c];
        k->stack = mrt_alloc(ss->alloc, sizeof(uint32_t) * cnt);
        k->out = mrt_calloc(ss->alloc, cnt);
        if (k->stack == NULL || k->out == NULL)
            return MRT_ENOMEM;
        /* Lowest index on top: the first buffers used are the first in memory. */
        for (uint32_t i = 0; i < cnt; i++)
            k->stack[i] = cnt - 1 - i;
        k->top = cnt;
    }
    return MRT_OK;
}

void svc_pool_fini(mrt_svc_shard *ss)
{
    const mrt_svc *svc = ss->svc;
    for (unsigned c = 0; c < svc->nclasses; c++) {
        mrt_free(ss->alloc, ss->cls[c].stack, sizeof(uint32_t) * svc->class_count[c]);
        mrt_free(ss->alloc, ss->cls[c].out, svc->class_count[c]);
        ss->cls[c].stack = NULL;
        ss->cls[c].out = NULL;
    }
    mrt_free_aligned(ss->alloc, ss->region, ss->region_bytes, 64);
    ss->region = NULL;
}

unsigned mrt_svc_pool_classes(const mrt_svc *svc)
{
    return svc ? svc->nclasses : 0;
}

int mrt_svc_pool_class(const mrt_svc *svc, unsigned c, uint32_t *payload_cap, uint32_t *buffers)
{
    if (svc == NULL || c >= svc->nclasses)
        return MRT_EINVAL;
    if (payload_cap)
        *payload_cap = svc->class_size[c] - SVC_BUF_HDR;
    if (buffers)
        *buffers = svc->class_count[c];
    return MRT_OK;
}

uint32_t mrt_svc_pool_free(const mrt_svc_shard *ss, unsigned c)
{
    return (ss && c < ss->svc->nclasses) ? ss->cls[c].top : 0;
}
