/* SPDX-License-Identifier: Apache-2.0 */
/* podrun: a command line over node/'s pod runtime (the kubelet stand-in's core), for the tests.
 *
 *   podrun NODE-OPTIONS run --namespace NS --name NAME --uid UID --vmi FILE --vm NS/NAME
 *                           --binding bridge|masquerade [--incoming [--incoming-timeout S]] [--grace S]
 *                           [--ifname IF] [--detach]
 *   podrun NODE-OPTIONS stop UID...
 *   podrun NODE-OPTIONS status UID
 *   podrun NODE-OPTIONS list
 *   podrun NODE-OPTIONS gc
 *   podrun NODE-OPTIONS proxies SRC_UID --to-node-netns PATH --to-state-dir DIR --to-uid UID --to-address ADDR
 *                               --port N [--direct]
 * NODE-OPTIONS: --node-netns PATH --conf-dir DIR --cni-path DIR[:DIR] --cache-dir DIR --netd-socket PATH
 *               --state-dir DIR --launcher PATH --libvirtd-starter PATH [--node-name N] [--sandbox-prefix P]
 *               [--start-timeout S]
 *
 * run: starts the pod and prints KEY=VALUE lines (POD, UID, NODE, PHASE, IP, IP6, MAC, SANDBOX, ...,
 * START_MS: how long the start took) once the launcher is Running (WaitingForMigration with
 * --incoming). With --detach it exits then, and the pod keeps running (a later `status` or `stop` from
 * another podrun finds it through its record); without, it stays until SIGTERM/SIGINT or the launcher's
 * end, then stops the pod. stop: stops and deletes pods (a uid without a record is fine). status: the
 * same lines for one pod (exit 1 when there is none). list: one line per pod: UID PHASE POD SANDBOX.
 * gc: DEL of the node network's cached attachments that no pod holds, then CNI GC, then the sandboxes of
 * this node's prefix that no pod holds; prints DELETED=N and SANDBOXES=N.
 * proxies: the migration proxies from pod SRC_UID of this node to pod --to-uid of the node whose
 * namespace and state dir are given (its underlay address --to-address); prints DEST_URI= and
 * MIGRATE_URI= (with --direct) once they listen, and stays until SIGTERM/SIGINT, then ends them.
 * Exit: 0 ok, 1 failure (the error on stderr, naming the step), 2 usage. */
#include <getopt.h>
#include <signal.h>
#include <time.h>

#include "common/fileio.h"
#include "node/pod.h"

static void usage(const char *msg) {
        if (msg)
                fprintf(stderr, "podrun: %s\n", msg);
        fputs("usage: podrun NODE-OPTIONS run --namespace NS --name NAME --uid UID --vmi FILE --vm NS/NAME\n"
              "                  --binding bridge|masquerade [--incoming [--incoming-timeout S]] [--grace S]\n"
              "                  [--ifname IF] [--detach]\n"
              "       podrun NODE-OPTIONS stop UID... | status UID | list | gc\n"
              "       podrun NODE-OPTIONS proxies SRC_UID --to-node-netns PATH --to-state-dir DIR --to-uid UID\n"
              "                  --to-address ADDR --port N [--direct] [--to-migration-tls DIR]\n"
              "NODE-OPTIONS: --node-netns PATH --conf-dir DIR --cni-path DIRS --cache-dir DIR --netd-socket PATH\n"
              "              --state-dir DIR --launcher PATH --libvirtd-starter PATH [--node-name N]\n"
              "              [--sandbox-prefix P] [--start-timeout S] [--image-dir DIR] [--migration-tls DIR]\n",
              stderr);
        exit(2);
}

static int report(const char *what, const NodeErr *e, int r) {
        char msg[2048];
        fprintf(stderr, "podrun: %s: %s\n", what, node_err_format(e, r, msg, sizeof msg));
        return 1;
}

