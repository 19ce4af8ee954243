/*
 * The runner every Check suite in tests/ ends with, and the helpers that
 * keep a test from passing without checking anything.
 *
 * Skips. A test that cannot check what it is about on this machine or in
 * this build calls MRT_SKIP(capability, fmt, ...): the test ends there,
 * prints "SKIP: <program>/<test>: <capability>: <reason>", and the suite's
 * summary counts it. MRT_SKIP_NOTE() records the same without ending the
 * test (for a loop, or a test that checks what it still can). A capability
 * listed in the environment variable MRT_REQUIRE (comma separated; CI sets
 * it per build in scripts/test.sh) must not be skipped: such a test fails.
 * A suite whose every test skipped exits MRT_SKIP_EXIT (ctest's
 * SKIP_RETURN_CODE), so ctest reports it as skipped rather than passed.
 *
 * The capabilities, a fixed list (anything else fails the test):
 *   alloc-count  jemalloc's hook counts meshrt's allocations; not in the
 *                sanitizer builds, which allocate through libc so that the
 *                sanitizer sees every allocation
 *   arena        allocations land in the jemalloc arena asked for (idem)
 *   perf         some perf_event counter set opens (hardware or software)
 *   perf-hw      hardware PMU counters open and count; rarely on a VM
 *   cpu-bind     the OS lets a thread be bound to one CPU
 *   mem-bind     the OS lets memory be bound to a NUMA node
 *   backtrace    a signal handler's backtrace() gives frames that backtrace_symbols
 *                names (execinfo, an executable with exported symbols)
 *
 * Hang guard. A test waiting on another thread's progress uses
 * MRT_WAIT_UNTIL(cond, fmt, ...) or mrt_wait_begin() + MRT_WAIT_CHECK(): it
 * fails after MRT_WAIT_LIMIT_S seconds saying what it was waiting for,
 * instead of hanging until ctest's timeout kills it without a word. The
 * limit is far beyond any healthy run (sanitizers included): it is a guard
 * against a hang, not a speed check.
 */
#ifndef MESHRT_TESTS_CHECK_MAIN_H
#define MESHRT_TESTS_CHECK_MAIN_H

#include <check.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

extern char *program_invocation_short_name; /* glibc and musl */

#define MRT_SKIP_EXIT 77
#define MRT_SKIP_MAX 64

static const char *const mrt_capabilities[] = {
    "alloc-count", "arena", "perf", "perf-hw", "cpu-bind", "mem-bind", "backtrace",
};
#define MRT_CAPABILITY_COUNT (sizeof mrt_capabilities / sizeof mrt_capabilities[0])

/* Skips recorded by this run; in shared memory so that forked tests (CK_FORK=yes) report too. */
struct mrt_skip_log {
    unsigned count;
    unsigned dropped;
    struct {
        char test[64];
        unsigned cap;
        char reason[160];
    } skip[MRT_SKIP_MAX];
};

static inline struct mrt_skip_log **mrt_skip_log_slot(void)
{
    static struct mrt_skip_log *log;
    return &log;
}

