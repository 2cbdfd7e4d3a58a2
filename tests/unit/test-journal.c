/* SPDX-License-Identifier: Apache-2.0 */
/* netd's record journal (netd/state/journal.c): replay, rewrite when full, torn and damaged lines, foreign files. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "common/fileio.h"
#include "common/json-util.h"
#include "netd/state/journal.h"

typedef struct Fx {
        char dir[64];
        char path[128];
} Fx;

static int setup(void **state) {
        Fx *fx = calloc(1, sizeof *fx);
        assert_non_null(fx);
        strcpy(fx->dir, "/tmp/kvnet-journal-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->path, sizeof fx->path, "%s/test.journal", fx->dir);
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        Fx *fx = *state;
        tmpdir_remove(fx->dir);
        free(fx);
        return 0;
}

static Journal *open_ok(const char *path, bool durable) {
        Journal *j = NULL;
        KvErr e = {};
        assert_int_equal(journal_open(path, durable, &j, &e), 0);
        assert_non_null(j);
        return j;
}

static void put_int(Journal *j, const char *key, int v) {
        _cleanup_json_ json_t *o = json_pack("{s:i}", "n", v);
        assert_int_equal(journal_put(j, key, o, true), 0);
}

static int get_int(Journal *j, const char *key) {
        json_t *o = journal_get(j, key);
        return o ? (int) json_integer_value(json_object_get(o, "n")) : -1;
}

static int collect(const char *key, json_t *val, void *userdata) {
        (void) val;
        char *buf = userdata;
        strcat(buf, key);
        strcat(buf, ",");
        return 0;
}

static void test_roundtrip(void **state) {
        Fx *fx = *state;
        Journal *j = open_ok(fx->path, true);
        assert_int_equal(journal_count(j), 0);
        put_int(j, "a", 1);
        put_int(j, "b", 2);
        put_int(j, "c", 3);
        put_int(j, "a", 10); /* replaced in place: keeps its position */
        assert_int_equal(journal_del(j, "b", true), 1);
        assert_int_equal(journal_del(j, "b", true), 0);
        assert_int_equal(journal_del(j, "never", false), 0);
        assert_int_equal(journal_put(j, "x", NULL, false), -EINVAL);
        assert_int_equal(journal_sync(j), 0);
        journal_free(j);

        j = open_ok(fx->path, true);
        assert_int_equal(journal_count(j), 2);
        assert_int_equal(get_int(j, "a"), 10);
        assert_int_equal(get_int(j, "b"), -1);
        assert_int_equal(get_int(j, "c"), 3);
        char order[64] = "";
        assert_int_equal(journal_foreach(j, collect, order), 0);
        assert_string_equal(order, "a,c,");
        assert_int_equal(journal_bad_records(j), 0);
        /* the file owns room ahead: appending does not grow it */
        struct stat st;
        assert_int_equal(stat(fx->path, &st), 0);
        assert_int_equal((size_t) st.st_size, journal_capacity(j));
        assert_true(journal_used_bytes(j) < journal_capacity(j));
        off_t size = st.st_size;
        put_int(j, "d", 4);
        assert_int_equal(stat(fx->path, &st), 0);
        assert_int_equal(st.st_size, size);
        journal_free(j);
}

/* More changes than the file has room for: it is rewritten (larger when the live records need it), nothing lost. */
static void test_rewrite_when_full(void **state) {
        Fx *fx = *state;
        Journal *j = open_ok(fx->path, false);
        size_t cap0 = journal_capacity(j);
        char big[2048];
        memset(big, 'v', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        char key[32];
        for (int round = 0; round < 3; round++)
                for (int k = 0; k < 600; k++) {
                        snprintf(key, sizeof key, "key-%d", k);
                        _cleanup_json_ json_t *o = json_pack("{s:i, s:s}", "n", round * 1000 + k, "pad", big);
                        assert_int_equal(journal_put(j, key, o, false), 0);
                }
        for (int k = 0; k < 600; k += 2) {
                snprintf(key, sizeof key, "key-%d", k);
                assert_int_equal(journal_del(j, key, false), 1);
        }
        assert_int_equal(journal_count(j), 300);
        assert_true(journal_capacity(j) > cap0); /* 300 live records of 2 KiB need more than the first size */
        journal_free(j);

        j = open_ok(fx->path, false);
        assert_int_equal(journal_count(j), 300);
        assert_int_equal(get_int(j, "key-1"), 2001);
        assert_int_equal(get_int(j, "key-599"), 2599);
        assert_int_equal(get_int(j, "key-2"), -1);
        journal_free(j);
}

static void append_raw(const char *path, off_t off, const char *text) {
        int fd = open(path, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, text, strlen(text), off), (ssize_t) strlen(text));
        close(fd);
}

