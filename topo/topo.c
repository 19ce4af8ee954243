/*
 * Machine topology through hwloc: discovery, shard selection, binding,
 * printing. Nothing here is on the event path; it runs at start-up (and
 * once per shard thread for binding). hwloc allocates internally with
 * malloc; only the mrt_topo handle itself goes through mrt_alloc.
 */
#include "topo_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>

const char *mrt_topo_strerror(int status)
{
    switch (status) {
    case MRT_TOPO_ELOAD: return "hwloc could not discover the machine topology";
    case MRT_TOPO_ESYNTAX: return "malformed cpuset list (expected e.g. 0-3,8)";
    case MRT_TOPO_ERANGE: return "CPU does not exist on this machine or is not allowed to this process";
    case MRT_TOPO_EDUP: return "CPU named twice in the cpuset list";
    case MRT_TOPO_ENONODE: return "no such NUMA node";
    case MRT_TOPO_EEMPTY: return "the NUMA node has no CPU to run a shard on";
    case MRT_TOPO_ETOOMANY: return "more CPUs than MRT_TOPO_MAX_CPUS";
    case MRT_TOPO_EBIND_CPU: return "the OS refused to bind the thread to its CPU";
    case MRT_TOPO_EBIND_MEM: return "the OS refused to bind memory to the NUMA node";
    default: break;
    }
    if (status <= -100 && status >= MRT_ERANGE_TOPO_MIN)
        return "unknown topo status";
    return NULL;
}

hwloc_topology_t mrt_topo_hwloc(const mrt_topo *t)
{
    return t ? t->h : NULL;
}

/*
 * hwloc drops what cgroups forbid, but not what the process's affinity
 * (taskset, sched_setaffinity) excludes: discovery is restricted to the
 * CPU binding too, so counts, listing, selection and binding all see only
 * usable PUs.
 */
#define THIS_SYSTEM (HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM | HWLOC_TOPOLOGY_FLAG_RESTRICT_TO_CPUBINDING)

/* A discovery: `synthetic` (a description) or this system with THIS_SYSTEM. */
static int discover(const char *synthetic, hwloc_topology_t *out)
{
    hwloc_topology_t h;
    if (hwloc_topology_init(&h) != 0)
        return MRT_TOPO_ELOAD;
    int rc = MRT_OK;
    if (synthetic != NULL && hwloc_topology_set_synthetic(h, synthetic) != 0)
        rc = MRT_EINVAL;
    else if (synthetic == NULL && hwloc_topology_set_flags(h, THIS_SYSTEM) != 0)
        rc = MRT_TOPO_ELOAD;
    else if (hwloc_topology_load(h) != 0)
        rc = MRT_TOPO_ELOAD;
    if (rc != MRT_OK) {
        hwloc_topology_destroy(h);
        return rc;
    }
    *out = h;
    return MRT_OK;
}

/*
 * This system is discovered once per process (hwloc's load, its plugins
 * opened and closed again, costs ~2 ms; a runtime used to pay it at every
 * create). Each mrt_topo_load duplicates that discovery and restricts the
 * copy to the process's CPU binding as it is now, which hwloc documents
 * as identical to RESTRICT_TO_CPUBINDING at load (~10 us). A binding that
 * reaches beyond the first discovery (widened since) is discovered afresh.
 * The base is only read after pthread_once (hwloc reads are thread-safe)
 * and lives as long as the process.
 */
static pthread_once_t base_once = PTHREAD_ONCE_INIT;
static hwloc_topology_t base;

static void base_discover(void)
{
    if (discover(NULL, &base) != MRT_OK)
        base = NULL;
}

/* A copy of the base restricted to the current binding; false: discover afresh. */
static bool from_base(hwloc_topology_t *out)
{
    pthread_once(&base_once, base_discover);
    if (base == NULL)
        return false;
    hwloc_bitmap_t bind = hwloc_bitmap_alloc();
    bool ok = bind != NULL &&
              (hwloc_get_cpubind(base, bind, HWLOC_CPUBIND_PROCESS) == 0 ||
               hwloc_get_cpubind(base, bind, HWLOC_CPUBIND_THREAD) == 0) &&
              hwloc_bitmap_isincluded(bind, hwloc_topology_get_topology_cpuset(base));
    hwloc_topology_t h = NULL;
    ok = ok && hwloc_topology_dup(&h, base) == 0;
    if (ok && !hwloc_bitmap_isequal(bind, hwloc_topology_get_topology_cpuset(h)) &&
        hwloc_topology_restrict(h, bind, 0) != 0) {
        hwloc_topology_destroy(h);
        ok = false;
    }
    hwloc_bitmap_free(bind);
    if (ok)
        *out = h;
    return ok;
}

