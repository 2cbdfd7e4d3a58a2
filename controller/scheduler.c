/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/json-util.h"
#include "common/kstatus.h"
#include "common/log.h"
#include "common/util.h"
#include "controller/events.h"
#include "controller/ipamclaim.h"
#include "controller/migration.h"
#include "controller/node.h"
#include "controller/quantity.h"
#include "controller/vmispec.h"

#define LABEL_SCHEDULABLE "kubevirt.io/schedulable"
#define LABEL_CREATED_BY "kubevirt.io/created-by"
#define LABEL_NODE_NAME "kubevirt.io/nodeName"
#define ANN_NETWORKS "k8s.v1.cni.cncf.io/networks"
#define ANN_DEFAULT_NETWORK "v1.multus-cni.io/default-network"

/* Why a node cannot take a VMI, in the order the checks run (a node fails at its first check, except that
 * both resources are counted), with Kubernetes' wording. */
typedef enum Reject {
        REJECT_INVALID,
        REJECT_CORDONED,
        REJECT_NOT_READY,
        REJECT_SELECTOR,
        REJECT_ANTI_AFFINITY,
        REJECT_CPU,
        REJECT_MEMORY,
        _REJECT_MAX,
} Reject;

static const char *const reject_table[_REJECT_MAX] = {
        [REJECT_INVALID] = "node(s) had an invalid status.allocatable",
        [REJECT_CORDONED] = "node(s) were unschedulable",
        [REJECT_NOT_READY] = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
        [REJECT_SELECTOR] = "node(s) didn't match Pod's node affinity/selector",
        /* a migration target is never the VMI's own node (KubeVirt's target pod has that anti-affinity) */
        [REJECT_ANTI_AFFINITY] = "node(s) didn't match pod anti-affinity rules",
        [REJECT_CPU] = "Insufficient cpu",
        [REJECT_MEMORY] = "Insufficient memory",
};

typedef struct Node {
        CtlNode n;
        bool valid;
        uint64_t cpu_used, mem_used; /* by the VMIs placed on it */
} Node;

typedef struct Vmi {
        const char *ns, *name, *uid, *phase, *node, *created; /* borrowed from the listed object */
        bool valid;
        CtlVmiSpec spec;
        KvErr err; /* why its spec is not valid */
} Vmi;

static const CtlResource *res_vmi(void) {
        return ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
}

static const CtlResource *res_pod(void) {
        return ctl_resource_find("", "v1", "pods");
}

static const CtlResource *res_node(void) {
        return ctl_resource_find("", "v1", "nodes");
}

static bool waiting(const Vmi *v) {
        return !v->phase || !v->phase[0] || streq(v->phase, "Pending") || streq(v->phase, "Scheduling");
}

static bool holds_resources(const Vmi *v) {
        return v->node && v->node[0] && !waiting(v) && !streq(v->phase, "Succeeded") && !streq(v->phase, "Failed");
}

static void vmi_parse(json_t *o, Vmi *ret) {
        json_t *st = json_object_get(o, "status");
        *ret = (Vmi){ .ns = ctl_md(o, "namespace"),
                      .name = ctl_md(o, "name"),
                      .uid = ctl_md(o, "uid"),
                      .created = ctl_md(o, "creationTimestamp"),
                      .phase = json_string_value(json_object_get(st, "phase")),
                      .node = json_string_value(json_object_get(st, "nodeName")) };
        ret->valid = ctl_vmi_spec_parse(json_object_get(o, "spec"), "spec", &ret->spec, &ret->err) >= 0;
}

static int cmp_node(const void *a, const void *b) {
        return strcmp(((const Node *) a)->n.name, ((const Node *) b)->n.name);
}

/* nodes are sorted by name (cluster_load()) */
static Node *node_find(Node *nodes, size_t n, const char *name) {
        if (!name || n == 0)
                return NULL;
        Node key = { .n.name = name };
        return bsearch(&key, nodes, n, sizeof *nodes, cmp_node);
}

static void node_use(Node *nd, const Vmi *v) {
        if (!nd || !v->valid)
                return;
        nd->cpu_used += v->spec.cpu_milli;
        nd->mem_used += v->spec.memory;
}

