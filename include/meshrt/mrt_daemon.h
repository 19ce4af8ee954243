/*
 * mrt_daemon.h — daemons, the unit of user compute, and the host that runs
 * one daemon on events: causal links and chains, wire framing, the observed
 * horizon, the output sink, and host snapshots.
 *
 * Pure logic: no threads, no locks, no clock reads. Every allocation goes
 * through the allocator handle given at init/create time (a shard's arena);
 * the per-event paths (mrt_host_deliver, mrt_horizon_observe, the chain)
 * allocate nothing. Time comes in as an argument (the shard's coarse clock).
 * Objects are owned by one thread at a time (the shard that hosts them).
 */
#ifndef MESHRT_MRT_DAEMON_H
#define MESHRT_MRT_DAEMON_H

#include "meshrt/mrt_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-500 .. -599). */
enum mrt_daemon_status {
    MRT_DAEMON_EORIGIN = -500,       /* link's origin is not the chain's / host's origin */
    MRT_DAEMON_ESEQGAP = -501,       /* sequence is not exactly previous + 1 (or not 0 at genesis) */
    MRT_DAEMON_EPARENT = -502,       /* parent hash does not match the previous link and payload */
    MRT_DAEMON_ESEQOVERFLOW = -503,  /* the next sequence would pass UINT64_MAX */
    MRT_DAEMON_ETRUNCATED = -504,    /* input ends before the length it announces */
    MRT_DAEMON_EOVERSIZED = -505,    /* a length exceeds the configured / representable maximum */
    MRT_DAEMON_EINCONSISTENT = -506, /* length or header fields disagree with each other */
    MRT_DAEMON_EMAGIC = -507,        /* snapshot does not start with the magic */
    MRT_DAEMON_EVERSION = -508,      /* snapshot version is not one this build reads */
    MRT_DAEMON_ECHECKSUM = -509,     /* snapshot checksum does not match its contents */
    MRT_DAEMON_ESINKFULL = -510,     /* the daemon emitted more outputs than the sink has slots */
    MRT_DAEMON_EHORIZONFULL = -511,  /* a new origin would exceed the horizon's capacity */
    MRT_DAEMON_ESTATELESS = -512,    /* a stateless daemon was given non-empty state */
    MRT_DAEMON_ENOSPACE = -513,      /* the caller's output buffer is too small (size reported) */
    MRT_DAEMON_EPENDING = -514,      /* outputs of the previous deliver were not released */
    MRT_DAEMON_EPROCESS = -515,      /* a daemon returned a positive (non-status) value */
    MRT_DAEMON_EBADSTATE = -516,     /* a daemon rejected the state given to restore */
    MRT_DAEMON_EHORIZONPROBE = -517, /* a new origin's probe sequence would pass the bound */
    MRT_DAEMON_ELINEAGE = -518,      /* a fork record (or a set of them) does not verify */
    MRT_DAEMON_EINGRESS = -519,      /* ingress index out of order (not the next one expected) */
    MRT_DAEMON_ERESYNC = -520,       /* a standby is too far behind: full re-sync needed */
};

/* Name of a daemon status code; NULL outside -500..-599. */
const char *mrt_daemon_strerror(int status);

/* ---------------------------------------------------------------------------
 * Causal links
 * ------------------------------------------------------------------------- */

#define MRT_CAUSAL_LINK_SIZE 32

/*
 * The 32-byte stamp on every output: on the wire, little-endian, in this
 * field order. Genesis (an origin's first output) has sequence 0, parent 0.
 */
typedef struct mrt_causal_link {
    uint64_t origin_hash;      /* identity of the emitting host */
    uint64_t horizon_encoded;  /* bloom of the origins the emitter had observed */
    uint64_t sequence;         /* position in the origin's chain */
    uint64_t parent_hash;      /* XXH3-64(previous link bytes || previous payload) */
} mrt_causal_link;

/* Write the 32-byte little-endian wire form of a link. */
void mrt_causal_link_encode(const mrt_causal_link *l, uint8_t out[MRT_CAUSAL_LINK_SIZE]);
/* Read a link from its 32-byte wire form. */
void mrt_causal_link_decode(const uint8_t in[MRT_CAUSAL_LINK_SIZE], mrt_causal_link *out);

/*
 * parent_hash for the link that follows (prev, payload): XXH3-64 of the
 * 32-byte wire form of prev followed by the payload, fed to xxHash's
 * streaming API with an on-stack state, so nothing is concatenated or
 * allocated. Equal to the one-shot XXH3_64bits of the concatenation.
 */
uint64_t mrt_causal_parent_hash(const mrt_causal_link *prev, const void *payload, size_t len);

/*
 * One origin's chain: used both to build a chain (append) and to check a
 * received one (accept). A value type; all fields are private. After an
 * output (link L, payload P) is appended or accepted, the chain stores L and
 * the parent hash of the next link, H(L || P), computed eagerly so that P
 * need not be kept.
 */
typedef struct mrt_causal_chain {
    mrt_causal_link head;   /* last link (valid when has_head) */
    uint64_t origin_hash;
    uint64_t next_parent;   /* parent_hash of the next link */
    bool has_head;          /* false: the next link is the genesis */
} mrt_causal_chain;

/* An empty chain of `origin`: the next link is the genesis (sequence 0, parent 0). */
void mrt_causal_chain_init(mrt_causal_chain *c, uint64_t origin);

/*
 * A chain positioned after `head`, whose next link must carry `next_parent`
 * (as returned by mrt_causal_parent_hash(head, its payload)). Used to resume
 * from a snapshot. MRT_DAEMON_EORIGIN when head->origin_hash != origin.
 */
