/* Private layout of the runtime. */
#ifndef MESHRT_RUNTIME_INTERNAL_H
#define MESHRT_RUNTIME_INTERNAL_H

#include "meshrt/mrt_balancer.h"
#include "meshrt/mrt_runtime.h"
#include "meshrt/mrt_services.h"

#include <pthread.h>

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
};

/*
 * Balancer control plane: a registry (compute's set: empty until
 * mrt_compute_set_add), the domain, the first snapshot.
 */
int mrt_balance_setup(mrt_runtime *rt, unsigned shards);
void mrt_balance_teardown(mrt_runtime *rt);

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

#endif
