/*
 * mrt_core.h — the lowest layer of meshrt: status codes, the allocator
 * handle every module allocates through, and allocation counters used by
 * tests and benchmarks to prove that hot paths do not allocate.
 *
 * Every other module may include this header; it includes nothing of meshrt.
 */
#ifndef MESHRT_MRT_CORE_H
#define MESHRT_MRT_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The version of these headers (CMake's project version is read from here).
 * The library linked in says its own with mrt_version(): a program built
 * against one release and run with another's shared library can tell.
 */
#define MRT_VERSION_MAJOR 0
#define MRT_VERSION_MINOR 1
#define MRT_VERSION_PATCH 0
#define MRT_VERSION_STRING "0.1.0"

/* The linked library's version, "MAJOR.MINOR.PATCH" (static storage). */
const char *mrt_version(void);

/*
 * Status codes. 0 is success; errors are negative. Each module owns a
 * disjoint range so one int can travel through layers without losing its
 * origin, and mrt_strerror() (runtime) names any of them.
 */
#define MRT_OK 0
enum mrt_core_status {
    MRT_EINVAL = -1,   /* an argument is out of its documented domain */
    MRT_ENOMEM = -2,   /* the allocator refused */
    MRT_ESTATE = -3,   /* the call is not valid in the object's current state */
    MRT_ENOSYS = -4,   /* the facility is not available on this machine/build */
};
#define MRT_ERANGE_CORE_MIN     (-99)
#define MRT_ERANGE_TOPO_MIN     (-199)  /* -100 .. -199 */
#define MRT_ERANGE_SHARD_MIN    (-299)  /* -200 .. -299 */
#define MRT_ERANGE_RUNTIME_MIN  (-399)  /* -300 .. -399 */
#define MRT_ERANGE_LB_MIN       (-499)  /* -400 .. -499 */
#define MRT_ERANGE_DAEMON_MIN   (-599)  /* -500 .. -599 */
#define MRT_ERANGE_PERF_MIN     (-699)  /* -600 .. -699 */
#define MRT_ERANGE_SVC_MIN      (-799)  /* -700 .. -799: services */
#define MRT_ERANGE_COMPUTE_MIN  (-899)  /* -800 .. -899: compute */
#define MRT_ERANGE_SCHED_MIN    (-999)  /* -900 .. -999: scheduler */
#define MRT_ERANGE_GROUPS_MIN   (-1099) /* -1000 .. -1099: daemon groups */

/* Name of a core status code (MRT_OK and -1..-99); NULL for codes outside that range. */
const char *mrt_core_strerror(int status);

/*
 * Allocator handle. All meshrt allocations go through jemalloc's
 * non-standard API (mallocx/sdallocx) with the flags held here, so a shard's
 * objects come from its own arena. A pointer from mrt_alloc() must be freed
 * with mrt_free() (any handle: jemalloc finds the owning arena from the
 * pointer) — never with free(). A NULL handle means "the calling thread's
 * default arena".
 *
 * Ownership rule. Memory in an arena belongs to whoever owns the arena (a
 * shard). Its owner allocates and frees through the thread-bound handle
 * (mrt_allocator_bind_thread: the fast thread cache). Any other thread may
 * allocate or free with the same handle: a bound handle used on a thread not
 * bound to its arena goes to the arena directly (MALLOCX_ARENA +
 * MALLOCX_TCACHE_NONE), never to the caller's arena or thread cache. Before
 * an arena is given back (mrt_allocator_release_arena), everything allocated
 * in it should be freed; what is left stays valid (the arena is reused, never
 * destroyed) but is the next owner's memory.
 */
typedef struct mrt_allocator {
    int flags;          /* jemalloc MALLOCX_* flags, precomputed (0 on a thread-bound handle) */
    unsigned arena;     /* jemalloc arena index, or MRT_ARENA_DEFAULT */
} mrt_allocator;

#define MRT_ARENA_DEFAULT UINT32_MAX

/*
 * A handle on jemalloc arena `arena` (or the thread default with
 * MRT_ARENA_DEFAULT), usable from any thread. It bypasses the thread cache
 * (which is not arena-specific), so it is the slow path: owner threads use
 * mrt_allocator_bind_thread() instead.
 */
mrt_allocator mrt_allocator_for_arena(unsigned arena);

