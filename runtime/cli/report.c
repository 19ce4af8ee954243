/*
 * What `meshrt run` prints: the live lines every --stats-ms (totals, then
 * each shard, in human units) and the summary after the drain (a table or
 * one JSON object), from the workload's and the shards' published stats.
 */
#include "meshrt/mrt_perf.h"
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *mrt_cli_human(char buf[16], double v)
{
    static const char suffix[] = " kMGTPE";
    if (!(v >= 0) || isinf(v))
        return "-";
    unsigned k = 0;
    while (v >= 999.5 && k + 1 < sizeof suffix - 1) {
        v /= 1000;
        k++;
    }
    if (k == 0)
        snprintf(buf, 16, v < 9.995 && v != floor(v) ? "%.2f" : "%.0f", v);
    else
        snprintf(buf, 16, v < 9.995 ? "%.2f%c" : v < 99.95 ? "%.1f%c" : "%.0f%c", v, suffix[k]);
    return buf;
}

void mrt_cli_read_cpu(mrt_runtime *rt, unsigned i, mrt_cli_shard_prev *p)
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
                mrt_cli_human(a, (double)s->perf[2] * per_s),
                mrt_cli_human(b, (double)s->perf[3] * per_s));
        break;
    case MRT_PERF_SET_SOFTWARE: /* task clock, page faults, migrations, context switches */
        fprintf(out, "  csw %s migr %s faults %s", mrt_cli_human(a, (double)s->perf[3] * per_s),
                mrt_cli_human(b, (double)s->perf[2] * per_s),
                mrt_cli_human(c, (double)s->perf[1] * per_s));
        break;
    default:
        break;
    }
}

/* A per-second rate of a counter's growth, in human units. */
static const char *rate(char buf[16], uint64_t cur, uint64_t prev, double dt)
{
    return mrt_cli_human(buf, (double)(cur - prev) / dt);
}

/*
 * One block of live lines: totals first, then one line per shard, each at
 * most 100 columns. in, work and out are the deliveries of the producers,
 * workers and aggregators; idle = 1 - (thread CPU time / wall time) over
 * the interval.
 */
void mrt_cli_print_interval(FILE *out, mrt_runtime *rt, mrt_workload *wl, mrt_cli_shard_prev *prev,
                           mrt_cli_shard_prev *prev_total, double dt, double elapsed)
{
    mrt_mesh *mesh = mrt_runtime_mesh(rt);
    unsigned n = mrt_mesh_size(mesh);
    mrt_cli_shard_prev cur[MRT_MAX_SHARDS], total;
    memset(&total, 0, sizeof total);
    double idle_sum = 0;
    unsigned idle_n = 0;
    double idle[MRT_MAX_SHARDS];
    for (unsigned i = 0; i < n; i++) {
        mrt_workload_stats_get(wl, (int)i, &cur[i].w);
        mrt_shard_stats_read(mesh, i, &cur[i].s);
        mrt_cli_read_cpu(rt, i, &cur[i]);
        idle[i] = -1;
        if (cur[i].cpu_ok && prev[i].cpu_ok && dt > 0) {
            double on_cpu = (double)(cur[i].cpu_ns - prev[i].cpu_ns) * 1e-9 / dt;
            idle[i] = 100.0 * (on_cpu > 1 ? 0 : 1 - on_cpu);
            idle_sum += idle[i];
            idle_n++;
        }
        total.s.ring_full += cur[i].s.ring_full;
    }
    mrt_workload_stats_get(wl, -1, &total.w);
    char a[16], b[16], c[16], d[16], e[16];
    const mrt_workload_stats *tw = &total.w, *pw = &prev_total->w;
    fprintf(out, "total     in %5s/s  work %5s/s  out %5s/s  full %5s/s  ",
            rate(a, tw->delivered[MRT_WL_PRODUCER], pw->delivered[MRT_WL_PRODUCER], dt),
            rate(b, tw->delivered[MRT_WL_WORKER], pw->delivered[MRT_WL_WORKER], dt),
            rate(c, tw->drained, pw->drained, dt),
            rate(d, total.s.ring_full, prev_total->s.ring_full, dt));
    if (idle_n)
        fprintf(out, "idle %3.0f%%", idle_sum / idle_n);
    else
        fputs("idle    ?", out);
    fprintf(out, "  lag %s  at %.1f s\n",
            mrt_cli_human(e, (double)(tw->injected > tw->drained ? tw->injected - tw->drained : 0)),
            elapsed);
    *prev_total = total;
    for (unsigned i = 0; i < n; i++) {
        const mrt_workload_stats *w = &cur[i].w, *p = &prev[i].w;
        fprintf(out, "shard %-3u in %5s/s  work %5s/s  out %5s/s  ", i,
                rate(a, w->delivered[MRT_WL_PRODUCER], p->delivered[MRT_WL_PRODUCER], dt),
                rate(b, w->delivered[MRT_WL_WORKER], p->delivered[MRT_WL_WORKER], dt),
                rate(c, w->drained, p->drained, dt));
        if (idle[i] >= 0)
            fprintf(out, "idle %3.0f%%", idle[i]);
        else
            fputs("idle    ?", out);
        print_perf(out, &cur[i].s);
        fputc('\n', out);
        prev[i] = cur[i];
    }
}



