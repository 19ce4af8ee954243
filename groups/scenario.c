/*
 * `meshrt run --scenario NAME`: daemon groups under load, self-verifying.
 * An ingress thread routes events through a replica group
 * (mrt_group_inject, at most SC_WINDOW in flight); every member relays
 * each event (its link, then its payload) to egress; this thread, the
 * control thread, validates every member's chain with
 * mrt_causal_chain_accept (a re-spawned or re-grown identity must continue
 * its chain), counts each event out exactly once, and meanwhile fails a
 * shard (replica) or scales the group (scale), running the control tick
 * that recovers members. Built on the public API only.
 */
#include "meshrt/mrt_groups.h"
#include "meshrt/mrt_runtime.h"
#include "groups/scenario_ha.h"
#include "groups/scenario_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SC_WINDOW 512u
#define SC_PAYLOAD 16u

#define SC_OUT_LEN (MRT_CAUSAL_LINK_SIZE + SC_PAYLOAD) /* a relay output: link || payload */
#define SC_HELD_MAX (1u << 20)                          /* per emitter: a bound, not a size */

/* An output ahead of a gap in its chain, held until the gap fills. */
typedef struct sc_held {
    mrt_causal_link link;
    uint8_t payload[SC_OUT_LEN];
} sc_held;

typedef struct sc_emitter {
    uint64_t id;
    mrt_causal_chain chain;
    uint64_t count;
    uint16_t shard;
    bool moved;                 /* outputs came from more than one shard */
    /*
     * A re-spawned identity emits from its new shard while its old
     * incarnation's last outputs may still wait in the old shard's egress:
     * egress keeps order per shard, not across shards, so a receiver puts
     * a moved chain back in sequence order (the workload does the same for
     * producers, whose outputs cross workers).
     */
    sc_held *held;
    unsigned nheld, held_cap;
} sc_emitter;

typedef struct sc {
    mrt_runtime *rt;
    mrt_compute *c;
    mrt_groups *g;
    mrt_group *grp;
    pthread_t ingress;
    bool ingress_running;
    _Atomic bool ingress_stop;
    _Atomic uint64_t injected, refused, received;
    sc_emitter em[2 * MRT_GROUP_MAX_MEMBERS];
    unsigned nem;
    mrt_sc_tally seen;          /* per sequence: times it came out */
    mrt_scenario_result *r;
} sc;

/* ---- the member daemon: relay the event's link and payload ------------------ */

static int relay_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (*(uint64_t *)state)++;
    void *buf;
    int rc = mrt_daemon_emit(sink, MRT_CAUSAL_LINK_SIZE + ev->payload_len, &buf);
    if (rc != MRT_OK)
        return rc;
    mrt_causal_link_encode(&ev->link, buf);
    memcpy((uint8_t *)buf + MRT_CAUSAL_LINK_SIZE, ev->payload, ev->payload_len);
    return MRT_OK;
}

static const mrt_daemon_vtable relay_vt = { .name = "scenario-relay", .process = relay_process };

/* ---- ingress ------------------------------------------------------------------- */

static void *ingress_main(void *arg)
{
    sc *s = arg;
    (void)pthread_setname_np(pthread_self(), "mrt-sc-ingress");
    uint64_t seq = 0;
    unsigned spins = 0;
    while (!atomic_load_explicit(&s->ingress_stop, memory_order_relaxed)) {
        if (seq - atomic_load_explicit(&s->received, memory_order_acquire) >= SC_WINDOW) {
            mrt_sc_backoff(&spins);
            continue;
        }
        uint8_t p[SC_PAYLOAD] = { 0 };
        memcpy(p, &seq, sizeof seq);
        int rc = mrt_group_inject(s->grp, seq, p, sizeof p);
        if (rc == MRT_OK) {
            seq++;
            atomic_store_explicit(&s->injected, seq, memory_order_release);
            spins = 0;
        } else {
            atomic_fetch_add_explicit(&s->refused, 1, memory_order_relaxed);
            mrt_sc_backoff(&spins);
        }
    }
    return NULL;
}

