/*
 * cpuset lists ("0-3,8"): the pure parser behind --cpuset. No topology,
 * no allocation: the caller's array is the only storage.
 */
#include "meshrt/mrt_topo.h"

#include <limits.h>
#include <stdint.h>

/* Parse a decimal CPU index at *p; advances *p. False when no digit or > UINT_MAX. */
static bool parse_index(const char **p, unsigned *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT_MAX)
            return false;
        s++;
    }
    *p = s;
    *out = (unsigned)v;
    return true;
}

/* Heapsort: in place, O(n log n) for any cap, and no libc qsort (which may allocate). */
static void sift_down(unsigned *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[root] >= a[child])
            return;
        unsigned tmp = a[root];
        a[root] = a[child];
        a[child] = tmp;
        root = child;
    }
}

static void sort_indices(unsigned *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end-- > 1;) {
        unsigned tmp = a[0];
        a[0] = a[end];
        a[end] = tmp;
        sift_down(a, 0, end);
    }
}

int mrt_cpuset_parse(const char *list, unsigned *cpus, unsigned cap, unsigned *count)
{
    if (list == NULL || count == NULL || (cpus == NULL && cap > 0))
        return MRT_EINVAL;
    *count = 0;

    /*
     * One pass checks the whole syntax; CPUs are stored while they fit.
     * Syntax errors win over ETOOMANY, which wins over EDUP (every mention
     * counts towards cap, so the duplicate check sees all of them).
     */
    const char *p = list;
    uint64_t mentioned = 0;
    for (;;) {
        unsigned lo, hi;
        if (!parse_index(&p, &lo))
            return MRT_TOPO_ESYNTAX;
        hi = lo;
        if (*p == '-') {
            p++;
            if (!parse_index(&p, &hi) || hi < lo)
                return MRT_TOPO_ESYNTAX;
        }
        /* Store what fits; past cap only count (a huge range costs no time). */
        for (uint64_t c = lo; c <= hi && mentioned + (c - lo) < cap; c++)
            cpus[mentioned + (c - lo)] = (unsigned)c;
        mentioned += (uint64_t)hi - lo + 1;
        if (*p == '\0')
            break;
        if (*p != ',')
            return MRT_TOPO_ESYNTAX;
        p++;   /* a trailing comma fails at the next parse_index */
    }
    if (mentioned > cap)
        return MRT_TOPO_ETOOMANY;

    sort_indices(cpus, (size_t)mentioned);
    for (uint64_t i = 1; i < mentioned; i++)
        if (cpus[i] == cpus[i - 1])
            return MRT_TOPO_EDUP;
    *count = (unsigned)mentioned;
    return MRT_OK;
}
