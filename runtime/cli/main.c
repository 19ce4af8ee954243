/* meshrt: the command. `meshrt run` runs the built-in workload; `meshrt topo` shows the machine. */
#include "meshrt/mrt_perf.h"
#include "meshrt/mrt_runtime.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meshrt run  [--numa-node N | --cpuset LIST] [--duration S] [--burst B]\n"
            "                   [--ring-size R] [--overflow N] [--idle-spin K] [--idle-sleep-us U]\n"
            "                   [--stats-ms M] [--allow-unbound] [--json]\n"
            "                   [--lb rr|wrr|lc|wlc|random|wrandom|ch|maglev|latency|load|p2c|adaptive]\n"
            "       meshrt topo [--numa-node N | --cpuset LIST]\n"
            "\n"
            "run   one pinned shard per core of the NUMA node (default: the node meshrt starts\n"
            "      on) or per CPU of --cpuset, running the built-in workload: every shard sends\n"
            "      sequenced events round-robin to every shard and each receiver checks the\n"
            "      per-sender order. One line per shard per second, then a summary (--json:\n"
            "      the summary as JSON on stdout, progress on stderr). --duration 0 runs until\n"
            "      SIGINT/SIGTERM, which stop gracefully (drain) in any case.\n"
            "      Each received event is delivered to the receiving shard's daemon host.\n"
            "      Exit status: 0 when sent == received + handed back with no ordering\n"
            "      violation and every event delivered; 1 when not; 2 for bad flags or\n"
            "      configuration; 3 when the OS\n"
            "      refused a CPU or memory binding (see --allow-unbound).\n"
            "topo  what hwloc found, and which shards a selection would create.\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct totals {
    uint64_t sent, received, handed_back, violations, refused, ring_full;
    uint64_t delivered, emitted, daemon_errors;
} totals;

static void print_interval(FILE *out, mrt_runtime *rt, mrt_workload_stats *prev,
                           mrt_shard_stats *prevs, double dt)
{
    mrt_mesh *mesh = mrt_runtime_mesh(rt);
    unsigned n = mrt_mesh_size(mesh);
    for (unsigned i = 0; i < n; i++) {
        mrt_workload_stats w;
        mrt_shard_stats s;
        mrt_runtime_workload_stats(rt, i, &w);
        mrt_shard_stats_read(mesh, i, &s);
        double in = (double)(w.received - prev[i].received) / dt;
        double outr = (double)(w.sent - prev[i].sent) / dt;
        uint64_t busy = s.busy_cycles - prevs[i].busy_cycles;
        uint64_t idle = s.idle_cycles - prevs[i].idle_cycles;
        double idle_pct = busy + idle ? 100.0 * (double)idle / (double)(busy + idle) : 0;
        fprintf(out, "shard %2u  in %10.0f/s  out %10.0f/s  ring_full %8llu  idle %5.1f%%  [%s%s",
                i, in, outr, (unsigned long long)(s.ring_full - prevs[i].ring_full), idle_pct,
                mrt_perf_set_name((mrt_perf_set)s.perf_set), s.perf_user_only ? ",user" : "");
        /* The shard's last complete counter interval, scaled to one second. */
        for (unsigned k = 0; s.perf_interval_ns && k < MRT_PERF_MAX_EVENTS; k++) {
            const char *name = mrt_perf_event_name((mrt_perf_set)s.perf_set, k);
            if (name == NULL)
                break;
            fprintf(out, " %s/s=%.0f", name, (double)s.perf[k] * 1e9 / (double)s.perf_interval_ns);
        }
        fputs("]\n", out);
        prev[i] = w;
        prevs[i] = s;
    }
    fflush(out);
}

/* Defaults, then the command's flags; false (message printed) on a bad flag. */
static bool parse_config(const char *cmd, int argc, char **argv, mrt_runtime_config *cfg)
{
    char err[256] = "";
    mrt_runtime_config_default(cfg);
    if (mrt_runtime_parse_args(argc, argv, cfg, err, sizeof err) == MRT_OK)
        return true;
    fprintf(stderr, "meshrt %s: %s\n", cmd, err);
    return false;
}

