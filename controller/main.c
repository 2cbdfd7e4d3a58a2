/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-controller: parse options, open the object store, serve the embedded API, loop. */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/event.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/metrics-http.h"
#include "controller/apiserver.h"
#include "controller/cluster.h"
#include "controller/events.h"
#include "controller/ipamclaim.h"
#include "controller/metrics.h"
#include "controller/migration.h"
#include "controller/node.h"
#include "controller/quantity.h"
#include "controller/reconciler.h"
#include "controller/scheduler.h"
#include "controller/store.h"
#include "controller/vm.h"

static void help(void) {
        printf("Usage: kvnet-controller --embedded [--listen ADDR:PORT] [--state-dir DIR] [--kubeconfig FILE]\n"
               "                        [--nodes N [--node-cpu QTY] [--node-memory QTY]] [--no-fsync]\n"
               "                        [--max-watches N] [--metrics-listen ADDR:PORT] [--log-level LEVEL]\n"
               "       kvnet-controller --cluster [--kubeconfig FILE] [--leader-elect [--leader-elect-namespace NS]\n"
               "                        [--leader-elect-id ID] [--leader-elect-timing LEASE_MS,RENEW_MS,RETRY_MS]]\n"
               "                        [--kube-api-qps QPS] [--kube-api-burst N] [--metrics-listen ADDR:PORT]\n"
               "                        [--log-level LEVEL]\n"
               "\n"
               "kvnet's controller. --embedded serves the Kubernetes API subset kubectl needs for kvnet's\n"
               "resources (kubevirt.io/v1 VirtualMachine, VirtualMachineInstance,\n"
               "VirtualMachineInstanceMigration; k8s.cni.cncf.io/v1 NetworkAttachmentDefinition, v1alpha1\n"
               "IPAMClaim) on this machine. --cluster runs the same controllers on a real API server\n"
               "(--kubeconfig: the one to use; default $KUBECONFIG, ~/.kube/config, in-cluster), with kvnet's\n"
               "CRDs installed (deploy/); --leader-elect: only the holder of a coordination.k8s.io Lease acts\n"
               "(kvnet-system/kvnet-controller), so that replicas can stand by.\n"
               "  --listen ADDR:PORT  loopback address to serve on (default 127.0.0.1:6443; port 0 picks one)\n"
               "  --state-dir DIR     where objects are kept (default /var/lib/kvnet/controller)\n"
               "  --kubeconfig FILE   --embedded: write a kubeconfig for kubectl that points at this server;\n"
               "                      --cluster: the API server to use\n"
               "  --nodes N           simulate N nodes node1..nodeN for the scheduler (0..1000; without it the\n"
               "                      stored nodes stay as they are, and none at first: VMIs stay Pending)\n"
               "  --node-cpu QTY      each simulated node's CPUs (default 2)\n"
               "  --node-memory QTY   each simulated node's memory (default this machine's memory / N)\n"
               "  --no-fsync          do not fsync objects (tests only)\n"
               "  --max-watches N     --embedded: watches open at once (default 512, 1..100000; more: 429)\n"
               "  --kube-api-qps QPS  --cluster: requests a second to the API server (default 200, 0.1..100000)\n"
               "  --kube-api-burst N  --cluster: requests above that rate in a burst (default 400, 1..1000000)\n"
               "  --metrics-listen ADDR:PORT  serve Prometheus metrics on http://ADDR:PORT/metrics (IPv4; off by\n"
               "                      default; docs/metrics.md)\n"
               "  --log-level LEVEL   err, warning, notice, info (default), debug\n");
}

/* A count flag's value, 1..max; false (said on stderr, naming the flag and the range) for anything else. */
static bool count_arg(const char *flag, const char *s, unsigned long max, unsigned *ret) {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (!*s || *end || errno || *s == '-' || v < 1 || v > max) {
                fprintf(stderr, "kvnet-controller: %s: 1..%lu, got '%s'\n", flag, max, s);
                return false;
        }
        *ret = (unsigned) v;
        return true;
}

/* Events expire as kube-apiserver's do (--event-ttl 1h), checked every minute. */
#define EVENT_EXPIRY_USEC (60 * 1000000ULL)

