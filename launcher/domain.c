/* SPDX-License-Identifier: Apache-2.0 */
/* LaunchVmi + prepared NICs -> libvirt domain XML, through a small escaping writer.
 * Output is deterministic (fixed element and attribute order) for golden tests. */
#include <inttypes.h>
#include <stdarg.h>
#include <sys/utsname.h>

#include "launcher/launcher-priv.h"

typedef struct Xml {
        FILE *f;
        char *buf;
        size_t len;
        unsigned depth;
} Xml;

static void xml_escaped(Xml *x, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '&': fputs("&amp;", x->f); break;
                case '<': fputs("&lt;", x->f); break;
                case '>': fputs("&gt;", x->f); break;
                case '\'': fputs("&apos;", x->f); break;
                case '"': fputs("&quot;", x->f); break;
                default:
                        if ((unsigned char) *s < 0x20 && *s != '\n' && *s != '\t')
                                fprintf(x->f, "&#x%x;", (unsigned char) *s);
                        else
                                fputc(*s, x->f);
                }
}

static void indent(Xml *x) {
        for (unsigned i = 0; i < x->depth; i++)
                fputs("  ", x->f);
}

/* attrs: NULL-terminated name, value pairs; values are escaped. */
static void xml_vtag(Xml *x, const char *name, bool close, va_list ap) {
        indent(x);
        fprintf(x->f, "<%s", name);
        for (;;) {
                const char *k = va_arg(ap, const char *);
                if (!k)
                        break;
                const char *v = va_arg(ap, const char *);
                fprintf(x->f, " %s='", k);
                xml_escaped(x, v);
                fputc('\'', x->f);
        }
        fputs(close ? "/>\n" : ">\n", x->f);
}

static void xml_open(Xml *x, const char *name, ...) {
        va_list ap;
        va_start(ap, name);
        xml_vtag(x, name, false, ap);
        va_end(ap);
        x->depth++;
}

static void xml_empty(Xml *x, const char *name, ...) {
        va_list ap;
        va_start(ap, name);
        xml_vtag(x, name, true, ap);
        va_end(ap);
}

static void xml_close(Xml *x, const char *name) {
        x->depth--;
        indent(x);
        fprintf(x->f, "</%s>\n", name);
}

/* <name attrs...>text</name> */
static void xml_text(Xml *x, const char *name, const char *text, ...) {
        va_list ap;
        indent(x);
        fprintf(x->f, "<%s", name);
        va_start(ap, text);
        for (;;) {
                const char *k = va_arg(ap, const char *);
                if (!k)
                        break;
                const char *v = va_arg(ap, const char *);
                fprintf(x->f, " %s='", k);
                xml_escaped(x, v);
                fputc('\'', x->f);
        }
        va_end(ap);
        fputc('>', x->f);
        xml_escaped(x, text);
        fprintf(x->f, "</%s>\n", name);
}

