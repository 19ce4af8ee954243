/*
 * Daemon groups without running shards (white box): the member table's
 * id -> index map, selection and reservations per strategy, fencing and
 * completion in the member wrapper, spread against excluded shards, the
 * recovery registry (eviction, re-entrant registration), status names.
 */
#include "check_main.h"

#include "groups/groups_internal.h"

#include <stdlib.h>

static mrt_runtime *runtime_of(unsigned shards)
{
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.workload = false;
    cfg.allow_unbound = true;
    cfg.shards = shards;
    char err[256] = "";
    mrt_runtime *rt = NULL;
    ck_assert_msg(mrt_runtime_create(&cfg, &rt, err, sizeof err) == MRT_OK, "%s", err);
    return rt;
}

/* A table entry of n up members with pseudo-random ids. */
static void fill(grp_gtab *gt, unsigned n, uint32_t max_conn, uint8_t strategy)
{
    memset(gt, 0, sizeof(*gt));
    gt->gen = 1;
    gt->max_conn = max_conn;
    gt->strategy = strategy;
    gt->nslots = (uint16_t)n;
    uint64_t x = 0x1234567;
    for (unsigned i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        gt->s[i] = (grp_slot){ .id = x | 1, .term = 1, .shard = (uint16_t)(i % 4),
                               .state = GRP_SLOT_UP };
    }
    grp_gtab_index(gt);
}

START_TEST(id_map_finds_every_member)
{
    static grp_gtab gt;
    fill(&gt, MRT_GROUP_MAX_MEMBERS, 10, MRT_GROUP_ROUND_ROBIN);
    ck_assert_uint_eq(gt.nup, MRT_GROUP_MAX_MEMBERS);
    for (unsigned i = 0; i < MRT_GROUP_MAX_MEMBERS; i++)
        ck_assert_int_eq(grp_gtab_find(&gt, gt.s[i].id), (int)i);
    ck_assert_int_eq(grp_gtab_find(&gt, 2), -1); /* ids are odd here */
    /* A member down stays findable (completions of it still arrive) but is not routed to. */
    gt.s[7].state = GRP_SLOT_DOWN;
    grp_gtab_index(&gt);
    ck_assert_uint_eq(gt.nup, MRT_GROUP_MAX_MEMBERS - 1);
    ck_assert_int_eq(grp_gtab_find(&gt, gt.s[7].id), 7);
    for (unsigned i = 0; i < gt.nup; i++)
        ck_assert_uint_ne(gt.up[i], 7);
}
END_TEST

START_TEST(round_robin_max_conn_and_release)
{
    static grp_gtab gt;
    static grp_res res[MRT_GROUP_MAX_MEMBERS];
    memset(res, 0, sizeof res);
    fill(&gt, 3, 2, MRT_GROUP_ROUND_ROBIN);
    uint32_t rr = 0;
    unsigned per[3] = { 0 };
    for (unsigned k = 0; k < 6; k++) {
        int idx = grp_select_shard(&gt, res, &rr, 0);
        ck_assert_int_ge(idx, 0);
        per[idx]++;
    }
    ck_assert_uint_eq(per[0], 2);
    ck_assert_uint_eq(per[1], 2);
    ck_assert_uint_eq(per[2], 2);
    ck_assert_int_eq(grp_select_shard(&gt, res, &rr, 0), MRT_GROUPS_EMAXCONN);
    grp_res_put(&res[1]);
    ck_assert_int_eq(grp_select_shard(&gt, res, &rr, 0), 1); /* the one with room */
    /* 10^6 selections each released: nothing leaks, the group never fills. */
    for (unsigned i = 0; i < 3; i++)
        atomic_store(&res[i].out, 0);
    for (unsigned k = 0; k < 1000000; k++) {
        int idx = grp_select_shard(&gt, res, &rr, 0);
        ck_assert_int_ge(idx, 0);
        grp_res_put(&res[idx]);
    }
    for (unsigned i = 0; i < 3; i++)
        ck_assert_uint_eq(atomic_load(&res[i].out), 0);
    /* A new incarnation (term) starts its count at 0. */
    for (unsigned i = 0; i < 3; i++)
        atomic_store(&res[i].out, 2);
    ck_assert_int_eq(grp_select_shard(&gt, res, &rr, 0), MRT_GROUPS_EMAXCONN);
    gt.s[2].term = 2;
    ck_assert_int_eq(grp_select_shard(&gt, res, &rr, 0), 2);
    ck_assert_uint_eq(atomic_load(&res[2].out), 1);
    gt.nup = 0;
    ck_assert_int_eq(grp_select_shard(&gt, res, &rr, 0), MRT_GROUPS_ENOMEMBER);
}
END_TEST

