/* SPDX-License-Identifier: Apache-2.0 */
/* node/pod.h: the pod runtime of the kubelet stand-in (docs/node.md, "The pod runtime").
 *
 * It runs a launcher pod on a node as kubelet + a container runtime would, and nothing else:
 *   1. a sandbox network namespace (node_sandbox_new),
 *   2. the node's CNI network config from its conf dir, with runtime semantics (CNI_ARGS with the
 *      K8S_POD_* keys and kvnet's KVNET_VM_* keys, libcni's cache, rollback), the plugins executed
 *      inside the node's network namespace,
 *   3. the pod's private libvirtd inside the sandbox. This is the stand-in's "container image": the
 *      runtime execs scripts/libvirt-node.sh (the "libvirtd starter"), which is what a launcher pod's
 *      container would run; nothing here is a container runtime,
 *   4. kvnet-launcher inside the sandbox (its own process group), its status file read into a typed
 *      NodeLauncherStatus,
 *   5. a pod record in the state dir (<state>/pods/<uid>/pod.json, written atomically), so that a
 *      restarted runtime re-adopts a running pod (pids checked with their start times; nothing is
 *      restarted).
 * Stopping: launcher SIGTERM (it shuts the guest down with its grace period), SIGKILL after the grace
 * period, CNI DEL, libvirtd stopped, whatever still runs in the sandbox killed, sandbox deleted, the
 * pod's directory and record removed. Anything already gone is fine. A start that fails at any step
 * undoes what it made.
 *
 * Also the migration proxies between a source pod and a target pod on another node (KubeVirt's
 * virt-handler proxies): socat processes in the two node namespaces, owned by the runtime.
 *
 * Library code: returns -errno, fills a NodeErr, never logs. Single-threaded callers. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "common/kverr.h"
#include "node/node.h"

/* ---------------------------------------------------------------- the node */

typedef struct NodePodConfig {
        const char *node_name;        /* for messages and records: [A-Za-z0-9._-], 1..63 */
        const char *node_netns;       /* the node's network namespace (a path: /run/netns/X); plugins and proxies run there */
        const char *conf_dir;         /* CNI conf dir: the lexically first config is the node's network */
        const char *cni_path;         /* CNI plugin dirs, ':'-joined */
        const char *cache_dir;        /* CNI result cache (libcni's layout) */
        const char *netd_socket;      /* the node's kvnet-netd socket, for the launcher's migration calls */
        const char *state_dir;        /* pod records and pod directories: <state_dir>/pods/<uid>/ */
        const char *launcher;         /* path of kvnet-launcher */
        const char *libvirtd_starter; /* path of scripts/libvirt-node.sh (the stand-in's "container image") */
        const char *image_dir;        /* the node's image store (docs/images.md), the launcher's --image-dir; NULL: its default */
        const char *sandbox_prefix;   /* sandbox namespaces <prefix>-<16 hex>; NULL: "kvpod". This node's alone (GC) */
        unsigned start_timeout_ms;    /* launcher phase Running (WaitingForMigration for --incoming); 0: 120 s */
        /* a directory with ca.pem, node.pem, node-key.pem: the migration proxies between nodes speak mutual TLS
         * (each end presents its node certificate, signed by the cluster's migration CA, and checks the other's;
         * the target's must name the address dialled). NULL: plain TCP (an underlay nobody else reaches) */
        const char *migration_tls;
} NodePodConfig;

typedef struct NodePodRuntime NodePodRuntime;

/* Checks the configuration (absolute paths, executables, the state dir short enough for the pod's
 * unix sockets: the error names the path and its length) and makes the state dir. */
int node_pod_runtime_new(const NodePodConfig *c, NodePodRuntime **ret, NodeErr *e) _wur_;
NodePodRuntime *node_pod_runtime_free(NodePodRuntime *rt);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodePodRuntime *, node_pod_runtime_free);

/* ---------------------------------------------------------------- a pod */

typedef enum NodePodBinding {
        NODE_POD_BINDING_BRIDGE,
        NODE_POD_BINDING_MASQUERADE,
        _NODE_POD_BINDING_MAX,
        _NODE_POD_BINDING_INVALID = -EINVAL,
} NodePodBinding;

const char *node_pod_binding_to_string(NodePodBinding b);
NodePodBinding node_pod_binding_from_string(const char *s);

#define NODE_POD_UID_MAX 36
#define NODE_POD_NICS_MAX 16 /* secondary NICs per pod */

