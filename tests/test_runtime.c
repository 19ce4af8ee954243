/* Runtime: configuration errors, and whole runs with pinned shard threads. */
#include "meshrt/mrt_daemon.h"
#include "meshrt/mrt_perf.h"
#include "meshrt/mrt_runtime.h"
#include "tests/check_main.h"

#include <check.h>
#include <dirent.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

static unsigned thread_count(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int parse(mrt_runtime_config *cfg, char *err, const char *a, const char *b, const char *c,
                 const char *d)
{
    char *argv[4] = { (char *)a, (char *)b, (char *)c, (char *)d };
    int argc = 0;
    while (argc < 4 && argv[argc])
        argc++;
    mrt_runtime_config_default(cfg);
    return mrt_runtime_parse_args(argc, argv, cfg, err, 256);
}

START_TEST(parse_flags)
{
    mrt_runtime_config cfg;
    char err[256];
    ck_assert_int_eq(parse(&cfg, err, "--burst", "16", "--ring-size", "512"), MRT_OK);
    ck_assert_uint_eq(cfg.burst, 16);
    ck_assert_uint_eq(cfg.ring_size, 512);
    ck_assert_int_eq(parse(&cfg, err, "--cpuset", "0-1", "--json", NULL), MRT_OK);
    ck_assert_str_eq(cfg.cpuset, "0-1");
    ck_assert(cfg.json);
    ck_assert_int_eq(parse(&cfg, err, "--duration", "0.5", NULL, NULL), MRT_OK);
    ck_assert(cfg.duration_s == 0.5);

    ck_assert_int_eq(parse(&cfg, err, "--bogus", NULL, NULL, NULL), MRT_RT_EFLAG);
    ck_assert_str_eq(err, "unknown flag '--bogus'");
    ck_assert_int_eq(parse(&cfg, err, "--burst", "abc", NULL, NULL), MRT_RT_EVALUE);
    ck_assert_int_eq(parse(&cfg, err, "--burst", "-3", NULL, NULL), MRT_RT_EVALUE);
    ck_assert_int_eq(parse(&cfg, err, "--ring-size", NULL, NULL, NULL), MRT_RT_EVALUE);
    ck_assert_int_eq(parse(&cfg, err, "--numa-node", "x", NULL, NULL), MRT_RT_EVALUE);
    ck_assert_int_eq(parse(&cfg, err, "--duration", "-1", NULL, NULL), MRT_RT_EDURATION);
    ck_assert_int_eq(parse(&cfg, err, "--numa-node", "0", "--cpuset", "0"), MRT_RT_ECONFLICT);
    ck_assert_int_eq(parse(&cfg, err, "--lb", "maglev", NULL, NULL), MRT_OK);
    ck_assert_int_eq(cfg.lb_strategy, MRT_LB_MAGLEV);
    ck_assert_int_eq(parse(&cfg, err, "--lb", "fastest", NULL, NULL), MRT_RT_EVALUE);
    ck_assert_ptr_nonnull(strstr(err, "one of rr, wrr,"));
    /* A flag given twice is refused, even with the same value. */
    ck_assert_int_eq(parse(&cfg, err, "--burst", "8", "--burst", "8"), MRT_RT_EREPEAT);
    ck_assert_str_eq(err, "--burst given more than once");
    ck_assert_int_eq(parse(&cfg, err, "--json", "--json", NULL, NULL), MRT_RT_EREPEAT);
    ck_assert_int_eq(parse(&cfg, err, "--stats-ms", "0", NULL, NULL), MRT_RT_EVALUE);
    /* `meshrt topo` takes the placement flags only. */
    char *topo_ok[] = { "--cpuset", "0" };
    mrt_runtime_config_default(&cfg);
    ck_assert_int_eq(mrt_runtime_parse_command_args(MRT_RT_CMD_TOPO, 2, topo_ok, &cfg, err, 256),
                     MRT_OK);
    char *topo_bad[] = { "--cpuset", "0", "--burst", "8" };
    mrt_runtime_config_default(&cfg);
    ck_assert_int_eq(mrt_runtime_parse_command_args(MRT_RT_CMD_TOPO, 4, topo_bad, &cfg, err, 256),
                     MRT_RT_ECMDFLAG);
    ck_assert_ptr_nonnull(strstr(err, "--burst applies to `meshrt run` only"));
    ck_assert_str_ne(mrt_strerror(MRT_RT_EREPEAT), "unknown status");
    ck_assert_str_ne(mrt_strerror(MRT_RT_ECMDFLAG), "unknown status");
    /* The --lb choices: every strategy name, in order, and the length snprintf-style. */
    char names[512];
    size_t need = mrt_runtime_lb_choices(names, sizeof names, " ");
    ck_assert_uint_eq(need, strlen(names));
    ck_assert_ptr_nonnull(strstr(names, mrt_lb_strategy_name(MRT_LB_MAGLEV)));
    char tiny[4];
    ck_assert_uint_eq(mrt_runtime_lb_choices(tiny, sizeof tiny, " "), need);
    ck_assert_uint_eq(strlen(tiny), 3);
}
END_TEST

static int check(mrt_runtime_config *cfg, char *err)
{
    mrt_topo *t = NULL;
    ck_assert_int_eq(mrt_topo_load(&t), MRT_OK);
    static mrt_topo_selection sel;
    int rc = mrt_runtime_check(cfg, t, &sel, err, 256);
    mrt_topo_destroy(t);
    return rc;
}

START_TEST(bad_config_is_refused_before_any_thread)
{
    mrt_runtime_config cfg;
    char err[256];
    unsigned before = thread_count();
    struct {
        const char *a, *b, *c, *d;
        int expect;
        const char *msg_part;
    } cases[] = {
        { "--ring-size", "1000", NULL, NULL, MRT_RT_ERINGPOW2, "power of two" },
        { "--ring-size", "32", "--burst", "32", MRT_RT_ERINGBURST, "larger than the burst" },
        { "--burst", "0", NULL, NULL, MRT_RT_EBURST, "burst size 0" },
        { "--burst", "300", "--ring-size", "1024", MRT_RT_EBURST, "burst size 300" },
        { "--cpuset", "0,0", NULL, NULL, MRT_TOPO_EDUP, "--cpuset '0,0'" },
        { "--cpuset", "0-1,1", NULL, NULL, MRT_TOPO_EDUP, "--cpuset" },
        { "--cpuset", "100000", NULL, NULL, MRT_TOPO_ERANGE, "--cpuset '100000'" },
        { "--cpuset", "3-1", NULL, NULL, MRT_TOPO_ESYNTAX, "--cpuset" },
        { "--numa-node", "77", NULL, NULL, MRT_TOPO_ENONODE, "--numa-node 77" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(parse(&cfg, err, cases[i].a, cases[i].b, cases[i].c, cases[i].d), MRT_OK);
        err[0] = '\0';
        ck_assert_int_eq(check(&cfg, err), cases[i].expect);
        ck_assert_msg(strstr(err, cases[i].msg_part) != NULL, "case %zu: '%s'", i, err);
        mrt_runtime *rt = (mrt_runtime *)0x1;
        ck_assert_int_eq(mrt_runtime_create(&cfg, &rt, err, sizeof err), cases[i].expect);
        ck_assert_ptr_eq(rt, (mrt_runtime *)0x1);
        ck_assert_uint_eq(thread_count(), before);
        ck_assert_str_ne(mrt_strerror(cases[i].expect), "unknown status");
    }
    ck_assert_str_eq(mrt_strerror(12345), "unknown status");
    /* One name function for every module's range. */
    const int others[] = { MRT_EINVAL, MRT_TOPO_EDUP, MRT_SHARD_EFULL, MRT_RT_EFLAG,
                           MRT_LB_EDUPLICATE, MRT_DAEMON_ESINKFULL, MRT_PERF_EUNAVAIL };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        ck_assert_str_ne(mrt_strerror(others[i]), "unknown status");
    ck_assert_str_eq(mrt_strerror(MRT_OK), "success");
}
END_TEST

/* A runtime of 2 shards (unpinned beyond the machine's CPUs) with the built-in workload set up. */
static mrt_runtime *create_rt(unsigned burst, unsigned ring, mrt_lb_strategy lb,
                              mrt_workload **wl)
{
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.allow_unbound = true; /* containers may refuse memory binding; placement is tested in topo */
    cfg.shards = 2;           /* at least 2 even on one CPU: the rest run unpinned */
    cfg.burst = burst;
    cfg.ring_size = ring;
    cfg.idle_sleep_max_us = 0;
    cfg.lb_strategy = lb;
    char err[256] = "";
    mrt_runtime *rt = NULL;
    ck_assert_msg(mrt_runtime_create(&cfg, &rt, err, sizeof err) == MRT_OK, "%s", err);
    if (wl)
        ck_assert_msg(mrt_workload_create(rt, wl, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_msg(mrt_runtime_start(rt, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_int_eq(mrt_runtime_start(rt, err, sizeof err), MRT_ESTATE);
    ck_assert_uint_eq(mrt_mesh_size(mrt_runtime_mesh(rt)), 2);
    ck_assert_ptr_nonnull(mrt_runtime_compute(rt)); /* the runtime always hosts compute */
    if (wl) {
        ck_assert_msg(mrt_workload_start(*wl, err, sizeof err) == MRT_OK, "%s", err);
        ck_assert_int_eq(mrt_workload_start(*wl, err, sizeof err), MRT_ESTATE);
    }
    return rt;
}

/* Poll (validating) until `target` outputs came out, by progress, not by time. */
static void poll_until(mrt_workload *wl, uint64_t target)
{
    mrt_wait wt = mrt_wait_begin();
    mrt_workload_stats t;
    for (;;) {
        (void)mrt_workload_poll(wl, 256);
        mrt_workload_stats_get(wl, -1, &t);
        ck_assert_msg(t.problems == 0, "the workload found inconsistencies");
        if (t.drained >= target)
            return;
        MRT_WAIT_CHECK(&wt, "%llu outputs of the workload (%llu so far)",
                       (unsigned long long)target, (unsigned long long)t.drained);
    }
}

/* Stop, then the verdict must hold: every count balanced, every chain validated. */
static void stop_and_judge(mrt_workload *wl, mrt_workload_stats *t)
{
    ck_assert_int_eq(mrt_workload_stop(wl), MRT_OK);
    ck_assert_int_eq(mrt_workload_stop(wl), MRT_OK); /* idempotent */
    char problems[2048];
    unsigned k = mrt_workload_verdict(wl, problems, sizeof problems);
    ck_assert_msg(k == 0, "verdict: %s", problems);
    mrt_workload_stats_get(wl, -1, t);
    int why[4];
    uint64_t count[4];
    ck_assert_uint_eq(mrt_workload_handbacks(wl, why, count, 4), 0);
}

/* Whether a thread of this process is named `name` (/proc/self/task/N/comm). */
static bool thread_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* the thread has gone */
        if (fgets(comm, sizeof comm, f) != NULL) {
            comm[strcspn(comm, "\n")] = '\0';
            found = strcmp(comm, name) == 0;
        }
        fclose(f);
    }
    closedir(d);
    return found;
}

START_TEST(workload_validated_and_drained)
{
    /*
     * Default rings: with small ones, ring-full routed sends count as
     * failures, open the workers' breakers and get events handed back
     * (MRT_LB_ECIRCUITOPEN), which the verdict rightly refuses.
     */
    mrt_workload *wl = NULL;
    mrt_runtime *rt = create_rt(32, 1024, MRT_LB_ROUND_ROBIN, &wl);
    mrt_mesh *mesh = mrt_runtime_mesh(rt);
    poll_until(wl, 50000);
    /* Every thread meshrt started is named for top -H and perf --sort comm. */
    ck_assert(thread_named("mrt-shard-0"));
    ck_assert(thread_named("mrt-shard-1"));
    ck_assert(thread_named("mrt-ingress"));
    mrt_workload_stats t;
    stop_and_judge(wl, &t);
    ck_assert(mrt_mesh_drained(mesh));
    /* Each stage delivered every event once; every output egressed reached this thread. */
    ck_assert_uint_ge(t.injected, 50000);
    for (unsigned s = 0; s < MRT_WL_STAGES; s++)
        ck_assert_uint_eq(t.delivered[s], t.injected);
    ck_assert_uint_eq(t.emitted, 3 * t.injected);
    ck_assert_uint_eq(t.routed_set, t.injected);
    ck_assert_uint_eq(t.routed_daemon, t.injected);
    ck_assert_uint_eq(t.egressed, t.injected);
    ck_assert_uint_eq(t.drained, t.injected);
    /* Every output's link, and the worker's and producer's links inside it. */
    ck_assert_uint_eq(t.links_validated, 3 * t.injected);
    ck_assert_uint_eq(t.chains, 2 * 2 + 2 * MRT_WORKLOAD_WORKERS_PER_SHARD);
    ck_assert_uint_eq(t.completions, t.routed_set);
    ck_assert_uint_eq(t.inflight, 0);
    ck_assert_uint_eq(t.buffers_out, 0);
    /* Per shard: the shards' counters add up to the totals. */
    uint64_t worker = 0, drained = 0;
    for (int i = 0; i < 2; i++) {
        mrt_workload_stats s;
        mrt_workload_stats_get(wl, i, &s);
        worker += s.delivered[MRT_WL_WORKER];
        drained += s.drained;
        ck_assert_uint_gt(s.delivered[MRT_WL_WORKER], 0); /* round robin reaches both shards */
    }
    ck_assert_uint_eq(worker, t.delivered[MRT_WL_WORKER]);
    ck_assert_uint_eq(drained, t.drained);
    uint64_t sent = 0, handled = 0;
    for (unsigned i = 0; i < mrt_mesh_size(mesh); i++) {
        mrt_shard_stats s;
        mrt_shard_stats_read(mesh, i, &s);
        sent += s.sent;
        handled += s.handled;
    }
    ck_assert_uint_eq(sent + t.injected, handled);
    mrt_workload_destroy(wl);
    mrt_runtime_destroy(rt);
}
END_TEST

START_TEST(workload_every_strategy_balances)
{
    /* Every --lb strategy: the run validates and every reservation comes back. */
    for (int lb = 0; lb < MRT_LB_STRATEGY_COUNT; lb++) {
        mrt_workload *wl = NULL;
        mrt_runtime *rt = create_rt(32, 1024, (mrt_lb_strategy)lb, &wl);
        poll_until(wl, 5000);
        mrt_workload_stats t;
        stop_and_judge(wl, &t);
        ck_assert_uint_eq(t.inflight, 0);
        ck_assert_uint_eq(t.completions, t.routed_set);
        mrt_workload_destroy(wl);
        mrt_runtime_destroy(rt);
    }
}
END_TEST

START_TEST(inject_while_running_then_refused_after_stop)
{
    mrt_runtime *rt = create_rt(32, 256, MRT_LB_ROUND_ROBIN, NULL);
    mrt_mesh *mesh = mrt_runtime_mesh(rt);
    struct { uint64_t accepted; } in = { 0 };
    /* Ingress messages of a type nobody handles are handed back, never dropped. */
    mrt_msg m = { .type = 7 };
    mrt_wait wt = mrt_wait_begin();
    while (in.accepted < 2000) {
        MRT_WAIT_CHECK(&wt, "the shards to take 2000 injected messages (%llu taken)",
                       (unsigned long long)in.accepted);
        int rc = mrt_mesh_inject(mesh, (unsigned)(in.accepted % mrt_mesh_size(mesh)), &m);
        if (rc == MRT_OK)
            in.accepted++;
        else
            ck_assert_int_eq(rc, MRT_SHARD_EFULL);
    }
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    /* Refused after the stop: stopped, or (services torn down with the drain) not ready. */
    int after = mrt_mesh_inject(mesh, 0, &m);
    ck_assert_msg(after == MRT_SHARD_ESTOPPED || after == MRT_SHARD_ENOTREADY, "%d", after);
    uint64_t injected = 0, handed_back = 0;
    for (unsigned i = 0; i < mrt_mesh_size(mesh); i++) {
        mrt_shard_stats s;
        mrt_shard_stats_read(mesh, i, &s);
        injected += s.injected;
        handed_back += s.handed_back[MRT_HB_NO_HANDLER];
    }
    ck_assert_uint_eq(injected, in.accepted);
    ck_assert_uint_eq(handed_back, in.accepted);
    mrt_runtime_destroy(rt);
}
END_TEST

START_TEST(snapshots_published_while_shards_route)
{
    /* The control plane publishes continuously while every producer routes each output. */
    mrt_workload *wl = NULL;
    mrt_runtime *rt = create_rt(32, 1024, MRT_LB_ROUND_ROBIN, &wl);
    unsigned n = mrt_mesh_size(mrt_runtime_mesh(rt));
    mrt_balancer_counters bc;
    mrt_workload_stats t;
    /* Publish, then route 25 more outputs; 200 times. */
    mrt_wait wt = mrt_wait_begin();
    for (unsigned k = 0; k < 200; k++) {
        ck_assert_int_eq(mrt_runtime_control_tick(rt, true), 1);
        mrt_workload_stats_get(wl, -1, &t);
        uint64_t target = t.drained + 25;
        while (t.drained < target) {
            (void)mrt_workload_poll(wl, 256);
            mrt_workload_stats_get(wl, -1, &t);
            ck_assert_msg(t.problems == 0, "the workload found inconsistencies");
            MRT_WAIT_CHECK(&wt, "25 outputs after publish %u (%llu outputs)", k,
                           (unsigned long long)t.drained);
        }
    }
    mrt_runtime_balancer_stats(rt, &bc);
    ck_assert_uint_ge(t.drained, 5000);
    stop_and_judge(wl, &t);
    ck_assert_uint_eq(t.inflight, 0);
    ck_assert_int_eq(mrt_runtime_control_tick(rt, false), 0); /* nothing changed: no publish */
    mrt_runtime_balancer_stats(rt, &bc);
    ck_assert_uint_ge(bc.published, 200); /* the first one, published at create, included */
    ck_assert_uint_eq(bc.retired, bc.published - 1);
    /* Everything retired before the shards' last switches has been freed. */
    ck_assert_uint_gt(bc.freed, 0);
    ck_assert_uint_le(bc.freed, bc.retired);
    ck_assert_uint_ge(bc.freed + n + 1, bc.retired);
    mrt_workload_destroy(wl);
    mrt_runtime_destroy(rt); /* frees the rest (ASan's leak check watches) */
}
END_TEST

START_TEST(destroy_without_start)
{
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    char err[256];
    mrt_runtime *rt = NULL;
    ck_assert_int_eq(mrt_runtime_create(&cfg, &rt, err, sizeof err), MRT_OK);
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    mrt_runtime_destroy(rt);
    mrt_runtime_destroy(NULL);
    ck_assert_int_eq(mrt_runtime_control_tick(NULL, false), MRT_EINVAL);
    /* A shard count beyond the mesh's limit, or unpinned shards without allow_unbound. */
    cfg.shards = MRT_MAX_SHARDS + 1;
    cfg.allow_unbound = true;
    ck_assert_int_eq(mrt_runtime_create(&cfg, &rt, err, sizeof err), MRT_RT_ESHARDS);
    cfg.shards = MRT_MAX_SHARDS; /* more than this machine's CPUs, unless it has 256 */
    cfg.allow_unbound = false;
    int rc = mrt_runtime_create(&cfg, &rt, err, sizeof err);
    if (rc == MRT_OK)
        mrt_runtime_destroy(rt);
    else
        ck_assert_msg(rc == MRT_RT_ESHARDS && strstr(err, "unpinned"), "%d: %s", rc, err);
    ck_assert_int_eq(mrt_runtime_create(NULL, &rt, err, sizeof err), MRT_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("runtime");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, parse_flags);
    tcase_add_test(tc, bad_config_is_refused_before_any_thread);
    tcase_add_test(tc, workload_validated_and_drained);
    tcase_add_test(tc, workload_every_strategy_balances);
    tcase_add_test(tc, inject_while_running_then_refused_after_stop);
    tcase_add_test(tc, snapshots_published_while_shards_route);
    tcase_add_test(tc, destroy_without_start);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
