/*
 * `meshrt run --scenario standby|fork` (dispatched from groups/scenario.c):
 *
 *   standby  a 3-member standby group under load from an ingress thread; its
 *            daemon is stateful and emits two outputs per event. The
 *            standbys are synced every 20 ms; at half time the active's
 *            shard is failed and the control tick's recovery promotes the
 *            freshest standby, replaying the events past its sync point
 *            with their outputs suppressed. Verdict: every event out
 *            exactly twice (no output missing or repeated across the
 *            failover), the group's one chain validated end to end by one
 *            receiver, one promotion, suppressed = 2 x replayed.
 *   fork     a running daemon takes the load for the first half; then a
 *            3-fork group of it is made and takes the rest. Verdict: the
 *            lineage verifies (and each record round-trips its 65 bytes),
 *            each fork's chain verifies from its fork genesis, the
 *            parent's from its genesis, every event out exactly twice.
 *
 * The receiver holds outputs that arrive ahead of their chain's next
 * sequence (outputs of two shards meet in egress in any order across a
 * failover) and accepts them when the gap fills; none may remain.
 */
#include "groups/scenario_ha.h"
#include "groups/scenario_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HA_WINDOW 512u
#define HA_HELD 4096u
#define HA_FORKS 3u

/* ---- the daemon: stateful, two outputs per event {seq, acc, k} -------------- */

typedef struct ha_acc {
    uint64_t acc, events;
} ha_acc;

static int acc_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    ha_acc *a = state;
    uint64_t seq = 0;
    memcpy(&seq, ev->payload, ev->payload_len < 8 ? ev->payload_len : 8);
    a->acc = a->acc * 1000003u + seq + 1;
    a->events++;
    for (uint64_t k = 0; k < 2; k++) {
        uint64_t o[3] = { seq, a->acc ^ k, k };
        int rc = mrt_daemon_emit_copy(sink, o, sizeof o);
        if (rc != MRT_OK)
            return rc;
    }
    return MRT_OK;
}

static int acc_snapshot(const void *state, void *buf, size_t cap, size_t *len)
{
    *len = sizeof(ha_acc);
    if (cap < sizeof(ha_acc))
        return MRT_DAEMON_ENOSPACE;
    memcpy(buf, state, sizeof(ha_acc));
    return MRT_OK;
}

static int acc_restore(void *state, const void *buf, size_t len)
{
    if (len != sizeof(ha_acc))
        return MRT_DAEMON_EBADSTATE;
    memcpy(state, buf, sizeof(ha_acc));
    return MRT_OK;
}

static const mrt_daemon_vtable acc_vt = { .name = "scenario-acc", .process = acc_process,
                                          .snapshot = acc_snapshot, .restore = acc_restore };

/* ---- receiver ------------------------------------------------------------------- */

typedef struct ha_held {
    mrt_causal_link link;
    uint8_t payload[24];
} ha_held;

typedef struct ha_chain {
    uint64_t id;
    mrt_causal_chain chain;
    uint64_t count;
    unsigned nheld;
    ha_held held[HA_HELD];
} ha_chain;

typedef struct ha {
    mrt_runtime *rt;
    mrt_compute *c;
    mrt_groups *g;
    mrt_group *grp;             /* the standby group, or the fork group once made */
    mrt_compute_ref parent;     /* fork: the parent daemon */
    _Atomic bool to_group;      /* fork: the ingress thread now feeds the group */
    pthread_t ingress;
    bool ingress_running;
    _Atomic bool ingress_stop;
    _Atomic uint64_t injected, refused, events_out;
    ha_chain ch[1 + HA_FORKS];
    unsigned nch;
    mrt_fork_record rec[HA_FORKS];
    unsigned nrec;
    mrt_sc_tally seen; /* per sequence: outputs that carried it */
    mrt_scenario_result *r;
} ha;

static ha_chain *chain_of(ha *s, uint64_t id)
{
    for (unsigned i = 0; i < s->nch; i++)
        if (s->ch[i].id == id)
            return &s->ch[i];
    if (s->nch == sizeof s->ch / sizeof s->ch[0])
        return NULL;
    ha_chain *c = &s->ch[s->nch++];
    c->id = id;
    c->count = c->nheld = 0;
    mrt_causal_chain_init(&c->chain, id);
    for (unsigned k = 0; k < s->nrec; k++) /* a fork: from its fork genesis */
        if (s->rec[k].forked_origin == id)
            (void)mrt_fork_chain_init(&c->chain, &s->rec[k]);
    return c;
}

