/* SPDX-License-Identifier: Apache-2.0 */
/* The network configuration on stdin, parsed and checked into CniNetConf. */
#include <ctype.h>
#include <strings.h>

#include "cni/cni.h"
#include "common/array.h"
#include "common/json-util.h"
#include "common/proto.h"
#include "common/unixsock.h"

#define SUPPORTED_LIST "0.3.1, 0.4.0, 1.0.0, 1.1.0"

const char *cni_binding_to_string(CniBinding b) {
        switch (b) {
        case CNI_BINDING_BRIDGE: return "bridge";
        case CNI_BINDING_MASQUERADE: return "masquerade";
        case CNI_BINDING_SRIOV: return "sriov";
        }
        return "?";
}

const char *cni_nat_backend_to_string(CniNatBackend b) {
        switch (b) {
        case CNI_NAT_NFTABLES: return "nftables";
        case CNI_NAT_EBPF: return "ebpf";
        }
        return "?";
}

CniNetConf *cni_netconf_free(CniNetConf *c) {
        if (!c)
                return NULL;
        free(c->name);
        free(c->bridge);
        free(c->socket);
        free(c->resource_name);
        json_decref(c->ipam);
        cni_result_free(c->prev_result);
        free(c->port_mappings);
        free(c->ips);
        free(c->vm.namespace_);
        free(c->vm.name);
        free(c->vm.interface);
        for (size_t i = 0; i < c->n_valid_attachments; i++) {
                free(c->valid_attachments[i].container_id);
                free(c->valid_attachments[i].ifname);
        }
        free(c->valid_attachments);
        free(c);
        return NULL;
}

static int dup_to(const char *s, char **ret) {
        char *d = strdup(s);
        if (!d)
                return -ENOMEM;
        free(*ret);
        *ret = d;
        return 0;
}

static bool network_name_valid(const char *s) {
        if (!s || !*s)
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '_' && *c != '.' && *c != '-')
                        return false;
        return true;
}

/* cniVersion / cniVersions -> one of cni_supported_versions. */
static int parse_version(json_t *o, const char **ret, KvErr *e) {
        int r;
        json_t *arr = NULL;
        if ((r = json_get_array(o, "netconf", "cniVersions", false, &arr, e)) < 0)
                return r;
        if (arr) {
                int best = -1;
                for (size_t i = 0; i < json_array_size(arr); i++) {
                        json_t *v = json_array_get(arr, i);
                        if (!json_is_string(v))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "netconf: 'cniVersions[%zu]' must be a string, got %s", i,
                                                 json_type_name(v));
                        int idx = cni_version_index(json_string_value(v));
                        if (idx > best)
                                best = idx;
                }
                if (best >= 0) {
                        *ret = cni_supported_versions[best];
                        return 0;
                }
                /* none of the listed versions is ours: fall back to cniVersion, if any */
        }
        const char *v = NULL;
        if ((r = json_get_string(o, "netconf", "cniVersion", !arr, &v, e)) < 0)
                return r;
        if (!v)
                return kverr_set(e, KV_ERR_INCOMPATIBLE_VERSION, -EINVAL,
                                 "incompatible CNI version: none of 'cniVersions' is supported (supported: "
                                 SUPPORTED_LIST ")");
        int idx = cni_version_index(v);
        if (idx < 0)
                return kverr_set(e, KV_ERR_INCOMPATIBLE_VERSION, -EINVAL,
                                 "incompatible CNI version '%s' (supported: " SUPPORTED_LIST ")", v);
        *ret = cni_supported_versions[idx];
        return 0;
}

static int parse_ipam(json_t *o, CniNetConf *c, KvErr *e) {
        json_t *ipam = NULL;
        int r = json_get_object(o, "netconf", "ipam", false, &ipam, e);
        if (r <= 0)
                return r;
        const char *type = NULL;
        if ((r = json_get_string(ipam, "netconf.ipam", "type", false, &type, e)) < 0)
                return r;
        if (type && !streq(type, "kvnet"))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'ipam.type' is '%s', but kvnet is its own IPAM: drop 'ipam.type', or to use "
                                 "'%s' put it in a plugin before kvnet and chain kvnet after it (without 'ipam')",
                                 type, type);
        c->ipam = json_incref(ipam);
        return 1;
}

