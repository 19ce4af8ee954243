/*
 * Per-thread performance counters over perf_event_open, and the timestamp
 * counter. Counters are opened as one group per set, so one read() returns
 * every value of the set measured over the same interval.
 */
#include "meshrt/mrt_perf.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define MRT_HAVE_RDTSC 1
#include <cpuid.h>
#include <x86intrin.h>
#endif

const char *mrt_perf_strerror(int status)
{
    switch (status) {
    case MRT_PERF_EUNAVAIL: return "no performance counter could be opened";
    case MRT_PERF_EREAD: return "reading the performance counters failed";
    default: break;
    }
    if (status <= -600 && status >= MRT_ERANGE_PERF_MIN)
        return "unknown perf status";
    return NULL;
}

struct event_def {
    uint32_t type;
    uint64_t config;
    const char *name;
};

static const struct event_def hw_events[MRT_PERF_MAX_EVENTS] = {
    { PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, "cycles" },
    { PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, "instructions" },
    { PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES, "cache_misses" },
    { PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES, "branch_misses" },
};

static const struct event_def sw_events[MRT_PERF_MAX_EVENTS] = {
    { PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, "task_clock_ns" },
    { PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS, "page_faults" },
    { PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS, "cpu_migrations" },
    { PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES, "context_switches" },
};

static const struct event_def *events_of(mrt_perf_set set)
{
    switch (set) {
    case MRT_PERF_SET_HARDWARE: return hw_events;
    case MRT_PERF_SET_SOFTWARE: return sw_events;
    default: return NULL;
    }
}

const char *mrt_perf_set_name(mrt_perf_set set)
{
    switch (set) {
    case MRT_PERF_SET_HARDWARE: return "hardware";
    case MRT_PERF_SET_SOFTWARE: return "software";
    default: return "none";
    }
}

const char *mrt_perf_event_name(mrt_perf_set set, unsigned i)
{
    const struct event_def *ev = events_of(set);
    return ev != NULL && i < MRT_PERF_MAX_EVENTS ? ev[i].name : NULL;
}

/* The group read layout for PERF_FORMAT_GROUP | TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING. */
#define READ_FORMAT \
    (PERF_FORMAT_GROUP | PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING)
#define READ_HEADER 3   /* nr, time_enabled, time_running */

static void reset(mrt_perf_counters *pc)
{
    pc->set = MRT_PERF_SET_NONE;
    pc->count = 0;
    pc->user_only = false;
    for (unsigned i = 0; i < MRT_PERF_MAX_EVENTS; i++)
        pc->fd[i] = -1;
}

static void close_fds(int *fd, unsigned n)
{
    /* Members before the leader: closing the leader first would orphan them briefly. */
    while (n-- > 0) {
        if (fd[n] >= 0)
            close(fd[n]);
        fd[n] = -1;
    }
}

/*
 * Open the 4 events of `set` as one group on the calling thread, counting
 * from now. Returns 0 or the errno of the first event that failed.
 */
static int open_group(const struct event_def *ev, bool user_only, int fd[MRT_PERF_MAX_EVENTS])
{
    for (unsigned i = 0; i < MRT_PERF_MAX_EVENTS; i++)
        fd[i] = -1;
    for (unsigned i = 0; i < MRT_PERF_MAX_EVENTS; i++) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.size = sizeof(attr);
        attr.type = ev[i].type;
        attr.config = ev[i].config;
        attr.read_format = READ_FORMAT;
        attr.disabled = i == 0;         /* the leader starts the whole group below */
        attr.exclude_kernel = user_only;
        attr.exclude_hv = 1;
        /* This thread (pid 0) on whatever CPU it runs (cpu -1). */
        long r = syscall(SYS_perf_event_open, &attr, 0, -1, i == 0 ? -1 : fd[0],
                         (unsigned long)PERF_FLAG_FD_CLOEXEC);
        if (r < 0) {
            int err = errno != 0 ? errno : EINVAL;
            close_fds(fd, i);
            return err;
        }
        fd[i] = (int)r;
    }
    if (ioctl(fd[0], PERF_EVENT_IOC_RESET, PERF_IOC_FLAG_GROUP) != 0 ||
        ioctl(fd[0], PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP) != 0) {
        int err = errno != 0 ? errno : EINVAL;
        close_fds(fd, MRT_PERF_MAX_EVENTS);
        return err;
    }
    return 0;
}

int mrt_perf_open_set(mrt_perf_counters *pc, mrt_perf_set set, unsigned flags)
{
    if (pc == NULL)
        return MRT_EINVAL;
    reset(pc);
    const struct event_def *ev = events_of(set);
    if (ev == NULL || (flags & ~(unsigned)MRT_PERF_USER_ONLY) != 0)
        return MRT_EINVAL;
    bool user_only = (flags & MRT_PERF_USER_ONLY) != 0;
    int err = open_group(ev, user_only, pc->fd);
    /* perf_event_paranoid >= 2 without CAP_PERFMON: only user-mode counting is allowed. */
    if (!user_only && (err == EACCES || err == EPERM)) {
        user_only = true;
        err = open_group(ev, true, pc->fd);
    }
    if (err != 0)
        return MRT_PERF_EUNAVAIL;
    pc->set = set;
    pc->count = MRT_PERF_MAX_EVENTS;
    pc->user_only = user_only;
    /* A group the kernel accepts but cannot read is no better than none. */
    mrt_perf_sample s;
    if (mrt_perf_read(pc, &s) != MRT_OK) {
        mrt_perf_close(pc);
        return MRT_PERF_EUNAVAIL;
    }
    return MRT_OK;
}

