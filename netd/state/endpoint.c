/* SPDX-License-Identifier: Apache-2.0 */
#include "netd/state/endpoint.h"

#include <stdio.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"

Endpoint *endpoint_free(Endpoint *ep) {
        if (!ep)
                return NULL;
        free(ep->result);
        free(ep);
        return NULL;
}

int endpoint_make_id(const char *network, const char *container_id, const char *ifname, char *buf, size_t n) {
        int r = snprintf(buf, n, "%s/%s/%s", network, container_id, ifname);
        if (r < 0 || (size_t) r >= n)
                return -ENAMETOOLONG;
        return 0;
}

static const char *proto_name(uint8_t p) {
        return p == IPPROTO_UDP ? "udp" : "tcp";
}

int endpoint_netns_open(const Endpoint *ep, int *ret_fd) {
        *ret_fd = -1;
        if (!ep->netns[0])
                return -ENOENT;
        int fd;
        int r = netns_open(ep->netns, &fd);
        if (r < 0)
                return r;
        NetnsId id;
        if (ep->netns_id.ino && (netns_id(fd, &id) < 0 || !netns_id_equal(&id, &ep->netns_id))) {
                close(fd);
                log_warning("attachment '%s': '%s' is no longer the namespace it was made in: its links there are "
                            "left alone",
                            ep->id, ep->netns);
                return -ESTALE;
        }
        *ret_fd = fd;
        return 0;
}

/* "netnsId": "DEV:INO" (optional: records from before it have none) */
static int parse_netns_id(json_t *o, NetnsId *ret, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(o, "endpoint", "netnsId", false, &s, e);
        if (r < 0 || !s)
                return r;
        unsigned long long dev, ino;
        int n = 0;
        if (sscanf(s, "%llu:%llu%n", &dev, &ino, &n) != 2 || s[n] != '\0' || ino == 0)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: 'netnsId' must be DEV:INO, got '%.40s'", s);
        *ret = (NetnsId){ .dev = dev, .ino = ino };
        return 0;
}

