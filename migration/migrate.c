/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the libvirt migration driver lands. */
int kv_migration_placeholder(void);
int kv_migration_placeholder(void) {
        return 0;
}