static void print_pod(const NodePod *p) {
        NodeLauncherStatus s;
        NodeErr e = { 0 };
        if (node_pod_launcher_status(p, &s, &e) < 0) {
                s = (NodeLauncherStatus) { .phase = NODE_LAUNCHER_UNKNOWN };
                snprintf(s.reason, sizeof s.reason, "%s", e.msg);
        }
        node_err_done(&e);
        printf("POD=%s/%s\nUID=%s\n", node_pod_namespace(p), node_pod_name(p), node_pod_uid(p));
        printf("PHASE=%s\nREASON=%s\nACCEL=%s\n", node_launcher_phase_to_string(s.phase), s.reason, s.accel);
        printf("IP=%s\nIP6=%s\nMAC=%s\n", node_pod_ip4(p), node_pod_ip6(p), node_pod_mac(p));
        if (node_pod_launcher_alive(p)) {
                NodeLauncherStatus q;
                NodeErr qe = { 0 };
                printf("SOCKET_PHASE=%s\n", node_pod_launcher_query(p, &q, &qe) >= 0 ? node_launcher_phase_to_string(q.phase) : "");
                node_err_done(&qe);
        }
        printf("SANDBOX=%s\n", node_pod_sandbox_path(p));
        printf("LAUNCHER_PID=%d\nLAUNCHER_ALIVE=%d\n", (int) node_pod_launcher_pid(p), node_pod_launcher_alive(p));
        printf("LIBVIRTD_PID=%d\nLIBVIRTD_ALIVE=%d\n", (int) node_pod_libvirtd_pid(p), node_pod_libvirtd_alive(p));
        printf("LIBVIRT_URI=%s\nDIR=%s\nLAUNCHER_SOCK=%s\nSERIAL_LOG=%s\n", node_pod_libvirt_uri(p), node_pod_dir(p),
               node_pod_launcher_socket(p), node_pod_serial_log(p));
}

static long long mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_run(NodePodRuntime *rt, int argc, char **argv) {
        enum { O_NS = 256, O_NAME, O_UID, O_VMI, O_VM, O_BINDING, O_INCOMING, O_ITIMEOUT, O_GRACE, O_IFNAME, O_DETACH };
        static const struct option opts[] = {
                { "namespace", required_argument, NULL, O_NS },   { "name", required_argument, NULL, O_NAME },
                { "uid", required_argument, NULL, O_UID },        { "vmi", required_argument, NULL, O_VMI },
                { "vm", required_argument, NULL, O_VM },          { "binding", required_argument, NULL, O_BINDING },
                { "incoming", no_argument, NULL, O_INCOMING },    { "incoming-timeout", required_argument, NULL, O_ITIMEOUT },
                { "grace", required_argument, NULL, O_GRACE },    { "ifname", required_argument, NULL, O_IFNAME },
                { "detach", no_argument, NULL, O_DETACH },        {},
        };
        NodePodSpec s = { .grace_seconds = -1, .binding = _NODE_POD_BINDING_INVALID };
        const char *vmi = NULL, *vm = NULL;
        bool detach = false;
        int c;
        optind = 0; /* 0: a full re-initialisation of getopt for the command's own argv */
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case O_NS: s.namespace_ = optarg; break;
                case O_NAME: s.name = optarg; break;
                case O_UID: s.uid = optarg; break;
                case O_VMI: vmi = optarg; break;
                case O_VM: vm = optarg; break;
                case O_BINDING:
                        if ((s.binding = node_pod_binding_from_string(optarg)) < 0)
                                usage("--binding must be bridge or masquerade");
                        break;
                case O_INCOMING: s.incoming = true; break;
                case O_ITIMEOUT: s.incoming_timeout_s = (unsigned) atoi(optarg); break;
                case O_GRACE: s.grace_seconds = atoi(optarg); break;
                case O_IFNAME: s.ifname = optarg; break;
                case O_DETACH: detach = true; break;
                default: usage(NULL);
                }
        }
        if (optind != argc || !vmi || !vm)
                usage("run needs --vmi and --vm (and nothing else)");
        _cleanup_free_ char *vm_dup = strdup(vm), *vmi_text = NULL;
        char *slash = vm_dup ? strchr(vm_dup, '/') : NULL;
        if (!slash)
                usage("--vm must be NAMESPACE/NAME");
        *slash = '\0';
        s.vm_namespace = vm_dup;
        s.vm_name = slash + 1;
        size_t len;
        int r = read_file_max(vmi, 1u << 20, &vmi_text, &len);
        if (r < 0) {
                fprintf(stderr, "podrun: --vmi '%s': %s\n", vmi, strerror(-r));
                return 1;
        }
        s.vmi_json = vmi_text;

        /* a stop signal during the start is taken after it (the start rolls back or completes) */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        NodeErr e = { 0 };
        _cleanup_(node_pod_freep) NodePod *p = NULL;
        long long t0 = mono_ms();
        r = node_pod_run(rt, &s, &p, &e);
        if (r < 0) {
                report("run", &e, r);
                node_err_done(&e);
                return 1;
        }
        print_pod(p);
        printf("START_MS=%lld\n", mono_ms() - t0);
        fflush(stdout);
        if (detach)
                return 0;
        while (node_pod_launcher_alive(p)) {
                struct timespec ts = { .tv_nsec = 200 * 1000 * 1000 };
                if (sigtimedwait(&mask, NULL, &ts) > 0)
                        break;
        }
        r = node_pod_stop(rt, p, &e);
        if (r < 0)
                report("stop", &e, r);
        node_err_done(&e);
        return r < 0 ? 1 : 0;
}

