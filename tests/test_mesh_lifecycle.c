/*
 * Who frees a shard's memory, and arenas that come and go: a mesh created
 * and destroyed thousands of times never runs out of jemalloc arenas
 * (jemalloc caps them at 4095 and never hands an index back).
 */
#include "meshrt/mrt_shard.h"
#include "shards/shard_internal.h"
#include "tests/check_main.h"

#include <check.h>
#include <pthread.h>
#include <string.h>

enum { T_MSG = 1, CYCLES = 5000, DISTINCT_MAX = 8 };

static void on_msg(mrt_shard *s, const mrt_msg *m, void *ctx)
{
    (void)s;
    (void)m;
    (*(unsigned *)ctx)++;
}

/* Arena indices seen so far: the pool must keep them few. */
typedef struct seen {
    unsigned idx[DISTINCT_MAX + 1];
    unsigned n;
} seen;

static void note_arena(seen *sn, unsigned arena)
{
    for (unsigned i = 0; i < sn->n; i++)
        if (sn->idx[i] == arena)
            return;
    ck_assert_msg(sn->n < DISTINCT_MAX, "more than %d distinct arenas: arenas are not reused",
                  DISTINCT_MAX);
    sn->idx[sn->n++] = arena;
}

typedef struct owner {
    mrt_shard *s;
    bool fini;      /* finalise on this thread before it ends */
    int init_rc, fini_rc;
    unsigned arena;
} owner;

static void *owner_thread(void *arg)
{
    owner *o = arg;
    o->init_rc = mrt_shard_init_local(o->s);
    o->arena = mrt_shard_allocator(o->s)->arena;
    if (o->init_rc == MRT_OK && o->fini)
        o->fini_rc = mrt_shard_fini_local(o->s);
    return NULL;
}

/*
 * One cycle of a 2-shard mesh. Mode 0: both shards on this thread, some
 * traffic, drained, finalised here. Mode 1: each shard initialised and
 * finalised on its own thread. Mode 2: initialised on threads that end
 * without finalising; mrt_mesh_destroy frees into the arenas from here.
 */
static void cycle(unsigned mode, seen *sn)
{
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, 2);
    cfg.ring_size = 16;
    cfg.burst = 4;
    cfg.overflow = 4;
    mrt_mesh *m = NULL;
    ck_assert_int_eq(mrt_mesh_create(&cfg, &m), MRT_OK);
    if (mode == 0) {
        unsigned got[2] = { 0, 0 };
        for (unsigned i = 0; i < 2; i++) {
            mrt_shard *s = mrt_mesh_shard(m, i);
            ck_assert_int_eq(mrt_shard_init_local(s), MRT_OK);
            note_arena(sn, mrt_shard_allocator(s)->arena);
            ck_assert_int_eq(mrt_shard_set_handler(s, T_MSG, on_msg, &got[i]), MRT_OK);
            ck_assert_int_eq(mrt_shard_set_control_handler(s, T_MSG, on_msg, &got[i]), MRT_OK);
        }
        mrt_msg msg = { .type = T_MSG };
        ck_assert_int_eq(mrt_shard_send(mrt_mesh_shard(m, 0), 1, &msg), MRT_OK);
        ck_assert_int_eq(mrt_mesh_inject(m, 0, &msg), MRT_OK);
        ck_assert_int_eq(mrt_mesh_control(m, 1, &msg), MRT_OK);
        mrt_mesh_request_stop(m);
        for (unsigned k = 0; k < 10 && !mrt_mesh_try_drain(m); k++) {
            mrt_shard_poll_once(mrt_mesh_shard(m, 0));
            mrt_shard_poll_once(mrt_mesh_shard(m, 1));
        }
        ck_assert(mrt_mesh_drained(m));
        ck_assert_uint_eq(got[0], 1);
        ck_assert_uint_eq(got[1], 2);
        for (unsigned i = 0; i < 2; i++)
            ck_assert_int_eq(mrt_shard_fini_local(mrt_mesh_shard(m, i)), MRT_OK);
    } else {
        owner o[2];
        pthread_t t[2];
        for (unsigned i = 0; i < 2; i++) {
            o[i] = (owner){ .s = mrt_mesh_shard(m, i), .fini = mode == 1 };
            ck_assert_int_eq(pthread_create(&t[i], NULL, owner_thread, &o[i]), 0);
        }
        for (unsigned i = 0; i < 2; i++) {
            pthread_join(t[i], NULL);
            ck_assert_int_eq(o[i].init_rc, MRT_OK);
            ck_assert_int_eq(o[i].fini_rc, MRT_OK);
            note_arena(sn, o[i].arena);
        }
    }
    mrt_mesh_destroy(m);
}

START_TEST(create_destroy_5000_meshes)
{
    seen sn = { .n = 0 };
    for (unsigned i = 0; i < CYCLES; i++)
        cycle(i % 3, &sn);
    /* Two shards at a time: their arenas go round. */
    ck_assert_uint_ge(sn.n, 2);
}
END_TEST

