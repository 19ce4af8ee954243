/* Daemons: the host — deliver paths, stamping, errors, control, snapshot/restore, allocations. */
#include "meshrt/mrt_daemon.h"
#include "tests/check_main.h"
#include "tests/test_daemon_common.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* --- test daemons -------------------------------------------------------- */

/*
 * echo: emits payload[0] outputs, each a copy of the event's payload.
 * With fail_rc set, it emits them and then returns fail_rc.
 */
struct echo {
    unsigned calls;
    int fail_rc;
    mrt_daemon_control last_kind;
    uint32_t last_level;
    unsigned controls;
    int control_rc;
    mrt_daemon_health health;
    double saturation;
};

static int echo_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    struct echo *e = st;
    e->calls++;
    unsigned n = ev->payload_len ? ((const uint8_t *)ev->payload)[0] : 0;
    for (unsigned i = 0; i < n; i++) {
        int rc = mrt_daemon_emit_copy(sink, ev->payload, ev->payload_len);
        if (rc != MRT_OK)
            return rc;
    }
    return e->fail_rc;
}

static int echo_control(void *st, mrt_daemon_control kind, uint32_t level)
{
    struct echo *e = st;
    e->last_kind = kind;
    e->last_level = level;
    e->controls++;
    return e->control_rc;
}

static mrt_daemon_health echo_health(const void *st)
{
    return ((const struct echo *)st)->health;
}

static double echo_saturation(const void *st)
{
    return ((const struct echo *)st)->saturation;
}

static const mrt_daemon_vtable echo_vt = {
    .name = "echo",
    .process = echo_process,
    .on_control = echo_control,
    .health = echo_health,
    .saturation = echo_saturation,
};

static const mrt_daemon_vtable bare_vt = { .name = "bare", .process = echo_process };

/* counter: stateful; counts events, emits the count (8 bytes LE) when the payload is non-empty. */
struct counter {
    uint64_t n;
};

static int counter_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    struct counter *c = st;
    c->n++;
    if (ev->payload_len == 0)
        return MRT_OK;
    void *p;
    int rc = mrt_daemon_emit(sink, 8, &p);
    if (rc != MRT_OK)
        return rc;
    uint8_t *b = p;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(c->n >> (8 * i));
    return MRT_OK;
}

static const mrt_daemon_vtable counter_vt = {
    .name = "counter",
    .process = counter_process,
    .snapshot = test_counter_snapshot,
    .restore = test_counter_restore,
};

/* liar: its snapshot breaks the protocol or fails, as told by its state. */
static int liar_snapshot(const void *st, void *buf, size_t cap, size_t *len)
{
    (void)buf;
    (void)cap;
    int mode = *(const int *)st;
    *len = 5;
    return mode == 0 ? MRT_OK : mode == 1 ? MRT_EINVAL : 3;
}

static const mrt_daemon_vtable liar_vt = {
    .name = "liar",
    .process = echo_process,
    .snapshot = liar_snapshot,
};

/* --- helpers ------------------------------------------------------------- */

static mrt_host_config config(uint8_t key_byte)
{
    mrt_host_config c;
    memset(&c, 0, sizeof c);
    memset(c.key, key_byte, sizeof c.key);
    return c;
}

static mrt_host *make_host(const mrt_host_config *cfg, const mrt_daemon_vtable *vt, void *state)
{
    mrt_host *h = NULL;
    mrt_daemon d = { vt, state };
    ck_assert_int_eq(mrt_host_create(cfg, d, &h), MRT_OK);
    ck_assert_ptr_nonnull(h);
    return h;
}

static mrt_event event(uint64_t origin, uint64_t seq, const void *payload, size_t len)
{
    mrt_event ev;
    memset(&ev, 0, sizeof ev);
    ev.link.origin_hash = origin;
    ev.link.sequence = seq;
    ev.payload = payload;
    ev.payload_len = len;
    return ev;
}

static mrt_host_stats stats(const mrt_host *h)
{
    mrt_host_stats s;
    mrt_host_stats_get(h, &s);
    return s;
}

