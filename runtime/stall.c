/*
 * The stall detector's watcher: a control-side thread that looks at each
 * shard's stall slot (shards/stall.h) every threshold / 4 and reports a
 * poll iteration that has run past the threshold while it still runs, with
 * a backtrace the shard takes of itself on a signal (shards/stall.c).
 *
 * Only this thread writes the per-shard bookkeeping below; the counters
 * are atomics because any thread reads them (mrt_runtime_stall_count).
 */
#include "runtime/rt_internal.h"

#include "shards/stall.h"

#include <execinfo.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SAME_(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME_(MRT_RT_STALL_POLL, MRT_STALL_PH_POLL) &&
                   SAME_(MRT_RT_STALL_CONTROL, MRT_STALL_PH_CONTROL) &&
                   SAME_(MRT_RT_STALL_DATA, MRT_STALL_PH_DATA) &&
                   SAME_(MRT_RT_STALL_TICK, MRT_STALL_PH_TICK) &&
                   SAME_(MRT_RT_STALL_FLUSH, MRT_STALL_PH_FLUSH),
               "public phases are the slot's");

/* How long the watcher waits for a shard's handler to answer the signal. */
#define STALL_BT_WAIT_MS 100u
/*
 * Stalls reported per shard: a burst of this many, then this many a minute
 * (Seastar reports 5 a minute): a machine that preempts shards all the time
 * gets counts, not a flood of backtraces. Every stall is counted anyway.
 */
#define STALL_REPORTS_PER_MIN 5u

typedef struct stall_shard {
    _Atomic uint64_t count;
    _Atomic uint64_t max_ns;
    uint64_t reported;          /* the slot's running word of the stall being followed; 0 none */
    uint64_t next_ns;           /* report again once it has run this long */
    uint64_t seen_ns;           /* the longest it was seen running */
    uint64_t iteration;
    unsigned nth;
    bool quiet;                 /* the rate limit silenced this stall: counted, not reported */
    double tokens;              /* stalls that may still be reported (refilled over time) */
    uint64_t refill_ns;         /* mesh clock of the last refill */
    uint64_t suppressed;        /* stalls silenced since the last one reported */
} stall_shard;

struct mrt_stall_watch {
    mrt_runtime *rt;
    unsigned n;
    uint64_t threshold_ns;
    mrt_runtime_stall_fn fn;
    void *ctx;
    stall_shard *sh;
    bool thread;                /* the watcher thread runs */
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* CLOCK_MONOTONIC */
    bool stop;
};

static const char *const phase_names[] = { "poll loop", "control", "data", "tick", "flush" };

const char *mrt_runtime_stall_phase_name(mrt_runtime_stall_phase p)
{
    return (unsigned)p < sizeof phase_names / sizeof phase_names[0] ? phase_names[p] : "?";
}

static size_t append(char *buf, size_t len, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t append(char *buf, size_t len, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf && at < len ? buf + at : NULL, buf && at < len ? len - at : 0, fmt, ap);
    va_end(ap);
    return at + (w > 0 ? (size_t)w : 0);
}

static const char *state_text(char st)
{
    switch (st) {
    case 'R': return "on a CPU or waiting for one";
    case 'S': return "sleeping in a blocking call";
    case 'D': return "uninterruptible wait (I/O, page fault)";
    default: return "unknown";
    }
}

size_t mrt_runtime_stall_format(const mrt_runtime_stall_report *r, char *buf, size_t len)
{
    if (buf && len)
        buf[0] = '\0';
    if (r == NULL)
        return 0;
    double ms = (double)r->stalled_ns / 1e6, thr = (double)r->threshold_ns / 1e6;
    size_t at = 0;
    if (r->ended)
        return append(buf, len, at,
                      "meshrt: stall on shard %u ended: iteration %llu ran %.1f ms "
                      "(threshold %.1f ms, %u report%s)\n",
                      r->shard, (unsigned long long)r->iteration, ms, thr, r->nth,
                      r->nth == 1 ? "" : "s");
    at = append(buf, len, at,
                "meshrt: stall on shard %u: iteration %llu running for %.1f ms (threshold %.1f ms,"
                " report %u)\n  in: %s",
                r->shard, (unsigned long long)r->iteration, ms, thr, r->nth,
                mrt_runtime_stall_phase_name(r->phase));
    if (r->msg_type >= 0)
        at = append(buf, len, at, " handler, message type %d", r->msg_type);
    if (r->daemon_id)
        at = append(buf, len, at, ", daemon %#llx in process", (unsigned long long)r->daemon_id);
    at = append(buf, len, at, "; thread %c (%s)\n", r->thread_state, state_text(r->thread_state));
    if (r->suppressed)
        at = append(buf, len, at, "  (%llu stall%s before this one counted, not reported: rate limit)\n",
                    (unsigned long long)r->suppressed, r->suppressed == 1 ? "" : "s");
    if (r->frames == 0)
        return append(buf, len, at, "  no backtrace: %s\n", r->note ? r->note : "none taken");
    at = append(buf, len, at, "  backtrace (taken on the shard, innermost first):\n");
    for (unsigned k = 0; k < r->frames; k++) {
        if (r->symbols)
            at = append(buf, len, at, "    #%-2u %s\n", k, r->symbols[k]);
        else
            at = append(buf, len, at, "    #%-2u [%p]\n", k, r->addrs[k]);
    }
    return at;
}

