/*
 * Control messages (their own type space, counters and hand-back; counted in
 * the drain, refused after it), the mesh's sharing layout, and ingress's
 * share of each poll iteration under saturated shard-to-shard traffic.
 */
#include "meshrt/mrt_shard.h"
#include "shards/shard_internal.h"
#include "tests/check_main.h"

#include <check.h>
#include <pthread.h>
#include <rte_pause.h>
#include <stdatomic.h>
#include <string.h>

enum { T_CMD = 3 };

typedef struct counts {
    _Atomic uint64_t data, control, data_back, control_back;
    _Atomic uint64_t external; /* data messages from ingress */
    mrt_handback_reason last_reason;
} counts;

static void on_data(mrt_shard *s, const mrt_msg *m, void *ctx)
{
    (void)s;
    counts *c = ctx;
    atomic_fetch_add_explicit(&c->data, 1, memory_order_relaxed);
    if (m->src == MRT_SRC_EXTERNAL)
        atomic_fetch_add_explicit(&c->external, 1, memory_order_relaxed);
}

static void on_control(mrt_shard *s, const mrt_msg *m, void *ctx)
{
    (void)s;
    (void)m;
    atomic_fetch_add_explicit(&((counts *)ctx)->control, 1, memory_order_relaxed);
}

static void on_data_back(mrt_shard *s, const mrt_msg *m, mrt_handback_reason why, void *ctx)
{
    (void)s;
    (void)m;
    counts *c = ctx;
    c->last_reason = why;
    atomic_fetch_add_explicit(&c->data_back, 1, memory_order_relaxed);
}

static void on_control_back(mrt_shard *s, const mrt_msg *m, mrt_handback_reason why, void *ctx)
{
    (void)s;
    (void)m;
    counts *c = ctx;
    c->last_reason = why;
    atomic_fetch_add_explicit(&c->control_back, 1, memory_order_relaxed);
}

static mrt_mesh *make(unsigned n, unsigned ring, unsigned burst, counts *c)
{
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, n);
    cfg.ring_size = ring;
    cfg.burst = burst;
    mrt_mesh *m = NULL;
    ck_assert_int_eq(mrt_mesh_create(&cfg, &m), MRT_OK);
    for (unsigned i = 0; i < n; i++) {
        mrt_shard *s = mrt_mesh_shard(m, i);
        ck_assert_int_eq(mrt_shard_init_local(s), MRT_OK);
        memset(&c[i], 0, sizeof c[i]);
        ck_assert_int_eq(mrt_shard_set_handler(s, T_CMD, on_data, &c[i]), MRT_OK);
        mrt_shard_set_handback(s, on_data_back, &c[i]);
    }
    return m;
}

static void poll_all(mrt_mesh *m)
{
    for (unsigned i = 0; i < mrt_mesh_size(m); i++)
        mrt_shard_poll_once(mrt_mesh_shard(m, i));
}

