/*
 * Placement: one pass over the shards, the maximum score kept as it goes
 * (no sort, no allocation); multi-member spread repeats the pass over the
 * scores computed once.
 */
#include "sched/sched_internal.h"

#include <math.h>

/*
 * A request made ready for the pass: the filter's fields hoisted, the
 * optional-tag weights precomputed so the per-shard work is bit tests, a
 * table load and a multiply.
 */
struct plan {
    const mrt_sched_request *rq;
    const mrt_sched_filter *f;
    uint64_t req, opt;
    bool builtin_req;  /* a required built-in (or a contradiction): check them */
    bool weighted;     /* optional tags asked */
    double weight[MRT_SCHED_MAX_TAGS + MRT_SCHED_MAX_OPT_BUILTIN + 1]; /* [have] */
};

static void plan_init(struct plan *p, const mrt_sched_request *rq)
{
    const mrt_sched_filter *f = rq->filter;
    p->rq = rq;
    p->f = f;
    p->req = f ? f->required : 0;
    p->opt = f ? f->optional : 0;
    p->builtin_req = f && (f->never || f->req_numa != MRT_SCHED_NONE ||
                           f->req_core != MRT_SCHED_NONE || f->req_shard != MRT_SCHED_NONE);
    p->weighted = f && (f->optional != 0 || f->n_opt_builtin != 0);
    if (p->weighted) {
        unsigned asked = (unsigned)__builtin_popcountll(f->optional) + f->n_opt_builtin;
        for (unsigned h = 0; h <= asked; h++)
            p->weight[h] = (1.0 + h) / (1.0 + asked);
    }
}

/* Required tags: user bits and built-in equalities. */
static inline bool passes(const mrt_sched *s, const struct plan *p, uint32_t i)
{
    if ((s->tags[i] & p->req) != p->req)
        return false;
    if (!p->builtin_req)
        return true;
    const mrt_sched_filter *f = p->f;
    return !f->never && (f->req_numa == MRT_SCHED_NONE || f->req_numa == s->numa[i]) &&
           (f->req_core == MRT_SCHED_NONE || f->req_core == s->core[i]) &&
           (f->req_shard == MRT_SCHED_NONE || f->req_shard == i);
}

/* The weight of the optional tags: (1 + present) / (1 + asked); 1 when none are asked. */
static inline double optional_weight(const mrt_sched *s, const struct plan *p, uint32_t i)
{
    if (!p->weighted)
        return 1.0;
    const mrt_sched_filter *f = p->f;
    unsigned have = (unsigned)__builtin_popcountll(s->tags[i] & p->opt);
    for (unsigned k = 0; k < f->n_opt_builtin; k++) {
        uint32_t v = f->opt_builtin[k].value;
        switch (f->opt_builtin[k].kind) {
        case BUILTIN_NUMA: have += s->numa[i] == v; break;
        case BUILTIN_CORE: have += s->core[i] == v; break;
        default: have += i == v; break;
        }
    }
    return p->weight[have];
}

/*
 * The score of shard i, or NaN when it is not eligible. *pre counts shards
 * that pass the state and capability checks (before exclusion and score),
 * *pre_excl those of them that are excluded: they tell "everything is
 * excluded" from "nothing matches".
 */
static inline double shard_score(const mrt_sched *s, const struct plan *p, uint32_t i,
                                 uint32_t *pre, uint32_t *pre_excl)
{
    if (s->state[i] != 0 || !passes(s, p, i))
        return NAN;
    (*pre)++;
    if (s->mark[i] & MARK_EXCLUDED) {
        (*pre_excl)++;
        return NAN;
    }
    double sc = 1.0;
    if (p->rq->score != NULL) {
        sc = p->rq->score(p->rq->score_ctx, i, s->free[i]);
        if (!isfinite(sc) || sc < 0.0) /* veto, NaN, +-inf: dropped */
            return NAN;
        if (sc > 1.0)
            sc = 1.0;
    }
    return sc * optional_weight(s, p, i);
}

/*
 * Whether shard a (score sa) ranks before shard b (score sb): higher score,
 * then lower measured latency (measured beats unmeasured), then more free
 * capacity, then lower id.
 */
static inline bool better(const mrt_sched *s, double sa, uint32_t a, double sb, uint32_t b)
{
    if (sa != sb)
        return sa > sb;
    double la = s->latency[a], lb = s->latency[b];
    if (la != lb) {
        if (la == 0.0)
            return false;
        if (lb == 0.0)
            return true;
        return la < lb;
    }
    if (s->free[a] != s->free[b])
        return s->free[a] > s->free[b];
    return a < b;
}