/* The checks of one node for one VMI (never on node exclude): a bit per Reject, 0 when it fits. */
static unsigned node_rejects(const Node *nd, const Vmi *v, const char *exclude) {
        if (!nd->valid)
                return 1u << REJECT_INVALID;
        if (nd->n.unschedulable)
                return 1u << REJECT_CORDONED;
        if (!nd->n.ready)
                return 1u << REJECT_NOT_READY;
        if (!streq_ptr(ctl_node_label(&nd->n, LABEL_SCHEDULABLE), "true"))
                return 1u << REJECT_SELECTOR;
        for (size_t i = 0; i < v->spec.n_node_selector; i++)
                if (!streq_ptr(ctl_node_label(&nd->n, v->spec.node_selector[i].key), v->spec.node_selector[i].value))
                        return 1u << REJECT_SELECTOR;
        if (streq_ptr(nd->n.name, exclude))
                return 1u << REJECT_ANTI_AFFINITY;
        unsigned r = 0;
        if (nd->cpu_used + v->spec.cpu_milli > nd->n.cpu_milli)
                r |= 1u << REJECT_CPU;
        if (nd->mem_used + v->spec.memory > nd->n.memory)
                r |= 1u << REJECT_MEMORY;
        return r;
}

/* How loaded the node would be with the VMI on it: the requested share of CPU plus that of memory (as
 * Kubernetes' LeastAllocated scores, with equal weights), in billionths. Lower is better. */
