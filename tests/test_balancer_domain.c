/*
 * Publication domain edge cases around a reader that goes offline: the
 * snapshot its shard held may be freed while it is away, and the allocator
 * may hand the same address to a later snapshot. The shard must adopt that
 * one (it is a different snapshot) and must never read the freed one.
 */
#include "balancer/lb_internal.h"
#include "meshrt/mrt_balancer.h"
#include "tests/check_main.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * ASan parks freed blocks in a quarantine, so an address is not reused until
 * ~256 MB later. Keep a small quarantine instead: the reuse test needs the
 * address back, and 4 MB still catches a read of a block freed a few
 * allocations ago (the complete-while-offline test).
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=4";
}

static void node(uint8_t id[MRT_LB_NODE_ID_LEN], uint32_t i)
{
    memset(id, 0, MRT_LB_NODE_ID_LEN);
    id[0] = (uint8_t)(i >> 8);
    id[1] = (uint8_t)i;
    id[2] = 0x5a;
}

static void add(mrt_lb_registry *r, uint32_t i)
{
    mrt_lb_endpoint_spec s;
    uint8_t id[MRT_LB_NODE_ID_LEN];
    node(id, i);
    mrt_lb_endpoint_spec_init(&s, id);
    s.user_data = i;
    ck_assert_int_eq(mrt_lb_registry_add(r, &s, NULL), MRT_OK);
}

static mrt_lb_registry *registry_with(uint32_t n, mrt_lb_strategy st)
{
    mrt_lb_config c;
    mrt_lb_config_default(&c);
    c.strategy = st;
    mrt_lb_registry *r;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &c, &r), MRT_OK);
    for (uint32_t i = 0; i < n; i++)
        add(r, i);
    return r;
}

static mrt_lb_snapshot *snap(mrt_lb_registry *r)
{
    mrt_lb_snapshot *s;
    ck_assert_int_eq(mrt_lb_registry_compile(r, 0, NULL, &s), MRT_OK);
    return s;
}

/* Push the freed block out of ASan's quarantine (no-op cost elsewhere: 8 MB once). */
static void churn_quarantine(void)
{
    for (int i = 0; i < 64; i++) {
        void *p = malloc(128 * 1024);
        ck_assert_ptr_nonnull(p);
        memset(p, 0, 128 * 1024);
        free(p);
    }
}

/* 3 and 4 endpoints compile to snapshots of the same size, so the allocator can reuse the block. */
enum { N0 = 3, N1 = 4, TRIES = 256 };

/*
 * The reported bug: shard on s1 (N0 slots), reader offline, s1 freed, a
 * snapshot with N1 > N0 slots lands at s1's address and is published. Deciding
 * by address, sync saw "already adopted" and select indexed per-slot state
 * sized for N0 (heap-buffer-overflow under ASan).
 */
START_TEST(offline_reader_address_reuse)
{
    mrt_lb_registry *r = registry_with(N0, MRT_LB_ROUND_ROBIN);
    mrt_lb_domain *d;
    mrt_lb_shard *sh;
    ck_assert_int_eq(mrt_lb_domain_create(NULL, 1, &d), MRT_OK);
    ck_assert_int_eq(mrt_lb_shard_create(NULL, 7, &sh), MRT_OK);

    mrt_lb_snapshot *s1 = snap(r);
    uintptr_t s1_addr = (uintptr_t)s1;
    size_t s1_bytes = s1->bytes;
    ck_assert_int_gt(mrt_lb_domain_publish(d, s1), 0);
    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 1);
    ck_assert_uint_eq(mrt_lb_snapshot_size(mrt_lb_shard_snapshot(sh)), N0);

    mrt_lb_domain_offline(d, 0);
    for (uint32_t i = N0; i < N1; i++)
        add(r, i);
    ck_assert_int_gt(mrt_lb_domain_publish(d, snap(r)), 0); /* frees s1: nobody online */
    mrt_lb_domain_stats st;
    mrt_lb_domain_stats_get(d, &st);
    ck_assert_uint_eq(st.freed, 1);
    churn_quarantine();

    /* Compile until the allocator hands back s1's address (bounded). */
    mrt_lb_snapshot *miss[TRIES];
    size_t nmiss = 0;
    mrt_lb_snapshot *reused = NULL;
    while (nmiss < TRIES) {
        mrt_lb_snapshot *c = snap(r);
        if ((uintptr_t)c == s1_addr) {
            reused = c;
            break;
        }
        miss[nmiss++] = c; /* keep it allocated so the next try gets another block */
    }
    for (size_t i = 0; i < nmiss; i++)
        mrt_lb_snapshot_free(miss[i]);
    ck_assert_msg(reused != NULL,
                  "the allocator never reused the freed snapshot's address (%zu bytes) in %d "
                  "tries: this reproducer needs that reuse",
                  s1_bytes, TRIES);
    ck_assert_uint_eq(mrt_lb_snapshot_size(reused), N1);
    ck_assert_int_gt(mrt_lb_domain_publish(d, reused), 0);

    int rc = mrt_lb_domain_sync(d, 0, sh);
    const mrt_lb_snapshot *cur = mrt_lb_shard_snapshot(sh);
    ck_assert_ptr_eq(cur, reused);
    /* Round robin over N1 endpoints: every one is picked exactly twice in 2 x N1 selects. */
    uint32_t picks[N1] = {0};
    mrt_lb_selection sel[2 * N1];
    for (uint32_t k = 0; k < 2 * N1; k++) {
        ck_assert_int_eq(mrt_lb_select(cur, sh, NULL, 0, &sel[k]), MRT_OK);
        ck_assert_uint_lt(sel[k].user_data, N1);
        picks[sel[k].user_data]++;
    }
    ck_assert_int_eq(rc, 1); /* it switched: a new snapshot, whatever its address */
    for (uint32_t i = 0; i < N1; i++)
        ck_assert_uint_eq(picks[i], 2);
    for (uint32_t k = 0; k < 2 * N1; k++)
        ck_assert_int_eq(mrt_lb_complete(sh, &sel[k], true, 10, 0), MRT_OK);
    mrt_lb_shard_stats sst;
    mrt_lb_shard_stats_get(sh, &sst);
    ck_assert_uint_eq(sst.outstanding, 0);

    mrt_lb_domain_offline(d, 0);
    mrt_lb_shard_destroy(sh);
    mrt_lb_domain_destroy(d);
    mrt_lb_registry_destroy(r);
}
END_TEST