static void rechecksum(uint8_t *buf, size_t len)
{
    uint64_t x = XXH3_64bits(buf, len - 8);
    for (int i = 0; i < 8; i++)
        buf[len - 8 + i] = (uint8_t)(x >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* --- tests --------------------------------------------------------------- */

START_TEST(identity_from_key)
{
    uint8_t key[32], in[48];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    memcpy(in, "meshrt/origin/v1", 16);
    memcpy(in + 16, key, 32);
    ck_assert_uint_eq(mrt_host_origin_from_key(key), XXH3_64bits(in, 48));
    ck_assert_uint_ne(mrt_host_origin_from_key(key), XXH3_64bits(key, 32));
    mrt_host_config c = config(0);
    memcpy(c.key, key, 32);
    struct echo e = { 0 };
    mrt_host *h = make_host(&c, &echo_vt, &e);
    ck_assert_uint_eq(mrt_host_origin(h), XXH3_64bits(in, 48));
    key[31] ^= 1;
    ck_assert_uint_ne(mrt_host_origin_from_key(key), mrt_host_origin(h));
    mrt_host_destroy(h);
}
END_TEST

START_TEST(no_output_path)
{
    struct echo e = { 0 };
    mrt_host_config c = config(1);
    mrt_host *h = make_host(&c, &echo_vt, &e);
    const mrt_causal_chain before = *mrt_host_chain(h);
    uint8_t zero = 0;
    mrt_event ev = event(500, 3, &zero, 1);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(mrt_host_deliver(h, &ev, 1000), MRT_OK);
    ck_assert_mem_eq(mrt_host_chain(h), &before, sizeof before);
    ck_assert(!mrt_host_chain(h)->has_head);
    size_t n = 99;
    mrt_host_outputs(h, &n);
    ck_assert_uint_eq(n, 0);
    mrt_host_stats s = stats(h);
    ck_assert_uint_eq(s.processed, 10);
    ck_assert_uint_eq(s.emitted, 0);
    ck_assert_uint_eq(s.errors, 0);
    ck_assert_uint_eq(e.calls, 10);
    ck_assert(mrt_horizon_has_observed(mrt_host_horizon(h), 500, 3));
    /* With a head already there, a no-output deliver still leaves it alone. */
    uint8_t one = 1;
    mrt_event ev1 = event(500, 4, &one, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev1, 1001), MRT_OK);
    mrt_host_release_outputs(h);
    const mrt_causal_chain with_head = *mrt_host_chain(h);
    ck_assert(with_head.has_head);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 1002), MRT_OK);
    ck_assert_mem_eq(mrt_host_chain(h), &with_head, sizeof with_head);
    ck_assert_uint_eq(stats(h).processed, 12);
    mrt_host_destroy(h);
}
END_TEST

START_TEST(outputs_stamped_and_chained)
{
    struct echo e = { 0 };
    mrt_host_config c = config(2);
    mrt_host *h = make_host(&c, &echo_vt, &e);
    mrt_causal_chain rx;
    mrt_causal_chain_init(&rx, mrt_host_origin(h));
    uint64_t seq = 0;
    for (int round = 0; round < 5; round++) {
        uint8_t payload[5] = { 3, (uint8_t)round, 'a', 'b', 'c' };
        mrt_event ev = event(600 + (uint64_t)round, 1, payload, sizeof payload);
        uint64_t now = 5000 + (uint64_t)round;
        ck_assert_int_eq(mrt_host_deliver(h, &ev, now), MRT_OK);
        uint64_t enc = mrt_horizon_encoded(mrt_host_horizon(h));
        size_t n;
        const mrt_event *out = mrt_host_outputs(h, &n);
        ck_assert_uint_eq(n, 3);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_eq(out[i].link.origin_hash, mrt_host_origin(h));
            ck_assert_uint_eq(out[i].link.horizon_encoded, enc);
            ck_assert(mrt_horizon_encoding_may_contain(enc, 600 + (uint64_t)round));
            ck_assert_uint_eq(out[i].link.sequence, seq++);
            ck_assert_uint_eq(out[i].timestamp, now);
            ck_assert_uint_eq(out[i].payload_len, sizeof payload);
            ck_assert_mem_eq(out[i].payload, payload, sizeof payload);
            ck_assert_int_eq(mrt_causal_chain_accept(&rx, &out[i].link, out[i].payload,
                                                     out[i].payload_len),
                             MRT_OK);
        }
        ck_assert_mem_eq(&mrt_host_chain(h)->head, &out[2].link, sizeof out[2].link);
        /* Each output is also a finished wire frame, in place. */
        for (size_t i = 0; i < n; i++) {
            const uint8_t *frame;
            size_t size;
            ck_assert_int_eq(mrt_host_output_frame(h, i, &frame, &size), MRT_OK);
            mrt_frame f;
            ck_assert_int_eq(mrt_frame_decode(frame, size, 1024, &f, NULL), MRT_OK);
            ck_assert_mem_eq(&f.link, &out[i].link, sizeof f.link);
            ck_assert_ptr_eq(f.payload, out[i].payload);
            ck_assert_uint_eq(f.payload_len, out[i].payload_len);
        }
        const uint8_t *frame;
        size_t size;
        ck_assert_int_eq(mrt_host_output_frame(h, n, &frame, &size), MRT_EINVAL);
        mrt_host_release_outputs(h);
        ck_assert_int_eq(mrt_host_output_frame(h, 0, &frame, &size), MRT_EINVAL);
    }
    mrt_host_stats s = stats(h);
    ck_assert_uint_eq(s.processed, 5);
    ck_assert_uint_eq(s.emitted, 15);
    ck_assert_uint_eq(s.spills, 0);
    mrt_host_destroy(h);
}
END_TEST