static int parse_nat(json_t *o, CniNetConf *c, KvErr *e) {
        json_t *nat = NULL;
        int r = json_get_object(o, "netconf", "nat", false, &nat, e);
        if (r <= 0)
                return r;
        const char *backend = NULL;
        if ((r = json_get_string(nat, "netconf.nat", "backend", false, &backend, e)) < 0)
                return r;
        if (!backend || streq(backend, "nftables"))
                c->nat_backend = CNI_NAT_NFTABLES;
        else if (streq(backend, "ebpf"))
                c->nat_backend = CNI_NAT_EBPF;
        else
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'nat.backend' must be \"nftables\" or \"ebpf\", got '%s'", backend);
        return 0;
}

/* "10.88.0.7/24" or "10.88.0.7". */
static int parse_ip_request(const char *s, CniIpRequest *ret) {
        CniIpRequest ip = { .prefixlen = -1 };
        if (strchr(s, '/')) {
                KvPrefix p;
                if (kv_prefix_parse(s, &p) < 0)
                        return -EINVAL;
                ip.addr = p.addr;
                ip.prefixlen = p.prefixlen;
        } else if (kv_addr_parse(s, &ip.addr) < 0)
                return -EINVAL;
        *ret = ip;
        return 0;
}

static int add_ip(CniNetConf *c, const CniIpRequest *ip) {
        int r = ARRAY_GROW(c->ips, c->cap_ips, c->n_ips + 1);
        if (r < 0)
                return r;
        c->ips[c->n_ips++] = *ip;
        return 0;
}

static int parse_port_mappings(json_t *arr, CniNetConf *c, KvErr *e) {
        size_t n = json_array_size(arr);
        if (n == 0)
                return 0;
        c->port_mappings = calloc(n, sizeof *c->port_mappings);
        if (!c->port_mappings)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char ctx[96];
                snprintf(ctx, sizeof ctx, "runtimeConfig.portMappings[%zu]", i);
                json_t *pm = json_array_get(arr, i);
                CniPortMapping *m = &c->port_mappings[i];
                if (!json_is_object(pm))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s must be an object, got %s", ctx,
                                         json_type_name(pm));
                long long hp = 0, cp = 0;
                int r;
                if ((r = json_get_int(pm, ctx, "hostPort", true, 1, 65535, &hp, e)) < 0)
                        return r;
                if ((r = json_get_int(pm, ctx, "containerPort", true, 1, 65535, &cp, e)) < 0)
                        return r;
                m->host_port = (uint16_t) hp;
                m->container_port = (uint16_t) cp;
                const char *proto = NULL;
                if ((r = json_get_string(pm, ctx, "protocol", false, &proto, e)) < 0)
                        return r;
                if (!proto || !*proto || strcasecmp(proto, "tcp") == 0)
                        strcpy(m->protocol, "tcp");
                else if (strcasecmp(proto, "udp") == 0)
                        strcpy(m->protocol, "udp");
                else
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: 'protocol' must be \"tcp\" or \"udp\", got '%s'", ctx, proto);
                const char *hip = NULL;
                if ((r = json_get_string(pm, ctx, "hostIP", false, &hip, e)) < 0)
                        return r;
                if (hip && *hip && kv_addr_parse(hip, &m->host_ip) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: 'hostIP' must be an IP address, got '%s'", ctx, hip);
                c->n_port_mappings++;
        }
        return 0;
}

/* runtimeConfig.kvnet.vm (or the network config's args.cni.kvnet.vm): only the raw strings; validated together
 * with CNI_ARGS. src names where each one came from, for errors. */
typedef struct RtVm {
        const char *namespace_, *name, *interface, *binding;
        const char *src_namespace, *src_name, *src_interface, *src_binding;
        json_t *ports;
} RtVm;

