/*
 * Daemons: ingress indices, output suppression, snapshot v2, the replay
 * buffer, and a standby promotion whose continued chain verifies end to end.
 */
#include "meshrt/mrt_daemon.h"
#include "tests/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/*
 * mixer: stateful, and its state is not its output (the seed system's
 * snapshots only verified by accident for daemons whose state equalled
 * their last output). Per event it folds the payload and the sender into
 * its state and emits `fanout` outputs that depend on both.
 */
struct mixer {
    uint64_t acc;
    uint64_t events;
    unsigned fanout;
    int fail_next; /* non-zero: the next process call returns it */
};

static int mixer_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    struct mixer *m = st;
    if (m->fail_next) {
        int rc = m->fail_next;
        m->fail_next = 0;
        return rc;
    }
    uint64_t x = 0;
    memcpy(&x, ev->payload, ev->payload_len < 8 ? ev->payload_len : 8);
    m->acc = m->acc * 1000003u ^ x ^ ev->link.origin_hash;
    m->events++;
    for (unsigned i = 0; i < m->fanout; i++) {
        uint64_t out[3] = { m->acc + i, m->events, ev->link.origin_hash };
        int rc = mrt_daemon_emit_copy(sink, out, sizeof out - (i & 1) * 8); /* varied lengths */
        if (rc != MRT_OK)
            return rc;
    }
    return MRT_OK;
}

static int mixer_snapshot(const void *st, void *buf, size_t cap, size_t *len)
{
    *len = 16;
    if (cap < 16)
        return MRT_DAEMON_ENOSPACE;
    const struct mixer *m = st;
    memcpy(buf, &m->acc, 8);
    memcpy((uint8_t *)buf + 8, &m->events, 8);
    return MRT_OK;
}

static int mixer_restore(void *st, const void *buf, size_t len)
{
    if (len != 16)
        return MRT_DAEMON_EBADSTATE;
    struct mixer *m = st;
    memcpy(&m->acc, buf, 8);
    memcpy(&m->events, (const uint8_t *)buf + 8, 8);
    return MRT_OK;
}

static const mrt_daemon_vtable mixer_vt = {
    .name = "mixer",
    .process = mixer_process,
    .snapshot = mixer_snapshot,
    .restore = mixer_restore,
};

static mrt_host *make_host(struct mixer *m, uint8_t key_byte, uint64_t ingress_start)
{
    mrt_host_config c;
    memset(&c, 0, sizeof c);
    memset(c.key, key_byte, sizeof c.key);
    c.ingress_start = ingress_start;
    mrt_daemon d = { &mixer_vt, m };
    mrt_host *h;
    ck_assert_int_eq(mrt_host_create(&c, d, &h), MRT_OK);
    return h;
}

/* Sender s's n-th event: both senders number their events from 0, so sequences collide. */
static mrt_event sender_event(unsigned s, uint64_t n, uint64_t *payload)
{
    *payload = n * 31 + s;
    mrt_event ev = { .link = { .origin_hash = 0xA000 + s, .sequence = n },
                     .payload = payload,
                     .payload_len = sizeof *payload };
    return ev;
}

/* Hand the pending outputs to the receiver (which must accept each) and release them. */
static size_t receive(mrt_host *h, mrt_causal_chain *rx)
{
    size_t n;
    const mrt_event *out = mrt_host_outputs(h, &n);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(mrt_causal_chain_accept(rx, &out[i].link, out[i].payload,
                                                 out[i].payload_len),
                         MRT_OK);
    mrt_host_release_outputs(h);
    return n;
}

