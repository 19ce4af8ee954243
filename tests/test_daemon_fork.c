/* Daemons: forks — secrets, the fork genesis, the 65-byte record, lineage, fork chains. */
#include "meshrt/mrt_daemon.h"
#include "tests/check_main.h"
#include "tests/test_daemon_common.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* counter: stateful; counts events and emits "<tag><count>" (9 bytes) per event. */
struct counter {
    uint64_t n;
    uint8_t tag;
};

static int counter_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)ev;
    struct counter *c = st;
    c->n++;
    uint8_t out[9];
    out[0] = c->tag;
    memcpy(out + 1, &c->n, 8);
    return mrt_daemon_emit_copy(sink, out, sizeof out);
}

static const mrt_daemon_vtable counter_vt = {
    .name = "counter",
    .process = counter_process,
    .snapshot = test_counter_snapshot,
    .restore = test_counter_restore,
};

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void make_record(uint8_t secret[MRT_FORK_SECRET_SIZE], uint64_t parent, uint64_t seq,
                        mrt_fork_record *r)
{
    ck_assert_int_eq(mrt_fork_secret_new(secret), MRT_OK);
    ck_assert_int_eq(mrt_fork_record_make(secret, parent, seq, NULL, r), MRT_OK);
}

START_TEST(secrets_are_random)
{
    uint8_t a[MRT_FORK_SECRET_SIZE], b[MRT_FORK_SECRET_SIZE], zero[MRT_FORK_SECRET_SIZE] = { 0 };
    ck_assert_int_eq(mrt_fork_secret_new(a), MRT_OK);
    ck_assert_int_eq(mrt_fork_secret_new(b), MRT_OK);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    ck_assert(memcmp(a, zero, sizeof a) != 0);
    ck_assert_int_eq(mrt_fork_secret_new(NULL), MRT_EINVAL);
    /* The identity is the secret's, as a host key. */
    ck_assert_uint_eq(mrt_fork_origin(a), mrt_host_origin_from_key(a));
    ck_assert_uint_ne(mrt_fork_origin(a), mrt_fork_origin(b));
}
END_TEST

START_TEST(sentinel_and_genesis)
{
    uint8_t in[20];
    le64(in, 0x1122334455667788ull);
    le64(in + 8, 42);
    memcpy(in + 16, "fork", 4);
    ck_assert_uint_eq(mrt_fork_sentinel(0x1122334455667788ull, 42), XXH3_64bits(in, sizeof in));
    ck_assert_uint_ne(mrt_fork_sentinel(1, 42), mrt_fork_sentinel(1, 43));

    uint8_t secret[MRT_FORK_SECRET_SIZE];
    mrt_fork_record r;
    make_record(secret, 0x1122334455667788ull, 42, &r);
    ck_assert_uint_eq(r.original_origin, 0x1122334455667788ull);
    ck_assert_uint_eq(r.forked_origin, mrt_fork_origin(secret));
    ck_assert_uint_eq(r.fork_seq, 42);
    ck_assert_uint_eq(r.genesis.origin_hash, r.forked_origin);
    ck_assert_uint_eq(r.genesis.sequence, 0);
    ck_assert_uint_eq(r.genesis.horizon_encoded, 0);
    ck_assert_uint_eq(r.genesis.parent_hash, XXH3_64bits(in, sizeof in));
    ck_assert(!r.has_snapshot);
    ck_assert_int_eq(mrt_fork_record_verify(&r), MRT_OK);

    uint64_t snap = 17;
    ck_assert_int_eq(mrt_fork_record_make(secret, 5, 42, &snap, &r), MRT_OK);
    ck_assert(r.has_snapshot);
    ck_assert_uint_eq(r.snapshot_seq, 17);
    /* A fork of itself is no fork. */
    ck_assert_int_eq(mrt_fork_record_make(secret, mrt_fork_origin(secret), 1, NULL, &r),
                     MRT_DAEMON_ELINEAGE);
}
END_TEST

