/*
 * Snapshot publication domain: the reclamation protocol step by step, then
 * a stress run for ThreadSanitizer/AddressSanitizer: reader threads (each a
 * "shard" with its own state) adopt and select continuously while a writer
 * thread mutates the registry, compiles and publishes continuously. Bounded
 * iteration counts, no sleeps; every retired snapshot must end up freed and
 * no reader may touch a freed one (ASan/TSan would report it).
 */
#include "balancer/lb_internal.h"
#include "meshrt/mrt_balancer.h"
#include "tests/check_main.h"
#include "tests/test_lb_helpers.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

static bool node_ok(const uint8_t *id)
{
    uint32_t i = ((uint32_t)id[0] << 24) | ((uint32_t)id[1] << 16) | ((uint32_t)id[2] << 8) | id[3];
    for (int k = 4; k < MRT_LB_NODE_ID_LEN; k++)
        if (id[k] != (uint8_t)(i * 31u + (uint32_t)k * 7u))
            return false;
    return true;
}

static mrt_lb_registry *registry_with(uint32_t n, mrt_lb_strategy st)
{
    mrt_lb_config c;
    mrt_lb_config_default(&c);
    c.strategy = st;
    c.vnodes = 16;
    c.maglev_size = 1021;
    c.recovery_ns = 1000000;
    mrt_lb_registry *r;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &c, &r), MRT_OK);
    for (uint32_t i = 0; i < n; i++) {
        mrt_lb_endpoint_spec s;
        uint8_t id[32];
        node(id, i);
        mrt_lb_endpoint_spec_init(&s, id);
        s.user_data = i;
        s.zone = (i & 1) ? "odd" : "even";
        ck_assert_int_eq(mrt_lb_registry_add(r, &s, NULL), MRT_OK);
    }
    return r;
}

static mrt_lb_snapshot *snap(mrt_lb_registry *r)
{
    mrt_lb_snapshot *s;
    ck_assert_int_eq(mrt_lb_registry_compile(r, 0, NULL, &s), MRT_OK);
    return s;
}

