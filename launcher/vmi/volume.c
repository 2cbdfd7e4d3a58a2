/* SPDX-License-Identifier: Apache-2.0 */
/* One spec.volumes entry: its source (containerDisk, cloudInitNoCloud, emptyDisk), the host file it
 * resolves to, and the cloud-init files. */
#include <fcntl.h>

#include "common/base64.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "launcher/launcher-priv.h"

/* error paths are bounded buffers; a truncated path in a message is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static int resolve_image(VmiCtx *c, const char *path, LaunchDisk *disk) {
        const char *img = disk->image;
        const char *store = c->o->image_dir ? c->o->image_dir : LAUNCH_DEFAULT_IMAGE_DIR;
        int r;
        if (!*img)
                return vmi_invalid(c, "%s.image: must not be empty", path);
        if (img[0] == '/') {
                if (!c->o->allow_host_paths)
                        return vmi_invalid(c,
                                           "%s.image: '%s' is a host path; an image reference (registry/repository:tag) "
                                           "of the image store is required (docs/images.md)",
                                           path, img);
                if (strstr(img, "/../") || strlen(img) >= 4096)
                        return vmi_invalid(c, "%s.image: must be a normalised absolute path, got '%s'", path, img);
                if ((r = vmi_dup_opt(c, img, &disk->path)) < 0)
                        return r;
        } else {
                LaunchImageRef ref;
                KvErr re = {};
                if (launch_image_ref_parse(img, &ref, &re) < 0)
                        return vmi_invalid(c, "%s.image: %s", path, re.msg);
                if (!c->o->parse_only && (r = launch_image_disk(store, &ref, &disk->path, &re)) < 0) {
                        if (c->o->require_files)
                                return kverr_set(c->e, KV_ERR_INVALID_CONFIG, r, "%s.image: %s", path, re.msg);
                        if ((r = vmi_warn(c, "%s.image: %s", path, re.msg)) < 0)
                                return r;
                }
                if (!disk->path && asprintf(&disk->path, "%s/%s/disk/disk.img", store, ref.canonical) < 0) {
                        disk->path = NULL;
                        return vmi_nomem(c);
                }
                if (c->o->parse_only || access(disk->path, F_OK) < 0) {
                        disk->format = LAUNCH_FORMAT_RAW;
                        return 0;
                }
        }
        /* format: qcow2 magic "QFI\xfb", else raw */
        _cleanup_close_ int fd = c->o->parse_only ? -ENOENT : open(disk->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (c->o->require_files && !c->o->parse_only)
                        return kverr_set_errno(c->e, KV_ERR_INVALID_CONFIG, negative_errno(),
                                               "%s.image: cannot open '%s'", path, disk->path);
                size_t l = strlen(disk->path);
                disk->format = l > 6 && streq(disk->path + l - 6, ".qcow2") ? LAUNCH_FORMAT_QCOW2 : LAUNCH_FORMAT_RAW;
                if (c->o->parse_only)
                        return 0;
                return vmi_warn(c, "%s.image: '%s' does not exist here, assuming %s", path, disk->path,
                                disk->format == LAUNCH_FORMAT_QCOW2 ? "qcow2" : "raw");
        }
        unsigned char magic[4] = {};
        ssize_t k = read(fd, magic, sizeof magic);
        disk->format = k == 4 && memcmp(magic, "QFI\xfb", 4) == 0 ? LAUNCH_FORMAT_QCOW2 : LAUNCH_FORMAT_RAW;
        return 0;
}