int mrt_causal_chain_resume(mrt_causal_chain *c, uint64_t origin, const mrt_causal_link *head,
                            uint64_t next_parent);

/*
 * Stamp the next output: *out = {origin, horizon, next sequence, next parent}
 * and advance the chain over (out, payload). MRT_DAEMON_ESEQOVERFLOW when
 * the head is at UINT64_MAX (the chain is then unchanged).
 */
int mrt_causal_chain_append(mrt_causal_chain *c, uint64_t horizon, const void *payload,
                            size_t len, mrt_causal_link *out);

/*
 * Check that `link` (with its payload) is the next link of the chain and
 * advance over it. Checked in this order, each with its own code:
 * MRT_DAEMON_EORIGIN, MRT_DAEMON_ESEQOVERFLOW (head at UINT64_MAX),
 * MRT_DAEMON_ESEQGAP (sequence != head + 1, or != 0 at genesis),
 * MRT_DAEMON_EPARENT. On error the chain is unchanged.
 */
int mrt_causal_chain_accept(mrt_causal_chain *c, const mrt_causal_link *link,
                            const void *payload, size_t len);

/* ---------------------------------------------------------------------------
 * Framing: u32 total (LE) || link (32 bytes) || payload
 * ------------------------------------------------------------------------- */

/* `total` counts the whole frame, itself included: 36 + payload length. */
#define MRT_FRAME_HEADER_SIZE (4 + MRT_CAUSAL_LINK_SIZE)
#define MRT_FRAME_MAX_SIZE UINT32_MAX

/* A decoded frame; payload points into the decoder's input. */
typedef struct mrt_frame {
    mrt_causal_link link;
    const uint8_t *payload;
    size_t payload_len;
} mrt_frame;

/* Bytes a frame with `payload_len` bytes of payload occupies (0 if it cannot be framed). */
size_t mrt_frame_size(size_t payload_len);

/*
 * Write one frame into out[0..cap). *written receives the frame size (also
 * on MRT_DAEMON_ENOSPACE, so a caller can size its buffer).
 * MRT_DAEMON_EOVERSIZED when the frame would not fit the u32 total.
 */
int mrt_frame_encode(const mrt_causal_link *link, const void *payload, size_t len, void *out,
                     size_t cap, size_t *written);

/*
 * Decode the frame at the start of buf[0..len), reading nothing past len.
 * max_frame bounds the total (MRT_FRAME_HEADER_SIZE .. MRT_FRAME_MAX_SIZE).
 * With `consumed` non-NULL, bytes after the frame are allowed (a stream)
 * and *consumed receives its size; with NULL, the frame must be exactly the
 * input. Errors, checked in this order:
 *   MRT_DAEMON_ETRUNCATED    fewer than 4 bytes (no length yet)
 *   MRT_DAEMON_EINCONSISTENT total < MRT_FRAME_HEADER_SIZE
 *   MRT_DAEMON_EOVERSIZED    total > max_frame (checked before the body
 *                            arrives, so a stream can reject early)
 *   MRT_DAEMON_ETRUNCATED    fewer than total bytes
 *   MRT_DAEMON_EINCONSISTENT trailing bytes when consumed is NULL
 * MRT_EINVAL for a max_frame below the header size or NULL pointers.
 */
int mrt_frame_decode(const void *buf, size_t len, uint32_t max_frame, mrt_frame *out,
                     size_t *consumed);

/* ---------------------------------------------------------------------------
 * Observed horizon
 * ------------------------------------------------------------------------- */

/*
 * What a host has observed: origin -> highest sequence seen, a saturating
 * logical time, and the cached 8-byte bloom encoding of the origin set.
 *
 * The map is an open-addressing table of bounded capacity (max_origins),
 * allocated once at init and never grown: no per-event allocation, bounded
 * memory against floods of forged origins. A new origin beyond capacity is
 * refused with MRT_DAEMON_EHORIZONFULL, never silently dropped.
 *
 * Origins come from the wire, so the slot of an origin is a keyed hash
 * (XXH3-64 seeded with a per-process random key, drawn once with
 * getrandom(2)): a sender cannot choose origins that collide. Every walk of
 * the table is bounded by MRT_HORIZON_MAX_PROBE slots; a new origin whose
 * probe sequence would pass the bound is refused with
 * MRT_DAEMON_EHORIZONPROBE (nothing recorded), like a full horizon. With a
 * secret key and the table at most half full that takes a sequence of
 * 128 occupied slots: probability ~1e-17 per insert.
 *
 * Encoding: for each origin, h = XXH3-64 of its 8 little-endian bytes,
 * h1 = low 32 bits of h, h2 = (high 32 bits of h) | 1; bits h1, h1 + h2 and
 * h1 + 2*h2 (each mod 64) are set (three distinct bits, since h2 is odd).
 * The encoding of a set is the OR over its origins, so it is kept up to date
 * incrementally: only an observe that adds an origin touches it.
 *
 * Fields are private; the struct is public so a host can embed it.
 */
typedef struct mrt_horizon_slot {
    uint64_t origin;   /* 0 marks an empty slot; origin 0 lives in zero_seq */
    uint64_t seq;
} mrt_horizon_slot;

typedef struct mrt_horizon {
    mrt_horizon_slot *slots;
    uint64_t key;           /* slot hash seed: the process's key */
    uint32_t mask;          /* table size - 1 (power of two, >= 2 * max_origins) */
    uint32_t count;         /* origins held, origin 0 included */
    uint32_t max_origins;
    bool has_zero;
    uint64_t zero_seq;
    uint64_t logical_time;
    uint64_t encoded;
    mrt_allocator alloc;
} mrt_horizon;

#define MRT_HORIZON_MAX_ORIGINS (1u << 24)
/* Most slots any lookup or insert examines. */
#define MRT_HORIZON_MAX_PROBE 128u

