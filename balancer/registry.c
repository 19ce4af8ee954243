/*
 * The control-plane registry: endpoints by stable id, a node-id index,
 * interned zones, tag bits and declared tag filters. Every mutation is
 * validated completely before anything changes, so a refused call leaves
 * the registry exactly as it was.
 */
#include "balancer/lb_internal.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

/* ------------------------------------------------------------------ validation */

static bool fraction_ok(double v)
{
    return isfinite(v) && v >= 0.0 && v <= 1.0;
}

static bool nonneg_ok(double v)
{
    return isfinite(v) && v >= 0.0;
}

static int validate_metrics(const mrt_lb_metrics *m)
{
    if (!fraction_ok(m->cpu) || !fraction_ok(m->memory) || !fraction_ok(m->error_rate))
        return MRT_LB_EMETRIC;
    if (!nonneg_ok(m->active_connections) || !nonneg_ok(m->requests_per_s) ||
        !nonneg_ok(m->avg_response_ms) || !nonneg_ok(m->queue_depth) ||
        !nonneg_ok(m->bandwidth))
        return MRT_LB_EMETRIC;
    return MRT_OK;
}

static int validate_weight(int64_t w)
{
    return (w >= 1 && w <= MRT_LB_MAX_WEIGHT) ? MRT_OK : MRT_LB_EWEIGHT;
}

static int validate_health(mrt_lb_health h)
{
    return ((unsigned)h <= MRT_LB_UNKNOWN) ? MRT_OK : MRT_LB_EHEALTH;
}

static int validate_name(const char *name)
{
    if (name == NULL)
        return MRT_LB_ENAME;
    size_t len = strnlen(name, MRT_LB_NAME_MAX + 1);
    if (len == 0 || len > MRT_LB_NAME_MAX)
        return MRT_LB_ENAME;
    return MRT_OK;
}

static int find_tag(const mrt_lb_registry *r, const char *name)
{
    uint64_t used = r->tag_used;
    while (used) {
        int b = __builtin_ctzll(used);
        used &= used - 1;
        if (strcmp(r->tag_names[b], name) == 0)
            return b;
    }
    return -1;
}

static int find_zone(const mrt_lb_registry *r, const char *name)
{
    for (uint32_t z = 0; z < r->nzones; z++)
        if (strcmp(r->zone_names[z], name) == 0)
            return (int)z;
    return -1;
}

/*
 * Resolve a tag list against the table without changing it: *known gets
 * the bits of names already present; *fresh the number of distinct names
 * that would need a new bit; names[] the distinct fresh names (<= 64).
 */
static int plan_tags(const mrt_lb_registry *r, const char *const *tags, size_t n,
                     uint64_t *known, uint32_t *fresh, const char *fresh_names[MRT_LB_MAX_TAGS])
{
    *known = 0;
    *fresh = 0;
    if (n > 0 && tags == NULL)
        return MRT_LB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = validate_name(tags[i]);
        if (rc != MRT_OK)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        int b = find_tag(r, tags[i]);
        if (b >= 0) {
            *known |= 1ull << b;
            continue;
        }
        bool dup = false;
        for (uint32_t j = 0; j < *fresh; j++)
            if (strcmp(fresh_names[j], tags[i]) == 0) {
                dup = true;
                break;
            }
        if (dup)
            continue;
        if (*fresh >= MRT_LB_MAX_TAGS)
            return MRT_LB_ETOOMANYTAGS;
        fresh_names[(*fresh)++] = tags[i];
    }
    return MRT_OK;
}

/* Give each fresh name a free bit (the caller checked there are enough). */
static uint64_t take_tag_bits(mrt_lb_registry *r, const char *const *names, uint32_t n)
{
    uint64_t mask = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t freebits = ~r->tag_used;
        int b = __builtin_ctzll(freebits);
        r->tag_used |= 1ull << b;
        r->tag_refs[b] = 0;
        memcpy(r->tag_names[b], names[i], strlen(names[i]) + 1);
        mask |= 1ull << b;
    }
    return mask;
}

