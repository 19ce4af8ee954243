/* Names of the scheduler's status codes. */
#include "meshrt/mrt_sched.h"

#include <stddef.h>

const char *mrt_sched_strerror(int status)
{
    switch (status) {
    case MRT_SCHED_EINVAL: return "scheduler: NULL pointer or argument out of range";
    case MRT_SCHED_ENOMEM: return "scheduler: out of memory";
    case MRT_SCHED_ESHARD: return "scheduler: shard index out of range";
    case MRT_SCHED_ENAME: return "scheduler: bad tag name (empty, too long, not printable, or a "
                                 "built-in tag without a number)";
    case MRT_SCHED_ERESERVED: return "scheduler: user tags may not start with numa:, core: or shard:";
    case MRT_SCHED_ETOOMANYTAGS: return "scheduler: more than 64 distinct user tags";
    case MRT_SCHED_ELOAD: return "scheduler: load field NaN, infinite or out of range";
    case MRT_SCHED_EFILTERFULL: return "scheduler: too many optional built-in tags in one filter";
    case MRT_SCHED_ENOCANDIDATE: return "scheduler: no eligible shard (filter, veto, drain or failure)";
    case MRT_SCHED_EEXCLUDED: return "scheduler: every matching shard is excluded";
    case MRT_SCHED_ESPREAD: return "scheduler: strict spread needs more distinct shards than are eligible";
    default: return NULL;
    }
}
