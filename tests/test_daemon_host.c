/* Daemons: the host — deliver paths, stamping, errors, control, allocations. */
#include "meshrt/mrt_daemon.h"
#include "tests/check_main.h"
#include "tests/test_daemon_host.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

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
    tcase_add_test(t, control_health_saturation);
    tcase_add_test(t, deliver_allocates_nothing);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return mrt_check_run(suite());
}
