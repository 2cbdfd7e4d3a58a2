/* SPDX-License-Identifier: Apache-2.0 */
/* The one place where netd turns an add/del/check request from the socket into a typed struct. */
#include <netinet/in.h>
#include <stdio.h>

#include "common/json-util.h"
#include "netd/core/netd-priv.h"
#include "netd/link/vlan.h"

static bool valid_name(const char *s, size_t max, bool allow_upper) {
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        /* As the CNI spec asks of container IDs and network names: start alphanumeric. */
        if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9')))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                          (allow_upper && c >= 'A' && c <= 'Z');
                if (!ok)
                        return false;
        }
        return true;
}

/* RFC 1123 label, as Kubernetes names it: lowercase alphanumerics and '-', at most 63. */
static bool valid_dns_label(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

static bool valid_ifname(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= 16 || streq(s, ".") || streq(s, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] == '/' || s[i] == ':' || s[i] <= ' ')
                        return false;
        return true;
}

static int get_str(json_t *o, const char *ctx, const char *key, bool required, char *dst, size_t n, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(o, ctx, key, required, &s, e);
        if (r <= 0)
                return r;
        if (strlen(s) >= n)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENAMETOOLONG, "%s: '%s' is too long (%zu bytes, max %zu)",
                                 ctx, key, strlen(s), n - 1);
        strcpy(dst, s);
        return 1;
}

static int parse_prev_result(json_t *prev, AttachRequest *req, KvErr *e) {
        json_t *ifaces = json_object_get(prev, "interfaces");
        json_t *ips = json_object_get(prev, "ips");
        if (ips && !json_is_array(ips))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "prevResult: 'ips' must be an array, got %s",
                                 json_type_name(ips));
        if (ifaces && !json_is_array(ifaces))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "prevResult: 'interfaces' must be an array, got %s", json_type_name(ifaces));
        size_t i;
        json_t *v;
        json_array_foreach(ips, i, v) {
                char ctx[64];
                snprintf(ctx, sizeof ctx, "prevResult.ips[%zu]", i);
                const char *addr = NULL, *gw = NULL;
                int r;
                if ((r = json_get_string(v, ctx, "address", true, &addr, e)) < 0 ||
                    (r = json_get_string(v, ctx, "gateway", false, &gw, e)) < 0)
                        return r;
                if (req->n_prev_ips >= EP_MAX_ADDRS)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "prevResult: more than %d ips",
                                         EP_MAX_ADDRS);
                size_t k = req->n_prev_ips;
                if (kv_prefix_parse(addr, &req->prev_ips[k]) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'address' is not a CIDR: '%s'",
                                         ctx, addr);
                if (gw) {
                        if (kv_addr_parse(gw, &req->prev_gws[k]) < 0)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s: 'gateway' is not an address: '%s'", ctx, gw);
                        req->prev_has_gw[k] = true;
                }
                long long idx = -1;
                if ((r = json_get_int(v, ctx, "interface", false, 0, 1 << 20, &idx, e)) < 0)
                        return r;
                if (idx >= 0) {
                        json_t *iface = json_array_get(ifaces, (size_t) idx);
                        if (!iface)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s: 'interface' %lld is not an index of prevResult.interfaces", ctx,
                                                 idx);
                        const char *sbx = json_string_value(json_object_get(iface, "sandbox"));
                        const char *name = json_string_value(json_object_get(iface, "name"));
                        if (sbx && *sbx && name && !req->prev_ifname[0] && strlen(name) < sizeof req->prev_ifname)
                                strcpy(req->prev_ifname, name);
                }
                req->n_prev_ips++;
        }
        return 0;
}

/* Entry i of a port list (portMappings, vm.ports): its name for messages in ctx ("list[i]"), and the limit. */
static int port_entry_ctx(const char *list, size_t i, char ctx[static 64], KvErr *e) {
        snprintf(ctx, 64, "%s[%zu]", list, i);
        if (i >= EP_MAX_PORTS)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "%s: more than %d entries", list, EP_MAX_PORTS);
        return 0;
}

/* A port entry's optional "protocol": tcp (the default) or udp, in any case. */
static int get_port_proto(json_t *v, const char *ctx, uint8_t *ret, KvErr *e) {
        const char *proto = NULL;
        int r = json_get_string(v, ctx, "protocol", false, &proto, e);
        if (r < 0)
                return r;
        if (!proto || strcasecmp(proto, "tcp") == 0)
                *ret = IPPROTO_TCP;
        else if (strcasecmp(proto, "udp") == 0)
                *ret = IPPROTO_UDP;
        else
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'protocol' must be tcp or udp, got '%s'", ctx,
                                 proto);
        return 0;
}

