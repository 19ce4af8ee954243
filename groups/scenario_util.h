/* Helpers shared by the scenario runners (groups/scenario.c, groups/scenario_ha.c). */
#ifndef MESHRT_GROUPS_SCENARIO_UTIL_H
#define MESHRT_GROUPS_SCENARIO_UTIL_H

#include "meshrt/mrt_groups.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in seconds. */
double mrt_sc_now_s(void);
/* Append a problem to r->problems ("; "-separated, truncated to fit) and count it. */
void mrt_sc_problem(mrt_scenario_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An injector's wait after a refusal: yield 15 times, then sleep 2..64 us, doubling. */
void mrt_sc_backoff(unsigned *spins);

/* Per injected sequence number: how many outputs carried it (saturating at 255). */
typedef struct mrt_sc_tally {
    uint8_t *n;
    size_t cap;
    bool oom; /* the table could not grow: an arrival went uncounted */
} mrt_sc_tally;
/* The largest sequence number a scenario injects, plus one: anything above is not ours. */
#define MRT_SC_SEQ_LIMIT ((uint64_t)1 << 40)
/* Count one output of seq (< MRT_SC_SEQ_LIMIT); its new count, 0 when it could not be counted (t->oom). */
unsigned mrt_sc_tally_add(mrt_sc_tally *t, uint64_t seq);
/*
 * Judge the tally: of 0..injected-1, each should have come out `expect`
 * times; fewer adds to *lost, more to *duplicated, and so does any number at
 * or above `injected` that came out at all.
 */
void mrt_sc_tally_judge(const mrt_sc_tally *t, uint64_t injected, unsigned expect, uint64_t *lost,
                        uint64_t *duplicated);
void mrt_sc_tally_free(mrt_sc_tally *t);

#endif
