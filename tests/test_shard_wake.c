/*
 * Idle wake (mrt_mesh_config.idle_wake): a shard waiting out a long idle
 * back-off is woken by an injection, a control message and a stop, and
 * counts it; without idle_wake nothing wakes it early, and a shard pinned
 * to the producer's own CPU is left to its timeout.
 */
#include "meshrt/mrt_shard.h"
#include "tests/check_main.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

enum { T_DATA = 3, T_CTL = 2, SHARDS = 2, LONG_WAITS = 20, CEILING_US = 500000 };

static _Atomic uint64_t handled[SHARDS];

static void on_msg(mrt_shard *s, const mrt_msg *m, void *ctx)
{
    (void)s;
    (void)m;
    /* seq_cst: the shard's published wait counters are read after this. */
    atomic_fetch_add(&handled[(uintptr_t)ctx], 1);
}

static void *shard_thread(void *arg)
{
    mrt_shard_run(arg);
    return NULL;
}

/*
 * Two running shards that back off at once (no spinning) up to `ceiling_us`;
 * `pin` (NULL: none) is their threads' affinity, set before their run starts
 * (mrt_shard_run reads it once).
 */
static mrt_mesh *start(bool wake, unsigned ceiling_us, const cpu_set_t *pin, pthread_t t[SHARDS])
{
    pthread_attr_t at;
    pthread_attr_init(&at);
    if (pin != NULL)
        ck_assert_int_eq(pthread_attr_setaffinity_np(&at, sizeof *pin, pin), 0);
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, SHARDS);
    cfg.idle_spin = 0;
    cfg.idle_sleep_max_us = ceiling_us;
    cfg.idle_wake = wake;
    mrt_mesh *m = NULL;
    ck_assert_int_eq(mrt_mesh_create(&cfg, &m), MRT_OK);
    for (unsigned i = 0; i < SHARDS; i++) {
        atomic_store(&handled[i], 0);
        mrt_shard *s = mrt_mesh_shard(m, i);
        ck_assert_int_eq(mrt_shard_init_local(s), MRT_OK);
        ck_assert_int_eq(mrt_shard_set_handler(s, T_DATA, on_msg, (void *)(uintptr_t)i), MRT_OK);
        ck_assert_int_eq(mrt_shard_set_control_handler(s, T_CTL, on_msg, (void *)(uintptr_t)i),
                         MRT_OK);
        ck_assert_int_eq(pthread_create(&t[i], &at, shard_thread, s), 0);
    }
    pthread_attr_destroy(&at);
    return m;
}

static mrt_shard_stats stats(mrt_mesh *m, unsigned i)
{
    mrt_shard_stats st;
    mrt_shard_stats_read(m, i, &st);
    return st;
}

/*
 * Shard i handles a message (which resets its back-off to 1 us), then backs
 * off LONG_WAITS times: its waits double up to the ceiling (0.5 s), so it
 * is then in a wait of the ceiling, after about 1 s.
 */
static void long_idle(mrt_mesh *m, unsigned i)
{
    uint64_t h = atomic_load(&handled[i]);
    mrt_msg msg = { .type = T_DATA };
    ck_assert_int_eq(mrt_mesh_inject(m, i, &msg), MRT_OK);
    MRT_WAIT_UNTIL(atomic_load(&handled[i]) == h + 1, "shard %u handled the priming message", i);
    uint64_t s0 = stats(m, i).sleeps;
    MRT_WAIT_UNTIL(stats(m, i).sleeps >= s0 + LONG_WAITS, "shard %u idle %d waits", i, LONG_WAITS);
}

static void stop(mrt_mesh *m, pthread_t t[SHARDS])
{
    mrt_mesh_stop(m);
    for (unsigned i = 0; i < SHARDS; i++)
        pthread_join(t[i], NULL);
}

/*
 * A message sent into shard i's long wait (data through ingress, or
 * control) is handled after a wait a producer ended: one wakeup more. A
 * wait that ran out instead (the mechanism broken) adds none. The test
 * thread could also be descheduled past the whole wait, so up to 3 tries.
 */
