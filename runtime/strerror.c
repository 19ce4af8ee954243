/* One name for every meshrt status code, whichever module owns it. */
#include "meshrt/mrt_balancer.h"
#include "meshrt/mrt_compute.h"
#include "meshrt/mrt_daemon.h"
#include "meshrt/mrt_groups.h"
#include "meshrt/mrt_metrics.h"
#include "meshrt/mrt_perf.h"
#include "meshrt/mrt_runtime.h"
#include "meshrt/mrt_sched.h"
#include "meshrt/mrt_services.h"

static const char *runtime_strerror(int status)
{
    switch (status) {
    case MRT_RT_EFLAG: return "unknown flag";
    case MRT_RT_EVALUE: return "missing or invalid flag value";
    case MRT_RT_ESHARDS: return "the selection yields no usable shard";
    case MRT_RT_ERINGPOW2: return "ring size is not a power of two";
    case MRT_RT_ERINGBURST: return "ring size is not larger than the burst size";
    case MRT_RT_EBURST: return "burst size outside 1..256";
    case MRT_RT_ECONFLICT: return "--numa-node and --cpuset are exclusive";
    case MRT_RT_EBIND: return "a shard could not be bound to its CPU or memory";
    case MRT_RT_ETHREAD: return "a shard thread could not be started";
    case MRT_RT_EDURATION: return "duration must be a non-negative number of seconds";
    case MRT_RT_EREPEAT: return "a flag was given more than once";
    case MRT_RT_ECMDFLAG: return "the flag does not apply to this command";
    case MRT_RT_EMETRICS_ADDR: return "metrics endpoint is not ADDR:PORT";
    case MRT_RT_EMETRICS_INUSE: return "metrics endpoint: the port is already in use";
    case MRT_RT_EMETRICS_REMOTE: return "metrics endpoint: a non-loopback address was not allowed";
    case MRT_RT_EMETRICS_LISTEN: return "metrics endpoint: cannot listen on that address";
    default: return NULL;
    }
}

const char *mrt_strerror(int status)
{
    const char *s = NULL;
    if (status <= 0 && status > MRT_ERANGE_CORE_MIN - 1)
        s = mrt_core_strerror(status);
    else if (status <= MRT_ERANGE_CORE_MIN - 1 && status >= MRT_ERANGE_TOPO_MIN)
        s = mrt_topo_strerror(status);
    else if (status <= MRT_ERANGE_TOPO_MIN - 1 && status >= MRT_ERANGE_SHARD_MIN)
        s = mrt_shard_strerror(status);
    else if (status <= MRT_ERANGE_SHARD_MIN - 1 && status >= MRT_ERANGE_RUNTIME_MIN)
        s = runtime_strerror(status);
    else if (status <= MRT_ERANGE_RUNTIME_MIN - 1 && status >= MRT_ERANGE_LB_MIN)
        s = mrt_lb_strerror(status);
    else if (status <= MRT_ERANGE_LB_MIN - 1 && status >= MRT_ERANGE_DAEMON_MIN)
        s = mrt_daemon_strerror(status);
    else if (status <= MRT_ERANGE_DAEMON_MIN - 1 && status >= MRT_ERANGE_PERF_MIN)
        s = mrt_perf_strerror(status);
    else if (status <= MRT_ERANGE_PERF_MIN - 1 && status >= MRT_ERANGE_SVC_MIN)
        s = mrt_svc_strerror(status);
    else if (status <= MRT_ERANGE_SVC_MIN - 1 && status >= MRT_ERANGE_COMPUTE_MIN)
        s = mrt_compute_strerror(status);
    else if (status <= MRT_ERANGE_COMPUTE_MIN - 1 && status >= MRT_ERANGE_SCHED_MIN)
        s = mrt_sched_strerror(status);
    else if (status <= MRT_ERANGE_SCHED_MIN - 1 && status >= MRT_ERANGE_GROUPS_MIN)
        s = mrt_groups_strerror(status);
    return s ? s : "unknown status";
}
