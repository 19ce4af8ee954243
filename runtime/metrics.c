/*
 * The metrics endpoint (mrt_metrics.h): libmicrohttpd on one internal
 * thread serves /metrics and /stats.json from a cached page. Every request
 * handler runs on that one thread, so the cache needs no lock. The listening
 * socket is ours (bound here, handed to the daemon) so that "port in use"
 * and "cannot bind that address" are told apart.
 */
#include "runtime/metrics_internal.h"
#include "runtime/rt_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 1024
#define CONNECTION_MEMORY (16 * 1024) /* a request's headers; MHD answers 431/400 beyond */

/* A rendered page, shared by every client that asks within refresh_ms. */
typedef struct page {
    struct MHD_Response *resp; /* our reference; in-flight sends hold their own */
    uint64_t at_ns;
} page;

struct mrt_metrics {
    mrt_runtime *rt;
    struct MHD_Daemon *daemon;
    mrt_metrics_config cfg;
    unsigned port;
    /* Server thread only, from here on. */
    mrt_metrics_snap snap;
    char *buf;                 /* mrt_metrics_render_bound bytes */
    size_t cap;
    page pages[2];             /* indexed by mrt_metrics_format */
    struct MHD_Response *not_found, *not_allowed, *too_big;
    uint64_t renders, requests;
    bool niced;
};


void mrt_metrics_config_default(mrt_metrics_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_connections = 64;
    cfg->timeout_s = 10;
    cfg->refresh_ms = 20;
    cfg->nice = 10;
}

/* ADDR:PORT into *sa; false when it is not one. */
static bool parse_endpoint(const char *ep, struct sockaddr_storage *sa, socklen_t *salen,
                           bool *loopback)
{
    if (ep == NULL)
        return false;
    const char *colon = strrchr(ep, ':');
    if (colon == NULL || colon == ep || colon[1] == '\0')
        return false;
    char host[64];
    size_t hl = (size_t)(colon - ep);
    if (hl >= sizeof host)
        return false;
    memcpy(host, ep, hl);
    host[hl] = '\0';
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        return false;
    memset(sa, 0, sizeof(*sa));
    if (host[0] == '[') {
        if (hl < 3 || host[hl - 1] != ']')
            return false;
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return false;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *salen = sizeof(*s6);
        *loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
                    (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127);
        return true;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return false;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *salen = sizeof(*s4);
    *loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    return true;
}

int mrt_metrics_endpoint_check(const char *endpoint, bool *loopback)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    bool lo = false;
    if (!parse_endpoint(endpoint, &sa, &salen, &lo))
        return MRT_RT_EMETRICS_ADDR;
    if (loopback)
        *loopback = lo;
    return MRT_OK;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct MHD_Response *text_response(const char *text, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_PERSISTENT);
    if (r)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return r;
}

/* The cached page of fmt, rendered again when older than refresh_ms; NULL on failure. */
static struct MHD_Response *page_get(struct mrt_metrics *m, mrt_metrics_format fmt)
{
    page *p = &m->pages[fmt];
    uint64_t now = now_ns();
    if (p->resp && now - p->at_ns < (uint64_t)m->cfg.refresh_ms * 1000000u)
        return p->resp;
    m->renders++;
    m->snap.renders = m->renders;
    m->snap.requests = m->requests;
    mrt_metrics_snap_take(&m->snap, m->rt);
    size_t n = mrt_metrics_render_snap(&m->snap, fmt, m->buf, m->cap);
    if (n >= m->cap)
        return NULL; /* cannot happen with render_bound; a 500, not a cut page */
    /* One copy per render, shared: a slow client keeps its copy alive, never sees a rewrite. */
    struct MHD_Response *r = MHD_create_response_from_buffer(n, m->buf, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return NULL;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            fmt == MRT_METRICS_JSON ? "application/json"
                                                    : "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (p->resp)
        MHD_destroy_response(p->resp);
    p->resp = r;
    p->at_ns = now;
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    struct mrt_metrics *m = cls;
    if (!m->niced) {
        /* The server's thread yields to the shards when they share a CPU. */
        m->niced = true;
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), (int)m->cfg.nice);
    }
    /* First call: headers only. Answering once the request is complete keeps it alive. */
    static int seen;
    if (*con_cls == NULL) {
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size != 0) { /* a body on GET: ignored, consumed */
        *upload_size = 0;
        return MHD_YES;
    }
    m->requests++;
    int fmt = -1;
    if (strcmp(url, "/metrics") == 0)
        fmt = MRT_METRICS_PROMETHEUS;
    else if (strcmp(url, "/stats.json") == 0)
        fmt = MRT_METRICS_JSON;
    if (fmt < 0)
        return MHD_queue_response(c, MHD_HTTP_NOT_FOUND, m->not_found);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, m->not_allowed);
    struct MHD_Response *r = page_get(m, (mrt_metrics_format)fmt);
    if (r == NULL)
        return MHD_queue_response(c, MHD_HTTP_INTERNAL_SERVER_ERROR, m->too_big);
    return MHD_queue_response(c, MHD_HTTP_OK, r);
}

