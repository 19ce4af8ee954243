/*
 * topo: cpuset parsing (pure), selection and binding on this machine (only
 * what the API itself discovers is assumed), and selection on synthetic
 * multi-node SMT machines whose shape is known exactly.
 */
#include "meshrt/mrt_topo.h"
#include "topo/topo_internal.h"
#include "tests/check_main.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- mrt_cpuset_parse ---------------------------------------------------- */

struct parse_ok {
    const char *list;
    unsigned n;
    unsigned cpus[8];
};

static const struct parse_ok valid[] = {
    { "0", 1, { 0 } },
    { "7", 1, { 7 } },
    { "0-3", 4, { 0, 1, 2, 3 } },
    { "0-3,8", 5, { 0, 1, 2, 3, 8 } },
    { "8,0-3", 5, { 0, 1, 2, 3, 8 } },          /* output ascending whatever the order */
    { "10,2,5", 3, { 2, 5, 10 } },
    { "3-3", 1, { 3 } },                         /* one-element range */
    { "1,3-4,6", 4, { 1, 3, 4, 6 } },
    { "5-6,0-1", 4, { 0, 1, 5, 6 } },
    { "007", 1, { 7 } },                         /* leading zeros are still decimal */
    { "4294967295", 1, { UINT_MAX } },           /* largest index */
    { "4294967294-4294967295", 2, { UINT_MAX - 1, UINT_MAX } },
};

START_TEST(parse_valid)
{
    const struct parse_ok *v = &valid[_i];
    unsigned cpus[16];
    unsigned n = 99;
    ck_assert_msg(mrt_cpuset_parse(v->list, cpus, 16, &n) == MRT_OK, "list \"%s\"", v->list);
    ck_assert_uint_eq(n, v->n);
    for (unsigned i = 0; i < n; i++)
        ck_assert_msg(cpus[i] == v->cpus[i], "list \"%s\" [%u]: %u != %u", v->list, i, cpus[i],
                      v->cpus[i]);
}
END_TEST

static const char *const bad_syntax[] = {
    "", ",", "0,", ",0", "0,,1", "3-1", "-1", "1-", "-", "1--2", "1-2-3", "a", "1a", "0x1",
    " 1", "1 ", "1, 2", "+1", "1.5", "1;2", "1\n", "1-a", "4294967296", "99999999999999999999",
    "0-4294967296", "\xef\xbc\x91" /* fullwidth digit one */, "0-3,", "0-3,8,",
};

START_TEST(parse_syntax_error)
{
    unsigned cpus[16];
    unsigned n = 99;
    ck_assert_msg(mrt_cpuset_parse(bad_syntax[_i], cpus, 16, &n) == MRT_TOPO_ESYNTAX,
                  "list \"%s\"", bad_syntax[_i]);
    ck_assert_uint_eq(n, 0);
}
END_TEST

static const char *const dups[] = {
    "0,0", "0-3,2", "0-3,3-5", "5,1-6", "1,2,1", "2-4,0-2", "0-9,3-4", "7,7-7",
};