static void ref_tags(mrt_lb_registry *r, uint64_t mask)
{
    while (mask) {
        int b = __builtin_ctzll(mask);
        mask &= mask - 1;
        r->tag_refs[b]++;
    }
}

static void unref_tags(mrt_lb_registry *r, uint64_t mask)
{
    while (mask) {
        int b = __builtin_ctzll(mask);
        mask &= mask - 1;
        if (--r->tag_refs[b] == 0) {
            r->tag_used &= ~(1ull << b);
            r->tag_names[b][0] = '\0';
        }
    }
}

/* Bits of `mask` that only one holder references (freed if that holder lets go). */
static uint32_t releasable_bits(const mrt_lb_registry *r, uint64_t mask)
{
    uint32_t n = 0;
    while (mask) {
        int b = __builtin_ctzll(mask);
        mask &= mask - 1;
        if (r->tag_refs[b] == 1)
            n++;
    }
    return n;
}

/* ------------------------------------------------------------------ node-id index */

static uint32_t id_hash(const uint8_t node_id[MRT_LB_NODE_ID_LEN])
{
    return (uint32_t)XXH3_64bits(node_id, MRT_LB_NODE_ID_LEN);
}

/* Slot of node_id in the index, or of the empty slot where it would go. */
static uint32_t index_probe(const mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                            bool *found)
{
    uint32_t mask = r->index_cap - 1;
    uint32_t i = id_hash(node_id) & mask;
    for (;;) {
        uint32_t v = r->index[i];
        if (v == 0) {
            *found = false;
            return i;
        }
        if (memcmp(r->eps[v - 1].node_id, node_id, MRT_LB_NODE_ID_LEN) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static lb_ep *lookup(const mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN])
{
    if (node_id == NULL || r->index_cap == 0)
        return NULL;
    bool found;
    uint32_t i = index_probe(r, node_id, &found);
    return found ? &r->eps[r->index[i] - 1] : NULL;
}

/* Remove index slot i with backward-shift deletion (no tombstones). */
static void index_delete(mrt_lb_registry *r, uint32_t i)
{
    uint32_t mask = r->index_cap - 1;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t v = r->index[j];
        if (v == 0)
            break;
        uint32_t home = id_hash(r->eps[v - 1].node_id) & mask;
        /* Move v back to i when i lies cyclically in [home, j). */
        bool move = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            r->index[i] = v;
            i = j;
        }
    }
    r->index[i] = 0;
}

static int index_grow(mrt_lb_registry *r, uint32_t want_live)
{
    if (r->index_cap != 0 && (uint64_t)want_live * 2 <= r->index_cap)
        return MRT_OK;
    uint32_t ncap = r->index_cap ? r->index_cap : 64;
    while ((uint64_t)want_live * 2 > ncap)
        ncap *= 2;
    uint32_t *ni = mrt_calloc(&r->alloc, (size_t)ncap * sizeof(uint32_t));
    if (ni == NULL)
        return MRT_LB_ENOMEM;
    uint32_t *old = r->index;
    uint32_t oldcap = r->index_cap;
    r->index = ni;
    r->index_cap = ncap;
    for (uint32_t k = 0; k < oldcap; k++) {
        if (old[k] == 0)
            continue;
        bool found;
        uint32_t slot = index_probe(r, r->eps[old[k] - 1].node_id, &found);
        r->index[slot] = old[k];
    }
    mrt_free(&r->alloc, old, (size_t)oldcap * sizeof(uint32_t));
    return MRT_OK;
}

static int eps_grow(mrt_lb_registry *r, uint32_t want)
{
    if (want <= r->cap)
        return MRT_OK;
    uint32_t ncap = r->cap ? r->cap : 16;
    while (ncap < want)
        ncap *= 2;
    lb_ep *ne = mrt_realloc(&r->alloc, r->eps, (size_t)ncap * sizeof(lb_ep));
    if (ne == NULL)
        return MRT_LB_ENOMEM;
    r->eps = ne;
    uint32_t *nf = mrt_realloc(&r->alloc, r->free_ids, (size_t)ncap * sizeof(uint32_t));
    if (nf == NULL)
        return MRT_LB_ENOMEM; /* eps grew; harmless, cap unchanged */
    r->free_ids = nf;
    r->cap = ncap;
    return MRT_OK;
}

