/*
 * Balancer safety: circuit breaker transitions under an injected clock,
 * breaker reports reaching the registry and the next snapshot, max
 * connections (1,000,000 select+complete cycles never fail), leaked
 * selects visible in stats, zone preference and fallback, required tags,
 * and per-shard state surviving / re-keying across snapshot adoption.
 */
#include "balancer/lb_internal.h"
#include "meshrt/mrt_balancer.h"
#include "tests/check_main.h"
#include "tests/test_lb_helpers.h"

#include <check.h>
#include <string.h>

#define SEC 1000000000ull

typedef struct fx {
    mrt_lb_registry *r;
    mrt_lb_shard *sh;
    mrt_lb_snapshot *S;
} fx;

static void fx_init(fx *f, const mrt_lb_config *c)
{
    ck_assert_int_eq(mrt_lb_registry_create(NULL, c, &f->r), MRT_OK);
    ck_assert_int_eq(mrt_lb_shard_create(NULL, 3, &f->sh), MRT_OK);
    f->S = NULL;
}

static void fx_add(fx *f, uint32_t i, const char *zone, const char *const *tags, size_t ntags)
{
    mrt_lb_endpoint_spec s;
    uint8_t id[32];
    node(id, i);
    mrt_lb_endpoint_spec_init(&s, id);
    s.zone = zone;
    s.tags = tags;
    s.ntags = ntags;
    ck_assert_int_eq(mrt_lb_registry_add(f->r, &s, NULL), MRT_OK);
}

static void fx_compile_at(fx *f, uint64_t now)
{
    mrt_lb_snapshot *S;
    ck_assert_int_eq(mrt_lb_registry_compile(f->r, now, NULL, &S), MRT_OK);
    ck_assert_int_eq(mrt_lb_shard_adopt(f->sh, S), MRT_OK);
    mrt_lb_snapshot_free(f->S);
    f->S = S;
}

static void fx_free(fx *f)
{
    mrt_lb_shard_destroy(f->sh);
    mrt_lb_snapshot_free(f->S);
    mrt_lb_registry_destroy(f->r);
}

static mrt_lb_config cfg_of(mrt_lb_strategy st)
{
    mrt_lb_config c;
    mrt_lb_config_default(&c);
    c.strategy = st;
    c.recovery_ns = SEC;
    return c;
}

static mrt_lb_breaker_state brk(fx *f, uint32_t id, uint64_t now)
{
    mrt_lb_endpoint_shard_info inf;
    ck_assert_int_eq(mrt_lb_shard_endpoint(f->sh, id, now, &inf), MRT_OK);
    return inf.breaker;
}

/* one select + complete at `now` */
static int cycle(fx *f, bool ok, uint64_t now, uint32_t *id)
{
    mrt_lb_selection sel;
    int rc = mrt_lb_select(f->S, f->sh, NULL, now, &sel);
    if (rc != MRT_OK)
        return rc;
    if (id)
        *id = sel.endpoint_id;
    return mrt_lb_complete(f->sh, &sel, ok, 1000, now);
}

/* ------------------------------------------------------------------ breaker */