/* One output accepted in chain order: count its event. */
static void accepted(ha *s, ha_chain *c, const uint8_t *payload)
{
    uint64_t seq;
    memcpy(&seq, payload, sizeof seq);
    mrt_scenario_result *r = s->r;
    r->links++;
    c->count++;
    if (seq >= MRT_SC_SEQ_LIMIT) {
        r->bad_links++;
        return;
    }
    if (mrt_sc_tally_add(&s->seen, seq) == 2)
        atomic_store_explicit(&s->events_out, atomic_load(&s->events_out) + 1,
                              memory_order_release);
}

static void on_output(void *ctx, const mrt_compute_output *o)
{
    ha *s = ctx;
    mrt_scenario_result *r = s->r;
    r->received++;
    ha_chain *c = chain_of(s, o->from.id);
    if (c == NULL || o->len != 24) {
        r->bad_links++;
        return;
    }
    const mrt_causal_chain *ch = &c->chain;
    uint64_t next = ch->has_head ? ch->head.sequence + 1 : 0;
    if (o->link.origin_hash == c->id && o->link.sequence > next && c->nheld < HA_HELD) {
        ha_held *h = &c->held[c->nheld++]; /* ahead of a gap: held until it fills */
        h->link = o->link;
        memcpy(h->payload, o->payload, 24);
        return;
    }
    if (mrt_causal_chain_accept(&c->chain, &o->link, o->payload, o->len) != MRT_OK) {
        r->bad_links++;
        return;
    }
    accepted(s, c, o->payload);
    for (bool more = true; more;) { /* the held ones that now follow */
        more = false;
        for (unsigned i = 0; i < c->nheld; i++) {
            if (c->held[i].link.sequence != c->chain.head.sequence + 1)
                continue;
            if (mrt_causal_chain_accept(&c->chain, &c->held[i].link, c->held[i].payload, 24) !=
                MRT_OK)
                r->bad_links++;
            else
                accepted(s, c, c->held[i].payload);
            c->held[i] = c->held[--c->nheld];
            more = true;
            break;
        }
    }
}

static size_t poll_out(ha *s)
{
    return mrt_compute_egress_poll(s->c, on_output, s, 512);
}

/* ---- ingress ---------------------------------------------------------------------- */