/* ------------------------------------------------------------------ lifecycle */

int mrt_lb_registry_create(const mrt_allocator *a, const mrt_lb_config *cfg,
                           mrt_lb_registry **out)
{
    if (out == NULL)
        return MRT_LB_EINVAL;
    mrt_lb_config c;
    if (cfg != NULL)
        c = *cfg;
    else
        mrt_lb_config_default(&c);
    int rc = lb_validate_config(&c);
    if (rc != MRT_OK)
        return rc;
    mrt_allocator al = mrt_allocator_or_default(a);
    mrt_lb_registry *r = mrt_calloc(&al, sizeof(*r));
    if (r == NULL)
        return MRT_LB_ENOMEM;
    r->alloc = al;
    r->cfg = c;
    *out = r;
    return MRT_OK;
}

void mrt_lb_registry_destroy(mrt_lb_registry *r)
{
    if (r == NULL)
        return;
    mrt_allocator a = r->alloc;
    mrt_free(&a, r->eps, (size_t)r->cap * sizeof(lb_ep));
    mrt_free(&a, r->free_ids, (size_t)r->cap * sizeof(uint32_t));
    mrt_free(&a, r->index, (size_t)r->index_cap * sizeof(uint32_t));
    mrt_free(&a, r, sizeof(*r));
}

int mrt_lb_registry_set_config(mrt_lb_registry *r, const mrt_lb_config *cfg)
{
    if (r == NULL || cfg == NULL)
        return MRT_LB_EINVAL;
    int rc = lb_validate_config(cfg);
    if (rc != MRT_OK)
        return rc;
    r->cfg = *cfg;
    return MRT_OK;
}

void mrt_lb_registry_config(const mrt_lb_registry *r, mrt_lb_config *out)
{
    if (r != NULL && out != NULL)
        *out = r->cfg;
}

/* ------------------------------------------------------------------ endpoints */

/* Everything add/update need, resolved without touching the registry. */
typedef struct spec_plan {
    uint64_t known_tags;
    uint32_t fresh;
    const char *fresh_names[MRT_LB_MAX_TAGS];
    int zone;           /* existing zone id, -1 none, -2 new */
} spec_plan;

static int plan_spec(const mrt_lb_registry *r, const mrt_lb_endpoint_spec *s, spec_plan *p)
{
    int rc = validate_weight(s->weight);
    if (rc != MRT_OK)
        return rc;
    rc = validate_health(s->health);
    if (rc != MRT_OK)
        return rc;
    rc = validate_metrics(&s->metrics);
    if (rc != MRT_OK)
        return rc;
    if (s->ntags > MRT_LB_MAX_TAGS)
        return MRT_LB_ETOOMANYTAGS;
    rc = plan_tags(r, s->tags, s->ntags, &p->known_tags, &p->fresh, p->fresh_names);
    if (rc != MRT_OK)
        return rc;
    p->zone = -1;
    if (s->zone != NULL && s->zone[0] != '\0') {
        rc = validate_name(s->zone);
        if (rc != MRT_OK)
            return rc;
        p->zone = find_zone(r, s->zone);
        if (p->zone < 0) {
            if (r->nzones >= MRT_LB_MAX_ZONES)
                return MRT_LB_ETOOMANYZONES;
            p->zone = -2;
        }
    }
    return MRT_OK;
}

static uint16_t commit_zone(mrt_lb_registry *r, const mrt_lb_endpoint_spec *s, int planned)
{
    if (planned == -1)
        return MRT_LB_ZONE_NONE;
    if (planned >= 0)
        return (uint16_t)planned;
    uint32_t z = r->nzones++;
    memcpy(r->zone_names[z], s->zone, strlen(s->zone) + 1);
    return (uint16_t)z;
}

