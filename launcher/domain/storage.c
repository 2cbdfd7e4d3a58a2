/* SPDX-License-Identifier: Apache-2.0 */
/* The storage part of the domain XML: one <disk> per VMI disk (its volume's file, bus, boot order,
 * serial, guest PCI address) and the controllers they need. */
#include "launcher/launcher-priv.h"

int domain_xml_disks(Xml *x, const LaunchVmi *v, const LaunchDomainOptions *o) {
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
                xml_open(x, "disk", "type", "file", "device", d->device == LAUNCH_DEVICE_CDROM ? "cdrom" : "disk", NULL);
                xml_empty(x, "driver", "name", "qemu", "type", d->format == LAUNCH_FORMAT_QCOW2 ? "qcow2" : "raw",
                          "cache", "none", NULL);
                _cleanup_free_ char *own = NULL;
                if (o && o->vm_dir && (d->kind == LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD || d->kind == LAUNCH_VOLUME_EMPTY_DISK)) {
                        own = launch_volume_file(o->vm_dir, d);
                        if (!own)
                                return -ENOMEM;
                }
                xml_empty(x, "source", "file", own ? own : d->path, NULL);
                xml_empty(x, "target", "dev", dev, "bus", bus, NULL);
                if (d->readonly)
                        xml_empty(x, "readonly", NULL);
                if (d->serial)
                        xml_text(x, "serial", d->serial, NULL);
                xml_boot_order(x, d->boot_order);
                char alias[300];
                snprintf(alias, sizeof alias, "ua-%s", d->name);
                xml_empty(x, "alias", "name", alias, NULL);
                xml_pci_address(x, d->pci_address, true);
                xml_close(x, "disk");
        }
        if (scsi)
                xml_empty(x, "controller", "type", "scsi", "index", "0", "model", "virtio-scsi", NULL);
        xml_empty(x, "controller", "type", "usb", "model", "none", NULL);
        return 0;
}
