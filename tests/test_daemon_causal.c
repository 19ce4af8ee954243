/* Daemons: causal links, streaming parent hash, chain building and validation. */
#include "meshrt/mrt_daemon.h"
#include "tests/check_main.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

START_TEST(link_wire_is_little_endian)
{
    mrt_causal_link l = { 0x0807060504030201ull, 0x1817161514131211ull, 0x2827262524232221ull,
                          0x3837363534333231ull };
    uint8_t b[MRT_CAUSAL_LINK_SIZE];
    mrt_causal_link_encode(&l, b);
    for (int f = 0; f < 4; f++)
        for (int i = 0; i < 8; i++)
            ck_assert_uint_eq(b[f * 8 + i], (unsigned)(f * 0x10 + i + 1));
    mrt_causal_link back;
    mrt_causal_link_decode(b, &back);
    ck_assert_mem_eq(&back, &l, sizeof l);
}
END_TEST

/* Streaming equals one-shot of the concatenation for every length 0..5000. */
START_TEST(parent_hash_streaming_equals_one_shot)
{
    enum { MAXLEN = 5000 };
    uint8_t *payload = malloc(MAXLEN);
    uint8_t *concat = malloc(MRT_CAUSAL_LINK_SIZE + MAXLEN);
    ck_assert_ptr_nonnull(payload);
    ck_assert_ptr_nonnull(concat);
    uint64_t s = 42;
    for (size_t i = 0; i < MAXLEN; i++)
        payload[i] = (uint8_t)splitmix(&s);
    for (size_t len = 0; len <= MAXLEN; len++) {
        mrt_causal_link prev = { splitmix(&s), splitmix(&s), len, splitmix(&s) };
        mrt_causal_link_encode(&prev, concat);
        memcpy(concat + MRT_CAUSAL_LINK_SIZE, payload, len);
        uint64_t one_shot = XXH3_64bits(concat, MRT_CAUSAL_LINK_SIZE + len);
        uint64_t streamed = mrt_causal_parent_hash(&prev, len ? payload : NULL, len);
        if (streamed != one_shot)
            ck_abort_msg("parent hash differs at payload length %zu", len);
    }
    free(payload);
    free(concat);
}
END_TEST

START_TEST(chain_genesis_and_append)
{
    mrt_causal_chain c;
    mrt_causal_chain_init(&c, 77);
    mrt_causal_link l0, l1, l2;
    ck_assert_int_eq(mrt_causal_chain_append(&c, 5, "a", 1, &l0), MRT_OK);
    ck_assert_uint_eq(l0.origin_hash, 77);
    ck_assert_uint_eq(l0.horizon_encoded, 5);
    ck_assert_uint_eq(l0.sequence, 0);
    ck_assert_uint_eq(l0.parent_hash, 0);
    ck_assert_int_eq(mrt_causal_chain_append(&c, 6, "bc", 2, &l1), MRT_OK);
    ck_assert_uint_eq(l1.sequence, 1);
    ck_assert_uint_eq(l1.parent_hash, mrt_causal_parent_hash(&l0, "a", 1));
    ck_assert_int_eq(mrt_causal_chain_append(&c, 6, NULL, 0, &l2), MRT_OK);
    ck_assert_uint_eq(l2.sequence, 2);
    ck_assert_uint_eq(l2.parent_hash, mrt_causal_parent_hash(&l1, "bc", 2));
    ck_assert(c.has_head);
    ck_assert_mem_eq(&c.head, &l2, sizeof l2);
    ck_assert_int_eq(mrt_causal_chain_append(&c, 0, NULL, 3, &l2), MRT_EINVAL);
}
END_TEST

/* A built chain is accepted link by link by a receiver. */
START_TEST(chain_accept_roundtrip)
{
    mrt_causal_chain tx, rx;
    mrt_causal_chain_init(&tx, 9);
    mrt_causal_chain_init(&rx, 9);
    uint8_t buf[300];
    uint64_t s = 1;
    for (int i = 0; i < 300; i++) {
        size_t len = (size_t)i;
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)splitmix(&s);
        mrt_causal_link l;
        ck_assert_int_eq(mrt_causal_chain_append(&tx, (uint64_t)i, buf, len, &l), MRT_OK);
        ck_assert_int_eq(mrt_causal_chain_accept(&rx, &l, buf, len), MRT_OK);
    }
    ck_assert_mem_eq(&tx, &rx, sizeof tx);
}
END_TEST

static void chain_with_two(mrt_causal_chain *rx, mrt_causal_link *next, const char **next_payload)
{
    mrt_causal_chain tx;
    mrt_causal_chain_init(&tx, 1234);
    mrt_causal_chain_init(rx, 1234);
    mrt_causal_link l;
    ck_assert_int_eq(mrt_causal_chain_append(&tx, 0, "one", 3, &l), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_accept(rx, &l, "one", 3), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_append(&tx, 0, "two", 3, &l), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_accept(rx, &l, "two", 3), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_append(&tx, 0, "three", 5, next), MRT_OK);
    *next_payload = "three";
}

START_TEST(accept_origin_mismatch)
{
    mrt_causal_chain rx, before;
    mrt_causal_link l;
    const char *p;
    chain_with_two(&rx, &l, &p);
    before = rx;
    l.origin_hash ^= 1;
    ck_assert_int_eq(mrt_causal_chain_accept(&rx, &l, p, 5), MRT_DAEMON_EORIGIN);
    ck_assert_mem_eq(&rx, &before, sizeof rx);
}
END_TEST

