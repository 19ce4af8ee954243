/*
 * Writes the seed corpus of the daemons fuzz targets: valid inputs built
 * with the library, plus one input per decoder error. Usage:
 *   gen_corpus DIR   (writes DIR/frame/..., DIR/snapshot/... and DIR/fork/...)
 * Built only in the fuzz build (target fuzz_gen_corpus); the output is
 * committed under fuzz/corpus/.
 */
#include "daemons/daemon_internal.h"
#include "meshrt/mrt_daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static const char *root;

static void put(const char *target, const char *name, const uint8_t *mode, const void *p,
                size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    if (mode != NULL)
        fwrite(mode, 1, 1, f);
    if (n > 0)
        fwrite(p, 1, n, f);
    fclose(f);
}

static void frames(void)
{
    uint8_t buf[4096];
    size_t off = 0, w;
    mrt_causal_chain c;
    mrt_causal_chain_init(&c, 0xC0FFEE);
    /* A valid chain of five frames, payloads 0, 1, 17, 64, 200 bytes. */
    static const size_t lens[] = { 0, 1, 17, 64, 200 };
    uint8_t payload[200];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 13 + 5);
    for (size_t i = 0; i < 5; i++) {
        mrt_causal_link l;
        mrt_causal_chain_append(&c, 0x0102040810204080ull, payload, lens[i], &l);
        mrt_frame_encode(&l, payload, lens[i], buf + off, sizeof buf - off, &w);
        if (i == 0)
            put("frame", "single_empty", NULL, buf, w);
        off += w;
    }
    put("frame", "chain_of_5", NULL, buf, off);
    /* The chain with a gap (frame 2 dropped) and with a corrupted payload byte. */
    size_t f0 = MRT_FRAME_HEADER_SIZE, f1 = f0 + MRT_FRAME_HEADER_SIZE + 1;
    size_t f2 = f1 + MRT_FRAME_HEADER_SIZE + 17;
    uint8_t gap[4096];
    memcpy(gap, buf, f1);
    memcpy(gap + f1, buf + f2, off - f2);
    put("frame", "chain_gap", NULL, gap, off - (f2 - f1));
    buf[f1 + MRT_FRAME_HEADER_SIZE] ^= 1;
    put("frame", "chain_bad_parent", NULL, buf, off);
    buf[f1 + MRT_FRAME_HEADER_SIZE] ^= 1;
    put("frame", "truncated_body", NULL, buf, f1 + 10);
    put("frame", "truncated_length", NULL, buf, 3);
    uint8_t small[MRT_FRAME_HEADER_SIZE] = { 0 };
    mrt_dm_store_le32(small, 20);
    put("frame", "total_below_header", NULL, small, sizeof small);
    mrt_dm_store_le32(small, 0x7FFFFFFF);
    put("frame", "oversized", NULL, small, sizeof small);
    put("frame", "exact_header_only", NULL, buf, MRT_FRAME_HEADER_SIZE);
}

static int blob_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)st;
    (void)ev;
    (void)sink;
    return MRT_OK;
}

static int blob_snapshot(const void *st, void *buf, size_t cap, size_t *len)
{
    const char *s = st;
    *len = strlen(s);
    if (*len == 0)
        return MRT_OK;
    if (buf == NULL || cap < *len)
        return MRT_DAEMON_ENOSPACE;
    memcpy(buf, s, *len);
    return MRT_OK;
}

static const mrt_daemon_vtable blob_vt = {
    .name = "blob", .process = blob_process, .snapshot = blob_snapshot
};

static size_t snapshot_of(uint8_t key, int events, const char *state, uint8_t *out, size_t cap)
{
    mrt_host_config c;
    memset(&c, 0, sizeof c);
    memset(c.key, key, sizeof c.key);
    mrt_daemon d = { &blob_vt, (void *)state };
    mrt_host *h;
    if (mrt_host_create(&c, d, &h) != MRT_OK)
        exit(1);
    for (int i = 0; i < events; i++) {
        mrt_event ev = { .link = { .origin_hash = (uint64_t)(i % 5), .sequence = (uint64_t)i } };
        mrt_host_deliver(h, &ev, 0);
    }
    size_t len = 0;
    if (mrt_host_snapshot(h, out, cap, &len) != MRT_OK)
        exit(1);
    mrt_host_destroy(h);
    return len;
}