static int rt_vm_str(json_t *jvm, const char *ctx, const char *key, const char *src, const char **val,
                     const char **val_src, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(jvm, ctx, key, false, &s, e);
        if (r < 0)
                return r;
        if (s && !*val) {
                *val = s;
                *val_src = src;
        }
        return 0;
}

static int parse_rt_vm(json_t *jvm, const char *ctx, const char *src, RtVm *vm, KvErr *e) {
        int r;
        if ((r = rt_vm_str(jvm, ctx, "namespace", src, &vm->namespace_, &vm->src_namespace, e)) < 0 ||
            (r = rt_vm_str(jvm, ctx, "name", src, &vm->name, &vm->src_name, e)) < 0 ||
            (r = rt_vm_str(jvm, ctx, "interface", src, &vm->interface, &vm->src_interface, e)) < 0 ||
            (r = rt_vm_str(jvm, ctx, "binding", src, &vm->binding, &vm->src_binding, e)) < 0)
                return r;
        return 0;
}

static int parse_runtime_config(json_t *o, CniNetConf *c, RtVm *vm, KvErr *e) {
        json_t *rc = NULL;
        int r = json_get_object(o, "netconf", "runtimeConfig", false, &rc, e);
        if (r <= 0)
                return r;

        json_t *arr = NULL;
        if ((r = json_get_array(rc, "runtimeConfig", "portMappings", false, &arr, e)) < 0)
                return r;
        if (arr && (r = parse_port_mappings(arr, c, e)) < 0)
                return r;

        arr = NULL;
        if ((r = json_get_array(rc, "runtimeConfig", "ips", false, &arr, e)) < 0)
                return r;
        for (size_t i = 0; arr && i < json_array_size(arr); i++) {
                json_t *v = json_array_get(arr, i);
                CniIpRequest ip;
                if (!json_is_string(v))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "runtimeConfig: 'ips[%zu]' must be a string, got %s", i, json_type_name(v));
                if (parse_ip_request(json_string_value(v), &ip) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "runtimeConfig: 'ips[%zu]' must be an IP address or CIDR, got '%s'", i,
                                         json_string_value(v));
                if ((r = add_ip(c, &ip)) < 0)
                        return r;
        }

        const char *mac = NULL;
        if ((r = json_get_string(rc, "runtimeConfig", "mac", false, &mac, e)) < 0)
                return r;
        if (mac) {
                if (kv_mac_parse(mac, c->mac) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "runtimeConfig: 'mac' must be a MAC address like 02:00:00:00:00:01, got '%s'",
                                         mac);
                c->has_mac = true;
        }

        json_t *kv = NULL, *jvm = NULL;
        if ((r = json_get_object(rc, "runtimeConfig", "kvnet", false, &kv, e)) < 0)
                return r;
        if (kv && (r = json_get_object(kv, "runtimeConfig.kvnet", "vm", false, &jvm, e)) < 0)
                return r;
        if (jvm) {
                if ((r = parse_rt_vm(jvm, "runtimeConfig.kvnet.vm", "runtimeConfig", vm, e)) < 0)
                        return r;
                if ((r = json_get_array(jvm, "runtimeConfig.kvnet.vm", "ports", false, &vm->ports, e)) < 0)
                        return r;
        }
        return 0;
}

/* The network config's args.cni (CNI's conventions; where Multus puts a network's "cni-args"): ips, mac and
 * kvnet.vm as in runtimeConfig, each used only when runtimeConfig did not set it; other keys are ignored. */