json_t *endpoint_to_json(const Endpoint *ep, bool for_state) {
        char buf[KV_ADDR_STRLEN], mac[KV_MAC_STRLEN];
        json_t *o = json_object();
        if (!o)
                return NULL;
        json_object_set_new(o, "network", json_string(ep->network));
        json_object_set_new(o, "containerID", json_string(ep->container_id));
        json_object_set_new(o, "ifname", json_string(ep->ifname));
        json_object_set_new(o, "kind", json_string(ep->kind == EP_KIND_VM ? "vm" : "container"));
        json_object_set_new(o, "key", json_string(ep->key));
        json_object_set_new(o, "netns", json_string(ep->netns));
        if (ep->netns_id.ino) {
                char id[48];
                snprintf(id, sizeof id, "%llu:%llu", (unsigned long long) ep->netns_id.dev,
                         (unsigned long long) ep->netns_id.ino);
                json_object_set_new(o, "netnsId", json_string(id));
        }
        json_object_set_new(o, "binding", json_string(ep->binding));
        json_object_set_new(o, "bridge", json_string(ep->bridge));
        json_object_set_new(o, "hostIfname", json_string(ep->host_ifname));
        if (ep->kind == EP_KIND_VM) {
                json_object_set_new(o, "tap", json_string(ep->tap));
                json_object_set_new(o, "sandboxIfname", json_string(ep->sbx_ifname));
                json_object_set_new(o, "vm", json_pack("{s:s,s:s,s:s}", "namespace", ep->vm_namespace, "name",
                                                       ep->vm_name, "interface", ep->vm_interface));
        }
        if (ep->sriov.pci[0]) {
                json_object_set_new(o, "pciAddress", json_string(ep->sriov.pci));
                json_object_set_new(o, "resourceName", json_string(ep->sriov.resource));
                json_object_set_new(o, "spoofchk", json_boolean(ep->sriov.spoofchk));
                json_object_set_new(o, "trust", json_boolean(ep->sriov.trust));
        }
        json_t *ips = json_array(), *gws = json_array();
        for (size_t i = 0; i < ep->n_addrs; i++) {
                json_array_append_new(ips, json_string(kv_prefix_fmt(&ep->addrs[i], buf)));
                json_array_append_new(gws, ep->has_gateway[i] ? json_string(kv_addr_fmt(&ep->gateways[i], buf))
                                                              : json_string(""));
        }
        json_object_set_new(o, "ips", ips);
        json_object_set_new(o, "gateways", gws);
        json_object_set_new(o, "mac", ep->has_mac ? json_string(kv_mac_fmt(ep->mac, mac)) : json_string(""));
        json_t *pms = json_array();
        for (size_t i = 0; i < ep->n_pm; i++) {
                const EpPortMapping *p = &ep->pm[i];
                json_array_append_new(pms, json_pack("{s:i,s:i,s:s,s:s}", "hostPort", p->host_port,
                                                     "containerPort", p->container_port, "protocol",
                                                     proto_name(p->proto), "hostIP",
                                                     p->host_ip.family ? kv_addr_fmt(&p->host_ip, buf) : ""));
        }
        json_object_set_new(o, "portMappings", pms);
        if (ep->n_vm_ports > 0) {
                json_t *vp = json_array();
                for (size_t i = 0; i < ep->n_vm_ports; i++)
                        json_array_append_new(vp, json_pack("{s:i,s:s}", "port", ep->vm_ports[i].port, "protocol",
                                                            proto_name(ep->vm_ports[i].proto)));
                json_object_set_new(o, "vmPorts", vp);
        }
        json_object_set_new(o, "ipMasq", json_boolean(ep->ipmasq));
        json_object_set_new(o, "antiSpoofing", json_boolean(ep->antispoof));
        json_object_set_new(o, "chained", json_boolean(ep->chained));
        json_object_set_new(o, "state", json_string(ep->state == EP_READY ? "ready" : "creating"));
        if (ep->mig_role != MIG_ROLE_NONE)
                json_object_set_new(o, "migration",
                                    json_pack("{s:s,s:s,s:s,s:I}", "role", mig_role_to_string(ep->mig_role), "state",
                                              mig_state_to_string(ep->mig_state), "peer", ep->mig_peer, "started",
                                              (json_int_t) ep->mig_started_usec));
        if (for_state) {
                json_object_set_new(o, "sandboxIfname", json_string(ep->sbx_ifname));
                json_object_set_new(o, "tap", json_string(ep->tap));
                json_object_set_new(o, "vm", json_pack("{s:s,s:s,s:s}", "namespace", ep->vm_namespace, "name",
                                                       ep->vm_name, "interface", ep->vm_interface));
                json_object_set_new(o, "mtu", json_integer(ep->mtu));
                json_object_set_new(o, "vlan", json_integer(ep->vlan));
                if (ep->trunk[0])
                        json_object_set_new(o, "trunk", json_string(ep->trunk));
                json_object_set_new(o, "isGateway", json_boolean(ep->is_gateway));
                json_object_set_new(o, "natBackend", json_string(ep->nat_backend));
                json_object_set_new(o, "claimIsNew", json_boolean(ep->claim_is_new));
                json_object_set_new(o, "created", json_integer((json_int_t) ep->created_usec));
                json_t *routes = json_array();
                for (size_t i = 0; i < ep->n_routes; i++) {
                        json_t *r = json_pack("{s:s}", "dst", kv_prefix_fmt(&ep->routes[i].dst, buf));
                        if (ep->routes[i].has_gw)
                                json_object_set_new(r, "gw", json_string(kv_addr_fmt(&ep->routes[i].gw, buf)));
                        json_array_append_new(routes, r);
                }
                json_object_set_new(o, "routes", routes);
                if (ep->result) {
                        json_t *res = json_loads(ep->result, 0, NULL);
                        if (res)
                                json_object_set_new(o, "result", res);
                }
        }
        return o;
}

static int copy_str(json_t *o, const char *key, char *dst, size_t n, bool required, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(o, "endpoint", key, required, &s, e);
        if (r < 0)
                return r;
        if (!s)
                return 0;
        if (strlen(s) >= n)
                return kverr_set(e, KV_ERR_DECODE, -ENAMETOOLONG, "endpoint: '%s' is too long", key);
        strcpy(dst, s);
        return 0;
}

