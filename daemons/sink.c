/* The output sink: preallocated output slots and payload region. */
#include "daemons/daemon_internal.h"

int mrt_daemon_sink_init(mrt_daemon_sink *s, const mrt_allocator *alloc, uint32_t max_outputs,
                         size_t payload_bytes)
{
    if (s == NULL || max_outputs == 0 || max_outputs > (1u << 24) ||
        payload_bytes > (size_t)UINT32_MAX)
        return MRT_EINVAL;
    memset(s, 0, sizeof *s);
    s->alloc = mrt_allocator_or_default(alloc);
    s->outputs = mrt_calloc(&s->alloc, (size_t)max_outputs * sizeof *s->outputs);
    s->spill_flags = mrt_calloc(&s->alloc, max_outputs);
    if (payload_bytes > 0)
        s->region = mrt_alloc_aligned(&s->alloc, payload_bytes, 64);
    if (s->outputs == NULL || s->spill_flags == NULL || (payload_bytes > 0 && s->region == NULL)) {
        mrt_daemon_sink_destroy(s);
        return MRT_ENOMEM;
    }
    s->region_size = payload_bytes;
    s->max_outputs = max_outputs;
    return MRT_OK;
}

void mrt_daemon_sink_destroy(mrt_daemon_sink *s)
{
    if (s == NULL)
        return;
    if (s->outputs != NULL && s->spill_flags != NULL)
        mrt_daemon_sink_reset(s);
    mrt_free(&s->alloc, s->outputs, (size_t)s->max_outputs * sizeof *s->outputs);
    mrt_free(&s->alloc, s->spill_flags, s->max_outputs);
    if (s->region != NULL)
        mrt_free_aligned(&s->alloc, s->region, s->region_size, 64);
    s->outputs = NULL;
    s->spill_flags = NULL;
    s->region = NULL;
    s->region_size = 0;
    s->max_outputs = 0;
}

void mrt_daemon_sink_reset(mrt_daemon_sink *s)
{
    if (s->spilled > 0) {
        for (uint32_t i = 0; i < s->count; i++) {
            if (s->spill_flags[i]) {
                const uint8_t *payload = s->outputs[i].payload;
                mrt_free(&s->alloc, (void *)(payload - MRT_SINK_SLOT_HEADER),
                         MRT_SINK_SLOT_HEADER + s->outputs[i].payload_len);
                s->spill_flags[i] = 0;
            }
        }
        s->spilled = 0;
    }
    s->count = 0;
    s->region_used = 0;
}

uint32_t mrt_daemon_sink_count(const mrt_daemon_sink *s)
{
    return s->count;
}

const mrt_event *mrt_daemon_sink_outputs(const mrt_daemon_sink *s)
{
    return s->outputs;
}

int mrt_daemon_emit_slow(mrt_daemon_sink *s, size_t len, void **buf)
{
    if (s == NULL || buf == NULL)
        return MRT_EINVAL;
    if (s->count >= s->max_outputs)
        return MRT_DAEMON_ESINKFULL;
    if (len > (size_t)MRT_FRAME_MAX_SIZE - MRT_FRAME_HEADER_SIZE)
        return MRT_DAEMON_EOVERSIZED;
    /* Each output is laid out as its wire frame: room for the header, then the payload. */
    uint8_t *base;
    size_t need = MRT_SINK_SLOT_HEADER + len;
    size_t off = MRT_SINK_SLOT_OFFSET(s->region_used);
    if (s->region != NULL && off <= s->region_size && need <= s->region_size - off) {
        base = s->region + off;
        s->region_used = off + need;
    } else {
        /* Does not fit what is left: its own buffer from the same allocator. */
        base = mrt_alloc(&s->alloc, need);
        if (base == NULL)
            return MRT_ENOMEM;
        s->spill_flags[s->count] = 1;
        s->spilled++;
    }
    /* link and timestamp are the host's to fill when it stamps the output. */
    mrt_event *ev = &s->outputs[s->count++];
    ev->payload = base + MRT_SINK_SLOT_HEADER;
    ev->payload_len = len;
    *buf = base + MRT_SINK_SLOT_HEADER;
    return MRT_OK;
}

int mrt_daemon_emit_copy(mrt_daemon_sink *s, const void *data, size_t len)
{
    if (data == NULL && len > 0)
        return MRT_EINVAL;
    void *p;
    int rc = mrt_daemon_emit(s, len, &p);
    if (rc == MRT_OK && len > 0)
        memcpy(p, data, len);
    return rc;
}
