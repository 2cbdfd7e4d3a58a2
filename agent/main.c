/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-node: the node agent of one node (agent/agent.h, docs/node.md). */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/agent.h"
#include "common/log.h"
#include "common/metrics-http.h"

static void help(void) {
        printf("Usage: kvnet-node --node-name NAME --node-netns PATH --launcher PATH --libvirtd-starter PATH\n"
               "                  [--kubeconfig FILE] [--node-ip ADDR] [--conf-dir DIR] [--cni-path DIRS]\n"
               "                  [--cache-dir DIR] [--netd-socket PATH] [--state-dir DIR] [--image-dir DIR]\n"
               "                  [--sandbox-prefix P] [--start-timeout S] [--poll-interval MS] [--log-level LEVEL]\n"
               "                  [--migration-max-downtime-ms N] [--migration-tls DIR] [--metrics-listen ADDR:PORT]\n"
               "\n"
               "kvnet's node agent: runs the launcher pods the API binds to this node (spec.nodeName) and writes\n"
               "their VMIs' and their own status. The pod runtime (sandbox, CNI, libvirtd, kvnet-launcher) stands\n"
               "in for kubelet; the VMI status is virt-handler's. SIGTERM exits and leaves the VMs running: the\n"
               "next kvnet-node re-adopts them.\n"
               "  --node-name NAME        this node, as the API names it\n"
               "  --kubeconfig FILE       the API (default $KUBECONFIG, in-cluster, ~/.kube/config)\n"
               "  --node-ip ADDR          the node's address: the pods' status.hostIP, where migration targets listen\n"
               "  --node-netns PATH       the node's network namespace (/run/netns/X): CNI plugins run there\n"
               "  --conf-dir DIR          CNI conf dir (default /etc/cni/net.d)\n"
               "  --cni-path DIRS         CNI plugin dirs, ':'-joined (default /opt/cni/bin)\n"
               "  --cache-dir DIR         CNI result cache (default /var/lib/cni)\n"
               "  --netd-socket PATH      the node's kvnet-netd (default /run/kvnet/netd.sock)\n"
               "  --state-dir DIR         pod records and directories (default /var/lib/kvnet/node)\n"
               "  --launcher PATH         kvnet-launcher\n"
               "  --libvirtd-starter PATH scripts/libvirt-node.sh\n"
               "  --image-dir DIR         the node's image store (default: the launcher's)\n"
               "  --sandbox-prefix P      pod sandbox namespaces P-<16 hex> (default kvpod; one per node)\n"
               "  --start-timeout S       seconds for a launcher to reach Running (1..3600, default 120)\n"
               "  --poll-interval MS      launcher status poll (100..60000, default 1000)\n"
               "  --migration-max-downtime-ms N  the live migrations' maximum downtime (1..600000, default: the\n"
               "                          launcher's)\n"
               "  --migration-tls DIR     ca.pem, node.pem, node-key.pem: the migration proxies between nodes speak\n"
               "                          mutual TLS (scripts/migration-tls.sh makes them); default plain TCP\n"
               "  --metrics-listen ADDR:PORT  serve Prometheus metrics on http://ADDR:PORT/metrics (an IPv4\n"
               "                          address of the node, not 0.0.0.0; off by default; docs/metrics.md)\n"
               "  --log-level LEVEL       err, warning, notice, info (default), debug\n");
}

static int number(const char *opt, const char *v, long min, long max, long *ret) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < min || n > max) {
                fprintf(stderr, "kvnet-node: %s: must be %ld..%ld, got '%s'\n", opt, min, max, v);
                return -1;
        }
        *ret = n;
        return 0;
}