static int b64_or_plain(VmiCtx *c, json_t *obj, const char *path, const char *plain_key, const char *b64_key,
                        char **ret) {
        const char *p = NULL, *b = NULL;
        int r;
        if ((r = json_get_string(obj, path, plain_key, false, &p, c->e)) < 0 ||
            (r = json_get_string(obj, path, b64_key, false, &b, c->e)) < 0)
                return r;
        if (p && b)
                return vmi_invalid(c, "%s: only one of '%s' and '%s' may be set", path, plain_key, b64_key);
        if (p)
                return vmi_dup_opt(c, p, ret);
        if (!b)
                return 0;
        size_t n = 0;
        if (base64_decode(b, ret, &n) < 0)
                return vmi_invalid(c, "%s.%s: invalid base64", path, b64_key);
        if (strlen(*ret) != n) { /* text for a seed file: an embedded NUL would cut it short */
                free(*ret);
                *ret = NULL;
                return vmi_invalid(c, "%s.%s: the decoded data holds a NUL byte", path, b64_key);
        }
        return 0;
}

static int parse_container_disk(VmiCtx *c, json_t *src, const char *sub, LaunchDisk *disk) {
        static const Field fields[] = {
                { "image", FLD_OK }, { "imagePullPolicy", FLD_WARN }, { "imagePullSecret", FLD_WARN }, { "path", FLD_WARN }, {},
        };
        int r;
        if ((r = vmi_require_object(c, src, sub)) < 0 || (r = vmi_check_fields(c, src, sub, fields)) < 0 ||
            (r = vmi_get_str(c, src, sub, "image", true, &disk->image)) < 0)
                return r;
        return resolve_image(c, sub, disk);
}

static int parse_cloud_init_nocloud(VmiCtx *c, json_t *src, const char *sub, LaunchDisk *disk) {
        static const Field fields[] = {
                { "userData", FLD_OK },          { "userDataBase64", FLD_OK },          { "networkData", FLD_OK },
                { "networkDataBase64", FLD_OK }, { "userDataSecretRef", FLD_REJECT }, { "networkDataSecretRef", FLD_REJECT },
                {},
        };
        int r;
        disk->format = LAUNCH_FORMAT_RAW;
        if ((r = vmi_require_object(c, src, sub)) < 0 || (r = vmi_check_fields(c, src, sub, fields)) < 0 ||
            (r = b64_or_plain(c, src, sub, "userData", "userDataBase64", &disk->cloud_init.user_data)) < 0 ||
            (r = b64_or_plain(c, src, sub, "networkData", "networkDataBase64", &disk->cloud_init.network_config)) < 0)
                return r;
        if (!disk->cloud_init.user_data && !disk->cloud_init.network_config)
                return vmi_invalid(c, "%s: userData/userDataBase64 or networkData/networkDataBase64 is required", sub);
        disk->path = launch_volume_file(c->v->state_dir, disk);
        return disk->path ? 0 : vmi_nomem(c);
}

static int parse_empty_disk(VmiCtx *c, json_t *src, const char *sub, LaunchDisk *disk) {
        static const Field fields[] = { { "capacity", FLD_OK }, {} };
        int r;
        disk->format = LAUNCH_FORMAT_RAW;
        if ((r = vmi_require_object(c, src, sub)) < 0 || (r = vmi_check_fields(c, src, sub, fields)) < 0)
                return r;
        if ((r = vmi_quantity_field(c, src, sub, "capacity", &disk->capacity)) < 0)
                return r;
        if (r == 0)
                return vmi_invalid(c, "%s: 'capacity' is required", sub);
        disk->path = launch_volume_file(c->v->state_dir, disk);
        return disk->path ? 0 : vmi_nomem(c);
}

static const char *const launch_volume_kind_table[] = {
        [LAUNCH_VOLUME_CONTAINER_DISK] = "containerDisk",
        [LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD] = "cloudInitNoCloud",
        [LAUNCH_VOLUME_EMPTY_DISK] = "emptyDisk",
};
LAUNCH_DEFINE_STRING_TABLE(launch_volume_kind, LaunchVolumeKind);

typedef struct VolumeOps {
        /* the source object under the kind's key; sets disk->path (and the format) */
        int (*parse)(VmiCtx *c, json_t *src, const char *path, LaunchDisk *disk);
        /* the file the launcher makes for it in the VM directory, NULL: the image's own path */
        const char *file_suffix;
} VolumeOps;

