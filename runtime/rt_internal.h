/* Private layout of the runtime. */
#ifndef MESHRT_RUNTIME_RT_INTERNAL_H
#define MESHRT_RUNTIME_RT_INTERNAL_H

#include "meshrt/mrt_balancer.h"
#include "meshrt/mrt_runtime.h"
#include "meshrt/mrt_services.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

typedef struct mrt_stall_watch mrt_stall_watch; /* runtime/stall.c */

typedef struct mrt_shard_thread {
    struct mrt_runtime *rt;
    unsigned index;
    pthread_t tid;
    bool running;
    int bind_rc;
    int init_rc;
    mrt_svc_shard *ss;    /* services of the shard; the shard thread's */
} mrt_shard_thread;

struct mrt_runtime {
    mrt_runtime_config cfg;
    mrt_topo *topo;
    mrt_topo_selection sel;
    mrt_mesh *mesh;
    mrt_shard_thread *threads;
    mrt_svc *svc;                     /* services and compute */
    mrt_compute *compute;
    unsigned pinned;                  /* shards 0..pinned-1 bind to their CPU; the rest run free */
    unsigned unbound;
    /* Balancer control plane (runtime/balance.c); only the control thread touches these. */
    mrt_lb_registry *lb_registry;
    mrt_lb_domain *lb_domain;
    uint64_t lb_next_change;
    uint64_t lb_reports;
    /* Their counters as of the last tick, for readers on any thread (the metrics endpoint). */
    struct {
        _Atomic uint64_t published, retired, freed, breaker_reports;
    } lb_pub;
    struct rt_pub_block *pub;         /* per shard: the published stats (runtime/publish.c) */
    /* Scheduler (runtime/sched.c): control thread only. */
    mrt_sched *sched;
    uint64_t *sched_prev;             /* per shard: busy and total cycles at the last refresh */
    bool *failed;                     /* per shard: mrt_runtime_fail_shard */
    mrt_runtime_tick_fn tick_fn[MRT_RUNTIME_MAX_TICK_HOOKS];
    void *tick_ctx[MRT_RUNTIME_MAX_TICK_HOOKS];
    unsigned ntick;
    bool started;
    bool running;
    /* Start-up gate. */
    bool gate_init;
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    unsigned arrived;
    bool go;
    bool abort;
    mrt_stall_watch *stall;           /* the stall detector (runtime/stall.c) */
    struct mrt_metrics *metrics;      /* the metrics endpoint (runtime/metrics.c), NULL when off */
};

/*
 * Balancer control plane: a registry (compute's set: empty until
 * mrt_compute_set_add), the domain, the first snapshot.
 */
int mrt_balance_setup(mrt_runtime *rt, unsigned shards);
void mrt_balance_teardown(mrt_runtime *rt);

/*
 * Stall detector (runtime/stall.c): create sets every shard's threshold
 * (before any shard thread exists); start runs the watcher thread when
 * cfg.stall_ms > 0 (after the shards started); stop joins it (before the
 * shard threads are joined); destroy frees it.
 */
int mrt_stall_watch_create_(mrt_runtime *rt);
int mrt_stall_watch_start_(mrt_runtime *rt);
void mrt_stall_watch_stop_(mrt_runtime *rt);
void mrt_stall_watch_destroy_(mrt_runtime *rt);

/*
 * Observation (runtime/publish.c): the per-shard blocks and the services
 * subsystem that publishes them (after compute's, so its hook runs after
 * compute's). Setup after services and compute exist, before start.
 */
int mrt_publish_setup(mrt_runtime *rt);
void mrt_publish_teardown(mrt_runtime *rt);
/* Read shard i's block / histogram copy (stats.c), retrying while it is written. */
void mrt_publish_read(const mrt_runtime *rt, unsigned i, mrt_runtime_shard_stats *out);
void mrt_publish_read_hist(const mrt_runtime *rt, unsigned i, mrt_runtime_hist_kind kind,
                           mrt_hist *out);

/*
 * Scheduler (runtime/sched.c): validate a --tags spec against n shards
 * (message in err); create the scheduler with topology and tags and make
 * it compute's default placement; refresh the loads and run the tick hooks
 * (from mrt_runtime_control_tick); free it.
 */
int mrt_sched_tags_check(const char *spec, unsigned n, char *err, size_t errlen);
int mrt_sched_setup(mrt_runtime *rt, char *err, size_t errlen);
void mrt_sched_refresh(mrt_runtime *rt);
void mrt_sched_run_hooks(mrt_runtime *rt);
void mrt_sched_teardown(mrt_runtime *rt);

/* Write a formatted message into err[len] (nothing when err is NULL or len 0). */
static inline __attribute__((format(printf, 3, 4))) void mrt_rt_seterr(char *err, size_t len,
                                                                       const char *fmt, ...)
{
    if (err == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

#endif