START_TEST(record_wire_layout)
{
    uint8_t secret[MRT_FORK_SECRET_SIZE];
    mrt_fork_record r;
    ck_assert_int_eq(mrt_fork_secret_new(secret), MRT_OK);
    uint64_t snap = 0x0102030405060708ull;
    ck_assert_int_eq(mrt_fork_record_make(secret, 0xAA, 0xBB, &snap, &r), MRT_OK);
    uint8_t w[MRT_FORK_RECORD_SIZE];
    mrt_fork_record_encode(&r, w);
    uint8_t expect[MRT_FORK_RECORD_SIZE];
    le64(expect, 0xAA);
    le64(expect + 8, r.forked_origin);
    le64(expect + 16, 0xBB);
    mrt_causal_link_encode(&r.genesis, expect + 24);
    expect[56] = 1;
    le64(expect + 57, snap);
    ck_assert_mem_eq(w, expect, sizeof w);

    mrt_fork_record d;
    ck_assert_int_eq(mrt_fork_record_decode(w, sizeof w, &d), MRT_OK);
    ck_assert_uint_eq(d.original_origin, r.original_origin);
    ck_assert_uint_eq(d.forked_origin, r.forked_origin);
    ck_assert_uint_eq(d.fork_seq, r.fork_seq);
    ck_assert_mem_eq(&d.genesis, &r.genesis, sizeof d.genesis);
    ck_assert(d.has_snapshot);
    ck_assert_uint_eq(d.snapshot_seq, snap);
}
END_TEST

/* Exact-size heap copy, so a read past the end is caught by the sanitizers. */
static int decode(const uint8_t *buf, size_t len, mrt_fork_record *out)
{
    uint8_t *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    if (len)
        memcpy(p, buf, len);
    int rc = mrt_fork_record_decode(p, len, out);
    free(p);
    return rc;
}

START_TEST(decode_rejects_bad_length)
{
    uint8_t secret[MRT_FORK_SECRET_SIZE];
    mrt_fork_record r, d;
    make_record(secret, 7, 3, &r);
    uint8_t w[MRT_FORK_RECORD_SIZE + 8];
    mrt_fork_record_encode(&r, w);
    memset(&d, 0x5A, sizeof d);
    mrt_fork_record untouched = d;
    for (size_t n = 0; n < MRT_FORK_RECORD_SIZE; n++)
        ck_assert_int_eq(decode(w, n, &d), MRT_DAEMON_ETRUNCATED);
    for (size_t n = MRT_FORK_RECORD_SIZE + 1; n <= sizeof w; n++)
        ck_assert_int_eq(decode(w, n, &d), MRT_DAEMON_EINCONSISTENT);
    ck_assert_mem_eq(&d, &untouched, sizeof d);
    ck_assert_int_eq(mrt_fork_record_decode(NULL, 65, &d), MRT_EINVAL);
    ck_assert_int_eq(mrt_fork_record_decode(w, 65, NULL), MRT_EINVAL);
    ck_assert_int_eq(decode(w, MRT_FORK_RECORD_SIZE, &d), MRT_OK);
}
END_TEST

