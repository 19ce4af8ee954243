/* Daemons: frame and host-snapshot decoders — every error code, never reading past the input. */
#include "meshrt/mrt_daemon.h"
#include "tests/check_main.h"
#include "tests/test_daemon_common.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Copy into an exact-size heap buffer so ASan flags any read past the end. */
static uint8_t *exact(const uint8_t *src, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    if (len)
        memcpy(p, src, len);
    return p;
}

/* --- frames -------------------------------------------------------------- */

static const mrt_causal_link L = { 0x1111, 0x2222, 0x3333, 0x4444 };

START_TEST(frame_roundtrip)
{
    uint8_t buf[64];
    size_t w;
    ck_assert_uint_eq(mrt_frame_size(5), 41);
    ck_assert_int_eq(mrt_frame_encode(&L, "hello", 5, buf, sizeof buf, &w), MRT_OK);
    ck_assert_uint_eq(w, 41);
    ck_assert_uint_eq(buf[0], 41);
    ck_assert_uint_eq(buf[1] | buf[2] | buf[3], 0);
    uint8_t *p = exact(buf, w);
    mrt_frame f;
    ck_assert_int_eq(mrt_frame_decode(p, w, 1024, &f, NULL), MRT_OK);
    ck_assert_mem_eq(&f.link, &L, sizeof L);
    ck_assert_uint_eq(f.payload_len, 5);
    ck_assert_mem_eq(f.payload, "hello", 5);
    ck_assert_ptr_eq(f.payload, p + MRT_FRAME_HEADER_SIZE);
    free(p);
    /* Empty payload. */
    ck_assert_int_eq(mrt_frame_encode(&L, NULL, 0, buf, sizeof buf, &w), MRT_OK);
    ck_assert_uint_eq(w, MRT_FRAME_HEADER_SIZE);
    p = exact(buf, w);
    ck_assert_int_eq(mrt_frame_decode(p, w, MRT_FRAME_HEADER_SIZE, &f, NULL), MRT_OK);
    ck_assert_uint_eq(f.payload_len, 0);
    free(p);
}
END_TEST

START_TEST(frame_stream)
{
    uint8_t buf[256];
    size_t off = 0, w;
    for (int i = 0; i < 4; i++) {
        char pl[8];
        memset(pl, 'a' + i, sizeof pl);
        ck_assert_int_eq(mrt_frame_encode(&L, pl, (size_t)i * 2, buf + off, sizeof buf - off, &w),
                         MRT_OK);
        off += w;
    }
    uint8_t *p = exact(buf, off);
    size_t pos = 0;
    for (int i = 0; i < 4; i++) {
        mrt_frame f;
        size_t used;
        ck_assert_int_eq(mrt_frame_decode(p + pos, off - pos, 1024, &f, &used), MRT_OK);
        ck_assert_uint_eq(f.payload_len, (size_t)i * 2);
        ck_assert_uint_eq(used, MRT_FRAME_HEADER_SIZE + (size_t)i * 2);
        pos += used;
    }
    ck_assert_uint_eq(pos, off);
    free(p);
}
END_TEST

START_TEST(frame_truncated)
{
    uint8_t buf[64];
    size_t w;
    ck_assert_int_eq(mrt_frame_encode(&L, "0123456789", 10, buf, sizeof buf, &w), MRT_OK);
    mrt_frame f;
    size_t used;
    /* Every strict prefix, with and without stream mode. */
    for (size_t n = 0; n < w; n++) {
        uint8_t *p = exact(buf, n);
        ck_assert_int_eq(mrt_frame_decode(p, n, 1024, &f, NULL), MRT_DAEMON_ETRUNCATED);
        ck_assert_int_eq(mrt_frame_decode(p, n, 1024, &f, &used), MRT_DAEMON_ETRUNCATED);
        free(p);
    }
    ck_assert_int_eq(mrt_frame_decode(NULL, 0, 1024, &f, NULL), MRT_DAEMON_ETRUNCATED);
}
END_TEST

