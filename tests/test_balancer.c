/*
 * Balancer: registry validation (every bad input returns its own code and
 * leaves the registry byte-for-byte unchanged), load score, config checks,
 * select/complete error codes, strerror.
 */
#include "balancer/lb_internal.h"
#include "meshrt/mrt_balancer.h"
#include "tests/check_main.h"
#include "tests/test_lb_helpers.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

static void spec_for(mrt_lb_endpoint_spec *s, uint32_t i)
{
    uint8_t id[MRT_LB_NODE_ID_LEN];
    node(id, i);
    mrt_lb_endpoint_spec_init(s, id);
}

/* Everything observable about a registry, hashed (white-box). */
static uint64_t fingerprint(const mrt_lb_registry *r)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, &r->count, sizeof r->count);
    XXH3_64bits_update(&st, &r->next_id, sizeof r->next_id);
    XXH3_64bits_update(&st, &r->nfree, sizeof r->nfree);
    XXH3_64bits_update(&st, &r->cfg, sizeof r->cfg);
    if (r->next_id)
        XXH3_64bits_update(&st, r->eps, (size_t)r->next_id * sizeof(lb_ep));
    if (r->nfree)
        XXH3_64bits_update(&st, r->free_ids, (size_t)r->nfree * sizeof(uint32_t));
    if (r->index_cap)
        XXH3_64bits_update(&st, r->index, (size_t)r->index_cap * sizeof(uint32_t));
    XXH3_64bits_update(&st, r->tag_names, sizeof r->tag_names);
    XXH3_64bits_update(&st, r->tag_refs, sizeof r->tag_refs);
    XXH3_64bits_update(&st, &r->tag_used, sizeof r->tag_used);
    XXH3_64bits_update(&st, r->zone_names, sizeof r->zone_names);
    XXH3_64bits_update(&st, &r->nzones, sizeof r->nzones);
    XXH3_64bits_update(&st, r->filter_masks, sizeof r->filter_masks);
    XXH3_64bits_update(&st, r->filter_refs, sizeof r->filter_refs);
    XXH3_64bits_update(&st, &r->nfilters, sizeof r->nfilters);
    return XXH3_64bits_digest(&st);
}

/* A registry with a few endpoints, zones and tags, to refuse things against. */
static mrt_lb_registry *populated(void)
{
    mrt_lb_registry *r;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, NULL, &r), MRT_OK);
    const char *tags_a[] = { "gpu", "ssd" };
    const char *tags_b[] = { "ssd" };
    for (uint32_t i = 0; i < 8; i++) {
        mrt_lb_endpoint_spec s;
        spec_for(&s, i);
        s.zone = (i & 1) ? "eu-1" : "us-1";
        s.tags = (i & 2) ? tags_a : tags_b;
        s.ntags = (i & 2) ? 2 : 1;
        s.weight = 10 + i;
        ck_assert_int_eq(mrt_lb_registry_add(r, &s, NULL), MRT_OK);
    }
    const char *f[] = { "gpu" };
    uint64_t m;
    ck_assert_int_eq(mrt_lb_registry_declare_filter(r, f, 1, &m), MRT_OK);
    return r;
}

