/*
 * Helpers of the compute suites: a runtime with the built-in workload off
 * and N shards (unpinned beyond the machine's CPUs), test daemon types, and
 * an egress collector that validates every emitter's causal chain.
 */
#ifndef MESHRT_TESTS_TEST_COMPUTE_COMMON_H
#define MESHRT_TESTS_TEST_COMPUTE_COMMON_H

#include "check_main.h"

#include "meshrt/mrt_compute.h"
#include "meshrt/mrt_runtime.h"

#include <stdatomic.h>
#include <string.h>

/* Counted by the test types' create/destroy (any shard thread). */
static _Atomic uint64_t tc_creates, tc_destroys;

typedef struct tc_state {
    uint64_t events;
    uint32_t fan;       /* outputs per event (the spawn argument, default 1) */
} tc_state;

static inline int tc_create(void *ctx, const mrt_allocator *a, const void *arg, size_t len, void **state)
{
    (void)ctx;
    if (len == 1 && ((const uint8_t *)arg)[0] == 0xEE)
        return MRT_EINVAL; /* the test's way to make create fail */
    tc_state *s = mrt_calloc(a, sizeof(*s));
    if (s == NULL)
        return MRT_ENOMEM;
    s->fan = 1;
    if (len == sizeof(uint32_t))
        memcpy(&s->fan, arg, sizeof s->fan);
    atomic_fetch_add(&tc_creates, 1);
    *state = s;
    return MRT_OK;
}

static inline void tc_destroy(void *ctx, const mrt_allocator *a, void *state)
{
    (void)ctx;
    mrt_free(a, state, sizeof(tc_state));
    atomic_fetch_add(&tc_destroys, 1);
}

/* Relay: each event's payload goes out `fan` times (the copy index in the first byte after 8). */
static inline int tc_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    tc_state *s = state;
    s->events++;
    for (uint32_t k = 0; k < s->fan; k++) {
        void *buf;
        int rc = mrt_daemon_emit(sink, ev->payload_len, &buf);
        if (rc != MRT_OK)
            return rc;
        if (ev->payload_len)
            memcpy(buf, ev->payload, ev->payload_len);
        if (ev->payload_len > 8)
            ((uint8_t *)buf)[8] = (uint8_t)k;
    }
    return MRT_OK;
}

static const mrt_daemon_vtable tc_vt = { .name = "relay", .process = tc_process };

static inline mrt_compute_type tc_type(const char *name, uint32_t max_outputs)
{
    return (mrt_compute_type){ .name = name, .vt = &tc_vt, .create = tc_create,
                               .destroy = tc_destroy, .max_outputs = max_outputs,
                               .payload_bytes = 16 * 1024, .max_origins = 16 };
}

/* A runtime with compute and `shards` shards, not started. */
static inline mrt_runtime *tc_runtime(unsigned shards, mrt_lb_strategy lb, unsigned ring)
{
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.workload = false;
    cfg.allow_unbound = true; /* containers refuse bindings; 2 shards even on 1 CPU */
    cfg.shards = shards;
    cfg.lb_strategy = lb;
    if (ring) {
        cfg.ring_size = ring;
        cfg.burst = ring / 4;
    }
    char err[256] = "";
    mrt_runtime *rt = NULL;
    ck_assert_msg(mrt_runtime_create(&cfg, &rt, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_ptr_nonnull(mrt_runtime_compute(rt));
    return rt;
}

static inline void tc_start(mrt_runtime *rt)
{
    char err[256] = "";
    ck_assert_msg(mrt_runtime_start(rt, err, sizeof err) == MRT_OK, "%s", err);
}

/* Egress collector: per emitter, its chain (validated link by link) and a count. */
#define TC_MAX_FROM 16
typedef struct tc_egress {
    unsigned nfrom;
    uint64_t from[TC_MAX_FROM];
    uint16_t from_shard[TC_MAX_FROM];
    mrt_causal_chain chain[TC_MAX_FROM];
    uint64_t count[TC_MAX_FROM];
    uint64_t last_seq[TC_MAX_FROM];  /* first 8 payload bytes of the last output */
    uint64_t total, bad_chain, out_of_order;
} tc_egress;

static inline void tc_on_egress(void *ctx, const mrt_compute_output *o)
{
    tc_egress *e = ctx;
    unsigned i = 0;
    while (i < e->nfrom && e->from[i] != o->from.id)
        i++;
    if (i == e->nfrom) {
        ck_assert_uint_lt(e->nfrom, TC_MAX_FROM);
        e->from[i] = o->from.id;
        e->from_shard[i] = o->from.shard;
        mrt_causal_chain_init(&e->chain[i], o->from.id);
        e->nfrom++;
    }
    if (mrt_causal_chain_accept(&e->chain[i], &o->link, o->payload, o->len) != MRT_OK)
        e->bad_chain++;
    if (o->len >= 8) {
        uint64_t seq;
        memcpy(&seq, o->payload, 8);
        if (e->count[i] && seq < e->last_seq[i])
            e->out_of_order++;
        e->last_seq[i] = seq;
    }
    e->count[i]++;
    e->total++;
}

/*
 * Inject, retrying while the shard pushes back; an application must keep
 * egress moving meanwhile (else egress fills, the daemons push back on
 * their input, and ingress never frees): `eg` (may be NULL) is polled.
 */
static inline void tc_inject_eg(mrt_compute *c, mrt_compute_ref d, const void *p, size_t len,
                                tc_egress *eg)
{
    mrt_wait w = mrt_wait_begin();
    int rc;
    while ((rc = mrt_compute_inject(c, d, p, len)) == MRT_SHARD_EFULL || rc == MRT_SVC_EPOOL) {
        MRT_WAIT_CHECK(&w, "ingress to take an event (%s)", mrt_strerror(rc));
        if (eg == NULL || mrt_compute_egress_poll(c, tc_on_egress, eg, 256) == 0)
            sched_yield();
    }
    ck_assert_msg(rc == MRT_OK, "inject: %s", mrt_strerror(rc));
}

static inline void tc_inject(mrt_compute *c, mrt_compute_ref d, const void *p, size_t len)
{
    tc_inject_eg(c, d, p, len, NULL);
}

/* Poll egress until `target` outputs arrived. */
static inline void tc_egress_until(mrt_compute *c, tc_egress *e, uint64_t target)
{
    mrt_wait w = mrt_wait_begin();
    while (e->total < target) {
        MRT_WAIT_CHECK(&w, "%llu egressed outputs (%llu so far)", (unsigned long long)target,
                       (unsigned long long)e->total);
        if (mrt_compute_egress_poll(c, tc_on_egress, e, 256) == 0)
            sched_yield();
    }
}

static inline uint64_t tc_count_of(const tc_egress *e, uint64_t id)
{
    for (unsigned i = 0; i < e->nfrom; i++)
        if (e->from[i] == id)
            return e->count[i];
    return 0;
}

/* Counters summed over the shards. */
static inline mrt_compute_stats tc_totals(mrt_runtime *rt)
{
    mrt_compute_stats t, s;
    memset(&t, 0, sizeof t);
    mrt_compute *c = mrt_runtime_compute(rt);
    unsigned n = mrt_mesh_size(mrt_runtime_mesh(rt));
    for (unsigned i = 0; i < n; i++) {
        ck_assert_int_eq(mrt_compute_stats_get(c, i, &s), MRT_OK);
        const uint64_t *v = (const uint64_t *)&s;
        uint64_t *tv = (uint64_t *)&t;
        for (size_t k = 0; k < sizeof t / sizeof(uint64_t); k++)
            tv[k] += v[k];
    }
    return t;
}

#endif
