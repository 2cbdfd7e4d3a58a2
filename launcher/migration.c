/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher: what a live migration needs from the VMI (docs/migration.md, "Storage"):
 *   - which volumes can move: containerDisk images are the same path on every node, cloud-init seed
 *     ISOs are rebuilt by the target launcher from the same VMI; an emptyDisk is a writable file
 *     local to the node and would need storage (block) migration, which kvnet does not do;
 *   - the destination domain XML: the source's own XML with the per-VM files (serial log, seed
 *     ISOs) moved to the target launcher's directory. Everything else stays identical, so libvirt's
 *     ABI check passes. After a NIC hot-plug or unplug the device layout is libvirt's (PCI slots,
 *     root ports), no longer the one the builder would give: then the live XML is rewritten. */
#include "launcher/launcher.h"

int launch_migration_check_storage(const LaunchVmi *v, const char *ctx, KvErr *e) {
        for (size_t i = 0; i < v->n_disks; i++) {
                const LaunchDisk *d = &v->disks[i];
                if (d->kind != LAUNCH_VOLUME_EMPTY_DISK)
                        continue;
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                 "%s: volume '%s' is an emptyDisk (a writable disk local to this node, '%s'): kvnet "
                                 "does not migrate storage (no block migration), so VMI '%s/%s' cannot be "
                                 "live-migrated",
                                 ctx, d->name, d->path, v->namespace, v->name);
        }
        return 0;
}

int launch_migration_dest_xml(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, LaunchAccel accel,
                              const char *dest_state_dir, const char *dest_serial_log, char **ret, KvErr *e) {
        if (!dest_state_dir && !dest_serial_log) {
                *ret = NULL; /* libvirt uses the source's XML as it is */
                return 0;
        }
        _cleanup_free_ char *vm_dir = NULL;
        if (dest_state_dir && !(vm_dir = launch_vmi_dir(dest_state_dir, v)))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        LaunchDomainOptions o = { .accel = accel, .serial_log = dest_serial_log, .vm_dir = vm_dir };
        return launch_domain_xml(v, nics, n_nics, &o, NULL, ret, e);
}

/* path as it appears inside a quoted attribute of libvirt's XML (libvirt escapes <>&'" as we do). */
static char *xml_attr_escape(const char *path) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        for (const char *c = path; *c; c++)
                switch (*c) {
                case '&': fputs("&amp;", f); break;
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '\'': fputs("&apos;", f); break;
                case '"': fputs("&quot;", f); break;
                default: fputc(*c, f);
                }
        bool err = ferror(f);
        if (fclose(f) != 0 || err) {
                free(out);
                return NULL;
        }
        return out;
}

/* Appends to f the text of xml with every occurrence of from (at the start of a quoted attribute
 * value, after its quote) replaced by to; whole_value: from must also end the value. */
static void replace_attr(FILE *f, const char *xml, const char *from, const char *to, bool whole_value) {
        size_t fl = strlen(from);
        const char *p = xml;
        for (;;) {
                const char *hit = fl ? strstr(p, from) : NULL;
                while (hit && (hit == xml || (hit[-1] != '\'' && hit[-1] != '"') ||
                               (whole_value && hit[fl] != hit[-1])))
                        hit = strstr(hit + 1, from);
                if (!hit) {
                        fputs(p, f);
                        return;
                }
                fwrite(p, 1, (size_t) (hit - p), f);
                fputs(to, f);
                p = hit + fl;
        }
}

int launch_migration_rewrite_live_xml(const char *live_xml, const LaunchVmi *v, const char *src_serial_log,
                                      const char *dest_state_dir, const char *dest_serial_log, char **ret, KvErr *e) {
        if (!dest_state_dir && !dest_serial_log) {
                *ret = NULL;
                return 0;
        }
        _cleanup_free_ char *vm_dir = NULL, *src_log = NULL, *dst_log = NULL, *src_dir = NULL, *dst_dir = NULL,
                            *pass1 = NULL;
        if (dest_state_dir && !(vm_dir = launch_vmi_dir(dest_state_dir, v)))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        _cleanup_free_ char *default_src_log = NULL, *default_dst_log = NULL;
        if (!src_serial_log && asprintf(&default_src_log, "%s/serial.log", v->state_dir) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        if (!dest_serial_log && asprintf(&default_dst_log, "%s/serial.log", vm_dir) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        src_log = xml_attr_escape(src_serial_log ? src_serial_log : default_src_log);
        dst_log = xml_attr_escape(dest_serial_log ? dest_serial_log : default_dst_log);
        if (!src_log || !dst_log)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        size_t len = 0;
        FILE *f = open_memstream(&pass1, &len);
        if (!f)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        replace_attr(f, live_xml, src_log, dst_log, true);
        if (fclose(f) != 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        if (!vm_dir) {
                *ret = TAKE_PTR(pass1);
                return 0;
        }
        char *raw_src = NULL, *raw_dst = NULL;
        if (asprintf(&raw_src, "%s/", v->state_dir) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        if (asprintf(&raw_dst, "%s/", vm_dir) < 0) {
                free(raw_src);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        }
        src_dir = xml_attr_escape(raw_src);
        dst_dir = xml_attr_escape(raw_dst);
        free(raw_src);
        free(raw_dst);
        if (!src_dir || !dst_dir)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        char *out = NULL;
        f = open_memstream(&out, &len);
        if (!f)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        replace_attr(f, pass1, src_dir, dst_dir, false);
        if (fclose(f) != 0) {
                free(out);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        }
        *ret = out;
        return 0;
}

const char *launch_migration_tcg_warning(LaunchAccel accel, unsigned long qemu_version) {
        static char msg[320];
        if (accel != LAUNCH_ACCEL_TCG || qemu_version == 0 || qemu_version >= 9000000UL)
                return NULL;
        snprintf(msg, sizeof msg,
                 "QEMU %lu.%lu.%lu under TCG can lose guest memory writes during live migration (fixed in QEMU "
                 "9.0, commit 03bfc2188f): start QEMU through scripts/qemu-tcg-wrapper (the simulated nodes "
                 "do) or use KVM; see docs/migration.md",
                 qemu_version / 1000000UL, qemu_version / 1000UL % 1000UL, qemu_version % 1000UL);
        return msg;
}
