/*
 * Daemon groups on a running runtime: spread and exclusions, partial spawn
 * rollback, identities re-used by a grow after a shrink, chains that
 * verify across re-spawn (resumed, term + 1), members of a failed shard
 * re-placed, a stale-term event rejected at the member, every reservation
 * released (injected and sent from a shard), the runtime's --tags.
 */
#include "test_compute_common.h"

#include "groups/groups_internal.h"
#include "meshrt/mrt_groups.h"

/* A relay whose create fails once `fail_at` reaches 1 (counted down per create). */
static _Atomic int fail_at;
static _Atomic uint64_t fc_creates, fc_destroys;

static int fc_create(void *ctx, const mrt_allocator *a, const void *arg, size_t len, void **st)
{
    if (atomic_load(&fail_at) > 0 && atomic_fetch_sub(&fail_at, 1) == 1)
        return MRT_EINVAL;
    int rc = tc_create(ctx, a, arg, len, st);
    if (rc == MRT_OK)
        atomic_fetch_add(&fc_creates, 1);
    return rc;
}

static void fc_destroy(void *ctx, const mrt_allocator *a, void *st)
{
    tc_destroy(ctx, a, st);
    atomic_fetch_add(&fc_destroys, 1);
}

/* A router daemon: every event it gets goes through the group with mrt_group_send. */
typedef struct router {
    mrt_svc_shard *ss;
    mrt_group *grp;
    uint64_t refused;
} router;

static mrt_group *router_group;
static mrt_svc *router_svc;

static int router_create(void *ctx, const mrt_allocator *a, const void *arg, size_t len, void **st)
{
    (void)ctx;
    uint32_t shard;
    if (len != sizeof shard)
        return MRT_EINVAL;
    memcpy(&shard, arg, sizeof shard);
    router *r = mrt_calloc(a, sizeof(*r));
    if (r == NULL)
        return MRT_ENOMEM;
    r->ss = mrt_svc_shard_of(router_svc, shard);
    *st = r;
    return MRT_OK;
}

static void router_destroy(void *ctx, const mrt_allocator *a, void *st)
{
    (void)ctx;
    mrt_free(a, st, sizeof(router));
}

static int router_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)sink;
    router *r = state;
    uint64_t key;
    memcpy(&key, ev->payload, sizeof key);
    int rc = mrt_group_send(r->ss, router_group, key, &ev->link, ev->payload, ev->payload_len,
                            NULL);
    r->refused += rc != MRT_OK;
    return rc;
}

/* A relay that fails every event whose byte 8 is 0xFF. */
static int sick_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    if (ev->payload_len > 8 && ((const uint8_t *)ev->payload)[8] == 0xFF)
        return MRT_EINVAL;
    return tc_process(state, ev, sink);
}
static const mrt_daemon_vtable sick_vt = { .name = "sick", .process = sick_process };

static const mrt_daemon_vtable router_vt = { .name = "router", .process = router_process };

typedef struct fixture {
    mrt_runtime *rt;
    mrt_compute *c;
    mrt_groups *g;
    uint16_t relay, flaky, sick, router_type;
    tc_egress eg;
} fixture;

static void fx_init(fixture *f, unsigned shards, const char *tags)
{
    memset(f, 0, sizeof(*f));
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.workload = false;
    cfg.allow_unbound = true;
    cfg.shards = shards;
    cfg.tags = tags;
    char err[256] = "";
    ck_assert_msg(mrt_runtime_create(&cfg, &f->rt, err, sizeof err) == MRT_OK, "%s", err);
    f->c = mrt_runtime_compute(f->rt);
    mrt_groups_config gc;
    mrt_groups_config_default(&gc);
    ck_assert_int_eq(mrt_groups_create(f->rt, &gc, &f->g), MRT_OK);
    mrt_compute_type t = tc_type("relay", 4);
    ck_assert_int_eq(mrt_groups_register_type(f->g, &t, &f->relay), MRT_OK);
    t.name = "flaky";
    t.create = fc_create;
    t.destroy = fc_destroy;
    ck_assert_int_eq(mrt_groups_register_type(f->g, &t, &f->flaky), MRT_OK);
    t = tc_type("sick", 4);
    t.vt = &sick_vt;
    ck_assert_int_eq(mrt_groups_register_type(f->g, &t, &f->sick), MRT_OK);
    mrt_compute_type rt = { .name = "router", .vt = &router_vt, .create = router_create,
                            .destroy = router_destroy, .max_outputs = 1 };
    ck_assert_int_eq(mrt_compute_register_type(f->c, &rt, &f->router_type), MRT_OK);
    router_svc = mrt_runtime_services(f->rt);
    tc_start(f->rt);
}

