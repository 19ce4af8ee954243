/*
 * Standby and fork groups on a running runtime: a promotion after the
 * active's shard fails replays exactly the events past the standby's sync
 * point with their outputs suppressed, and one receiver validates the chain
 * across it with no output missing or repeated; promotion with no healthy
 * standby changes nothing; an event of an older term is rejected; a fork
 * group's lineage verifies and each fork's chain verifies from its fork
 * genesis.
 */
#include "test_compute_common.h"

#include "groups/groups_internal.h"
#include "meshrt/mrt_groups.h"

/* acc: stateful (state is not an output); two outputs per event: {seq, acc}, {seq, ~acc}. */
typedef struct acc {
    uint64_t acc, events;
} acc;

static int acc_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    acc *a = state;
    uint64_t seq = 0;
    memcpy(&seq, ev->payload, ev->payload_len < 8 ? ev->payload_len : 8);
    a->acc = a->acc * 31 + seq + 1;
    a->events++;
    uint64_t o[2] = { seq, a->acc };
    int rc = mrt_daemon_emit_copy(sink, o, sizeof o);
    o[1] = ~a->acc;
    return rc == MRT_OK ? mrt_daemon_emit_copy(sink, o, sizeof o) : rc;
}

static int acc_snapshot(const void *state, void *buf, size_t cap, size_t *len)
{
    *len = sizeof(acc);
    if (cap < sizeof(acc))
        return MRT_DAEMON_ENOSPACE;
    memcpy(buf, state, sizeof(acc));
    return MRT_OK;
}

static int acc_restore(void *state, const void *buf, size_t len)
{
    if (len != sizeof(acc))
        return MRT_DAEMON_EBADSTATE;
    memcpy(state, buf, sizeof(acc));
    return MRT_OK;
}

static const mrt_daemon_vtable acc_vt = { .name = "acc", .process = acc_process,
                                          .snapshot = acc_snapshot, .restore = acc_restore };

static int acc_create(void *ctx, const mrt_allocator *a, const void *arg, size_t len, void **st)
{
    (void)ctx, (void)arg, (void)len;
    *st = mrt_calloc(a, sizeof(acc));
    return *st ? MRT_OK : MRT_ENOMEM;
}

static void acc_destroy(void *ctx, const mrt_allocator *a, void *st)
{
    (void)ctx;
    mrt_free(a, st, sizeof(acc));
}

/* Receiver: one chain per emitter id; for forks, chained from their records. */
#define RX_MAX 16
typedef struct rx {
    unsigned n;
    uint64_t id[RX_MAX];
    mrt_causal_chain chain[RX_MAX];
    uint64_t count[RX_MAX];
    uint64_t total, bad_chain;
    const mrt_fork_record *forks;
    unsigned nforks;
    uint8_t seen[4096]; /* per event seq: outputs received */
} rx;

static void rx_on(void *ctx, const mrt_compute_output *o)
{
    rx *r = ctx;
    unsigned i = 0;
    while (i < r->n && r->id[i] != o->from.id)
        i++;
    if (i == r->n) {
        ck_assert_uint_lt(r->n, RX_MAX);
        r->id[i] = o->from.id;
        mrt_causal_chain_init(&r->chain[i], o->from.id);
        for (unsigned k = 0; k < r->nforks; k++)
            if (r->forks[k].forked_origin == o->from.id)
                ck_assert_int_eq(mrt_fork_chain_init(&r->chain[i], &r->forks[k]), MRT_OK);
        r->n++;
    }
    if (mrt_causal_chain_accept(&r->chain[i], &o->link, o->payload, o->len) != MRT_OK)
        r->bad_chain++;
    uint64_t seq;
    memcpy(&seq, o->payload, 8);
    if (seq < sizeof r->seen)
        r->seen[seq]++;
    r->count[i]++;
    r->total++;
}