typedef struct NodePodNic {
        const char *vm_interface; /* the VMI's interface: a DNS label, unique in the pod */
        const char *ifname;       /* the tap in the sandbox (net1, ...): unique, not the pod network's */
        bool sriov;               /* an SR-IOV VF passed through (the sriov binding): no tap; the launcher gets
                                   * --nic INTERFACE=pci:ADDRESS, the address from NodePodSpec.nic_pci */
} NodePodNic;

/* The PCI address of the VF the pod's network ifname holds (what the pod's network-status says under
 * device-info: the delegate that attached it picked the VF). ret: "0000:3b:02.1". */
typedef int (*NodePodNicPciFn)(void *userdata, const char *ifname, char ret[static 16], KvErr *e);
 /* a Kubernetes UID (a UUID); [a-z0-9-] */

typedef struct NodePodSpec {
        const char *namespace_;   /* the pod's: a DNS label */
        const char *name;         /* a DNS subdomain, at most 253 */
        const char *uid;          /* [a-z0-9-], 1..36; names the pod's directory */
        const char *vmi_json;     /* the VirtualMachineInstance object the launcher runs (JSON) */
        const char *vm_namespace; /* KVNET_VM_NAMESPACE: the VM identity netd keys the IP claim on */
        const char *vm_name;      /* KVNET_VM_NAME */
        const char *vm_interface; /* KVNET_VM_INTERFACE and the launcher's --nic interface; NULL: "default" */
        const char *ifname;       /* CNI_IFNAME, the tap in the sandbox; NULL: "tap0" */
        NodePodBinding binding;   /* KVNET_VM_BINDING */
        /* The VM's NICs on the pod's secondary networks (the meta plugin in the node's config, e.g. kvnet-multus,
         * attaches them from the pod's networks annotation): each a tap named ifname in the sandbox, given to
         * the launcher as --nic INTERFACE=tap:IFNAME. */
        const struct NodePodNic *nics;
        size_t n_nics;
        NodePodNicPciFn nic_pci;  /* for the sriov NICs; NULL: a pod with one fails, saying so */
        void *nic_pci_userdata;
        bool incoming;            /* a migration target: launcher --incoming, ready at WaitingForMigration */
        unsigned incoming_timeout_s; /* 0: the launcher's default */
        int grace_seconds;        /* termination grace period; < 0: the VMI's (the launcher's default 30) */
} NodePodSpec;

/* Validates everything a spec holds (each error names the field and value) before anything is made. */
int node_pod_spec_check(const NodePodSpec *s, NodeErr *e) _wur_;

typedef struct NodePod NodePod;

/* Runs the pod: sandbox, CNI ADD, libvirtd, launcher, then waits for the launcher's phase Running
 * (WaitingForMigration when incoming). -EEXIST when a pod of that uid has a record already. On failure
 * nothing of it is left (the error says which step failed). */
int node_pod_run(NodePodRuntime *rt, const NodePodSpec *s, NodePod **ret, NodeErr *e) _wur_;
/* Stops and deletes the pod (see the top); 0 also when it was partly or wholly gone. On a failure of
 * some step the others still run and the record stays (state "stopping"), so that a later stop retries. */
int node_pod_stop(NodePodRuntime *rt, NodePod *p, NodeErr *e) _wur_;
/* The pod of that uid from its record (re-adoption): -ENOENT without one. Its processes are checked
 * by pid and start time (node_pod_launcher_alive()); nothing is started or restarted. */
/* The tap the launcher plugs NIC ifname into: tap-<ifname> when the sandbox has one (kvnet chained after a
 * third-party plugin, docs/chaining.md), else ifname (the tap kvnet made under the pod interface's name). */
int node_pod_nic_tap(const NodePod *p, const char *ifname, char ret[static 16]) _wur_;
/* NIC hot-plug on a running pod: its node network's meta plugin (kvnet-multus) attaches (detaches) the pod's
 * network for interface nic->ifname alone (KVNET_MULTUS_INTERFACE, docs/multus.md), and the pod's record gains
 * (loses) the NIC. The launcher's part (attach-interface / detach-interface) is the caller's. Attach: the NIC is
 * checked (node_pod_nic_check rules: -EEXIST when the pod has it), an attachment left by an attach that never
 * got recorded is removed first. Detach of a NIC the pod does not have: 0. */