int main(int argc, char **argv) {
        enum { O_NODE = 256, O_KCFG, O_IP, O_NETNS, O_CONF, O_PATH, O_CACHE, O_NETD, O_STATE, O_LAUNCHER, O_STARTER,
               O_IMAGES, O_PREFIX, O_TIMEOUT, O_POLL, O_LOG, O_DOWNTIME, O_TLS, O_METRICS };
        static const struct option opts[] = {
                { "node-name", required_argument, NULL, O_NODE },
                { "kubeconfig", required_argument, NULL, O_KCFG },
                { "node-ip", required_argument, NULL, O_IP },
                { "node-netns", required_argument, NULL, O_NETNS },
                { "conf-dir", required_argument, NULL, O_CONF },
                { "cni-path", required_argument, NULL, O_PATH },
                { "cache-dir", required_argument, NULL, O_CACHE },
                { "netd-socket", required_argument, NULL, O_NETD },
                { "state-dir", required_argument, NULL, O_STATE },
                { "launcher", required_argument, NULL, O_LAUNCHER },
                { "libvirtd-starter", required_argument, NULL, O_STARTER },
                { "image-dir", required_argument, NULL, O_IMAGES },
                { "sandbox-prefix", required_argument, NULL, O_PREFIX },
                { "start-timeout", required_argument, NULL, O_TIMEOUT },
                { "poll-interval", required_argument, NULL, O_POLL },
                { "log-level", required_argument, NULL, O_LOG },
                { "migration-max-downtime-ms", required_argument, NULL, O_DOWNTIME },
                { "migration-tls", required_argument, NULL, O_TLS },
                { "metrics-listen", required_argument, NULL, O_METRICS },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        AgentConfig c = { .pod = { .conf_dir = "/etc/cni/net.d",
                                   .cni_path = "/opt/cni/bin",
                                   .cache_dir = "/var/lib/cni",
                                   .netd_socket = "/run/kvnet/netd.sock",
                                   .state_dir = "/var/lib/kvnet/node" } };
        long n;
        int o;
        log_set_ident("kvnet-node");
        while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (o) {
                case O_NODE: c.pod.node_name = optarg; break;
                case O_KCFG: c.kubeconfig = optarg; break;
                case O_IP: c.host_ip = optarg; break;
                case O_NETNS: c.pod.node_netns = optarg; break;
                case O_CONF: c.pod.conf_dir = optarg; break;
                case O_PATH: c.pod.cni_path = optarg; break;
                case O_CACHE: c.pod.cache_dir = optarg; break;
                case O_NETD: c.pod.netd_socket = optarg; break;
                case O_STATE: c.pod.state_dir = optarg; break;
                case O_LAUNCHER: c.pod.launcher = optarg; break;
                case O_STARTER: c.pod.libvirtd_starter = optarg; break;
                case O_IMAGES: c.pod.image_dir = optarg; break;
                case O_PREFIX: c.pod.sandbox_prefix = optarg; break;
                case O_TLS: c.pod.migration_tls = optarg; break;
                case O_METRICS: {
                        KvErr e = {};
                        if (kv_metrics_parse_listen(optarg, "--metrics-listen", false, &e) < 0) {
                                fprintf(stderr, "kvnet-node: %s\n", e.msg);
                                return 2;
                        }
                        c.metrics_listen = optarg;
                        break;
                }
                case O_TIMEOUT:
                        if (number("--start-timeout", optarg, 1, 3600, &n) < 0)
                                return 2;
                        c.pod.start_timeout_ms = (unsigned) n * 1000u;
                        break;
                case O_POLL:
                        if (number("--poll-interval", optarg, 100, 60000, &n) < 0)
                                return 2;
                        c.poll_ms = (unsigned) n;
                        break;
                case O_DOWNTIME:
                        if (number("--migration-max-downtime-ms", optarg, 1, 600000, &n) < 0)
                                return 2;
                        c.mig_max_downtime_ms = (unsigned) n;
                        break;
                case O_LOG:
                        if (log_set_max_level_option(optarg) < 0)
                                return 2;
                        break;
                case 'h': help(); return 0;
                default: return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "kvnet-node: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        static const struct {
                const char *opt;
                size_t off;
        } required[] = {
                { "--node-name", offsetof(NodePodConfig, node_name) },
                { "--node-netns", offsetof(NodePodConfig, node_netns) },
                { "--launcher", offsetof(NodePodConfig, launcher) },
                { "--libvirtd-starter", offsetof(NodePodConfig, libvirtd_starter) },
        };
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!*(const char **) ((const char *) &c.pod + required[i].off)) {
                        fprintf(stderr, "kvnet-node: %s is required\n", required[i].opt);
                        return 2;
                }
        if (strlen(c.pod.node_name) > 63 || strspn(c.pod.node_name, "abcdefghijklmnopqrstuvwxyz0123456789.-") !=
                                                    strlen(c.pod.node_name) || !c.pod.node_name[0]) {
                fprintf(stderr, "kvnet-node: --node-name: must be a node name ([a-z0-9.-], 1..63), got '%s'\n",
                        c.pod.node_name);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        int r = agent_run(&c);
        /* -EINVAL and friends from the pod runtime's configuration check: an option names a bad path */
        return r == -EINVAL || r == -ENOENT || r == -EACCES || r == -ENAMETOOLONG || r == -ENOTDIR ? 2 : r < 0 ? 1 : 0;
}