static void rx_until(mrt_compute *c, rx *r, uint64_t target)
{
    mrt_wait w = mrt_wait_begin();
    while (r->total < target) {
        MRT_WAIT_CHECK(&w, "%llu outputs (%llu so far)", (unsigned long long)target,
                       (unsigned long long)r->total);
        if (mrt_compute_egress_poll(c, rx_on, r, 256) == 0)
            sched_yield();
    }
}

typedef struct fixture {
    mrt_runtime *rt;
    mrt_compute *c;
    mrt_groups *g;
    uint16_t type, plain;
} fixture;

static void fx_init(fixture *f, unsigned shards)
{
    memset(f, 0, sizeof(*f));
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.workload = false;
    cfg.allow_unbound = true;
    cfg.shards = shards;
    char err[256] = "";
    ck_assert_msg(mrt_runtime_create(&cfg, &f->rt, err, sizeof err) == MRT_OK, "%s", err);
    f->c = mrt_runtime_compute(f->rt);
    ck_assert_int_eq(mrt_groups_create(f->rt, NULL, &f->g), MRT_OK);
    mrt_compute_type t = { .name = "acc", .vt = &acc_vt, .create = acc_create,
                           .destroy = acc_destroy, .max_outputs = 2 };
    ck_assert_int_eq(mrt_groups_register_type(f->g, &t, &f->type), MRT_OK);
    t.name = "acc-plain";
    ck_assert_int_eq(mrt_compute_register_type(f->c, &t, &f->plain), MRT_OK);
    tc_start(f->rt);
}

static void fx_fini(fixture *f)
{
    mrt_runtime_stop(f->rt);
    mrt_groups_destroy(f->g);
    mrt_runtime_destroy(f->rt);
}

/* Inject events seq0.. through the group, retrying on backpressure while egress moves. */
static void inject(fixture *f, mrt_group *grp, rx *r, uint64_t seq0, uint64_t n)
{
    for (uint64_t s = seq0; s < seq0 + n; s++) {
        mrt_wait w = mrt_wait_begin();
        int rc;
        while ((rc = mrt_group_inject(grp, s, &s, sizeof s)) != MRT_OK) {
            MRT_WAIT_CHECK(&w, "the group to take event %llu (%s)", (unsigned long long)s,
                           mrt_groups_strerror(rc) ? mrt_groups_strerror(rc) : mrt_strerror(rc));
            if (mrt_compute_egress_poll(f->c, rx_on, r, 256) == 0)
                sched_yield();
        }
    }
}

static mrt_group *standby(fixture *f, uint32_t members, uint64_t seed)
{
    mrt_group_standby_config sc;
    mrt_group_standby_config_default(&sc);
    sc.type = f->type;
    sc.members = members;
    sc.seed = seed;
    mrt_group *grp = NULL;
    ck_assert_int_eq(mrt_group_standby_create(f->g, &sc, &grp), MRT_OK);
    ck_assert_int_eq(mrt_group_subscribe(grp, MRT_COMPUTE_TO_EGRESS, (mrt_compute_ref){ 0, 0 }),
                     MRT_OK);
    return grp;
}

