/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fileio.h"
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

const char *test_datadir(void) {
        const char *d = getenv("KVNET_TESTDATA");
        return d ? d : "tests/data";
}

/* Prints `diff -u` of the golden file against got (written to a temporary file) on stderr. */
static void print_diff(const char *path, const char *got) {
        char tmp[] = "/tmp/kvnet-golden-XXXXXX";
        int fd = mkstemp(tmp);
        if (fd < 0)
                return;
        FILE *f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                unlink(tmp);
                return;
        }
        fputs(got, f);
        fclose(f);
        _cleanup_free_ char *cmd = NULL;
        if (asprintf(&cmd, "diff -u --label '%s (golden)' --label got '%s' '%s' >&2", path, path, tmp) >= 0) {
                fflush(stderr);
                (void) !system(cmd);
        }
        unlink(tmp);
}

void test_assert_golden(const char *file, int line, const char *got, const char *path_fmt, ...) {
        char rel[512], path[1024];
        va_list ap;
        va_start(ap, path_fmt);
        vsnprintf(rel, sizeof rel, path_fmt, ap);
        va_end(ap);
        snprintf(path, sizeof path, "%s/%s", test_datadir(), rel);
        if (getenv("KVNET_UPDATE_GOLDEN") || getenv("UPDATE_GOLDEN")) {
                assert_int_equal(write_file_atomic(path, got, strlen(got), false), 0);
                return;
        }
        _cleanup_free_ char *want = NULL;
        size_t len;
        int r = read_file_max(path, 1 << 20, &want, &len);
        if (r < 0) {
                print_error("ERROR: cannot read %s: %s (run from the repository root or set KVNET_TESTDATA)\n", path,
                            strerror(-r));
                _fail(file, line);
        }
        if (!streq(want, got)) {
                print_diff(path, got);
                print_error("ERROR: %s differs (KVNET_UPDATE_GOLDEN=1 to regenerate)\n", path);
                _fail(file, line);
        }
}

json_t *test_json(const char *text) {
        json_error_t err;
        json_t *o = json_loads(text, 0, &err);
        assert_non_null(o);
        return o;
}

KvAddr A(const char *s) {
        KvAddr a;
        assert_int_equal(kv_addr_parse(s, &a), 0);
        return a;
}

KvPrefix P(const char *s) {
        KvPrefix p;
        assert_int_equal(kv_prefix_parse(s, &p), 0);
        return p;
}

int test_netns_private(void) {
        if (unshare(CLONE_NEWNET) < 0) {
                int r = -errno;
                test_group_skip("unshare(CLONE_NEWNET): %s", strerror(-r));
                return r;
        }
        return 0;
}
