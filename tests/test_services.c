/*
 * Services, the scaffolding: configuration, status names, registered types,
 * subsystems and hooks, the host table, pool classes.
 */
#include "test_services_common.h"

#include "meshrt/mrt_runtime.h"

START_TEST(config_and_status_names)
{
    mrt_mesh_config mc;
    mrt_mesh_config_default(&mc, 1);
    mrt_mesh *m = NULL;
    ck_assert_int_eq(mrt_mesh_create(&mc, &m), MRT_OK);
    mrt_svc_config c;
    mrt_svc *svc = NULL;
    mrt_svc_config_default(&c);
    ck_assert_uint_eq(c.max_payload, 64 * 1024);
    c.max_payload = MRT_SVC_MAX_PAYLOAD_LIMIT + 1;
    ck_assert_int_eq(mrt_svc_create(m, &c, &svc), MRT_SVC_ECONFIG);
    mrt_svc_config_default(&c);
    c.shard_type_base = 62;
    ck_assert_int_eq(mrt_svc_create(m, &c, &svc), MRT_SVC_ECONFIG);
    mrt_svc_config_default(&c);
    c.inflight = 0;
    ck_assert_int_eq(mrt_svc_create(m, &c, &svc), MRT_SVC_ECONFIG);
    ck_assert_int_eq(mrt_svc_create(NULL, NULL, &svc), MRT_EINVAL);
    ck_assert_ptr_null(svc);
    ck_assert_int_eq(mrt_svc_create(m, NULL, &svc), MRT_OK);

    /* Default classes: 64 B doubling up to 64 KiB, then one that fits max + header exactly. */
    unsigned nc = mrt_svc_pool_classes(svc);
    uint32_t cap = 0, cnt = 0, prev = 0;
    for (unsigned k = 0; k < nc; k++) {
        ck_assert_int_eq(mrt_svc_pool_class(svc, k, &cap, &cnt), MRT_OK);
        ck_assert_uint_gt(cap, prev);
        ck_assert_uint_ge(cnt, 16);
        prev = cap;
    }
    ck_assert_uint_ge(cap, 64 * 1024);
    ck_assert_uint_lt(cap, 64 * 1024 + 64);
    ck_assert_int_eq(mrt_svc_pool_class(svc, nc, &cap, &cnt), MRT_EINVAL);
    /* Every length goes to the smallest class that holds it. */
    for (size_t len = 0; len <= 64 * 1024; len += 1 + len / 7) {
        unsigned k = svc_class_of(svc, len);
        ck_assert_int_eq(mrt_svc_pool_class(svc, k, &cap, NULL), MRT_OK);
        ck_assert_uint_ge(cap, len);
        if (k > 0) {
            ck_assert_int_eq(mrt_svc_pool_class(svc, k - 1, &cap, NULL), MRT_OK);
            ck_assert_uint_lt(cap, len);
        }
    }
    mrt_svc_destroy(svc);
    mrt_mesh_destroy(m);

    /* Every code has a name, through the module and through mrt_strerror. */
    for (int code = MRT_SVC_ETOOBIG; code >= MRT_SVC_ENOTYPE; code--) {
        ck_assert_ptr_nonnull(mrt_svc_strerror(code));
        ck_assert_str_eq(mrt_strerror(code), mrt_svc_strerror(code));
    }
    ck_assert_ptr_null(mrt_svc_strerror(-699));
    ck_assert_ptr_null(mrt_svc_strerror(MRT_SVC_ENOTYPE - 1));
}
END_TEST

/* ---- types, subsystems, hooks ------------------------------------------------ */

typedef struct sub_ctx {
    unsigned inits, finis;
    unsigned fail_on;        /* init of this shard + 1 fails (0: never) */
    unsigned order[8], norder;
    unsigned tag;
} sub_ctx;

typedef struct sub_state {
    unsigned shard;
    unsigned ticks, drain_ticks;
    uint64_t msgs, sum;
    unsigned from_ingress;
} sub_state;

static void sub_tick(mrt_svc_shard *ss, bool draining, void *ctx)
{
    (void)ss;
    sub_state *st = ctx;
    st->ticks++;
    st->drain_ticks += draining;
}

