/* Allocator handle over jemalloc's non-standard API, and allocation counters. */
#include "meshrt/mrt_core.h"

#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/*
 * Sanitizer builds route meshrt's allocations through the libc entry points
 * so ASan/TSan see (and check) every buffer we own; jemalloc's mallocx would
 * be invisible to them. Arena placement is then not observable, which the
 * arena tests account for.
 */
#ifdef MRT_ALLOC_LIBC
#include <stdlib.h>
#endif

/*
 * The arena this thread is bound to through mrt_allocator_bind_thread, and
 * the one it used before its first bind (where unbind returns it).
 */
static _Thread_local unsigned tls_bound = MRT_ARENA_DEFAULT;
#ifndef MRT_ALLOC_LIBC
static _Thread_local unsigned tls_home = MRT_ARENA_DEFAULT;
#endif

/*
 * Arenas given back for reuse. jemalloc caps arenas at 4095 and never
 * returns an index, so owners that come and go (meshes created and
 * destroyed) take their arenas from here. Not the event path: a mutex.
 */
#define ARENA_SLOTS 4096u
enum { ARENA_UNKNOWN = 0, ARENA_LIVE = 1, ARENA_POOLED = 2 };
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t arena_state[ARENA_SLOTS];
static unsigned pool[ARENA_SLOTS];
static unsigned pool_len;

mrt_allocator mrt_allocator_for_arena(unsigned arena)
{
    mrt_allocator a = { .flags = 0, .arena = arena };
    /* The thread cache is not arena-specific, so an explicit arena must bypass it. */
    if (arena != MRT_ARENA_DEFAULT)
        a.flags = MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE;
    return a;
}

mrt_allocator mrt_allocator_or_default(const mrt_allocator *a)
{
    return a ? *a : mrt_allocator_for_arena(MRT_ARENA_DEFAULT);
}

int mrt_allocator_bind_thread(unsigned arena, mrt_allocator *out)
{
    if (out == NULL || arena == MRT_ARENA_DEFAULT)
        return MRT_EINVAL;
#ifndef MRT_ALLOC_LIBC
    unsigned old = 0;
    size_t sz = sizeof(old);
    if (mallctl("thread.arena", &old, &sz, &arena, sizeof(arena)) != 0)
        return MRT_EINVAL;
    /* Hand back regions cached from the previous arena so the next ones come from this one. */
    (void)mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    if (tls_bound == MRT_ARENA_DEFAULT)
        tls_home = old;
#endif
    tls_bound = arena;
    out->arena = arena;
    out->flags = 0;
    return MRT_OK;
}

int mrt_allocator_unbind_thread(unsigned arena)
{
#ifndef MRT_ALLOC_LIBC
    /* Regions this thread freed into its cache go back to their arenas. */
    (void)mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    if (arena != MRT_ARENA_DEFAULT && tls_bound == arena) {
        unsigned home = tls_home == MRT_ARENA_DEFAULT ? 0 : tls_home;
        (void)mallctl("thread.arena", NULL, NULL, &home, sizeof(home));
    }
#endif
    if (arena != MRT_ARENA_DEFAULT && tls_bound == arena)
        tls_bound = MRT_ARENA_DEFAULT;
    return MRT_OK;
}

int mrt_allocator_create_arena(mrt_allocator *out)
{
    unsigned arena = 0;
    if (out == NULL)
        return MRT_EINVAL;
    pthread_mutex_lock(&pool_mu);
    bool reused = pool_len > 0;
    if (reused) {
        arena = pool[--pool_len];
        arena_state[arena] = ARENA_LIVE;
    }
    pthread_mutex_unlock(&pool_mu);
    if (!reused) {
#ifdef MRT_ALLOC_LIBC
        /*
         * No jemalloc calls at all in sanitizer builds: its internal mutexes live
         * in memory the sanitizers did not see allocated, and ThreadSanitizer
         * reports them. Every "arena" is then libc's heap; the indices still
         * go through the pool so that reuse is exercised here too.
         */
        static atomic_uint next_fake;
        arena = atomic_fetch_add(&next_fake, 1);
#else
        size_t sz = sizeof(arena);
        if (mallctl("arenas.create", &arena, &sz, NULL, 0) != 0)
            return MRT_ENOMEM;
#endif
        if (arena < ARENA_SLOTS) {
            pthread_mutex_lock(&pool_mu);
            arena_state[arena] = ARENA_LIVE;
            pthread_mutex_unlock(&pool_mu);
        }
    }
    *out = mrt_allocator_for_arena(arena);
    return MRT_OK;
}

