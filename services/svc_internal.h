/* Private layout of the services layer (white-box tests include it). */
#ifndef MESHRT_SERVICES_SVC_INTERNAL_H
#define MESHRT_SERVICES_SVC_INTERNAL_H

#include "meshrt/mrt_services.h"
#include "core/spin.h"
#include "shards/stall.h"

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <stdalign.h>
#include <stdatomic.h>

struct rte_ring;

/*
 * Shard message types, relative to cfg.shard_type_base: services' own three,
 * then one per registered type.
 */
enum { SVC_T_EVENT = 0, SVC_T_RET = 1, SVC_T_DONE = 2, SVC_T_USER = 3 };

/*
 * Event message: aux = payload length, w[0] = daemon id, w[1] = handle,
 * w[2] = completion token (0: none).
 *
 * Handle: owner shard (16 bits) | size class (8) | byte offset from the
 * owner's pool base (40). Never a pointer: the receiver resolves it through
 * the read-only table of pool bases, which is what survives a move to
 * shared memory between processes (each maps the segment at its own address).
 */
#define SVC_H_OFF_BITS 40
#define SVC_H_OFF_MASK ((1ull << SVC_H_OFF_BITS) - 1)
static inline uint64_t svc_handle(unsigned owner, unsigned cls, uint64_t off)
{
    return ((uint64_t)owner << 48) | ((uint64_t)cls << SVC_H_OFF_BITS) | off;
}
/* Class field with this bit: a buffer of the owner's ingress pool (class & 0x7f). */
#define SVC_H_INGRESS 0x80u
static inline unsigned svc_h_owner(uint64_t h) { return (unsigned)(h >> 48); }
static inline unsigned svc_h_class(uint64_t h) { return (unsigned)(h >> SVC_H_OFF_BITS) & 0xffu; }
static inline uint64_t svc_h_off(uint64_t h) { return h & SVC_H_OFF_MASK; }

/*
 * Token: selecting shard + 1 (16 bits) | 0 (16) | in-flight slot (16) |
 * generation (16, never 0). The low 32 bits ("key") travel back in
 * completions, so one 24-byte message carries three (key, latency) pairs.
 */
#define SVC_SLOT_BITS 16
#define SVC_GEN_MASK 0xffffu
static inline uint64_t svc_token(unsigned shard, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)(shard + 1) << 48) | ((uint64_t)slot << SVC_SLOT_BITS) | gen;
}
#define SVC_KEY_MASK 0xffffffffull

/*
 * Buffer layout: the causal link (32 bytes), the send time on the sender's
 * coarse clock (8), the selection's key (8; 0 when unrouted), the payload
 * (16-byte aligned). A routed event's completion rides its buffer home:
 * the receiver overwrites the send time with the outcome (latency | ok <<
 * 32) and the owner, which is the selector, completes the key it finds
 * when the handle comes back — no completion message of its own.
 */
#define SVC_BUF_LINK 0
#define SVC_BUF_SENT 32
#define SVC_BUF_KEY 40
#define SVC_BUF_HDR 48
/* Egress buffers: the send-time word holds the payload length, the pad the emitting daemon. */
#define SVC_BUF_EG_LEN 32
#define SVC_BUF_EG_FROM 40
#define SVC_MIN_CLASS 64u
#define SVC_MAX_CLASSES 24

/* Per message: 3 returned handles, or 3 completions (w[i] = key | latency << 32). */
#define SVC_RET_PER_MSG 3u
#define SVC_DONE_PER_MSG 3u

typedef struct svc_type {
    char name[MRT_SVC_NAME_MAX + 1];
    mrt_svc_handler fn;
    mrt_svc_burst_handler burst;
    void *ctx;
} svc_type;

typedef struct svc_subsystem {
    char name[MRT_SVC_NAME_MAX + 1];
    mrt_svc_init_fn init;
    mrt_svc_fini_fn fini;
    void *ctx;
} svc_subsystem;

