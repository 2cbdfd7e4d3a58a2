/* SPDX-License-Identifier: Apache-2.0 */
/* The controllers' passes (controller/reconciler.c): on the loop, or each on a thread of its own (cluster mode),
 * where the loop goes on during a pass — its timers fire (the leader lease's renewals) — the pass's own writes ask
 * for one more pass, after_pass runs on the loop once the pass has ended, and freeing the reconciler waits for a
 * running pass. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/ctl-fixture.h"

#include "common/event.h"
#include "common/json-util.h"
#include "controller/reconciler.h"

typedef struct Fx {
        char dir[64]; /* CtlFxHead */
        CtlStore *s;
        EventLoop *loop;
        CtlReconciler *rec;
        atomic_int passes;     /* passes run (on whichever thread) */
        atomic_bool in_fn;     /* a pass's function is running now */
        unsigned ticks_in_pass; /* loop timer expiries seen while a pass's function ran */
        unsigned after;         /* after_pass calls */
        unsigned sleep_ms;      /* how long each pass's function takes */
        int create_r;           /* the first pass's write */
        EventSource *tick, *stop;
} Fx;

static Fx *the_fx; /* the reconcile functions take the store only */

static int setup(void **state) {
        Fx *fx = ctl_fx_new(sizeof *fx);
        assert_int_equal(event_loop_new(&fx->loop), 0);
        the_fx = fx;
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        Fx *fx = *state;
        ctl_reconciler_free(fx->rec);
        if (fx->tick)
                event_source_free(fx->tick);
        if (fx->stop)
                event_source_free(fx->stop);
        ctl_store_free(fx->s);
        event_loop_free(fx->loop);
        fx->s = NULL;
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
        IGNORE_RESULT(system(cmd));
        free(fx);
        return 0;
}

/* The first pass writes one object (its own write asks for a second pass, which finds it there and writes
 * nothing); every pass takes sleep_ms. */
static int slow_pass(CtlStore *s) {
        Fx *fx = the_fx;
        atomic_store(&fx->in_fn, true);
        atomic_fetch_add(&fx->passes, 1);
        usleep(fx->sleep_ms * 1000);
        int changed = 0;
        const CtlResource *vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
        _cleanup_json_ json_t *have = ctl_store_ref(s, vm, "ns", "a");
        if (!have) {
                _cleanup_json_ json_t *obj = ctl_fx_parse(
                        "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"a\"},"
                        "\"spec\":{\"running\":false,\"template\":{\"spec\":{\"domain\":{\"devices\":{},"
                        "\"memory\":{\"guest\":\"64Mi\"}}}}}}");
                _cleanup_json_ json_t *out = NULL;
                KvErr e = {};
                /* no cmocka assertion off the test's thread: checked there */
                fx->create_r = obj ? ctl_store_create(s, vm, "ns", obj, &out, &e) : -ENOMEM;
                changed = 1;
        }
        atomic_store(&fx->in_fn, false);
        return changed;
}

static int on_tick(EventSource *src, void *userdata) {
        Fx *fx = userdata;
        (void) src;
        if (atomic_load(&fx->in_fn))
                fx->ticks_in_pass++;
        return 0;
}

static int on_stop(EventSource *src, void *userdata) {
        Fx *fx = userdata;
        (void) src;
        event_loop_exit(fx->loop, 0);
        return 0;
}

static void after_pass(void *userdata) {
        Fx *fx = userdata;
        assert_false(ctl_reconciler_in_pass(fx->rec)); /* on the loop, the pass over */
        fx->after++;
}

static void run(Fx *fx, bool threaded, unsigned run_ms) {
        static const ctl_reconcile_fn fns[] = { slow_pass };
        fx->sleep_ms = 150;
        assert_int_equal(ctl_reconciler_new_threaded(fx->loop, fx->s, fns, 1, after_pass, fx, threaded, &fx->rec), 0);
        assert_int_equal(event_add_timer(fx->loop, 10 * 1000, 10 * 1000, on_tick, fx, &fx->tick), 0);
        assert_int_equal(event_add_timer(fx->loop, run_ms * 1000ULL, 0, on_stop, fx, &fx->stop), 0);
        assert_int_equal(event_loop_run(fx->loop), 0);
}

static void test_threaded(void **state) {
        Fx *fx = *state;
        run(fx, true, 1200);
        /* the first pass (the object written), the second (nothing to write), then quiet */
        assert_int_equal(atomic_load(&fx->passes), 2);
        assert_int_equal(fx->after, 2);
        /* the loop's 10 ms timer went on firing during the two 150 ms passes */
        assert_true(fx->ticks_in_pass >= 10);
        assert_int_equal(fx->create_r, 0);
        assert_int_equal(ctl_store_count(fx->s), 1);
}

static void test_on_loop(void **state) {
        Fx *fx = *state;
        run(fx, false, 1200);
        assert_int_equal(atomic_load(&fx->passes), 2);
        assert_int_equal(fx->after, 2);
        /* on the loop, nothing else runs during a pass */
        assert_int_equal(fx->ticks_in_pass, 0);
}

static int on_free_mid_pass(EventSource *src, void *userdata) {
        Fx *fx = userdata;
        (void) src;
        assert_true(ctl_reconciler_in_pass(fx->rec));
        assert_true(atomic_load(&fx->in_fn));
        fx->rec = ctl_reconciler_free(fx->rec); /* waits for the pass's thread */
        assert_false(atomic_load(&fx->in_fn));
        event_loop_exit(fx->loop, 0);
        return 0;
}

static void test_free_during_pass(void **state) {
        Fx *fx = *state;
        static const ctl_reconcile_fn fns[] = { slow_pass };
        fx->sleep_ms = 300;
        assert_int_equal(ctl_reconciler_new_threaded(fx->loop, fx->s, fns, 1, after_pass, fx, true, &fx->rec), 0);
        assert_int_equal(event_add_timer(fx->loop, 100 * 1000, 0, on_free_mid_pass, fx, &fx->stop), 0);
        assert_int_equal(event_loop_run(fx->loop), 0);
        assert_null(fx->rec);
        assert_int_equal(atomic_load(&fx->passes), 1);
        assert_int_equal(fx->after, 0); /* freed: its after_pass is not called */
        assert_int_equal(ctl_store_count(fx->s), 1); /* the pass finished its write */
}

static void test_bad_args(void **state) {
        Fx *fx = *state;
        CtlReconciler *r = NULL;
        assert_int_equal(ctl_reconciler_new_threaded(fx->loop, fx->s, NULL, 0, NULL, NULL, true, &r), -EINVAL);
        assert_false(ctl_reconciler_in_pass(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_threaded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_on_loop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_during_pass, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
