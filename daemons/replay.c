/*
 * Replay buffer: the events an active delivered since its standbys' syncs,
 * keyed by ingress index, bounded in events and payload bytes, tracked per
 * standby. Everything is preallocated at create: a ring of event slots and a
 * byte ring for the payloads.
 */
#include "daemons/daemon_internal.h"

#define REPLAY_MAX_EVENTS (1u << 24)
#define REPLAY_MAX_STANDBYS 255u

struct replay_slot {
    mrt_causal_link link;
    uint64_t timestamp;
    uint64_t pos;   /* payload start in the byte ring (a position, not an offset) */
    uint32_t len;
};

struct replay_standby {
    uint64_t sync_next; /* holds every event below this index */
    bool tracked;
    bool stale;         /* events it needs were dropped: full re-sync needed */
};

struct mrt_replay {
    struct replay_slot *slots;
    uint8_t *bytes;
    struct replay_standby *standbys;
    uint32_t max_events;
    uint32_t max_bytes;
    uint32_t max_standbys;
    uint32_t head;      /* slot of the oldest held event (index base) */
    uint64_t base;      /* ingress index of the oldest held event */
    uint64_t next;      /* index the next append must carry; next - base events held */
    /*
     * Byte ring positions grow without bound; offset = pos % max_bytes. A
     * payload never wraps: it is placed at the next ring start when it would
     * cross the end. rpos is the oldest held payload's position (wpos when
     * no payload is held).
     */
    uint64_t wpos;
    uint64_t rpos;
    mrt_replay_stats stats;
    mrt_allocator alloc;
};

int mrt_replay_create(const mrt_replay_config *cfg, mrt_replay **out)
{
    if (cfg == NULL || out == NULL || cfg->max_events == 0 ||
        cfg->max_events > REPLAY_MAX_EVENTS || cfg->max_standbys == 0 ||
        cfg->max_standbys > REPLAY_MAX_STANDBYS)
        return MRT_EINVAL;
    mrt_allocator a = mrt_allocator_or_default(cfg->alloc);
    mrt_replay *r = mrt_calloc(&a, sizeof *r);
    if (r == NULL)
        return MRT_ENOMEM;
    r->alloc = a;
    r->max_events = cfg->max_events;
    r->max_bytes = cfg->max_bytes;
    r->max_standbys = cfg->max_standbys;
    r->base = r->next = cfg->first_index;
    r->slots = mrt_calloc(&a, sizeof *r->slots * cfg->max_events);
    r->standbys = mrt_calloc(&a, sizeof *r->standbys * cfg->max_standbys);
    r->bytes = cfg->max_bytes ? mrt_alloc(&a, cfg->max_bytes) : NULL;
    if (r->slots == NULL || r->standbys == NULL || (cfg->max_bytes && r->bytes == NULL)) {
        mrt_replay_destroy(r);
        return MRT_ENOMEM;
    }
    *out = r;
    return MRT_OK;
}

void mrt_replay_destroy(mrt_replay *r)
{
    if (r == NULL)
        return;
    mrt_allocator a = r->alloc;
    if (r->slots != NULL)
        mrt_free(&a, r->slots, sizeof *r->slots * r->max_events);
    if (r->standbys != NULL)
        mrt_free(&a, r->standbys, sizeof *r->standbys * r->max_standbys);
    if (r->bytes != NULL)
        mrt_free(&a, r->bytes, r->max_bytes);
    mrt_free(&a, r, sizeof *r);
}

static inline struct replay_slot *slot_of(const mrt_replay *r, uint64_t index)
{
    uint64_t i = (uint64_t)r->head + (index - r->base);
    return &r->slots[i % r->max_events];
}

/*
 * Drop the oldest held event. With `evict` (room is needed), fresh
 * standbys that still needed it turn stale; it counts as evicted when one
 * did, as trimmed otherwise.
 */
static void drop_oldest(mrt_replay *r, bool evict)
{
    struct replay_slot *s = &r->slots[r->head];
    r->stats.bytes -= s->len;
    r->stats.events--;
    bool needed = false;
    for (uint32_t i = 0; evict && i < r->max_standbys; i++) {
        struct replay_standby *sb = &r->standbys[i];
        if (sb->tracked && !sb->stale && sb->sync_next <= r->base) {
            sb->stale = true;
            needed = true;
            r->stats.resyncs++;
        }
    }
    if (needed)
        r->stats.evicted++;
    else
        r->stats.trimmed++;
    r->base++;
    r->head = r->head + 1 == r->max_events ? 0 : r->head + 1;
    /* The byte ring's read position follows the oldest payload still held. */
    r->rpos = r->base == r->next ? r->wpos : slot_of(r, r->base)->pos;
}

/*
 * The smallest sync point over tracked, fresh standbys (UINT64_MAX: none).
 * O(max_standbys): called on sync and on eviction, not per buffered event
 * while nobody is evicted.
 */
static uint64_t min_sync(const mrt_replay *r)
{
    uint64_t m = UINT64_MAX;
    for (uint32_t i = 0; i < r->max_standbys; i++) {
        const struct replay_standby *sb = &r->standbys[i];
        if (sb->tracked && !sb->stale && sb->sync_next < m)
            m = sb->sync_next;
    }
    return m;
}