/*
 * While its reader is offline the shard still completes the requests it sent
 * (a drain): that must not read the snapshot it held, which may be freed
 * (least-* strategies update their trees on complete).
 */
START_TEST(complete_while_offline)
{
    mrt_lb_registry *r = registry_with(N0, MRT_LB_LEAST_CONNECTIONS);
    mrt_lb_domain *d;
    mrt_lb_shard *sh;
    ck_assert_int_eq(mrt_lb_domain_create(NULL, 1, &d), MRT_OK);
    ck_assert_int_eq(mrt_lb_shard_create(NULL, 7, &sh), MRT_OK);
    mrt_lb_snapshot *s1 = snap(r);
    ck_assert_int_gt(mrt_lb_domain_publish(d, s1), 0);
    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 1);
    mrt_lb_selection sel[3];
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(mrt_lb_select(s1, sh, NULL, 0, &sel[k]), MRT_OK);

    mrt_lb_domain_offline(d, 0);
    ck_assert_int_gt(mrt_lb_domain_publish(d, snap(r)), 0); /* frees s1 */
    mrt_lb_domain_stats st;
    mrt_lb_domain_stats_get(d, &st);
    ck_assert_uint_eq(st.freed, 1);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(mrt_lb_complete(sh, &sel[k], k != 0, 10, 0), MRT_OK);
    for (uint32_t id = 0; id < N0; id++)
        ck_assert_uint_eq(mrt_lb_shard_inflight(sh, id), 0);
    /* Detached: nothing to select from until the next sync. */
    ck_assert_ptr_null(mrt_lb_shard_snapshot(sh));

    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 1);
    const mrt_lb_snapshot *cur = mrt_lb_shard_snapshot(sh);
    ck_assert_ptr_nonnull(cur);
    /* Least connections on a fresh tree: N0 selects spread over all N0 endpoints. */
    uint32_t seen = 0;
    for (uint32_t k = 0; k < N0; k++) {
        mrt_lb_selection s;
        ck_assert_int_eq(mrt_lb_select(cur, sh, NULL, 0, &s), MRT_OK);
        seen |= 1u << s.endpoint_id;
    }
    ck_assert_uint_eq(seen, (1u << N0) - 1);
    mrt_lb_domain_offline(d, 0);
    mrt_lb_shard_destroy(sh);
    mrt_lb_domain_destroy(d);
    mrt_lb_registry_destroy(r);
}
END_TEST

/* Offline and back while the same snapshot stays current: no adopt needed, selects resume. */
START_TEST(offline_and_back_same_snapshot)
{
    mrt_lb_registry *r = registry_with(N0, MRT_LB_LEAST_CONNECTIONS);
    mrt_lb_domain *d;
    mrt_lb_shard *sh;
    ck_assert_int_eq(mrt_lb_domain_create(NULL, 1, &d), MRT_OK);
    ck_assert_int_eq(mrt_lb_shard_create(NULL, 7, &sh), MRT_OK);
    mrt_lb_snapshot *s1 = snap(r);
    ck_assert_int_gt(mrt_lb_domain_publish(d, s1), 0);
    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 1);
    mrt_lb_selection a, b;
    ck_assert_int_eq(mrt_lb_select(s1, sh, NULL, 0, &a), MRT_OK);
    mrt_lb_domain_offline(d, 0);
    ck_assert_int_eq(mrt_lb_select(s1, sh, NULL, 0, &b), MRT_LB_ENOTADOPTED);
    ck_assert_int_eq(mrt_lb_domain_sync(d, 0, sh), 0); /* same snapshot: state kept */
    ck_assert_ptr_eq(mrt_lb_shard_snapshot(sh), s1);
    ck_assert_uint_eq(mrt_lb_shard_inflight(sh, a.endpoint_id), 1);
    ck_assert_int_eq(mrt_lb_select(s1, sh, NULL, 0, &b), MRT_OK);
    ck_assert_uint_ne(b.endpoint_id, a.endpoint_id); /* least conn: a is busy */
    ck_assert_int_eq(mrt_lb_complete(sh, &a, true, 10, 0), MRT_OK);
    ck_assert_int_eq(mrt_lb_complete(sh, &b, true, 10, 0), MRT_OK);
    mrt_lb_domain_offline(d, 0);
    mrt_lb_shard_destroy(sh);
    mrt_lb_domain_destroy(d);
    mrt_lb_registry_destroy(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("balancer_domain");
    TCase *tc = tcase_create("domain");
    tcase_add_test(tc, offline_reader_address_reuse);
    tcase_add_test(tc, complete_while_offline);
    tcase_add_test(tc, offline_and_back_same_snapshot);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
