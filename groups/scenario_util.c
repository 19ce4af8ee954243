/* Helpers shared by the scenario runners: the clock, the problem list, the injectors' back-off, the output tally. */
#include "groups/scenario_util.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

unsigned mrt_sc_tally_add(mrt_sc_tally *t, uint64_t seq)
{
    if (seq >= t->cap) {
        size_t cap = t->cap ? t->cap : 1u << 16;
        while (cap <= seq)
            cap *= 2;
        uint8_t *p = realloc(t->n, cap);
        if (p == NULL) {
            t->oom = true;
            return 0;
        }
        memset(p + t->cap, 0, cap - t->cap);
        t->n = p;
        t->cap = cap;
    }
    if (t->n[seq] < 255)
        t->n[seq]++;
    return t->n[seq];
}

void mrt_sc_tally_judge(const mrt_sc_tally *t, uint64_t injected, unsigned expect, uint64_t *lost,
                        uint64_t *duplicated)
{
    for (uint64_t q = 0; q < injected; q++) {
        unsigned v = q < t->cap ? t->n[q] : 0;
        *lost += v < expect;
        *duplicated += v > expect;
    }
    for (uint64_t q = injected; q < t->cap; q++)
        *duplicated += t->n[q] != 0; /* out, never injected */
}

void mrt_sc_tally_free(mrt_sc_tally *t)
{
    free(t->n);
    t->n = NULL;
    t->cap = 0;
}