#define REFUSED(r, call, code)                                                                     \
    do {                                                                                           \
        uint64_t fp_ = fingerprint(r);                                                             \
        ck_assert_int_eq((call), (code));                                                          \
        ck_assert_msg(fingerprint(r) == fp_, "registry changed by refused %s", #call);            \
    } while (0)

START_TEST(registry_add_get_remove)
{
    mrt_lb_registry *r = populated();
    ck_assert_uint_eq(mrt_lb_registry_count(r), 8);
    uint8_t id[32];
    node(id, 3);
    mrt_lb_endpoint_info inf;
    ck_assert_int_eq(mrt_lb_registry_get(r, id, &inf), MRT_OK);
    ck_assert_int_eq(inf.weight, 13);
    ck_assert_uint_eq(inf.id, 3);
    ck_assert_uint_eq(inf.generation, 1);
    uint64_t gpu, ssd;
    ck_assert_int_eq(mrt_lb_registry_tag_bit(r, "gpu", &gpu), MRT_OK);
    ck_assert_int_eq(mrt_lb_registry_tag_bit(r, "ssd", &ssd), MRT_OK);
    ck_assert_uint_eq(inf.tags, gpu | ssd);
    uint16_t eu;
    ck_assert_int_eq(mrt_lb_registry_zone(r, "eu-1", &eu), MRT_OK);
    ck_assert_uint_eq(inf.zone, eu);
    /* remove, then the id is reused by the next add with a new generation */
    ck_assert_int_eq(mrt_lb_registry_remove(r, id), MRT_OK);
    ck_assert_int_eq(mrt_lb_registry_get(r, id, &inf), MRT_LB_ENOTFOUND);
    ck_assert_uint_eq(mrt_lb_registry_count(r), 7);
    mrt_lb_endpoint_spec s;
    spec_for(&s, 100);
    uint32_t nid;
    ck_assert_int_eq(mrt_lb_registry_add(r, &s, &nid), MRT_OK);
    ck_assert_uint_eq(nid, 3);
    ck_assert_int_eq(mrt_lb_registry_get(r, s.node_id, &inf), MRT_OK);
    ck_assert_uint_eq(inf.generation, 2);
    /* every other endpoint is still found through the index after the deletion */
    for (uint32_t i = 0; i < 8; i++) {
        if (i == 3)
            continue;
        node(id, i);
        ck_assert_int_eq(mrt_lb_registry_get(r, id, &inf), MRT_OK);
        ck_assert_uint_eq(inf.id, i);
    }
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(registry_many_endpoints_index)
{
    /* index growth and backward-shift deletion under churn */
    mrt_lb_registry *r;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, NULL, &r), MRT_OK);
    for (uint32_t i = 0; i < 5000; i++) {
        mrt_lb_endpoint_spec s;
        spec_for(&s, i);
        ck_assert_int_eq(mrt_lb_registry_add(r, &s, NULL), MRT_OK);
    }
    uint8_t id[32];
    for (uint32_t i = 0; i < 5000; i += 3) {
        node(id, i);
        ck_assert_int_eq(mrt_lb_registry_remove(r, id), MRT_OK);
    }
    for (uint32_t i = 0; i < 5000; i++) {
        node(id, i);
        mrt_lb_endpoint_info inf;
        ck_assert_int_eq(mrt_lb_registry_get(r, id, &inf), i % 3 == 0 ? MRT_LB_ENOTFOUND : MRT_OK);
    }
    ck_assert_uint_eq(mrt_lb_registry_count(r), 5000 - 1667);
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(registry_refuses_bad_input_unchanged)
{
    mrt_lb_registry *r = populated();
    mrt_lb_endpoint_spec s;
    uint8_t id[32];

    /* duplicate id */
    spec_for(&s, 2);
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_EDUPLICATE);
    /* weights */
    spec_for(&s, 50);
    s.weight = 0;
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_EWEIGHT);
    s.weight = -5;
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_EWEIGHT);
    s.weight = MRT_LB_MAX_WEIGHT + 1;
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_EWEIGHT);
    node(id, 1);
    REFUSED(r, mrt_lb_registry_set_weight(r, id, 0), MRT_LB_EWEIGHT);
    REFUSED(r, mrt_lb_registry_set_weight(r, id, -1), MRT_LB_EWEIGHT);
    /* metrics */
    mrt_lb_metrics bad[7];
    memset(bad, 0, sizeof bad);
    bad[0].cpu = NAN;
    bad[1].cpu = 1.5;
    bad[2].memory = -0.1;
    bad[3].active_connections = -1;
    bad[4].avg_response_ms = INFINITY;
    bad[5].error_rate = 2.0;
    bad[6].bandwidth = NAN;
    for (int k = 0; k < 7; k++) {
        spec_for(&s, 50);
        s.metrics = bad[k];
        REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_EMETRIC);
        REFUSED(r, mrt_lb_registry_update_metrics(r, id, &bad[k]), MRT_LB_EMETRIC);
        spec_for(&s, 1);
        s.metrics = bad[k];
        REFUSED(r, mrt_lb_registry_update(r, &s), MRT_LB_EMETRIC);
    }
    /* health */
    spec_for(&s, 50);
    s.health = (mrt_lb_health)7;
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_EHEALTH);
    REFUSED(r, mrt_lb_registry_set_health(r, id, (mrt_lb_health)-1), MRT_LB_EHEALTH);
    /* names */
    char longname[80];
    memset(longname, 'x', sizeof longname);
    longname[MRT_LB_NAME_MAX + 1] = '\0';
    const char *badtags[] = { "ok", "" };
    spec_for(&s, 50);
    s.tags = badtags;
    s.ntags = 2;
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_ENAME);
    badtags[1] = longname;
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_ENAME);
    spec_for(&s, 50);
    s.zone = longname;
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_ENAME);
    uint16_t z;
    REFUSED(r, mrt_lb_registry_zone(r, "", &z), MRT_LB_ENAME);
    /* unknown endpoint */
    node(id, 999);
    REFUSED(r, mrt_lb_registry_remove(r, id), MRT_LB_ENOTFOUND);
    REFUSED(r, mrt_lb_registry_set_health(r, id, MRT_LB_HEALTHY), MRT_LB_ENOTFOUND);
    REFUSED(r, mrt_lb_registry_set_weight(r, id, 5), MRT_LB_ENOTFOUND);
    REFUSED(r, mrt_lb_registry_set_enabled(r, id, false), MRT_LB_ENOTFOUND);
    mrt_lb_metrics okm;
    memset(&okm, 0, sizeof okm);
    REFUSED(r, mrt_lb_registry_update_metrics(r, id, &okm), MRT_LB_ENOTFOUND);
    spec_for(&s, 999);
    REFUSED(r, mrt_lb_registry_update(r, &s), MRT_LB_ENOTFOUND);
    mrt_lb_breaker_report rep = { .endpoint_id = 3, .generation = 9, .opened_at_ns = 1 };
    REFUSED(r, mrt_lb_registry_apply_report(r, &rep), MRT_LB_ENOTFOUND);
    rep.endpoint_id = 12345;
    REFUSED(r, mrt_lb_registry_apply_report(r, &rep), MRT_LB_ENOTFOUND);
    /* filters */
    REFUSED(r, mrt_lb_registry_undeclare_filter(r, 0x8000), MRT_LB_ENOTFOUND);
    uint64_t m;
    REFUSED(r, mrt_lb_registry_declare_filter(r, badtags, 0, &m), MRT_LB_EINVAL);
    /* NULLs */
    REFUSED(r, mrt_lb_registry_add(r, NULL, NULL), MRT_LB_EINVAL);
    REFUSED(r, mrt_lb_registry_remove(r, NULL), MRT_LB_EINVAL);
    REFUSED(r, mrt_lb_registry_update_metrics(r, id, NULL), MRT_LB_EINVAL);
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(registry_tag_limit)
{
    mrt_lb_registry *r;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, NULL, &r), MRT_OK);
    char names[65][16];
    const char *ptr[65];
    for (int i = 0; i < 65; i++) {
        snprintf(names[i], sizeof names[i], "tag%d", i);
        ptr[i] = names[i];
    }
    /* 64 distinct tags over 32 endpoints fill the table */
    for (uint32_t i = 0; i < 32; i++) {
        mrt_lb_endpoint_spec s;
        spec_for(&s, i);
        s.tags = &ptr[2 * i];
        s.ntags = 2;
        ck_assert_int_eq(mrt_lb_registry_add(r, &s, NULL), MRT_OK);
    }
    mrt_lb_endpoint_spec s;
    spec_for(&s, 40);
    s.tags = &ptr[64];
    s.ntags = 1;
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_ETOOMANYTAGS);
    REFUSED(r, mrt_lb_registry_declare_filter(r, &ptr[64], 1, &(uint64_t){ 0 }),
            MRT_LB_ETOOMANYTAGS);
    /* an endpoint with more than 64 tags in one spec */
    const char *many[70];
    for (int i = 0; i < 70; i++)
        many[i] = "same";
    spec_for(&s, 41);
    s.tags = many;
    s.ntags = 70;
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_ETOOMANYTAGS);
    /* an update that swaps its own private tags for a new one fits */
    spec_for(&s, 0);
    s.tags = &ptr[64];
    s.ntags = 1;
    ck_assert_int_eq(mrt_lb_registry_update(r, &s), MRT_OK);
    uint64_t b;
    ck_assert_int_eq(mrt_lb_registry_tag_bit(r, "tag64", &b), MRT_OK);
    ck_assert_int_eq(mrt_lb_registry_tag_bit(r, "tag0", &b), MRT_LB_ENOTFOUND);
    ck_assert_int_eq(mrt_lb_registry_tag_bit(r, "tag1", &b), MRT_LB_ENOTFOUND);
    /* removing an endpoint frees its tags */
    uint8_t id[32];
    node(id, 1);
    ck_assert_int_eq(mrt_lb_registry_remove(r, id), MRT_OK);
    spec_for(&s, 40);
    s.tags = &ptr[0];
    s.ntags = 2;
    ck_assert_int_eq(mrt_lb_registry_add(r, &s, NULL), MRT_OK);
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(registry_zone_and_filter_limits)
{
    mrt_lb_registry *r;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, NULL, &r), MRT_OK);
    char name[32];
    for (int i = 0; i < MRT_LB_MAX_ZONES; i++) {
        snprintf(name, sizeof name, "zone-%d", i);
        uint16_t z;
        ck_assert_int_eq(mrt_lb_registry_zone(r, name, &z), MRT_OK);
        ck_assert_uint_eq(z, (unsigned)i);
    }
    uint16_t z;
    REFUSED(r, mrt_lb_registry_zone(r, "one-more", &z), MRT_LB_ETOOMANYZONES);
    ck_assert_int_eq(mrt_lb_registry_zone(r, "zone-7", &z), MRT_OK);
    ck_assert_uint_eq(z, 7);
    mrt_lb_endpoint_spec s;
    spec_for(&s, 1);
    s.zone = "one-more";
    REFUSED(r, mrt_lb_registry_add(r, &s, NULL), MRT_LB_ETOOMANYZONES);

    char tn[40][16];
    for (int i = 0; i < MRT_LB_MAX_FILTERS; i++) {
        snprintf(tn[i], sizeof tn[i], "f%d", i);
        const char *t[1] = { tn[i] };
        uint64_t m;
        ck_assert_int_eq(mrt_lb_registry_declare_filter(r, t, 1, &m), MRT_OK);
    }
    const char *t2[2] = { "f0", "f1" };
    uint64_t m;
    REFUSED(r, mrt_lb_registry_declare_filter(r, t2, 2, &m), MRT_LB_ECAPACITY);
    /* re-declaring an existing set is a reference, not a new filter */
    const char *t1[1] = { "f3" };
    uint64_t m3;
    ck_assert_int_eq(mrt_lb_registry_declare_filter(r, t1, 1, &m3), MRT_OK);
    ck_assert_int_eq(mrt_lb_registry_undeclare_filter(r, m3), MRT_OK);
    ck_assert_int_eq(mrt_lb_registry_undeclare_filter(r, m3), MRT_OK);
    ck_assert_int_eq(mrt_lb_registry_undeclare_filter(r, m3), MRT_LB_ENOTFOUND);
    ck_assert_int_eq(mrt_lb_registry_declare_filter(r, t2, 2, &m), MRT_OK);
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(config_validation)
{
    mrt_lb_config c;
    mrt_lb_registry *r = NULL;
    mrt_lb_config_default(&c);
    ck_assert_int_eq(c.vnodes, 150);
    ck_assert_int_eq(c.maglev_size, 65537);
    ck_assert_int_eq(c.breaker_threshold, 5);
    ck_assert_uint_eq(c.recovery_ns, 30000000000ull);
    mrt_lb_config bad;
    bad = c; bad.vnodes = 0;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &bad, &r), MRT_LB_ECONFIG);
    bad = c; bad.maglev_size = 65536;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &bad, &r), MRT_LB_ECONFIG);
    bad = c; bad.recovery_ns = 999999;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &bad, &r), MRT_LB_ECONFIG);
    bad = c; bad.latency_alpha = 0;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &bad, &r), MRT_LB_ECONFIG);
    bad = c; bad.latency_alpha = NAN;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &bad, &r), MRT_LB_ECONFIG);
    bad = c; bad.strategy = (mrt_lb_strategy)99;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &bad, &r), MRT_LB_ECONFIG);
    bad = c; bad.wrr_max_period = 3;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &bad, &r), MRT_LB_ECONFIG);
    ck_assert_ptr_null(r);
    bad = c; bad.recovery_ns = 1000000;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &bad, &r), MRT_OK);
    bad.maglev_size = 100;
    REFUSED(r, mrt_lb_registry_set_config(r, &bad), MRT_LB_ECONFIG);
    mrt_lb_registry_destroy(r);
    ck_assert_int_eq(mrt_lb_registry_create(NULL, NULL, NULL), MRT_LB_EINVAL);
}
END_TEST

