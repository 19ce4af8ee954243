/*
 * Control commands: spawn, stop, subscribe, find and drain travel to the owning
 * shard through its control ring (mrt_mesh_control) as a pointer to a
 * request on the caller's stack; the shard does the work on its own thread,
 * in its own arena, and answers through an atomic in the request. The
 * caller polls it with a bounded back-off: nothing on the shard side waits
 * or locks, and every accepted control message is handled before the mesh
 * can report drained, so an accepted request is always answered.
 */
#include "compute/cp_internal.h"

#include <sched.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct cp_req {
    _Atomic int done;
    int rc;
    uint16_t type;
    uint64_t id;
    uint8_t key[MRT_HOST_KEY_SIZE];
    const void *arg;
    size_t arg_len;
    cp_sub sub;
    mrt_daemon_control kind;    /* CP_OP_DRAIN */
    mrt_causal_chain chain;     /* spawn: the chain to resume (has_head); stop: the host's */
    mrt_compute_host_fn fn;     /* call: run on the daemon's shard */
    void *fn_ctx;
} cp_req;

static void answer(cp_req *r, int rc)
{
    r->rc = rc;
    atomic_store_explicit(&r->done, 1, memory_order_release); /* r is the caller's from here */
}

int mrt_compute_state_create(const mrt_compute_type *t, const mrt_allocator *a, const void *arg,
                             size_t arg_len, void **state)
{
    if (t == NULL || state == NULL || (arg == NULL && arg_len > 0))
        return MRT_EINVAL;
    if (t->create)
        return t->create(t->ctx, a, arg, arg_len, state);
    *state = NULL;
    if (t->state_size == 0)
        return MRT_OK;
    *state = mrt_calloc(a, t->state_size);
    return *state ? MRT_OK : MRT_ENOMEM;
}

void mrt_compute_state_destroy(const mrt_compute_type *t, const mrt_allocator *a, void *state)
{
    if (t == NULL)
        return;
    if (t->destroy)
        t->destroy(t->ctx, a, state);
    if (t->create == NULL && state != NULL)
        mrt_free(a, state, t->state_size);
}

/* Stop and free one daemon of this shard (shard thread). */
void cp_daemon_free(cp_shard *cs, cp_daemon *d)
{
    const cp_type *t = &cs->c->types[d->type];
    (void)cp_drain_to(cs, d, MRT_DAEMON_CTL_DRAIN_FINISH); /* its last word: stop or teardown */
    (void)mrt_svc_host_remove(cs->ss, d->id, NULL);
    cp_remove(cs, d->id);
    if (d->host) { /* its counters stay in the shard's sums */
        mrt_host_stats hs;
        mrt_host_stats_get(d->host, &hs);
        mrt_host_stats *r = &cs->hosts_retired;
        r->processed += hs.processed;
        r->emitted += hs.emitted;
        r->errors += hs.errors;
        r->snapshots += hs.snapshots;
        r->restores += hs.restores;
        r->spills += hs.spills;
    }
    mrt_host_destroy(d->host);
    mrt_compute_state_destroy(&t->t, cs->a, d->state);
    mrt_free(cs->a, d, sizeof(*d));
}