START_TEST(hash_is_sticky_and_least_conn_picks_fewest)
{
    static grp_gtab gt;
    static grp_res res[MRT_GROUP_MAX_MEMBERS];
    memset(res, 0, sizeof res);
    fill(&gt, 8, 1000000, MRT_GROUP_HASH);
    uint32_t rr = 0;
    int first[256];
    for (uint64_t k = 0; k < 256; k++) {
        first[k] = grp_select_shard(&gt, res, &rr, k * 7919);
        ck_assert_int_ge(first[k], 0);
        ck_assert_int_eq(grp_select_shard(&gt, res, &rr, k * 7919), first[k]);
    }
    /* Member 3 down: only its keys move. */
    gt.s[3].state = GRP_SLOT_DOWN;
    grp_gtab_index(&gt);
    for (uint64_t k = 0; k < 256; k++) {
        int now = grp_select_shard(&gt, res, &rr, k * 7919);
        ck_assert_int_ne(now, 3);
        if (first[k] != 3)
            ck_assert_int_eq(now, first[k]);
    }
    /* Growing 8 -> 9 slots moves only keys to the new slot (jump hash). */
    fill(&gt, 9, 1000000, MRT_GROUP_HASH);
    gt.s[3].state = GRP_SLOT_UP;
    for (uint64_t k = 0; k < 256; k++) {
        int now = grp_select_shard(&gt, res, &rr, k * 7919);
        ck_assert(now == first[k] || now == 8 || first[k] == 3);
    }
    memset(res, 0, sizeof res);
    fill(&gt, 4, 100, MRT_GROUP_LEAST_CONN);
    atomic_store(&res[0].out, 5);
    atomic_store(&res[1].out, 3);
    atomic_store(&res[2].out, 4);
    atomic_store(&res[3].out, 3);
    for (unsigned i = 0; i < 4; i++)
        atomic_store(&res[i].term, 1);
    ck_assert_int_eq(grp_select_shard(&gt, res, &rr, 0), 1);
    ck_assert_int_eq(grp_select_shard(&gt, res, &rr, 0), 3);
    ck_assert_int_eq(grp_select_shard(&gt, res, &rr, 0), 1); /* 4,4,4,4: the first */
}
END_TEST

/* ---- the member wrapper: fencing and completion ---- */

static int echo_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (*(int *)state)++;
    return mrt_daemon_emit_copy(sink, ev->payload, ev->payload_len);
}
static const mrt_daemon_vtable echo_vt = { .name = "echo", .process = echo_process };

static int echo_create(void *ctx, const mrt_allocator *a, const void *arg, size_t len, void **st)
{
    (void)ctx, (void)arg, (void)len;
    *st = mrt_calloc(a, sizeof(int));
    return *st ? MRT_OK : MRT_ENOMEM;
}

