/*
 * perf counters: whatever set this machine allows must behave (or the
 * fallback must say NONE); rdtsc and its frequency.
 */
#include "meshrt/mrt_perf.h"
#include "tests/check_main.h"

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* CPU work the compiler cannot remove. */
static uint64_t busy_work(unsigned iterations)
{
    volatile uint64_t acc = 1;
    for (unsigned i = 0; i < iterations; i++)
        acc = acc * 6364136223846793005u + i;
    return acc;
}

/* Fault in `pages` fresh anonymous pages: each first touch is a page fault. */
static void touch_fresh_pages(unsigned pages)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t len = (size_t)page * pages;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    for (unsigned i = 0; i < pages; i++)
        ((volatile char *)p)[(size_t)i * (size_t)page] = 1;
    munmap(p, len);
}

static void check_closed(const mrt_perf_counters *pc)
{
    ck_assert_int_eq(pc->set, MRT_PERF_SET_NONE);
    ck_assert_uint_eq(pc->count, 0);
    for (unsigned i = 0; i < MRT_PERF_MAX_EVENTS; i++)
        ck_assert_int_eq(pc->fd[i], -1);
}

/*
 * Two reads around CPU work and page faults: nothing goes down; the
 * time-like counter (cycles or task clock) and the work counter
 * (instructions, or page faults for the software set) strictly go up.
 */
static void check_live_set(mrt_perf_counters *pc)
{
    mrt_perf_sample s0, s1;
    ck_assert_int_eq(mrt_perf_read(pc, &s0), MRT_OK);
    ck_assert_int_eq(s0.set, pc->set);
    ck_assert_uint_eq(s0.count, pc->count);
    busy_work(2000000);
    touch_fresh_pages(64);
    ck_assert_int_eq(mrt_perf_read(pc, &s1), MRT_OK);
    ck_assert_uint_eq(s1.count, pc->count);
    for (unsigned i = 0; i < s1.count; i++)
        ck_assert_msg(s1.value[i] >= s0.value[i], "%s went down: %llu -> %llu",
                      mrt_perf_event_name(pc->set, i), (unsigned long long)s0.value[i],
                      (unsigned long long)s1.value[i]);
    ck_assert_uint_gt(s1.time_enabled_ns, s0.time_enabled_ns);
    ck_assert_uint_le(s1.time_running_ns, s1.time_enabled_ns);
    /* A hardware group may be multiplexed off a busy PMU; it cannot count while off. */
    if (pc->set == MRT_PERF_SET_HARDWARE && s1.time_running_ns == s0.time_running_ns)
        MRT_SKIP("perf-hw", "the hardware group was multiplexed off the PMU: nothing counted");
    ck_assert_uint_gt(s1.value[0], s0.value[0]);   /* cycles / task_clock_ns */
    ck_assert_uint_gt(s1.value[1], s0.value[1]);   /* instructions / page_faults (64 fresh pages) */
}

START_TEST(open_default)
{
    mrt_perf_counters pc;
    int rc = mrt_perf_open(&pc);
    if (rc == MRT_PERF_EUNAVAIL) {
        check_closed(&pc);
        mrt_perf_sample s;
        s.count = 9;
        ck_assert_int_eq(mrt_perf_read(&pc, &s), MRT_OK);
        ck_assert_int_eq(s.set, MRT_PERF_SET_NONE);
        ck_assert_uint_eq(s.count, 0);
        MRT_SKIP("perf", "no perf_event counter set opens here: live counting not checked");
    }
    ck_assert_int_eq(rc, MRT_OK);
    ck_assert(pc.set == MRT_PERF_SET_HARDWARE || pc.set == MRT_PERF_SET_SOFTWARE);
    ck_assert_uint_eq(pc.count, MRT_PERF_MAX_EVENTS);
    for (unsigned i = 0; i < pc.count; i++)
        ck_assert_int_ge(pc.fd[i], 0);
    check_live_set(&pc);
    mrt_perf_close(&pc);
    check_closed(&pc);
}
END_TEST

