/*
 * Fuzz target: the host snapshot decoder (mrt_host_snapshot_decode) and
 * mrt_host_restore.
 *
 * Input: one mode byte, then the snapshot bytes. Mode bit 0 recomputes the
 * trailing checksum and bit 1 writes the fuzz host's origin into the header
 * (and the head link when the head flag is set) before decoding, so that
 * mutations reach the checks behind the checksum and the origin test.
 * Invariants checked:
 *  - decode returns MRT_OK or one of its documented errors;
 *  - an accepted snapshot has strictly ascending origins and lies inside
 *    the input;
 *  - a snapshot the host restores is re-emitted byte for byte by
 *    mrt_host_snapshot (restore is exact, the format canonical);
 *  - a refused restore leaves the host's snapshot unchanged.
 */
#include "daemons/daemon_internal.h"
#include "fuzz/fuzz_target.h"
#include "meshrt/mrt_daemon.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MAX_STATE 4096u
#define MAX_ORIGINS 1024u
#define FUZZ_MAX_INPUT (MRT_HOST_SNAPSHOT_HEADER_SIZE + 16u * 4096u + MAX_STATE + 8u)

static void check(int cond)
{
    if (!cond)
        abort();
}

/* A daemon whose state is an opaque blob of up to MAX_STATE bytes. */
struct blob {
    uint8_t bytes[MAX_STATE];
    size_t len;
};

static int blob_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)st;
    (void)ev;
    (void)sink;
    return MRT_OK;
}

static int blob_snapshot(const void *st, void *buf, size_t cap, size_t *len)
{
    const struct blob *b = st;
    *len = b->len;
    if (b->len == 0)
        return MRT_OK;
    if (buf == NULL || cap < b->len)
        return MRT_DAEMON_ENOSPACE;
    memcpy(buf, b->bytes, b->len);
    return MRT_OK;
}

static int blob_restore(void *st, const void *buf, size_t len)
{
    struct blob *b = st;
    if (len > MAX_STATE)
        return MRT_DAEMON_EBADSTATE;
    if (len > 0)
        memcpy(b->bytes, buf, len);
    b->len = len;
    return MRT_OK;
}

static const mrt_daemon_vtable blob_vt = {
    .name = "blob",
    .process = blob_process,
    .snapshot = blob_snapshot,
    .restore = blob_restore,
};

/* A fresh host per input: an input's outcome must not depend on the ones before it. */
static mrt_host *fuzz_host(struct blob *state)
{
    mrt_host *h = NULL;
    mrt_host_config c;
    memset(&c, 0, sizeof c);
    memset(c.key, 0xF0, sizeof c.key);
    c.max_origins = MAX_ORIGINS;
    c.max_state = MAX_STATE;
    memset(state, 0, sizeof *state);
    mrt_daemon d = { &blob_vt, state };
    check(mrt_host_create(&c, d, &h) == MRT_OK);
    return h;
}

static int known_decode_error(int rc)
{
    return rc == MRT_DAEMON_ETRUNCATED || rc == MRT_DAEMON_EMAGIC || rc == MRT_DAEMON_EVERSION ||
           rc == MRT_DAEMON_EOVERSIZED || rc == MRT_DAEMON_EINCONSISTENT ||
           rc == MRT_DAEMON_ECHECKSUM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Scratch, refilled per input: distinct fills, so unwritten bytes never match. */
    static uint8_t again[FUZZ_MAX_INPUT];
    static uint8_t before[FUZZ_MAX_INPUT];
    static struct blob state;
    if (size < 1 || size - 1 > FUZZ_MAX_INPUT)
        return 0;
    uint8_t mode = data[0];
    size_t len = size - 1;
    /* An exact-size heap copy, so reading past the end is caught. */
    uint8_t *buf = malloc(len ? len : 1);
    check(buf != NULL);
    if (len)
        memcpy(buf, data + 1, len);
    mrt_host *h = fuzz_host(&state);
    if ((mode & 2) && len >= MRT_HOST_SNAPSHOT_HEADER_SIZE) {
        mrt_dm_store_le64(buf + 8, mrt_host_origin(h));
        if (buf[6] & 1)
            mrt_dm_store_le64(buf + 24, mrt_host_origin(h));
    }
    if ((mode & 1) && len >= 8)
        mrt_dm_store_le64(buf + len - 8, XXH3_64bits(buf, len - 8));

    mrt_host_snapshot_view v;
    int rc = mrt_host_snapshot_decode(buf, len, MAX_STATE, MAX_ORIGINS, &v);
    if (rc == MRT_OK) {
        check(v.origin_count <= MAX_ORIGINS && v.state_len <= MAX_STATE);
        check(v.origins >= buf && v.state + v.state_len + 8 == buf + len);
        for (uint32_t i = 1; i < v.origin_count; i++) {
            const uint8_t *o = v.origins + 16 * i;
            check(mrt_dm_load_le64(o) > mrt_dm_load_le64(o - 16));
        }
        check(!v.has_head || v.head.sequence == v.through_sequence);
    } else {
        check(known_decode_error(rc));
    }

    memset(before, 0xA5, sizeof before);
    memset(again, 0x5A, sizeof again);
    size_t blen = 0;
    check(mrt_host_snapshot(h, before, sizeof before, &blen) == MRT_OK);
    int rrc = mrt_host_restore(h, buf, len);
    size_t alen = 0;
    check(mrt_host_snapshot(h, again, sizeof again, &alen) == MRT_OK);
    if (rrc == MRT_OK) {
        check(rc == MRT_OK);
        check(alen == len && memcmp(again, buf, len) == 0);
    } else {
        check(alen == blen && memcmp(again, before, blen) == 0);
        check(rc != MRT_OK || rrc == MRT_DAEMON_EORIGIN || rrc == MRT_DAEMON_EHORIZONFULL ||
              rrc == MRT_DAEMON_EBADSTATE);
    }
    mrt_host_destroy(h);
    free(buf);
    return 0;
}
