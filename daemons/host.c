/* Daemon host: deliver, output stamping, identity, control, snapshots. */
#include "daemons/observe.h"

#include <xxhash.h>

#define HOST_DEFAULT_ORIGINS 64u

struct mrt_host {
    /* Hot: read on every deliver. */
    int (*process)(void *state, const mrt_event *ev, mrt_daemon_sink *sink);
    void *state;
    mrt_daemon_sink sink;
    mrt_horizon horizon;
    mrt_causal_chain chain;
    mrt_host_stats stats;
    uint64_t ingress_next; /* ingress index of the next accepted event */
    bool shut_down;
    bool suppress;         /* replay: stamp outputs, then release them unemitted */
    /* Cold. */
    const mrt_daemon_vtable *vt;
    uint32_t max_state;
    mrt_allocator alloc;
};

static const char origin_domain[16] = { 'm', 'e', 's', 'h', 'r', 't', '/', 'o',
                                        'r', 'i', 'g', 'i', 'n', '/', 'v', '1' };

uint64_t mrt_host_origin_from_key(const uint8_t key[MRT_HOST_KEY_SIZE])
{
    uint8_t in[sizeof origin_domain + MRT_HOST_KEY_SIZE];
    memcpy(in, origin_domain, sizeof origin_domain);
    memcpy(in + sizeof origin_domain, key, MRT_HOST_KEY_SIZE);
    return XXH3_64bits(in, sizeof in);
}

int mrt_host_create(const mrt_host_config *cfg, mrt_daemon daemon, mrt_host **out)
{
    if (cfg == NULL || out == NULL || daemon.vt == NULL || daemon.vt->process == NULL)
        return MRT_EINVAL;
    mrt_allocator a = mrt_allocator_or_default(cfg->alloc);
    mrt_host *h = mrt_calloc(&a, sizeof *h);
    if (h == NULL)
        return MRT_ENOMEM;
    h->alloc = a;
    h->vt = daemon.vt;
    h->process = daemon.vt->process;
    h->state = daemon.state;
    h->max_state = cfg->max_state ? cfg->max_state : MRT_HOST_DEFAULT_MAX_STATE;
    uint32_t outputs = cfg->max_outputs ? cfg->max_outputs : MRT_SINK_DEFAULT_OUTPUTS;
    size_t bytes = cfg->payload_bytes ? cfg->payload_bytes : MRT_SINK_DEFAULT_PAYLOAD_BYTES;
    uint32_t origins = cfg->max_origins ? cfg->max_origins : HOST_DEFAULT_ORIGINS;
    int rc = mrt_daemon_sink_init(&h->sink, &a, outputs, bytes);
    if (rc != MRT_OK) {
        mrt_free(&a, h, sizeof *h);
        return rc;
    }
    rc = mrt_horizon_init(&h->horizon, &a, origins);
    if (rc != MRT_OK) {
        mrt_daemon_sink_destroy(&h->sink);
        mrt_free(&a, h, sizeof *h);
        return rc;
    }
    uint64_t origin = mrt_host_origin_from_key(cfg->key);
    h->ingress_next = cfg->ingress_start;
    mrt_causal_chain_init(&h->chain, origin);
    if (cfg->resume != NULL) {
        rc = mrt_causal_chain_resume(&h->chain, origin, cfg->resume, cfg->resume_next_parent);
        if (rc != MRT_OK) {
            mrt_horizon_destroy(&h->horizon);
            mrt_daemon_sink_destroy(&h->sink);
            mrt_free(&a, h, sizeof *h);
            return rc;
        }
    }
    *out = h;
    return MRT_OK;
}

void mrt_host_destroy(mrt_host *h)
{
    if (h == NULL)
        return;
    mrt_allocator a = h->alloc;
    mrt_daemon_sink_destroy(&h->sink);
    mrt_horizon_destroy(&h->horizon);
    mrt_free(&a, h, sizeof *h);
}

/* A failed deliver: drop what the daemon emitted, count, report. */
static int fail(mrt_host *h, int rc)
{
    mrt_daemon_sink_reset(&h->sink);
    h->stats.errors++;
    return rc > 0 ? MRT_DAEMON_EPROCESS : rc;
}

/*
 * Stamp the pending outputs: all of them or, on overflow, none. Each output
 * sits in the sink behind room for its frame header (MRT_SINK_SLOT_HEADER):
 * the link is written there, so link || payload is contiguous and the next
 * parent hash is one XXH3 pass over the bytes in place — no concatenation
 * buffer, no copy — and the output is a finished wire frame.
 */