START_TEST(breaker_transitions)
{
    mrt_lb_config c = cfg_of(MRT_LB_ROUND_ROBIN);
    fx f;
    fx_init(&f, &c);
    fx_add(&f, 0, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    uint64_t t = 100;
    mrt_lb_selection sel, sel2;
    mrt_lb_breaker_report rep[4];

    /* closed: four failures keep it closed, the fifth opens it and reports */
    for (int i = 0; i < 4; i++)
        OK(cycle(&f, false, t, NULL));
    ck_assert_int_eq(brk(&f, 0, t), MRT_LB_BREAKER_CLOSED);
    ck_assert_uint_eq(mrt_lb_shard_drain_reports(f.sh, rep, 4), 0);
    OK(cycle(&f, true, t, NULL)); /* a success resets the count */
    for (int i = 0; i < 4; i++)
        OK(cycle(&f, false, t, NULL));
    ck_assert_int_eq(brk(&f, 0, t), MRT_LB_BREAKER_CLOSED);
    OK(cycle(&f, false, t, NULL));
    ck_assert_int_eq(brk(&f, 0, t), MRT_LB_BREAKER_OPEN);
    ck_assert_uint_eq(mrt_lb_shard_drain_reports(f.sh, rep, 4), 1);
    ck_assert_uint_eq(rep[0].endpoint_id, 0);
    ck_assert_uint_eq(rep[0].generation, 1);
    ck_assert_uint_eq(rep[0].opened_at_ns, t);

    /* open for the recovery time */
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, NULL, t + SEC - 1, &sel), MRT_LB_ECIRCUITOPEN);
    /* then half-open: exactly one probe */
    ck_assert_int_eq(brk(&f, 0, t + SEC), MRT_LB_BREAKER_HALF_OPEN);
    OK(mrt_lb_select(f.S, f.sh, NULL, t + SEC, &sel));
    ck_assert(sel.flags & MRT_LB_SEL_PROBE);
    ck_assert_int_eq(brk(&f, 0, t + SEC), MRT_LB_BREAKER_PROBING);
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, NULL, t + SEC + 5, &sel2), MRT_LB_ECIRCUITOPEN);
    /* probe success closes and resets */
    OK(mrt_lb_complete(f.sh, &sel, true, 1000, t + SEC + 10));
    ck_assert_int_eq(brk(&f, 0, t + SEC + 10), MRT_LB_BREAKER_CLOSED);
    OK(mrt_lb_select(f.S, f.sh, NULL, t + SEC + 11, &sel2));
    ck_assert(!(sel2.flags & MRT_LB_SEL_PROBE));
    OK(mrt_lb_complete(f.sh, &sel2, true, 1000, t + SEC + 11));

    /* open again, then a failed probe reopens with a fresh timestamp */
    t = 10 * SEC;
    for (int i = 0; i < 5; i++)
        OK(cycle(&f, false, t, NULL));
    ck_assert_int_eq(brk(&f, 0, t), MRT_LB_BREAKER_OPEN);
    OK(mrt_lb_select(f.S, f.sh, NULL, t + SEC, &sel));
    ck_assert(sel.flags & MRT_LB_SEL_PROBE);
    uint64_t t3 = t + SEC + 500;
    OK(mrt_lb_complete(f.sh, &sel, false, 1000, t3));
    mrt_lb_endpoint_shard_info inf;
    OK(mrt_lb_shard_endpoint(f.sh, 0, t3, &inf));
    ck_assert_int_eq(inf.breaker, MRT_LB_BREAKER_OPEN);
    ck_assert_uint_eq(inf.opened_at_ns, t3);
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, NULL, t3 + SEC - 1, &sel), MRT_LB_ECIRCUITOPEN);
    ck_assert_uint_eq(mrt_lb_shard_drain_reports(f.sh, rep, 4), 2);
    ck_assert_uint_eq(rep[1].opened_at_ns, t3);

    /* a probe that never completes is reclaimed after one recovery window */
    uint64_t t4 = t3 + SEC;
    mrt_lb_selection lost;
    OK(mrt_lb_select(f.S, f.sh, NULL, t4, &lost));
    ck_assert(lost.flags & MRT_LB_SEL_PROBE);
    mrt_lb_shard_stats st;
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.outstanding, 1);
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, NULL, t4 + SEC - 1, &sel), MRT_LB_ECIRCUITOPEN);
    OK(mrt_lb_select(f.S, f.sh, NULL, t4 + SEC, &sel));
    ck_assert(sel.flags & MRT_LB_SEL_PROBE);
    ck_assert_uint_ne(sel.probe_epoch, lost.probe_epoch);
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.probes_reclaimed, 1);
    ck_assert_uint_eq(st.outstanding, 1); /* the lost probe's reservation was released */
    ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 0), 1);
    /* the lost probe's late answer changes nothing */
    ck_assert_int_eq(mrt_lb_complete(f.sh, &lost, true, 1000, t4 + SEC + 1), MRT_LB_ESTALE);
    ck_assert_int_eq(brk(&f, 0, t4 + SEC + 1), MRT_LB_BREAKER_PROBING);
    ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 0), 1);
    OK(mrt_lb_complete(f.sh, &sel, true, 1000, t4 + SEC + 2));
    ck_assert_int_eq(brk(&f, 0, t4 + SEC + 2), MRT_LB_BREAKER_CLOSED);
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.outstanding, 0);
    ck_assert_uint_eq(st.stale_completes, 1);
    ck_assert_uint_eq(st.breaker_opens, 3);
    ck_assert_uint_eq(st.probes, 4);
    fx_free(&f);
}
END_TEST