static void fmt_mac(const uint8_t m[6], char out[18]) {
        snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void synth_mac(const LaunchVmi *v, const char *ifname, uint8_t mac[6]) {
        char key[512];
        int n = snprintf(key, sizeof key, "%s/%s/%s", v->namespace, v->name, ifname);
        uint64_t h = kv_hash64(key, (size_t) (n < 0 ? 0 : n));
        mac[0] = 0x02; /* locally administered, unicast */
        for (int i = 1; i < 6; i++)
                mac[i] = (uint8_t) (h >> (8 * (i - 1)));
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

static void uuid_from(const LaunchVmi *v, char out[37]) {
        const char *u = v->firmware_uuid;
        bool is_uuid = false;
        if (!u && v->uid && strlen(v->uid) == 36) {
                is_uuid = true;
                for (int i = 0; i < 36; i++) {
                        char ch = v->uid[i];
                        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                        if (dash ? ch != '-' : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
                                is_uuid = false;
                }
                if (is_uuid)
                        u = v->uid;
        }
        if (u) {
                for (int i = 0; i < 36; i++)
                        out[i] = (char) ((u[i] >= 'A' && u[i] <= 'F') ? u[i] - 'A' + 'a' : u[i]);
                out[36] = '\0';
                return;
        }
        /* derived: two FNV hashes of the identity, shaped as a version-5-like UUID */
        char key[512];
        int n = snprintf(key, sizeof key, "kvnet/%s/%s/%s", v->namespace, v->name, v->uid ? v->uid : "");
        uint64_t a = kv_hash64(key, (size_t) n), b = kv_hash64(&a, sizeof a) ^ a;
        uint8_t by[16];
        for (int i = 0; i < 8; i++) {
                by[i] = (uint8_t) (a >> (8 * i));
                by[8 + i] = (uint8_t) (b >> (8 * i));
        }
        by[6] = (by[6] & 0x0f) | 0x50;
        by[8] = (by[8] & 0x3f) | 0x80;
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", by[0], by[1], by[2],
                 by[3], by[4], by[5], by[6], by[7], by[8], by[9], by[10], by[11], by[12], by[13], by[14], by[15]);
}

static void guest_pci(Xml *x, const char *addr) {
        unsigned d, b, s, f;
        if (!addr[0] || launch_parse_pci(addr, &d, &b, &s, &f) < 0)
                return;
        char ds[8], bs[8], ss[8], fs[8];
        snprintf(ds, sizeof ds, "0x%04x", d);
        snprintf(bs, sizeof bs, "0x%02x", b);
        snprintf(ss, sizeof ss, "0x%02x", s);
        snprintf(fs, sizeof fs, "0x%x", f);
        xml_empty(x, "address", "type", "pci", "domain", ds, "bus", bs, "slot", ss, "function", fs, NULL);
}

static void boot_order(Xml *x, uint32_t order) {
        if (!order)
                return;
        char s[16];
        snprintf(s, sizeof s, "%u", order);
        xml_empty(x, "boot", "order", s, NULL);
}

static const char *arch_type(const char **machine) {
#if defined(__aarch64__)
        *machine = "virt";
        return "aarch64";
#else
        *machine = "q35";
        return "x86_64";
#endif
}

int launch_domain_xml(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, const LaunchDomainOptions *o,
                      LaunchWarnings *w, char **ret, KvErr *e) {
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
        LaunchAccel accel = o ? o->accel : LAUNCH_ACCEL_TCG;

        Xml x = {};
        x.f = open_memstream(&x.buf, &x.len);
        if (!x.f)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");

        _cleanup_free_ char *dname = launch_domain_name(v);
        char uuid[37], num[32], mac[18];
        uuid_from(v, uuid);
        const char *machine;
        const char *arch = arch_type(&machine);

        xml_open(&x, "domain", "type", launch_accel_to_string(accel), NULL);
        xml_text(&x, "name", dname ? dname : "", NULL);
        xml_text(&x, "uuid", uuid, NULL);
        xml_open(&x, "metadata", NULL);
        xml_open(&x, "kvnet:vmi", "xmlns:kvnet", "https://kvnet.dev/xmlns/launcher/1", NULL);
        xml_text(&x, "kvnet:namespace", v->namespace, NULL);
        xml_text(&x, "kvnet:name", v->name, NULL);
        if (v->uid)
                xml_text(&x, "kvnet:uid", v->uid, NULL);
        snprintf(num, sizeof num, "%" PRId64, v->termination_grace_seconds);
        xml_text(&x, "kvnet:terminationGracePeriodSeconds", num, NULL);
        xml_close(&x, "kvnet:vmi");
        xml_close(&x, "metadata");

        snprintf(num, sizeof num, "%" PRIu64, v->memory / 1024);
        xml_text(&x, "memory", num, "unit", "KiB", NULL);
        xml_text(&x, "currentMemory", num, "unit", "KiB", NULL);
        snprintf(num, sizeof num, "%u", v->sockets * v->cores * v->threads);
        xml_text(&x, "vcpu", num, "placement", "static", NULL);

        xml_open(&x, "os", NULL);
        xml_text(&x, "type", "hvm", "arch", arch, "machine", machine, NULL);
        bool per_device_boot = false;
        for (size_t i = 0; i < v->n_disks; i++)
                per_device_boot = per_device_boot || v->disks[i].boot_order;
        for (size_t i = 0; i < v->n_interfaces; i++)
                per_device_boot = per_device_boot || v->interfaces[i].boot_order;
        if (v->kernel_boot) {
                xml_text(&x, "kernel", v->kernel_path, NULL);
                if (v->initrd_path)
                        xml_text(&x, "initrd", v->initrd_path, NULL);
                if (v->kernel_args)
                        xml_text(&x, "cmdline", v->kernel_args, NULL);
        } else if (!per_device_boot)
                xml_empty(&x, "boot", "dev", "hd", NULL);
        xml_close(&x, "os");

        xml_open(&x, "features", NULL);
        xml_empty(&x, "acpi", NULL);
        xml_close(&x, "features");

        /* CPU model */
        const char *model = v->cpu_model;
        char s_sock[16], s_cores[16], s_threads[16];
        snprintf(s_sock, sizeof s_sock, "%u", v->sockets);
        snprintf(s_cores, sizeof s_cores, "%u", v->cores);
        snprintf(s_threads, sizeof s_threads, "%u", v->threads);
        bool host_mode = model && (streq(model, "host-passthrough") || streq(model, "host-model"));
        if (accel == LAUNCH_ACCEL_TCG && host_mode) {
                launch_warnings_add(w, "spec.domain.cpu.model: '%s' needs KVM; using qemu64 under TCG", model);
                model = NULL;
        }
        if (accel == LAUNCH_ACCEL_KVM && (!model || streq(model, "host-model")))
                xml_open(&x, "cpu", "mode", "host-model", "check", "none", NULL);
        else if (accel == LAUNCH_ACCEL_KVM && streq(model, "host-passthrough"))
                xml_open(&x, "cpu", "mode", "host-passthrough", "check", "none", "migratable", "on", NULL);
        else {
                xml_open(&x, "cpu", "mode", "custom", "match", "exact", "check", "none", NULL);
                xml_text(&x, "model", model ? model : "qemu64", "fallback", "allow", NULL);
        }
        xml_empty(&x, "topology", "sockets", s_sock, "dies", "1", "cores", s_cores, "threads", s_threads, NULL);
        xml_close(&x, "cpu");

        xml_empty(&x, "clock", "offset", "utc", NULL);
        xml_text(&x, "on_poweroff", "destroy", NULL);
        xml_text(&x, "on_reboot", "restart", NULL);
        xml_text(&x, "on_crash", "destroy", NULL);

        xml_open(&x, "devices", NULL);
        unsigned n_vd = 0, n_sd = 0;
        bool scsi = false;
        for (size_t i = 0; i < v->n_disks; i++) {
                const LaunchDisk *d = &v->disks[i];
                char dev[16];
                if (d->bus == LAUNCH_BUS_VIRTIO)
                        snprintf(dev, sizeof dev, "vd%c", 'a' + (n_vd++ % 26));
                else
                        snprintf(dev, sizeof dev, "sd%c", 'a' + (n_sd++ % 26));
                scsi = scsi || d->bus == LAUNCH_BUS_SCSI;
                const char *bus = launch_disk_bus_to_string(d->bus);
                xml_open(&x, "disk", "type", "file", "device", d->device == LAUNCH_DEVICE_CDROM ? "cdrom" : "disk", NULL);
                xml_empty(&x, "driver", "name", "qemu", "type", d->format == LAUNCH_FORMAT_QCOW2 ? "qcow2" : "raw",
                          "cache", "none", NULL);
                _cleanup_free_ char *own = NULL;
                if (o && o->vm_dir && (d->kind == LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD || d->kind == LAUNCH_VOLUME_EMPTY_DISK)) {
                        own = launch_volume_file(o->vm_dir, d);
                        if (!own) {
                                fclose(x.f);
                                free(x.buf);
                                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
                        }
                }
                xml_empty(&x, "source", "file", own ? own : d->path, NULL);
                xml_empty(&x, "target", "dev", dev, "bus", bus, NULL);
                if (d->readonly)
                        xml_empty(&x, "readonly", NULL);
                if (d->serial)
                        xml_text(&x, "serial", d->serial, NULL);
                boot_order(&x, d->boot_order);
                char alias[300];
                snprintf(alias, sizeof alias, "ua-%s", d->name);
                xml_empty(&x, "alias", "name", alias, NULL);
                guest_pci(&x, d->pci_address);
                xml_close(&x, "disk");
        }
        if (scsi)
                xml_empty(&x, "controller", "type", "scsi", "index", "0", "model", "virtio-scsi", NULL);
        xml_empty(&x, "controller", "type", "usb", "model", "none", NULL);

        for (size_t i = 0; i < n_nics; i++) {
                const LaunchInterface *ifc = &v->interfaces[i];
                const LaunchNic *n = &nics[i];
                char alias[300];
                snprintf(alias, sizeof alias, "ua-%s", ifc->name);
                fmt_mac(n->mac, mac);
                if (n->kind == NIC_TAP) {
                        xml_open(&x, "interface", "type", "ethernet", NULL);
                        xml_empty(&x, "target", "dev", n->tap, "managed", "no", NULL);
                        xml_empty(&x, "mac", "address", mac, NULL);
                        xml_empty(&x, "model", "type", ifc->model, NULL);
                        if (n->mtu) {
                                snprintf(num, sizeof num, "%u", n->mtu);
                                xml_empty(&x, "mtu", "size", num, NULL);
                        }
                        boot_order(&x, ifc->boot_order);
                        xml_empty(&x, "alias", "name", alias, NULL);
                        guest_pci(&x, ifc->pci_address);
                        xml_close(&x, "interface");
                } else {
                        unsigned d, b, s, f;
                        char ds[8], bs[8], ss[8], fs[8];
                        IGNORE_RESULT(launch_parse_pci(n->pci, &d, &b, &s, &f)); /* checked above */
                        snprintf(ds, sizeof ds, "0x%04x", d);
                        snprintf(bs, sizeof bs, "0x%02x", b);
                        snprintf(ss, sizeof ss, "0x%02x", s);
                        snprintf(fs, sizeof fs, "0x%x", f);
                        xml_open(&x, "hostdev", "mode", "subsystem", "type", "pci", "managed", "no", NULL);
                        xml_open(&x, "source", NULL);
                        xml_empty(&x, "address", "domain", ds, "bus", bs, "slot", ss, "function", fs, NULL);
                        xml_close(&x, "source");
                        boot_order(&x, ifc->boot_order);
                        xml_empty(&x, "alias", "name", alias, NULL);
                        guest_pci(&x, ifc->pci_address);
                        xml_close(&x, "hostdev");
                }
        }

        _cleanup_free_ char *log = NULL;
        const char *logp = o ? o->serial_log : NULL;
        if (!logp) {
                if (asprintf(&log, "%s/serial.log", o && o->vm_dir ? o->vm_dir : v->state_dir) < 0)
                        log = NULL;
                logp = log ? log : "/dev/null";
        }
        xml_open(&x, "serial", "type", "file", NULL);
        xml_empty(&x, "source", "path", logp, "append", "on", NULL);
        xml_empty(&x, "target", "port", "0", NULL);
        xml_close(&x, "serial");
        xml_open(&x, "console", "type", "file", NULL);
        xml_empty(&x, "source", "path", logp, "append", "on", NULL);
        xml_empty(&x, "target", "type", "serial", "port", "0", NULL);
        xml_close(&x, "console");
        xml_open(&x, "video", NULL);
        xml_empty(&x, "model", "type", "none", NULL);
        xml_close(&x, "video");
        xml_empty(&x, "memballoon", "model", "none", NULL);
        xml_close(&x, "devices");
        xml_close(&x, "domain");

        bool err = ferror(x.f);
        if (fclose(x.f) != 0 || err) {
                free(x.buf);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "domain: cannot build XML");
        }
        *ret = x.buf;
        return 0;
}