static int on_expiry(EventSource *s, void *userdata) {
        (void) s;
        int n = ctl_events_expire(userdata, (int64_t) time(NULL), CTL_EVENT_TTL_S);
        if (n > 0)
                log_debug("%d event(s) expired", n);
        return 0;
}

static int on_signal(EventSource *s, int signo, void *userdata) {
        (void) s;
        log_info("received signal %d, exiting", signo);
        event_loop_exit(userdata, 0);
        return 0;
}

/* the VM controller, the IPAMClaim controller, the scheduler, the migration controller: one pass runs them in turn */
static const ctl_reconcile_fn fns[] = { ctl_vm_reconcile, ctl_ipamclaims_reconcile, ctl_schedule, ctl_migrations };
/* their names in the metrics */
static const char *const fn_names[] = { "vm", "ipamclaim", "scheduler", "migration" };
#define METRICS_KEY "--metrics-listen"

static char *render_metrics(void *userdata, const char **why) {
        CtlStore *s = userdata;
        char *text = ctl_metrics_render(ctl_store_metrics(s), kube_event_stats(ctl_store_recorder(s)));
        if (!text)
                *why = "out of memory";
        return text;
}

/* With listen, the figures attached to s and served there: before the controllers' first pass. Without, none are
 * kept (a pass then takes no snapshot). */
static int metrics_start(CtlStore *s, const char *mode, const char *listen, KvMetricsServer **ret, KvErr *e) {
        CtlMetrics *m = NULL;
        if (!listen)
                return 0;
        int r = ctl_metrics_new(mode, fn_names, ELEMENTSOF(fn_names), &m);
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "metrics: out of memory");
        ctl_store_set_metrics(s, m);
        if ((r = kv_metrics_server_new(listen, METRICS_KEY, true, render_metrics, s, ret, e)) < 0)
                return r;
        log_info("serving metrics on http://%s/metrics", listen);
        return 0;
}