START_TEST(frame_oversized)
{
    uint8_t buf[64];
    size_t w;
    ck_assert_int_eq(mrt_frame_encode(&L, "0123456789", 10, buf, sizeof buf, &w), MRT_OK);
    mrt_frame f;
    ck_assert_int_eq(mrt_frame_decode(buf, w, (uint32_t)w - 1, &f, NULL), MRT_DAEMON_EOVERSIZED);
    ck_assert_int_eq(mrt_frame_decode(buf, w, (uint32_t)w, &f, NULL), MRT_OK);
    /* Rejected from the length alone, before the body arrives. */
    uint8_t hdr[4];
    put_le32(hdr, 1u << 30);
    uint8_t *p = exact(hdr, 4);
    ck_assert_int_eq(mrt_frame_decode(p, 4, 1u << 20, &f, NULL), MRT_DAEMON_EOVERSIZED);
    free(p);
    /* A payload that cannot be framed in a u32. */
    ck_assert_uint_eq(mrt_frame_size((size_t)UINT32_MAX), 0);
    ck_assert_int_eq(mrt_frame_encode(&L, buf, (size_t)UINT32_MAX, buf, sizeof buf, &w),
                     MRT_DAEMON_EOVERSIZED);
}
END_TEST

START_TEST(frame_inconsistent)
{
    mrt_frame f;
    size_t used;
    /* Total smaller than the mandatory header. */
    for (uint32_t total = 0; total < MRT_FRAME_HEADER_SIZE; total++) {
        uint8_t buf[MRT_FRAME_HEADER_SIZE] = { 0 };
        put_le32(buf, total);
        uint8_t *p = exact(buf, sizeof buf);
        ck_assert_int_eq(mrt_frame_decode(p, sizeof buf, 1024, &f, &used),
                         MRT_DAEMON_EINCONSISTENT);
        free(p);
    }
    /* Trailing bytes where one whole frame was expected. */
    uint8_t buf[64];
    size_t w;
    ck_assert_int_eq(mrt_frame_encode(&L, "abc", 3, buf, sizeof buf, &w), MRT_OK);
    uint8_t *p = exact(buf, w + 1);
    ck_assert_int_eq(mrt_frame_decode(p, w + 1, 1024, &f, NULL), MRT_DAEMON_EINCONSISTENT);
    ck_assert_int_eq(mrt_frame_decode(p, w + 1, 1024, &f, &used), MRT_OK);
    ck_assert_uint_eq(used, w);
    free(p);
}
END_TEST

