/*
 * meshrt: the command. `meshrt run` runs the built-in workload (mrt_workload_*,
 * mrt_runtime.h) or a group scenario; `meshrt topo` shows the machine;
 * `meshrt top` is in top.c, what a run prints in report.c.
 */
#include "meshrt/mrt_groups.h"
#include "meshrt/mrt_metrics.h"
#include "meshrt/mrt_runtime.h"
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Exit statuses (documented in `meshrt --help`, README.md and runtime/README.md). */
enum {
    EXIT_RUN_OK = 0,    /* the run's verdict is OK (or: help / topo printed) */
    EXIT_VERDICT = 1,   /* the run completed but its verdict failed (reasons printed) */
    EXIT_USAGE = 2,     /* bad flags or configuration; no thread was started */
    EXIT_BIND = 3,      /* the OS refused a CPU or memory binding (see --allow-unbound) */
    EXIT_OUTPUT = 4,    /* writing to stdout failed (full disk, closed pipe): stopped, drained */
    EXIT_METRICS = 5,   /* --metrics: the port is in use or the address cannot be bound */
};

/* The signals that stop `meshrt run`; taken by the main thread only, with sigtimedwait. */
static sigset_t stop_signals;

/*
 * First thing in main, before any thread exists (every thread inherits the
 * mask): block SIGINT/SIGTERM so that one arriving at any moment stays
 * pending until the run loop takes it, and give both their default
 * disposition back: a SIGINT inherited as ignored (a background job of a
 * non-interactive shell) would otherwise be discarded, even while blocked.
 * SIGPIPE is ignored: a closed stdout is a write error, handled like any other.
 */