static inline int mrt_capability_index(const char *name, size_t len)
{
    for (unsigned i = 0; i < MRT_CAPABILITY_COUNT; i++)
        if (strlen(mrt_capabilities[i]) == len && strncmp(mrt_capabilities[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* Whether MRT_REQUIRE lists capability `cap`; -1 when it names an unknown capability. */
static inline int mrt_capability_required(unsigned cap)
{
    const char *req = getenv("MRT_REQUIRE");
    int found = 0;
    while (req != NULL && *req != '\0') {
        size_t len = strcspn(req, ",");
        if (len > 0) {
            int i = mrt_capability_index(req, len);
            if (i < 0)
                return -1;
            found |= (unsigned)i == cap;
        }
        req += len + (req[len] == ',');
    }
    return found;
}

/* Record skip of capability index `ci` by the running test (the checks are in the macros). */
static inline void mrt_skip_record(unsigned ci, const char *reason)
{
    struct mrt_skip_log *log = *mrt_skip_log_slot();
    const char *test = tcase_name();
    if (log != NULL) {
        /* A loop that skips once per iteration is one skip. */
        for (unsigned i = 0; i < log->count; i++)
            if (log->skip[i].cap == ci && strcmp(log->skip[i].test, test) == 0)
                return;
        if (log->count == MRT_SKIP_MAX) {
            log->dropped++;
        } else {
            unsigned k = log->count++;
            snprintf(log->skip[k].test, sizeof log->skip[k].test, "%s", test);
            log->skip[k].cap = ci;
            snprintf(log->skip[k].reason, sizeof log->skip[k].reason, "%s", reason);
        }
    }
    printf("SKIP: %s/%s: %s: %s\n", program_invocation_short_name, test, mrt_capabilities[ci],
           reason);
    fflush(stdout); /* a forked test may end without flushing */
}

/*
 * Record that the running test could not check what needs `cap` (fmt, ... say
 * why) and go on; fails the test instead when MRT_REQUIRE lists `cap`. Macros,
 * so that a failure names the test's line.
 */
#define MRT_SKIP_NOTE(cap, ...)                                                                  \
    do {                                                                                         \
        char mrt_reason_[160];                                                                   \
        snprintf(mrt_reason_, sizeof mrt_reason_, __VA_ARGS__);                                  \
        int mrt_ci_ = mrt_capability_index((cap), strlen(cap));                                  \
        ck_assert_msg(mrt_ci_ >= 0, "unknown capability '%s' (see tests/check_main.h)", (cap));  \
        ck_assert_msg(mrt_capability_required((unsigned)mrt_ci_) == 0,                           \
                      "capability %s is required (MRT_REQUIRE) but unavailable: %s", (cap),      \
                      mrt_reason_);                                                              \
        mrt_skip_record((unsigned)mrt_ci_, mrt_reason_);                                         \
    } while (0)

/* End the running test (or the helper it is in) as skipped for want of `cap`. */
#define MRT_SKIP(cap, ...)                 \
    do {                                   \
        MRT_SKIP_NOTE((cap), __VA_ARGS__); \
        return;                            \
    } while (0)

/* Run every test of `s` (the runner takes ownership); the process exit status. */
static inline int mrt_check_run(Suite *s)
{
    for (unsigned c = 0; c < MRT_CAPABILITY_COUNT; c++) {
        if (mrt_capability_required(c) < 0) {
            fprintf(stderr, "%s: MRT_REQUIRE='%s' names an unknown capability\n",
                    program_invocation_short_name, getenv("MRT_REQUIRE"));
            return EXIT_FAILURE;
        }
    }
    struct mrt_skip_log *log = mmap(NULL, sizeof *log, PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (log == MAP_FAILED) {
        perror("mmap");
        return EXIT_FAILURE;
    }
    memset(log, 0, sizeof *log);
    *mrt_skip_log_slot() = log;
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int run = srunner_ntests_run(sr);
    srunner_free(sr);
    /* Tests skipped: distinct names among the skips. */
    int skipped = 0;
    for (unsigned i = 0; i < log->count; i++) {
        bool first = true;
        for (unsigned k = 0; k < i && first; k++)
            first = strcmp(log->skip[k].test, log->skip[i].test) != 0;
        skipped += first;
    }
    printf("%s: %d tests, %d failed, %d skipped", program_invocation_short_name, run, failed,
           skipped);
    for (unsigned i = 0; i < log->count; i++)
        printf("%s%s: %s", i ? ", " : " (", log->skip[i].test, mrt_capabilities[log->skip[i].cap]);
    if (log->dropped)
        printf(", %u more", log->dropped);
    printf("%s\n", log->count ? ")" : "");
    bool all_skipped = run > 0 && skipped == run && failed == 0;
    *mrt_skip_log_slot() = NULL;
    munmap(log, sizeof *log);
    if (failed)
        return EXIT_FAILURE;
    return all_skipped ? MRT_SKIP_EXIT : EXIT_SUCCESS;
}

/* ------------------------------------------------------------------ hang guard */

#ifndef MRT_WAIT_LIMIT_S
#define MRT_WAIT_LIMIT_S 60
#endif
#define MRT_WAIT_STR_(x) #x
#define MRT_WAIT_STR(x) MRT_WAIT_STR_(x)

typedef struct mrt_wait {
    struct timespec start;
} mrt_wait;

static inline mrt_wait mrt_wait_begin(void)
{
    mrt_wait w;
    clock_gettime(CLOCK_MONOTONIC, &w.start);
    return w;
}

/* Whether the wait begun at `w` has lasted MRT_WAIT_LIMIT_S. */
static inline bool mrt_wait_expired(const mrt_wait *w)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec - w->start.tv_sec > MRT_WAIT_LIMIT_S ||
           (now.tv_sec - w->start.tv_sec == MRT_WAIT_LIMIT_S && now.tv_nsec >= w->start.tv_nsec);
}

/* Inside a wait loop: fail, saying what was awaited (a printf format), once the limit is hit. */
#define MRT_WAIT_CHECK(w, ...)                                                               \
    ck_assert_msg(!mrt_wait_expired(w),                                                      \
                  "hang guard: still waiting after " MRT_WAIT_STR(MRT_WAIT_LIMIT_S) " s for " \
                  __VA_ARGS__)

/* Yield until `cond` holds; fail after MRT_WAIT_LIMIT_S saying what was awaited. */
#define MRT_WAIT_UNTIL(cond, ...)              \
    do {                                       \
        mrt_wait mrt_w_ = mrt_wait_begin();    \
        while (!(cond)) {                      \
            MRT_WAIT_CHECK(&mrt_w_, __VA_ARGS__); \
            sched_yield();                     \
        }                                      \
    } while (0)

#endif
