/* SPDX-License-Identifier: Apache-2.0 */
/* netd's link reaper thread: what it is given to close gets closed. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/json-util.h"
#include "netd/core/netd-priv.h"

/* reaper_queue_close: the thread closes what it is given (the peer of a pipe sees EOF), flush waits
 * for it, idle afterwards; a bad fd is refused. */
static void test_reaper_close(void **state) {
        (void) state;
        Reaper *r = NULL;
        assert_int_equal(reaper_new(&r), 0);
        int p[2];
        assert_int_equal(pipe(p), 0);
        assert_int_equal(reaper_queue_close(r, p[1]), 0);
        reaper_flush(r);
        assert_true(reaper_idle(r));
        char c;
        assert_int_equal(read(p[0], &c, 1), 0); /* EOF: the write end is closed */
        close(p[0]);
        assert_int_equal(reaper_queue_close(r, -1), -EBADF);
        /* queued but never flushed: reaper_free closes it */
        assert_int_equal(pipe(p), 0);
        assert_int_equal(reaper_queue_close(r, p[1]), 0);
        r = reaper_free(r);
        assert_null(r);
        assert_int_equal(read(p[0], &c, 1), 0);
        close(p[0]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reaper_close),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
