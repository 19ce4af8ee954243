/*
 * The stall detector: a daemon whose process sleeps 50 ms (the sleep is
 * the subject here, not a synchronisation) is reported while it sleeps,
 * with its shard, how long so far, the daemon and message type, and a
 * backtrace taken on the shard that names the sleeping function; it is
 * counted once and exported in the shard stats. With stall_ms 0 nothing is
 * reported; a normal pipeline run under a generous threshold reports
 * nothing. This binary is linked with exported symbols (ENABLE_EXPORTS) so
 * that backtrace_symbols can name stall_test_slow_process.
 */
#include "test_compute_common.h"

#include <pthread.h>
#include <time.h>

/* ---- what the handler saw (the watcher thread writes, the test reads) ---- */

#define MAX_SEEN 64
typedef struct seen_report {
    mrt_runtime_stall_report r; /* pointers cleared: they live for the call only */
    bool named_slow;            /* a frame names stall_test_slow_process */
    bool any_name;              /* some frame has a function name at all */
    char text[4096];            /* mrt_runtime_stall_format of it */
} seen_report;

static struct {
    pthread_mutex_t mu;
    unsigned n;
    seen_report rep[MAX_SEEN];
} seen = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* Set once the detector has reported the sleeper's stall: its sleep may end. */
static _Atomic bool sleeper_seen;
static _Atomic unsigned sleeper_done;
static _Atomic uint64_t sleeper_id;
static mrt_runtime *_Atomic sleeper_rt; /* for mode WAIT_COUNTED */

static void on_stall(const mrt_runtime_stall_report *r, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&seen.mu);
    if (seen.n < MAX_SEEN) {
        seen_report *s = &seen.rep[seen.n++];
        s->r = *r;
        s->r.addrs = NULL;
        s->r.symbols = NULL;
        s->r.note = NULL;
        s->named_slow = s->any_name = false;
        for (unsigned k = 0; r->symbols && k < r->frames; k++) {
            s->named_slow |= strstr(r->symbols[k], "stall_test_slow_process") != NULL;
            s->any_name |= strstr(r->symbols[k], "(+") == NULL && strchr(r->symbols[k], '(');
        }
        mrt_runtime_stall_format(r, s->text, sizeof s->text);
    }
    pthread_mutex_unlock(&seen.mu);
    /*
     * A report without frames (a starved machine can keep the shard from
     * taking the signal within the watcher's wait) does not end the sleep:
     * the next report, at twice the length, takes another backtrace.
     */
    if (!r->ended && r->daemon_id != 0 && r->daemon_id == atomic_load(&sleeper_id) &&
        (r->frames > 0 || r->nth >= 8))
        atomic_store(&sleeper_seen, true);
}

static void seen_reset(void)
{
    pthread_mutex_lock(&seen.mu);
    seen.n = 0;
    pthread_mutex_unlock(&seen.mu);
    atomic_store(&sleeper_seen, false);
    atomic_store(&sleeper_done, 0);
    atomic_store(&sleeper_id, 0);
}

/* ---- the slow daemon ---- */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

enum { WAIT_NOTHING = 0, WAIT_REPORTED = 1, WAIT_COUNTED = 2 };

/*
 * Sleeps 50 ms in its process. When the detector watches, it keeps
 * sleeping (50 ms at a time) until the stall was reported (or, for the
 * rate limit's test, counted), so that a watcher descheduled on a loaded
 * machine still sees it: the stall is what is tested, its exact length is
 * not. Exported and never inlined: the backtrace must name it.
 */
