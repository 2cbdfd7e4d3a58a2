/* SPDX-License-Identifier: Apache-2.0 */
/* The launcher pod and its VMI → what the pod runtime runs; the pod's status as kubelet writes it. */
#include <errno.h>
#include <string.h>

#include "agent/agent.h"
#include "common/addr.h"
#include "common/json-util.h"
#include "common/kstatus.h"
#include "handler/handler.h"

static json_t *md(json_t *obj, const char *key) {
        return json_object_get(json_object_get(obj, "metadata"), key);
}

static const char *label(json_t *obj, const char *key) {
        return json_string_value(json_object_get(md(obj, "labels"), key));
}

bool agent_pod_is_launcher(json_t *pod) {
        return streq_ptr(label(pod, AGENT_LABEL_APP), "virt-launcher");
}

const char *agent_pod_vmi_name(json_t *pod) {
        size_t i;
        json_t *o;
        json_array_foreach(md(pod, "ownerReferences"), i, o)
                if (json_is_true(json_object_get(o, "controller")) &&
                    streq_ptr(json_string_value(json_object_get(o, "kind")), "VirtualMachineInstance"))
                        return json_string_value(json_object_get(o, "name"));
        return label(pod, AGENT_LABEL_VM_NAME);
}

bool agent_pod_finished(json_t *pod) {
        const char *phase = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
        return streq_ptr(phase, "Succeeded") || streq_ptr(phase, "Failed");
}

/* The name of the VMI's pod network (spec.networks[] with "pod", or the Multus network with "default": true that
 * replaces it: the pod's cluster network then, through the meta plugin's default-network annotation), or NULL. */
static const char *pod_network(json_t *spec) {
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(spec, "networks"), i, n)
                if (json_object_get(n, "pod") || json_is_true(json_object_get(json_object_get(n, "multus"), "default")))
                        return json_string_value(json_object_get(n, "name"));
        return NULL;
}

static json_t *vmi_iface(json_t *spec, const char *name, size_t *ret_i) {
        size_t i;
        json_t *ifc;
        json_array_foreach(json_object_get(json_object_get(json_object_get(spec, "domain"), "devices"), "interfaces"), i, ifc)
                if (streq_ptr(json_string_value(json_object_get(ifc, "name")), name)) {
                        *ret_i = i;
                        return ifc;
                }
        return NULL;
}

/* The VMI's secondary NICs: each non-default Multus network with a bridge-bound interface of the same name is
 * the pod's net<k> (hdl_multus_pod_ifname(): as the controller's annotation names them). */
/* Whether the pod's networks annotation (the controller's JSON list) names pod interface ifname: a NIC hot-plugged
 * into a running VMI is attached once its pod has the network. An annotation in another form names them all. */
static bool pod_has_network(json_t *pod, const char *ifname) {
        const char *text = json_string_value(json_object_get(md(pod, "annotations"), AGENT_ANN_NETWORKS));
        if (!text)
                return false;
        _cleanup_json_ json_t *list = json_loads(text, 0, NULL);
        if (!json_is_array(list))
                return true;
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o)
                if (streq_ptr(json_string_value(json_object_get(o, "interface")), ifname))
                        return true;
        return false;
}

static int launch_nics(json_t *pod, json_t *spec, AgentLaunch *l, KvErr *e) {
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(spec, "networks"), i, n) {
                json_t *mu = json_object_get(n, "multus");
                if (!mu || json_is_true(json_object_get(mu, "default")))
                        continue;
                const char *name = json_string_value(json_object_get(n, "name"));
                size_t fi = 0;
                json_t *ifc = name ? vmi_iface(spec, name, &fi) : NULL;
                if (!ifc)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "VMI %s/%s: no 'spec.domain.devices.interfaces[]' named '%s' (spec.networks[%zu])",
                                         l->vm_namespace, l->vm_name, name ? name : "", i);
                char buf[16];
                const char *ifname = hdl_multus_pod_ifname(spec, name, buf);
                if (streq_ptr(json_string_value(json_object_get(ifc, "state")), "absent"))
                        continue; /* unplugged */
                bool sriov = json_object_get(ifc, "sriov") != NULL;
                if (!json_object_get(ifc, "bridge") && !sriov)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                         "VMI %s/%s: 'spec.domain.devices.interfaces[%zu]' (%s): only the bridge and sriov "
                                         "bindings run on a Multus network on kvnet-node",
                                         l->vm_namespace, l->vm_name, fi, name);
                if (!pod_has_network(pod, ifname))
                        continue; /* hot-plugged, and not yet the pod's */
                if (l->n_nics == NODE_POD_NICS_MAX)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "VMI %s/%s: more than %d Multus networks",
                                         l->vm_namespace, l->vm_name, NODE_POD_NICS_MAX);
                snprintf(l->ifnames[l->n_nics], sizeof l->ifnames[l->n_nics], "%s", ifname);
                l->nics[l->n_nics] = (NodePodNic){ name, l->ifnames[l->n_nics], sriov };
                l->n_nics++;
        }
        return 0;
}