/* Every field whose change breaks verify makes decode refuse the record. */
START_TEST(decode_rejects_failed_verify)
{
    uint8_t secret[MRT_FORK_SECRET_SIZE];
    mrt_fork_record r, d;
    make_record(secret, 7, 3, &r);
    uint8_t ok[MRT_FORK_RECORD_SIZE], w[MRT_FORK_RECORD_SIZE];
    mrt_fork_record_encode(&r, ok);
    memset(&d, 0x5A, sizeof d);
    mrt_fork_record untouched = d;
    /* Any single flipped bit in original, forked, fork_seq or the genesis link. */
    for (size_t i = 0; i < 56; i++) {
        memcpy(w, ok, sizeof w);
        w[i] ^= 0x10;
        ck_assert_int_eq(decode(w, sizeof w, &d), MRT_DAEMON_ELINEAGE);
    }
    /* snapshot_seq without the flag. */
    memcpy(w, ok, sizeof w);
    w[60] = 1;
    ck_assert_int_eq(decode(w, sizeof w, &d), MRT_DAEMON_ELINEAGE);
    /* A flag that is neither 0 nor 1. */
    memcpy(w, ok, sizeof w);
    w[56] = 2;
    ck_assert_int_eq(decode(w, sizeof w, &d), MRT_DAEMON_EINCONSISTENT);
    /* original == forked, with a genesis that otherwise verifies. */
    mrt_fork_record self = r;
    self.original_origin = self.forked_origin;
    self.genesis.parent_hash = mrt_fork_sentinel(self.original_origin, self.fork_seq);
    ck_assert_int_eq(mrt_fork_record_verify(&self), MRT_DAEMON_ELINEAGE);
    mrt_fork_record_encode(&self, w);
    ck_assert_int_eq(decode(w, sizeof w, &d), MRT_DAEMON_ELINEAGE);
    ck_assert_mem_eq(&d, &untouched, sizeof d);
    /* The snapshot flag and its sequence are data, not part of verify. */
    memcpy(w, ok, sizeof w);
    w[56] = 1;
    w[60] = 1;
    ck_assert_int_eq(decode(w, sizeof w, &d), MRT_OK);
    ck_assert_uint_eq(d.snapshot_seq, 1u << 24);
}
END_TEST

START_TEST(lineage)
{
    enum { N = 5 };
    uint8_t secrets[N][MRT_FORK_SECRET_SIZE];
    mrt_fork_record r[N];
    for (int i = 0; i < N; i++)
        make_record(secrets[i], 0xFEED, 9, &r[i]);
    ck_assert_int_eq(mrt_fork_verify_lineage(0xFEED, 9, r, N, NULL), MRT_OK);
    ck_assert_int_eq(mrt_fork_verify_lineage(0xFEED, 9, r, N, (const uint8_t(*)[32])secrets),
                     MRT_OK);
    ck_assert_int_eq(mrt_fork_verify_lineage(0xFEED, 9, NULL, 0, NULL), MRT_OK);
    ck_assert_int_eq(mrt_fork_verify_lineage(0xFEED, 9, NULL, 1, NULL), MRT_EINVAL);
    /* Another parent, another fork point. */
    ck_assert_int_eq(mrt_fork_verify_lineage(0xBEEF, 9, r, N, NULL), MRT_DAEMON_ELINEAGE);
    ck_assert_int_eq(mrt_fork_verify_lineage(0xFEED, 8, r, N, NULL), MRT_DAEMON_ELINEAGE);
    /* A secret that is not the fork's. */
    uint8_t swapped[N][MRT_FORK_SECRET_SIZE];
    memcpy(swapped, secrets, sizeof swapped);
    memcpy(swapped[3], secrets[4], MRT_FORK_SECRET_SIZE);
    ck_assert_int_eq(mrt_fork_verify_lineage(0xFEED, 9, r, N, (const uint8_t(*)[32])swapped),
                     MRT_DAEMON_ELINEAGE);
    /* The same fork twice. */
    mrt_fork_record dup[N];
    memcpy(dup, r, sizeof dup);
    dup[4] = dup[1];
    ck_assert_int_eq(mrt_fork_verify_lineage(0xFEED, 9, dup, N, NULL), MRT_DAEMON_ELINEAGE);
    /* A record that does not verify. */
    memcpy(dup, r, sizeof dup);
    dup[2].genesis.sequence = 1;
    ck_assert_int_eq(mrt_fork_verify_lineage(0xFEED, 9, dup, N, NULL), MRT_DAEMON_ELINEAGE);
}
END_TEST

static mrt_host *host(mrt_host_config *c, struct counter *st)
{
    mrt_host *h;
    mrt_daemon d = { &counter_vt, st };
    ck_assert_int_eq(mrt_host_create(c, d, &h), MRT_OK);
    return h;
}