static void signals_init(void)
{
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* The first write error on stdout, remembered with its errno. */
typedef struct output_state {
    bool failed;
    int err;
} output_state;

/* Flush f; false (and the error remembered) when it or an earlier write failed. */
static bool flush_ok(FILE *f, output_state *os)
{
    errno = 0;
    if (fflush(f) == 0 && !ferror(f))
        return true;
    if (!os->failed) {
        os->failed = true;
        os->err = errno ? errno : EIO;
    }
    return false;
}

/* Flush and close stdout: false (the error remembered) when that or any earlier write failed. */
static bool close_stdout(output_state *os)
{
    bool ok = flush_ok(stdout, os);
    errno = 0;
    if (fclose(stdout) != 0 && ok) {
        ok = false;
        os->failed = true;
        os->err = errno ? errno : EIO;
    }
    return ok;
}

/* close_stdout; EXIT_OUTPUT with a message on stderr when it failed, else status. */
static int finish_stdout(const char *who, int status)
{
    output_state os = { 0 };
    if (close_stdout(&os))
        return status;
    fprintf(stderr, "%s: writing to stdout failed: %s\n", who, strerror(os.err));
    return EXIT_OUTPUT;
}

static const char *exit_status_text =
    "exit status:\n"
    "  0  the run's verdict is OK: events moved, every count balances exactly (injected =\n"
    "     delivered by each stage = egressed = received), nothing handed back, no\n"
    "     reservation outstanding, every causal chain validated\n"
    "  1  the verdict failed; the summary says why\n"
    "  2  bad flags or configuration (nothing started)\n"
    "  3  the OS refused a CPU or memory binding (see --allow-unbound)\n"
    "  4  writing to stdout failed (full disk, closed pipe): the run was stopped and\n"
    "     drained, the reason and the summary go to stderr\n"
    "  5  --metrics: the port is in use or the address cannot be bound here (nothing\n"
    "     started; a malformed or non-loopback endpoint is a 2)\n";

static void usage_main(FILE *f)
{
    fprintf(f,
            "usage: meshrt run  [--numa-node N | --cpuset LIST] [FLAGS]   run the built-in workload\n"
            "       meshrt topo [--numa-node N | --cpuset LIST]           show the machine and a selection\n"
            "       meshrt top  [--once] [--interval S] ADDR:PORT         watch a run's metrics endpoint\n"
            "       meshrt help | --help                                  this text\n"
            "       meshrt version | --version                            meshrt's version\n"
            "\n"
            "`meshrt run --help`, `meshrt topo --help` and `meshrt top --help` list each command's\n"
            "flags and defaults.\n"
            "\n"
            "%s",
            exit_status_text);
}

static void usage_run(FILE *f)
{
    mrt_runtime_config d;
    mrt_runtime_config_default(&d);
    char lb[256];
    mrt_runtime_lb_choices(lb, sizeof lb, " ");
    fprintf(f,
            "usage: meshrt run [--numa-node N | --cpuset LIST] [FLAGS]\n"
            "\n"
            "One pinned shard per core of a NUMA node (or per CPU of --cpuset) runs the built-in\n"
            "workload, a pipeline of daemons: an ingress thread injects events into a producer\n"
            "on every shard; each producer's shard's balancer routes its outputs over the\n"
            "workers on all shards (completions come back); each worker's outputs go to the\n"
            "aggregator of its shard, whose outputs are egressed to the main thread, which\n"
            "validates every causal chain. Live lines on stdout (stderr with --json), then a\n"
            "summary. SIGINT/SIGTERM stop it: every in-flight event is delivered or handed\n"
            "back first, then the summary.\n"
            "\n"
            "placement:\n"
            "  --numa-node N       one shard per core of node N (default: the node meshrt starts on)\n"
            "  --cpuset LIST       one shard per CPU of LIST, e.g. 0-3,8 (default: unset)\n"
            "  --allow-unbound     run even when the OS refuses a binding (default: off)\n"
            "run:\n"
            "  --duration S        seconds to run, 0 = until SIGINT/SIGTERM (default: %g)\n"
            "  --burst B           events per burst, 1..%u (default: %u)\n"
            "  --ring-size R       inbound ring slots, a power of two > B (default: %u)\n"
            "  --overflow N        per-destination pending queue, 0 = R (default: %u)\n"
            "  --idle-spin K       empty polls before an idle shard sleeps (default: %u)\n"
            "  --idle-sleep-us U   longest idle sleep in microseconds (default: %u)\n"
            "  --idle-wake         a sender wakes an idle shard at once: lower latency at low\n"
            "                      load, less throughput when CPUs are oversubscribed (default: off)\n"
            "  --stats-ms M        live-line interval, also the perf sampling interval, in ms\n"
            "                      (default: %u)\n"
            "  --lb STRATEGY       how producer outputs spread over workers (default: %s), one of:\n"
            "                      %s\n"
            "  --json              the summary as one JSON object on stdout, live lines on\n"
            "                      stderr (default: off)\n"
            "  --stall-ms N        report a poll iteration running N ms or longer on stderr, with\n"
            "                      the shard's backtrace, while it runs; 0 = off (default: %u)\n"
            "  --tags SPEC         user tags of the shards for the scheduler, e.g.\n"
            "                      \"0=gpu,ssd;1=ssd\" (default: none; numa:N, core:N, shard:N\n"
            "                      are built in)\n"
            "  --scenario NAME     run a daemon-group scenario instead of the pipeline, judged\n"
            "                      like it (default: none):\n"
            "                      replica  a replica group of 2 x shards members under load;\n"
            "                               at half time the last shard is failed, its members\n"
            "                               re-spawned elsewhere resuming their chains; every\n"
            "                               event out once, every chain valid, 0 reservations\n"
            "                      scale    a replica group scaled 1 -> 8 -> 2 -> 5 under load\n"
            "                               at quarters of --duration; nothing lost\n"
            "                      standby  a 3-member standby group (2 outputs per event);\n"
            "                               at half time the active's shard is failed, the\n"
            "                               freshest standby promoted (term + 1), the events\n"
            "                               past its sync replayed with outputs suppressed;\n"
            "                               no output missing or repeated, one chain valid\n"
            "                      fork     a running daemon, then a 3-fork group of it takes\n"
            "                               the load; lineage verifies, each fork's chain\n"
            "                               verifies from its fork genesis\n"
            "metrics:\n"
            "  --metrics ADDR:PORT serve GET /metrics (Prometheus text format) and /stats.json\n"
            "                      on ADDR:PORT (127.0.0.1:9100, [::1]:9100, localhost:0 for any\n"
            "                      free port; the port is printed); watch it with `meshrt top`\n"
            "                      (default: off)\n"
            "  --metrics-remote    allow a non-loopback ADDR such as 0.0.0.0 (default: refused)\n"
            "  -h, --help          this text\n"
            "\n"
            "live lines, every M ms: a total line, then one line per shard. Rates are per second:\n"
            "in (producer deliveries), work (worker deliveries), out (outputs egressed), full\n"
            "(flushes that found a ring full); lag is the events between injection and the main\n"
            "thread. idle is the share of wall time a shard's thread was not on a CPU (sleeping\n"
            "or descheduled), from its thread CPU clock. Perf counters, when available:\n"
            "ipc (instructions per cycle), cmiss (cache misses/s), bmiss (branch misses/s);\n"
            "or csw (context switches/s), migr (CPU migrations/s), faults (page faults/s).\n"
            "\n"
            "%s",
            d.duration_s, MRT_MAX_BURST, d.burst, d.ring_size, d.overflow, d.idle_spin,
            d.idle_sleep_max_us, d.stats_interval_ms, mrt_lb_strategy_name(d.lb_strategy), lb,
            d.stall_ms, exit_status_text);
}

static void usage_topo(FILE *f)
{
    fprintf(f,
            "usage: meshrt topo [--numa-node N | --cpuset LIST]\n"
            "\n"
            "What hwloc found (NUMA nodes, cores, PUs, caches), and which shards `meshrt run`\n"
            "would create with the same selection. Nothing is started.\n"
            "\n"
            "  --numa-node N       one shard per core of node N (default: the node meshrt starts on)\n"
            "  --cpuset LIST       one shard per CPU of LIST, e.g. 0-3,8 (default: unset)\n"
            "  -h, --help          this text\n"
            "\n"
            "Flags of `meshrt run` only are refused. Exit status: 0 when the selection is\n"
            "valid, 2 when not (or for bad flags), 4 when writing to stdout failed.\n");
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool parse_config(mrt_runtime_command cmd, int argc, char **argv, mrt_runtime_config *cfg)
{
    char err[512] = "";
    mrt_runtime_config_default(cfg);
    if (mrt_runtime_parse_command_args(cmd, argc, argv, cfg, err, sizeof err) == MRT_OK)
        return true;
    const char *name = cmd == MRT_RT_CMD_TOPO ? "topo" : "run";
    fprintf(stderr, "meshrt %s: %s\n(see `meshrt %s --help`)\n", name, err, name);
    return false;
}

/* A scenario's stop poll: SIGINT/SIGTERM taken without waiting. */
static bool scenario_stop(void *ctx)
{
    (void)ctx;
    struct timespec ts = { 0, 0 };
    int sig = sigtimedwait(&stop_signals, NULL, &ts);
    return sig == SIGINT || sig == SIGTERM;
}

/* `meshrt run --scenario NAME` (groups/scenario.c): its own summary, the same exit statuses. */
static int cmd_scenario(const mrt_runtime_config *cfg)
{
    static mrt_scenario_result r;
    char err[256] = "";
    output_state os = { 0 };
    FILE *progress = cfg->json ? stderr : stdout;
    int rc = mrt_scenario_run(cfg, scenario_stop, NULL, progress, &r, err, sizeof err);
    if (rc != MRT_OK) {
        fprintf(stderr, "meshrt run: %s\n", err);
        return rc == MRT_RT_EBIND ? EXIT_BIND : EXIT_USAGE;
    }
    int status = r.nproblems == 0 ? EXIT_RUN_OK : EXIT_VERDICT;
    mrt_scenario_print(stdout, cfg->json, &r);
    if (close_stdout(&os))
        return status;
    fprintf(stderr, "meshrt run: writing the summary to stdout failed: %s; the summary follows "
                    "here\n", strerror(os.err));
    mrt_scenario_print(stderr, cfg->json, &r);
    return EXIT_OUTPUT;
}

/* Runtime, workload, endpoint, start: 0, or the exit status (the reason already on stderr). */
static int run_setup(const mrt_runtime_config *cfg, mrt_runtime **rtp, mrt_workload **wlp)
{
    char err[256] = "";
    mrt_runtime *rt = NULL;
    mrt_workload *wl = NULL;
    int status = 0;
    int rc = mrt_runtime_create(cfg, &rt, err, sizeof err);
    if (rc == MRT_OK)
        rc = mrt_workload_create(rt, &wl, err, sizeof err);
    if (rc != MRT_OK)
        status = EXIT_USAGE;
    if (status == 0 && cfg->metrics) {
        mrt_metrics_config mc;
        mrt_metrics_config_default(&mc);
        mc.allow_remote = cfg->metrics_remote;
        rc = mrt_runtime_metrics_start(rt, cfg->metrics, &mc, err, sizeof err);
        if (rc != MRT_OK)
            status = rc == MRT_RT_EMETRICS_INUSE || rc == MRT_RT_EMETRICS_LISTEN ? EXIT_METRICS
                                                                                 : EXIT_USAGE;
    }
    if (status == 0) {
        rc = mrt_runtime_start(rt, err, sizeof err);
        if (rc != MRT_OK)
            status = rc == MRT_RT_EBIND ? EXIT_BIND : EXIT_USAGE;
    }
    if (status != 0) {
        fprintf(stderr, "meshrt run: %s\n", err);
        mrt_workload_destroy(wl);
        mrt_runtime_destroy(rt);
        return status;
    }
    *rtp = rt;
    *wlp = wl;
    return 0;
}

/* The first line(s): shards and their PUs, the settings, the endpoint. */
static void print_preamble(FILE *progress, const mrt_runtime_config *cfg, mrt_runtime *rt)
{
    unsigned n = mrt_mesh_size(mrt_runtime_mesh(rt));
    const mrt_topo_selection *sel = mrt_runtime_selection(rt);
    fprintf(progress, "meshrt: %u shard%s on PU", n, n == 1 ? "" : "s");
    for (unsigned i = 0; i < n; i++)
        fprintf(progress, "%s%u", i ? "," : " ", sel->cpus[i].pu);
    fprintf(progress, "%s; burst %u, ring %u, --lb %s, ",
            mrt_runtime_unbound(rt) ? " (UNBOUND: binding refused, --allow-unbound)" : "",
            cfg->burst, cfg->ring_size, mrt_lb_strategy_name(cfg->lb_strategy));
    if (cfg->duration_s > 0)
        fprintf(progress, "%g s", cfg->duration_s);
    else
        fputs("until SIGINT/SIGTERM", progress);
    fprintf(progress, "; a line every %u ms\n", cfg->stats_interval_ms);
    if (cfg->metrics) {
        const char *colon = strrchr(cfg->metrics, ':');
        fprintf(progress, "meshrt: metrics on http://%.*s:%u/metrics and /stats.json\n",
                (int)(colon - cfg->metrics), cfg->metrics, mrt_runtime_metrics_port(rt));
    }
}

/*
 * Start the workload and run until the duration, a signal or a failed
 * write: the main thread drains egress (validating every output) and,
 * between polls, takes SIGINT/SIGTERM with sigtimedwait — at once while
 * outputs flow (at most once a millisecond), waiting up to 200 us when none
 * came. Returns why it stopped; *t0: when the workload started.
 */
static const char *run_loop(const mrt_runtime_config *cfg, mrt_runtime *rt, mrt_workload *wl,
                            FILE *progress, output_state *os, double *t0)
{
    *t0 = now_s();
    /* A failed write of the preamble stops the run at once; stderr is best effort. */
    if (!flush_ok(stdout, os))
        return "output failed";
    if (progress != stdout)
        fflush(progress);
    char err[256] = "";
    if (mrt_workload_start(wl, err, sizeof err) != MRT_OK) {
        fprintf(stderr, "meshrt run: %s\n", err);
        return "the workload did not start";
    }
    /*
     * The run's clock starts with the workload: spawning the daemons and
     * publishing the set is setup, not run time. Counted from runtime start,
     * a setup slower than --duration (a loaded machine, a sanitizer build)
     * ended the run before the first injection.
     */
    *t0 = now_s();
    unsigned n = mrt_mesh_size(mrt_runtime_mesh(rt));
    mrt_cli_shard_prev prev[MRT_MAX_SHARDS], prev_total;
    memset(prev, 0, sizeof prev);
    memset(&prev_total, 0, sizeof prev_total);
    for (unsigned i = 0; i < n; i++)
        mrt_cli_read_cpu(rt, i, &prev[i]);
    double interval = cfg->stats_interval_ms * 1e-3;
    double last = *t0, last_sig = *t0;
    for (;;) {
        double now = now_s();
        if (cfg->duration_s > 0 && now - *t0 >= cfg->duration_s)
            return "duration elapsed";
        if (now - last >= interval) {
            mrt_cli_print_interval(progress, rt, wl, prev, &prev_total, now - last, now - *t0);
            /* Control plane: breaker reports in, a new snapshot out when something changed. */
            (void)mrt_runtime_control_tick(rt, false);
            last = now;
            if (progress == stdout && !flush_ok(stdout, os))
                return "output failed";
            if (progress != stdout)
                fflush(progress);
        }
        size_t got = mrt_workload_poll(wl, 512);
        if (got && now - last_sig < 1e-3)
            continue;
        double wait = 0;
        if (!got) {
            wait = last + interval - now;
            if (cfg->duration_s > 0 && *t0 + cfg->duration_s - now < wait)
                wait = *t0 + cfg->duration_s - now;
            if (wait > 200e-6)
                wait = 200e-6;
            if (wait < 0)
                wait = 0;
        }
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)(wait * 1e9) };
        int sig = sigtimedwait(&stop_signals, NULL, &ts);
        last_sig = now;
        if (sig == SIGINT || sig == SIGTERM)
            return sig == SIGINT ? "SIGINT" : "SIGTERM";
    }
}