START_TEST(domain_protocol)
{
    mrt_lb_registry *r = registry_with(4, MRT_LB_ROUND_ROBIN);
    mrt_lb_domain *d;
    ck_assert_int_eq(mrt_lb_domain_create(NULL, 0, &d), MRT_LB_EINVAL);
    ck_assert_int_eq(mrt_lb_domain_create(NULL, 2, &d), MRT_OK);
    ck_assert_ptr_null(mrt_lb_domain_adopt(d, 0));
    ck_assert_ptr_null(mrt_lb_domain_adopt(d, 2));
    mrt_lb_domain_stats st;

    mrt_lb_snapshot *s1 = snap(r), *s2 = snap(r), *s3 = snap(r);
    ck_assert_int_eq(mrt_lb_domain_publish(d, s1), 1);
    ck_assert_ptr_eq(mrt_lb_domain_adopt(d, 0), s1);
    ck_assert_int_eq(mrt_lb_domain_publish(d, s1), MRT_LB_EINVAL); /* already current */
    ck_assert_int_eq(mrt_lb_domain_publish(d, NULL), MRT_LB_EINVAL);
    /* reader 0 still holds s1: publishing s2 retires s1 but cannot free it */
    ck_assert_int_eq(mrt_lb_domain_publish(d, s2), 2);
    mrt_lb_domain_stats_get(d, &st);
    ck_assert_uint_eq(st.retired, 1);
    ck_assert_uint_eq(st.pending, 1);
    ck_assert_uint_eq(st.freed, 0);
    ck_assert_uint_eq(mrt_lb_domain_reclaim(d), 0);
    /* reader 0 passes a quiescent point: s1 can go */
    ck_assert_ptr_eq(mrt_lb_domain_adopt(d, 0), s2);
    ck_assert_ptr_eq(mrt_lb_domain_adopt(d, 0), s2); /* unchanged epoch: fast path */
    ck_assert_uint_eq(mrt_lb_domain_reclaim(d), 1);
    mrt_lb_domain_stats_get(d, &st);
    ck_assert_uint_eq(st.freed, 1);
    ck_assert_uint_eq(st.pending, 0);
    /* reader 1 comes online on s2; reader 0 goes offline and stops blocking */
    ck_assert_ptr_eq(mrt_lb_domain_adopt(d, 1), s2);
    ck_assert_int_eq(mrt_lb_domain_publish(d, s3), 3);
    mrt_lb_domain_offline(d, 0);
    ck_assert_uint_eq(mrt_lb_domain_reclaim(d), 0); /* reader 1 still on s2 */
    ck_assert_ptr_eq(mrt_lb_domain_adopt(d, 1), s3);
    ck_assert_uint_eq(mrt_lb_domain_reclaim(d), 1);
    ck_assert_ptr_eq(mrt_lb_domain_adopt(d, 0), s3); /* back online: sees the current one */
    mrt_lb_domain_stats_get(d, &st);
    ck_assert_uint_eq(st.published, 3);
    ck_assert_uint_eq(st.retired, 2);
    ck_assert_uint_eq(st.freed, 2);
    ck_assert_uint_eq(st.epoch, 3);
    mrt_lb_domain_destroy(d); /* frees s3 */
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(domain_sync_protocol)
{
    mrt_lb_registry *r = registry_with(4, MRT_LB_ROUND_ROBIN);
    mrt_lb_domain *d;
    ck_assert_int_eq(mrt_lb_domain_create(NULL, 1, &d), MRT_OK);
    mrt_lb_shard *sh;
    ck_assert_int_eq(mrt_lb_shard_create(NULL, 1, &sh), MRT_OK);
    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 0); /* nothing published */
    ck_assert_ptr_null(mrt_lb_shard_snapshot(sh));
    ck_assert_int_eq(mrt_lb_domain_sync(d, 1, sh), MRT_LB_EINVAL);
    mrt_lb_snapshot *s1 = snap(r), *s2 = snap(r);
    ck_assert_int_gt(mrt_lb_domain_publish(d, s1), 0);
    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 1);
    ck_assert_ptr_eq(mrt_lb_shard_snapshot(sh), s1);
    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 0);
    /* a reservation taken on s1 is released after the switch to s2 */
    mrt_lb_selection sel;
    ck_assert_int_eq(mrt_lb_select(s1, sh, NULL, 0, &sel), MRT_OK);
    ck_assert_int_gt(mrt_lb_domain_publish(d, s2), 0);
    mrt_lb_domain_stats st;
    mrt_lb_domain_stats_get(d, &st);
    ck_assert_uint_eq(st.pending, 1); /* s1 is still the shard's */
    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 1);
    ck_assert_ptr_eq(mrt_lb_shard_snapshot(sh), s2);
    ck_assert_uint_eq(mrt_lb_domain_reclaim(d), 1); /* s1 freed: the shard never reads it again */
    ck_assert_uint_eq(mrt_lb_shard_inflight(sh, sel.endpoint_id), 1);
    ck_assert_int_eq(mrt_lb_complete(sh, &sel, true, 10, 0), MRT_OK);
    ck_assert_uint_eq(mrt_lb_shard_inflight(sh, sel.endpoint_id), 0);
    /* offline, then back: announces before loading */
    mrt_lb_domain_offline(d, 0);
    ck_assert_int_gt(mrt_lb_domain_publish(d, snap(r)), 0);
    ck_assert_uint_eq(mrt_lb_domain_reclaim(d), 0); /* s2 went at publish: nobody held it */
    mrt_lb_domain_stats_get(d, &st);
    ck_assert_uint_eq(st.freed, 2);
    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 1);
    ck_assert_ptr_nonnull(mrt_lb_shard_snapshot(sh));
    mrt_lb_shard_destroy(sh);
    mrt_lb_domain_destroy(d);
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(domain_destroy_frees_pending)
{
    mrt_lb_registry *r = registry_with(4, MRT_LB_ROUND_ROBIN);
    mrt_lb_domain *d;
    ck_assert_int_eq(mrt_lb_domain_create(NULL, 1, &d), MRT_OK);
    ck_assert_int_gt(mrt_lb_domain_publish(d, snap(r)), 0);
    ck_assert_ptr_nonnull(mrt_lb_domain_adopt(d, 0));
    for (int i = 0; i < 5; i++)
        ck_assert_int_gt(mrt_lb_domain_publish(d, snap(r)), 0);
    mrt_lb_domain_stats st;
    mrt_lb_domain_stats_get(d, &st);
    ck_assert_uint_eq(st.pending, 5); /* the reader never moved on */
    mrt_lb_domain_destroy(d);         /* LeakSanitizer checks these are freed */
    mrt_lb_registry_destroy(r);
}
END_TEST