START_TEST(parse_duplicate)
{
    unsigned cpus[16];
    unsigned n = 99;
    ck_assert_msg(mrt_cpuset_parse(dups[_i], cpus, 16, &n) == MRT_TOPO_EDUP, "list \"%s\"",
                  dups[_i]);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(parse_too_many)
{
    unsigned cpus[MRT_TOPO_MAX_CPUS];
    unsigned n = 99;
    ck_assert_int_eq(mrt_cpuset_parse("0-3", cpus, 4, &n), MRT_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(mrt_cpuset_parse("0-4", cpus, 4, &n), MRT_TOPO_ETOOMANY);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(mrt_cpuset_parse("0,1,2,3,4", cpus, 4, &n), MRT_TOPO_ETOOMANY);
    ck_assert_int_eq(mrt_cpuset_parse("9,0-3", cpus, 4, &n), MRT_TOPO_ETOOMANY);
    ck_assert_int_eq(mrt_cpuset_parse("0", cpus, 0, &n), MRT_TOPO_ETOOMANY);
    /* A huge range is counted, not walked. */
    ck_assert_int_eq(mrt_cpuset_parse("0-4294967295", cpus, MRT_TOPO_MAX_CPUS, &n),
                     MRT_TOPO_ETOOMANY);
    ck_assert_int_eq(mrt_cpuset_parse("0-1023", cpus, MRT_TOPO_MAX_CPUS, &n), MRT_OK);
    ck_assert_uint_eq(n, MRT_TOPO_MAX_CPUS);
    ck_assert_uint_eq(cpus[MRT_TOPO_MAX_CPUS - 1], 1023);
    ck_assert_int_eq(mrt_cpuset_parse("0-1024", cpus, MRT_TOPO_MAX_CPUS, &n), MRT_TOPO_ETOOMANY);
    /* Documented precedence: syntax, then too many, then duplicates. */
    ck_assert_int_eq(mrt_cpuset_parse("0-9,x", cpus, 4, &n), MRT_TOPO_ESYNTAX);
    ck_assert_int_eq(mrt_cpuset_parse("0,0,", cpus, 4, &n), MRT_TOPO_ESYNTAX);
    ck_assert_int_eq(mrt_cpuset_parse("0,0", cpus, 1, &n), MRT_TOPO_ETOOMANY);
}
END_TEST

START_TEST(parse_descending_large)
{
    /* Many single CPUs in descending order: the sort has real work to do. */
    char list[8192];
    size_t off = 0;
    for (int c = 999; c >= 0; c--)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%d%s", c, c ? "," : "");
    unsigned cpus[MRT_TOPO_MAX_CPUS];
    unsigned n = 0;
    ck_assert_int_eq(mrt_cpuset_parse(list, cpus, MRT_TOPO_MAX_CPUS, &n), MRT_OK);
    ck_assert_uint_eq(n, 1000);
    for (unsigned i = 0; i < n; i++)
        ck_assert_uint_eq(cpus[i], i);
    /* The same list with one CPU repeated at the far end. */
    snprintf(list + off, sizeof(list) - off, ",999");
    ck_assert_int_eq(mrt_cpuset_parse(list, cpus, MRT_TOPO_MAX_CPUS, &n), MRT_TOPO_EDUP);
}
END_TEST

START_TEST(parse_bad_arguments)
{
    unsigned cpus[4];
    unsigned n = 0;
    ck_assert_int_eq(mrt_cpuset_parse(NULL, cpus, 4, &n), MRT_EINVAL);
    ck_assert_int_eq(mrt_cpuset_parse("0", cpus, 4, NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_cpuset_parse("0", NULL, 4, &n), MRT_EINVAL);
}
END_TEST

START_TEST(strerror_codes)
{
    const int codes[] = { MRT_TOPO_ELOAD, MRT_TOPO_ESYNTAX, MRT_TOPO_ERANGE, MRT_TOPO_EDUP,
                          MRT_TOPO_ENONODE, MRT_TOPO_EEMPTY, MRT_TOPO_ETOOMANY,
                          MRT_TOPO_EBIND_CPU, MRT_TOPO_EBIND_MEM };
    const unsigned n = sizeof(codes) / sizeof(codes[0]);
    for (unsigned i = 0; i < n; i++) {
        const char *s = mrt_topo_strerror(codes[i]);
        ck_assert_ptr_nonnull(s);
        for (unsigned j = 0; j < i; j++)
            ck_assert_str_ne(s, mrt_topo_strerror(codes[j]));
    }
    ck_assert_ptr_nonnull(mrt_topo_strerror(-199));
    ck_assert_ptr_null(mrt_topo_strerror(MRT_OK));
    ck_assert_ptr_null(mrt_topo_strerror(MRT_EINVAL));
    ck_assert_ptr_null(mrt_topo_strerror(-99));
    ck_assert_ptr_null(mrt_topo_strerror(-200));
}
END_TEST

/* ---- this machine ---------------------------------------------------------- */

static mrt_topo *load_real(void)
{
    mrt_topo *t = NULL;
    ck_assert_int_eq(mrt_topo_load(&t), MRT_OK);
    ck_assert_ptr_nonnull(t);
    return t;
}

START_TEST(real_shape)
{
    mrt_topo *t = load_real();
    ck_assert_uint_ge(mrt_topo_numa_count(t), 1);
    ck_assert_uint_ge(mrt_topo_core_count(t), 1);
    ck_assert_uint_ge(mrt_topo_pu_count(t), mrt_topo_core_count(t));
    char list[256];
    ck_assert_int_gt(mrt_topo_pu_list(t, list, sizeof(list)), 0);
    unsigned pus[MRT_TOPO_MAX_CPUS];
    unsigned n = 0;
    /* Our own list syntax round-trips hwloc's. */
    ck_assert_int_eq(mrt_cpuset_parse(list, pus, MRT_TOPO_MAX_CPUS, &n), MRT_OK);
    ck_assert_uint_eq(n, mrt_topo_pu_count(t));
    int node = mrt_topo_current_node(t);
    ck_assert_int_ge(node, 0);
    mrt_topo_destroy(t);
    mrt_topo_destroy(NULL);
}
END_TEST

START_TEST(real_select_current_node)
{
    mrt_topo *t = load_real();
    int node = mrt_topo_current_node(t);
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_node(t, node, &sel), MRT_OK);
    ck_assert_uint_ge(sel.count, 1);
    ck_assert_uint_le(sel.count, mrt_topo_core_count(t));
    for (unsigned i = 0; i < sel.count; i++) {
        ck_assert_int_eq(sel.cpus[i].numa_node, node);
        if (i > 0) {
            ck_assert_uint_gt(sel.cpus[i].pu, sel.cpus[i - 1].pu);
            for (unsigned j = 0; j < i; j++)
                ck_assert_uint_ne(sel.cpus[i].core, sel.cpus[j].core);   /* one shard per core */
        }
    }
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(real_select_cpuset)
{
    mrt_topo *t = load_real();
    mrt_topo_selection by_node, sel;
    ck_assert_int_eq(mrt_topo_select_node(t, mrt_topo_current_node(t), &by_node), MRT_OK);
    /* The first usable PU: "0" on an ordinary machine. */
    char list[32];
    snprintf(list, sizeof(list), "%u", by_node.cpus[0].pu);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, list, &sel), MRT_OK);
    ck_assert_uint_eq(sel.count, 1);
    ck_assert_uint_eq(sel.cpus[0].pu, by_node.cpus[0].pu);
    ck_assert_uint_eq(sel.cpus[0].core, by_node.cpus[0].core);
    ck_assert_int_eq(sel.cpus[0].numa_node, by_node.cpus[0].numa_node);

    /* Every usable PU, by hwloc's own list. */
    char all[256];
    mrt_topo_pu_list(t, all, sizeof(all));
    ck_assert_int_eq(mrt_topo_select_cpuset(t, all, &sel), MRT_OK);
    ck_assert_uint_eq(sel.count, mrt_topo_pu_count(t));

    /* One past the last PU does not exist. */
    hwloc_obj_t last = hwloc_get_obj_by_type(mrt_topo_hwloc(t), HWLOC_OBJ_PU,
                                             mrt_topo_pu_count(t) - 1);
    ck_assert_ptr_nonnull(last);
    unsigned max_pu = 0;
    for (unsigned i = 0; i < mrt_topo_pu_count(t); i++) {
        hwloc_obj_t pu = hwloc_get_obj_by_type(mrt_topo_hwloc(t), HWLOC_OBJ_PU, i);
        if (pu->os_index > max_pu)
            max_pu = pu->os_index;
    }
    snprintf(list, sizeof(list), "%u", max_pu + 1);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, list, &sel), MRT_TOPO_ERANGE);
    ck_assert_uint_eq(sel.count, 0);
    snprintf(list, sizeof(list), "%u,%u", by_node.cpus[0].pu, max_pu + 1);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, list, &sel), MRT_TOPO_ERANGE);
    ck_assert_uint_eq(sel.count, 0);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "4294967295", &sel), MRT_TOPO_ERANGE);

    /* Parse errors come through unchanged. */
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "", &sel), MRT_TOPO_ESYNTAX);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "0,", &sel), MRT_TOPO_ESYNTAX);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "0,0", &sel), MRT_TOPO_EDUP);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "0-1024", &sel), MRT_TOPO_ETOOMANY);
    ck_assert_uint_eq(sel.count, 0);
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(real_select_errors)
{
    mrt_topo *t = load_real();
    mrt_topo_selection sel;
    sel.count = 7;
    ck_assert_int_eq(mrt_topo_select_node(t, -1, &sel), MRT_TOPO_ENONODE);
    ck_assert_uint_eq(sel.count, 0);
    ck_assert_int_eq(mrt_topo_select_node(t, 4096, &sel), MRT_TOPO_ENONODE);
    ck_assert_int_eq(mrt_topo_select_node(NULL, 0, &sel), MRT_EINVAL);
    ck_assert_int_eq(mrt_topo_select_node(t, 0, NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, NULL, &sel), MRT_EINVAL);
    ck_assert_int_eq(mrt_topo_select_cpuset(NULL, "0", &sel), MRT_EINVAL);
    ck_assert_int_eq(mrt_topo_load(NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_topo_pu_list(NULL, NULL, 0), MRT_EINVAL);
    ck_assert_uint_eq(mrt_topo_numa_count(NULL), 0);
    mrt_topo_destroy(t);
}
END_TEST

struct bind_job {
    const mrt_topo *t;
    mrt_cpu cpu;
    int rc;
    int err;
    int ran_on;             /* sched_getcpu() after binding */
    int affinity_count;     /* CPUs in the affinity mask after binding */
    int affinity_has_pu;
};

/* Bind in a fresh thread so the test runner's own thread stays unpinned. */
static void *bind_main(void *arg)
{
    struct bind_job *j = arg;
    errno = 0;
    j->rc = mrt_topo_bind_thread(j->t, &j->cpu);
    j->err = errno;
    j->ran_on = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        j->affinity_count = CPU_COUNT(&set);
        j->affinity_has_pu = CPU_ISSET(j->cpu.pu, &set);
    }
    return NULL;
}