/* s as a JSON string body: quotes, backslashes and control characters escaped. */
static void json_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
}

/* A worker share in percent (0 when no worker event). */
static double share(const mrt_cli_run_result *r, unsigned i)
{
    uint64_t all = r->t.delivered[MRT_WL_WORKER];
    return all ? 100.0 * (double)r->worker[i] / (double)all : 0;
}

void mrt_cli_print_summary(FILE *f, bool json, const mrt_cli_run_result *r)
{
    bool ok = r->nproblems == 0;
    const mrt_workload_stats *t = &r->t;
    const uint64_t *dv = t->delivered;
    double per_s = r->elapsed > 0 ? (double)t->drained / r->elapsed : 0;
#define U(x) ((unsigned long long)(x))
    if (json) {
        fprintf(f,
                "{\"shards\":%u,\"elapsed_s\":%.3f,\"drain_ms\":%.3f,\"stop\":\"%s\",\"lb\":\"%s\","
                "\"injected\":%llu,\"inject_refused\":%llu,"
                "\"delivered\":{\"producer\":%llu,\"worker\":%llu,\"aggregator\":%llu},"
                "\"emitted\":%llu,\"routed_set\":%llu,\"routed_daemon\":%llu,\"egressed\":%llu,"
                "\"received\":%llu,\"links_validated\":%llu,\"chains_validated\":%llu,"
                "\"handed_back\":%llu,\"handed_back_by_reason\":{",
                r->shards, r->elapsed, r->drain_ms, r->why_stop, r->lb, U(t->injected),
                U(t->inject_refused), U(dv[MRT_WL_PRODUCER]), U(dv[MRT_WL_WORKER]),
                U(dv[MRT_WL_AGGREGATOR]), U(t->emitted), U(t->routed_set), U(t->routed_daemon),
                U(t->egressed), U(t->drained), U(t->links_validated), U(t->chains),
                U(t->handed_back));
        for (size_t k = 0; k < r->hb_n && k < 16; k++) {
            fputs(k ? ",\"" : "\"", f);
            json_text(f, mrt_strerror(r->hb_why[k]));
            fprintf(f, "\":%llu", U(r->hb_count[k]));
        }
        fprintf(f,
                "},\"daemon_errors\":%llu,\"deferred\":%llu,\"pushed_back\":%llu,"
                "\"completions\":%llu,\"reservations_outstanding\":%llu,\"buffers_away\":%llu,"
                "\"ring_full\":%llu,\"worker_events\":[",
                U(t->daemon_errors), U(t->deferred), U(t->pushed_back), U(t->completions),
                U(t->inflight), U(t->buffers_out), U(r->ring_full));
        for (unsigned i = 0; i < r->shards; i++)
            fprintf(f, "%s%llu", i ? "," : "", U(r->worker[i]));
        fputs("],\"worker_share\":[", f);
        for (unsigned i = 0; i < r->shards; i++)
            fprintf(f, "%s%.4f", i ? "," : "", share(r, i) / 100.0);
        fprintf(f, "],\"stall_ms\":%u,\"stalls\":%llu,\"stall_max_ms\":%.3f", r->stall_ms,
                U(r->stalls), (double)r->stall_max_ns / 1e6);
        fprintf(f, ",\"events_per_s\":%.0f,\"ok\":%s,\"problems\":\"", per_s,
                ok ? "true" : "false");
        json_text(f, r->problems);
        fputs("\"}\n", f);
        return;
    }
    char a[16];
    fprintf(f,
            "summary: %u shard%s, %.2f s (%s, drained in %.2f ms), --lb %s\n"
            "  injected %llu (%llu injections refused for backpressure, offered again)\n"
            "  delivered: producers %llu  workers %llu  aggregators %llu\n"
            "  routed: %llu to the set, %llu to aggregators; %llu outputs stamped\n"
            "  egressed %llu, received %llu; %llu causal links validated in %llu chains\n"
            "  handed back %llu",
            r->shards, r->shards == 1 ? "" : "s", r->elapsed, r->why_stop, r->drain_ms, r->lb,
            U(t->injected), U(t->inject_refused), U(dv[MRT_WL_PRODUCER]), U(dv[MRT_WL_WORKER]),
            U(dv[MRT_WL_AGGREGATOR]), U(t->routed_set), U(t->routed_daemon), U(t->emitted),
            U(t->egressed), U(t->drained), U(t->links_validated), U(t->chains),
            U(t->handed_back));
    for (size_t k = 0; k < r->hb_n && k < 16; k++)
        fprintf(f, "%s%s: %llu", k ? ", " : " (", mrt_strerror(r->hb_why[k]), U(r->hb_count[k]));
    fprintf(f,
            "%s; daemon errors %llu\n"
            "  backpressure: %llu sends deferred, %llu deliveries pushed back, %llu ring-full "
            "flushes\n"
            "  completions %llu, reservations outstanding %llu, pool buffers away %llu\n"
            "  worker events by shard:",
            r->hb_n ? ")" : "", U(t->daemon_errors), U(t->deferred), U(t->pushed_back),
            U(r->ring_full), U(t->completions), U(t->inflight), U(t->buffers_out));
    int col = 25;
    for (unsigned i = 0; i < r->shards; i++) {
        char item[64];
        int len = snprintf(item, sizeof item, "  %u: %.1f%%", i, share(r, i));
        if (col + len > 100) {
            fputs("\n   ", f);
            col = 3;
        }
        fputs(item, f);
        col += len;
    }
    fprintf(f, "\n  throughput %s events/s\n", mrt_cli_human(a, per_s));
    if (r->stall_ms && r->stalls)
        fprintf(f, "  stalls %llu (iterations of %u ms or more, reported on stderr; longest %.1f ms)\n",
                U(r->stalls), r->stall_ms, (double)r->stall_max_ns / 1e6);
    else if (r->stall_ms)
        fprintf(f, "  stalls 0 (no iteration of %u ms or more)\n", r->stall_ms);
    if (ok)
        fputs("  OK: each event through every stage and egressed once; counts balance; every "
              "chain validated\n",
              f);
    else
        fprintf(f, "  FAILED: %s\n", r->problems);
#undef U
}

/* Parse a command's flags over the defaults; false (message printed) on a bad flag. */
/* Take the run's results from the stopped workload. */
void mrt_cli_collect(mrt_cli_run_result *r, mrt_runtime *rt, mrt_workload *wl)
{
    mrt_mesh *mesh = mrt_runtime_mesh(rt);
    r->shards = mrt_mesh_size(mesh);
    mrt_workload_stats_get(wl, -1, &r->t);
    for (unsigned i = 0; i < r->shards; i++) {
        mrt_workload_stats w;
        mrt_shard_stats s;
        mrt_workload_stats_get(wl, (int)i, &w);
        mrt_shard_stats_read(mesh, i, &s);
        r->worker[i] = w.delivered[MRT_WL_WORKER];
        r->ring_full += s.ring_full;
        uint64_t max_ns = 0;
        r->stalls += mrt_runtime_stall_count(rt, i, &max_ns);
        r->stall_max_ns = max_ns > r->stall_max_ns ? max_ns : r->stall_max_ns;
    }
    r->hb_n = mrt_workload_handbacks(wl, r->hb_why, r->hb_count, 16);
    r->nproblems = mrt_workload_verdict(wl, r->problems, sizeof r->problems);
}

