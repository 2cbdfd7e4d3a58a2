/* SPDX-License-Identifier: Apache-2.0 */
/* spec.domain.devices.interfaces (bindings, model, MAC, ports) joined with spec.networks (pod, multus). */
#include "common/json-util.h"
#include "launcher/launcher-priv.h"

/* error paths are bounded buffers; a truncated path in a message is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static const char *const launch_binding_table[] = {
        [LAUNCH_BINDING_BRIDGE] = "bridge",
        [LAUNCH_BINDING_MASQUERADE] = "masquerade",
        [LAUNCH_BINDING_SRIOV] = "sriov",
};
LAUNCH_DEFINE_STRING_TABLE(launch_binding, LaunchBinding);

static const char *const launch_protocol_table[] = {
        [LAUNCH_PROTO_TCP] = "TCP",
        [LAUNCH_PROTO_UDP] = "UDP",
};
LAUNCH_DEFINE_STRING_TABLE(launch_protocol, LaunchProtocol);

static const char *const launch_network_kind_table[] = {
        [LAUNCH_NET_POD] = "pod",
        [LAUNCH_NET_MULTUS] = "multus",
};
LAUNCH_DEFINE_STRING_TABLE(launch_network_kind, LaunchNetworkKind);

/* ------------------------------------------------------------------ networks */

static int parse_pod_network(VmiCtx *c, json_t *pod, const char *sub, LaunchNetwork *net) {
        static const Field fields[] = { { "vmNetworkCIDR", FLD_WARN }, { "vmIPv6NetworkCIDR", FLD_WARN }, {} };
        int r;
        (void) net;
        return (r = vmi_require_object(c, pod, sub)) < 0 ? r : vmi_check_fields(c, pod, sub, fields);
}

static int parse_multus_network(VmiCtx *c, json_t *mu, const char *sub, LaunchNetwork *net) {
        static const Field fields[] = { { "networkName", FLD_OK }, { "default", FLD_OK }, {} };
        int r;
        if ((r = vmi_require_object(c, mu, sub)) < 0 || (r = vmi_check_fields(c, mu, sub, fields)) < 0 ||
            (r = vmi_get_str(c, mu, sub, "networkName", true, &net->multus_network_name)) < 0 ||
            (r = json_get_bool(mu, sub, "default", false, &net->multus_default, c->e)) < 0)
                return r;
        const char *nn = net->multus_network_name;
        const char *slash = strchr(nn, '/');
        if (!*nn || (slash && (slash == nn || !slash[1] || strchr(slash + 1, '/'))))
                return vmi_invalid(c, "%s.networkName: must be 'name' or 'namespace/name', got '%s'", sub, nn);
        return 0;
}

/* Per network kind: its source object under the kind's key. */
static int (*const network_parse[])(VmiCtx *c, json_t *src, const char *path, LaunchNetwork *net) = {
        [LAUNCH_NET_POD] = parse_pod_network,
        [LAUNCH_NET_MULTUS] = parse_multus_network,
};

static int parse_network(VmiCtx *c, json_t *n, const char *path, LaunchNetwork *net) {
        static const Field fields[] = { { "name", FLD_OK }, { "pod", FLD_OK }, { "multus", FLD_OK }, {} };
        char sub[192];
        int r;
        if ((r = vmi_require_object(c, n, path)) < 0 || (r = vmi_check_fields(c, n, path, fields)) < 0 ||
            (r = vmi_get_str(c, n, path, "name", true, &net->name)) < 0)
                return r;
        json_t *src = NULL;
        int kind = 0;
        size_t found = vmi_find_kind(n, launch_network_kind_table, ELEMENTSOF(launch_network_kind_table), &kind, &src);
        if (found == 0)
                return vmi_invalid(c, "%s: one of 'pod' and 'multus' must be set for network '%s'", path, net->name);
        if (found > 1)
                return vmi_invalid(c, "%s: only one of 'pod' and 'multus' may be set for network '%s'", path, net->name);
        net->kind = (LaunchNetworkKind) kind;
        snprintf(sub, sizeof sub, "%s.%s", path, launch_network_kind_to_string(net->kind));
        return network_parse[net->kind](c, src, sub, net);
}

void launch_network_done(LaunchNetwork *n) {
        free(n->name);
        free(n->multus_network_name);
}

/* ------------------------------------------------------------------ interfaces */