START_TEST(failing_daemon_leaves_chain)
{
    struct echo e = { 0 };
    mrt_host_config c = config(3);
    mrt_host *h = make_host(&c, &echo_vt, &e);
    uint8_t two = 2;
    mrt_event ev = event(700, 0, &two, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 1), MRT_OK);
    mrt_host_release_outputs(h);
    const mrt_causal_chain before = *mrt_host_chain(h);
    e.fail_rc = MRT_EINVAL; /* emits two outputs, then fails */
    mrt_event ev2 = event(701, 0, &two, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev2, 2), MRT_EINVAL);
    ck_assert_mem_eq(mrt_host_chain(h), &before, sizeof before);
    size_t n;
    mrt_host_outputs(h, &n);
    ck_assert_uint_eq(n, 0); /* discarded */
    mrt_host_stats s = stats(h);
    ck_assert_uint_eq(s.processed, 1);
    ck_assert_uint_eq(s.errors, 1);
    ck_assert_uint_eq(s.emitted, 2);
    /* The event was observed even though processing failed. */
    ck_assert(mrt_horizon_contains_origin(mrt_host_horizon(h), 701));
    /* A positive return is not a status. */
    e.fail_rc = 7;
    ck_assert_int_eq(mrt_host_deliver(h, &ev2, 3), MRT_DAEMON_EPROCESS);
    ck_assert_uint_eq(stats(h).errors, 2);
    ck_assert_mem_eq(mrt_host_chain(h), &before, sizeof before);
    /* The host recovers: no pending outputs were left behind. */
    e.fail_rc = MRT_OK;
    ck_assert_int_eq(mrt_host_deliver(h, &ev2, 4), MRT_OK);
    const mrt_event *out = mrt_host_outputs(h, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(out[0].link.sequence, before.head.sequence + 1);
    ck_assert_uint_eq(out[0].link.parent_hash, before.next_parent);
    mrt_host_release_outputs(h);
    mrt_host_destroy(h);
}
END_TEST

START_TEST(pending_outputs_refuse_deliver)
{
    struct echo e = { 0 };
    mrt_host_config c = config(4);
    mrt_host *h = make_host(&c, &echo_vt, &e);
    uint8_t one = 1;
    mrt_event ev = event(1, 0, &one, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 1), MRT_OK);
    const mrt_causal_chain before = *mrt_host_chain(h);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 2), MRT_DAEMON_EPENDING);
    ck_assert_uint_eq(e.calls, 1);
    ck_assert_uint_eq(stats(h).errors, 1);
    ck_assert_mem_eq(mrt_host_chain(h), &before, sizeof before);
    size_t n;
    mrt_host_outputs(h, &n);
    ck_assert_uint_eq(n, 1); /* still readable */
    mrt_host_release_outputs(h);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 3), MRT_OK);
    mrt_host_destroy(h);
}
END_TEST

START_TEST(sink_overflow_is_an_error)
{
    struct echo e = { 0 };
    mrt_host_config c = config(5);
    c.max_outputs = 4;
    mrt_host *h = make_host(&c, &echo_vt, &e);
    const mrt_causal_chain before = *mrt_host_chain(h);
    uint8_t five = 5;
    mrt_event ev = event(1, 0, &five, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 1), MRT_DAEMON_ESINKFULL);
    ck_assert_mem_eq(mrt_host_chain(h), &before, sizeof before);
    ck_assert_uint_eq(stats(h).errors, 1);
    uint8_t four = 4;
    mrt_event ev4 = event(1, 1, &four, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev4, 1), MRT_OK);
    size_t n;
    mrt_host_outputs(h, &n);
    ck_assert_uint_eq(n, 4);
    mrt_host_release_outputs(h);
    mrt_host_destroy(h);
}
END_TEST

START_TEST(payload_spill)
{
    struct echo e = { 0 };
    mrt_host_config c = config(6);
    /* Each output takes 40 + len bytes of the region, its link 64-byte aligned: one fits. */
    c.payload_bytes = 140;
    mrt_host *h = make_host(&c, &echo_vt, &e);
    uint8_t payload[40];
    for (int i = 0; i < 40; i++)
        payload[i] = (uint8_t)(i + 100);
    payload[0] = 3; /* three 40-byte outputs: the first fits, two spill */
    mrt_event ev = event(1, 0, payload, sizeof payload);
    mrt_causal_chain before_round;
    mrt_causal_chain_init(&before_round, mrt_host_origin(h));
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(mrt_host_deliver(h, &ev, 1), MRT_OK);
        size_t n;
        const mrt_event *out = mrt_host_outputs(h, &n);
        ck_assert_uint_eq(n, 3);
        mrt_causal_chain check = before_round;
        for (size_t i = 0; i < n; i++) {
            ck_assert_mem_eq(out[i].payload, payload, sizeof payload);
            ck_assert_uint_eq((uintptr_t)out[i].payload % 8, 0);
            /* Spilled outputs are frames too, and chain like the others. */
            const uint8_t *frame;
            size_t size;
            ck_assert_int_eq(mrt_host_output_frame(h, i, &frame, &size), MRT_OK);
            mrt_frame f;
            ck_assert_int_eq(mrt_frame_decode(frame, size, 1024, &f, NULL), MRT_OK);
            ck_assert_mem_eq(&f.link, &out[i].link, sizeof f.link);
            ck_assert_int_eq(mrt_causal_chain_accept(&check, &f.link, f.payload, f.payload_len),
                             MRT_OK);
        }
        before_round = *mrt_host_chain(h);
        mrt_host_release_outputs(h);
    }
    ck_assert_uint_eq(stats(h).spills, 6);
    /* Pending spilled payloads are freed by destroy (the leak checker watches). */
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 1), MRT_OK);
    mrt_host_destroy(h);
}
END_TEST

