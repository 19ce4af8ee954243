/*
 * meshrt-bench groups, standby section: promotion with B buffered events —
 * the time from the promotion call until the new active has served its
 * first new event (its output received at egress), on a running runtime.
 * Baseline in the same run, interleaved per repetition: the same promotion
 * with nothing buffered (standbys synced just before). Each repetition
 * makes a fresh 3-member group: inject 1,000 events, sync, inject B more,
 * wait for every output, then time promote + one event.
 */
#include "bench.h"

#include "meshrt/mrt_groups.h"
#include "meshrt/mrt_runtime.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUITE "groups"
#define MAX_REPS 64

typedef struct sb_acc {
    uint64_t acc;
} sb_acc;

static int acc_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    sb_acc *a = state;
    uint64_t seq = 0;
    memcpy(&seq, ev->payload, ev->payload_len < 8 ? ev->payload_len : 8);
    a->acc = a->acc * 31 + seq;
    uint64_t o[2] = { seq, a->acc };
    return mrt_daemon_emit_copy(sink, o, sizeof o);
}

static int acc_snapshot(const void *state, void *buf, size_t cap, size_t *len)
{
    *len = sizeof(sb_acc);
    if (cap < sizeof(sb_acc))
        return MRT_DAEMON_ENOSPACE;
    memcpy(buf, state, sizeof(sb_acc));
    return MRT_OK;
}

static int acc_restore(void *state, const void *buf, size_t len)
{
    if (len != sizeof(sb_acc))
        return MRT_DAEMON_EBADSTATE;
    memcpy(state, buf, sizeof(sb_acc));
    return MRT_OK;
}

static const mrt_daemon_vtable acc_vt = { .name = "bench-acc", .process = acc_process,
                                          .snapshot = acc_snapshot, .restore = acc_restore };

typedef struct sb_world {
    mrt_runtime *rt;
    mrt_compute *c;
    mrt_groups *g;
    uint16_t type;
    uint64_t out, want_seq;
    bool seen;
    uint64_t bad;
} sb_world;

static void on_out(void *ctx, const mrt_compute_output *o)
{
    sb_world *w = ctx;
    uint64_t seq;
    memcpy(&seq, o->payload, sizeof seq);
    w->out++;
    if (seq == w->want_seq)
        w->seen = true;
}

static void drain_until(sb_world *w, uint64_t n)
{
    while (w->out < n)
        if (mrt_compute_egress_poll(w->c, on_out, w, 512) == 0)
            sched_yield();
}

static int inject(sb_world *w, mrt_group *grp, uint64_t seq)
{
    int rc;
    while ((rc = mrt_group_inject(grp, seq, &seq, sizeof seq)) != MRT_OK) {
        if (rc != MRT_SHARD_EFULL && rc != MRT_GROUPS_EMAXCONN && rc != MRT_SVC_EPOOL &&
            rc != MRT_GROUPS_ENOMEMBER)
            return rc;
        if (mrt_compute_egress_poll(w->c, on_out, w, 512) == 0)
            sched_yield();
    }
    return MRT_OK;
}

