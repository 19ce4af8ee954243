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
    bool started;
    bool running;
    /* Start-up gate. */
    bool gate_init;
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    unsigned arrived;
    bool go;
    bool abort;
    struct mrt_metrics *metrics;      /* the metrics endpoint (runtime/metrics.c), NULL when off */
};

/*
 * Balancer control plane: a registry (compute's set: empty until
 * mrt_compute_set_add), the domain, the first snapshot.
 */
int mrt_balance_setup(mrt_runtime *rt, unsigned shards);
void mrt_balance_teardown(mrt_runtime *rt);

#endif
