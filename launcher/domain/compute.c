/* SPDX-License-Identifier: Apache-2.0 */
/* The compute part of the domain XML: memory, vCPUs and their topology, CPU model, firmware or kernel
 * boot, ACPI, clock, lifecycle actions. */
#include <inttypes.h>

#include "launcher/launcher-priv.h"

static const char *arch_type(const char **machine) {
#if defined(__aarch64__)
        *machine = "virt";
        return "aarch64";
#else
        *machine = "q35";
        return "x86_64";
#endif
}

void domain_xml_compute(Xml *x, const LaunchVmi *v, LaunchAccel accel, LaunchWarnings *w) {
        char num[32];
        const char *machine;
        const char *arch = arch_type(&machine);

        snprintf(num, sizeof num, "%" PRIu64, v->memory / 1024);
        xml_text(x, "memory", num, "unit", "KiB", NULL);
        xml_text(x, "currentMemory", num, "unit", "KiB", NULL);
        snprintf(num, sizeof num, "%u", v->sockets * v->cores * v->threads);
        xml_text(x, "vcpu", num, "placement", "static", NULL);

        xml_open(x, "os", NULL);
        xml_text(x, "type", "hvm", "arch", arch, "machine", machine, NULL);
        bool per_device_boot = false;
        for (size_t i = 0; i < v->n_disks; i++)
                per_device_boot = per_device_boot || v->disks[i].boot_order;
        for (size_t i = 0; i < v->n_interfaces; i++)
                per_device_boot = per_device_boot || v->interfaces[i].boot_order;
        if (v->kernel_boot) {
                xml_text(x, "kernel", v->kernel_path, NULL);
                if (v->initrd_path)
                        xml_text(x, "initrd", v->initrd_path, NULL);
                if (v->kernel_args)
                        xml_text(x, "cmdline", v->kernel_args, NULL);
        } else if (!per_device_boot)
                xml_empty(x, "boot", "dev", "hd", NULL);
        xml_close(x, "os");

        xml_open(x, "features", NULL);
        xml_empty(x, "acpi", NULL);
        xml_close(x, "features");

        /* CPU model: the two host modes by name (KVM only), any other name is a custom model */
        enum { CPU_HOST_MODEL, CPU_HOST_PASSTHROUGH };
        static const char *const host_modes[] = {
                [CPU_HOST_MODEL] = "host-model",
                [CPU_HOST_PASSTHROUGH] = "host-passthrough",
        };
        const char *model = v->cpu_model;
        int mode = launch_table_lookup(host_modes, ELEMENTSOF(host_modes), model);
        char s_sock[16], s_cores[16], s_threads[16];
        snprintf(s_sock, sizeof s_sock, "%u", v->sockets);
        snprintf(s_cores, sizeof s_cores, "%u", v->cores);
        snprintf(s_threads, sizeof s_threads, "%u", v->threads);
        if (accel == LAUNCH_ACCEL_TCG && mode >= 0) {
                launch_warnings_add(w, "spec.domain.cpu.model: '%s' needs KVM; using qemu64 under TCG", model);
                model = NULL;
        }
        if (accel == LAUNCH_ACCEL_KVM && (!model || mode == CPU_HOST_MODEL))
                xml_open(x, "cpu", "mode", "host-model", "check", "none", NULL);
        else if (accel == LAUNCH_ACCEL_KVM && mode == CPU_HOST_PASSTHROUGH)
                xml_open(x, "cpu", "mode", "host-passthrough", "check", "none", "migratable", "on", NULL);
        else {
                xml_open(x, "cpu", "mode", "custom", "match", "exact", "check", "none", NULL);
                xml_text(x, "model", model ? model : "qemu64", "fallback", "allow", NULL);
        }
        xml_empty(x, "topology", "sockets", s_sock, "dies", "1", "cores", s_cores, "threads", s_threads, NULL);
        xml_close(x, "cpu");

        xml_empty(x, "clock", "offset", "utc", NULL);
        xml_text(x, "on_poweroff", "destroy", NULL);
        xml_text(x, "on_reboot", "restart", NULL);
        xml_text(x, "on_crash", "destroy", NULL);
}
