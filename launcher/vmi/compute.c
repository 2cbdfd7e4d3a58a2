/* SPDX-License-Identifier: Apache-2.0 */
/* spec.domain compute: CPU topology and model, guest memory, firmware (UUID, bootloader, kernelBoot). */
#include <ctype.h>
#include <inttypes.h>

#include "common/json-util.h"
#include "launcher/launcher-priv.h"

/* error paths are bounded buffers; a truncated path in a message is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

int vmi_parse_cpu(VmiCtx *c, json_t *cpu, const char *path) {
        static const Field fields[] = {
                { "cores", FLD_OK },           { "sockets", FLD_OK },   { "threads", FLD_OK },
                { "model", FLD_OK },           { "features", FLD_WARN }, { "maxSockets", FLD_WARN },
                { "dedicatedCpuPlacement", FLD_REJECT }, { "isolateEmulatorThread", FLD_REJECT },
                { "numa", FLD_REJECT },        { "realtime", FLD_REJECT }, {},
        };
        LaunchVmi *v = c->v;
        int r;
        long long x;
        if ((r = vmi_require_object(c, cpu, path)) < 0 || (r = vmi_check_fields(c, cpu, path, fields)) < 0)
                return r;
        if ((r = json_get_int(cpu, path, "cores", false, 1, 256, &x, c->e)) < 0)
                return r;
        if (r > 0)
                v->cores = (uint32_t) x;
        if ((r = json_get_int(cpu, path, "sockets", false, 1, 256, &x, c->e)) < 0)
                return r;
        if (r > 0)
                v->sockets = (uint32_t) x;
        if ((r = json_get_int(cpu, path, "threads", false, 1, 8, &x, c->e)) < 0)
                return r;
        if (r > 0)
                v->threads = (uint32_t) x;
        if ((r = vmi_get_str(c, cpu, path, "model", false, &v->cpu_model)) < 0)
                return r;
        if (v->cpu_model) {
                const char *m = v->cpu_model;
                if (!*m || strlen(m) > 64)
                        return vmi_invalid(c, "%s: 'model' must be 1..64 characters, got '%s'", path, m);
                for (const char *p = m; *p; p++)
                        if (!isalnum((unsigned char) *p) && !strchr("-_.", *p))
                                return vmi_invalid(c, "%s: 'model' has an invalid character, got '%s'", path, m);
        }
        if ((uint64_t) v->sockets * v->cores * v->threads > 512)
                return vmi_invalid(c, "%s: sockets*cores*threads must be <= 512, got %u*%u*%u", path, v->sockets,
                                   v->cores, v->threads);
        return 0;
}

int vmi_parse_memory_and_resources(VmiCtx *c, json_t *domain, const char *dpath) {
        static const Field mem_fields[] = {
                { "guest", FLD_OK }, { "maxGuest", FLD_WARN }, { "hugepages", FLD_REJECT }, {},
        };
        static const Field res_fields[] = {
                { "requests", FLD_OK }, { "limits", FLD_WARN }, { "overcommitGuestOverhead", FLD_WARN }, {},
        };
        static const Field req_fields[] = { { "memory", FLD_OK }, { "cpu", FLD_WARN }, {} };
        char path[128], sub[160];
        uint64_t guest = 0, req = 0;
        int r;
        json_t *mem = json_object_get(domain, "memory");
        if (mem) {
                snprintf(path, sizeof path, "%s.memory", dpath);
                if ((r = vmi_require_object(c, mem, path)) < 0 || (r = vmi_check_fields(c, mem, path, mem_fields)) < 0 ||
                    (r = vmi_quantity_field(c, mem, path, "guest", &guest)) < 0)
                        return r;
        }
        json_t *res = json_object_get(domain, "resources");
        if (res) {
                snprintf(path, sizeof path, "%s.resources", dpath);
                if ((r = vmi_require_object(c, res, path)) < 0 || (r = vmi_check_fields(c, res, path, res_fields)) < 0)
                        return r;
                json_t *rq = json_object_get(res, "requests");
                if (rq) {
                        snprintf(sub, sizeof sub, "%s.requests", path);
                        if ((r = vmi_require_object(c, rq, sub)) < 0 || (r = vmi_check_fields(c, rq, sub, req_fields)) < 0 ||
                            (r = vmi_quantity_field(c, rq, sub, "memory", &req)) < 0)
                                return r;
                }
        }
        uint64_t m = guest ? guest : req;
        if (m == 0)
                return vmi_invalid(c, "%s.memory.guest or %s.resources.requests.memory is required", dpath, dpath);
        if (m < 16ull << 20 || m > 4ull << 40)
                return vmi_invalid(c, "%s: guest memory must be 16Mi..4Ti, got %" PRIu64 " bytes", dpath, m);
        if (m % 1024 != 0) {
                m = (m + 1023) / 1024 * 1024;
                if ((r = vmi_warn(c, "%s: guest memory rounded up to %" PRIu64 " KiB", dpath, m / 1024)) < 0)
                        return r;
        }
        c->v->memory = m;
        return 0;
}

static bool valid_uuid(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (launch_hexval(s[i]) < 0)
                        return false;
        }
        return true;
}

static int abs_path_field(VmiCtx *c, json_t *obj, const char *path, const char *key, char **ret) {
        int r = vmi_get_str(c, obj, path, key, false, ret);
        if (r <= 0)
                return r;
        if ((*ret)[0] != '/' || strstr(*ret, "/../") || strlen(*ret) >= 4096)
                return vmi_invalid(c, "%s.%s: must be an absolute local path, got '%s'", path, key, *ret);
        if (!c->o->parse_only && access(*ret, R_OK) < 0) {
                if (c->o->require_files)
                        return kverr_set_errno(c->e, KV_ERR_INVALID_CONFIG, negative_errno(), "%s.%s: cannot read '%s'",
                                               path, key, *ret);
                if ((r = vmi_warn(c, "%s.%s: '%s' does not exist here", path, key, *ret)) < 0)
                        return r;
        }
        return 1;
}

/* kernelPath / initrdPath inside the image ref: an absolute path without "." or ".." components, resolved in
 * the image store (no symlink followed); a missing file is a warning unless files are required. */
