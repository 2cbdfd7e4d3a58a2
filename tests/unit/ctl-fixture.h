/* SPDX-License-Identifier: Apache-2.0 */
/* The fixture of the controller's unit tests: a store in a new temporary directory, and the
 * VirtualMachine and VirtualMachineInstance resources. Include after <cmocka.h>. */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "controller/store.h"
#include "tests/unit/tmpdir.h"

typedef struct CtlFixture {
        char dir[64];
        CtlStore *s;
        const CtlResource *vm, *vmi;
} CtlFixture;

static inline int ctl_fixture_setup(void **state) {
        CtlFixture *fx = calloc(1, sizeof *fx);
        assert_non_null(fx);
        strcpy(fx->dir, "/tmp/kvnet-ctl-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        KvErr e = {};
        assert_int_equal(ctl_store_open(fx->dir, false, &fx->s, &e), 0);
        fx->vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
        assert_non_null(fx->vm);
        fx->vmi = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
        assert_non_null(fx->vmi);
        *state = fx;
        return 0;
}

static inline int ctl_fixture_teardown(void **state) {
        CtlFixture *fx = *state;
        ctl_store_free(fx->s);
        tmpdir_remove(fx->dir);
        free(fx);
        return 0;
}