/* Deliver one event and feed its one output to a receiver chain. */
static void step(mrt_host *h, mrt_causal_chain *rx, uint64_t i)
{
    mrt_event ev = { .link = { .origin_hash = 77, .sequence = i }, .payload = "x", .payload_len = 1 };
    ck_assert_int_eq(mrt_host_deliver(h, &ev, i), MRT_OK);
    size_t n;
    const mrt_event *out = mrt_host_outputs(h, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(mrt_causal_chain_accept(rx, &out[0].link, out[0].payload, out[0].payload_len),
                     MRT_OK);
    mrt_host_release_outputs(h);
}

/*
 * Forks of a running daemon: each starts from the parent's snapshot (state
 * and horizon), emits on its own origin from its fork genesis (first output
 * sequence 1), and diverges; the parent's chain goes on untouched.
 */
START_TEST(fork_chains_verify_from_fork_genesis)
{
    struct counter ps = { 0, 'P' };
    mrt_host_config pc;
    memset(&pc, 0, sizeof pc);
    memset(pc.key, 0x31, sizeof pc.key);
    mrt_host *parent = host(&pc, &ps);
    mrt_causal_chain prx;
    mrt_causal_chain_init(&prx, mrt_host_origin(parent));
    for (uint64_t i = 0; i < 10; i++)
        step(parent, &prx, i);
    uint8_t snap[512];
    size_t slen;
    ck_assert_int_eq(mrt_host_snapshot(parent, snap, sizeof snap, &slen), MRT_OK);
    uint64_t fork_seq = mrt_host_chain(parent)->head.sequence;

    enum { N = 3 };
    uint8_t secrets[N][MRT_FORK_SECRET_SIZE];
    mrt_fork_record rec[N];
    struct counter fs[N];
    mrt_host *forks[N];
    mrt_causal_chain frx[N];
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(mrt_fork_secret_new(secrets[k]), MRT_OK);
        ck_assert_int_eq(mrt_fork_record_make(secrets[k], mrt_host_origin(parent), fork_seq,
                                              &fork_seq, &rec[k]),
                         MRT_OK);
        /* Records travel as 65 bytes; the receiver's copy is what it chains from. */
        uint8_t w[MRT_FORK_RECORD_SIZE];
        mrt_fork_record got;
        mrt_fork_record_encode(&rec[k], w);
        ck_assert_int_eq(mrt_fork_record_decode(w, sizeof w, &got), MRT_OK);
        ck_assert_int_eq(mrt_fork_chain_init(&frx[k], &got), MRT_OK);

        mrt_host_config c;
        memset(&c, 0, sizeof c);
        ck_assert_int_eq(mrt_fork_host_config(&rec[k], secrets[k], &c), MRT_OK);
        fs[k] = (struct counter){ 0, (uint8_t)('a' + k) };
        forks[k] = host(&c, &fs[k]);
        ck_assert_uint_eq(mrt_host_origin(forks[k]), rec[k].forked_origin);
        /* The parent's own snapshot is refused as a fork start; the parent's is taken. */
        ck_assert_int_eq(mrt_host_restore(forks[k], snap, slen), MRT_DAEMON_EORIGIN);
        ck_assert_int_eq(mrt_host_restore_fork(forks[k], snap, slen), MRT_OK);
        ck_assert_uint_eq(fs[k].n, 10);
        ck_assert(mrt_horizon_contains_origin(mrt_host_horizon(forks[k]), 77));
    }
    ck_assert_int_eq(mrt_fork_verify_lineage(mrt_host_origin(parent), fork_seq, rec, N,
                                             (const uint8_t(*)[32])secrets),
                     MRT_OK);

    for (int k = 0; k < N; k++) {
        mrt_event ev = { .link = { .origin_hash = 77, .sequence = 10 }, .payload = "x", .payload_len = 1 };
        ck_assert_int_eq(mrt_host_deliver(forks[k], &ev, 0), MRT_OK);
        size_t n;
        const mrt_event *out = mrt_host_outputs(forks[k], &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(out[0].link.origin_hash, rec[k].forked_origin);
        ck_assert_uint_eq(out[0].link.sequence, 1);
        ck_assert_uint_eq(out[0].link.parent_hash, mrt_causal_parent_hash(&rec[k].genesis, NULL, 0));
        uint64_t count;
        memcpy(&count, (const uint8_t *)out[0].payload + 1, 8);
        ck_assert_uint_eq(count, 11); /* continues the parent's state */
        ck_assert_int_eq(mrt_causal_chain_accept(&frx[k], &out[0].link, out[0].payload, 9), MRT_OK);
        mrt_host_release_outputs(forks[k]);
        for (uint64_t i = 11; i < 30 + (uint64_t)k; i++)
            step(forks[k], &frx[k], i);
        ck_assert_uint_eq(frx[k].head.sequence, 20 + (uint64_t)k);
    }
    /* The parent's chain is untouched: its receiver goes on accepting. */
    for (uint64_t i = 10; i < 15; i++)
        step(parent, &prx, i);
    ck_assert_uint_eq(prx.head.sequence, 14);
    /* A fork's output is not a link of another fork's chain nor of the parent's. */
    mrt_causal_chain wrong;
    ck_assert_int_eq(mrt_fork_chain_init(&wrong, &rec[1]), MRT_OK);
    mrt_causal_link l0 = frx[0].head;
    ck_assert_int_eq(mrt_causal_chain_accept(&wrong, &l0, NULL, 0), MRT_DAEMON_EORIGIN);

    /* A wrong secret or a broken record gives no host configuration. */
    mrt_host_config c;
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(mrt_fork_host_config(&rec[0], secrets[1], &c), MRT_DAEMON_ELINEAGE);
    mrt_fork_record bad = rec[0];
    bad.fork_seq++;
    ck_assert_int_eq(mrt_fork_host_config(&bad, secrets[0], &c), MRT_DAEMON_ELINEAGE);
    ck_assert_int_eq(mrt_fork_chain_init(&wrong, &bad), MRT_DAEMON_ELINEAGE);

    for (int k = 0; k < N; k++)
        mrt_host_destroy(forks[k]);
    mrt_host_destroy(parent);
}
END_TEST

/* Re-spawning a fork from its stored secret gives the same identity, chained from the same genesis. */
START_TEST(fork_respawn_same_identity)
{
    uint8_t secret[MRT_FORK_SECRET_SIZE];
    mrt_fork_record r;
    make_record(secret, 0x99, 4, &r);
    struct counter a = { 0, 'a' }, b = { 0, 'a' };
    mrt_host_config c1, c2;
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    ck_assert_int_eq(mrt_fork_host_config(&r, secret, &c1), MRT_OK);
    ck_assert_int_eq(mrt_fork_host_config(&r, secret, &c2), MRT_OK);
    mrt_host *h1 = host(&c1, &a), *h2 = host(&c2, &b);
    ck_assert_uint_eq(mrt_host_origin(h1), mrt_host_origin(h2));
    mrt_causal_chain rx1, rx2;
    ck_assert_int_eq(mrt_fork_chain_init(&rx1, &r), MRT_OK);
    ck_assert_int_eq(mrt_fork_chain_init(&rx2, &r), MRT_OK);
    step(h1, &rx1, 0);
    step(h2, &rx2, 0);
    ck_assert_mem_eq(&rx1.head, &rx2.head, sizeof rx1.head);
    mrt_host_destroy(h1);
    mrt_host_destroy(h2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("daemon_fork");
    TCase *t = tcase_create("fork");
    tcase_add_test(t, secrets_are_random);
    tcase_add_test(t, sentinel_and_genesis);
    tcase_add_test(t, record_wire_layout);
    tcase_add_test(t, decode_rejects_bad_length);
    tcase_add_test(t, decode_rejects_failed_verify);
    tcase_add_test(t, lineage);
    tcase_add_test(t, fork_chains_verify_from_fork_genesis);
    tcase_add_test(t, fork_respawn_same_identity);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return mrt_check_run(suite());
}