START_TEST(sink_standalone)
{
    mrt_daemon_sink s;
    ck_assert_int_eq(mrt_daemon_sink_init(&s, NULL, 0, 16), MRT_EINVAL);
    ck_assert_int_eq(mrt_daemon_sink_init(&s, NULL, 2, 0), MRT_OK);
    void *p = NULL;
    ck_assert_int_eq(mrt_daemon_emit(&s, 0, &p), MRT_OK); /* len 0, every payload spills */
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(mrt_daemon_emit_copy(&s, "xyz", 3), MRT_OK);
    ck_assert_int_eq(mrt_daemon_emit_copy(&s, "w", 1), MRT_DAEMON_ESINKFULL);
    ck_assert_uint_eq(mrt_daemon_sink_count(&s), 2);
    ck_assert_mem_eq(mrt_daemon_sink_outputs(&s)[1].payload, "xyz", 3);
    mrt_daemon_sink_reset(&s);
    ck_assert_uint_eq(mrt_daemon_sink_count(&s), 0);
    ck_assert_int_eq(mrt_daemon_emit(&s, (size_t)UINT32_MAX, &p), MRT_DAEMON_EOVERSIZED);
    ck_assert_int_eq(mrt_daemon_emit_copy(&s, NULL, 2), MRT_EINVAL);
    mrt_daemon_sink_destroy(&s);
}
END_TEST

START_TEST(horizon_full_refuses_event)
{
    struct echo e = { 0 };
    mrt_host_config c = config(7);
    c.max_origins = 2;
    mrt_host *h = make_host(&c, &echo_vt, &e);
    uint8_t zero = 0;
    mrt_event a = event(10, 0, &zero, 1), b = event(20, 0, &zero, 1), d = event(30, 0, &zero, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &a, 1), MRT_OK);
    ck_assert_int_eq(mrt_host_deliver(h, &b, 1), MRT_OK);
    ck_assert_int_eq(mrt_host_deliver(h, &d, 1), MRT_DAEMON_EHORIZONFULL);
    ck_assert_uint_eq(e.calls, 2);
    mrt_host_stats s = stats(h);
    ck_assert_uint_eq(s.processed, 2);
    ck_assert_uint_eq(s.errors, 1);
    mrt_host_destroy(h);
}
END_TEST

/* Two hosts with the same key; one snapshots, the other restores, both continue identically. */
START_TEST(snapshot_restore_continues_chain)
{
    struct counter ca = { 0 }, cb = { 1000 };
    mrt_host_config c = config(8);
    mrt_host *a = make_host(&c, &counter_vt, &ca);
    mrt_host *b = make_host(&c, &counter_vt, &cb);
    mrt_causal_chain rx;
    mrt_causal_chain_init(&rx, mrt_host_origin(a));
    for (uint64_t i = 0; i < 20; i++) {
        mrt_event ev = event(100 + i % 7, i, "x", i % 3 ? 1 : 0);
        ck_assert_int_eq(mrt_host_deliver(a, &ev, i), MRT_OK);
        size_t n;
        const mrt_event *out = mrt_host_outputs(a, &n);
        for (size_t k = 0; k < n; k++)
            ck_assert_int_eq(mrt_causal_chain_accept(&rx, &out[k].link, out[k].payload,
                                                     out[k].payload_len),
                             MRT_OK);
        mrt_host_release_outputs(a);
    }
    size_t need = 0;
    ck_assert_int_eq(mrt_host_snapshot(a, NULL, 0, &need), MRT_DAEMON_ENOSPACE);
    ck_assert_uint_eq(need, MRT_HOST_SNAPSHOT_HEADER_SIZE + 7 * 16 + 8 + 8);
    ck_assert_uint_eq(stats(a).snapshots, 0);
    uint8_t *buf = malloc(need);
    size_t len = 0;
    ck_assert_int_eq(mrt_host_snapshot(a, buf, need - 1, &len), MRT_DAEMON_ENOSPACE);
    ck_assert_int_eq(mrt_host_snapshot(a, buf, need, &len), MRT_OK);
    ck_assert_uint_eq(len, need);
    ck_assert_uint_eq(stats(a).snapshots, 1);
    ck_assert_int_eq(mrt_host_restore(b, buf, len), MRT_OK);
    ck_assert_uint_eq(stats(b).restores, 1);
    ck_assert_uint_eq(cb.n, ca.n);
    ck_assert_mem_eq(mrt_host_chain(b), mrt_host_chain(a), sizeof(mrt_causal_chain));
    ck_assert_uint_eq(mrt_horizon_encoded(mrt_host_horizon(b)),
                      mrt_horizon_encoded(mrt_host_horizon(a)));
    ck_assert_uint_eq(mrt_horizon_logical_time(mrt_host_horizon(b)),
                      mrt_horizon_logical_time(mrt_host_horizon(a)));
    for (uint64_t o = 100; o < 107; o++) {
        uint64_t x, y;
        ck_assert(mrt_horizon_highest(mrt_host_horizon(a), o, &x));
        ck_assert(mrt_horizon_highest(mrt_host_horizon(b), o, &y));
        ck_assert_uint_eq(x, y);
    }
    /* Next output: identical from both, and it continues the receiver's chain. */
    mrt_event ev = event(200, 0, "y", 1);
    ck_assert_int_eq(mrt_host_deliver(a, &ev, 77), MRT_OK);
    ck_assert_int_eq(mrt_host_deliver(b, &ev, 77), MRT_OK);
    size_t na, nb;
    const mrt_event *oa = mrt_host_outputs(a, &na);
    const mrt_event *ob = mrt_host_outputs(b, &nb);
    ck_assert_uint_eq(na, 1);
    ck_assert_uint_eq(nb, 1);
    ck_assert_mem_eq(&oa[0].link, &ob[0].link, sizeof oa[0].link);
    ck_assert_mem_eq(oa[0].payload, ob[0].payload, 8);
    ck_assert_int_eq(mrt_causal_chain_accept(&rx, &ob[0].link, ob[0].payload, ob[0].payload_len),
                     MRT_OK);
    mrt_host_release_outputs(a);
    mrt_host_release_outputs(b);
    free(buf);
    mrt_host_destroy(a);
    mrt_host_destroy(b);
}
END_TEST

