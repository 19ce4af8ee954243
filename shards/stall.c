/*
 * The stall slot's signal side: a backtrace of a shard's thread, taken on
 * that thread by its own signal handler (as Seastar's reactor does), for a
 * watcher that saw the shard stuck in one poll iteration.
 *
 * The handler does only async-signal-safe work on memory that exists before
 * it runs: backtrace() into the slot's preallocated frames (its lazy
 * loading of the unwinder is done once beforehand, in
 * mrt_stall_signal_init), atomic stores, sem_post.
 */
#include "shards/shard_internal.h"
#include "shards/stall.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

int mrt_stall_signal(void)
{
    return SIGRTMIN + MRT_STALL_SIGNAL_OFFSET;
}

/* The interrupted instruction, from the handler's context. */
static void *interrupted_pc(const void *ctx)
{
    const ucontext_t *uc = ctx;
    if (uc == NULL)
        return NULL;
#if defined(__x86_64__)
    return (void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (void *)uc->uc_mcontext.pc;
#else
    return NULL;
#endif
}

static void on_stall_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    /* Ours only: queued by mrt_stall_backtrace with the slot as its value. */
    if (si == NULL || si->si_code != SI_QUEUE || si->si_value.sival_ptr == NULL)
        return;
    mrt_stall_slot *z = si->si_value.sival_ptr;
    int saved = errno;
    uint64_t req = atomic_load_explicit(&z->bt_asked, memory_order_acquire);
    /*
     * A signal that arrives after the request it was sent for timed out may
     * find a newer request already answered: the watcher may be reading the
     * frames, leave them alone.
     */
    if (atomic_load_explicit(&z->bt_answered, memory_order_relaxed) != req) {
        z->bt_pc = interrupted_pc(uc);
        int n = backtrace(z->bt, (int)MRT_STALL_FRAMES);
        atomic_store_explicit(&z->bt_depth, n, memory_order_relaxed);
        atomic_store_explicit(&z->bt_answered, req, memory_order_release);
        sem_post(&z->bt_sem);
    }
    errno = saved;
}

static int signal_rc = MRT_ESTATE;
static pthread_once_t signal_once = PTHREAD_ONCE_INIT;

static void signal_setup(void)
{
    /* backtrace() loads the unwinder (libgcc_s) on first use, which allocates: not in a handler. */
    void *warm[4];
    (void)backtrace(warm, 4);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stall_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    signal_rc = sigaction(mrt_stall_signal(), &sa, NULL) == 0 ? MRT_OK : MRT_ESTATE;
}

int mrt_stall_signal_init(void)
{
    pthread_once(&signal_once, signal_setup);
    return signal_rc;
}

mrt_stall_slot *mrt_shard_stall_slot(struct mrt_shard *s)
{
    return s ? &s->stall : NULL;
}

void mrt_stall_slot_init(mrt_stall_slot *z)
{
    z->sem_ok = sem_init(&z->bt_sem, 0, 0) == 0;
}

void mrt_stall_slot_fini(mrt_stall_slot *z)
{
    if (z->sem_ok)
        sem_destroy(&z->bt_sem);
    z->sem_ok = false;
}

void mrt_stall_arm(mrt_stall_slot *z)
{
    /* No detector, no signal: an embedder's mask and handlers stay as they are. */
    if (z->threshold_ns == 0 || !z->sem_ok || mrt_stall_signal_init() != MRT_OK)
        return;
    z->tid = pthread_self();
    z->ktid = gettid();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, mrt_stall_signal());
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    atomic_store_explicit(&z->armed, true, memory_order_release);
}

void mrt_stall_disarm(mrt_stall_slot *z)
{
    atomic_store_explicit(&z->armed, false, memory_order_release);
    atomic_store_explicit(&z->running, 0, memory_order_release);
}

int mrt_stall_backtrace(mrt_stall_slot *z, void **frames, unsigned max, unsigned timeout_ms,
                        bool *timed_out)
{
    *timed_out = false;
    if (!atomic_load_explicit(&z->armed, memory_order_acquire))
        return MRT_ESTATE;
    uint64_t req = atomic_load_explicit(&z->bt_asked, memory_order_relaxed) + 1;
    atomic_store_explicit(&z->bt_asked, req, memory_order_release);
    union sigval v = { .sival_ptr = z };
    if (pthread_sigqueue(z->tid, mrt_stall_signal(), v) != 0)
        return MRT_ESTATE;
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms / 1000;
    end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    /* The semaphore only wakes us; the answer is bt_answered (a late post may be stale). */
    while (atomic_load_explicit(&z->bt_answered, memory_order_acquire) != req) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left_ns = (long)(end.tv_sec - now.tv_sec) * 1000000000 + (end.tv_nsec - now.tv_nsec);
        if (left_ns <= 0) {
            *timed_out = true;
            return 0;
        }
        struct timespec abs;
        clock_gettime(CLOCK_REALTIME, &abs);
        abs.tv_sec += left_ns / 1000000000;
        abs.tv_nsec += left_ns % 1000000000;
        if (abs.tv_nsec >= 1000000000) {
            abs.tv_sec++;
            abs.tv_nsec -= 1000000000;
        }
        (void)sem_timedwait(&z->bt_sem, &abs);
    }
    int n = atomic_load_explicit(&z->bt_depth, memory_order_relaxed);
    if (n < 0)
        n = 0;
    /* Drop the handler and the signal trampoline: start where the thread was interrupted. */
    int first = 0;
    for (int k = 0; z->bt_pc != NULL && k < n && k < 8; k++)
        if (z->bt[k] == z->bt_pc) {
            first = k;
            break;
        }
    n -= first;
    if ((unsigned)n > max)
        n = (int)max;
    memcpy(frames, z->bt + first, sizeof(void *) * (unsigned)n);
    return n;
}