static int image_path_field(VmiCtx *c, json_t *obj, const char *path, const char *key, const LaunchImageRef *ref,
                            char **ret) {
        const char *store = c->o->image_dir ? c->o->image_dir : LAUNCH_DEFAULT_IMAGE_DIR;
        _cleanup_free_ char *inside = NULL;
        int r = vmi_get_str(c, obj, path, key, false, &inside);
        if (r <= 0)
                return r;
        size_t n = strlen(inside);
        if (inside[0] != '/' || strstr(inside, "/../") || strstr(inside, "/./") || (n >= 3 && streq(inside + n - 3, "/..")) ||
            (n >= 2 && streq(inside + n - 2, "/.")) || n >= 1024)
                return vmi_invalid(c, "%s.%s: must be an absolute path inside the image without '.' or '..', got '%s'",
                                   path, key, inside);
        KvErr re = {};
        if (!c->o->parse_only && (r = launch_image_file(store, ref, inside, ret, &re)) < 0) {
                if (c->o->require_files)
                        return kverr_set(c->e, KV_ERR_INVALID_CONFIG, r, "%s.%s: %s", path, key, re.msg);
                if ((r = vmi_warn(c, "%s.%s: %s", path, key, re.msg)) < 0)
                        return r;
        }
        if (!*ret && asprintf(ret, "%s/%s%s", store, ref->canonical, inside) < 0) {
                *ret = NULL;
                return vmi_nomem(c);
        }
        return 1;
}