START_TEST(promotion_after_shard_failure_chain_verifies)
{
    static fixture f;
    static rx r;
    memset(&r, 0, sizeof r);
    fx_init(&f, 4);
    mrt_group *grp = standby(&f, 3, 11);
    mrt_group_standby_info in;
    ck_assert_int_eq(mrt_group_standby_info_get(grp, &in), MRT_OK);
    ck_assert_uint_eq(in.active, 0);
    ck_assert_uint_eq(in.syncs, 2);
    /* Distinct shards; one chain identity. */
    mrt_group_member_info m0, m1, m2;
    ck_assert_int_eq(mrt_group_member(grp, 0, &m0), MRT_OK);
    ck_assert_int_eq(mrt_group_member(grp, 1, &m1), MRT_OK);
    ck_assert_int_eq(mrt_group_member(grp, 2, &m2), MRT_OK);
    ck_assert(m0.ref.shard != m1.ref.shard && m1.ref.shard != m2.ref.shard &&
              m0.ref.shard != m2.ref.shard);
    ck_assert_uint_eq(m0.ref.id, m1.ref.id);

    inject(&f, grp, &r, 0, 300);
    rx_until(f.c, &r, 600);
    ck_assert_int_eq(mrt_group_standby_sync(grp), 2);
    uint64_t sp;
    ck_assert_int_eq(mrt_group_standby_sync_point(grp, 1, &sp), MRT_OK);
    ck_assert_uint_eq(sp, 300);
    ck_assert_int_eq(mrt_group_standby_sync_point(grp, 0, &sp), MRT_GROUPS_ENOSTANDBY);
    inject(&f, grp, &r, 300, 200);
    rx_until(f.c, &r, 1000);
    ck_assert_int_eq(mrt_group_standby_info_get(grp, &in), MRT_OK);
    ck_assert_uint_eq(in.buffered, 200); /* trimmed to the standbys' sync point */

    /* The active's core is lost: recovery promotes (and re-places the old active). */
    ck_assert_int_eq(mrt_runtime_fail_shard(f.rt, m0.ref.shard), MRT_OK);
    ck_assert_int_ge(mrt_groups_recovery_tick(f.g), 1);
    ck_assert_int_eq(mrt_group_standby_info_get(grp, &in), MRT_OK);
    ck_assert_uint_ne(in.active, 0);
    ck_assert_uint_eq(in.promotions, 1);
    ck_assert_uint_eq(in.replayed, 200);   /* by ingress index, exactly the unsynced suffix */
    ck_assert_uint_eq(in.suppressed, 400); /* two outputs per input, none emitted again */
    ck_assert_uint_ge(in.term, 2);
    mrt_group_member_info na;
    ck_assert_int_eq(mrt_group_member(grp, in.active, &na), MRT_OK);
    ck_assert(na.up);
    ck_assert_uint_ne(na.ref.shard, m0.ref.shard);
    /* The old active's slot was re-placed off the failed shard. */
    mrt_group_member_info old;
    ck_assert_int_eq(mrt_group_member(grp, 0, &old), MRT_OK);
    ck_assert_uint_ne(old.ref.shard, m0.ref.shard);

    inject(&f, grp, &r, 500, 300);
    rx_until(f.c, &r, 1600);
    /* One receiver, one chain: nothing missing, nothing twice, every link verified. */
    while (mrt_compute_egress_poll(f.c, rx_on, &r, 256) > 0)
        ;
    ck_assert_uint_eq(r.total, 1600);
    ck_assert_uint_eq(r.bad_chain, 0);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_uint_eq(r.chain[0].head.sequence, 1599);
    for (unsigned s = 0; s < 800; s++)
        ck_assert_msg(r.seen[s] == 2, "event %u: %u outputs", s, r.seen[s]);
    ck_assert_uint_eq(mrt_group_outstanding(grp), 0);
    fx_fini(&f);
}
END_TEST

START_TEST(promotion_without_healthy_standby_changes_nothing)
{
    static fixture f;
    static rx r;
    memset(&r, 0, sizeof r);
    fx_init(&f, 3);
    mrt_group *grp = standby(&f, 2, 12);
    inject(&f, grp, &r, 0, 50);
    rx_until(f.c, &r, 100);
    ck_assert_int_eq(mrt_group_mark_unhealthy(grp, 1), MRT_OK);
    mrt_group_standby_info before, after;
    ck_assert_int_eq(mrt_group_standby_info_get(grp, &before), MRT_OK);
    mrt_group_member_info a0, a1;
    ck_assert_int_eq(mrt_group_member(grp, 0, &a0), MRT_OK);
    ck_assert_int_eq(mrt_group_standby_promote(grp), MRT_GROUPS_ENOSTANDBY);
    ck_assert_int_eq(mrt_group_standby_info_get(grp, &after), MRT_OK);
    ck_assert_uint_eq(after.active, before.active);
    ck_assert_uint_eq(after.term, before.term);
    ck_assert_uint_eq(after.promotions, 0);
    ck_assert_uint_eq(after.buffered, before.buffered);
    ck_assert_int_eq(mrt_group_member(grp, 0, &a1), MRT_OK);
    ck_assert(a1.up);
    ck_assert_uint_eq(a1.term, a0.term);
    ck_assert_uint_eq(a1.ref.shard, a0.ref.shard);
    /* Still served by the same active, chain unbroken. */
    inject(&f, grp, &r, 50, 50);
    rx_until(f.c, &r, 200);
    ck_assert_uint_eq(r.bad_chain, 0);
    fx_fini(&f);
}
END_TEST

