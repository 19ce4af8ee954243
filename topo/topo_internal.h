/*
 * topo_internal.h — private to topo/ and its white-box tests: the hwloc
 * topology behind an mrt_topo, so a test can reshape a synthetic machine
 * (e.g. hwloc_topology_restrict to make a CPU-less NUMA node).
 */
#ifndef MESHRT_TOPO_INTERNAL_H
#define MESHRT_TOPO_INTERNAL_H

#include "meshrt/mrt_topo.h"

#include <hwloc.h>

struct mrt_topo {
    hwloc_topology_t h;     /* loaded; every query reads it, nothing is cached beside it */
};

/* The hwloc topology of `t` (tests only; the public API never exposes hwloc). */
hwloc_topology_t mrt_topo_hwloc(const mrt_topo *t);

#endif
