/*
 * meshrt top: attach to a running meshrt's metrics endpoint (mrt_metrics.h)
 * and show a per-shard table, refreshed every interval. Rates need two
 * scrapes; each frame is the difference between the last two. The page
 * parsed is our own /metrics exposition (one sample a line), so a small
 * purpose-built parser does: no HTTP or JSON library on the client side.
 */
#include "cli.h"

#include "meshrt/mrt_shard.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { TOP_OK = 0, TOP_LOST = 1, TOP_USAGE = 2 };

#define IO_TIMEOUT_MS 5000
#define PAGE_MAX (64u << 20)
#define LAT_MAX 48
#define ROWS_MAX 20 /* shard rows that fit 24 lines with the title, header, total, footer */

void mrt_cli_top_usage(FILE *f)
{
    fprintf(f,
            "usage: meshrt top [--once] [--interval S] ADDR:PORT\n"
            "\n"
            "Attach to `meshrt run --metrics ADDR:PORT` (or any embedder's\n"
            "mrt_runtime_metrics_start) and show one row per shard, refreshed every S\n"
            "seconds, within 80x24:\n"
            "  in/s, out/s  events daemons processed, outputs they emitted, per second\n"
            "  busy         share of the shard's cycles spent in iterations that did work\n"
            "  cyc/ev ins/ev cmiss/ev  cycles, instructions and cache misses per event, when\n"
            "               hardware counters are live; else, labelled software counters:\n"
            "  cpu/ev csw/s flt/s      task-clock ns per event, context switches and page\n"
            "               faults per second\n"
            "  ring         mean messages waiting in the shard's inbound rings\n"
            "  p99          99th percentile of route -> deliver latency over the interval\n"
            "  stalls       stalled poll iterations reported so far; daemons: hosted now\n"
            "\n"
            "  --once          print one frame (two scrapes S apart) and exit\n"
            "  --interval S    seconds between scrapes, 0.05..3600 (default: 1)\n"
            "  -h, --help      this text\n"
            "\n"
            "Exit status: 0 (--once printed, or SIGINT/SIGTERM), 1 when the endpoint cannot\n"
            "be reached or the connection is lost (said on stderr), 2 for bad usage.\n");
}

/* One shard's figures from one scrape. */
typedef struct shard_row {
    bool seen;
    double in, out, busy, idle, stalls, hosted;
    double ring_sum, ring_count;
    double lat_le[LAT_MAX], lat_cum[LAT_MAX];
    unsigned lat_n;
    double lat_count;
    int perf_set; /* 0 none, 1 hardware, 2 software */
    double perf[4];
} shard_row;

typedef struct scrape {
    unsigned shards;
    double t;
    shard_row row[MRT_MAX_SHARDS];
} scrape;

static const char *const hw_events[4] = { "cycles", "instructions", "cache_misses",
                                          "branch_misses" };
static const char *const sw_events[4] = { "task_clock_ns", "page_faults", "cpu_migrations",
                                          "context_switches" };

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* host and port of ADDR:PORT ([v6]:port too); false when it is not one. */
static bool split_endpoint(const char *ep, char *host, size_t hlen, char *port, size_t plen)
{
    const char *colon = strrchr(ep, ':');
    if (colon == NULL || colon == ep || colon[1] == '\0' || strlen(colon + 1) >= plen)
        return false;
    const char *h = ep;
    size_t n = (size_t)(colon - ep);
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return false;
        h++;
        n -= 2;
    }
    if (n >= hlen)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    strcpy(port, colon + 1);
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

/* Wait for fd to become ready for ev; false on timeout or error. */
static bool wait_fd(int fd, short ev)
{
    struct pollfd p = { .fd = fd, .events = ev };
    int r;
    do
        r = poll(&p, 1, IO_TIMEOUT_MS);
    while (r < 0 && errno == EINTR);
    return r == 1 && !(p.revents & POLLNVAL);
}

/*
 * GET path from host:port over HTTP/1.0. The body (NUL-terminated, malloc'd)
 * into *body; NULL and a reason in why on any failure.
 */