START_TEST(open_software_set)
{
    /* The fallback set on its own, kernel mode when permitted, and user-only. */
    const unsigned flags[] = { 0, MRT_PERF_USER_ONLY };
    for (unsigned f = 0; f < 2; f++) {
        mrt_perf_counters pc;
        int rc = mrt_perf_open_set(&pc, MRT_PERF_SET_SOFTWARE, flags[f]);
        if (rc == MRT_PERF_EUNAVAIL) {
            check_closed(&pc);
            MRT_SKIP_NOTE("perf", "the software counter set does not open (flags %#x)", flags[f]);
            continue;
        }
        ck_assert_int_eq(rc, MRT_OK);
        ck_assert_int_eq(pc.set, MRT_PERF_SET_SOFTWARE);
        if (flags[f] & MRT_PERF_USER_ONLY)
            ck_assert(pc.user_only);
        check_live_set(&pc);
        mrt_perf_close(&pc);
        check_closed(&pc);
    }
}
END_TEST

START_TEST(open_hardware_set)
{
    mrt_perf_counters pc;
    int rc = mrt_perf_open_set(&pc, MRT_PERF_SET_HARDWARE, 0);
    if (rc == MRT_PERF_EUNAVAIL) {
        check_closed(&pc);
        MRT_SKIP("perf-hw", "no hardware PMU counters here (virtual machine?)");
    }
    ck_assert_int_eq(rc, MRT_OK);
    ck_assert_int_eq(pc.set, MRT_PERF_SET_HARDWARE);
    check_live_set(&pc);
    mrt_perf_close(&pc);
}
END_TEST