/* A release (the sender's own backpressure) frees the reservation and teaches the balancer nothing. */
START_TEST(release_feeds_neither_breaker_nor_latency)
{
    mrt_lb_config c = cfg_of(MRT_LB_ROUND_ROBIN);
    fx f;
    fx_init(&f, &c);
    fx_add(&f, 0, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    uint64_t t = 100;
    mrt_lb_selection sel;
    mrt_lb_endpoint_shard_info inf;
    mrt_lb_shard_stats st;
    OK(cycle(&f, true, t, NULL)); /* latency EWMA 1000 */
    /* far beyond the threshold: released, never failed */
    for (int i = 0; i < 100; i++) {
        OK(mrt_lb_select(f.S, f.sh, NULL, t, &sel));
        ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 0), 1);
        OK(mrt_lb_release(f.sh, &sel));
        ck_assert_int_eq(mrt_lb_release(f.sh, &sel), MRT_LB_ECOMPLETED);
        ck_assert_int_eq(mrt_lb_complete(f.sh, &sel, false, 0, t), MRT_LB_ECOMPLETED);
    }
    OK(mrt_lb_shard_endpoint(f.sh, 0, t, &inf));
    ck_assert_int_eq(inf.breaker, MRT_LB_BREAKER_CLOSED);
    ck_assert_uint_eq(inf.consecutive_failures, 0);
    ck_assert_uint_eq(inf.inflight, 0);
    ck_assert(inf.latency_ewma_ns == 1000.0);
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.outstanding, 0);
    ck_assert_uint_eq(st.breaker_opens, 0);
    /* a released probe was never tried: half-open again, the next select probes */
    for (int i = 0; i < 5; i++)
        OK(cycle(&f, false, t, NULL));
    ck_assert_int_eq(brk(&f, 0, t), MRT_LB_BREAKER_OPEN);
    OK(mrt_lb_select(f.S, f.sh, NULL, t + SEC, &sel));
    ck_assert(sel.flags & MRT_LB_SEL_PROBE);
    OK(mrt_lb_release(f.sh, &sel));
    ck_assert_int_eq(brk(&f, 0, t + SEC), MRT_LB_BREAKER_HALF_OPEN);
    ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 0), 0);
    OK(mrt_lb_select(f.S, f.sh, NULL, t + SEC + 1, &sel));
    ck_assert(sel.flags & MRT_LB_SEL_PROBE);
    OK(mrt_lb_complete(f.sh, &sel, true, 1000, t + SEC + 2));
    ck_assert_int_eq(brk(&f, 0, t + SEC + 2), MRT_LB_BREAKER_CLOSED);
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.outstanding, 0);
    ck_assert_uint_eq(st.breaker_opens, 1);
    /* the reclaim scan, later, finds nothing to reclaim */
    ck_assert_int_eq(brk(&f, 0, t + 5 * SEC), MRT_LB_BREAKER_CLOSED);
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.probes_reclaimed, 0);
    fx_free(&f);
}
END_TEST