int node_pod_nic_attach(NodePodRuntime *rt, NodePod *p, const NodePodNic *nic, NodeErr *e) _wur_;
int node_pod_nic_detach(NodePodRuntime *rt, NodePod *p, const char *vm_interface, NodeErr *e) _wur_;
int node_pod_load(NodePodRuntime *rt, const char *uid, NodePod **ret, NodeErr *e) _wur_;
/* Every pod with a record in the state dir, sorted by uid; records that cannot be read are skipped
 * (counted in *ret_bad when given). */
int node_pod_list(NodePodRuntime *rt, NodePod ***ret, size_t *ret_n, size_t *ret_bad, NodeErr *e) _wur_;
void node_pods_free(NodePod **v, size_t n);
/* GC of what no pod holds: the node network's cached attachments whose container ID (a sandbox) no pod
 * record names are DELeted (their cached netns, CNI_ARGS and capability args), then CNI GC (1.1.0
 * plugins) runs with the pods' attachments as the valid ones; then the sandboxes of this runtime's
 * prefix (/run/netns/<prefix>-<16 hex>) that no pod record names are deleted, with whatever runs in
 * them (a start holds a shared lock from making its sandbox until its record names it). The prefix
 * must therefore be this node's alone. Everything is tried; the first failure is returned.
 * *ret_deleted (optional): how many attachments were DELeted; *ret_sandboxes: sandboxes deleted. */
int node_pod_gc(NodePodRuntime *rt, size_t *ret_deleted, size_t *ret_sandboxes, NodeErr *e) _wur_;
NodePod *node_pod_free(NodePod *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodePod *, node_pod_free);

const char *node_pod_uid(const NodePod *p);
const char *node_pod_namespace(const NodePod *p);
const char *node_pod_name(const NodePod *p);
const char *node_pod_dir(const NodePod *p);          /* <state_dir>/pods/<uid> */
const char *node_pod_sandbox_path(const NodePod *p); /* /run/netns/<name>, "" before it exists */
const char *node_pod_libvirt_uri(const NodePod *p);  /* "" before libvirtd runs */
/* The pod's network from its CNI result: the first IPv4/IPv6 address (without prefix length; "" when
 * none), the MAC of its interface in the sandbox, the whole typed result (NULL before the ADD). */
const char *node_pod_ip4(const NodePod *p);
const char *node_pod_ip6(const NodePod *p);
const char *node_pod_mac(const NodePod *p);
const NodeCniResult *node_pod_cni_result(const NodePod *p);
pid_t node_pod_launcher_pid(const NodePod *p);  /* 0 before it was started */
pid_t node_pod_libvirtd_pid(const NodePod *p);
bool node_pod_launcher_alive(const NodePod *p); /* the same process (pid and start time) still runs */
bool node_pod_libvirtd_alive(const NodePod *p);
/* Status socket, status file (the launcher's status JSON), serial log of the launcher: under node_pod_dir(). */
const char *node_pod_launcher_socket(const NodePod *p);
const char *node_pod_status_file(const NodePod *p);
const char *node_pod_serial_log(const NodePod *p);
/* The CNI network (its config's name) the pod's attachment is in, NULL before it is chosen. */
const char *node_pod_network(const NodePod *p);
/* The VM the pod runs (its spec's vm_namespace and vm_name: the VMI's). */
const char *node_pod_vm_namespace(const NodePod *p);
const char *node_pod_vm_name(const NodePod *p);
const char *node_pod_vm_interface(const NodePod *p);
/* The secondary NICs (vm_interface, ifname), n_nics of them. */
const NodePodNic *node_pod_nics(const NodePod *p, size_t *ret_n);

/* ---------------------------------------------------------------- the launcher's status */

typedef enum NodeLauncherPhase {
        NODE_LAUNCHER_UNKNOWN, /* no status file yet */
        NODE_LAUNCHER_SCHEDULED,
        NODE_LAUNCHER_RUNNING,
        NODE_LAUNCHER_WAITING_FOR_MIGRATION,
        NODE_LAUNCHER_SUCCEEDED,
        NODE_LAUNCHER_FAILED,
        NODE_LAUNCHER_MIGRATED,
        _NODE_LAUNCHER_PHASE_MAX,
        _NODE_LAUNCHER_PHASE_INVALID = -EINVAL,
} NodeLauncherPhase;

const char *node_launcher_phase_to_string(NodeLauncherPhase p);
NodeLauncherPhase node_launcher_phase_from_string(const char *s);