START_TEST(ingress_index_per_accepted_event)
{
    struct mixer m = { .fanout = 1 };
    mrt_host *h = make_host(&m, 1, 100);
    ck_assert_uint_eq(mrt_host_ingress_next(h), 100);
    uint64_t p;
    mrt_event ev = sender_event(0, 0, &p);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_OK);
    ck_assert_uint_eq(mrt_host_ingress_next(h), 101);
    /* Pending outputs: refused, no index taken. */
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_DAEMON_EPENDING);
    ck_assert_uint_eq(mrt_host_ingress_next(h), 101);
    mrt_host_release_outputs(h);
    /* A daemon error: no index taken. */
    m.fail_next = MRT_DAEMON_EBADSTATE;
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_DAEMON_EBADSTATE);
    ck_assert_uint_eq(mrt_host_ingress_next(h), 101);
    /* No outputs still takes an index. */
    m.fanout = 0;
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_OK);
    ck_assert_uint_eq(mrt_host_ingress_next(h), 102);
    /* deliver_at: only the next index; out of order is refused and changes nothing. */
    mrt_host_stats before, after;
    mrt_host_stats_get(h, &before);
    uint64_t events = m.events;
    ck_assert_int_eq(mrt_host_deliver_at(h, &ev, 101, 0), MRT_DAEMON_EINGRESS);
    ck_assert_int_eq(mrt_host_deliver_at(h, &ev, 103, 0), MRT_DAEMON_EINGRESS);
    ck_assert_uint_eq(m.events, events);
    mrt_host_stats_get(h, &after);
    ck_assert_uint_eq(after.errors, before.errors + 2);
    ck_assert_uint_eq(after.processed, before.processed);
    ck_assert_int_eq(mrt_host_deliver_at(h, &ev, 102, 0), MRT_OK);
    ck_assert_uint_eq(mrt_host_ingress_next(h), 103);
    mrt_host_destroy(h);
}
END_TEST

START_TEST(suppression_advances_chain_without_emitting)
{
    struct mixer a = { .fanout = 2 }, b = { .fanout = 2 };
    mrt_host *ha = make_host(&a, 2, 0), *hb = make_host(&b, 2, 0);
    mrt_host_set_suppress(hb, true);
    ck_assert(mrt_host_suppressing(hb));
    for (uint64_t i = 0; i < 5; i++) {
        uint64_t p;
        mrt_event ev = sender_event(i & 1, i, &p);
        ck_assert_int_eq(mrt_host_deliver(ha, &ev, i), MRT_OK);
        mrt_host_release_outputs(ha);
        ck_assert_int_eq(mrt_host_deliver(hb, &ev, i), MRT_OK);
        size_t n;
        (void)mrt_host_outputs(hb, &n);
        ck_assert_uint_eq(n, 0); /* nothing pending: the next deliver is accepted at once */
    }
    /* Same chain, same position. */
    ck_assert_mem_eq(&mrt_host_chain(ha)->head, &mrt_host_chain(hb)->head, sizeof(mrt_causal_link));
    ck_assert_uint_eq(mrt_host_chain(ha)->next_parent, mrt_host_chain(hb)->next_parent);
    mrt_host_stats s;
    mrt_host_stats_get(hb, &s);
    ck_assert_uint_eq(s.suppressed, 10);
    ck_assert_uint_eq(s.emitted, 10);
    mrt_host_set_suppress(hb, false);
    uint64_t p;
    mrt_event ev = sender_event(0, 9, &p);
    ck_assert_int_eq(mrt_host_deliver(hb, &ev, 0), MRT_OK);
    size_t n;
    (void)mrt_host_outputs(hb, &n);
    ck_assert_uint_eq(n, 2);
    mrt_host_destroy(ha);
    mrt_host_destroy(hb);
}
END_TEST

START_TEST(snapshot_v2_carries_ingress)
{
    struct mixer a = { .fanout = 1 }, b = { .fanout = 1 };
    mrt_host *ha = make_host(&a, 3, 40), *hb = make_host(&b, 3, 0);
    for (uint64_t i = 0; i < 7; i++) {
        uint64_t p;
        mrt_event ev = sender_event(0, i, &p);
        ck_assert_int_eq(mrt_host_deliver(ha, &ev, i), MRT_OK);
        mrt_host_release_outputs(ha);
    }
    uint8_t buf[512];
    size_t len;
    ck_assert_int_eq(mrt_host_snapshot(ha, buf, sizeof buf, &len), MRT_OK);
    mrt_host_snapshot_view v;
    ck_assert_int_eq(mrt_host_snapshot_decode(buf, len, 1024, 1024, &v), MRT_OK);
    ck_assert_uint_eq(v.version, 2);
    ck_assert_uint_eq(v.ingress_next, 47);
    ck_assert_uint_eq(v.through_sequence, 6);
    ck_assert_uint_eq(v.next_parent, mrt_host_chain(ha)->next_parent);
    ck_assert_int_eq(mrt_host_restore(hb, buf, len), MRT_OK);
    ck_assert_uint_eq(mrt_host_ingress_next(hb), 47);
    /* Every length but the exact one is refused. */
    for (size_t n = 0; n < len; n++)
        ck_assert_int_eq(mrt_host_snapshot_decode(buf, n, 1024, 1024, &v), MRT_DAEMON_ETRUNCATED);
    mrt_host_destroy(ha);
    mrt_host_destroy(hb);
}
END_TEST