/* One repetition: ns from promote to the first new event's output; *replayed from the group. */
static int one(sb_world *w, uint64_t buffered, uint64_t seed, double *ns, uint64_t *replayed)
{
    mrt_group_standby_config sc;
    mrt_group_standby_config_default(&sc);
    sc.type = w->type;
    sc.members = 3;
    sc.seed = seed;
    mrt_group *grp;
    int rc = mrt_group_standby_create(w->g, &sc, &grp);
    if (rc == MRT_OK)
        rc = mrt_group_subscribe(grp, MRT_COMPUTE_TO_EGRESS, (mrt_compute_ref){ 0, 0 });
    if (rc != MRT_OK)
        return rc;
    uint64_t seq = 0, base = w->out;
    for (; seq < 1000 && rc == MRT_OK; seq++)
        rc = inject(w, grp, seq);
    drain_until(w, base + seq);
    int n = mrt_group_standby_sync(grp);
    if (n < 0)
        rc = n;
    for (uint64_t k = 0; k < buffered && rc == MRT_OK; k++, seq++)
        rc = inject(w, grp, seq);
    drain_until(w, base + seq);
    if (rc == MRT_OK) {
        w->want_seq = seq;
        w->seen = false;
        uint64_t t0 = mrt_bench_now_ns();
        rc = mrt_group_standby_promote(grp);
        if (rc == MRT_OK)
            rc = inject(w, grp, seq++);
        while (rc == MRT_OK && !w->seen)
            if (mrt_compute_egress_poll(w->c, on_out, w, 512) == 0)
                sched_yield();
        *ns = (double)(mrt_bench_now_ns() - t0);
        mrt_group_standby_info in;
        if (mrt_group_standby_info_get(grp, &in) == MRT_OK)
            *replayed = in.replayed;
    }
    mrt_group_destroy(grp);
    return rc;
}

/* ---- the replay alone, in process: mrt_replay_apply vs plain deliver of the same events ---- */

typedef struct replay_ctx {
    mrt_replay *buf;
    mrt_host *h;
    uint64_t n;
    sb_acc st;
} replay_ctx;

static int replay_fill(replay_ctx *x, uint64_t n)
{
    mrt_replay_config rc = { .max_events = (uint32_t)n, .max_bytes = (uint32_t)(n * 8),
                             .max_standbys = 1 };
    if (mrt_replay_create(&rc, &x->buf) != MRT_OK)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        mrt_event ev = { .link = { .origin_hash = 9, .sequence = i }, .payload = &i,
                         .payload_len = sizeof i };
        if (mrt_replay_append(x->buf, &ev, i) != MRT_OK)
            return -1;
    }
    x->n = n;
    return mrt_replay_synced(x->buf, 0, 0) == MRT_OK ? 0 : -1;
}

/* A fresh host at ingress 0 each time (not timed), then the timed pass. */
static double replay_once(replay_ctx *x, bool suppressed)
{
    mrt_host_config hc;
    memset(&hc, 0, sizeof hc);
    memset(hc.key, 0x5b, sizeof hc.key);
    x->st.acc = 0;
    if (mrt_host_create(&hc, (mrt_daemon){ &acc_vt, &x->st }, &x->h) != MRT_OK)
        return -1;
    uint64_t t0 = mrt_bench_now_ns(), done = 0;
    if (suppressed) {
        (void)mrt_replay_apply(x->buf, 0, x->h, 0, &done);
        (void)mrt_replay_synced(x->buf, 0, 0); /* rewind the sync point for the next pass */
    } else {
        for (uint64_t i = 0; i < x->n; i++) {
            mrt_event ev;
            (void)mrt_replay_at(x->buf, i, &ev);
            done += mrt_host_deliver(x->h, &ev, 0) == MRT_OK;
            mrt_host_release_outputs(x->h);
        }
    }
    double ns = (double)(mrt_bench_now_ns() - t0);
    mrt_host_destroy(x->h);
    return done == x->n ? ns / (double)x->n : -1;
}