/* The summary on stdout, or on stderr when stdout failed: the exit status. */
static int report_run(const mrt_cli_run_result *r, bool json, output_state *os)
{
    int status = r->nproblems == 0 ? EXIT_RUN_OK : EXIT_VERDICT;
    if (!os->failed) {
        mrt_cli_print_summary(stdout, json, r);
        if (close_stdout(os))
            return status;
        fprintf(stderr,
                "meshrt run: writing the summary to stdout failed: %s; the run was drained, "
                "the summary follows here\n",
                strerror(os->err));
    } else {
        fprintf(stderr,
                "meshrt run: writing to stdout failed: %s; stopped after %.2f s and drained, "
                "the summary follows here\n",
                strerror(os->err), r->elapsed);
    }
    mrt_cli_print_summary(stderr, json, r);
    return EXIT_OUTPUT;
}

static int cmd_run(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        usage_run(stdout);
        return finish_stdout("meshrt run", EXIT_RUN_OK);
    }
    mrt_runtime_config cfg;
    if (!parse_config(MRT_RT_CMD_RUN, argc, argv, &cfg))
        return EXIT_USAGE;
    if (cfg.scenario)
        return cmd_scenario(&cfg);
    mrt_runtime *rt = NULL;
    mrt_workload *wl = NULL;
    int status = run_setup(&cfg, &rt, &wl);
    if (status != 0)
        return status;
    FILE *progress = cfg.json ? stderr : stdout;
    output_state os = { 0 };
    print_preamble(progress, &cfg, rt);
    double t0;
    const char *why_stop = run_loop(&cfg, rt, wl, progress, &os, &t0);
    double t_stop = now_s();
    /* The ingress thread, then the runtime: what is in flight is delivered and validated here. */
    mrt_workload_stop(wl);
    static mrt_cli_run_result r;
    memset(&r, 0, sizeof r);
    r.elapsed = now_s() - t0;
    r.drain_ms = (now_s() - t_stop) * 1e3;
    r.why_stop = why_stop;
    r.stall_ms = cfg.stall_ms;
    r.lb = mrt_lb_strategy_name(cfg.lb_strategy);
    mrt_cli_collect(&r, rt, wl);
    mrt_workload_destroy(wl);
    mrt_runtime_destroy(rt);
    return report_run(&r, cfg.json, &os);
}