__attribute__((noinline)) static int stamp_outputs(mrt_host *h, uint64_t now)
{
    mrt_daemon_sink *s = &h->sink;
    mrt_causal_chain *c = &h->chain;
    uint32_t n = s->count;
    if (c->has_head && UINT64_MAX - c->head.sequence < n)
        return fail(h, MRT_DAEMON_ESEQOVERFLOW);
    const uint64_t horizon = h->horizon.encoded; /* cached; taken once */
    for (uint32_t i = 0; i < n; i++) {
        mrt_event *ev = &s->outputs[i];
        uint8_t *link_bytes = (uint8_t *)ev->payload - MRT_CAUSAL_LINK_SIZE;
        mrt_causal_link l = mrt_dm_next_link(c, horizon);
        mrt_dm_store_le32(link_bytes - 4, (uint32_t)(MRT_FRAME_HEADER_SIZE + ev->payload_len));
        mrt_dm_store_le64(link_bytes, l.origin_hash);
        mrt_dm_store_le64(link_bytes + 8, l.horizon_encoded);
        mrt_dm_store_le64(link_bytes + 16, l.sequence);
        mrt_dm_store_le64(link_bytes + 24, l.parent_hash);
        c->next_parent = XXH3_64bits(link_bytes, MRT_CAUSAL_LINK_SIZE + ev->payload_len);
        c->head = l;
        c->has_head = true;
        ev->link = l;
        ev->timestamp = now;
    }
    h->stats.emitted += n;
    h->stats.spills += s->spilled;
    h->ingress_next++;
    if (h->suppress) {
        /* Replay: the chain has advanced over them; the old active emitted them. */
        h->stats.suppressed += n;
        mrt_host_release_outputs(h);
    }
    return MRT_OK;
}

int mrt_host_deliver(mrt_host *h, const mrt_event *ev, uint64_t now)
{
    if (__builtin_expect(h->sink.count != 0 || h->shut_down, 0)) {
        h->stats.errors++;
        return h->shut_down ? MRT_ESTATE : MRT_DAEMON_EPENDING;
    }
    int rc = mrt_dm_horizon_observe(&h->horizon, ev->link.origin_hash, ev->link.sequence);
    if (__builtin_expect(rc != MRT_OK, 0)) {
        h->stats.errors++;
        return rc;
    }
    rc = h->process(h->state, ev, &h->sink);
    if (__builtin_expect(rc != MRT_OK, 0))
        return fail(h, rc);
    h->stats.processed++;
    if (__builtin_expect(h->sink.count == 0, 1)) {
        h->ingress_next++;
        return MRT_OK; /* no outputs: no horizon encode, no chain work */
    }
    return stamp_outputs(h, now);
}

int mrt_host_deliver_at(mrt_host *h, const mrt_event *ev, uint64_t index, uint64_t now)
{
    if (index != h->ingress_next) {
        h->stats.errors++;
        return MRT_DAEMON_EINGRESS;
    }
    return mrt_host_deliver(h, ev, now);
}

uint64_t mrt_host_ingress_next(const mrt_host *h)
{
    return h->ingress_next;
}

void mrt_host_set_suppress(mrt_host *h, bool on)
{
    h->suppress = on;
}

bool mrt_host_suppressing(const mrt_host *h)
{
    return h->suppress;
}

int mrt_host_output_frame(const mrt_host *h, size_t i, const uint8_t **frame, size_t *size)
{
    if (h == NULL || frame == NULL || size == NULL || i >= h->sink.count)
        return MRT_EINVAL;
    const mrt_event *ev = &h->sink.outputs[i];
    *frame = (const uint8_t *)ev->payload - MRT_FRAME_HEADER_SIZE;
    *size = MRT_FRAME_HEADER_SIZE + ev->payload_len;
    return MRT_OK;
}

const mrt_event *mrt_host_outputs(const mrt_host *h, size_t *count)
{
    if (count != NULL)
        *count = h->sink.count;
    return h->sink.outputs;
}

void mrt_host_release_outputs(mrt_host *h)
{
    if (__builtin_expect(h->sink.spilled != 0, 0)) {
        mrt_daemon_sink_reset(&h->sink);
        return;
    }
    h->sink.count = 0;
    h->sink.region_used = 0;
}