START_TEST(control_has_its_own_space)
{
    counts c[2];
    mrt_mesh *m = make(2, 64, 8, c);
    mrt_shard *s0 = mrt_mesh_shard(m, 0);
    ck_assert_int_eq(mrt_shard_set_control_handler(s0, T_CMD, on_control, &c[0]), MRT_OK);
    ck_assert_int_eq(mrt_shard_set_control_handler(s0, MRT_CTL_TYPES, on_control, &c[0]),
                     MRT_SHARD_ETYPE);
    ck_assert_int_eq(mrt_shard_set_control_handler(NULL, 0, on_control, NULL), MRT_EINVAL);
    mrt_msg cmd = { .type = T_CMD };
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(mrt_mesh_control(m, 0, &cmd), MRT_OK);
    mrt_msg bad = { .type = MRT_CTL_TYPES };
    ck_assert_int_eq(mrt_mesh_control(m, 0, &bad), MRT_SHARD_ETYPE);
    ck_assert_int_eq(mrt_mesh_control(m, 2, &cmd), MRT_SHARD_EDEST);
    mrt_msg data = { .type = T_CMD };
    ck_assert_int_eq(mrt_shard_send(mrt_mesh_shard(m, 1), 0, &data), MRT_OK);
    poll_all(m);
    poll_all(m);
    /* The data handler of the same number saw only the data message. */
    ck_assert_uint_eq(c[0].control, 3);
    ck_assert_uint_eq(c[0].data, 1);
    mrt_shard_stats st;
    mrt_shard_stats_read(m, 0, &st);
    ck_assert_uint_eq(st.control_handled, 3);
    ck_assert_uint_eq(st.handled, 1);
    ck_assert_uint_eq(st.control_handed_back[MRT_HB_NO_HANDLER], 0);
    ck_assert_uint_eq(st.handed_back[MRT_HB_NO_HANDLER], 0);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(unhandled_control_is_handed_back_as_control)
{
    counts c[1];
    mrt_mesh *m = make(1, 64, 8, c);
    mrt_shard *s = mrt_mesh_shard(m, 0);
    mrt_shard_set_control_handback(s, on_control_back, &c[0]);
    c[0].last_reason = MRT_HB_REASONS;
    /* A control type with no control handler (T_CMD has a data handler only). */
    mrt_msg cmd = { .type = T_CMD };
    ck_assert_int_eq(mrt_mesh_control(m, 0, &cmd), MRT_OK);
    mrt_shard_poll_once(s);
    ck_assert_uint_eq(c[0].control_back, 1);
    ck_assert_int_eq(c[0].last_reason, MRT_HB_NO_HANDLER);
    ck_assert_uint_eq(c[0].data_back, 0);
    ck_assert_uint_eq(c[0].data, 0);
    mrt_shard_stats st;
    mrt_shard_stats_read(m, 0, &st);
    ck_assert_uint_eq(st.control_handled, 1);
    ck_assert_uint_eq(st.control_handed_back[MRT_HB_NO_HANDLER], 1);
    /* The data counters, which a run's verdict balances, never see it. */
    ck_assert_uint_eq(st.handed_back[MRT_HB_NO_HANDLER], 0);
    ck_assert_uint_eq(st.handled, 0);
    /* Handed back counts as done for the drain. */
    mrt_mesh_request_stop(m);
    mrt_shard_poll_once(s);
    ck_assert(mrt_mesh_try_drain(m));
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(control_counts_in_the_drain)
{
    /* 40 queued, 8 handled per iteration: the drain must wait for all of them. */
    counts c[2];
    mrt_mesh *m = make(2, 64, 8, c);
    ck_assert_int_eq(mrt_shard_set_control_handler(mrt_mesh_shard(m, 0), T_CMD, on_control, &c[0]),
                     MRT_OK);
    mrt_msg cmd = { .type = T_CMD };
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(mrt_mesh_control(m, 0, &cmd), MRT_OK);
    mrt_mesh_request_stop(m);
    unsigned rounds = 0;
    bool accepted_while_draining = false;
    while (!mrt_mesh_try_drain(m)) {
        /* Control stays open while the mesh drains, and what it takes is counted too. */
        if (!accepted_while_draining) {
            ck_assert_int_eq(mrt_mesh_control(m, 0, &cmd), MRT_OK);
            accepted_while_draining = true;
        }
        poll_all(m);
        ck_assert_uint_lt(++rounds, 100);
    }
    ck_assert(accepted_while_draining);
    ck_assert_uint_eq(c[0].control, 41);
    ck_assert_uint_eq(mrt_ring_msgs(mrt_mesh_shard(m, 0)->control), 0);
    mrt_shard_stats st;
    mrt_shard_stats_read(m, 0, &st);
    ck_assert_uint_eq(st.control_handled, 41);
    ck_assert_uint_eq(st.handled, 0);
    /* After the drain: refused, and the message stays the caller's. */
    ck_assert_int_eq(mrt_mesh_control(m, 0, &cmd), MRT_SHARD_ESTOPPED);
    ck_assert_int_eq(mrt_mesh_control(m, 1, &cmd), MRT_SHARD_ESTOPPED);
    ck_assert_uint_eq(mrt_ring_msgs(mrt_mesh_shard(m, 0)->control), 0);
    mrt_mesh_destroy(m);
}
END_TEST

/* ---- control across a drain, with shard threads ---------------------------- */

typedef struct ctl_sender {
    mrt_mesh *m;
    counts *c;
    _Atomic uint64_t accepted;
    int last_rc;
    const char *failed; /* Check cannot fail a test from another thread: reported here */
} ctl_sender;

static uint64_t handled_total(counts *c, unsigned n)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += atomic_load(&c[i].control) + atomic_load(&c[i].control_back);
    return t;
}

/*
 * A control plane that keeps a few commands in flight and sends until the
 * mesh refuses: some land just before the drain closes control.
 */
static void *control_plane(void *arg)
{
    ctl_sender *cs = arg;
    mrt_wait w = mrt_wait_begin();
    for (uint64_t i = 0;; i++) {
        /* Odd types have no handler: handed back, and still counted. */
        mrt_msg cmd = { .type = (uint16_t)(i % 4 == 3 ? T_CMD + 1 : T_CMD) };
        int rc = mrt_mesh_control(cs->m, (unsigned)(i & 1), &cmd);
        if (rc == MRT_SHARD_ESTOPPED) {
            cs->last_rc = rc;
            break;
        }
        if (rc != MRT_OK && rc != MRT_SHARD_EFULL) {
            cs->last_rc = rc;
            cs->failed = "mrt_mesh_control returned an unexpected code";
            break;
        }
        if (rc == MRT_OK)
            atomic_fetch_add(&cs->accepted, 1);
        /* At most 4 outstanding, so the shards can catch up and the drain can conclude. */
        while (cs->failed == NULL && atomic_load(&cs->accepted) - handled_total(cs->c, 2) >= 4) {
            if (mrt_wait_expired(&w))
                cs->failed = "hang guard: the shards never handled the control messages";
            rte_pause();
        }
        if (cs->failed)
            break;
    }
    return NULL;
}

static void *shard_thread(void *arg)
{
    mrt_shard_run(arg);
    return NULL;
}

START_TEST(control_across_a_drain_with_threads)
{
    counts c[2];
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, 2);
    cfg.ring_size = 64;
    cfg.burst = 8;
    cfg.idle_sleep_max_us = 0; /* unpinned threads on a shared machine: spin, never sleep */
    mrt_mesh *m = NULL;
    ck_assert_int_eq(mrt_mesh_create(&cfg, &m), MRT_OK);
    for (unsigned i = 0; i < 2; i++) {
        mrt_shard *s = mrt_mesh_shard(m, i);
        ck_assert_int_eq(mrt_shard_init_local(s), MRT_OK); /* on this thread: white-box */
        memset(&c[i], 0, sizeof c[i]);
        ck_assert_int_eq(mrt_shard_set_control_handler(s, T_CMD, on_control, &c[i]), MRT_OK);
        mrt_shard_set_control_handback(s, on_control_back, &c[i]);
    }
    pthread_t t[2], cp;
    for (unsigned i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, shard_thread, mrt_mesh_shard(m, i)), 0);
    ctl_sender cs = { .m = m, .c = c };
    ck_assert_int_eq(pthread_create(&cp, NULL, control_plane, &cs), 0);
    MRT_WAIT_UNTIL(atomic_load(&cs.accepted) >= 500, "500 control messages accepted");
    mrt_mesh_stop(m);
    pthread_join(cp, NULL);
    for (unsigned i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_msg(cs.failed == NULL, "control plane: %s (%d)", cs.failed, cs.last_rc);
    ck_assert_int_eq(cs.last_rc, MRT_SHARD_ESTOPPED);
    uint64_t accepted = atomic_load(&cs.accepted);
    uint64_t stat_handled = 0, stat_back = 0;
    for (unsigned i = 0; i < 2; i++) {
        mrt_shard_stats st;
        mrt_shard_stats_read(m, i, &st);
        stat_handled += st.control_handled;
        stat_back += st.control_handed_back[MRT_HB_NO_HANDLER];
        ck_assert_uint_eq(st.handled, 0);
        ck_assert_uint_eq(st.handed_back[MRT_HB_NO_HANDLER], 0);
    }
    /* Every accepted control message was handled or handed back before drained. */
    ck_assert_uint_eq(stat_handled, accepted);
    ck_assert_uint_eq(handled_total(c, 2), accepted);
    ck_assert_uint_eq(stat_back, atomic_load(&c[0].control_back) + atomic_load(&c[1].control_back));
    ck_assert_uint_gt(stat_back, 0);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(stop_flag_apart_from_injection_counters)
{
    counts c[1];
    mrt_mesh *m = make(1, 64, 8, c);
    uintptr_t stop = (uintptr_t)&m->stop_requested;
    uintptr_t drained = (uintptr_t)&m->drained;
    uintptr_t inflight = (uintptr_t)&m->inject_inflight;
    uintptr_t accepted = (uintptr_t)&m->ext_accepted;
    uintptr_t ctl = (uintptr_t)&m->ctl_accepted;
    /* Read every iteration by every shard: not in a block any injection or command writes. */
    ck_assert_uint_eq(stop % MRT_NO_SHARE, 0);
    ck_assert_uint_eq(stop / MRT_NO_SHARE, drained / MRT_NO_SHARE);
    ck_assert_uint_ne(stop / MRT_NO_SHARE, inflight / MRT_NO_SHARE);
    ck_assert_uint_ne(stop / MRT_NO_SHARE, accepted / MRT_NO_SHARE);
    ck_assert_uint_ne(stop / MRT_NO_SHARE, ctl / MRT_NO_SHARE);
    ck_assert_uint_ne(inflight / MRT_NO_SHARE, ctl / MRT_NO_SHARE);
    mrt_mesh_destroy(m);
}
END_TEST

/* ---- ingress's share under saturated shard-to-shard traffic ---------------- */

/* A producer that always offers full bursts to every shard. */
static void saturate(mrt_shard *s, bool draining, void *ctx)
{
    (void)ctx;
    if (draining)
        return;
    mrt_msg b[MRT_MAX_BURST];
    memset(b, 0, sizeof b);
    for (unsigned i = 0; i < MRT_MAX_BURST; i++)
        b[i].type = T_CMD;
    for (unsigned d = 0; d < mrt_mesh_size(s->mesh); d++)
        for (int k = 0; k < 4; k++)
            (void)mrt_shard_send_burst(s, d, b, s->burst, NULL);
}

typedef struct injector {
    mrt_mesh *m;
    uint64_t target;
    _Atomic uint64_t accepted;
    _Atomic bool done;
    const char *failed; /* Check cannot fail a test from another thread: reported here */
    int rc;
} injector;

static void *inject_thread(void *arg)
{
    injector *in = arg;
    mrt_wait w = mrt_wait_begin();
    uint64_t i = 0;
    while (atomic_load(&in->accepted) < in->target) {
        mrt_msg msg = { .type = T_CMD };
        int rc = mrt_mesh_inject(in->m, (unsigned)(i & 1), &msg);
        if (rc == MRT_OK) {
            atomic_fetch_add(&in->accepted, 1);
            i++;
        } else if (rc != MRT_SHARD_EFULL) {
            in->rc = rc;
            in->failed = "mrt_mesh_inject returned an unexpected code";
            break;
        } else if (mrt_wait_expired(&w)) {
            in->failed = "hang guard: ingress never took the messages (EFULL throughout)";
            break;
        } else {
            rte_pause();
        }
    }
    atomic_store(&in->done, true);
    return NULL;
}

START_TEST(ingress_gets_a_share_under_saturation)
{
    enum { N = 2, BURST = 8, RING = 64 };
    counts c[N];
    mrt_mesh *m = make(N, RING, BURST, c);
    for (unsigned i = 0; i < N; i++)
        mrt_shard_set_tick(mrt_mesh_shard(m, i), saturate, NULL);
    for (int k = 0; k < 20; k++)
        poll_all(m);
    injector in = { .m = m, .target = 20000 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, inject_thread, &in), 0);
    mrt_wait w = mrt_wait_begin();
    uint64_t iterations = 0, ring_handled = 0;
    while (!atomic_load(&in.done)) {
        for (unsigned i = 0; i < N; i++) {
            mrt_shard *s = mrt_mesh_shard(m, i);
            /* Only this thread consumes: what is queued now is there for the whole poll. */
            unsigned queued = mrt_ring_msgs(s->ingress);
            uint64_t ext0 = atomic_load(&c[i].external), all0 = atomic_load(&c[i].data);
            mrt_shard_poll_once(s);
            uint64_t ext = atomic_load(&c[i].external) - ext0;
            ring_handled += atomic_load(&c[i].data) - all0 - ext;
            /* Every iteration gives ingress up to a burst, however busy the rings are. */
            ck_assert_msg(ext >= (queued < BURST ? queued : BURST),
                          "iteration %llu of shard %u: %u queued on ingress, %llu handled",
                          (unsigned long long)iterations, i, queued, (unsigned long long)ext);
        }
        iterations++;
        MRT_WAIT_CHECK(&w, "the injector to place %llu messages (%llu so far, %llu rounds)",
                       (unsigned long long)in.target,
                       (unsigned long long)atomic_load(&in.accepted),
                       (unsigned long long)iterations);
    }
    pthread_join(t, NULL);
    ck_assert_msg(in.failed == NULL, "injector: %s (%d, %llu accepted)", in.failed, in.rc,
                  (unsigned long long)atomic_load(&in.accepted));
    /* What is left on ingress (at most a ring's worth) goes within ring / burst iterations. */
    for (unsigned k = 0; k < RING / BURST; k++)
        poll_all(m);
    uint64_t ext = atomic_load(&c[0].external) + atomic_load(&c[1].external);
    ck_assert_uint_eq(ext, in.target);
    /* The shard-to-shard traffic really was saturating: rings full, bursts all the way. */
    mrt_shard_stats st;
    mrt_shard_stats_read(m, 0, &st);
    ck_assert_uint_gt(st.ring_full, 0);
    ck_assert_uint_ge(ring_handled, iterations * N * (N * BURST));
    ck_assert_uint_eq(st.injected, atomic_load(&c[0].external));
    mrt_mesh_destroy(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shard_control");
    TCase *tc = tcase_create("control");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, control_has_its_own_space);
    tcase_add_test(tc, unhandled_control_is_handed_back_as_control);
    tcase_add_test(tc, control_counts_in_the_drain);
    tcase_add_test(tc, control_across_a_drain_with_threads);
    tcase_add_test(tc, stop_flag_apart_from_injection_counters);
    tcase_add_test(tc, ingress_gets_a_share_under_saturation);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
