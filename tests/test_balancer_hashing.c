/*
 * Balancer hashing strategies: consistent-hash remapping and key stability,
 * the ring's order and parallel slots, Maglev fair shares, a keyless
 * request, and the routing key's precedence.
 */
#include "balancer/lb_internal.h"
#include "meshrt/mrt_balancer.h"
#include "tests/check_main.h"
#include "tests/test_balancer_common.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ hashing */

static void ch_remap(uint32_t N)
{
    fx f;
    fx_init(&f, MRT_LB_CONSISTENT_HASH, N, NULL, NULL);
    fx_compile(&f);
    enum { KEYS = 100000 };
    uint32_t *before = malloc(KEYS * sizeof(uint32_t));
    ck_assert_ptr_nonnull(before);
    for (uint64_t k = 0; k < KEYS; k++)
        before[k] = pick_key(&f, k);
    uint32_t gone = N / 3;
    uint8_t id[32];
    node(id, gone);
    OK(mrt_lb_registry_remove(f.r, id));
    fx_compile(&f);
    uint32_t moved = 0;
    for (uint64_t k = 0; k < KEYS; k++) {
        uint32_t now = pick_key(&f, k);
        if (now != before[k]) {
            moved++;
            EQ(before[k], gone); /* only the removed endpoint's keys move */
        }
        if (now == gone)
            ck_assert_msg(0, "key %lu still on the removed endpoint", (unsigned long)k);
    }
    ck_assert_msg(moved <= 2u * KEYS / N, "N=%u moved %u", N, moved);
    ck_assert_uint_gt(moved, 0);
    free(before);
    fx_free(&f);
}

START_TEST(consistent_hash_remap_bounded)
{
    ch_remap(10);
    ch_remap(100);
}
END_TEST

/* Same key -> same endpoint across snapshots with the same membership, and across shards. */
static void stable_keys(mrt_lb_strategy st)
{
    fx f;
    int64_t w[50];
    for (int i = 0; i < 50; i++)
        w[i] = 1 + i % 4;
    fx_init(&f, st, 50, w, NULL);
    fx_compile(&f);
    enum { KEYS = 20000 };
    static uint32_t before[KEYS];
    for (uint64_t k = 0; k < KEYS; k++)
        before[k] = pick_key(&f, k * 7919);
    /* metrics, priority and a recompile: membership unchanged */
    uint8_t id[32];
    node(id, 7);
    mrt_lb_metrics m = { .cpu = 0.9 };
    OK(mrt_lb_registry_update_metrics(f.r, id, &m));
    fx_compile(&f);
    mrt_lb_shard *other;
    OK(mrt_lb_shard_create(NULL, 777, &other));
    OK(mrt_lb_shard_adopt(other, f.S));
    for (uint64_t k = 0; k < KEYS; k++) {
        EQ(pick_key(&f, k * 7919), before[k]);
        uint64_t key = k * 7919;
        mrt_lb_request rq;
        mrt_lb_request_init(&rq);
        rq.routing_key = &key;
        rq.routing_key_len = sizeof key;
        mrt_lb_selection sel;
        OK(mrt_lb_select(f.S, other, &rq, 0, &sel));
        EQ(sel.endpoint_id, before[k]);
        EQ(sel.strategy, st);
        OK(mrt_lb_complete(other, &sel, true, 1, 0));
    }
    mrt_lb_shard_destroy(other);
    fx_free(&f);
}

START_TEST(hash_same_key_same_endpoint)
{
    stable_keys(MRT_LB_CONSISTENT_HASH);
    stable_keys(MRT_LB_MAGLEV);
}
END_TEST