START_TEST(accept_sequence_gap)
{
    mrt_causal_chain rx, before;
    mrt_causal_link l;
    const char *p;
    chain_with_two(&rx, &l, &p);
    before = rx;
    l.sequence += 1; /* skips one */
    ck_assert_int_eq(mrt_causal_chain_accept(&rx, &l, p, 5), MRT_DAEMON_ESEQGAP);
    l.sequence -= 2; /* replays the head */
    ck_assert_int_eq(mrt_causal_chain_accept(&rx, &l, p, 5), MRT_DAEMON_ESEQGAP);
    ck_assert_mem_eq(&rx, &before, sizeof rx);
    /* Genesis must be sequence 0. */
    mrt_causal_chain g;
    mrt_causal_chain_init(&g, 1234);
    mrt_causal_link first = { 1234, 0, 1, 0 };
    ck_assert_int_eq(mrt_causal_chain_accept(&g, &first, NULL, 0), MRT_DAEMON_ESEQGAP);
}
END_TEST

START_TEST(accept_parent_mismatch)
{
    mrt_causal_chain rx, before;
    mrt_causal_link l;
    const char *p;
    chain_with_two(&rx, &l, &p);
    before = rx;
    l.parent_hash ^= 0x100;
    ck_assert_int_eq(mrt_causal_chain_accept(&rx, &l, p, 5), MRT_DAEMON_EPARENT);
    ck_assert_mem_eq(&rx, &before, sizeof rx);
    /* The parent covers the previous payload: accepting "two" as "twO" breaks the next link. */
    mrt_causal_chain tx, rx2;
    mrt_causal_chain_init(&tx, 5);
    mrt_causal_chain_init(&rx2, 5);
    mrt_causal_link a, b;
    ck_assert_int_eq(mrt_causal_chain_append(&tx, 0, "two", 3, &a), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_accept(&rx2, &a, "twO", 3), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_append(&tx, 0, "x", 1, &b), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_accept(&rx2, &b, "x", 1), MRT_DAEMON_EPARENT);
    /* Genesis must carry parent 0. */
    mrt_causal_chain g;
    mrt_causal_chain_init(&g, 5);
    mrt_causal_link first = { 5, 0, 0, 99 };
    ck_assert_int_eq(mrt_causal_chain_accept(&g, &first, NULL, 0), MRT_DAEMON_EPARENT);
}
END_TEST

START_TEST(sequence_overflow)
{
    mrt_causal_chain c;
    mrt_causal_link head = { 3, 0, UINT64_MAX - 1, 17 };
    ck_assert_int_eq(mrt_causal_chain_resume(&c, 3, &head, 99), MRT_OK);
    mrt_causal_link l;
    ck_assert_int_eq(mrt_causal_chain_append(&c, 0, "z", 1, &l), MRT_OK);
    ck_assert_uint_eq(l.sequence, UINT64_MAX);
    ck_assert_uint_eq(l.parent_hash, 99);
    mrt_causal_chain before = c;
    ck_assert_int_eq(mrt_causal_chain_append(&c, 0, "z", 1, &l), MRT_DAEMON_ESEQOVERFLOW);
    ck_assert_mem_eq(&c, &before, sizeof c);
    /* A receiver at UINT64_MAX can accept nothing more. */
    mrt_causal_link next = { 3, 0, 0, c.next_parent };
    ck_assert_int_eq(mrt_causal_chain_accept(&c, &next, NULL, 0), MRT_DAEMON_ESEQOVERFLOW);
    ck_assert_mem_eq(&c, &before, sizeof c);
}
END_TEST

START_TEST(resume_continues_chain)
{
    mrt_causal_chain a, b;
    mrt_causal_chain_init(&a, 8);
    mrt_causal_link l, la, lb;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(mrt_causal_chain_append(&a, 1, "p", 1, &l), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_resume(&b, 8, &a.head, a.next_parent), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_append(&a, 1, "q", 1, &la), MRT_OK);
    ck_assert_int_eq(mrt_causal_chain_append(&b, 1, "q", 1, &lb), MRT_OK);
    ck_assert_mem_eq(&la, &lb, sizeof la);
    mrt_causal_link other = { 9, 0, 0, 0 };
    ck_assert_int_eq(mrt_causal_chain_resume(&b, 8, &other, 0), MRT_DAEMON_EORIGIN);
}
END_TEST

START_TEST(strerror_range)
{
    for (int s = MRT_DAEMON_EBADSTATE; s <= MRT_DAEMON_EORIGIN; s++) {
        const char *n = mrt_daemon_strerror(s);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_ne(n, "unknown daemon status");
    }
    ck_assert_ptr_nonnull(mrt_daemon_strerror(-599));
    ck_assert_ptr_null(mrt_daemon_strerror(MRT_OK));
    ck_assert_ptr_null(mrt_daemon_strerror(-499));
    ck_assert_ptr_null(mrt_daemon_strerror(-600));
    ck_assert_ptr_null(mrt_daemon_strerror(MRT_EINVAL));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("daemon_causal");
    TCase *t = tcase_create("causal");
    tcase_add_test(t, link_wire_is_little_endian);
    tcase_add_test(t, parent_hash_streaming_equals_one_shot);
    tcase_add_test(t, chain_genesis_and_append);
    tcase_add_test(t, chain_accept_roundtrip);
    tcase_add_test(t, accept_origin_mismatch);
    tcase_add_test(t, accept_sequence_gap);
    tcase_add_test(t, accept_parent_mismatch);
    tcase_add_test(t, sequence_overflow);
    tcase_add_test(t, resume_continues_chain);
    tcase_add_test(t, strerror_range);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return mrt_check_run(suite());
}
