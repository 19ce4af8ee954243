/* Causal links, chains and wire framing. */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t is complete, so it can live on the stack */
#include "daemons/daemon_internal.h"

#include <xxhash.h>

void mrt_causal_link_encode(const mrt_causal_link *l, uint8_t out[MRT_CAUSAL_LINK_SIZE])
{
    mrt_dm_store_le64(out, l->origin_hash);
    mrt_dm_store_le64(out + 8, l->horizon_encoded);
    mrt_dm_store_le64(out + 16, l->sequence);
    mrt_dm_store_le64(out + 24, l->parent_hash);
}

void mrt_causal_link_decode(const uint8_t in[MRT_CAUSAL_LINK_SIZE], mrt_causal_link *out)
{
    out->origin_hash = mrt_dm_load_le64(in);
    out->horizon_encoded = mrt_dm_load_le64(in + 8);
    out->sequence = mrt_dm_load_le64(in + 16);
    out->parent_hash = mrt_dm_load_le64(in + 24);
}

/*
 * Up to this payload length the link and payload are copied to the stack
 * and hashed in one XXH3_64bits pass; above it, the streaming API. The
 * streaming state's reset and digest cost more than the copy for small
 * inputs; for large ones the copy costs more than they do (meshrt-bench
 * daemons measures both against allocate-concatenate-hash, 0..4096 B).
 */
#ifndef MRT_PARENT_ONESHOT_MAX
#define MRT_PARENT_ONESHOT_MAX 2048
#endif

uint64_t mrt_causal_parent_hash(const mrt_causal_link *prev, const void *payload, size_t len)
{
    if (len <= MRT_PARENT_ONESHOT_MAX) {
        uint8_t buf[MRT_CAUSAL_LINK_SIZE + MRT_PARENT_ONESHOT_MAX];
        mrt_causal_link_encode(prev, buf);
        if (len > 0)
            memcpy(buf + MRT_CAUSAL_LINK_SIZE, payload, len);
        return XXH3_64bits(buf, MRT_CAUSAL_LINK_SIZE + len);
    }
    uint8_t link[MRT_CAUSAL_LINK_SIZE];
    XXH3_state_t st; /* on the stack: XXH3_createState would allocate */
    mrt_causal_link_encode(prev, link);
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, link, sizeof link);
    XXH3_64bits_update(&st, payload, len);
    return XXH3_64bits_digest(&st);
}

void mrt_causal_chain_init(mrt_causal_chain *c, uint64_t origin)
{
    memset(c, 0, sizeof *c);
    c->origin_hash = origin;
}

int mrt_causal_chain_resume(mrt_causal_chain *c, uint64_t origin, const mrt_causal_link *head,
                            uint64_t next_parent)
{
    if (c == NULL || head == NULL)
        return MRT_EINVAL;
    if (head->origin_hash != origin)
        return MRT_DAEMON_EORIGIN;
    c->origin_hash = origin;
    c->head = *head;
    c->next_parent = next_parent;
    c->has_head = true;
    return MRT_OK;
}

/* Stamp the next link and advance; the caller has ruled out sequence overflow. */
static void chain_step(mrt_causal_chain *c, uint64_t horizon, const void *payload, size_t len,
                       mrt_causal_link *out)
{
    mrt_causal_link l = mrt_dm_next_link(c, horizon);
    c->next_parent = mrt_causal_parent_hash(&l, payload, len);
    c->head = l;
    c->has_head = true;
    *out = l;
}

int mrt_causal_chain_append(mrt_causal_chain *c, uint64_t horizon, const void *payload,
                            size_t len, mrt_causal_link *out)
{
    if (c == NULL || out == NULL || (payload == NULL && len > 0))
        return MRT_EINVAL;
    if (c->has_head && c->head.sequence == UINT64_MAX)
        return MRT_DAEMON_ESEQOVERFLOW;
    chain_step(c, horizon, payload, len, out);
    return MRT_OK;
}

int mrt_causal_chain_accept(mrt_causal_chain *c, const mrt_causal_link *link,
                            const void *payload, size_t len)
{
    if (c == NULL || link == NULL || (payload == NULL && len > 0))
        return MRT_EINVAL;
    if (link->origin_hash != c->origin_hash)
        return MRT_DAEMON_EORIGIN;
    uint64_t expected = 0;
    if (c->has_head) {
        if (c->head.sequence == UINT64_MAX)
            return MRT_DAEMON_ESEQOVERFLOW;
        expected = c->head.sequence + 1;
    }
    if (link->sequence != expected)
        return MRT_DAEMON_ESEQGAP;
    if (link->parent_hash != c->next_parent)
        return MRT_DAEMON_EPARENT;
    c->next_parent = mrt_causal_parent_hash(link, payload, len);
    c->head = *link;
    c->has_head = true;
    return MRT_OK;
}

size_t mrt_frame_size(size_t payload_len)
{
    if (payload_len > (size_t)MRT_FRAME_MAX_SIZE - MRT_FRAME_HEADER_SIZE)
        return 0;
    return MRT_FRAME_HEADER_SIZE + payload_len;
}

int mrt_frame_encode(const mrt_causal_link *link, const void *payload, size_t len, void *out,
                     size_t cap, size_t *written)
{
    if (link == NULL || written == NULL || (payload == NULL && len > 0))
        return MRT_EINVAL;
    size_t total = mrt_frame_size(len);
    if (total == 0)
        return MRT_DAEMON_EOVERSIZED;
    *written = total;
    if (out == NULL || cap < total)
        return MRT_DAEMON_ENOSPACE;
    uint8_t *p = out;
    mrt_dm_store_le32(p, (uint32_t)total);
    mrt_causal_link_encode(link, p + 4);
    if (len > 0)
        memcpy(p + MRT_FRAME_HEADER_SIZE, payload, len);
    return MRT_OK;
}

int mrt_frame_decode(const void *buf, size_t len, uint32_t max_frame, mrt_frame *out,
                     size_t *consumed)
{
    if ((buf == NULL && len > 0) || out == NULL || max_frame < MRT_FRAME_HEADER_SIZE)
        return MRT_EINVAL;
    const uint8_t *p = buf;
    if (len < 4)
        return MRT_DAEMON_ETRUNCATED;
    uint32_t total = mrt_dm_load_le32(p);
    if (total < MRT_FRAME_HEADER_SIZE)
        return MRT_DAEMON_EINCONSISTENT;
    if (total > max_frame)
        return MRT_DAEMON_EOVERSIZED;
    if (len < total)
        return MRT_DAEMON_ETRUNCATED;
    if (consumed == NULL && len != total)
        return MRT_DAEMON_EINCONSISTENT;
    mrt_causal_link_decode(p + 4, &out->link);
    out->payload = p + MRT_FRAME_HEADER_SIZE;
    out->payload_len = total - MRT_FRAME_HEADER_SIZE;
    if (consumed != NULL)
        *consumed = total;
    return MRT_OK;
}
