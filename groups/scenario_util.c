/* Helpers shared by the scenario runners: the clock, the problem list, the injectors' back-off. */
#include "groups/scenario_util.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

double mrt_sc_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mrt_sc_problem(mrt_scenario_result *r, const char *fmt, ...)
{
    size_t len = strlen(r->problems);
    if (len + 2 < sizeof r->problems)
        snprintf(r->problems + len, sizeof r->problems - len, "%s", len ? "; " : "");
    len = strlen(r->problems);
    va_list ap;
    va_start(ap, fmt);
    if (len + 1 < sizeof r->problems)
        vsnprintf(r->problems + len, sizeof r->problems - len, fmt, ap);
    va_end(ap);
    r->nproblems++;
}

void mrt_sc_backoff(unsigned *spins)
{
    if (++*spins < 16) {
        sched_yield();
        return;
    }
    unsigned us = 2u << (*spins - 16 < 5 ? *spins - 16 : 5);
    struct timespec ts = { 0, (long)us * 1000 };
    nanosleep(&ts, NULL);
}