START_TEST(stale_term_event_rejected)
{
    static fixture f;
    static rx r;
    memset(&r, 0, sizeof r);
    fx_init(&f, 3);
    mrt_group *grp = standby(&f, 2, 13);
    inject(&f, grp, &r, 0, 20);
    rx_until(f.c, &r, 40);
    mrt_group_member_info a;
    ck_assert_int_eq(mrt_group_member(grp, 0, &a), MRT_OK);
    uint32_t old_term = a.term;
    ck_assert_int_eq(mrt_group_standby_promote(grp), MRT_OK);
    mrt_group_standby_info in;
    ck_assert_int_eq(mrt_group_standby_info_get(grp, &in), MRT_OK);
    ck_assert_uint_eq(in.active, 1);
    ck_assert_uint_eq(in.term, old_term + 1);
    mrt_group_member_info b;
    ck_assert_int_eq(mrt_group_member(grp, 1, &b), MRT_OK);
    ck_assert_uint_eq(b.term, old_term + 1);
    /* An event selected under the old term (a shard that missed the promotion). */
    mrt_groups_stats s0, s1;
    mrt_groups_stats_get(f.g, &s0);
    uint8_t buf[MRT_GROUPS_ENVELOPE + 8] = { 0 };
    grp_env e = { .magic = GRP_MAGIC, .gid = grp->gid, .sel = MRT_SRC_EXTERNAL, .idx = 1,
                  .term = old_term, .gen = grp->gen };
    memcpy(buf, &e, sizeof e);
    tc_inject(f.c, b.ref, buf, sizeof buf);
    mrt_wait w = mrt_wait_begin();
    do {
        MRT_WAIT_CHECK(&w, "the stale event to be rejected");
        sched_yield();
        mrt_groups_stats_get(f.g, &s1);
    } while (s1.stale == s0.stale);
    ck_assert_uint_eq(s1.stale, s0.stale + 1);
    /* The current term is served; the chain continues across the promotion. */
    inject(&f, grp, &r, 20, 20);
    rx_until(f.c, &r, 80);
    while (mrt_compute_egress_poll(f.c, rx_on, &r, 256) > 0)
        ;
    ck_assert_uint_eq(r.total, 80);
    ck_assert_uint_eq(r.bad_chain, 0);
    fx_fini(&f);
}
END_TEST