static char *http_get(const char *host, const char *port, const char *path, char *why,
                      size_t wlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    int gr = getaddrinfo(host, port, &hints, &ai);
    if (gr != 0) {
        snprintf(why, wlen, "%s", gai_strerror(gr));
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, wlen, "socket: %s", strerror(errno));
        freeaddrinfo(ai);
        return NULL;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (rc != 0 && errno != EINPROGRESS)
        soerr = errno;
    else if (rc != 0 && !wait_fd(fd, POLLOUT))
        soerr = ETIMEDOUT;
    else if (rc != 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr) {
        snprintf(why, wlen, "connect: %s", strerror(soerr));
        close(fd);
        return NULL;
    }
    char req[256];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n", path, host, port);
    for (int off = 0; off < rl;) {
        ssize_t w = send(fd, req + off, (size_t)(rl - off), MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLOUT))
            continue;
        if (w <= 0) {
            snprintf(why, wlen, "send: %s", w < 0 ? strerror(errno) : "closed");
            close(fd);
            return NULL;
        }
        off += (int)w;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL || len + 1 >= PAGE_MAX) {
            snprintf(why, wlen, buf ? "response too large" : "out of memory");
            break;
        }
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r == 0)
            goto done;
        if ((errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLIN))
            continue;
        snprintf(why, wlen, "receive: %s", errno == EAGAIN ? "timed out" : strerror(errno));
        break;
    }
    free(buf);
    close(fd);
    return NULL;
