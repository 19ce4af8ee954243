/*
 * Compute's lifecycle: control commands racing a drain (each answered or
 * refused, never lost, every daemon destroyed), and runtime create/destroy
 * cycles with compute: 5,000 without threads, then start/stop cycles with
 * two unpinned shard threads.
 */
#include "test_compute_common.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct spawner {
    mrt_compute *c;
    uint16_t type;
    _Atomic uint64_t ok;
    uint64_t stopped, other;
    int other_rc;
} spawner;

/* Spawn, subscribe, and stop every other daemon, until the runtime refuses. */
static void *spawn_loop(void *arg)
{
    spawner *sp = arg;
    for (uint64_t i = 0;; i++) {
        mrt_compute_ref d;
        int rc = mrt_compute_spawn(sp->c, sp->type, MRT_COMPUTE_ANY_SHARD, NULL, NULL, 0, &d);
        if (rc == MRT_OK)
            rc = mrt_compute_subscribe(sp->c, d, MRT_COMPUTE_TO_EGRESS, d);
        if (rc == MRT_OK && i % 2)
            rc = mrt_compute_stop(sp->c, d);
        if (rc == MRT_OK) {
            atomic_fetch_add(&sp->ok, 1);
            continue;
        }
        if (rc == MRT_CP_ESTOPPED) {
            sp->stopped++;
        } else {
            sp->other++;
            sp->other_rc = rc;
        }
        return NULL;
    }
}

START_TEST(control_across_drain)
{
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type t = tc_type("relay", 1);
    spawner sp = { .c = c };
    ck_assert_int_eq(mrt_compute_register_type(c, &t, &sp.type), MRT_OK);
    uint64_t creates = atomic_load(&tc_creates), destroys = atomic_load(&tc_destroys);
    tc_start(rt);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, spawn_loop, &sp), 0);
    MRT_WAIT_UNTIL(atomic_load(&sp.ok) >= 100, "100 control rounds (%llu)",
                   (unsigned long long)atomic_load(&sp.ok));
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK); /* while commands keep coming */
    pthread_join(th, NULL);
    ck_assert_msg(sp.other == 0, "a control call failed with %s", mrt_strerror(sp.other_rc));
    ck_assert_uint_eq(sp.stopped, 1);
    /* Control is closed after the drain (and the shards finalised); daemons all destroyed. */
    mrt_msg m = { .type = 0 };
    int rc = mrt_mesh_control(mrt_runtime_mesh(rt), 0, &m);
    ck_assert_msg(rc == MRT_SHARD_ESTOPPED || rc == MRT_SHARD_ENOTREADY, "control after stop: %s",
                  mrt_strerror(rc));
    ck_assert_uint_ge(atomic_load(&tc_creates) - creates, 100);
    ck_assert_uint_eq(atomic_load(&tc_destroys) - destroys, atomic_load(&tc_creates) - creates);
    mrt_compute_stats s = tc_totals(rt);
    ck_assert_uint_eq(s.hosted, 0);
    mrt_runtime_destroy(rt);
}
END_TEST

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

START_TEST(create_destroy_5000)
{
    /* No thread: the mesh, the balancer's registry and domain, services, compute. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < 5000; i++) {
        mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
        mrt_compute_type t = tc_type("relay", 1);
        uint16_t id;
        ck_assert_int_eq(mrt_compute_register_type(mrt_runtime_compute(rt), &t, &id), MRT_OK);
        mrt_runtime_destroy(rt);
    }
    printf("create_destroy_5000: 5000 cycles without threads in %.2f s\n", seconds_since(&t0));
}
END_TEST

START_TEST(start_stop_cycles)
{
    /* With two shard threads: arenas, rings, pools and daemons made and freed each time. */
    unsigned cycles = getenv("MRT_CP_CYCLES") ? (unsigned)atoi(getenv("MRT_CP_CYCLES")) : 200;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < cycles; i++) {
        mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
        mrt_compute *c = mrt_runtime_compute(rt);
        mrt_compute_type t = tc_type("relay", 1);
        uint16_t id;
        ck_assert_int_eq(mrt_compute_register_type(c, &t, &id), MRT_OK);
        tc_start(rt);
        mrt_compute_ref d;
        ck_assert_int_eq(mrt_compute_spawn(c, id, (uint16_t)(i % 2), NULL, NULL, 0, &d), MRT_OK);
        ck_assert_int_eq(mrt_compute_subscribe(c, d, MRT_COMPUTE_TO_EGRESS, d), MRT_OK);
        tc_inject(c, d, &i, sizeof i);
        ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
        mrt_compute_stats s = tc_totals(rt);
        ck_assert_uint_eq(s.delivered, 1);
        ck_assert_uint_eq(s.egressed, 1);
        ck_assert_uint_eq(s.buffers_out, 0);
        ck_assert_uint_eq(mrt_compute_egress_unclaimed(c), 1); /* the stop drained it */
        mrt_runtime_destroy(rt);
    }
    printf("start_stop_cycles: %u cycles with 2 shard threads in %.2f s\n", cycles,
           seconds_since(&t0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("compute_life");
    TCase *tc = tcase_create("compute_life");
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, control_across_drain);
    tcase_add_test(tc, create_destroy_5000);
    tcase_add_test(tc, start_stop_cycles);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
