/*
 * The built-in workload's reorder window (workload.c's polling thread):
 * a sequence-numbered stream that arrives out of order, put back in order,
 * with duplicates and runaways told apart. Plain malloc: the polling
 * thread is the application's, not a shard.
 */
#ifndef MESHRT_RUNTIME_WL_WINDOW_H
#define MESHRT_RUNTIME_WL_WINDOW_H

#include <stddef.h>
#include <stdint.h>

/*
 * Sequence numbers that arrive out of order, put back in order: every
 * sequence below `base` was seen; slot s & (cap - 1) holds sequence s of
 * [base, base + cap) when seen[] says so (with slot_size bytes of data).
 * The window doubles when a sequence lands beyond it, up to WL_WINDOW_MAX.
 */
typedef struct wl_window {
    uint64_t base;
    uint64_t cap;
    uint8_t *seen;
    uint8_t *data;
    size_t slot_size;
} wl_window;

enum { WIN_OK = 0, WIN_DUP = 1, WIN_FAR = 2 };

/* An empty window from sequence 0, slot_size bytes of data per sequence (0: none). MRT_OK or MRT_ENOMEM. */
int wl_window_init(wl_window *win, size_t slot_size);
void wl_window_fini(wl_window *win);
/* Record sequence s (with its data); WIN_DUP when it was seen, WIN_FAR beyond any window. */
int wl_window_put(wl_window *win, uint64_t s, const void *data);
/* The next in-order entry's data (NULL when base has not arrived yet); wl_window_next consumes it. */
const uint8_t *wl_window_peek(const wl_window *win);
void wl_window_next(wl_window *win);

#endif