/* The outcome of a bind on this machine: success, or one of the two specific refusals. */
static void check_bind_outcome(const struct bind_job *j)
{
    ck_assert_msg(j->rc == MRT_OK || j->rc == MRT_TOPO_EBIND_CPU || j->rc == MRT_TOPO_EBIND_MEM,
                  "bind returned %d", j->rc);
    if (j->rc == MRT_TOPO_EBIND_CPU) {
        ck_assert_int_ne(j->err, 0);    /* the caller can say why */
        MRT_SKIP("cpu-bind", "the OS refused to bind a thread to PU %u: %s", j->cpu.pu,
                 strerror(j->err));
    }
    /* MRT_OK or EBIND_MEM: the CPU binding took effect. */
    ck_assert_int_eq(j->ran_on, (int)j->cpu.pu);
    ck_assert_int_eq(j->affinity_count, 1);
    ck_assert(j->affinity_has_pu);
    if (j->rc == MRT_TOPO_EBIND_MEM) {
        ck_assert_int_ne(j->err, 0);
        MRT_SKIP_NOTE("mem-bind", "the OS refused to bind memory to NUMA node %d: %s",
                      j->cpu.numa_node, strerror(j->err));
    }
}

START_TEST(real_bind_first_pu)
{
    mrt_topo *t = load_real();
    mrt_topo_selection sel;
    /* PU 0, unless this process may not use it (cgroup cpuset): then the first usable one. */
    if (mrt_topo_select_cpuset(t, "0", &sel) != MRT_OK)
        ck_assert_int_eq(mrt_topo_select_node(t, mrt_topo_current_node(t), &sel), MRT_OK);
    struct bind_job j = { .t = t, .cpu = sel.cpus[0] };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, bind_main, &j), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    check_bind_outcome(&j);
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(real_bind_concurrent)
{
    /* Every PU of the machine (up to 8), bound concurrently from one thread each. */
    mrt_topo *t = load_real();
    char all[256];
    mrt_topo_pu_list(t, all, sizeof(all));
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_cpuset(t, all, &sel), MRT_OK);
    enum { MAXT = 8 };
    unsigned n = sel.count < MAXT ? sel.count : MAXT;
    struct bind_job jobs[MAXT];
    pthread_t th[MAXT];
    for (unsigned i = 0; i < n; i++) {
        jobs[i] = (struct bind_job){ .t = t, .cpu = sel.cpus[i] };
        ck_assert_int_eq(pthread_create(&th[i], NULL, bind_main, &jobs[i]), 0);
    }
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (unsigned i = 0; i < n; i++)
        check_bind_outcome(&jobs[i]);
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(real_bind_bad_arguments)
{
    mrt_topo *t = load_real();
    mrt_cpu bad_pu = { .pu = UINT_MAX, .core = 0, .numa_node = 0 };
    ck_assert_int_eq(mrt_topo_bind_thread(t, &bad_pu), MRT_TOPO_ERANGE);
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_node(t, mrt_topo_current_node(t), &sel), MRT_OK);
    mrt_cpu bad_node = sel.cpus[0];
    bad_node.numa_node = 4096;
    ck_assert_int_eq(mrt_topo_bind_thread(t, &bad_node), MRT_TOPO_ENONODE);
    bad_node.numa_node = -1;
    ck_assert_int_eq(mrt_topo_bind_thread(t, &bad_node), MRT_TOPO_ENONODE);
    ck_assert_int_eq(mrt_topo_bind_thread(t, NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_topo_bind_thread(NULL, &sel.cpus[0]), MRT_EINVAL);
    mrt_topo_destroy(t);
}
END_TEST

