/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher: a KubeVirt VirtualMachineInstance -> libvirt domain.
 *
 *   kvnet-launcher --dry-run FILE|-   print the domain XML (no libvirt connection)
 *     --image-dir DIR     where containerDisk image names are looked up (default /var/lib/kvnet/images)
 *     --state-dir DIR     per-VM files: seed ISO, empty disks, serial log (default /run/kvnet/launcher)
 *     --serial-log PATH   serial console log (default <state-dir>/<ns>_<name>/serial.log)
 *     --nic IFACE=tap:NAME[:MTU] | IFACE=pci:DDDD:BB:SS.F
 *                         what CNI/netd prepared for an interface; without it dry-run uses tap0,
 *                         tap1, ... in interface order and MACs from macAddress or a hash
 *   kvnet-launcher --detect-accel     print "ACCEL=kvm|tcg" and the reason
 *   kvnet-launcher --run FILE | --shutdown NAME   not implemented yet (exit 2)
 * Warnings (ignored fields, TCG fallbacks) go to stderr as "warning: ...". Exit: 0 ok, 1 invalid
 * input, 2 usage / not implemented. */
#include <getopt.h>

#include "launcher.h"
#include "log.h"

static void usage(FILE *f) {
        fputs("usage: kvnet-launcher --dry-run FILE|- [--image-dir DIR] [--state-dir DIR] [--serial-log PATH]\n"
              "                      [--nic IFACE=tap:NAME[:MTU]|IFACE=pci:DDDD:BB:SS.F ...]\n"
              "       kvnet-launcher --detect-accel\n"
              "       kvnet-launcher --run FILE | --shutdown NAME   (not implemented yet)\n",
              f);
}

static void print_warnings(const LaunchWarnings *w) {
        for (size_t i = 0; i < w->n; i++)
                fprintf(stderr, "warning: %s\n", w->items[i]);
}

typedef struct NicArg {
        char *iface;
        char *spec;
} NicArg;

static int apply_nic_args(const LaunchVmi *v, LaunchNic *nics, const NicArg *args, size_t n_args) {
        for (size_t a = 0; a < n_args; a++) {
                size_t i;
                for (i = 0; i < v->n_interfaces; i++)
                        if (streq(v->interfaces[i].name, args[a].iface))
                                break;
                if (i == v->n_interfaces)
                        return log_error_errno(-EINVAL, "--nic: no interface '%s' in the VMI", args[a].iface);
                LaunchNic *n = &nics[i];
                const char *s = args[a].spec;
                if (strncmp(s, "tap:", 4) == 0) {
                        const char *name = s + 4, *colon = strchr(name, ':');
                        size_t len = colon ? (size_t) (colon - name) : strlen(name);
                        if (len == 0 || len >= sizeof n->tap)
                                return log_error_errno(-EINVAL, "--nic %s: tap name must be 1..15 characters, got '%s'",
                                                       args[a].iface, name);
                        n->kind = NIC_TAP;
                        memcpy(n->tap, name, len);
                        n->tap[len] = '\0';
                        if (colon) {
                                char *end = NULL;
                                unsigned long mtu = strtoul(colon + 1, &end, 10);
                                if (!end || *end || mtu < 68 || mtu > 65535)
                                        return log_error_errno(-EINVAL, "--nic %s: MTU must be 68..65535, got '%s'",
                                                               args[a].iface, colon + 1);
                                n->mtu = (uint32_t) mtu;
                        }
                } else if (strncmp(s, "pci:", 4) == 0) {
                        if (launch_parse_pci(s + 4, NULL, NULL, NULL, NULL) < 0)
                                return log_error_errno(-EINVAL, "--nic %s: invalid PCI address '%s'", args[a].iface,
                                                       s + 4);
                        n->kind = NIC_HOSTDEV;
                        snprintf(n->pci, sizeof n->pci, "%s", s + 4);
                } else
                        return log_error_errno(-EINVAL, "--nic %s: expected tap:NAME or pci:ADDRESS, got '%s'",
                                               args[a].iface, s);
        }
        return 0;
}

