/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the cmocka unit tests (built into $(BUILD)/lib/libkvtest.a). Include after
 * <cmocka.h>. */
#pragma once

#include <stdarg.h>

#include "common/util.h"

/* Skips the running test and says why, in a line tests/run.sh shows:
 *     SKIP: test_kernel: unshare(CLONE_NEWNET): Operation not permitted
 * cmocka's skip() alone gives no reason. */
#define skip_because(...)                                        \
        do {                                                     \
                test_skip_reason(__func__, __VA_ARGS__);         \
                skip();                                          \
        } while (0)

void test_skip_reason(const char *test, const char *fmt, ...) _printf_(2, 3);

/* For a group whose setup cannot provide what its tests need (no network namespace, no nft): the
 * setup records why with test_group_skip() and returns 0; each test then calls skip_group(). */
void test_group_skip(const char *fmt, ...) _printf_(1, 2);
const char *test_group_skip_reason(void);
#define skip_group() skip_because("%s", test_group_skip_reason())
