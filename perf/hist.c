/* Log-linear histograms: bucket bounds, merge, quantiles (readers' side). */
#include "meshrt/mrt_perf.h"

uint64_t mrt_hist_upper(unsigned b)
{
    if (b >= MRT_HIST_BUCKETS)
        return 0;
    if (b == MRT_HIST_BUCKETS - 1)
        return UINT64_MAX;
    if (b < 4)
        return b;
    unsigned e = (b - 4u) / 4u + 2u, sub = (b - 4u) % 4u;
    return ((uint64_t)(5u + sub) << (e - MRT_HIST_SUB_BITS)) - 1u;
}

void mrt_hist_merge(mrt_hist *dst, const mrt_hist *src)
{
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned b = 0; b < MRT_HIST_BUCKETS; b++)
        dst->bucket[b] += src->bucket[b];
}

uint64_t mrt_hist_quantile(const mrt_hist *h, double q)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < MRT_HIST_BUCKETS; b++)
        total += h->bucket[b];
    if (total == 0)
        return 0;
    if (!(q > 0))
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)(q * (double)total);
    if (rank >= total)
        rank = total - 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < MRT_HIST_BUCKETS; b++) {
        seen += h->bucket[b];
        if (seen > rank)
            return mrt_hist_upper(b);
    }
    return mrt_hist_upper(MRT_HIST_BUCKETS - 1);
}