static int run_cluster(const char *kubeconfig, const char *metrics_listen, CtlClusterOpts *o) {
        signal(SIGPIPE, SIG_IGN);
        _cleanup_(event_loop_freep) EventLoop *loop = NULL;
        int r = event_loop_new(&loop);
        if (r < 0) {
                log_error_errno(r, "event loop: %m");
                return 1;
        }
        o->kubeconfig = kubeconfig;
        o->fns = fns;
        o->n_fns = ELEMENTSOF(fns);
        KvErr e = {};
        CtlCluster *c = NULL;
        EventSource *sigs[2] = {};
        KvMetricsServer *msrv = NULL;
        if ((r = ctl_cluster_new(loop, o, &c, &e)) < 0 ||
            (r = metrics_start(ctl_cluster_store(c), "cluster", metrics_listen, &msrv, &e)) < 0) {
                log_error("%s", e.msg[0] ? e.msg : strerror(-r));
                ctl_cluster_free(c);
                return 1;
        }
        if (event_add_signal(loop, SIGTERM, on_signal, loop, &sigs[0]) < 0 ||
            event_add_signal(loop, SIGINT, on_signal, loop, &sigs[1]) < 0) {
                log_error("cannot watch signals");
                kv_metrics_server_free(msrv);
                ctl_cluster_free(c);
                return 1;
        }
        r = event_loop_run(loop);
        kv_metrics_server_free(msrv); /* before the store it reads */
        ctl_cluster_free(c);
        for (size_t i = 0; i < 2; i++)
                if (sigs[i])
                        event_source_free(sigs[i]);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "embedded", no_argument, NULL, 'E' },        { "listen", required_argument, NULL, 'L' },
                { "state-dir", required_argument, NULL, 'd' }, { "kubeconfig", required_argument, NULL, 'k' },
                { "no-fsync", no_argument, NULL, 'n' },        { "log-level", required_argument, NULL, 'l' },
                { "nodes", required_argument, NULL, 'N' },     { "node-cpu", required_argument, NULL, 'C' },
                { "node-memory", required_argument, NULL, 'M' }, { "help", no_argument, NULL, 'h' },
                { "cluster", no_argument, NULL, 'K' },         { "leader-elect", no_argument, NULL, 'e' },
                { "leader-elect-namespace", required_argument, NULL, 'S' },
                { "leader-elect-id", required_argument, NULL, 'I' },
                { "leader-elect-timing", required_argument, NULL, 'T' },
                { "kube-api-qps", required_argument, NULL, 'Q' },
                { "kube-api-burst", required_argument, NULL, 'B' },
                { "max-watches", required_argument, NULL, 'W' },
                { "metrics-listen", required_argument, NULL, 'P' },
                {},
        };
        const char *node_cpu = "2", *node_memory = NULL, *metrics_listen = NULL;
        unsigned max_watches = 0;
        long nodes = -1;
        const char *listen = "127.0.0.1:6443", *state_dir = "/var/lib/kvnet/controller", *kubeconfig = NULL;
        bool embedded = false, durable = true, cluster = false;
        CtlClusterOpts copts = {};
        int c;
        log_set_ident("kvnet-controller");
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'E': embedded = true; break;
                case 'K': cluster = true; break;
                case 'e': copts.leader_elect = true; break;
                case 'S': copts.lease_namespace = optarg; break;
                case 'I': copts.identity = optarg; break;
                case 'T':
                        if (sscanf(optarg, "%u,%u,%u", &copts.lease_ms, &copts.renew_deadline_ms, &copts.retry_ms) != 3) {
                                fprintf(stderr, "kvnet-controller: --leader-elect-timing: LEASE_MS,RENEW_MS,RETRY_MS, got '%s'\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'Q': {
                        char *end = NULL;
                        errno = 0;
                        copts.api_qps = strtod(optarg, &end);
                        if (!*optarg || *end || errno || !(copts.api_qps >= 0.1 && copts.api_qps <= 100000)) {
                                fprintf(stderr,
                                        "kvnet-controller: --kube-api-qps: requests a second, 0.1..100000, got '%s'\n",
                                        optarg);
                                return 2;
                        }
                        break;
                }
                case 'B':
                        if (!count_arg("--kube-api-burst", optarg, 1000000, &copts.api_burst))
                                return 2;
                        break;
                case 'W':
                        if (!count_arg("--max-watches", optarg, 100000, &max_watches))
                                return 2;
                        break;
                case 'L': listen = optarg; break;
                case 'P': {
                        KvErr pe = {};
                        if (kv_metrics_parse_listen(optarg, METRICS_KEY, true, &pe) < 0) {
                                fprintf(stderr, "kvnet-controller: %s\n", pe.msg);
                                return 2;
                        }
                        metrics_listen = optarg;
                        break;
                }
                case 'd': state_dir = optarg; break;
                case 'k': kubeconfig = optarg; break;
                case 'n': durable = false; break;
                case 'N': {
                        char *end = NULL;
                        nodes = strtol(optarg, &end, 10);
                        if (!*optarg || *end || nodes < 0 || nodes > 1000) {
                                fprintf(stderr, "kvnet-controller: --nodes: must be 0..1000, got '%s'\n", optarg);
                                return 2;
                        }
                        break;
                }
                case 'C': node_cpu = optarg; break;
                case 'M': node_memory = optarg; break;
                case 'l':
                        if (log_set_max_level_option(optarg) < 0)
                                return 2;
                        break;
                case 'h': help(); return 0;
                default: return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "kvnet-controller: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (embedded == cluster) {
                fprintf(stderr, "kvnet-controller: one of --embedded (single-machine mode with its own API) and --cluster "
                                "(a real API server) is needed\n");
                return 2;
        }
        if (cluster)
                return run_cluster(kubeconfig, metrics_listen, &copts);
        uint64_t cpu_milli = 0, memory = 0;
        KvErr e = {};
        if (nodes > 0) {
                long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
                memory = pages > 0 && psize > 0 ? (uint64_t) pages * (uint64_t) psize / (uint64_t) nodes : 0;
                memory -= memory % (1024 * 1024); /* whole MiB: "1987Mi" rather than a count of bytes */
                if (ctl_quantity_parse("--node-cpu", node_cpu, true, &cpu_milli, &e) < 0 ||
                    (node_memory && ctl_quantity_parse("--node-memory", node_memory, false, &memory, &e) < 0)) {
                        fprintf(stderr, "kvnet-controller: %s\n", e.msg);
                        return 2;
                }
        }
        signal(SIGPIPE, SIG_IGN);

        int r = mkdir_p(state_dir, 0700);
        if (r < 0) {
                log_error_errno(r, "cannot create state dir '%s': %m", state_dir);
                return 1;
        }
        char lockpath[PATH_MAX];
        snprintf(lockpath, sizeof lockpath, "%s/lock", state_dir);
        _cleanup_close_ int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
                log_error_errno(negative_errno(), "state dir '%s' is in use by another kvnet-controller: %m", state_dir);
                return 1;
        }

        _cleanup_(event_loop_freep) EventLoop *loop = NULL;
        r = event_loop_new(&loop);
        if (r < 0) {
                log_error_errno(r, "event loop: %m");
                return 1;
        }
        CtlStore *store = NULL;
        CtlApi *api = NULL;
        CtlReconciler *controllers = NULL;
        r = ctl_store_open(state_dir, durable, &store, &e);
        KvMetricsServer *msrv = NULL;
        if (r >= 0)
                r = ctl_events_open(store, CTL_EVENT_COMPONENT, NULL, &e);
        if (r >= 0)
                r = metrics_start(store, "embedded", metrics_listen, &msrv, &e);
        if (r >= 0 && nodes >= 0 && (r = ctl_nodes_simulate(store, (unsigned) nodes, cpu_milli, memory, &e)) >= 0)
                log_info("%ld simulated node(s) with %s CPU and %s memory each", nodes,
                         ctl_quantity_format_milli(cpu_milli, (char[32]){ 0 }),
                         ctl_quantity_format_bytes(memory, (char[32]){ 0 }));
        if (r >= 0) {
                ctl_store_set_admission(store, ctl_migration_admit);
                r = ctl_api_new(loop, store, listen, state_dir, &api, &e);
                if (r >= 0 && max_watches)
                        ctl_api_set_max_watches(api, max_watches);
                char tokpath[PATH_MAX];
                snprintf(tokpath, sizeof tokpath, "%s/token", state_dir);
                if (r >= 0)
                        r = ctl_api_use_token_file(api, tokpath, &e);
        }
        if (r >= 0 && (r = ctl_reconciler_new(loop, store, fns, ELEMENTSOF(fns), &controllers)) < 0)
                kverr_set_errno(&e, KV_ERR_INTERNAL, r, "cannot start the controllers");
        if (r >= 0 && kubeconfig)
                r = ctl_api_write_kubeconfig(api, kubeconfig, &e);
        if (r < 0) {
                log_error("%s%s%s", e.msg, e.details[0] ? ": " : "", e.details);
                ctl_reconciler_free(controllers);
                ctl_api_free(api);
                kv_metrics_server_free(msrv);
                ctl_store_free(store);
                return 1;
        }
        EventSource *sigs[2] = {}, *expiry = NULL;
        if (event_add_signal(loop, SIGTERM, on_signal, loop, &sigs[0]) < 0 ||
            event_add_signal(loop, SIGINT, on_signal, loop, &sigs[1]) < 0 ||
            event_add_timer(loop, EVENT_EXPIRY_USEC, EVENT_EXPIRY_USEC, on_expiry, store, &expiry) < 0) {
                log_error("cannot watch signals");
                ctl_reconciler_free(controllers);
                ctl_api_free(api);
                kv_metrics_server_free(msrv);
                ctl_store_free(store);
                return 1;
        }
        log_notice("serving the embedded API on %s://%s:%u (%zu object(s) in %s)", ctl_api_scheme(api),
                   ctl_api_host(api), ctl_api_port(api), ctl_store_count(store), state_dir);
        r = event_loop_run(loop);
        ctl_reconciler_free(controllers);
        ctl_api_free(api);
        kv_metrics_server_free(msrv); /* before the store it reads */
        ctl_store_free(store);
        for (size_t i = 0; i < 2; i++)
                if (sigs[i])
                        event_source_free(sigs[i]);
        if (expiry)
                event_source_free(expiry);
        return r < 0 ? 1 : 0;
}