static int parse_port_mappings(json_t *arr, AttachRequest *req, KvErr *e) {
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
                char ctx[64];
                int r = port_entry_ctx("portMappings", i, ctx, e);
                if (r < 0)
                        return r;
                if (!json_is_object(v))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be an object, got %s", ctx,
                                         json_type_name(v));
                EpPortMapping *p = &req->pm[i];
                long long hp = 0, cp = 0;
                const char *hip = NULL;
                if ((r = json_get_int(v, ctx, "hostPort", true, 1, 65535, &hp, e)) < 0 ||
                    (r = json_get_int(v, ctx, "containerPort", true, 1, 65535, &cp, e)) < 0 ||
                    (r = get_port_proto(v, ctx, &p->proto, e)) < 0 ||
                    (r = json_get_string(v, ctx, "hostIP", false, &hip, e)) < 0)
                        return r;
                p->host_port = (uint16_t) hp;
                p->container_port = (uint16_t) cp;
                if (hip && *hip && kv_addr_parse(hip, &p->host_ip) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'hostIP' is not an address: '%s'",
                                         ctx, hip);
                for (size_t j = 0; j < i; j++)
                        if (req->pm[j].host_port == p->host_port && req->pm[j].proto == p->proto &&
                            kv_addr_equal(&req->pm[j].host_ip, &p->host_ip))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s: hostPort %u/%s is listed twice", ctx, p->host_port,
                                                 p->proto == IPPROTO_UDP ? "udp" : "tcp");
                req->n_pm = i + 1;
        }
        return 0;
}