static int dry_run(const char *file, const LaunchOptions *o, const char *serial_log, const NicArg *nic_args,
                   size_t n_nic_args) {
        _cleanup_launch_vmi_ LaunchVmi *v = NULL;
        KvErr e = {};
        int r = launch_vmi_load(file, o, &v, &e);
        if (r < 0) {
                log_error("%s%s%s", e.msg, e.details[0] ? ": " : "", e.details);
                return 1;
        }
        print_warnings(&v->warnings);

        LaunchAccelInfo ai = launch_accel_detect();
        fprintf(stderr, "accel: %s\n", ai.reason);

        LaunchWarnings w = {};
        _cleanup_free_ LaunchNic *nics = NULL;
        size_t n_nics = 0;
        r = launch_nics_synthesize(v, NULL, &nics, &n_nics);
        if (r < 0) {
                launch_warnings_clear(&w);
                log_error_errno(r, "synthesize NICs: %m");
                return 1;
        }
        r = apply_nic_args(v, nics, nic_args, n_nic_args);
        if (r < 0) {
                launch_warnings_clear(&w);
                return 2;
        }
        for (size_t i = 0; i < n_nics; i++)
                if (nics[i].kind == NIC_HOSTDEV && streq(nics[i].pci, "0000:00:00.0"))
                        fprintf(stderr, "warning: interface '%s': no SR-IOV VF given (--nic %s=pci:ADDR), using placeholder %s\n",
                                nics[i].name, nics[i].name, nics[i].pci);
        LaunchDomainOptions dopt = { .accel = ai.accel, .serial_log = serial_log };
        _cleanup_free_ char *xml = NULL;
        r = launch_domain_xml(v, nics, n_nics, &dopt, &w, &xml, &e);
        print_warnings(&w);
        launch_warnings_clear(&w);
        if (r < 0) {
                log_error("%s", e.msg);
                return 1;
        }
        fputs(xml, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
        enum { OPT_DRY_RUN = 0x100, OPT_IMAGE_DIR, OPT_STATE_DIR, OPT_SERIAL_LOG, OPT_NIC, OPT_DETECT, OPT_RUN,
               OPT_SHUTDOWN };
        static const struct option opts[] = {
                { "dry-run", required_argument, NULL, OPT_DRY_RUN },
                { "image-dir", required_argument, NULL, OPT_IMAGE_DIR },
                { "state-dir", required_argument, NULL, OPT_STATE_DIR },
                { "serial-log", required_argument, NULL, OPT_SERIAL_LOG },
                { "nic", required_argument, NULL, OPT_NIC },
                { "detect-accel", no_argument, NULL, OPT_DETECT },
                { "run", required_argument, NULL, OPT_RUN },
                { "shutdown", required_argument, NULL, OPT_SHUTDOWN },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        log_set_ident("kvnet-launcher");
        LaunchOptions o = {};
        const char *dry = NULL, *serial_log = NULL, *unimpl = NULL;
        bool detect = false;
        NicArg nic_args[16];
        size_t n_nic_args = 0;
        int c, rc = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case OPT_DRY_RUN: dry = optarg; break;
                case OPT_IMAGE_DIR: o.image_dir = optarg; break;
                case OPT_STATE_DIR: o.state_dir = optarg; break;
                case OPT_SERIAL_LOG: serial_log = optarg; break;
                case OPT_DETECT: detect = true; break;
                case OPT_RUN: unimpl = "--run"; break;
                case OPT_SHUTDOWN: unimpl = "--shutdown"; break;
                case OPT_NIC: {
                        char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg || n_nic_args >= ELEMENTSOF(nic_args)) {
                                fprintf(stderr, "kvnet-launcher: --nic: expected IFACE=tap:NAME or IFACE=pci:ADDR (max 16)\n");
                                return 2;
                        }
                        *eq = '\0';
                        nic_args[n_nic_args++] = (NicArg){ .iface = optarg, .spec = eq + 1 };
                        break;
                }
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "kvnet-launcher: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                return 2;
        }
        if (unimpl) {
                fprintf(stderr, "kvnet-launcher: %s: not implemented yet\n", unimpl);
                return 2;
        }
        if (detect) {
                LaunchAccelInfo ai = launch_accel_detect();
                printf("ACCEL=%s\nREASON=%s\n", ai.accel == LAUNCH_ACCEL_KVM ? "kvm" : "tcg", ai.reason);
                return 0;
        }
        if (!dry) {
                usage(stderr);
                return 2;
        }
        rc = dry_run(dry, &o, serial_log, nic_args, n_nic_args);
        return rc;
}