int stall_test_slow_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink);
__attribute__((noinline)) int stall_test_slow_process(void *state, const mrt_event *ev,
                                                      mrt_daemon_sink *sink)
{
    (void)ev;
    (void)sink;
    uint8_t mode = *(uint8_t *)state;
    mrt_runtime *rt = atomic_load(&sleeper_rt);
    uint64_t before = mode == WAIT_COUNTED ? mrt_runtime_stall_count(rt, 1, NULL) : 0;
    sleep_ms(50);
    for (unsigned k = 0; k < 1200; k++) { /* at most a minute, the hang guard's length */
        if (mode == WAIT_NOTHING || (mode == WAIT_REPORTED && atomic_load(&sleeper_seen)) ||
            (mode == WAIT_COUNTED && mrt_runtime_stall_count(rt, 1, NULL) > before))
            break;
        sleep_ms(50);
    }
    atomic_fetch_add(&sleeper_done, 1);
    __asm__ volatile("" ::: "memory"); /* keep this frame: no tail call */
    return MRT_OK;
}

static int sl_create(void *ctx, const mrt_allocator *a, const void *arg, size_t len, void **state)
{
    (void)ctx;
    uint8_t *s = mrt_calloc(a, sizeof(*s));
    if (s == NULL)
        return MRT_ENOMEM;
    *s = len == 1 ? ((const uint8_t *)arg)[0] : WAIT_NOTHING;
    *state = s;
    return MRT_OK;
}

static void sl_destroy(void *ctx, const mrt_allocator *a, void *state)
{
    (void)ctx;
    mrt_free(a, state, sizeof(uint8_t));
}

static const mrt_daemon_vtable sl_vt = { .name = "sleeper", .process = stall_test_slow_process };