/*
 * An empty horizon able to hold `max_origins` origins (1..MRT_HORIZON_MAX_ORIGINS).
 * `alloc` NULL means the thread's default arena. MRT_EINVAL, MRT_ENOMEM;
 * MRT_ENOSYS when the kernel gives no randomness for the process's key
 * (getrandom(2)): refused rather than run with a guessable one.
 */
int mrt_horizon_init(mrt_horizon *h, const mrt_allocator *alloc, uint32_t max_origins);
/* Release the table (the struct may be re-initialised). */
void mrt_horizon_destroy(mrt_horizon *h);
/* Forget everything (capacity kept). */
void mrt_horizon_clear(mrt_horizon *h);

/*
 * Record that (origin, seq) was seen: the origin's highest sequence becomes
 * max(old, seq) and the logical time advances by one, saturating at
 * UINT64_MAX. Only a new origin updates the encoding.
 * MRT_DAEMON_EHORIZONFULL (nothing recorded) for a new origin when full,
 * MRT_DAEMON_EHORIZONPROBE (nothing recorded) when its probe sequence would
 * pass MRT_HORIZON_MAX_PROBE.
 */
int mrt_horizon_observe(mrt_horizon *h, uint64_t origin, uint64_t seq);

/*
 * dst := dst ∪ src: per origin the max sequence, the encoding OR-ed, the
 * logical time the max of both. All or nothing: MRT_DAEMON_EHORIZONFULL
 * (dst unchanged) when the union exceeds dst's capacity,
 * MRT_DAEMON_EHORIZONPROBE (dst unchanged) when an origin cannot be placed
 * within the probe bound, MRT_ENOMEM (dst unchanged) when the undo record
 * for the new origins cannot be allocated.
 */
int mrt_horizon_merge(mrt_horizon *dst, const mrt_horizon *src);

/* True when `origin` has been observed with a sequence >= seq (exact, not the bloom). */
bool mrt_horizon_has_observed(const mrt_horizon *h, uint64_t origin, uint64_t seq);
/* True when `origin` has been observed at all (exact, not the bloom). */
bool mrt_horizon_contains_origin(const mrt_horizon *h, uint64_t origin);
/* Highest sequence seen of `origin` into *seq; false when never observed. */
bool mrt_horizon_highest(const mrt_horizon *h, uint64_t origin, uint64_t *seq);
/* Number of origins held. */
uint32_t mrt_horizon_count(const mrt_horizon *h);
/* The saturating logical time. */
uint64_t mrt_horizon_logical_time(const mrt_horizon *h);
/* The cached 8-byte bloom encoding of the origin set (no work). */
uint64_t mrt_horizon_encoded(const mrt_horizon *h);

/*
 * Visit every (origin, highest sequence) pair, in table order. Stops early
 * and returns the callback's value when it returns non-zero.
 */
int mrt_horizon_foreach(const mrt_horizon *h, int (*fn)(void *ctx, uint64_t origin, uint64_t seq),
                        void *ctx);

/* The three bits `origin` sets in an encoding. */
uint64_t mrt_horizon_origin_bits(uint64_t origin);

/*
 * Bloom query on an encoding: false means the encoded set certainly does not
 * hold `origin`; true means it may (false positives, never false negatives).
 */
bool mrt_horizon_encoding_may_contain(uint64_t encoded, uint64_t origin);

/*
 * On two outputs' horizon encodings: true when neither bit set contains the
 * other, i.e. each emitter had observed some origin the other had certainly
 * not. Horizons only grow, so neither output can have been emitted with
 * knowledge of everything the other's emitter knew: treat them as
 * concurrent. False when one set contains the other (equal sets included):
 * they may be causally ordered — "may", because bloom bits can collide.
 */
bool mrt_horizon_potentially_concurrent(uint64_t a, uint64_t b);

/* ---------------------------------------------------------------------------
 * Events, the output sink, and the daemon interface
 * ------------------------------------------------------------------------- */

/*
 * An event as a daemon sees it. Passed by const pointer: the host never
 * copies input events. `timestamp` is in the caller's clock units.
 */
typedef struct mrt_event {
    mrt_causal_link link;
    const void *payload;
    size_t payload_len;
    uint64_t timestamp;
} mrt_event;

/*
 * Where a daemon writes its outputs. The owner (a host) preallocates
 * `max_outputs` slots and a `payload_bytes` region from its allocator, so
 * emitting takes no allocation; a payload that does not fit what is left of
 * the region gets its own buffer from the same allocator ("spill"), freed on
 * reset. Overflowing the slots is MRT_DAEMON_ESINKFULL, never a silent drop.
 * Each output takes 40 + len bytes of the region (plus padding that puts
 * its link on a 64-byte boundary): its payload is preceded by room for the
 * wire-frame header, which the host fills when stamping (see
 * mrt_host_output_frame).
 * Fields are private; public for embedding.
 */
typedef struct mrt_daemon_sink {
    mrt_event *outputs;
    uint8_t *region;
    size_t region_size;
    size_t region_used;
    uint32_t count;
    uint32_t max_outputs;
    uint32_t spilled;      /* outputs whose payload buffer was allocated on its own */
    uint8_t *spill_flags;  /* per slot: 1 when its payload was allocated on its own */
    mrt_allocator alloc;
} mrt_daemon_sink;

#define MRT_SINK_DEFAULT_OUTPUTS 16u
#define MRT_SINK_DEFAULT_PAYLOAD_BYTES (64u * 1024u)

/*
 * Preallocate a sink (max_outputs 1 .. 2^24; payload_bytes at most
 * UINT32_MAX, and may be 0: every payload then spills). MRT_EINVAL,
 * MRT_ENOMEM.
 */