int mrt_perf_open(mrt_perf_counters *pc)
{
    if (pc == NULL)
        return MRT_EINVAL;
    /* The PMU is often missing in virtual machines (ENOENT): fall back to kernel software events. */
    if (mrt_perf_open_set(pc, MRT_PERF_SET_HARDWARE, 0) == MRT_OK)
        return MRT_OK;
    if (mrt_perf_open_set(pc, MRT_PERF_SET_SOFTWARE, 0) == MRT_OK)
        return MRT_OK;
    reset(pc);
    return MRT_PERF_EUNAVAIL;
}

int mrt_perf_read(const mrt_perf_counters *pc, mrt_perf_sample *out)
{
    if (pc == NULL || out == NULL)
        return MRT_EINVAL;
    memset(out, 0, sizeof(*out));
    out->set = pc->set;
    if (pc->set == MRT_PERF_SET_NONE || pc->count == 0)
        return MRT_OK;
    if (pc->count > MRT_PERF_MAX_EVENTS || pc->fd[0] < 0)
        return MRT_PERF_EREAD;
    uint64_t buf[READ_HEADER + MRT_PERF_MAX_EVENTS];
    size_t want = (READ_HEADER + pc->count) * sizeof(uint64_t);
    ssize_t got = read(pc->fd[0], buf, sizeof(buf));
    if (got < 0 || (size_t)got != want || buf[0] != pc->count)
        return MRT_PERF_EREAD;
    out->count = pc->count;
    out->time_enabled_ns = buf[1];
    out->time_running_ns = buf[2];
    for (unsigned i = 0; i < pc->count; i++)
        out->value[i] = buf[READ_HEADER + i];
    return MRT_OK;
}

void mrt_perf_close(mrt_perf_counters *pc)
{
    if (pc == NULL)
        return;
    unsigned n = pc->count <= MRT_PERF_MAX_EVENTS ? pc->count : MRT_PERF_MAX_EVENTS;
    close_fds(pc->fd, n);
    reset(pc);
}

/* ---- timestamp counter ------------------------------------------------- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mrt_rdtsc(void)
{
#ifdef MRT_HAVE_RDTSC
    return __rdtsc();
#else
    return mono_ns();
#endif
}

#ifdef MRT_HAVE_RDTSC
/*
 * TSC frequency from CPUID leaf 0x15 (crystal clock × TSC/crystal ratio),
 * trusted on bare metal only: a hypervisor may scale the guest's TSC while
 * passing the host's leaf through. 0 when absent or incomplete.
 */
static uint64_t cpuid_tsc_hz(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || (c & (1u << 31)) != 0)
        return 0;   /* no CPUID leaf 1, or running under a hypervisor */
    if (__get_cpuid_max(0, NULL) < 0x15)
        return 0;
    __cpuid(0x15, a, b, c, d);
    if (a == 0 || b == 0 || c == 0)
        return 0;
    return (uint64_t)c * b / a;
}

/* One (monotonic ns, tsc) pair, from the tightest of a few brackets so preemption does not skew it. */
static void clock_pair(uint64_t *ns, uint64_t *tsc)
{
    uint64_t best = UINT64_MAX;
    *ns = 0;
    *tsc = 0;
    for (int i = 0; i < 5; i++) {
        uint64_t before = mono_ns();
        uint64_t t = __rdtsc();
        uint64_t after = mono_ns();
        if (after - before < best) {
            best = after - before;
            *ns = before + (after - before) / 2;
            *tsc = t;
        }
    }
}

static uint64_t calibrate_tsc_hz(void)
{
    uint64_t ns0, tsc0, ns1, tsc1;
    clock_pair(&ns0, &tsc0);
    struct timespec req = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
    while (nanosleep(&req, &req) != 0 && errno == EINTR) {
    }
    clock_pair(&ns1, &tsc1);
    if (ns1 <= ns0 || tsc1 <= tsc0)
        return 1000000000u;   /* clocks unusable: better a wrong rate than a division by zero */
    return (uint64_t)((double)(tsc1 - tsc0) * 1e9 / (double)(ns1 - ns0) + 0.5);
}
#endif

static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;
static uint64_t tsc_hz;

static void tsc_init(void)
{
#ifdef MRT_HAVE_RDTSC
    tsc_hz = cpuid_tsc_hz();
    if (tsc_hz == 0)
        tsc_hz = calibrate_tsc_hz();
#else
    tsc_hz = 1000000000u;   /* mrt_rdtsc is CLOCK_MONOTONIC in ns */
#endif
}

uint64_t mrt_tsc_hz(void)
{
    pthread_once(&tsc_once, tsc_init);
    return tsc_hz;
}