/* ---- validation (this thread) ------------------------------------------------------ */

static sc_emitter *emitter(sc *s, uint64_t id, uint16_t shard)
{
    for (unsigned i = 0; i < s->nem; i++)
        if (s->em[i].id == id)
            return &s->em[i];
    if (s->nem == sizeof s->em / sizeof s->em[0])
        return NULL;
    sc_emitter *e = &s->em[s->nem++];
    memset(e, 0, sizeof(*e));
    e->id = id;
    e->shard = shard;
    mrt_causal_chain_init(&e->chain, id);
    return e;
}

/* Hold an output ahead of a gap; false when it cannot be held (it is then judged now). */
static bool held_push(sc_emitter *e, const mrt_compute_output *o)
{
    if (o->len != SC_OUT_LEN)
        return false;
    if (e->nheld == e->held_cap) {
        unsigned cap = e->held_cap ? 2 * e->held_cap : 64;
        sc_held *p = cap <= SC_HELD_MAX ? realloc(e->held, cap * sizeof(*p)) : NULL;
        if (p == NULL)
            return false;
        e->held = p;
        e->held_cap = cap;
    }
    sc_held *h = &e->held[e->nheld++];
    h->link = o->link;
    memcpy(h->payload, o->payload, SC_OUT_LEN);
    return true;
}

/* Accept o in chain order: held when ahead of a gap, then the held ones that follow it. */
static void chain_accept(mrt_scenario_result *r, sc_emitter *e, const mrt_compute_output *o)
{
    uint64_t next = e->chain.has_head ? e->chain.head.sequence + 1 : 0;
    if (o->link.origin_hash == e->id && o->link.sequence > next && held_push(e, o))
        return;
    if (mrt_causal_chain_accept(&e->chain, &o->link, o->payload, o->len) != MRT_OK) {
        r->bad_links++;
        return;
    }
    r->links++;
    for (unsigned i = 0; i < e->nheld;) {
        if (e->held[i].link.sequence != e->chain.head.sequence + 1) {
            i++;
            continue;
        }
        if (mrt_causal_chain_accept(&e->chain, &e->held[i].link, e->held[i].payload, SC_OUT_LEN) !=
            MRT_OK)
            r->bad_links++;
        else
            r->links++;
        e->held[i] = e->held[--e->nheld];
        i = 0; /* the next one may sit anywhere */
    }
}

static void on_output(void *ctx, const mrt_compute_output *o)
{
    sc *s = ctx;
    mrt_scenario_result *r = s->r;
    sc_emitter *e = emitter(s, o->from.id, o->from.shard);
    if (e == NULL)
        r->bad_links++;
    else
        chain_accept(r, e, o);
    if (e) {
        e->moved |= e->count && e->shard != o->from.shard;
        e->shard = o->from.shard;
        e->count++;
    }
    uint64_t seq = UINT64_MAX;
    if (o->len == MRT_CAUSAL_LINK_SIZE + SC_PAYLOAD)
        memcpy(&seq, (const uint8_t *)o->payload + MRT_CAUSAL_LINK_SIZE, sizeof seq);
    if (seq >= MRT_SC_SEQ_LIMIT)
        r->bad_links++; /* not one of ours */
    else
        (void)mrt_sc_tally_add(&s->seen, seq);
    int idx = mrt_group_member_of(s->grp, o->from.id);
    if (idx >= 0)
        r->per_member[idx]++;
    r->received++;
    atomic_store_explicit(&s->received, r->received, memory_order_release);
}

static size_t poll_out(sc *s)
{
    return mrt_compute_egress_poll(s->c, on_output, s, 512);
}

/* ---- the run ------------------------------------------------------------------- */

static void live_line(FILE *f, sc *s, double t)
{
    if (f == NULL)
        return;
    mrt_group_health h;
    (void)mrt_group_health_get(s->grp, &h);
    fprintf(f, "scenario %-7s t %6.2f s  injected %10llu  received %10llu  members %3u "
               "(healthy %3u)  term %u\n",
            s->r->name, t, (unsigned long long)atomic_load(&s->injected),
            (unsigned long long)s->r->received, h.members, h.healthy, h.term);
    fflush(f);
}

