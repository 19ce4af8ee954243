/*
 * A shard's daemon records by id: open addressing with linear probing over
 * a power-of-two table at most half full, fixed at init. Ids are origin
 * hashes anyone can choose (a spawn key), so the slot is XXH3 keyed with a
 * per-shard random seed; deletion shifts the run back (no tombstones).
 * Control commands insert and remove; the output path looks up.
 */
#include "compute/cp_internal.h"

#include "meshrt/mrt_perf.h"

#include <string.h>
#include <sys/random.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint32_t slot_of(const cp_shard *cs, uint64_t id)
{
    return (uint32_t)XXH3_64bits_withSeed(&id, sizeof id, cs->seed) & cs->mask;
}

int cp_table_init(cp_shard *cs, uint32_t capacity)
{
    uint32_t size = 2;
    while (size < 2u * capacity)
        size <<= 1;
    cs->slots = mrt_calloc(cs->a, sizeof(*cs->slots) * size);
    if (cs->slots == NULL)
        return MRT_ENOMEM;
    cs->mask = size - 1;
    if (getrandom(&cs->seed, sizeof cs->seed, GRND_NONBLOCK) != (ssize_t)sizeof cs->seed)
        cs->seed = mrt_rdtsc() ^ (uint64_t)(uintptr_t)cs;
    return MRT_OK;
}

void cp_table_fini(cp_shard *cs)
{
    if (cs->slots)
        mrt_free(cs->a, cs->slots, sizeof(*cs->slots) * ((size_t)cs->mask + 1));
    cs->slots = NULL;
}

cp_daemon *cp_find(const cp_shard *cs, uint64_t id)
{
    for (uint32_t i = slot_of(cs, id);; i = (i + 1) & cs->mask) {
        cp_daemon *d = cs->slots[i];
        if (d == NULL || d->id == id)
            return d; /* at most half full: a run always ends */
    }
}

int cp_insert(cp_shard *cs, cp_daemon *d)
{
    uint32_t i = slot_of(cs, d->id);
    for (; cs->slots[i] != NULL; i = (i + 1) & cs->mask)
        if (cs->slots[i]->id == d->id)
            return MRT_SVC_EEXIST;
    if (cs->count >= (cs->mask + 1) / 2)
        return MRT_CP_ELIMIT;
    cs->slots[i] = d;
    cs->count++;
    d->prev = NULL;
    d->next = cs->list;
    if (cs->list)
        cs->list->prev = d;
    cs->list = d;
    return MRT_OK;
}

void cp_remove(cp_shard *cs, uint64_t id)
{
    uint32_t i = slot_of(cs, id);
    for (;; i = (i + 1) & cs->mask) {
        if (cs->slots[i] == NULL)
            return;
        if (cs->slots[i]->id == id)
            break;
    }
    cp_daemon *d = cs->slots[i];
    if (d->prev)
        d->prev->next = d->next;
    else
        cs->list = d->next;
    if (d->next)
        d->next->prev = d->prev;
    /* Backward shift: pull each later entry of the run into the hole if its home allows. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & cs->mask; cs->slots[j] != NULL; j = (j + 1) & cs->mask) {
        uint32_t home = slot_of(cs, cs->slots[j]->id);
        if (((j - home) & cs->mask) >= ((j - hole) & cs->mask)) {
            cs->slots[hole] = cs->slots[j];
            hole = j;
        }
    }
    cs->slots[hole] = NULL;
    cs->count--;
}