int endpoint_from_json(json_t *o, Endpoint **ret, KvErr *e) {
        _cleanup_(endpoint_freep) Endpoint *ep = calloc(1, sizeof *ep);
        if (!ep)
                return -ENOMEM;
        int r;
        if ((r = copy_str(o, "network", ep->network, sizeof ep->network, true, e)) < 0 ||
            (r = copy_str(o, "containerID", ep->container_id, sizeof ep->container_id, true, e)) < 0 ||
            (r = copy_str(o, "ifname", ep->ifname, sizeof ep->ifname, true, e)) < 0 ||
            (r = copy_str(o, "key", ep->key, sizeof ep->key, true, e)) < 0 ||
            (r = copy_str(o, "netns", ep->netns, sizeof ep->netns, false, e)) < 0 ||
            (r = copy_str(o, "binding", ep->binding, sizeof ep->binding, true, e)) < 0 ||
            (r = copy_str(o, "bridge", ep->bridge, sizeof ep->bridge, false, e)) < 0 ||
            (r = copy_str(o, "trunk", ep->trunk, sizeof ep->trunk, false, e)) < 0 ||
            (r = copy_str(o, "hostIfname", ep->host_ifname, sizeof ep->host_ifname, false, e)) < 0 ||
            (r = copy_str(o, "sandboxIfname", ep->sbx_ifname, sizeof ep->sbx_ifname, false, e)) < 0 ||
            (r = copy_str(o, "tap", ep->tap, sizeof ep->tap, false, e)) < 0 ||
            (r = copy_str(o, "natBackend", ep->nat_backend, sizeof ep->nat_backend, false, e)) < 0 ||
            (r = copy_str(o, "pciAddress", ep->sriov.pci, sizeof ep->sriov.pci, false, e)) < 0 ||
            (r = parse_netns_id(o, &ep->netns_id, e)) < 0 ||
            (r = copy_str(o, "resourceName", ep->sriov.resource, sizeof ep->sriov.resource, false, e)) < 0)
                return r;
        ep->sriov.spoofchk = true;
        if ((r = json_get_bool(o, "endpoint", "spoofchk", false, &ep->sriov.spoofchk, e)) < 0 ||
            (r = json_get_bool(o, "endpoint", "trust", false, &ep->sriov.trust, e)) < 0)
                return r;
        r = endpoint_make_id(ep->network, ep->container_id, ep->ifname, ep->id, sizeof ep->id);
        if (r < 0)
                return kverr_set(e, KV_ERR_DECODE, r, "endpoint: id too long");

        const char *kind = NULL, *state = NULL, *mac = NULL;
        if ((r = json_get_string(o, "endpoint", "kind", true, &kind, e)) < 0 ||
            (r = json_get_string(o, "endpoint", "state", true, &state, e)) < 0 ||
            (r = json_get_string(o, "endpoint", "mac", false, &mac, e)) < 0)
                return r;
        ep->kind = streq(kind, "vm") ? EP_KIND_VM : EP_KIND_CONTAINER;
        ep->state = streq(state, "ready") ? EP_READY : EP_CREATING;
        /* A binding this version does not know is driven as a bridge, as it always was. */
        BindingKind configured = binding_kind_from_string(ep->binding);
        if (!binding_kind_configurable(configured))
                configured = BINDING_BRIDGE;
        if (configured == BINDING_SRIOV && ep->state == EP_READY && !ep->sriov.pci[0])
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: binding 'sriov' without 'pciAddress'");
        if (mac && *mac) {
                if (kv_mac_parse(mac, ep->mac) < 0)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: bad mac '%s'", mac);
                ep->has_mac = true;
        }
        json_t *vm = json_object_get(o, "vm");
        if (json_is_object(vm)) {
                if ((r = copy_str(vm, "namespace", ep->vm_namespace, sizeof ep->vm_namespace, false, e)) < 0 ||
                    (r = copy_str(vm, "name", ep->vm_name, sizeof ep->vm_name, false, e)) < 0 ||
                    (r = copy_str(vm, "interface", ep->vm_interface, sizeof ep->vm_interface, false, e)) < 0)
                        return r;
        }
        long long x = 0;
        if ((r = json_get_int(o, "endpoint", "mtu", false, 0, 65535, &x, e)) < 0)
                return r;
        ep->mtu = (uint32_t) x;
        x = 0;
        if ((r = json_get_int(o, "endpoint", "vlan", false, 0, 4094, &x, e)) < 0)
                return r;
        ep->vlan = (uint16_t) x;
        x = 0;
        if ((r = json_get_int(o, "endpoint", "created", false, 0, LLONG_MAX, &x, e)) < 0)
                return r;
        ep->created_usec = (uint64_t) x;
        ep->antispoof = true; /* records from before anti-spoofing: their ports are filtered from now on */
        if ((r = json_get_bool(o, "endpoint", "ipMasq", false, &ep->ipmasq, e)) < 0 ||
            (r = json_get_bool(o, "endpoint", "antiSpoofing", false, &ep->antispoof, e)) < 0 ||
            (r = json_get_bool(o, "endpoint", "isGateway", false, &ep->is_gateway, e)) < 0 ||
            (r = json_get_bool(o, "endpoint", "chained", false, &ep->chained, e)) < 0 ||
            (r = json_get_bool(o, "endpoint", "claimIsNew", false, &ep->claim_is_new, e)) < 0)
                return r;
        ep->binding_kind = binding_kind_resolve(configured, ep->kind == EP_KIND_VM, ep->chained);

        json_t *mig = json_object_get(o, "migration");
        if (mig) {
                if (!json_is_object(mig))
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: 'migration' must be an object");
                char role[8], mstate[16];
                if ((r = copy_str(mig, "role", role, sizeof role, true, e)) < 0 ||
                    (r = copy_str(mig, "state", mstate, sizeof mstate, true, e)) < 0 ||
                    (r = copy_str(mig, "peer", ep->mig_peer, sizeof ep->mig_peer, false, e)) < 0)
                        return r;
                ep->mig_role = mig_role_from_string(role);
                if (ep->mig_role != MIG_ROLE_TARGET && ep->mig_role != MIG_ROLE_SOURCE)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: migration.role '%s' is unknown", role);
                ep->mig_state = mig_state_from_string(mstate);
                if (ep->mig_state < 0)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: migration.state '%s' is unknown", mstate);
                x = 0;
                if ((r = json_get_int(mig, "endpoint", "started", false, 0, LLONG_MAX, &x, e)) < 0)
                        return r;
                ep->mig_started_usec = (uint64_t) x;
        }

        json_t *ips = json_object_get(o, "ips"), *gws = json_object_get(o, "gateways"), *v;
        size_t i;
        json_array_foreach(ips, i, v) {
                if (i >= EP_MAX_ADDRS || !json_is_string(v) ||
                    kv_prefix_parse(json_string_value(v), &ep->addrs[i]) < 0)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: bad ips[%zu]", i);
                ep->n_addrs = i + 1;
                json_t *g = json_array_get(gws, i);
                if (json_is_string(g) && *json_string_value(g)) {
                        if (kv_addr_parse(json_string_value(g), &ep->gateways[i]) < 0)
                                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: bad gateways[%zu]", i);
                        ep->has_gateway[i] = true;
                }
        }
        json_array_foreach(json_object_get(o, "routes"), i, v) {
                const char *dst = json_string_value(json_object_get(v, "dst"));
                const char *gw = json_string_value(json_object_get(v, "gw"));
                if (i >= EP_MAX_ROUTES || !dst || kv_prefix_parse(dst, &ep->routes[i].dst) < 0)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: bad routes[%zu]", i);
                if (gw) {
                        if (kv_addr_parse(gw, &ep->routes[i].gw) < 0)
                                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: bad routes[%zu].gw", i);
                        ep->routes[i].has_gw = true;
                }
                ep->n_routes = i + 1;
        }
        json_array_foreach(json_object_get(o, "portMappings"), i, v) {
                if (i >= EP_MAX_PORTS)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: too many portMappings");
                EpPortMapping *p = &ep->pm[i];
                p->host_port = (uint16_t) json_integer_value(json_object_get(v, "hostPort"));
                p->container_port = (uint16_t) json_integer_value(json_object_get(v, "containerPort"));
                const char *proto = json_string_value(json_object_get(v, "protocol"));
                p->proto = proto && streq(proto, "udp") ? IPPROTO_UDP : IPPROTO_TCP;
                const char *hip = json_string_value(json_object_get(v, "hostIP"));
                if (hip && *hip && kv_addr_parse(hip, &p->host_ip) < 0)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: bad portMappings[%zu].hostIP", i);
                ep->n_pm = i + 1;
        }
        json_array_foreach(json_object_get(o, "vmPorts"), i, v) {
                if (i >= EP_MAX_PORTS)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "endpoint: too many vmPorts");
                ep->vm_ports[i].port = (uint16_t) json_integer_value(json_object_get(v, "port"));
                const char *proto = json_string_value(json_object_get(v, "protocol"));
                ep->vm_ports[i].proto = proto && streq(proto, "udp") ? IPPROTO_UDP : IPPROTO_TCP;
                ep->n_vm_ports = i + 1;
        }
        json_t *res = json_object_get(o, "result");
        if (res) {
                ep->result = json_dump_compact(res);
                if (!ep->result)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(ep);
        return 0;
}