static void fx_fini(fixture *f)
{
    mrt_runtime_stop(f->rt);
    mrt_groups_destroy(f->g);
    mrt_runtime_destroy(f->rt);
}

static mrt_group *replica(fixture *f, uint32_t n, uint16_t type, uint32_t max_conn)
{
    mrt_group_replica_config rc;
    mrt_group_replica_config_default(&rc);
    rc.type = type;
    rc.members = n;
    static uint64_t seed = 42;
    rc.seed = seed++; /* the same seed is the same identities */
    rc.max_conn = max_conn;
    mrt_group *grp = NULL;
    ck_assert_int_eq(mrt_group_replica_create(f->g, &rc, &grp), MRT_OK);
    ck_assert_int_eq(mrt_group_subscribe(grp, MRT_COMPUTE_TO_EGRESS, (mrt_compute_ref){ 0, 0 }),
                     MRT_OK);
    return grp;
}

/* Route events seq0.. through the group, retrying on backpressure while egress moves. */
static void route(fixture *f, mrt_group *grp, uint64_t seq0, uint64_t n)
{
    for (uint64_t s = seq0; s < seq0 + n; s++) {
        uint8_t p[16] = { 0 };
        memcpy(p, &s, sizeof s);
        mrt_wait w = mrt_wait_begin();
        int rc;
        while ((rc = mrt_group_inject(grp, s, p, sizeof p)) != MRT_OK) {
            ck_assert_msg(rc == MRT_GROUPS_EMAXCONN || rc == MRT_SHARD_EFULL ||
                              rc == MRT_SVC_EPOOL,
                          "inject: %s", mrt_strerror(rc));
            MRT_WAIT_CHECK(&w, "the group to take event %llu", (unsigned long long)s);
            if (mrt_compute_egress_poll(f->c, tc_on_egress, &f->eg, 256) == 0)
                sched_yield();
        }
    }
}

static void settle(fixture *f, mrt_group *grp, uint64_t total)
{
    tc_egress_until(f->c, &f->eg, total);
    MRT_WAIT_UNTIL(mrt_group_outstanding(grp) == 0, "reservations back (%llu)",
                   (unsigned long long)mrt_group_outstanding(grp));
    ck_assert_uint_eq(f->eg.bad_chain, 0);
    ck_assert_uint_eq(f->eg.total, total);
}