static void default_handler(const mrt_runtime_stall_report *r, void *ctx)
{
    (void)ctx;
    char buf[8192];
    size_t n = mrt_runtime_stall_format(r, buf, sizeof buf);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    /* One write: the report stays whole among other threads' output. */
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
}

/* The thread's state letter from /proc/self/task/<tid>/stat ('?' when unreadable). */
static char thread_state(pid_t ktid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)ktid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return '?';
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    return p && p[1] == ' ' && p[2] ? p[2] : '?';
}

static void report_running(mrt_stall_watch *w, unsigned i, mrt_stall_slot *z, stall_shard *t,
                           uint64_t d)
{
    mrt_runtime_stall_report r = {
        .shard = i, .nth = t->nth, .stalled_ns = d, .threshold_ns = w->threshold_ns,
        .iteration = t->iteration, .msg_type = -1, .thread_state = '?',
        .suppressed = t->nth == 1 ? t->suppressed : 0,
    };
    if (t->nth == 1)
        t->suppressed = 0;
    r.phase = (mrt_runtime_stall_phase)atomic_load_explicit(&z->phase, memory_order_relaxed);
    uint32_t ty = atomic_load_explicit(&z->msg_type, memory_order_relaxed);
    if (ty != MRT_STALL_NO_TYPE && (r.phase == MRT_RT_STALL_DATA || r.phase == MRT_RT_STALL_CONTROL)) {
        r.control = (ty & MRT_STALL_CONTROL) != 0;
        r.msg_type = (int)(ty & 0xffffu);
    }
    r.daemon_id = atomic_load_explicit(&z->daemon_id, memory_order_relaxed);
    /* The state before the signal: taking it puts the thread on a CPU. */
    if (atomic_load_explicit(&z->armed, memory_order_acquire))
        r.thread_state = thread_state(z->ktid);
    void *frames[MRT_STALL_FRAMES];
    bool timed_out = false;
    int depth = mrt_stall_backtrace(z, frames, MRT_STALL_FRAMES, STALL_BT_WAIT_MS, &timed_out);
    char **sym = NULL;
    if (depth > 0) {
        r.frames = (unsigned)depth;
        r.addrs = frames;
        sym = backtrace_symbols(frames, depth);
        r.symbols = sym;
    } else {
        r.note = timed_out ? "the shard did not answer the signal within 100 ms"
                           : "the shard's thread takes no stall signal";
    }
    w->fn(&r, w->ctx);
    free(sym);
}

/* The followed stall has ended: its length, the counters, the closing report. */
static void finish(mrt_stall_watch *w, unsigned i, mrt_stall_slot *z, stall_shard *t)
{
    uint64_t len = t->seen_ns;
    if (atomic_load_explicit(&z->long_start, memory_order_acquire) == t->reported) {
        uint64_t exact = atomic_load_explicit(&z->long_ns, memory_order_relaxed);
        len = exact > len ? exact : len;
    }
    if (len > atomic_load_explicit(&t->max_ns, memory_order_relaxed))
        atomic_store_explicit(&t->max_ns, len, memory_order_relaxed);
    mrt_runtime_stall_report r = {
        .shard = i, .ended = true, .nth = t->nth, .stalled_ns = len,
        .threshold_ns = w->threshold_ns, .iteration = t->iteration, .msg_type = -1,
        .thread_state = '?',
    };
    if (!t->quiet)
        w->fn(&r, w->ctx);
    t->reported = 0;
}

/* One look at shard i. */
static void check_shard(mrt_stall_watch *w, unsigned i)
{
    mrt_mesh *mesh = w->rt->mesh;
    mrt_stall_slot *z = mrt_shard_stall_slot(mrt_mesh_shard(mesh, i));
    stall_shard *t = &w->sh[i];
    uint64_t run = atomic_load_explicit(&z->running, memory_order_acquire);
    /*
     * Between iterations the exact length is not there yet (the next
     * iteration's start writes it): wait for that start, which follows at
     * once after a busy iteration.
     */
    if (t->reported != 0 && run == 0 && atomic_load_explicit(&z->armed, memory_order_acquire) &&
        atomic_load_explicit(&z->long_start, memory_order_acquire) != t->reported)
        return;
    if (t->reported != 0 && run != t->reported)
        finish(w, i, z, t);
    if (run == 0)
        return;
    uint64_t start = run & ~1ull, now = mrt_mesh_clock(mesh);
    uint64_t d = now > start ? now - start : 0;
    if (d < w->threshold_ns)
        return;
    if (run != t->reported) {
        /* A new stall: counted once, however many reports follow. */
        mrt_shard_stats st;
        mrt_shard_stats_read(mesh, i, &st);
        t->reported = run;
        t->iteration = st.iterations;
        t->nth = 0;
        t->next_ns = w->threshold_ns;
        t->seen_ns = 0;
        atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
        /* The rate limit: decided once per stall, so its reports come whole or not at all. */
        t->tokens += (double)(now - t->refill_ns) * STALL_REPORTS_PER_MIN / 60e9;
        if (t->tokens > STALL_REPORTS_PER_MIN)
            t->tokens = STALL_REPORTS_PER_MIN;
        t->refill_ns = now;
        t->quiet = t->tokens < 1;
        if (t->quiet)
            t->suppressed++;
        else
            t->tokens -= 1;
    }
    if (d > t->seen_ns)
        t->seen_ns = d;
    if (d > atomic_load_explicit(&t->max_ns, memory_order_relaxed))
        atomic_store_explicit(&t->max_ns, d, memory_order_relaxed);
    if (d >= t->next_ns) {
        while (t->next_ns <= d)
            t->next_ns *= 2;
        t->nth++;
        if (!t->quiet)
            report_running(w, i, z, t, d);
    }
}