static int check_request(const mrt_sched *s, const mrt_sched_request *rq)
{
    if (s == NULL || rq == NULL || (rq->nexclude > 0 && rq->exclude == NULL))
        return MRT_SCHED_EINVAL;
    if (rq->spread != MRT_SCHED_SPREAD_STRICT && rq->spread != MRT_SCHED_SPREAD_BEST_EFFORT)
        return MRT_SCHED_EINVAL;
    if (rq->filter != NULL && rq->filter->n_opt_builtin > MRT_SCHED_MAX_OPT_BUILTIN)
        return MRT_SCHED_EINVAL;
    for (uint32_t j = 0; j < rq->nexclude; j++)
        if (rq->exclude[j] >= s->n)
            return MRT_SCHED_ESHARD;
    return MRT_OK;
}

static void mark_excluded(mrt_sched *s, const mrt_sched_request *rq)
{
    for (uint32_t j = 0; j < rq->nexclude; j++)
        s->mark[rq->exclude[j]] = MARK_EXCLUDED;
}

static void clear_excluded(mrt_sched *s, const mrt_sched_request *rq)
{
    for (uint32_t j = 0; j < rq->nexclude; j++)
        s->mark[rq->exclude[j]] = 0;
}

static int none_error(uint32_t pre, uint32_t pre_excl)
{
    return pre > 0 && pre == pre_excl ? MRT_SCHED_EEXCLUDED : MRT_SCHED_ENOCANDIDATE;
}

void mrt_sched_request_init(mrt_sched_request *rq)
{
    if (rq == NULL)
        return;
    *rq = (mrt_sched_request){ .filter = NULL, .score = NULL, .score_ctx = NULL,
                               .exclude = NULL, .nexclude = 0,
                               .spread = MRT_SCHED_SPREAD_STRICT };
}

int mrt_sched_filter_matches(const mrt_sched *s, const mrt_sched_filter *f, uint32_t shard,
                             bool *pass)
{
    if (s == NULL || f == NULL || pass == NULL || f->n_opt_builtin > MRT_SCHED_MAX_OPT_BUILTIN)
        return MRT_SCHED_EINVAL;
    if (shard >= s->n)
        return MRT_SCHED_ESHARD;
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.filter = f;
    struct plan p;
    plan_init(&p, &rq);
    *pass = passes(s, &p, shard);
    return MRT_OK;
}

/* The single best shard (one pass); exclusion marks already set. */
static int pick_one(const mrt_sched *s, const struct plan *p, uint32_t *out)
{
    uint32_t best = MRT_SCHED_NONE, pre = 0, pre_excl = 0;
    double bs = 0.0;
    for (uint32_t i = 0; i < s->n; i++) {
        double sc = shard_score(s, p, i, &pre, &pre_excl);
        if (sc != sc)
            continue;
        if (best == MRT_SCHED_NONE || better(s, sc, i, bs, best)) {
            best = i;
            bs = sc;
        }
    }
    if (best == MRT_SCHED_NONE)
        return none_error(pre, pre_excl);
    *out = best;
    return MRT_OK;
}

/* Free capacity of shard i counting `extra` more hosted daemons. */
static inline double free_with(const mrt_sched *s, uint32_t i)
{
    return s->headroom[i] * s->hosted_ref / (s->hosted_ref + (double)s->hosted[i] +
                                             (double)s->extra[i]);
}

/* Best-effort overflow: the eligible shard with the most free capacity (ties: score, latency, id). */
static uint32_t least_loaded(const mrt_sched *s)
{
    uint32_t best = MRT_SCHED_NONE;
    double bf = 0.0;
    for (uint32_t i = 0; i < s->n; i++) {
        double sc = s->score[i];
        if (sc != sc)
            continue;
        double f = free_with(s, i);
        if (best == MRT_SCHED_NONE || f > bf ||
            (f == bf && better(s, sc, i, s->score[best], best))) {
            best = i;
            bf = f;
        }
    }
    return best;
}