START_TEST(spread_exclusions_and_rollback)
{
    fixture f;
    fx_init(&f, 3, NULL);
    /* Best effort, 5 members, shard 0 excluded: 3 + 2 over shards 1 and 2 only. */
    mrt_group_replica_config rc;
    mrt_group_replica_config_default(&rc);
    rc.type = f.relay;
    rc.members = 5;
    uint32_t ex = 0;
    rc.exclude = &ex;
    rc.nexclude = 1;
    mrt_group *grp;
    ck_assert_int_eq(mrt_group_replica_create(f.g, &rc, &grp), MRT_OK);
    unsigned per[3] = { 0 };
    for (unsigned i = 0; i < 5; i++) {
        mrt_group_member_info mi;
        ck_assert_int_eq(mrt_group_member(grp, i, &mi), MRT_OK);
        per[mi.ref.shard]++;
        ck_assert_int_eq(mrt_group_member_of(grp, mi.ref.id), (int)i);
    }
    ck_assert_uint_eq(per[0], 0);
    ck_assert_uint_eq(per[1] + per[2], 5);
    ck_assert_uint_ge(per[1], 2);
    ck_assert_uint_ge(per[2], 2);
    mrt_group_health h;
    ck_assert_int_eq(mrt_group_health_get(grp, &h), MRT_OK);
    ck_assert_int_eq(h.state, MRT_GROUP_HEALTHY);
    ck_assert_uint_eq(h.healthy, 5);
    /* Strict, 3 members, shard 0 excluded: refused, nothing spawned. */
    rc.spread = MRT_SCHED_SPREAD_STRICT;
    rc.members = 3;
    rc.seed = 7;
    rc.type = f.flaky;
    mrt_group *g2 = NULL;
    ck_assert_int_eq(mrt_group_replica_create(f.g, &rc, &g2), MRT_GROUPS_ESPREAD);
    ck_assert_ptr_null(g2);
    ck_assert_uint_eq(atomic_load(&fc_creates), atomic_load(&fc_destroys));
    /* Partial spawn: the 3rd create of 4 fails; the two made are stopped. */
    rc.spread = MRT_SCHED_SPREAD_BEST_EFFORT;
    rc.nexclude = 0;
    rc.members = 4;
    uint64_t c0 = atomic_load(&fc_creates);
    atomic_store(&fail_at, 3);
    ck_assert_int_eq(mrt_group_replica_create(f.g, &rc, &g2), MRT_GROUPS_ESPAWN);
    ck_assert_uint_eq(atomic_load(&fc_creates) - c0, 2);
    ck_assert_uint_eq(atomic_load(&fc_creates), atomic_load(&fc_destroys));
    /* A grow that fails part-way leaves the group as it was. */
    rc.members = 2;
    rc.seed = 8;
    atomic_store(&fail_at, 0);
    ck_assert_int_eq(mrt_group_replica_create(f.g, &rc, &g2), MRT_OK);
    atomic_store(&fail_at, 2);
    ck_assert_int_eq(mrt_group_scale_to(g2, 5), MRT_GROUPS_ESPAWN);
    ck_assert_int_eq(mrt_group_health_get(g2, &h), MRT_OK);
    ck_assert_uint_eq(h.members, 2);
    ck_assert_uint_eq(atomic_load(&fc_creates) - atomic_load(&fc_destroys), 2);
    ck_assert_int_eq(mrt_group_scale_to(g2, 0), MRT_GROUPS_EINVAL);
    mrt_group_destroy(g2);
    ck_assert_uint_eq(atomic_load(&fc_creates), atomic_load(&fc_destroys));
    fx_fini(&f);
}
END_TEST

START_TEST(grow_after_shrink_reuses_identities)
{
    fixture f;
    fx_init(&f, 3, NULL);
    mrt_group *grp = replica(&f, 4, f.relay, 0);
    uint64_t ids[4];
    for (unsigned i = 0; i < 4; i++) {
        mrt_group_member_info mi;
        ck_assert_int_eq(mrt_group_member(grp, i, &mi), MRT_OK);
        ids[i] = mi.ref.id;
    }
    route(&f, grp, 0, 400);
    settle(&f, grp, 400);
    ck_assert_int_eq(mrt_group_scale_to(grp, 2), MRT_OK);
    mrt_group_member_info mi;
    ck_assert_int_eq(mrt_group_member(grp, 2, &mi), MRT_GROUPS_EINVAL);
    route(&f, grp, 400, 100);
    settle(&f, grp, 500);
    ck_assert_uint_eq(tc_count_of(&f.eg, ids[2]), 100); /* nothing after the shrink */
    ck_assert_int_eq(mrt_group_scale_to(grp, 4), MRT_OK);
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_int_eq(mrt_group_member(grp, i, &mi), MRT_OK);
        ck_assert_uint_eq(mi.ref.id, ids[i]);
    }
    /* The re-grown identities continue their chains: the collector accepts them. */
    route(&f, grp, 500, 400);
    settle(&f, grp, 900);
    ck_assert_uint_gt(tc_count_of(&f.eg, ids[3]), 100);
    fx_fini(&f);
}
END_TEST