static int cmp_pt(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

START_TEST(ring_is_sorted_with_parallel_slots)
{
    fx f;
    fx_init(&f, MRT_LB_CONSISTENT_HASH, 40, NULL, NULL);
    fx_compile(&f);
    const lb_pool *P = &f.S->pools[0];
    EQ(P->ring_n, 40 * 150);
    /* the reference ring: every replica point of every endpoint, sorted */
    enum { RN = 40 * 150 };
    static uint64_t ref[RN][2];
    for (uint32_t s = 0; s < 40; s++)
        for (uint32_t v = 0; v < 150; v++) {
            ref[s * 150 + v][0] = lb_ring_point(f.S->node_ids + (size_t)s * 32, v);
            ref[s * 150 + v][1] = s;
        }
    qsort(ref, RN, sizeof ref[0], cmp_pt);
    /* entries are that ring, in order, each with its slot; the directory brackets buckets */
    uint32_t bits = P->dir_bits;
    ck_assert_uint_gt(bits, 0);
    for (uint32_t i = 0; i < RN; i++) {
        EQ(P->ring[i].mid, lb_ring_mid(ref[i][0], bits));
        EQ(P->ring[i].slot, ref[i][1]);
        uint32_t b = (uint32_t)(ref[i][0] >> (64 - bits));
        if (!(P->ring_dir[b] <= i && i < P->ring_dir[b + 1]))
            ck_assert_msg(0, "entry %u outside its bucket %u", i, b);
    }
    /* a key maps to the first point at or after its hash (wrapping) */
    for (uint64_t k = 0; k < 20000; k++) {
        uint64_t h = lb_key_hash(&k, sizeof k);
        uint32_t want = 0;
        while (want < RN && ref[want][0] < h)
            want++;
        if (want == RN)
            want = 0;
        EQ(pick_key(&f, k), f.S->slots[ref[want][1]].id);
    }
    fx_free(&f);
}
END_TEST

static void maglev_shares(uint32_t N, const int64_t *w)
{
    fx f;
    fx_init(&f, MRT_LB_MAGLEV, N, w, NULL);
    fx_compile(&f);
    const lb_pool *P = &f.S->pools[0];
    EQ(P->mag_m, 65537);
    uint32_t *cnt = calloc(N, sizeof(uint32_t));
    for (uint32_t j = 0; j < P->mag_m; j++) {
        ck_assert_uint_lt(P->mag_slot[j], N);
        cnt[P->mag_slot[j]]++;
    }
    double W = 0;
    for (uint32_t i = 0; i < N; i++)
        W += (double)(w ? w[i] : 100);
    for (uint32_t i = 0; i < N; i++) {
        double fair = P->mag_m * (double)(w ? w[i] : 100) / W;
        ck_assert_msg(fabs(cnt[i] - fair) <= 0.01 * fair, "N=%u ep %u: %u vs fair %.1f", N, i,
                      cnt[i], fair);
    }
    free(cnt);
    fx_free(&f);
}

START_TEST(maglev_weighted_fair_share)
{
    int64_t w10[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    maglev_shares(10, w10);
    int64_t w20[20];
    for (int i = 0; i < 20; i++)
        w20[i] = 100 + 50 * (i % 3);
    maglev_shares(20, w20);
    maglev_shares(100, NULL);
}
END_TEST

START_TEST(keyless_hash_falls_back_to_rr)
{
    for (int k = 0; k < 2; k++) {
        fx f;
        fx_init(&f, k ? MRT_LB_MAGLEV : MRT_LB_CONSISTENT_HASH, 5, NULL, NULL);
        fx_compile(&f);
        bool seen[5] = { false };
        for (int i = 0; i < 5; i++) {
            mrt_lb_selection sel;
            OK(mrt_lb_select(f.S, f.sh, NULL, 0, &sel));
            ck_assert_int_eq(sel.strategy, MRT_LB_ROUND_ROBIN);
            ck_assert(!seen[sel.endpoint_id]);
            seen[sel.endpoint_id] = true;
            OK(mrt_lb_complete(f.sh, &sel, true, 1, 0));
        }
        fx_free(&f);
    }
}
END_TEST

START_TEST(hash_key_precedence)
{
    fx f;
    fx_init(&f, MRT_LB_CONSISTENT_HASH, 64, NULL, NULL);
    fx_compile(&f);
    int differ = 0;
    for (uint64_t k = 0; k < 500; k++) {
        uint64_t a = k, b = k + 100000, c = k + 200000;
        mrt_lb_request rq;
        mrt_lb_request_init(&rq);
        rq.routing_key = &a;
        rq.routing_key_len = 8;
        rq.session_id = &b;
        rq.session_id_len = 8;
        rq.request_id = &c;
        rq.request_id_len = 8;
        uint32_t all = pick1(&f, &rq);
        EQ(all, pick_key(&f, a));
        rq.routing_key_len = 0;
        uint32_t sess = pick1(&f, &rq);
        EQ(sess, pick_key(&f, b));
        rq.session_id = NULL;
        uint32_t req = pick1(&f, &rq);
        EQ(req, pick_key(&f, c));
        differ += (all != sess) + (sess != req);
    }
    ck_assert_int_gt(differ, 500); /* the keys really select different endpoints */
    fx_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("balancer_hashing");
    TCase *tc = tcase_create("hashing");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, consistent_hash_remap_bounded);
    tcase_add_test(tc, hash_same_key_same_endpoint);
    tcase_add_test(tc, ring_is_sorted_with_parallel_slots);
    tcase_add_test(tc, maglev_weighted_fair_share);
    tcase_add_test(tc, keyless_hash_falls_back_to_rr);
    tcase_add_test(tc, hash_key_precedence);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