static void fill_ep(lb_ep *e, const mrt_lb_endpoint_spec *s, uint16_t zone, uint64_t tags)
{
    e->weight = s->weight;
    e->priority = s->priority;
    e->zone = zone;
    e->health = (uint8_t)s->health;
    e->enabled = s->enabled;
    e->tags = tags;
    e->metrics = s->metrics;
    e->load_score = mrt_lb_load_score(&s->metrics);
    e->user_data = s->user_data;
}

int mrt_lb_registry_add(mrt_lb_registry *r, const mrt_lb_endpoint_spec *s, uint32_t *id_out)
{
    if (r == NULL || s == NULL)
        return MRT_LB_EINVAL;
    if (lookup(r, s->node_id) != NULL)
        return MRT_LB_EDUPLICATE;
    spec_plan p;
    int rc = plan_spec(r, s, &p);
    if (rc != MRT_OK)
        return rc;
    if (p.fresh > (uint32_t)(MRT_LB_MAX_TAGS - __builtin_popcountll(r->tag_used)))
        return MRT_LB_ETOOMANYTAGS;
    if (r->count >= MRT_LB_MAX_ENDPOINTS)
        return MRT_LB_ECAPACITY;
    /* Allocate before changing anything visible. */
    if (r->nfree == 0 && (rc = eps_grow(r, r->next_id + 1)) != MRT_OK)
        return rc;
    if ((rc = index_grow(r, r->count + 1)) != MRT_OK)
        return rc;

    uint32_t id;
    uint32_t gen;
    if (r->nfree > 0) {
        id = r->free_ids[--r->nfree];
        gen = r->eps[id].gen + 1;
    } else {
        id = r->next_id++;
        gen = 1;
    }
    uint64_t tags = p.known_tags | take_tag_bits(r, p.fresh_names, p.fresh);
    ref_tags(r, tags);
    uint16_t zone = commit_zone(r, s, p.zone);
    lb_ep *e = &r->eps[id];
    memset(e, 0, sizeof(*e));
    memcpy(e->node_id, s->node_id, MRT_LB_NODE_ID_LEN);
    e->gen = gen;
    e->live = true;
    fill_ep(e, s, zone, tags);
    bool found;
    uint32_t slot = index_probe(r, e->node_id, &found);
    r->index[slot] = id + 1;
    r->count++;
    if (id_out)
        *id_out = id;
    return MRT_OK;
}

int mrt_lb_registry_update(mrt_lb_registry *r, const mrt_lb_endpoint_spec *s)
{
    if (r == NULL || s == NULL)
        return MRT_LB_EINVAL;
    lb_ep *e = lookup(r, s->node_id);
    if (e == NULL)
        return MRT_LB_ENOTFOUND;
    spec_plan p;
    int rc = plan_spec(r, s, &p);
    if (rc != MRT_OK)
        return rc;
    /* Bits this endpoint alone holds and no longer wants come free first. */
    uint64_t dropped = e->tags & ~p.known_tags;
    uint32_t avail = (uint32_t)(MRT_LB_MAX_TAGS - __builtin_popcountll(r->tag_used)) +
                     releasable_bits(r, dropped);
    if (p.fresh > avail)
        return MRT_LB_ETOOMANYTAGS;
    /* Keep the bits still wanted alive before letting go of the old set. */
    ref_tags(r, p.known_tags);
    unref_tags(r, e->tags);
    uint64_t fresh = take_tag_bits(r, p.fresh_names, p.fresh);
    ref_tags(r, fresh);
    uint16_t zone = commit_zone(r, s, p.zone);
    fill_ep(e, s, zone, p.known_tags | fresh);
    return MRT_OK;
}