START_TEST(respawn_resumes_chain_with_new_term)
{
    fixture f;
    fx_init(&f, 3, NULL);
    mrt_group *grp = replica(&f, 2, f.relay, 0);
    route(&f, grp, 0, 200);
    settle(&f, grp, 200);
    mrt_group_member_info before, after;
    ck_assert_int_eq(mrt_group_member(grp, 0, &before), MRT_OK);
    ck_assert_int_eq(mrt_group_mark_unhealthy(grp, 0), MRT_OK);
    mrt_group_health h;
    ck_assert_int_eq(mrt_group_health_get(grp, &h), MRT_OK);
    ck_assert_int_eq(h.state, MRT_GROUP_DEGRADED);
    ck_assert_uint_eq(h.healthy, 1);
    ck_assert_int_ge(mrt_runtime_control_tick(f.rt, false), 0);
    ck_assert_int_eq(mrt_group_member(grp, 0, &after), MRT_OK);
    ck_assert_uint_eq(after.ref.id, before.ref.id);
    ck_assert_uint_ne(after.ref.shard, before.ref.shard);
    ck_assert_uint_eq(after.term, before.term + 1);
    ck_assert(after.up && !after.unhealthy);
    ck_assert_int_eq(mrt_group_health_get(grp, &h), MRT_OK);
    ck_assert_int_eq(h.state, MRT_GROUP_HEALTHY);
    ck_assert_uint_eq(h.term, 2);
    ck_assert_uint_eq(h.respawns, 1);
    route(&f, grp, 200, 200);
    settle(&f, grp, 400);
    ck_assert_uint_gt(tc_count_of(&f.eg, before.ref.id), 100);
    fx_fini(&f);
}
END_TEST

START_TEST(consecutive_failures_make_a_member_unhealthy)
{
    fixture f;
    fx_init(&f, 2, NULL);
    mrt_group *grp = replica(&f, 1, f.sick, 0);
    mrt_group_member_info before, after;
    ck_assert_int_eq(mrt_group_member(grp, 0, &before), MRT_OK);
    /* Two failures, a success, two failures: never 3 in a row, still healthy. */
    const uint8_t pattern[] = { 0xFF, 0xFF, 0, 0xFF, 0xFF };
    for (unsigned k = 0; k < 5; k++) {
        uint8_t p[16] = { 0 };
        p[8] = pattern[k];
        uint64_t seq = k;
        memcpy(p, &seq, sizeof seq);
        ck_assert_int_eq(mrt_group_inject(grp, 0, p, sizeof p), MRT_OK);
    }
    MRT_WAIT_UNTIL(tc_totals(f.rt).daemon_errors == 4 && mrt_group_outstanding(grp) == 0,
                   "4 refusals and their completions");
    ck_assert_int_eq(mrt_group_member(grp, 0, &after), MRT_OK);
    ck_assert(!after.unhealthy);
    /* A third in a row: unhealthy, re-spawned on the other shard at the next tick. */
    uint8_t p[16] = { 0 };
    p[8] = 0xFF;
    ck_assert_int_eq(mrt_group_inject(grp, 0, p, sizeof p), MRT_OK);
    MRT_WAIT_UNTIL(tc_totals(f.rt).daemon_errors == 5, "the third refusal");
    MRT_WAIT_UNTIL(mrt_group_member(grp, 0, &after) == MRT_OK && after.unhealthy,
                   "the member marked unhealthy");
    mrt_group_health h;
    ck_assert_int_eq(mrt_group_health_get(grp, &h), MRT_OK);
    ck_assert_int_eq(h.state, MRT_GROUP_DEAD);
    ck_assert_int_ge(mrt_runtime_control_tick(f.rt, false), 0);
    ck_assert_int_eq(mrt_group_member(grp, 0, &after), MRT_OK);
    ck_assert_uint_eq(after.ref.id, before.ref.id);
    ck_assert_uint_ne(after.ref.shard, before.ref.shard);
    ck_assert_uint_eq(after.term, 2);
    ck_assert(!after.unhealthy);
    route(&f, grp, 100, 50);
    settle(&f, grp, 51); /* the one good event before, 50 after */
    fx_fini(&f);
}
END_TEST

