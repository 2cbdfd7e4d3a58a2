/* SPDX-License-Identifier: Apache-2.0 */
/* The request to netd (docs/protocol.md), built from the typed env + config. */
#include "cni/cni.h"
#include "common/json-util.h"

int cni_request_timeout_ms(CniCommand c) {
        return c == CNI_CMD_STATUS ? 5 * 1000 : 60 * 1000;
}

static int add(json_t *o, const char *key, json_t *v) {
        /* json_object_set_new steals v even on failure */
        return json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

static json_t *network_json(const CniNetConf *c) {
        _cleanup_json_ json_t *n = json_object();
        if (!n)
                return NULL;
        int r = 0;
        r |= add(n, "name", json_string(c->name));
        r |= add(n, "binding", json_string(cni_binding_to_string(c->binding)));
        r |= add(n, "bridge", json_string(c->bridge));
        r |= add(n, "mtu", json_integer(c->mtu));
        r |= add(n, "vlan", json_integer(c->vlan));
        r |= add(n, "ipMasq", json_boolean(c->ip_masq));
        r |= add(n, "isGateway", json_boolean(c->is_gateway));
        r |= add(n, "antiSpoofing", json_boolean(c->anti_spoofing));
        r |= add(n, "natBackend", json_string(cni_nat_backend_to_string(c->nat_backend)));
        if (c->binding == CNI_BINDING_SRIOV) {
                if (c->resource_name)
                        r |= add(n, "resourceName", json_string(c->resource_name));
                r |= add(n, "spoofchk", json_boolean(c->spoofchk));
                r |= add(n, "trust", json_boolean(c->trust));
        }
        if (c->ipam)
                r |= add(n, "ipam", json_incref(c->ipam));
        return r < 0 ? NULL : TAKE_PTR(n);
}

static json_t *request_json(const CniNetConf *c) {
        _cleanup_json_ json_t *q = json_object();
        json_t *ips = json_array(), *pms = json_array();
        if (!q || add(q, "ips", ips) < 0 || add(q, "portMappings", pms) < 0)
                return NULL;
        int r = 0;
        char b[KV_ADDR_STRLEN];
        for (size_t i = 0; i < c->n_ips; i++) {
                const CniIpRequest *ip = &c->ips[i];
                if (ip->prefixlen >= 0) {
                        KvPrefix p = { .addr = ip->addr, .prefixlen = (uint8_t) ip->prefixlen };
                        kv_prefix_fmt(&p, b);
                } else
                        kv_addr_fmt(&ip->addr, b);
                r |= json_array_append_new(ips, json_string(b)) < 0 ? -ENOMEM : 0;
        }
        if (c->has_mac) {
                char mb[KV_MAC_STRLEN];
                r |= add(q, "mac", json_string(kv_mac_fmt(c->mac, mb)));
        }
        for (size_t i = 0; i < c->n_port_mappings; i++) {
                const CniPortMapping *m = &c->port_mappings[i];
                json_t *pm = json_pack("{s:i,s:i,s:s,s:s}", "hostPort", (int) m->host_port, "containerPort",
                                       (int) m->container_port, "protocol", m->protocol, "hostIP",
                                       m->host_ip.family ? kv_addr_fmt(&m->host_ip, b) : "");
                r |= json_array_append_new(pms, pm) < 0 ? -ENOMEM : 0;
        }
        return r < 0 ? NULL : TAKE_PTR(q);
}

static int attachment_args(const CniEnv *env, const CniNetConf *c, json_t **ret) {
        _cleanup_json_ json_t *a = json_object();
        if (!a)
                return -ENOMEM;
        int r = 0;
        r |= add(a, "containerID", json_string(env->container_id ? env->container_id : ""));
        r |= add(a, "ifname", json_string(env->ifname ? env->ifname : ""));
        r |= add(a, "netns", json_string(env->netns ? env->netns : ""));
        if (c->has_vm) {
                json_t *vm = json_pack("{s:s,s:s,s:s}", "namespace", c->vm.namespace_, "name", c->vm.name,
                                       "interface", c->vm.interface);
                if (vm && c->vm.n_ports > 0) {
                        json_t *ports = json_array();
                        for (size_t i = 0; ports && i < c->vm.n_ports; i++)
                                r |= json_array_append_new(ports, json_pack("{s:i,s:s}", "port",
                                                                            (int) c->vm.ports[i].port, "protocol",
                                                                            c->vm.ports[i].protocol));
                        r |= add(vm, "ports", ports);
                }
                r |= add(a, "vm", vm);
        }
        r |= add(a, "network", network_json(c));
        r |= add(a, "chained", json_boolean(c->chained));
        if (c->prev_result) {
                json_t *prev = NULL;
                int k = cni_result_to_json(c->prev_result, CNI_LATEST_VERSION, &prev);
                if (k < 0)
                        return k;
                r |= add(a, "prevResult", prev);
        }
        r |= add(a, "request", request_json(c));
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(a);
        return 0;
}

int cni_request_build(const CniEnv *env, const CniNetConf *c, const char **ret_op, json_t **ret_args) {
        json_t *args = NULL;
        const char *op;
        int r;

        switch (env->command) {
        case CNI_CMD_ADD:
        case CNI_CMD_DEL:
        case CNI_CMD_CHECK:
                op = env->command == CNI_CMD_ADD ? "add" : env->command == CNI_CMD_DEL ? "del" : "check";
                if ((r = attachment_args(env, c, &args)) < 0)
                        return r;
                break;
        case CNI_CMD_STATUS:
                op = "status";
                args = json_pack("{s:s}", "network", c->name);
                if (!args)
                        return -ENOMEM;
                break;
        case CNI_CMD_GC: {
                op = "gc";
                _cleanup_json_ json_t *a = json_pack("{s:s,s:[]}", "network", c->name, "validAttachments");
                if (!a)
                        return -ENOMEM;
                json_t *arr = json_object_get(a, "validAttachments");
                for (size_t i = 0; i < c->n_valid_attachments; i++)
                        if (json_array_append_new(arr, json_pack("{s:s,s:s}", "containerID",
                                                                 c->valid_attachments[i].container_id, "ifname",
                                                                 c->valid_attachments[i].ifname)) < 0)
                                return -ENOMEM;
                args = TAKE_PTR(a);
                break;
        }
        default:
                return -EINVAL;
        }
        *ret_op = op;
        *ret_args = args;
        return 0;
}