struct mrt_svc {
    mrt_mesh *mesh;
    unsigned n;
    mrt_svc_config cfg;
    /* Pool layout, the same on every shard. */
    unsigned nclasses;
    uint32_t class_size[SVC_MAX_CLASSES];   /* bytes per buffer, header included */
    uint32_t class_count[SVC_MAX_CLASSES];
    uint8_t class_shift[SVC_MAX_CLASSES];   /* log2(size), or 0xff when not a power of two */
    uint64_t class_off[SVC_MAX_CLASSES + 1]; /* where each class starts in a pool region */
    uint32_t pool_total;                    /* buffers per shard */
    /* Ingress pool layout: the same classes, placed after the pool in the region. */
    uint32_t icount[SVC_MAX_CLASSES];
    uint64_t ioff[SVC_MAX_CLASSES];
    uint64_t region_bytes;                  /* pool + ingress pool */
    unsigned eg_next;                       /* egress poll: the shard to start at next */
    /* Registration (one thread, before start). */
    svc_type types[MRT_SVC_MAX_TYPES];
    unsigned ntypes;
    svc_subsystem subs[MRT_SVC_MAX_SUBSYSTEMS];
    unsigned nsubs;
    mrt_svc_handback_fn handback;
    void *handback_ctx;
    mrt_svc_output_fn output;
    void *output_ctx;
    mrt_svc_admit_fn admit;                 /* hold.c: push-back before a delivery */
    void *admit_ctx;
    _Atomic bool started;
    uint64_t seed;                          /* keys the host tables */
    /*
     * Pool bases by owner: written by the owner's init before it can send a
     * handle, read by receivers after they dequeued one (the ring orders it).
     */
    uint8_t **base;
    _Atomic(mrt_svc_shard *) *shards;
    struct svc_eg_app *eg_app;              /* per shard, written by the egress thread */
};

/* The egress thread's counter per shard, in a block of its own (the shard writes nearby). */
typedef struct svc_eg_app {
    alignas(128) _Atomic uint64_t polled;
} svc_eg_app;

/* One size class of a shard's pool: a LIFO stack of free buffer indices. */
typedef struct svc_class {
    uint32_t *stack;
    uint32_t top;       /* free buffers */
    uint8_t *out;       /* per buffer: 1 while handed out (catches double/forged returns) */
} svc_class;

/* One pending completion (to another shard). */
typedef struct svc_done {
    uint64_t key;       /* slot | generation */
    uint32_t latency;   /* ns, saturated */
    uint32_t ok;
} svc_done;

/*
 * What this shard owes shard `dst`: returned handles and completions,
 * staged during the iteration and sent by the tick. Each array is sized by
 * its bound, so it never overflows: a shard holds at most pool_total of
 * dst's buffers and at most `inflight` of dst's tokens.
 */
typedef struct svc_pend {
    uint64_t *ret;
    svc_done *done;
    uint32_t nret, ndone;
    uint8_t dirty;
} svc_pend;

/* A pending routed selection. */
typedef struct svc_slot {
    mrt_lb_selection sel;
    uint64_t t_sel;     /* coarse clock at the selection: the completion's round trip */
    uint32_t gen;
    uint8_t busy;
} svc_slot;

typedef struct svc_hslot {
    uint64_t id;
    mrt_host *host;     /* NULL: empty */
} svc_hslot;

/* Shard-side context of a registered type (the shard handler's ctx). */
typedef struct svc_type_rt {
    mrt_svc_shard *ss;
    const svc_type *t;
} svc_type_rt;

typedef struct svc_hook {
    mrt_svc_hook fn;
    void *ctx;
} svc_hook;