static int cmd_topo(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        usage_topo(stdout);
        return finish_stdout("meshrt topo", EXIT_RUN_OK);
    }
    mrt_runtime_config cfg;
    char err[256] = "";
    if (!parse_config(MRT_RT_CMD_TOPO, argc, argv, &cfg))
        return EXIT_USAGE;
    mrt_topo *topo = NULL;
    int rc = mrt_topo_load(&topo);
    if (rc != MRT_OK) {
        fprintf(stderr, "meshrt topo: %s\n", mrt_strerror(rc));
        return EXIT_USAGE;
    }
    static mrt_topo_selection sel;
    rc = mrt_runtime_check(&cfg, topo, &sel, err, sizeof err);
    mrt_topo_print(topo, stdout, rc == MRT_OK ? &sel : NULL);
    mrt_topo_destroy(topo);
    if (rc != MRT_OK) {
        fflush(stdout);
        fprintf(stderr, "meshrt topo: %s\n", err);
        return finish_stdout("meshrt topo", EXIT_USAGE);
    }
    return finish_stdout("meshrt topo", EXIT_RUN_OK);
}

int main(int argc, char **argv)
{
    signals_init(); /* before anything else, and before any thread */
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(argv[1], "topo") == 0)
        return cmd_topo(argc - 2, argv + 2);
    if (strcmp(argv[1], "top") == 0)
        return mrt_cli_top(argc - 2, argv + 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        if (argc > 2 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "run") == 0)
            usage_run(stdout);
        else if (argc > 2 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "topo") == 0)
            usage_topo(stdout);
        else if (argc > 2 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "top") == 0)
            mrt_cli_top_usage(stdout);
        else
            usage_main(stdout);
        return finish_stdout("meshrt", EXIT_RUN_OK);
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        /* The library's version; the headers' too when they differ (a mismatched shared library). */
        if (strcmp(mrt_version(), MRT_VERSION_STRING) == 0)
            printf("meshrt %s\n", mrt_version());
        else
            printf("meshrt %s (built with headers %s)\n", mrt_version(), MRT_VERSION_STRING);
        return finish_stdout("meshrt", EXIT_RUN_OK);
    }
    fprintf(stderr, "meshrt: unknown command '%s'\n", argv[1]);
    usage_main(stderr);
    return EXIT_USAGE;
}