static int parse_args_cni(json_t *o, CniNetConf *c, RtVm *vm, KvErr *e) {
        json_t *args = NULL, *ac = NULL, *arr = NULL, *kv = NULL, *jvm = NULL;
        int r = json_get_object(o, "netconf", "args", false, &args, e);
        if (r <= 0)
                return r;
        if ((r = json_get_object(args, "args", "cni", false, &ac, e)) <= 0)
                return r;
        if ((r = json_get_array(ac, "args.cni", "ips", false, &arr, e)) < 0)
                return r;
        bool want_ips = c->n_ips == 0;
        for (size_t i = 0; arr && i < json_array_size(arr); i++) {
                json_t *v = json_array_get(arr, i);
                CniIpRequest ip;
                if (!json_is_string(v) || parse_ip_request(json_string_value(v), &ip) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "args.cni: 'ips[%zu]' must be an IP address or CIDR string, got %s%s%s", i,
                                         json_is_string(v) ? "'" : "", json_is_string(v) ? json_string_value(v) : json_type_name(v),
                                         json_is_string(v) ? "'" : "");
                if (want_ips && (r = add_ip(c, &ip)) < 0)
                        return r;
        }
        const char *mac = NULL;
        if ((r = json_get_string(ac, "args.cni", "mac", false, &mac, e)) < 0)
                return r;
        if (mac) {
                uint8_t m[6];
                if (kv_mac_parse(mac, m) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "args.cni: 'mac' must be a MAC address like 02:00:00:00:00:01, got '%s'", mac);
                if (!c->has_mac) {
                        memcpy(c->mac, m, 6);
                        c->has_mac = true;
                }
        }
        if ((r = json_get_object(ac, "args.cni", "kvnet", false, &kv, e)) < 0)
                return r;
        if (kv && (r = json_get_object(kv, "args.cni.kvnet", "vm", false, &jvm, e)) < 0)
                return r;
        return jvm ? parse_rt_vm(jvm, "args.cni.kvnet.vm", "args.cni", vm, e) : 0;
}

/* CNI_ARGS IP=/MAC=, used when runtimeConfig did not set them. */
static int apply_args_addresses(const CniArgs *args, CniNetConf *c, KvErr *e) {
        int r;
        if (args->ip && *args->ip && c->n_ips == 0) {
                _cleanup_free_ char *copy = strdup(args->ip);
                if (!copy)
                        return -ENOMEM;
                for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
                        CniIpRequest ip;
                        if (parse_ip_request(p, &ip) < 0)
                                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                                 "CNI_ARGS: 'IP' must be a comma-separated list of IP addresses or "
                                                 "CIDRs, got '%s'",
                                                 args->ip);
                        if ((r = add_ip(c, &ip)) < 0)
                                return r;
                }
        }
        if (args->mac && *args->mac && !c->has_mac) {
                if (kv_mac_parse(args->mac, c->mac) < 0)
                        return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                         "CNI_ARGS: 'MAC' must be a MAC address like 02:00:00:00:00:01, got '%s'",
                                         args->mac);
                c->has_mac = true;
        }
        return 0;
}

static int vm_field(const char *rt_val, const char *rt_src, const char *rt_key, const char *arg_val,
                    const char *arg_key, const char *fallback, char **ret, KvErr *e) {
        if (rt_val) {
                if (!cni_dns_label_valid(rt_val))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: 'kvnet.vm.%s' must be a DNS-1123 label (lowercase letters, "
                                         "digits and '-', at most 63), got '%s'",
                                         rt_src, rt_key, rt_val);
                return dup_to(rt_val, ret);
        }
        if (arg_val && *arg_val) {
                if (!cni_dns_label_valid(arg_val))
                        return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                         "CNI_ARGS: '%s' must be a DNS-1123 label (lowercase letters, digits and '-', "
                                         "at most 63), got '%s'",
                                         arg_key, arg_val);
                return dup_to(arg_val, ret);
        }
        return dup_to(fallback, ret);
}