int mrt_lb_registry_remove(mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN])
{
    if (r == NULL || node_id == NULL)
        return MRT_LB_EINVAL;
    if (r->index_cap == 0)
        return MRT_LB_ENOTFOUND;
    bool found;
    uint32_t slot = index_probe(r, node_id, &found);
    if (!found)
        return MRT_LB_ENOTFOUND;
    uint32_t id = r->index[slot] - 1;
    index_delete(r, slot);
    lb_ep *e = &r->eps[id];
    unref_tags(r, e->tags);
    e->live = false;
    e->tags = 0;
    r->free_ids[r->nfree++] = id;
    r->count--;
    return MRT_OK;
}

int mrt_lb_registry_set_health(mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                               mrt_lb_health h)
{
    if (r == NULL || node_id == NULL)
        return MRT_LB_EINVAL;
    lb_ep *e = lookup(r, node_id);
    if (e == NULL)
        return MRT_LB_ENOTFOUND;
    int rc = validate_health(h);
    if (rc != MRT_OK)
        return rc;
    e->health = (uint8_t)h;
    /* A health verdict supersedes a shard's breaker report. */
    if (h == MRT_LB_HEALTHY)
        e->tripped_until = 0;
    return MRT_OK;
}

int mrt_lb_registry_set_weight(mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                               int64_t weight)
{
    if (r == NULL || node_id == NULL)
        return MRT_LB_EINVAL;
    lb_ep *e = lookup(r, node_id);
    if (e == NULL)
        return MRT_LB_ENOTFOUND;
    int rc = validate_weight(weight);
    if (rc != MRT_OK)
        return rc;
    e->weight = weight;
    return MRT_OK;
}

int mrt_lb_registry_set_enabled(mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                                bool enabled)
{
    if (r == NULL || node_id == NULL)
        return MRT_LB_EINVAL;
    lb_ep *e = lookup(r, node_id);
    if (e == NULL)
        return MRT_LB_ENOTFOUND;
    e->enabled = enabled;
    return MRT_OK;
}

int mrt_lb_registry_update_metrics(mrt_lb_registry *r,
                                   const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                                   const mrt_lb_metrics *m)
{
    if (r == NULL || node_id == NULL || m == NULL)
        return MRT_LB_EINVAL;
    lb_ep *e = lookup(r, node_id);
    if (e == NULL)
        return MRT_LB_ENOTFOUND;
    int rc = validate_metrics(m);
    if (rc != MRT_OK)
        return rc;
    e->metrics = *m;
    e->load_score = mrt_lb_load_score(m);
    return MRT_OK;
}

int mrt_lb_registry_get(const mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                        mrt_lb_endpoint_info *out)
{
    if (r == NULL || node_id == NULL || out == NULL)
        return MRT_LB_EINVAL;
    const lb_ep *e = lookup(r, node_id);
    if (e == NULL)
        return MRT_LB_ENOTFOUND;
    out->id = (uint32_t)(e - r->eps);
    out->generation = e->gen;
    out->weight = e->weight;
    out->priority = e->priority;
    out->zone = e->zone;
    out->enabled = e->enabled;
    out->health = (mrt_lb_health)e->health;
    out->tags = e->tags;
    out->metrics = e->metrics;
    out->load_score = e->load_score;
    out->tripped_until_ns = e->tripped_until;
    out->user_data = e->user_data;
    return MRT_OK;
}

uint32_t mrt_lb_registry_count(const mrt_lb_registry *r)
{
    return r ? r->count : 0;
}

int mrt_lb_registry_zone(mrt_lb_registry *r, const char *name, uint16_t *zone_out)
{
    if (r == NULL || zone_out == NULL)
        return MRT_LB_EINVAL;
    int rc = validate_name(name);
    if (rc != MRT_OK)
        return rc;
    int z = find_zone(r, name);
    if (z < 0) {
        if (r->nzones >= MRT_LB_MAX_ZONES)
            return MRT_LB_ETOOMANYZONES;
        z = (int)r->nzones++;
        memcpy(r->zone_names[z], name, strlen(name) + 1);
    }
    *zone_out = (uint16_t)z;
    return MRT_OK;
}