int mrt_replay_append(mrt_replay *r, const mrt_event *ev, uint64_t index)
{
    if (r == NULL || ev == NULL || (ev->payload == NULL && ev->payload_len > 0))
        return MRT_EINVAL;
    if (index != r->next)
        return MRT_DAEMON_EINGRESS;
    if (ev->payload_len > r->max_bytes) {
        /* Cannot be buffered: no standby can be replayed past it. */
        while (r->base != r->next)
            drop_oldest(r, true);
        for (uint32_t i = 0; i < r->max_standbys; i++) {
            struct replay_standby *sb = &r->standbys[i];
            if (sb->tracked && !sb->stale) {
                sb->stale = true;
                r->stats.resyncs++;
            }
        }
        r->base = r->next = index + 1;
        r->head = 0;
        r->wpos = r->rpos = 0;
        return MRT_DAEMON_EOVERSIZED;
    }
    uint32_t len = (uint32_t)ev->payload_len;
    /* Room for one more slot. */
    if (r->next - r->base == r->max_events)
        drop_oldest(r, true);
    uint64_t pos = r->wpos;
    if (len > 0) {
        if (r->base == r->next) /* nothing held: restart the byte ring */
            r->wpos = r->rpos = pos = 0;
        uint64_t off = pos % r->max_bytes;
        if (off + len > r->max_bytes)
            pos += r->max_bytes - off; /* never wrap a payload */
        while (pos + len - r->rpos > r->max_bytes && r->base != r->next)
            drop_oldest(r, true);
        if (r->base == r->next) { /* emptied to make room: start over at offset 0 */
            r->wpos = r->rpos = pos = 0;
        }
        memcpy(r->bytes + pos % r->max_bytes, ev->payload, len);
        r->wpos = pos + len;
    }
    bool was_empty = r->base == r->next;
    struct replay_slot *s = slot_of(r, index);
    s->link = ev->link;
    s->timestamp = ev->timestamp;
    s->pos = pos;
    s->len = len;
    r->next++;
    if (was_empty)
        r->rpos = pos;
    r->stats.events++;
    r->stats.bytes += len;
    r->stats.appended++;
    r->stats.appended_bytes += len;
    return MRT_OK;
}

uint64_t mrt_replay_next_index(const mrt_replay *r)
{
    return r->next;
}

int mrt_replay_synced(mrt_replay *r, uint32_t id, uint64_t sync_next)
{
    if (r == NULL || id >= r->max_standbys)
        return MRT_EINVAL;
    if (sync_next > r->next)
        return MRT_DAEMON_EINGRESS;
    struct replay_standby *sb = &r->standbys[id];
    sb->tracked = true;
    sb->sync_next = sync_next;
    sb->stale = sync_next < r->base; /* already dropped what it would need */
    if (sb->stale) {
        r->stats.resyncs++;
        return MRT_DAEMON_ERESYNC;
    }
    /* Trim what every fresh standby holds. */
    uint64_t keep = min_sync(r);
    while (r->base != r->next && r->base < keep)
        drop_oldest(r, false);
    return MRT_OK;
}

void mrt_replay_forget(mrt_replay *r, uint32_t id)
{
    if (r != NULL && id < r->max_standbys)
        r->standbys[id] = (struct replay_standby){ 0, false, false };
}

int mrt_replay_sync_point(const mrt_replay *r, uint32_t id, uint64_t *sync_next)
{
    if (r == NULL || id >= r->max_standbys || sync_next == NULL)
        return MRT_EINVAL;
    if (!r->standbys[id].tracked)
        return MRT_ESTATE;
    *sync_next = r->standbys[id].sync_next;
    return MRT_OK;
}

int mrt_replay_pending(const mrt_replay *r, uint32_t id, uint64_t *count)
{
    if (r == NULL || id >= r->max_standbys || count == NULL)
        return MRT_EINVAL;
    const struct replay_standby *sb = &r->standbys[id];
    if (!sb->tracked)
        return MRT_ESTATE;
    if (sb->stale || sb->sync_next < r->base)
        return MRT_DAEMON_ERESYNC;
    *count = r->next - sb->sync_next;
    return MRT_OK;
}

int mrt_replay_at(const mrt_replay *r, uint64_t index, mrt_event *ev)
{
    if (r == NULL || ev == NULL)
        return MRT_EINVAL;
    if (index < r->base || index >= r->next)
        return MRT_ESTATE;
    const struct replay_slot *s = slot_of(r, index);
    ev->link = s->link;
    ev->timestamp = s->timestamp;
    ev->payload_len = s->len;
    ev->payload = s->len ? r->bytes + s->pos % r->max_bytes : (const void *)"";
    return MRT_OK;
}

int mrt_replay_apply(mrt_replay *r, uint32_t id, mrt_host *h, uint64_t now, uint64_t *replayed)
{
    uint64_t done = 0;
    if (replayed != NULL)
        *replayed = 0;
    if (h == NULL)
        return MRT_EINVAL;
    uint64_t pending;
    int rc = mrt_replay_pending(r, id, &pending);
    if (rc != MRT_OK)
        return rc;
    struct replay_standby *sb = &r->standbys[id];
    if (mrt_host_ingress_next(h) != sb->sync_next)
        return MRT_DAEMON_EINGRESS;
    bool was = mrt_host_suppressing(h);
    mrt_host_set_suppress(h, true);
    for (uint64_t i = sb->sync_next; i < r->next; i++) {
        mrt_event ev;
        (void)mrt_replay_at(r, i, &ev); /* held: i is in [sync_next, next) and sync_next >= base */
        rc = mrt_host_deliver_at(h, &ev, i, now);
        if (rc != MRT_OK)
            break;
        sb->sync_next = i + 1;
        done++;
    }
    mrt_host_set_suppress(h, was);
    r->stats.replayed += done;
    if (replayed != NULL)
        *replayed = done;
    return rc;
}

void mrt_replay_stats_get(const mrt_replay *r, mrt_replay_stats *out)
{
    *out = r->stats;
}