static mrt_replay *make_replay(uint32_t events, uint32_t bytes, uint32_t standbys, uint64_t first)
{
    mrt_replay_config c = { .max_events = events, .max_bytes = bytes, .max_standbys = standbys,
                            .first_index = first };
    mrt_replay *r;
    ck_assert_int_eq(mrt_replay_create(&c, &r), MRT_OK);
    return r;
}

static void append_n(mrt_replay *r, uint64_t from, uint64_t n, size_t len)
{
    static uint8_t data[4096];
    for (uint64_t i = from; i < from + n; i++) {
        memset(data, (int)(i & 0xFF), len);
        mrt_event ev = { .link = { .origin_hash = 5, .sequence = i }, .payload = data,
                         .payload_len = len, .timestamp = i * 10 };
        ck_assert_int_eq(mrt_replay_append(r, &ev, i), MRT_OK);
    }
}

START_TEST(replay_buffer_order_and_contents)
{
    mrt_replay *r = make_replay(8, 256, 2, 50);
    mrt_replay_config bad = { .max_events = 0, .max_standbys = 1 };
    mrt_replay *x;
    ck_assert_int_eq(mrt_replay_create(&bad, &x), MRT_EINVAL);
    bad.max_events = 1;
    bad.max_standbys = 256;
    ck_assert_int_eq(mrt_replay_create(&bad, &x), MRT_EINVAL);

    mrt_event ev = { .payload = "abc", .payload_len = 3 };
    ck_assert_int_eq(mrt_replay_append(r, &ev, 49), MRT_DAEMON_EINGRESS);
    ck_assert_int_eq(mrt_replay_append(r, &ev, 51), MRT_DAEMON_EINGRESS);
    append_n(r, 50, 5, 20);
    ck_assert_uint_eq(mrt_replay_next_index(r), 55);
    mrt_event got;
    ck_assert_int_eq(mrt_replay_at(r, 49, &got), MRT_ESTATE);
    ck_assert_int_eq(mrt_replay_at(r, 55, &got), MRT_ESTATE);
    ck_assert_int_eq(mrt_replay_at(r, 52, &got), MRT_OK);
    ck_assert_uint_eq(got.link.sequence, 52);
    ck_assert_uint_eq(got.timestamp, 520);
    ck_assert_uint_eq(got.payload_len, 20);
    ck_assert_uint_eq(((const uint8_t *)got.payload)[19], 52);

    /* Standbys: one synced at 52, one at 50; ahead of the buffer is refused. */
    uint64_t pending;
    ck_assert_int_eq(mrt_replay_pending(r, 0, &pending), MRT_ESTATE);
    ck_assert_int_eq(mrt_replay_synced(r, 0, 56), MRT_DAEMON_EINGRESS);
    ck_assert_int_eq(mrt_replay_synced(r, 2, 50), MRT_EINVAL);
    ck_assert_int_eq(mrt_replay_synced(r, 0, 52), MRT_OK);
    ck_assert_int_eq(mrt_replay_at(r, 50, &got), MRT_ESTATE); /* trimmed: nobody needs it */
    ck_assert_int_eq(mrt_replay_synced(r, 1, 50), MRT_DAEMON_ERESYNC);
    ck_assert_int_eq(mrt_replay_pending(r, 1, &pending), MRT_DAEMON_ERESYNC);
    ck_assert_int_eq(mrt_replay_synced(r, 1, 53), MRT_OK);
    ck_assert_int_eq(mrt_replay_pending(r, 0, &pending), MRT_OK);
    ck_assert_uint_eq(pending, 3);
    ck_assert_int_eq(mrt_replay_pending(r, 1, &pending), MRT_OK);
    ck_assert_uint_eq(pending, 2);
    uint64_t sp;
    ck_assert_int_eq(mrt_replay_sync_point(r, 1, &sp), MRT_OK);
    ck_assert_uint_eq(sp, 53);
    mrt_replay_stats s;
    mrt_replay_stats_get(r, &s);
    ck_assert_uint_eq(s.events, 3);
    ck_assert_uint_eq(s.bytes, 60);
    ck_assert_uint_eq(s.trimmed, 2);
    ck_assert_uint_eq(s.evicted, 0);
    ck_assert_uint_eq(s.resyncs, 1);
    mrt_replay_forget(r, 0);
    ck_assert_int_eq(mrt_replay_pending(r, 0, &pending), MRT_ESTATE);
    mrt_replay_destroy(r);
}
END_TEST

