/* Private to the metrics endpoint: the snapshot a page is rendered from. */
#ifndef MESHRT_RUNTIME_METRICS_INTERNAL_H
#define MESHRT_RUNTIME_METRICS_INTERNAL_H

#include "meshrt/mrt_metrics.h"

#include <stddef.h>
#include <stdint.h>

/* Everything one page shows, read once, rendered in either format. */
typedef struct mrt_metrics_snap {
    unsigned shards;
    uint64_t tsc_hz;
    uint64_t renders;              /* the endpoint's pages rendered so far (0 without one) */
    uint64_t requests;             /* requests it answered so far */
    mrt_balancer_counters lb;      /* the balancer control plane's (mrt_runtime_balancer_stats) */
    mrt_runtime_shard_stats *st;   /* [shards] */
    mrt_hist *hist;                /* [shards][MRT_RT_HIST_KINDS] */
    /* The bucket bounds as printed (2^k - 1, and in seconds), formatted once. */
    char le[MRT_HIST_MAX_EXP + 1][24];
    char le_s[MRT_HIST_MAX_EXP + 1][24];
} mrt_metrics_snap;

/* Room for `shards`; MRT_ENOMEM. */
int mrt_metrics_snap_alloc(mrt_metrics_snap *s, unsigned shards);
void mrt_metrics_snap_free(mrt_metrics_snap *s);
/* Read every shard's stats and histograms (mrt_runtime_stats_read / _hist_read). */
void mrt_metrics_snap_take(mrt_metrics_snap *s, const mrt_runtime *rt);

/* Render s into buf (len bytes, terminated when len > 0); returns the page's full length. */
size_t mrt_metrics_render_snap(const mrt_metrics_snap *s, mrt_metrics_format fmt, char *buf,
                               size_t len);

#endif