static void metrics_free(struct mrt_metrics *m)
{
    if (m == NULL)
        return;
    for (unsigned f = 0; f < 2; f++)
        if (m->pages[f].resp)
            MHD_destroy_response(m->pages[f].resp);
    if (m->not_found)
        MHD_destroy_response(m->not_found);
    if (m->not_allowed)
        MHD_destroy_response(m->not_allowed);
    if (m->too_big)
        MHD_destroy_response(m->too_big);
    mrt_metrics_snap_free(&m->snap);
    free(m->buf);
    free(m);
}

/* A listening socket on sa; MRT_OK or a status with err set. */
static int listen_on(const char *ep, const struct sockaddr_storage *sa, socklen_t salen, int *fd_out,
                     unsigned *port, char *err, size_t errlen)
{
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mrt_rt_seterr(err, errlen, "metrics endpoint %s: socket: %s", ep, strerror(errno));
        return MRT_RT_EMETRICS_LISTEN;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)sa, salen) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE) {
            mrt_rt_seterr(err, errlen, "metrics endpoint %s: the port is already in use", ep);
            return MRT_RT_EMETRICS_INUSE;
        }
        mrt_rt_seterr(err, errlen, "metrics endpoint %s: cannot listen there: %s", ep, strerror(e));
        return MRT_RT_EMETRICS_LISTEN;
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
        *port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                 : ((struct sockaddr_in *)&got)->sin_port);
    *fd_out = fd;
    return MRT_OK;
}

int mrt_runtime_metrics_start(mrt_runtime *rt, const char *endpoint,
                              const mrt_metrics_config *cfg, char *err, size_t errlen)
{
    mrt_metrics_config c;
    if (cfg)
        c = *cfg;
    else
        mrt_metrics_config_default(&c);
    if (rt == NULL || endpoint == NULL || c.max_connections == 0 ||
        c.max_connections > MAX_CONNECTIONS || c.timeout_s == 0 || c.timeout_s > 3600 ||
        c.refresh_ms > 60000 || c.nice > 19) {
        mrt_rt_seterr(err, errlen, "metrics endpoint: invalid argument");
        return MRT_EINVAL;
    }
    if (rt->metrics) {
        mrt_rt_seterr(err, errlen, "metrics endpoint: already serving on port %u", rt->metrics->port);
        return MRT_ESTATE;
    }
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    bool loopback = false;
    if (!parse_endpoint(endpoint, &sa, &salen, &loopback)) {
        mrt_rt_seterr(err, errlen,
               "metrics endpoint '%s' is not ADDR:PORT (an IPv4 address, [IPv6] or localhost, "
               "then a port 0..65535)",
               endpoint);
        return MRT_RT_EMETRICS_ADDR;
    }
    if (!loopback && !c.allow_remote) {
        mrt_rt_seterr(err, errlen,
               "metrics endpoint %s is not a loopback address: serving beyond this host must "
               "be asked for explicitly",
               endpoint);
        return MRT_RT_EMETRICS_REMOTE;
    }
    struct mrt_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return MRT_ENOMEM;
    m->rt = rt;
    m->cfg = c;
    m->cap = mrt_metrics_render_bound(mrt_runtime_shards(rt));
    m->buf = malloc(m->cap);
    m->not_found = text_response("not found: try /metrics or /stats.json\n", "text/plain");
    m->not_allowed = text_response("method not allowed: GET or HEAD\n", "text/plain");
    m->too_big = text_response("the page could not be rendered\n", "text/plain");
    if (m->not_allowed)
        MHD_add_response_header(m->not_allowed, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (m->buf == NULL || m->not_found == NULL || m->not_allowed == NULL || m->too_big == NULL ||
        mrt_metrics_snap_alloc(&m->snap, mrt_runtime_shards(rt)) != MRT_OK) {
        metrics_free(m);
        mrt_rt_seterr(err, errlen, "metrics endpoint: out of memory");
        return MRT_ENOMEM;
    }
    int fd = -1;
    int rc = listen_on(endpoint, &sa, salen, &fd, &m->port, err, errlen);
    if (rc != MRT_OK) {
        metrics_free(m);
        return rc;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    m->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, m, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)c.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)c.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_END);
    if (m->daemon == NULL) {
        close(fd);
        metrics_free(m);
        mrt_rt_seterr(err, errlen, "metrics endpoint %s: the HTTP server did not start", endpoint);
        return MRT_RT_EMETRICS_LISTEN;
    }
    rt->metrics = m;
    return MRT_OK;
}

int mrt_runtime_metrics_stop(mrt_runtime *rt)
{
    if (rt == NULL || rt->metrics == NULL)
        return MRT_OK;
    struct mrt_metrics *m = rt->metrics;
    MHD_stop_daemon(m->daemon); /* joins its thread and closes the listening socket */
    rt->metrics = NULL;
    metrics_free(m);
    return MRT_OK;
}

unsigned mrt_runtime_metrics_port(const mrt_runtime *rt)
{
    return rt && rt->metrics ? rt->metrics->port : 0;
}
