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
#include <stdint.h>

#include "common/kverr.h"
#include "node/pod.h"

#define AGENT_LABEL_APP "kubevirt.io"
#define AGENT_LABEL_CREATED_BY "kubevirt.io/created-by"
#define AGENT_LABEL_VM_NAME "vm.kubevirt.io/name"
#define AGENT_LABEL_MIGRATION_JOB "kubevirt.io/migrationJobUID"
#define AGENT_ANN_NETWORKS "k8s.v1.cni.cncf.io/networks"
#define AGENT_ANN_NETWORK_STATUS "k8s.v1.cni.cncf.io/network-status"

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
        /* The VMI's NICs on Multus networks (spec.networks[].multus, not default), in order: the pod's net1,
         * net2, ... as the controller names them in the pod's networks annotation. */
        NodePodNic nics[NODE_POD_NICS_MAX];
        char ifnames[NODE_POD_NICS_MAX][16];
        size_t n_nics;
} AgentLaunch;

/* Checks that vmi is the pod's (the pod's kubevirt.io/created-by label is the VMI's uid) and finds its
 * interface on the pod network with its binding (bridge or masquerade). Errors name the field and value. */
int agent_launch_from(json_t *pod, json_t *vmi, AgentLaunch *ret, KvErr *e) _wur_;

/* The PCI address of the VF on the pod's interface ifname (net1, ...): its entry in the pod's network-status,
 * device-info.pci.pci-address, as the SR-IOV delegate reported it (how KubeVirt's launcher learns it too). */
int agent_pod_nic_pci(json_t *pod, const char *ifname, char ret[static 16], KvErr *e) _wur_;

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

/* ---- migrations (migmap.c, unit-tested): the node's half of a live migration, as KubeVirt's virt-handler does
 * it. The contract with the controller is status.migrationState (controller/migration.h). The source pod's
 * node starts its half of the proxies and asks its launcher to migrate once the target reported ready, then
 * reports startTimestamp and the end (completed, or failed with the reason; a cancel when abortRequested); the
 * target pod's node starts the listening half once its launcher waits for the guest and reports where
 * (targetNodeAddress, targetDirectMigrationNodePorts) and targetNodeDomainDetected. kvnet's own fields (kvnet*:
 * the target's paths, QEMU's downtime, the guest's pause as the launchers saw it) sit next to KubeVirt's. */

typedef enum AgentMigRole {
        AGENT_MIG_NONE,
        AGENT_MIG_SOURCE,
        AGENT_MIG_TARGET,
} AgentMigRole;

/* status.migrationState when it names a migration (has a migrationUid), else NULL. */
json_t *agent_vmi_migration_state(json_t *vmi);
/* The pod's role in the VMI's migration: target when the pod's kubevirt.io/migrationJobUID label (job) is
 * the migration's and the migration names it as targetPod; source when it is the sourcePod. */
AgentMigRole agent_mig_role(json_t *vmi, const char *pod_name, const char *job);
/* The migration completed or failed. */
bool agent_mig_ended(json_t *ms);
/* Whether the pod's view writes the VMI's status (phase, node, interfaces): the pod runs the VMI on this node
 * and is not a migration target still waiting (a target's pod speaks once the VMI moved to it). */
bool agent_pod_writes_vmi(json_t *vmi, const char *node, const char *pod_name, const char *pod_uid, const char *job);

/* What the node did for a migration, in the pod's directory (migration.json): a restarted agent goes on. */
typedef struct AgentMigRecord {
        char uid[64];              /* the migration's (the VMIM's uid) */
        AgentMigRole role;
        uint16_t port;             /* the target's first proxy port */
        char started[32];          /* source: startTimestamp; target: when it was ready (RFC 3339) */
        char launcher_started[40]; /* source: the launcher's migration.startedAt of this migration */
        bool cancel_sent;
        bool proxies_stopped;
        char failure[512];         /* why the node could not do its part, "" when it could */
} AgentMigRecord;

int agent_mig_record_load(const char *dir, AgentMigRecord *ret) _wur_; /* -ENOENT: none */
int agent_mig_record_save(const char *dir, const AgentMigRecord *rec) _wur_;

/* The target node's: its address and the pod's paths the source launcher builds the guest's XML with. */
typedef struct AgentMigTarget {
        const char *address, *state_dir, *serial_log;
} AgentMigTarget;

/* The fields the source's (target's) node sets in migrationState from its record and its launcher's status
 * object; *ret NULL when none. */
int agent_mig_source_fields(json_t *ms, const AgentMigRecord *rec, json_t *launcher, json_t **ret) _wur_;
int agent_mig_target_fields(json_t *ms, const AgentMigRecord *rec, json_t *launcher, const AgentMigTarget *t,
                            json_t **ret) _wur_;
/* A migration target runs the VMI as the source does: each spec interface without a macAddress gets the MAC
 * status.interfaces reports for it. */
int agent_vmi_pin_macs(json_t *vmi) _wur_;
/* Sets fields in status.migrationState (when the status has one); *changed when something differed. */
int agent_mig_merge(json_t *status, json_t *fields, bool *changed) _wur_;

/* ---- the agent (agent.c) */

typedef struct AgentConfig {
        const char *kubeconfig; /* NULL: kube_config_load()'s default */
        const char *host_ip;    /* the node's address for status.hostIP, or NULL */
        unsigned poll_ms;       /* launcher status poll interval; 0: 1000 */
        unsigned mig_max_downtime_ms; /* the migrations' maximum downtime; 0: the launcher's default */
        const char *metrics_listen;   /* "IPV4:PORT" of the Prometheus endpoint (checked), NULL: none */
        NodePodConfig pod;      /* the pod runtime's (pod.node_name is the node's name) */
} AgentConfig;

/* Runs the agent until SIGTERM/SIGINT: exit without stopping the pods (a restarted agent re-adopts them).
 * Returns 0, or < 0 when it could not start (logged). */
int agent_run(const AgentConfig *c);
