/* Helpers shared by the services suites: a 2-shard mesh driven by hand on one thread. */
#ifndef MESHRT_TESTS_SERVICES_COMMON_H
#define MESHRT_TESTS_SERVICES_COMMON_H

#include "check_main.h"
#include "meshrt/mrt_services.h"
#include "services/svc_internal.h"

#include <check.h>
#include <string.h>

#define NSH 2

/*
 * A recording daemon: origins are sender shard + 1; checks that each
 * sender's sequence arrives in order and that the payload is the one the
 * sender wrote for that sequence.
 */
typedef struct rec {
    uint64_t expect[NSH];
    uint64_t got, bad_order, bad_payload;
    uint32_t max;          /* max payload of the run (for the length rule) */
    unsigned self;
} rec;

static inline uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Payload length of (sender, dst, seq): random in 0..max, the same on both sides. */
static inline size_t len_of(unsigned sender, unsigned dst, uint64_t seq, uint32_t max)
{
    return (size_t)(mix64(seq ^ ((uint64_t)sender << 40) ^ ((uint64_t)dst << 48)) % (max + 1ull));
}

static inline uint8_t byte_of(uint64_t seq, size_t i)
{
    return (uint8_t)(seq * 31u + i * 7u + 1u);
}

static int rec_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)sink;
    rec *r = state;
    uint64_t o = ev->link.origin_hash;
    r->got++;
    if (o == 0 || o > NSH || ev->link.sequence != r->expect[o - 1]) {
        r->bad_order++;
        return MRT_OK;
    }
    uint64_t seq = r->expect[o - 1]++;
    size_t want = len_of((unsigned)o - 1, r->self, seq, r->max);
    const uint8_t *p = ev->payload;
    bool ok = ev->payload_len == want && (want == 0 || p != NULL);
    for (size_t i = 0; ok && i < want; i++)
        ok = p[i] == byte_of(seq, i);
    if (!ok)
        r->bad_payload++;
    return MRT_OK;
}

static const mrt_daemon_vtable rec_vt = { .name = "rec", .process = rec_process };

static inline void host_key(unsigned i, uint8_t key[MRT_HOST_KEY_SIZE])
{
    memset(key, 0, MRT_HOST_KEY_SIZE);
    memcpy(key, "svc-test-host", 13);
    key[13] = (uint8_t)i;
}

/* The test world: mesh, services, one recording host per shard. */
typedef struct world {
    mrt_mesh *m;
    mrt_svc *svc;
    mrt_svc_shard *ss[NSH];
    rec daemon[NSH];
    mrt_host *host[NSH];
    uint64_t daemon_id[NSH];
} world;

static inline void world_mesh(world *w, unsigned ring, unsigned burst, unsigned overflow)
{
    memset(w, 0, sizeof(*w));
    mrt_mesh_config mc;
    mrt_mesh_config_default(&mc, NSH);
    mc.ring_size = ring;
    mc.burst = burst;
    mc.overflow = overflow;
    ck_assert_int_eq(mrt_mesh_create(&mc, &w->m), MRT_OK);
    /* Both shards on this thread: allowed, each init binds the thread to the newest arena. */
    for (unsigned i = 0; i < NSH; i++)
        ck_assert_int_eq(mrt_shard_init_local(mrt_mesh_shard(w->m, i)), MRT_OK);
}

/* After registrations on w->svc: services on each shard, and a recording host each. */
static inline void world_start(world *w, uint32_t max_payload)
{
    for (unsigned i = 0; i < NSH; i++) {
        mrt_shard *s = mrt_mesh_shard(w->m, i);
        ck_assert_int_eq(mrt_svc_shard_init(w->svc, s, &w->ss[i]), MRT_OK);
        w->daemon[i] = (rec){ .max = max_payload, .self = i };
        mrt_host_config hc = { .alloc = mrt_svc_allocator(w->ss[i]), .max_outputs = 1,
                               .payload_bytes = 64, .max_origins = 8 };
        host_key(i, hc.key);
        ck_assert_int_eq(mrt_host_create(&hc, (mrt_daemon){ &rec_vt, &w->daemon[i] }, &w->host[i]),
                         MRT_OK);
        w->daemon_id[i] = mrt_host_origin(w->host[i]);
        ck_assert_int_eq(mrt_svc_host_add(w->ss[i], w->host[i]), MRT_OK);
    }
}

static inline unsigned world_poll(world *w)
{
    unsigned work = 0;
    for (unsigned i = 0; i < NSH; i++)
        work += mrt_shard_poll_once(mrt_mesh_shard(w->m, i));
    return work;
}

/* Request the stop and poll until the mesh drained (bounded). */
static inline void world_drain(world *w)
{
    mrt_mesh_request_stop(w->m);
    unsigned k = 0;
    while (!mrt_mesh_try_drain(w->m)) {
        world_poll(w);
        ck_assert_msg(++k < 1000000, "mesh did not drain within 1e6 polls");
    }
}

/* Every buffer of every shard is home, nothing is owed, nothing is pending. */
static inline void world_assert_settled(world *w)
{
    for (unsigned i = 0; i < NSH; i++) {
        mrt_svc_stats st;
        mrt_svc_stats_get(w->ss[i], &st);
        ck_assert_uint_eq(st.pool_out, 0);
        ck_assert_uint_eq(st.backlog, 0);
        ck_assert_uint_eq(st.inflight, 0);
        for (unsigned c = 0; c < mrt_svc_pool_classes(w->svc); c++) {
            uint32_t cnt = 0;
            ck_assert_int_eq(mrt_svc_pool_class(w->svc, c, NULL, &cnt), MRT_OK);
            ck_assert_uint_eq(mrt_svc_pool_free(w->ss[i], c), cnt);
        }
    }
}

static inline void world_end(world *w)
{
    for (unsigned i = 0; i < NSH; i++) {
        mrt_host *h = NULL;
        if (w->ss[i]) {
            if (w->host[i])
                ck_assert_int_eq(mrt_svc_host_remove(w->ss[i], w->daemon_id[i], &h), MRT_OK);
            mrt_svc_shard_fini(w->ss[i]);
        }
        mrt_host_destroy(w->host[i]);
    }
    mrt_svc_destroy(w->svc);
    mrt_mesh_destroy(w->m);
}

#endif