static int sub_init(mrt_svc_shard *ss, void *ctx, void **state)
{
    sub_ctx *c = ctx;
    unsigned id = mrt_shard_id(mrt_svc_shard_get(ss));
    if (c->fail_on == id + 1)
        return MRT_ENOMEM;
    sub_state *st = mrt_calloc(mrt_svc_allocator(ss), sizeof *st);
    if (st == NULL)
        return MRT_ENOMEM;
    st->shard = id;
    c->inits++;
    c->order[c->norder++ % 8] = c->tag;
    *state = st;
    return mrt_svc_add_hook(ss, sub_tick, st);
}

static void sub_fini(mrt_svc_shard *ss, void *ctx, void *state)
{
    sub_ctx *c = ctx;
    c->finis++;
    c->order[c->norder++ % 8] = 100 + c->tag;
    mrt_free(mrt_svc_allocator(ss), state, sizeof(sub_state));
}

static uint16_t g_sub; /* the subsystem whose state the handlers use */

static void on_one(mrt_svc_shard *ss, const mrt_msg *m, void *ctx)
{
    ck_assert_ptr_eq(ctx, (void *)&g_sub);
    sub_state *st = mrt_svc_state(ss, g_sub);
    st->msgs++;
    st->sum += m->w[0];
    st->from_ingress += m->src == MRT_SRC_EXTERNAL;
}

static void on_many(mrt_svc_shard *ss, const mrt_msg *m, unsigned n, void *ctx)
{
    (void)ctx;
    sub_state *st = mrt_svc_state(ss, g_sub);
    for (unsigned i = 0; i < n; i++) {
        st->msgs += 1000;
        st->sum += m[i].w[0];
    }
}

START_TEST(types_subsystems_and_hooks)
{
    world w;
    world_mesh(&w, 64, 8, 0);
    ck_assert_int_eq(mrt_svc_create(w.m, NULL, &w.svc), MRT_OK);
    static sub_ctx a, b;
    a = (sub_ctx){ .tag = 1 };
    b = (sub_ctx){ .tag = 2 };
    uint16_t ta, tb, tx, ida, idb;
    ck_assert_int_eq(mrt_svc_register_subsystem(w.svc, "alpha", sub_init, sub_fini, &a, &ida), MRT_OK);
    ck_assert_int_eq(mrt_svc_register_subsystem(w.svc, "beta", sub_init, sub_fini, &b, &idb), MRT_OK);
    ck_assert_int_eq(mrt_svc_register_subsystem(w.svc, "alpha", sub_init, NULL, &a, NULL), MRT_SVC_EEXIST);
    ck_assert_int_eq(mrt_svc_register_subsystem(w.svc, "", sub_init, NULL, &a, NULL), MRT_EINVAL);
    g_sub = ida;
    ck_assert_int_eq(mrt_svc_register_type(w.svc, "one", on_one, NULL, &g_sub, &ta), MRT_OK);
    ck_assert_int_eq(mrt_svc_register_type(w.svc, "many", on_one, on_many, NULL, &tb), MRT_OK);
    ck_assert_int_eq(mrt_svc_register_type(w.svc, "one", on_one, NULL, NULL, &tx), MRT_SVC_EEXIST);
    ck_assert_int_eq(mrt_svc_register_type(w.svc, "none", NULL, NULL, NULL, &tx), MRT_EINVAL);
    ck_assert_int_eq(mrt_svc_type_find(w.svc, "many", &tx), MRT_OK);
    ck_assert_uint_eq(tx, tb);
    ck_assert_int_eq(mrt_svc_type_find(w.svc, "nope", &tx), MRT_SVC_ENOTYPE);
    ck_assert_uint_ne(ta, tb);

    for (unsigned i = 0; i < NSH; i++)
        ck_assert_int_eq(mrt_svc_shard_init(w.svc, mrt_mesh_shard(w.m, i), &w.ss[i]), MRT_OK);
    ck_assert_int_eq(mrt_svc_shard_init(w.svc, mrt_mesh_shard(w.m, 0), &w.ss[0]), MRT_ESTATE);
    ck_assert_ptr_eq(mrt_svc_shard_of(w.svc, 1), w.ss[1]);
    ck_assert_ptr_null(mrt_svc_shard_of(w.svc, NSH));
    /* Registration is closed once a shard started. */
    ck_assert_int_eq(mrt_svc_register_type(w.svc, "late", on_one, NULL, NULL, &tx), MRT_ESTATE);
    ck_assert_int_eq(mrt_svc_register_subsystem(w.svc, "late", NULL, NULL, NULL, NULL), MRT_ESTATE);
    /* Inits ran in order on each shard, each with its own state from that shard. */
    ck_assert_uint_eq(a.inits, NSH);
    ck_assert_uint_eq(b.inits, NSH);
    sub_state *s1 = mrt_svc_state(w.ss[1], ida);
    ck_assert_uint_eq(s1->shard, 1);
    ck_assert_ptr_ne(mrt_svc_state(w.ss[1], idb), s1);
    ck_assert_ptr_null(mrt_svc_state(w.ss[1], 99));

    mrt_msg m = { .w = { 5 } };
    ck_assert_int_eq(mrt_svc_send_msg(w.ss[0], 1, ta, &m), MRT_OK);
    m.w[0] = 7;
    ck_assert_int_eq(mrt_svc_send_msg(w.ss[0], 1, tb, &m), MRT_OK);
    ck_assert_int_eq(mrt_svc_send_msg(w.ss[0], 1, tb, &m), MRT_OK);
    m.w[0] = 11;
    ck_assert_int_eq(mrt_svc_inject_msg(w.svc, 1, ta, &m), MRT_OK);
    ck_assert_int_eq(mrt_svc_send_msg(w.ss[0], 1, 40, &m), MRT_SVC_ENOTYPE);
    ck_assert_int_eq(mrt_svc_inject_msg(w.svc, 1, 40, &m), MRT_SVC_ENOTYPE);
    for (int k = 0; k < 3; k++)
        world_poll(&w);
    ck_assert_uint_eq(s1->msgs, 2 + 2000);
    ck_assert_uint_eq(s1->sum, 5 + 7 + 7 + 11);
    ck_assert_uint_eq(s1->from_ingress, 1);
    /* Both subsystems' hooks ran every iteration. */
    sub_state *s1b = mrt_svc_state(w.ss[1], idb);
    ck_assert_uint_eq(s1->ticks, 3);
    ck_assert_uint_eq(s1b->ticks, 3);
    world_drain(&w);
    ck_assert_uint_gt(s1->drain_ticks, 0);
    ck_assert_uint_eq(s1->drain_ticks, s1b->drain_ticks);
    a.norder = b.norder = 0;
    mrt_svc_shard_fini(w.ss[0]);
    ck_assert_uint_eq(a.finis, 1);
    ck_assert_uint_eq(b.finis, 1);
    /* Reverse order: beta's fini (102) before alpha's (101). */
    ck_assert_uint_eq(b.order[0], 102);
    ck_assert_uint_eq(a.order[0], 101);
    ck_assert_ptr_null(mrt_svc_shard_of(w.svc, 0));
    w.ss[0] = NULL;
    world_end(&w);
    ck_assert_uint_eq(a.finis, NSH);
}
END_TEST