int endpoint_save(Journal *j, const Endpoint *ep, bool durable) {
        _cleanup_json_ json_t *o = endpoint_to_json(ep, true);
        if (!o)
                return -ENOMEM;
        return journal_put(j, ep->id, o, durable);
}

int endpoint_remove(Journal *j, const Endpoint *ep, bool durable) {
        int r = journal_del(j, ep->id, durable);
        return r < 0 ? r : 0;
}

typedef struct LoadCtx {
        endpoint_load_cb cb;
        void *userdata;
        unsigned bad;
} LoadCtx;

static int load_record(const char *key, json_t *val, void *userdata) {
        LoadCtx *ctx = userdata;
        Endpoint *ep = NULL;
        KvErr e = {};
        if (endpoint_from_json(val, &ep, &e) < 0 || !streq(ep->id, key)) {
                log_warning("endpoint record '%s': %s", key, e.msg[0] ? e.msg : "its id differs from its key");
                endpoint_free(ep);
                ctx->bad++;
                return 0;
        }
        return ctx->cb(ep, ctx->userdata);
}

int endpoint_load_all(Journal *j, endpoint_load_cb cb, void *userdata, unsigned *ret_bad) {
        LoadCtx ctx = { .cb = cb, .userdata = userdata };
        int r = journal_foreach(j, load_record, &ctx);
        if (ret_bad)
                *ret_bad = ctx.bad;
        return r;
}

