/*
 * hello_daemons — an application embedding meshrt, built against the
 * installed package (see examples/README.md).
 *
 * It registers two daemon types of its own, spawns one daemon of each on
 * the shards, wires them into a pipeline and feeds it from its main thread:
 *
 *   main thread --inject--> upper --> counter --> egress --> main thread
 *                             \-------------------> egress
 *
 *   upper    uppercases each text it receives and emits it;
 *   counter  numbers the texts it receives and emits "#n TEXT" together
 *            with the causal link of the event it got (upper's output).
 *
 * The main thread drains egress and checks everything it receives: each
 * daemon's outputs form an unbroken causal chain (mrt_causal_chain_accept:
 * origin, sequence, parent hash over the previous link and payload), upper's
 * k-th output is the k-th text uppercased, and counter's k-th output names
 * upper's k-th output as its cause and carries the same text. At the end the
 * runtime's counters must balance: every event injected, delivered, emitted
 * and egressed, nothing handed back, no reservation left. Any inconsistency
 * is printed and the program exits 1.
 *
 * usage: hello_daemons [COUNT]   (COUNT texts, default 5; the first 20 outputs are printed)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, sched_yield under -std=c11 */

#include <meshrt/mrt_compute.h>
#include <meshrt/mrt_runtime.h>

#include <ctype.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TEXT_MAX = 64, PRINT_MAX = 20 };
/*
 * Texts between injection and egress at most. Egress is bounded (a ring per
 * shard, then a deferral queue; past both, the shard holds its input, and
 * an output that still finds no room is handed back): pacing keeps the work
 * in flight and this thread's lag small, and egress never fills.
 */
enum { WINDOW = 256 };

/* ---- the daemons (they run on shard threads) ---------------------------- */

/* upper: stateless; one output per event, its payload uppercased. */
static int upper_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)state;
    void *buf;
    int rc = mrt_daemon_emit(sink, ev->payload_len, &buf);
    if (rc != MRT_OK)
        return rc;
    const unsigned char *in = ev->payload;
    char *out = buf;
    for (size_t i = 0; i < ev->payload_len; i++)
        out[i] = (char)toupper(in[i]);
    return MRT_OK;
}

static const mrt_daemon_vtable upper_vt = { .name = "upper", .process = upper_process };

/* counter: counts its events; each output is a counted record. */
typedef struct counter_state {
    uint64_t count;
} counter_state;

/* What counter emits: its count, the link of the event that caused it, the text. */
typedef struct counted {
    uint64_t n;                 /* 1, 2, 3, ... */
    uint64_t cause_origin;      /* the input event's link: who emitted it ... */
    uint64_t cause_sequence;    /* ... and where in its chain */
    uint32_t len;
    char text[TEXT_MAX];
} counted;

static int counter_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    counter_state *cs = state;
    if (ev->payload_len > TEXT_MAX)
        return MRT_EINVAL; /* refused: counted by the runtime as a daemon error */
    counted c = { .n = ++cs->count,
                  .cause_origin = ev->link.origin_hash,
                  .cause_sequence = ev->link.sequence,
                  .len = (uint32_t)ev->payload_len };
    memcpy(c.text, ev->payload, ev->payload_len);
    return mrt_daemon_emit_copy(sink, &c, sizeof c);
}

static const mrt_daemon_vtable counter_vt = { .name = "counter", .process = counter_process };

/* ---- the application side (main thread) ---------------------------------- */

typedef struct app {
    unsigned count;                 /* texts injected */
    mrt_compute_ref upper, counter;
    mrt_causal_chain upper_chain, counter_chain;
    char (*upper_text)[TEXT_MAX];   /* upper's k-th output ... */
    uint32_t *upper_len;
    uint64_t *upper_seq;            /* ... and its causal sequence */
    counted *counter_out;           /* counter's k-th output */
    unsigned upper_seen, counter_seen, printed;
    unsigned errors;
} app;

