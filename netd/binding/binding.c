/* SPDX-License-Identifier: Apache-2.0 */
#include <stddef.h>

#include "netd/binding/binding.h"

static const BindingOps *const binding_ops_table[_BINDING_KIND_MAX] = {
        [BINDING_BRIDGE] = &binding_bridge_ops,
        [BINDING_MASQUERADE] = &binding_masquerade_ops,
        [BINDING_SRIOV] = &binding_sriov_ops,
        [BINDING_CHAINED] = &binding_chained_ops,
};

const BindingOps *binding_ops(BindingKind k) {
        if (k < 0 || k >= _BINDING_KIND_MAX)
                return &binding_bridge_ops; /* not reached: kinds come from binding_kind_resolve() */
        return binding_ops_table[k];
}
