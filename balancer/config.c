/*
 * The balancer's vocabulary: its status codes' names, the strategies'
 * names, the configuration's defaults and its validation, and the
 * initialisers of an endpoint spec and a request.
 */
#include "balancer/lb_internal.h"

#include <string.h>

const char *mrt_lb_strerror(int status)
{
    switch (status) {
    case MRT_LB_EINVAL: return "balancer: invalid argument";
    case MRT_LB_ENOMEM: return "balancer: out of memory";
    case MRT_LB_EDUPLICATE: return "balancer: duplicate endpoint node id";
    case MRT_LB_ENOTFOUND: return "balancer: no such endpoint";
    case MRT_LB_EWEIGHT: return "balancer: weight must be in 1..1000000";
    case MRT_LB_EMETRIC: return "balancer: load metric NaN, infinite or out of range";
    case MRT_LB_ETOOMANYTAGS: return "balancer: more than 64 distinct tags";
    case MRT_LB_ENAME: return "balancer: tag or zone name empty or too long";
    case MRT_LB_EHEALTH: return "balancer: invalid health value";
    case MRT_LB_ETOOMANYZONES: return "balancer: too many zones";
    case MRT_LB_ECAPACITY: return "balancer: too many endpoints or filters";
    case MRT_LB_ECONFIG: return "balancer: configuration out of range";
    case MRT_LB_ENOENDPOINTS: return "balancer: no endpoints";
    case MRT_LB_EALLUNHEALTHY: return "balancer: no available endpoint";
    case MRT_LB_ENOTAGMATCH: return "balancer: no endpoint with the required tags";
    case MRT_LB_ENOZONE: return "balancer: no endpoint in the client zone";
    case MRT_LB_ECIRCUITOPEN: return "balancer: circuit open";
    case MRT_LB_EMAXCONN: return "balancer: max connections reached";
    case MRT_LB_EFILTER: return "balancer: required tags not declared as a filter";
    case MRT_LB_ENOTADOPTED: return "balancer: snapshot not adopted by this shard";
    case MRT_LB_ECOMPLETED: return "balancer: selection already completed";
    case MRT_LB_ESTALE: return "balancer: stale completion";
    default:
        if (status <= -400 && status >= MRT_ERANGE_LB_MIN)
            return "balancer: unknown error";
        return NULL;
    }
}

static const char *const strategy_names[MRT_LB_STRATEGY_COUNT] = {
    "rr", "wrr", "lc", "wlc", "random", "wrandom", "ch", "maglev", "latency", "load", "p2c",
    "adaptive",
};

const char *mrt_lb_strategy_name(mrt_lb_strategy s)
{
    if ((unsigned)s >= MRT_LB_STRATEGY_COUNT)
        return NULL;
    return strategy_names[s];
}

void mrt_lb_config_default(mrt_lb_config *c)
{
    if (c == NULL)
        return;
    memset(c, 0, sizeof(*c));
    c->strategy = MRT_LB_ROUND_ROBIN;
    c->vnodes = 150;
    c->maglev_size = 65537;
    c->max_connections = 0;
    c->breaker_threshold = 5;
    c->recovery_ns = 30ull * 1000000000ull;
    c->zone_fallback = true;
    c->wrr_max_period = 1u << 18;
    c->latency_alpha = 0.2;
}

bool lb_is_prime(uint32_t m)
{
    if (m < 2)
        return false;
    if (m % 2 == 0)
        return m == 2;
    for (uint32_t d = 3; (uint64_t)d * d <= m; d += 2)
        if (m % d == 0)
            return false;
    return true;
}

int lb_validate_config(const mrt_lb_config *c)
{
    if ((unsigned)c->strategy >= MRT_LB_STRATEGY_COUNT)
        return MRT_LB_ECONFIG;
    if (c->vnodes < 1 || c->vnodes > 4096)
        return MRT_LB_ECONFIG;
    if (c->maglev_size < 7 || c->maglev_size > 16777259u || !lb_is_prime(c->maglev_size))
        return MRT_LB_ECONFIG;
    if (c->recovery_ns < 1000000ull)
        return MRT_LB_ECONFIG;
    if (c->wrr_max_period < 16 || c->wrr_max_period > (1u << 24))
        return MRT_LB_ECONFIG;
    if (!(c->latency_alpha > 0.0 && c->latency_alpha <= 1.0))
        return MRT_LB_ECONFIG;
    return MRT_OK;
}

double mrt_lb_load_score(const mrt_lb_metrics *m)
{
    if (m == NULL)
        return 0.0;
    double conns = m->active_connections / 10000.0;
    double rt = m->avg_response_ms / 1000.0;
    return 0.3 * m->cpu + 0.2 * m->memory + 0.2 * (conns < 1.0 ? conns : 1.0) +
           0.15 * (rt < 1.0 ? rt : 1.0) + 0.15 * m->error_rate;
}

void mrt_lb_endpoint_spec_init(mrt_lb_endpoint_spec *s, const uint8_t node_id[MRT_LB_NODE_ID_LEN])
{
    if (s == NULL)
        return;
    memset(s, 0, sizeof(*s));
    if (node_id != NULL)
        memcpy(s->node_id, node_id, MRT_LB_NODE_ID_LEN);
    s->weight = MRT_LB_DEFAULT_WEIGHT;
    s->enabled = true;
    s->health = MRT_LB_HEALTHY;
}

void mrt_lb_request_init(mrt_lb_request *rq)
{
    if (rq == NULL)
        return;
    memset(rq, 0, sizeof(*rq));
    rq->zone = MRT_LB_ZONE_NONE;
}
