/*
 * The metrics endpoint (mrt_metrics.h): the renderer on a synthetic
 * snapshot (cumulative buckets, labels, the size bound at its worst), the
 * endpoint parser, and the server's life cycle on a real socket.
 */
#include "meshrt/mrt_metrics.h"
#include "runtime/metrics_internal.h"

#include "tests/check_main.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static bool has_line(const char *page, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = page; (p = strstr(p, line)) != NULL; p++)
        if ((p == page || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

START_TEST(prometheus_page_from_snapshot)
{
    mrt_metrics_snap s;
    ck_assert_int_eq(mrt_metrics_snap_alloc(&s, 2), MRT_OK);
    s.st[1].compute.delivered = 42;
    s.st[0].compute.hosted = 3;
    s.st[1].stall_max_ns = 50000000;
    s.lb = (mrt_balancer_counters){ .published = 9, .retired = 8, .freed = 7, .breaker_reports = 2 };
    mrt_hist *h = &s.hist[1 * MRT_RT_HIST_KINDS + MRT_RT_HIST_ROUTE_DELIVER];
    uint64_t v[] = { 1, 5, 100, 1000 };
    for (unsigned i = 0; i < 4; i++)
        mrt_hist_record(h, v[i]);
    static char page[1 << 17];
    size_t n = mrt_metrics_render_snap(&s, MRT_METRICS_PROMETHEUS, page, sizeof page);
    ck_assert_uint_lt(n, sizeof page);
    ck_assert_uint_eq(strlen(page), n);
    ck_assert(has_line(page, "# TYPE meshrt_compute_delivered_total counter"));
    ck_assert(has_line(page, "meshrt_compute_delivered_total{shard=\"1\"} 42"));
    ck_assert(has_line(page, "meshrt_compute_delivered_total{shard=\"0\"} 0"));
    ck_assert(has_line(page, "# TYPE meshrt_compute_hosted gauge"));
    ck_assert(has_line(page, "meshrt_compute_hosted{shard=\"0\"} 3"));
    ck_assert(has_line(page, "meshrt_stall_max_seconds{shard=\"1\"} 0.050000000"));
    /* Cumulative at le = 2^k - 1 ns, in seconds. */
    ck_assert(has_line(page, "# TYPE meshrt_route_deliver_seconds histogram"));
    ck_assert(has_line(page, "meshrt_route_deliver_seconds_bucket{shard=\"1\",le=\"3e-09\"} 1"));
    ck_assert(has_line(page, "meshrt_route_deliver_seconds_bucket{shard=\"1\",le=\"7e-09\"} 2"));
    ck_assert(has_line(page, "meshrt_route_deliver_seconds_bucket{shard=\"1\",le=\"6.3e-08\"} 2"));
    ck_assert(has_line(page, "meshrt_route_deliver_seconds_bucket{shard=\"1\",le=\"1.27e-07\"} 3"));
    ck_assert(has_line(page, "meshrt_route_deliver_seconds_bucket{shard=\"1\",le=\"1.023e-06\"} 4"));
    ck_assert(has_line(page, "meshrt_route_deliver_seconds_bucket{shard=\"1\",le=\"+Inf\"} 4"));
    ck_assert(has_line(page, "meshrt_route_deliver_seconds_count{shard=\"1\"} 4"));
    ck_assert(has_line(page, "meshrt_route_deliver_seconds_sum{shard=\"1\"} 0.000001106"));
    ck_assert(has_line(page, "meshrt_route_deliver_seconds_bucket{shard=\"0\",le=\"+Inf\"} 0"));
    ck_assert(has_line(page, "meshrt_ring_occupancy_bucket{shard=\"0\",le=\"3\"} 0"));
    /* The balancer control plane's counters: one per process. */
    ck_assert(has_line(page, "# TYPE meshrt_lb_snapshots_published_total counter"));
    ck_assert(has_line(page, "meshrt_lb_snapshots_published_total 9"));
    ck_assert(has_line(page, "meshrt_lb_snapshots_retired_total 8"));
    ck_assert(has_line(page, "meshrt_lb_snapshots_freed_total 7"));
    ck_assert(has_line(page, "meshrt_lb_breaker_reports_total 2"));
    /* Every sample line is NAME{labels} VALUE or NAME VALUE; every family has HELP and TYPE. */
    unsigned help = 0, type = 0;
    for (char *line = page, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        if (strncmp(line, "# HELP ", 7) == 0) {
            help++;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            type++;
            continue;
        }
        ck_assert_msg(strncmp(line, "meshrt_", 7) == 0, "%.60s", line);
        char *sp = memchr(line, ' ', (size_t)(nl - line));
        ck_assert_ptr_nonnull(sp);
        ck_assert_ptr_eq(memchr(sp + 1, ' ', (size_t)(nl - sp - 1)), NULL);
    }
    ck_assert_uint_eq(help, type);
    ck_assert_uint_gt(help, 40);
    /* The same data as JSON. */
    n = mrt_metrics_render_snap(&s, MRT_METRICS_JSON, page, sizeof page);
    ck_assert_uint_lt(n, sizeof page);
    ck_assert_ptr_nonnull(strstr(page, "\"compute_delivered_total\":42"));
    ck_assert_ptr_nonnull(strstr(page, "\"route_deliver_ns\":{\"count\":4,\"sum\":1106,"));
    ck_assert_ptr_nonnull(strstr(page, "[3,1],[7,2]"));
    ck_assert_ptr_nonnull(strstr(page, "\"lb_snapshots_published_total\":9,"));
    ck_assert_ptr_nonnull(strstr(page, "\"lb_breaker_reports_total\":2,\"shard\":["));
    mrt_metrics_snap_free(&s);
}
END_TEST

START_TEST(page_fits_the_bound_at_its_worst)
{
    mrt_metrics_snap s;
    ck_assert_int_eq(mrt_metrics_snap_alloc(&s, MRT_MAX_SHARDS), MRT_OK);
    memset(s.st, 0xff, sizeof(*s.st) * MRT_MAX_SHARDS);
    memset(s.hist, 0xff, sizeof(*s.hist) * MRT_MAX_SHARDS * MRT_RT_HIST_KINDS);
    for (unsigned i = 0; i < MRT_MAX_SHARDS; i++) {
        s.st[i].shard.perf_set = MRT_PERF_SET_HARDWARE;
        s.st[i].shard.perf_interval_ns = 1;
        s.st[i].shard.perf_user_only = true; /* a bool of 0xff is not a value (UBSan) */
    }
    s.renders = s.requests = s.tsc_hz = UINT64_MAX;
    memset(&s.lb, 0xff, sizeof s.lb);
    size_t bound = mrt_metrics_render_bound(MRT_MAX_SHARDS);
    for (int f = 0; f < 2; f++) {
        size_t n = mrt_metrics_render_snap(&s, (mrt_metrics_format)f, NULL, 0);
        ck_assert_msg(n < bound, "format %d: %zu bytes, bound %zu", f, n, bound);
    }
    /* A small buffer is cut and terminated, the full length still returned. */
    char small[64];
    size_t n = mrt_metrics_render_snap(&s, MRT_METRICS_PROMETHEUS, small, sizeof small);
    ck_assert_uint_gt(n, sizeof small);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    mrt_metrics_snap_free(&s);
}
END_TEST

START_TEST(endpoint_syntax)
{
    static const struct {
        const char *ep;
        int rc;
        bool loopback;
    } cases[] = {
        { "127.0.0.1:9100", MRT_OK, true },    { "127.1.2.3:0", MRT_OK, true },
        { "localhost:65535", MRT_OK, true },   { "[::1]:9100", MRT_OK, true },
        { "0.0.0.0:9100", MRT_OK, false },     { "192.168.1.1:80", MRT_OK, false },
        { "[::]:9100", MRT_OK, false },        { "127.0.0.1", MRT_RT_EMETRICS_ADDR, false },
        { "127.0.0.1:", MRT_RT_EMETRICS_ADDR, false }, { ":9100", MRT_RT_EMETRICS_ADDR, false },
        { "127.0.0.1:65536", MRT_RT_EMETRICS_ADDR, false },
        { "127.0.0.1:-1", MRT_RT_EMETRICS_ADDR, false },
        { "example.com:80", MRT_RT_EMETRICS_ADDR, false },
        { "::1:9100", MRT_RT_EMETRICS_ADDR, false }, { "[::1:9100", MRT_RT_EMETRICS_ADDR, false },
        { "127.0.0.1:99999999999999999999", MRT_RT_EMETRICS_ADDR, false },
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool lo = !cases[i].loopback;
        int rc = mrt_metrics_endpoint_check(cases[i].ep, &lo);
        ck_assert_msg(rc == cases[i].rc, "%s: %d", cases[i].ep, rc);
        if (rc == MRT_OK)
            ck_assert_msg(lo == cases[i].loopback, "%s: loopback %d", cases[i].ep, lo);
    }
    ck_assert_int_eq(mrt_metrics_endpoint_check(NULL, NULL), MRT_RT_EMETRICS_ADDR);
    ck_assert_str_ne(mrt_strerror(MRT_RT_EMETRICS_INUSE), "unknown status");
    ck_assert_str_ne(mrt_strerror(MRT_RT_EMETRICS_ADDR), "unknown status");
    ck_assert_str_ne(mrt_strerror(MRT_RT_EMETRICS_REMOTE), "unknown status");
    ck_assert_str_ne(mrt_strerror(MRT_RT_EMETRICS_LISTEN), "unknown status");
}
END_TEST

/* GET path from 127.0.0.1:port; the status code (-1: no connection), the reply into buf. */
static int get(unsigned port, const char *path, char *buf, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    int code = -1;
    sscanf(buf, "HTTP/%*d.%*d %d", &code);
    return code;
}

START_TEST(serve_stop_and_serve_again)
{
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.shards = 2;
    cfg.allow_unbound = true;
    char err[256];
    mrt_runtime *rt = NULL, *rt2 = NULL;
    ck_assert_msg(mrt_runtime_create(&cfg, &rt, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_msg(mrt_runtime_create(&cfg, &rt2, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_uint_eq(mrt_runtime_metrics_port(rt), 0);
    ck_assert_int_eq(mrt_runtime_metrics_start(rt, "0.0.0.0:0", NULL, err, sizeof err),
                     MRT_RT_EMETRICS_REMOTE);
    ck_assert_int_eq(mrt_runtime_metrics_start(rt, "bogus", NULL, err, sizeof err),
                     MRT_RT_EMETRICS_ADDR);
    ck_assert_msg(mrt_runtime_metrics_start(rt, "127.0.0.1:0", NULL, err, sizeof err) == MRT_OK,
                  "%s", err);
    unsigned port = mrt_runtime_metrics_port(rt);
    ck_assert_uint_gt(port, 0);
    ck_assert_int_eq(mrt_runtime_metrics_start(rt, "127.0.0.1:0", NULL, err, sizeof err),
                     MRT_ESTATE);
    char ep[32];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);
    ck_assert_int_eq(mrt_runtime_metrics_start(rt2, ep, NULL, err, sizeof err),
                     MRT_RT_EMETRICS_INUSE);
    ck_assert_ptr_nonnull(strstr(err, "in use"));
    static char buf[1 << 18];
    ck_assert_int_eq(get(port, "/metrics", buf, sizeof buf), 200);
    ck_assert_ptr_nonnull(strstr(buf, "\nmeshrt_shards 2\n"));
    ck_assert_ptr_nonnull(strstr(buf, "text/plain; version=0.0.4"));
    ck_assert_int_eq(get(port, "/stats.json", buf, sizeof buf), 200);
    ck_assert_ptr_nonnull(strstr(buf, "{\"shards\":2,"));
    ck_assert_int_eq(get(port, "/", buf, sizeof buf), 404);
    /* The same page through the embedder's render call. */
    long n = mrt_runtime_metrics_render(rt, MRT_METRICS_PROMETHEUS, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_int_lt(n, (long)sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "meshrt_compute_hosted{shard=\"1\"} 0\n"));
    /* The runtime published its first balancer snapshot at create; the page says so. */
    mrt_balancer_counters bc;
    mrt_runtime_balancer_stats(rt, &bc);
    ck_assert_uint_ge(bc.published, 1);
    char want[80];
    snprintf(want, sizeof want, "\nmeshrt_lb_snapshots_published_total %llu\n",
             (unsigned long long)bc.published);
    ck_assert_ptr_nonnull(strstr(buf, want));
    /* Stop closes the listening socket: the port is free for another runtime at once. */
    ck_assert_int_eq(mrt_runtime_metrics_stop(rt), MRT_OK);
    ck_assert_int_eq(mrt_runtime_metrics_stop(rt), MRT_OK);
    ck_assert_uint_eq(mrt_runtime_metrics_port(rt), 0);
    ck_assert_int_eq(get(port, "/metrics", buf, sizeof buf), -1);
    ck_assert_msg(mrt_runtime_metrics_start(rt2, ep, NULL, err, sizeof err) == MRT_OK, "%s", err);
    ck_assert_int_eq(get(port, "/metrics", buf, sizeof buf), 200);
    mrt_runtime_destroy(rt);
    mrt_runtime_destroy(rt2); /* stops its endpoint */
    ck_assert_int_eq(get(port, "/metrics", buf, sizeof buf), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, prometheus_page_from_snapshot);
    tcase_add_test(tc, page_fits_the_bound_at_its_worst);
    tcase_add_test(tc, endpoint_syntax);
    tcase_add_test(tc, serve_stop_and_serve_again);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
