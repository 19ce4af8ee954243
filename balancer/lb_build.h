/*
 * The snapshot compiler's builders (build.c), shared with its driver
 * (compile.c): each pool's plan, and the per-strategy structures built
 * from it — smooth-WRR periods, alias tables, the sorted ring and its
 * directory, Maglev tables. Off the event path.
 */
#ifndef MESHRT_BALANCER_LB_BUILD_H
#define MESHRT_BALANCER_LB_BUILD_H

#include "balancer/lb_internal.h"

/* Per-pool build plan (temporary). */
typedef struct pool_plan {
    uint32_t moff;          /* offset of the pool's members in the temp CSR */
    uint32_t n;
    uint32_t wrr_len;
    uint64_t wrr_div;       /* divide weights by this after scaling */
    double wrr_scale;       /* 1.0 unless quantised */
    uint32_t ring_n, dir_bits, mag_m, tree_leaves;
    bool tree;
    double mean_load;
    size_t o_members, o_alias, o_wrr, o_pts, o_dir, o_mag;
} pool_plan;

/* Smallest prime >= x (2 for x <= 2). */
uint32_t lb_next_prime(uint32_t x);
/* Smallest power of two >= n. */
uint32_t lb_pow2_at_least(uint32_t n);
/* Reserve `bytes` at the next 64-byte boundary of a block being laid out; its offset. */
size_t lb_take(size_t *off, size_t bytes);
/* qsort order of uint64_t. */
int lb_cmp_u64(const void *a, const void *b);
/* Pool p's smooth-WRR scale and divisor so its period fits `cap` (*quantized set if scaled). */
void lb_plan_wrr(pool_plan *p, const uint32_t *mem, const uint32_t *w, uint32_t cap,
                 bool *quantized);
/* One period of nginx's smooth WRR over p's members into seq[p->wrr_len]; MRT_LB_ENOMEM. */
int lb_build_wrr(const mrt_allocator *a, const pool_plan *p, const uint32_t *mem,
                 const uint32_t *w, uint32_t *seq);
/* Vose's alias table for n members of weights w[mem[i]]; MRT_LB_ENOMEM. */
int lb_build_alias(const mrt_allocator *a, uint32_t n, const uint32_t *mem, const uint32_t *w,
                   lb_alias *out);
/* Sort ring points (and their slots alongside) ascending; MRT_LB_ENOMEM. */
int lb_radix_sort(const mrt_allocator *a, uint64_t *pts, uint32_t *slots, uint32_t n);
/* The ring's directory: for each of 2^bits buckets, the first point at or above it. */
void lb_build_dir(const uint64_t *pts, uint32_t n, uint32_t bits, uint32_t *dir);
/* A Maglev table of size m, populated by weight; MRT_LB_ENOMEM. */
int lb_build_maglev(const mrt_allocator *a, uint32_t n, const uint32_t *mem, const uint32_t *w,
                    const uint64_t *h_off, const uint64_t *h_skip, uint32_t m, uint32_t *tab);

#endif