/* Print into memory and return it (caller frees with free(): open_memstream's buffer). */
static char *print_to_string(const mrt_topo *t, const mrt_topo_selection *sel)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    mrt_topo_print(t, f, sel);
    fclose(f);
    return buf;
}

START_TEST(real_print)
{
    mrt_topo *t = load_real();
    mrt_topo_selection sel;
    int node = mrt_topo_current_node(t);
    ck_assert_int_eq(mrt_topo_select_node(t, node, &sel), MRT_OK);
    char *s = print_to_string(t, &sel);
    char want[128];
    ck_assert_ptr_nonnull(strstr(s, "machine: "));
    snprintf(want, sizeof(want), "node %d: ", node);
    ck_assert_ptr_nonnull(strstr(s, want));
    snprintf(want, sizeof(want), "  core %u: PU", sel.cpus[0].core);
    ck_assert_ptr_nonnull(strstr(s, want));
    snprintf(want, sizeof(want), "selection: %u shard", sel.count);
    ck_assert_ptr_nonnull(strstr(s, want));
    snprintf(want, sizeof(want), "  shard 0 \xe2\x86\x92 PU %u (core %u, node %d)\n",
             sel.cpus[0].pu, sel.cpus[0].core, node);
    ck_assert_ptr_nonnull(strstr(s, want));
    free(s);
    /* No selection: no selection block. */
    s = print_to_string(t, NULL);
    ck_assert_ptr_null(strstr(s, "selection"));
    free(s);
    mrt_topo_destroy(t);
}
END_TEST

