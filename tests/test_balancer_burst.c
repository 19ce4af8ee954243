/*
 * mrt_lb_select_burst's prefetch pipeline: it only runs for the keyed
 * strategies when the snapshot's ring or Maglev table is too large to sit
 * in cache (LB_BURST_MIN_BYTES in balancer/select.c), so these snapshots
 * are built past that size. Whatever the burst length (shorter than, equal
 * to and longer than the pipeline's depth), a burst must give the same
 * results, in the same order, as one mrt_lb_select per request on a shard
 * in the same state.
 */
#include "balancer/lb_internal.h"
#include "meshrt/mrt_balancer.h"
#include "tests/check_main.h"
#include "tests/test_lb_helpers.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* At least select.c's LB_BURST_MIN_BYTES (1 MiB), with a margin should it grow. */
#define ENGAGED_BYTES (2u << 20)
#define ENDPOINTS 256u
#define VNODES 1024u          /* 256 x 1024 points x 8 bytes: 2 MiB of ring */
#define MAGLEV_SIZE 524309u   /* a prime: 2 MiB of table */
#define REQUESTS 6000

/* This suite's own ids: the index in bytes 0..1, the rest mixed from it. */
static void burst_node(uint8_t id[MRT_LB_NODE_ID_LEN], uint32_t i)
{
    memset(id, 0, MRT_LB_NODE_ID_LEN);
    id[0] = (uint8_t)(i >> 8);
    id[1] = (uint8_t)i;
    for (int k = 2; k < MRT_LB_NODE_ID_LEN; k++)
        id[k] = (uint8_t)(i * 131u + (uint32_t)k);
}

/* The fields a caller sees; the node id points into the (shared) snapshot. */
static bool same_selection(const mrt_lb_selection *a, const mrt_lb_selection *b)
{
    return a->node_id == b->node_id && a->user_data == b->user_data &&
           a->endpoint_id == b->endpoint_id && a->generation == b->generation &&
           a->slot == b->slot && a->probe_epoch == b->probe_epoch && a->flags == b->flags &&
           a->strategy == b->strategy;
}