struct mrt_svc_shard {
    mrt_svc *svc;
    mrt_shard *shard;
    mrt_stall_slot *stall;              /* the shard's: which daemon's process runs */
    const mrt_allocator *alloc;
    unsigned id, n;
    uint16_t t_event, t_ret, t_done;  /* shard type numbers */
    /* Pool. */
    uint8_t *region;
    uint64_t region_bytes;
    svc_class cls[SVC_MAX_CLASSES];
    /* Host table: open addressing, linear probing, keyed hash, backward-shift delete. */
    svc_hslot *hosts;
    uint32_t hmask, hcount;
    uint64_t hseed;
    /* In-flight selections. */
    mrt_lb_shard *lb;
    svc_slot *slots;
    uint32_t *slot_free;
    uint32_t nfree_slots;
    /* Owed to other shards. */
    svc_pend *pend;
    unsigned *pend_dirty;
    unsigned npend_dirty;
    /* Registered types, hooks, subsystem states. */
    svc_type_rt trt[MRT_SVC_MAX_TYPES];
    svc_hook hooks[MRT_SVC_MAX_HOOKS];
    unsigned nhooks;
    void *state[MRT_SVC_MAX_SUBSYSTEMS];
    uint64_t sub_pending[MRT_SVC_MAX_SUBSYSTEMS]; /* mrt_svc_set_pending */
    /*
     * Events the admission held, in arrival order, their buffers still out
     * (hold.c): a ring sized by what can be out at once — every shard's
     * pool and this shard's ingress pool — allocated only with an admission.
     */
    mrt_msg *held;
    uint32_t held_cap, held_head, nheld;
    unsigned ninit;                     /* subsystems whose init succeeded */
    /*
     * Ingress pool: free lists (SP/SC rings of u32 indices: the shard puts
     * back lock-free, injectors take under ifree_get; core/spin.h says why
     * not DPDK's MP/MC modes), orphan lists the other way round, per buffer
     * 1 while held.
     */
    struct rte_ring *ifree[SVC_MAX_CLASSES];
    /* Indices an injector took but could not inject: the shard moves them back to ifree. */
    struct rte_ring *iorphan[SVC_MAX_CLASSES];
    _Atomic uint8_t *iout[SVC_MAX_CLASSES];
    size_t ifree_bytes[SVC_MAX_CLASSES];
    /* Egress: handles to the application, and back (both SPSC, 8-byte handles). */
    struct rte_ring *egress, *eg_ret;
    size_t egress_bytes, eg_ret_bytes;
    mrt_svc_stats st;
    mrt_hist hist[MRT_SVC_HISTS];       /* owner only; the runtime publishes copies */
    /* Read by the egress thread (mrt_svc_egress_pending): a block of its own. */
    alignas(128) _Atomic uint64_t eg_pushed;
    /*
     * Injectors' locks (never taken by the shard): taking from ifree, and
     * putting an index they could not inject on iorphan.
     */
    alignas(128) mrt_spin ifree_get[SVC_MAX_CLASSES];
    alignas(128) mrt_spin iorphan_put[SVC_MAX_CLASSES];
    /* Set after an orphan is put: the shard looks at the orphan rings only then. */
    alignas(128) atomic_uint iorphan_pending;
};

/* pool.c */
int svc_layout(mrt_svc *svc);
int svc_pool_init(mrt_svc_shard *ss);
void svc_pool_fini(mrt_svc_shard *ss);
unsigned svc_class_of(const mrt_svc *svc, size_t len);
bool svc_resolve(const mrt_svc *svc, uint64_t h, uint32_t len, uint8_t **buf);
/* An ingress handle's class and index (any owner: the caller checks it), len checked too. */
bool svc_ingress_index(const mrt_svc *svc, uint64_t h, uint32_t len, unsigned *cls, uint32_t *idx);
/* Take back one of this shard's handles: its buffer, or NULL (not handed out: counted, ignored). */
uint8_t *svc_pool_push(mrt_svc_shard *ss, uint64_t h);

/* Pop a free buffer of class c: its handle, or false when the class is empty. */
static inline bool svc_pool_pop(mrt_svc_shard *ss, unsigned c, uint64_t *h, uint8_t **buf)
{
    svc_class *k = &ss->cls[c];
    if (__builtin_expect(k->top == 0, 0))
        return false;
    uint32_t idx = k->stack[--k->top];
    k->out[idx] = 1;
    ss->st.pool_out++;
    uint64_t off = ss->svc->class_off[c] + (uint64_t)idx * ss->svc->class_size[c];
    *h = svc_handle(ss->id, c, off);
    *buf = ss->region + off;
    return true;
}

