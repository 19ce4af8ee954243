/*
 * Fuzz target: the frame decoder (mrt_frame_decode) and chain validation
 * (mrt_causal_chain_accept) on what it decodes.
 *
 * The input is read as a stream of frames. Invariants checked:
 *  - a decoded frame lies inside the input and re-encodes to the same bytes;
 *  - the same bytes decode as a single frame in exact mode;
 *  - any prefix shorter than the frame is MRT_DAEMON_ETRUNCATED;
 *  - a chain that refuses a link is left unchanged, one that accepts it
 *    advances to that link.
 */
#include "fuzz/fuzz_target.h"
#include "meshrt/mrt_daemon.h"

#include <stdlib.h>
#include <string.h>

#define MAX_FRAME (1u << 16)

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[MAX_FRAME];
    size_t pos = 0;
    mrt_causal_chain chain;
    bool have_chain = false;
    while (pos < size) {
        mrt_frame f;
        size_t used = 0;
        int rc = mrt_frame_decode(data + pos, size - pos, MAX_FRAME, &f, &used);
        if (rc != MRT_OK) {
            check(rc == MRT_DAEMON_ETRUNCATED || rc == MRT_DAEMON_EOVERSIZED ||
                  rc == MRT_DAEMON_EINCONSISTENT);
            break;
        }
        check(used >= MRT_FRAME_HEADER_SIZE && used <= size - pos && used <= MAX_FRAME);
        check(f.payload == data + pos + MRT_FRAME_HEADER_SIZE);
        check(f.payload_len == used - MRT_FRAME_HEADER_SIZE);

        size_t w = 0;
        /* Unlike the input in every byte: a byte the encoder leaves unwritten cannot match. */
        for (size_t i = 0; i < used; i++)
            out[i] = (uint8_t)~data[pos + i];
        check(mrt_frame_encode(&f.link, f.payload, f.payload_len, out, sizeof out, &w) == MRT_OK);
        check(w == used && memcmp(out, data + pos, used) == 0);

        mrt_frame g;
        check(mrt_frame_decode(data + pos, used, MAX_FRAME, &g, NULL) == MRT_OK);
        check(memcmp(&g.link, &f.link, sizeof g.link) == 0);
        check(mrt_frame_decode(data + pos, used - 1, MAX_FRAME, &g, NULL) ==
              MRT_DAEMON_ETRUNCATED);

        if (!have_chain) {
            mrt_causal_chain_init(&chain, f.link.origin_hash);
            have_chain = true;
        }
        mrt_causal_chain before = chain;
        rc = mrt_causal_chain_accept(&chain, &f.link, f.payload, f.payload_len);
        if (rc == MRT_OK) {
            check(chain.has_head && memcmp(&chain.head, &f.link, sizeof f.link) == 0);
            check(chain.next_parent == mrt_causal_parent_hash(&f.link, f.payload, f.payload_len));
        } else {
            check(rc == MRT_DAEMON_EORIGIN || rc == MRT_DAEMON_ESEQGAP ||
                  rc == MRT_DAEMON_EPARENT || rc == MRT_DAEMON_ESEQOVERFLOW);
            check(memcmp(&before, &chain, sizeof chain) == 0);
        }
        pos += used;
    }
    return 0;
}