static mrt_runtime *stall_runtime(unsigned stall_ms)
{
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    ck_assert_uint_eq(cfg.stall_ms, 10); /* the documented default */
    cfg.workload = false;
    cfg.allow_unbound = true;
    cfg.shards = 2;
    cfg.stall_ms = stall_ms;
    char err[256] = "";
    mrt_runtime *rt = NULL;
    ck_assert_msg(mrt_runtime_create(&cfg, &rt, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_int_eq(mrt_runtime_set_stall_handler(rt, on_stall, NULL), MRT_OK);
    return rt;
}

/* Spawn the sleeper on shard 1 and give it `events` events, one after the other. */
static mrt_compute_ref run_sleeper(mrt_runtime *rt, uint8_t mode, unsigned events)
{
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type t = { .name = "sleeper", .vt = &sl_vt, .create = sl_create,
                           .destroy = sl_destroy, .max_outputs = 1, .payload_bytes = 64,
                           .max_origins = 4 };
    uint16_t ty;
    ck_assert_int_eq(mrt_compute_register_type(c, &t, &ty), MRT_OK);
    tc_start(rt);
    mrt_compute_ref d;
    ck_assert_int_eq(mrt_compute_spawn(c, ty, 1, NULL, &mode, 1, &d), MRT_OK);
    atomic_store(&sleeper_id, d.id);
    atomic_store(&sleeper_rt, rt);
    for (unsigned k = 1; k <= events; k++) {
        uint64_t x = k;
        tc_inject(c, d, &x, sizeof x);
        MRT_WAIT_UNTIL(atomic_load(&sleeper_done) == k, "the sleeper's process to return");
    }
    return d;
}

START_TEST(stall_reported_while_running)
{
    seen_reset();
    mrt_runtime *rt = stall_runtime(10);
    mrt_compute_ref d = run_sleeper(rt, WAIT_REPORTED, 1);
    /* The closing report comes once the watcher saw the iteration end. */
    bool ended = false;
    mrt_wait w = mrt_wait_begin();
    while (!ended) {
        MRT_WAIT_CHECK(&w, "the report that the sleeper's stall ended");
        pthread_mutex_lock(&seen.mu);
        for (unsigned k = 0; k < seen.n; k++)
            ended |= seen.rep[k].r.ended && seen.rep[k].r.shard == 1 &&
                     seen.rep[k].r.stalled_ns >= 50000000u;
        pthread_mutex_unlock(&seen.mu);
        if (!ended)
            sched_yield();
    }
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);

    /*
     * Every report of shard 1's stalls; the first one of the sleeper's is
     * shown. The watcher stopped with the runtime, so the reports are read
     * without the lock: a failed check must not leave seen.mu held (with
     * CK_FORK=no the next test would block on it).
     */
    const seen_report *first = NULL, *traced = NULL;
    unsigned stalls1 = 0, sleeper_stalls = 0, first_nth_of_stall = 0;
    uint64_t sleeper_iter = UINT64_MAX;
    const seen_report *end = NULL;
    for (unsigned k = 0; k < seen.n; k++) {
        const seen_report *s = &seen.rep[k];
        if (s->r.shard == 1 && s->r.ended)
            stalls1++; /* each stall ends once (the stop closes any still open) */
        if (s->r.shard == 1 && s->r.ended && s->r.stalled_ns >= 50000000u && end == NULL)
            end = s;
        if (s->r.shard != 1 || s->r.ended || s->r.daemon_id != d.id)
            continue;
        /* A stalled iteration of the sleeper's, counted once however many reports. */
        if (s->r.iteration != sleeper_iter)
            sleeper_stalls++;
        sleeper_iter = s->r.iteration;
        if (first == NULL)
            first = s;
        if (traced == NULL && s->r.frames > 0)
            traced = s;
    }
    /*
     * On a loaded machine the sleeper's iteration may be reported before its
     * process began (the shard preempted for 10 ms): the first report naming
     * the sleeper is then that stall's second. The stall's first report is
     * the earliest of its iteration.
     */
    for (unsigned k = 0; first && k < seen.n && first_nth_of_stall == 0; k++)
        if (seen.rep[k].r.shard == 1 && !seen.rep[k].r.ended &&
            seen.rep[k].r.iteration == first->r.iteration)
            first_nth_of_stall = seen.rep[k].r.nth;
    ck_assert_msg(first != NULL, "no report named the sleeper (%u reports)", seen.n);
    printf("%s%s%s", first->text, traced && traced != first ? traced->text : "",
           end ? end->text : "");
    ck_assert_uint_eq(sleeper_stalls, 1);
    ck_assert_uint_eq(first_nth_of_stall, 1);
    ck_assert_uint_ge(first->r.stalled_ns, 10000000u);
    ck_assert_uint_eq(first->r.threshold_ns, 10000000u);
    ck_assert_int_eq(first->r.phase, MRT_RT_STALL_DATA);
    ck_assert_int_ge(first->r.msg_type, 0);
    ck_assert(!first->r.control);
    ck_assert_msg(strstr(first->text, "meshrt: stall on shard 1: iteration") == first->text,
                  "%s", first->text);
    bool named = traced && traced->named_slow, any_name = traced && traced->any_name;
    unsigned frames = traced ? traced->r.frames : 0;

    /*
     * Counted once per stalled iteration, however many reports: on a loaded
     * machine a shard thread preempted mid-iteration for 10 ms is a stall
     * too, so the count is checked against the stalls reported.
     */
    uint64_t max_ns = 0;
    uint64_t count = mrt_runtime_stall_count(rt, 1, &max_ns);
    ck_assert_uint_ge(count, stalls1);
    ck_assert_uint_ge(count, 1);
    if (count <= 5) /* within the rate limit's burst: every stall reported */
        ck_assert_uint_eq(count, stalls1);
    if (stalls1 != 1)
        printf("note: shard 1 had %u stalls, %u of them the sleeper's\n", stalls1, sleeper_stalls);
    ck_assert_uint_ge(max_ns, 50000000u); /* the sleep's whole length, measured by the shard */
    mrt_runtime_shard_stats st;
    ck_assert_int_eq(mrt_runtime_stats_read(rt, 1, &st), MRT_OK);
    ck_assert_uint_eq(st.stalls, count);
    ck_assert_uint_eq(st.stall_max_ns, max_ns);
    mrt_runtime_destroy(rt);

    if (frames == 0)
        MRT_SKIP("backtrace", "the shard took no backtrace in 8 tries on this platform");
    if (!named && !any_name)
        MRT_SKIP("backtrace", "backtrace_symbols gives no function names (no exported symbols)");
    ck_assert_msg(named, "the backtrace does not name stall_test_slow_process");
}
END_TEST

/* Seven stalls in a row: five reported (the burst), the other two counted only. */
START_TEST(rate_limited_reports_still_counted)
{
    seen_reset();
    mrt_runtime *rt = stall_runtime(10);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    (void)run_sleeper(rt, WAIT_COUNTED, 7);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    uint64_t count = mrt_runtime_stall_count(rt, 1, NULL);
    ck_assert_uint_ge(count, 7);
    unsigned stalls = 0, sleeper = 0;
    pthread_mutex_lock(&seen.mu);
    for (unsigned k = 0; k < seen.n; k++) {
        const seen_report *s = &seen.rep[k];
        if (s->r.shard != 1 || s->r.nth != 1 || s->r.ended)
            continue;
        stalls++;
        sleeper += s->r.daemon_id == atomic_load(&sleeper_id);
    }
    pthread_mutex_unlock(&seen.mu);
    /*
     * 5 at once, then 5 a minute: a run slowed down (sanitizers, a loaded
     * machine) earned one more every 12 s. Not a timing threshold: the
     * allowance is computed from the time the run took.
     */
    unsigned allowance = 5 + (unsigned)(elapsed * 5 / 60) + 1;
    ck_assert_uint_ge(stalls, 5);
    ck_assert_uint_le(stalls, allowance);
    if (allowance < count)
        ck_assert_uint_lt(stalls, count);
    ck_assert_uint_le(sleeper, stalls);
    mrt_runtime_destroy(rt);
}
END_TEST

START_TEST(stall_ms_zero_reports_nothing)
{
    seen_reset();
    mrt_runtime *rt = stall_runtime(0);
    (void)run_sleeper(rt, WAIT_NOTHING, 1);
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    pthread_mutex_lock(&seen.mu);
    unsigned n_seen = seen.n;
    pthread_mutex_unlock(&seen.mu);
    ck_assert_uint_eq(n_seen, 0);
    for (unsigned i = 0; i < 2; i++) {
        uint64_t max_ns = 1;
        ck_assert_uint_eq(mrt_runtime_stall_count(rt, i, &max_ns), 0);
        ck_assert_uint_eq(max_ns, 0);
    }
    mrt_runtime_destroy(rt);
}
END_TEST

START_TEST(no_report_in_a_fast_run)
{
    seen_reset();
    /* A threshold far beyond anything a fast pipeline does. */
    mrt_runtime *rt = stall_runtime(1000);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type t = tc_type("relay", 4);
    uint16_t relay;
    ck_assert_int_eq(mrt_compute_register_type(c, &t, &relay), MRT_OK);
    tc_start(rt);
    mrt_compute_ref a, b;
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 0, NULL, NULL, 0, &a), MRT_OK);
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 1, NULL, NULL, 0, &b), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, a, MRT_COMPUTE_TO_DAEMON, b), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, b, MRT_COMPUTE_TO_EGRESS, b), MRT_OK);
    enum { N = 20000 };
    tc_egress eg;
    memset(&eg, 0, sizeof eg);
    for (uint64_t i = 0; i < N; i++)
        tc_inject_eg(c, a, &i, sizeof i, &eg);
    tc_egress_until(c, &eg, N);
    ck_assert_uint_eq(eg.bad_chain, 0);
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    /*
     * A machine that leaves a shard thread runnable but off every CPU for a
     * second (load 20+ on 2 CPUs was seen) stalls it for real: such a
     * report is allowed, with the thread runnable ('R') and, when it took
     * the signal, inside a poll iteration. Anything else is a false report:
     * a sleeping shard, or one outside its iteration.
     */
    unsigned starved = 0;
    /* The watcher stopped with the runtime: read without the lock (see above). */
    for (unsigned k = 0; k < seen.n; k++) {
        const seen_report *s = &seen.rep[k];
        if (s->r.ended)
            continue;
        ck_assert_msg(s->r.thread_state == 'R', "a false report: %s", s->text);
        ck_assert_msg(s->r.frames == 0 || strstr(s->text, "mrt_shard_poll_once") != NULL ||
                          !s->any_name,
                      "a report outside a poll iteration: %s", s->text);
        starved += s->r.nth == 1;
    }
    uint64_t counted = 0;
    for (unsigned i = 0; i < 2; i++) {
        mrt_runtime_shard_stats st;
        ck_assert_int_eq(mrt_runtime_stats_read(rt, i, &st), MRT_OK);
        ck_assert_uint_eq(st.stalls, mrt_runtime_stall_count(rt, i, NULL));
        counted += st.stalls;
    }
    ck_assert_uint_eq(counted, starved);
    if (starved)
        printf("note: %u stalls of a starved shard thread (runnable, off CPU) in the fast run\n",
               starved);
    mrt_runtime_destroy(rt);
}
END_TEST

