/* SPDX-License-Identifier: Apache-2.0 */
#include "netd/migration/migstate.h"

#include "common/util.h"

static const char *const mig_role_table[_MIG_ROLE_MAX] = {
        [MIG_ROLE_NONE] = "",
        [MIG_ROLE_SOURCE] = "source",
        [MIG_ROLE_TARGET] = "target",
};

static const char *const mig_state_table[_MIG_STATE_MAX] = {
        [MIG_STATE_NONE] = "",
        [MIG_STATE_PREPARED] = "prepared",
        [MIG_STATE_MIGRATING] = "migrating",
        [MIG_STATE_SWITCHING] = "switching",
        [MIG_STATE_ACTIVE] = "active",
        [MIG_STATE_COMPLETED] = "completed",
        [MIG_STATE_ABORTED] = "aborted",
};

static int lookup(const char *const *table, int n, const char *s) {
        for (int i = 0; s && i < n; i++)
                if (streq(table[i], s))
                        return i;
        return -EINVAL;
}

const char *mig_role_to_string(MigRole r) {
        return r >= 0 && r < _MIG_ROLE_MAX ? mig_role_table[r] : NULL;
}

MigRole mig_role_from_string(const char *s) {
        return (MigRole) lookup(mig_role_table, _MIG_ROLE_MAX, s);
}

const char *mig_state_to_string(MigState s) {
        return s >= 0 && s < _MIG_STATE_MAX ? mig_state_table[s] : NULL;
}

MigState mig_state_from_string(const char *s) {
        return (MigState) lookup(mig_state_table, _MIG_STATE_MAX, s);
}
