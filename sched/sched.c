/* The scheduler's configuration side: shards, tags, loads, drain, filters. */
#include "sched/sched_internal.h"

#include <math.h>
#include <string.h>

static const char *const PREFIX[3] = { "numa:", "core:", "shard:" };

int sched_check_name(const char *name)
{
    size_t len = 0;
    for (; name[len] != '\0'; len++) {
        unsigned char c = (unsigned char)name[len];
        if (len == MRT_SCHED_TAG_MAX || c <= ' ' || c > '~')
            return MRT_SCHED_ENAME;
    }
    return len == 0 ? MRT_SCHED_ENAME : MRT_OK;
}

int sched_parse_builtin(const char *name, unsigned *kind, uint32_t *value)
{
    for (unsigned k = 0; k < 3; k++) {
        size_t pl = strlen(PREFIX[k]);
        if (strncmp(name, PREFIX[k], pl) != 0)
            continue;
        const char *d = name + pl;
        uint64_t v = 0;
        size_t nd = 0;
        for (; d[nd] >= '0' && d[nd] <= '9'; nd++) {
            v = v * 10 + (uint64_t)(d[nd] - '0');
            if (v >= MRT_SCHED_NONE) /* MRT_SCHED_NONE itself means "unknown" */
                return MRT_SCHED_ENAME;
        }
        if (nd == 0 || d[nd] != '\0')
            return MRT_SCHED_ENAME;
        *kind = k;
        *value = (uint32_t)v;
        return 1;
    }
    return 0;
}

#define FREE_ARRAY(p, count) mrt_free(&s->alloc, (p), sizeof *(p) * (size_t)(count))

void mrt_sched_destroy(mrt_sched *s)
{
    if (s == NULL)
        return;
    FREE_ARRAY(s->tags, s->n);
    FREE_ARRAY(s->numa, s->n);
    FREE_ARRAY(s->core, s->n);
    FREE_ARRAY(s->latency, s->n);
    FREE_ARRAY(s->free, s->n);
    FREE_ARRAY(s->headroom, s->n);
    FREE_ARRAY(s->hosted, s->n);
    FREE_ARRAY(s->state, s->n);
    FREE_ARRAY(s->mark, s->n);
    FREE_ARRAY(s->score, s->n);
    FREE_ARRAY(s->extra, s->n);
    mrt_allocator a = s->alloc;
    mrt_free(&a, s, sizeof *s);
}

int mrt_sched_create(const mrt_allocator *a, uint32_t nshards, mrt_sched **out)
{
    if (out == NULL || nshards == 0 || nshards > MRT_SCHED_MAX_SHARDS)
        return MRT_SCHED_EINVAL;
    mrt_allocator al = mrt_allocator_or_default(a);
    mrt_sched *s = mrt_calloc(&al, sizeof *s);
    if (s == NULL)
        return MRT_SCHED_ENOMEM;
    s->alloc = al;
    s->n = nshards;
    s->hosted_ref = MRT_SCHED_HOSTED_REF;
    size_t n = nshards;
    s->tags = mrt_calloc(&al, sizeof *s->tags * n);
    s->numa = mrt_calloc(&al, sizeof *s->numa * n);
    s->core = mrt_calloc(&al, sizeof *s->core * n);
    s->latency = mrt_calloc(&al, sizeof *s->latency * n);
    s->free = mrt_calloc(&al, sizeof *s->free * n);
    s->headroom = mrt_calloc(&al, sizeof *s->headroom * n);
    s->hosted = mrt_calloc(&al, sizeof *s->hosted * n);
    s->state = mrt_calloc(&al, sizeof *s->state * n);
    s->mark = mrt_calloc(&al, sizeof *s->mark * n);
    s->score = mrt_calloc(&al, sizeof *s->score * n);
    s->extra = mrt_calloc(&al, sizeof *s->extra * n);
    if (!s->tags || !s->numa || !s->core || !s->latency || !s->free || !s->headroom ||
        !s->hosted || !s->state || !s->mark || !s->score || !s->extra) {
        mrt_sched_destroy(s);
        return MRT_SCHED_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        s->numa[i] = MRT_SCHED_NONE;
        s->core[i] = MRT_SCHED_NONE;
        s->free[i] = 1.0;
        s->headroom[i] = 1.0;
    }
    *out = s;
    return MRT_OK;
}

uint32_t mrt_sched_shard_count(const mrt_sched *s)
{
    return s == NULL ? 0 : s->n;
}

static int check_shard(const mrt_sched *s, uint32_t shard)
{
    if (s == NULL)
        return MRT_SCHED_EINVAL;
    return shard < s->n ? MRT_OK : MRT_SCHED_ESHARD;
}