int attach_request_parse(json_t *args, const char *verb, bool need_full, AttachRequest *ret, KvErr *e) {
        AttachRequest *req = ret;
        memset(req, 0, sizeof *req);
        const char *ctx = verb;
        int r;

        if (!json_is_object(args))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: 'args' must be an object", verb);

        if ((r = get_str(args, ctx, "containerID", true, req->container_id, sizeof req->container_id, e)) < 0 ||
            (r = get_str(args, ctx, "ifname", true, req->ifname, sizeof req->ifname, e)) < 0 ||
            (r = get_str(args, ctx, "netns", need_full, req->netns, sizeof req->netns, e)) < 0)
                return r;
        if (!valid_name(req->container_id, 255, true))
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "%s: 'containerID' is not valid: '%s'", ctx,
                                 req->container_id);
        if (!valid_ifname(req->ifname))
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "%s: 'ifname' is not a valid interface name: '%s'",
                                 ctx, req->ifname);

        json_t *net = NULL;
        if ((r = json_get_object(args, ctx, "network", true, &net, e)) < 0)
                return r;
        if ((r = get_str(net, "network", "name", true, req->network, sizeof req->network, e)) < 0)
                return r;
        if (!valid_name(req->network, 127, true))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "network: 'name' is not valid: '%s'",
                                 req->network);

        strcpy(req->binding, "bridge");
        strcpy(req->bridge, "kvbr0");
        strcpy(req->nat_backend, "nftables");
        req->is_gateway = true;
        req->antispoof = true;
        long long x;
        if ((r = get_str(net, "network", "binding", false, req->binding, sizeof req->binding, e)) < 0 ||
            (r = get_str(net, "network", "bridge", false, req->bridge, sizeof req->bridge, e)) < 0 ||
            (r = get_str(net, "network", "natBackend", false, req->nat_backend, sizeof req->nat_backend, e)) < 0 ||
            (r = json_get_bool(net, "network", "ipMasq", false, &req->ipmasq, e)) < 0 ||
            (r = json_get_bool(net, "network", "isGateway", false, &req->is_gateway, e)) < 0 ||
            (r = json_get_bool(net, "network", "antiSpoofing", false, &req->antispoof, e)) < 0)
                return r;
        x = 0;
        if ((r = json_get_int(net, "network", "mtu", false, 0, 65535, &x, e)) < 0)
                return r;
        if (x != 0 && x < 68)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ERANGE, "network: 'mtu' must be 0 or 68..65535, got %lld",
                                 x);
        req->mtu = (uint32_t) x;
        x = 0;
        if ((r = json_get_int(net, "network", "vlan", false, 0, 4094, &x, e)) < 0)
                return r;
        req->vlan = (uint16_t) x;
        req->binding_kind = binding_kind_from_string(req->binding);
        if (!binding_kind_configurable(req->binding_kind))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "network: 'binding' must be bridge, masquerade or sriov, got '%s'", req->binding);
        if (nat_backend_kind_from_string(req->nat_backend) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "network: 'natBackend' must be nftables or ebpf, got '%s'", req->nat_backend);
        if (!valid_ifname(req->bridge))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "network: 'bridge' is not a valid interface name: '%s'", req->bridge);
        req->spoofchk = true;
        if ((r = get_str(net, "network", "resourceName", false, req->resource_name, sizeof req->resource_name, e)) <
                    0 ||
            (r = json_get_bool(net, "network", "spoofchk", false, &req->spoofchk, e)) < 0 ||
            (r = json_get_bool(net, "network", "trust", false, &req->trust, e)) < 0)
                return r;

        json_t *vm = NULL;
        if ((r = json_get_object(args, ctx, "vm", false, &vm, e)) < 0)
                return r;
        if (vm) {
                req->has_vm = true;
                strcpy(req->vm_namespace, "default");
                snprintf(req->vm_interface, sizeof req->vm_interface, "%s", req->ifname);
                if ((r = get_str(vm, "vm", "name", true, req->vm_name, sizeof req->vm_name, e)) < 0 ||
                    (r = get_str(vm, "vm", "namespace", false, req->vm_namespace, sizeof req->vm_namespace, e)) <
                            0 ||
                    (r = get_str(vm, "vm", "interface", false, req->vm_interface, sizeof req->vm_interface, e)) < 0)
                        return r;
                json_t *ports = NULL, *pv;
                size_t pi;
                if ((r = json_get_array(vm, "vm", "ports", false, &ports, e)) < 0)
                        return r;
                json_array_foreach(ports, pi, pv) {
                        char pctx[64];
                        long long port = 0;
                        if ((r = port_entry_ctx("vm.ports", pi, pctx, e)) < 0 ||
                            (r = json_get_int(pv, pctx, "port", true, 1, 65535, &port, e)) < 0 ||
                            (r = get_port_proto(pv, pctx, &req->vm_ports[pi].proto, e)) < 0)
                                return r;
                        req->vm_ports[pi].port = (uint16_t) port;
                        req->n_vm_ports = pi + 1;
                }
                if (!valid_dns_label(req->vm_name) || !valid_dns_label(req->vm_namespace) ||
                    !valid_dns_label(req->vm_interface))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "vm: '%s/%s' interface '%s' is not valid",
                                         req->vm_namespace, req->vm_name, req->vm_interface);
        }

        if ((r = json_get_bool(args, ctx, "chained", false, &req->chained, e)) < 0)
                return r;

        json_t *request = NULL;
        if ((r = json_get_object(args, ctx, "request", false, &request, e)) < 0)
                return r;
        json_t *pms = NULL;
        if ((r = json_get_array(request, "request", "portMappings", false, &pms, e)) < 0)
                return r;
        if ((r = parse_port_mappings(pms, req, e)) < 0)
                return r;

        if (!need_full)
                return 0;

        if (req->binding_kind == BINDING_SRIOV) {
                if (!req->resource_name[0])
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "network: 'resourceName' is required with binding 'sriov'");
                if (!req->has_vm)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "network: binding 'sriov' is for VM attachments (name the VM with "
                                         "KVNET_VM_NAME)");
                if (req->chained)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "network: binding 'sriov' cannot be chained after another plugin");
                if (req->ipmasq || req->n_pm > 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "network: %s cannot be used with binding 'sriov': a VF bypasses the node's NAT",
                                         req->ipmasq ? "'ipMasq'" : "'portMappings'");
        }

        if (req->vlan > 0 && req->binding_kind != BINDING_SRIOV) {
                if (req->chained)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "network: 'vlan' %u cannot be used when kvnet is chained: the interface "
                                         "belongs to the plugin before it (set the VLAN there)",
                                         req->vlan);
                if ((r = vlan_bridge_name(req->bridge, req->vlan, req->vlan_bridge, e)) < 0)
                        return r;
        }

        json_t *ipam = NULL, *prev = NULL;
        if ((r = json_get_object(net, "network", "ipam", false, &ipam, e)) < 0 ||
            (r = json_get_object(args, ctx, "prevResult", false, &prev, e)) < 0)
                return r;
        if (req->chained) {
                if (ipam)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "netconf: 'ipam' cannot be set when kvnet is chained (prevResult present)");
                if (!prev)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: chained mode needs 'prevResult'",
                                         ctx);
                req->prev_result = prev;
                if ((r = parse_prev_result(prev, req, e)) < 0)
                        return r;
        } else {
                if (!ipam)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "netconf: 'ipam' is required when kvnet is the main plugin");
                if ((r = ipam_config_parse(ipam, "ipam", &req->ipam, e)) < 0)
                        return r;
                req->has_ipam = true;
        }

        json_t *ips = NULL, *v;
        const char *mac = NULL;
        if ((r = json_get_array(request, "request", "ips", false, &ips, e)) < 0 ||
            (r = json_get_string(request, "request", "mac", false, &mac, e)) < 0)
                return r;
        size_t i;
        json_array_foreach(ips, i, v) {
                if (i >= EP_MAX_ADDRS)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "ips: more than %d addresses",
                                         EP_MAX_ADDRS);
                const char *s = json_string_value(v);
                char buf[KV_ADDR_STRLEN];
                if (!s || strlen(s) >= sizeof buf)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "ips[%zu]: must be an address string",
                                         i);
                strcpy(buf, s);
                char *slash = strchr(buf, '/');
                if (slash)
                        *slash = '\0';
                if (kv_addr_parse(buf, &req->req_ips[i]) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "ips[%zu]: '%s' is not an address", i,
                                         s);
                req->n_req_ips = i + 1;
        }
        if (mac && *mac) {
                if (kv_mac_parse(mac, req->mac) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "mac: '%s' is not a MAC address", mac);
                if (req->mac[0] & 1)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "mac: '%s' is a multicast address",
                                         mac);
                req->has_mac = true;
        }
        return 0;
}