static void rechecksum(uint8_t *b, size_t len)
{
    mrt_dm_store_le64(b + len - 8, XXH3_64bits(b, len - 8));
}

static void snapshots(void)
{
    static const uint8_t plain = 0, fix = 1, stamp = 3;
    uint8_t b[2048], t[2048];
    size_t n = snapshot_of(0xF0, 0, "", b, sizeof b);
    put("snapshot", "genesis", &plain, b, n);
    n = snapshot_of(0xF0, 12, "state-bytes", b, sizeof b);
    put("snapshot", "origins_and_state", &plain, b, n);
    /* With a head: flag + through_sequence + head link, origin stamped by the target. */
    memcpy(t, b, n);
    t[6] = 1;
    mrt_dm_store_le64(t + 16, 41);
    mrt_dm_store_le64(t + 24 + 8, 0xABCDEF);
    mrt_dm_store_le64(t + 24 + 16, 41);
    mrt_dm_store_le64(t + 24 + 24, 0x1234);
    mrt_dm_store_le64(t + 56, 0x5678);
    put("snapshot", "with_head_stamped", &stamp, t, n);
    put("snapshot", "with_head_no_fix", &plain, t, n);
    memcpy(t, b, n);
    t[0] = 'X';
    put("snapshot", "bad_magic", &plain, t, n);
    memcpy(t, b, n);
    t[4] = 9;
    put("snapshot", "bad_version", &fix, t, n);
    put("snapshot", "truncated_header", &plain, b, 40);
    put("snapshot", "truncated_body", &plain, b, n - 3);
    memcpy(t, b, n);
    t[n - 1] ^= 0xFF;
    put("snapshot", "bad_checksum", &plain, t, n);
    memcpy(t, b, n);
    mrt_dm_store_le32(t + 76, 3); /* state length disagrees */
    rechecksum(t, n);
    put("snapshot", "state_len_disagrees", &plain, t, n);
    memcpy(t, b, n);
    mrt_dm_store_le32(t + 72, 1000000); /* origin count oversized */
    put("snapshot", "origins_oversized", &plain, t, n);
    memcpy(t, b, n);
    memcpy(t + MRT_HOST_SNAPSHOT_HEADER_SIZE + 16, t + MRT_HOST_SNAPSHOT_HEADER_SIZE, 16); /* repeated origin */
    rechecksum(t, n);
    put("snapshot", "repeated_origin", &fix, t, n);
    put("snapshot", "empty", &plain, b, 0);
}

static void forks(void)
{
    uint8_t secret[MRT_FORK_SECRET_SIZE];
    memset(secret, 0x3C, sizeof secret); /* fixed: the corpus is reproducible */
    mrt_fork_record r;
    uint64_t snap = 41;
    uint8_t w[MRT_FORK_RECORD_SIZE + 1];
    (void)mrt_fork_record_make(secret, 0xC0FFEE, 41, &snap, &r);
    mrt_fork_record_encode(&r, w);
    put("fork", "valid_from_snapshot", NULL, w, MRT_FORK_RECORD_SIZE);
    (void)mrt_fork_record_make(secret, 0xC0FFEE, 7, NULL, &r);
    mrt_fork_record_encode(&r, w);
    put("fork", "valid", NULL, w, MRT_FORK_RECORD_SIZE);
    put("fork", "short", NULL, w, MRT_FORK_RECORD_SIZE - 1);
    w[MRT_FORK_RECORD_SIZE] = 0;
    put("fork", "long", NULL, w, MRT_FORK_RECORD_SIZE + 1);
    w[16] ^= 1; /* fork_seq: the sentinel no longer matches */
    put("fork", "bad_sentinel", NULL, w, MRT_FORK_RECORD_SIZE);
    w[16] ^= 1;
    w[56] = 2;
    put("fork", "bad_flag", NULL, w, MRT_FORK_RECORD_SIZE);
    w[56] = 0;
    w[60] = 1; /* snapshot_seq without the flag */
    put("fork", "seq_without_flag", NULL, w, MRT_FORK_RECORD_SIZE);
    put("fork", "empty", NULL, w, 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    root = argv[1];
    frames();
    snapshots();
    forks();
    return 0;
}