static int load(const char *synthetic, mrt_topo **out)
{
    if (out == NULL)
        return MRT_EINVAL;
    *out = NULL;
    mrt_topo *t = mrt_calloc(NULL, sizeof(*t));
    if (t == NULL)
        return MRT_ENOMEM;
    int rc = MRT_OK;
    if (synthetic != NULL || !from_base(&t->h))
        rc = discover(synthetic, &t->h);
    if (rc != MRT_OK) {
        mrt_free(NULL, t, sizeof(*t));
        return rc;
    }
    *out = t;
    return MRT_OK;
}

int mrt_topo_load(mrt_topo **out)
{
    return load(NULL, out);
}

int mrt_topo_load_synthetic(const char *desc, mrt_topo **out)
{
    if (desc == NULL)
        return MRT_EINVAL;
    return load(desc, out);
}

void mrt_topo_destroy(mrt_topo *t)
{
    if (t == NULL)
        return;
    hwloc_topology_destroy(t->h);
    mrt_free(NULL, t, sizeof(*t));
}

/* Cores, or PUs on the rare machine where hwloc finds no core objects. */
static hwloc_obj_type_t core_type(hwloc_topology_t h)
{
    return hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
}

static hwloc_obj_t core_of_pu(hwloc_topology_t h, hwloc_obj_t pu)
{
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_CORE, pu);
    return core ? core : pu;
}

/*
 * The NUMA node local to a PU: the first memory child of its nearest
 * ancestor that has memory attached (hwloc 2 puts NUMA nodes beside the
 * CPU tree, not above it). NULL only when the machine has no NUMA object.
 */
static hwloc_obj_t node_of_pu(hwloc_obj_t pu)
{
    for (hwloc_obj_t o = pu; o != NULL; o = o->parent) {
        hwloc_obj_t m = o->memory_first_child;
        while (m != NULL && m->type != HWLOC_OBJ_NUMANODE)
            m = m->memory_first_child;   /* skip memory-side caches */
        if (m != NULL)
            return m;
    }
    return NULL;
}

static int node_index(hwloc_obj_t node)
{
    return node != NULL && node->type == HWLOC_OBJ_NUMANODE ? (int)node->os_index : 0;
}

/* NUMA node by OS index; on a machine without NUMA objects node 0 is the whole machine. */
static hwloc_obj_t node_obj(hwloc_topology_t h, int node)
{
    if (node < 0)
        return NULL;
    hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(h, (unsigned)node);
    if (n == NULL && node == 0 && hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE) <= 0)
        n = hwloc_get_root_obj(h);
    return n;
}

/* The PU with OS index `pu` if it exists and this process may run on it. */
static hwloc_obj_t allowed_pu(hwloc_topology_t h, unsigned pu)
{
    hwloc_obj_t o = hwloc_get_pu_obj_by_os_index(h, pu);
    if (o == NULL || !hwloc_bitmap_isset(hwloc_topology_get_allowed_cpuset(h), pu))
        return NULL;
    return o;
}

unsigned mrt_topo_numa_count(const mrt_topo *t)
{
    if (t == NULL)
        return 0;
    int n = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_NUMANODE);
    return n > 0 ? (unsigned)n : 1;
}

unsigned mrt_topo_core_count(const mrt_topo *t)
{
    if (t == NULL)
        return 0;
    int n = hwloc_get_nbobjs_by_type(t->h, core_type(t->h));
    return n > 0 ? (unsigned)n : 0;
}

unsigned mrt_topo_pu_count(const mrt_topo *t)
{
    if (t == NULL)
        return 0;
    int n = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_PU);
    return n > 0 ? (unsigned)n : 0;
}

int mrt_topo_pu_list(const mrt_topo *t, char *buf, size_t len)
{
    if (t == NULL || (buf == NULL && len > 0))
        return MRT_EINVAL;
    return hwloc_bitmap_list_snprintf(buf, len, hwloc_topology_get_allowed_cpuset(t->h));
}