static int cmd_stop(NodePodRuntime *rt, int argc, char **argv) {
        int rc = 0;
        for (int i = 1; i < argc; i++) {
                NodeErr e = { 0 };
                _cleanup_(node_pod_freep) NodePod *p = NULL;
                int r = node_pod_load(rt, argv[i], &p, &e);
                if (r == -ENOENT)
                        continue;
                if (r >= 0)
                        r = node_pod_stop(rt, p, &e);
                if (r < 0)
                        rc = report(argv[i], &e, r);
                node_err_done(&e);
        }
        return rc;
}

static int cmd_status(NodePodRuntime *rt, int argc, char **argv) {
        if (argc != 2)
                usage("status takes one UID");
        NodeErr e = { 0 };
        _cleanup_(node_pod_freep) NodePod *p = NULL;
        int r = node_pod_load(rt, argv[1], &p, &e);
        if (r == -ENOENT) {
                fprintf(stderr, "podrun: no pod with uid '%s' on this node\n", argv[1]);
                return 1;
        }
        if (r < 0) {
                report("status", &e, r);
                node_err_done(&e);
                return 1;
        }
        print_pod(p);
        return 0;
}

static int cmd_list(NodePodRuntime *rt) {
        NodePod **v = NULL;
        size_t n = 0, bad = 0;
        NodeErr e = { 0 };
        int r = node_pod_list(rt, &v, &n, &bad, &e);
        if (r < 0) {
                report("list", &e, r);
                node_err_done(&e);
                return 1;
        }
        for (size_t i = 0; i < n; i++) {
                NodeLauncherStatus s;
                NodeErr se = { 0 };
                const char *ph = node_pod_launcher_status(v[i], &s, &se) >= 0 ? node_launcher_phase_to_string(s.phase)
                                                                              : "Unknown";
                node_err_done(&se);
                printf("%s %s %s/%s %s\n", node_pod_uid(v[i]), ph, node_pod_namespace(v[i]), node_pod_name(v[i]),
                       node_pod_sandbox_path(v[i]));
        }
        if (bad)
                fprintf(stderr, "podrun: %zu unreadable pod record(s)\n", bad);
        node_pods_free(v, n);
        return 0;
}