typedef struct ImportCtx {
        Journal *j;
        endpoint_load_cb cb;
        void *userdata;
        unsigned bad;
} ImportCtx;

static int import_file(const char *path, const char *name, json_t *o, const char *err, void *userdata) {
        ImportCtx *ctx = userdata;
        Endpoint *ep = NULL;
        KvErr e = {};
        (void) name;
        if (!o || endpoint_from_json(o, &ep, &e) < 0) {
                char bad_path[PATH_MAX + 16];
                log_warning("endpoint file %s: %s; kept as %s.corrupt", path, o ? e.msg : err, path);
                snprintf(bad_path, sizeof bad_path, "%s.corrupt", path);
                (void) rename(path, bad_path);
                ctx->bad++;
                return 0;
        }
        if (journal_get(ctx->j, ep->id)) { /* imported before a crash: the journal has it */
                endpoint_free(ep);
                return 1;
        }
        int r = journal_put(ctx->j, ep->id, o, false);
        if (r < 0) {
                endpoint_free(ep);
                return r;
        }
        r = ctx->cb(ep, ctx->userdata);
        return r < 0 ? r : 1;
}

int endpoint_import_files(const char *state_dir, Journal *j, endpoint_load_cb cb, void *userdata,
                          unsigned *ret_bad) {
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/endpoints", state_dir) >= (int) sizeof dir)
                return -ENAMETOOLONG;
        ImportCtx ctx = { .j = j, .cb = cb, .userdata = userdata };
        int r = journal_import_files(j, dir, 4 * 1024 * 1024, import_file, &ctx);
        if (ret_bad)
                *ret_bad = ctx.bad;
        return r < 0 ? r : 0;
}
