/* The output sink: preallocated output slots and payload region. */
#include "daemons/daemon_internal.h"

int mrt_daemon_sink_init(mrt_daemon_sink *s, const mrt_allocator *alloc, uint32_t max_outputs,
                         size_t payload_bytes)
{
    if (s == NULL || max_outputs == 0 || max_outputs > (1u << 24))
        return MRT_EINVAL;
    memset(s, 0, sizeof *s);
    s->alloc = alloc ? *alloc : mrt_allocator_for_arena(MRT_ARENA_DEFAULT);
    s->outputs = mrt_calloc(&s->alloc, (size_t)max_outputs * sizeof *s->outputs);
    s->spill_flags = mrt_calloc(&s->alloc, max_outputs);
    if (payload_bytes > 0)
        s->region = mrt_alloc(&s->alloc, payload_bytes);
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
    mrt_free(&s->alloc, s->region, s->region_size);
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
                size_t n = s->outputs[i].payload_len;
                mrt_free(&s->alloc, (void *)s->outputs[i].payload, n ? n : 1);
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

int mrt_daemon_emit(mrt_daemon_sink *s, size_t len, void **buf)
{
    if (s == NULL || buf == NULL)
        return MRT_EINVAL;
    if (s->count >= s->max_outputs)
        return MRT_DAEMON_ESINKFULL;
    if (mrt_frame_size(len) == 0)
        return MRT_DAEMON_EOVERSIZED;
    uint8_t *p;
    size_t off = (s->region_used + 7u) & ~(size_t)7u;
    if (s->region != NULL && off <= s->region_size && len <= s->region_size - off) {
        p = s->region + off;
        s->region_used = off + len;
    } else {
        /* Does not fit what is left: its own buffer from the same allocator. */
        p = mrt_alloc(&s->alloc, len ? len : 1);
        if (p == NULL)
            return MRT_ENOMEM;
        s->spill_flags[s->count] = 1;
        s->spilled++;
        s->spill_total++;
    }
    mrt_event *ev = &s->outputs[s->count++];
    memset(&ev->link, 0, sizeof ev->link);
    ev->payload = p;
    ev->payload_len = len;
    ev->timestamp = 0;
    *buf = p;
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
