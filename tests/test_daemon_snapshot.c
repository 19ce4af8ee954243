/* Daemons: the host's snapshot and restore, and a host created to resume a chain. */
#include "meshrt/mrt_daemon.h"
#include "tests/check_main.h"
#include "tests/test_daemon_common.h"
#include "tests/test_daemon_host.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* --- test daemons -------------------------------------------------------- */

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

static Suite *suite(void)
{
    Suite *s = suite_create("daemon_snapshot");
    TCase *t = tcase_create("snapshot");
    tcase_add_test(t, snapshot_restore_continues_chain);
    tcase_add_test(t, snapshot_restore_genesis);
    tcase_add_test(t, snapshot_is_canonical);
    tcase_add_test(t, restore_errors);
    tcase_add_test(t, snapshot_daemon_errors);
    tcase_add_test(t, host_sequence_overflow);
    tcase_add_test(t, create_resumes_chain);
    tcase_add_test(t, create_rejects_bad_input);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return mrt_check_run(suite());
}
