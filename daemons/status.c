/* Names of the daemon module's status codes. */
#include "meshrt/mrt_daemon.h"

#include <stddef.h>

static const char *const names[] = {
    [0] = "link origin does not match the chain",
    [1] = "sequence is not exactly previous + 1",
    [2] = "parent hash does not match the previous link and payload",
    [3] = "sequence would overflow",
    [4] = "input truncated",
    [5] = "length exceeds the maximum",
    [6] = "length or header fields disagree",
    [7] = "bad snapshot magic",
    [8] = "unsupported snapshot version",
    [9] = "snapshot checksum mismatch",
    [10] = "output sink full",
    [11] = "horizon full",
    [12] = "stateless daemon given state",
    [13] = "output buffer too small",
    [14] = "outputs of the previous deliver not released",
    [15] = "daemon returned a non-status value",
    [16] = "daemon rejected its state",
    [17] = "horizon probe bound reached for a new origin",
    [18] = "fork lineage does not verify",
    [19] = "ingress index out of order",
    [20] = "standby too far behind: full re-sync needed",
};

const char *mrt_daemon_strerror(int status)
{
    if (status > MRT_DAEMON_EORIGIN || status < MRT_ERANGE_DAEMON_MIN)
        return NULL;
    size_t i = (size_t)(MRT_DAEMON_EORIGIN - status);
    if (i < sizeof names / sizeof names[0] && names[i] != NULL)
        return names[i];
    return "unknown daemon status";
}
