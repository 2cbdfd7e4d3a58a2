/* SPDX-License-Identifier: Apache-2.0 */
/* Nodes: the Node objects the scheduler places VMIs on, read into a typed struct in one place, and the
 * simulated nodes of `kvnet-controller --embedded --nodes N` (node1..nodeN, Ready, with the capacity
 * given on the command line). No kubelet backs them: the node side that runs launcher pods is the next
 * step (docs/controller.md). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/kverr.h"
#include "controller/store.h"
#include "controller/vmispec.h"

#define CTL_NODE_LABELS_MAX 64
#define CTL_SIM_LABEL "kvnet.io/simulated" /* on the nodes --nodes made, so that a smaller N removes the rest */

typedef struct CtlNode {
        const char *name; /* borrowed from the object, as the labels */
        CtlLabel labels[CTL_NODE_LABELS_MAX];
        size_t n_labels;
        uint64_t cpu_milli, memory; /* allocatable (else capacity) */
        bool ready;                 /* condition Ready=True */
        bool unschedulable;         /* spec.unschedulable (kubectl cordon) */
} CtlNode;

/* A Node object; an allocatable quantity that is not one is refused naming the field. */
int ctl_node_parse(json_t *node, CtlNode *ret, KvErr *e) _wur_;
/* The value of label key on node n, or NULL. */
const char *ctl_node_label(const CtlNode *n, const char *key);

/* Makes the simulated nodes node1..nodeN exist with this capacity (created, or their status updated when
 * the capacity changed), and removes simulated nodes beyond N. Nodes made otherwise are left alone. Returns
 * how many objects changed. */
int ctl_nodes_simulate(CtlStore *s, unsigned n, uint64_t cpu_milli, uint64_t memory, KvErr *e) _wur_;