static unsigned __int128 load_with(const Node *nd, const Vmi *v) {
        unsigned __int128 cpu = nd->cpu_used + v->spec.cpu_milli, mem = nd->mem_used + v->spec.memory;
        unsigned __int128 score = 0;
        score += nd->n.cpu_milli ? cpu * 1000000000u / nd->n.cpu_milli : (cpu ? 1000000000u : 0);
        score += nd->n.memory ? mem * 1000000000u / nd->n.memory : (mem ? 1000000000u : 0);
        return score;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The least-loaded node that fits other than exclude (ties: the first by name), or NULL with Kubernetes'
 * message in msg. */
static Node *pick(Node *nodes, size_t n, const Vmi *v, const char *exclude, char *msg, size_t size) {
        Node *best = NULL;
        unsigned __int128 best_load = 0;
        size_t count[_REJECT_MAX] = {};
        for (size_t i = 0; i < n; i++) {
                unsigned why = node_rejects(&nodes[i], v, exclude);
                for (Reject k = 0; k < _REJECT_MAX; k++)
                        count[k] += (why >> k) & 1;
                if (why)
                        continue;
                unsigned __int128 load = load_with(&nodes[i], v);
                if (!best || load < best_load || (load == best_load && strcmp(nodes[i].n.name, best->n.name) < 0)) {
                        best = &nodes[i];
                        best_load = load;
                }
        }
        if (best)
                return best;
        if (n == 0) {
                snprintf(msg, size,
                         "0/0 nodes are available: no nodes are registered (kvnet-controller --embedded --nodes N "
                         "simulates N nodes).");
                return NULL;
        }
        /* "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match ...": sorted as Kubernetes does */
        char parts[_REJECT_MAX][128];
        const char *sorted[_REJECT_MAX];
        size_t np = 0;
        for (Reject k = 0; k < _REJECT_MAX; k++)
                if (count[k]) {
                        snprintf(parts[np], sizeof parts[np], "%zu %s", count[k], reject_table[k]);
                        sorted[np] = parts[np];
                        np++;
                }
        qsort(sorted, np, sizeof sorted[0], cmp_str);
        int len = snprintf(msg, size, "0/%zu nodes are available:", n);
        for (size_t k = 0; k < np && len >= 0 && (size_t) len < size; k++)
                len += snprintf(msg + len, size - (size_t) len, "%s %s", k ? "," : "", sorted[k]);
        if (len >= 0 && (size_t) len < size)
                snprintf(msg + len, size - (size_t) len, ".");
        return NULL;
}

/* ---- writes ---- */

/* Sets the condition PodScheduled in status (an object): scheduled, or not with message. */
static int set_condition(json_t *status, bool scheduled, const char *message) {
        KCondition c = { .type = "PodScheduled", .status = scheduled ? "True" : "False",
                         .reason = scheduled ? NULL : "Unschedulable", .message = message };
        int r = kstatus_set_condition(status, &c);
        return r < 0 ? r : 0;
}

/* Writes the VMI's phase (with its node and pod when given) and its PodScheduled condition (scheduled, or
 * not with message): 1 when that changed it, 0 when it was so already, < 0 on error. */
static int vmi_set(CtlStore *s, const Vmi *v, const char *phase, const char *node, const char *pod_uid,
                   bool scheduled, const char *message) {
        _cleanup_json_ json_t *cur = ctl_store_ref(s, res_vmi(), v->ns, v->name);
        KvErr e = {};
        int r;
        if (!cur)
                return -ENOENT;
        json_t *old = json_object_get(cur, "status");
        _cleanup_json_ json_t *st = json_is_object(old) ? json_deep_copy(old) : json_object();
        if (!st)
                return -ENOMEM;
        json_object_set_new(st, "phase", json_string(phase));
        if (node) {
                json_object_set_new(st, "nodeName", json_string(node));
                json_object_set_new(st, "activePods", json_pack("{s:s}", pod_uid ? pod_uid : "", node));
        }
        if ((r = set_condition(st, scheduled, message)) < 0)
                return r;
        uint64_t rv = ctl_store_rv(s);
        r = ctl_store_set_status(s, res_vmi(), v->ns, v->name, st, &e);
        if (r < 0) {
                log_warning("VirtualMachineInstance %s/%s: cannot update its status: %s", v->ns, v->name, e.msg);
                return r;
        }
        return ctl_store_rv(s) != rv;
}

int ctl_vmi_label_node(CtlStore *s, const char *ns, const char *name, const char *node) {
        _cleanup_json_ json_t *cur = ctl_store_ref(s, res_vmi(), ns, name), *patch = NULL, *out = NULL;
        KvErr e = {};
        int r;
        if (!cur)
                return -ENOENT;
        if (streq_ptr(json_string_value(json_object_get(json_object_get(json_object_get(cur, "metadata"), "labels"),
                                                        LABEL_NODE_NAME)),
                      node))
                return 0;
        patch = json_pack("{s:{s:{s:s}}}", "metadata", "labels", LABEL_NODE_NAME, node);
        r = patch ? ctl_store_patch(s, res_vmi(), ns, name, patch, &out, &e) : -ENOMEM;
        if (r < 0) {
                log_warning("VirtualMachineInstance %s/%s: cannot label it with its node: %s", ns, name, e.msg);
                return r;
        }
        return 1;
}

/* The VMI is on node with pod: Scheduled, labelled. */
static int vmi_bind(CtlStore *s, const Vmi *v, const char *node, const char *pod_uid) {
        int r1 = ctl_vmi_label_node(s, v->ns, v->name, node);
        int r2 = vmi_set(s, v, "Scheduled", node, pod_uid, true, NULL);
        if (r1 < 0 || r2 < 0)
                return r1 < 0 ? r1 : r2;
        return r1 + r2;
}

/* The Multus annotations of the launcher pod: the VMI's multus networks in the JSON form, each with its namespace
 * (the VMI's when the name has none) and the pod interface net1, net2, ... in order (the node side gives the
 * guest's NIC that interface), and for kvnet delegates the VM interface it is for (args.cni.kvnet.vm, which other
 * plugins ignore); the one marked default replaces the pod network. */
static int multus_annotations(CtlStore *s, const Vmi *v, json_t *ann) {
        _cleanup_json_ json_t *list = json_array();
        if (!list)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < v->spec.n_multus; i++) {
                const char *nn = v->spec.multus[i].network_name, *slash = strchr(nn, '/');
                char ns[256], ifname[16];
                snprintf(ns, sizeof ns, "%.*s", slash ? (int) (slash - nn) : (int) strlen(v->ns), slash ? nn : v->ns);
                const char *name = slash ? slash + 1 : nn;
                if (v->spec.multus[i].is_default) {
                        char full[512];
                        snprintf(full, sizeof full, "%s/%s", ns, name);
                        if (json_object_set_new(ann, ANN_DEFAULT_NETWORK, json_string(full)) < 0)
                                return -ENOMEM;
                        continue;
                }
                /* an unplugged interface keeps its number while the VMI lists it: the others keep their names */
                snprintf(ifname, sizeof ifname, "net%zu", ++k);
                if (v->spec.multus[i].absent)
                        continue;
                json_t *vm = json_pack("{s:s?}", "interface", v->spec.multus[i].name);
                /* the interface's binding, for a kvnet delegate (it overrides the network's, and the pod network's
                 * KVNET_VM_BINDING that CNI_ARGS carries to every delegate) */
                if (vm && (v->spec.multus[i].bridge || v->spec.multus[i].sriov))
                        json_object_set_new(vm, "binding", json_string(v->spec.multus[i].sriov ? "sriov" : "bridge"));
                /* the guest's MAC: the interface's macAddress, else the one the launcher derives for it */
                char mac[KV_MAC_STRLEN];
                const char *want = v->spec.multus[i].mac;
                if (!want && v->spec.multus[i].name) {
                        uint8_t m[6];
                        kv_vm_nic_mac(v->ns, v->name, v->spec.multus[i].name, m);
                        want = kv_mac_fmt(m, mac);
                }
                if (!vm || json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s*, s:{s:{s:o}}}", "name", name,
                                                                 "namespace", ns, "interface", ifname, "mac", want,
                                                                 "cni-args", "kvnet", "vm", vm)) < 0)
                        return -ENOMEM;
        }
        if (json_array_size(list) == 0)
                return 0;
        _cleanup_free_ char *text = json_dumps(list, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text || json_object_set_new(ann, ANN_NETWORKS, json_string(text)) < 0)
                return -ENOMEM;
        return ctl_ipamclaims_annotate(s, v->ns, v->name, ann) < 0 ? -ENOMEM : 0; /* persistent IPs' claims */
}