int agent_pod_nic_pci(json_t *pod, const char *ifname, char ret[static 16], KvErr *e) {
        const char *text = json_string_value(json_object_get(md(pod, "annotations"), AGENT_ANN_NETWORK_STATUS));
        if (!text)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT, "pod: no '" AGENT_ANN_NETWORK_STATUS "' annotation");
        json_error_t jerr;
        _cleanup_json_ json_t *list = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_array(list))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "pod: '" AGENT_ANN_NETWORK_STATUS "' is not a JSON list%s%s", list ? "" : ": ",
                                 list ? "" : jerr.text);
        json_t *st = json_array_find_str(list, "interface", ifname);
        if (!st)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                 "pod: '" AGENT_ANN_NETWORK_STATUS "' has no interface '%s'", ifname);
        json_t *di = json_object_get(st, "device-info");
        const char *pci = json_string_value(json_object_get(json_object_get(di, "pci"), "pci-address"));
        if (!pci)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                 "pod: interface '%s' (network '%s') has no device-info.pci.pci-address in '"
                                 AGENT_ANN_NETWORK_STATUS "': its delegate gave it no VF",
                                 ifname, json_string_value(json_object_get(st, "name")) ?: "");
        /* input from the API: the launcher checks it again before libvirt sees it */
        if (kv_pci_parse(pci, NULL, NULL, NULL, NULL) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "pod: interface '%s': device-info.pci.pci-address '%.32s' is not a PCI address "
                                 "(DDDD:BB:SS.F)",
                                 ifname, pci);
        snprintf(ret, 16, "%s", pci);
        return 0;
}

int agent_launch_from(json_t *pod, json_t *vmi, AgentLaunch *ret, KvErr *e) {
        const char *uid = json_string_value(md(vmi, "uid")), *by = label(pod, AGENT_LABEL_CREATED_BY);
        if (!uid || !streq_ptr(by, uid))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ESRCH,
                                 "pod label '" AGENT_LABEL_CREATED_BY "' is '%.64s', not the VMI's uid '%.64s'",
                                 by ? by : "", uid ? uid : "");
        *ret = (AgentLaunch){ .vm_namespace = json_string_value(md(vmi, "namespace")),
                              .vm_name = json_string_value(md(vmi, "name")),
                              .binding = _NODE_POD_BINDING_INVALID,
                              .grace_seconds = -1 };
        if (!ret->vm_namespace || !ret->vm_name)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "VMI: 'metadata.namespace' and 'metadata.name' are required");
        json_t *spec = json_object_get(vmi, "spec");
        json_t *grace = json_object_get(spec, "terminationGracePeriodSeconds");
        if (grace) {
                if (!json_is_integer(grace) || json_integer_value(grace) < 0 || json_integer_value(grace) > 86400)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "VMI: 'spec.terminationGracePeriodSeconds' must be 0..86400");
                ret->grace_seconds = (int) json_integer_value(grace);
        }
        const char *net = pod_network(spec);
        if (!net)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "VMI %s/%s: 'spec.networks' has no pod network and no Multus default network "
                                 "(kvnet-node runs VMs on the pod's cluster network)",
                                 ret->vm_namespace, ret->vm_name);
        size_t i = 0;
        json_t *ifc = vmi_iface(spec, net, &i);
        if (ifc) {
                ret->interface = net;
                for (NodePodBinding b = 0; b < _NODE_POD_BINDING_MAX; b++)
                        if (json_object_get(ifc, node_pod_binding_to_string(b)))
                                ret->binding = b;
                if (ret->binding < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                         "VMI %s/%s: 'spec.domain.devices.interfaces[%zu]' (%s): only the bridge and "
                                         "masquerade bindings run on the pod network",
                                         ret->vm_namespace, ret->vm_name, i, net);
                return launch_nics(pod, spec, ret, e);
        }
        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                         "VMI %s/%s: no 'spec.domain.devices.interfaces[]' named '%s' (the pod network)",
                         ret->vm_namespace, ret->vm_name, net);
}

