/* Private layout of the runtime. */
#ifndef MESHRT_RUNTIME_INTERNAL_H
#define MESHRT_RUNTIME_INTERNAL_H

#include "meshrt/mrt_balancer.h"
#include "meshrt/mrt_runtime.h"
#include "meshrt/mrt_services.h"

#include <pthread.h>

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

#endif