/* KubeVirt's virt-launcher pod for the VMI, bound to node. */
static json_t *launcher_pod(CtlStore *s, const Vmi *v, const char *node) {
        char gen[80], cpu[32], mem[32];
        /* 14 + 43 + 1 + the store's 5 random characters: a 63-character name, as KubeVirt's */
        snprintf(gen, sizeof gen, "virt-launcher-%.43s-", v->name);
        ctl_quantity_format_milli(v->spec.cpu_milli, cpu);
        ctl_quantity_format_bytes(v->spec.memory, mem);
        _cleanup_json_ json_t *sel = json_pack("{s:s}", LABEL_SCHEDULABLE, "true"), *ann = json_object();
        for (size_t i = 0; sel && i < v->spec.n_node_selector; i++)
                json_object_set_new(sel, v->spec.node_selector[i].key, json_string(v->spec.node_selector[i].value));
        if (!sel || !ann || multus_annotations(s, v, ann) < 0 ||
            json_object_set_new(ann, "kubevirt.io/domain", json_string(v->name)) < 0)
                return NULL;
        return json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s,s:s},s:O,s:[{s:s,s:s,s:s,s:s,s:b,s:b}]},"
                         "s:{s:s,s:O,s:s,s:[{s:s,s:s,s:[s],s:{s:{s:s,s:s}}}]}}",
                         "apiVersion", "v1", "kind", "Pod", "metadata", "generateName", gen, "namespace", v->ns, "labels",
                         "kubevirt.io", "virt-launcher", LABEL_CREATED_BY, v->uid, "vm.kubevirt.io/name", v->name,
                         "annotations", ann, "ownerReferences", "apiVersion", "kubevirt.io/v1", "kind",
                         "VirtualMachineInstance", "name", v->name, "uid", v->uid, "controller", true,
                         "blockOwnerDeletion", true, "spec", "nodeName", node, "nodeSelector", sel, "restartPolicy",
                         "Never", "containers", "name", "compute", "image", "kvnet-launcher", "command",
                         "kvnet-launcher", "resources", "requests", "cpu", cpu, "memory", mem);
}

static int pod_set_pending(CtlStore *s, const char *ns, const char *name) {
        char ts[32];
        KvErr e = {};
        ctl_now_rfc3339(ts);
        _cleanup_json_ json_t *st = json_pack("{s:s,s:s,s:[{s:s,s:s,s:n,s:s}]}", "phase", "Pending", "qosClass",
                                              "Burstable", "conditions", "type", "PodScheduled", "status", "True",
                                              "lastProbeTime", "lastTransitionTime", ts);
        return st ? ctl_store_set_status(s, res_pod(), ns, name, st, &e) : -ENOMEM;
}