done:
    close(fd);
    buf[len] = '\0';
    int code = 0;
    char *body = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/%*d.%*d %d", &code) != 1 || body == NULL) {
        snprintf(why, wlen, "not an HTTP response");
        free(buf);
        return NULL;
    }
    if (code != 200) {
        snprintf(why, wlen, "HTTP status %d for %s", code, path);
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

/* Value of label `key` in a {k="v",...} block, into val; false when absent. */
static bool label(const char *labels, const char *key, char *val, size_t vlen)
{
    size_t kl = strlen(key);
    for (const char *p = labels; p && *p && *p != '}';) {
        while (*p == '{' || *p == ',' || *p == ' ')
            p++;
        const char *eq = strchr(p, '=');
        if (eq == NULL || eq[1] != '"')
            return false;
        bool match = (size_t)(eq - p) == kl && strncmp(p, key, kl) == 0;
        size_t n = 0;
        for (p = eq + 2; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (match && n + 1 < vlen)
                val[n++] = *p;
        }
        if (match) {
            val[n] = '\0';
            return true;
        }
        if (*p == '"')
            p++;
    }
    return false;
}

static void parse_sample(scrape *s, char *line)
{
    if (line[0] == '#' || line[0] == '\0' || strncmp(line, "meshrt_", 7) != 0)
        return;
    char *name = line + 7;
    char *labels = NULL, *rest = name + strcspn(name, "{ ");
    if (*rest == '{') {
        labels = rest + 1;
        char *close = strchr(rest, '}');
        if (close == NULL)
            return;
        *rest = '\0';
        rest = close + 1;
    } else if (*rest) {
        *rest++ = '\0';
    }
    char val[32];
    if (labels == NULL || !label(labels, "shard", val, sizeof val))
        return;
    char *end;
    unsigned long i = strtoul(val, &end, 10);
    if (*end || i >= MRT_MAX_SHARDS)
        return;
    double v = strtod(rest, &end);
    if (end == rest)
        return;
    shard_row *r = &s->row[i];
    r->seen = true;
    if (i + 1 > s->shards)
        s->shards = (unsigned)i + 1;
    if (strcmp(name, "compute_delivered_total") == 0)
        r->in = v;
    else if (strcmp(name, "compute_emitted_total") == 0)
        r->out = v;
    else if (strcmp(name, "shard_busy_cycles_total") == 0)
        r->busy = v;
    else if (strcmp(name, "shard_idle_cycles_total") == 0)
        r->idle = v;
    else if (strcmp(name, "stalls_total") == 0)
        r->stalls = v;
    else if (strcmp(name, "compute_hosted") == 0)
        r->hosted = v;
    else if (strcmp(name, "ring_occupancy_sum") == 0)
        r->ring_sum = v;
    else if (strcmp(name, "ring_occupancy_count") == 0)
        r->ring_count = v;
    else if (strcmp(name, "route_deliver_seconds_count") == 0)
        r->lat_count = v;
    else if (strcmp(name, "route_deliver_seconds_bucket") == 0 && r->lat_n < LAT_MAX &&
             label(labels, "le", val, sizeof val) && strcmp(val, "+Inf") != 0) {
        r->lat_le[r->lat_n] = strtod(val, NULL);
        r->lat_cum[r->lat_n++] = v;
    } else if (strcmp(name, "perf_per_second") == 0 && label(labels, "set", val, sizeof val)) {
        int set = strcmp(val, "hardware") == 0 ? 1 : strcmp(val, "software") == 0 ? 2 : 0;
        const char *const *names = set == 1 ? hw_events : sw_events;
        if (set == 0 || !label(labels, "event", val, sizeof val))
            return;
        for (unsigned e = 0; e < 4; e++)
            if (strcmp(val, names[e]) == 0) {
                r->perf_set = set;
                r->perf[e] = v;
            }
    }
}

/* One scrape of /metrics into *s; false with a reason in why. */
static bool take(const char *host, const char *port, scrape *s, char *why, size_t wlen)
{
    char *page = http_get(host, port, "/metrics", why, wlen);
    if (page == NULL)
        return false;
    memset(s, 0, sizeof(*s));
    s->t = mono_s();
    for (char *line = page, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        parse_sample(s, line);
    }
    free(page);
    if (s->shards == 0) {
        snprintf(why, wlen, "the page has no per-shard meshrt series");
        return false;
    }
    return true;
}

/* Seconds as ns/us/ms/s in at most 7 characters. */
static const char *human_s(char *buf, double s)
{
    if (!(s >= 0))
        return "-";
    if (s < 1e-6)
        snprintf(buf, 16, "%.0fns", s * 1e9);
    else if (s < 1e-3)
        snprintf(buf, 16, "%.1fus", s * 1e6);
    else if (s < 1)
        snprintf(buf, 16, "%.1fms", s * 1e3);
    else
        snprintf(buf, 16, "%.2fs", s);
    return buf;
}

/* p99 of the route -> deliver latencies recorded between the two scrapes (-1: none). */
static double p99_delta(const shard_row *a, const shard_row *b)
{
    double n = b->lat_count - a->lat_count;
    if (n <= 0 || a->lat_n != b->lat_n)
        return -1;
    for (unsigned k = 0; k < b->lat_n; k++)
        if (b->lat_cum[k] - a->lat_cum[k] >= 0.99 * n)
            return b->lat_le[k];
    return b->lat_n ? b->lat_le[b->lat_n - 1] : -1;
}

/* One row: shard label, then the columns. */
static void print_row(FILE *f, const char *who, const shard_row *a, const shard_row *b, double dt,
                      int set)
{
    char c[9][16];
    double in = (b->in - a->in) / dt, out = (b->out - a->out) / dt;
    double cyc = (b->busy - a->busy) + (b->idle - a->idle);
    double busy = cyc > 0 ? 100.0 * (b->busy - a->busy) / cyc : -1;
    const char *p[3] = { "-", "-", "-" };
    if (set == 1 && b->perf_set == 1 && in > 0) {
        p[0] = mrt_cli_human(c[0], b->perf[0] / in);
        p[1] = mrt_cli_human(c[1], b->perf[1] / in);
        snprintf(c[2], 16, "%.2f", b->perf[2] / in);
        p[2] = c[2];
    } else if (set == 2 && b->perf_set == 2) {
        p[0] = in > 0 ? mrt_cli_human(c[0], b->perf[0] / in) : "-";
        p[1] = mrt_cli_human(c[1], b->perf[3]);
        p[2] = mrt_cli_human(c[2], b->perf[1]);
    }
    double rn = b->ring_count - a->ring_count;
    char busy_s[16];
    if (busy >= 0)
        snprintf(busy_s, sizeof busy_s, "%.0f%%", busy);
    else
        strcpy(busy_s, "-");
    fprintf(f, "%-5s%7s%7s%6s%8s%8s%9s%6s%8s%7s%8s\n", who, mrt_cli_human(c[3], in),
            mrt_cli_human(c[4], out), busy_s, p[0], p[1], p[2],
            rn > 0 ? mrt_cli_human(c[5], (b->ring_sum - a->ring_sum) / rn) : "-",
            human_s(c[6], p99_delta(a, b)), mrt_cli_human(c[7], b->stalls),
            mrt_cli_human(c[8], b->hosted));
}

static void frame(FILE *f, const char *ep, const scrape *a, const scrape *b, bool clear)
{
    double dt = b->t - a->t;
    if (dt <= 0)
        dt = 1e-9;
    int set = 0;
    for (unsigned i = 0; i < b->shards; i++)
        if (b->row[i].perf_set > set)
            set = b->row[i].perf_set;
    if (clear)
        fputs("\033[H\033[2J", f);
    time_t now = time(NULL);
    struct tm tm;
    char clock[16];
    strftime(clock, sizeof clock, "%H:%M:%S", localtime_r(&now, &tm));
    fprintf(f, "meshrt top %.30s  %u shard%s  over %.2f s  %s\n", ep, b->shards,
            b->shards == 1 ? "" : "s", dt, clock);
    fprintf(f, "%-5s%7s%7s%6s%8s%8s%9s%6s%8s%7s%8s\n", "shard", "in/s", "out/s", "busy",
            set == 2 ? "cpu/ev" : "cyc/ev", set == 2 ? "csw/s" : "ins/ev",
            set == 2 ? "flt/s" : "cmiss/ev", "ring", "p99", "stalls", "daemons");
    shard_row ta = { 0 }, tb = { 0 };
    unsigned shown = 0;
    for (unsigned i = 0; i < b->shards; i++) {
        const shard_row *ra = &a->row[i], *rb = &b->row[i];
        if (!rb->seen)
            continue;
        ta.in += ra->in, tb.in += rb->in, ta.out += ra->out, tb.out += rb->out;
        ta.busy += ra->busy, tb.busy += rb->busy, ta.idle += ra->idle, tb.idle += rb->idle;
        ta.ring_sum += ra->ring_sum, tb.ring_sum += rb->ring_sum;
        ta.ring_count += ra->ring_count, tb.ring_count += rb->ring_count;
        tb.stalls += rb->stalls, tb.hosted += rb->hosted;
        if (shown < ROWS_MAX - (b->shards > ROWS_MAX)) {
            char who[12];
            snprintf(who, sizeof who, "%u", i);
            print_row(f, who, ra, rb, dt, set);
            shown++;
        }
    }
    if (shown < b->shards)
        fprintf(f, "  ... %u more shards (in the total)\n", b->shards - shown);
    print_row(f, "total", &ta, &tb, dt, 0);
    fprintf(f, "counters: %s\n",
            set == 1   ? "hardware (perf)"
            : set == 2 ? "software (perf; hardware counters not available)"
                       : "none (no perf counter set open)");
    fflush(f);
}

int mrt_cli_top(int argc, char **argv)
{
    bool once = false;
    double interval = 1;
    const char *ep = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            mrt_cli_top_usage(stdout);
            return TOP_OK;
        } else if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            char *end;
            interval = strtod(argv[++i], &end);
            if (*end || !(interval >= 0.05 && interval <= 3600)) {
                fprintf(stderr, "meshrt top: --interval needs seconds in 0.05..3600, got '%s'\n",
                        argv[i]);
                return TOP_USAGE;
            }
        } else if (argv[i][0] != '-' && ep == NULL) {
            ep = argv[i];
        } else {
            fprintf(stderr, "meshrt top: unexpected argument '%s'\n(see `meshrt top --help`)\n",
                    argv[i]);
            return TOP_USAGE;
        }
    }
    char host[128], port[8], why[256] = "";
    if (ep == NULL || !split_endpoint(ep, host, sizeof host, port, sizeof port)) {
        fprintf(stderr, "meshrt top: needs ADDR:PORT, the endpoint of `meshrt run --metrics`\n"
                        "(see `meshrt top --help`)\n");
        return TOP_USAGE;
    }
    static scrape s[2];
    if (!take(host, port, &s[0], why, sizeof why)) {
        fprintf(stderr, "meshrt top: cannot read http://%s/metrics: %s\n", ep, why);
        return TOP_LOST;
    }
    /* SIGINT/SIGTERM are blocked by main (every thread inherits that): taken here. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    bool tty = isatty(STDOUT_FILENO);
    for (unsigned k = 1;; k++) {
        double left = interval;
        while (left > 0) {
            struct timespec ts = { (time_t)left, (long)((left - floor(left)) * 1e9) };
            double t0 = mono_s();
            int sig = sigtimedwait(&stop, NULL, &ts);
            if (sig == SIGINT || sig == SIGTERM)
                return TOP_OK;
            left -= mono_s() - t0;
        }
        scrape *prev = &s[(k - 1) & 1], *cur = &s[k & 1];
        if (!take(host, port, cur, why, sizeof why)) {
            if (tty && !once)
                fputc('\n', stdout);
            fflush(stdout);
            fprintf(stderr, "meshrt top: lost connection to %s: %s\n", ep, why);
            return TOP_LOST;
        }
        frame(stdout, ep, prev, cur, tty && !once);
        if (once)
            return ferror(stdout) ? TOP_LOST : TOP_OK;
    }
}
