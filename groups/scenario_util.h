/* Helpers shared by the scenario runners (groups/scenario.c, groups/scenario_ha.c). */
#ifndef MESHRT_RUNTIME_SCENARIO_UTIL_H
#define MESHRT_RUNTIME_SCENARIO_UTIL_H

#include "meshrt/mrt_groups.h"

/* CLOCK_MONOTONIC in seconds. */
double mrt_sc_now_s(void);
/* Append a problem to r->problems ("; "-separated, truncated to fit) and count it. */
void mrt_sc_problem(mrt_scenario_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An injector's wait after a refusal: yield 15 times, then sleep 2..64 us, doubling. */
void mrt_sc_backoff(unsigned *spins);

#endif
