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
    MRT_TOPO_ETOOMANY = -106,     /* more CPUs than fit (MRT_TOPO_MAX_CPUS, or the caller's cap) */
    MRT_TOPO_EBIND_CPU = -107,    /* the OS refused to bind the thread to its PU */
    MRT_TOPO_EBIND_MEM = -108,    /* the OS refused to bind memory to the node */
};

/* Name of a topo status code; NULL outside -100..-199. */
const char *mrt_topo_strerror(int status);

#define MRT_TOPO_MAX_CPUS 1024

/* Discovered topology. Opaque; immutable after load. */
typedef struct mrt_topo mrt_topo;

/*
 * Discover this machine. MRT_TOPO_ELOAD or MRT_ENOMEM on failure. CPUs the
 * process may not use (cgroup cpuset, taskset) are left out of everything.
 */
int mrt_topo_load(mrt_topo **out);
/*
 * For tests and tools: a made-up machine from an hwloc synthetic
 * description, e.g. "node:2 core:4 pu:2" (2 NUMA nodes, 4 cores each, 2
 * PUs per core). Selection and printing work as on a real machine; binding
 * is refused (MRT_TOPO_EBIND_CPU) because the machine is not this one.
 * MRT_EINVAL for a description hwloc rejects.
 */
int mrt_topo_load_synthetic(const char *desc, mrt_topo **out);
/* Release a topology (NULL is a no-op). */
void mrt_topo_destroy(mrt_topo *t);

/* Number of NUMA nodes (>= 1: a machine without NUMA reports one node, 0). */
unsigned mrt_topo_numa_count(const mrt_topo *t);
/* The NUMA node the calling thread currently runs on (0 when unknown). */
int mrt_topo_current_node(const mrt_topo *t);
/* Physical cores (PUs when hwloc finds no core objects) and PUs usable by this process. */
unsigned mrt_topo_core_count(const mrt_topo *t);
unsigned mrt_topo_pu_count(const mrt_topo *t);
/*
 * The usable PUs in cpuset syntax ("0-1"), for error messages such as
 * "cpu 7 is out of range (this machine has 0-1)". snprintf semantics:
 * returns the length it needed; MRT_EINVAL on bad arguments.
 */
int mrt_topo_pu_list(const mrt_topo *t, char *buf, size_t len);

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
 * Parse a cpuset list such as "0-3,8" into ascending CPU indices; *count
 * is their number (0 on error). Grammar: item(,item)*, item = N or N-M
 * with N <= M, decimal, no whitespace, no sign. Refuses empty or malformed
 * lists, reversed ranges and indices above UINT_MAX (MRT_TOPO_ESYNTAX);
 * more than `cap` CPUs mentioned, duplicates included (MRT_TOPO_ETOOMANY);
 * a CPU named twice, overlapping ranges included (MRT_TOPO_EDUP) — checked
 * in that order. Pure: no topology, no allocation; does not check that the
 * CPUs exist. MRT_EINVAL for NULL list/count (or NULL cpus with cap > 0).
 */
int mrt_cpuset_parse(const char *list, unsigned *cpus, unsigned cap, unsigned *count);

/*
 * One shard per physical core of NUMA node `node` (its OS index): the
 * first (lowest) usable PU of each core, so SMT siblings never share a
 * shard's core. MRT_TOPO_ENONODE for an unknown node, MRT_TOPO_EEMPTY for
 * a node with no usable CPU (memory-only nodes). out->count is 0 on error.
 */
int mrt_topo_select_node(const mrt_topo *t, int node, mrt_topo_selection *out);
/*
 * Exactly the PUs named in `list` (cpuset syntax, errors as
 * mrt_cpuset_parse); each must exist and be usable by this process
 * (MRT_TOPO_ERANGE). Fills core and numa_node of each. out->count is 0 on error.
 */
int mrt_topo_select_cpuset(const mrt_topo *t, const char *list, mrt_topo_selection *out);

/*
 * Bind the calling thread to PU `cpu->pu` and its future memory to NUMA
 * node `cpu->numa_node`. MRT_TOPO_ERANGE / MRT_TOPO_ENONODE when the PU or
 * node does not exist. MRT_TOPO_EBIND_CPU when the OS refuses the CPU
 * binding (nothing changed); MRT_TOPO_EBIND_MEM when the CPU binding took
 * effect but memory binding was refused or is unsupported (containers,
 * kernels without NUMA) — the caller decides whether that is fatal. On
 * both EBIND errors errno says why. Safe to call from several threads.
 */
int mrt_topo_bind_thread(const mrt_topo *t, const mrt_cpu *cpu);

/* Print nodes, cores, PUs and caches, then the selection if non-NULL. */
void mrt_topo_print(const mrt_topo *t, FILE *out, const mrt_topo_selection *sel);

#ifdef __cplusplus
}
#endif
#endif