/*
 * A standby that stops syncing cannot pin memory: once the buffer is full
 * (events or bytes) the oldest events are evicted, it turns stale and needs
 * a full re-sync, while a standby that keeps syncing stays replayable.
 */
START_TEST(replay_buffer_bounds_and_resync)
{
    mrt_replay *r = make_replay(16, 1000, 2, 0);
    ck_assert_int_eq(mrt_replay_synced(r, 0, 0), MRT_OK); /* the dead one */
    ck_assert_int_eq(mrt_replay_synced(r, 1, 0), MRT_OK);
    mrt_replay_stats s;
    uint64_t pending;
    for (uint64_t round = 0; round < 50; round++) {
        append_n(r, round * 10, 10, 30);
        ck_assert_int_eq(mrt_replay_synced(r, 1, round * 10 + 5), MRT_OK);
        mrt_replay_stats_get(r, &s);
        ck_assert_uint_le(s.events, 16);
        ck_assert_uint_le(s.bytes, 1000);
        ck_assert_int_eq(mrt_replay_pending(r, 1, &pending), MRT_OK);
        ck_assert_uint_eq(pending, 5);
    }
    ck_assert_int_eq(mrt_replay_pending(r, 0, &pending), MRT_DAEMON_ERESYNC);
    mrt_replay_stats_get(r, &s);
    ck_assert_uint_eq(s.resyncs, 1);
    ck_assert_uint_eq(s.evicted, 1);
    /* A full re-sync makes it fresh again. */
    ck_assert_int_eq(mrt_replay_synced(r, 0, mrt_replay_next_index(r)), MRT_OK);
    ck_assert_int_eq(mrt_replay_pending(r, 0, &pending), MRT_OK);
    ck_assert_uint_eq(pending, 0);

    /* The byte bound: 40 payloads of 100 bytes into 1000 bytes. */
    mrt_replay *b = make_replay(1000, 1000, 1, 0);
    ck_assert_int_eq(mrt_replay_synced(b, 0, 0), MRT_OK);
    append_n(b, 0, 40, 100);
    mrt_replay_stats_get(b, &s);
    ck_assert_uint_eq(s.events, 10);
    ck_assert_uint_eq(s.bytes, 1000);
    ck_assert_int_eq(mrt_replay_pending(b, 0, &pending), MRT_DAEMON_ERESYNC);
    mrt_event got;
    ck_assert_int_eq(mrt_replay_at(b, 39, &got), MRT_OK);
    ck_assert_uint_eq(((const uint8_t *)got.payload)[99], 39);
    /* A payload larger than the whole buffer: everyone needs a re-sync, the index is consumed. */
    ck_assert_int_eq(mrt_replay_synced(b, 0, 40), MRT_OK);
    uint8_t big[1001] = { 0 };
    mrt_event ev = { .payload = big, .payload_len = sizeof big };
    ck_assert_int_eq(mrt_replay_append(b, &ev, 40), MRT_DAEMON_EOVERSIZED);
    ck_assert_uint_eq(mrt_replay_next_index(b), 41);
    ck_assert_int_eq(mrt_replay_pending(b, 0, &pending), MRT_DAEMON_ERESYNC);
    mrt_replay_stats_get(b, &s);
    ck_assert_uint_eq(s.events, 0);
    ck_assert_uint_eq(s.bytes, 0);
    append_n(b, 41, 3, 10);
    mrt_replay_destroy(b);
    mrt_replay_destroy(r);
}
END_TEST