static void burst_equals_single(mrt_lb_strategy st)
{
    mrt_lb_config c;
    mrt_lb_config_default(&c);
    c.strategy = st;
    c.vnodes = VNODES;
    c.maglev_size = MAGLEV_SIZE;
    c.max_connections = 12;  /* reservations left open hit the cap: errors must line up too */
    c.breaker_threshold = 2; /* failures open breakers: state evolves between bursts */
    mrt_lb_registry *r;
    OK(mrt_lb_registry_create(NULL, &c, &r));
    const char *tags[1] = { "gpu" };
    for (uint32_t i = 0; i < ENDPOINTS; i++) {
        mrt_lb_endpoint_spec s;
        uint8_t id[MRT_LB_NODE_ID_LEN];
        burst_node(id, i);
        mrt_lb_endpoint_spec_init(&s, id);
        s.zone = (i % 3) ? "a" : "b";
        s.tags = tags;
        s.ntags = i % 2;
        s.weight = 1 + i % 5;
        s.user_data = i;
        OK(mrt_lb_registry_add(r, &s, NULL));
    }
    uint64_t gpu;
    uint16_t za;
    OK(mrt_lb_registry_declare_filter(r, tags, 1, &gpu));
    OK(mrt_lb_registry_zone(r, "a", &za));
    mrt_lb_snapshot *S;
    OK(mrt_lb_registry_compile(r, 0, NULL, &S));
    /* White box: the burst would silently fall back to single selects below this. */
    size_t ring_bytes = (size_t)S->pools[0].ring_n * sizeof(lb_rent);
    size_t mag_bytes = (size_t)S->pools[0].mag_m * sizeof(uint32_t);
    ck_assert_msg(ring_bytes >= ENGAGED_BYTES || mag_bytes >= ENGAGED_BYTES,
                  "%s: ring %zu B, maglev %zu B: the prefetch pipeline would not run",
                  mrt_lb_strategy_name(st), ring_bytes, mag_bytes);

    mrt_lb_shard *a, *b;
    OK(mrt_lb_shard_create(NULL, 9, &a));
    OK(mrt_lb_shard_create(NULL, 9, &b));
    OK(mrt_lb_shard_adopt(a, S));
    OK(mrt_lb_shard_adopt(b, S));

    static mrt_lb_request rq[REQUESTS];
    static uint64_t keys[REQUESTS];
    static mrt_lb_selection sa[REQUESTS], sb[REQUESTS];
    static int rca[REQUESTS];
    for (int i = 0; i < REQUESTS; i++) {
        mrt_lb_request_init(&rq[i]);
        keys[i] = (uint64_t)i * 0x9E3779B97F4A7C15u;
        if (i % 9 == 4) {
            continue; /* keyless: a round-robin pick in the middle of the pipeline */
        } else if (i % 5 == 3) {
            rq[i].session_id = &keys[i];
            rq[i].session_id_len = sizeof keys[i];
        } else {
            rq[i].routing_key = &keys[i];
            rq[i].routing_key_len = sizeof keys[i];
        }
        if (i % 4 == 1)
            rq[i].zone = za;
        if (i % 7 == 2)
            rq[i].required_tags = gpu;
    }

    /* Lengths around the pipeline's stages (8 and 16 requests apart) and long runs. */
    static const size_t lens[] = { 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 1000, 4096 };
    size_t at = 0, total_ok = 0, refused = 0;
    uint64_t now = 1000;
    unsigned seen = 0;
    static bool hit[ENDPOINTS];
    memset(hit, 0, sizeof hit);
    for (size_t li = 0; at < REQUESTS; li = (li + 1) % (sizeof lens / sizeof lens[0])) {
        size_t n = lens[li] < REQUESTS - at ? lens[li] : REQUESTS - at;
        size_t okn = mrt_lb_select_burst(S, a, rq + at, n, now, sa + at, rca + at);
        size_t okb = 0;
        for (size_t i = at; i < at + n; i++) {
            int rcb = mrt_lb_select(S, b, &rq[i], now, &sb[i]);
            if (rca[i] != rcb)
                ck_abort_msg("%s: request %zu (burst of %zu): burst rc %d, single rc %d",
                             mrt_lb_strategy_name(st), i, n, rca[i], rcb);
            if (rcb != MRT_OK) {
                refused++;
                continue;
            }
            okb++;
            if (!same_selection(&sa[i], &sb[i]))
                ck_abort_msg("%s: request %zu (burst of %zu): burst picked %u, single %u",
                             mrt_lb_strategy_name(st), i, n, sa[i].endpoint_id,
                             sb[i].endpoint_id);
            if (sb[i].user_data < ENDPOINTS && !hit[sb[i].user_data]) {
                hit[sb[i].user_data] = true;
                seen++;
            }
        }
        ck_assert_uint_eq(okn, okb);
        total_ok += okb;
        /* Same outcomes on both shards; every third reservation stays open. */
        for (size_t i = at; i < at + n; i++) {
            if (rca[i] != MRT_OK || i % 3 == 0)
                continue;
            bool ok = sa[i].endpoint_id % 13 != 0;
            (void)mrt_lb_complete(a, &sa[i], ok, 1000 + i % 97, now);
            (void)mrt_lb_complete(b, &sb[i], ok, 1000 + i % 97, now);
        }
        at += n;
        now += 1000;
    }
    /* The comparison meant something: many picks over many endpoints, and some refusals. */
    ck_assert_uint_gt(total_ok, REQUESTS / 2);
    ck_assert_uint_gt(seen, ENDPOINTS / 2);
    ck_assert_uint_gt(refused, 0);

    mrt_lb_shard_destroy(a);
    mrt_lb_shard_destroy(b);
    mrt_lb_snapshot_free(S);
    mrt_lb_registry_destroy(r);
}

START_TEST(burst_consistent_hash)
{
    burst_equals_single(MRT_LB_CONSISTENT_HASH);
}
END_TEST

START_TEST(burst_maglev)
{
    burst_equals_single(MRT_LB_MAGLEV);
}
END_TEST

START_TEST(burst_adaptive)
{
    burst_equals_single(MRT_LB_ADAPTIVE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("balancer_burst");
    TCase *tc = tcase_create("burst");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, burst_consistent_hash);
    tcase_add_test(tc, burst_maglev);
    tcase_add_test(tc, burst_adaptive);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
