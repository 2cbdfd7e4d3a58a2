/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "tests/unit/helpers.h"

static char group_skip_reason[512] = "group setup failed";

void test_skip_reason(const char *test, const char *fmt, ...) {
        char why[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        /* stdout, as cmocka's "[  SKIPPED ]" line, flushed so the two stay in order in a log. */
        fflush(stdout);
        printf("SKIP: %s: %s\n", test, why);
        fflush(stdout);
}

void test_group_skip(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(group_skip_reason, sizeof group_skip_reason, fmt, ap);
        va_end(ap);
}

const char *test_group_skip_reason(void) {
        return group_skip_reason;
}