/* In-flight slots: inline, as every routed send takes one and every completion drops one. */
static inline bool svc_slot_take(mrt_svc_shard *ss, uint32_t *slot)
{
    if (ss->nfree_slots == 0)
        return false;
    uint32_t i = ss->slot_free[--ss->nfree_slots];
    ss->slots[i].busy = 1;
    ss->st.inflight++;
    *slot = i;
    return true;
}

/* Free a slot; its generation moves on, so a late token for it is stale. */
static inline void svc_slot_drop(mrt_svc_shard *ss, uint32_t slot)
{
    svc_slot *e = &ss->slots[slot];
    e->busy = 0;
    e->gen = (e->gen + 1) & SVC_GEN_MASK;
    if (e->gen == 0)
        e->gen = 1;
    ss->slot_free[ss->nfree_slots++] = slot;
    ss->st.inflight--;
}

/* hosts.c */
int svc_hosts_init(mrt_svc_shard *ss);
void svc_hosts_fini(mrt_svc_shard *ss);

/* completion.c */
int svc_flow_init(mrt_svc_shard *ss);
void svc_flow_fini(mrt_svc_shard *ss);
void svc_release(mrt_svc_shard *ss, uint64_t h);
void svc_complete(mrt_svc_shard *ss, uint64_t token, bool ok, uint32_t latency);
void svc_flush_owed(mrt_svc_shard *ss);
void svc_on_returns(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx);
void svc_on_done(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx);

/* route.c */
void svc_on_events(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx);
void svc_retry_held(mrt_svc_shard *ss);
void svc_hand_back(mrt_svc_shard *ss, const mrt_msg *m, const mrt_event *ev,
                   mrt_svc_handback_reason why);

/* hold.c */
int svc_hold_init(mrt_svc_shard *ss);
void svc_hold_fini(mrt_svc_shard *ss);
bool svc_hold(mrt_svc_shard *ss, const mrt_msg *x);

/* ingress.c */
typedef struct svc_iref {
    unsigned c;   /* size class */
    uint32_t idx; /* buffer index in it */
} svc_iref;
int svc_ingress_init(mrt_svc_shard *ss);
void svc_ingress_fini(mrt_svc_shard *ss);
bool svc_ingress_take(mrt_svc_shard *ss, const mrt_msg *m, mrt_event *ev, svc_iref *ref);
void svc_ingress_done(mrt_svc_shard *ss, svc_iref ref);
void svc_ingress_reclaim(mrt_svc_shard *ss);

/* egress.c */
int svc_egress_init(mrt_svc_shard *ss);
void svc_egress_fini(mrt_svc_shard *ss);
void svc_egress_returns(mrt_svc_shard *ss);

/* A ring of `count` elements of `esize` bytes exactly, from `a` (*bytes: its size). */
static inline struct rte_ring *svc_ring_new(const mrt_allocator *a, unsigned esize,
                                            unsigned count, unsigned flags, size_t *bytes)
{
    /* Exactly `count` elements: a ring of the next power of two above it. */
    ssize_t sz = rte_ring_get_memsize_elem(esize, rte_align32pow2(count + 1));
    if (sz < 0)
        return NULL;
    struct rte_ring *r = mrt_alloc_aligned(a, (size_t)sz, 128);
    if (r == NULL)
        return NULL;
    if (rte_ring_init(r, "svc", count, flags | RING_F_EXACT_SZ) != 0) {
        mrt_free_aligned(a, r, (size_t)sz, 128);
        return NULL;
    }
    *bytes = (size_t)sz;
    return r;
}

static inline void svc_ring_free(const mrt_allocator *a, struct rte_ring *r, size_t bytes)
{
    if (r)
        mrt_free_aligned(a, r, bytes, 128);
}

#endif
