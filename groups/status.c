/* Names of the daemon groups' status codes. */
#include "meshrt/mrt_groups.h"

const char *mrt_groups_strerror(int status)
{
    switch (status) {
    case MRT_GROUPS_EINVAL: return "invalid argument";
    case MRT_GROUPS_ENOMEM: return "out of memory";
    case MRT_GROUPS_ELIMIT: return "a fixed groups table is full";
    case MRT_GROUPS_ESTATE: return "not in this phase of the runtime";
    case MRT_GROUPS_ENOGROUP: return "the group was destroyed";
    case MRT_GROUPS_ESPREAD: return "strict spread: no free eligible shard for a member";
    case MRT_GROUPS_ENOPLACE: return "no eligible shard for a member";
    case MRT_GROUPS_ENOMEMBER: return "no routable member";
    case MRT_GROUPS_EMAXCONN: return "every routable member is at max connections";
    case MRT_GROUPS_ESTALE: return "fencing: the event's term is older than the member's";
    case MRT_GROUPS_EFENCED: return "fencing: the member is older than the event's term";
    case MRT_GROUPS_ESPAWN: return "a member could not be spawned (rolled back)";
    case MRT_GROUPS_EKIND: return "not for this group kind";
    case MRT_GROUPS_ENOTYPE: return "not a groups daemon type";
    case MRT_GROUPS_ETOOBIG: return "payload or spawn argument too large";
    case MRT_GROUPS_EENVELOPE: return "an event without a group envelope reached a member";
    case MRT_GROUPS_ENOSTANDBY: return "no healthy synced standby to promote (nothing changed)";
    case MRT_GROUPS_ELINEAGE: return "the fork group's lineage does not verify";
    default: return NULL;
    }
}