static int resolve_vm(const RtVm *rt, const CniArgs *args, const CniEnv *env, CniNetConf *c, KvErr *e) {
        if (!rt->name && !(args->vm_name && *args->vm_name))
                return 0;
        int r;
        if ((r = vm_field(rt->name, rt->src_name, "name", args->vm_name, "KVNET_VM_NAME", "", &c->vm.name, e)) < 0)
                return r;
        const char *ns_arg = args->vm_namespace && *args->vm_namespace ? args->vm_namespace : NULL;
        const char *ns_key = "KVNET_VM_NAMESPACE";
        if (!ns_arg && args->k8s_pod_namespace && *args->k8s_pod_namespace) {
                ns_arg = args->k8s_pod_namespace;
                ns_key = "K8S_POD_NAMESPACE";
        }
        if ((r = vm_field(rt->namespace_, rt->src_namespace, "namespace", ns_arg, ns_key, "default", &c->vm.namespace_, e)) < 0)
                return r;
        /* The runtime (kubelet) names the pod's namespace; the VM's identity (its claims: address, MAC) may come from
         * a pod's own annotation (Multus's cni-args), which its author controls: a pod attaches only a VM of its own
         * namespace, so that no tenant can take another namespace's VM's address. */
        const char *pod_ns = args->k8s_pod_namespace && *args->k8s_pod_namespace ? args->k8s_pod_namespace : NULL;
        if (pod_ns && !streq(c->vm.namespace_, pod_ns)) {
                char src[96];
                if (rt->namespace_)
                        snprintf(src, sizeof src, "%s: 'kvnet.vm.namespace'", rt->src_namespace);
                else
                        snprintf(src, sizeof src, "CNI_ARGS: '%s'", ns_key);
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                                 "%s: the VM's namespace '%s' is not the pod's namespace '%s' (K8S_POD_NAMESPACE): a "
                                 "pod attaches only a VM of its own namespace",
                                 src, c->vm.namespace_, pod_ns);
        }
        if (!env->ifname && !rt->interface && !(args->vm_interface && *args->vm_interface))
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                 "environment: the VM interface is unknown: set KVNET_VM_INTERFACE or CNI_IFNAME");
        if ((r = vm_field(rt->interface, rt->src_interface, "interface", args->vm_interface, "KVNET_VM_INTERFACE",
                          env->ifname ? env->ifname : "", &c->vm.interface, e)) < 0)
                return r;
        c->has_vm = true;

        /* The binding is the VM interface's choice (KubeVirt's spec.domain.devices.interfaces[].bridge /
         * masquerade): it may override the network's. */
        const char *b = rt->binding ? rt->binding : (args->vm_binding && *args->vm_binding ? args->vm_binding : NULL);
        if (b) {
                char who[64];
                if (rt->binding)
                        snprintf(who, sizeof who, "%s: 'kvnet.vm.binding'", rt->src_binding);
                else
                        snprintf(who, sizeof who, "CNI_ARGS: 'KVNET_VM_BINDING'");
                if (streq(b, "bridge"))
                        c->binding = CNI_BINDING_BRIDGE;
                else if (streq(b, "masquerade"))
                        c->binding = CNI_BINDING_MASQUERADE;
                else if (streq(b, "sriov")) /* a VF of the network's pool (resourceName is the network's) */
                        c->binding = CNI_BINDING_SRIOV;
                else
                        return kverr_set(e, rt->binding ? KV_ERR_INVALID_CONFIG : KV_ERR_INVALID_ENV, -EINVAL,
                                         "%s must be \"bridge\", \"masquerade\" or \"sriov\", got '%s'", who, b);
                if (c->chained && c->binding == CNI_BINDING_MASQUERADE)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: binding 'masquerade' is not available when kvnet is chained", who);
        }
        size_t i;
        json_t *p;
        json_array_foreach(rt->ports, i, p) {
                char ctx[64];
                snprintf(ctx, sizeof ctx, "runtimeConfig.kvnet.vm.ports[%zu]", i);
                if (i >= CNI_MAX_VM_PORTS)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "%s: at most %d ports", ctx,
                                         CNI_MAX_VM_PORTS);
                if (!json_is_object(p))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be an object, got %s", ctx,
                                         json_type_name(p));
                long long port = 0;
                const char *proto = NULL;
                if ((r = json_get_int(p, ctx, "port", true, 1, 65535, &port, e)) < 0 ||
                    (r = json_get_string(p, ctx, "protocol", false, &proto, e)) < 0)
                        return r;
                CniVmPort *vp = &c->vm.ports[c->vm.n_ports++];
                vp->port = (uint16_t) port;
                if (!proto || strcasecmp(proto, "tcp") == 0)
                        strcpy(vp->protocol, "tcp");
                else if (strcasecmp(proto, "udp") == 0)
                        strcpy(vp->protocol, "udp");
                else
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: 'protocol' must be TCP or UDP, got '%s'", ctx, proto);
        }
        return 0;
}

