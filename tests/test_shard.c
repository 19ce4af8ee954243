/*
 * Shards and the mesh, driven by hand on one thread (deterministic), plus
 * the arena and allocation checks.
 */
#include "meshrt/mrt_shard.h"
#include "shards/shard_internal.h"
#include "tests/check_main.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { T_DATA = 1, T_OTHER = 2 };

typedef struct runs {
    unsigned calls, msgs, singles;
    uint64_t last;
    bool ordered;
} runs;

typedef struct rx {
    unsigned count;
    unsigned from[MRT_MAX_SHARDS];
    uint64_t last[MRT_MAX_SHARDS];
    uint64_t bad;
    uint64_t handed_back;
} rx;

static void on_data(mrt_shard *s, const mrt_msg *m, void *ctx)
{
    rx *r = ctx;
    (void)s;
    if (m->src < MRT_MAX_SHARDS) {
        /* Per-sender order: w[0] counts up from 1 per sender. */
        if (m->w[0] != r->last[m->src] + 1)
            r->bad++;
        r->last[m->src] = m->w[0];
        r->from[m->src]++;
    }
    r->count++;
}

static void on_back(mrt_shard *s, const mrt_msg *m, mrt_handback_reason why, void *ctx)
{
    (void)s;
    (void)m;
    rx *r = ctx;
    if (why == MRT_HB_NO_HANDLER)
        r->handed_back++;
}

static mrt_mesh *make_mesh(unsigned n, unsigned ring, unsigned burst, unsigned overflow, rx *rxs)
{
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, n);
    cfg.ring_size = ring;
    cfg.burst = burst;
    cfg.overflow = overflow;
    mrt_mesh *m = NULL;
    ck_assert_int_eq(mrt_mesh_create(&cfg, &m), MRT_OK);
    for (unsigned i = 0; i < n; i++) {
        mrt_shard *s = mrt_mesh_shard(m, i);
        ck_assert_int_eq(mrt_shard_init_local(s), MRT_OK);
        if (rxs) {
            memset(&rxs[i], 0, sizeof(rxs[i]));
            ck_assert_int_eq(mrt_shard_set_handler(s, T_DATA, on_data, &rxs[i]), MRT_OK);
            mrt_shard_set_handback(s, on_back, &rxs[i]);
        }
    }
    return m;
}

static mrt_msg data(uint64_t seq)
{
    mrt_msg m = { .type = T_DATA };
    m.w[0] = seq;
    return m;
}

static void poll_all(mrt_mesh *m)
{
    for (unsigned i = 0; i < mrt_mesh_size(m); i++)
        mrt_shard_poll_once(mrt_mesh_shard(m, i));
}

START_TEST(message_is_32_bytes)
{
    ck_assert_uint_eq(sizeof(mrt_msg), 32);
}
END_TEST

START_TEST(config_errors)
{
    mrt_mesh_config c;
    const char *why = NULL;
    mrt_mesh_config_default(&c, 4);
    ck_assert_int_eq(mrt_mesh_config_check(&c, &why), MRT_OK);
    ck_assert_ptr_null(why);

    mrt_mesh_config bad = c;
    bad.shards = 0;
    ck_assert_int_eq(mrt_mesh_config_check(&bad, &why), MRT_SHARD_ECONFIG);
    ck_assert_str_eq(why, "shard count is 0");
    bad = c;
    bad.ring_size = 1000;
    ck_assert_int_eq(mrt_mesh_config_check(&bad, &why), MRT_SHARD_ECONFIG);
    ck_assert_str_eq(why, "ring size must be a power of two");
    bad = c;
    bad.ring_size = 32;
    bad.burst = 32;
    ck_assert_int_eq(mrt_mesh_config_check(&bad, &why), MRT_SHARD_ECONFIG);
    ck_assert_str_eq(why, "ring size must be larger than the burst size");
    bad = c;
    bad.burst = 0;
    ck_assert_int_eq(mrt_mesh_config_check(&bad, &why), MRT_SHARD_ECONFIG);
    ck_assert_str_eq(why, "burst must be 1..256");
    bad = c;
    bad.shards = MRT_MAX_SHARDS + 1;
    ck_assert_int_eq(mrt_mesh_config_check(&bad, &why), MRT_SHARD_ECONFIG);
    ck_assert_int_eq(mrt_mesh_config_check(NULL, &why), MRT_SHARD_ECONFIG);
    mrt_mesh *m = (mrt_mesh *)0x1;
    bad = c;
    bad.shards = 0;
    ck_assert_int_eq(mrt_mesh_create(&bad, &m), MRT_SHARD_ECONFIG);
    ck_assert_ptr_eq(m, (mrt_mesh *)0x1); /* untouched on error */
}
END_TEST

