/* The built-in workload's reorder window (see wl_window.h). */
#include "runtime/wl_window.h"

#include "meshrt/mrt_core.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WL_WINDOW_INIT 4096u
#define WL_WINDOW_MAX (1u << 24)

int wl_window_init(wl_window *win, size_t slot_size)
{
    memset(win, 0, sizeof *win);
    win->cap = WL_WINDOW_INIT;
    win->slot_size = slot_size;
    win->seen = calloc(win->cap, 1);
    win->data = slot_size ? malloc(win->cap * slot_size) : NULL;
    return win->seen && (slot_size == 0 || win->data) ? MRT_OK : MRT_ENOMEM;
}

void wl_window_fini(wl_window *win)
{
    free(win->seen);
    free(win->data);
    memset(win, 0, sizeof *win);
}

static bool grow(wl_window *win)
{
    uint64_t cap = win->cap * 2;
    if (cap > WL_WINDOW_MAX)
        return false;
    uint8_t *seen = calloc(cap, 1);
    uint8_t *data = win->slot_size ? malloc(cap * win->slot_size) : NULL;
    if (seen == NULL || (win->slot_size && data == NULL)) {
        free(seen);
        free(data);
        return false;
    }
    for (uint64_t s = win->base; s < win->base + win->cap; s++) {
        uint64_t o = s & (win->cap - 1), k = s & (cap - 1);
        if (!win->seen[o])
            continue;
        seen[k] = 1;
        if (win->slot_size)
            memcpy(data + k * win->slot_size, win->data + o * win->slot_size, win->slot_size);
    }
    free(win->seen);
    free(win->data);
    win->seen = seen;
    win->data = data;
    win->cap = cap;
    return true;
}

int wl_window_put(wl_window *win, uint64_t s, const void *data)
{
    if (s < win->base)
        return WIN_DUP;
    while (s - win->base >= win->cap)
        if (!grow(win))
            return WIN_FAR;
    uint64_t k = s & (win->cap - 1);
    if (win->seen[k])
        return WIN_DUP;
    win->seen[k] = 1;
    if (win->slot_size)
        memcpy(win->data + k * win->slot_size, data, win->slot_size);
    return WIN_OK;
}

const uint8_t *wl_window_peek(const wl_window *win)
{
    uint64_t k = win->base & (win->cap - 1);
    if (!win->seen[k])
        return NULL;
    return win->slot_size ? win->data + k * win->slot_size : win->seen + k;
}

void wl_window_next(wl_window *win)
{
    win->seen[win->base & (win->cap - 1)] = 0;
    win->base++;
}