/* Payloads of mixed sizes through many wraps of the byte ring keep their contents. */
START_TEST(replay_buffer_wraps_intact)
{
    mrt_replay *r = make_replay(64, 4096, 1, 0);
    ck_assert_int_eq(mrt_replay_synced(r, 0, 0), MRT_OK);
    uint64_t rng = 12345;
    uint64_t next_check = 0;
    for (uint64_t i = 0; i < 20000; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = (size_t)(rng >> 33) % 500; /* 7 held (+ padding) fit 4096 */
        uint8_t data[700];
        for (size_t k = 0; k < len; k++)
            data[k] = (uint8_t)(i * 7 + k);
        mrt_event ev = { .link = { .sequence = i }, .payload = data, .payload_len = len };
        ck_assert_int_eq(mrt_replay_append(r, &ev, i), MRT_OK);
        if (i % 5 == 4) {
            /* The standby keeps up to within two events; check what it would replay. */
            ck_assert_int_eq(mrt_replay_synced(r, 0, i - 1), MRT_OK);
            for (uint64_t j = i - 1; j <= i; j++) {
                mrt_event got;
                ck_assert_int_eq(mrt_replay_at(r, j, &got), MRT_OK);
                ck_assert_uint_eq(got.link.sequence, j);
                const uint8_t *p = got.payload;
                size_t wrong = 0; /* counted, asserted once: an assertion per byte is slow */
                for (size_t k = 0; k < got.payload_len; k++)
                    wrong += p[k] != (uint8_t)(j * 7 + k);
                ck_assert_uint_eq(wrong, 0);
                next_check++;
            }
        }
    }
    ck_assert_uint_eq(next_check, 8000);
    mrt_replay_destroy(r);
}
END_TEST

START_TEST(replay_append_allocates_nothing)
{
    if (mrt_alloc_counting_enable() != MRT_OK)
        MRT_SKIP("alloc-count",
                 "sanitizer builds allocate through libc, which jemalloc's hook cannot count");
    mrt_replay *r = make_replay(128, 8192, 2, 0);
    ck_assert_int_eq(mrt_replay_synced(r, 0, 0), MRT_OK);
    ck_assert_int_eq(mrt_replay_synced(r, 1, 0), MRT_OK); /* never syncs again: evicted, stale */
    uint8_t data[100] = { 1 };
    int bad = 0;
    /* Check's own assertions allocate, so failures are counted and asserted after the loop. */
    mrt_alloc_counts a = mrt_alloc_counts_now();
    for (uint64_t i = 0; i < 20000; i++) {
        mrt_event ev = { .link = { .sequence = i }, .payload = data, .payload_len = 1 + i % 100 };
        bad += mrt_replay_append(r, &ev, i) != MRT_OK;
        if (i % 64 == 63)
            bad += mrt_replay_synced(r, 0, i - 10) != MRT_OK;
    }
    mrt_alloc_counts b = mrt_alloc_counts_now();
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_eq(b.allocs - a.allocs, 0);
    /* Replay into a host at the sync point: suppressed outputs allocate nothing either. */
    uint64_t sp, replayed = 0;
    ck_assert_int_eq(mrt_replay_sync_point(r, 0, &sp), MRT_OK);
    struct mixer m = { .fanout = 2 };
    mrt_host *h = make_host(&m, 9, sp);
    b = mrt_alloc_counts_now();
    int rc = mrt_replay_apply(r, 0, h, 0, &replayed);
    mrt_alloc_counts c = mrt_alloc_counts_now();
    ck_assert_int_eq(rc, MRT_OK);
    ck_assert_uint_eq(replayed, 20000 - sp);
    ck_assert_uint_eq(c.allocs - b.allocs, 0);
    uint64_t pending;
    ck_assert_int_eq(mrt_replay_pending(r, 1, &pending), MRT_DAEMON_ERESYNC);
    mrt_host_destroy(h);
    mrt_replay_destroy(r);
}
END_TEST