static int setup(sc *s, const mrt_runtime_config *cfg, char *err, size_t errlen)
{
    mrt_runtime_config rc = *cfg;
    rc.workload = false;
    int st = mrt_runtime_create(&rc, &s->rt, err, errlen);
    if (st != MRT_OK)
        return st;
    if (strcmp(s->r->name, "replica") == 0 && mrt_runtime_shards(s->rt) < 2 && rc.allow_unbound &&
        rc.shards == 0) { /* one CPU: a second, unpinned shard (allowed) to fail */
        mrt_runtime_destroy(s->rt);
        s->rt = NULL;
        rc.shards = 2;
        if ((st = mrt_runtime_create(&rc, &s->rt, err, errlen)) != MRT_OK)
            return st;
    }
    s->c = mrt_runtime_compute(s->rt);
    s->r->shards = mrt_runtime_shards(s->rt);
    if (strcmp(s->r->name, "replica") == 0 && s->r->shards < 2) {
        snprintf(err, errlen, "--scenario replica needs at least 2 shards (one is failed): "
                              "select more CPUs or pass --allow-unbound");
        return MRT_RT_ESHARDS;
    }
    uint16_t type;
    mrt_compute_type t = { .name = "relay", .vt = &relay_vt, .state_size = sizeof(uint64_t),
                           .max_outputs = 1,
                           .payload_bytes = 1024, .max_origins = 8 };
    if ((st = mrt_groups_create(s->rt, NULL, &s->g)) != MRT_OK ||
        (st = mrt_groups_register_type(s->g, &t, &type)) != MRT_OK ||
        (st = mrt_compute_set_egress_drain(s->c, on_output, s)) != MRT_OK) {
        snprintf(err, errlen, "groups: %s", mrt_strerror(st));
        return st;
    }
    if ((st = mrt_runtime_start(s->rt, err, errlen)) != MRT_OK)
        return st;
    mrt_group_replica_config gc;
    mrt_group_replica_config_default(&gc);
    gc.type = type;
    gc.seed = 0x5ce7a210;
    gc.members = strcmp(s->r->name, "replica") == 0 ? 2 * s->r->shards : 1;
    if ((st = mrt_group_replica_create(s->g, &gc, &s->grp)) != MRT_OK ||
        (st = mrt_group_subscribe(s->grp, MRT_COMPUTE_TO_EGRESS, (mrt_compute_ref){ 0, 0 })) !=
            MRT_OK) {
        snprintf(err, errlen, "replica group: %s", mrt_strerror(st));
        return st;
    }
    if (pthread_create(&s->ingress, NULL, ingress_main, s) != 0) {
        snprintf(err, errlen, "could not start the ingress thread");
        return MRT_RT_ETHREAD;
    }
    s->ingress_running = true;
    return MRT_OK;
}

static void teardown(sc *s)
{
    if (s->ingress_running) {
        atomic_store(&s->ingress_stop, true);
        pthread_join(s->ingress, NULL);
        s->ingress_running = false;
    }
    mrt_runtime_stop(s->rt);
    mrt_groups_destroy(s->g);
    mrt_runtime_destroy(s->rt);
    for (unsigned i = 0; i < s->nem; i++)
        free(s->em[i].held);
    mrt_sc_tally_free(&s->seen);
}