static void *watch_main(void *arg)
{
    mrt_stall_watch *w = arg;
    (void)pthread_setname_np(pthread_self(), "mrt-stall");
    uint64_t period = w->threshold_ns / 4;
    if (period < 100000)
        period = 100000;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        pthread_mutex_unlock(&w->mu);
        for (unsigned i = 0; i < w->n; i++)
            check_shard(w, i);
        pthread_mutex_lock(&w->mu);
        uint64_t ns = (uint64_t)next.tv_nsec + period;
        next.tv_sec += (time_t)(ns / 1000000000u);
        next.tv_nsec = (long)(ns % 1000000000u);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
            next = now; /* behind (a slow handler, a descheduled watcher): no burst of catch-up */
        while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &next) == 0)
            ;
    }
    pthread_mutex_unlock(&w->mu);
    /* The shards have drained: close what is still followed. */
    for (unsigned i = 0; i < w->n; i++)
        if (w->sh[i].reported != 0)
            finish(w, i, mrt_shard_stall_slot(mrt_mesh_shard(w->rt->mesh, i)), &w->sh[i]);
    return NULL;
}

int mrt_stall_watch_create_(mrt_runtime *rt)
{
    unsigned n = mrt_mesh_size(rt->mesh);
    mrt_stall_watch *w = mrt_calloc(NULL, sizeof(*w));
    if (w == NULL)
        return MRT_ENOMEM;
    w->sh = mrt_calloc(NULL, sizeof(*w->sh) * n);
    if (w->sh == NULL) {
        mrt_free(NULL, w, sizeof(*w));
        return MRT_ENOMEM;
    }
    w->rt = rt;
    w->n = n;
    w->threshold_ns = (uint64_t)rt->cfg.stall_ms * 1000000u;
    w->fn = default_handler;
    for (unsigned i = 0; i < n; i++)
        w->sh[i].tokens = STALL_REPORTS_PER_MIN;
    /* Before any shard thread exists: the shards read it without synchronisation. */
    for (unsigned i = 0; i < n; i++)
        mrt_shard_stall_slot(mrt_mesh_shard(rt->mesh, i))->threshold_ns = w->threshold_ns;
    rt->stall = w;
    return MRT_OK;
}

int mrt_stall_watch_start_(mrt_runtime *rt)
{
    mrt_stall_watch *w = rt->stall;
    if (w == NULL || w->threshold_ns == 0 || w->thread)
        return MRT_OK;
    if (mrt_stall_signal_init() != MRT_OK)
        return MRT_ESTATE;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->mu, NULL);
    w->stop = false;
    if (pthread_create(&w->tid, NULL, watch_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        return MRT_RT_ETHREAD;
    }
    w->thread = true;
    return MRT_OK;
}

void mrt_stall_watch_stop_(mrt_runtime *rt)
{
    mrt_stall_watch *w = rt->stall;
    if (w == NULL || !w->thread)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->tid, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    w->thread = false;
}

void mrt_stall_watch_destroy_(mrt_runtime *rt)
{
    mrt_stall_watch *w = rt->stall;
    if (w == NULL)
        return;
    mrt_stall_watch_stop_(rt);
    mrt_free(NULL, w->sh, sizeof(*w->sh) * w->n);
    mrt_free(NULL, w, sizeof(*w));
    rt->stall = NULL;
}

int mrt_runtime_set_stall_handler(mrt_runtime *rt, mrt_runtime_stall_fn fn, void *ctx)
{
    if (rt == NULL || rt->stall == NULL)
        return MRT_EINVAL;
    if (rt->started)
        return MRT_ESTATE;
    rt->stall->fn = fn ? fn : default_handler;
    rt->stall->ctx = fn ? ctx : NULL;
    return MRT_OK;
}

uint64_t mrt_runtime_stall_count(const mrt_runtime *rt, unsigned i, uint64_t *max_ns)
{
    const mrt_stall_watch *w = rt ? rt->stall : NULL;
    if (max_ns)
        *max_ns = 0;
    if (w == NULL || i >= w->n)
        return 0;
    if (max_ns)
        *max_ns = atomic_load_explicit(&w->sh[i].max_ns, memory_order_relaxed);
    return atomic_load_explicit(&w->sh[i].count, memory_order_relaxed);
}
