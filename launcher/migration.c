/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher: what a live migration needs from the VMI (docs/migration.md, "Storage"):
 *   - which volumes can move: containerDisk images are the same path on every node, cloud-init seed
 *     ISOs are rebuilt by the target launcher from the same VMI; an emptyDisk is a writable file
 *     local to the node and would need storage (block) migration, which kvnet does not do;
 *   - the destination domain XML: the source's own XML with the per-VM files (serial log, seed
 *     ISOs) moved to the target launcher's directory. Everything else stays identical, so libvirt's
 *     ABI check passes. */
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
