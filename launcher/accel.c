/* SPDX-License-Identifier: Apache-2.0 */
/* KVM or TCG: KVM only if every step that qemu would take succeeds here first. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "common/fileio.h"
#include "launcher/launcher-priv.h"

const char *launch_accel_to_string(LaunchAccel a) {
        return a == LAUNCH_ACCEL_KVM ? "kvm" : "qemu";
}

static LaunchAccelInfo result(LaunchAccel a, const char *fmt, const char *arg) {
        LaunchAccelInfo i = { .accel = a };
        snprintf(i.reason, sizeof i.reason, fmt, arg ? arg : "");
        return i;
}

/* A "flags" line with a whole word vmx or svm. */
static bool cpuinfo_has_virt(const char *text) {
        for (const char *l = text; l && *l;) {
                const char *eol = strchr(l, '\n');
                size_t n = eol ? (size_t) (eol - l) : strlen(l);
                if (strncmp(l, "flags", 5) == 0) {
                        const char *colon = memchr(l, ':', n);
                        for (const char *p = colon; p && p < l + n;) {
                                while (p < l + n && (*p == ' ' || *p == ':' || *p == '\t'))
                                        p++;
                                const char *w = p;
                                while (p < l + n && *p != ' ' && *p != '\t')
                                        p++;
                                if ((p - w == 3) && (strncmp(w, "vmx", 3) == 0 || strncmp(w, "svm", 3) == 0))
                                        return true;
                                if (p == w)
                                        break;
                        }
                }
                l = eol ? eol + 1 : NULL;
        }
        return false;
}

LaunchAccelInfo launch_accel_detect_at(const char *dev_kvm, const char *cpuinfo, const char *env) {
        /* KVNET_ACCEL, by the accelerator it names */
        static const char *const env_table[] = { [LAUNCH_ACCEL_TCG] = "tcg", [LAUNCH_ACCEL_KVM] = "kvm" };
        static const char *const env_reason[] = {
                [LAUNCH_ACCEL_TCG] = "KVNET_ACCEL=tcg: using TCG%s",
                [LAUNCH_ACCEL_KVM] = "KVNET_ACCEL=kvm: using KVM without probing%s",
        };
        int k = launch_table_lookup(env_table, ELEMENTSOF(env_table), env);
        if (k >= 0)
                return result((LaunchAccel) k, env_reason[k], NULL);
        /* unknown values fall through to detection; the reason says so */
        const char *note = env && *env ? " (KVNET_ACCEL ignored: not tcg|kvm)" : "";
        LaunchAccelInfo i;

        _cleanup_close_ int fd = open(dev_kvm, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                i = result(LAUNCH_ACCEL_TCG, "cannot open %s", dev_kvm);
                snprintf(i.reason + strlen(i.reason), sizeof i.reason - strlen(i.reason), ": %s: using TCG%s",
                         strerror(errno), note);
                return i;
        }
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (read_file_max(cpuinfo, 16u << 20, &text, &len) < 0 || !cpuinfo_has_virt(text)) {
                i = result(LAUNCH_ACCEL_TCG, "%s present but the CPU has no vmx/svm flag (nested KVM without VT): using TCG",
                           dev_kvm);
                snprintf(i.reason + strlen(i.reason), sizeof i.reason - strlen(i.reason), "%s", note);
                return i;
        }
        int api = ioctl(fd, KVM_GET_API_VERSION, 0);
        if (api != KVM_API_VERSION) {
                i = result(LAUNCH_ACCEL_TCG, "%s: KVM_GET_API_VERSION is not 12: using TCG", dev_kvm);
                return i;
        }
        int vm = ioctl(fd, KVM_CREATE_VM, 0);
        if (vm < 0) {
                i = result(LAUNCH_ACCEL_TCG, "%s: KVM_CREATE_VM failed", dev_kvm);
                snprintf(i.reason + strlen(i.reason), sizeof i.reason - strlen(i.reason), ": %s: using TCG",
                         strerror(errno));
                return i;
        }
        close(vm);
        i = result(LAUNCH_ACCEL_KVM, "%s usable (API 12, KVM_CREATE_VM ok): using KVM", dev_kvm);
        return i;
}

LaunchAccelInfo launch_accel_detect(void) {
        return launch_accel_detect_at("/dev/kvm", "/proc/cpuinfo", getenv("KVNET_ACCEL"));
}