START_TEST(fini_frees_on_the_owner_and_gives_the_arena_back)
{
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, 1);
    cfg.ring_size = 16;
    cfg.burst = 4;
    mrt_mesh *m = NULL;
    ck_assert_int_eq(mrt_mesh_create(&cfg, &m), MRT_OK);
    mrt_shard *s = mrt_mesh_shard(m, 0);
    ck_assert_int_eq(mrt_shard_fini_local(s), MRT_ESTATE); /* never initialised */
    ck_assert_int_eq(mrt_shard_fini_local(NULL), MRT_EINVAL);
    owner o = { .s = s, .fini = true };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, owner_thread, &o), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(o.init_rc, MRT_OK);
    ck_assert_int_eq(o.fini_rc, MRT_OK);
    ck_assert_ptr_null(s->in);
    ck_assert_ptr_null(s->ingress);
    ck_assert_uint_eq(mrt_shard_allocator(s)->arena, MRT_ARENA_DEFAULT);
    ck_assert_int_eq(mrt_shard_fini_local(s), MRT_ESTATE);
    ck_assert_int_eq(mrt_shard_init_local(s), MRT_ESTATE); /* finalised for good */
    mrt_msg msg = { .type = T_MSG };
    ck_assert_int_eq(mrt_mesh_inject(m, 0, &msg), MRT_SHARD_ENOTREADY);
    /* The arena went back to the pool: the next owner gets it. */
    mrt_allocator next;
    ck_assert_int_eq(mrt_allocator_create_arena(&next), MRT_OK);
    ck_assert_uint_eq(next.arena, o.arena);
    ck_assert_int_eq(mrt_allocator_release_arena(next.arena), MRT_OK);
    mrt_mesh_destroy(m);
}
END_TEST

START_TEST(release_rules)
{
    mrt_allocator a, bound;
    ck_assert_int_eq(mrt_allocator_create_arena(&a), MRT_OK);
    ck_assert_int_eq(mrt_allocator_bind_thread(a.arena, &bound), MRT_OK);
#ifndef MRT_ALLOC_LIBC
    /* A thread still allocates from it: not given back. */
    ck_assert_int_eq(mrt_allocator_release_arena(a.arena), MRT_ESTATE);
#endif
    ck_assert_int_eq(mrt_allocator_unbind_thread(a.arena), MRT_OK);
    ck_assert_int_eq(mrt_allocator_release_arena(a.arena), MRT_OK);
    ck_assert_int_eq(mrt_allocator_release_arena(a.arena), MRT_EINVAL); /* twice */
    ck_assert_int_eq(mrt_allocator_release_arena(MRT_ARENA_DEFAULT), MRT_EINVAL);
    mrt_allocator again;
    ck_assert_int_eq(mrt_allocator_create_arena(&again), MRT_OK);
    ck_assert_uint_eq(again.arena, a.arena);
    ck_assert_int_eq(mrt_allocator_release_arena(again.arena), MRT_OK);
}
END_TEST

/* ---- a shard's handle used off its thread ----------------------------------- */

typedef struct bound_probe {
    mrt_allocator handle;
    unsigned arena;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready, release;
} bound_probe;

static void *bound_thread(void *arg)
{
    bound_probe *p = arg;
    mrt_allocator a;
    (void)mrt_allocator_create_arena(&a);
    (void)mrt_allocator_bind_thread(a.arena, &p->handle);
    p->arena = a.arena;
    /* Not the event path: the test holds the owner alive while it uses the handle. */
    pthread_mutex_lock(&p->mu);
    p->ready = true;
    pthread_cond_broadcast(&p->cv);
    while (!p->release)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    mrt_allocator_unbind_thread(a.arena);
    return NULL;
}

START_TEST(bound_handle_is_correct_on_any_thread)
{
    bound_probe p = { .ready = false };
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, bound_thread, &p), 0);
    pthread_mutex_lock(&p.mu);
    while (!p.ready)
        pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    /* The owner's thread-bound handle, used here: its arena, not this thread's. */
    void *x = mrt_alloc(&p.handle, 64);
    void *y = mrt_calloc(&p.handle, 4096);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
#ifndef MRT_ALLOC_LIBC
    ck_assert_uint_eq(mrt_arena_of(x), p.arena);
    ck_assert_uint_eq(mrt_arena_of(y), p.arena);
#endif
    mrt_free(&p.handle, x, 64);
    mrt_free(&p.handle, y, 4096);
    pthread_mutex_lock(&p.mu);
    p.release = true;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    pthread_join(t, NULL);
    ck_assert_int_eq(mrt_allocator_release_arena(p.arena), MRT_OK);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
#ifdef MRT_ALLOC_LIBC
    MRT_SKIP("arena", "sanitizer builds allocate through libc: there are no arenas to check");
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mesh_lifecycle");
    TCase *tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, release_rules);
    tcase_add_test(tc, bound_handle_is_correct_on_any_thread);
    tcase_add_test(tc, fini_frees_on_the_owner_and_gives_the_arena_back);
    tcase_add_test(tc, create_destroy_5000_meshes);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
