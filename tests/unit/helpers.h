/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the cmocka unit tests (tests/unit/helpers.c, built into $(BUILD)/lib/libkvtest.a):
 * skips that say why, golden files, address literals, a private network namespace. Temporary
 * directories: tests/unit/tmpdir.h. Include after <cmocka.h>. */
#pragma once

#include <stdarg.h>

#include <jansson.h>

#include "common/addr.h"
#include "common/util.h"

/* ---- skips */

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

/* ---- golden files */

/* The test data directory: $KVNET_TESTDATA, else tests/data (tests run from the repository root). */
const char *test_datadir(void);

/* Compares got to the golden file <datadir>/<path, printf-style>; on a difference prints a unified
 * diff (want -> got) and fails. With KVNET_UPDATE_GOLDEN (or UPDATE_GOLDEN) set in the environment it
 * rewrites the file from got instead. */
#define assert_golden(got, ...) test_assert_golden(__FILE__, __LINE__, got, __VA_ARGS__)
void test_assert_golden(const char *file, int line, const char *got, const char *path_fmt, ...) _printf_(4, 5);

/* ---- JSON */

/* A JSON object or array from the text of a test; fails the test if it does not parse. The caller
 * owns the reference. */
json_t *test_json(const char *text);

/* ---- addresses */

/* An address / prefix literal of a test ("10.88.0.2", "fd88::1/64"); fails the test if it does not
 * parse. */
KvAddr A(const char *s);
KvPrefix P(const char *s);

/* ---- network namespaces */

/* Moves the calling thread into a new, private network namespace (unshare(CLONE_NEWNET)): a kernel test
 * never touches the host's network. Returns 0, or -errno after test_group_skip() recorded why (no
 * CAP_SYS_ADMIN, no namespaces). */
int test_netns_private(void);
