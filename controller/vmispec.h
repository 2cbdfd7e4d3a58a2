/* SPDX-License-Identifier: Apache-2.0 */
/* What the scheduler needs of a VirtualMachineInstance's spec, parsed and checked in one place: its CPU and
 * memory requests, its nodeSelector and its Multus networks. The store checks every VMI (and every VM's
 * template) with it at create and update, so a bad quantity is refused with 422 naming the field. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "common/kverr.h"

#define CTL_SELECTOR_MAX 16
#define CTL_NETWORKS_MAX 16

typedef struct CtlLabel {
        const char *key, *value;
} CtlLabel;

typedef struct CtlVmiSpec {
        uint64_t cpu_milli; /* requests.cpu, else cores × sockets × threads, else 1 core */
        uint64_t memory;    /* bytes: requests.memory, else memory.guest, else 0 */
        CtlLabel node_selector[CTL_SELECTOR_MAX];
        size_t n_node_selector;
        struct {
                const char *network_name; /* "name" or "namespace/name" */
                const char *name;         /* spec.networks[].name: the VMI interface of the same name */
                bool bridge;              /* that interface has the bridge binding */
                bool sriov;               /* ... the sriov binding (a VF of the NAD's pool) */
                const char *mac;          /* that interface's macAddress, NULL when it names none */
                bool is_default;          /* replaces the pod network (Multus' default-network annotation) */
                bool absent;              /* that interface's state is absent: unplugged (it keeps its net<k>) */
        } multus[CTL_NETWORKS_MAX];
        size_t n_multus;
} CtlVmiSpec;

/* spec: a VMI's spec (NULL: all defaults); field: its path in messages ("spec", "spec.template.spec"). The
 * strings in *ret are borrowed from spec. */
int ctl_vmi_spec_parse(json_t *spec, const char *field, CtlVmiSpec *ret, KvErr *e) _wur_;