START_TEST(open_bad_arguments)
{
    mrt_perf_counters pc;
    ck_assert_int_eq(mrt_perf_open(NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_perf_open_set(NULL, MRT_PERF_SET_SOFTWARE, 0), MRT_EINVAL);
    ck_assert_int_eq(mrt_perf_open_set(&pc, MRT_PERF_SET_NONE, 0), MRT_EINVAL);
    check_closed(&pc);
    ck_assert_int_eq(mrt_perf_open_set(&pc, (mrt_perf_set)42, 0), MRT_EINVAL);
    ck_assert_int_eq(mrt_perf_open_set(&pc, MRT_PERF_SET_SOFTWARE, 0x80), MRT_EINVAL);
    check_closed(&pc);
    mrt_perf_sample s;
    ck_assert_int_eq(mrt_perf_read(NULL, &s), MRT_EINVAL);
    ck_assert_int_eq(mrt_perf_read(&pc, NULL), MRT_EINVAL);
}
END_TEST

START_TEST(read_error)
{
    /* A "live" set whose leader is not a perf fd, or no fd at all: EREAD, not garbage. */
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(devnull, 0);
    mrt_perf_counters pc = { .set = MRT_PERF_SET_SOFTWARE, .count = 4,
                             .fd = { devnull, -1, -1, -1 } };
    mrt_perf_sample s;
    ck_assert_int_eq(mrt_perf_read(&pc, &s), MRT_PERF_EREAD);
    ck_assert_uint_eq(s.count, 0);
    pc.fd[0] = -1;
    ck_assert_int_eq(mrt_perf_read(&pc, &s), MRT_PERF_EREAD);
    close(devnull);
}
END_TEST

START_TEST(close_idempotent)
{
    mrt_perf_counters pc;
    (void)mrt_perf_open(&pc);
    mrt_perf_close(&pc);
    check_closed(&pc);
    mrt_perf_close(&pc);
    check_closed(&pc);
    mrt_perf_close(NULL);
    /* A zero-filled struct (count 0) must not close fd 0. */
    int before = fcntl(0, F_GETFD);
    mrt_perf_counters zero;
    memset(&zero, 0, sizeof(zero));
    mrt_perf_close(&zero);
    ck_assert_int_eq(fcntl(0, F_GETFD), before);
    check_closed(&zero);
    /* Reading closed counters is an empty sample. */
    mrt_perf_sample s;
    ck_assert_int_eq(mrt_perf_read(&pc, &s), MRT_OK);
    ck_assert_int_eq(s.set, MRT_PERF_SET_NONE);
    ck_assert_uint_eq(s.count, 0);
}
END_TEST

START_TEST(names)
{
    ck_assert_str_eq(mrt_perf_set_name(MRT_PERF_SET_NONE), "none");
    ck_assert_str_eq(mrt_perf_set_name(MRT_PERF_SET_HARDWARE), "hardware");
    ck_assert_str_eq(mrt_perf_set_name(MRT_PERF_SET_SOFTWARE), "software");
    ck_assert_str_eq(mrt_perf_set_name((mrt_perf_set)42), "none");
    const char *hw[] = { "cycles", "instructions", "cache_misses", "branch_misses" };
    const char *sw[] = { "task_clock_ns", "page_faults", "cpu_migrations", "context_switches" };
    for (unsigned i = 0; i < MRT_PERF_MAX_EVENTS; i++) {
        ck_assert_str_eq(mrt_perf_event_name(MRT_PERF_SET_HARDWARE, i), hw[i]);
        ck_assert_str_eq(mrt_perf_event_name(MRT_PERF_SET_SOFTWARE, i), sw[i]);
        ck_assert_ptr_null(mrt_perf_event_name(MRT_PERF_SET_NONE, i));
    }
    ck_assert_ptr_null(mrt_perf_event_name(MRT_PERF_SET_HARDWARE, MRT_PERF_MAX_EVENTS));
    ck_assert_ptr_null(mrt_perf_event_name(MRT_PERF_SET_SOFTWARE, 1000));
    ck_assert_str_eq(mrt_perf_strerror(MRT_PERF_EUNAVAIL), "no performance counter could be opened");
    ck_assert_ptr_nonnull(mrt_perf_strerror(MRT_PERF_EREAD));
    ck_assert_str_ne(mrt_perf_strerror(MRT_PERF_EREAD), mrt_perf_strerror(MRT_PERF_EUNAVAIL));
    ck_assert_ptr_nonnull(mrt_perf_strerror(-699));
    ck_assert_ptr_null(mrt_perf_strerror(-700));
    ck_assert_ptr_null(mrt_perf_strerror(-599));
    ck_assert_ptr_null(mrt_perf_strerror(MRT_OK));
}
END_TEST

START_TEST(rdtsc_monotonic)
{
    uint64_t prev = mrt_rdtsc();
    for (int i = 0; i < 10000; i++) {
        uint64_t now = mrt_rdtsc();
        ck_assert_uint_ge(now, prev);
        prev = now;
    }
    uint64_t a = mrt_rdtsc();
    busy_work(100000);
    ck_assert_uint_gt(mrt_rdtsc(), a);
}
END_TEST

static void *hz_main(void *arg)
{
    *(uint64_t *)arg = mrt_tsc_hz();
    return NULL;
}

START_TEST(tsc_hz_once)
{
    /* First calls race from several threads: one calibration, one answer. */
    enum { N = 4 };
    pthread_t th[N];
    uint64_t hz[N];
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hz_main, &hz[i]), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_uint_gt(hz[0], 0);
    for (int i = 1; i < N; i++)
        ck_assert_uint_eq(hz[i], hz[0]);
    ck_assert_uint_eq(mrt_tsc_hz(), hz[0]);
    /* A unit check, not a speed check: a tick rate between 1 MHz and 100 GHz. */
    ck_assert_uint_ge(hz[0], 1000000u);
    ck_assert_uint_le(hz[0], 100000000000u);
}
END_TEST

static Suite *perf_suite(void)
{
    Suite *s = suite_create("perf");
    TCase *tc = tcase_create("counters");
    tcase_add_test(tc, open_default);
    tcase_add_test(tc, open_software_set);
    tcase_add_test(tc, open_hardware_set);
    tcase_add_test(tc, open_bad_arguments);
    tcase_add_test(tc, read_error);
    tcase_add_test(tc, close_idempotent);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    TCase *tsc = tcase_create("tsc");
    tcase_add_test(tsc, rdtsc_monotonic);
    tcase_add_test(tsc, tsc_hz_once);
    suite_add_tcase(s, tsc);
    return s;
}

int main(void)
{
    return mrt_check_run(perf_suite());
}
