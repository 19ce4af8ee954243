/* meshrt: the command. `meshrt run` runs the built-in workload; `meshrt topo` shows the machine. */
#include "meshrt/mrt_perf.h"
#include "meshrt/mrt_runtime.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
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
    "  0  the run's verdict is OK: events moved, sent == received + handed back, no\n"
    "     ordering violation, every event delivered, every burst placed\n"
    "  1  the verdict failed; the summary says why\n"
    "  2  bad flags or configuration (nothing started)\n"
    "  3  the OS refused a CPU or memory binding (see --allow-unbound)\n"
    "  4  writing to stdout failed (full disk, closed pipe): the run was stopped and\n"
    "     drained, the reason and the summary go to stderr\n";

static void usage_main(FILE *f)
{
    fprintf(f,
            "usage: meshrt run  [--numa-node N | --cpuset LIST] [FLAGS]   run the built-in workload\n"
            "       meshrt topo [--numa-node N | --cpuset LIST]           show the machine and a selection\n"
            "       meshrt help | --help                                  this text\n"
            "\n"
            "`meshrt run --help` and `meshrt topo --help` list each command's flags and defaults.\n"
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
            "workload: each shard's balancer picks every burst's destination, receivers check\n"
            "per-sender order and deliver every event to their daemon host. Live lines on stdout\n"
            "(stderr with --json), then a summary. SIGINT/SIGTERM stop it: every in-flight\n"
            "event is delivered or handed back first, then the summary.\n"
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
            "  --stats-ms M        live-line interval, also the perf sampling interval, in ms\n"
            "                      (default: %u)\n"
            "  --lb STRATEGY       how each burst's destination is picked (default: %s), one of:\n"
            "                      %s\n"
            "  --json              the summary as one JSON object on stdout, live lines on\n"
            "                      stderr (default: off)\n"
            "  -h, --help          this text\n"
            "\n"
            "live lines, every M ms: a total line, then one line per shard. Rates are per second;\n"
            "idle is the share of wall time a shard's thread was not on a CPU (sleeping or\n"
            "descheduled), from its thread CPU clock. Perf counters, when available:\n"
            "ipc (instructions per cycle), cmiss (cache misses/s), bmiss (branch misses/s);\n"
            "or csw (context switches/s), migr (CPU migrations/s), faults (page faults/s).\n"
            "\n"
            "%s",
            d.duration_s, MRT_MAX_BURST, d.burst, d.ring_size, d.overflow, d.idle_spin,
            d.idle_sleep_max_us, d.stats_interval_ms, mrt_lb_strategy_name(d.lb_strategy), lb,
            exit_status_text);
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

/* v in at most 5 characters: 999, 1.23k, 12.3M, 123G. */
static const char *human(char buf[16], double v)
{
    static const char suffix[] = " kMGTPE";
    if (v < 0)
        v = 0;
    unsigned k = 0;
    while (v >= 999.5 && k + 1 < sizeof suffix - 1) {
        v /= 1000;
        k++;
    }
    if (k == 0)
        snprintf(buf, 16, "%.0f", v);
    else if (v < 9.995)
        snprintf(buf, 16, "%.2f%c", v, suffix[k]);
    else if (v < 99.95)
        snprintf(buf, 16, "%.1f%c", v, suffix[k]);
    else
        snprintf(buf, 16, "%.0f%c", v, suffix[k]);
    return buf;
}

/* What one live line needs to remember from the previous one. */
typedef struct shard_prev {
    mrt_workload_stats w;
    mrt_shard_stats s;
    uint64_t cpu_ns;
    bool cpu_ok;
} shard_prev;

static void read_cpu(mrt_runtime *rt, unsigned i, shard_prev *p)
{
    p->cpu_ok = mrt_runtime_shard_cpu_ns(rt, i, &p->cpu_ns) == MRT_OK;
}

/* Perf counters of the shard's last complete interval, labelled, per second. */
static void print_perf(FILE *out, const mrt_shard_stats *s)
{
    if (s->perf_interval_ns == 0)
        return;
    double per_s = 1e9 / (double)s->perf_interval_ns;
    char a[16], b[16], c[16];
    switch ((mrt_perf_set)s->perf_set) {
    case MRT_PERF_SET_HARDWARE: /* cycles, instructions, cache misses, branch misses */
        fprintf(out, "  ipc %.2f cmiss %s bmiss %s",
                s->perf[0] ? (double)s->perf[1] / (double)s->perf[0] : 0.0,
                human(a, (double)s->perf[2] * per_s), human(b, (double)s->perf[3] * per_s));
        break;
    case MRT_PERF_SET_SOFTWARE: /* task clock, page faults, migrations, context switches */
        fprintf(out, "  csw %s migr %s faults %s", human(a, (double)s->perf[3] * per_s),
                human(b, (double)s->perf[2] * per_s), human(c, (double)s->perf[1] * per_s));
        break;
    default:
        break;
    }
}

/*
 * One block of live lines: totals first, then one line per shard, each at
 * most 100 columns. idle = 1 - (thread CPU time / wall time) over the interval.
 */
static void print_interval(FILE *out, mrt_runtime *rt, shard_prev *prev, double dt,
                           double elapsed)
{
    mrt_mesh *mesh = mrt_runtime_mesh(rt);
    unsigned n = mrt_mesh_size(mesh);
    shard_prev cur[MRT_MAX_SHARDS];
    double in_sum = 0, out_sum = 0, full_sum = 0, idle_sum = 0;
    uint64_t unplaced = 0;
    unsigned idle_n = 0;
    double idle[MRT_MAX_SHARDS];
    for (unsigned i = 0; i < n; i++) {
        mrt_runtime_workload_stats(rt, i, &cur[i].w);
        mrt_shard_stats_read(mesh, i, &cur[i].s);
        read_cpu(rt, i, &cur[i]);
        idle[i] = -1;
        if (cur[i].cpu_ok && prev[i].cpu_ok && dt > 0) {
            double on_cpu = (double)(cur[i].cpu_ns - prev[i].cpu_ns) * 1e-9 / dt;
            idle[i] = 100.0 * (on_cpu > 1 ? 0 : 1 - on_cpu);
            idle_sum += idle[i];
            idle_n++;
        }
        in_sum += (double)(cur[i].w.received - prev[i].w.received);
        out_sum += (double)(cur[i].w.sent - prev[i].w.sent);
        full_sum += (double)(cur[i].s.ring_full - prev[i].s.ring_full);
        unplaced += cur[i].w.lb_errors;
    }
    char a[16], b[16], c[16], d[16];
    fprintf(out, "total     in %5s/s  out %5s/s  ring_full %5s/s  ", human(a, in_sum / dt),
            human(b, out_sum / dt), human(c, full_sum / dt));
    if (idle_n)
        fprintf(out, "idle %3.0f%%", idle_sum / idle_n);
    else
        fputs("idle    ?", out);
    fprintf(out, "  unplaced %s  at %.1f s\n", human(d, (double)unplaced), elapsed);
    for (unsigned i = 0; i < n; i++) {
        fprintf(out, "shard %-3u in %5s/s  out %5s/s  ring_full %5s/s  ", i,
                human(a, (double)(cur[i].w.received - prev[i].w.received) / dt),
                human(b, (double)(cur[i].w.sent - prev[i].w.sent) / dt),
                human(c, (double)(cur[i].s.ring_full - prev[i].s.ring_full) / dt));
        if (idle[i] >= 0)
            fprintf(out, "idle %3.0f%%", idle[i]);
        else
            fputs("idle    ?", out);
        print_perf(out, &cur[i].s);
        fputc('\n', out);
        prev[i] = cur[i];
    }
}

typedef struct totals {
    uint64_t sent, received, handed_back, violations, refused, ring_full;
    uint64_t delivered, emitted, daemon_errors, unplaced;
} totals;

/* Appends one reason to the verdict's list ("; "-separated). */
static void add_problem(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 3 >= len)
        return;
    if (used) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

/* The verdict: problems is empty when the run is OK. */
static void verdict(const totals *t, char *problems, size_t len)
{
    problems[0] = '\0';
    if (t->sent == 0)
        add_problem(problems, len, "no events moved");
    if (t->sent != t->received + t->handed_back)
        add_problem(problems, len, "sent %llu != received %llu + handed back %llu",
                    (unsigned long long)t->sent, (unsigned long long)t->received,
                    (unsigned long long)t->handed_back);
    if (t->violations)
        add_problem(problems, len, "%llu ordering violations", (unsigned long long)t->violations);
    if (t->daemon_errors)
        add_problem(problems, len, "%llu events refused by a daemon host",
                    (unsigned long long)t->daemon_errors);
    if (t->delivered + t->violations + t->daemon_errors != t->received)
        add_problem(problems, len, "%llu received events neither delivered nor refused",
                    (unsigned long long)(t->received - t->delivered - t->violations -
                                         t->daemon_errors));
    if (t->unplaced)
        add_problem(problems, len, "%llu bursts the balancer could not place",
                    (unsigned long long)t->unplaced);
}

static void print_summary(FILE *f, bool json, unsigned n, double elapsed, double drain_ms,
                          const char *why_stop, const totals *t, const char *problems)
{
    bool ok = problems[0] == '\0';
    char a[16];
    if (json) {
        fprintf(f,
                "{\"shards\":%u,\"elapsed_s\":%.3f,\"drain_ms\":%.3f,\"stop\":\"%s\","
                "\"sent\":%llu,\"received\":%llu,\"handed_back\":%llu,\"violations\":%llu,"
                "\"refused\":%llu,\"ring_full\":%llu,\"delivered\":%llu,\"emitted\":%llu,"
                "\"daemon_errors\":%llu,\"unplaced_bursts\":%llu,\"events_per_s\":%.0f,"
                "\"ok\":%s,\"problems\":\"%s\"}\n",
                n, elapsed, drain_ms, why_stop, (unsigned long long)t->sent,
                (unsigned long long)t->received, (unsigned long long)t->handed_back,
                (unsigned long long)t->violations, (unsigned long long)t->refused,
                (unsigned long long)t->ring_full, (unsigned long long)t->delivered,
                (unsigned long long)t->emitted, (unsigned long long)t->daemon_errors,
                (unsigned long long)t->unplaced, (double)t->received / elapsed,
                ok ? "true" : "false", problems);
        return;
    }
    fprintf(f,
            "summary: %u shard%s, %.2f s (%s, drained in %.2f ms)\n"
            "  sent %llu  received %llu  handed back %llu  violations %llu\n"
            "  daemon hosts: %llu delivered, %llu outputs stamped, %llu errors\n"
            "  balancer: %llu bursts could not be placed\n"
            "  backpressure: %llu sends deferred, %llu ring-full flushes\n"
            "  throughput %s events/s\n",
            n, n == 1 ? "" : "s", elapsed, why_stop, drain_ms, (unsigned long long)t->sent,
            (unsigned long long)t->received, (unsigned long long)t->handed_back,
            (unsigned long long)t->violations, (unsigned long long)t->delivered,
            (unsigned long long)t->emitted, (unsigned long long)t->daemon_errors,
            (unsigned long long)t->unplaced, (unsigned long long)t->refused,
            (unsigned long long)t->ring_full, human(a, (double)t->received / elapsed));
    if (ok)
        fputs("  OK: events moved, none lost or out of order, every event delivered, every burst "
              "placed\n",
              f);
    else
        fprintf(f, "  FAILED: %s\n", problems);
}

/* Parse a command's flags over the defaults; false (message printed) on a bad flag. */
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

static int cmd_run(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        usage_run(stdout);
        return finish_stdout("meshrt run", EXIT_RUN_OK);
    }
    mrt_runtime_config cfg;
    char err[256] = "";
    if (!parse_config(MRT_RT_CMD_RUN, argc, argv, &cfg))
        return EXIT_USAGE;

    mrt_runtime *rt = NULL;
    int rc = mrt_runtime_create(&cfg, &rt, err, sizeof err);
    if (rc != MRT_OK) {
        fprintf(stderr, "meshrt run: %s\n", err);
        return EXIT_USAGE;
    }
    rc = mrt_runtime_start(rt, err, sizeof err);
    if (rc != MRT_OK) {
        fprintf(stderr, "meshrt run: %s\n", err);
        mrt_runtime_destroy(rt);
        return rc == MRT_RT_EBIND ? EXIT_BIND : EXIT_USAGE;
    }
    double t0 = now_s();
    FILE *progress = cfg.json ? stderr : stdout;
    output_state os = { 0 };
    mrt_mesh *mesh = mrt_runtime_mesh(rt);
    unsigned n = mrt_mesh_size(mesh);
    shard_prev prev[MRT_MAX_SHARDS];
    memset(prev, 0, sizeof prev);
    for (unsigned i = 0; i < n; i++)
        read_cpu(rt, i, &prev[i]);
    const mrt_topo_selection *sel = mrt_runtime_selection(rt);
    fprintf(progress, "meshrt: %u shard%s on PU", n, n == 1 ? "" : "s");
    for (unsigned i = 0; i < n; i++)
        fprintf(progress, "%s%u", i ? "," : " ", sel->cpus[i].pu);
    fprintf(progress, "%s; burst %u, ring %u, --lb %s, ",
            mrt_runtime_unbound(rt) ? " (UNBOUND: binding refused, --allow-unbound)" : "",
            cfg.burst, cfg.ring_size, mrt_lb_strategy_name(cfg.lb_strategy));
    if (cfg.duration_s > 0)
        fprintf(progress, "%g s", cfg.duration_s);
    else
        fputs("until SIGINT/SIGTERM", progress);
    fprintf(progress, "; a line every %u ms\n", cfg.stats_interval_ms);

    const char *why_stop = "duration elapsed";
    double interval = cfg.stats_interval_ms * 1e-3;
    double last = t0;
    /* A failed write of the preamble stops the run at once; stderr is best effort. */
    if (!flush_ok(stdout, &os))
        why_stop = "output failed";
    else if (progress != stdout)
        fflush(progress);
    while (!os.failed) {
        double now = now_s();
        double left = cfg.duration_s > 0 ? cfg.duration_s - (now - t0) : interval;
        if (left <= 0)
            break;
        double wait = (last + interval) - now;
        if (wait > left)
            wait = left;
        if (wait < 0)
            wait = 0;
        struct timespec ts = { .tv_sec = (time_t)wait,
                               .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9) };
        int sig = sigtimedwait(&stop_signals, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            why_stop = sig == SIGINT ? "SIGINT" : "SIGTERM";
            break;
        }
        now = now_s();
        if (now - last >= interval) {
            print_interval(progress, rt, prev, now - last, now - t0);
            /* Control plane: breaker reports in, a new snapshot out when something changed. */
            (void)mrt_runtime_control_tick(rt, false);
            last = now;
            if (progress == stdout && !flush_ok(stdout, &os))
                why_stop = "output failed";
            else if (progress != stdout)
                fflush(progress);
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
        t.unplaced += w.lb_errors;
    }
    mrt_runtime_destroy(rt);
    char problems[512];
    verdict(&t, problems, sizeof problems);
    int status = problems[0] == '\0' ? EXIT_RUN_OK : EXIT_VERDICT;
    if (!os.failed) {
        print_summary(stdout, cfg.json, n, elapsed, drain_ms, why_stop, &t, problems);
        if (close_stdout(&os))
            return status;
        fprintf(stderr,
                "meshrt run: writing the summary to stdout failed: %s; the run was drained, "
                "the summary follows here\n",
                strerror(os.err));
    } else {
        fprintf(stderr,
                "meshrt run: writing to stdout failed: %s; stopped after %.2f s and drained, "
                "the summary follows here\n",
                strerror(os.err), elapsed);
    }
    print_summary(stderr, cfg.json, n, elapsed, drain_ms, why_stop, &t, problems);
    return EXIT_OUTPUT;
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
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        if (argc > 2 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "run") == 0)
            usage_run(stdout);
        else if (argc > 2 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "topo") == 0)
            usage_topo(stdout);
        else
            usage_main(stdout);
        return finish_stdout("meshrt", EXIT_RUN_OK);
    }
    fprintf(stderr, "meshrt: unknown command '%s'\n", argv[1]);
    usage_main(stderr);
    return EXIT_USAGE;
}