START_TEST(stale_and_fenced_terms_rejected_reservation_released)
{
    mrt_groups *g = calloc(1, sizeof(*g));
    grp_shard *gs = calloc(1, sizeof(*gs));
    grp_ctr *ctr = calloc(1, sizeof(*ctr));
    ck_assert(g && gs && ctr);
    g->cfg.fail_threshold = 3;
    gs->g = g;
    gs->id = 0;
    gs->n = 1;
    gs->ctr = ctr;
    grp_type t = { .g = g, .user = { .vt = &echo_vt } };
    int processed = 0;
    uint32_t done[1] = { 0 };
    grp_member m = { .user = &processed, .type = &t, .gs = gs, .gid = 2, .idx = 5, .term = 7,
                     .gen = 9, .done = done };
    atomic_store(&gs->res[2][5].term, 7);
    atomic_store(&gs->res[2][5].out, 3);
    mrt_daemon_sink sink;
    ck_assert_int_eq(mrt_daemon_sink_init(&sink, NULL, 4, 1024), MRT_OK);
    uint8_t buf[24] = { 0 };
    grp_env e = { .magic = GRP_MAGIC, .gid = 2, .sel = 0, .idx = 5, .term = 7, .gen = 9 };
    mrt_event ev = { .payload = buf, .payload_len = sizeof buf };
    const mrt_daemon_vtable *vt = grp_member_vt();
    /* The member's own term: processed, the envelope stripped, completed. */
    memcpy(buf, &e, sizeof e);
    memcpy(buf + 16, "payload!", 8);
    ck_assert_int_eq(vt->process(&m, &ev, &sink), MRT_OK);
    ck_assert_int_eq(processed, 1);
    ck_assert_uint_eq(mrt_daemon_sink_count(&sink), 1);
    ck_assert_uint_eq(mrt_daemon_sink_outputs(&sink)[0].payload_len, 8);
    ck_assert_uint_eq(atomic_load(&gs->res[2][5].out), 2);
    mrt_daemon_sink_reset(&sink);
    /* An older term: ESTALE, not processed, the reservation released all the same. */
    e.term = 6;
    atomic_store(&gs->res[2][5].term, 6);
    memcpy(buf, &e, sizeof e);
    ck_assert_int_eq(vt->process(&m, &ev, &sink), MRT_GROUPS_ESTALE);
    ck_assert_int_eq(processed, 1);
    ck_assert_uint_eq(atomic_load(&gs->res[2][5].out), 1);
    /* A newer term: this incarnation is superseded. */
    e.term = 8;
    atomic_store(&gs->res[2][5].term, 8);
    memcpy(buf, &e, sizeof e);
    ck_assert_int_eq(vt->process(&m, &ev, &sink), MRT_GROUPS_EFENCED);
    ck_assert_int_eq(processed, 1);
    ck_assert_uint_eq(atomic_load(&gs->res[2][5].out), 0);
    ck_assert_uint_eq(atomic_load(&ctr->stale), 2);
    /* No envelope, or another group's: refused as such. */
    e.term = 7;
    e.gid = 3;
    memcpy(buf, &e, sizeof e);
    ck_assert_int_eq(vt->process(&m, &ev, &sink), MRT_GROUPS_EENVELOPE);
    ev.payload_len = 8;
    ck_assert_int_eq(vt->process(&m, &ev, &sink), MRT_GROUPS_EENVELOPE);
    /* A completion for another selector shard waits in the member's per-selector count. */
    gs->n = 1;
    mrt_daemon_sink_destroy(&sink);
    free(ctr);
    free(gs);
    free(g);
}
END_TEST

/* ---- placement: spread and exclusions (scheduler, no spawning) ---- */

START_TEST(spread_never_falls_back_to_an_excluded_shard)
{
    mrt_runtime *rt = runtime_of(4);
    mrt_groups *g = NULL;
    ck_assert_int_eq(mrt_groups_create(rt, NULL, &g), MRT_OK);
    mrt_compute_type ct = { .name = "echo", .vt = &echo_vt, .create = echo_create,
                            .state_size = 8 };
    uint16_t type;
    ck_assert_int_eq(mrt_groups_register_type(g, &ct, &type), MRT_GROUPS_EINVAL);
    ct.state_size = 0;
    ck_assert_int_eq(mrt_groups_register_type(g, &ct, &type), MRT_OK);
    ck_assert_uint_eq(type, 0);
    for (int mode = 0; mode < 2; mode++) {
        mrt_group *grp;
        ck_assert_int_eq(grp_group_new(g, &grp_kind_replica, 0, &grp), MRT_OK);
        uint32_t ex[1] = { 0 };
        grp->exclude = mrt_calloc(NULL, sizeof ex);
        memcpy(grp->exclude, ex, sizeof ex);
        grp->nexclude = 1;
        grp->spread = mode == 0 ? MRT_SCHED_SPREAD_STRICT : MRT_SCHED_SPREAD_BEST_EFFORT;
        grp_gtab *gt = &g->master->g[grp->gid];
        unsigned per[4] = { 0 };
        /* 12 members on 4 shards, shard 0 excluded: best effort spreads 4/4/4 over 1..3. */
        for (unsigned idx = 0; idx < 12; idx++) {
            uint32_t shard = 99;
            int rc = grp_place(grp, idx, MRT_SCHED_NONE, &shard);
            if (mode == 0 && idx >= 3) { /* strict: three free shards, then refused */
                ck_assert_int_eq(rc, MRT_GROUPS_ESPREAD);
                break;
            }
            ck_assert_int_eq(rc, MRT_OK);
            ck_assert_uint_ne(shard, 0);
            per[shard]++;
            gt->s[idx] = (grp_slot){ .id = idx + 1, .term = 1, .shard = (uint16_t)shard,
                                     .state = GRP_SLOT_UP };
            gt->nslots = (uint16_t)(idx + 1);
            grp->n = idx + 1;
        }
        if (mode == 1) {
            ck_assert_uint_eq(per[0], 0);
            ck_assert_uint_eq(per[1], 4);
            ck_assert_uint_eq(per[2], 4);
            ck_assert_uint_eq(per[3], 4);
            /* Failed and drained shards are never used either; with every other one out: none. */
            ck_assert_int_eq(mrt_runtime_fail_shard(rt, 1), MRT_OK);
            ck_assert(mrt_runtime_shard_failed(rt, 1));
            ck_assert_int_eq(mrt_runtime_drain_shard(rt, 2, true), MRT_OK);
            uint32_t shard;
            ck_assert_int_eq(grp_place(grp, 12, MRT_SCHED_NONE, &shard), MRT_OK);
            ck_assert_uint_eq(shard, 3);
            ck_assert_int_eq(grp_place(grp, 12, 3, &shard), MRT_GROUPS_ENOPLACE);
            ck_assert_int_eq(mrt_runtime_drain_shard(rt, 2, false), MRT_OK);
            ck_assert_int_eq(grp_place(grp, 12, 3, &shard), MRT_OK);
            ck_assert_uint_eq(shard, 2);
        }
        memset(gt, 0, sizeof(*gt));
        grp_group_free(grp);
    }
    mrt_groups_destroy(g);
    mrt_runtime_destroy(rt);
}
END_TEST