static void *ingress_main(void *arg)
{
    ha *s = arg;
    (void)pthread_setname_np(pthread_self(), "mrt-sc-ingress");
    uint64_t seq = 0;
    unsigned spins = 0;
    while (!atomic_load_explicit(&s->ingress_stop, memory_order_relaxed)) {
        if (seq - atomic_load_explicit(&s->events_out, memory_order_acquire) >= HA_WINDOW) {
            mrt_sc_backoff(&spins);
            continue;
        }
        uint64_t p[2] = { seq, 0 };
        /* to_group is stored after s->grp: the fork group is visible once it reads true. */
        bool grouped = s->parent.id == 0 || atomic_load_explicit(&s->to_group, memory_order_acquire);
        int rc = grouped ? mrt_group_inject(s->grp, seq, p, sizeof p)
                         : mrt_compute_inject(s->c, s->parent, p, sizeof p);
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

/* ---- the run ------------------------------------------------------------------------- */

static int setup(ha *s, const mrt_runtime_config *cfg, bool fork, char *err, size_t errlen)
{
    mrt_runtime_config rc = *cfg;
    rc.workload = false;
    int st = mrt_runtime_create(&rc, &s->rt, err, errlen);
    if (st != MRT_OK)
        return st;
    if (!fork && mrt_runtime_shards(s->rt) < 3 && rc.allow_unbound && rc.shards == 0) {
        mrt_runtime_destroy(s->rt); /* few CPUs: unpinned shards (allowed) for the 3 members */
        s->rt = NULL;
        rc.shards = 4;
        if ((st = mrt_runtime_create(&rc, &s->rt, err, errlen)) != MRT_OK)
            return st;
    }
    s->c = mrt_runtime_compute(s->rt);
    s->r->shards = mrt_runtime_shards(s->rt);
    if (!fork && s->r->shards < 3) {
        snprintf(err, errlen, "--scenario standby needs at least 3 shards (one is failed): "
                              "select more CPUs or pass --allow-unbound");
        return MRT_RT_ESHARDS;
    }
    uint16_t type, plain;
    mrt_compute_type t = { .name = "acc", .vt = &acc_vt, .state_size = sizeof(ha_acc),
                           .max_outputs = 2, .payload_bytes = 1024,
                           .max_origins = 8 };
    if ((st = mrt_groups_create(s->rt, NULL, &s->g)) != MRT_OK ||
        (st = mrt_groups_register_type(s->g, &t, &type)) != MRT_OK) {
        snprintf(err, errlen, "groups: %s", mrt_strerror(st));
        return st;
    }
    t.name = "acc-parent";
    if (fork && (st = mrt_compute_register_type(s->c, &t, &plain)) != MRT_OK) {
        snprintf(err, errlen, "compute: %s", mrt_strerror(st));
        return st;
    }
    if ((st = mrt_runtime_start(s->rt, err, errlen)) != MRT_OK)
        return st;
    const mrt_compute_ref egress = { 0, 0 };
    if (fork) {
        st = mrt_compute_spawn(s->c, plain, MRT_COMPUTE_ANY_SHARD, NULL, NULL, 0, &s->parent);
        if (st == MRT_OK)
            st = mrt_compute_subscribe(s->c, s->parent, MRT_COMPUTE_TO_EGRESS, egress);
        s->r->members = type; /* kept for the fork step */
    } else {
        mrt_group_standby_config sc;
        mrt_group_standby_config_default(&sc);
        sc.type = type;
        sc.members = 3;
        sc.seed = 0x57a4db1;
        st = mrt_group_standby_create(s->g, &sc, &s->grp);
        if (st == MRT_OK)
            st = mrt_group_subscribe(s->grp, MRT_COMPUTE_TO_EGRESS, egress);
    }
    if (st != MRT_OK) {
        snprintf(err, errlen, "%s: %s", fork ? "parent" : "standby group", mrt_strerror(st));
        return st;
    }
    if (pthread_create(&s->ingress, NULL, ingress_main, s) != 0) {
        snprintf(err, errlen, "could not start the ingress thread");
        return MRT_RT_ETHREAD;
    }
    s->ingress_running = true;
    return MRT_OK;
}

/* The fork step: a 3-fork group of the running parent, which then takes the load. */
static void make_forks(ha *s, uint16_t type)
{
    mrt_group_fork_config fc;
    mrt_group_fork_config_default(&fc);
    fc.type = type;
    fc.forks = HA_FORKS;
    fc.parent = s->parent;
    mrt_group *grp;
    int st = mrt_group_fork_create(s->g, &fc, &grp);
    if (st == MRT_OK)
        st = mrt_group_subscribe(grp, MRT_COMPUTE_TO_EGRESS, (mrt_compute_ref){ 0, 0 });
    if (st != MRT_OK) {
        mrt_sc_problem(s->r, "fork group: %s", mrt_strerror(st));
        return;
    }
    unsigned n = HA_FORKS;
    (void)mrt_group_fork_records(grp, s->rec, &n);
    s->nrec = n;
    s->r->forks = n;
    s->r->fork_seq = s->rec[0].fork_seq;
    s->r->lineage_ok = mrt_group_fork_verify_lineage(grp) == MRT_OK;
    for (unsigned k = 0; k < n; k++) {
        uint8_t w[MRT_FORK_RECORD_SIZE];
        mrt_fork_record back;
        mrt_fork_record_encode(&s->rec[k], w);
        if (mrt_fork_record_decode(w, sizeof w, &back) != MRT_OK ||
            back.forked_origin != s->rec[k].forked_origin)
            s->r->lineage_ok = false;
    }
    s->grp = grp;
    atomic_store(&s->to_group, true);
}

static void finish(ha *s, bool fork)
{
    mrt_scenario_result *r = s->r;
    atomic_store(&s->ingress_stop, true);
    pthread_join(s->ingress, NULL);
    s->ingress_running = false;
    r->injected = atomic_load(&s->injected);
    r->refused = atomic_load(&s->refused);
    double t0 = mrt_sc_now_s();
    while ((atomic_load(&s->events_out) < r->injected ||
            (s->grp && mrt_group_outstanding(s->grp) > 0)) &&
           mrt_sc_now_s() - t0 < 10.0) {
        if (poll_out(s) == 0) {
            (void)mrt_runtime_control_tick(s->rt, false);
            sched_yield();
        }
    }
    if (s->grp) {
        mrt_group_health h;
        (void)mrt_group_health_get(s->grp, &h);
        r->members = h.members;
        r->term = h.term;
        r->respawns = h.respawns;
        r->outstanding = mrt_group_outstanding(s->grp);
        mrt_group_standby_info in;
        if (!fork && mrt_group_standby_info_get(s->grp, &in) == MRT_OK) {
            r->promotions = in.promotions;
            r->replayed = in.replayed_total;
            r->suppressed = in.suppressed_total;
            r->promote_ms = (double)in.promote_ns * 1e-6;
        }
    }
    mrt_runtime_stop(s->rt);
    for (unsigned i = 0; i < r->shards; i++) {
        mrt_compute_stats cs;
        if (mrt_compute_stats_get(s->c, i, &cs) == MRT_OK) {
            r->handed_back += cs.handed_back;
            r->daemon_errors += cs.daemon_errors;
        }
    }
    r->chains = s->nch;
    uint64_t held = 0;
    for (unsigned i = 0; i < s->nch; i++)
        held += s->ch[i].nheld;
    mrt_sc_tally_judge(&s->seen, r->injected, 2, &r->lost, &r->duplicated);
    if (s->seen.oom)
        mrt_sc_problem(r, "out of memory counting outputs");
    if (r->injected == 0)
        mrt_sc_problem(r, "no events moved");
    if (r->lost)
        mrt_sc_problem(r, "%llu events missing an output", (unsigned long long)r->lost);
    if (r->duplicated)
        mrt_sc_problem(r, "%llu events with an output more than once", (unsigned long long)r->duplicated);
    if (r->bad_links || held)
        mrt_sc_problem(r, "%llu causal links refused, %llu never followed their chain",
                (unsigned long long)r->bad_links, (unsigned long long)held);
    if (r->outstanding)
        mrt_sc_problem(r, "%llu reservations outstanding at exit", (unsigned long long)r->outstanding);
    if (r->handed_back)
        mrt_sc_problem(r, "%llu events handed back", (unsigned long long)r->handed_back);
    if (r->daemon_errors)
        mrt_sc_problem(r, "%llu daemon errors", (unsigned long long)r->daemon_errors);
}

int mrt_scenario_run_ha(const mrt_runtime_config *cfg, bool (*stop)(void *ctx), void *stop_ctx,
                        FILE *progress, mrt_scenario_result *out, char *err, size_t errlen)
{
    bool fork = strcmp(cfg->scenario, "fork") == 0;
    memset(out, 0, sizeof(*out));
    out->name = fork ? "fork" : "standby";
    out->failed_shard = -1;
    out->why_stop = "duration elapsed";
    ha *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MRT_ENOMEM;
    s->r = out;
    int rc = setup(s, cfg, fork, err, errlen);
    uint16_t type = (uint16_t)out->members;
    out->members = 0;
    double dur = cfg->duration_s > 0 ? cfg->duration_s : 2.0;
    bool acted = false;
    double t0 = mrt_sc_now_s(), last_tick = t0, last_sync = t0, last_line = t0;
    double interval = cfg->stats_interval_ms * 1e-3;
    while (rc == MRT_OK) {
        double now = mrt_sc_now_s(), t = now - t0;
        if (t >= dur && acted)
            break;
        if (stop && stop(stop_ctx)) {
            out->why_stop = "stopped";
            break;
        }
        if (!acted && t >= dur / 2) {
            acted = true;
            if (fork) {
                make_forks(s, type);
            } else {
                mrt_group_standby_info in;
                mrt_group_member_info mi;
                if (mrt_group_standby_info_get(s->grp, &in) == MRT_OK &&
                    mrt_group_member(s->grp, in.active, &mi) == MRT_OK) {
                    (void)mrt_runtime_fail_shard(s->rt, mi.ref.shard);
                    out->failed_shard = mi.ref.shard;
                    out->failed_at_s = t;
                }
            }
        }
        if (!fork && now - last_sync >= 0.02) { /* well inside the buffer's 65,536 events */
            (void)mrt_group_standby_sync(s->grp);
            last_sync = now;
        }
        if (now - last_tick >= 0.05) {
            (void)mrt_runtime_control_tick(s->rt, false); /* recovery: promotion */
            last_tick = now;
        }
        if (progress && now - last_line >= interval) {
            fprintf(progress, "scenario %-7s t %6.2f s  injected %10llu  received %10llu\n",
                    out->name, t, (unsigned long long)atomic_load(&s->injected),
                    (unsigned long long)out->received);
            fflush(progress);
            last_line = now;
        }
        if (poll_out(s) == 0) {
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL);
        }
    }
    if (rc == MRT_OK) {
        finish(s, fork);
        out->elapsed_s = mrt_sc_now_s() - t0;
        if (!acted)
            mrt_sc_problem(out, fork ? "stopped before the fork" : "stopped before the failure");
        else if (fork && !out->lineage_ok)
            mrt_sc_problem(out, "the fork lineage does not verify");
        else if (!fork && out->promotions != 1)
            mrt_sc_problem(out, "%llu promotions (1 expected)", (unsigned long long)out->promotions);
        if (!fork && out->suppressed != 2 * out->replayed)
            mrt_sc_problem(out, "%llu outputs suppressed for %llu events replayed",
                    (unsigned long long)out->suppressed, (unsigned long long)out->replayed);
    }
    if (s->ingress_running) {
        atomic_store(&s->ingress_stop, true);
        pthread_join(s->ingress, NULL);
    }
    if (s->rt) {
        mrt_runtime_stop(s->rt);
        mrt_groups_destroy(s->g);
        mrt_runtime_destroy(s->rt);
    }
    mrt_sc_tally_free(&s->seen);
    free(s);
    return rc;
}

void mrt_scenario_print_ha(FILE *f, bool json, const mrt_scenario_result *r)
{
    bool fork = strcmp(r->name, "fork") == 0;
    if (json) {
        fprintf(f, "{\"scenario\":\"%s\",\"shards\":%u,\"elapsed_s\":%.3f,\"stop\":\"%s\","
                   "\"injected\":%llu,\"refused\":%llu,\"outputs\":%llu,\"missing\":%llu,"
                   "\"duplicated\":%llu,\"links\":%llu,\"chains\":%llu,\"bad_links\":%llu,"
                   "\"handed_back\":%llu,\"daemon_errors\":%llu,\"outstanding\":%llu,",
                r->name, r->shards, r->elapsed_s, r->why_stop, (unsigned long long)r->injected,
                (unsigned long long)r->refused, (unsigned long long)r->received,
                (unsigned long long)r->lost, (unsigned long long)r->duplicated,
                (unsigned long long)r->links, (unsigned long long)r->chains,
                (unsigned long long)r->bad_links, (unsigned long long)r->handed_back,
                (unsigned long long)r->daemon_errors, (unsigned long long)r->outstanding);
        if (fork)
            fprintf(f, "\"forks\":%u,\"fork_seq\":%llu,\"lineage_ok\":%s,", r->forks,
                    (unsigned long long)r->fork_seq, r->lineage_ok ? "true" : "false");
        else
            fprintf(f, "\"failed_shard\":%d,\"term\":%u,\"promotions\":%llu,\"replayed\":%llu,"
                       "\"suppressed\":%llu,\"promote_ms\":%.3f,",
                    r->failed_shard, r->term, (unsigned long long)r->promotions,
                    (unsigned long long)r->replayed, (unsigned long long)r->suppressed,
                    r->promote_ms);
        fprintf(f, "\"ok\":%s,\"problems\":\"%s\"}\n", r->nproblems ? "false" : "true",
                r->problems);
        return;
    }
    fprintf(f, "summary: scenario %s, %u shard%s, %.2f s (%s)\n", r->name, r->shards,
            r->shards == 1 ? "" : "s", r->elapsed_s, r->why_stop);
    fprintf(f, "  injected %llu (%llu refused for backpressure or failover, offered again)\n",
            (unsigned long long)r->injected, (unsigned long long)r->refused);
    fprintf(f, "  outputs %llu (two per event): events missing one %llu, with one twice %llu\n",
            (unsigned long long)r->received, (unsigned long long)r->lost,
            (unsigned long long)r->duplicated);
    fprintf(f, "  %llu causal links validated in %llu chain%s, %llu refused\n",
            (unsigned long long)r->links, (unsigned long long)r->chains, r->chains == 1 ? "" : "s",
            (unsigned long long)r->bad_links);
    if (fork)
        fprintf(f, "  %u forks at fork_seq %llu; lineage %s; each fork's chain from its fork "
                   "genesis\n",
                r->forks, (unsigned long long)r->fork_seq, r->lineage_ok ? "verifies" : "FAILS");
    else
        fprintf(f, "  shard %d (the active's) failed at %.2f s: %llu promotion, term %u, %llu "
                   "events replayed, %llu outputs suppressed, promotion %.3f ms\n",
                r->failed_shard, r->failed_at_s, (unsigned long long)r->promotions, r->term,
                (unsigned long long)r->replayed, (unsigned long long)r->suppressed, r->promote_ms);
    fprintf(f, "  reservations outstanding %llu; handed back %llu, daemon errors %llu\n",
            (unsigned long long)r->outstanding, (unsigned long long)r->handed_back,
            (unsigned long long)r->daemon_errors);
    if (r->nproblems)
        fprintf(f, "  FAILED: %s\n", r->problems);
    else
        fprintf(f, "  OK: every output exactly once across the %s; every chain validated\n",
                fork ? "fork" : "failover");
}