int mrt_daemon_sink_init(mrt_daemon_sink *s, const mrt_allocator *alloc, uint32_t max_outputs,
                         size_t payload_bytes);
/* Free pending spilled payloads and the sink's memory. */
void mrt_daemon_sink_destroy(mrt_daemon_sink *s);
/* Drop every pending output (spilled buffers are freed); O(1) when none spilled. */
void mrt_daemon_sink_reset(mrt_daemon_sink *s);
/* Number of pending outputs. */
uint32_t mrt_daemon_sink_count(const mrt_daemon_sink *s);
/* The pending outputs, in emission order (valid until the next reset). */
const mrt_event *mrt_daemon_sink_outputs(const mrt_daemon_sink *s);

/* Bytes of the region in front of each payload: padding, then the frame header. */
#define MRT_SINK_SLOT_HEADER (4 + MRT_FRAME_HEADER_SIZE)
/*
 * Where the next output's slot starts in the region, given the bytes used:
 * its link (slot + 8) lands on a 64-byte boundary, so the hash over
 * link || payload reads whole cache lines.
 */
#define MRT_SINK_SLOT_OFFSET(used) ((((size_t)(used) + 8u + 63u) & ~(size_t)63u) - 8u)

/* The general path of mrt_daemon_emit (errors, spills); daemons call mrt_daemon_emit. */
int mrt_daemon_emit_slow(mrt_daemon_sink *s, size_t len, void **buf);

/*
 * Emit one output whose payload the daemon writes into *buf (len bytes,
 * 8-byte aligned, valid until the sink is reset; non-NULL even for len 0).
 * The output's link and timestamp are filled by the host when it stamps it.
 * MRT_DAEMON_ESINKFULL when every slot is used, MRT_DAEMON_EOVERSIZED when
 * len cannot be framed, MRT_ENOMEM when a spill allocation fails, MRT_EINVAL
 * for NULL pointers. Inline because it runs once per output: the common
 * case (a free slot, room in the region) is a bump of two counters.
 */
static inline int mrt_daemon_emit(mrt_daemon_sink *s, size_t len, void **buf)
{
    if (s != NULL && buf != NULL && s->count < s->max_outputs) {
        size_t off = MRT_SINK_SLOT_OFFSET(s->region_used);
        /* region_size <= UINT32_MAX, so a payload that fits can be framed. */
        if (off + MRT_SINK_SLOT_HEADER <= s->region_size &&
            len <= s->region_size - off - MRT_SINK_SLOT_HEADER) {
            uint8_t *payload = s->region + off + MRT_SINK_SLOT_HEADER;
            mrt_event *ev = &s->outputs[s->count++];
            s->region_used = off + MRT_SINK_SLOT_HEADER + len;
            ev->payload = payload;
            ev->payload_len = len;
            *buf = payload;
            return MRT_OK;
        }
    }
    return mrt_daemon_emit_slow(s, len, buf);
}
/* mrt_daemon_emit followed by a copy of data[0..len). */
int mrt_daemon_emit_copy(mrt_daemon_sink *s, const void *data, size_t len);

/* Control signals a host forwards to its daemon. */
typedef enum mrt_daemon_control {
    MRT_DAEMON_CTL_SHUTDOWN = 0,        /* no event follows; the host refuses deliver after it */
    MRT_DAEMON_CTL_DRAIN_START = 1,     /* stop taking new work, finish what is in flight */
    MRT_DAEMON_CTL_DRAIN_FINISH = 2,    /* drain complete */
    MRT_DAEMON_CTL_BACKPRESSURE_ON = 3, /* downstream is slow; level: higher = more pressure */
    MRT_DAEMON_CTL_BACKPRESSURE_OFF = 4,
} mrt_daemon_control;

typedef enum mrt_daemon_health {
    MRT_DAEMON_HEALTHY = 0,
    MRT_DAEMON_DEGRADED = 1,
    MRT_DAEMON_UNHEALTHY = 2,
} mrt_daemon_health;

/*
 * A daemon's operations; `state` is the daemon's own object. Only `process`
 * is required. Callbacks run on the host's thread and must not block.
 */
typedef struct mrt_daemon_vtable {
    const char *name;
    /*
     * Handle one event, emitting zero or more outputs into `sink` (via
     * mrt_daemon_emit*). Returns MRT_OK or a negative status; on error the
     * host discards whatever was emitted.
     */
    int (*process)(void *state, const mrt_event *ev, mrt_daemon_sink *sink);
    /*
     * Serialise state into buf[0..cap) and set *len. When cap is too small
     * (buf may then be NULL), set *len to the size needed and return
     * MRT_DAEMON_ENOSPACE. NULL: the daemon is stateless (empty state).
     */
    int (*snapshot)(const void *state, void *buf, size_t cap, size_t *len);
    /*
     * Replace state with one produced by snapshot. MRT_DAEMON_EBADSTATE (or
     * another negative status) for bytes it cannot use. NULL: stateless,
     * the host accepts only an empty state (else MRT_DAEMON_ESTATELESS).
     */
    int (*restore)(void *state, const void *buf, size_t len);
    /* React to a control signal; level is meaningful for BACKPRESSURE_ON. NULL: ignore. */
    int (*on_control)(void *state, mrt_daemon_control kind, uint32_t level);
    /* NULL: always healthy. */
    mrt_daemon_health (*health)(const void *state);
    /* Load in [0, 1] (1 = saturated). NULL: 0. */
    double (*saturation)(const void *state);
} mrt_daemon_vtable;

/* A daemon: operations plus state. The host borrows it; the caller owns the state. */
typedef struct mrt_daemon {
    const mrt_daemon_vtable *vt;
    void *state;
} mrt_daemon;