/* A fresh host (no head) round-trips too: the next output is the genesis. */
START_TEST(snapshot_restore_genesis)
{
    struct echo e = { 0 };
    mrt_host_config c = config(9);
    mrt_host *a = make_host(&c, &echo_vt, &e);
    uint8_t buf[256];
    size_t len;
    ck_assert_int_eq(mrt_host_snapshot(a, buf, sizeof buf, &len), MRT_OK);
    ck_assert_uint_eq(len, MRT_HOST_SNAPSHOT_HEADER_SIZE + 8);
    uint8_t one = 1;
    mrt_event ev = event(3, 0, &one, 1);
    ck_assert_int_eq(mrt_host_deliver(a, &ev, 1), MRT_OK);
    mrt_host_release_outputs(a);
    ck_assert(mrt_host_chain(a)->has_head);
    ck_assert_int_eq(mrt_host_restore(a, buf, len), MRT_OK);
    ck_assert(!mrt_host_chain(a)->has_head);
    ck_assert_uint_eq(mrt_horizon_count(mrt_host_horizon(a)), 0);
    ck_assert_int_eq(mrt_host_deliver(a, &ev, 1), MRT_OK);
    size_t n;
    const mrt_event *out = mrt_host_outputs(a, &n);
    ck_assert_uint_eq(out[0].link.sequence, 0);
    ck_assert_uint_eq(out[0].link.parent_hash, 0);
    mrt_host_release_outputs(a);
    mrt_host_destroy(a);
}
END_TEST

/* The same observations in different orders give byte-identical snapshots. */
START_TEST(snapshot_is_canonical)
{
    struct echo e = { 0 };
    mrt_host_config c = config(10);
    mrt_host *a = make_host(&c, &echo_vt, &e);
    mrt_host *b = make_host(&c, &echo_vt, &e);
    uint8_t zero = 0;
    for (uint64_t i = 0; i < 30; i++) {
        mrt_event ea = event(i * 0x1000193ull, i, &zero, 1);
        mrt_event eb = event((29 - i) * 0x1000193ull, 29 - i, &zero, 1);
        ck_assert_int_eq(mrt_host_deliver(a, &ea, 0), MRT_OK);
        ck_assert_int_eq(mrt_host_deliver(b, &eb, 0), MRT_OK);
    }
    uint8_t sa[1024], sb[1024];
    size_t la, lb;
    ck_assert_int_eq(mrt_host_snapshot(a, sa, sizeof sa, &la), MRT_OK);
    ck_assert_int_eq(mrt_host_snapshot(b, sb, sizeof sb, &lb), MRT_OK);
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(sa, sb, la);
    mrt_host_snapshot_view v;
    ck_assert_int_eq(mrt_host_snapshot_decode(sa, la, 1024, 1024, &v), MRT_OK);
    ck_assert_uint_eq(v.origin_count, 30);
    mrt_host_destroy(a);
    mrt_host_destroy(b);
}
END_TEST