static void wakes(mrt_mesh *m, unsigned i, bool control)
{
    bool woke = false;
    for (int attempt = 0; attempt < 3 && !woke; attempt++) {
        long_idle(m, i);
        uint64_t w0 = stats(m, i).wakeups, h = atomic_load(&handled[i]);
        mrt_msg msg = { .type = control ? T_CTL : T_DATA };
        ck_assert_int_eq(control ? mrt_mesh_control(m, i, &msg) : mrt_mesh_inject(m, i, &msg),
                         MRT_OK);
        MRT_WAIT_UNTIL(atomic_load(&handled[i]) == h + 1, "shard %u handled the message", i);
        woke = stats(m, i).wakeups == w0 + 1;
    }
    ck_assert_msg(woke, "shard %u: %s never ended a wait", i, control ? "control" : "an injection");
}

START_TEST(injection_and_control_end_a_long_wait)
{
    pthread_t t[SHARDS];
    mrt_mesh *m = start(true, CEILING_US, NULL, t);
    for (unsigned i = 0; i < SHARDS; i++) {
        wakes(m, i, false);
        wakes(m, i, true);
    }
    stop(m, t);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(stop_ends_a_long_wait)
{
    pthread_t t[SHARDS];
    mrt_mesh *m = start(true, CEILING_US, NULL, t);
    uint64_t w0[SHARDS];
    for (unsigned i = 0; i < SHARDS; i++) {
        long_idle(m, i);
        w0[i] = stats(m, i).wakeups;
    }
    stop(m, t);
    for (unsigned i = 0; i < SHARDS; i++)
        ck_assert_uint_ge(stats(m, i).wakeups, w0[i] + 1);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(without_idle_wake_nothing_wakes)
{
    pthread_t t[SHARDS];
    mrt_mesh *m = start(false, 100, NULL, t);
    for (unsigned i = 0; i < SHARDS; i++) {
        long_idle(m, i);
        uint64_t h = atomic_load(&handled[i]);
        mrt_msg msg = { .type = T_DATA };
        ck_assert_int_eq(mrt_mesh_inject(m, i, &msg), MRT_OK);
        MRT_WAIT_UNTIL(atomic_load(&handled[i]) == h + 1, "shard %u handled the injection", i);
    }
    stop(m, t);
    for (unsigned i = 0; i < SHARDS; i++) {
        mrt_shard_stats st = stats(m, i);
        ck_assert_uint_ge(st.sleeps, LONG_WAITS);
        ck_assert_uint_eq(st.wakeups, 0);
    }
    mrt_mesh_destroy(m);
}
END_TEST

/*
 * A shard pinned to the producer's own CPU is left to its timeout: waking
 * it would only preempt the producer. The message is still handled (after
 * the wait ran out), with no wakeup counted. A stop wakes it all the same.
 */
START_TEST(a_shard_on_the_producers_cpu_is_not_woken)
{
    cpu_set_t saved, one;
    ck_assert_int_eq(pthread_getaffinity_np(pthread_self(), sizeof saved, &saved), 0);
    int cpu = -1;
    for (int c = 0; c < CPU_SETSIZE && cpu < 0; c++)
        if (CPU_ISSET(c, &saved))
            cpu = c;
    ck_assert_int_ge(cpu, 0);
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ck_assert_int_eq(pthread_setaffinity_np(pthread_self(), sizeof one, &one), 0);

    pthread_t t[SHARDS];
    mrt_mesh *m = start(true, CEILING_US, &one, t);
    long_idle(m, 0);
    uint64_t w0 = stats(m, 0).wakeups;
    mrt_msg msg = { .type = T_DATA };
    ck_assert_int_eq(mrt_mesh_inject(m, 0, &msg), MRT_OK);
    MRT_WAIT_UNTIL(atomic_load(&handled[0]) == 2, "the pinned shard handled the injection");
    ck_assert_uint_eq(stats(m, 0).wakeups, w0);

    /* Stop is the exception: it ends the wait too (the stopping thread has nothing left to run). */
    long_idle(m, 0);
    w0 = stats(m, 0).wakeups;
    stop(m, t);
    ck_assert_uint_ge(stats(m, 0).wakeups, w0 + 1);
    mrt_mesh_destroy(m);
    ck_assert_int_eq(pthread_setaffinity_np(pthread_self(), sizeof saved, &saved), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shard_wake");
    TCase *tc = tcase_create("wake");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, injection_and_control_end_a_long_wait);
    tcase_add_test(tc, stop_ends_a_long_wait);
    tcase_add_test(tc, without_idle_wake_nothing_wakes);
    tcase_add_test(tc, a_shard_on_the_producers_cpu_is_not_woken);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