static const VolumeOps volume_ops[] = {
        [LAUNCH_VOLUME_CONTAINER_DISK] = { parse_container_disk, NULL },
        [LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD] = { parse_cloud_init_nocloud, "cidata.iso" },
        [LAUNCH_VOLUME_EMPTY_DISK] = { parse_empty_disk, "empty.raw" },
};

int vmi_parse_volume(VmiCtx *c, json_t *vol, const char *path, LaunchDisk *disk) {
        static const Field fields[] = {
                { "name", FLD_OK },
                { "containerDisk", FLD_OK },
                { "cloudInitNoCloud", FLD_OK },
                { "emptyDisk", FLD_OK },
                { "persistentVolumeClaim", FLD_REJECT },
                { "dataVolume", FLD_REJECT },
                { "hostDisk", FLD_REJECT },
                { "ephemeral", FLD_REJECT },
                { "cloudInitConfigDrive", FLD_REJECT },
                { "configMap", FLD_REJECT },
                { "secret", FLD_REJECT },
                { "serviceAccount", FLD_REJECT },
                { "downwardAPI", FLD_REJECT },
                { "downwardMetrics", FLD_REJECT },
                { "sysprep", FLD_REJECT },
                { "memoryDump", FLD_REJECT },
                {},
        };
        char sub[192];
        int r;
        if ((r = vmi_require_object(c, vol, path)) < 0 || (r = vmi_check_fields(c, vol, path, fields)) < 0)
                return r;
        json_t *src = NULL;
        int kind = 0;
        int n = (int) vmi_find_kind(vol, launch_volume_kind_table, ELEMENTSOF(launch_volume_kind_table), &kind, &src);
        if (n != 1)
                return vmi_invalid(c, "%s: exactly one volume source (containerDisk, cloudInitNoCloud, emptyDisk) must be set, got %d",
                                   path, n);
        disk->kind = (LaunchVolumeKind) kind;
        snprintf(sub, sizeof sub, "%s.%s", path, launch_volume_kind_to_string(disk->kind));
        return volume_ops[disk->kind].parse(c, src, sub, disk);
}

int vmi_build_cloud_init(VmiCtx *c) {
        LaunchVmi *v = c->v;
        for (size_t i = 0; i < v->n_disks; i++) {
                LaunchDisk *d = &v->disks[i];
                if (d->kind != LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD)
                        continue;
                const char *id = v->uid ? v->uid : v->name;
                int r;
                if (v->subdomain)
                        r = asprintf(&d->cloud_init.meta_data, "instance-id: %s\nlocal-hostname: %s.%s.%s.svc\n", id,
                                     v->hostname, v->subdomain, v->namespace);
                else
                        r = asprintf(&d->cloud_init.meta_data, "instance-id: %s\nlocal-hostname: %s\n", id,
                                     v->hostname);
                if (r < 0) {
                        d->cloud_init.meta_data = NULL;
                        return vmi_nomem(c);
                }
        }
        return 0;
}

char *launch_volume_file(const char *vm_dir, const LaunchDisk *d) {
        const char *suffix = (size_t) d->kind < ELEMENTSOF(volume_ops) ? volume_ops[d->kind].file_suffix : NULL;
        char *p = NULL;
        if (!suffix || asprintf(&p, "%s/%s-%s", vm_dir, d->name, suffix) < 0)
                return NULL;
        return p;
}

int launch_cloudinit_write_files(const LaunchDisk *d, const char *dir) {
        if (d->kind != LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD)
                return -EINVAL;
        const struct {
                const char *name, *data;
        } files[] = {
                { "meta-data", d->cloud_init.meta_data },
                { "user-data", d->cloud_init.user_data ? d->cloud_init.user_data : "#cloud-config\n" },
                { "network-config", d->cloud_init.network_config },
        };
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                if (!files[i].data)
                        continue;
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", dir, files[i].name) < 0)
                        return -ENOMEM;
                r = write_file_atomic(p, files[i].data, strlen(files[i].data), false);
                if (r < 0)
                        return r;
        }
        return 0;
}