uint64_t mrt_host_origin(const mrt_host *h)
{
    return h->chain.origin_hash;
}

const mrt_causal_chain *mrt_host_chain(const mrt_host *h)
{
    return &h->chain;
}

const mrt_horizon *mrt_host_horizon(const mrt_host *h)
{
    return &h->horizon;
}

void mrt_host_stats_get(const mrt_host *h, mrt_host_stats *out)
{
    *out = h->stats;
}

int mrt_host_control(mrt_host *h, mrt_daemon_control kind, uint32_t level)
{
    if (h == NULL || (unsigned)kind > (unsigned)MRT_DAEMON_CTL_BACKPRESSURE_OFF)
        return MRT_EINVAL;
    int rc = MRT_OK;
    if (h->vt->on_control != NULL)
        rc = h->vt->on_control(h->state, kind, level);
    if (kind == MRT_DAEMON_CTL_SHUTDOWN)
        h->shut_down = true;
    return rc > 0 ? MRT_DAEMON_EPROCESS : rc;
}

mrt_daemon_health mrt_host_health(const mrt_host *h)
{
    return h->vt->health ? h->vt->health(h->state) : MRT_DAEMON_HEALTHY;
}

double mrt_host_saturation(const mrt_host *h)
{
    if (h->vt->saturation == NULL)
        return 0.0;
    double v = h->vt->saturation(h->state);
    if (!(v > 0.0)) /* also NaN */
        return 0.0;
    return v > 1.0 ? 1.0 : v;
}

/* ------------------------------------------------------------------------- */
/* Snapshots                                                                 */
/* ------------------------------------------------------------------------- */

static const uint8_t snap_magic[4] = { 'M', 'R', 'T', 'H' };
#define SNAP_FLAG_HEAD 1u
#define SNAP_ENTRY 16u
#define SNAP_TRAILER 8u

/* Sift-down of an in-place heapsort over 16-byte entries keyed by their first u64. */
static void sift(uint8_t *e, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n &&
            mrt_dm_load_le64(e + (child + 1) * SNAP_ENTRY) > mrt_dm_load_le64(e + child * SNAP_ENTRY))
            child++;
        if (mrt_dm_load_le64(e + root * SNAP_ENTRY) >= mrt_dm_load_le64(e + child * SNAP_ENTRY))
            return;
        uint8_t t[SNAP_ENTRY];
        memcpy(t, e + root * SNAP_ENTRY, SNAP_ENTRY);
        memcpy(e + root * SNAP_ENTRY, e + child * SNAP_ENTRY, SNAP_ENTRY);
        memcpy(e + child * SNAP_ENTRY, t, SNAP_ENTRY);
        root = child;
    }
}

/* Ascending origin order makes snapshots canonical and lets the decoder find repeats in O(n). */
static void sort_entries(uint8_t *e, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift(e, i, n);
    for (size_t end = n; end-- > 1;) {
        uint8_t t[SNAP_ENTRY];
        memcpy(t, e, SNAP_ENTRY);
        memcpy(e, e + end * SNAP_ENTRY, SNAP_ENTRY);
        memcpy(e + end * SNAP_ENTRY, t, SNAP_ENTRY);
        sift(e, 0, end);
    }
}

struct entry_writer {
    uint8_t *p;
};

static int write_entry(void *ctx, uint64_t origin, uint64_t seq)
{
    struct entry_writer *w = ctx;
    mrt_dm_store_le64(w->p, origin);
    mrt_dm_store_le64(w->p + 8, seq);
    w->p += SNAP_ENTRY;
    return 0;
}