/* ---- the recovery registry ---- */

typedef struct reg_ctx {
    int calls;
    int ret;
    int registers;    /* register this many new handlers when called */
    struct reg_ctx *child;
} reg_ctx;

static int handler(mrt_groups *g, void *ctx, uint32_t max)
{
    reg_ctx *r = ctx;
    r->calls++;
    ck_assert_uint_eq(max, 4);
    while (r->registers > 0) {
        r->registers--;
        ck_assert_int_eq(mrt_groups_recovery_register(g, handler, r->child), MRT_OK);
    }
    return r->ret;
}

START_TEST(recovery_registry_evicts_and_takes_new_handlers_next_tick)
{
    mrt_runtime *rt = runtime_of(2);
    mrt_groups *g = NULL;
    ck_assert_int_eq(mrt_groups_create(rt, NULL, &g), MRT_OK);
    reg_ctx child = { .ret = 1 };
    reg_ctx a = { .ret = 2, .registers = 1, .child = &child };
    reg_ctx bad = { .ret = MRT_GROUPS_ENOGROUP };
    ck_assert_int_eq(mrt_groups_recovery_register(g, handler, &a), MRT_OK);
    ck_assert_int_eq(mrt_groups_recovery_register(g, handler, &bad), MRT_OK);
    ck_assert_uint_eq(mrt_groups_recovery_count(g), 2);
    /* Tick 1: a (registers child, which waits), bad (evicted). */
    ck_assert_int_eq(mrt_groups_recovery_tick(g), 2);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(bad.calls, 1);
    ck_assert_int_eq(child.calls, 0);
    ck_assert_uint_eq(mrt_groups_recovery_count(g), 2); /* a, child */
    /* Tick 2: a and child; bad is gone. */
    ck_assert_int_eq(mrt_groups_recovery_tick(g), 3);
    ck_assert_int_eq(a.calls, 2);
    ck_assert_int_eq(child.calls, 1);
    ck_assert_int_eq(bad.calls, 1);
    /* The registry is bounded. */
    while (mrt_groups_recovery_count(g) < MRT_GROUPS_MAX_HANDLERS)
        ck_assert_int_eq(mrt_groups_recovery_register(g, handler, &child), MRT_OK);
    ck_assert_int_eq(mrt_groups_recovery_register(g, handler, &child), MRT_GROUPS_ELIMIT);
    ck_assert_int_eq(mrt_groups_recovery_register(g, NULL, &child), MRT_GROUPS_EINVAL);
    mrt_groups_destroy(g);
    mrt_runtime_destroy(rt);
}
END_TEST

START_TEST(status_names)
{
    for (int code = MRT_GROUPS_EENVELOPE; code <= MRT_GROUPS_EINVAL; code++) {
        ck_assert_ptr_nonnull(mrt_groups_strerror(code));
        ck_assert_str_eq(mrt_strerror(code), mrt_groups_strerror(code));
    }
    ck_assert_ptr_null(mrt_groups_strerror(MRT_GROUPS_EENVELOPE - 1));
    ck_assert_ptr_null(mrt_groups_strerror(-999));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("groups");
    TCase *tc = tcase_create("groups");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, id_map_finds_every_member);
    tcase_add_test(tc, round_robin_max_conn_and_release);
    tcase_add_test(tc, hash_is_sticky_and_least_conn_picks_fewest);
    tcase_add_test(tc, stale_and_fenced_terms_rejected_reservation_released);
    tcase_add_test(tc, spread_never_falls_back_to_an_excluded_shard);
    tcase_add_test(tc, recovery_registry_evicts_and_takes_new_handlers_next_tick);
    tcase_add_test(tc, status_names);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