START_TEST(failed_subsystem_init_undoes_the_others)
{
    world w;
    world_mesh(&w, 64, 8, 0);
    ck_assert_int_eq(mrt_svc_create(w.m, NULL, &w.svc), MRT_OK);
    static sub_ctx a, b;
    a = (sub_ctx){ .tag = 1 };
    b = (sub_ctx){ .tag = 2, .fail_on = 2 }; /* beta fails on shard 1 */
    ck_assert_int_eq(mrt_svc_register_subsystem(w.svc, "alpha", sub_init, sub_fini, &a, NULL), MRT_OK);
    ck_assert_int_eq(mrt_svc_register_subsystem(w.svc, "beta", sub_init, sub_fini, &b, NULL), MRT_OK);
    ck_assert_int_eq(mrt_svc_shard_init(w.svc, mrt_mesh_shard(w.m, 0), &w.ss[0]), MRT_OK);
    mrt_svc_shard *bad = NULL;
    ck_assert_int_eq(mrt_svc_shard_init(w.svc, mrt_mesh_shard(w.m, 1), &bad), MRT_ENOMEM);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_null(mrt_svc_shard_of(w.svc, 1));
    ck_assert_uint_eq(a.inits, 2);
    ck_assert_uint_eq(a.finis, 1); /* alpha on shard 1 was undone */
    ck_assert_uint_eq(b.finis, 0);
    /* A message for services' types on shard 1 now has no handler: handed back by the shard. */
    mrt_causal_link link = { 0 };
    ck_assert_int_eq(mrt_svc_send(w.ss[0], 1, 1, &link, NULL, 0), MRT_OK);
    for (int k = 0; k < 3; k++)
        world_poll(&w);
    mrt_shard_stats st;
    mrt_shard_stats_read(w.m, 1, &st);
    ck_assert_uint_eq(st.handed_back[MRT_HB_NO_HANDLER], 1);
    world_end(&w);
}
END_TEST