static int parse_ports(VmiCtx *c, json_t *ports, const char *path, LaunchInterface *ifc) {
        static const Field fields[] = { { "name", FLD_OK }, { "port", FLD_OK }, { "protocol", FLD_OK }, {} };
        char sub[224];
        int r;
        size_t n = json_array_size(ports);
        ifc->ports = calloc(n + 1, sizeof *ifc->ports);
        if (!ifc->ports)
                return vmi_nomem(c);
        for (size_t i = 0; i < n; i++) {
                json_t *p = json_array_get(ports, i);
                LaunchPort *pt = &ifc->ports[ifc->n_ports++];
                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                long long x;
                const char *proto = NULL;
                if ((r = vmi_require_object(c, p, sub)) < 0 || (r = vmi_check_fields(c, p, sub, fields)) < 0 ||
                    (r = vmi_get_str(c, p, sub, "name", false, &pt->name)) < 0 ||
                    (r = json_get_int(p, sub, "port", true, 1, 65535, &x, c->e)) < 0 ||
                    (r = json_get_string(p, sub, "protocol", false, &proto, c->e)) < 0)
                        return r;
                pt->port = (uint16_t) x;
                int pr = proto ? launch_protocol_from_string(proto) : (int) LAUNCH_PROTO_TCP;
                if (pr < 0)
                        return vmi_invalid(c, "%s.protocol: must be TCP or UDP, got '%s'", sub, proto);
                pt->protocol = (LaunchProtocol) pr;
                for (size_t k = 0; k + 1 < ifc->n_ports; k++)
                        if (ifc->ports[k].port == pt->port && ifc->ports[k].protocol == pt->protocol)
                                return vmi_invalid(c, "%s.port: duplicate port %u/%s", sub, pt->port,
                                                   launch_protocol_to_string(pt->protocol));
        }
        return 0;
}

static const char *const nic_models[] = { "virtio", "e1000", "e1000e", "igb", "rtl8139", "ne2k_pci", "pcnet" };

bool launch_nic_model_known(const char *s) {
        return launch_table_lookup(nic_models, ELEMENTSOF(nic_models), s) >= 0;
}

static int parse_interface(VmiCtx *c, json_t *i, const char *path, LaunchInterface *ifc) {
        static const Field fields[] = {
                { "name", FLD_OK },      { "model", FLD_OK },        { "bridge", FLD_OK },      { "masquerade", FLD_OK },
                { "sriov", FLD_OK },     { "ports", FLD_OK },        { "macAddress", FLD_OK },  { "pciAddress", FLD_OK },
                { "bootOrder", FLD_OK }, { "slirp", FLD_REJECT },    { "macvtap", FLD_REJECT }, { "passt", FLD_REJECT },
                { "binding", FLD_REJECT }, { "dhcpOptions", FLD_WARN }, { "tag", FLD_WARN },    { "acpiIndex", FLD_WARN },
                { "state", FLD_OK },     {},
        };
        char sub[192];
        int r;
        long long x;
        if ((r = vmi_require_object(c, i, path)) < 0 || (r = vmi_check_fields(c, i, path, fields)) < 0 ||
            (r = vmi_get_str(c, i, path, "name", true, &ifc->name)) < 0)
                return r;
        int n = 0;
        for (size_t k = 0; k < ELEMENTSOF(launch_binding_table); k++) {
                json_t *b = json_object_get(i, launch_binding_table[k]);
                if (!b)
                        continue;
                snprintf(sub, sizeof sub, "%s.%s", path, launch_binding_table[k]);
                if ((r = vmi_require_object(c, b, sub)) < 0)
                        return r;
                if (json_object_size(b) > 0 && (r = vmi_warn(c, "%s: options ignored", sub)) < 0)
                        return r;
                if (n++ > 0)
                        return vmi_invalid(c, "%s: interface '%s' has more than one binding method", path, ifc->name);
                ifc->binding = (LaunchBinding) k;
        }
        if (n == 0) {
                /* an unknown object-valued key where a binding would be is an unknown binding */
                static const char *const known_objs[] = { "dhcpOptions", "ports" };
                const char *key;
                json_t *val;
                json_object_foreach (i, key, val) {
                        bool known = launch_table_lookup(known_objs, ELEMENTSOF(known_objs), key) >= 0;
                        if (json_is_object(val) && !known)
                                return vmi_invalid(c, "%s.%s: unknown binding method for interface '%s' (supported: bridge, masquerade, sriov)",
                                                   path, key, ifc->name);
                }
                ifc->binding = LAUNCH_BINDING_BRIDGE;
                if ((r = vmi_warn(c, "%s: interface '%s' has no binding method, using bridge (KubeVirt's default)", path,
                                  ifc->name)) < 0)
                        return r;
        }
        const char *s = NULL;
        if ((r = json_get_string(i, path, "state", false, &s, c->e)) < 0)
                return r;
        if (s && !streq(s, "up"))
                return kverr_set(c->e, KV_ERR_UNSUPPORTED_FIELD, -EOPNOTSUPP,
                                 "%s.state: '%s' not supported by kvnet-launcher (only 'up', or 'absent': unplugged)", path, s);
        s = NULL;
        if ((r = json_get_string(i, path, "model", false, &s, c->e)) < 0)
                return r;
        snprintf(ifc->model, sizeof ifc->model, "virtio");
        if (s) {
                if (!launch_nic_model_known(s))
                        return vmi_invalid(c,
                                           "%s.model: must be one of virtio, e1000, e1000e, igb, rtl8139, ne2k_pci, pcnet, got '%s'",
                                           path, s);
                if (ifc->binding == LAUNCH_BINDING_SRIOV)
                        return vmi_invalid(c, "%s.model: not applicable to an sriov interface", path);
                snprintf(ifc->model, sizeof ifc->model, "%s", s);
        }
        s = NULL;
        if ((r = json_get_string(i, path, "macAddress", false, &s, c->e)) < 0)
                return r;
        if (s) {
                if (launch_parse_mac(s, ifc->mac) < 0)
                        return vmi_invalid(c, "%s.macAddress: must be a unicast MAC like 02:00:00:00:00:01, got '%s'", path,
                                           s);
                ifc->has_mac = true;
        }
        if ((r = vmi_pci_field(c, i, path, ifc->pci_address)) < 0)
                return r;
        if ((r = json_get_int(i, path, "bootOrder", false, 1, 1000, &x, c->e)) < 0)
                return r;
        if (r > 0)
                ifc->boot_order = (uint32_t) x;
        json_t *ports = NULL;
        if ((r = json_get_array(i, path, "ports", false, &ports, c->e)) < 0)
                return r;
        if (ports && json_array_size(ports) > 0) {
                if (ifc->binding != LAUNCH_BINDING_MASQUERADE)
                        return vmi_invalid(c, "%s.ports: only supported with the masquerade binding (interface '%s')", path,
                                           ifc->name);
                snprintf(sub, sizeof sub, "%s.ports", path);
                if ((r = parse_ports(c, ports, sub, ifc)) < 0)
                        return r;
        }
        return 0;
}

