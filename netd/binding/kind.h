/* SPDX-License-Identifier: Apache-2.0 */
/* The kinds of binding an attachment can have: how its interface is wired to the node. The ops of each
 * kind are in netd/binding/binding.h. */
#pragma once

#include <errno.h>
#include <stdbool.h>

typedef enum BindingKind {
        BINDING_BRIDGE,     /* veth on the node bridge (container), or VM tap redirected to one */
        BINDING_MASQUERADE, /* VM behind a NAT in its sandbox, veth on the node bridge */
        BINDING_SRIOV,      /* VM on a VF of the node's NIC */
        BINDING_CHAINED,    /* after another plugin: the VM's tap redirected to that plugin's interface */
        _BINDING_KIND_MAX,
        _BINDING_KIND_INVALID = -EINVAL,
} BindingKind;

/* "bridge", "masquerade", "sriov", "chained"; NULL out of range. */
const char *binding_kind_to_string(BindingKind k);
/* _BINDING_KIND_INVALID for an unknown name (or NULL). */
BindingKind binding_kind_from_string(const char *s);
/* Does a network's "binding" name this kind? ("chained" is not a configured binding: it comes from the
 * position in the chain.) */
bool binding_kind_configurable(BindingKind k);
/* The kind that drives an attachment: the configured binding (bridge, masquerade or sriov) of a VM or a
 * container attachment, chained or not. A container's masquerade is a bridge (with ipMasq); sriov stays
 * sriov (requests refuse it chained). */
BindingKind binding_kind_resolve(BindingKind configured, bool vm, bool chained);