/* ---------------------------------------------------------------------------
 * Daemon host
 * ------------------------------------------------------------------------- */

#define MRT_HOST_KEY_SIZE 32
/* Default for mrt_host_config.max_state: the largest daemon state a snapshot may carry. */
#define MRT_HOST_DEFAULT_MAX_STATE (64u * 1024u * 1024u)

typedef struct mrt_host_config {
    const mrt_allocator *alloc;  /* the shard's arena; NULL: thread default */
    uint8_t key[MRT_HOST_KEY_SIZE]; /* identity; see mrt_host_origin_from_key */
    uint32_t max_outputs;        /* outputs one deliver may emit; 0: MRT_SINK_DEFAULT_OUTPUTS */
    size_t payload_bytes;        /* preallocated payload region; 0: MRT_SINK_DEFAULT_PAYLOAD_BYTES */
    uint32_t max_origins;        /* horizon capacity; 0: 64 */
    uint32_t max_state;          /* largest daemon state restore accepts; 0: default */
    /*
     * Continue an existing chain instead of starting at genesis (a member
     * re-spawned under the same identity): the chain's last head and the
     * parent hash its next link must carry (mrt_causal_chain.head /
     * .next_parent of the previous incarnation). NULL: start at genesis.
     */
    const mrt_causal_link *resume;
    uint64_t resume_next_parent;
    /*
     * Ingress index of the first event this host accepts (see
     * mrt_host_ingress_next); a re-created host passes its previous
     * incarnation's next index. 0 for a new daemon.
     */
    uint64_t ingress_start;
} mrt_host_config;

typedef struct mrt_host mrt_host;

typedef struct mrt_host_stats {
    uint64_t processed;   /* process calls that returned MRT_OK (even if stamping then failed) */
    uint64_t emitted;     /* outputs stamped and appended to the chain */
    uint64_t errors;      /* delivers that returned an error */
    uint64_t snapshots;   /* successful mrt_host_snapshot calls */
    uint64_t restores;    /* successful mrt_host_restore calls */
    uint64_t spills;      /* output payloads that did not fit the preallocated region */
    uint64_t suppressed;  /* outputs stamped (chain advanced) but not emitted: replay */
} mrt_host_stats;

/*
 * The host identity: origin_hash = XXH3-64 (seed 0) of the 16 ASCII bytes
 * "meshrt/origin/v1" followed by the 32 key bytes. The prefix separates this
 * use of the key from any other hash of it.
 */
uint64_t mrt_host_origin_from_key(const uint8_t key[MRT_HOST_KEY_SIZE]);

/*
 * Create a host running `daemon` (borrowed; must outlive the host). All the
 * host's memory — sink slots, payload region, horizon table — is allocated
 * here, from cfg->alloc. MRT_EINVAL, MRT_ENOMEM, MRT_DAEMON_EORIGIN (cfg->resume
 * is a link of another origin than the key's).
 */
int mrt_host_create(const mrt_host_config *cfg, mrt_daemon daemon, mrt_host **out);
/* Destroy a host (NULL is a no-op); pending outputs are dropped. The daemon is untouched. */
void mrt_host_destroy(mrt_host *h);

/*
 * Run the daemon on one event, `now` being the caller's coarse clock:
 *  1. observe (origin, sequence) of ev->link in the horizon;
 *  2. process; on error the emitted outputs are discarded, the chain is
 *     untouched, errors is counted and the daemon's status returned;
 *  3. count processed; with no outputs, return at once (no horizon or
 *     chain work);
 *  4. otherwise stamp each output with {host origin, the cached horizon
 *     encoding (taken once), next sequence, parent hash} and timestamp
 *     `now`, appending it to the chain.
 * Outputs then wait in the host's sink: read them with mrt_host_outputs and
 * release them with mrt_host_release_outputs before the next deliver (which
 * otherwise fails with MRT_DAEMON_EPENDING and does nothing).
 * Other errors (each counted in errors, chain untouched): MRT_DAEMON_EPENDING,
 * MRT_DAEMON_EHORIZONFULL (a new origin, horizon full: not processed),
 * MRT_DAEMON_ESEQOVERFLOW (the chain cannot take all outputs: none is
 * appended, all are dropped), MRT_ESTATE after shutdown.
 * The horizon keeps the observation even when processing fails: the event
 * was seen. h and ev must be valid (the hot path does not check them).
 */
int mrt_host_deliver(mrt_host *h, const mrt_event *ev, uint64_t now);

/*
 * Outputs of the last successful deliver, stamped, in order; *count receives
 * their number. Payloads live in the host until mrt_host_release_outputs;
 * a caller that needs one longer copies it (e.g. into a ring message).
 */
const mrt_event *mrt_host_outputs(const mrt_host *h, size_t *count);

/*
 * Output i of the last deliver as a finished wire frame (u32 total || link
 * || payload), in place: the sink keeps room for the header in front of
 * every payload and stamping fills it, which is also what lets the parent
 * hash run over link || payload without a copy. Valid until release.
 * MRT_EINVAL when i is not a pending output.
 */
int mrt_host_output_frame(const mrt_host *h, size_t i, const uint8_t **frame, size_t *size);
/* Release the pending outputs (O(1) unless payloads spilled). */
void mrt_host_release_outputs(mrt_host *h);

/*
 * Ingress index. Every event the host accepts — a deliver that returns
 * MRT_OK — is stamped with the host's next ingress index, which then
 * advances by one; a deliver that fails takes no index. Indices are dense
 * per daemon (config ingress_start, then +1 per accepted event), travel in
 * snapshots, and are what replay keys on: not input sequences, which break
 * with several senders, nor output sequences, which break with several
 * outputs per input.
 */