/* Creates the launcher pod of v on node nd; the VMI goes Scheduling, then Scheduled. */
static int place(CtlStore *s, const Vmi *v, Node *nd) {
        _cleanup_json_ json_t *pod = launcher_pod(s, v, nd->n.name), *out = NULL;
        KvErr e = {};
        int r = pod ? ctl_store_create(s, res_pod(), v->ns, pod, &out, &e) : -ENOMEM;
        if (r < 0) {
                log_warning("VirtualMachineInstance %s/%s: cannot create its launcher pod: %s", v->ns, v->name,
                            e.msg[0] ? e.msg : strerror(-r));
                ctl_event_at(s, res_vmi(), v->ns, v->name, "Warning", "FailedCreate",
                             "Error creating pod: %s", e.msg[0] ? e.msg : strerror(-r));
                return r;
        }
        const char *pod_name = ctl_md(out, "name"), *pod_uid = ctl_md(out, "uid");
        log_info("VirtualMachineInstance %s/%s: scheduled on %s (launcher pod %s)", v->ns, v->name, nd->n.name,
                 pod_name);
        ctl_event_at(s, res_vmi(), v->ns, v->name, "Normal", "SuccessfulCreate", "Created virtual machine pod %s",
                     pod_name);
        ctl_event(s, res_pod(), out, "Normal", "Scheduled", "Successfully assigned %s/%s to %s", v->ns, pod_name,
                  nd->n.name);
        node_use(nd, v);
        int changed = 1;
        if ((r = pod_set_pending(s, v->ns, pod_name)) < 0)
                return r;
        if ((r = vmi_set(s, v, "Scheduling", NULL, NULL, true, NULL)) < 0)
                return r;
        changed += r;
        if ((r = vmi_bind(s, v, nd->n.name, pod_uid)) < 0)
                return r;
        return changed + r;
}

/* ---- the pass ---- */

/* oldest first, then by namespace and name; NULL (done already) last */
static int cmp_vmi(const void *a, const void *b) {
        const Vmi *x = *(const Vmi *const *) a, *y = *(const Vmi *const *) b;
        if (!x || !y)
                return !x - !y;
        int c = strcmp(x->created ? x->created : "", y->created ? y->created : "");
        if (!c)
                c = strcmp(x->ns, y->ns);
        return c ? c : strcmp(x->name, y->name);
}

static const char *str_or_empty(const char *p) {
        return p ? p : "";
}

/* by namespace and name */
static int cmp_vmi_name(const void *a, const void *b) {
        const Vmi *x = *(const Vmi *const *) a, *y = *(const Vmi *const *) b;
        int c = strcmp(str_or_empty(x->ns), str_or_empty(y->ns));
        return c ? c : strcmp(str_or_empty(x->name), str_or_empty(y->name));
}

/* A launcher pod by the VMI it was made for (its label kubevirt.io/created-by), for lookups by VMI. */
typedef struct PodRef {
        const char *created_by; /* "" when it has none */
        size_t pos;             /* where it is listed: among the pods of one VMI, the first listed comes first */
        json_t *pod;
} PodRef;