START_TEST(restore_errors)
{
    struct counter ca = { 5 };
    struct echo e = { 0 };
    mrt_host_config c = config(11);
    mrt_host *a = make_host(&c, &counter_vt, &ca);
    for (uint64_t i = 0; i < 3; i++) {
        mrt_event ev = event(40 + i, i, "p", 1);
        ck_assert_int_eq(mrt_host_deliver(a, &ev, 0), MRT_OK);
        mrt_host_release_outputs(a);
    }
    uint8_t snap[512];
    size_t len;
    ck_assert_int_eq(mrt_host_snapshot(a, snap, sizeof snap, &len), MRT_OK);

    /* Another identity. */
    mrt_host_config other = config(12);
    struct counter co = { 0 };
    mrt_host *o = make_host(&other, &counter_vt, &co);
    ck_assert_int_eq(mrt_host_restore(o, snap, len), MRT_DAEMON_EORIGIN);
    ck_assert(!mrt_host_chain(o)->has_head);
    ck_assert_uint_eq(co.n, 0);

    /* Stateless daemon given state. */
    mrt_host *s = make_host(&c, &bare_vt, &e);
    ck_assert_int_eq(mrt_host_restore(s, snap, len), MRT_DAEMON_ESTATELESS);
    ck_assert(!mrt_host_chain(s)->has_head);
    ck_assert_uint_eq(mrt_horizon_count(mrt_host_horizon(s)), 0);

    /* Stateful daemon given an empty state: the daemon's own error, host unchanged. */
    uint8_t empty[256];
    size_t elen;
    ck_assert_int_eq(mrt_host_snapshot(s, empty, sizeof empty, &elen), MRT_OK);
    const mrt_causal_chain before = *mrt_host_chain(a);
    ck_assert_int_eq(mrt_host_restore(a, empty, elen), MRT_DAEMON_EBADSTATE);
    ck_assert_mem_eq(mrt_host_chain(a), &before, sizeof before);
    ck_assert_uint_eq(mrt_horizon_count(mrt_host_horizon(a)), 3);

    /* Horizon too small for the snapshot's origins. */
    mrt_host_config small = config(11);
    small.max_origins = 2;
    struct counter cs = { 0 };
    mrt_host *sm = make_host(&small, &counter_vt, &cs);
    ck_assert_int_eq(mrt_host_restore(sm, snap, len), MRT_DAEMON_EHORIZONFULL);
    ck_assert_uint_eq(cs.n, 0);

    /* State larger than the host accepts. */
    mrt_host_config tiny = config(11);
    tiny.max_state = 4;
    mrt_host *ti = make_host(&tiny, &counter_vt, &cs);
    ck_assert_int_eq(mrt_host_restore(ti, snap, len), MRT_DAEMON_EOVERSIZED);
    size_t need;
    ck_assert_int_eq(mrt_host_snapshot(ti, NULL, 0, &need), MRT_DAEMON_EOVERSIZED);

    /* Pending outputs. */
    mrt_event ev = event(1, 0, "p", 1);
    ck_assert_int_eq(mrt_host_deliver(a, &ev, 0), MRT_OK);
    ck_assert_int_eq(mrt_host_restore(a, snap, len), MRT_DAEMON_EPENDING);
    mrt_host_release_outputs(a);

    /* Decoder errors pass through. */
    snap[0] ^= 0xFF;
    ck_assert_int_eq(mrt_host_restore(a, snap, len), MRT_DAEMON_EMAGIC);
    snap[0] ^= 0xFF;
    ck_assert_int_eq(mrt_host_restore(a, snap, len - 1), MRT_DAEMON_ETRUNCATED);
    ck_assert_int_eq(mrt_host_restore(a, snap, len), MRT_OK);

    mrt_host_destroy(a);
    mrt_host_destroy(o);
    mrt_host_destroy(s);
    mrt_host_destroy(sm);
    mrt_host_destroy(ti);
}
END_TEST

START_TEST(snapshot_daemon_errors)
{
    int mode = 0;
    mrt_host_config c = config(17);
    mrt_host *h = make_host(&c, &liar_vt, &mode);
    uint8_t buf[256];
    size_t len;
    /* Claims 5 bytes written into no buffer. */
    ck_assert_int_eq(mrt_host_snapshot(h, buf, sizeof buf, &len), MRT_DAEMON_EINCONSISTENT);
    mode = 1; /* its own error passes through */
    ck_assert_int_eq(mrt_host_snapshot(h, buf, sizeof buf, &len), MRT_EINVAL);
    mode = 2; /* a positive value is not a status */
    ck_assert_int_eq(mrt_host_snapshot(h, buf, sizeof buf, &len), MRT_DAEMON_EPROCESS);
    ck_assert_uint_eq(stats(h).snapshots, 0);
    mrt_host_destroy(h);
}
END_TEST

/* A chain near UINT64_MAX (forged through a snapshot) takes all outputs of a deliver or none. */
START_TEST(host_sequence_overflow)
{
    struct echo e = { 0 };
    mrt_host_config c = config(13);
    mrt_host *h = make_host(&c, &echo_vt, &e);
    uint8_t one = 1;
    mrt_event ev = event(1, 0, &one, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_OK);
    mrt_host_release_outputs(h);
    uint8_t snap[512];
    size_t len;
    ck_assert_int_eq(mrt_host_snapshot(h, snap, sizeof snap, &len), MRT_OK);
    put_le64(snap + 16, UINT64_MAX - 1); /* through_sequence */
    put_le64(snap + 24 + 16, UINT64_MAX - 1); /* head.sequence */
    rechecksum(snap, len);
    ck_assert_int_eq(mrt_host_restore(h, snap, len), MRT_OK);
    const mrt_causal_chain before = *mrt_host_chain(h);
    uint8_t two = 2;
    mrt_event ev2 = event(1, 1, &two, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev2, 0), MRT_DAEMON_ESEQOVERFLOW);
    ck_assert_mem_eq(mrt_host_chain(h), &before, sizeof before);
    size_t n;
    mrt_host_outputs(h, &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(stats(h).errors, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_OK);
    const mrt_event *out = mrt_host_outputs(h, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(out[0].link.sequence, UINT64_MAX);
    mrt_host_release_outputs(h);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_DAEMON_ESEQOVERFLOW);
    mrt_host_destroy(h);
}
END_TEST