static void problem(app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(app *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hello_daemons: INCONSISTENT: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    a->errors++;
}

/* Who emitted an output and its causal link (the emitter's origin is printed once, at start). */
static void print_link(const char *who, const mrt_compute_output *o)
{
    printf("%-7s shard %u  seq %-3" PRIu64 " parent %016" PRIx64 "  ", who, o->from.shard,
           o->link.sequence, o->link.parent_hash);
}

/* Called by mrt_compute_egress_poll for each output, in order per emitting daemon. */
static void on_egress(void *ctx, const mrt_compute_output *o)
{
    app *a = ctx;
    bool from_upper = o->from.id == a->upper.id;
    if (!from_upper && o->from.id != a->counter.id) {
        problem(a, "an output from unknown daemon %016" PRIx64, o->from.id);
        return;
    }
    /* 1. The emitter's chain: every link follows the previous one exactly. */
    mrt_causal_chain *chain = from_upper ? &a->upper_chain : &a->counter_chain;
    int rc = mrt_causal_chain_accept(chain, &o->link, o->payload, o->len);
    if (rc != MRT_OK)
        problem(a, "%s's output seq %" PRIu64 " breaks its chain: %s",
                from_upper ? "upper" : "counter", o->link.sequence, mrt_strerror(rc));
    if (from_upper) {
        /* 2. upper's k-th output is the k-th text uppercased. */
        unsigned k = a->upper_seen++;
        char want[TEXT_MAX];
        int len = snprintf(want, sizeof want, "HELLO, DAEMON %u", k);
        if (k >= a->count || o->len != (size_t)len || memcmp(o->payload, want, o->len) != 0) {
            problem(a, "upper's output %u is not \"%s\"", k, want);
            return;
        }
        memcpy(a->upper_text[k], o->payload, o->len);
        a->upper_len[k] = (uint32_t)o->len;
        a->upper_seq[k] = o->link.sequence;
        if (a->printed++ < PRINT_MAX) {
            print_link("upper", o);
            printf("\"%.*s\"\n", (int)o->len, (const char *)o->payload);
        }
        return;
    }
    /* 3. counter's k-th output was caused by upper's k-th output and carries its text. */
    unsigned k = a->counter_seen++;
    counted c;
    if (o->len != sizeof c) {
        problem(a, "counter's output %u has %zu bytes, not %zu", k, o->len, sizeof c);
        return;
    }
    memcpy(&c, o->payload, sizeof c);
    if (k >= a->count || c.n != k + 1u)
        problem(a, "counter's output %u counts %" PRIu64, k, c.n);
    if (c.cause_origin != a->upper.id)
        problem(a, "counter's output %u was caused by %016" PRIx64 ", not upper", k,
                c.cause_origin);
    /*
     * Egress is in order per emitting daemon only: counter's k-th output may
     * come before upper's k-th, so the cause is checked once both are in.
     */
    a->counter_out[k < a->count ? k : 0] = c;
    if (a->printed++ < PRINT_MAX) {
        print_link("counter", o);
        printf("#%" PRIu64 " \"%.*s\" <- upper seq %" PRIu64 "\n", c.n, (int)c.len, c.text,
               c.cause_sequence);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sum of every shard's compute counters. */
static mrt_compute_stats totals(mrt_compute *c, unsigned shards)
{
    mrt_compute_stats t = { 0 }, s;
    for (unsigned i = 0; i < shards; i++) {
        if (mrt_compute_stats_get(c, i, &s) != MRT_OK)
            continue;
        t.hosted += s.hosted;
        t.injected += s.injected;
        t.delivered += s.delivered;
        t.emitted += s.emitted;
        t.routed_daemon += s.routed_daemon;
        t.routed_set += s.routed_set;
        t.egressed += s.egressed;
        t.handed_back += s.handed_back;
        t.daemon_errors += s.daemon_errors;
        t.inflight += s.inflight;
    }
    return t;
}

#define CHECK(call)                                                                          \
    do {                                                                                     \
        int rc_ = (call);                                                                    \
        if (rc_ != MRT_OK) {                                                                 \
            fprintf(stderr, "hello_daemons: %s: %s\n", #call, mrt_strerror(rc_));            \
            goto out;                                                                        \
        }                                                                                    \
    } while (0)

int main(int argc, char **argv)
{
    app a = { .count = 5 };
    if (argc > 1) {
        char *end;
        unsigned long v = strtoul(argv[1], &end, 10);
        if (*end != '\0' || v == 0 || v > 1000000) {
            fprintf(stderr, "usage: hello_daemons [COUNT (1..1000000)]\n");
            return 2;
        }
        a.count = (unsigned)v;
    }
    int status = 1;
    mrt_runtime *rt = NULL;
    a.upper_text = calloc(a.count, sizeof *a.upper_text);
    a.upper_len = calloc(a.count, sizeof *a.upper_len);
    a.upper_seq = calloc(a.count, sizeof *a.upper_seq);
    a.counter_out = calloc(a.count, sizeof *a.counter_out);
    if (!a.upper_text || !a.upper_len || !a.upper_seq || !a.counter_out)
        goto out;

    /* A runtime runs nothing of its own: the shards run only what we put on them. */
    mrt_runtime_config cfg;
    mrt_runtime_config_default(&cfg);
    cfg.allow_unbound = true; /* containers and CI may refuse CPU pinning */
    char err[256] = "";
    int rc = mrt_runtime_create(&cfg, &rt, err, sizeof err);
    if (rc != MRT_OK) {
        fprintf(stderr, "hello_daemons: %s\n", err);
        goto out;
    }
    mrt_compute *c = mrt_runtime_compute(rt);
    unsigned shards = mrt_mesh_size(mrt_runtime_mesh(rt));

    /* Daemon types are registered before start; their ids are the same on every shard. */
    uint16_t upper_type, counter_type;
    /* upper keeps no state; counter's is a zeroed counter_state per instance, made on its
     * shard from the shard's arena (a type that needs its spawn argument sets create). */
    CHECK(mrt_compute_register_type(c, &(mrt_compute_type){ .name = "upper", .vt = &upper_vt },
                                    &upper_type));
    CHECK(mrt_compute_register_type(c, &(mrt_compute_type){ .name = "counter",
                                                             .vt = &counter_vt,
                                                             .state_size = sizeof(counter_state) },
                                    &counter_type));
    rc = mrt_runtime_start(rt, err, sizeof err);
    if (rc != MRT_OK) {
        fprintf(stderr, "hello_daemons: %s\n", err);
        goto out;
    }

    /* upper on shard 0; counter wherever the placement function puts it (the emptiest shard). */
    CHECK(mrt_compute_spawn(c, upper_type, 0, NULL, NULL, 0, &a.upper));
    CHECK(mrt_compute_spawn(c, counter_type, MRT_COMPUTE_ANY_SHARD, NULL, NULL, 0, &a.counter));
    CHECK(mrt_compute_subscribe(c, a.upper, MRT_COMPUTE_TO_DAEMON, a.counter));
    CHECK(mrt_compute_subscribe(c, a.upper, MRT_COMPUTE_TO_EGRESS, (mrt_compute_ref){ 0 }));
    CHECK(mrt_compute_subscribe(c, a.counter, MRT_COMPUTE_TO_EGRESS, (mrt_compute_ref){ 0 }));
    mrt_causal_chain_init(&a.upper_chain, a.upper.id);
    mrt_causal_chain_init(&a.counter_chain, a.counter.id);
    printf("%u shard%s, %u texts; upper %016" PRIx64 " on shard %u, counter %016" PRIx64
           " on shard %u\n",
           shards, shards == 1 ? "" : "s", a.count, a.upper.id, a.upper.shard, a.counter.id,
           a.counter.shard);

    /*
     * Inject from this thread, at most WINDOW texts ahead of counter's
     * outputs; drain egress meanwhile. Backpressure (the shard's ingress ring
     * or its buffer pool is full) is a code, never a drop: drain, then offer
     * the same text again.
     */
    unsigned want = 2 * a.count;
    double last_progress = now_s();
    unsigned injected = 0, drained = 0;
    while (drained < want && a.errors == 0) {
        size_t got = 0;
        if (injected < a.count && injected - a.counter_seen < WINDOW) {
            char text[TEXT_MAX];
            int len = snprintf(text, sizeof text, "hello, daemon %u", injected);
            rc = mrt_compute_inject(c, a.upper, text, (size_t)len);
            if (rc == MRT_OK)
                injected++;
            else if (rc != MRT_SHARD_EFULL && rc != MRT_SVC_EPOOL) {
                fprintf(stderr, "hello_daemons: inject: %s\n", mrt_strerror(rc));
                goto out;
            }
        }
        got = mrt_compute_egress_poll(c, on_egress, &a, 64);
        drained += (unsigned)got;
        if (got) {
            last_progress = now_s();
            continue;
        }
        /* Nothing out: an event handed back or refused would never arrive. */
        mrt_compute_stats t = totals(c, shards);
        if (t.handed_back || t.daemon_errors) {
            problem(&a, "%" PRIu64 " events handed back, %" PRIu64 " refused by a daemon",
                    t.handed_back, t.daemon_errors);
            break;
        }
        if (now_s() - last_progress > 30) { /* a safety net, not a measure */
            problem(&a, "stalled: %u of %u outputs after 30 s without progress", drained, want);
            break;
        }
        sched_yield();
    }

    /* Stop: every in-flight event is delivered or handed back; then the counters balance. */
    mrt_runtime_stop(rt);
    mrt_compute_stats t = totals(c, shards);
    printf("injected %u, delivered %" PRIu64 ", emitted %" PRIu64 ", routed %" PRIu64
           ", egressed %" PRIu64 ", drained %u, handed back %" PRIu64 ", in flight %" PRIu64
           "\n",
           injected, t.delivered, t.emitted, t.routed_daemon, t.egressed, drained,
           t.handed_back, t.inflight);
    if (t.injected != a.count || t.delivered != want || t.emitted != want ||
        t.routed_daemon != a.count || t.egressed != want || drained != want ||
        t.handed_back != 0 || t.daemon_errors != 0 || t.inflight != 0)
        problem(&a, "the counters do not balance");
    if (a.upper_seen != a.count || a.counter_seen != a.count)
        problem(&a, "egressed %u from upper and %u from counter, expected %u each",
                a.upper_seen, a.counter_seen, a.count);
    /* Cause and effect: counter's k-th output names upper's k-th and carries its text. */
    for (unsigned k = 0; a.errors == 0 && k < a.count; k++) {
        const counted *o = &a.counter_out[k];
        if (o->cause_sequence != a.upper_seq[k] || o->len != a.upper_len[k] ||
            memcmp(o->text, a.upper_text[k], o->len) != 0)
            problem(&a, "counter's output %u names upper seq %" PRIu64 " \"%.*s\"", k,
                    o->cause_sequence, (int)o->len, o->text);
    }
    if (a.errors == 0) {
        printf("OK: %u texts, %u outputs egressed, 2 causal chains validated\n", a.count,
               drained);
        status = 0;
    }
out:
    mrt_runtime_destroy(rt);
    free(a.upper_text);
    free(a.upper_len);
    free(a.upper_seq);
    free(a.counter_out);
    if (fflush(stdout) != 0)
        status = 1;
    return status;
}
