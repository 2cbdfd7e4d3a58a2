/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/ipamclaim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/util.h"
#include "controller/vmispec.h"

#define REF_KEY "ipam-claim-reference"
#define NETWORKS_ANNOT "k8s.v1.cni.cncf.io/networks"

static const CtlResource *res_claim(void) {
        return ctl_resource_find("k8s.cni.cncf.io", "v1alpha1", "ipamclaims");
}

static const CtlResource *res_nad(void) {
        return ctl_resource_find("k8s.cni.cncf.io", "v1", "network-attachment-definitions");
}

static const CtlResource *res_vm(void) {
        return ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
}

static const CtlResource *res_vmi(void) {
        return ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
}

int ctl_ipamclaim_name(const char *vm, const char *network, char buf[static CTL_IPAMCLAIM_NAME_MAX + 1]) {
        int n = snprintf(buf, CTL_IPAMCLAIM_NAME_MAX + 1, "%s.%s", vm, network);
        return n < 0 || n > CTL_IPAMCLAIM_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* ---- validation ---- */

static bool cidr_valid(const char *s) {
        KvPrefix p;
        return s && kv_prefix_parse(s, &p) >= 0;
}

/* field: at most two addresses/prefixes; with one_per_family, of different families. */
static int check_cidrs(json_t *v, const char *verb, const char *field, bool one_per_family, KvErr *e) {
        size_t i;
        json_t *x;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v) || json_array_size(v) > 2)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: '%s' must be an array of at most 2 addresses/prefixes, got %s", verb,
                                 field, json_is_array(v) ? "more" : json_type_name(v));
        json_array_foreach(v, i, x) {
                if (!cidr_valid(json_string_value(x)))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s[%zu]' is not an address/prefix: '%.64s'",
                                         verb, field, i, json_is_string(x) ? json_string_value(x) : json_type_name(x));
        }
        if (one_per_family && json_array_size(v) == 2 && !strchr(json_string_value(json_array_get(v, 0)), ':') ==
                                               !strchr(json_string_value(json_array_get(v, 1)), ':'))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' holds two addresses of the same family", verb,
                                 field);
        return 0;
}

int ctl_ipamclaim_check(json_t *obj, const char *verb, KvErr *e) {
        json_t *spec = json_object_get(obj, "spec"), *st = json_object_get(obj, "status");
        if (!json_is_object(spec))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'spec' must be an object, got %s", verb,
                                 spec ? json_type_name(spec) : "nothing");
        json_t *net = json_object_get(spec, "network"), *ifc = json_object_get(spec, "interface");
        if (!json_is_string(net) || !json_string_length(net))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: 'spec.network' (the CNI network name) must be a non-empty string, got %s", verb,
                                 net ? json_type_name(net) : "nothing");
        if (ifc && !json_is_string(ifc))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'spec.interface' must be a string, got %s", verb,
                                 json_type_name(ifc));
        if (st && !json_is_null(st) && !json_is_object(st))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'status' must be an object, got %s", verb,
                                 json_type_name(st));
        int r = check_cidrs(json_object_get(spec, "ipRequests"), verb, "spec.ipRequests", true, e);
        return r < 0 ? r : check_cidrs(json_object_get(st, "ips"), verb, "status.ips", false, e);
}

/* ---- NADs ---- */

int ctl_nad_persistent_ips(const char *config, bool *ret_allow, char **ret_name, KvErr *e) {
        _cleanup_json_ json_t *conf = NULL;
        bool allow = false;
        const char *name = NULL;
        int r;
        if (!config || !*config)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "'spec.config' is empty");
        if ((r = json_parse_object(config, strlen(config), 1u << 20, "spec.config", &conf, e)) < 0 ||
            (r = json_get_bool(conf, "spec.config", "allowPersistentIPs", false, &allow, e)) < 0 ||
            (r = json_get_string(conf, "spec.config", "name", allow, &name, e)) < 0)
                return r;
        char *n = NULL;
        if (name && !(n = strdup(name)))
                return -ENOMEM;
        *ret_allow = allow;
        *ret_name = n;
        return 0;
}

/* NAD network_name ("name" or "namespace/name", in namespace ns): does it allow persistent IPs, and its
 * network's name. 0 and *ret_allow false when the NAD is missing or says nothing (the pod's ADD reports a
 * missing NAD); a config that cannot be read is logged. */
