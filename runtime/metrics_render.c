/*
 * The metrics pages: one table of per-shard series, rendered as Prometheus
 * text exposition 0.0.4 or as JSON, from a snapshot of the published stats.
 * Control plane only (snprintf into a caller's buffer; no allocation).
 */
#include "runtime/metrics_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One per-shard series: a field of mrt_runtime_shard_stats. */
typedef struct series_def {
    const char *name;   /* without the meshrt_ prefix; counters end in _total */
    const char *help;
    unsigned short off; /* offsetof(mrt_runtime_shard_stats, ...) */
    unsigned char counter;
    unsigned char ns;   /* a value in ns, exported in seconds */
} series_def;

#define C(n, f, h) { n, h, (unsigned short)offsetof(mrt_runtime_shard_stats, f), 1, 0 }
#define G(n, f, h) { n, h, (unsigned short)offsetof(mrt_runtime_shard_stats, f), 0, 0 }
static const series_def series[] = {
    C("stats_publications_total", version, "Publications of the shard's stats block."),
    /* shard: rings and dispatch */
    C("shard_sent_total", shard.sent, "Data messages accepted for sending."),
    C("shard_handled_total", shard.handled, "Data messages dequeued and dispatched."),
    C("shard_handed_back_total", shard.handed_back[MRT_HB_NO_HANDLER],
      "Data messages handed back (no handler)."),
    C("shard_control_handled_total", shard.control_handled, "Control messages handled."),
    C("shard_ring_full_total", shard.ring_full, "Flushes that found the destination ring full."),
    C("shard_send_refused_total", shard.send_refused, "Sends refused because the ring was full."),
    C("shard_injected_total", shard.injected, "Messages handled from the shard's ingress ring."),
    C("shard_iterations_total", shard.iterations, "Poll iterations."),
    C("shard_busy_cycles_total", shard.busy_cycles, "TSC cycles in iterations that did work."),
    C("shard_idle_cycles_total", shard.idle_cycles, "TSC cycles in empty iterations."),
    C("shard_idle_waits_total", shard.sleeps, "Idle back-off waits entered."),
    C("shard_idle_wakeups_total", shard.wakeups, "Idle waits a producer ended early (idle wake)."),
    G("shard_pending", shard.pending, "Messages pending for other shards."),
    /* services: events, buffers, completions */
    C("svc_sent_total", svc.sent, "Events accepted for sending."),
    C("svc_routed_total", svc.routed, "Events sent by a balancer selection."),
    C("svc_refused_full_total", svc.refused_full, "Sends refused: forward ring and queue full."),
    C("svc_refused_pool_total", svc.refused_pool, "Sends refused: buffer pool empty."),
    C("svc_lb_errors_total", svc.lb_errors, "Selections that failed."),
    C("svc_received_total", svc.received, "Event messages received."),
    C("svc_delivered_total", svc.delivered, "Events delivered to their daemon."),
    C("svc_deliver_errors_total", svc.deliver_errors, "Deliveries the daemon refused."),
    C("svc_completions_total", svc.completions, "Selections completed on this shard."),
    C("svc_completions_stale_total", svc.completions_stale, "Completions matching no selection."),
    C("svc_egressed_total", svc.egressed, "Outputs pushed to egress."),
    C("svc_egress_refused_total", svc.egress_refused, "Egress pushes refused."),
    G("svc_inflight", svc.inflight, "Selections pending on this shard."),
    G("svc_pool_out", svc.pool_out, "Pool buffers of this shard held elsewhere."),
    G("svc_backlog", svc.backlog, "Returns and completions waiting to be sent."),
    /* compute: daemons */
    G("compute_hosted", compute.hosted, "Daemons hosted."),
    C("compute_injected_total", compute.injected, "Events accepted from ingress."),
    C("compute_delivered_total", compute.delivered, "Events a daemon processed."),
    C("compute_emitted_total", compute.emitted, "Outputs stamped."),
    C("compute_routed_daemon_total", compute.routed_daemon, "Outputs sent to a subscribed daemon."),
    C("compute_routed_set_total", compute.routed_set, "Outputs sent to the balancer-routed set."),
    C("compute_egressed_total", compute.egressed, "Outputs handed to egress."),
    C("compute_deferred_total", compute.deferred, "Sends deferred for backpressure."),
    C("compute_pushed_back_total", compute.pushed_back, "Admissions refused for deferral room."),
    C("compute_handed_back_total", compute.handed_back, "Events or outputs handed back."),
    C("compute_daemon_errors_total", compute.daemon_errors, "Deliveries a daemon refused."),
    C("compute_completions_total", compute.completions, "Completions applied."),
    C("compute_unsubscribed_total", compute.unsubscribed, "Outputs with no subscription."),
    G("compute_inflight", compute.inflight, "Selections awaiting their completion."),
    G("compute_buffers_out", compute.buffers_out, "Pool buffers held elsewhere."),
    /* balancer, this shard's */
    C("lb_selects_total", lb.selects, "Successful balancer selections."),
    C("lb_select_errors_total", lb.select_errors, "Balancer selections that failed."),
    C("lb_completes_total", lb.completes, "Completions accepted, stale included."),
    C("lb_stale_completes_total", lb.stale_completes, "Stale completions."),
    G("lb_outstanding", lb.outstanding, "Selections not yet completed."),
    C("lb_breaker_opens_total", lb.breaker_opens, "Circuit breaker openings."),
    C("lb_probes_total", lb.probes, "Half-open probes admitted."),
    C("lb_probes_reclaimed_total", lb.probes_reclaimed, "Probes never completed."),
    C("lb_reports_dropped_total", lb.reports_dropped, "Breaker reports dropped."),
    C("lb_skipped_candidates_total", lb.skipped_candidates, "Candidates passed over."),
    C("lb_adopts_total", lb.adopts, "Balancer snapshots adopted."),
    /* daemon hosts, summed over the shard's */
    C("host_processed_total", hosts.processed, "Process calls that succeeded."),
    C("host_emitted_total", hosts.emitted, "Outputs stamped by hosts."),
    C("host_errors_total", hosts.errors, "Delivers that returned an error."),
    C("host_spills_total", hosts.spills, "Output payloads that did not fit the region."),
    /* stall detector */
    C("stalls_total", stalls, "Poll iterations reported as stalled."),
    { "stall_max_seconds", "Longest stalled iteration so far.",
      (unsigned short)offsetof(mrt_runtime_shard_stats, stall_max_ns), 0, 1 },
};
#undef C
#undef G
enum { SERIES = sizeof series / sizeof series[0] };