int mrt_sched_shard_set_topology(mrt_sched *s, uint32_t shard, uint32_t numa, uint32_t core)
{
    int rc = check_shard(s, shard);
    if (rc != MRT_OK)
        return rc;
    s->numa[shard] = numa;
    s->core[shard] = core;
    return MRT_OK;
}

/* The bit of an interned tag, or -1. Configuration path: string compares are fine here. */
static int find_tag(const mrt_sched *s, const char *name)
{
    for (unsigned i = 0; i < s->ntags; i++)
        if (strcmp(s->tag[i], name) == 0)
            return (int)i;
    return -1;
}

/* Validate a user tag name: characters, then no built-in prefix. */
static int check_user_name(const char *name)
{
    int rc = sched_check_name(name);
    if (rc != MRT_OK)
        return rc;
    for (unsigned k = 0; k < 3; k++)
        if (strncmp(name, PREFIX[k], strlen(PREFIX[k])) == 0)
            return MRT_SCHED_ERESERVED;
    return MRT_OK;
}

int mrt_sched_tag_intern(mrt_sched *s, const char *name, unsigned *bit)
{
    if (s == NULL || name == NULL)
        return MRT_SCHED_EINVAL;
    int rc = check_user_name(name);
    if (rc != MRT_OK)
        return rc;
    int b = find_tag(s, name);
    if (b < 0) {
        if (s->ntags == MRT_SCHED_MAX_TAGS)
            return MRT_SCHED_ETOOMANYTAGS;
        b = (int)s->ntags++;
        memcpy(s->tag[b], name, strlen(name) + 1);
    }
    if (bit != NULL)
        *bit = (unsigned)b;
    return MRT_OK;
}

int mrt_sched_shard_add_tag(mrt_sched *s, uint32_t shard, const char *name)
{
    int rc = check_shard(s, shard);
    unsigned bit;
    if (rc == MRT_OK)
        rc = mrt_sched_tag_intern(s, name, &bit);
    if (rc != MRT_OK)
        return rc;
    s->tags[shard] |= UINT64_C(1) << bit;
    return MRT_OK;
}

int mrt_sched_shard_remove_tag(mrt_sched *s, uint32_t shard, const char *name)
{
    int rc = check_shard(s, shard);
    if (rc != MRT_OK)
        return rc;
    if (name == NULL)
        return MRT_SCHED_EINVAL;
    rc = check_user_name(name);
    if (rc != MRT_OK)
        return rc;
    int b = find_tag(s, name);
    if (b >= 0)
        s->tags[shard] &= ~(UINT64_C(1) << b);
    return MRT_OK;
}

static bool builtin_holds(const mrt_sched *s, uint32_t shard, unsigned kind, uint32_t v)
{
    switch (kind) {
    case BUILTIN_NUMA: return s->numa[shard] == v;
    case BUILTIN_CORE: return s->core[shard] == v;
    default: return shard == v;
    }
}

int mrt_sched_shard_has_tag(const mrt_sched *s, uint32_t shard, const char *name, bool *has)
{
    int rc = check_shard(s, shard);
    if (rc != MRT_OK)
        return rc;
    if (name == NULL || has == NULL)
        return MRT_SCHED_EINVAL;
    if ((rc = sched_check_name(name)) != MRT_OK)
        return rc;
    unsigned kind;
    uint32_t v;
    rc = sched_parse_builtin(name, &kind, &v);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        *has = builtin_holds(s, shard, kind, v);
    } else {
        int b = find_tag(s, name);
        *has = b >= 0 && (s->tags[shard] >> b & 1u);
    }
    return MRT_OK;
}

/* ------------------------------------------------------------------ load */

static int check_load(const mrt_sched_load *l)
{
    if (!isfinite(l->busy) || l->busy < 0.0 || l->busy > 1.0)
        return MRT_SCHED_ELOAD;
    if (l->ring_size > 0 && l->ring_used > l->ring_size)
        return MRT_SCHED_ELOAD;
    if (!isfinite(l->latency_ns) || l->latency_ns < 0.0)
        return MRT_SCHED_ELOAD;
    return MRT_OK;
}

static double headroom_of(const mrt_sched_load *l)
{
    double ring = l->ring_size > 0 ? 1.0 - (double)l->ring_used / (double)l->ring_size : 1.0;
    return (1.0 - l->busy) * ring;
}

int mrt_sched_free_capacity(const mrt_sched_load *load, double hosted_ref, double *out)
{
    if (load == NULL || out == NULL || !isfinite(hosted_ref) || !(hosted_ref > 0.0))
        return MRT_SCHED_EINVAL;
    int rc = check_load(load);
    if (rc != MRT_OK)
        return rc;
    *out = headroom_of(load) * hosted_ref / (hosted_ref + (double)load->hosted);
    return MRT_OK;
}