/*
 * The standby promotion the issue asks for, at the daemons level: two
 * senders whose sequences collide, two outputs per input, one receiver
 * validating the chain across the failover.
 *   A (active) and B (standby) share the chain identity (same key); B is
 *   synced by a snapshot of A; A goes on serving (its outputs reach the
 *   receiver) and its accepted events are buffered by ingress index; A
 *   dies; B replays the buffered suffix with outputs suppressed, then
 *   serves new events. The receiver sees one chain with no gap, no repeat,
 *   every parent hash right.
 */
START_TEST(chain_verifies_across_promotion)
{
    struct mixer ma = { .fanout = 2 }, mb = { .fanout = 2 }, ms = { .fanout = 2 };
    mrt_host *a = make_host(&ma, 0x77, 0);
    mrt_host *b = make_host(&mb, 0x77, 0);
    mrt_host *shadow = make_host(&ms, 0x77, 0); /* never fails: what the chain should be */
    mrt_replay *buf = make_replay(1024, 64 * 1024, 2, 0);
    mrt_causal_chain rx;
    mrt_causal_chain_init(&rx, mrt_host_origin(a));
    uint64_t n[2] = { 0, 0 };
    uint64_t emitted = 0;

    /* Phase 1: A serves 30 events (interleaved senders), nothing buffered before the sync. */
    for (int i = 0; i < 30; i++) {
        unsigned s = (unsigned)(i % 3 == 0);
        uint64_t p;
        mrt_event ev = sender_event(s, n[s]++, &p);
        ck_assert_int_eq(mrt_host_deliver(a, &ev, 0), MRT_OK);
        emitted += receive(a, &rx);
        ck_assert_int_eq(mrt_host_deliver(shadow, &ev, 0), MRT_OK);
        mrt_host_release_outputs(shadow);
        ck_assert_int_eq(mrt_replay_append(buf, &ev, mrt_host_ingress_next(a) - 1), MRT_OK);
    }
    /* Sync: snapshot A, restore onto B. */
    uint8_t snap[1024];
    size_t len;
    ck_assert_int_eq(mrt_host_snapshot(a, snap, sizeof snap, &len), MRT_OK);
    ck_assert_int_eq(mrt_host_restore(b, snap, len), MRT_OK);
    mrt_host_snapshot_view v;
    ck_assert_int_eq(mrt_host_snapshot_decode(snap, len, 1024, 1024, &v), MRT_OK);
    ck_assert_int_eq(mrt_replay_synced(buf, 1, v.ingress_next), MRT_OK);
    ck_assert_uint_eq(v.ingress_next, 30);

    /* Phase 2: A serves 25 more; they are buffered; then A is lost. */
    for (int i = 0; i < 25; i++) {
        unsigned s = (unsigned)(i % 2);
        uint64_t p;
        mrt_event ev = sender_event(s, n[s]++, &p);
        ck_assert_int_eq(mrt_host_deliver(a, &ev, 0), MRT_OK);
        emitted += receive(a, &rx);
        ck_assert_int_eq(mrt_host_deliver(shadow, &ev, 0), MRT_OK);
        mrt_host_release_outputs(shadow);
        ck_assert_int_eq(mrt_replay_append(buf, &ev, mrt_host_ingress_next(a) - 1), MRT_OK);
    }
    ck_assert_uint_eq(emitted, 110);
    mrt_causal_link a_head = mrt_host_chain(a)->head;
    mrt_host_destroy(a);

    /* Promotion: exactly the 25 events past B's sync point, by ingress index. */
    uint64_t pending, replayed;
    ck_assert_int_eq(mrt_replay_pending(buf, 1, &pending), MRT_OK);
    ck_assert_uint_eq(pending, 25);
    ck_assert_int_eq(mrt_replay_apply(buf, 1, b, 0, &replayed), MRT_OK);
    ck_assert_uint_eq(replayed, 25);
    ck_assert(!mrt_host_suppressing(b));
    mrt_host_stats st;
    mrt_host_stats_get(b, &st);
    ck_assert_uint_eq(st.suppressed, 50); /* two outputs per replayed input */
    ck_assert_mem_eq(&mrt_host_chain(b)->head, &a_head, sizeof a_head);
    ck_assert_uint_eq(mrt_host_ingress_next(b), 55);
    mrt_replay_stats rs;
    mrt_replay_stats_get(buf, &rs);
    ck_assert_uint_eq(rs.replayed, 25);
    /* Replaying again finds nothing (B's sync point moved). */
    ck_assert_int_eq(mrt_replay_apply(buf, 1, b, 0, &replayed), MRT_OK);
    ck_assert_uint_eq(replayed, 0);

    /* Phase 3: B serves; the receiver validates the continued chain. */
    for (int i = 0; i < 20; i++) {
        unsigned s = (unsigned)(i % 4 == 1);
        uint64_t p;
        mrt_event ev = sender_event(s, n[s]++, &p);
        ck_assert_int_eq(mrt_host_deliver(b, &ev, 0), MRT_OK);
        size_t outs;
        const mrt_event *o = mrt_host_outputs(b, &outs);
        ck_assert_uint_eq(o[0].link.origin_hash, a_head.origin_hash);
        emitted += receive(b, &rx);
        ck_assert_int_eq(mrt_host_deliver(shadow, &ev, 0), MRT_OK);
        mrt_host_release_outputs(shadow);
    }
    ck_assert_uint_eq(emitted, 150);
    ck_assert_uint_eq(rx.head.sequence, 149);
    /* And it is the chain a host that never failed would have produced. */
    ck_assert_mem_eq(&rx.head, &mrt_host_chain(shadow)->head, sizeof rx.head);
    ck_assert_uint_eq(rx.next_parent, mrt_host_chain(shadow)->next_parent);
    mrt_host_destroy(b);
    mrt_host_destroy(shadow);
    mrt_replay_destroy(buf);
}
END_TEST

