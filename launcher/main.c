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
 *   kvnet-launcher --run FILE --connect URI --nic ... [--state-dir DIR] [--image-dir DIR]
 *                  [--status-file FILE] [--socket PATH] [--grace SECONDS] [--serial-log PATH]
 *                         start the VMI as a transient libvirt domain and supervise it until it is
 *                         gone (docs/launcher.md); every interface needs a --nic; when libvirtd goes
 *                         away it reconnects for --reconnect-timeout seconds (default 60, 0 = never)
 *   kvnet-launcher --shutdown NAMESPACE/NAME [--state-dir DIR] | --shutdown - --socket PATH
 *                         ask a running launcher (its status socket) for a graceful shutdown
 *   kvnet-launcher --status NAMESPACE/NAME [--state-dir DIR] | --status - --socket PATH
 *                         print a running launcher's status JSON
 *   kvnet-launcher --run FILE ... --migratable [--netd-socket PATH]
 *                         no autodestroy; the status socket accepts {"op":"migrate"} (docs/launcher.md)
 *   kvnet-launcher --run FILE --connect URI --nic ... --incoming [--incoming-timeout S] [--netd-socket PATH]
 *                         migration target: wait for the domain to arrive, then supervise it
 *   kvnet-launcher --migrate DEST_URI --socket PATH|NS/NAME [--state-dir DIR] [--tunnelled|--direct]
 *                  [--migrate-uri URI] [--max-downtime-ms N] [--bandwidth MIBPS] [--timeout S]
 *                  [--dest-serial-log PATH] [--dest-state-dir DIR] [--no-wait]
 *                         ask a running launcher to live-migrate its domain (--dest-state-dir: the
 *                         target launcher's --state-dir, for its serial log and seed ISOs); prints the final
 *                         migration JSON; exit 0 completed, 1 failed/cancelled/unreachable, 2 usage
 *   kvnet-launcher --detect-accel     print "ACCEL=kvm|tcg" and the reason
 *   kvnet-launcher image add REF [--disk FILE] [--kernel FILE] [--initrd FILE] [--replace] [--image-dir DIR]
 *                         adds an image to the local image store (docs/images.md); prints IMAGE=<canonical ref>
 *   kvnet-launcher image path REF [--image-dir DIR]   the image's directory in the store
 *   --allow-host-paths    (--dry-run, --run) containerDisk.image and kernelBoot paths may be host paths
 * Warnings (ignored fields, TCG fallbacks) go to stderr as "warning: ...". Exit (dry-run, status,
 * shutdown): 0 ok, 1 invalid input / launcher unreachable, 2 usage. --run: LAUNCH_EXIT_* (launcher.h):
 * 0 guest powered off (Succeeded), 1 invalid input (nothing started), 2 usage, 3 libvirt refused
 * (nothing left running), 4 domain ended Failed, 5 libvirt connection lost, 6 local error. */
#include <getopt.h>
#include <libgen.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fileio.h"
#include "common/json-util.h"

#include "common/log.h"
#include "common/proto.h"
#include "launcher/launcher.h"

static void usage(FILE *f) {
        fputs("usage: kvnet-launcher --dry-run FILE|- [--image-dir DIR] [--state-dir DIR] [--serial-log PATH]\n"
              "                      [--nic IFACE=tap:NAME[:MTU]|IFACE=pci:DDDD:BB:SS.F ...]\n"
              "       kvnet-launcher --run FILE --connect URI [--nic IFACE=tap:NAME[:MTU]|IFACE=pci:ADDR ...]\n"
              "                      [--state-dir DIR] [--image-dir DIR] [--status-file FILE] [--socket PATH]\n"
              "                      [--grace SECONDS] [--serial-log PATH] [--keep-on-exit] [--migratable]\n"
              "                      [--incoming [--incoming-timeout SECONDS]] [--netd-socket PATH]\n"
              "                      [--reconnect-timeout SECONDS]\n"
              "       kvnet-launcher --migrate DEST_URI --socket PATH|NS/NAME [--state-dir DIR] [--tunnelled|--direct]\n"
              "                      [--migrate-uri URI] [--max-downtime-ms N] [--bandwidth MIBPS] [--timeout SECONDS]\n"
              "                      [--dest-serial-log PATH] [--dest-state-dir DIR] [--no-wait]\n"
              "       kvnet-launcher --status NS/NAME|- [--state-dir DIR] [--socket PATH]\n"
              "       kvnet-launcher --shutdown NS/NAME|- [--state-dir DIR] [--socket PATH]\n"
              "       kvnet-launcher --detect-accel\n"
              "       kvnet-launcher image add REF [--disk FILE] [--kernel FILE] [--initrd FILE] [--replace] [--image-dir DIR]\n"
              "       kvnet-launcher image path REF [--image-dir DIR]\n"
              "       (--dry-run/--run: --allow-host-paths lets containerDisk.image and kernelBoot paths be host paths)\n",
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

/* What --dry-run and --run start from: the VMI (its warnings printed) and its NICs with the --nic overrides
 * applied. */
typedef struct VmiNics {
        LaunchVmi *v;
        LaunchNic *nics;
        size_t n_nics;
} VmiNics;

static void vmi_nics_done(VmiNics *vn) {
        launch_vmi_free(vn->v);
        free(vn->nics);
        *vn = (VmiNics){};
}

/* Loads file into *ret (untouched on failure). Logs what failed; returns 0 or the LAUNCH_EXIT_* code to exit
 * with. */
static int load_vmi_nics(const char *file, const LaunchOptions *o, const NicArg *nic_args, size_t n_nic_args,
                         VmiNics *ret) {
        _cleanup_(vmi_nics_done) VmiNics vn = {};
        KvErr e = {};
        int r = launch_vmi_load(file, o, &vn.v, &e);
        if (r < 0) {
                log_error("%s%s%s", e.msg, e.details[0] ? ": " : "", e.details);
                return LAUNCH_EXIT_INVALID;
        }
        print_warnings(&vn.v->warnings);

        r = launch_nics_synthesize(vn.v, NULL, &vn.nics, &vn.n_nics);
        if (r < 0) {
                log_error_errno(r, "synthesize NICs: %m");
                return LAUNCH_EXIT_INTERNAL;
        }
        if (apply_nic_args(vn.v, vn.nics, nic_args, n_nic_args) < 0)
                return LAUNCH_EXIT_USAGE;
        *ret = vn;
        vn = (VmiNics){};
        return 0;
}

static int dry_run(const char *file, const LaunchOptions *o, const char *serial_log, const NicArg *nic_args,
                   size_t n_nic_args) {
        _cleanup_(vmi_nics_done) VmiNics vn = {};
        int r = load_vmi_nics(file, o, nic_args, n_nic_args, &vn);
        if (r != 0)
                return r == LAUNCH_EXIT_USAGE ? 2 : 1; /* --dry-run exits 1 for anything but the command line */
        LaunchVmi *v = vn.v;
        LaunchNic *nics = vn.nics;
        size_t n_nics = vn.n_nics;

        LaunchAccelInfo ai = launch_accel_detect();
        fprintf(stderr, "accel: %s\n", ai.reason);

        KvErr e = {};
        LaunchWarnings w = {};
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

static int run_vmi(const char *file, const LaunchOptions *o, const LaunchRunOptions *ro, const NicArg *nic_args,
                   size_t n_nic_args) {
        _cleanup_(vmi_nics_done) VmiNics vn = {};
        int r = load_vmi_nics(file, o, nic_args, n_nic_args, &vn);
        if (r != 0)
                return r;
        const LaunchNic *nics = vn.nics;
        size_t n_nics = vn.n_nics;
        /* The stand-in tap names of dry-run would attach the guest to whatever tap happens to have that
         * name: --run needs every interface spelled out. */
        for (size_t i = 0; i < n_nics; i++) {
                bool given = false;
                for (size_t a = 0; a < n_nic_args; a++)
                        if (streq(nic_args[a].iface, nics[i].name))
                                given = true;
                if (!given) {
                        log_error("--run: interface '%s' needs --nic %s=tap:NAME or --nic %s=pci:ADDRESS (what CNI "
                                  "prepared)",
                                  nics[i].name, nics[i].name, nics[i].name);
                        return LAUNCH_EXIT_USAGE;
                }
        }
        LaunchAccelInfo ai = launch_accel_detect();
        fprintf(stderr, "accel: %s\n", ai.reason);
        LaunchRunOptions ropt = *ro;
        ropt.accel = ai.accel;
        return launch_run(vn.v, vn.nics, vn.n_nics, &ropt);
}

/* --status / --shutdown: talks to a running launcher's socket. */
static int client(const char *op, const char *target, const char *state_dir, const char *socket_path) {
        _cleanup_free_ char *path = NULL;
        if (socket_path) {
                if (!streq(target, "-"))
                        log_warning("--socket given: ignoring '%s'", target);
                path = strdup(socket_path);
        } else {
                const char *slash = strchr(target, '/');
                if (!slash || slash == target || !slash[1] || strchr(slash + 1, '/')) {
                        log_error("--%s: expected NAMESPACE/NAME, got '%s'", op, target);
                        return 2;
                }
                if (asprintf(&path, "%s/%.*s_%s/launcher.sock", state_dir ? state_dir : LAUNCH_DEFAULT_STATE_DIR,
                             (int) (slash - target), target, slash + 1) < 0)
                        path = NULL;
        }
        if (!path) {
                log_error("out of memory");
                return 1;
        }
        json_t *res = NULL;
        KvErr e = {};
        _cleanup_close_ int fd = -1;
        int r = proto_connect(path, 5000, &fd);
        if (r < 0) {
                log_error_errno(r, "no launcher answers at '%s': %m", path);
                return 1;
        }
        r = proto_call(fd, op, NULL, 5000, &res, &e);
        if (r < 0) {
                log_error("%s: %s%s%s", path, e.msg[0] ? e.msg : strerror(-r), e.details[0] ? ": " : "", e.details);
                return 1;
        }
        char *text = json_dumps(res, JSON_COMPACT);
        json_decref(res);
        if (text)
                puts(text);
        free(text);
        return 0;
}


/* --migrate: the launcher's socket is given as a path, or as NS/NAME under the state dir. */
static char *socket_for(const char *spec, const char *state_dir) {
        char *path = NULL;
        const char *slash = strchr(spec, '/');
        struct stat st;
        if (spec[0] == '/' || spec[0] == '.' || stat(spec, &st) == 0 || !slash || strchr(slash + 1, '/'))
                return strdup(spec);
        if (asprintf(&path, "%s/%.*s_%s/launcher.sock", state_dir ? state_dir : LAUNCH_DEFAULT_STATE_DIR,
                     (int) (slash - spec), spec, slash + 1) < 0)
                return NULL;
        return path;
}

/* The migration state a status object reports; none when absent or unknown. */
static LaunchMigrationState mig_state(json_t *status) {
        json_t *m = json_object_get(status, "migration");
        int s = launch_migration_state_from_string(json_string_value(json_object_get(m, "state")));
        return s < 0 ? LAUNCH_MIG_NONE : (LaunchMigrationState) s;
}

static int print_migration(json_t *status) {
        json_t *m = json_object_get(status, "migration");
        char *text = json_dumps(m ? m : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
        if (text)
                puts(text);
        free(text);
        fflush(stdout);
        return mig_state(status) == LAUNCH_MIG_COMPLETED ? 0 : 1;
}

static int migrate_client(const char *dest, const char *sock_spec, const char *state_dir, json_t *args, bool wait) {
        _cleanup_free_ char *path = socket_for(sock_spec, state_dir);
        if (!path)
                return log_error("out of memory"), 1;
        if (json_object_set_new(args, "destUri", json_string(dest)) < 0)
                return log_error("out of memory"), 1;
        json_t *res = NULL;
        KvErr e = {};
        int r = proto_call_path(path, "migrate", args, 10000, &res, &e);
        if (r < 0) {
                log_error("migrate via '%s': %s%s%s", path, e.msg[0] ? e.msg : strerror(-r), e.details[0] ? ": " : "",
                          e.details);
                return 1;
        }
        if (!wait)
                return print_migration(res), json_decref(res), 0;
        json_decref(res);
        /* Poll until the migration ends. A source launcher exits right after a completed migration:
         * then its status file (next to the socket) has the final word. */
        _cleanup_free_ char *dir = strdup(path);
        _cleanup_free_ char *status_file = NULL;
        if (!dir || asprintf(&status_file, "%s/status.json", dirname(dir)) < 0)
                return log_error("out of memory"), 1;
        for (;;) {
                struct timespec ts = { .tv_nsec = 200 * 1000 * 1000 };
                nanosleep(&ts, NULL);
                json_t *st = NULL;
                KvErr e2 = {};
                r = proto_call_path(path, "status", NULL, 5000, &st, &e2);
                if (r < 0) {
                        _cleanup_free_ char *text = NULL;
                        r = read_file_max(status_file, 1 << 20, &text, NULL);
                        json_t *fst = r >= 0 ? json_loads(text, 0, NULL) : NULL;
                        if (!fst) {
                                log_error("launcher at '%s' went away and '%s' is unreadable", path, status_file);
                                return 1;
                        }
                        LaunchMigrationState s = mig_state(fst);
                        if (s == LAUNCH_MIG_RUNNING || s == LAUNCH_MIG_PENDING) {
                                log_error("launcher at '%s' went away during the migration (phase %s)", path,
                                          json_string_value(json_object_get(fst, "phase")));
                                json_decref(fst);
                                return 1;
                        }
                        r = print_migration(fst);
                        json_decref(fst);
                        return r;
                }
                LaunchMigrationState s = mig_state(st);
                if (s != LAUNCH_MIG_RUNNING && s != LAUNCH_MIG_PENDING) {
                        /* completed: the launcher is about to exit with phase Migrated */
                        r = print_migration(st);
                        json_decref(st);
                        return r;
                }
                json_decref(st);
        }
}

static int parse_u64(const char *s, unsigned long long max, unsigned long long *ret) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || !end || *end || end == s || s[0] == '-' || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_grace(const char *s, int64_t *ret) {
        char *end = NULL;
        errno = 0;
        long long g = strtoll(s, &end, 10);
        if (errno || !end || *end || end == s || g < 0 || g > 86400)
                return -EINVAL;
        *ret = g;
        return 0;
}

/* kvnet-launcher image add REF [--disk FILE] [--kernel FILE] [--initrd FILE] [--replace] [--image-dir DIR]
 * kvnet-launcher image path REF [--image-dir DIR]: the local image store (docs/images.md). */
static int image_main(int argc, char **argv) {
        enum { OPT_DIR = 0x100, OPT_DISK, OPT_KERNEL, OPT_INITRD, OPT_REPLACE };
        static const struct option opts[] = {
                { "image-dir", required_argument, NULL, OPT_DIR }, { "disk", required_argument, NULL, OPT_DISK },
                { "kernel", required_argument, NULL, OPT_KERNEL }, { "initrd", required_argument, NULL, OPT_INITRD },
                { "replace", no_argument, NULL, OPT_REPLACE },    {},
        };
        const char *dir = NULL, *disk = NULL, *kernel = NULL, *initrd = NULL;
        bool replace = false;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case OPT_DIR: dir = optarg; break;
                case OPT_DISK: disk = optarg; break;
                case OPT_KERNEL: kernel = optarg; break;
                case OPT_INITRD: initrd = optarg; break;
                case OPT_REPLACE: replace = true; break;
                default: usage(stderr); return 2;
                }
        if (argc - optind != 2 || !(streq(argv[optind], "add") || streq(argv[optind], "path"))) {
                usage(stderr);
                return 2;
        }
        KvErr e = {};
        const char *ref = argv[optind + 1];
        LaunchImageRef r;
        if (streq(argv[optind], "path")) {
                if (launch_image_ref_parse(ref, &r, &e) < 0) {
                        log_error("%s", e.msg);
                        return 1;
                }
                _cleanup_free_ char *p = launch_image_dir(dir, &r);
                printf("%s\n", p ? p : "");
                return p ? 0 : 1;
        }
        if (launch_image_add(dir, ref, disk, kernel, initrd, replace, &e) < 0) {
                log_error("%s%s%s", e.msg, e.details[0] ? ": " : "", e.details);
                return 1;
        }
        if (launch_image_ref_parse(ref, &r, &e) == 0)
                printf("IMAGE=%s\n", r.canonical);
        return 0;
}

int main(int argc, char **argv) {
        if (argc >= 2 && streq(argv[1], "image")) {
                log_set_ident("kvnet-launcher");
                return image_main(argc - 1, argv + 1);
        }
        enum { OPT_DRY_RUN = 0x100, OPT_KEEP, OPT_IMAGE_DIR, OPT_STATE_DIR, OPT_SERIAL_LOG, OPT_NIC, OPT_DETECT, OPT_RUN,
               OPT_SHUTDOWN, OPT_STATUS, OPT_CONNECT, OPT_STATUS_FILE, OPT_SOCKET, OPT_GRACE, OPT_MIGRATABLE,
               OPT_INCOMING, OPT_INCOMING_TIMEOUT, OPT_NETD_SOCKET, OPT_MIGRATE, OPT_TUNNELLED, OPT_DIRECT,
               OPT_MIGRATE_URI, OPT_MAX_DOWNTIME, OPT_BANDWIDTH, OPT_TIMEOUT, OPT_DEST_SERIAL, OPT_DEST_STATE_DIR, OPT_NO_WAIT,
               OPT_HOST_PATHS, OPT_RECONNECT };
        static const struct option opts[] = {
                { "dry-run", required_argument, NULL, OPT_DRY_RUN },
                { "image-dir", required_argument, NULL, OPT_IMAGE_DIR },
                { "state-dir", required_argument, NULL, OPT_STATE_DIR },
                { "serial-log", required_argument, NULL, OPT_SERIAL_LOG },
                { "nic", required_argument, NULL, OPT_NIC },
                { "detect-accel", no_argument, NULL, OPT_DETECT },
                { "run", required_argument, NULL, OPT_RUN },
                { "shutdown", required_argument, NULL, OPT_SHUTDOWN },
                { "status", required_argument, NULL, OPT_STATUS },
                { "connect", required_argument, NULL, OPT_CONNECT },
                { "status-file", required_argument, NULL, OPT_STATUS_FILE },
                { "socket", required_argument, NULL, OPT_SOCKET },
                { "grace", required_argument, NULL, OPT_GRACE },
                { "keep-on-exit", no_argument, NULL, OPT_KEEP },
                { "migratable", no_argument, NULL, OPT_MIGRATABLE },
                { "incoming", no_argument, NULL, OPT_INCOMING },
                { "incoming-timeout", required_argument, NULL, OPT_INCOMING_TIMEOUT },
                { "netd-socket", required_argument, NULL, OPT_NETD_SOCKET },
                { "reconnect-timeout", required_argument, NULL, OPT_RECONNECT },
                { "migrate", required_argument, NULL, OPT_MIGRATE },
                { "tunnelled", no_argument, NULL, OPT_TUNNELLED },
                { "tunneled", no_argument, NULL, OPT_TUNNELLED },
                { "direct", no_argument, NULL, OPT_DIRECT },
                { "migrate-uri", required_argument, NULL, OPT_MIGRATE_URI },
                { "max-downtime-ms", required_argument, NULL, OPT_MAX_DOWNTIME },
                { "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "dest-serial-log", required_argument, NULL, OPT_DEST_SERIAL },
                { "dest-state-dir", required_argument, NULL, OPT_DEST_STATE_DIR },
                { "no-wait", no_argument, NULL, OPT_NO_WAIT },
                { "allow-host-paths", no_argument, NULL, OPT_HOST_PATHS },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        log_set_ident("kvnet-launcher");
        LaunchOptions o = {};
        LaunchRunOptions ro = { .grace_seconds = -1, .reconnect_s = 60 };
        const char *dry = NULL, *serial_log = NULL, *run = NULL, *shutdown_target = NULL, *status_target = NULL;
        bool detect = false, mig_wait = true;
        const char *migrate_dest = NULL;
        json_t *mig_args = json_object();
        unsigned long long u;
        NicArg nic_args[16];
        size_t n_nic_args = 0;
        int c, rc = 0, modes = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case OPT_DRY_RUN: dry = optarg; modes++; break;
                case OPT_IMAGE_DIR: o.image_dir = optarg; break;
                case OPT_HOST_PATHS: o.allow_host_paths = true; break;
                case OPT_STATE_DIR: o.state_dir = optarg; break;
                case OPT_SERIAL_LOG: serial_log = optarg; break;
                case OPT_DETECT: detect = true; modes++; break;
                case OPT_RUN: run = optarg; modes++; break;
                case OPT_SHUTDOWN: shutdown_target = optarg; modes++; break;
                case OPT_STATUS: status_target = optarg; modes++; break;
                case OPT_CONNECT: ro.uri = optarg; break;
                case OPT_KEEP: ro.keep_on_exit = true; break;
                case OPT_MIGRATABLE: ro.migratable = true; break;
                case OPT_INCOMING: ro.incoming = true; break;
                case OPT_INCOMING_TIMEOUT:
                        if (parse_u64(optarg, 86400, &u) < 0 || u == 0) {
                                fprintf(stderr, "kvnet-launcher: --incoming-timeout: expected 1..86400 seconds, got '%s'\n", optarg);
                                return 2;
                        }
                        ro.incoming_timeout_s = (uint32_t) u;
                        break;
                case OPT_NETD_SOCKET: ro.netd_socket = optarg; break;
                case OPT_RECONNECT:
                        if (parse_u64(optarg, 86400, &u) < 0) {
                                fprintf(stderr, "kvnet-launcher: --reconnect-timeout: expected 0..86400 seconds, got '%s'\n",
                                        optarg);
                                return 2;
                        }
                        ro.reconnect_s = (uint32_t) u;
                        break;
                case OPT_MIGRATE: migrate_dest = optarg; modes++; break;
                case OPT_TUNNELLED: json_object_set_new(mig_args, "tunnelled", json_true()); break;
                case OPT_DIRECT: json_object_set_new(mig_args, "tunnelled", json_false()); break;
                case OPT_MIGRATE_URI: json_object_set_new(mig_args, "migrateUri", json_string(optarg)); break;
                case OPT_DEST_SERIAL: json_object_set_new(mig_args, "destSerialLog", json_string(optarg)); break;
                case OPT_DEST_STATE_DIR: json_object_set_new(mig_args, "destStateDir", json_string(optarg)); break;
                case OPT_NO_WAIT: mig_wait = false; break;
                case OPT_MAX_DOWNTIME:
                case OPT_BANDWIDTH:
                case OPT_TIMEOUT: {
                        /* ranges are checked by the launcher (one parser: migration/migrate.c) */
                        const char *key = c == OPT_MAX_DOWNTIME ? "maxDowntimeMs" : c == OPT_BANDWIDTH ? "bandwidthMiBps" : "timeoutSeconds";
                        if (parse_u64(optarg, 1ULL << 40, &u) < 0) {
                                fprintf(stderr, "kvnet-launcher: --%s: expected a non-negative integer, got '%s'\n",
                                        c == OPT_MAX_DOWNTIME ? "max-downtime-ms" : c == OPT_BANDWIDTH ? "bandwidth" : "timeout", optarg);
                                return 2;
                        }
                        json_object_set_new(mig_args, key, json_integer((json_int_t) u));
                        break;
                }
                case OPT_STATUS_FILE: ro.status_file = optarg; break;
                case OPT_SOCKET: ro.socket_path = optarg; break;
                case OPT_GRACE:
                        if (parse_grace(optarg, &ro.grace_seconds) < 0) {
                                fprintf(stderr, "kvnet-launcher: --grace: expected 0..86400 seconds, got '%s'\n", optarg);
                                return 2;
                        }
                        break;
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
        if (modes > 1) {
                fprintf(stderr, "kvnet-launcher: --dry-run, --run, --status, --shutdown, --migrate and --detect-accel are exclusive\n");
                return 2;
        }
        if (migrate_dest) {
                if (!ro.socket_path) {
                        fprintf(stderr, "kvnet-launcher: --migrate needs --socket PATH|NAMESPACE/NAME\n");
                        json_decref(mig_args);
                        return 2;
                }
                rc = migrate_client(migrate_dest, ro.socket_path, o.state_dir, mig_args, mig_wait);
                json_decref(mig_args);
                return rc;
        }
        json_decref(mig_args);
        if (detect) {
                LaunchAccelInfo ai = launch_accel_detect();
                printf("ACCEL=%s\nREASON=%s\n", ai.accel == LAUNCH_ACCEL_KVM ? "kvm" : "tcg", ai.reason);
                return 0;
        }
        if (shutdown_target)
                return client("shutdown", shutdown_target, o.state_dir, ro.socket_path);
        if (status_target)
                return client("status", status_target, o.state_dir, ro.socket_path);
        if (run) {
                if (!ro.uri)
                        ro.uri = getenv("KVNET_LIBVIRT_URI");
                if (!ro.uri || !*ro.uri) {
                        fprintf(stderr, "kvnet-launcher: --run needs --connect URI (or $KVNET_LIBVIRT_URI)\n");
                        return 2;
                }
                o.require_files = true;
                ro.serial_log = serial_log;
                return run_vmi(run, &o, &ro, nic_args, n_nic_args);
        }
        if (!dry) {
                usage(stderr);
                return 2;
        }
        rc = dry_run(dry, &o, serial_log, nic_args, n_nic_args);
        return rc;
}