static int cmd_run(int argc, char **argv)
{
    mrt_runtime_config cfg;
    char err[256] = "";
    int rc;
    if (!parse_config("run", argc, argv, &cfg))
        return 2;
    /* Shard threads inherit this mask; only the main thread takes the signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    mrt_runtime *rt = NULL;
    rc = mrt_runtime_create(&cfg, &rt, err, sizeof err);
    if (rc != MRT_OK) {
        fprintf(stderr, "meshrt run: %s\n", err);
        return 2;
    }
    rc = mrt_runtime_start(rt, err, sizeof err);
    if (rc != MRT_OK) {
        fprintf(stderr, "meshrt run: %s\n", err);
        mrt_runtime_destroy(rt);
        return rc == MRT_RT_EBIND ? 3 : 2;
    }
    FILE *progress = cfg.json ? stderr : stdout;
    mrt_mesh *mesh = mrt_runtime_mesh(rt);
    unsigned n = mrt_mesh_size(mesh);
    const mrt_topo_selection *sel = mrt_runtime_selection(rt);
    fprintf(progress, "meshrt: %u shard%s on PU", n, n == 1 ? "" : "s");
    for (unsigned i = 0; i < n; i++)
        fprintf(progress, "%s%u", i ? "," : " ", sel->cpus[i].pu);
    fprintf(progress, "%s; burst %u, ring %u, duration %s\n",
            mrt_runtime_unbound(rt) ? " (UNBOUND: binding refused, --allow-unbound)" : "",
            cfg.burst, cfg.ring_size, cfg.duration_s > 0 ? "set" : "until signal");

    mrt_workload_stats prev[MRT_MAX_SHARDS];
    mrt_shard_stats prevs[MRT_MAX_SHARDS];
    memset(prev, 0, sizeof prev);
    memset(prevs, 0, sizeof prevs);
    double t0 = now_s(), last = t0;
    const char *why_stop = "duration elapsed";
    for (;;) {
        double now = now_s();
        double left = cfg.duration_s > 0 ? cfg.duration_s - (now - t0) : 1.0;
        if (left <= 0)
            break;
        double wait = (last + 1.0) - now;
        if (wait > left)
            wait = left;
        if (wait < 0)
            wait = 0;
        struct timespec ts = { .tv_sec = (time_t)wait,
                               .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9) };
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            why_stop = sig == SIGINT ? "SIGINT" : "SIGTERM";
            break;
        }
        now = now_s();
        if (now - last >= 1.0) {
            print_interval(progress, rt, prev, prevs, now - last);
            /* Control plane: breaker reports in, a new snapshot out when something changed. */
            (void)mrt_runtime_control_tick(rt, false);
            last = now;
        }
    }
    double t_stop = now_s();
    mrt_runtime_stop(rt);
    double elapsed = now_s() - t0;
    double drain_ms = (now_s() - t_stop) * 1e3;

    totals t = { 0 };
    for (unsigned i = 0; i < n; i++) {
        mrt_workload_stats w;
        mrt_shard_stats s;
        mrt_runtime_workload_stats(rt, i, &w);
        mrt_shard_stats_read(mesh, i, &s);
        t.sent += w.sent;
        t.received += w.received;
        t.handed_back += w.handed_back;
        t.violations += w.violations;
        t.refused += w.refused;
        t.ring_full += s.ring_full;
        t.delivered += w.delivered;
        t.emitted += w.emitted;
        t.daemon_errors += w.daemon_errors;
    }
    bool ok = t.sent == t.received + t.handed_back && t.violations == 0 &&
              t.delivered == t.received && t.daemon_errors == 0;
    if (cfg.json) {
        printf("{\"shards\":%u,\"elapsed_s\":%.3f,\"drain_ms\":%.3f,\"stop\":\"%s\","
               "\"sent\":%llu,\"received\":%llu,\"handed_back\":%llu,\"violations\":%llu,"
               "\"refused\":%llu,\"ring_full\":%llu,\"delivered\":%llu,\"emitted\":%llu,"
               "\"daemon_errors\":%llu,\"events_per_s\":%.0f,\"ok\":%s}\n",
               n, elapsed, drain_ms, why_stop, (unsigned long long)t.sent,
               (unsigned long long)t.received, (unsigned long long)t.handed_back,
               (unsigned long long)t.violations, (unsigned long long)t.refused,
               (unsigned long long)t.ring_full, (unsigned long long)t.delivered,
               (unsigned long long)t.emitted, (unsigned long long)t.daemon_errors,
               (double)t.received / elapsed, ok ? "true" : "false");
    } else {
        printf("summary: %u shards, %.2f s (%s, drained in %.2f ms)\n"
               "  sent %llu  received %llu  handed back %llu  violations %llu\n"
               "  daemon hosts: %llu delivered, %llu outputs stamped, %llu errors\n"
               "  backpressure: %llu sends deferred, %llu ring-full flushes\n"
               "  throughput %.0f events/s\n"
               "  %s\n",
               n, elapsed, why_stop, drain_ms, (unsigned long long)t.sent,
               (unsigned long long)t.received, (unsigned long long)t.handed_back,
               (unsigned long long)t.violations, (unsigned long long)t.delivered,
               (unsigned long long)t.emitted, (unsigned long long)t.daemon_errors,
               (unsigned long long)t.refused, (unsigned long long)t.ring_full,
               (double)t.received / elapsed,
               ok ? "OK: sent == received + handed back, order preserved, every event delivered"
                  : "FAILED: events lost, out of order or refused by a daemon host");
    }
    mrt_runtime_destroy(rt);
    return ok ? 0 : 1;
}

static int cmd_topo(int argc, char **argv)
{
    mrt_runtime_config cfg;
    char err[256] = "";
    if (!parse_config("topo", argc, argv, &cfg))
        return 2;
    mrt_topo *topo = NULL;
    int rc = mrt_topo_load(&topo);
    if (rc != MRT_OK) {
        fprintf(stderr, "meshrt topo: %s\n", mrt_strerror(rc));
        return 2;
    }
    static mrt_topo_selection sel;
    rc = mrt_runtime_check(&cfg, topo, &sel, err, sizeof err);
    if (rc != MRT_OK) {
        mrt_topo_print(topo, stdout, NULL);
        fprintf(stderr, "meshrt topo: %s\n", err);
        mrt_topo_destroy(topo);
        return 2;
    }
    mrt_topo_print(topo, stdout, &sel);
    mrt_topo_destroy(topo);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(argv[1], "topo") == 0)
        return cmd_topo(argc - 2, argv + 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "meshrt: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