static int parse_valid_attachments(json_t *o, CniNetConf *c, bool required, KvErr *e) {
        json_t *arr = NULL;
        int r = json_get_array(o, "netconf", "cni.dev/valid-attachments", required, &arr, e);
        if (r <= 0)
                return r;
        size_t n = json_array_size(arr);
        if (n == 0)
                return 0;
        c->valid_attachments = calloc(n, sizeof *c->valid_attachments);
        if (!c->valid_attachments)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char ctx[64];
                snprintf(ctx, sizeof ctx, "cni.dev/valid-attachments[%zu]", i);
                json_t *a = json_array_get(arr, i);
                CniAttachment *att = &c->valid_attachments[c->n_valid_attachments];
                if (!json_is_object(a))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "netconf: '%s' must be an object, got %s",
                                         ctx, json_type_name(a));
                const char *cid = NULL, *ifn = NULL;
                if ((r = json_get_string(a, ctx, "containerID", true, &cid, e)) < 0)
                        return r;
                if ((r = json_get_string(a, ctx, "ifname", true, &ifn, e)) < 0)
                        return r;
                if (!cni_container_id_valid(cid))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'containerID' is invalid, got '%s'",
                                         ctx, cid);
                if (!cni_ifname_valid(ifn))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'ifname' is invalid, got '%s'", ctx,
                                         ifn);
                c->n_valid_attachments++;
                if ((r = dup_to(cid, &att->container_id)) < 0 || (r = dup_to(ifn, &att->ifname)) < 0)
                        return r;
        }
        return 0;
}

/* A bool, or "on"/"off" as the reference SR-IOV CNI accepts for spoofchk/trust. */
static int parse_onoff(json_t *o, const char *key, bool *ret, KvErr *e) {
        json_t *v = json_object_get(o, key);
        if (!v)
                return 0;
        if (json_is_boolean(v)) {
                *ret = json_is_true(v);
                return 0;
        }
        if (json_is_string(v) && streq(json_string_value(v), "on")) {
                *ret = true;
                return 0;
        }
        if (json_is_string(v) && streq(json_string_value(v), "off")) {
                *ret = false;
                return 0;
        }
        if (json_is_string(v))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: '%s' must be a boolean or \"on\"/\"off\", got '%s'", key,
                                 json_string_value(v));
        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                         "netconf: '%s' must be a boolean or \"on\"/\"off\", got %s", key, json_type_name(v));
}

/* resourceName / spoofchk / trust: parsed whatever the binding (DEL must not trip over them). */
static int parse_sriov(json_t *o, CniNetConf *c, KvErr *e) {
        const char *res = NULL;
        int r;
        c->spoofchk = true;
        c->trust = false;
        if ((r = json_get_string(o, "netconf", "resourceName", false, &res, e)) < 0)
                return r;
        if (res) {
                if (!*res || strlen(res) > 127 || !strchr(res, '/') || res[0] == '/' || res[strlen(res) - 1] == '/')
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "netconf: 'resourceName' must be <vendor>/<name> of at most 127 characters "
                                         "(e.g. \"intel.com/sriov_netdevice\"), got '%s'",
                                         res);
                if ((r = dup_to(res, &c->resource_name)) < 0)
                        return r;
        }
        if ((r = parse_onoff(o, "spoofchk", &c->spoofchk, e)) < 0 || (r = parse_onoff(o, "trust", &c->trust, e)) < 0)
                return r;
        return 0;
}

