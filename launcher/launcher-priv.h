/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher internals shared between its files (launcher/vmi/, launcher/domain/,
 * launcher/runtime/) and its unit test. Not part of the launcher's interface: other components
 * include launcher/launcher.h only. */
#pragma once

#include <jansson.h>

#include "common/kverr.h"
#include "common/util.h"
#include "launcher/launcher.h"

/* ------------------------------------------------------------------ kinds: enum <-> string */

/* Index of s in table (n entries, NULL entries never match), -EINVAL when absent or s is NULL. */
static inline int launch_table_lookup(const char *const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

/* name##_to_string(type) and name##_from_string(const char *) over 'static const char *const
 * name##_table[]', indexed by the enum value. */
#define LAUNCH_DEFINE_STRING_TABLE(name, type)                                                   \
        const char *name##_to_string(type i) {                                                   \
                return (size_t) i < ELEMENTSOF(name##_table) ? name##_table[i] : NULL;           \
        }                                                                                        \
        int name##_from_string(const char *s) {                                                  \
                return launch_table_lookup(name##_table, ELEMENTSOF(name##_table), s);           \
        }

/* The keys the VMI uses for its kinds ("virtio", "bridge", "TCP", "containerDisk", "pod"). */
const char *launch_disk_bus_to_string(LaunchDiskBus b);
int launch_disk_bus_from_string(const char *s);
const char *launch_binding_to_string(LaunchBinding b);
int launch_binding_from_string(const char *s);
const char *launch_protocol_to_string(LaunchProtocol p);
int launch_protocol_from_string(const char *s);
const char *launch_volume_kind_to_string(LaunchVolumeKind k);
int launch_volume_kind_from_string(const char *s);
const char *launch_network_kind_to_string(LaunchNetworkKind k);
int launch_network_kind_from_string(const char *s);

/* ------------------------------------------------------------------ VMI parsing (launcher/vmi/) */

/* One parse of one VMI: the object being filled, the options, the error to set. */
typedef struct VmiCtx {
        LaunchVmi *v;
        const LaunchOptions *o;
        KvErr *e;
        char spec[64]; /* "spec" or "spec.template.spec" */
} VmiCtx;

typedef enum FieldKind {
        FLD_OK,     /* handled */
        FLD_WARN,   /* known, harmless: warning */
        FLD_REJECT, /* known, not supported: error */
} FieldKind;

typedef struct Field {
        const char *key;
        FieldKind kind;
} Field;

/* launcher/vmi/fields.c: checks and typed getters every part of the VMI uses. All set c->e on error. */
int vmi_nomem(VmiCtx *c);
int vmi_warn(VmiCtx *c, const char *fmt, ...) _printf_(2, 3);
int vmi_invalid(VmiCtx *c, const char *fmt, ...) _printf_(2, 3);
/* Every key of obj must be in f: FLD_OK keys are the caller's, the rest warn or fail here. */
int vmi_check_fields(VmiCtx *c, json_t *obj, const char *path, const Field *f);
int vmi_require_object(VmiCtx *c, json_t *v, const char *path);
/* Replaces *ret with a copy of s; s NULL: nothing. */
int vmi_dup_opt(VmiCtx *c, const char *s, char **ret);
/* 1 and *ret set when present, 0 when absent. */
int vmi_get_str(VmiCtx *c, json_t *obj, const char *path, const char *key, bool required, char **ret);
/* A Kubernetes quantity (string) or a positive integer: 1 and *ret set, 0 when absent. */
int vmi_quantity_field(VmiCtx *c, json_t *obj, const char *path, const char *key, uint64_t *ret);
/* "pciAddress": a guest PCI address, lowercased into out; left alone when absent. */
int vmi_pci_field(VmiCtx *c, json_t *obj, const char *path, char out[16]);
/* A source given as one of several keys (a kind's string table, n entries): how many of them obj has;
 * *ret_kind and *ret_src name the last one present (untouched when none is). */
size_t vmi_find_kind(json_t *obj, const char *const *keys, size_t n, int *ret_kind, json_t **ret_src);

/* launcher/vmi/scalars.c */
int launch_hexval(char c);

/* launcher/vmi/metadata.c: metadata (or a VirtualMachine's template metadata + its own). */
int vmi_parse_metadata(VmiCtx *c, json_t *meta, const char *path, json_t *outer_meta);
/* DNS-1123 subdomain-ish names: they end up in file names and the libvirt domain name. */
bool vmi_valid_k8s_name(const char *s, size_t max);
void launch_kv_free(LaunchKV *kv, size_t n);

/* launcher/vmi/compute.c: spec.domain.cpu, .memory + .resources, .firmware, .features. */
int vmi_parse_cpu(VmiCtx *c, json_t *cpu, const char *path);
int vmi_parse_memory_and_resources(VmiCtx *c, json_t *domain, const char *dpath);
int vmi_parse_firmware(VmiCtx *c, json_t *fw, const char *path);
int vmi_parse_features(VmiCtx *c, json_t *features, const char *path);

/* launcher/vmi/storage.c: spec.domain.devices.disks joined with spec.volumes. */
int vmi_parse_disks_and_volumes(VmiCtx *c, json_t *devices, const char *dpath, json_t *spec);
void launch_disk_done(LaunchDisk *d);

/* launcher/vmi/volume.c: one spec.volumes entry (its source), and the cloud-init meta-data. */
int vmi_parse_volume(VmiCtx *c, json_t *vol, const char *path, LaunchDisk *disk);
int vmi_build_cloud_init(VmiCtx *c);

/* launcher/vmi/network.c: spec.domain.devices.interfaces joined with spec.networks. */
int vmi_parse_interfaces_and_networks(VmiCtx *c, json_t *devices, const char *dpath, json_t *spec);
void launch_interface_done(LaunchInterface *ifc);
/* A NIC model the VMI (and attach-interface) accepts: virtio, e1000, e1000e, igb, rtl8139, ne2k_pci, pcnet. */
bool launch_nic_model_known(const char *s);
void launch_network_done(LaunchNetwork *n);

/* ------------------------------------------------------------------ domain XML (launcher/domain/) */

/* launcher/domain/xml.c: an escaping writer into a memstream. Attributes are NULL-terminated name,
 * value pairs; values are escaped. */
typedef struct Xml {
        FILE *f;
        char *buf;
        size_t len;
        unsigned depth;
} Xml;

void xml_open(Xml *x, const char *name, ...);
void xml_empty(Xml *x, const char *name, ...);
void xml_close(Xml *x, const char *name);
/* <name attrs...>text</name> */
void xml_text(Xml *x, const char *name, const char *text, ...);
/* <address> of the PCI function addr ("DDDD:BB:SS.F"; nothing when "" or invalid): a guest address
 * (type='pci') or a host one (a hostdev's source). */
void xml_pci_address(Xml *x, const char *addr, bool guest);
/* <boot order=.../>, nothing for 0. */
void xml_boot_order(Xml *x, uint32_t order);

/* launcher/domain/compute.c: memory, vcpu, os (firmware or kernel boot), features, cpu, clock and
 * the on_* actions. CPU model warnings (host modes under TCG) go to w (may be NULL). */
void domain_xml_compute(Xml *x, const LaunchVmi *v, LaunchAccel accel, LaunchWarnings *w);
/* launcher/domain/storage.c: the disks and their controllers. -ENOMEM. */
int domain_xml_disks(Xml *x, const LaunchVmi *v, const LaunchDomainOptions *o);
/* launcher/domain/network.c: nics[i] must belong to v->interfaces[i] and be complete. */
int domain_nics_check(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, KvErr *e);
/* The <interface> (tap) and <hostdev> (SR-IOV VF) elements. */
void domain_xml_nics(Xml *x, const LaunchVmi *v, const LaunchNic *nics, size_t n_nics);
/* NIC hot-plug needs a free PCIe root port per device (q35, aarch64 virt), and libvirt leaves only
 * one: the domain gets enough pcie-root-port controllers for its own devices plus this many. */
#define LAUNCH_HOTPLUG_PORTS 4
void domain_xml_hotplug_ports(Xml *x, const LaunchVmi *v);
/* The one <interface type='ethernet'> of a tap NIC n for interface ifc, as domain_xml_nics() writes
 * it into the domain (alias ua-<name>): what attach-interface hands to virDomainAttachDeviceFlags().
 * -EINVAL (n is not ifc's, or not a tap), -ENOMEM. Caller frees *ret. */
int launch_interface_xml(const LaunchInterface *ifc, const LaunchNic *n, char **ret, KvErr *e) _wur_;