static int add_default_pod_network(VmiCtx *c, const char *dpath) {
        LaunchVmi *v = c->v;
        int r;
        v->networks = calloc(1, sizeof *v->networks);
        v->interfaces = calloc(1, sizeof *v->interfaces);
        if (!v->networks || !v->interfaces)
                return vmi_nomem(c);
        v->n_networks = v->n_interfaces = 1;
        v->networks[0].kind = LAUNCH_NET_POD;
        v->interfaces[0].binding = LAUNCH_BINDING_BRIDGE;
        snprintf(v->interfaces[0].model, sizeof v->interfaces[0].model, "virtio");
        if ((r = vmi_dup_opt(c, "default", &v->networks[0].name)) < 0 ||
            (r = vmi_dup_opt(c, "default", &v->interfaces[0].name)) < 0)
                return r;
        return vmi_warn(c, "%s.interfaces: none given, attaching the pod network 'default' with bridge binding", dpath);
}

static bool is_absent(json_t *ifc) {
        return streq_ptr(json_string_value(json_object_get(ifc, "state")), "absent");
}

/* ifs and nets without the absent interfaces and their networks: 1 and the copies when there were any, else 0. */
static int drop_absent(VmiCtx *c, json_t *ifs, json_t *nets, json_t **ret_ifs, json_t **ret_nets) {
        size_t i, j;
        json_t *f, *n;
        bool any = false;
        json_array_foreach(ifs, i, f) any = any || is_absent(f);
        if (!any)
                return 0;
        _cleanup_json_ json_t *fv = json_array(), *nv = json_array();
        if (!fv || !nv)
                return vmi_nomem(c);
        json_array_foreach(ifs, i, f)
                if (!is_absent(f) && json_array_append(fv, f) < 0)
                        return vmi_nomem(c);
        json_array_foreach(nets, j, n) {
                bool gone = false;
                json_array_foreach(ifs, i, f) gone = gone || (is_absent(f) && json_equal(json_object_get(f, "name"),
                                                                                         json_object_get(n, "name")));
                if (!gone && json_array_append(nv, n) < 0)
                        return vmi_nomem(c);
        }
        *ret_ifs = TAKE_PTR(fv);
        *ret_nets = TAKE_PTR(nv);
        return 1;
}