static int cmd_proxies(NodePodRuntime *rt, const NodePodConfig *cfg, int argc, char **argv) {
        enum { O_NETNS = 256, O_STATE, O_UID, O_ADDR, O_PORT, O_DIRECT, O_TLS };
        static const struct option opts[] = {
                { "to-node-netns", required_argument, NULL, O_NETNS }, { "to-state-dir", required_argument, NULL, O_STATE },
                { "to-uid", required_argument, NULL, O_UID },          { "to-address", required_argument, NULL, O_ADDR },
                { "port", required_argument, NULL, O_PORT },           { "direct", no_argument, NULL, O_DIRECT },
                { "to-migration-tls", required_argument, NULL, O_TLS },
                {},
        };
        NodePodConfig to = *cfg;
        to.node_name = "target";
        const char *to_uid = NULL;
        NodeMigProxySpec ms = { 0 };
        int c;
        optind = 0; /* 0: a full re-initialisation of getopt for the command's own argv */
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case O_NETNS: to.node_netns = optarg; break;
                case O_STATE: to.state_dir = optarg; break;
                case O_UID: to_uid = optarg; break;
                case O_ADDR: ms.target_address = optarg; break;
                case O_PORT: ms.port = (uint16_t) atoi(optarg); break;
                case O_DIRECT: ms.direct = true; break;
                case O_TLS: to.migration_tls = optarg; break;
                default: usage(NULL);
                }
        }
        if (optind != argc - 1 || !to_uid)
                usage("proxies takes SRC_UID and --to-uid");
        NodeErr e = { 0 };
        _cleanup_(node_pod_runtime_freep) NodePodRuntime *trt = NULL;
        _cleanup_(node_pod_freep) NodePod *src = NULL, *dst = NULL;
        _cleanup_(node_mig_proxies_freep) NodeMigProxies *px = NULL;
        int r = node_pod_runtime_new(&to, &trt, &e);
        if (r >= 0)
                r = node_pod_load(rt, argv[optind], &src, &e);
        if (r >= 0)
                r = node_pod_load(trt, to_uid, &dst, &e);
        if (r >= 0) {
                ms.source_rt = rt;
                ms.source = src;
                ms.target_rt = trt;
                ms.target = dst;
                r = node_mig_proxies_start(&ms, &px, &e);
        }
        if (r < 0) {
                report("proxies", &e, r);
                node_err_done(&e);
                return 1;
        }
        printf("DEST_URI=%s\n", node_mig_proxies_dest_uri(px));
        if (node_mig_proxies_migrate_uri(px))
                printf("MIGRATE_URI=%s\n", node_mig_proxies_migrate_uri(px));
        fflush(stdout);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int sig;
        (void) sigwait(&mask, &sig);
        return node_mig_proxies_stop(px) < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        enum { O_NETNS = 256, O_CONF, O_PATH, O_CACHE, O_NETD, O_STATE, O_LAUNCHER, O_STARTER, O_NODE, O_PREFIX, O_TIMEOUT, O_IMAGES,
               O_TLS };
        static const struct option opts[] = {
                { "node-netns", required_argument, NULL, O_NETNS },
                { "migration-tls", required_argument, NULL, O_TLS },
                { "conf-dir", required_argument, NULL, O_CONF },
                { "cni-path", required_argument, NULL, O_PATH },
                { "cache-dir", required_argument, NULL, O_CACHE },
                { "netd-socket", required_argument, NULL, O_NETD },
                { "state-dir", required_argument, NULL, O_STATE },
                { "launcher", required_argument, NULL, O_LAUNCHER },
                { "libvirtd-starter", required_argument, NULL, O_STARTER },
                { "node-name", required_argument, NULL, O_NODE },
                { "sandbox-prefix", required_argument, NULL, O_PREFIX },
                { "start-timeout", required_argument, NULL, O_TIMEOUT },
                { "image-dir", required_argument, NULL, O_IMAGES },
                {},
        };
        NodePodConfig cfg = { 0 };
        int c;
        /* "+": stop at the command; its own options follow it */
        while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                switch (c) {
                case O_NETNS: cfg.node_netns = optarg; break;
                case O_CONF: cfg.conf_dir = optarg; break;
                case O_PATH: cfg.cni_path = optarg; break;
                case O_CACHE: cfg.cache_dir = optarg; break;
                case O_NETD: cfg.netd_socket = optarg; break;
                case O_STATE: cfg.state_dir = optarg; break;
                case O_LAUNCHER: cfg.launcher = optarg; break;
                case O_STARTER: cfg.libvirtd_starter = optarg; break;
                case O_NODE: cfg.node_name = optarg; break;
                case O_PREFIX: cfg.sandbox_prefix = optarg; break;
                case O_TIMEOUT: cfg.start_timeout_ms = (unsigned) atoi(optarg) * 1000u; break;
                case O_IMAGES: cfg.image_dir = optarg; break;
                case O_TLS: cfg.migration_tls = optarg; break;
                default: usage(NULL);
                }
        }
        if (optind >= argc)
                usage("no command");
        char *cmd = argv[optind];
        int sub_argc = argc - optind;
        char **sub_argv = argv + optind;

        NodeErr e = { 0 };
        _cleanup_(node_pod_runtime_freep) NodePodRuntime *rt = NULL;
        int r = node_pod_runtime_new(&cfg, &rt, &e);
        if (r < 0) {
                report("node config", &e, r);
                node_err_done(&e);
                return 1;
        }
        if (streq(cmd, "run"))
                return cmd_run(rt, sub_argc, sub_argv);
        if (streq(cmd, "stop"))
                return cmd_stop(rt, sub_argc, sub_argv);
        if (streq(cmd, "status"))
                return cmd_status(rt, sub_argc, sub_argv);
        if (streq(cmd, "gc") && sub_argc == 1) {
                size_t deleted = 0, sandboxes = 0;
                r = node_pod_gc(rt, &deleted, &sandboxes, &e);
                printf("DELETED=%zu\nSANDBOXES=%zu\n", deleted, sandboxes);
                if (r < 0)
                        report("gc", &e, r);
                node_err_done(&e);
                return r < 0 ? 1 : 0;
        }
        if (streq(cmd, "proxies"))
                return cmd_proxies(rt, &cfg, sub_argc, sub_argv);
        if (streq(cmd, "list") && sub_argc == 1)
                return cmd_list(rt);
        usage("unknown command");
}