/* A crash in the middle of a write leaves a line without its newline: it was never acknowledged; ignored. */
static void test_torn_tail(void **state) {
        Fx *fx = *state;
        Journal *j = open_ok(fx->path, false);
        put_int(j, "a", 1);
        put_int(j, "b", 2);
        off_t end = (off_t) journal_used_bytes(j);
        journal_free(j);
        append_raw(fx->path, end, "00000000000000ff {\"k\":\"c\",\"v\":{\"n\"");

        j = open_ok(fx->path, false);
        assert_int_equal(journal_count(j), 2);
        assert_int_equal(journal_bad_records(j), 0);
        assert_int_equal(get_int(j, "c"), -1);
        char keep[160];
        snprintf(keep, sizeof keep, "%s.corrupt", fx->path);
        assert_int_equal(access(keep, F_OK), -1);
        /* the rewrite at open dropped the fragment: new changes replay cleanly */
        put_int(j, "c", 3);
        journal_free(j);
        j = open_ok(fx->path, false);
        assert_int_equal(get_int(j, "c"), 3);
        assert_int_equal(journal_bad_records(j), 0);
        journal_free(j);
}

/* A line whose checksum fails is skipped and counted; the other records survive; the file is kept aside. */
static void test_damaged_line(void **state) {
        Fx *fx = *state;
        Journal *j = open_ok(fx->path, false);
        put_int(j, "a", 1);
        off_t b_at = (off_t) journal_used_bytes(j);
        put_int(j, "b", 2);
        put_int(j, "c", 3);
        journal_free(j);
        /* flip the value of b without fixing its checksum: {"k":"b","v":{"n":2}} -> ...{"n":7} */
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        assert_int_equal(read_file_max(fx->path, 64 << 20, &text, &len), 0);
        char *two = strstr(text + b_at, "\"n\":2");
        assert_non_null(two);
        append_raw(fx->path, (off_t) (two - text) + 4, "7");

        j = open_ok(fx->path, false);
        assert_int_equal(journal_bad_records(j), 1);
        assert_int_equal(get_int(j, "a"), 1);
        assert_int_equal(get_int(j, "b"), -1);
        assert_int_equal(get_int(j, "c"), 3);
        char keep[160];
        snprintf(keep, sizeof keep, "%s.corrupt", fx->path);
        assert_int_equal(access(keep, F_OK), 0);
        journal_free(j);
        /* rewritten without the damaged line */
        j = open_ok(fx->path, false);
        assert_int_equal(journal_bad_records(j), 0);
        assert_int_equal(journal_count(j), 2);
        journal_free(j);
}

/* A file that is not a journal is an error and stays as it is; an empty file is an empty journal. */
static void test_foreign_and_empty(void **state) {
        Fx *fx = *state;
        assert_int_equal(write_file_atomic(fx->path, "{\"claims\":[]}\n", 14, false), 0);
        Journal *j = NULL;
        KvErr e = {};
        assert_int_equal(journal_open(fx->path, false, &j, &e), -EBADMSG);
        assert_null(j);
        assert_non_null(strstr(e.msg, "not a kvnet journal"));
        assert_non_null(strstr(e.msg, fx->path));
        _cleanup_free_ char *text = NULL;
        assert_int_equal(read_file_max(fx->path, 1024, &text, NULL), 0);
        assert_string_equal(text, "{\"claims\":[]}\n");

        assert_int_equal(write_file_atomic(fx->path, "", 0, false), 0);
        j = open_ok(fx->path, false);
        assert_int_equal(journal_count(j), 0);
        journal_free(j);

        /* a directory in the way: a clear error */
        char sub[160];
        snprintf(sub, sizeof sub, "%s/dir.journal", fx->dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        kverr_clear(&e);
        assert_true(journal_open(sub, false, &j, &e) < 0);
        assert_non_null(strstr(e.msg, "dir.journal"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rewrite_when_full, setup, teardown),
                cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
                cmocka_unit_test_setup_teardown(test_damaged_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_foreign_and_empty, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