int vmi_parse_firmware(VmiCtx *c, json_t *fw, const char *path) {
        static const Field fields[] = {
                { "kernelBoot", FLD_OK }, { "uuid", FLD_OK }, { "serial", FLD_WARN }, { "bootloader", FLD_OK },
                { "acpi", FLD_WARN },     {},
        };
        static const Field kb_fields[] = { { "kernelArgs", FLD_OK }, { "container", FLD_OK }, {} };
        static const Field kc_fields[] = {
                { "image", FLD_OK },          { "kernelPath", FLD_OK },      { "initrdPath", FLD_OK },
                { "imagePullPolicy", FLD_WARN }, { "imagePullSecret", FLD_WARN }, {},
        };
        LaunchVmi *v = c->v;
        int r;
        char sub[160], sub2[192];
        if ((r = vmi_require_object(c, fw, path)) < 0 || (r = vmi_check_fields(c, fw, path, fields)) < 0)
                return r;
        if ((r = vmi_get_str(c, fw, path, "uuid", false, &v->firmware_uuid)) < 0)
                return r;
        if (v->firmware_uuid && !valid_uuid(v->firmware_uuid))
                return vmi_invalid(c, "%s.uuid: must be a UUID, got '%s'", path, v->firmware_uuid);
        json_t *bl = json_object_get(fw, "bootloader");
        if (bl) {
                snprintf(sub, sizeof sub, "%s.bootloader", path);
                static const Field bl_fields[] = { { "bios", FLD_OK }, { "efi", FLD_REJECT }, {} };
                if ((r = vmi_require_object(c, bl, sub)) < 0 || (r = vmi_check_fields(c, bl, sub, bl_fields)) < 0)
                        return r;
        }
        json_t *kb = json_object_get(fw, "kernelBoot");
        if (!kb)
                return 0;
        snprintf(sub, sizeof sub, "%s.kernelBoot", path);
        if ((r = vmi_require_object(c, kb, sub)) < 0 || (r = vmi_check_fields(c, kb, sub, kb_fields)) < 0)
                return r;
        if ((r = vmi_get_str(c, kb, sub, "kernelArgs", false, &v->kernel_args)) < 0)
                return r;
        json_t *kc = NULL;
        if ((r = json_get_object(kb, sub, "container", true, &kc, c->e)) < 0)
                return r;
        snprintf(sub2, sizeof sub2, "%s.container", sub);
        if ((r = vmi_check_fields(c, kc, sub2, kc_fields)) < 0)
                return r;
        const char *image = NULL;
        if ((r = json_get_string(kc, sub2, "image", false, &image, c->e)) < 0)
                return r;
        if (image) {
                LaunchImageRef ref;
                KvErr re = {};
                if (launch_image_ref_parse(image, &ref, &re) < 0)
                        return vmi_invalid(c, "%s.image: %s", sub2, re.msg);
                if ((r = image_path_field(c, kc, sub2, "kernelPath", &ref, &v->kernel_path)) < 0 ||
                    (r = image_path_field(c, kc, sub2, "initrdPath", &ref, &v->initrd_path)) < 0)
                        return r;
        } else if (!c->o->allow_host_paths)
                return vmi_invalid(c,
                                   "%s.image: is required: kernelPath and initrdPath are paths inside an image of the "
                                   "image store (docs/images.md)",
                                   sub2);
        else if ((r = abs_path_field(c, kc, sub2, "kernelPath", &v->kernel_path)) < 0 ||
                 (r = abs_path_field(c, kc, sub2, "initrdPath", &v->initrd_path)) < 0)
                return r;
        if (!v->kernel_path)
                return vmi_invalid(c, "%s: 'kernelPath' is required", sub2);
        v->kernel_boot = true;
        return 0;
}

/* Only ACPI matters: the launcher's graceful shutdown presses the ACPI power button. */
int vmi_parse_features(VmiCtx *c, json_t *features, const char *path) {
        static const Field fields[] = {
                { "acpi", FLD_OK }, { "apic", FLD_WARN }, { "hyperv", FLD_WARN }, { "smm", FLD_WARN },
                { "kvm", FLD_WARN }, { "pvspinlock", FLD_WARN }, {},
        };
        int r;
        if ((r = vmi_require_object(c, features, path)) < 0 || (r = vmi_check_fields(c, features, path, fields)) < 0)
                return r;
        json_t *acpi = json_object_get(features, "acpi");
        bool on = true;
        if (acpi && ((r = vmi_require_object(c, acpi, path)) < 0 ||
                     (r = json_get_bool(acpi, path, "enabled", false, &on, c->e)) < 0))
                return r;
        if (!on)
                return kverr_set(c->e, KV_ERR_UNSUPPORTED_FIELD, -EOPNOTSUPP,
                                 "%s.acpi.enabled: false not supported by kvnet-launcher (ACPI is needed for graceful shutdown)",
                                 path);
        return 0;
}