/* Freshness decides; the scheduler's ranking (a drained shard loses) only breaks ties. */
START_TEST(freshest_standby_wins_placement_breaks_ties)
{
    static fixture f;
    static rx r;
    memset(&r, 0, sizeof r);
    fx_init(&f, 4);
    for (int tie = 0; tie < 2; tie++) {
        mrt_group *grp = standby(&f, 3, 20 + (uint64_t)tie);
        uint64_t base = r.total;
        inject(&f, grp, &r, 1000 * (uint64_t)tie, 50);
        rx_until(f.c, &r, base + 100);
        ck_assert_int_eq(mrt_group_standby_sync(grp), 2);
        if (!tie) { /* member 1 gets 30 events fresher than member 2 */
            ck_assert_int_eq(mrt_group_mark_unhealthy(grp, 2), MRT_OK);
            inject(&f, grp, &r, 50, 30);
            rx_until(f.c, &r, base + 160);
            ck_assert_int_eq(mrt_group_standby_sync(grp), 1);
            atomic_store(&f.g->unhealthy[grp->gid][2], 0);
        }
        uint64_t sp1, sp2;
        ck_assert_int_eq(mrt_group_standby_sync_point(grp, 1, &sp1), MRT_OK);
        ck_assert_int_eq(mrt_group_standby_sync_point(grp, 2, &sp2), MRT_OK);
        ck_assert_uint_eq(sp1, tie ? 50 : 80);
        ck_assert_uint_eq(sp2, 50);
        inject(&f, grp, &r, 1000 * (uint64_t)tie + 100, 10);
        rx_until(f.c, &r, base + (tie ? 120 : 180));
        /* Member 1's shard drained: placement would rather take member 2. */
        mrt_group_member_info m1;
        ck_assert_int_eq(mrt_group_member(grp, 1, &m1), MRT_OK);
        ck_assert_int_eq(mrt_runtime_drain_shard(f.rt, m1.ref.shard, true), MRT_OK);
        ck_assert_int_eq(mrt_group_standby_promote(grp), MRT_OK);
        ck_assert_int_eq(mrt_runtime_drain_shard(f.rt, m1.ref.shard, false), MRT_OK);
        mrt_group_standby_info in;
        ck_assert_int_eq(mrt_group_standby_info_get(grp, &in), MRT_OK);
        ck_assert_uint_eq(in.active, tie ? 2 : 1);
        ck_assert_uint_eq(in.replayed, 10);
        ck_assert_uint_eq(in.suppressed, 2 * in.replayed);
        mrt_group_destroy(grp);
    }
    ck_assert_uint_eq(r.bad_chain, 0);
    fx_fini(&f);
}
END_TEST

/* A bounded buffer: standbys left too far behind need a full re-sync, never a bigger buffer. */
START_TEST(standby_too_far_behind_needs_resync)
{
    static fixture f;
    static rx r;
    memset(&r, 0, sizeof r);
    fx_init(&f, 3);
    mrt_group_standby_config sc;
    mrt_group_standby_config_default(&sc);
    sc.type = f.type;
    sc.members = 2;
    sc.seed = 30;
    sc.buffer_events = 100;
    mrt_group *grp = NULL;
    ck_assert_int_eq(mrt_group_standby_create(f.g, &sc, &grp), MRT_OK);
    ck_assert_int_eq(mrt_group_subscribe(grp, MRT_COMPUTE_TO_EGRESS, (mrt_compute_ref){ 0, 0 }),
                     MRT_OK);
    inject(&f, grp, &r, 0, 300);
    rx_until(f.c, &r, 600);
    uint64_t sp;
    ck_assert_int_eq(mrt_group_standby_sync_point(grp, 1, &sp), MRT_DAEMON_ERESYNC);
    mrt_group_standby_info in;
    ck_assert_int_eq(mrt_group_standby_info_get(grp, &in), MRT_OK);
    ck_assert_uint_le(in.buffered, 100);
    ck_assert_uint_ge(in.evicted, 1);
    ck_assert_uint_eq(in.resyncs, 1);
    ck_assert_int_eq(mrt_group_standby_promote(grp), MRT_GROUPS_ENOSTANDBY);
    ck_assert_int_eq(mrt_group_standby_info_get(grp, &in), MRT_OK);
    ck_assert_uint_eq(in.active, 0);
    ck_assert_uint_eq(in.promotions, 0);
    /* The full re-sync makes it a candidate again. */
    ck_assert_int_eq(mrt_group_standby_sync(grp), 1);
    ck_assert_int_eq(mrt_group_standby_sync_point(grp, 1, &sp), MRT_OK);
    ck_assert_uint_eq(sp, 300);
    inject(&f, grp, &r, 300, 40);
    rx_until(f.c, &r, 680);
    ck_assert_int_eq(mrt_group_standby_promote(grp), MRT_OK);
    ck_assert_int_eq(mrt_group_standby_info_get(grp, &in), MRT_OK);
    ck_assert_uint_eq(in.active, 1);
    ck_assert_uint_eq(in.replayed, 40);
    inject(&f, grp, &r, 340, 10);
    rx_until(f.c, &r, 700);
    ck_assert_uint_eq(r.bad_chain, 0);
    fx_fini(&f);
}
END_TEST