START_TEST(breaker_skips_open_endpoint)
{
    mrt_lb_config c = cfg_of(MRT_LB_ROUND_ROBIN);
    c.breaker_threshold = 2;
    fx f;
    fx_init(&f, &c);
    for (uint32_t i = 0; i < 3; i++)
        fx_add(&f, i, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    /* fail only endpoint 1, until it opens */
    int fails = 0;
    while (brk(&f, 1, 0) != MRT_LB_BREAKER_OPEN) {
        uint32_t id;
        mrt_lb_selection sel;
        OK(mrt_lb_select(f.S, f.sh, NULL, 0, &sel));
        id = sel.endpoint_id;
        OK(mrt_lb_complete(f.sh, &sel, id != 1, 1000, 0));
        fails += id == 1;
    }
    ck_assert_int_eq(fails, 2);
    for (int i = 0; i < 3000; i++) {
        uint32_t id;
        OK(cycle(&f, true, 1 + (uint64_t)i, &id));
        ck_assert_uint_ne(id, 1);
    }
    fx_free(&f);
}
END_TEST

START_TEST(breaker_report_reaches_next_snapshot)
{
    mrt_lb_config c = cfg_of(MRT_LB_RANDOM);
    c.breaker_threshold = 1;
    fx f;
    fx_init(&f, &c);
    for (uint32_t i = 0; i < 4; i++)
        fx_add(&f, i, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    uint64_t t = 5 * SEC;
    uint32_t victim;
    mrt_lb_selection sel;
    OK(mrt_lb_select(f.S, f.sh, NULL, t, &sel));
    victim = sel.endpoint_id;
    OK(mrt_lb_complete(f.sh, &sel, false, 1000, t));
    mrt_lb_breaker_report rep[2];
    ck_assert_uint_eq(mrt_lb_shard_drain_reports(f.sh, rep, 2), 1);
    /* the control plane applies it: snapshots compiled before t + recovery leave it out */
    OK(mrt_lb_registry_apply_report(f.r, &rep[0]));
    ck_assert_uint_eq(mrt_lb_registry_next_change_ns(f.r, t), t + SEC);
    fx_compile_at(&f, t + 1);
    ck_assert_uint_eq(mrt_lb_snapshot_size(f.S), 3);
    ck_assert_int_eq(mrt_lb_snapshot_slot_of(f.S, victim), -1);
    /* another shard that never saw a failure stops sending to it too */
    mrt_lb_shard *other;
    OK(mrt_lb_shard_create(NULL, 11, &other));
    OK(mrt_lb_shard_adopt(other, f.S));
    for (int i = 0; i < 2000; i++) {
        OK(mrt_lb_select(f.S, other, NULL, t + 2, &sel));
        ck_assert_uint_ne(sel.endpoint_id, victim);
        OK(mrt_lb_complete(other, &sel, true, 1000, t + 2));
    }
    /* after the recovery time it is back */
    ck_assert_uint_eq(mrt_lb_registry_next_change_ns(f.r, t + SEC), UINT64_MAX);
    fx_compile_at(&f, t + SEC);
    ck_assert_uint_eq(mrt_lb_snapshot_size(f.S), 4);
    OK(mrt_lb_shard_adopt(other, f.S));
    bool seen = false;
    for (int i = 0; i < 2000 && !seen; i++) {
        OK(mrt_lb_select(f.S, other, NULL, t + SEC, &sel));
        seen = sel.endpoint_id == victim;
        OK(mrt_lb_complete(other, &sel, true, 1000, t + SEC));
    }
    ck_assert(seen);
    /* a report for a removed endpoint is refused */
    uint8_t id[32];
    node(id, victim);
    OK(mrt_lb_registry_remove(f.r, id));
    ck_assert_int_eq(mrt_lb_registry_apply_report(f.r, &rep[0]), MRT_LB_ENOTFOUND);
    mrt_lb_shard_destroy(other);
    fx_free(&f);
}
END_TEST

START_TEST(report_buffer_bounded)
{
    mrt_lb_config c = cfg_of(MRT_LB_ROUND_ROBIN);
    c.breaker_threshold = 1;
    c.recovery_ns = 1000000; /* 1 ms, the minimum */
    fx f;
    fx_init(&f, &c);
    fx_add(&f, 0, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    uint64_t t = 0;
    for (int i = 0; i < 70; i++) { /* each failed probe reopens and reports */
        OK(cycle(&f, false, t, NULL));
        t += c.recovery_ns;
    }
    mrt_lb_breaker_report rep[80];
    ck_assert_uint_eq(mrt_lb_shard_drain_reports(f.sh, rep, 80), 64);
    ck_assert_uint_eq(rep[0].opened_at_ns, 6 * c.recovery_ns); /* the 6 oldest were dropped */
    ck_assert_uint_eq(rep[63].opened_at_ns, 69 * c.recovery_ns);
    mrt_lb_shard_stats st;
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.reports_dropped, 6);
    ck_assert_uint_eq(st.breaker_opens, 70);
    ck_assert_uint_eq(mrt_lb_shard_drain_reports(f.sh, rep, 80), 0);
    fx_free(&f);
}
END_TEST

START_TEST(breaker_with_least_connections_tree)
{
    mrt_lb_config c = cfg_of(MRT_LB_LEAST_CONNECTIONS);
    c.breaker_threshold = 1;
    fx f;
    fx_init(&f, &c);
    for (uint32_t i = 0; i < 3; i++)
        fx_add(&f, i, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    uint32_t id;
    OK(cycle(&f, false, 0, &id));
    ck_assert_uint_eq(id, 0); /* all idle: lowest slot */
    ck_assert_int_eq(brk(&f, 0, 0), MRT_LB_BREAKER_OPEN);
    for (int i = 0; i < 100; i++) {
        OK(cycle(&f, true, 1, &id));
        ck_assert_uint_ne(id, 0);
    }
    /* after recovery the tree offers it again, as a single probe */
    mrt_lb_selection sel, sel2;
    OK(mrt_lb_select(f.S, f.sh, NULL, SEC, &sel));
    ck_assert_uint_eq(sel.endpoint_id, 0);
    ck_assert(sel.flags & MRT_LB_SEL_PROBE);
    OK(mrt_lb_select(f.S, f.sh, NULL, SEC, &sel2));
    ck_assert_uint_eq(sel2.endpoint_id, 1);
    OK(mrt_lb_complete(f.sh, &sel2, true, 1, SEC));
    OK(mrt_lb_complete(f.sh, &sel, true, 1, SEC));
    /* every endpoint blocked by its breaker: circuit open */
    for (int k = 0; k < 3; k++) {
        OK(mrt_lb_select(f.S, f.sh, NULL, SEC + 1, &sel));
        OK(mrt_lb_complete(f.sh, &sel, false, 1, SEC + 1));
    }
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, NULL, SEC + 2, &sel), MRT_LB_ECIRCUITOPEN);
    fx_free(&f);
}
END_TEST

/* ------------------------------------------------------------------ max connections */

START_TEST(max_connections_never_leak)
{
    mrt_lb_config c = cfg_of(MRT_LB_ROUND_ROBIN);
    c.max_connections = 10;
    fx f;
    fx_init(&f, &c);
    for (uint32_t i = 0; i < 3; i++)
        fx_add(&f, i, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    /* the reference never released reservations: it stopped after max x members = 30 */
    for (int i = 0; i < 1000000; i++) {
        mrt_lb_selection sel;
        OK(mrt_lb_select(f.S, f.sh, NULL, (uint64_t)i, &sel));
        OK(mrt_lb_complete(f.sh, &sel, true, 1000, (uint64_t)i));
    }
    mrt_lb_shard_stats st;
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.selects, 1000000);
    ck_assert_uint_eq(st.outstanding, 0);
    fx_free(&f);
    /* every strategy: 100,000 cycles with max 10, one endpoint, never fail */
    for (int s = 0; s < MRT_LB_STRATEGY_COUNT; s++) {
        c = cfg_of((mrt_lb_strategy)s);
        c.max_connections = 10;
        fx_init(&f, &c);
        fx_add(&f, 0, NULL, NULL, 0);
        fx_compile_at(&f, 0);
        uint64_t key = 0;
        mrt_lb_request rq;
        mrt_lb_request_init(&rq);
        rq.routing_key = &key;
        rq.routing_key_len = sizeof key;
        for (int i = 0; i < 100000; i++) {
            mrt_lb_selection sel;
            key = (uint64_t)i;
            OK(mrt_lb_select(f.S, f.sh, &rq, 0, &sel));
            OK(mrt_lb_complete(f.sh, &sel, true, 1000, 0));
        }
        ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 0), 0);
        fx_free(&f);
    }
}
END_TEST