START_TEST(nxn_wiring)
{
    enum { N = 5 };
    rx r[N];
    mrt_mesh *m = make_mesh(N, 64, 8, 0, r);
    /* Every directed pair has its own ring, the diagonal included. */
    for (unsigned d = 0; d < N; d++)
        for (unsigned s = 0; s < N; s++)
            for (unsigned d2 = 0; d2 < N; d2++)
                for (unsigned s2 = 0; s2 < N; s2++)
                    if (d != d2 || s != s2)
                        ck_assert_ptr_ne(mrt_mesh_shard(m, d)->in[s], mrt_mesh_shard(m, d2)->in[s2]);
    for (unsigned s = 0; s < N; s++)
        for (unsigned d = 0; d < N; d++) {
            mrt_msg msg = data(1);
            msg.w[1] = s * 100 + d;
            ck_assert_int_eq(mrt_shard_send(mrt_mesh_shard(m, s), d, &msg), MRT_OK);
        }
    for (unsigned s = 0; s < N; s++)
        mrt_shard_flush(mrt_mesh_shard(m, s));
    poll_all(m);
    for (unsigned d = 0; d < N; d++) {
        ck_assert_uint_eq(r[d].count, N);
        for (unsigned s = 0; s < N; s++)
            ck_assert_uint_eq(r[d].from[s], 1);
        ck_assert_uint_eq(r[d].bad, 0);
    }
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(burst_waits_for_flush)
{
    rx r[2];
    mrt_mesh *m = make_mesh(2, 64, 8, 0, r);
    mrt_shard *a = mrt_mesh_shard(m, 0);
    for (uint64_t i = 1; i <= 7; i++) {
        mrt_msg msg = data(i);
        ck_assert_int_eq(mrt_shard_send(a, 1, &msg), MRT_OK);
    }
    /* Below one burst nothing is on the ring until the iteration's flush. */
    ck_assert_uint_eq(mrt_ring_msgs(mrt_mesh_shard(m, 1)->in[0]), 0);
    mrt_msg msg = data(8);
    ck_assert_int_eq(mrt_shard_send(a, 1, &msg), MRT_OK);
    ck_assert_uint_eq(mrt_ring_msgs(mrt_mesh_shard(m, 1)->in[0]), 8); /* a full burst goes at once */
    msg = data(9);
    ck_assert_int_eq(mrt_shard_send(a, 1, &msg), MRT_OK);
    mrt_shard_poll_once(a); /* end of iteration: flush */
    ck_assert_uint_eq(mrt_ring_msgs(mrt_mesh_shard(m, 1)->in[0]), 9);
    mrt_shard_poll_once(mrt_mesh_shard(m, 1));
    ck_assert_uint_eq(r[1].count, 9);
    ck_assert_uint_eq(r[1].bad, 0);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(full_ring_loses_nothing)
{
    /* Fast producer, consumer that does not poll: ring fills, overflow fills, then refusals. */
    rx r[2];
    mrt_mesh *m = make_mesh(2, 64, 8, 100, r);
    mrt_shard *a = mrt_mesh_shard(m, 0), *b = mrt_mesh_shard(m, 1);
    uint64_t seq = 0, refused = 0;
    for (int i = 0; i < 1000; i++) {
        mrt_msg msg = data(seq + 1);
        int rc = mrt_shard_send(a, 1, &msg);
        if (rc == MRT_OK)
            seq++;
        else {
            ck_assert_int_eq(rc, MRT_SHARD_EFULL);
            refused++;
        }
    }
    /* ring capacity 63 + pending queue (8 + 100 rounded up to 128). */
    ck_assert_uint_eq(seq, 63 + 128);
    ck_assert_uint_eq(refused, 1000 - seq);
    mrt_shard_poll_once(a);
    mrt_shard_stats st;
    mrt_shard_stats_read(m, 0, &st);
    ck_assert_uint_eq(st.send_refused, refused);
    ck_assert_uint_gt(st.ring_full, 0);
    ck_assert_uint_eq(st.sent, seq);
    /* Slow consumer catches up; the producer keeps offering its refused sequence numbers. */
    uint64_t target = seq + 500;
    unsigned rounds = 0;
    while (r[1].count < target) {
        ck_assert_msg(++rounds < 100000, "consumer stuck at %llu of %llu",
                      (unsigned long long)r[1].count, (unsigned long long)target);
        while (seq < target) {
            mrt_msg msg = data(seq + 1);
            if (mrt_shard_send(a, 1, &msg) != MRT_OK)
                break;
            seq++;
        }
        mrt_shard_poll_once(a);
        mrt_shard_poll_once(b);
    }
    ck_assert_uint_eq(r[1].count, target);
    ck_assert_uint_eq(r[1].bad, 0);
    ck_assert_uint_eq(r[1].last[0], target);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(send_burst_in_order_with_backpressure)
{
    rx r[2];
    mrt_mesh *m = make_mesh(2, 64, 8, 24, r); /* ring 63 + FIFO 32 */
    mrt_shard *a = mrt_mesh_shard(m, 0), *b = mrt_mesh_shard(m, 1);
    mrt_msg msgs[200];
    for (unsigned i = 0; i < 200; i++) {
        msgs[i] = data(i + 1);
        msgs[i].src = 777; /* whatever the sender writes, the receiver sees the ring's source */
    }
    unsigned accepted = 0;
    ck_assert_int_eq(mrt_shard_send_burst(a, 1, msgs, 200, &accepted), MRT_SHARD_EFULL);
    ck_assert_uint_eq(accepted, 63 + 32);
    mrt_shard_stats st;
    mrt_shard_poll_once(a);
    mrt_shard_stats_read(m, 0, &st);
    ck_assert_uint_eq(st.sent, accepted);
    ck_assert_uint_eq(st.send_refused, 200 - accepted);
    unsigned done = accepted;
    unsigned rounds = 0;
    while (r[1].count < 200) {
        ck_assert_msg(++rounds < 100000, "consumer stuck at %llu of 200",
                      (unsigned long long)r[1].count);
        if (done < 200) {
            ck_assert_int_ne(mrt_shard_send_burst(a, 1, msgs + done, 200 - done, &accepted),
                             MRT_SHARD_EDEST);
            done += accepted;
        }
        mrt_shard_poll_once(a);
        mrt_shard_poll_once(b);
    }
    ck_assert_uint_eq(r[1].bad, 0);
    ck_assert_uint_eq(r[1].from[0], 200); /* src stamped from the ring: shard 0 */
    ck_assert_uint_eq(r[1].last[0], 200);
    ck_assert_int_eq(mrt_shard_send_burst(a, 5, msgs, 1, &accepted), MRT_SHARD_EDEST);
    ck_assert_uint_eq(accepted, 0);
    ck_assert_int_eq(mrt_shard_send_burst(a, 1, msgs, 0, NULL), MRT_OK);
    mrt_mesh_destroy(m);
}
END_TEST

static void on_run(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx)
{
    (void)s;
    runs *r = ctx;
    r->calls++;
    for (unsigned i = 0; i < n; i++) {
        r->ordered &= m[i].type == T_DATA && m[i].w[0] == r->last + 1;
        r->last = m[i].w[0];
    }
    r->msgs += n;
}

static void on_single(mrt_shard *s, const mrt_msg *m, void *ctx)
{
    (void)s;
    (void)m;
    ((runs *)ctx)->singles++;
}

START_TEST(burst_handler_gets_runs_of_its_type)
{
    rx r[2];
    mrt_mesh *m = make_mesh(2, 64, 8, 0, r);
    mrt_shard *a = mrt_mesh_shard(m, 0), *b = mrt_mesh_shard(m, 1);
    runs rn = { .ordered = true };
    ck_assert_int_eq(mrt_shard_set_burst_handler(b, T_DATA, on_run, &rn), MRT_OK);
    ck_assert_int_eq(mrt_shard_set_handler(b, T_OTHER, on_single, &rn), MRT_OK);
    ck_assert_int_eq(mrt_shard_set_burst_handler(b, MRT_MSG_TYPES, on_run, &rn), MRT_SHARD_ETYPE);
    /* 5 data, 1 other, 2 data, 1 unhandled, 3 data: three runs of data. */
    uint64_t seq = 0;
    mrt_msg other = { .type = T_OTHER }, stray = { .type = 9 };
    for (int i = 0; i < 5; i++) {
        mrt_msg d = data(++seq);
        mrt_shard_send(a, 1, &d);
    }
    mrt_shard_send(a, 1, &other);
    for (int i = 0; i < 2; i++) {
        mrt_msg d = data(++seq);
        mrt_shard_send(a, 1, &d);
    }
    mrt_shard_send(a, 1, &stray);
    for (int i = 0; i < 3; i++) {
        mrt_msg d = data(++seq);
        mrt_shard_send(a, 1, &d);
    }
    mrt_shard_flush(a);
    mrt_shard_poll_once(b);
    ck_assert_uint_eq(rn.msgs, 10);
    ck_assert_uint_eq(rn.calls, 3);
    ck_assert(rn.ordered);
    ck_assert_uint_eq(rn.singles, 1);
    ck_assert_uint_eq(r[1].handed_back, 1);
    /* A per-message handler registered later replaces the burst handler. */
    ck_assert_int_eq(mrt_shard_set_handler(b, T_DATA, on_data, &r[1]), MRT_OK);
    mrt_msg d = data(1);
    mrt_shard_send(a, 1, &d);
    mrt_shard_flush(a);
    mrt_shard_poll_once(b);
    ck_assert_uint_eq(r[1].count, 1);
    ck_assert_uint_eq(rn.msgs, 10);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(send_errors)
{
    rx r[2];
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, 2);
    mrt_mesh *m = NULL;
    ck_assert_int_eq(mrt_mesh_create(&cfg, &m), MRT_OK);
    mrt_shard *a = mrt_mesh_shard(m, 0);
    ck_assert_int_eq(mrt_shard_init_local(a), MRT_OK);
    ck_assert_int_eq(mrt_shard_init_local(a), MRT_ESTATE);
    memset(r, 0, sizeof r);
    mrt_msg msg = data(1);
    ck_assert_int_eq(mrt_shard_send(a, 2, &msg), MRT_SHARD_EDEST);
    ck_assert_int_eq(mrt_shard_send(a, 1, &msg), MRT_SHARD_ENOTREADY); /* shard 1 not initialised */
    ck_assert_int_eq(mrt_mesh_inject(m, 1, &msg), MRT_SHARD_ENOTREADY);
    ck_assert_int_eq(mrt_mesh_control(m, 1, &msg), MRT_SHARD_ENOTREADY);
    ck_assert_int_eq(mrt_shard_set_handler(a, MRT_MSG_TYPES, on_data, r), MRT_SHARD_ETYPE);
    ck_assert_int_eq(mrt_mesh_inject(m, 7, &msg), MRT_SHARD_EDEST);
    ck_assert_int_eq(mrt_mesh_inject(NULL, 0, &msg), MRT_EINVAL);
    ck_assert_ptr_null(mrt_mesh_shard(m, 2));
    ck_assert_str_eq(mrt_shard_strerror(MRT_SHARD_EFULL), "destination ring and overflow queue are full");
    ck_assert_ptr_null(mrt_shard_strerror(-1));
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(handback_no_handler)
{
    rx r[2];
    mrt_mesh *m = make_mesh(2, 64, 8, 0, r);
    mrt_msg msg = { .type = T_OTHER };
    ck_assert_int_eq(mrt_shard_send(mrt_mesh_shard(m, 0), 1, &msg), MRT_OK);
    poll_all(m);
    poll_all(m);
    ck_assert_uint_eq(r[1].handed_back, 1);
    ck_assert_uint_eq(r[1].count, 0);
    mrt_shard_stats st;
    mrt_shard_stats_read(m, 1, &st);
    ck_assert_uint_eq(st.handed_back[MRT_HB_NO_HANDLER], 1);
    ck_assert_uint_eq(st.handled, 1);
    mrt_mesh_destroy(m);
}
END_TEST

/* A producer tick that sends a fixed number of messages to every shard, then stops. */
typedef struct prod {
    unsigned n;
    uint64_t left;
    uint64_t seq[8];
    bool saw_draining;
} prod;

static void produce(mrt_shard *s, bool draining, void *ctx)
{
    prod *p = ctx;
    if (draining) {
        p->saw_draining = true;
        return;
    }
    for (unsigned d = 0; d < p->n && p->left; d++) {
        mrt_msg msg = data(p->seq[d] + 1);
        if (mrt_shard_send(s, d, &msg) != MRT_OK)
            return;
        p->seq[d]++;
        p->left--;
    }
}

/* A producer that sends one burst of 40 to every shard per iteration. */
static void produce_bursts(mrt_shard *s, bool draining, void *ctx)
{
    prod *p = ctx;
    if (draining)
        return;
    mrt_msg m[40];
    for (unsigned d = 0; d < p->n; d++) {
        for (unsigned i = 0; i < 40; i++)
            m[i] = data(p->seq[d] + 1 + i);
        unsigned accepted = 0;
        (void)mrt_shard_send_burst(s, d, m, 40, &accepted);
        p->seq[d] += accepted;
    }
}

static void on_run_any(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx)
{
    (void)s;
    (void)m;
    ((runs *)ctx)->msgs += n;
}

START_TEST(stop_drains_in_flight)
{
    enum { N = 3 };
    rx r[N];
    prod p[N];
    mrt_mesh *m = make_mesh(N, 16, 4, 8, r);
    for (unsigned i = 0; i < N; i++) {
        p[i] = (prod){ .n = N, .left = 1000000 };
        mrt_shard_set_tick(mrt_mesh_shard(m, i), produce, &p[i]);
    }
    for (int k = 0; k < 50; k++)
        poll_all(m);
    for (int k = 0; k < 10; k++) /* shard 0 runs ahead of its consumers */
        mrt_shard_poll_once(mrt_mesh_shard(m, 0));
    /* Rings and pending queues are now loaded. */
    ck_assert_uint_gt(mrt_ring_msgs(mrt_mesh_shard(m, 1)->in[0]), 0);
    ck_assert(!mrt_mesh_try_drain(m)); /* no stop requested yet */
    mrt_mesh_request_stop(m);
    mrt_msg msg = data(1);
    ck_assert_int_eq(mrt_mesh_inject(m, 0, &msg), MRT_SHARD_ESTOPPED);
    unsigned rounds = 0;
    while (!mrt_mesh_try_drain(m)) {
        poll_all(m);
        ck_assert_uint_lt(++rounds, 100000);
    }
    ck_assert(mrt_mesh_drained(m));
    uint64_t sent = 0, got = 0;
    for (unsigned i = 0; i < N; i++) {
        ck_assert(p[i].saw_draining);
        mrt_shard_stats st;
        mrt_shard_stats_read(m, i, &st);
        sent += st.sent;
        got += r[i].count;
        ck_assert_uint_eq(r[i].bad, 0);
        for (unsigned s = 0; s < N; s++)
            ck_assert_uint_eq(r[i].last[s], p[s].seq[i]); /* every accepted message arrived */
        ck_assert_uint_eq(mrt_ring_msgs(mrt_mesh_shard(m, i)->in[0]), 0);
    }
    ck_assert_uint_eq(sent, got);
    ck_assert_uint_gt(got, 0);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(inject_and_control)
{
    rx r[2];
    mrt_mesh *m = make_mesh(2, 64, 8, 0, r);
    for (uint64_t i = 1; i <= 5; i++) {
        mrt_msg msg = data(i);
        ck_assert_int_eq(mrt_mesh_inject(m, 1, &msg), MRT_OK);
    }
    rx ctl_rx = { 0 };
    ck_assert_int_eq(mrt_shard_set_control_handler(mrt_mesh_shard(m, 0), T_DATA, on_data, &ctl_rx),
                     MRT_OK);
    mrt_msg ctl = data(0);
    ck_assert_int_eq(mrt_mesh_control(m, 0, &ctl), MRT_OK);
    poll_all(m);
    ck_assert_uint_eq(r[1].count, 5);
    /* Control has its own type space: the control handler, not the data one of the same number. */
    ck_assert_uint_eq(ctl_rx.count, 1);
    ck_assert_uint_eq(r[0].count, 0);
    mrt_shard_stats st;
    mrt_shard_stats_read(m, 0, &st);
    ck_assert_uint_eq(st.control_handled, 1);
    ck_assert_uint_eq(st.handled, 0);
    mrt_shard_stats_read(m, 1, &st);
    ck_assert_uint_eq(st.injected, 5);
    /* Fill the ingress ring: the sixty-fourth is refused, not lost. */
    unsigned ok = 0;
    int rc = MRT_OK;
    while (rc == MRT_OK) {
        mrt_msg msg = data(0);
        rc = mrt_mesh_inject(m, 0, &msg);
        ok += rc == MRT_OK;
    }
    ck_assert_int_eq(rc, MRT_SHARD_EFULL);
    ck_assert_uint_eq(ok, 63);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(coarse_clock_advances_per_iteration)
{
    rx r[1];
    mrt_mesh *m = make_mesh(1, 64, 8, 0, r);
    mrt_shard *s = mrt_mesh_shard(m, 0);
    mrt_shard_poll_once(s);
    uint64_t t1 = mrt_shard_now(s);
    ck_assert_uint_eq(mrt_shard_now(s), t1); /* no clock read between iterations */
    uint64_t t2 = t1;
    for (int i = 0; i < 1000000 && t2 == t1; i++) {
        mrt_shard_poll_once(s);
        t2 = mrt_shard_now(s);
    }
    ck_assert_uint_gt(t2, t1);
    mrt_mesh_destroy(m);
}
END_TEST

/* ---- arena and allocations ------------------------------------------------ */

typedef struct arena_probe {
    mrt_mesh *m;
    unsigned arena_of_ring, arena_of_malloc, shard_arena;
} arena_probe;

static void *arena_thread(void *arg)
{
    arena_probe *p = arg;
    mrt_shard *s = mrt_mesh_shard(p->m, 0);
    ck_assert_int_eq(mrt_shard_init_local(s), MRT_OK);
    p->shard_arena = mrt_shard_allocator(s)->arena;
    p->arena_of_ring = mrt_arena_of(s->in[0]);
    void *x = malloc(200); /* user code on the shard thread: its arena too */
    p->arena_of_malloc = mrt_arena_of(x);
    free(x);
    return NULL;
}

START_TEST(shard_allocations_come_from_its_arena)
{
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, 1);
    arena_probe p = { 0 };
    ck_assert_int_eq(mrt_mesh_create(&cfg, &p.m), MRT_OK);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, arena_thread, &p), 0);
    pthread_join(t, NULL);
    ck_assert_uint_ne(p.shard_arena, MRT_ARENA_DEFAULT);
#ifndef MRT_ALLOC_LIBC
    ck_assert_uint_eq(p.arena_of_ring, p.shard_arena);
    ck_assert_uint_eq(p.arena_of_malloc, p.shard_arena);
#endif
    mrt_mesh_destroy(p.m);
#ifdef MRT_ALLOC_LIBC
    MRT_SKIP("arena", "sanitizer builds allocate through libc: placement is not checked");
#endif
}
END_TEST

START_TEST(send_receive_dispatch_allocate_nothing)
{
    if (mrt_alloc_counting_enable() != MRT_OK)
        MRT_SKIP("alloc-count",
                 "sanitizer builds allocate through libc, which jemalloc's hook cannot count");
    enum { N = 3 };
    rx r[N];
    prod p[N];
    mrt_mesh *m = make_mesh(N, 256, 32, 0, r);
    for (unsigned i = 0; i < N; i++) {
        p[i] = (prod){ .n = N, .left = UINT64_MAX };
        mrt_shard_set_tick(mrt_mesh_shard(m, i), produce, &p[i]);
    }
    for (int k = 0; k < 100; k++) /* warm up: first connections, thread caches */
        poll_all(m);
    mrt_alloc_counts before = mrt_alloc_counts_now();
    for (int k = 0; k < 20000; k++)
        poll_all(m);
    mrt_alloc_counts after = mrt_alloc_counts_now();
    unsigned total = 0;
    for (unsigned i = 0; i < N; i++)
        total += r[i].count;
    ck_assert_uint_gt(total, 100000);
    ck_assert_uint_eq(after.allocs - before.allocs, 0);
    ck_assert_uint_eq(after.bytes - before.bytes, 0);

    /* The burst forms: send_burst (direct and buffered paths) and burst handlers. */
    runs rn[N];
    for (unsigned i = 0; i < N; i++) {
        rn[i] = (runs){ .ordered = true };
        mrt_shard_set_burst_handler(mrt_mesh_shard(m, i), T_DATA, on_run_any, &rn[i]);
        mrt_shard_set_tick(mrt_mesh_shard(m, i), produce_bursts, &p[i]);
    }
    for (int k = 0; k < 100; k++)
        poll_all(m);
    before = mrt_alloc_counts_now();
    for (int k = 0; k < 20000; k++)
        poll_all(m);
    after = mrt_alloc_counts_now();
    ck_assert_uint_gt(rn[0].msgs + rn[1].msgs + rn[2].msgs, 100000);
    ck_assert_uint_eq(after.allocs - before.allocs, 0);
    ck_assert_uint_eq(after.bytes - before.bytes, 0);
    mrt_mesh_destroy(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shard");
    TCase *tc = tcase_create("mesh");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, message_is_32_bytes);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, nxn_wiring);
    tcase_add_test(tc, burst_waits_for_flush);
    tcase_add_test(tc, full_ring_loses_nothing);
    tcase_add_test(tc, send_burst_in_order_with_backpressure);
    tcase_add_test(tc, burst_handler_gets_runs_of_its_type);
    tcase_add_test(tc, send_errors);
    tcase_add_test(tc, handback_no_handler);
    tcase_add_test(tc, stop_drains_in_flight);
    tcase_add_test(tc, inject_and_control);
    tcase_add_test(tc, coarse_clock_advances_per_iteration);
    tcase_add_test(tc, shard_allocations_come_from_its_arena);
    tcase_add_test(tc, send_receive_dispatch_allocate_nothing);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