int mrt_host_snapshot(mrt_host *h, void *buf, size_t cap, size_t *len)
{
    if (h == NULL || len == NULL)
        return MRT_EINVAL;
    size_t state_len = 0;
    if (h->vt->snapshot != NULL) {
        /* Size query: an empty state answers MRT_OK with 0, any other MRT_DAEMON_ENOSPACE. */
        int rc = h->vt->snapshot(h->state, NULL, 0, &state_len);
        if (rc != MRT_OK && rc != MRT_DAEMON_ENOSPACE)
            return rc > 0 ? MRT_DAEMON_EPROCESS : rc;
        if (rc == MRT_OK && state_len != 0)
            return MRT_DAEMON_EINCONSISTENT; /* claims to have written into no buffer */
    }
    if (state_len > h->max_state)
        return MRT_DAEMON_EOVERSIZED;
    size_t n = h->horizon.count;
    size_t entries = n * SNAP_ENTRY;
    size_t total = MRT_HOST_SNAPSHOT_HEADER_SIZE + entries + state_len + SNAP_TRAILER;
    *len = total;
    if (buf == NULL || cap < total)
        return MRT_DAEMON_ENOSPACE;

    uint8_t *p = buf;
    uint8_t *state = p + MRT_HOST_SNAPSHOT_HEADER_SIZE + entries;
    size_t written = 0;
    if (state_len > 0) {
        int rc = h->vt->snapshot(h->state, state, state_len, &written);
        if (rc != MRT_OK)
            return rc > 0 ? MRT_DAEMON_EPROCESS : rc;
        if (written > state_len)
            return MRT_DAEMON_EINCONSISTENT;
    }
    const mrt_causal_chain *c = &h->chain;
    memcpy(p, snap_magic, 4);
    mrt_dm_store_le16(p + 4, MRT_HOST_SNAPSHOT_VERSION);
    mrt_dm_store_le16(p + 6, c->has_head ? SNAP_FLAG_HEAD : 0);
    mrt_dm_store_le64(p + 8, c->origin_hash);
    mrt_causal_link head = { 0, 0, 0, 0 };
    uint64_t next_parent = 0;
    if (c->has_head) {
        head = c->head;
        next_parent = c->next_parent;
    }
    mrt_dm_store_le64(p + 16, head.sequence);
    mrt_causal_link_encode(&head, p + 24);
    mrt_dm_store_le64(p + 56, next_parent);
    mrt_dm_store_le64(p + 64, h->horizon.logical_time);
    mrt_dm_store_le32(p + 72, (uint32_t)n);
    mrt_dm_store_le32(p + 76, (uint32_t)written);
    mrt_dm_store_le64(p + 80, h->ingress_next);
    struct entry_writer w = { p + MRT_HOST_SNAPSHOT_HEADER_SIZE };
    mrt_horizon_foreach(&h->horizon, write_entry, &w);
    sort_entries(p + MRT_HOST_SNAPSHOT_HEADER_SIZE, n);
    size_t body = MRT_HOST_SNAPSHOT_HEADER_SIZE + entries + written;
    mrt_dm_store_le64(p + body, XXH3_64bits(p, body));
    *len = body + SNAP_TRAILER;
    h->stats.snapshots++;
    return MRT_OK;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

int mrt_host_snapshot_decode(const void *buf, size_t len, uint32_t max_state,
                             uint32_t max_origins, mrt_host_snapshot_view *out)
{
    if ((buf == NULL && len > 0) || out == NULL)
        return MRT_EINVAL;
    const uint8_t *p = buf;
    if (len < 4)
        return MRT_DAEMON_ETRUNCATED;
    if (memcmp(p, snap_magic, 4) != 0)
        return MRT_DAEMON_EMAGIC;
    if (len < 6)
        return MRT_DAEMON_ETRUNCATED;
    uint16_t version = mrt_dm_load_le16(p + 4);
    if (version != MRT_HOST_SNAPSHOT_VERSION)
        return MRT_DAEMON_EVERSION;
    if (len < MRT_HOST_SNAPSHOT_HEADER_SIZE)
        return MRT_DAEMON_ETRUNCATED;
    uint16_t flags = mrt_dm_load_le16(p + 6);
    if (flags & ~SNAP_FLAG_HEAD)
        return MRT_DAEMON_EINCONSISTENT;
    uint32_t n = mrt_dm_load_le32(p + 72);
    uint32_t state_len = mrt_dm_load_le32(p + 76);
    if (n > max_origins || state_len > max_state)
        return MRT_DAEMON_EOVERSIZED;
    /* u32 counts: the sum cannot overflow 64 bits. */
    uint64_t need = (uint64_t)MRT_HOST_SNAPSHOT_HEADER_SIZE + (uint64_t)n * SNAP_ENTRY +
                    state_len + SNAP_TRAILER;
    if ((uint64_t)len < need)
        return MRT_DAEMON_ETRUNCATED;
    if ((uint64_t)len > need)
        return MRT_DAEMON_EINCONSISTENT;
    size_t body = (size_t)need - SNAP_TRAILER;
    if (mrt_dm_load_le64(p + body) != XXH3_64bits(p, body))
        return MRT_DAEMON_ECHECKSUM;

    mrt_host_snapshot_view v;
    memset(&v, 0, sizeof v);
    v.version = version;
    v.has_head = (flags & SNAP_FLAG_HEAD) != 0;
    v.origin_hash = mrt_dm_load_le64(p + 8);
    v.through_sequence = mrt_dm_load_le64(p + 16);
    mrt_causal_link_decode(p + 24, &v.head);
    v.next_parent = mrt_dm_load_le64(p + 56);
    v.logical_time = mrt_dm_load_le64(p + 64);
    v.origin_count = n;
    v.ingress_next = mrt_dm_load_le64(p + 80);
    v.origins = p + MRT_HOST_SNAPSHOT_HEADER_SIZE;
    v.state = v.origins + (size_t)n * SNAP_ENTRY;
    v.state_len = state_len;
    if (v.has_head) {
        if (v.head.origin_hash != v.origin_hash || v.head.sequence != v.through_sequence)
            return MRT_DAEMON_EINCONSISTENT;
    } else if (v.through_sequence != 0 || v.next_parent != 0 || !all_zero(p + 24, 32)) {
        return MRT_DAEMON_EINCONSISTENT;
    }
    /* Strictly ascending origins: no repeats. */
    for (uint32_t i = 1; i < n; i++)
        if (mrt_dm_load_le64(v.origins + (size_t)i * SNAP_ENTRY) <=
            mrt_dm_load_le64(v.origins + (size_t)(i - 1) * SNAP_ENTRY))
            return MRT_DAEMON_EINCONSISTENT;
    *out = v;
    return MRT_OK;
}

/*
 * Restore from a snapshot. same_identity: the snapshot is this host's
 * chain (standby sync, re-spawn) and the chain and ingress position are
 * taken over too; otherwise (a fork from its parent's snapshot) only the
 * daemon state and the horizon are, and the host keeps its own chain.
 */
static int restore(mrt_host *h, const void *buf, size_t len, bool same_identity)
{
    if (h == NULL)
        return MRT_EINVAL;
    if (h->sink.count != 0)
        return MRT_DAEMON_EPENDING;
    mrt_host_snapshot_view v;
    int rc = mrt_host_snapshot_decode(buf, len, h->max_state, MRT_HORIZON_MAX_ORIGINS, &v);
    if (rc != MRT_OK)
        return rc;
    if ((v.origin_hash != h->chain.origin_hash) == same_identity)
        return MRT_DAEMON_EORIGIN;
    if (v.origin_count > h->horizon.max_origins)
        return MRT_DAEMON_EHORIZONFULL;
    if (h->vt->restore == NULL && v.state_len != 0)
        return MRT_DAEMON_ESTATELESS;
    /* Build the horizon aside: an origin can meet the probe bound, and then nothing changes. */
    mrt_horizon hz;
    rc = mrt_horizon_init(&hz, &h->horizon.alloc, h->horizon.max_origins);
    if (rc != MRT_OK)
        return rc;
    for (uint32_t i = 0; i < v.origin_count && rc == MRT_OK; i++) {
        const uint8_t *e = v.origins + (size_t)i * SNAP_ENTRY;
        rc = mrt_horizon_observe(&hz, mrt_dm_load_le64(e), mrt_dm_load_le64(e + 8));
    }
    /* Everything the host checks is checked: the daemon's state goes first, then ours. */
    if (rc == MRT_OK && h->vt->restore != NULL) {
        rc = h->vt->restore(h->state, v.state, v.state_len);
        if (rc > 0)
            rc = MRT_DAEMON_EPROCESS;
    }
    if (rc != MRT_OK) {
        mrt_horizon_destroy(&hz);
        return rc;
    }
    mrt_horizon_destroy(&h->horizon);
    h->horizon = hz;
    h->horizon.logical_time = v.logical_time;
    if (same_identity) {
        h->ingress_next = v.ingress_next;
        if (v.has_head)
            (void)mrt_causal_chain_resume(&h->chain, v.origin_hash, &v.head, v.next_parent);
        else
            mrt_causal_chain_init(&h->chain, v.origin_hash);
    }
    h->stats.restores++;
    return MRT_OK;
}

int mrt_host_restore(mrt_host *h, const void *buf, size_t len)
{
    return restore(h, buf, len, true);
}

int mrt_host_restore_fork(mrt_host *h, const void *buf, size_t len)
{
    return restore(h, buf, len, false);
}