int mrt_topo_current_node(const mrt_topo *t)
{
    if (t == NULL)
        return 0;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    int node = 0;
    if (set != NULL && hwloc_get_last_cpu_location(t->h, set, HWLOC_CPUBIND_THREAD) == 0) {
        int first = hwloc_bitmap_first(set);
        hwloc_obj_t pu = first >= 0 ? hwloc_get_pu_obj_by_os_index(t->h, (unsigned)first) : NULL;
        if (pu != NULL)
            node = node_index(node_of_pu(pu));
    }
    hwloc_bitmap_free(set);
    return node;
}

/* Selections are short (<= MRT_TOPO_MAX_CPUS) and nearly sorted: insertion sort by PU. */
static void sort_by_pu(mrt_topo_selection *sel)
{
    for (unsigned i = 1; i < sel->count; i++) {
        mrt_cpu c = sel->cpus[i];
        unsigned j = i;
        while (j > 0 && sel->cpus[j - 1].pu > c.pu) {
            sel->cpus[j] = sel->cpus[j - 1];
            j--;
        }
        sel->cpus[j] = c;
    }
}

int mrt_topo_select_node(const mrt_topo *t, int node, mrt_topo_selection *out)
{
    if (t == NULL || out == NULL)
        return MRT_EINVAL;
    out->count = 0;
    hwloc_topology_t h = t->h;
    hwloc_obj_t n = node_obj(h, node);
    if (n == NULL)
        return MRT_TOPO_ENONODE;
    hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(h);
    hwloc_obj_type_t ct = core_type(h);
    for (hwloc_obj_t core = hwloc_get_next_obj_by_type(h, ct, NULL); core != NULL;
         core = hwloc_get_next_obj_by_type(h, ct, core)) {
        /* First PU (lowest OS index) of the core that is on this node and allowed. */
        int pu = -1;
        for (int i = hwloc_bitmap_first(core->cpuset); i >= 0; i = hwloc_bitmap_next(core->cpuset, i))
            if (hwloc_bitmap_isset(n->cpuset, (unsigned)i) && hwloc_bitmap_isset(allowed, (unsigned)i)) {
                pu = i;
                break;
            }
        if (pu < 0)
            continue;
        if (out->count == MRT_TOPO_MAX_CPUS) {
            out->count = 0;
            return MRT_TOPO_ETOOMANY;
        }
        out->cpus[out->count++] = (mrt_cpu){
            .pu = (unsigned)pu, .core = core->logical_index, .numa_node = node,
        };
    }
    if (out->count == 0)
        return MRT_TOPO_EEMPTY;
    sort_by_pu(out);
    return MRT_OK;
}

int mrt_topo_select_cpuset(const mrt_topo *t, const char *list, mrt_topo_selection *out)
{
    if (t == NULL || list == NULL || out == NULL)
        return MRT_EINVAL;
    out->count = 0;
    unsigned pus[MRT_TOPO_MAX_CPUS];
    unsigned n = 0;
    int rc = mrt_cpuset_parse(list, pus, MRT_TOPO_MAX_CPUS, &n);
    if (rc != MRT_OK)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        hwloc_obj_t pu = allowed_pu(t->h, pus[i]);
        if (pu == NULL) {
            out->count = 0;
            return MRT_TOPO_ERANGE;
        }
        out->cpus[i] = (mrt_cpu){
            .pu = pus[i],
            .core = core_of_pu(t->h, pu)->logical_index,
            .numa_node = node_index(node_of_pu(pu)),
        };
        out->count = i + 1;
    }
    return MRT_OK;
}

int mrt_topo_bind_thread(const mrt_topo *t, const mrt_cpu *cpu)
{
    if (t == NULL || cpu == NULL)
        return MRT_EINVAL;
    hwloc_topology_t h = t->h;
    hwloc_obj_t pu = allowed_pu(h, cpu->pu);
    if (pu == NULL)
        return MRT_TOPO_ERANGE;
    hwloc_obj_t node = node_obj(h, cpu->numa_node);
    if (node == NULL)
        return MRT_TOPO_ENONODE;
    /* A synthetic machine is not this one: hwloc would "bind" as a silent no-op. */
    if (!hwloc_topology_is_thissystem(h)) {
        errno = ENOSYS;
        return MRT_TOPO_EBIND_CPU;
    }
    /* errno is left as the OS (or hwloc) set it, for the caller's message. */
    if (hwloc_set_cpubind(h, pu->cpuset, HWLOC_CPUBIND_THREAD) != 0)
        return MRT_TOPO_EBIND_CPU;
    const struct hwloc_topology_support *sup = hwloc_topology_get_support(h);
    if (sup == NULL || sup->membind == NULL || !sup->membind->set_thisthread_membind ||
        !sup->membind->bind_membind) {
        errno = ENOSYS;
        return MRT_TOPO_EBIND_MEM;
    }
    if (hwloc_set_membind(h, node->nodeset, HWLOC_MEMBIND_BIND,
                          HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) != 0)
        return MRT_TOPO_EBIND_MEM;
    return MRT_OK;
}