START_TEST(max_connections_blocks_and_releases)
{
    mrt_lb_config c = cfg_of(MRT_LB_POWER_OF_TWO);
    c.max_connections = 2;
    fx f;
    fx_init(&f, &c);
    for (uint32_t i = 0; i < 3; i++)
        fx_add(&f, i, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    mrt_lb_selection sel[7];
    for (int i = 0; i < 6; i++)
        OK(mrt_lb_select(f.S, f.sh, NULL, 0, &sel[i]));
    for (uint32_t i = 0; i < 3; i++)
        ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, i), 2);
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, NULL, 0, &sel[6]), MRT_LB_EMAXCONN);
    OK(mrt_lb_complete(f.sh, &sel[3], true, 1, 0));
    OK(mrt_lb_select(f.S, f.sh, NULL, 0, &sel[6]));
    ck_assert_uint_eq(sel[6].endpoint_id, sel[3].endpoint_id);
    /* a select without its complete is visible */
    mrt_lb_shard_stats st;
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.outstanding, 6);
    ck_assert_uint_eq(st.selects, 7);
    ck_assert_uint_eq(st.completes, 1);
    fx_free(&f);
}
END_TEST

/* ------------------------------------------------------------------ zones, tags */

START_TEST(zone_preference_and_fallback)
{
    mrt_lb_config c = cfg_of(MRT_LB_ROUND_ROBIN);
    c.breaker_threshold = 1;
    fx f;
    fx_init(&f, &c);
    const char *zn[6] = { "a", "a", "a", "b", "b", NULL };
    for (uint32_t i = 0; i < 6; i++)
        fx_add(&f, i, zn[i], NULL, 0);
    uint16_t za, zb, zc;
    OK(mrt_lb_registry_zone(f.r, "a", &za));
    OK(mrt_lb_registry_zone(f.r, "b", &zb));
    OK(mrt_lb_registry_zone(f.r, "c", &zc));
    fx_compile_at(&f, 0);
    mrt_lb_request rq;
    mrt_lb_request_init(&rq);
    mrt_lb_selection sel;
    uint32_t seen = 0;
    rq.zone = za;
    for (int i = 0; i < 300; i++) {
        OK(mrt_lb_select(f.S, f.sh, &rq, 0, &sel));
        ck_assert_uint_lt(sel.endpoint_id, 3);
        ck_assert(!(sel.flags & MRT_LB_SEL_FALLBACK));
        seen |= 1u << sel.endpoint_id;
        OK(mrt_lb_complete(f.sh, &sel, true, 1, 0));
    }
    ck_assert_uint_eq(seen, 7);
    rq.zone = zb;
    for (int i = 0; i < 300; i++) {
        OK(mrt_lb_select(f.S, f.sh, &rq, 0, &sel));
        ck_assert(sel.endpoint_id == 3 || sel.endpoint_id == 4);
        OK(mrt_lb_complete(f.sh, &sel, true, 1, 0));
    }
    /* a zone without endpoints falls back to all zones */
    rq.zone = zc;
    seen = 0;
    for (int i = 0; i < 60; i++) {
        OK(mrt_lb_select(f.S, f.sh, &rq, 0, &sel));
        ck_assert(sel.flags & MRT_LB_SEL_FALLBACK);
        seen |= 1u << sel.endpoint_id;
        OK(mrt_lb_complete(f.sh, &sel, true, 1, 0));
    }
    ck_assert_uint_eq(seen, 63);
    mrt_lb_shard_stats st;
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.zone_fallbacks, 60);
    /* zone a's breakers all open: fall back to the others */
    rq.zone = za;
    for (int i = 0; i < 3; i++) {
        OK(mrt_lb_select(f.S, f.sh, &rq, 0, &sel));
        OK(mrt_lb_complete(f.sh, &sel, false, 1, 0));
    }
    for (int i = 0; i < 100; i++) {
        OK(mrt_lb_select(f.S, f.sh, &rq, 1, &sel));
        ck_assert_uint_ge(sel.endpoint_id, 3);
        ck_assert(sel.flags & MRT_LB_SEL_FALLBACK);
        OK(mrt_lb_complete(f.sh, &sel, true, 1, 1));
    }
    /* fallback off: fail instead */
    c.zone_fallback = false;
    OK(mrt_lb_registry_set_config(f.r, &c));
    fx_compile_at(&f, 2); /* breaker state survives the adopt */
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, &rq, 2, &sel), MRT_LB_ECIRCUITOPEN);
    rq.zone = zc;
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, &rq, 2, &sel), MRT_LB_ENOZONE);
    rq.zone = zb;
    OK(mrt_lb_select(f.S, f.sh, &rq, 2, &sel));
    OK(mrt_lb_complete(f.sh, &sel, true, 1, 2));
    fx_free(&f);
}
END_TEST