START_TEST(frame_bad_arguments)
{
    uint8_t buf[64];
    size_t w = 0;
    mrt_frame f;
    ck_assert_int_eq(mrt_frame_encode(&L, "abc", 3, buf, 10, &w), MRT_DAEMON_ENOSPACE);
    ck_assert_uint_eq(w, 39);
    ck_assert_int_eq(mrt_frame_encode(&L, NULL, 3, buf, sizeof buf, &w), MRT_EINVAL);
    ck_assert_int_eq(mrt_frame_encode(NULL, "abc", 3, buf, sizeof buf, &w), MRT_EINVAL);
    ck_assert_int_eq(mrt_frame_decode(buf, 40, MRT_FRAME_HEADER_SIZE - 1, &f, NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_frame_decode(buf, 40, 1024, NULL, NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_frame_decode(NULL, 40, 1024, &f, NULL), MRT_EINVAL);
}
END_TEST

/* --- snapshots ----------------------------------------------------------- */

static int counter_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (*(uint64_t *)st)++;
    return ev->payload_len ? mrt_daemon_emit_copy(sink, ev->payload, ev->payload_len) : MRT_OK;
}

static const mrt_daemon_vtable counter_vt = {
    .name = "counter",
    .process = counter_process,
    .snapshot = test_counter_snapshot,
    .restore = test_counter_restore,
};

/* A valid snapshot with a head, 3 origins and 8 bytes of state. */
static size_t make_snapshot(uint8_t *buf, size_t cap, bool with_head)
{
    uint64_t state = 0;
    mrt_host_config c;
    memset(&c, 0, sizeof c);
    memset(c.key, 0x42, sizeof c.key);
    mrt_daemon d = { &counter_vt, &state };
    mrt_host *h;
    ck_assert_int_eq(mrt_host_create(&c, d, &h), MRT_OK);
    for (uint64_t i = 0; i < 3; i++) {
        mrt_event ev = { .link = { .origin_hash = 100 + i, .sequence = i },
                         .payload = "pq",
                         .payload_len = with_head ? 2 : 0 };
        ck_assert_int_eq(mrt_host_deliver(h, &ev, 0), MRT_OK);
        mrt_host_release_outputs(h);
    }
    size_t len;
    ck_assert_int_eq(mrt_host_snapshot(h, buf, cap, &len), MRT_OK);
    mrt_host_destroy(h);
    return len;
}

static void rechecksum(uint8_t *buf, size_t len)
{
    put_le64(buf + len - 8, XXH3_64bits(buf, len - 8));
}

static int decode(const uint8_t *buf, size_t len)
{
    uint8_t *p = exact(buf, len);
    mrt_host_snapshot_view v;
    int rc = mrt_host_snapshot_decode(p, len, 1024, 1024, &v);
    free(p);
    return rc;
}

START_TEST(snapshot_decode_ok)
{
    uint8_t buf[512];
    size_t len = make_snapshot(buf, sizeof buf, true);
    ck_assert_uint_eq(len, MRT_HOST_SNAPSHOT_HEADER_SIZE + 3 * 16 + 8 + 8);
    mrt_host_snapshot_view v;
    ck_assert_int_eq(mrt_host_snapshot_decode(buf, len, 1024, 1024, &v), MRT_OK);
    ck_assert_uint_eq(v.version, MRT_HOST_SNAPSHOT_VERSION);
    ck_assert(v.has_head);
    ck_assert_uint_eq(v.through_sequence, 2);
    ck_assert_uint_eq(v.head.sequence, 2);
    ck_assert_uint_eq(v.head.origin_hash, v.origin_hash);
    ck_assert_uint_eq(v.origin_count, 3);
    ck_assert_uint_eq(v.state_len, 8);
    ck_assert_uint_eq(v.logical_time, 3);
    ck_assert_int_eq(decode(buf, len), MRT_OK);
}
END_TEST

START_TEST(snapshot_truncated)
{
    uint8_t buf[512];
    size_t len = make_snapshot(buf, sizeof buf, true);
    for (size_t n = 0; n < len; n++)
        ck_assert_int_eq(decode(buf, n), MRT_DAEMON_ETRUNCATED);
}
END_TEST

START_TEST(snapshot_bad_magic)
{
    uint8_t buf[512];
    size_t len = make_snapshot(buf, sizeof buf, true);
    for (int i = 0; i < 4; i++) {
        buf[i] ^= 0x20;
        ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EMAGIC);
        ck_assert_int_eq(decode(buf, 4), MRT_DAEMON_EMAGIC);
        buf[i] ^= 0x20;
    }
}
END_TEST

START_TEST(snapshot_bad_version)
{
    uint8_t buf[512];
    size_t len = make_snapshot(buf, sizeof buf, true);
    buf[4] = 3;
    rechecksum(buf, len);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EVERSION);
    ck_assert_int_eq(decode(buf, 6), MRT_DAEMON_EVERSION);
    buf[4] = 1; /* version 1 carries no ingress index: refused */
    rechecksum(buf, len);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EVERSION);
    buf[4] = 2;
    buf[5] = 1; /* 257 */
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EVERSION);
    buf[4] = 0;
    buf[5] = 0;
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EVERSION);
}
END_TEST

START_TEST(snapshot_oversized)
{
    uint8_t buf[512];
    size_t len = make_snapshot(buf, sizeof buf, true);
    mrt_host_snapshot_view v;
    ck_assert_int_eq(mrt_host_snapshot_decode(buf, len, 7, 1024, &v), MRT_DAEMON_EOVERSIZED);
    ck_assert_int_eq(mrt_host_snapshot_decode(buf, len, 8, 2, &v), MRT_DAEMON_EOVERSIZED);
    ck_assert_int_eq(mrt_host_snapshot_decode(buf, len, 8, 3, &v), MRT_OK);
    /* Huge announced lengths are refused from the header, not read. */
    put_le32(buf + 76, UINT32_MAX);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EOVERSIZED);
    put_le32(buf + 76, 8);
    put_le32(buf + 72, UINT32_MAX);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EOVERSIZED);
}
END_TEST

/* Length fields that disagree with the input. */
START_TEST(snapshot_lengths_disagree)
{
    uint8_t buf[512];
    size_t len = make_snapshot(buf, sizeof buf, true);
    /* State length one longer than present: truncated; one shorter: trailing bytes. */
    put_le32(buf + 76, 9);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_ETRUNCATED);
    put_le32(buf + 76, 7);
    rechecksum(buf, len);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EINCONSISTENT);
    put_le32(buf + 76, 8);
    /* Origin count disagrees. */
    put_le32(buf + 72, 4);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_ETRUNCATED);
    put_le32(buf + 72, 2);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EINCONSISTENT);
    put_le32(buf + 72, 3);
    rechecksum(buf, len);
    ck_assert_int_eq(decode(buf, len), MRT_OK);
    /* An extra byte after the checksum. */
    buf[len] = 0;
    ck_assert_int_eq(decode(buf, len + 1), MRT_DAEMON_EINCONSISTENT);
}
END_TEST

