/*
 * A test-and-test-and-set lock in C11 atomics, for the one side of an
 * rte_ring that several threads share (see shards/drain.c, ring_put_mp).
 *
 * Why not DPDK's own multi-producer/consumer modes: in the default MP/MC
 * mode a thread waits for the previous one's tail with a relaxed load and
 * then stores its own tail, which starts no release sequence from the
 * previous store: under C11 the opposite side is ordered after the last
 * thread's slots only, not the earlier ones' (a data race by the model).
 * HTS and RTS keep head and tail in one 64-bit word but store or read the
 * 32-bit half on its own (__atomic on overlapping objects of different
 * sizes): outside the C11 model, and ThreadSanitizer, which keys
 * synchronisation by address, sees no edge between the halves and reports
 * the slot copies. The single-producer/single-consumer paths publish only
 * through a 32-bit release store of the tail and an acquire load of it;
 * this lock serialises the threads of a shared side around them (acquire
 * on taking, release on leaving), which is what HTS did too: one thread in
 * flight per side.
 */
#ifndef MESHRT_CORE_SPIN_H
#define MESHRT_CORE_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct mrt_spin {
    _Atomic bool held;
} mrt_spin;

static inline void mrt_spin_init(mrt_spin *l)
{
    atomic_init(&l->held, false);
}

static inline void mrt_spin_lock(mrt_spin *l)
{
    while (atomic_exchange_explicit(&l->held, true, memory_order_acquire)) {
        unsigned spins = 0;
        while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
            if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#elif defined(__aarch64__)
                __asm__ __volatile__("yield");
#endif
            } else {
                sched_yield(); /* the holder may be preempted: an injector is any thread */
                spins = 0;
            }
        }
    }
}

static inline void mrt_spin_unlock(mrt_spin *l)
{
    atomic_store_explicit(&l->held, false, memory_order_release);
}

#endif