/* ------------------------------------------------------------------ stress */

enum { READERS = 2, PUBLISHES = 240, N = 48, MIN_ITERS = 3000, MAX_ITERS = 20000000 };

typedef struct reader_ctx {
    mrt_lb_domain *d;
    uint32_t idx;
    _Atomic int *done;
    _Atomic uint64_t progress;   /* iterations, watched by the writer */
    _Atomic int exited;
    uint64_t adopts, selects, errors, bad;
} reader_ctx;

static void *reader_main(void *arg)
{
    reader_ctx *c = arg;
    mrt_lb_shard *sh;
    if (mrt_lb_shard_create(NULL, 100 + c->idx, &sh) != MRT_OK) {
        c->bad++;
        return NULL;
    }
    const mrt_lb_snapshot *cur = NULL;
    uint64_t last_version = 0;
    for (uint64_t it = 0; it < MAX_ITERS; it++) {
        atomic_store_explicit(&c->progress, it, memory_order_release);
        if (it >= MIN_ITERS && atomic_load_explicit(c->done, memory_order_acquire))
            break;
        /* poll-iteration boundary */
        if (it % 997 == 996)
            mrt_lb_domain_offline(c->d, c->idx); /* idle for a while */
        int sw = mrt_lb_domain_sync(c->d, c->idx, sh);
        if (sw < 0)
            c->bad++;
        const mrt_lb_snapshot *s = mrt_lb_shard_snapshot(sh);
        if (s == NULL)
            continue;
        if (s != cur) {
            if (sw != 1 || mrt_lb_snapshot_version(s) < last_version)
                c->bad++;
            last_version = mrt_lb_snapshot_version(s);
            cur = s;
            c->adopts++;
        }
        for (uint32_t k = 0; k < 8; k++) {
            uint64_t key = it * 8 + k;
            mrt_lb_request rq;
            mrt_lb_request_init(&rq);
            rq.routing_key = &key;
            rq.routing_key_len = sizeof key;
            rq.zone = (uint16_t)(k & 1);
            mrt_lb_selection sel;
            int rc = mrt_lb_select(s, sh, &rq, it * 1000, &sel);
            if (rc != MRT_OK) {
                c->errors++;
                if (rc != MRT_LB_ECIRCUITOPEN && rc != MRT_LB_EMAXCONN &&
                    rc != MRT_LB_EALLUNHEALTHY)
                    c->bad++;
                continue;
            }
            /* read through the selection into the snapshot: a freed one would be caught */
            if (!node_ok(sel.node_id) || sel.user_data != sel.node_id[3] ||
                sel.slot >= mrt_lb_snapshot_size(s))
                c->bad++;
            c->selects++;
            if (mrt_lb_complete(sh, &sel, (key % 11) != 0, 1000 + key % 777, it * 1000) !=
                MRT_OK)
                c->bad++;
        }
    }
    mrt_lb_domain_offline(c->d, c->idx);
    mrt_lb_shard_stats st;
    mrt_lb_shard_stats_get(sh, &st);
    if (st.outstanding != 0)
        c->bad++;
    mrt_lb_shard_destroy(sh);
    atomic_store_explicit(&c->exited, 1, memory_order_release);
    return NULL;
}