/* The index the next accepted event gets (the last accepted one has this - 1). */
uint64_t mrt_host_ingress_next(const mrt_host *h);

/*
 * mrt_host_deliver of an event that must get ingress index `index` (replay
 * of a buffered event): MRT_DAEMON_EINGRESS, counted in errors and nothing
 * else done, when index is not mrt_host_ingress_next(h).
 */
int mrt_host_deliver_at(mrt_host *h, const mrt_event *ev, uint64_t index, uint64_t now);

/*
 * Output suppression, for replay on a promoted standby: while on, outputs
 * are stamped and appended to the chain exactly as usual (so the chain ends
 * where the old active's did), then released at once instead of waiting in
 * the sink: mrt_host_outputs reports none, and each counts in
 * stats.suppressed. The old active already emitted them.
 */
void mrt_host_set_suppress(mrt_host *h, bool on);
/* Whether output suppression is on. */
bool mrt_host_suppressing(const mrt_host *h);

/* The host's origin_hash. */
uint64_t mrt_host_origin(const mrt_host *h);
/* The host's chain (its head is the last output emitted). */
const mrt_causal_chain *mrt_host_chain(const mrt_host *h);
/* The host's horizon. */
const mrt_horizon *mrt_host_horizon(const mrt_host *h);
/* Copy the counters. */
void mrt_host_stats_get(const mrt_host *h, mrt_host_stats *out);

/*
 * Forward a control signal to the daemon and return its status. After
 * SHUTDOWN (whatever the daemon answers) deliver returns MRT_ESTATE.
 * MRT_EINVAL for an unknown kind.
 */
int mrt_host_control(mrt_host *h, mrt_daemon_control kind, uint32_t level);
/* Daemon health (HEALTHY when the daemon has no health callback). */
mrt_daemon_health mrt_host_health(const mrt_host *h);
/* Daemon saturation, clamped to [0, 1] (0 without a callback). */
double mrt_host_saturation(const mrt_host *h);

/* ---------------------------------------------------------------------------
 * Host snapshots
 *
 * Format version 2, little-endian:
 *   off  size
 *     0     4  magic "MRTH"
 *     4     2  version (2)
 *     6     2  flags: bit 0 = the chain has a head; other bits must be 0
 *     8     8  origin_hash
 *    16     8  through_sequence: the head's sequence (0 without a head)
 *    24    32  head link (all zero without a head)
 *    56     8  next_parent: parent hash of the next output (0 without a head)
 *    64     8  horizon logical time
 *    72     4  horizon origin count N
 *    76     4  daemon state length S
 *    80     8  ingress_next: ingress index of the next event (events below
 *              it are applied to the state)
 *    88  16*N  horizon entries: origin u64, highest sequence u64
 *     .     S  daemon state
 *     .     8  XXH3-64 of every preceding byte
 *
 * next_parent is XXH3-64(head link || head payload): the head payload's
 * hash as the chain needs it, so a host restored from the snapshot emits a
 * next link that a receiver of the original chain accepts (the seed system
 * hashed the state bytes instead, and its continued chains did not verify).
 * Version 1 (no ingress index, header of 80 bytes) is refused: a standby
 * restored without its ingress position could not be replayed.
 * ------------------------------------------------------------------------- */

#define MRT_HOST_SNAPSHOT_VERSION 2
#define MRT_HOST_SNAPSHOT_HEADER_SIZE 88

/* A decoded snapshot; pointers refer into the decoder's input. */
typedef struct mrt_host_snapshot_view {
    uint16_t version;
    bool has_head;
    uint64_t origin_hash;
    uint64_t through_sequence;
    mrt_causal_link head;
    uint64_t next_parent;
    uint64_t logical_time;
    uint32_t origin_count;
    uint64_t ingress_next;
    const uint8_t *origins;   /* origin_count entries of 16 bytes, as in the format */
    const uint8_t *state;
    uint32_t state_len;
} mrt_host_snapshot_view;

/*
 * Validate and decode a snapshot, reading nothing past len. Errors:
 * MRT_DAEMON_ETRUNCATED (shorter than the header, or than its lengths
 * announce), MRT_DAEMON_EMAGIC, MRT_DAEMON_EVERSION, MRT_DAEMON_EOVERSIZED
 * (state longer than max_state, or more origins than max_origins),
 * MRT_DAEMON_EINCONSISTENT (unknown flags; trailing bytes; through_sequence,
 * head origin or zeroed fields disagreeing with the header; a repeated
 * origin), MRT_DAEMON_ECHECKSUM.
 */
int mrt_host_snapshot_decode(const void *buf, size_t len, uint32_t max_state,
                             uint32_t max_origins, mrt_host_snapshot_view *out);

/*
 * Serialise the host (chain position, horizon, daemon state) into
 * buf[0..cap); *len receives the size (also with MRT_DAEMON_ENOSPACE, when
 * cap is too small — buf may then be NULL). Counts a snapshot on success.
 * Pending outputs are already part of the chain and are not included, nor
 * are the counters (mrt_host_stats belong to this host instance).
 * MRT_DAEMON_EOVERSIZED when the daemon's state exceeds max_state;
 * MRT_DAEMON_EINCONSISTENT when the daemon breaks the snapshot protocol;
 * the daemon's own error otherwise.
 */
int mrt_host_snapshot(mrt_host *h, void *buf, size_t cap, size_t *len);

/*
 * Restore a host from a snapshot of the same identity: afterwards the next
 * output continues the chain exactly (sequence and parent hash), carries
 * the same horizon, and the next accepted event gets the snapshot's
 * ingress_next. Decoder errors as above; MRT_DAEMON_EORIGIN for another
 * origin; MRT_DAEMON_EHORIZONFULL when the origins exceed this host's
 * capacity; MRT_DAEMON_EPENDING while outputs are pending; the daemon's
 * restore status (MRT_DAEMON_ESTATELESS for a stateless daemon given state).
 * On any error the host's chain and horizon are unchanged.
 */
