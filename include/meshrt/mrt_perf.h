/*
 * mrt_perf.h — per-thread performance counters (perf_event_open), read
 * once per stats interval, never per event. Where the PMU is unavailable
 * (virtual machines, perf_event_paranoid) a software set is opened instead
 * and the live set is reported by name.
 */
#ifndef MESHRT_MRT_PERF_H
#define MESHRT_MRT_PERF_H

#include "meshrt/mrt_core.h"

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

/* A sample: raw counter values since open, in the order of the set. */
typedef struct mrt_perf_sample {
    mrt_perf_set set;
    unsigned count;                         /* valid entries in value[] */
    uint64_t value[MRT_PERF_MAX_EVENTS];
} mrt_perf_sample;

/* Counters of one thread. Plain struct, owned by the thread that opened it. */
typedef struct mrt_perf_counters {
    mrt_perf_set set;
    unsigned count;
    int fd[MRT_PERF_MAX_EVENTS];            /* -1 when not open */
} mrt_perf_counters;

/*
 * Open counters for the calling thread: the hardware set when the PMU
 * allows, else the software set. Never fails hard: with nothing available
 * it returns MRT_PERF_EUNAVAIL and leaves set = MRT_PERF_SET_NONE (reads
 * then return an empty sample).
 */
int mrt_perf_open(mrt_perf_counters *pc);
/* Read all counters of the set into *out. */
int mrt_perf_read(const mrt_perf_counters *pc, mrt_perf_sample *out);
/* Close (idempotent). */
void mrt_perf_close(mrt_perf_counters *pc);

/* "hardware", "software" or "none". */
const char *mrt_perf_set_name(mrt_perf_set set);
/* Short name of counter i of a set, e.g. "cycles", "task_clock_ns"; NULL when out of range. */
const char *mrt_perf_event_name(mrt_perf_set set, unsigned i);

/* Timestamp counter (rdtsc) and its frequency in Hz, calibrated once on first call. */
uint64_t mrt_rdtsc(void);
uint64_t mrt_tsc_hz(void);

#ifdef __cplusplus
}
#endif
#endif