static int do_spawn(cp_shard *cs, cp_req *r)
{
    const cp_type *t = &cs->c->types[r->type];
    cp_daemon *d = mrt_calloc(cs->a, sizeof(*d));
    if (d == NULL)
        return MRT_ENOMEM;
    d->id = r->id;
    d->type = r->type;
    if (mrt_compute_state_create(&t->t, cs->a, r->arg, r->arg_len, &d->state) != MRT_OK) {
        mrt_free(cs->a, d, sizeof(*d));
        return MRT_CP_ECREATE;
    }
    mrt_host_config hc = { .alloc = cs->a, .max_outputs = t->t.max_outputs,
                           .payload_bytes = t->t.payload_bytes, .max_origins = t->t.max_origins };
    memcpy(hc.key, r->key, sizeof hc.key);
    if (r->chain.has_head) {
        hc.resume = &r->chain.head;
        hc.resume_next_parent = r->chain.next_parent;
    }
    int rc = mrt_host_create(&hc, (mrt_daemon){ t->t.vt, d->state }, &d->host);
    if (rc == MRT_OK) {
        rc = cp_insert(cs, d);
        if (rc == MRT_OK) {
            rc = mrt_svc_host_add(cs->ss, d->host);
            if (rc != MRT_OK)
                cp_remove(cs, d->id);
        }
        if (rc == MRT_SVC_ELIMIT)
            rc = MRT_CP_ELIMIT;
    }
    if (rc != MRT_OK) {
        mrt_host_destroy(d->host);
        mrt_compute_state_destroy(&t->t, cs->a, d->state);
        mrt_free(cs->a, d, sizeof(*d));
        return rc;
    }
    cp_pressure_join(cs, d);
    return MRT_OK;
}

static int do_sub(cp_shard *cs, cp_req *r)
{
    cp_daemon *d = cp_find(cs, r->id);
    if (d == NULL)
        return MRT_CP_ENODAEMON;
    if (d->nsubs >= MRT_COMPUTE_MAX_SUBS)
        return MRT_CP_ELIMIT;
    d->subs[d->nsubs++] = r->sub;
    cp_need_update(cs, d);
    /* A daemon whose one delivery could never fit the deferral queues could never be admitted. */
    for (unsigned k = 0; k < d->nneed; k++)
        if (d->need[k].entries > cs->c->cfg.defer_depth ||
            d->need[k].bytes > cs->c->cfg.defer_bytes) {
            d->nsubs--;
            cp_need_update(cs, d);
            return MRT_CP_ELIMIT;
        }
    return MRT_OK;
}

static void on_control(mrt_shard *s, const mrt_msg *m, void *ctx)
{
    (void)s;
    cp_shard *cs = ctx;
    cp_req *r = (cp_req *)(uintptr_t)m->w[0];
    cp_daemon *d;
    switch (m->type - CP_CTL_BASE) {
    case CP_OP_SPAWN:
        answer(r, do_spawn(cs, r));
        break;
    case CP_OP_STOP:
        d = cp_find(cs, r->id);
        if (d) {
            r->chain = *mrt_host_chain(d->host);
            cp_daemon_free(cs, d);
        }
        answer(r, d ? MRT_OK : MRT_CP_ENODAEMON);
        break;
    case CP_OP_SUB:
        answer(r, do_sub(cs, r));
        break;
    case CP_OP_DRAIN:
        answer(r, cp_drain_all(cs, r->kind));
        break;
    case CP_OP_CALL: /* between two deliveries: no outputs pending */
        d = cp_find(cs, r->id);
        answer(r, d ? r->fn(r->fn_ctx, d->host, d->state) : MRT_CP_ENODAEMON);
        break;
    default: /* CP_OP_FIND */
        answer(r, cp_find(cs, r->id) ? MRT_OK : MRT_CP_ENODAEMON);
        break;
    }
}

void cp_control_install(cp_shard *cs)
{
    for (unsigned t = 0; t < CP_OP_COUNT; t++)
        (void)mrt_shard_set_control_handler(cs->shard, (uint16_t)(CP_CTL_BASE + t), on_control,
                                            cs);
}