int mrt_sched_set_hosted_ref(mrt_sched *s, double hosted_ref)
{
    if (s == NULL || !isfinite(hosted_ref) || !(hosted_ref > 0.0))
        return MRT_SCHED_EINVAL;
    s->hosted_ref = hosted_ref;
    for (uint32_t i = 0; i < s->n; i++) /* the stored capacities follow the new reference */
        s->free[i] = s->headroom[i] * hosted_ref / (hosted_ref + (double)s->hosted[i]);
    return MRT_OK;
}

int mrt_sched_shard_set_load(mrt_sched *s, uint32_t shard, const mrt_sched_load *load)
{
    int rc = check_shard(s, shard);
    if (rc != MRT_OK)
        return rc;
    double f;
    if ((rc = mrt_sched_free_capacity(load, s->hosted_ref, &f)) != MRT_OK)
        return rc;
    s->free[shard] = f;
    s->headroom[shard] = headroom_of(load);
    s->hosted[shard] = load->hosted;
    s->latency[shard] = load->latency_ns;
    return MRT_OK;
}

int mrt_sched_shard_capacity(const mrt_sched *s, uint32_t shard, double *out)
{
    int rc = check_shard(s, shard);
    if (rc != MRT_OK)
        return rc;
    if (out == NULL)
        return MRT_SCHED_EINVAL;
    *out = s->free[shard];
    return MRT_OK;
}

static int set_state(mrt_sched *s, uint32_t shard, uint8_t bit, bool on)
{
    int rc = check_shard(s, shard);
    if (rc != MRT_OK)
        return rc;
    s->state[shard] = (uint8_t)(on ? s->state[shard] | bit : s->state[shard] & ~bit);
    return MRT_OK;
}

int mrt_sched_shard_set_drained(mrt_sched *s, uint32_t shard, bool drained)
{
    return set_state(s, shard, SHARD_DRAINED, drained);
}

int mrt_sched_shard_set_failed(mrt_sched *s, uint32_t shard, bool failed)
{
    return set_state(s, shard, SHARD_FAILED, failed);
}

/* ------------------------------------------------------------------ filters */

int mrt_sched_filter_init(mrt_sched_filter *f)
{
    if (f == NULL)
        return MRT_SCHED_EINVAL;
    memset(f, 0, sizeof *f);
    f->req_numa = f->req_core = f->req_shard = MRT_SCHED_NONE;
    return MRT_OK;
}

/* Parse `name` as a built-in (1) or intern it as a user tag (0, *bit set). */
static int resolve(mrt_sched *s, const char *name, unsigned *kind, uint32_t *v, unsigned *bit)
{
    if (s == NULL || name == NULL)
        return MRT_SCHED_EINVAL;
    int rc = sched_check_name(name);
    if (rc != MRT_OK)
        return rc;
    rc = sched_parse_builtin(name, kind, v);
    if (rc != 0)
        return rc;
    rc = mrt_sched_tag_intern(s, name, bit);
    return rc;
}

int mrt_sched_filter_require(mrt_sched *s, mrt_sched_filter *f, const char *name)
{
    if (f == NULL)
        return MRT_SCHED_EINVAL;
    unsigned kind, bit;
    uint32_t v;
    int rc = resolve(s, name, &kind, &v, &bit);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        f->required |= UINT64_C(1) << bit;
        return MRT_OK;
    }
    uint32_t *slot = kind == BUILTIN_NUMA ? &f->req_numa
                     : kind == BUILTIN_CORE ? &f->req_core : &f->req_shard;
    if (*slot == MRT_SCHED_NONE)
        *slot = v;
    else if (*slot != v)
        f->never = true; /* numa:0 and numa:1 at once: no shard can have both */
    return MRT_OK;
}

int mrt_sched_filter_prefer(mrt_sched *s, mrt_sched_filter *f, const char *name)
{
    if (f == NULL || f->n_opt_builtin > MRT_SCHED_MAX_OPT_BUILTIN)
        return MRT_SCHED_EINVAL;
    unsigned kind, bit;
    uint32_t v;
    int rc = resolve(s, name, &kind, &v, &bit);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        f->optional |= UINT64_C(1) << bit;
        return MRT_OK;
    }
    for (unsigned i = 0; i < f->n_opt_builtin; i++)
        if (f->opt_builtin[i].kind == kind && f->opt_builtin[i].value == v)
            return MRT_OK;
    if (f->n_opt_builtin == MRT_SCHED_MAX_OPT_BUILTIN)
        return MRT_SCHED_EFILTERFULL;
    f->opt_builtin[f->n_opt_builtin].kind = (uint8_t)kind;
    f->opt_builtin[f->n_opt_builtin].value = v;
    f->n_opt_builtin++;
    return MRT_OK;
}