START_TEST(control_health_saturation)
{
    struct echo e = { 0 };
    mrt_host_config c = config(14);
    mrt_host *h = make_host(&c, &echo_vt, &e);
    ck_assert_int_eq(mrt_host_control(h, MRT_DAEMON_CTL_BACKPRESSURE_ON, 3), MRT_OK);
    ck_assert_int_eq(e.last_kind, MRT_DAEMON_CTL_BACKPRESSURE_ON);
    ck_assert_uint_eq(e.last_level, 3);
    ck_assert_int_eq(mrt_host_control(h, MRT_DAEMON_CTL_BACKPRESSURE_OFF, 0), MRT_OK);
    ck_assert_int_eq(mrt_host_control(h, MRT_DAEMON_CTL_DRAIN_START, 0), MRT_OK);
    ck_assert_int_eq(e.last_kind, MRT_DAEMON_CTL_DRAIN_START);
    e.control_rc = MRT_ESTATE;
    ck_assert_int_eq(mrt_host_control(h, MRT_DAEMON_CTL_DRAIN_FINISH, 0), MRT_ESTATE);
    e.control_rc = MRT_OK;
    ck_assert_int_eq(mrt_host_control(h, (mrt_daemon_control)99, 0), MRT_EINVAL);
    ck_assert_uint_eq(e.controls, 4);

    e.health = MRT_DAEMON_DEGRADED;
    ck_assert_int_eq(mrt_host_health(h), MRT_DAEMON_DEGRADED);
    e.saturation = 0.25;
    ck_assert(mrt_host_saturation(h) == 0.25);
    e.saturation = 3.0;
    ck_assert(mrt_host_saturation(h) == 1.0);
    e.saturation = -1.0;
    ck_assert(mrt_host_saturation(h) == 0.0);
    e.saturation = NAN;
    ck_assert(mrt_host_saturation(h) == 0.0);

    uint8_t zero = 0;
    mrt_event ev = event(1, 0, &zero, 1);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_OK);
    ck_assert_int_eq(mrt_host_control(h, MRT_DAEMON_CTL_SHUTDOWN, 0), MRT_OK);
    ck_assert_int_eq(e.last_kind, MRT_DAEMON_CTL_SHUTDOWN);
    ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_ESTATE);
    ck_assert_uint_eq(e.calls, 1);
    mrt_host_destroy(h);

    /* Daemons without the optional callbacks. */
    mrt_host *b = make_host(&c, &bare_vt, &e);
    ck_assert_int_eq(mrt_host_health(b), MRT_DAEMON_HEALTHY);
    ck_assert(mrt_host_saturation(b) == 0.0);
    ck_assert_int_eq(mrt_host_control(b, MRT_DAEMON_CTL_DRAIN_START, 0), MRT_OK);
    mrt_host_destroy(b);
}
END_TEST

/* A host re-created with the previous incarnation's head continues its chain: no second genesis. */
START_TEST(create_resumes_chain)
{
    struct echo e = { 0 };
    mrt_host_config c = config(2);
    mrt_host *h = make_host(&c, &echo_vt, &e);
    mrt_causal_chain rx;
    mrt_causal_chain_init(&rx, mrt_host_origin(h));
    uint8_t payload[3] = { 1, 'x', 'y' };
    for (int incarnation = 0; incarnation < 3; incarnation++) {
        for (int round = 0; round < 2; round++) {
            mrt_event ev = event(700 + (uint64_t)round, 1, payload, sizeof payload);
            ck_assert_int_eq(mrt_host_deliver(h, &ev, 1), MRT_OK);
            size_t n;
            const mrt_event *out = mrt_host_outputs(h, &n);
            ck_assert_uint_eq(n, 1);
            ck_assert_int_eq(mrt_causal_chain_accept(&rx, &out[0].link, out[0].payload,
                                                     out[0].payload_len),
                             MRT_OK);
            mrt_host_release_outputs(h);
        }
        mrt_causal_chain prev = *mrt_host_chain(h);
        mrt_host_destroy(h);
        mrt_host_config r = c;
        r.resume = &prev.head;
        r.resume_next_parent = prev.next_parent;
        h = make_host(&r, &echo_vt, &e);
        ck_assert_uint_eq(mrt_host_chain(h)->head.sequence, prev.head.sequence);
    }
    ck_assert_uint_eq(rx.head.sequence, 5);
    mrt_host_destroy(h);
    /* A head of another origin is refused and nothing is created. */
    mrt_causal_link foreign = { 0 };
    foreign.origin_hash = mrt_host_origin_from_key(c.key) ^ 1;
    mrt_host_config r = c;
    r.resume = &foreign;
    mrt_host *none = NULL;
    mrt_daemon d = { &echo_vt, &e };
    ck_assert_int_eq(mrt_host_create(&r, d, &none), MRT_DAEMON_EORIGIN);
    ck_assert_ptr_null(none);
}
END_TEST