const char *agent_pod_phase(const char *vmi_phase) {
        if (streq_ptr(vmi_phase, "Running") || streq_ptr(vmi_phase, "Succeeded") || streq_ptr(vmi_phase, "Failed"))
                return vmi_phase;
        return "Pending";
}

static int set_ips(json_t *st, const char *key, const char *one, const char *list_key, const char *a, const char *b) {
        json_t *l = json_array();
        if (!l || json_object_set_new(st, list_key, l) < 0)
                return -ENOMEM;
        const char *ips[2] = { a, b };
        for (size_t i = 0; i < 2; i++)
                if (ips[i] && ips[i][0] && json_array_append_new(l, json_pack("{s:s}", "ip", ips[i])) < 0)
                        return -ENOMEM;
        if (json_array_size(l) == 0) {
                (void) json_object_del(st, key);
                (void) json_object_del(st, list_key);
                return 0;
        }
        return json_object_set_new(st, key, json_string(one)) < 0 ? -ENOMEM : 0;
}

json_t *agent_pod_status(json_t *old, const AgentPodStatus *s) {
        _cleanup_json_ json_t *st = json_is_object(old) ? json_deep_copy(old) : json_object();
        if (!st)
                return NULL;
        bool running = streq(s->phase, "Running"), failed = streq(s->phase, "Failed"),
             done = failed || streq(s->phase, "Succeeded");
        const char *ready = running ? "True" : "False";
        const char *why = running ? NULL : done ? "PodCompleted" : "ContainersNotReady";
        const KCondition conds[] = {
                { "PodScheduled", "True", NULL, NULL },
                { "Initialized", "True", NULL, NULL },
                { "ContainersReady", ready, why, NULL },
                { "Ready", ready, why, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(conds); i++)
                if (kstatus_set_condition(st, &conds[i]) < 0)
                        return NULL;
        const char *ip4 = s->ip4 && s->ip4[0] ? s->ip4 : NULL, *ip6 = s->ip6 && s->ip6[0] ? s->ip6 : NULL;
        if (json_object_set_new(st, "phase", json_string(s->phase)) < 0 ||
            set_ips(st, "podIP", ip4 ? ip4 : ip6, "podIPs", ip4, ip6) < 0 ||
            set_ips(st, "hostIP", s->host_ip, "hostIPs", s->host_ip, NULL) < 0)
                return NULL;
        if (s->start_time && json_object_set_new(st, "startTime", json_string(s->start_time)) < 0)
                return NULL;
        (void) json_object_del(st, "reason");
        (void) json_object_del(st, "message");
        if (failed && (json_object_set_new(st, "reason", json_string("Error")) < 0 ||
                       (s->message && json_object_set_new(st, "message", json_string(s->message)) < 0)))
                return NULL;
        /* the one container, "compute": running, terminated (exit code 0 or 1), or waiting */
        json_t *state;
        if (running)
                state = json_pack("{s:{s:s*}}", "running", "startedAt", s->start_time);
        else if (done)
                state = json_pack("{s:{s:i,s:s,s:s*}}", "terminated", "exitCode", failed ? 1 : 0, "reason",
                                  failed ? "Error" : "Completed", "message", failed ? s->message : NULL);
        else
                state = json_pack("{s:{s:s}}", "waiting", "reason", "ContainerCreating");
        json_t *cs = state ? json_pack("[{s:s,s:s,s:s,s:b,s:b,s:i,s:o}]", "name", "compute", "image", "kvnet-launcher",
                                       "imageID", "", "ready", running, "started", running, "restartCount", 0, "state",
                                       state)
                           : NULL;
        if (!cs || json_object_set_new(st, "containerStatuses", cs) < 0)
                return NULL;
        return TAKE_PTR(st);
}
