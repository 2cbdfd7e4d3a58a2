/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-node: the node agent of one node (docs/node.md, "kvnet-node").
 *
 * It watches the launcher pods the API binds to its node (fieldSelector spec.nodeName) and runs them with
 * the pod runtime (node/pod.h): that part stands in for kubelet and a container runtime, which kvnet's
 * single-machine clusters do not have. What it then reports is real node work, as KubeVirt's virt-handler
 * does it: the VMI's status from handler/ (phase, nodeName, interfaces, conditions) through the VMI's status
 * subresource, and the launcher pod's status (phase, podIP, conditions) through the pod's.
 *
 * This header: the pure mapping between API objects and the pod runtime (podmap.c, unit-tested), and the
 * agent itself (agent.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/kverr.h"
#include "node/pod.h"

#define AGENT_LABEL_APP "kubevirt.io"
#define AGENT_LABEL_CREATED_BY "kubevirt.io/created-by"
#define AGENT_LABEL_VM_NAME "vm.kubevirt.io/name"

/* ---- pod → pod runtime (podmap.c) */

/* A launcher pod: label kubevirt.io=virt-launcher. */
bool agent_pod_is_launcher(json_t *pod);
/* The name of the pod's VMI: its controller ownerReference of kind VirtualMachineInstance, else the label
 * vm.kubevirt.io/name; NULL when it has neither. */
const char *agent_pod_vmi_name(json_t *pod);
/* The pod's phase is final (Succeeded or Failed): nothing runs it again. */
bool agent_pod_finished(json_t *pod);

/* What node_pod_run() needs beyond the pod's identity, from the VMI (strings borrowed from it). */
typedef struct AgentLaunch {
        const char *vm_namespace, *vm_name;
        const char *interface; /* the VMI's interface on the pod network */
        NodePodBinding binding;
        int grace_seconds;     /* spec.terminationGracePeriodSeconds, -1 when not given */
} AgentLaunch;

/* Checks that vmi is the pod's (the pod's kubevirt.io/created-by label is the VMI's uid) and finds its
 * interface on the pod network with its binding (bridge or masquerade). Errors name the field and value. */
int agent_launch_from(json_t *pod, json_t *vmi, AgentLaunch *ret, KvErr *e) _wur_;

/* ---- pod status (podmap.c) */

/* The pod phase that goes with a VMI phase: Running, Succeeded, Failed; anything else is Pending. */
const char *agent_pod_phase(const char *vmi_phase);

typedef struct AgentPodStatus {
        const char *phase;      /* Pending, Running, Succeeded, Failed */
        const char *message;    /* why it failed, or NULL */
        const char *ip4, *ip6;  /* the pod's addresses, NULL or "" for none */
        const char *host_ip;    /* the node's address, NULL when not known */
        const char *start_time; /* RFC 3339, NULL when not started */
} AgentPodStatus;

/* The pod's new status object from its old one (NULL: none), as kubelet writes it for a one-container pod:
 * phase, conditions PodScheduled, Initialized, ContainersReady, Ready (lastTransitionTime kept while a
 * condition's status stays), podIP(s), hostIP(s), startTime, containerStatuses of "compute"; reason Error
 * and the message when Failed. NULL on -ENOMEM. */
json_t *agent_pod_status(json_t *old, const AgentPodStatus *s);

/* ---- the agent (agent.c) */

typedef struct AgentConfig {
        const char *kubeconfig; /* NULL: kube_config_load()'s default */
        const char *host_ip;    /* the node's address for status.hostIP, or NULL */
        unsigned poll_ms;       /* launcher status poll interval; 0: 1000 */
        NodePodConfig pod;      /* the pod runtime's (pod.node_name is the node's name) */
} AgentConfig;

/* Runs the agent until SIGTERM/SIGINT: exit without stopping the pods (a restarted agent re-adopts them).
 * Returns 0, or < 0 when it could not start (logged). */
int agent_run(const AgentConfig *c);
