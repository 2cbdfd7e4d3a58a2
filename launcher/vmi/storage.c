/* SPDX-License-Identifier: Apache-2.0 */
/* spec.domain.devices.disks joined with spec.volumes by name. */
#include <ctype.h>

#include "common/json-util.h"
#include "launcher/launcher-priv.h"

/* error paths are bounded buffers; a truncated path in a message is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static const char *const launch_disk_bus_table[] = {
        [LAUNCH_BUS_VIRTIO] = "virtio",
        [LAUNCH_BUS_SATA] = "sata",
        [LAUNCH_BUS_SCSI] = "scsi",
};
LAUNCH_DEFINE_STRING_TABLE(launch_disk_bus, LaunchDiskBus);

static int parse_bus(VmiCtx *c, json_t *obj, const char *path, LaunchDiskBus *bus) {
        const char *s = NULL;
        int r = json_get_string(obj, path, "bus", false, &s, c->e);
        if (r <= 0)
                return r;
        int b = launch_disk_bus_from_string(s);
        if (b < 0)
                return vmi_invalid(c, "%s.bus: must be virtio, sata or scsi, got '%s'", path, s);
        *bus = (LaunchDiskBus) b;
        return 0;
}

static int parse_disk(VmiCtx *c, json_t *d, const char *path, LaunchDisk *disk) {
        static const Field fields[] = {
                { "name", FLD_OK },      { "disk", FLD_OK },           { "cdrom", FLD_OK },
                { "bootOrder", FLD_OK }, { "serial", FLD_OK },         { "lun", FLD_REJECT },
                { "dedicatedIOThread", FLD_WARN }, { "cache", FLD_WARN }, { "io", FLD_WARN },
                { "tag", FLD_WARN },     { "shareable", FLD_REJECT },  { "errorPolicy", FLD_WARN },
                { "blockSize", FLD_WARN }, {},
        };
        static const Field disk_fields[] = { { "bus", FLD_OK }, { "readonly", FLD_OK }, { "pciAddress", FLD_OK }, {} };
        static const Field cdrom_fields[] = { { "bus", FLD_OK }, { "readonly", FLD_OK }, { "tray", FLD_WARN }, {} };
        int r;
        char sub[192];
        long long x;
        if ((r = vmi_require_object(c, d, path)) < 0 || (r = vmi_check_fields(c, d, path, fields)) < 0 ||
            (r = vmi_get_str(c, d, path, "name", true, &disk->name)) < 0)
                return r;
        if ((r = json_get_int(d, path, "bootOrder", false, 1, 1000, &x, c->e)) < 0)
                return r;
        if (r > 0)
                disk->boot_order = (uint32_t) x;
        if ((r = vmi_get_str(c, d, path, "serial", false, &disk->serial)) < 0)
                return r;
        if (disk->serial) {
                if (!*disk->serial || strlen(disk->serial) > 20)
                        return vmi_invalid(c, "%s.serial: must be 1..20 characters, got '%s'", path, disk->serial);
                for (const char *p = disk->serial; *p; p++)
                        if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_')
                                return vmi_invalid(c, "%s.serial: only [A-Za-z0-9_-] allowed, got '%s'", path,
                                                   disk->serial);
        }
        json_t *dk = json_object_get(d, "disk"), *cd = json_object_get(d, "cdrom");
        if (dk && cd)
                return vmi_invalid(c, "%s: exactly one of 'disk' and 'cdrom' may be set, got both", path);
        disk->device = cd ? LAUNCH_DEVICE_CDROM : LAUNCH_DEVICE_DISK;
        disk->bus = cd ? LAUNCH_BUS_SATA : LAUNCH_BUS_VIRTIO;
        if (dk) {
                snprintf(sub, sizeof sub, "%s.disk", path);
                if ((r = vmi_require_object(c, dk, sub)) < 0 || (r = vmi_check_fields(c, dk, sub, disk_fields)) < 0 ||
                    (r = parse_bus(c, dk, sub, &disk->bus)) < 0 ||
                    (r = json_get_bool(dk, sub, "readonly", false, &disk->readonly, c->e)) < 0 ||
                    (r = vmi_pci_field(c, dk, sub, disk->pci_address)) < 0)
                        return r;
                if (disk->pci_address[0] && disk->bus != LAUNCH_BUS_VIRTIO)
                        return vmi_invalid(c, "%s.pciAddress: only valid with bus virtio", sub);
        }
        if (cd) {
                snprintf(sub, sizeof sub, "%s.cdrom", path);
                if ((r = vmi_require_object(c, cd, sub)) < 0 || (r = vmi_check_fields(c, cd, sub, cdrom_fields)) < 0 ||
                    (r = parse_bus(c, cd, sub, &disk->bus)) < 0)
                        return r;
                bool ro = true;
                if ((r = json_get_bool(cd, sub, "readonly", false, &ro, c->e)) < 0)
                        return r;
                if (!ro)
                        return vmi_invalid(c, "%s.readonly: a cdrom is always read-only, got false", sub);
                if (disk->bus == LAUNCH_BUS_VIRTIO)
                        return vmi_invalid(c, "%s.bus: a cdrom cannot use bus virtio (use sata or scsi)", sub);
                disk->readonly = true;
        }
        return 0;
}

int vmi_parse_disks_and_volumes(VmiCtx *c, json_t *devices, const char *dpath, json_t *spec) {
        LaunchVmi *v = c->v;
        json_t *disks = NULL, *vols = NULL;
        char path[192], spath[80];
        int r;
        snprintf(spath, sizeof spath, "%s", c->spec);
        if (devices && (r = json_get_array(devices, dpath, "disks", false, &disks, c->e)) < 0)
                return r;
        if ((r = json_get_array(spec, spath, "volumes", false, &vols, c->e)) < 0)
                return r;
        size_t nd = disks ? json_array_size(disks) : 0, nv = vols ? json_array_size(vols) : 0;
        v->disks = calloc(nd + nv + 1, sizeof *v->disks);
        if (!v->disks)
                return vmi_nomem(c);
        for (size_t i = 0; i < nd; i++) {
                snprintf(path, sizeof path, "%s.disks[%zu]", dpath, i);
                LaunchDisk *d = &v->disks[v->n_disks++];
                if ((r = parse_disk(c, json_array_get(disks, i), path, d)) < 0)
                        return r;
                for (size_t k = 0; k + 1 < v->n_disks; k++)
                        if (streq(v->disks[k].name, d->name))
                                return vmi_invalid(c, "%s.name: duplicate disk name '%s'", path, d->name);
        }
        bool *used = calloc(nd + 1, sizeof *used);
        if (!used)
                return vmi_nomem(c);
        _cleanup_free_ bool *used_p = used;
        /* names of all volumes first, so duplicates are reported before anything else */
        for (size_t i = 0; i < nv; i++) {
                json_t *vol = json_array_get(vols, i);
                snprintf(path, sizeof path, "%s.volumes[%zu]", spath, i);
                if ((r = vmi_require_object(c, vol, path)) < 0)
                        return r;
                const char *name = NULL;
                if ((r = json_get_string(vol, path, "name", true, &name, c->e)) < 0)
                        return r;
                for (size_t k = 0; k < i; k++) {
                        const char *o = json_string_value(json_object_get(json_array_get(vols, k), "name"));
                        if (streq(o, name))
                                return vmi_invalid(c, "%s.name: duplicate volume name '%s'", path, name);
                }
                LaunchDisk *d = NULL;
                for (size_t k = 0; k < nd; k++)
                        if (streq(v->disks[k].name, name)) {
                                d = &v->disks[k];
                                used[k] = true;
                        }
                if (!d) {
                        /* KubeVirt adds a disk for a volume that has none */
                        d = &v->disks[v->n_disks++];
                        d->device = LAUNCH_DEVICE_DISK;
                        d->bus = LAUNCH_BUS_VIRTIO;
                        if ((r = vmi_dup_opt(c, name, &d->name)) < 0)
                                return r;
                        if ((r = vmi_warn(c, "%s: no disk named '%s', adding a virtio disk", path, name)) < 0)
                                return r;
                }
                if ((r = vmi_parse_volume(c, vol, path, d)) < 0)
                        return r;
                if (d->kind == LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD && d->device == LAUNCH_DEVICE_DISK)
                        d->readonly = false;
        }
        for (size_t k = 0; k < nd; k++)
                if (!used[k])
                        return vmi_invalid(c, "%s.disks[%zu]: disk '%s' has no volume of that name in %s.volumes", dpath, k,
                                           v->disks[k].name, spath);
        return 0;
}

void launch_disk_done(LaunchDisk *d) {
        free(d->name);
        free(d->serial);
        free(d->image);
        free(d->path);
        free(d->cloud_init.meta_data);
        free(d->cloud_init.user_data);
        free(d->cloud_init.network_config);
}