START_TEST(create_rejects_bad_input)
{
    mrt_host_config c = config(15);
    mrt_host *h = NULL;
    mrt_daemon none = { NULL, NULL };
    ck_assert_int_eq(mrt_host_create(&c, none, &h), MRT_EINVAL);
    static const mrt_daemon_vtable no_process = { .name = "none" };
    mrt_daemon d = { &no_process, NULL };
    ck_assert_int_eq(mrt_host_create(&c, d, &h), MRT_EINVAL);
    mrt_daemon ok = { &bare_vt, NULL };
    ck_assert_int_eq(mrt_host_create(NULL, ok, &h), MRT_EINVAL);
    ck_assert_int_eq(mrt_host_create(&c, ok, NULL), MRT_EINVAL);
    c.max_outputs = 1u << 25;
    ck_assert_int_eq(mrt_host_create(&c, ok, &h), MRT_EINVAL);
    ck_assert_ptr_null(h);
    mrt_host_destroy(NULL);
}
END_TEST

/* The per-event paths allocate nothing (counted with jemalloc; plain build only). */
START_TEST(deliver_allocates_nothing)
{
    if (mrt_alloc_counting_enable() != MRT_OK)
        MRT_SKIP("alloc-count",
                 "sanitizer builds allocate through libc, which jemalloc's hook cannot count");
    mrt_allocator arena;
    ck_assert_int_eq(mrt_allocator_create_arena(&arena), MRT_OK);
    struct echo e = { 0 };
    mrt_host_config c = config(16);
    c.alloc = &arena;
    c.payload_bytes = 320; /* one 200-byte output fits (56 + 40 + 200), a second does not */
    mrt_host *h = make_host(&c, &echo_vt, &e);
    uint8_t zero[1] = { 0 };
    uint8_t small[64] = { 1 };
    uint8_t spill[200] = { 2 }; /* two 200-byte outputs: one fits, one spills */
    mrt_event ev0 = event(9, 0, zero, 1);
    mrt_event ev1 = event(9, 1, small, sizeof small);
    mrt_event ev2 = event(9, 2, spill, sizeof spill);

    /* Check's own assertions allocate, so failures are counted and asserted after each loop. */
    int bad = 0;
    mrt_alloc_counts a = mrt_alloc_counts_now();
    for (int i = 0; i < 10000; i++)
        bad += mrt_host_deliver(h, &ev0, (uint64_t)i) != MRT_OK;
    mrt_alloc_counts b = mrt_alloc_counts_now();
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_eq(b.allocs - a.allocs, 0);

    b = mrt_alloc_counts_now();
    for (int i = 0; i < 10000; i++) {
        bad += mrt_host_deliver(h, &ev1, (uint64_t)i) != MRT_OK;
        mrt_host_release_outputs(h);
    }
    mrt_alloc_counts d = mrt_alloc_counts_now();
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_eq(d.allocs - b.allocs, 0);

    d = mrt_alloc_counts_now();
    for (int i = 0; i < 100; i++) {
        bad += mrt_host_deliver(h, &ev2, (uint64_t)i) != MRT_OK;
        mrt_host_release_outputs(h);
    }
    mrt_alloc_counts f = mrt_alloc_counts_now();
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_eq(f.allocs - d.allocs, 100); /* exactly the spilled payload buffers */
    ck_assert_uint_eq(stats(h).spills, 100);
    mrt_host_destroy(h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("daemon_host");
    TCase *t = tcase_create("host");
    tcase_add_test(t, identity_from_key);
    tcase_add_test(t, no_output_path);
    tcase_add_test(t, outputs_stamped_and_chained);
    tcase_add_test(t, failing_daemon_leaves_chain);
    tcase_add_test(t, pending_outputs_refuse_deliver);
    tcase_add_test(t, sink_overflow_is_an_error);
    tcase_add_test(t, payload_spill);
    tcase_add_test(t, sink_standalone);
    tcase_add_test(t, horizon_full_refuses_event);
    tcase_add_test(t, snapshot_restore_continues_chain);
    tcase_add_test(t, snapshot_restore_genesis);
    tcase_add_test(t, snapshot_is_canonical);
    tcase_add_test(t, restore_errors);
    tcase_add_test(t, snapshot_daemon_errors);
    tcase_add_test(t, host_sequence_overflow);
    tcase_add_test(t, control_health_saturation);
    tcase_add_test(t, create_resumes_chain);
    tcase_add_test(t, create_rejects_bad_input);
    tcase_add_test(t, deliver_allocates_nothing);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return mrt_check_run(suite());
}
