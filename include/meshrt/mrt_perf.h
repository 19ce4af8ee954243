/*
 * mrt_perf.h — per-thread performance counters (perf_event_open), read
 * once per stats interval, never per event. Where the PMU is unavailable
 * (virtual machines, perf_event_paranoid) a software set is opened instead
 * and the live set is reported by name.
 */
#ifndef MESHRT_MRT_PERF_H
#define MESHRT_MRT_PERF_H

#include "meshrt/mrt_core.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-600 .. -699). */
enum mrt_perf_status {
    MRT_PERF_EUNAVAIL = -600,   /* no counter at all could be opened */
    MRT_PERF_EREAD = -601,      /* reading the counters failed */
};

/* Name of a perf status code; NULL outside -600..-699. */
const char *mrt_perf_strerror(int status);

/* Which counter set is live. */
typedef enum mrt_perf_set {
    MRT_PERF_SET_NONE = 0,      /* nothing opened: only rdtsc figures */
    MRT_PERF_SET_HARDWARE,      /* cycles, instructions, cache misses, branch misses */
    MRT_PERF_SET_SOFTWARE,      /* task clock (ns), page faults, migrations, context switches */
} mrt_perf_set;

#define MRT_PERF_MAX_EVENTS 4

/*
 * A sample: raw counter values since open, in the order of the set (see
 * mrt_perf_event_name). Raw, not scaled for multiplexing, so successive
 * samples never go down and interval deltas are plain subtractions.
 * time_running_ns < time_enabled_ns means the kernel multiplexed the group
 * off the PMU part of the time (only the hardware set can be).
 */
typedef struct mrt_perf_sample {
    mrt_perf_set set;
    unsigned count;                         /* valid entries in value[] */
    uint64_t value[MRT_PERF_MAX_EVENTS];
    uint64_t time_enabled_ns;               /* since open */
    uint64_t time_running_ns;               /* since open, while actually counting */
} mrt_perf_sample;

/* Counters of one thread. Plain struct, owned by the thread that opened it. */
typedef struct mrt_perf_counters {
    mrt_perf_set set;
    unsigned count;
    int fd[MRT_PERF_MAX_EVENTS];            /* -1 when not open; fd[0] leads the group */
    /*
     * Only user-mode activity is counted (perf_event_paranoid >= 2 without
     * CAP_PERFMON). Events that happen in the kernel then read 0 — context
     * switches and migrations of the software set — so print this with the set.
     */
    bool user_only;
} mrt_perf_counters;

/* Flags of mrt_perf_open_set. */
#define MRT_PERF_USER_ONLY 1u   /* count user mode only, do not try kernel mode first */

/*
 * Open counters for the calling thread: the hardware set when the PMU
 * allows, else the software set. Never fails hard: with nothing available
 * it returns MRT_PERF_EUNAVAIL and leaves set = MRT_PERF_SET_NONE (reads
 * then return an empty sample).
 */
int mrt_perf_open(mrt_perf_counters *pc);
/*
 * Open exactly `set` (no fallback), for tests and benchmarks that need one
 * set: MRT_PERF_EUNAVAIL when it cannot be opened, MRT_EINVAL for
 * MRT_PERF_SET_NONE or unknown flags. Without MRT_PERF_USER_ONLY, kernel
 * mode is counted when permitted, else it retries user-only. `pc` must not
 * hold open counters (they would leak); on error it is left closed.
 */
int mrt_perf_open_set(mrt_perf_counters *pc, mrt_perf_set set, unsigned flags);
/*
 * Read all counters of the set into *out with one read() (a syscall: once
 * per stats interval, never per event). Any thread may read, though only
 * the opening thread is counted. Set NONE: MRT_OK with an empty sample.
 */
int mrt_perf_read(const mrt_perf_counters *pc, mrt_perf_sample *out);
/* Close (idempotent; also safe on a zero-filled struct, whose count is 0). */
void mrt_perf_close(mrt_perf_counters *pc);

/* "hardware", "software" or "none". */
const char *mrt_perf_set_name(mrt_perf_set set);
/* Short name of counter i of a set, e.g. "cycles", "task_clock_ns"; NULL when out of range. */
const char *mrt_perf_event_name(mrt_perf_set set, unsigned i);

/*
 * Timestamp counter: rdtsc on x86 (not serialising: cheap enough for
 * per-iteration idle/busy accounting), CLOCK_MONOTONIC in ns elsewhere.
 * Comparable across reads on one thread; across threads only on machines
 * with an invariant, synchronised TSC.
 */
uint64_t mrt_rdtsc(void);
/*
 * Ticks per second of mrt_rdtsc, > 0. Determined once, thread-safely, on
 * first call: CPUID leaf 0x15 on bare metal when it is complete, else
 * calibrated against CLOCK_MONOTONIC over ~10 ms (the first call sleeps
 * that long: call it at start-up, not on the event path).
 */
uint64_t mrt_tsc_hz(void);

/*
 * Log-linear histogram of unsigned values (ns, or a count such as ring
 * occupancy): 0..3 exact, then 4 sub-buckets per power of two, so a
 * bucket's width is at most 25 % of its lower bound; values from 2^40 up
 * share the last bucket. One writer (a shard) records with plain stores;
 * readers take published copies (see mrt_runtime_hist_read). Recording
 * never allocates, locks or reads a clock.
 */
#define MRT_HIST_SUB_BITS 2
#define MRT_HIST_MAX_EXP 40
#define MRT_HIST_BUCKETS (4 + (MRT_HIST_MAX_EXP - 2) * 4 + 1)

typedef struct mrt_hist {
    uint64_t count;                     /* values recorded (the sum of bucket[]) */
    uint64_t sum;                       /* their sum (wraps after 2^64) */
    uint64_t bucket[MRT_HIST_BUCKETS];  /* counts per bucket, not cumulative */
} mrt_hist;

/* Bucket index of value v. */
static inline unsigned mrt_hist_index(uint64_t v)
{
    if (v < 4)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    if (e >= MRT_HIST_MAX_EXP)
        return MRT_HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(v >> (e - MRT_HIST_SUB_BITS)) & 3u;
    return 4u + (e - 2u) * 4u + sub;
}

/* Record one value (owner thread). */
static inline void mrt_hist_record(mrt_hist *h, uint64_t v)
{
    h->bucket[mrt_hist_index(v)]++;
    h->count++;
    h->sum += v;
}

/* Largest value bucket b holds (UINT64_MAX for the last; 0 for b out of range). */
uint64_t mrt_hist_upper(unsigned b);
/* Add src's counts to dst. */
void mrt_hist_merge(mrt_hist *dst, const mrt_hist *src);
/*
 * Upper bound of the bucket holding quantile q (0..1) of the recorded
 * values: an estimate within the bucket's 25 %. 0 for an empty histogram.
 */
uint64_t mrt_hist_quantile(const mrt_hist *h, double q);

#ifdef __cplusplus
}
#endif
#endif