static int nad_lookup(CtlStore *s, const char *ns, const char *network_name, bool *ret_allow, char **ret_name) {
        const char *slash = strchr(network_name, '/');
        char nsbuf[256];
        snprintf(nsbuf, sizeof nsbuf, "%.*s", slash ? (int) (slash - network_name) : (int) strlen(ns), slash ? network_name : ns);
        const char *name = slash ? slash + 1 : network_name;
        _cleanup_json_ json_t *nad = ctl_store_ref(s, res_nad(), nsbuf, name);
        KvErr e = {};
        *ret_allow = false;
        *ret_name = NULL;
        if (!nad)
                return 0;
        const char *config = json_string_value(ctl_json_path(nad, "spec.config"));
        if (!config || !*config)
                return 0; /* the conf dir's file on the node: the controller cannot see it */
        int r = ctl_nad_persistent_ips(config, ret_allow, ret_name, &e);
        if (r < 0)
                log_warning("NetworkAttachmentDefinition %s/%s: %s", nsbuf, name, e.msg);
        return r;
}

/* ---- the pass ---- */

static json_t *claim_object(json_t *vm, const char *name, const char *network, const char *ifname) {
        return json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s},s:[{s:s,s:s,s:s,s:s,s:b,s:b}]},s:{s:s,s:s}}", "apiVersion",
                         "k8s.cni.cncf.io/v1alpha1", "kind", "IPAMClaim", "metadata", "name", name, "namespace",
                         ctl_md(vm, "namespace"), "labels", "kubevirt.io/vm", ctl_md(vm, "name"), "ownerReferences",
                         "apiVersion", "kubevirt.io/v1", "kind", "VirtualMachine", "name", ctl_md(vm, "name"), "uid",
                         ctl_md(vm, "uid"), "controller", true, "blockOwnerDeletion", true, "spec", "network", network,
                         "interface", ifname);
}

static int reconcile_vm(CtlStore *s, json_t *vm) {
        const char *ns = ctl_md(vm, "namespace"), *vm_name = ctl_md(vm, "name");
        CtlVmiSpec vs;
        KvErr e = {};
        size_t pos = 0;
        int changed = 0;
        if (!ns || !vm_name || !ctl_md(vm, "uid") ||
            ctl_vmi_spec_parse(ctl_json_path(vm, "spec.template.spec"), "spec.template.spec", &vs, &e) < 0)
                return 0;
        for (size_t i = 0; i < vs.n_multus; i++) {
                char claim[CTL_IPAMCLAIM_NAME_MAX + 1], ifname[16];
                _cleanup_free_ char *network = NULL;
                bool allow = false;
                if (vs.multus[i].is_default)
                        continue;
                snprintf(ifname, sizeof ifname, "net%zu", ++pos); /* the scheduler's numbering */
                if (!vs.multus[i].name || nad_lookup(s, ns, vs.multus[i].network_name, &allow, &network) < 0 || !allow)
                        continue;
                if (ctl_ipamclaim_name(vm_name, vs.multus[i].name, claim) < 0) {
                        log_warning("VirtualMachine %s/%s: network '%s': the IPAMClaim name '%s.%s' is too long", ns,
                                    vm_name, vs.multus[i].name, vm_name, vs.multus[i].name);
                        continue;
                }
                _cleanup_json_ json_t *have = ctl_store_ref(s, res_claim(), ns, claim);
                if (have)
                        continue;
                _cleanup_json_ json_t *obj = claim_object(vm, claim, network, ifname), *out = NULL;
                int r = obj ? ctl_store_create(s, res_claim(), ns, obj, &out, &e) : -ENOMEM;
                if (r < 0) {
                        log_warning("VirtualMachine %s/%s: cannot create IPAMClaim %s: %s", ns, vm_name, claim,
                                    e.msg[0] ? e.msg : strerror(-r));
                        continue;
                }
                log_info("VirtualMachine %s/%s: created IPAMClaim %s (network '%s', interface %s)", ns, vm_name, claim,
                         network, ifname);
                changed++;
        }
        return changed;
}