/* A copy of *a to keep in an object, or the thread-default handle when a is NULL. */
mrt_allocator mrt_allocator_or_default(const mrt_allocator *a);

/*
 * Bind the calling thread to `arena` (jemalloc thread.arena): from now on
 * every allocation it makes — malloc included — comes from that arena,
 * through the fast thread cache. *out receives the thread-bound handle: fast
 * on this thread, arena-explicit (and so still correct) on any other. The
 * arena the thread used before its first bind is remembered for
 * mrt_allocator_unbind_thread(). MRT_EINVAL for a bad arena or NULL out.
 */
int mrt_allocator_bind_thread(unsigned arena, mrt_allocator *out);

/*
 * Undo mrt_allocator_bind_thread(arena) on the calling thread: flush its
 * thread cache (regions cached from `arena` go back to it) and, when the
 * thread is bound to `arena`, return it to the arena it used before its
 * first bind. A no-op apart from the flush when the thread is not bound to
 * `arena`. Always MRT_OK.
 */
int mrt_allocator_unbind_thread(unsigned arena);

/*
 * An arena for a new owner: one given back with mrt_allocator_release_arena()
 * when there is one, else a fresh jemalloc arena (arenas.create), so that
 * creating and destroying owners forever never reaches jemalloc's arena cap.
 * Returns MRT_OK or MRT_ENOMEM; *out (an any-thread handle) is untouched on
 * error.
 */
int mrt_allocator_create_arena(mrt_allocator *out);

/*
 * Give back an arena from mrt_allocator_create_arena() for reuse (any
 * thread). Its unused pages are purged first, so the next owner's first
 * touch places them (on its NUMA node). Arenas are reused, never destroyed:
 * jemalloc's arena.<i>.destroy would discard anything still allocated in it
 * — stdio buffers or TLS a bound thread's plain malloc put there included.
 * MRT_ESTATE while a thread is still bound to it (the arena is then not
 * given back: unbind or end that thread first); MRT_EINVAL for an arena
 * that is not a live one from mrt_allocator_create_arena (released twice).
 */
int mrt_allocator_release_arena(unsigned arena);

/* Allocate `size` bytes (size > 0); NULL when the allocator refuses or size is 0. */
void *mrt_alloc(const mrt_allocator *a, size_t size);
/* As mrt_alloc, zero-filled. */
void *mrt_calloc(const mrt_allocator *a, size_t size);
/* As mrt_alloc, aligned to `align` (a power of two). */
void *mrt_alloc_aligned(const mrt_allocator *a, size_t size, size_t align);
/* Resize; on failure NULL is returned and `p` is left valid. */
void *mrt_realloc(const mrt_allocator *a, void *p, size_t size);
/*
 * Free `p` (NULL is a no-op). `size` is the size it was allocated with, or 0
 * if unknown. Any handle frees into the arena `p` came from.
 */
void mrt_free(const mrt_allocator *a, void *p, size_t size);
/* As mrt_free for memory from mrt_alloc_aligned (the alignment must be passed back). */
void mrt_free_aligned(const mrt_allocator *a, void *p, size_t size, size_t align);

/* The arena a live pointer from jemalloc belongs to, or MRT_ARENA_DEFAULT if unknown. */
unsigned mrt_arena_of(const void *p);

/*
 * Allocation counters for the calling thread, read from jemalloc.
 * `allocs` counts every allocation call served by jemalloc on this thread
 * (malloc, calloc, realloc, mallocx, ...) once mrt_alloc_counting_enable()
 * has been called; `bytes` is jemalloc's thread.allocated. Cheap: two
 * thread-local reads. Used by tests and benchmarks, never by hot paths.
 */
typedef struct mrt_alloc_counts {
    uint64_t allocs;
    uint64_t bytes;
} mrt_alloc_counts;

/*
 * Install the process-wide jemalloc allocation hook that feeds
 * mrt_alloc_counts.allocs. Idempotent. Adds a few ns to every allocation,
 * so only tests and benchmarks call it. MRT_ENOSYS if jemalloc refuses, and
 * in sanitizer builds (MRT_ALLOC_LIBC), where allocations bypass jemalloc.
 */
int mrt_alloc_counting_enable(void);
/* Current counters of the calling thread. */
mrt_alloc_counts mrt_alloc_counts_now(void);

#ifdef __cplusplus
}
#endif
#endif