int vmi_parse_interfaces_and_networks(VmiCtx *c, json_t *devices, const char *dpath, json_t *spec) {
        LaunchVmi *v = c->v;
        json_t *ifs = NULL, *nets = NULL;
        char path[192];
        int r;
        bool autoattach = true;
        if (devices && ((r = json_get_array(devices, dpath, "interfaces", false, &ifs, c->e)) < 0 ||
                        (r = json_get_bool(devices, dpath, "autoattachPodInterface", false, &autoattach, c->e)) < 0))
                return r;
        if ((r = json_get_array(spec, c->spec, "networks", false, &nets, c->e)) < 0)
                return r;
        /* an unplugged interface (state absent, KubeVirt's NIC hot-unplug) is not the domain's, nor is its network */
        _cleanup_json_ json_t *ifs_live = NULL, *nets_live = NULL;
        if ((r = drop_absent(c, ifs, nets, &ifs_live, &nets_live)) < 0)
                return r;
        if (r > 0) {
                ifs = ifs_live;
                nets = nets_live;
        }
        size_t ni = ifs ? json_array_size(ifs) : 0, nn = nets ? json_array_size(nets) : 0;
        if (ni == 0 && nn == 0)
                return autoattach ? add_default_pod_network(c, dpath) : 0;

        v->networks = calloc(nn + 1, sizeof *v->networks);
        v->interfaces = calloc(ni + 1, sizeof *v->interfaces);
        if (!v->networks || !v->interfaces)
                return vmi_nomem(c);
        ssize_t pod = -1, multus_default = -1;
        for (size_t k = 0; k < nn; k++) {
                snprintf(path, sizeof path, "%s.networks[%zu]", c->spec, k);
                LaunchNetwork *n = &v->networks[v->n_networks++];
                if ((r = parse_network(c, json_array_get(nets, k), path, n)) < 0)
                        return r;
                for (size_t j = 0; j < k; j++)
                        if (streq(v->networks[j].name, n->name))
                                return vmi_invalid(c, "%s.name: duplicate network name '%s'", path, n->name);
                if (n->kind == LAUNCH_NET_POD) {
                        if (pod >= 0)
                                return vmi_invalid(c, "%s: more than one pod network ('%s' and '%s')", path,
                                                   v->networks[pod].name, n->name);
                        pod = (ssize_t) k;
                }
                if (n->kind == LAUNCH_NET_MULTUS && n->multus_default) {
                        if (multus_default >= 0)
                                return vmi_invalid(c, "%s.multus.default: more than one default multus network", path);
                        multus_default = (ssize_t) k;
                }
        }
        if (pod >= 0 && multus_default >= 0)
                return vmi_invalid(c, "%s.networks[%zd]: a multus default network replaces the pod network; '%s' and '%s' are both set",
                                   c->spec, multus_default, v->networks[pod].name, v->networks[multus_default].name);

        bool *net_used = calloc(nn + 1, sizeof *net_used);
        if (!net_used)
                return vmi_nomem(c);
        _cleanup_free_ bool *net_used_p = net_used;
        for (size_t k = 0; k < ni; k++) {
                snprintf(path, sizeof path, "%s.interfaces[%zu]", dpath, k);
                LaunchInterface *ifc = &v->interfaces[v->n_interfaces++];
                if ((r = parse_interface(c, json_array_get(ifs, k), path, ifc)) < 0)
                        return r;
                for (size_t j = 0; j < k; j++)
                        if (streq(v->interfaces[j].name, ifc->name))
                                return vmi_invalid(c, "%s.name: duplicate interface name '%s'", path, ifc->name);
                size_t j;
                for (j = 0; j < v->n_networks; j++)
                        if (streq(v->networks[j].name, ifc->name))
                                break;
                if (j == v->n_networks)
                        return vmi_invalid(c, "%s: interface '%s' has no network of that name in %s.networks", path,
                                           ifc->name, c->spec);
                ifc->network = j;
                net_used[j] = true;
                const LaunchNetwork *n = &v->networks[j];
                if (ifc->binding == LAUNCH_BINDING_MASQUERADE && n->kind != LAUNCH_NET_POD)
                        return vmi_invalid(c, "%s.masquerade: only allowed on the pod network; '%s' is a multus network",
                                           path, n->name);
                if (ifc->binding == LAUNCH_BINDING_SRIOV && n->kind == LAUNCH_NET_POD)
                        return vmi_invalid(c, "%s.sriov: not allowed on the pod network '%s' (use a multus network)", path,
                                           n->name);
                if (ifc->has_mac)
                        for (size_t q = 0; q < k; q++)
                                if (v->interfaces[q].has_mac && memcmp(v->interfaces[q].mac, ifc->mac, 6) == 0)
                                        return vmi_invalid(c, "%s.macAddress: same MAC as interface '%s'", path,
                                                           v->interfaces[q].name);
        }
        for (size_t j = 0; j < nn; j++)
                if (!net_used[j])
                        return vmi_invalid(c, "%s.networks[%zu]: network '%s' is not used by any interface", c->spec, j,
                                           v->networks[j].name);
        return 0;
}

void launch_interface_done(LaunchInterface *ifc) {
        for (size_t k = 0; k < ifc->n_ports; k++)
                free(ifc->ports[k].name);
        free(ifc->ports);
        free(ifc->name);
}