/* A claim owned by a VM that is gone, or by an earlier VM of that name (another uid), goes with it. */
static int collect_claims(CtlStore *s) {
        _cleanup_json_ json_t *claims = ctl_store_items(s, res_claim());
        size_t i;
        json_t *c;
        int changed = 0;
        if (!claims)
                return -ENOMEM;
        json_array_foreach(claims, i, c) {
                const char *owner = NULL, *uid = ctl_controller_uid(c, "VirtualMachine", &owner);
                const char *ns = ctl_md(c, "namespace"), *name = ctl_md(c, "name");
                if (!uid || !owner)
                        continue;
                _cleanup_json_ json_t *vm = ctl_store_ref(s, res_vm(), ns, owner);
                if (vm && streq_ptr(ctl_md(vm, "uid"), uid))
                        continue;
                json_t *out = NULL;
                KvErr e = {};
                if (ctl_store_delete(s, res_claim(), ns, name, &out, &e) == 0) {
                        log_info("IPAMClaim %s/%s: its VirtualMachine %s is gone; deleted", ns, name, owner);
                        json_decref(out);
                        changed++;
                }
        }
        return changed;
}

int ctl_ipamclaims_reconcile(CtlStore *s) {
        _cleanup_json_ json_t *vms = ctl_store_items(s, res_vm());
        size_t i;
        json_t *vm;
        int changed = 0;
        if (!vms)
                return -ENOMEM;
        json_array_foreach(vms, i, vm) changed += reconcile_vm(s, vm);
        int r = collect_claims(s);
        return r < 0 ? r : changed + r;
}

/* ---- the launcher pod ---- */

/* The VM network an entry of the networks annotation is for: the one its cni-args.kvnet.vm.interface names,
 * else the first whose NAD it is. */
static const char *entry_network(const CtlVmiSpec *vs, const char *ns, json_t *entry, const char **ret_nad) {
        const char *want = json_string_value(ctl_json_path(entry, "cni-args.kvnet.vm.interface"));
        const char *ens = json_string_value(json_object_get(entry, "namespace")),
                   *ename = json_string_value(json_object_get(entry, "name"));
        for (size_t i = 0; i < vs->n_multus; i++) {
                const char *nn = vs->multus[i].network_name, *slash = strchr(nn, '/');
                bool same_nad = streq_ptr(slash ? slash + 1 : nn, ename) &&
                                (slash ? strlen(ens ? ens : "") == (size_t) (slash - nn) && strncmp(nn, ens, slash - nn) == 0
                                       : streq_ptr(ens ? ens : ns, ns));
                if (vs->multus[i].is_default || !vs->multus[i].name || (want ? !streq(want, vs->multus[i].name) : !same_nad))
                        continue;
                *ret_nad = nn;
                return vs->multus[i].name;
        }
        return NULL;
}

int ctl_ipamclaims_annotate(CtlStore *s, const char *ns, const char *vmi_name, json_t *ann) {
        const char *text = json_string_value(json_object_get(ann, NETWORKS_ANNOT)), *vm_name = NULL;
        _cleanup_json_ json_t *vmi = text ? ctl_store_ref(s, res_vmi(), ns, vmi_name) : NULL, *list = NULL;
        CtlVmiSpec vs;
        KvErr e = {};
        size_t i;
        json_t *entry;
        bool any = false;
        if (!vmi || !ctl_controller_uid(vmi, "VirtualMachine", &vm_name) || !vm_name ||
            ctl_vmi_spec_parse(json_object_get(vmi, "spec"), "spec", &vs, &e) < 0)
                return 0;
        if (!(list = json_loads(text, 0, NULL)) || !json_is_array(list))
                return 0; /* only the JSON form carries the reference; the scheduler writes that one */
        json_array_foreach(list, i, entry) {
                const char *nad = NULL, *network = entry_network(&vs, ns, entry, &nad);
                _cleanup_free_ char *config_name = NULL;
                char claim[CTL_IPAMCLAIM_NAME_MAX + 1];
                bool allow = false;
                if (!network || nad_lookup(s, ns, nad, &allow, &config_name) < 0 || !allow ||
                    ctl_ipamclaim_name(vm_name, network, claim) < 0)
                        continue;
                if (json_object_set_new(entry, REF_KEY, json_string(claim)) < 0)
                        return -ENOMEM;
                any = true;
        }
        if (!any)
                return 0;
        _cleanup_free_ char *out = json_dumps(list, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!out || json_object_set_new(ann, NETWORKS_ANNOT, json_string(out)) < 0)
                return -ENOMEM;
        return 1;
}