START_TEST(fork_group_lineage_and_chains)
{
    static fixture f;
    static rx r;
    memset(&r, 0, sizeof r);
    fx_init(&f, 4);
    /* A running parent, with a chain of its own. */
    mrt_compute_ref parent;
    ck_assert_int_eq(mrt_compute_spawn(f.c, f.plain, MRT_COMPUTE_ANY_SHARD, NULL, NULL, 0, &parent),
                     MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(f.c, parent, MRT_COMPUTE_TO_EGRESS,
                                           (mrt_compute_ref){ 0, 0 }),
                     MRT_OK);
    for (uint64_t s = 0; s < 10; s++)
        tc_inject(f.c, parent, &s, sizeof s);
    rx_until(f.c, &r, 20);

    mrt_group_fork_config fc;
    mrt_group_fork_config_default(&fc);
    fc.type = f.type;
    fc.forks = 3;
    fc.parent = parent;
    mrt_group *grp = NULL;
    ck_assert_int_eq(mrt_group_fork_create(f.g, &fc, &grp), MRT_OK);
    ck_assert_int_eq(mrt_group_subscribe(grp, MRT_COMPUTE_TO_EGRESS, (mrt_compute_ref){ 0, 0 }),
                     MRT_OK);
    static mrt_fork_record recs[3];
    unsigned n = 3;
    ck_assert_int_eq(mrt_group_fork_records(grp, recs, &n), MRT_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(mrt_group_fork_verify_lineage(grp), MRT_OK);
    for (unsigned k = 0; k < 3; k++) {
        ck_assert_uint_eq(recs[k].original_origin, parent.id);
        ck_assert_uint_eq(recs[k].fork_seq, 19); /* the parent's head: 20 outputs */
        uint8_t wire[MRT_FORK_RECORD_SIZE];
        mrt_fork_record back;
        mrt_fork_record_encode(&recs[k], wire);
        ck_assert_int_eq(mrt_fork_record_decode(wire, sizeof wire, &back), MRT_OK);
        mrt_group_member_info mi;
        ck_assert_int_eq(mrt_group_member(grp, k, &mi), MRT_OK);
        ck_assert_uint_eq(mi.ref.id, recs[k].forked_origin);
    }
    r.forks = recs;
    r.nforks = 3;
    /* Events through the forks (round robin), and more to the untouched parent. */
    inject(&f, grp, &r, 100, 60);
    for (uint64_t s = 10; s < 15; s++)
        tc_inject(f.c, parent, &s, sizeof s);
    rx_until(f.c, &r, 20 + 120 + 10);
    ck_assert_uint_eq(r.bad_chain, 0);
    ck_assert_uint_eq(r.n, 4);
    for (unsigned i = 0; i < r.n; i++) {
        if (r.id[i] == parent.id) {
            ck_assert_uint_eq(r.chain[i].head.sequence, 29);
        } else {
            ck_assert_uint_eq(r.count[i], 40);
            ck_assert_uint_eq(r.chain[i].head.sequence, 40); /* from the fork genesis (0) */
        }
    }
    fx_fini(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("groups_standby");
    TCase *t = tcase_create("standby");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, promotion_after_shard_failure_chain_verifies);
    tcase_add_test(t, promotion_without_healthy_standby_changes_nothing);
    tcase_add_test(t, stale_term_event_rejected);
    tcase_add_test(t, freshest_standby_wins_placement_breaks_ties);
    tcase_add_test(t, standby_too_far_behind_needs_resync);
    tcase_add_test(t, fork_group_lineage_and_chains);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return mrt_check_run(suite());
}