START_TEST(load_score_formula)
{
    mrt_lb_metrics m = { .cpu = 0.5, .memory = 0.25, .active_connections = 5000,
                         .avg_response_ms = 250, .error_rate = 0.1 };
    double want = 0.3 * 0.5 + 0.2 * 0.25 + 0.2 * 0.5 + 0.15 * 0.25 + 0.15 * 0.1;
    ck_assert_double_eq_tol(mrt_lb_load_score(&m), want, 1e-12);
    m.active_connections = 1e9; /* capped at 1 */
    m.avg_response_ms = 1e9;
    want = 0.3 * 0.5 + 0.2 * 0.25 + 0.2 + 0.15 + 0.15 * 0.1;
    ck_assert_double_eq_tol(mrt_lb_load_score(&m), want, 1e-12);
    /* stored with the endpoint and in snapshots */
    mrt_lb_registry *r;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, NULL, &r), MRT_OK);
    mrt_lb_endpoint_spec s;
    spec_for(&s, 1);
    s.metrics = m;
    ck_assert_int_eq(mrt_lb_registry_add(r, &s, NULL), MRT_OK);
    mrt_lb_snapshot *S;
    ck_assert_int_eq(mrt_lb_registry_compile(r, 0, NULL, &S), MRT_OK);
    mrt_lb_slot_info si;
    ck_assert_int_eq(mrt_lb_snapshot_slot(S, 0, &si), MRT_OK);
    ck_assert_double_eq_tol(si.load_score, want, 1e-12);
    ck_assert_uint_eq(si.weight, 200); /* healthy: x2 half units */
    ck_assert_int_eq(mrt_lb_snapshot_slot(S, 1, &si), MRT_LB_EINVAL);
    mrt_lb_snapshot_free(S);
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(availability_in_snapshot)
{
    mrt_lb_registry *r = populated();
    uint8_t id[32];
    node(id, 0);
    ck_assert_int_eq(mrt_lb_registry_set_health(r, id, MRT_LB_UNHEALTHY), MRT_OK);
    node(id, 1);
    ck_assert_int_eq(mrt_lb_registry_set_health(r, id, MRT_LB_UNKNOWN), MRT_OK);
    node(id, 2);
    ck_assert_int_eq(mrt_lb_registry_set_enabled(r, id, false), MRT_OK);
    node(id, 3);
    ck_assert_int_eq(mrt_lb_registry_set_health(r, id, MRT_LB_DEGRADED), MRT_OK);
    mrt_lb_snapshot *S;
    ck_assert_int_eq(mrt_lb_registry_compile(r, 0, NULL, &S), MRT_OK);
    ck_assert_uint_eq(mrt_lb_snapshot_size(S), 5);
    ck_assert_int_eq(mrt_lb_snapshot_slot_of(S, 0), -1);
    ck_assert_int_eq(mrt_lb_snapshot_slot_of(S, 1), -1);
    ck_assert_int_eq(mrt_lb_snapshot_slot_of(S, 2), -1);
    int64_t s3 = mrt_lb_snapshot_slot_of(S, 3);
    ck_assert_int_ge(s3, 0);
    mrt_lb_slot_info si;
    ck_assert_int_eq(mrt_lb_snapshot_slot(S, (uint32_t)s3, &si), MRT_OK);
    ck_assert_uint_eq(si.weight, 13); /* degraded: x1 half unit = half of healthy */
    uint64_t v1 = mrt_lb_snapshot_version(S);
    mrt_lb_snapshot *S2;
    ck_assert_int_eq(mrt_lb_registry_compile(r, 0, NULL, &S2), MRT_OK);
    ck_assert_uint_gt(mrt_lb_snapshot_version(S2), v1);
    ck_assert_uint_gt(mrt_lb_snapshot_bytes(S2), 0);
    mrt_lb_snapshot_free(S);
    mrt_lb_snapshot_free(S2);
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(select_errors)
{
    mrt_lb_registry *r;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, NULL, &r), MRT_OK);
    mrt_lb_shard *sh;
    ck_assert_int_eq(mrt_lb_shard_create(NULL, 1, &sh), MRT_OK);
    mrt_lb_selection sel;
    mrt_lb_snapshot *S;

    /* no endpoints at all */
    ck_assert_int_eq(mrt_lb_registry_compile(r, 0, NULL, &S), MRT_OK);
    ck_assert_int_eq(mrt_lb_select(S, sh, NULL, 0, &sel), MRT_LB_ENOTADOPTED);
    ck_assert_int_eq(mrt_lb_shard_adopt(sh, S), MRT_OK);
    ck_assert_int_eq(mrt_lb_select(S, sh, NULL, 0, &sel), MRT_LB_ENOENDPOINTS);
    mrt_lb_request any;
    mrt_lb_request_init(&any);
    any.required_tags = 0x10; /* undeclared, zone unknown: the emptiness is reported first */
    any.zone = 3;
    ck_assert_int_eq(mrt_lb_select(S, sh, &any, 0, &sel), MRT_LB_ENOENDPOINTS);
    mrt_lb_snapshot_free(S);

    /* endpoints, none available */
    for (uint32_t i = 0; i < 3; i++) {
        mrt_lb_endpoint_spec s;
        spec_for(&s, i);
        s.health = i == 0 ? MRT_LB_UNHEALTHY : MRT_LB_UNKNOWN;
        s.enabled = i != 2;
        const char *t[1] = { "gpu" };
        s.tags = t;
        s.ntags = (i == 1);
        ck_assert_int_eq(mrt_lb_registry_add(r, &s, NULL), MRT_OK);
    }
    ck_assert_int_eq(mrt_lb_registry_compile(r, 0, NULL, &S), MRT_OK);
    ck_assert_int_eq(mrt_lb_shard_adopt(sh, S), MRT_OK);
    ck_assert_int_eq(mrt_lb_select(S, sh, NULL, 0, &sel), MRT_LB_EALLUNHEALTHY);
    ck_assert_int_eq(mrt_lb_select(S, sh, &any, 0, &sel), MRT_LB_EALLUNHEALTHY);
    mrt_lb_snapshot_free(S);

    /* available, but not with the required tags / not in the zone / undeclared filter */
    uint8_t id[32];
    node(id, 0);
    ck_assert_int_eq(mrt_lb_registry_set_health(r, id, MRT_LB_HEALTHY), MRT_OK);
    const char *want[1] = { "gpu" };
    uint64_t gpu;
    ck_assert_int_eq(mrt_lb_registry_declare_filter(r, want, 1, &gpu), MRT_OK);
    uint16_t zc;
    ck_assert_int_eq(mrt_lb_registry_zone(r, "zone-c", &zc), MRT_OK);
    mrt_lb_config c;
    mrt_lb_registry_config(r, &c);
    c.zone_fallback = false;
    ck_assert_int_eq(mrt_lb_registry_set_config(r, &c), MRT_OK);
    ck_assert_int_eq(mrt_lb_registry_compile(r, 0, NULL, &S), MRT_OK);
    ck_assert_int_eq(mrt_lb_shard_adopt(sh, S), MRT_OK);
    mrt_lb_request rq;
    mrt_lb_request_init(&rq);
    rq.required_tags = gpu;
    ck_assert_int_eq(mrt_lb_select(S, sh, &rq, 0, &sel), MRT_LB_ENOTAGMATCH);
    rq.required_tags = gpu << 1;
    ck_assert_int_eq(mrt_lb_select(S, sh, &rq, 0, &sel), MRT_LB_EFILTER);
    mrt_lb_request_init(&rq);
    rq.zone = zc;
    ck_assert_int_eq(mrt_lb_select(S, sh, &rq, 0, &sel), MRT_LB_ENOZONE);
    rq.zone = 9999; /* not even interned */
    ck_assert_int_eq(mrt_lb_select(S, sh, &rq, 0, &sel), MRT_LB_ENOZONE);
    mrt_lb_request_init(&rq);
    ck_assert_int_eq(mrt_lb_select(S, sh, &rq, 0, &sel), MRT_OK);
    ck_assert_uint_eq(sel.endpoint_id, 0);
    ck_assert_int_eq(mrt_lb_select(NULL, sh, &rq, 0, &sel), MRT_LB_EINVAL);
    ck_assert_int_eq(mrt_lb_select(S, NULL, &rq, 0, &sel), MRT_LB_EINVAL);
    ck_assert_int_eq(mrt_lb_select(S, sh, &rq, 0, NULL), MRT_LB_EINVAL);

    /* complete errors */
    ck_assert_int_eq(mrt_lb_complete(sh, &sel, true, 1000, 0), MRT_OK);
    ck_assert_int_eq(mrt_lb_complete(sh, &sel, true, 1000, 0), MRT_LB_ECOMPLETED);
    ck_assert_int_eq(mrt_lb_complete(NULL, &sel, true, 1000, 0), MRT_LB_EINVAL);
    ck_assert_int_eq(mrt_lb_complete(sh, NULL, true, 1000, 0), MRT_LB_EINVAL);
    mrt_lb_shard_stats st;
    mrt_lb_shard_stats_get(sh, &st);
    ck_assert_uint_eq(st.outstanding, 0);
    ck_assert_uint_eq(st.completes, 1);
    ck_assert_uint_eq(st.selects, 1);
    ck_assert_uint_eq(st.select_errors, 8); /* argument errors are not counted */
    ck_assert_int_eq(mrt_lb_shard_adopt(sh, NULL), MRT_LB_EINVAL);
    mrt_lb_snapshot_free(S);
    mrt_lb_shard_destroy(sh);
    mrt_lb_registry_destroy(r);
}
END_TEST