/* Settle: everything injected out, every reservation back (bounded), then the judgement. */
static void finish(sc *s)
{
    mrt_scenario_result *r = s->r;
    atomic_store(&s->ingress_stop, true);
    pthread_join(s->ingress, NULL);
    s->ingress_running = false;
    r->injected = atomic_load(&s->injected);
    r->refused = atomic_load(&s->refused);
    double t0 = mrt_sc_now_s();
    while ((r->received < r->injected || mrt_group_outstanding(s->grp) > 0) &&
           mrt_sc_now_s() - t0 < 10.0) {
        if (poll_out(s) == 0) {
            (void)mrt_runtime_control_tick(s->rt, false);
            sched_yield();
        }
    }
    mrt_group_health h;
    (void)mrt_group_health_get(s->grp, &h);
    r->members = h.members;
    r->term = h.term;
    r->respawns = h.respawns;
    for (unsigned i = 0; i < h.members; i++) {
        mrt_group_member_info mi;
        if (r->failed_shard >= 0 && mrt_group_member(s->grp, i, &mi) == MRT_OK &&
            mi.ref.shard == (unsigned)r->failed_shard)
            r->on_failed_after++;
    }
    if (h.state != MRT_GROUP_HEALTHY)
        mrt_sc_problem(r, "the group ends with %llu unhealthy members",
                (unsigned long long)(h.members - h.healthy));
    mrt_runtime_stop(s->rt); /* outputs still in egress are validated here */
    for (unsigned i = 0; i < r->shards; i++) {
        mrt_compute_stats cs;
        if (mrt_compute_stats_get(s->c, i, &cs) == MRT_OK) {
            r->handed_back += cs.handed_back;
            r->daemon_errors += cs.daemon_errors;
        }
    }
    mrt_groups_stats gs;
    mrt_groups_stats_get(s->g, &gs);
    r->completed = gs.completed;
    if (gs.late)
        mrt_sc_problem(r, "%llu completions came late or were dropped", (unsigned long long)gs.late);
    r->outstanding = mrt_group_outstanding(s->grp);
    r->chains = s->nem;
    for (unsigned i = 0; i < s->nem; i++)
        r->bad_links += s->em[i].nheld; /* a gap that never filled */
    for (unsigned i = 0; strcmp(r->name, "replica") == 0 && i < s->nem; i++)
        r->resumed += s->em[i].moved; /* re-spawned elsewhere (scale counts its re-grown ones) */
    mrt_sc_tally_judge(&s->seen, r->injected, 1, &r->lost, &r->duplicated);
    if (s->seen.oom)
        mrt_sc_problem(r, "out of memory counting outputs");
    if (r->injected == 0)
        mrt_sc_problem(r, "no events moved");
    if (r->lost)
        mrt_sc_problem(r, "%llu events lost", (unsigned long long)r->lost);
    if (r->duplicated)
        mrt_sc_problem(r, "%llu events out more than once", (unsigned long long)r->duplicated);
    if (r->received != r->injected)
        mrt_sc_problem(r, "received %llu for the events injected", (unsigned long long)r->received);
    if (r->bad_links)
        mrt_sc_problem(r, "%llu causal links refused", (unsigned long long)r->bad_links);
    if (r->outstanding)
        mrt_sc_problem(r, "%llu reservations outstanding at exit", (unsigned long long)r->outstanding);
    if (r->handed_back)
        mrt_sc_problem(r, "%llu events handed back", (unsigned long long)r->handed_back);
    if (r->daemon_errors)
        mrt_sc_problem(r, "%llu daemon errors", (unsigned long long)r->daemon_errors);
    if (r->completed != r->injected)
        mrt_sc_problem(r, "%llu completions for the events injected", (unsigned long long)r->completed);
}