static void replay_section(const mrt_bench_opts *o, uint64_t n)
{
    static replay_ctx x;
    memset(&x, 0, sizeof x);
    mrt_bench_section(o, "groups: standby replay alone (in process), ns per replayed event");
    if (replay_fill(&x, n) != 0) {
        fprintf(stderr, "meshrt-bench groups: replay buffer set-up failed\n");
        mrt_replay_destroy(x.buf);
        return;
    }
    int reps = o->reps < MAX_REPS ? o->reps : MAX_REPS;
    double rp[MAX_REPS], dl[MAX_REPS], ratio[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        dl[r] = replay_once(&x, false);
        rp[r] = replay_once(&x, true);
        ratio[r] = rp[r] / dl[r];
    }
    char pj[64];
    snprintf(pj, sizeof pj, "{\"events\":%llu}", (unsigned long long)n);
    mrt_bench_result(o, SUITE, "replay_apply_suppressed", pj, "median_ns",
                     mrt_bench_median(rp, reps), -1);
    mrt_bench_result(o, SUITE, "deliver_release_same_events", pj, "median_ns",
                     mrt_bench_median(dl, reps), -1);
    mrt_bench_ratio(o, SUITE, "replay_over_deliver", "replay_apply_suppressed",
                    "deliver_release_same_events", mrt_bench_median(ratio, reps), 0, false);
    mrt_replay_destroy(x.buf);
}

int mrt_bench_groups_promotion(const mrt_bench_opts *o)
{
    static sb_world w;
    memset(&w, 0, sizeof w);
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.workload = false;
    cfg.allow_unbound = true;
    cfg.shards = 4;
    char err[256] = "";
    if (mrt_runtime_create(&cfg, &w.rt, err, sizeof err) != MRT_OK) {
        fprintf(stderr, "meshrt-bench groups: runtime: %s\n", err);
        return 1;
    }
    w.c = mrt_runtime_compute(w.rt);
    mrt_compute_type t = { .name = "bench-acc", .vt = &acc_vt, .state_size = sizeof(sb_acc),
                           .max_outputs = 1 };
    if (mrt_groups_create(w.rt, NULL, &w.g) != MRT_OK ||
        mrt_groups_register_type(w.g, &t, &w.type) != MRT_OK ||
        mrt_runtime_start(w.rt, err, sizeof err) != MRT_OK) {
        fprintf(stderr, "meshrt-bench groups: set-up: %s\n", err);
        mrt_runtime_destroy(w.rt);
        return 1;
    }
    const uint64_t buffered = mrt_bench_iters(o, 10000);
    mrt_bench_section(o, "groups: standby promotion -> first event served by the new active");
    int reps = o->reps < MAX_REPS ? o->reps : MAX_REPS;
    double base[MAX_REPS], full[MAX_REPS], ratio[MAX_REPS];
    uint64_t replayed = 0, replayed0 = 0;
    int rc = MRT_OK;
    for (int r = 0; r < reps && rc == MRT_OK; r++) {
        rc = one(&w, 0, 1000 + 2 * (uint64_t)r, &base[r], &replayed0);
        if (rc == MRT_OK)
            rc = one(&w, buffered, 1001 + 2 * (uint64_t)r, &full[r], &replayed);
        ratio[r] = full[r] / base[r];
    }
    if (rc != MRT_OK) {
        fprintf(stderr, "meshrt-bench groups: promotion run: %s\n", mrt_strerror(rc));
    } else {
        char p0[96], p1[96];
        snprintf(p0, sizeof p0, "{\"buffered\":0,\"replayed\":%llu}",
                 (unsigned long long)replayed0);
        snprintf(p1, sizeof p1, "{\"buffered\":%llu,\"replayed\":%llu}",
                 (unsigned long long)buffered, (unsigned long long)replayed);
        mrt_bench_result(o, SUITE, "promote_first_event/0", p0, "median_ns",
                         mrt_bench_median(base, reps), -1);
        mrt_bench_result(o, SUITE, "promote_first_event/buffered", p1, "median_ns",
                         mrt_bench_median(full, reps), -1);
        mrt_bench_ratio(o, SUITE, "promote_buffered_over_empty", "promote_first_event/buffered",
                        "promote_first_event/0", mrt_bench_median(ratio, reps), 0, false);
    }
    mrt_runtime_stop(w.rt);
    mrt_groups_destroy(w.g);
    mrt_runtime_destroy(w.rt);
    if (rc == MRT_OK)
        replay_section(o, buffered);
    return rc == MRT_OK ? 0 : 1;
}