START_TEST(strerror_names)
{
    int codes[] = { MRT_LB_EINVAL, MRT_LB_ENOMEM, MRT_LB_EDUPLICATE, MRT_LB_ENOTFOUND,
                    MRT_LB_EWEIGHT, MRT_LB_EMETRIC, MRT_LB_ETOOMANYTAGS, MRT_LB_ENAME,
                    MRT_LB_EHEALTH, MRT_LB_ETOOMANYZONES, MRT_LB_ECAPACITY, MRT_LB_ECONFIG,
                    MRT_LB_ENOENDPOINTS, MRT_LB_EALLUNHEALTHY, MRT_LB_ENOTAGMATCH,
                    MRT_LB_ENOZONE, MRT_LB_ECIRCUITOPEN, MRT_LB_EMAXCONN, MRT_LB_EFILTER,
                    MRT_LB_ENOTADOPTED, MRT_LB_ECOMPLETED, MRT_LB_ESTALE };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = mrt_lb_strerror(codes[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_ne(s, "balancer: unknown error");
        ck_assert_int_le(codes[i], -400);
        ck_assert_int_ge(codes[i], -499);
    }
    ck_assert_ptr_null(mrt_lb_strerror(0));
    ck_assert_ptr_null(mrt_lb_strerror(-399));
    ck_assert_ptr_null(mrt_lb_strerror(-500));
    ck_assert_ptr_nonnull(mrt_lb_strerror(-498));
    for (int s = 0; s < MRT_LB_STRATEGY_COUNT; s++)
        ck_assert_ptr_nonnull(mrt_lb_strategy_name((mrt_lb_strategy)s));
    ck_assert_ptr_null(mrt_lb_strategy_name(MRT_LB_STRATEGY_COUNT));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("balancer");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, registry_add_get_remove);
    tcase_add_test(tc, registry_many_endpoints_index);
    tcase_add_test(tc, registry_refuses_bad_input_unchanged);
    tcase_add_test(tc, registry_tag_limit);
    tcase_add_test(tc, registry_zone_and_filter_limits);
    tcase_add_test(tc, config_validation);
    tcase_add_test(tc, load_score_formula);
    tcase_add_test(tc, availability_in_snapshot);
    tcase_add_test(tc, select_errors);
    tcase_add_test(tc, strerror_names);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