/* ------------------------------------------------------------------ filters */

int mrt_lb_registry_declare_filter(mrt_lb_registry *r, const char *const *tags, size_t n,
                                   uint64_t *mask_out)
{
    if (r == NULL || mask_out == NULL || n == 0 || tags == NULL)
        return MRT_LB_EINVAL;
    if (n > MRT_LB_MAX_TAGS)
        return MRT_LB_ETOOMANYTAGS;
    uint64_t known;
    uint32_t fresh;
    const char *fresh_names[MRT_LB_MAX_TAGS];
    int rc = plan_tags(r, tags, n, &known, &fresh, fresh_names);
    if (rc != MRT_OK)
        return rc;
    if (fresh > (uint32_t)(MRT_LB_MAX_TAGS - __builtin_popcountll(r->tag_used)))
        return MRT_LB_ETOOMANYTAGS;
    /* With fresh names the mask is new; otherwise it may already be declared. */
    if (fresh == 0) {
        for (uint32_t i = 0; i < r->nfilters; i++)
            if (r->filter_masks[i] == known) {
                r->filter_refs[i]++;
                ref_tags(r, known);
                *mask_out = known;
                return MRT_OK;
            }
    }
    if (r->nfilters >= MRT_LB_MAX_FILTERS)
        return MRT_LB_ECAPACITY;
    uint64_t mask = known | take_tag_bits(r, fresh_names, fresh);
    ref_tags(r, mask);
    r->filter_masks[r->nfilters] = mask;
    r->filter_refs[r->nfilters] = 1;
    r->nfilters++;
    *mask_out = mask;
    return MRT_OK;
}

int mrt_lb_registry_undeclare_filter(mrt_lb_registry *r, uint64_t mask)
{
    if (r == NULL || mask == 0)
        return MRT_LB_EINVAL;
    for (uint32_t i = 0; i < r->nfilters; i++) {
        if (r->filter_masks[i] != mask)
            continue;
        unref_tags(r, mask);
        if (--r->filter_refs[i] == 0) {
            r->nfilters--;
            r->filter_masks[i] = r->filter_masks[r->nfilters];
            r->filter_refs[i] = r->filter_refs[r->nfilters];
        }
        return MRT_OK;
    }
    return MRT_LB_ENOTFOUND;
}

int mrt_lb_registry_tag_bit(const mrt_lb_registry *r, const char *name, uint64_t *bit_out)
{
    if (r == NULL || bit_out == NULL)
        return MRT_LB_EINVAL;
    int rc = validate_name(name);
    if (rc != MRT_OK)
        return rc;
    int b = find_tag(r, name);
    if (b < 0)
        return MRT_LB_ENOTFOUND;
    *bit_out = 1ull << b;
    return MRT_OK;
}

/* ------------------------------------------------------------------ breaker reports */

int mrt_lb_registry_apply_report(mrt_lb_registry *r, const mrt_lb_breaker_report *rep)
{
    if (r == NULL || rep == NULL)
        return MRT_LB_EINVAL;
    if (rep->endpoint_id >= r->next_id)
        return MRT_LB_ENOTFOUND;
    lb_ep *e = &r->eps[rep->endpoint_id];
    if (!e->live || e->gen != rep->generation)
        return MRT_LB_ENOTFOUND;
    uint64_t until = rep->opened_at_ns + r->cfg.recovery_ns;
    if (until < rep->opened_at_ns)
        until = UINT64_MAX;
    if (until > e->tripped_until)
        e->tripped_until = until;
    return MRT_OK;
}

uint64_t mrt_lb_registry_next_change_ns(const mrt_lb_registry *r, uint64_t now_ns)
{
    uint64_t next = UINT64_MAX;
    if (r == NULL)
        return next;
    for (uint32_t id = 0; id < r->next_id; id++) {
        const lb_ep *e = &r->eps[id];
        if (e->live && e->tripped_until > now_ns && e->tripped_until < next)
            next = e->tripped_until;
    }
    return next;
}
