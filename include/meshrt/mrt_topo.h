/*
 * mrt_topo.h — machine topology (hwloc): NUMA nodes, cores, PUs, caches;
 * choosing the CPUs shards run on; binding a thread and its memory.
 * Knows nothing else of meshrt.
 */
#ifndef MESHRT_MRT_TOPO_H
#define MESHRT_MRT_TOPO_H

#include "meshrt/mrt_core.h"

#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-100 .. -199). */
enum mrt_topo_status {
    MRT_TOPO_ELOAD = -100,        /* hwloc could not discover the machine */
    MRT_TOPO_ESYNTAX = -101,      /* cpuset list is malformed */
    MRT_TOPO_ERANGE = -102,       /* a CPU index does not exist on this machine */
    MRT_TOPO_EDUP = -103,         /* a CPU appears twice in the list */
    MRT_TOPO_ENONODE = -104,      /* no such NUMA node */
    MRT_TOPO_EEMPTY = -105,       /* the selection has no CPU */
    MRT_TOPO_ETOOMANY = -106,     /* more CPUs than MRT_TOPO_MAX_CPUS */
    MRT_TOPO_EBIND_CPU = -107,    /* the OS refused to bind the thread to its PU */
    MRT_TOPO_EBIND_MEM = -108,    /* the OS refused to bind memory to the node */
};

/* Name of a topo status code; NULL outside -100..-199. */
const char *mrt_topo_strerror(int status);

#define MRT_TOPO_MAX_CPUS 1024

/* Discovered topology. Opaque; immutable after load. */
typedef struct mrt_topo mrt_topo;

/* Discover this machine. MRT_TOPO_ELOAD or MRT_ENOMEM on failure. */
int mrt_topo_load(mrt_topo **out);
/* Release a topology (NULL is a no-op). */
void mrt_topo_destroy(mrt_topo *t);

/* Number of NUMA nodes (>= 1: a machine without NUMA reports one node, 0). */
unsigned mrt_topo_numa_count(const mrt_topo *t);
/* The NUMA node the calling thread currently runs on (0 when unknown). */
int mrt_topo_current_node(const mrt_topo *t);

/* One shard placement: an OS CPU index (PU) and the NUMA node it belongs to. */
typedef struct mrt_cpu {
    unsigned pu;        /* OS index of the processing unit */
    unsigned core;      /* logical index of its physical core */
    int numa_node;      /* OS index of its NUMA node */
} mrt_cpu;

/* A selection of CPUs, one shard per entry, in ascending PU order. */
typedef struct mrt_topo_selection {
    unsigned count;
    mrt_cpu cpus[MRT_TOPO_MAX_CPUS];
} mrt_topo_selection;

/*
 * Parse a cpuset list such as "0-3,8" into ascending, de-duplicated-checked
 * CPU indices. Refuses empty or malformed lists (MRT_TOPO_ESYNTAX),
 * duplicates including overlapping ranges (MRT_TOPO_EDUP), more than `cap`
 * CPUs (MRT_TOPO_ETOOMANY). Does not check that the CPUs exist.
 */
int mrt_cpuset_parse(const char *list, unsigned *cpus, unsigned cap, unsigned *count);

/* One shard per physical core of NUMA node `node` (first PU of each core). */
int mrt_topo_select_node(const mrt_topo *t, int node, mrt_topo_selection *out);
/* Exactly the PUs named in `list` (cpuset syntax); each must exist (MRT_TOPO_ERANGE). */
int mrt_topo_select_cpuset(const mrt_topo *t, const char *list, mrt_topo_selection *out);

/*
 * Bind the calling thread to PU `cpu->pu` and its future memory to NUMA
 * node `cpu->numa_node`. Returns MRT_TOPO_EBIND_CPU / MRT_TOPO_EBIND_MEM
 * when the OS refuses (containers often refuse memory binding).
 */
int mrt_topo_bind_thread(const mrt_topo *t, const mrt_cpu *cpu);

/* Print nodes, cores, PUs and caches, then the selection if non-NULL. */
void mrt_topo_print(const mrt_topo *t, FILE *out, const mrt_topo_selection *sel);

#ifdef __cplusplus
}
#endif
#endif
