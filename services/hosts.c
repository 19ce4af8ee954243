/*
 * Host table: daemon id -> mrt_host*, per shard. Open addressing with
 * linear probing over a power-of-two table at most half full, fixed at init
 * (no allocation afterwards). Daemon ids are origin hashes that anyone can
 * choose, so the slot comes from XXH3 keyed with a per-shard random seed:
 * with an unkeyed invertible mix (Fibonacci) an attacker can compute ids
 * that all land in one probe run. Deletion shifts the run back (no
 * tombstones), so lookups never degrade after churn.
 */
#include "services/svc_internal.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint32_t slot_of(const mrt_svc_shard *ss, uint64_t id)
{
    return (uint32_t)XXH3_64bits_withSeed(&id, sizeof id, ss->hseed) & ss->hmask;
}

int svc_hosts_init(mrt_svc_shard *ss)
{
    uint32_t cap = ss->svc->cfg.host_capacity, size = 2;
    while (size < 2u * cap)
        size <<= 1;
    ss->hosts = mrt_calloc(ss->alloc, sizeof(svc_hslot) * size);
    if (ss->hosts == NULL)
        return MRT_ENOMEM;
    ss->hmask = size - 1;
    ss->hcount = 0;
    uint32_t id = ss->id;
    ss->hseed = XXH3_64bits_withSeed(&id, sizeof id, ss->svc->seed);
    return MRT_OK;
}

void svc_hosts_fini(mrt_svc_shard *ss)
{
    mrt_free(ss->alloc, ss->hosts, sizeof(svc_hslot) * ((size_t)ss->hmask + 1));
    ss->hosts = NULL;
}

mrt_host *mrt_svc_host_find(const mrt_svc_shard *ss, uint64_t id)
{
    if (ss == NULL)
        return NULL;
    for (uint32_t i = slot_of(ss, id);; i = (i + 1) & ss->hmask) {
        const svc_hslot *e = &ss->hosts[i];
        if (e->host == NULL)
            return NULL; /* the table is at most half full: a run always ends */
        if (e->id == id)
            return e->host;
    }
}

int mrt_svc_host_add(mrt_svc_shard *ss, mrt_host *host)
{
    if (ss == NULL || host == NULL)
        return MRT_EINVAL;
    uint64_t id = mrt_host_origin(host);
    uint32_t i = slot_of(ss, id);
    for (; ss->hosts[i].host != NULL; i = (i + 1) & ss->hmask)
        if (ss->hosts[i].id == id)
            return MRT_SVC_EEXIST;
    if (ss->hcount >= ss->svc->cfg.host_capacity)
        return MRT_SVC_ELIMIT;
    ss->hosts[i] = (svc_hslot){ .id = id, .host = host };
    ss->hcount++;
    return MRT_OK;
}

int mrt_svc_host_remove(mrt_svc_shard *ss, uint64_t id, mrt_host **host)
{
    if (ss == NULL)
        return MRT_EINVAL;
    uint32_t i = slot_of(ss, id);
    for (;; i = (i + 1) & ss->hmask) {
        if (ss->hosts[i].host == NULL)
            return MRT_SVC_ENOHOST;
        if (ss->hosts[i].id == id)
            break;
    }
    if (host)
        *host = ss->hosts[i].host;
    /* Backward shift: pull each later entry of the run into the hole if its home allows. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & ss->hmask; ss->hosts[j].host != NULL; j = (j + 1) & ss->hmask) {
        uint32_t home = slot_of(ss, ss->hosts[j].id);
        /* j may move to the hole when its home is not in (hole, j] (cyclically). */
        if (((j - home) & ss->hmask) >= ((j - hole) & ss->hmask)) {
            ss->hosts[hole] = ss->hosts[j];
            hole = j;
        }
    }
    ss->hosts[hole] = (svc_hslot){ 0 };
    ss->hcount--;
    return MRT_OK;
}

uint32_t mrt_svc_host_count(const mrt_svc_shard *ss)
{
    return ss ? ss->hcount : 0;
}