static int cmp_pod_ref(const void *a, const void *b) {
        const PodRef *x = a, *y = b;
        int c = strcmp(x->created_by, y->created_by);
        return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* What a pass sees: the nodes with what is placed on them, the VMIs, the pods (the stored objects, shared
 * and read-only; the rest borrowed from them), and the indexes that spare a scan of all of them per VMI. */
typedef struct Cluster {
        json_t *nitems, *vitems;
        json_t *pods; /* collect_pods() drops the ones it deleted */
        Node *nodes;  /* sorted by name */
        size_t nn;
        Vmi *vmis;
        size_t nv;
        const Vmi **by_name; /* the VMIs by namespace and name */
        PodRef *by_vmi;      /* the pods by kubevirt.io/created-by (pods_index()) */
        size_t np;
} Cluster;

static const Vmi *vmi_find(const Cluster *c, const char *ns, const char *name, const char *uid) {
        if (!ns || !name || c->nv == 0)
                return NULL;
        const Vmi key = { .ns = ns, .name = name }, *k = &key;
        const Vmi *const *v = bsearch(&k, c->by_name, c->nv, sizeof *c->by_name, cmp_vmi_name);
        return v && streq_ptr((*v)->uid, uid) ? *v : NULL;
}

/* The index of c->pods by the VMI they were made for (after collect_pods(), which drops pods). */
static int pods_index(Cluster *c) {
        size_t i;
        json_t *p;
        c->by_vmi = calloc(json_array_size(c->pods) ? json_array_size(c->pods) : 1, sizeof *c->by_vmi);
        if (!c->by_vmi)
                return -ENOMEM;
        json_array_foreach(c->pods, i, p) {
                json_t *labels = json_object_get(json_object_get(p, "metadata"), "labels");
                const char *by = json_string_value(json_object_get(labels, LABEL_CREATED_BY));
                c->by_vmi[c->np++] = (PodRef){ .created_by = str_or_empty(by), .pos = i, .pod = p };
        }
        qsort(c->by_vmi, c->np, sizeof *c->by_vmi, cmp_pod_ref);
        return 0;
}

/* The launcher pod of v: by its label kubevirt.io/created-by (KubeVirt's lookup), or NULL. */
static json_t *pod_of(const Cluster *c, const Vmi *v) {
        size_t lo = 0, hi = c->np;
        if (!v->uid)
                return NULL;
        while (lo < hi) { /* the first with that label */
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(c->by_vmi[mid].created_by, v->uid) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (; lo < c->np && streq(c->by_vmi[lo].created_by, v->uid); lo++)
                if (streq_ptr(ctl_md(c->by_vmi[lo].pod, "namespace"), v->ns))
                        return c->by_vmi[lo].pod;
        return NULL;
}

/* Launcher pods whose VMI is gone (or is another one of that name: another uid) are deleted, as Kubernetes'
 * garbage collector does for owner references. */
static int collect_pods(CtlStore *s, Cluster *c) {
        int changed = 0;
        for (size_t i = json_array_size(c->pods); i-- > 0;) {
                json_t *p = json_array_get(c->pods, i);
                const char *owner = NULL, *uid = ctl_controller_uid(p, "VirtualMachineInstance", &owner);
                const char *ns = ctl_md(p, "namespace"), *name = ctl_md(p, "name");
                if (!uid || vmi_find(c, ns, owner, uid))
                        continue;
                json_t *out = NULL;
                KvErr e = {};
                if (ctl_store_delete(s, res_pod(), ns, name, &out, &e) == 0) {
                        log_info("Pod %s/%s: its VirtualMachineInstance %s is gone; deleted", ns, name, owner);
                        ctl_event(s, res_pod(), p, "Normal", "Killing",
                                  "Deleted: its VirtualMachineInstance %s is gone", owner);
                        json_decref(out);
                        changed++;
                }
                json_array_remove(c->pods, i);
        }
        return changed;
}

static void cluster_done(Cluster *c) {
        json_decref(c->nitems);
        json_decref(c->vitems);
        json_decref(c->pods);
        free(c->nodes);
        free(c->vmis);
        free(c->by_name);
        free(c->by_vmi);
}

static int cluster_load(CtlStore *s, Cluster *c) {
        *c = (Cluster){ .nitems = ctl_store_items(s, res_node()),
                        .vitems = ctl_store_items(s, res_vmi()),
                        .pods = ctl_store_items(s, res_pod()) };
        if (!c->nitems || !c->vitems || !c->pods)
                return -ENOMEM;
        c->nn = json_array_size(c->nitems);
        c->nv = json_array_size(c->vitems);
        c->nodes = calloc(c->nn ? c->nn : 1, sizeof *c->nodes);
        c->vmis = calloc(c->nv ? c->nv : 1, sizeof *c->vmis);
        c->by_name = calloc(c->nv ? c->nv : 1, sizeof *c->by_name);
        if (!c->nodes || !c->vmis || !c->by_name)
                return -ENOMEM;
        for (size_t i = 0; i < c->nn; i++) {
                KvErr e = {};
                c->nodes[i].valid = ctl_node_parse(json_array_get(c->nitems, i), &c->nodes[i].n, &e) >= 0;
                if (!c->nodes[i].valid)
                        c->nodes[i].n.name = ctl_md(json_array_get(c->nitems, i), "name");
                if (!c->nodes[i].n.name)
                        c->nodes[i].n.name = "";
        }
        qsort(c->nodes, c->nn, sizeof *c->nodes, cmp_node);
        for (size_t i = 0; i < c->nv; i++) {
                vmi_parse(json_array_get(c->vitems, i), &c->vmis[i]);
                c->by_name[i] = &c->vmis[i];
        }
        qsort(c->by_name, c->nv, sizeof *c->by_name, cmp_vmi_name);
        return 0;
}

static bool pod_done(json_t *pod) {
        const char *phase = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
        return streq_ptr(phase, "Succeeded") || streq_ptr(phase, "Failed");
}

/* What the nodes hold: the VMIs placed on them, and the target pods of the migrations in flight (a VMI
 * being migrated holds its requests on both nodes, as its two pods do). */
static void cluster_count(Cluster *c) {
        for (size_t i = 0; i < c->nv; i++)
                if (holds_resources(&c->vmis[i]))
                        node_use(node_find(c->nodes, c->nn, c->vmis[i].node), &c->vmis[i]);
        size_t i;
        json_t *p;
        json_array_foreach(c->pods, i, p) {
                json_t *labels = json_object_get(json_object_get(p, "metadata"), "labels");
                const char *node = json_string_value(json_object_get(json_object_get(p, "spec"), "nodeName"));
                const char *owner = json_string_value(json_object_get(labels, LABEL_CREATED_BY));
                if (!json_object_get(labels, CTL_LABEL_MIGRATION_JOB) || !node || pod_done(p))
                        continue;
                for (size_t k = 0; k < c->nv; k++)
                        if (streq_ptr(c->vmis[k].uid, owner) && streq_ptr(c->vmis[k].ns, ctl_md(p, "namespace")) &&
                            holds_resources(&c->vmis[k]) && !streq_ptr(c->vmis[k].node, node))
                                node_use(node_find(c->nodes, c->nn, node), &c->vmis[k]);
        }
}

/* NIC hot-plug: the running launcher pods of a running VMI carry the Multus networks its spec has now (an interface
 * added or unplugged since the pod was made); the node side attaches and detaches what changed. */
static int sync_pod_networks(CtlStore *s, const Cluster *c, const Vmi *v) {
        if (!v->valid || !streq_ptr(v->phase, "Running") || !v->uid)
                return 0;
        _cleanup_json_ json_t *ann = json_object();
        if (!ann || multus_annotations(s, v, ann) < 0)
                return -ENOMEM;
        json_t *want = json_object_get(ann, ANN_NETWORKS);
        int changed = 0;
        for (size_t i = 0; i < c->np; i++) {
                json_t *pod = c->by_vmi[i].pod;
                if (!streq(c->by_vmi[i].created_by, v->uid) || !streq_ptr(ctl_md(pod, "namespace"), v->ns) || pod_done(pod))
                        continue;
                json_t *have = json_object_get(json_object_get(json_object_get(pod, "metadata"), "annotations"),
                                               ANN_NETWORKS);
                if (json_equal(have, want) || (!have && !want))
                        continue;
                _cleanup_json_ json_t *patch = json_pack("{s:{s:{s:O}}}", "metadata", "annotations", ANN_NETWORKS,
                                                         want ? want : json_null()),
                                      *out = NULL;
                KvErr e = {};
                int r = patch ? ctl_store_patch(s, res_pod(), v->ns, ctl_md(pod, "name"), patch, &out, &e) : -ENOMEM;
                if (r < 0) {
                        log_warning("Pod %s/%s: cannot update its networks for NIC hot-plug: %s", v->ns,
                                    ctl_md(pod, "name"), e.msg[0] ? e.msg : strerror(-r));
                        continue;
                }
                log_info("Pod %s/%s: networks now %s (VMI %s interfaces changed)", v->ns, ctl_md(pod, "name"),
                         want ? json_string_value(want) : "none", v->name);
                changed++;
        }
        return changed;
}

int ctl_schedule(CtlStore *s) {
        _cleanup_(cluster_done) Cluster c = {};
        int r = cluster_load(s, &c);
        if (r < 0)
                return r;
        _cleanup_free_ Vmi **order = calloc(c.nv ? c.nv : 1, sizeof *order);
        if (!order)
                return -ENOMEM;
        Node *nodes = c.nodes;
        size_t nn = c.nn;
        int changed = collect_pods(s, &c);
        if ((r = pods_index(&c)) < 0)
                return r;
        cluster_count(&c);
        for (size_t i = 0; i < c.nv; i++)
                if ((r = sync_pod_networks(s, &c, &c.vmis[i])) > 0)
                        changed += r;
        size_t nwait = 0;
        for (size_t i = 0; i < c.nv; i++)
                if (waiting(&c.vmis[i]))
                        order[nwait++] = &c.vmis[i];
        /* first the VMIs whose pod exists (created before a restart): they keep it and its node */
        for (size_t i = 0; i < nwait; i++) {
                json_t *pod = pod_of(&c, order[i]);
                const char *node = json_string_value(json_object_get(json_object_get(pod, "spec"), "nodeName"));
                if (!pod || !node)
                        continue;
                node_use(node_find(nodes, nn, node), order[i]);
                if ((r = vmi_bind(s, order[i], node, ctl_md(pod, "uid"))) > 0)
                        log_info("VirtualMachineInstance %s/%s: adopted its launcher pod %s on %s", order[i]->ns,
                                 order[i]->name, ctl_md(pod, "name"), node);
                changed += r > 0 ? r : 0;
                order[i] = NULL;
        }
        /* then the others, oldest first */
        qsort(order, nwait, sizeof order[0], cmp_vmi);
        for (size_t i = 0; i < nwait; i++) {
                const Vmi *v = order[i];
                char msg[1024];
                if (!v)
                        continue;
                Node *nd = v->valid ? pick(nodes, nn, v, NULL, msg, sizeof msg) : NULL;
                if (!v->valid)
                        snprintf(msg, sizeof msg, "%s", v->err.msg);
                r = nd ? place(s, v, nd) : vmi_set(s, v, "Pending", NULL, NULL, false, msg);
                changed += r > 0 ? r : 0;
                if (!nd && r > 0) /* once per change of why, not every pass */
                        ctl_event_at(s, res_vmi(), v->ns, v->name, "Warning", "FailedScheduling", "%s", msg);
        }
        return changed;
}

/* The target pod: the launcher pod on node plus KubeVirt's migration label and its anti-affinity to the
 * VMI's other pods (kubevirt.io/created-by), per node. */
static json_t *target_pod(CtlStore *s, const Vmi *v, const char *node, const char *migration_uid) {
        _cleanup_json_ json_t *pod = launcher_pod(s, v, node);
        json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
        json_t *aff = json_pack("{s:{s:[{s:{s:[{s:s,s:s,s:[s]}]},s:s}]}}", "podAntiAffinity",
                                "requiredDuringSchedulingIgnoredDuringExecution", "labelSelector", "matchExpressions",
                                "key", LABEL_CREATED_BY, "operator", "In", "values", v->uid, "topologyKey",
                                "kubernetes.io/hostname");
        if (!labels || json_object_set_new(labels, CTL_LABEL_MIGRATION_JOB, json_string(migration_uid)) < 0 ||
            json_object_set_new(json_object_get(pod, "spec"), "affinity", aff) < 0)
                return NULL;
        return TAKE_PTR(pod);
}

int ctl_schedule_migration_target(CtlStore *s, json_t *vmi, json_t *added_selector, const char *migration_uid,
                                  json_t **ret_pod, char *msg, size_t size) {
        _cleanup_(cluster_done) Cluster c = {};
        int r = cluster_load(s, &c);
        if (r < 0)
                return r;
        cluster_count(&c);
        Vmi v;
        vmi_parse(vmi, &v);
        if (!v.valid) {
                snprintf(msg, size, "%s", v.err.msg);
                return 0;
        }
        const char *key;
        json_t *val;
        json_object_foreach(added_selector, key, val) {
                if (v.spec.n_node_selector == CTL_SELECTOR_MAX) {
                        snprintf(msg, size,
                                 "spec.addedNodeSelector: the VMI's nodeSelector and it have more than %d labels",
                                 CTL_SELECTOR_MAX);
                        return 0;
                }
                v.spec.node_selector[v.spec.n_node_selector++] = (CtlLabel){ key, json_string_value(val) };
        }
        Node *nd = pick(c.nodes, c.nn, &v, v.node, msg, size);
        if (!nd)
                return 0;
        _cleanup_json_ json_t *pod = target_pod(s, &v, nd->n.name, migration_uid), *out = NULL;
        KvErr e = {};
        r = pod ? ctl_store_create(s, res_pod(), v.ns, pod, &out, &e) : -ENOMEM;
        if (r < 0) {
                log_warning("VirtualMachineInstance %s/%s: cannot create its migration target pod: %s", v.ns, v.name,
                            e.msg[0] ? e.msg : strerror(-r));
                return r;
        }
        log_info("VirtualMachineInstance %s/%s: migration target pod %s on %s", v.ns, v.name, ctl_md(out, "name"),
                 nd->n.name);
        ctl_event(s, res_pod(), out, "Normal", "Scheduled", "Successfully assigned %s/%s to %s", v.ns,
                  ctl_md(out, "name"), nd->n.name);
        if ((r = pod_set_pending(s, v.ns, ctl_md(out, "name"))) < 0 ||
            (r = ctl_store_get(s, res_pod(), v.ns, ctl_md(out, "name"), ret_pod)) < 0)
                return r;
        return 1;
}
