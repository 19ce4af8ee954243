/*
 * Shared by the host suites (test_daemon_host.c, test_daemon_snapshot.c):
 * the echo daemon and the helpers that make hosts and events.
 */
#ifndef MESHRT_TESTS_TEST_DAEMON_HOST_H
#define MESHRT_TESTS_TEST_DAEMON_HOST_H

#include "meshrt/mrt_daemon.h"
#include "tests/check_main.h"

#include <check.h>
#include <string.h>

/* --- test daemons -------------------------------------------------------- */

/*
 * echo: emits payload[0] outputs, each a copy of the event's payload.
 * With fail_rc set, it emits them and then returns fail_rc.
 */
struct echo {
    unsigned calls;
    int fail_rc;
    mrt_daemon_control last_kind;
    uint32_t last_level;
    unsigned controls;
    int control_rc;
    mrt_daemon_health health;
    double saturation;
};

static inline int echo_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    struct echo *e = st;
    e->calls++;
    unsigned n = ev->payload_len ? ((const uint8_t *)ev->payload)[0] : 0;
    for (unsigned i = 0; i < n; i++) {
        int rc = mrt_daemon_emit_copy(sink, ev->payload, ev->payload_len);
        if (rc != MRT_OK)
            return rc;
    }
    return e->fail_rc;
}

static inline int echo_control(void *st, mrt_daemon_control kind, uint32_t level)
{
    struct echo *e = st;
    e->last_kind = kind;
    e->last_level = level;
    e->controls++;
    return e->control_rc;
}

static inline mrt_daemon_health echo_health(const void *st)
{
    return ((const struct echo *)st)->health;
}

static inline double echo_saturation(const void *st)
{
    return ((const struct echo *)st)->saturation;
}

static const mrt_daemon_vtable echo_vt = {
    .name = "echo",
    .process = echo_process,
    .on_control = echo_control,
    .health = echo_health,
    .saturation = echo_saturation,
};

static const mrt_daemon_vtable bare_vt = { .name = "bare", .process = echo_process };

/* --- helpers ------------------------------------------------------------- */

static inline mrt_host_config config(uint8_t key_byte)
{
    mrt_host_config c;
    memset(&c, 0, sizeof c);
    memset(c.key, key_byte, sizeof c.key);
    return c;
}

static inline mrt_host *make_host(const mrt_host_config *cfg, const mrt_daemon_vtable *vt, void *state)
{
    mrt_host *h = NULL;
    mrt_daemon d = { vt, state };
    ck_assert_int_eq(mrt_host_create(cfg, d, &h), MRT_OK);
    ck_assert_ptr_nonnull(h);
    return h;
}

static inline mrt_event event(uint64_t origin, uint64_t seq, const void *payload, size_t len)
{
    mrt_event ev;
    memset(&ev, 0, sizeof ev);
    ev.link.origin_hash = origin;
    ev.link.sequence = seq;
    ev.payload = payload;
    ev.payload_len = len;
    return ev;
}

static inline mrt_host_stats stats(const mrt_host *h)
{
    mrt_host_stats s;
    mrt_host_stats_get(h, &s);
    return s;
}

#endif
