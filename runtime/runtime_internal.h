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
    mrt_svc_shard *ss;    /* services of the shard (workload off); the shard thread's */
} mrt_shard_thread;

struct mrt_workload;

struct mrt_runtime {
    mrt_runtime_config cfg;
    mrt_topo *topo;
    mrt_topo_selection sel;
    mrt_mesh *mesh;
    mrt_shard_thread *threads;
    struct mrt_workload **workload;   /* one per shard, owned by the shard's arena */
    mrt_svc *svc;                     /* services and compute: when the workload is off */
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
};

/* Default workload: set up on the shard's own thread (allocates from its arena). */
int mrt_workload_attach(mrt_runtime *rt, mrt_shard *s);
/* Free shard i's workload state (after the shard thread returned). */
void mrt_workload_detach(mrt_runtime *rt, unsigned i);
/* Control plane: take up to max breaker reports shard i sent up. */
size_t mrt_workload_take_reports(mrt_runtime *rt, unsigned i, mrt_lb_breaker_report *out,
                                 size_t max);

/*
 * The 32 bytes that name shard i: its balancer node id and its daemon host's
 * key ("meshrt-shard" and the index, the rest zero).
 */
#define MRT_SHARD_ID_LEN 32
_Static_assert(MRT_SHARD_ID_LEN == MRT_LB_NODE_ID_LEN, "node id size");
void mrt_shard_identity(unsigned i, uint8_t id[MRT_SHARD_ID_LEN]);

/*
 * Balancer control plane: a registry (the workload's: one endpoint per
 * shard; compute's set: empty until mrt_compute_set_add), the domain, the
 * first snapshot.
 */
int mrt_balance_setup(mrt_runtime *rt, unsigned shards);
void mrt_balance_teardown(mrt_runtime *rt);

#endif
