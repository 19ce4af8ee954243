/* The standby and fork scenarios (groups/scenario_ha.c), run and printed through groups/scenario.c. */
#ifndef MESHRT_RUNTIME_SCENARIO_HA_H
#define MESHRT_RUNTIME_SCENARIO_HA_H

#include "meshrt/mrt_groups.h"
#include "meshrt/mrt_runtime.h"

#include <stdbool.h>
#include <stdio.h>

/* mrt_scenario_run for cfg->scenario "standby" or "fork". */
int mrt_scenario_run_ha(const mrt_runtime_config *cfg, bool (*stop)(void *ctx), void *stop_ctx,
                        FILE *progress, mrt_scenario_result *out, char *err, size_t errlen);
/* mrt_scenario_print for their results. */
void mrt_scenario_print_ha(FILE *f, bool json, const mrt_scenario_result *r);

#endif