/* ---- host table -------------------------------------------------------------- */

static int count_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)ev;
    (void)sink;
    (*(uint64_t *)state)++;
    return MRT_OK;
}
static const mrt_daemon_vtable count_vt_dummy = { .name = "count", .process = count_process };

START_TEST(host_table_add_find_remove)
{
    enum { CAP = 300 };
    world w;
    world_mesh(&w, 64, 8, 0);
    mrt_svc_config c;
    mrt_svc_config_default(&c);
    c.host_capacity = CAP;
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    for (unsigned i = 0; i < NSH; i++)
        ck_assert_int_eq(mrt_svc_shard_init(w.svc, mrt_mesh_shard(w.m, i), &w.ss[i]), MRT_OK);
    mrt_svc_shard *ss = w.ss[0];
    static mrt_host *h[CAP + 1];
    static uint64_t id[CAP + 1];
    static uint64_t counters[CAP + 1];
    for (unsigned i = 0; i <= CAP; i++) {
        mrt_host_config hc = { .alloc = mrt_svc_allocator(ss), .max_outputs = 1,
                               .payload_bytes = 16, .max_origins = 1 };
        hc.key[0] = (uint8_t)i;
        hc.key[1] = (uint8_t)(i >> 8);
        ck_assert_int_eq(mrt_host_create(&hc, (mrt_daemon){ &count_vt_dummy, &counters[i] }, &h[i]),
                         MRT_OK);
        id[i] = mrt_host_origin(h[i]);
    }
    for (unsigned i = 0; i < CAP; i++)
        ck_assert_int_eq(mrt_svc_host_add(ss, h[i]), MRT_OK);
    ck_assert_int_eq(mrt_svc_host_add(ss, h[0]), MRT_SVC_EEXIST);
    ck_assert_int_eq(mrt_svc_host_add(ss, h[CAP]), MRT_SVC_ELIMIT);
    ck_assert_int_eq(mrt_svc_host_add(ss, NULL), MRT_EINVAL);
    ck_assert_uint_eq(mrt_svc_host_count(ss), CAP);
    for (unsigned i = 0; i < CAP; i++)
        ck_assert_ptr_eq(mrt_svc_host_find(ss, id[i]), h[i]);
    ck_assert_ptr_null(mrt_svc_host_find(ss, id[CAP]));
    ck_assert_ptr_null(mrt_svc_host_find(w.ss[1], id[0])); /* per shard */
    /* Remove every third: the others stay findable (backward shift keeps runs intact). */
    for (unsigned i = 0; i < CAP; i += 3) {
        mrt_host *out = NULL;
        ck_assert_int_eq(mrt_svc_host_remove(ss, id[i], &out), MRT_OK);
        ck_assert_ptr_eq(out, h[i]);
        ck_assert_int_eq(mrt_svc_host_remove(ss, id[i], NULL), MRT_SVC_ENOHOST);
    }
    for (unsigned i = 0; i < CAP; i++)
        ck_assert_ptr_eq(mrt_svc_host_find(ss, id[i]), i % 3 == 0 ? NULL : h[i]);
    ck_assert_int_eq(mrt_svc_host_add(ss, h[CAP]), MRT_OK);
    ck_assert_ptr_eq(mrt_svc_host_find(ss, id[CAP]), h[CAP]);
    for (unsigned i = 0; i < CAP; i++)
        if (i % 3 != 0)
            ck_assert_int_eq(mrt_svc_host_remove(ss, id[i], NULL), MRT_OK);
    ck_assert_int_eq(mrt_svc_host_remove(ss, id[CAP], NULL), MRT_OK);
    ck_assert_uint_eq(mrt_svc_host_count(ss), 0);
    for (unsigned i = 0; i <= CAP; i++)
        mrt_host_destroy(h[i]);
    world_end(&w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("services");
    TCase *tc = tcase_create("services");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, config_and_status_names);
    tcase_add_test(tc, types_subsystems_and_hooks);
    tcase_add_test(tc, failed_subsystem_init_undoes_the_others);
    tcase_add_test(tc, host_table_add_find_remove);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