START_TEST(publish_while_selecting)
{
    mrt_lb_registry *r = registry_with(N, MRT_LB_ROUND_ROBIN);
    mrt_lb_domain *d;
    ck_assert_int_eq(mrt_lb_domain_create(NULL, READERS, &d), MRT_OK);
    _Atomic int done = 0;
    reader_ctx ctx[READERS];
    pthread_t th[READERS];
    memset(ctx, 0, sizeof ctx);
    ck_assert_int_gt(mrt_lb_domain_publish(d, snap(r)), 0);
    for (uint32_t i = 0; i < READERS; i++) {
        ctx[i].d = d;
        ctx[i].idx = i;
        ctx[i].done = &done;
        atomic_init(&ctx[i].progress, 0);
        atomic_init(&ctx[i].exited, 0);
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &ctx[i]), 0);
    }
    /* the writer: mutate, compile, publish; every strategy, membership churn */
    uint32_t next_node = N;
    for (uint32_t p = 0; p < PUBLISHES; p++) {
        mrt_lb_config c;
        mrt_lb_registry_config(r, &c);
        c.strategy = (mrt_lb_strategy)(p % MRT_LB_STRATEGY_COUNT);
        c.max_connections = (p & 1) ? 64 : 0;
        ck_assert_int_eq(mrt_lb_registry_set_config(r, &c), MRT_OK);
        uint8_t id[32];
        node(id, (p * 7) % N);
        mrt_lb_endpoint_info inf;
        if (mrt_lb_registry_get(r, id, &inf) == MRT_OK) {
            ck_assert_int_eq(mrt_lb_registry_set_health(r, id, (p & 2) ? MRT_LB_DEGRADED
                                                                       : MRT_LB_HEALTHY),
                             MRT_OK);
            ck_assert_int_eq(mrt_lb_registry_set_weight(r, id, 1 + p % 9), MRT_OK);
        }
        if (p % 5 == 0) { /* remove one, add a new one (ids get reused) */
            node(id, (p * 13) % N);
            (void)mrt_lb_registry_remove(r, id);
            mrt_lb_endpoint_spec s;
            node(id, next_node);
            mrt_lb_endpoint_spec_init(&s, id);
            s.user_data = id[3];
            s.zone = "odd";
            ck_assert_int_eq(mrt_lb_registry_add(r, &s, NULL), MRT_OK);
            next_node++;
        }
        ck_assert_int_gt(mrt_lb_domain_publish(d, snap(r)), 0);
        if (p % 4 == 0) {
            /* let every reader run a few iterations on this one (no sleep: progress counters) */
            uint64_t seen[READERS];
            for (int i = 0; i < READERS; i++)
                seen[i] = atomic_load_explicit(&ctx[i].progress, memory_order_acquire);
            for (int i = 0; i < READERS; i++)
                MRT_WAIT_UNTIL(atomic_load_explicit(&ctx[i].progress, memory_order_acquire) >=
                                       seen[i] + 3 ||
                                   atomic_load_explicit(&ctx[i].exited, memory_order_acquire),
                               "reader %d to run 3 iterations on publish %u", i, (unsigned)p);
        }
    }
    atomic_store_explicit(&done, 1, memory_order_release);
    for (int i = 0; i < READERS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    /* every reader is offline: everything retired is freed */
    mrt_lb_domain_reclaim(d);
    mrt_lb_domain_stats st;
    mrt_lb_domain_stats_get(d, &st);
    ck_assert_uint_eq(st.published, PUBLISHES + 1);
    ck_assert_uint_eq(st.retired, PUBLISHES);
    ck_assert_uint_eq(st.freed, PUBLISHES);
    ck_assert_uint_eq(st.pending, 0);
    for (int i = 0; i < READERS; i++) {
        ck_assert_uint_eq(ctx[i].bad, 0);
        ck_assert_uint_gt(ctx[i].adopts, PUBLISHES / 8);
        ck_assert_uint_gt(ctx[i].selects, 0);
    }
    mrt_lb_domain_destroy(d);
    mrt_lb_registry_destroy(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("balancer_publish");
    TCase *tc = tcase_create("publish");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, domain_protocol);
    tcase_add_test(tc, domain_sync_protocol);
    tcase_add_test(tc, domain_destroy_frees_pending);
    tcase_add_test(tc, publish_while_selecting);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