static int place_many(mrt_sched *s, const struct plan *p, uint32_t k, uint32_t *out)
{
    const mrt_sched_request *rq = p->rq;
    uint32_t pre = 0, pre_excl = 0, eligible = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        s->score[i] = shard_score(s, p, i, &pre, &pre_excl);
        eligible += s->score[i] == s->score[i];
    }
    if (eligible == 0)
        return none_error(pre, pre_excl);
    if (k > eligible && rq->spread == MRT_SCHED_SPREAD_STRICT)
        return MRT_SCHED_ESPREAD;
    /*
     * From here every member gets a shard: out is written only now. The
     * `distinct` best, in rank order, kept in out[] as the pass goes: a
     * shard below the current last costs one comparison, so this is O(N)
     * plus the insertions (about distinct x ln(N / distinct) on random
     * order), not one pass per member.
     */
    uint32_t distinct = k < eligible ? k : eligible, c = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        double sc = s->score[i];
        if (sc != sc)
            continue;
        if (c == distinct) {
            uint32_t last = out[c - 1];
            if (!better(s, sc, i, s->score[last], last))
                continue;
            c--; /* the last one drops out */
        }
        uint32_t j = c++;
        for (; j > 0 && better(s, sc, i, s->score[out[j - 1]], out[j - 1]); j--)
            out[j] = out[j - 1];
        out[j] = i;
    }
    for (uint32_t m = 0; m < distinct; m++)
        s->extra[out[m]] = 1;
    for (uint32_t m = distinct; m < k; m++) {
        uint32_t best = least_loaded(s);
        s->extra[best]++;
        out[m] = best;
    }
    for (uint32_t m = 0; m < distinct; m++) {
        s->extra[out[m]] = 0;
    }
    return MRT_OK;
}

int mrt_sched_place(mrt_sched *s, const mrt_sched_request *rq, uint32_t k, uint32_t *out)
{
    int rc = check_request(s, rq);
    if (rc != MRT_OK)
        return rc;
    if (k == 0 || out == NULL)
        return MRT_SCHED_EINVAL;
    struct plan p;
    plan_init(&p, rq);
    mark_excluded(s, rq);
    rc = k == 1 ? pick_one(s, &p, out) : place_many(s, &p, k, out);
    clear_excluded(s, rq);
    return rc;
}

int mrt_sched_pick_from(mrt_sched *s, const mrt_sched_request *rq, const uint32_t *cands,
                        uint32_t n, uint32_t *out)
{
    int rc = check_request(s, rq);
    if (rc != MRT_OK)
        return rc;
    if (out == NULL || (n > 0 && cands == NULL))
        return MRT_SCHED_EINVAL;
    for (uint32_t j = 0; j < n; j++)
        if (cands[j] >= s->n)
            return MRT_SCHED_ESHARD;
    struct plan pl, *p = &pl;
    plan_init(p, rq);
    mark_excluded(s, rq);
    uint32_t best = MRT_SCHED_NONE, pre = 0, pre_excl = 0;
    double bs = 0.0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i = cands[j];
        if (s->mark[i] & MARK_SEEN)
            continue; /* a repeated candidate is scored once */
        s->mark[i] |= MARK_SEEN;
        double sc = shard_score(s, p, i, &pre, &pre_excl);
        if (sc != sc)
            continue;
        if (best == MRT_SCHED_NONE || better(s, sc, i, bs, best)) {
            best = i;
            bs = sc;
        }
    }
    for (uint32_t j = 0; j < n; j++)
        s->mark[cands[j]] &= (uint8_t)~MARK_SEEN;
    clear_excluded(s, rq);
    if (best == MRT_SCHED_NONE)
        return none_error(pre, pre_excl);
    *out = best;
    return MRT_OK;
}

int mrt_sched_migration_target(mrt_sched *s, const mrt_sched_request *rq, uint32_t source,
                               uint32_t local, uint32_t *out, mrt_sched_reason *reason)
{
    int rc = check_request(s, rq);
    if (rc != MRT_OK)
        return rc;
    if (out == NULL)
        return MRT_SCHED_EINVAL;
    if (source >= s->n || (local != MRT_SCHED_NONE && local >= s->n))
        return MRT_SCHED_ESHARD;
    struct plan pl, *p = &pl;
    plan_init(p, rq);
    mark_excluded(s, rq);
    /* The source is never a target; its mark is restored below. */
    uint8_t source_mark = s->mark[source];
    s->mark[source] = MARK_EXCLUDED;
    mrt_sched_reason why = MRT_SCHED_REASON_BEST;
    rc = MRT_SCHED_ENOCANDIDATE;
    if (local != MRT_SCHED_NONE && local != source) {
        uint32_t pre = 0, pre_excl = 0;
        double sc = shard_score(s, p, local, &pre, &pre_excl);
        /* Only a real, positive score earns the fast path (notes §16.15). */
        if (isfinite(sc) && sc > 0.0) {
            *out = local;
            why = MRT_SCHED_REASON_LOCAL;
            rc = MRT_OK;
        }
    }
    if (rc != MRT_OK) {
        rc = pick_one(s, p, out);
        /* The source is excluded only by this call: "all excluded" must not blame it alone. */
        if (rc == MRT_SCHED_EEXCLUDED && source_mark == 0 && rq->nexclude == 0)
            rc = MRT_SCHED_ENOCANDIDATE;
    }
    s->mark[source] = source_mark;
    clear_excluded(s, rq);
    if (rc == MRT_OK && reason != NULL)
        *reason = why;
    return rc;
}
