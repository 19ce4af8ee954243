/*
 * The pipeline suite's baselines: rte_ring alone, measured the way the
 * pipeline is measured (bursts of 32, pinned CPUs, the same clocks).
 *
 *   raw_ring_32B*    a 32-byte message, one word written and one read: the
 *                    ring's own throughput (the "raw ring").
 *   event_ring_64B*  the floor of any design that carries an event: the
 *                    16 B-payload event inline in a 64-byte message (header,
 *                    32-byte causal link, payload, send time) written whole,
 *                    and each message handed to a daemon-like function that
 *                    reads its link and payload. No pool, no selection, no
 *                    host lookup, no completion: nothing meshrt could remove.
 */
#ifndef MRT_BENCH_PIPELINE_RAW_H
#define MRT_BENCH_PIPELINE_RAW_H

#include "meshrt/mrt_topo.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum pl_raw_kind {
    PL_RAW_1T,      /* one thread: a burst in, the same burst out; CPU clock */
    PL_RAW_1WAY,    /* SPSC between the two CPUs; wall clock */
    PL_RAW_DUPLEX,  /* each CPU produces to the other and consumes, as shards do */
    PL_EV_1T,       /* event_ring_64B_1t */
    PL_EV_1WAY,     /* event_ring_64B */
    PL_RAW_COUNT
} pl_raw_kind;

/* The figure's name ("raw_ring_32B_1t", ...) and its --only spelling ("raw_1t", ...). */
extern const char *const pl_raw_name[PL_RAW_COUNT];
extern const char *const pl_raw_only[PL_RAW_COUNT];

/* Threads the baseline runs on (1 or 2) and its message size in bytes. */
int pl_raw_threads(pl_raw_kind k);
unsigned pl_raw_bytes(pl_raw_kind k);

/*
 * Millions of messages per second over `total` messages (0 when a ring
 * could not be made). `oncpu`: the lowest thread's CPU time / wall time
 * (1 on one thread). Two-thread kinds pin to cpu[0], cpu[1] when `pinned`.
 */
double pl_raw_mops(pl_raw_kind k, const mrt_topo *topo, const mrt_cpu cpu[2], bool pinned,
                   uint64_t total, double *oncpu);

#endif