START_TEST(required_tags)
{
    mrt_lb_config c = cfg_of(MRT_LB_RANDOM);
    fx f;
    fx_init(&f, &c);
    const char *gpu[1] = { "gpu" };
    const char *both[2] = { "gpu", "ssd" };
    const char *ssd[1] = { "ssd" };
    fx_add(&f, 0, "a", gpu, 1);
    fx_add(&f, 1, "a", both, 2);
    fx_add(&f, 2, "a", ssd, 1);
    fx_add(&f, 3, "b", both, 2);
    fx_add(&f, 4, "b", NULL, 0);
    uint64_t m_both, m_gpu;
    OK(mrt_lb_registry_declare_filter(f.r, both, 2, &m_both));
    OK(mrt_lb_registry_declare_filter(f.r, gpu, 1, &m_gpu));
    uint16_t za, zb;
    OK(mrt_lb_registry_zone(f.r, "a", &za));
    OK(mrt_lb_registry_zone(f.r, "b", &zb));
    fx_compile_at(&f, 0);
    struct {
        uint64_t mask;
        uint16_t zone;
        uint32_t allowed; /* bit per endpoint */
    } cases[] = {
        { m_both, MRT_LB_ZONE_NONE, (1u << 1) | (1u << 3) },
        { m_gpu, MRT_LB_ZONE_NONE, (1u << 0) | (1u << 1) | (1u << 3) },
        { m_both, 0, 1u << 1 },
        { m_both, 1, 1u << 3 },
        { m_gpu, 1, 1u << 3 },
        { 0, 1, (1u << 3) | (1u << 4) },
    };
    cases[2].zone = za;
    cases[3].zone = zb;
    cases[4].zone = zb;
    cases[5].zone = zb;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        mrt_lb_request rq;
        mrt_lb_request_init(&rq);
        rq.required_tags = cases[k].mask;
        rq.zone = cases[k].zone;
        uint32_t seen = 0;
        for (int i = 0; i < 400; i++) {
            mrt_lb_selection sel;
            OK(mrt_lb_select(f.S, f.sh, &rq, 0, &sel));
            seen |= 1u << sel.endpoint_id;
            OK(mrt_lb_complete(f.sh, &sel, true, 1, 0));
        }
        ck_assert_msg(seen == cases[k].allowed, "case %zu: %x vs %x", k, seen, cases[k].allowed);
    }
    /* a mask nobody declared, and one undeclared since */
    uint64_t b_ssd;
    OK(mrt_lb_registry_tag_bit(f.r, "ssd", &b_ssd));
    mrt_lb_request rq;
    mrt_lb_request_init(&rq);
    rq.required_tags = b_ssd;
    mrt_lb_selection sel;
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, &rq, 0, &sel), MRT_LB_EFILTER);
    OK(mrt_lb_registry_undeclare_filter(f.r, m_both));
    fx_compile_at(&f, 0);
    rq.required_tags = m_both;
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, &rq, 0, &sel), MRT_LB_EFILTER);
    /* declared but carried by no available endpoint */
    uint8_t id[32];
    node(id, 1);
    OK(mrt_lb_registry_set_enabled(f.r, id, false));
    node(id, 3);
    OK(mrt_lb_registry_set_health(f.r, id, MRT_LB_UNHEALTHY));
    node(id, 0);
    OK(mrt_lb_registry_set_health(f.r, id, MRT_LB_UNHEALTHY));
    fx_compile_at(&f, 0);
    rq.required_tags = m_gpu;
    ck_assert_int_eq(mrt_lb_select(f.S, f.sh, &rq, 0, &sel), MRT_LB_ENOTAGMATCH);
    fx_free(&f);
}
END_TEST