typedef struct NodeLauncherStatus {
        NodeLauncherPhase phase;
        char reason[512];
        char accel[16];    /* "qemu" (TCG) or "kvm"; "" when not said */
        char domain[128];  /* libvirt domain name */
        char started_at[40], finished_at[40]; /* RFC 3339; "" when null */
        pid_t pid;         /* the launcher's own */
        bool shutting_down;
        bool migratable;
        char migration_state[16]; /* pending, running, completed, failed, cancelled; "" when none */
        char migration_role[8];   /* source, target; "" when none */
        long long downtime_ms, total_ms; /* -1 when not said */
} NodeLauncherStatus;

/* Parses the launcher's status JSON (its status file) into *ret; errors name the field. */
int node_launcher_status_parse(const char *text, size_t len, NodeLauncherStatus *ret, NodeErr *e) _wur_;
/* The pod's launcher status from its status file; phase UNKNOWN (and 0) when there is none yet. The
 * status of a launcher that is gone is its last one; Scheduled/Running/WaitingForMigration of a launcher
 * that no longer runs is reported as Failed with the reason "launcher not running". */
int node_pod_launcher_status(const NodePod *p, NodeLauncherStatus *ret, NodeErr *e) _wur_;

/* The same, asked of the running launcher over its status socket ({"op":"status"}, common/proto.h):
 * -ECONNREFUSED/-ENOENT when it does not answer. */
int node_pod_launcher_query(const NodePod *p, NodeLauncherStatus *ret, NodeErr *e) _wur_;

/* ---------------------------------------------------------------- migration proxies */

typedef struct NodeMigProxySpec {
        NodePodRuntime *source_rt; /* the source pod's node */
        const NodePod *source;
        NodePodRuntime *target_rt; /* the target pod's node */
        const NodePod *target;
        const char *target_address; /* the target node's underlay address (IPv4 or IPv6 literal) */
        uint16_t port;              /* TCP port on it for libvirt's connection; port+1 for QEMU's stream */
        bool direct;                /* also proxy QEMU's own stream (kvnet-migration.sock); else tunnelled */
} NodeMigProxySpec;

typedef struct NodeMigProxies NodeMigProxies;

/* The proxies of one migration: the source pod's /run/libvirt/kvnet-migration-ctl.sock (in its libvirtd's
 * mount namespace) -> TCP target_address:port in the target node's namespace -> the target pod's
 * libvirt-sock; with direct also the source's kvnet-migration.sock -> port+1 -> the target's
 * kvnet-migration.sock. Returns once the source sockets exist. Their pids are also written to the two
 * pod directories (proxies.json), so that stopping either pod ends them. */
int node_mig_proxies_start(const NodeMigProxySpec *s, NodeMigProxies **ret, NodeErr *e) _wur_;
/* The URIs the source launcher's migrate op takes: destUri, and migrateUri (NULL unless direct). */
const char *node_mig_proxies_dest_uri(const NodeMigProxies *p);
const char *node_mig_proxies_migrate_uri(const NodeMigProxies *p);
/* The two halves, as a node runs its own (KubeVirt's virt-handlers each run theirs). The target's: listeners
 * on address:port (and port+1 with direct) in the target node's namespace, forwarding to the target pod's
 * libvirt-sock (kvnet-migration.sock); port 0 picks a free pair (node_mig_proxies_port() says which). The
 * source's: the source pod's sockets forwarding to address:port from the source node's namespace. Each
 * records its processes in its pod's directory (proxies.json), so that stopping the pod ends them. */
int node_mig_target_start(NodePodRuntime *rt, const NodePod *target, const char *address, uint16_t port, bool direct,
                          NodeMigProxies **ret, NodeErr *e) _wur_;
int node_mig_source_start(NodePodRuntime *rt, const NodePod *source, const char *address, uint16_t port, bool direct,
                          NodeMigProxies **ret, NodeErr *e) _wur_;
uint16_t node_mig_proxies_port(const NodeMigProxies *p);
/* Frees p and leaves its processes running: the pods' records name them (node_pod_proxies_stop()). */
NodeMigProxies *node_mig_proxies_forget(NodeMigProxies *p);
/* Ends the proxies a pod's record names (those of an earlier process: a restarted agent's); 0 when none. */
int node_pod_proxies_stop(const NodePod *p);
/* Ends the proxies, removes their sockets and pid files; tolerant of what is gone. */
int node_mig_proxies_stop(NodeMigProxies *p);
NodeMigProxies *node_mig_proxies_free(NodeMigProxies *p); /* stops them first */
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeMigProxies *, node_mig_proxies_free);
