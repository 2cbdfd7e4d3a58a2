/* SPDX-License-Identifier: Apache-2.0 */
#include <stddef.h>
#include <string.h>

#include "netd/binding/kind.h"

static const char *const binding_kind_table[_BINDING_KIND_MAX] = {
        [BINDING_BRIDGE] = "bridge",
        [BINDING_MASQUERADE] = "masquerade",
        [BINDING_SRIOV] = "sriov",
        [BINDING_CHAINED] = "chained",
};

const char *binding_kind_to_string(BindingKind k) {
        if (k < 0 || k >= _BINDING_KIND_MAX)
                return NULL;
        return binding_kind_table[k];
}

BindingKind binding_kind_from_string(const char *s) {
        if (!s)
                return _BINDING_KIND_INVALID;
        for (int k = 0; k < _BINDING_KIND_MAX; k++)
                if (strcmp(binding_kind_table[k], s) == 0)
                        return (BindingKind) k;
        return _BINDING_KIND_INVALID;
}

bool binding_kind_configurable(BindingKind k) {
        return k == BINDING_BRIDGE || k == BINDING_MASQUERADE || k == BINDING_SRIOV;
}

BindingKind binding_kind_resolve(BindingKind configured, bool vm, bool chained) {
        if (configured == BINDING_SRIOV)
                return BINDING_SRIOV;
        if (chained)
                return BINDING_CHAINED;
        if (configured == BINDING_MASQUERADE && vm)
                return BINDING_MASQUERADE;
        return BINDING_BRIDGE;
}