/* ---- synthetic machines -------------------------------------------------- */

static mrt_topo *load_synth(const char *desc)
{
    mrt_topo *t = NULL;
    ck_assert_int_eq(mrt_topo_load_synthetic(desc, &t), MRT_OK);
    ck_assert_ptr_nonnull(t);
    return t;
}

static void expect_selection(const mrt_topo_selection *sel, unsigned n, const unsigned *pus,
                             const unsigned *cores, int node)
{
    ck_assert_uint_eq(sel->count, n);
    for (unsigned i = 0; i < n; i++) {
        ck_assert_uint_eq(sel->cpus[i].pu, pus[i]);
        ck_assert_uint_eq(sel->cpus[i].core, cores[i]);
        ck_assert_int_eq(sel->cpus[i].numa_node, node);
    }
}

START_TEST(synth_two_nodes_smt)
{
    /* 2 NUMA nodes × 4 cores × 2 PUs: PUs 0-7 on node 0, 8-15 on node 1, siblings adjacent. */
    mrt_topo *t = load_synth("node:2 core:4 pu:2");
    ck_assert_uint_eq(mrt_topo_numa_count(t), 2);
    ck_assert_uint_eq(mrt_topo_core_count(t), 8);
    ck_assert_uint_eq(mrt_topo_pu_count(t), 16);
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_node(t, 1, &sel), MRT_OK);
    expect_selection(&sel, 4, (const unsigned[]){ 8, 10, 12, 14 },
                     (const unsigned[]){ 4, 5, 6, 7 }, 1);
    ck_assert_int_eq(mrt_topo_select_node(t, 0, &sel), MRT_OK);
    expect_selection(&sel, 4, (const unsigned[]){ 0, 2, 4, 6 },
                     (const unsigned[]){ 0, 1, 2, 3 }, 0);
    ck_assert_int_eq(mrt_topo_select_node(t, 5, &sel), MRT_TOPO_ENONODE);
    ck_assert_uint_eq(sel.count, 0);
    ck_assert_int_eq(mrt_topo_select_node(t, 2, &sel), MRT_TOPO_ENONODE);
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(synth_linux_style_siblings)
{
    /* Siblings numbered N apart, as Linux does on x86: core c holds PUs c and c+8. */
    mrt_topo *t = load_synth(
        "node:2 core:4 pu:2(indexes=0,8,1,9,2,10,3,11,4,12,5,13,6,14,7,15)");
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_node(t, 1, &sel), MRT_OK);
    expect_selection(&sel, 4, (const unsigned[]){ 4, 5, 6, 7 },
                     (const unsigned[]){ 4, 5, 6, 7 }, 1);
    /* The PU list of node 1 through --cpuset maps back to the same cores, siblings included. */
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "12,4", &sel), MRT_OK);
    ck_assert_uint_eq(sel.count, 2);
    ck_assert_uint_eq(sel.cpus[0].pu, 4);
    ck_assert_uint_eq(sel.cpus[1].pu, 12);
    ck_assert_uint_eq(sel.cpus[0].core, 4);
    ck_assert_uint_eq(sel.cpus[1].core, 4);
    ck_assert_int_eq(sel.cpus[0].numa_node, 1);
    ck_assert_int_eq(sel.cpus[1].numa_node, 1);
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(synth_select_cpuset)
{
    mrt_topo *t = load_synth("node:2 core:4 pu:2");
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "9,3", &sel), MRT_OK);
    ck_assert_uint_eq(sel.count, 2);
    ck_assert_uint_eq(sel.cpus[0].pu, 3);
    ck_assert_uint_eq(sel.cpus[0].core, 1);
    ck_assert_int_eq(sel.cpus[0].numa_node, 0);
    ck_assert_uint_eq(sel.cpus[1].pu, 9);
    ck_assert_uint_eq(sel.cpus[1].core, 4);
    ck_assert_int_eq(sel.cpus[1].numa_node, 1);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "0-15", &sel), MRT_OK);
    ck_assert_uint_eq(sel.count, 16);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "0-16", &sel), MRT_TOPO_ERANGE);
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "16", &sel), MRT_TOPO_ERANGE);
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(synth_cpuless_node)
{
    /* Keep only node 0's PUs: node 1 keeps its memory but has no CPU left. */
    mrt_topo *t = load_synth("node:2 core:2 pu:1");
    hwloc_bitmap_t keep = hwloc_bitmap_alloc();
    hwloc_bitmap_set_range(keep, 0, 1);
    ck_assert_int_eq(hwloc_topology_restrict(mrt_topo_hwloc(t), keep, 0), 0);
    hwloc_bitmap_free(keep);
    ck_assert_uint_eq(mrt_topo_numa_count(t), 2);
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_node(t, 1, &sel), MRT_TOPO_EEMPTY);
    ck_assert_uint_eq(sel.count, 0);
    ck_assert_int_eq(mrt_topo_select_node(t, 0, &sel), MRT_OK);
    ck_assert_uint_eq(sel.count, 2);
    /* A PU removed from the machine is out of range. */
    ck_assert_int_eq(mrt_topo_select_cpuset(t, "2", &sel), MRT_TOPO_ERANGE);
    char *s = print_to_string(t, NULL);
    ck_assert_ptr_nonnull(strstr(s, "node 1: 1 GiB, 0 PUs\n  (no CPUs)\n"));
    free(s);
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(synth_bind_refused)
{
    /* A made-up machine is not this one: binding is refused, not silently skipped. */
    mrt_topo *t = load_synth("node:2 core:4 pu:2");
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_node(t, 0, &sel), MRT_OK);
    errno = 0;
    ck_assert_int_eq(mrt_topo_bind_thread(t, &sel.cpus[0]), MRT_TOPO_EBIND_CPU);
    ck_assert_int_eq(errno, ENOSYS);
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(synth_print)
{
    mrt_topo *t = load_synth("node:2 core:4 pu:2");
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_node(t, 1, &sel), MRT_OK);
    char *s = print_to_string(t, &sel);
    ck_assert_ptr_nonnull(strstr(s, "machine: 2 NUMA nodes, 8 cores, 16 PUs (synthetic)\n"));
    ck_assert_ptr_nonnull(strstr(s, "node 1: "));
    ck_assert_ptr_nonnull(strstr(s, "  core 7: PUs 14-15\n"));
    ck_assert_ptr_nonnull(strstr(s, "selection: 4 shards\n"));
    ck_assert_ptr_nonnull(strstr(s, "  shard 3 \xe2\x86\x92 PU 14 (core 7, node 1)\n"));
    free(s);
    mrt_topo_destroy(t);

    /* Caches: sizes and sharing. */
    t = load_synth("pack:1 l3:1(size=16777216) l2:2(size=1048576) l1d:1(size=32768) core:1 pu:2");
    s = print_to_string(t, NULL);
    ck_assert_ptr_nonnull(strstr(s, "  core 1: PUs 2-3  L1d 32 KiB, L2 1 MiB, L3 16 MiB (2 cores)\n"));
    free(s);
    mrt_topo_destroy(t);
}
END_TEST