/* Post r to `shard` and wait for the answer: spin, then yield, then sleep up to 1 ms. */
static int call(mrt_compute *c, unsigned shard, unsigned op, cp_req *r)
{
    if (!atomic_load(&c->started))
        return MRT_CP_ENOTSTARTED;
    if (atomic_load(&c->stopping))
        return MRT_CP_ESTOPPED;
    if (shard >= c->n)
        return MRT_SHARD_EDEST;
    atomic_init(&r->done, 0);
    mrt_msg m = { .type = (uint16_t)(CP_CTL_BASE + op), .w = { (uint64_t)(uintptr_t)r } };
    int rc;
    unsigned tries = 0;
    long sleep_ns = 1000;
    /* A full control ring is transient: the shard reads a burst every iteration. */
    while ((rc = mrt_mesh_control(c->mesh, shard, &m)) == MRT_SHARD_EFULL)
        sched_yield();
    if (rc == MRT_SHARD_ESTOPPED)
        return MRT_CP_ESTOPPED;
    if (rc != MRT_OK)
        return rc == MRT_SHARD_ENOTREADY ? MRT_CP_ENOTSTARTED : rc;
    while (!atomic_load_explicit(&r->done, memory_order_acquire)) {
        if (++tries < 64) {
            sched_yield();
            continue;
        }
        struct timespec ts = { 0, sleep_ns };
        nanosleep(&ts, NULL);
        if (sleep_ns < 1000000)
            sleep_ns *= 2;
    }
    return r->rc;
}

/* Identity without a key: 32 bytes from a domain-separated hash of (type name, counter). */
static void derive_key(const char *type_name, uint64_t counter, uint8_t key[MRT_HOST_KEY_SIZE])
{
    static const char label[] = "meshrt/compute/spawn/v1";
    XXH3_state_t st;
    for (uint64_t half = 0; half < 2; half++) {
        XXH3_128bits_reset_withSeed(&st, half);
        XXH3_128bits_update(&st, label, sizeof label);
        XXH3_128bits_update(&st, type_name, strlen(type_name) + 1);
        uint8_t le[8];
        for (unsigned i = 0; i < 8; i++)
            le[i] = (uint8_t)(counter >> (8 * i));
        XXH3_128bits_update(&st, le, sizeof le);
        XXH128_canonical_t out;
        XXH128_canonicalFromHash(&out, XXH3_128bits_digest(&st));
        memcpy(key + 16 * half, out.digest, 16);
    }
}

int mrt_compute_spawn(mrt_compute *c, uint16_t type, uint16_t shard, const uint8_t *key,
                      const void *arg, size_t arg_len, mrt_compute_ref *out)
{
    return mrt_compute_spawn_resume(c, type, shard, key, arg, arg_len, NULL, out);
}

int mrt_compute_spawn_resume(mrt_compute *c, uint16_t type, uint16_t shard, const uint8_t *key,
                             const void *arg, size_t arg_len, const mrt_causal_chain *resume,
                             mrt_compute_ref *out)
{
    if (c == NULL || out == NULL || (arg == NULL && arg_len > 0) || arg_len > MRT_COMPUTE_MAX_ARG)
        return MRT_EINVAL;
    if (type >= c->ntypes)
        return MRT_CP_ENOTYPE;
    if (!atomic_load(&c->started))
        return MRT_CP_ENOTSTARTED;
    int dst = shard;
    if (shard == MRT_COMPUTE_ANY_SHARD) {
        dst = c->place(c->place_ctx, type, c->hosted, c->n);
        if (dst < 0 || (unsigned)dst >= c->n)
            return MRT_CP_ENOPLACE;
    } else if (shard >= c->n) {
        return MRT_SHARD_EDEST;
    }
    cp_req r = { .type = type, .arg = arg, .arg_len = arg_len };
    if (resume && resume->has_head)
        r.chain = *resume;
    if (key)
        memcpy(r.key, key, sizeof r.key);
    else
        derive_key(c->types[type].name, c->spawn_counter++, r.key);
    r.id = mrt_host_origin_from_key(r.key);
    int rc = call(c, (unsigned)dst, CP_OP_SPAWN, &r);
    if (rc != MRT_OK)
        return rc;
    c->hosted[dst]++;
    *out = (mrt_compute_ref){ .id = r.id, .shard = (uint16_t)dst };
    return MRT_OK;
}

/* The set's endpoint for daemon d: its id LE8, its shard LE2, zeros. */
static void set_node_id(mrt_compute_ref d, uint8_t nid[MRT_LB_NODE_ID_LEN])
{
    memset(nid, 0, MRT_LB_NODE_ID_LEN);
    for (unsigned i = 0; i < 8; i++)
        nid[i] = (uint8_t)(d.id >> (8 * i));
    nid[8] = (uint8_t)d.shard;
    nid[9] = (uint8_t)(d.shard >> 8);
}