int mrt_host_restore(mrt_host *h, const void *buf, size_t len);

/*
 * Start a fork from its parent's snapshot: the daemon state and the horizon
 * become the snapshot's, while the host keeps its own chain (the fork's,
 * from its fork genesis) and its ingress position. Errors as
 * mrt_host_restore, except that MRT_DAEMON_EORIGIN means the snapshot is of
 * this host's own origin (not a parent).
 */
int mrt_host_restore_fork(mrt_host *h, const void *buf, size_t len);

/* ---------------------------------------------------------------------------
 * Forks: divergent copies of a daemon's chain with verifiable lineage
 *
 * A fork has its own identity, from a random secret (the host key of the
 * fork's host; whoever spawns forks keeps the secret to re-spawn the same
 * identity). Its chain starts at a fork genesis link that names its parent:
 *   {origin = fork origin, horizon = 0, sequence = 0,
 *    parent_hash = sentinel = XXH3-64(parent origin LE8 || fork_seq LE8 || "fork")}
 * The genesis has an empty payload and is never emitted: the fork's first
 * output has sequence 1 and parent XXH3-64(genesis link bytes). The parent's
 * chain is not touched.
 * ------------------------------------------------------------------------- */

#define MRT_FORK_SECRET_SIZE MRT_HOST_KEY_SIZE
/* original u64, forked u64, fork_seq u64, genesis link 32, flag u8, snapshot_seq u64 (LE). */
#define MRT_FORK_RECORD_SIZE 65

/* What ties a fork to its parent. */
typedef struct mrt_fork_record {
    uint64_t original_origin;  /* the parent's origin */
    uint64_t forked_origin;    /* the fork's origin */
    uint64_t fork_seq;         /* the fork point: the parent's chain sequence at fork time */
    mrt_causal_link genesis;   /* the fork genesis link */
    bool has_snapshot;         /* the fork started from a snapshot of the parent */
    uint64_t snapshot_seq;     /* that snapshot's through_sequence (0 without one) */
} mrt_fork_record;

/*
 * A fresh random fork secret (getrandom(2)). The caller stores it: it is the
 * only way to re-create the fork's identity. MRT_ENOSYS when the kernel
 * gives no randomness, MRT_EINVAL for NULL.
 */
int mrt_fork_secret_new(uint8_t secret[MRT_FORK_SECRET_SIZE]);

/* The fork's origin: mrt_host_origin_from_key(secret), the secret being its host key. */
uint64_t mrt_fork_origin(const uint8_t secret[MRT_FORK_SECRET_SIZE]);

/* XXH3-64(parent_origin LE8 || fork_seq LE8 || "fork"): the fork genesis's parent hash. */
uint64_t mrt_fork_sentinel(uint64_t parent_origin, uint64_t fork_seq);

/*
 * The record of a fork of `parent_origin` at `fork_seq` whose identity is
 * `secret`; snapshot_seq non-NULL when the fork starts from a snapshot of
 * the parent (its through_sequence). MRT_DAEMON_ELINEAGE when the secret's
 * origin is the parent's (a fork must be another identity), MRT_EINVAL for
 * NULL pointers.
 */
int mrt_fork_record_make(const uint8_t secret[MRT_FORK_SECRET_SIZE], uint64_t parent_origin,
                         uint64_t fork_seq, const uint64_t *snapshot_seq, mrt_fork_record *out);

/*
 * MRT_OK when the record is self-consistent: genesis parent = sentinel(original,
 * fork_seq), genesis origin = forked origin, genesis sequence 0 and horizon
 * 0, original != forked, snapshot_seq 0 without a snapshot. Otherwise
 * MRT_DAEMON_ELINEAGE (MRT_EINVAL for NULL).
 */
int mrt_fork_record_verify(const mrt_fork_record *r);

/* Write the 65-byte wire form. */
void mrt_fork_record_encode(const mrt_fork_record *r, uint8_t out[MRT_FORK_RECORD_SIZE]);

/*
 * Read a record from exactly MRT_FORK_RECORD_SIZE bytes and verify it:
 * MRT_DAEMON_ETRUNCATED (shorter), MRT_DAEMON_EINCONSISTENT (longer, or a
 * flag byte other than 0 or 1), MRT_DAEMON_ELINEAGE (does not verify). On
 * error *out is untouched. MRT_EINVAL for NULL pointers.
 */
int mrt_fork_record_decode(const void *buf, size_t len, mrt_fork_record *out);

/*
 * A host configuration for the fork: key = secret, the chain resumed after
 * the fork genesis (cfg->resume points into *r, which must outlive the
 * create call). Other fields of *cfg are left as they are.
 * MRT_DAEMON_ELINEAGE when the secret is not the record's identity or the
 * record does not verify.
 */
int mrt_fork_host_config(const mrt_fork_record *r, const uint8_t secret[MRT_FORK_SECRET_SIZE],
                         mrt_host_config *cfg);

/*
 * A receiver's chain for the fork: positioned after the fork genesis, so the
 * fork's first output (sequence 1) is the next link accepted.
 * MRT_DAEMON_ELINEAGE when the record does not verify.
 */
int mrt_fork_chain_init(mrt_causal_chain *c, const mrt_fork_record *r);