START_TEST(handler_before_start_and_format)
{
    mrt_runtime *rt = stall_runtime(10);
    ck_assert_int_eq(mrt_runtime_set_stall_handler(NULL, on_stall, NULL), MRT_EINVAL);
    tc_start(rt);
    ck_assert_int_eq(mrt_runtime_set_stall_handler(rt, NULL, NULL), MRT_ESTATE);
    ck_assert_uint_eq(mrt_runtime_stall_count(rt, 2, NULL), 0); /* out of range */
    mrt_runtime_destroy(rt);

    /* The text: every field, truncation says the length it needs. */
    void *addrs[2] = { (void *)0x1000, (void *)0x2000 };
    char *syms[2] = { "bin(slow+0x10) [0x1000]", "bin(caller+0x20) [0x2000]" };
    mrt_runtime_stall_report r = {
        .shard = 3, .nth = 2, .stalled_ns = 25300000, .threshold_ns = 10000000, .iteration = 77,
        .phase = MRT_RT_STALL_DATA, .msg_type = 32, .daemon_id = 0xabc, .thread_state = 'S',
        .frames = 2, .addrs = addrs, .symbols = syms,
    };
    char buf[1024];
    size_t need = mrt_runtime_stall_format(&r, buf, sizeof buf);
    ck_assert_uint_eq(need, strlen(buf));
    ck_assert_msg(strstr(buf, "stall on shard 3: iteration 77 running for 25.3 ms (threshold "
                              "10.0 ms, report 2)") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "data handler, message type 32, daemon 0xabc in process") != NULL,
                  "%s", buf);
    ck_assert_msg(strstr(buf, "thread S (sleeping in a blocking call)") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "rate limit") == NULL, "%s", buf);
    r.suppressed = 4;
    mrt_runtime_stall_format(&r, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "(4 stalls before this one counted, not reported: rate limit)"),
                  "%s", buf);
    r.suppressed = 0;
    need = mrt_runtime_stall_format(&r, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "#0  bin(slow+0x10)") && strstr(buf, "#1  bin(caller+0x20)"), "%s",
                  buf);
    char small[16];
    ck_assert_uint_eq(mrt_runtime_stall_format(&r, small, sizeof small), need);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    r.frames = 0;
    r.note = "why not";
    mrt_runtime_stall_format(&r, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "no backtrace: why not") != NULL, "%s", buf);
    r.ended = true;
    mrt_runtime_stall_format(&r, buf, sizeof buf);
    ck_assert_str_eq(buf, "meshrt: stall on shard 3 ended: iteration 77 ran 25.3 ms (threshold "
                          "10.0 ms, 2 reports)\n");
    ck_assert_str_eq(mrt_runtime_stall_phase_name(MRT_RT_STALL_TICK), "tick");
    ck_assert_str_eq(mrt_runtime_stall_phase_name((mrt_runtime_stall_phase)99), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stall");
    TCase *tc = tcase_create("stall");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stall_reported_while_running);
    tcase_add_test(tc, rate_limited_reports_still_counted);
    tcase_add_test(tc, stall_ms_zero_reports_nothing);
    tcase_add_test(tc, no_report_in_a_fast_run);
    tcase_add_test(tc, handler_before_start_and_format);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
