/*
 * mrt_metrics.h — the runtime's metrics endpoint: an HTTP server
 * (libmicrohttpd, on its own thread, never a shard's) that serves
 *
 *   GET /metrics     Prometheus text exposition format 0.0.4
 *   GET /stats.json  the same data as one JSON object
 *
 * Every figure comes from mrt_runtime_stats_read and mrt_runtime_hist_read
 * (the shards' published blocks): serving a scrape takes nothing from a
 * shard but those reads. Per-shard series carry the label shard="i";
 * counters end in _total; each histogram kind of mrt_runtime_hist_kind is a
 * Prometheus histogram (_bucket{le=...} cumulative, _sum, _count), with the
 * kinds counted in ns exported in seconds. Buckets are the mrt_hist
 * buckets merged per power of two: le = 2^k - 1 (ns, or messages), k =
 * 2..40, then +Inf.
 *
 * Bounded: at most max_connections at once (the rest are closed at
 * accept), a connection idle for timeout_s is closed, each connection's
 * request memory is capped, and a page is rendered at most once per
 * refresh_ms however many clients ask (the clients share one copy).
 * Unknown path: 404; a method other than GET or HEAD: 405 (with Allow);
 * a malformed request: 400 (libmicrohttpd's own parser answers it).
 *
 * Status codes are in the runtime's range (mrt_runtime.h, -300..-399);
 * mrt_strerror names them.
 */
#ifndef MESHRT_MRT_METRICS_H
#define MESHRT_MRT_METRICS_H

#include "meshrt/mrt_runtime.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of the metrics endpoint (runtime range, -340 .. -349). */
enum mrt_metrics_status {
    MRT_RT_EMETRICS_ADDR = -340,   /* endpoint is not ADDR:PORT (IPv4, [IPv6] or localhost; port 0..65535) */
    MRT_RT_EMETRICS_INUSE = -341,  /* the port is already in use */
    MRT_RT_EMETRICS_REMOTE = -342, /* a non-loopback address without allow_remote */
    MRT_RT_EMETRICS_LISTEN = -343, /* the address cannot be bound here, or the server did not start */
};

typedef struct mrt_metrics_config {
    bool allow_remote;         /* bind an address other than loopback (default false) */
    unsigned max_connections;  /* connections at once, 1..1024 (default 64) */
    unsigned timeout_s;        /* an idle connection is closed after this, 1..3600 (default 10) */
    unsigned refresh_ms;       /* a rendered page serves every request for this long (default 20) */
    unsigned nice;             /* the server thread's nice increment, 0..19 (default 10): it
                                  yields to the shards when they share a CPU */
} mrt_metrics_config;

/* Fill *cfg with the defaults above. */
void mrt_metrics_config_default(mrt_metrics_config *cfg);

/*
 * Check that `endpoint` is ADDR:PORT: a dotted IPv4 address, a bracketed
 * IPv6 address ("[::1]:9100") or "localhost" (127.0.0.1), then a port
 * 0..65535 (0: the kernel picks one, see mrt_runtime_metrics_port). Sets
 * *loopback (when non-NULL) to whether the address is a loopback one.
 * MRT_OK or MRT_RT_EMETRICS_ADDR.
 */
int mrt_metrics_endpoint_check(const char *endpoint, bool *loopback);

/*
 * Start serving rt's metrics on `endpoint` (see mrt_metrics_endpoint_check)
 * with cfg (NULL: defaults). Any time after mrt_runtime_create, from the
 * application's thread; the server's thread is created here and inherits
 * the caller's CPU affinity and signal mask (call it from an unpinned
 * thread). Returns MRT_OK, MRT_EINVAL (NULL rt or endpoint, cfg out of
 * range), MRT_ESTATE (already serving), MRT_RT_EMETRICS_ADDR,
 * MRT_RT_EMETRICS_REMOTE, MRT_RT_EMETRICS_INUSE, MRT_RT_EMETRICS_LISTEN or
 * MRT_ENOMEM, with a message in err.
 */
int mrt_runtime_metrics_start(mrt_runtime *rt, const char *endpoint,
                              const mrt_metrics_config *cfg, char *err, size_t errlen);

/*
 * Stop serving: open connections are closed, the server's thread joined.
 * Idempotent; mrt_runtime_destroy calls it. Returns MRT_OK.
 */
int mrt_runtime_metrics_stop(mrt_runtime *rt);

/* The TCP port being served (the kernel's pick for port 0); 0 when not serving. */
unsigned mrt_runtime_metrics_port(const mrt_runtime *rt);

typedef enum mrt_metrics_format {
    MRT_METRICS_PROMETHEUS, /* text exposition 0.0.4 (/metrics) */
    MRT_METRICS_JSON,       /* /stats.json */
} mrt_metrics_format;

/*
 * Render rt's metrics as served, into buf (len bytes, always terminated
 * when len > 0), for an embedder with its own HTTP server. Reads the
 * stats like a scrape; allocates a scratch snapshot (not for the event
 * path). Returns the length of the page (excluding the terminator) or a
 * negative status: MRT_EINVAL, MRT_ENOMEM. A return >= len means the
 * page was truncated; mrt_metrics_render_bound gives a size that fits.
 */
long mrt_runtime_metrics_render(const mrt_runtime *rt, mrt_metrics_format fmt, char *buf,
                                size_t len);

/* Bytes that hold any page of a runtime with `shards` shards, either format. */
size_t mrt_metrics_render_bound(unsigned shards);

#ifdef __cplusplus
}
#endif
#endif
