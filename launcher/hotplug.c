/* SPDX-License-Identifier: Apache-2.0 */
/* The status socket's NIC hot-plug requests (attach-interface, detach-interface), both ends: parsed
 * and checked here into typed requests (the runtime, launcher/runtime/hotplug.c, only checks what
 * depends on the running domain), and written from them for the node side. */
#include "common/addr.h"
#include "common/json-util.h"
#include "launcher/launcher-priv.h"

#define IFACE_NAME_MAX 63

static int check_keys(json_t *args, const char *ctx, const char *const *keys, size_t n, KvErr *e) {
        const char *k;
        json_t *val;
        json_object_foreach (args, k, val)
                if (launch_table_lookup(keys, n, k) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: unknown key '%.64s'", ctx, k);
        return 0;
}

static int get_args(json_t *args, const char *ctx, KvErr *e) {
        if (!args)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'args' is required", ctx);
        if (!json_is_object(args))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'args' must be an object, got %s", ctx,
                                 json_type_name(args));
        return 0;
}

/* The VMI interface name: it becomes libvirt's user alias ua-<name> ([A-Za-z0-9_-]). */
static int get_name(json_t *args, const char *ctx, char **ret, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(args, ctx, "name", true, &s, e);
        if (r < 0)
                return r;
        size_t len = strlen(s);
        bool ok = len > 0 && len <= IFACE_NAME_MAX;
        for (size_t i = 0; ok && i < len; i++)
                ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                     s[i] == '-' || s[i] == '_';
        if (!ok)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: 'name' must be 1..%d characters of [A-Za-z0-9_-], got '%.80s'", ctx, IFACE_NAME_MAX,
                                 s);
        char *d = strdup(s);
        if (!d)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        *ret = d;
        return 0;
}

static bool valid_ifname(const char *s, size_t max) {
        size_t len = strlen(s);
        if (len == 0 || len >= max || streq(s, ".") || streq(s, ".."))
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] == '/' || s[i] == ':' || (unsigned char) s[i] <= ' ' || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

int launch_attach_req_parse(json_t *args, const LaunchVmi *v, LaunchAttachReq *ret, KvErr *e) {
        static const char ctx[] = "attach-interface";
        static const char *const keys[] = { "name", "tap", "pci", "mac", "model", "mtu" };
        LaunchAttachReq q = { .ifc = { .binding = LAUNCH_BINDING_BRIDGE }, .nic = { .kind = NIC_TAP } };
        const char *pci = NULL;
        const char *s;
        long long mtu = 0;
        int r;
        if ((r = get_args(args, ctx, e)) < 0 || (r = check_keys(args, ctx, keys, ELEMENTSOF(keys), e)) < 0 ||
            (r = get_name(args, ctx, &q.ifc.name, e)) < 0)
                return r;
        q.nic.name = q.ifc.name;

        s = NULL;
        if ((r = json_get_string(args, ctx, "tap", false, &s, e)) < 0 ||
            (r = json_get_string(args, ctx, "pci", false, &pci, e)) < 0)
                goto fail;
        if (!s == !pci) {
                r = kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                              "%s: give 'tap' (a tap in the launcher's namespace) or 'pci' (an SR-IOV VF), %s", ctx,
                              s ? "not both" : "got neither");
                goto fail;
        }
        if (pci) { /* an SR-IOV VF: the <hostdev> of the sriov binding */
                if (launch_parse_pci(pci, NULL, NULL, NULL, NULL) < 0 || strlen(pci) >= sizeof q.nic.pci) {
                        r = kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                      "%s: 'pci' must be a PCI address (0000:3b:02.1), got '%.80s'", ctx, pci);
                        goto fail;
                }
                q.ifc.binding = LAUNCH_BINDING_SRIOV;
                q.nic.kind = NIC_HOSTDEV;
                snprintf(q.nic.pci, sizeof q.nic.pci, "%s", pci);
        } else if (!valid_ifname(s, sizeof q.nic.tap)) {
                r = kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                              "%s: 'tap' must be an interface name of 1..%zu characters, got '%.80s'", ctx,
                              sizeof q.nic.tap - 1, s);
                goto fail;
        } else
                snprintf(q.nic.tap, sizeof q.nic.tap, "%s", s);

        s = NULL;
        if ((r = json_get_string(args, ctx, "mac", false, &s, e)) < 0)
                goto fail;
        if (s) {
                if (launch_parse_mac(s, q.nic.mac) < 0 || (q.nic.mac[0] & 1) ||
                    !(q.nic.mac[0] | q.nic.mac[1] | q.nic.mac[2] | q.nic.mac[3] | q.nic.mac[4] | q.nic.mac[5])) {
                        r = kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                      "%s: 'mac' must be a unicast MAC address (02:xx:xx:xx:xx:xx), got '%.80s'", ctx, s);
                        goto fail;
                }
        } else
                kv_vm_nic_mac(v->namespace, v->name, q.ifc.name, q.nic.mac);

        s = NULL;
        if ((r = json_get_string(args, ctx, "model", false, &s, e)) < 0)
                goto fail;
        if (s && !launch_nic_model_known(s)) {
                r = kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                              "%s: 'model' must be one of virtio, e1000, e1000e, igb, rtl8139, ne2k_pci, pcnet, got '%.80s'",
                              ctx, s);
                goto fail;
        }
        snprintf(q.ifc.model, sizeof q.ifc.model, "%s", s ? s : "virtio");

        if ((r = json_get_int(args, ctx, "mtu", false, 68, 65535, &mtu, e)) < 0)
                goto fail;
        q.nic.mtu = (uint32_t) mtu;
        *ret = q;
        return 0;
fail:
        launch_attach_req_done(&q);
        return r;
}

void launch_attach_req_done(LaunchAttachReq *r) {
        free(r->ifc.name);
        r->ifc.name = NULL;
        r->nic.name = NULL;
}

int launch_detach_req_parse(json_t *args, LaunchDetachReq *ret, KvErr *e) {
        static const char ctx[] = "detach-interface";
        static const char *const keys[] = { "name" };
        char *name = NULL;
        int r;
        if ((r = get_args(args, ctx, e)) < 0 || (r = check_keys(args, ctx, keys, ELEMENTSOF(keys), e)) < 0 ||
            (r = get_name(args, ctx, &name, e)) < 0)
                return r;
        ret->name = name;
        return 0;
}

void launch_detach_req_done(LaunchDetachReq *r) {
        free(r->name);
        r->name = NULL;
}

json_t *launch_attach_req_to_json(const LaunchAttachReq *r) {
        const uint8_t *m = r->nic.mac;
        char mac[18];
        snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
        bool vf = r->nic.kind == NIC_HOSTDEV;
        json_t *args = json_pack("{s:s, s:s, s:s, s:s}", "name", r->ifc.name ? r->ifc.name : "", vf ? "pci" : "tap",
                                 vf ? r->nic.pci : r->nic.tap, "mac", mac, "model",
                                 r->ifc.model[0] ? r->ifc.model : "virtio");
        if (args && r->nic.mtu && json_object_set_new(args, "mtu", json_integer(r->nic.mtu)) < 0) {
                json_decref(args);
                return NULL;
        }
        return args ? json_pack("{s:s, s:o}", "op", "attach-interface", "args", args) : NULL;
}

json_t *launch_detach_req_to_json(const LaunchDetachReq *r) {
        return json_pack("{s:s, s:{s:s}}", "op", "detach-interface", "args", "name", r->name ? r->name : "");
}
