/*
 * Fuzz target: the fork record decoder (mrt_fork_record_decode).
 *
 * Invariants checked:
 *  - only exactly MRT_FORK_RECORD_SIZE bytes can decode; any other length
 *    is MRT_DAEMON_ETRUNCATED (shorter) or MRT_DAEMON_EINCONSISTENT (longer);
 *  - a decoded record verifies and re-encodes to the input byte for byte;
 *  - a refused record leaves the output untouched;
 *  - a decoded record gives a receiver chain positioned after its genesis.
 */
#include "fuzz/fuzz_target.h"
#include "meshrt/mrt_daemon.h"

#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy, so reading past the end is caught. */
    uint8_t *buf = calloc(1, size ? size : 1);
    check(buf != NULL);
    if (size)
        memcpy(buf, data, size);
    mrt_fork_record r, before;
    memset(&r, 0xA5, sizeof r);
    before = r;
    int rc = mrt_fork_record_decode(buf, size, &r);
    if (size < MRT_FORK_RECORD_SIZE) {
        check(rc == MRT_DAEMON_ETRUNCATED);
    } else if (size > MRT_FORK_RECORD_SIZE) {
        check(rc == MRT_DAEMON_EINCONSISTENT);
    } else if (rc == MRT_OK) {
        check(mrt_fork_record_verify(&r) == MRT_OK);
        uint8_t again[MRT_FORK_RECORD_SIZE];
        mrt_fork_record_encode(&r, again);
        check(memcmp(again, buf, sizeof again) == 0);
        mrt_causal_chain c;
        check(mrt_fork_chain_init(&c, &r) == MRT_OK);
        check(c.has_head && c.head.sequence == 0 && c.origin_hash == r.forked_origin);
    } else {
        check(rc == MRT_DAEMON_ELINEAGE || rc == MRT_DAEMON_EINCONSISTENT);
    }
    if (rc != MRT_OK)
        check(memcmp(&r, &before, sizeof r) == 0);
    free(buf);
    return 0;
}