static const char *hist_help(const char *name)
{
    if (strcmp(name, "route_deliver_ns") == 0)
        return "Time from a routed send to its delivery.";
    if (strcmp(name, "completion_rtt_ns") == 0)
        return "Time from a selection to its completion.";
    if (strcmp(name, "iteration_busy_ns") == 0)
        return "Time of each poll iteration that did work.";
    if (strcmp(name, "ring_occupancy") == 0)
        return "Messages waiting in the inbound rings, once per iteration.";
    return "A per-shard histogram.";
}

/* Bounded appender: pos keeps counting past len, so the caller learns the size. */
typedef struct out {
    char *buf;
    size_t len, pos;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *at = o->pos < o->len ? o->buf + o->pos : NULL;
    int n = vsnprintf(at, at ? o->len - o->pos : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->pos += (size_t)n;
}

/* The hot paths (a line per shard per series, 40 per histogram) avoid printf. */
static void put_mem(out *o, const char *s, size_t n)
{
    if (o->pos < o->len)
        memcpy(o->buf + o->pos, s, o->pos + n < o->len ? n : o->len - o->pos);
    o->pos += n;
}

static void put_str(out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void put_u64(out *o, uint64_t v)
{
    char d[20];
    unsigned n = 0;
    do
        d[sizeof d - ++n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put_mem(o, d + sizeof d - n, n);
}

/* ns as seconds, exactly: 1234567890 -> 1.234567890. */
static void put_seconds(out *o, uint64_t ns)
{
    put_u64(o, ns / 1000000000u);
    char f[10] = ".";
    uint64_t r = ns % 1000000000u;
    for (int k = 9; k >= 1; k--, r /= 10)
        f[k] = (char)('0' + r % 10);
    put_mem(o, f, sizeof f);
}

/* meshrt_NAME{shard="i"[,le="LE"]} */
static void put_head(out *o, const char *name, const char *suffix, unsigned shard, const char *le)
{
    put_str(o, "meshrt_");
    put_str(o, name);
    put_str(o, suffix);
    put_str(o, "{shard=\"");
    put_u64(o, shard);
    if (le) {
        put_str(o, "\",le=\"");
        put_str(o, le);
    }
    put_str(o, "\"} ");
}

static void terminate(out *o)
{
    if (o->len)
        o->buf[o->pos < o->len ? o->pos : o->len - 1] = '\0';
}

static uint64_t field(const mrt_runtime_shard_stats *st, const series_def *d)
{
    uint64_t v;
    memcpy(&v, (const char *)st + d->off, sizeof v);
    return v;
}

/* Histogram names: "route_deliver_ns" -> "route_deliver_seconds" (scaled); others as they are. */
static bool hist_export_name(mrt_runtime_hist_kind k, char *name, size_t len)
{
    const char *raw = mrt_runtime_hist_name(k);
    size_t n = raw ? strlen(raw) : 0;
    if (n > 3 && strcmp(raw + n - 3, "_ns") == 0) {
        snprintf(name, len, "%.*s_seconds", (int)(n - 3), raw);
        return true;
    }
    snprintf(name, len, "%s", raw ? raw : "hist");
    return false;
}

#define COARSE_MIN 2  /* first bound 2^2 - 1 = 3 */
#define COARSE_MAX MRT_HIST_MAX_EXP

/* Cumulative counts at le = 2^k - 1, k = COARSE_MIN..COARSE_MAX; returns the total. */
static uint64_t coarse(const mrt_hist *h, uint64_t cum[COARSE_MAX + 1])
{
    uint64_t c = 0;
    unsigned b = 0;
    for (unsigned k = COARSE_MIN; k <= COARSE_MAX; k++) {
        uint64_t lim = (UINT64_C(1) << k) - 1;
        for (; b < MRT_HIST_BUCKETS && mrt_hist_upper(b) <= lim; b++)
            c += h->bucket[b];
        cum[k] = c;
    }
    for (; b < MRT_HIST_BUCKETS; b++)
        c += h->bucket[b];
    return c;
}

static const mrt_hist *hist_of(const mrt_metrics_snap *s, unsigned i, unsigned k)
{
    return &s->hist[(size_t)i * MRT_RT_HIST_KINDS + k];
}

/* The balancer control plane's counters: one per process, no shard label. */
#define LB(n, f, h) { n, h, (unsigned short)offsetof(mrt_balancer_counters, f), 1, 0 }
static const series_def lb_series[] = {
    LB("lb_snapshots_published_total", published, "Balancer snapshots published to the shards."),
    LB("lb_snapshots_retired_total", retired, "Balancer snapshots replaced by a newer one."),
    LB("lb_snapshots_freed_total", freed, "Retired snapshots freed once every shard had moved on."),
    LB("lb_breaker_reports_total", breaker_reports,
       "Breaker openings reported by the shards and applied."),
};
#define LB_SERIES (sizeof lb_series / sizeof lb_series[0])

static uint64_t lb_value(const mrt_balancer_counters *c, unsigned k)
{
    uint64_t v;
    memcpy(&v, (const char *)c + lb_series[k].off, sizeof v);
    return v;
}

static void prom_head(out *o, const char *name, const char *help, const char *type)
{
    put(o, "# HELP meshrt_%s %s\n# TYPE meshrt_%s %s\n", name, help, name, type);
}

static void render_prom(const mrt_metrics_snap *s, out *o)
{
    prom_head(o, "shards", "Shards of the runtime.", "gauge");
    put(o, "meshrt_shards %u\n", s->shards);
    prom_head(o, "tsc_hz", "Frequency of the cycle counter the busy and idle cycles count.",
              "gauge");
    put(o, "meshrt_tsc_hz %llu\n", (unsigned long long)s->tsc_hz);
    prom_head(o, "metrics_renders_total", "Metrics pages rendered.", "counter");
    put(o, "meshrt_metrics_renders_total %llu\n", (unsigned long long)s->renders);
    prom_head(o, "metrics_requests_total", "HTTP requests the metrics endpoint answered.",
              "counter");
    put(o, "meshrt_metrics_requests_total %llu\n", (unsigned long long)s->requests);
    for (unsigned k = 0; k < LB_SERIES; k++) {
        prom_head(o, lb_series[k].name, lb_series[k].help, "counter");
        put(o, "meshrt_%s %llu\n", lb_series[k].name, (unsigned long long)lb_value(&s->lb, k));
    }
    for (unsigned d = 0; d < SERIES; d++) {
        const series_def *sd = &series[d];
        prom_head(o, sd->name, sd->help, sd->counter ? "counter" : "gauge");
        for (unsigned i = 0; i < s->shards; i++) {
            uint64_t v = field(&s->st[i], sd);
            put_head(o, sd->name, "", i, NULL);
            if (sd->ns)
                put_seconds(o, v);
            else
                put_u64(o, v);
            put_mem(o, "\n", 1);
        }
    }
    /* Perf counters of each shard's last complete interval, as rates. */
    prom_head(o, "perf_per_second",
              "Perf counter rate over the shard's last stats interval (set: hardware or "
              "software).",
              "gauge");
    for (unsigned i = 0; i < s->shards; i++) {
        const mrt_shard_stats *sh = &s->st[i].shard;
        if (sh->perf_set == MRT_PERF_SET_NONE || sh->perf_interval_ns == 0)
            continue;
        for (unsigned e = 0; e < 4; e++) {
            const char *ev = mrt_perf_event_name((mrt_perf_set)sh->perf_set, e);
            if (ev == NULL)
                continue;
            put(o, "meshrt_perf_per_second{shard=\"%u\",set=\"%s\",event=\"%s\"} %.6g\n", i,
                mrt_perf_set_name((mrt_perf_set)sh->perf_set), ev,
                (double)sh->perf[e] * 1e9 / (double)sh->perf_interval_ns);
        }
    }
    for (unsigned k = 0; k < MRT_RT_HIST_KINDS; k++) {
        char name[96];
        bool ns = hist_export_name((mrt_runtime_hist_kind)k, name, sizeof name);
        prom_head(o, name, hist_help(mrt_runtime_hist_name((mrt_runtime_hist_kind)k)),
                  "histogram");
        for (unsigned i = 0; i < s->shards; i++) {
            const mrt_hist *h = hist_of(s, i, k);
            uint64_t cum[COARSE_MAX + 1];
            uint64_t total = coarse(h, cum);
            for (unsigned b = COARSE_MIN; b <= COARSE_MAX; b++) {
                put_head(o, name, "_bucket", i, ns ? s->le_s[b] : s->le[b]);
                put_u64(o, cum[b]);
                put_mem(o, "\n", 1);
            }
            put_head(o, name, "_bucket", i, "+Inf");
            put_u64(o, total);
            put_mem(o, "\n", 1);
            put_head(o, name, "_sum", i, NULL);
            if (ns)
                put_seconds(o, h->sum);
            else
                put_u64(o, h->sum);
            put_mem(o, "\n", 1);
            put_head(o, name, "_count", i, NULL);
            put_u64(o, total);
            put_mem(o, "\n", 1);
        }
    }
}

static void render_json(const mrt_metrics_snap *s, out *o)
{
    put(o, "{\"shards\":%u,\"tsc_hz\":%llu,\"metrics_renders_total\":%llu,"
           "\"metrics_requests_total\":%llu,",
        s->shards, (unsigned long long)s->tsc_hz, (unsigned long long)s->renders,
        (unsigned long long)s->requests);
    for (unsigned k = 0; k < LB_SERIES; k++)
        put(o, "\"%s\":%llu,", lb_series[k].name, (unsigned long long)lb_value(&s->lb, k));
    put_str(o, "\"shard\":[");
    for (unsigned i = 0; i < s->shards; i++) {
        const mrt_runtime_shard_stats *st = &s->st[i];
        put(o, "%s{\"shard\":%u", i ? "," : "", i);
        for (unsigned d = 0; d < SERIES; d++) {
            uint64_t v = field(st, &series[d]);
            put_str(o, ",\"");
            put_str(o, series[d].name);
            put_str(o, "\":");
            if (series[d].ns)
                put_seconds(o, v);
            else
                put_u64(o, v);
        }
        const mrt_shard_stats *sh = &st->shard;
        put(o, ",\"perf\":{\"set\":\"%s\",\"user_only\":%s,\"interval_s\":%.6f,\"per_second\":{",
            mrt_perf_set_name((mrt_perf_set)sh->perf_set), sh->perf_user_only ? "true" : "false",
            (double)sh->perf_interval_ns * 1e-9);
        for (unsigned e = 0, n = 0; sh->perf_interval_ns && e < 4; e++) {
            const char *ev = mrt_perf_event_name((mrt_perf_set)sh->perf_set, e);
            if (ev)
                put(o, "%s\"%s\":%.6g", n++ ? "," : "", ev,
                    (double)sh->perf[e] * 1e9 / (double)sh->perf_interval_ns);
        }
        put(o, "}},\"hist\":{");
        for (unsigned k = 0; k < MRT_RT_HIST_KINDS; k++) {
            const mrt_hist *h = hist_of(s, i, k);
            uint64_t cum[COARSE_MAX + 1];
            uint64_t total = coarse(h, cum);
            put(o, "%s\"%s\":{\"count\":%llu,\"sum\":%llu,\"p50\":%llu,\"p99\":%llu,"
                   "\"p999\":%llu,\"buckets\":[",
                k ? "," : "", mrt_runtime_hist_name((mrt_runtime_hist_kind)k),
                (unsigned long long)total, (unsigned long long)h->sum,
                (unsigned long long)mrt_hist_quantile(h, 0.5),
                (unsigned long long)mrt_hist_quantile(h, 0.99),
                (unsigned long long)mrt_hist_quantile(h, 0.999));
            for (unsigned b = COARSE_MIN; b <= COARSE_MAX; b++) {
                put_str(o, b > COARSE_MIN ? ",[" : "[");
                put_str(o, s->le[b]);
                put_mem(o, ",", 1);
                put_u64(o, cum[b]);
                put_mem(o, "]", 1);
            }
            put(o, "]}");
        }
        put(o, "}}");
    }
    put(o, "]}\n");
}

size_t mrt_metrics_render_snap(const mrt_metrics_snap *s, mrt_metrics_format fmt, char *buf,
                               size_t len)
{
    out o = { buf, len, 0 };
    if (buf && len)
        buf[0] = '\0';
    if (fmt == MRT_METRICS_JSON)
        render_json(s, &o);
    else
        render_prom(s, &o);
    terminate(&o);
    return o.pos;
}

size_t mrt_metrics_render_bound(unsigned shards)
{
    /*
     * Worst case (every value 20 digits): headers ~200 B a series, ~100 B a
     * per-shard line; a histogram 41 lines of ~110 B per shard.
     */
    size_t per_shard = (SERIES + 8) * 112 + (size_t)MRT_RT_HIST_KINDS * 44 * 120;
    return 16384 + (SERIES + 8 + LB_SERIES + MRT_RT_HIST_KINDS) * 256 + (size_t)shards * per_shard;
}

int mrt_metrics_snap_alloc(mrt_metrics_snap *s, unsigned shards)
{
    memset(s, 0, sizeof(*s));
    s->st = calloc(shards ? shards : 1, sizeof(*s->st));
    s->hist = calloc((size_t)(shards ? shards : 1) * MRT_RT_HIST_KINDS, sizeof(*s->hist));
    if (s->st == NULL || s->hist == NULL) {
        mrt_metrics_snap_free(s);
        return MRT_ENOMEM;
    }
    s->shards = shards;
    s->tsc_hz = mrt_tsc_hz();
    for (unsigned k = COARSE_MIN; k <= COARSE_MAX; k++) {
        uint64_t le = (UINT64_C(1) << k) - 1;
        snprintf(s->le[k], sizeof s->le[k], "%llu", (unsigned long long)le);
        snprintf(s->le_s[k], sizeof s->le_s[k], "%.12g", (double)le * 1e-9);
    }
    return MRT_OK;
}

void mrt_metrics_snap_free(mrt_metrics_snap *s)
{
    free(s->st);
    free(s->hist);
    s->st = NULL;
    s->hist = NULL;
}

void mrt_metrics_snap_take(mrt_metrics_snap *s, const mrt_runtime *rt)
{
    mrt_runtime_balancer_stats(rt, &s->lb);
    for (unsigned i = 0; i < s->shards; i++) {
        if (mrt_runtime_stats_read(rt, i, &s->st[i]) != MRT_OK)
            memset(&s->st[i], 0, sizeof(s->st[i]));
        for (unsigned k = 0; k < MRT_RT_HIST_KINDS; k++) {
            mrt_hist *h = &s->hist[(size_t)i * MRT_RT_HIST_KINDS + k];
            if (mrt_runtime_hist_read(rt, (int)i, (mrt_runtime_hist_kind)k, h) != MRT_OK)
                memset(h, 0, sizeof(*h));
        }
    }
}

long mrt_runtime_metrics_render(const mrt_runtime *rt, mrt_metrics_format fmt, char *buf,
                                size_t len)
{
    if (rt == NULL || (buf == NULL && len > 0) ||
        (fmt != MRT_METRICS_PROMETHEUS && fmt != MRT_METRICS_JSON))
        return MRT_EINVAL;
    mrt_metrics_snap s;
    if (mrt_metrics_snap_alloc(&s, mrt_runtime_shards(rt)) != MRT_OK)
        return MRT_ENOMEM;
    mrt_metrics_snap_take(&s, rt);
    size_t n = mrt_metrics_render_snap(&s, fmt, buf, len);
    mrt_metrics_snap_free(&s);
    return (long)n;
}