/* ------------------------------------------------------------------ adoption */

START_TEST(adopt_keeps_and_rekeys_state)
{
    mrt_lb_config c = cfg_of(MRT_LB_ROUND_ROBIN);
    c.breaker_threshold = 1;
    fx f;
    fx_init(&f, &c);
    for (uint32_t i = 0; i < 3; i++)
        fx_add(&f, i, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    mrt_lb_selection held[3];
    for (int i = 0; i < 3; i++)
        OK(mrt_lb_select(f.S, f.sh, NULL, 0, &held[i]));
    /* same membership: reservations and breakers carry over */
    uint8_t id[32];
    node(id, 2);
    OK(mrt_lb_registry_set_weight(f.r, id, 7));
    const mrt_lb_snapshot *old = f.S;
    mrt_lb_snapshot *S;
    OK(mrt_lb_registry_compile(f.r, 0, NULL, &S));
    OK(mrt_lb_shard_adopt(f.sh, S));
    mrt_lb_selection sel;
    ck_assert_int_eq(mrt_lb_select(old, f.sh, NULL, 0, &sel), MRT_LB_ENOTADOPTED);
    mrt_lb_snapshot_free(f.S);
    f.S = S;
    for (uint32_t i = 0; i < 3; i++)
        ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, i), 1);
    uint32_t e2 = 0;
    for (int i = 0; i < 3; i++)
        if (held[i].endpoint_id == 2)
            e2 = (uint32_t)i;
    OK(mrt_lb_complete(f.sh, &held[e2], false, 1000, 0)); /* opens endpoint 2's breaker */
    ck_assert_int_eq(brk(&f, 2, 0), MRT_LB_BREAKER_OPEN);
    fx_compile_at(&f, 0);
    ck_assert_int_eq(brk(&f, 2, 0), MRT_LB_BREAKER_OPEN);
    ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 2), 0);

    /* endpoint 1 removed, its id reused by a new endpoint: fresh state, stale completion */
    uint32_t e1 = 0;
    for (int i = 0; i < 3; i++)
        if (held[i].endpoint_id == 1)
            e1 = (uint32_t)i;
    node(id, 1);
    OK(mrt_lb_registry_remove(f.r, id));
    mrt_lb_endpoint_spec s;
    node(id, 50);
    mrt_lb_endpoint_spec_init(&s, id);
    uint32_t nid;
    OK(mrt_lb_registry_add(f.r, &s, &nid));
    ck_assert_uint_eq(nid, 1);
    fx_compile_at(&f, 0);
    ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 1), 0);
    ck_assert_int_eq(mrt_lb_complete(f.sh, &held[e1], true, 1000, 0), MRT_LB_ESTALE);
    ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 1), 0);
    mrt_lb_shard_stats st;
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.stale_completes, 1);
    ck_assert_uint_eq(st.outstanding, 1); /* endpoint 0's */
    for (int i = 0; i < 3; i++)
        if (held[i].endpoint_id == 0)
            OK(mrt_lb_complete(f.sh, &held[i], true, 1000, 0));
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.outstanding, 0);
    ck_assert_uint_eq(st.adopts, 4);
    fx_free(&f);
}
END_TEST