/* The combinations binding "sriov" allows (ADD and CHECK): a VM attachment, main mode, no node NAT. */
static int check_sriov(const CniEnv *env, const CniNetConf *c, KvErr *e) {
        if (c->binding != CNI_BINDING_SRIOV || (env->command != CNI_CMD_ADD && env->command != CNI_CMD_CHECK))
                return 0;
        if (!c->resource_name)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'resourceName' is required with binding 'sriov' (e.g. "
                                 "\"intel.com/sriov_netdevice\")");
        if (c->chained)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: binding 'sriov' cannot be chained after another plugin (prevResult present): "
                                 "the VF is the VM's interface; use kvnet as the main plugin with 'ipam'");
        if (!c->has_vm)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: binding 'sriov' is for VM attachments (name the VM with KVNET_VM_NAME)");
        if (c->ip_masq)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'ipMasq' cannot be used with binding 'sriov': a VF bypasses the node's NAT");
        if (c->n_port_mappings > 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "runtimeConfig: 'portMappings' cannot be used with binding 'sriov': a VF bypasses the "
                                 "node's NAT (got %zu)",
                                 c->n_port_mappings);
        return 0;
}

int cni_netconf_parse(const char *text, size_t len, const CniEnv *env, const CniArgs *args, CniNetConf **ret,
                      KvErr *e) {
        static const CniArgs no_args = {};
        _cleanup_json_ json_t *o = NULL;
        int r;

        if (!args)
                args = &no_args;
        if ((r = json_parse_object(text, len, CNI_MAX_STDIN, "netconf", &o, e)) < 0)
                return r;

        _cleanup_(cni_netconf_freep) CniNetConf *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->is_gateway = true;
        c->anti_spoofing = true;

        if ((r = parse_version(o, &c->cni_version, e)) < 0)
                return r;
        if (env->command == CNI_CMD_CHECK && cni_version_cmp(c->cni_version, "0.4.0") < 0)
                return kverr_set(e, KV_ERR_INCOMPATIBLE_VERSION, -EINVAL, "CHECK is not supported by cniVersion %s",
                                 c->cni_version);
        if ((env->command == CNI_CMD_STATUS || env->command == CNI_CMD_GC) &&
            cni_version_cmp(c->cni_version, "1.1.0") < 0)
                return kverr_set(e, KV_ERR_INCOMPATIBLE_VERSION, -EINVAL, "%s is not supported by cniVersion %s",
                                 cni_command_to_string(env->command), c->cni_version);

        const char *s = NULL;
        if ((r = json_get_string(o, "netconf", "name", true, &s, e)) < 0)
                return r;
        if (!network_name_valid(s))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'name' must be non-empty and contain only [A-Za-z0-9_.-], got '%s'", s);
        if ((r = dup_to(s, &c->name)) < 0)
                return r;

        s = NULL;
        if ((r = json_get_string(o, "netconf", "type", true, &s, e)) < 0)
                return r;
        if (!streq(s, "kvnet"))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "netconf: 'type' must be \"kvnet\", got '%s'", s);

        s = NULL;
        if ((r = json_get_string(o, "netconf", "binding", false, &s, e)) < 0)
                return r;
        if (!s || streq(s, "bridge"))
                c->binding = CNI_BINDING_BRIDGE;
        else if (streq(s, "masquerade"))
                c->binding = CNI_BINDING_MASQUERADE;
        else if (streq(s, "sriov"))
                c->binding = CNI_BINDING_SRIOV;
        else
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'binding' must be \"bridge\", \"masquerade\" or \"sriov\", got '%s'", s);

        s = CNI_DEFAULT_BRIDGE;
        if ((r = json_get_string(o, "netconf", "bridge", false, &s, e)) < 0)
                return r;
        if (!cni_ifname_valid(s))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'bridge' must be an interface name (1..15 characters, no '/', ':' or "
                                 "whitespace), got '%s'",
                                 s);
        if ((r = dup_to(s, &c->bridge)) < 0)
                return r;

        long long v = 0;
        if ((r = json_get_int(o, "netconf", "mtu", false, 0, 65535, &v, e)) < 0)
                return r;
        if (v != 0 && v < 68)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ERANGE, "netconf: 'mtu' must be 0 or 68..65535, got %lld",
                                 v);
        c->mtu = (uint32_t) v;
        v = 0;
        if ((r = json_get_int(o, "netconf", "vlan", false, 0, 4094, &v, e)) < 0)
                return r;
        c->vlan = (uint16_t) v;
        if ((r = json_get_bool(o, "netconf", "ipMasq", false, &c->ip_masq, e)) < 0)
                return r;
        if ((r = json_get_bool(o, "netconf", "isGateway", false, &c->is_gateway, e)) < 0)
                return r;
        if ((r = json_get_bool(o, "netconf", "antiSpoofing", false, &c->anti_spoofing, e)) < 0)
                return r;
        if ((r = parse_nat(o, c, e)) < 0)
                return r;
        if ((r = parse_sriov(o, c, e)) < 0)
                return r;

        /* the config's socket, else the node's (KVNET_NETD_SOCKET: a NetworkAttachmentDefinition is cluster-wide
         * and cannot name one node's socket), else the default */
        s = NULL;
        if ((r = json_get_string(o, "netconf", "socket", false, &s, e)) < 0)
                return r;
        const char *from = "netconf: 'socket'";
        if (!s && env->netd_socket) {
                s = env->netd_socket;
                from = "environment: 'KVNET_NETD_SOCKET'";
        }
        if (!s)
                s = KV_DEFAULT_SOCKET;
        if (s[0] != '/' || strlen(s) > UNIX_PATH_MAX_LEN)
                return kverr_set(e, from[0] == 'n' ? KV_ERR_INVALID_CONFIG : KV_ERR_INVALID_ENV, -EINVAL,
                                 "%s must be an absolute path shorter than 108 bytes, got '%s'", from, s);
        if ((r = dup_to(s, &c->socket)) < 0)
                return r;

        if ((r = parse_ipam(o, c, e)) < 0)
                return r;

        json_t *prev = NULL;
        if ((r = json_get_object(o, "netconf", "prevResult", false, &prev, e)) < 0)
                return r;
        if (prev && (r = cni_result_parse(prev, "prevResult", c->cni_version, &c->prev_result, e)) < 0)
                return r;

        switch (env->command) {
        case CNI_CMD_ADD:
                if (c->prev_result && c->ipam)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "netconf: 'ipam' cannot be set when kvnet is chained after another plugin "
                                         "(prevResult present)");
                if (!c->prev_result && !c->ipam)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "netconf: 'ipam' is required unless kvnet is chained after another plugin "
                                         "(prevResult present)");
                c->chained = c->prev_result != NULL;
                break;
        case CNI_CMD_CHECK:
                /* The runtime passes the cached result of the whole chain, ours included: with
                 * 'ipam' kvnet was the main plugin, without it kvnet was chained. */
                if (!c->prev_result)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "netconf: 'prevResult' is required for CHECK");
                c->chained = !c->ipam;
                break;
        default:
                c->chained = !c->ipam;
                break;
        }

        RtVm rtvm = {};
        if ((r = parse_runtime_config(o, c, &rtvm, e)) < 0)
                return r;
        if ((r = parse_args_cni(o, c, &rtvm, e)) < 0)
                return r;
        if ((r = apply_args_addresses(args, c, e)) < 0)
                return r;
        if (env->command == CNI_CMD_ADD || env->command == CNI_CMD_DEL || env->command == CNI_CMD_CHECK)
                if ((r = resolve_vm(&rtvm, args, env, c, e)) < 0)
                        return r;
        if ((r = parse_valid_attachments(o, c, env->command == CNI_CMD_GC, e)) < 0)
                return r;
        if ((r = check_sriov(env, c, e)) < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}
