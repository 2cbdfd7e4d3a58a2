/* SPDX-License-Identifier: Apache-2.0 */
/* The network part of the domain XML: a VMI interface is an <interface type='ethernet'> on the tap
 * CNI/netd prepared, or a <hostdev> for an SR-IOV VF; and the dry-run stand-ins for both. */
#include "common/addr.h"
#include "launcher/launcher-priv.h"

static void fmt_mac(const uint8_t m[6], char out[18]) {
        snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void synth_mac(const LaunchVmi *v, const char *ifname, uint8_t mac[6]) {
        kv_vm_nic_mac(v->namespace, v->name, ifname, mac);
}

int launch_nics_synthesize(const LaunchVmi *v, LaunchWarnings *w, LaunchNic **ret, size_t *ret_n) {
        LaunchNic *nics = calloc(v->n_interfaces + 1, sizeof *nics);
        if (!nics)
                return -ENOMEM;
        unsigned tap = 0;
        for (size_t i = 0; i < v->n_interfaces; i++) {
                const LaunchInterface *ifc = &v->interfaces[i];
                LaunchNic *n = &nics[i];
                n->name = ifc->name;
                if (ifc->has_mac)
                        memcpy(n->mac, ifc->mac, 6);
                else
                        synth_mac(v, ifc->name, n->mac);
                if (ifc->binding == LAUNCH_BINDING_SRIOV) {
                        n->kind = NIC_HOSTDEV;
                        snprintf(n->pci, sizeof n->pci, "0000:00:00.0");
                        if (launch_warnings_add(w, "interface '%s': no SR-IOV VF allocated in dry-run, using placeholder %s",
                                                ifc->name, n->pci) < 0) {
                                free(nics);
                                return -ENOMEM;
                        }
                } else {
                        n->kind = NIC_TAP;
                        snprintf(n->tap, sizeof n->tap, "tap%u", tap++);
                }
        }
        *ret = nics;
        *ret_n = v->n_interfaces;
        return 0;
}

int domain_nics_check(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, KvErr *e) {
        if (n_nics != v->n_interfaces)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "domain: %zu NICs given for %zu interfaces", n_nics,
                                 v->n_interfaces);
        for (size_t i = 0; i < n_nics; i++) {
                const LaunchInterface *ifc = &v->interfaces[i];
                const LaunchNic *n = &nics[i];
                if (!streq_ptr(n->name, ifc->name))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "domain: NIC %zu is '%s', expected '%s'", i,
                                         n->name ? n->name : "(null)", ifc->name);
                bool want_hostdev = ifc->binding == LAUNCH_BINDING_SRIOV;
                if (want_hostdev != (n->kind == NIC_HOSTDEV))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "domain: NIC '%s' must be a %s", n->name,
                                         want_hostdev ? "hostdev (sriov)" : "tap");
                if (n->kind == NIC_HOSTDEV && launch_parse_pci(n->pci, NULL, NULL, NULL, NULL) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "domain: NIC '%s': invalid PCI address '%s'",
                                         n->name, n->pci);
                if (n->kind == NIC_TAP && (!n->tap[0] || strnlen(n->tap, sizeof n->tap) >= sizeof n->tap))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "domain: NIC '%s': invalid tap name", n->name);
        }
        return 0;
}

/* One <interface> (tap) or <hostdev> (SR-IOV VF) element: the boot path and a hot-plug share it. */
static void domain_xml_nic(Xml *x, const LaunchInterface *ifc, const LaunchNic *n) {
        char num[32], mac[18], alias[300];
        snprintf(alias, sizeof alias, "ua-%s", ifc->name);
        fmt_mac(n->mac, mac);
        if (n->kind == NIC_TAP) {
                xml_open(x, "interface", "type", "ethernet", NULL);
                xml_empty(x, "target", "dev", n->tap, "managed", "no", NULL);
                xml_empty(x, "mac", "address", mac, NULL);
                xml_empty(x, "model", "type", ifc->model, NULL);
                if (n->mtu) {
                        snprintf(num, sizeof num, "%u", n->mtu);
                        xml_empty(x, "mtu", "size", num, NULL);
                }
                xml_boot_order(x, ifc->boot_order);
                xml_empty(x, "alias", "name", alias, NULL);
                xml_pci_address(x, ifc->pci_address, true);
                xml_close(x, "interface");
        } else {
                xml_open(x, "hostdev", "mode", "subsystem", "type", "pci", "managed", "no", NULL);
                xml_open(x, "source", NULL);
                xml_pci_address(x, n->pci, false); /* checked by domain_nics_check() */
                xml_close(x, "source");
                xml_boot_order(x, ifc->boot_order);
                xml_empty(x, "alias", "name", alias, NULL);
                xml_pci_address(x, ifc->pci_address, true);
                xml_close(x, "hostdev");
        }
}

void domain_xml_nics(Xml *x, const LaunchVmi *v, const LaunchNic *nics, size_t n_nics) {
        for (size_t i = 0; i < n_nics; i++)
                domain_xml_nic(x, &v->interfaces[i], &nics[i]);
}

int launch_interface_xml(const LaunchInterface *ifc, const LaunchNic *n, char **ret, KvErr *e) {
        if (!ifc->name || !streq_ptr(n->name, ifc->name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "interface XML: NIC '%s' does not belong to interface '%s'",
                                 n->name ? n->name : "(null)", ifc->name ? ifc->name : "(null)");
        if (n->kind == NIC_TAP ? !n->tap[0] || strnlen(n->tap, sizeof n->tap) >= sizeof n->tap :
                                 launch_parse_pci(n->pci, NULL, NULL, NULL, NULL) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "interface XML: NIC '%s' needs a tap or a VF's PCI "
                                 "address", n->name);
        Xml x = {};
        x.f = open_memstream(&x.buf, &x.len);
        if (!x.f)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        domain_xml_nic(&x, ifc, n);
        bool err = ferror(x.f);
        if (fclose(x.f) != 0 || err || !x.buf) {
                free(x.buf);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        }
        *ret = x.buf;
        return 0;
}

void domain_xml_hotplug_ports(Xml *x, const LaunchVmi *v) {
        /* One port per device libvirt may put on a root port (a NIC or VF per interface, a disk
         * per volume, the virtio-scsi controller): an over-count only leaves more ports free. */
        size_t n = v->n_interfaces + v->n_disks + 1 + LAUNCH_HOTPLUG_PORTS;
        char idx[24];
        xml_empty(x, "controller", "type", "pci", "index", "0", "model", "pcie-root", NULL);
        for (size_t i = 1; i <= n; i++) {
                snprintf(idx, sizeof idx, "%zu", i);
                xml_empty(x, "controller", "type", "pci", "index", idx, "model", "pcie-root-port", NULL);
        }
}