/* Replay refuses a host that is not at the standby's sync point, and a stale standby. */
START_TEST(replay_apply_refusals)
{
    struct mixer m = { .fanout = 1 };
    mrt_host *h = make_host(&m, 5, 3);
    mrt_replay *r = make_replay(4, 64, 1, 0);
    uint64_t replayed = 99;
    ck_assert_int_eq(mrt_replay_apply(r, 0, h, 0, &replayed), MRT_ESTATE);
    ck_assert_uint_eq(replayed, 0);
    ck_assert_int_eq(mrt_replay_synced(r, 0, 0), MRT_OK);
    append_n(r, 0, 2, 4);
    ck_assert_int_eq(mrt_replay_apply(r, 0, h, 0, &replayed), MRT_DAEMON_EINGRESS);
    ck_assert_uint_eq(m.events, 0);
    append_n(r, 2, 4, 4); /* evicts 0 and 1: the standby needed them */
    ck_assert_int_eq(mrt_replay_apply(r, 0, h, 0, &replayed), MRT_DAEMON_ERESYNC);
    /* A delivery error stops the replay where it happened. */
    mrt_host *g = make_host(&m, 5, 2);
    ck_assert_int_eq(mrt_replay_synced(r, 0, 2), MRT_OK);
    m.fail_next = MRT_DAEMON_EBADSTATE;
    ck_assert_int_eq(mrt_replay_apply(r, 0, g, 0, &replayed), MRT_DAEMON_EBADSTATE);
    ck_assert_uint_eq(replayed, 0);
    ck_assert_int_eq(mrt_replay_apply(r, 0, g, 0, &replayed), MRT_OK);
    ck_assert_uint_eq(replayed, 4);
    mrt_host_destroy(g);
    mrt_host_destroy(h);
    mrt_replay_destroy(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("daemon_replay");
    TCase *t = tcase_create("replay");
    tcase_add_test(t, ingress_index_per_accepted_event);
    tcase_add_test(t, suppression_advances_chain_without_emitting);
    tcase_add_test(t, snapshot_v2_carries_ingress);
    tcase_add_test(t, replay_buffer_order_and_contents);
    tcase_add_test(t, replay_buffer_bounds_and_resync);
    tcase_add_test(t, replay_buffer_wraps_intact);
    tcase_add_test(t, replay_append_allocates_nothing);
    tcase_add_test(t, chain_verifies_across_promotion);
    tcase_add_test(t, replay_apply_refusals);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return mrt_check_run(suite());
}