/* ---- printing ---------------------------------------------------------- */

static void fmt_bytes(char *buf, size_t len, uint64_t b)
{
    static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    unsigned u = 0;
    uint64_t scale = 1;
    while (u + 1 < sizeof(unit) / sizeof(unit[0]) && b >= scale * 1024) {
        scale *= 1024;
        u++;
    }
    if (b % scale == 0)
        snprintf(buf, len, "%" PRIu64 " %s", b / scale, unit[u]);
    else
        snprintf(buf, len, "%.1f %s", (double)b / (double)scale, unit[u]);
}

/* Data/unified caches above a core, innermost first: "L1d 48 KiB, L2 2 MiB, L3 32 MiB (8 cores)". */
static void print_caches(hwloc_topology_t h, hwloc_obj_t core, FILE *out)
{
    const char *sep = "  ";
    for (hwloc_obj_t o = core->parent; o != NULL; o = o->parent) {
        if (!hwloc_obj_type_is_dcache(o->type))
            continue;
        char size[32];
        fmt_bytes(size, sizeof(size), o->attr->cache.size);
        fprintf(out, "%sL%u%s %s", sep, o->attr->cache.depth,
                o->attr->cache.type == HWLOC_OBJ_CACHE_DATA ? "d" : "", size);
        int sharing = hwloc_get_nbobjs_inside_cpuset_by_type(h, o->cpuset, core_type(h));
        if (sharing > 1)
            fprintf(out, " (%d cores)", sharing);
        sep = ", ";
    }
}

void mrt_topo_print(const mrt_topo *t, FILE *out, const mrt_topo_selection *sel)
{
    if (t == NULL || out == NULL)
        return;
    hwloc_topology_t h = t->h;
    hwloc_obj_type_t ct = core_type(h);
    unsigned nodes = mrt_topo_numa_count(t);
    fprintf(out, "machine: %u NUMA node%s, %u cores, %u PUs%s\n", nodes, nodes == 1 ? "" : "s",
            mrt_topo_core_count(t), mrt_topo_pu_count(t),
            hwloc_topology_is_thissystem(h) ? "" : " (synthetic)");

    int nn = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE);
    for (int i = 0; i < (nn > 0 ? nn : 1); i++) {
        hwloc_obj_t node = nn > 0 ? hwloc_get_obj_by_type(h, HWLOC_OBJ_NUMANODE, (unsigned)i)
                                  : hwloc_get_root_obj(h);
        char mem[32] = "memory unknown";
        if (node->type == HWLOC_OBJ_NUMANODE && node->attr->numanode.local_memory > 0)
            fmt_bytes(mem, sizeof(mem), node->attr->numanode.local_memory);
        fprintf(out, "node %d: %s, %d PUs\n", node_index(node), mem,
                node->cpuset ? hwloc_bitmap_weight(node->cpuset) : 0);
        unsigned shown = 0;
        for (hwloc_obj_t core = hwloc_get_next_obj_by_type(h, ct, NULL); core != NULL;
             core = hwloc_get_next_obj_by_type(h, ct, core)) {
            if (node->cpuset == NULL || !hwloc_bitmap_intersects(core->cpuset, node->cpuset))
                continue;
            char pus[128];
            hwloc_bitmap_list_snprintf(pus, sizeof(pus), core->cpuset);
            fprintf(out, "  core %u: PU%s %s", core->logical_index,
                    hwloc_bitmap_weight(core->cpuset) > 1 ? "s" : "", pus);
            print_caches(h, core, out);
            fputc('\n', out);
            shown++;
        }
        if (shown == 0)
            fprintf(out, "  (no CPUs)\n");
    }

    if (sel == NULL)
        return;
    fprintf(out, "selection: %u shard%s\n", sel->count, sel->count == 1 ? "" : "s");
    for (unsigned i = 0; i < sel->count && i < MRT_TOPO_MAX_CPUS; i++)
        fprintf(out, "  shard %u \xe2\x86\x92 PU %u (core %u, node %d)\n", i, sel->cpus[i].pu,
                sel->cpus[i].core, sel->cpus[i].numa_node);
}
