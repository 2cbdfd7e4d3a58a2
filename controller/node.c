/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/json-util.h"
#include "common/util.h"
#include "controller/quantity.h"

#define SIM_VERSION "v1.28.0+kvnet" /* what `kubectl get nodes` shows as VERSION */

static const CtlResource *res_node(void) {
        return ctl_resource_find("", "v1", "nodes");
}

int ctl_node_parse(json_t *node, CtlNode *ret, KvErr *e) {
        CtlNode n = {};
        json_t *md = json_object_get(node, "metadata"), *status = json_object_get(node, "status");
        n.name = json_string_value(json_object_get(md, "name"));
        if (!n.name)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "node: 'metadata.name' is required");
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(md, "labels"), k, v) {
                if (n.n_labels == CTL_NODE_LABELS_MAX)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "node %s: more than %d labels", n.name,
                                         CTL_NODE_LABELS_MAX);
                if (json_is_string(v)) /* the store refuses other label values */
                        n.labels[n.n_labels++] = (CtlLabel){ k, json_string_value(v) };
        }
        json_t *alloc = json_object_get(status, "allocatable");
        if (!json_is_object(alloc))
                alloc = json_object_get(status, "capacity");
        char field[300];
        const char *q;
        snprintf(field, sizeof field, "node %s: status.allocatable.cpu", n.name);
        if ((q = json_string_value(json_object_get(alloc, "cpu"))) && ctl_quantity_parse(field, q, true, &n.cpu_milli, e) < 0)
                return -EINVAL;
        snprintf(field, sizeof field, "node %s: status.allocatable.memory", n.name);
        if ((q = json_string_value(json_object_get(alloc, "memory"))) && ctl_quantity_parse(field, q, false, &n.memory, e) < 0)
                return -EINVAL;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(status, "conditions"), i, c) {
                if (streq_ptr(json_string_value(json_object_get(c, "type")), "Ready"))
                        n.ready = streq_ptr(json_string_value(json_object_get(c, "status")), "True");
        }
        n.unschedulable = json_is_true(json_object_get(json_object_get(node, "spec"), "unschedulable"));
        *ret = n;
        return 0;
}

const char *ctl_node_label(const CtlNode *n, const char *key) {
        for (size_t i = 0; i < n->n_labels; i++)
                if (streq(n->labels[i].key, key))
                        return n->labels[i].value;
        return NULL;
}

static json_t *sim_status(json_t *old, uint64_t cpu_milli, uint64_t memory) {
        char cpu[32], mem[32], ts[32];
        struct utsname u = {};
        (void) uname(&u);
        const char *arch = streq(u.machine, "x86_64") ? "amd64" : streq(u.machine, "aarch64") ? "arm64" : u.machine;
        ctl_now_rfc3339(ts);
        ctl_quantity_format_milli(cpu_milli, cpu);
        ctl_quantity_format_bytes(memory, mem);
        json_t *st = json_pack(
                "{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s},s:[{s:s,s:s,s:s,s:s,s:s,s:s}],s:{s:s,s:s,s:s,s:s,s:s,s:s}}",
                "capacity", "cpu", cpu, "memory", mem, "pods", "110", "allocatable", "cpu", cpu, "memory", mem, "pods",
                "110", "conditions", "type", "Ready", "status", "True", "reason", "KubeletReady", "message",
                "simulated by kvnet-controller --nodes (no kubelet runs its pods yet)", "lastHeartbeatTime", ts,
                "lastTransitionTime", ts, "nodeInfo", "kubeletVersion", SIM_VERSION, "kernelVersion", u.release,
                "osImage", "kvnet simulated node", "containerRuntimeVersion", "none (simulated)", "architecture", arch,
                "operatingSystem", "linux");
        /* the same node again: its Ready condition keeps its times (no change, no new resourceVersion) */
        json_t *conds = json_object_get(old, "conditions");
        if (st && json_is_array(conds))
                json_object_set(st, "conditions", conds);
        return st;
}

/* 1..n from "node<i>", else 0 */
static unsigned sim_index(const char *name) {
        char *end = NULL;
        if (strncmp(name, "node", 4) != 0 || name[4] < '1' || name[4] > '9')
                return 0;
        unsigned long i = strtoul(name + 4, &end, 10);
        return *end || i > 100000 ? 0 : (unsigned) i;
}

int ctl_nodes_simulate(CtlStore *s, unsigned n, uint64_t cpu_milli, uint64_t memory, KvErr *e) {
        int changed = 0, r;
        _cleanup_json_ json_t *list = ctl_store_list(s, res_node(), NULL, NULL);
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(list, "items"), i, o) {
                json_t *md = json_object_get(o, "metadata");
                const char *name = json_string_value(json_object_get(md, "name"));
                if (!json_object_get(json_object_get(md, "labels"), CTL_SIM_LABEL) || sim_index(name) <= n)
                        continue;
                json_t *out = NULL;
                if ((r = ctl_store_delete(s, res_node(), NULL, name, &out, e)) < 0)
                        return r;
                json_decref(out);
                changed++;
        }
        for (unsigned k = 1; k <= n; k++) {
                char name[32];
                snprintf(name, sizeof name, "node%u", k);
                _cleanup_json_ json_t *cur = NULL, *out = NULL, *st = NULL;
                if (ctl_store_get(s, res_node(), NULL, name, &cur) < 0) {
                        _cleanup_json_ json_t *obj = json_pack(
                                "{s:s,s:s,s:{s:s,s:{s:s,s:s,s:s,s:s,s:s}},s:{}}", "apiVersion", "v1", "kind", "Node",
                                "metadata", "name", name, "labels", "kubernetes.io/hostname", name, "kubernetes.io/os",
                                "linux", "kubevirt.io/schedulable", "true", "node-role.kubernetes.io/worker", "",
                                CTL_SIM_LABEL, "true", "spec");
                        if (!obj)
                                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "nodes: out of memory");
                        if ((r = ctl_store_create(s, res_node(), NULL, obj, &cur, e)) < 0)
                                return r;
                        changed++;
                }
                st = sim_status(json_object_get(cur, "status"), cpu_milli, memory);
                uint64_t rv = ctl_store_rv(s);
                if (!st)
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "nodes: out of memory");
                if ((r = ctl_store_set_status(s, res_node(), NULL, name, st, e)) < 0)
                        return r;
                changed += ctl_store_rv(s) != rv;
        }
        return changed;
}