START_TEST(failed_shard_members_replaced)
{
    fixture f;
    fx_init(&f, 3, NULL);
    mrt_group *grp = replica(&f, 6, f.relay, 0);
    route(&f, grp, 0, 300);
    settle(&f, grp, 300);
    uint64_t ids[6];
    unsigned on1 = 0;
    for (unsigned i = 0; i < 6; i++) {
        mrt_group_member_info mi;
        ck_assert_int_eq(mrt_group_member(grp, i, &mi), MRT_OK);
        ids[i] = mi.ref.id;
        on1 += mi.ref.shard == 1;
    }
    ck_assert_uint_eq(on1, 2);
    ck_assert_int_eq(mrt_runtime_fail_shard(f.rt, 1), MRT_OK);
    mrt_group_health h;
    ck_assert_int_eq(mrt_group_health_get(grp, &h), MRT_OK);
    ck_assert_uint_eq(h.healthy, 4);
    ck_assert_int_ge(mrt_runtime_control_tick(f.rt, false), 0);
    for (unsigned i = 0; i < 6; i++) {
        mrt_group_member_info mi;
        ck_assert_int_eq(mrt_group_member(grp, i, &mi), MRT_OK);
        ck_assert_uint_ne(mi.ref.shard, 1);
        ck_assert_uint_eq(mi.ref.id, ids[i]);
    }
    ck_assert_int_eq(mrt_group_health_get(grp, &h), MRT_OK);
    ck_assert_int_eq(h.state, MRT_GROUP_HEALTHY);
    ck_assert_uint_eq(h.respawns, 2);
    /* A spawn through compute's default placement avoids the failed shard too. */
    mrt_compute_ref d;
    for (unsigned k = 0; k < 4; k++) {
        ck_assert_int_eq(mrt_compute_spawn(f.c, f.router_type, MRT_COMPUTE_ANY_SHARD, NULL,
                                           &k, sizeof k, &d), MRT_OK);
        ck_assert_uint_ne(d.shard, 1);
    }
    route(&f, grp, 300, 300);
    settle(&f, grp, 600);
    fx_fini(&f);
}
END_TEST

START_TEST(stale_term_event_rejected)
{
    fixture f;
    fx_init(&f, 2, NULL);
    mrt_group *grp = replica(&f, 1, f.relay, 0);
    mrt_group_member_info mi;
    ck_assert_int_eq(mrt_group_member(grp, 0, &mi), MRT_OK);
    uint8_t p[32] = { 0 };
    grp_env e = { .magic = GRP_MAGIC, .gid = grp->gid, .sel = MRT_SRC_EXTERNAL, .idx = 0,
                  .term = mi.term - 1, .gen = grp->gen };
    memcpy(p, &e, sizeof e);
    tc_inject(f.c, mi.ref, p, sizeof p);
    MRT_WAIT_UNTIL(tc_totals(f.rt).daemon_errors == 1, "the member's refusal");
    mrt_groups_stats st;
    mrt_groups_stats_get(f.g, &st);
    ck_assert_uint_eq(st.stale, 1);
    /* The member still serves its own term. */
    route(&f, grp, 0, 10);
    settle(&f, grp, 10);
    ck_assert_uint_eq(tc_totals(f.rt).daemon_errors, 1);
    fx_fini(&f);
}
END_TEST

START_TEST(every_reservation_released)
{
    fixture f;
    fx_init(&f, 3, NULL);
    /* Max connections 4: a leak of a few reservations per member would stop the group. */
    mrt_group *grp = replica(&f, 3, f.relay, 4);
    route(&f, grp, 0, 20000);
    settle(&f, grp, 20000);
    /* From shard code: routers on each shard send through a group (at most 8 in flight). */
    mrt_group *g2 = replica(&f, 3, f.relay, 16);
    router_group = g2;
    mrt_compute_ref rtr[3];
    for (uint32_t s = 0; s < 3; s++)
        ck_assert_int_eq(mrt_compute_spawn(f.c, f.router_type, (uint16_t)s, NULL, &s, sizeof s,
                                           &rtr[s]), MRT_OK);
    for (uint64_t k = 0; k < 3000; k++) {
        uint8_t p[16] = { 0 };
        uint64_t seq = 20000 + k;
        memcpy(p, &seq, sizeof seq);
        mrt_wait w = mrt_wait_begin();
        while (seq - f.eg.total > 8) {
            MRT_WAIT_CHECK(&w, "egress to catch up");
            if (mrt_compute_egress_poll(f.c, tc_on_egress, &f.eg, 256) == 0)
                sched_yield();
        }
        tc_inject_eg(f.c, rtr[k % 3], p, sizeof p, &f.eg);
    }
    settle(&f, g2, 23000);
    ck_assert_uint_eq(tc_totals(f.rt).daemon_errors, 0); /* no router refused */
    settle(&f, grp, 23000);
    mrt_groups_stats st;
    mrt_groups_stats_get(f.g, &st);
    ck_assert_uint_eq(st.routed, 23000);
    ck_assert_uint_eq(st.completed, 23000);
    ck_assert_uint_eq(st.late, 0);
    mrt_runtime_stop(f.rt);
    ck_assert_uint_eq(mrt_group_outstanding(grp), 0);
    ck_assert_uint_eq(mrt_group_outstanding(g2), 0);
    fx_fini(&f);
}
END_TEST