START_TEST(snapshot_fields_disagree)
{
    uint8_t buf[512], orig[512];
    size_t len = make_snapshot(orig, sizeof orig, true);
    /* Unknown flags. */
    memcpy(buf, orig, len);
    buf[6] |= 2;
    rechecksum(buf, len);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EINCONSISTENT);
    /* through_sequence != head sequence. */
    memcpy(buf, orig, len);
    put_le64(buf + 16, 7);
    rechecksum(buf, len);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EINCONSISTENT);
    /* Head of another origin. */
    memcpy(buf, orig, len);
    buf[24] ^= 1;
    rechecksum(buf, len);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EINCONSISTENT);
    /* Repeated origin; then origins out of order. */
    memcpy(buf, orig, len);
    const size_t e0 = MRT_HOST_SNAPSHOT_HEADER_SIZE, e1 = e0 + 16;
    memcpy(buf + e1, buf + e0, 8);
    rechecksum(buf, len);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EINCONSISTENT);
    memcpy(buf, orig, len);
    uint8_t t[16];
    memcpy(t, buf + e0, 16);
    memcpy(buf + e0, buf + e1, 16);
    memcpy(buf + e1, t, 16);
    rechecksum(buf, len);
    ck_assert_int_eq(decode(buf, len), MRT_DAEMON_EINCONSISTENT);
    /* Headless snapshot with non-zero head fields. */
    size_t hl = make_snapshot(orig, sizeof orig, false);
    ck_assert_int_eq(decode(orig, hl), MRT_OK);
    for (int field = 0; field < 3; field++) {
        memcpy(buf, orig, hl);
        size_t at = field == 0 ? 16 : field == 1 ? 40 : 56;
        buf[at] = 1;
        rechecksum(buf, hl);
        ck_assert_int_eq(decode(buf, hl), MRT_DAEMON_EINCONSISTENT);
    }
}
END_TEST

START_TEST(snapshot_checksum)
{
    uint8_t buf[512];
    size_t len = make_snapshot(buf, sizeof buf, true);
    /* Any flipped byte after the version that leaves the lengths alone. */
    for (size_t i = 8; i < len; i++) {
        if (i >= 72 && i < 80)
            continue;
        buf[i] ^= 0x01;
        ck_assert_int_eq(decode(buf, len), MRT_DAEMON_ECHECKSUM);
        buf[i] ^= 0x01;
    }
    ck_assert_int_eq(decode(buf, len), MRT_OK);
}
END_TEST

START_TEST(snapshot_bad_arguments)
{
    mrt_host_snapshot_view v;
    uint8_t b[4] = { 0 };
    ck_assert_int_eq(mrt_host_snapshot_decode(NULL, 4, 1, 1, &v), MRT_EINVAL);
    ck_assert_int_eq(mrt_host_snapshot_decode(b, 4, 1, 1, NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_host_snapshot_decode(NULL, 0, 1, 1, &v), MRT_DAEMON_ETRUNCATED);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("daemon_decode");
    TCase *t = tcase_create("frame");
    tcase_add_test(t, frame_roundtrip);
    tcase_add_test(t, frame_stream);
    tcase_add_test(t, frame_truncated);
    tcase_add_test(t, frame_oversized);
    tcase_add_test(t, frame_inconsistent);
    tcase_add_test(t, frame_bad_arguments);
    suite_add_tcase(s, t);
    t = tcase_create("snapshot");
    tcase_add_test(t, snapshot_decode_ok);
    tcase_add_test(t, snapshot_truncated);
    tcase_add_test(t, snapshot_bad_magic);
    tcase_add_test(t, snapshot_bad_version);
    tcase_add_test(t, snapshot_oversized);
    tcase_add_test(t, snapshot_lengths_disagree);
    tcase_add_test(t, snapshot_fields_disagree);
    tcase_add_test(t, snapshot_checksum);
    tcase_add_test(t, snapshot_bad_arguments);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return mrt_check_run(suite());
}