/*
 * The lineage of a set of forks of one parent: every record verifies, names
 * `parent_origin` and `fork_seq`, and the forked origins are distinct; with
 * `secrets` non-NULL (one per record), record i's forked origin is
 * mrt_fork_origin(secrets[i]). MRT_DAEMON_ELINEAGE otherwise (MRT_EINVAL
 * for NULL records with n > 0). O(n^2) in the distinctness check: n is a
 * group size (at most 255).
 */
int mrt_fork_verify_lineage(uint64_t parent_origin, uint64_t fork_seq,
                            const mrt_fork_record *records, size_t n,
                            const uint8_t (*secrets)[MRT_FORK_SECRET_SIZE]);

/* ---------------------------------------------------------------------------
 * Replay buffer: the events an active delivered since its standbys' syncs
 *
 * Events are keyed by the active's ingress index (dense, appended in order).
 * Each standby's sync point is the ingress_next of the snapshot it was
 * restored from: it needs the events from there on. The buffer is bounded
 * by events and by payload bytes, all preallocated at create (a ring of
 * slots and a byte ring), so append allocates nothing. Events every tracked
 * standby already has are trimmed; when room is needed for a new event the
 * oldest is evicted even if a standby still needs it, and that standby is
 * marked stale: it needs a full re-sync (a new snapshot), never a larger
 * buffer. One dead standby cannot pin memory.
 * Owned by one thread; no locks, no clock.
 * ------------------------------------------------------------------------- */

typedef struct mrt_replay mrt_replay;

typedef struct mrt_replay_config {
    const mrt_allocator *alloc;  /* NULL: thread default */
    uint32_t max_events;         /* events held at most (1 .. 2^24) */
    uint32_t max_bytes;          /* payload bytes held at most (0: only empty payloads) */
    uint32_t max_standbys;       /* standby ids 0 .. max_standbys-1 (1 .. 255) */
    uint64_t first_index;        /* ingress index of the first event to be appended */
} mrt_replay_config;

typedef struct mrt_replay_stats {
    uint64_t appended;       /* events appended */
    uint64_t appended_bytes; /* their payload bytes */
    uint64_t trimmed;        /* dropped while no fresh standby needed them */
    uint64_t evicted;        /* dropped for room while a standby still needed them */
    uint64_t resyncs;        /* times a standby was marked stale (full re-sync needed) */
    uint64_t replayed;       /* events delivered by mrt_replay_apply */
    uint32_t events;         /* held now */
    uint32_t bytes;          /* payload bytes held now */
} mrt_replay_stats;

/* Create a buffer; everything is allocated here. MRT_EINVAL, MRT_ENOMEM. */
int mrt_replay_create(const mrt_replay_config *cfg, mrt_replay **out);
/* Free it (NULL is a no-op). */
void mrt_replay_destroy(mrt_replay *r);

/*
 * Buffer an event the active accepted with ingress index `index` (the
 * payload is copied; the link and timestamp kept). index must be the next
 * one (first_index, then +1): else MRT_DAEMON_EINGRESS, nothing changed.
 * Makes room by evicting the oldest events (standbys that needed them turn
 * stale). A payload larger than max_bytes cannot be buffered: the buffer
 * empties, every tracked standby turns stale, the index is consumed, and
 * MRT_DAEMON_EOVERSIZED is returned. No allocation.
 */
int mrt_replay_append(mrt_replay *r, const mrt_event *ev, uint64_t index);

/* The ingress index the next append must carry. */
uint64_t mrt_replay_next_index(const mrt_replay *r);

/*
 * Standby `id` now holds everything below `sync_next` (it was restored from
 * a snapshot whose ingress_next is sync_next): it is tracked, fresh, and
 * events every tracked standby holds are trimmed. MRT_DAEMON_ERESYNC (the
 * standby is tracked and stale) when events from sync_next on were already
 * dropped; MRT_DAEMON_EINGRESS when sync_next is past the next index;
 * MRT_EINVAL for a bad id.
 */
int mrt_replay_synced(mrt_replay *r, uint32_t id, uint64_t sync_next);

/* Stop tracking standby `id` (removed, or promoted to active). */
void mrt_replay_forget(mrt_replay *r, uint32_t id);

/*
 * Events standby `id` would replay into *count: MRT_OK, MRT_DAEMON_ERESYNC
 * when it is stale, MRT_ESTATE when it is not tracked, MRT_EINVAL for a
 * bad id.
 */
int mrt_replay_pending(const mrt_replay *r, uint32_t id, uint64_t *count);

/* Standby `id`'s sync point into *sync_next; MRT_ESTATE when not tracked. */
int mrt_replay_sync_point(const mrt_replay *r, uint32_t id, uint64_t *sync_next);

/*
 * The buffered event with ingress index `index` (payload pointing into the
 * buffer, valid until the next append or synced call). MRT_ESTATE when it
 * is not held.
 */
int mrt_replay_at(const mrt_replay *r, uint64_t index, mrt_event *ev);

/*
 * Promote-time replay: deliver to `h` (standby `id`'s host, restored at its
 * sync point) every buffered event from its sync point on, in ingress order,
 * with mrt_host_deliver_at and output suppression on (restored afterwards):
 * the chain advances over the same outputs the old active emitted, none is
 * emitted again. The standby's sync point advances with each event;
 * *replayed (may be NULL) receives the number delivered, also on error.
 * MRT_DAEMON_ERESYNC (stale), MRT_ESTATE (not tracked),
 * MRT_DAEMON_EINGRESS (h's ingress_next is not the sync point), or the
 * first delivery error (later events not delivered). No allocation.
 */
int mrt_replay_apply(mrt_replay *r, uint32_t id, mrt_host *h, uint64_t now, uint64_t *replayed);

/* Copy the counters. */
void mrt_replay_stats_get(const mrt_replay *r, mrt_replay_stats *out);

#ifdef __cplusplus
}
#endif
#endif