START_TEST(control_tick_feeds_shard_loads)
{
    fixture f;
    fx_init(&f, 2, NULL);
    mrt_compute_ref d;
    for (uint32_t k = 0; k < 6; k++)
        ck_assert_int_eq(mrt_compute_spawn(f.c, f.router_type, 0, NULL, &k, sizeof k, &d), MRT_OK);
    MRT_WAIT_UNTIL(tc_totals(f.rt).hosted == 6, "6 daemons published as hosted");
    ck_assert_int_ge(mrt_runtime_control_tick(f.rt, false), 0);
    double c0, c1;
    mrt_sched *s = mrt_runtime_sched(f.rt);
    ck_assert_int_eq(mrt_sched_shard_capacity(s, 0, &c0), MRT_OK);
    ck_assert_int_eq(mrt_sched_shard_capacity(s, 1, &c1), MRT_OK);
    ck_assert_msg(c0 < c1, "capacity of the loaded shard %g, of the empty one %g", c0, c1);
    /* Compute's default placement now prefers the empty shard. */
    ck_assert_int_eq(mrt_compute_spawn(f.c, f.router_type, MRT_COMPUTE_ANY_SHARD, NULL, "\1\0\0\0",
                                       4, &d), MRT_OK);
    ck_assert_uint_eq(d.shard, 1);
    fx_fini(&f);
}
END_TEST

START_TEST(runtime_tags_reach_the_scheduler)
{
    char err[256];
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.workload = false;
    cfg.allow_unbound = true;
    cfg.shards = 2;
    mrt_runtime *rt = NULL;
    const char *bad[] = { "2=gpu", "0=gpu;0=ssd", "0=", "x=gpu", "0=numa:1", "0=a b" };
    for (unsigned k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cfg.tags = bad[k];
        err[0] = '\0';
        ck_assert_int_ne(mrt_runtime_create(&cfg, &rt, err, sizeof err), MRT_OK);
        ck_assert_msg(strstr(err, "--tags") != NULL, "%s: %s", bad[k], err);
    }
    cfg.tags = "0=gpu,ssd;1=ssd";
    ck_assert_int_eq(mrt_runtime_create(&cfg, &rt, err, sizeof err), MRT_OK);
    mrt_sched *s = mrt_runtime_sched(rt);
    bool has;
    ck_assert_int_eq(mrt_sched_shard_has_tag(s, 0, "gpu", &has), MRT_OK);
    ck_assert(has);
    ck_assert_int_eq(mrt_sched_shard_has_tag(s, 1, "gpu", &has), MRT_OK);
    ck_assert(!has);
    ck_assert_int_eq(mrt_sched_shard_has_tag(s, 1, "ssd", &has), MRT_OK);
    ck_assert(has);
    ck_assert_int_eq(mrt_sched_shard_has_tag(s, 1, "shard:1", &has), MRT_OK);
    ck_assert(has);
    ck_assert_int_eq(mrt_runtime_drain_shard(rt, 2, true), MRT_EINVAL);
    ck_assert_int_eq(mrt_runtime_fail_shard(rt, 2), MRT_EINVAL);
    ck_assert(!mrt_runtime_shard_failed(rt, 2));
    mrt_runtime_destroy(rt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("groups_runtime");
    TCase *tc = tcase_create("groups_runtime");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, spread_exclusions_and_rollback);
    tcase_add_test(tc, grow_after_shrink_reuses_identities);
    tcase_add_test(tc, respawn_resumes_chain_with_new_term);
    tcase_add_test(tc, consecutive_failures_make_a_member_unhealthy);
    tcase_add_test(tc, failed_shard_members_replaced);
    tcase_add_test(tc, stale_term_event_rejected);
    tcase_add_test(tc, every_reservation_released);
    tcase_add_test(tc, control_tick_feeds_shard_loads);
    tcase_add_test(tc, runtime_tags_reach_the_scheduler);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