int mrt_scenario_run(const mrt_runtime_config *cfg, bool (*stop)(void *ctx), void *stop_ctx,
                     FILE *progress, mrt_scenario_result *out, char *err, size_t errlen)
{
    if (cfg == NULL || out == NULL || cfg->scenario == NULL)
        return MRT_EINVAL;
    if (strcmp(cfg->scenario, "standby") == 0 || strcmp(cfg->scenario, "fork") == 0)
        return mrt_scenario_run_ha(cfg, stop, stop_ctx, progress, out, err, errlen);
    bool replica = strcmp(cfg->scenario, "replica") == 0;
    if (!replica && strcmp(cfg->scenario, "scale") != 0) {
        snprintf(err, errlen, "unknown scenario '%s' (replica, scale, standby, fork)",
                 cfg->scenario);
        return MRT_RT_EVALUE;
    }
    memset(out, 0, sizeof(*out));
    out->name = replica ? "replica" : "scale";
    out->failed_shard = -1;
    out->why_stop = "duration elapsed";
    sc *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MRT_ENOMEM;
    s->r = out;
    int rc = setup(s, cfg, err, errlen);
    if (rc != MRT_OK) {
        teardown(s);
        free(s);
        return rc;
    }
    /* Phases: replica fails a shard at 1/2; scale steps at 1/4, 2/4, 3/4 (1 s each for --duration 0). */
    double dur = cfg->duration_s;
    double phase = dur > 0 ? dur / (replica ? 2 : 4) : 1.0;
    static const uint32_t steps[] = { 1, 8, 2, 5 };
    out->steps[out->nsteps++] = 1;
    unsigned next_step = 1;
    bool failed = false;
    uint32_t on_victim = 0, max_n = 1;
    uint64_t regrown = 0;
    double t0 = mrt_sc_now_s(), last_tick = t0, last_line = t0;
    double interval = cfg->stats_interval_ms * 1e-3, tick = interval < 0.05 ? interval : 0.05;
    for (;;) {
        double now = mrt_sc_now_s(), t = now - t0;
        if (dur > 0 && t >= dur && (replica ? failed : next_step == 4))
            break;
        if (stop && stop(stop_ctx)) {
            out->why_stop = "stopped";
            break;
        }
        if (replica && !failed && t >= phase) {
            unsigned victim = out->shards - 1;
            for (unsigned i = 0; i < 2 * out->shards; i++) {
                mrt_group_member_info mi;
                if (mrt_group_member(s->grp, i, &mi) == MRT_OK && mi.ref.shard == victim)
                    on_victim++;
            }
            (void)mrt_runtime_fail_shard(s->rt, victim);
            out->failed_shard = (int)victim;
            out->failed_at_s = t;
            failed = true;
        }
        if (!replica && next_step < 4 && t >= phase * next_step) {
            uint32_t from = steps[next_step - 1], to = steps[next_step];
            int st = mrt_group_scale_to(s->grp, to);
            if (st == MRT_OK && to > from && max_n > from) /* identities used before: resumed */
                regrown += (to < max_n ? to : max_n) - from;
            if (to > max_n)
                max_n = to;
            if (st != MRT_OK)
                mrt_sc_problem(out, "scale_to %u failed: %s", steps[next_step], mrt_strerror(st));
            out->steps[out->nsteps++] = steps[next_step];
            next_step++;
        }
        if (now - last_tick >= tick) {
            (void)mrt_runtime_control_tick(s->rt, false); /* recovery runs here */
            last_tick = now;
        }
        if (now - last_line >= interval) {
            live_line(progress, s, t);
            last_line = now;
        }
        if (poll_out(s) == 0) {
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL);
        }
    }
    finish(s);
    out->resumed += regrown;
    out->elapsed_s = mrt_sc_now_s() - t0;
    if (replica) {
        if (!failed)
            mrt_sc_problem(out, "stopped before the shard failure");
        else if (out->respawns < on_victim)
            mrt_sc_problem(out, "%llu members of the failed shard not re-placed",
                    (unsigned long long)(on_victim - out->respawns));
        if (out->on_failed_after)
            mrt_sc_problem(out, "%llu members still on the failed shard",
                    (unsigned long long)out->on_failed_after);
    } else if (next_step == 4 && out->members != 5) {
        mrt_sc_problem(out, "%u members at the end (5 expected)", out->members);
    }
    teardown(s);
    free(s);
    return MRT_OK;
}