#ifndef MRT_ALLOC_LIBC
/* Threads bound to `arena` now (jemalloc counts thread.arena bindings; exited ones are unbound). */
static unsigned arena_nthreads(unsigned arena)
{
    uint64_t epoch = 1;
    size_t sz = sizeof(epoch);
    (void)mallctl("epoch", &epoch, &sz, &epoch, sz); /* refresh the stats snapshot */
    char name[64];
    snprintf(name, sizeof name, "stats.arenas.%u.nthreads", arena);
    unsigned n = 0;
    sz = sizeof(n);
    if (mallctl(name, &n, &sz, NULL, 0) != 0)
        return 0;
    return n;
}
#endif

int mrt_allocator_release_arena(unsigned arena)
{
    if (arena >= ARENA_SLOTS)
        return MRT_EINVAL;
    pthread_mutex_lock(&pool_mu);
    int rc = MRT_OK;
    if (arena_state[arena] != ARENA_LIVE)
        rc = MRT_EINVAL;
#ifndef MRT_ALLOC_LIBC
    else if (arena_nthreads(arena) != 0)
        rc = MRT_ESTATE; /* a thread still allocates from it: reusing it would share it */
#endif
    if (rc == MRT_OK) {
#ifndef MRT_ALLOC_LIBC
        char name[64];
        snprintf(name, sizeof name, "arena.%u.purge", arena);
        (void)mallctl(name, NULL, NULL, NULL, 0);
#endif
        arena_state[arena] = ARENA_POOLED;
        pool[pool_len++] = arena;
    }
    pthread_mutex_unlock(&pool_mu);
    return rc;
}

#ifndef MRT_ALLOC_LIBC
/*
 * A thread-bound handle (flags 0, an arena) is fast on its own thread only;
 * anywhere else its allocations would come from the caller's arena and its
 * frees would land in the caller's thread cache, so there it goes to the
 * arena directly.
 */
static inline int flags_of(const mrt_allocator *a)
{
    if (a == NULL)
        return 0;
    if (a->flags == 0 && a->arena != MRT_ARENA_DEFAULT && a->arena != tls_bound)
        return MALLOCX_ARENA(a->arena) | MALLOCX_TCACHE_NONE;
    return a->flags;
}
#endif

void *mrt_alloc(const mrt_allocator *a, size_t size)
{
    if (size == 0)
        return NULL;
#ifdef MRT_ALLOC_LIBC
    (void)a;
    return malloc(size);
#else
    return mallocx(size, flags_of(a));
#endif
}

void *mrt_calloc(const mrt_allocator *a, size_t size)
{
    if (size == 0)
        return NULL;
#ifdef MRT_ALLOC_LIBC
    (void)a;
    return calloc(1, size);
#else
    return mallocx(size, flags_of(a) | MALLOCX_ZERO);
#endif
}

void *mrt_alloc_aligned(const mrt_allocator *a, size_t size, size_t align)
{
    if (size == 0 || align == 0 || (align & (align - 1)) != 0)
        return NULL;
#ifdef MRT_ALLOC_LIBC
    (void)a;
    void *p = NULL;
    if (align < sizeof(void *))
        align = sizeof(void *);
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
#else
    return mallocx(size, flags_of(a) | MALLOCX_ALIGN(align));
#endif
}

void *mrt_realloc(const mrt_allocator *a, void *p, size_t size)
{
    if (p == NULL)
        return mrt_alloc(a, size);
    if (size == 0)
        return NULL;
#ifdef MRT_ALLOC_LIBC
    (void)a;
    return realloc(p, size);
#else
    return rallocx(p, size, flags_of(a));
#endif
}