int mrt_compute_stop(mrt_compute *c, mrt_compute_ref d)
{
    return mrt_compute_stop_chain(c, d, NULL);
}

int mrt_compute_stop_chain(mrt_compute *c, mrt_compute_ref d, mrt_causal_chain *chain)
{
    if (c == NULL)
        return MRT_EINVAL;
    cp_req r = { .id = d.id };
    int rc = call(c, d.shard, CP_OP_STOP, &r);
    if (rc == MRT_SHARD_EDEST)
        rc = MRT_CP_ENODAEMON;
    if (rc != MRT_OK)
        return rc;
    if (chain)
        *chain = r.chain;
    c->hosted[d.shard]--;
    if (c->set) {
        uint8_t nid[MRT_LB_NODE_ID_LEN];
        set_node_id(d, nid);
        if (mrt_lb_registry_remove(c->set, nid) == MRT_OK)
            atomic_store(&c->set_dirty, true);
    }
    return MRT_OK;
}

int mrt_compute_subscribe(mrt_compute *c, mrt_compute_ref from, mrt_compute_sink_kind kind,
                          mrt_compute_ref target)
{
    if (c == NULL || (unsigned)kind > MRT_COMPUTE_TO_EGRESS)
        return MRT_EINVAL;
    if (kind == MRT_COMPUTE_TO_DAEMON && target.shard >= c->n)
        return MRT_SHARD_EDEST;
    if (kind == MRT_COMPUTE_TO_SET && c->set == NULL)
        return MRT_EINVAL;
    cp_req r = { .id = from.id,
                 .sub = { .kind = (uint8_t)kind, .shard = target.shard, .id = target.id } };
    int rc = call(c, from.shard, CP_OP_SUB, &r);
    return rc == MRT_SHARD_EDEST ? MRT_CP_ENODAEMON : rc;
}

int mrt_compute_set_add(mrt_compute *c, mrt_compute_ref d, uint32_t weight)
{
    if (c == NULL)
        return MRT_EINVAL;
    if (c->set == NULL)
        return MRT_ESTATE;
    cp_req r = { .id = d.id };
    int rc = call(c, d.shard, CP_OP_FIND, &r);
    if (rc != MRT_OK)
        return rc == MRT_SHARD_EDEST ? MRT_CP_ENODAEMON : rc;
    uint8_t nid[MRT_LB_NODE_ID_LEN];
    set_node_id(d, nid);
    mrt_lb_endpoint_spec spec;
    mrt_lb_endpoint_spec_init(&spec, nid);
    if (weight)
        spec.weight = weight;
    spec.user_data = d.shard; /* a selection names the shard; services reads the id from nid */
    rc = mrt_lb_registry_add(c->set, &spec, NULL);
    if (rc == MRT_OK)
        atomic_store(&c->set_dirty, true);
    return rc;
}

int mrt_compute_drain_daemons(mrt_compute *c, uint16_t shard, mrt_daemon_control kind)
{
    if (c == NULL ||
        (kind != MRT_DAEMON_CTL_DRAIN_START && kind != MRT_DAEMON_CTL_DRAIN_FINISH))
        return MRT_EINVAL;
    cp_req r = { .kind = kind };
    return call(c, shard, CP_OP_DRAIN, &r);
}

int mrt_compute_call(mrt_compute *c, mrt_compute_ref d, mrt_compute_host_fn fn, void *ctx)
{
    if (c == NULL || fn == NULL)
        return MRT_EINVAL;
    cp_req r = { .id = d.id, .fn = fn, .fn_ctx = ctx };
    int rc = call(c, d.shard, CP_OP_CALL, &r);
    return rc == MRT_SHARD_EDEST ? MRT_CP_ENODAEMON : rc;
}