START_TEST(state_parked_while_out_of_snapshot)
{
    mrt_lb_config c = cfg_of(MRT_LB_ROUND_ROBIN);
    c.breaker_threshold = 1;
    fx f;
    fx_init(&f, &c);
    for (uint32_t i = 0; i < 3; i++)
        fx_add(&f, i, NULL, NULL, 0);
    fx_compile_at(&f, 0);
    mrt_lb_selection held[3];
    for (int i = 0; i < 3; i++)
        OK(mrt_lb_select(f.S, f.sh, NULL, 0, &held[i]));
    uint32_t k0 = 0, k1 = 0;
    for (uint32_t i = 0; i < 3; i++) {
        if (held[i].endpoint_id == 0)
            k0 = i;
        if (held[i].endpoint_id == 1)
            k1 = i;
    }
    /* endpoint 0 leaves the snapshot with a request in flight; endpoint 1 with an open breaker */
    OK(mrt_lb_complete(f.sh, &held[k1], false, 10, 0));
    ck_assert_int_eq(brk(&f, 1, 0), MRT_LB_BREAKER_OPEN);
    uint8_t id[32];
    node(id, 0);
    OK(mrt_lb_registry_set_health(f.r, id, MRT_LB_UNHEALTHY));
    node(id, 1);
    OK(mrt_lb_registry_set_enabled(f.r, id, false));
    fx_compile_at(&f, 0);
    ck_assert_uint_eq(mrt_lb_snapshot_size(f.S), 1);
    ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 0), 1); /* parked, not lost */
    OK(mrt_lb_complete(f.sh, &held[k0], true, 10, 0));  /* not stale: same endpoint */
    ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 0), 0);
    /* breaker time passes while parked: it is half-open when it comes back */
    ck_assert_int_eq(brk(&f, 1, SEC), MRT_LB_BREAKER_HALF_OPEN);
    node(id, 0);
    OK(mrt_lb_registry_set_health(f.r, id, MRT_LB_HEALTHY));
    node(id, 1);
    OK(mrt_lb_registry_set_enabled(f.r, id, true));
    fx_compile_at(&f, SEC);
    ck_assert_uint_eq(mrt_lb_snapshot_size(f.S), 3);
    ck_assert_int_eq(brk(&f, 1, SEC), MRT_LB_BREAKER_HALF_OPEN);
    ck_assert_uint_eq(mrt_lb_shard_inflight(f.sh, 2), 1);
    int probes = 0, ones = 0;
    for (int i = 0; i < 6; i++) {
        mrt_lb_selection sel;
        OK(mrt_lb_select(f.S, f.sh, NULL, SEC, &sel));
        probes += (sel.flags & MRT_LB_SEL_PROBE) != 0;
        if (sel.endpoint_id == 1 && ones++ == 0)
            ck_assert(sel.flags & MRT_LB_SEL_PROBE); /* its first pick is the probe */
        OK(mrt_lb_complete(f.sh, &sel, true, 10, SEC));
    }
    ck_assert_int_eq(ones, 2);
    ck_assert_int_eq(probes, 1);
    ck_assert_int_eq(brk(&f, 1, SEC), MRT_LB_BREAKER_CLOSED);
    for (int i = 0; i < 3; i++)
        if (held[i].endpoint_id == 2)
            OK(mrt_lb_complete(f.sh, &held[i], true, 10, SEC));
    mrt_lb_shard_stats st;
    mrt_lb_shard_stats_get(f.sh, &st);
    ck_assert_uint_eq(st.outstanding, 0);
    ck_assert_uint_eq(st.stale_completes, 0);
    fx_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("balancer_safety");
    TCase *tc = tcase_create("safety");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, breaker_transitions);
    tcase_add_test(tc, release_feeds_neither_breaker_nor_latency);
    tcase_add_test(tc, breaker_skips_open_endpoint);
    tcase_add_test(tc, breaker_report_reaches_next_snapshot);
    tcase_add_test(tc, report_buffer_bounded);
    tcase_add_test(tc, breaker_with_least_connections_tree);
    tcase_add_test(tc, max_connections_never_leak);
    tcase_add_test(tc, max_connections_blocks_and_releases);
    tcase_add_test(tc, zone_preference_and_fallback);
    tcase_add_test(tc, required_tags);
    tcase_add_test(tc, adopt_keeps_and_rekeys_state);
    tcase_add_test(tc, state_parked_while_out_of_snapshot);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