void mrt_free(const mrt_allocator *a, void *p, size_t size)
{
    if (p == NULL)
        return;
#ifdef MRT_ALLOC_LIBC
    (void)a;
    (void)size;
    free(p);
#else
    if (size != 0)
        sdallocx(p, size, flags_of(a));
    else
        dallocx(p, flags_of(a));
#endif
}

void mrt_free_aligned(const mrt_allocator *a, void *p, size_t size, size_t align)
{
    if (p == NULL)
        return;
#ifdef MRT_ALLOC_LIBC
    (void)a;
    (void)size;
    (void)align;
    free(p);
#else
    int fl = flags_of(a) | MALLOCX_ALIGN(align);
    if (size != 0)
        sdallocx(p, size, fl);
    else
        dallocx(p, fl);
#endif
}

unsigned mrt_arena_of(const void *p)
{
#ifdef MRT_ALLOC_LIBC
    (void)p;
    return MRT_ARENA_DEFAULT;
#else
    unsigned arena = 0;
    size_t sz = sizeof(arena);
    if (p == NULL || mallctl("arenas.lookup", &arena, &sz, (void *)&p, sizeof(p)) != 0)
        return MRT_ARENA_DEFAULT;
    return arena;
#endif
}

/* ---- counters ---------------------------------------------------------- */

#ifdef MRT_ALLOC_LIBC

/* Sanitizer builds: jemalloc's hook would not see libc allocations. */
int mrt_alloc_counting_enable(void)
{
    return MRT_ENOSYS;
}

mrt_alloc_counts mrt_alloc_counts_now(void)
{
    return (mrt_alloc_counts){ 0, 0 };
}

#else

static _Thread_local uint64_t tls_allocs;

/* jemalloc's experimental hook ABI (5.x): alloc, dalloc, expand, extra. */
typedef void (*jm_hook_alloc)(void *extra, int type, void *result, uintptr_t result_raw,
                              uintptr_t args_raw[3]);
struct jm_hooks {
    jm_hook_alloc alloc_hook;
    void *dalloc_hook;
    void *expand_hook;
    void *extra;
};

static void count_alloc(void *extra, int type, void *result, uintptr_t raw, uintptr_t args[3])
{
    (void)extra;
    (void)type;
    (void)result;
    (void)raw;
    (void)args;
    tls_allocs++;
}

int mrt_alloc_counting_enable(void)
{
    static atomic_int installed;
    if (atomic_load_explicit(&installed, memory_order_acquire))
        return MRT_OK;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&installed, &expected, 2)) {
        /* Another thread is installing; it settles at 1 or back to 0. */
        while (atomic_load(&installed) == 2)
            ;
        return atomic_load(&installed) ? MRT_OK : MRT_ENOSYS;
    }
    struct jm_hooks h = { count_alloc, NULL, NULL, NULL };
    void *handle = NULL;
    size_t sz = sizeof(handle);
    int rc = mallctl("experimental.hooks.install", &handle, &sz, &h, sizeof(h));
    atomic_store(&installed, rc == 0 ? 1 : 0);
    return rc == 0 ? MRT_OK : MRT_ENOSYS;
}

mrt_alloc_counts mrt_alloc_counts_now(void)
{
    static _Thread_local uint64_t *allocatedp;
    mrt_alloc_counts c = { .allocs = tls_allocs, .bytes = 0 };
    if (allocatedp == NULL) {
        size_t sz = sizeof(allocatedp);
        if (mallctl("thread.allocatedp", &allocatedp, &sz, NULL, 0) != 0)
            allocatedp = NULL;
    }
    if (allocatedp != NULL)
        c.bytes = *allocatedp;
    return c;
}

#endif

const char *mrt_version(void)
{
    return MRT_VERSION_STRING;
}

const char *mrt_core_strerror(int status)
{
    switch (status) {
    case MRT_OK: return "success";
    case MRT_EINVAL: return "invalid argument";
    case MRT_ENOMEM: return "out of memory";
    case MRT_ESTATE: return "operation not valid in the current state";
    case MRT_ENOSYS: return "facility not available";
    default: return NULL;
    }
}
