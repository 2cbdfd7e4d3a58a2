/* SPDX-License-Identifier: Apache-2.0 */
/* The controller tests' fixture: an object store in a fresh temporary directory, removed afterwards. A test
 * file's fixture struct starts with the fields of CtlFxHead; ctl_fx_new() makes one, ctl_fx_free() is its
 * cmocka teardown. Include after <cmocka.h>. */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "controller/store.h"
#include "tests/unit/tmpdir.h"

typedef struct CtlFxHead {
        char dir[64];
        CtlStore *s;
} CtlFxHead;

static inline void ctl_fx_open(const char *dir, CtlStore **s) {
        KvErr e = {};
        assert_int_equal(ctl_store_open(dir, false, s, &e), 0);
}

/* A zeroed fixture of size bytes with its store open. */
static inline void *ctl_fx_new(size_t size) {
        CtlFxHead *fx = calloc(1, size);
        assert_non_null(fx);
        strcpy(fx->dir, "/tmp/kvnet-ctl-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        ctl_fx_open(fx->dir, &fx->s);
        return fx;
}

/* The JSON text as an object (a test's literal: a parse error fails the test). */
static inline json_t *ctl_fx_parse(const char *text) {
        json_error_t err;
        json_t *o = json_loads(text, 0, &err);
        if (!o)
                fail_msg("bad test JSON at %d: %s", err.position, err.text);
        return o;
}

/* How many objects of r the store holds, in all namespaces. */
static inline size_t ctl_fx_count(CtlStore *s, const CtlResource *r) {
        json_t *l = ctl_store_list(s, r, NULL, NULL);
        size_t n = json_array_size(json_object_get(l, "items"));
        json_decref(l);
        return n;
}

static inline int ctl_fx_free(void **state) {
        CtlFxHead *fx = *state;
        ctl_store_free(fx->s);
        tmpdir_remove(fx->dir);
        free(fx);
        return 0;
}