START_TEST(synth_bad_description)
{
    mrt_topo *t = (mrt_topo *)&t;   /* must be reset to NULL on error */
    ck_assert_int_eq(mrt_topo_load_synthetic("bogus:3", &t), MRT_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(mrt_topo_load_synthetic(NULL, &t), MRT_EINVAL);
    ck_assert_int_eq(mrt_topo_load_synthetic("node:2 core:2 pu:1", NULL), MRT_EINVAL);
}
END_TEST

/*
 * The process's CPU affinity (what taskset sets) restricts everything, not
 * only cgroups: bind the process to its first usable PU, then the topology
 * has that PU alone, and naming another is refused.
 */
START_TEST(real_affinity_restricts)
{
    hwloc_topology_t full;
    ck_assert_int_eq(hwloc_topology_init(&full), 0);
    ck_assert_int_eq(hwloc_topology_load(full), 0);
    hwloc_bitmap_t saved = hwloc_bitmap_alloc(), one = hwloc_bitmap_alloc();
    ck_assert_int_eq(hwloc_get_cpubind(full, saved, HWLOC_CPUBIND_PROCESS), 0);
    hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(full);
    int first = hwloc_bitmap_first(allowed);
    int other = hwloc_bitmap_next(allowed, first); /* -1 on a one-CPU machine */
    ck_assert_int_ge(first, 0);
    hwloc_bitmap_only(one, (unsigned)first);
    ck_assert_int_eq(hwloc_set_cpubind(full, one, HWLOC_CPUBIND_PROCESS), 0);

    mrt_topo *t;
    int rc = mrt_topo_load(&t);
    /* restore before asserting: later tests must see the machine as it was */
    ck_assert_int_eq(hwloc_set_cpubind(full, saved, HWLOC_CPUBIND_PROCESS), 0);
    ck_assert_int_eq(rc, MRT_OK);
    ck_assert_uint_eq(mrt_topo_pu_count(t), 1);
    ck_assert_uint_eq(mrt_topo_core_count(t), 1);
    char want[16], list[64];
    snprintf(want, sizeof want, "%d", first);
    ck_assert_int_gt(mrt_topo_pu_list(t, list, sizeof list), 0);
    ck_assert_str_eq(list, want);
    mrt_topo_selection sel;
    ck_assert_int_eq(mrt_topo_select_node(t, mrt_topo_current_node(t), &sel), MRT_OK);
    ck_assert_uint_eq(sel.count, 1);
    ck_assert_uint_eq(sel.cpus[0].pu, (unsigned)first);
    if (other >= 0) {
        char name[16];
        snprintf(name, sizeof name, "%d", other);
        ck_assert_int_eq(mrt_topo_select_cpuset(t, name, &sel), MRT_TOPO_ERANGE);
        mrt_cpu c = { .pu = (unsigned)other, .core = 0, .numa_node = 0 };
        ck_assert_int_eq(mrt_topo_bind_thread(t, &c), MRT_TOPO_ERANGE);
    }
    mrt_topo_destroy(t);
    hwloc_bitmap_free(one);
    hwloc_bitmap_free(saved);
    hwloc_topology_destroy(full);
}
END_TEST

/*
 * The process discovers the machine once; each load is a copy restricted
 * to the binding of the moment. It must equal what a fresh discovery with
 * the same flags sees — at the full binding, narrowed to one PU, and
 * widened back — level by level, object by object.
 */
static hwloc_topology_t fresh(void)
{
    hwloc_topology_t h;
    ck_assert_int_eq(hwloc_topology_init(&h), 0);
    ck_assert_int_eq(hwloc_topology_set_flags(h, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM |
                                                     HWLOC_TOPOLOGY_FLAG_RESTRICT_TO_CPUBINDING),
                     0);
    ck_assert_int_eq(hwloc_topology_load(h), 0);
    return h;
}

static void same_machine(hwloc_topology_t a, hwloc_topology_t b)
{
    ck_assert(hwloc_bitmap_isequal(hwloc_topology_get_topology_cpuset(a),
                                   hwloc_topology_get_topology_cpuset(b)));
    ck_assert(hwloc_bitmap_isequal(hwloc_topology_get_allowed_cpuset(a),
                                   hwloc_topology_get_allowed_cpuset(b)));
    ck_assert(hwloc_bitmap_isequal(hwloc_topology_get_allowed_nodeset(a),
                                   hwloc_topology_get_allowed_nodeset(b)));
    int depth = hwloc_topology_get_depth(a);
    ck_assert_int_eq(depth, hwloc_topology_get_depth(b));
    for (int d = 0; d < depth; d++) {
        int n = hwloc_get_nbobjs_by_depth(a, d);
        ck_assert_int_eq(n, hwloc_get_nbobjs_by_depth(b, d));
        for (int i = 0; i < n; i++) {
            hwloc_obj_t x = hwloc_get_obj_by_depth(a, d, i), y = hwloc_get_obj_by_depth(b, d, i);
            ck_assert_int_eq(x->type, y->type);
            ck_assert_uint_eq(x->os_index, y->os_index);
            ck_assert(hwloc_bitmap_isequal(x->cpuset, y->cpuset));
        }
    }
    ck_assert_int_eq(hwloc_get_nbobjs_by_type(a, HWLOC_OBJ_NUMANODE),
                     hwloc_get_nbobjs_by_type(b, HWLOC_OBJ_NUMANODE));
}

START_TEST(real_copy_equals_fresh_discovery)
{
    mrt_topo *t;
    hwloc_topology_t f = fresh();
    ck_assert_int_eq(mrt_topo_load(&t), MRT_OK);
    same_machine(mrt_topo_hwloc(t), f);
    ck_assert(hwloc_topology_is_thissystem(mrt_topo_hwloc(t)));
    mrt_topo_destroy(t);

    hwloc_bitmap_t saved = hwloc_bitmap_alloc(), one = hwloc_bitmap_alloc();
    ck_assert_int_eq(hwloc_get_cpubind(f, saved, HWLOC_CPUBIND_PROCESS), 0);
    hwloc_bitmap_only(one, (unsigned)hwloc_bitmap_first(hwloc_topology_get_allowed_cpuset(f)));
    if (hwloc_set_cpubind(f, one, HWLOC_CPUBIND_PROCESS) != 0) {
        hwloc_bitmap_free(one);
        hwloc_bitmap_free(saved);
        hwloc_topology_destroy(f);
        MRT_SKIP("cpu-bind", "the OS refused to bind this process to one PU: %s", strerror(errno));
    }
    hwloc_topology_t narrow = fresh();
    int rc = mrt_topo_load(&t);
    ck_assert_int_eq(hwloc_set_cpubind(f, saved, HWLOC_CPUBIND_PROCESS), 0); /* restore first */
    ck_assert_int_eq(rc, MRT_OK);
    same_machine(mrt_topo_hwloc(t), narrow);
    mrt_topo_destroy(t);

    ck_assert_int_eq(mrt_topo_load(&t), MRT_OK); /* widened back: the whole machine again */
    same_machine(mrt_topo_hwloc(t), f);
    mrt_topo_destroy(t);
    hwloc_topology_destroy(narrow);
    hwloc_bitmap_free(one);
    hwloc_bitmap_free(saved);
    hwloc_topology_destroy(f);
}
END_TEST

static Suite *topo_suite(void)
{
    Suite *s = suite_create("topo");
    TCase *parse = tcase_create("cpuset_parse");
    tcase_add_loop_test(parse, parse_valid, 0, (int)(sizeof(valid) / sizeof(valid[0])));
    tcase_add_loop_test(parse, parse_syntax_error, 0,
                        (int)(sizeof(bad_syntax) / sizeof(bad_syntax[0])));
    tcase_add_loop_test(parse, parse_duplicate, 0, (int)(sizeof(dups) / sizeof(dups[0])));
    tcase_add_test(parse, parse_too_many);
    tcase_add_test(parse, parse_descending_large);
    tcase_add_test(parse, parse_bad_arguments);
    tcase_add_test(parse, strerror_codes);
    suite_add_tcase(s, parse);

    TCase *real = tcase_create("this_machine");
    tcase_add_test(real, real_shape);
    tcase_add_test(real, real_select_current_node);
    tcase_add_test(real, real_select_cpuset);
    tcase_add_test(real, real_select_errors);
    tcase_add_test(real, real_bind_first_pu);
    tcase_add_test(real, real_bind_concurrent);
    tcase_add_test(real, real_bind_bad_arguments);
    tcase_add_test(real, real_print);
    tcase_add_test(real, real_affinity_restricts);
    tcase_add_test(real, real_copy_equals_fresh_discovery);
    suite_add_tcase(s, real);

    TCase *synth = tcase_create("synthetic");
    tcase_add_test(synth, synth_two_nodes_smt);
    tcase_add_test(synth, synth_linux_style_siblings);
    tcase_add_test(synth, synth_select_cpuset);
    tcase_add_test(synth, synth_cpuless_node);
    tcase_add_test(synth, synth_bind_refused);
    tcase_add_test(synth, synth_print);
    tcase_add_test(synth, synth_bad_description);
    suite_add_tcase(s, synth);
    return s;
}

int main(void)
{
    return mrt_check_run(topo_suite());
}