void mrt_scenario_print(FILE *f, bool json, const mrt_scenario_result *r)
{
    if (strcmp(r->name, "standby") == 0 || strcmp(r->name, "fork") == 0) {
        mrt_scenario_print_ha(f, json, r);
        return;
    }
    if (json) {
        fprintf(f, "{\"scenario\":\"%s\",\"shards\":%u,\"elapsed_s\":%.3f,\"stop\":\"%s\","
                   "\"injected\":%llu,\"refused\":%llu,\"received\":%llu,\"lost\":%llu,"
                   "\"duplicated\":%llu,\"links\":%llu,\"chains\":%llu,\"bad_links\":%llu,"
                   "\"resumed_chains\":%llu,\"handed_back\":%llu,\"daemon_errors\":%llu,"
                   "\"completions\":%llu,\"outstanding\":%llu,\"members\":%u,\"term\":%u,"
                   "\"respawns\":%llu,\"failed_shard\":%d,\"on_failed_shard\":%u,\"steps\":[",
                r->name, r->shards, r->elapsed_s, r->why_stop, (unsigned long long)r->injected,
                (unsigned long long)r->refused, (unsigned long long)r->received,
                (unsigned long long)r->lost, (unsigned long long)r->duplicated,
                (unsigned long long)r->links, (unsigned long long)r->chains,
                (unsigned long long)r->bad_links, (unsigned long long)r->resumed,
                (unsigned long long)r->handed_back, (unsigned long long)r->daemon_errors,
                (unsigned long long)r->completed, (unsigned long long)r->outstanding, r->members,
                r->term, (unsigned long long)r->respawns, r->failed_shard, r->on_failed_after);
        for (unsigned i = 0; i < r->nsteps; i++)
            fprintf(f, "%s%u", i ? "," : "", r->steps[i]);
        fprintf(f, "],\"ok\":%s,\"problems\":\"%s\"}\n", r->nproblems ? "false" : "true",
                r->problems);
        return;
    }
    fprintf(f, "summary: scenario %s, %u shard%s, %.2f s (%s)\n", r->name, r->shards,
            r->shards == 1 ? "" : "s", r->elapsed_s, r->why_stop);
    fprintf(f, "  injected %llu through the group (%llu refused for backpressure, offered again)\n",
            (unsigned long long)r->injected, (unsigned long long)r->refused);
    fprintf(f, "  received %llu: lost %llu, duplicated %llu\n", (unsigned long long)r->received,
            (unsigned long long)r->lost, (unsigned long long)r->duplicated);
    fprintf(f, "  %llu causal links validated in %llu member chains (%llu resumed by a new "
               "incarnation), %llu refused\n",
            (unsigned long long)r->links, (unsigned long long)r->chains,
            (unsigned long long)r->resumed, (unsigned long long)r->bad_links);
    if (r->failed_shard >= 0)
        fprintf(f, "  shard %d failed at %.2f s: %llu members re-spawned elsewhere, term %u, "
                   "%u left on it\n",
                r->failed_shard, r->failed_at_s, (unsigned long long)r->respawns, r->term,
                r->on_failed_after);
    if (r->nsteps > 1) {
        fprintf(f, "  members scaled");
        for (unsigned i = 0; i < r->nsteps; i++)
            fprintf(f, "%s%u", i ? " -> " : " ", r->steps[i]);
        fprintf(f, "; %u at the end, term %u\n", r->members, r->term);
    }
    fprintf(f, "  completions %llu, reservations outstanding %llu; handed back %llu, daemon "
               "errors %llu\n",
            (unsigned long long)r->completed, (unsigned long long)r->outstanding,
            (unsigned long long)r->handed_back, (unsigned long long)r->daemon_errors);
    fprintf(f, "  events by member:");
    uint64_t total = 0;
    unsigned last = 0;
    for (unsigned i = 0; i < MRT_GROUP_MAX_MEMBERS; i++)
        if (r->per_member[i])
            total += r->per_member[i], last = i + 1;
    for (unsigned i = 0; i < last; i++)
        fprintf(f, " %u: %.1f%%", i, total ? 100.0 * (double)r->per_member[i] / (double)total : 0.0);
    fprintf(f, "\n");
    if (r->nproblems)
        fprintf(f, "  FAILED: %s\n", r->problems);
    else
        fprintf(f, "  OK: every event out exactly once; every chain validated (resumed ones "
                   "included); reservations 0\n");
}
