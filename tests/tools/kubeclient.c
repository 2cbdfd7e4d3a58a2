/* SPDX-License-Identifier: Apache-2.0 */
/* kubeclient: a small CLI over kube/ (the Kubernetes client library) for tests/integration/test-kube-client.sh.
 *
 *   kubeclient [--kubeconfig F | --in-cluster ROOT] [-n NS | -A] [--sync] [--qps Q --burst B] VERB ARGS
 *     get GV RESOURCE NAME                print the object (compact JSON)
 *     list GV RESOURCE [-l SEL] [--field-selector SEL] [--limit N]
 *                                         print "ITEMS n rv=R" and one "ns/name" a line
 *     create GV RESOURCE JSON             POST; print the object
 *     update GV RESOURCE NAME JSON        PUT (a stale metadata.resourceVersion fails with EBUSY)
 *     patch GV RESOURCE NAME JSON         merge patch
 *     update-status | patch-status GV RESOURCE NAME JSON
 *     delete GV RESOURCE NAME [--propagation P] [--grace N]
 *     watch GV RESOURCE [-l SEL] [--backoff-min MS]
 *                                         informer: "SYNCED n", "ADDED|MODIFIED|DELETED ns/name rv=R",
 *                                         "STATE listed|watching|expired|disconnected ..." until SIGTERM
 *     raw-watch GV RESOURCE [--resource-version RV]
 *                                         one watch: "EVENT TYPE ns/name", then "END r=ERRNO"
 *     lease NAME ID [LEASE_MS RENEW_MS RETRY_MS]
 *                                         leader election on Lease NAME as ID: "LEADING t=MS", "STOPPED t=MS",
 *                                         "HOLDER id|-" until SIGTERM, then gives it back: "RELEASED"
 *     config                              print the config read (server, namespace, auth kinds)
 * Requests run on an event loop (kube_request) unless --sync (kube_request_sync). A failure prints
 * "kubeclient: <message> [ERRNO reason=REASON]" on stderr and exits 1. */
#include <getopt.h>
#include <signal.h>

#include "common/event.h"
#include "common/json-util.h"
#include "kube/kube.h"

typedef struct Cli {
        const char *kubeconfig, *in_cluster, *ns, *label, *field, *propagation, *rv;
        bool all_ns, sync;
        unsigned limit, backoff_min;
        int grace;
        double qps;
        unsigned burst;
        EventLoop *loop;
        KubeClient *client;
        int result;
        KubeVerb verb;
        unsigned ended;
} Cli;

static int fail(int r, const KvErr *e) {
        const char *name = strerrorname_np(-r);
        fprintf(stderr, "kubeclient: %s [%s reason=%s]\n", e && e->msg[0] ? e->msg : strerror(-r), name ? name : "?",
                e && e->details[0] ? e->details : "-");
        return 1;
}

static const char *md(json_t *obj, const char *key) {
        const char *v = json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
        return v ? v : "";
}

static void print_key(const char *prefix, json_t *obj) {
        const char *ns = md(obj, "namespace");
        printf("%s %s%s%s rv=%s\n", prefix, ns, ns[0] ? "/" : "", md(obj, "name"), md(obj, "resourceVersion"));
}

static void print_result(KubeVerb verb, json_t *obj) {
        if (verb == KUBE_LIST) {
                json_t *items = json_object_get(obj, "items"), *it;
                size_t i;
                printf("ITEMS %zu rv=%s\n", json_array_size(items), md(obj, "resourceVersion"));
                json_array_foreach(items, i, it) {
                        const char *ns = md(it, "namespace");
                        printf("%s%s%s\n", ns, ns[0] ? "/" : "", md(it, "name"));
                }
                return;
        }
        _cleanup_free_ char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", text ? text : "null");
}

static void on_done(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata) {
        Cli *cli = userdata;
        (void) c;
        cli->result = r < 0 ? fail(r, e) : 0;
        if (r >= 0)
                print_result(cli->verb, obj);
        event_loop_exit(cli->loop, 0);
}

static int on_signal(EventSource *s, int signo, void *userdata) {
        (void) s, (void) signo;
        event_loop_exit(((Cli *) userdata)->loop, 0);
        return 0;
}

/* ---- watch (informer) */

static void inf_added(KubeInformer *inf, json_t *obj, void *userdata) {
        (void) inf, (void) userdata;
        print_key("ADDED", obj);
}

static void inf_updated(KubeInformer *inf, json_t *old, json_t *obj, void *userdata) {
        (void) inf, (void) old, (void) userdata;
        print_key("MODIFIED", obj);
}

static void inf_deleted(KubeInformer *inf, json_t *obj, void *userdata) {
        (void) inf, (void) userdata;
        print_key("DELETED", obj);
}

static void inf_synced(KubeInformer *inf, void *userdata) {
        (void) userdata;
        printf("SYNCED %zu rv=%s\n", kube_informer_count(inf), kube_informer_resource_version(inf));
}

static void inf_state(KubeInformer *inf, KubeInformerState s, int error, unsigned delay_ms, const KvErr *e,
                      void *userdata) {
        (void) userdata;
        const char *name = error < 0 ? strerrorname_np(-error) : "0";
        printf("STATE %s error=%s delay_ms=%u rv=%s%s%s\n", kube_informer_state_to_string(s), name ? name : "?",
               delay_ms, kube_informer_resource_version(inf), e && e->msg[0] ? " msg=" : "", e ? e->msg : "");
}

static int run_informer(Cli *cli, const KubeRef *ref) {
        KubeInformerOps ops = { .added = inf_added, .updated = inf_updated, .deleted = inf_deleted,
                                .synced = inf_synced, .state = inf_state };
        KubeInformerOpts o = { .label_selector = cli->label, .field_selector = cli->field, .page_size = cli->limit,
                               .backoff_min_ms = cli->backoff_min };
        KvErr e = {};
        _cleanup_(kube_informer_freep) KubeInformer *inf = NULL;
        int r = kube_informer_new(cli->client, ref, &o, &ops, cli, &inf, &e);
        if (r < 0)
                return fail(r, &e);
        r = event_loop_run(cli->loop);
        return r < 0 ? fail(r, NULL) : 0;
}

/* ---- lease (leader election) */

static void lease_started(void *userdata) {
        (void) userdata;
        printf("LEADING t=%llu\n", (unsigned long long) (now_usec() / 1000));
}

static void lease_stopped(void *userdata) {
        (void) userdata;
        printf("STOPPED t=%llu\n", (unsigned long long) (now_usec() / 1000));
}

static void lease_holder(const char *id, void *userdata) {
        (void) userdata;
        printf("HOLDER %s\n", id[0] ? id : "-");
}

/* lease NAME ID [LEASE_MS RENEW_MS RETRY_MS]: campaigns until SIGTERM, then gives the lease back. */
static int run_lease(Cli *cli, const char *ns, int argc, char **argv) {
        KubeLeaderConfig lc = { .namespace = ns, .name = argv[1], .identity = argv[2] };
        if (argc >= 6) {
                lc.lease_ms = (unsigned) atoi(argv[3]);
                lc.renew_deadline_ms = (unsigned) atoi(argv[4]);
                lc.retry_ms = (unsigned) atoi(argv[5]);
        }
        KubeLeaderOps ops = { .started = lease_started, .stopped = lease_stopped, .new_leader = lease_holder };
        KvErr e = {};
        _cleanup_(kube_leader_freep) KubeLeader *l = NULL;
        int r = kube_leader_new(cli->client, &lc, &ops, cli, &l, &e);
        if (r < 0)
                return fail(r, &e);
        if ((r = event_loop_run(cli->loop)) < 0)
                return fail(r, NULL);
        if ((r = kube_leader_release(l, &e)) < 0)
                return fail(r, &e);
        printf("RELEASED\n");
        return 0;
}

/* ---- raw-watch */

static void raw_event(KubeWatch *w, KubeEventType t, json_t *obj, void *userdata) {
        (void) w, (void) userdata;
        const char *ns = md(obj, "namespace");
        if (t == KUBE_EVENT_ERROR)
                printf("EVENT ERROR code=%lld reason=%s\n", json_integer_value(json_object_get(obj, "code")),
                       json_string_value(json_object_get(obj, "reason")) ?: "");
        else
                printf("EVENT %s %s%s%s\n", kube_event_type_to_string(t), ns, ns[0] ? "/" : "", md(obj, "name"));
}

static void raw_end(KubeWatch *w, int r, const KvErr *e, void *userdata) {
        Cli *cli = userdata;
        const char *name = r < 0 ? strerrorname_np(-r) : "0";
        printf("END r=%s%s%s\n", name ? name : "?", e ? " " : "", e ? e->msg : "");
        kube_watch_free(w);
        cli->ended++;
        event_loop_exit(cli->loop, 0);
}

static int run_raw_watch(Cli *cli, const KubeRef *ref) {
        KubeWatchOpts o = { .label_selector = cli->label, .field_selector = cli->field, .resource_version = cli->rv };
        KvErr e = {};
        KubeWatch *w = NULL;
        int r = kube_watch_start(cli->client, ref, &o, raw_event, raw_end, cli, &w, &e);
        if (r < 0)
                return fail(r, &e);
        r = event_loop_run(cli->loop);
        if (!cli->ended)
                kube_watch_free(w);
        return r < 0 ? fail(r, NULL) : 0;
}

/* ---- main */

static int verb_from_string(const char *s, KubeVerb *ret) {
        for (int v = 0; v < _KUBE_VERB_MAX; v++)
                if (streq(s, kube_verb_to_string((KubeVerb) v))) {
                        *ret = (KubeVerb) v;
                        return 0;
                }
        return -EINVAL;
}

static int print_config(const KubeConfig *k) {
        printf("source=%s\ncontext=%s\nserver=%s\nnamespace=%s\ninsecure=%s\nca=%s\ncert=%s\nkey=%s\ntoken=%s\n",
               k->source, k->context ? k->context : "", k->server, k->namespace, k->insecure ? "true" : "false",
               k->ca_data ? "data" : k->ca_file ? k->ca_file : "none", k->cert_data ? "data" : k->cert_file ? k->cert_file : "none",
               k->key_data ? "data" : k->key_file ? k->key_file : "none", k->token ? k->token : "none");
        return 0;
}

static int run(Cli *cli, int argc, char **argv) {
        KvErr e = {};
        _cleanup_(kube_config_freep) KubeConfig *cfg = NULL;
        int r = cli->in_cluster ? kube_config_in_cluster(cli->in_cluster, &cfg, &e)
                                : kube_config_load(cli->kubeconfig, &cfg, &e);
        if (r < 0)
                return fail(r, &e);
        if (argc < 1) {
                fprintf(stderr, "kubeclient: a verb is needed (get, list, create, ..., watch, config)\n");
                return 2;
        }
        if (streq(argv[0], "config"))
                return print_config(cfg);
        if (argc < 3) {
                fprintf(stderr, "kubeclient: %s GROUP/VERSION RESOURCE ...\n", argv[0]);
                return 2;
        }
        if ((r = event_loop_new(&cli->loop)) < 0 || (r = event_add_signal(cli->loop, SIGTERM, on_signal, cli, NULL)) < 0 ||
            (r = event_add_signal(cli->loop, SIGINT, on_signal, cli, NULL)) < 0)
                return fail(r, NULL);
        if ((r = kube_client_new(cfg, cli->loop, &cli->client, &e)) < 0)
                return fail(r, &e);
        if (cli->qps != 0)
                kube_client_set_rate_limit(cli->client, cli->qps, cli->burst);
        KubeRef ref = { .group_version = argv[1], .resource = argv[2],
                        .namespace = cli->all_ns ? NULL : cli->ns ? cli->ns : cfg->namespace };
        if (streq(argv[0], "lease"))
                return run_lease(cli, ref.namespace ? ref.namespace : "default", argc, argv);
        if (streq(argv[0], "watch"))
                return run_informer(cli, &ref);
        if (streq(argv[0], "raw-watch"))
                return run_raw_watch(cli, &ref);
        KubeRequest req = { .ref = ref, .label_selector = cli->label, .field_selector = cli->field, .limit = cli->limit,
                            .propagation = cli->propagation, .set_grace = cli->grace >= 0,
                            .grace_seconds = cli->grace >= 0 ? (unsigned) cli->grace : 0 };
        if (verb_from_string(argv[0], &req.verb) < 0) {
                fprintf(stderr, "kubeclient: unknown verb '%s'\n", argv[0]);
                return 2;
        }
        int i = 3;
        if (req.verb != KUBE_LIST && req.verb != KUBE_CREATE) {
                if (argc <= i) {
                        fprintf(stderr, "kubeclient: %s needs a NAME\n", argv[0]);
                        return 2;
                }
                req.ref.name = argv[i++];
        }
        _cleanup_json_ json_t *body = NULL;
        if (req.verb != KUBE_GET && req.verb != KUBE_LIST && req.verb != KUBE_DELETE) {
                if (argc <= i) {
                        fprintf(stderr, "kubeclient: %s needs a JSON body\n", argv[0]);
                        return 2;
                }
                if ((r = json_parse_object(argv[i], strlen(argv[i]), 1 << 20, "body", &body, &e)) < 0)
                        return fail(r, &e);
                req.body = body;
        }
        if (cli->sync) {
                _cleanup_json_ json_t *obj = NULL;
                if ((r = kube_request_sync(cli->client, &req, &obj, &e)) < 0)
                        return fail(r, &e);
                print_result(req.verb, obj);
                return 0;
        }
        cli->verb = req.verb;
        if ((r = kube_request(cli->client, &req, on_done, cli, NULL, &e)) < 0)
                return fail(r, &e);
        if ((r = event_loop_run(cli->loop)) < 0)
                return fail(r, NULL);
        return cli->result;
}

int main(int argc, char **argv) {
        enum { OPT_KCFG = 256, OPT_INCLUSTER, OPT_SYNC, OPT_QPS, OPT_BURST, OPT_FIELD, OPT_LIMIT, OPT_PROP, OPT_GRACE,
               OPT_RV, OPT_BACKOFF };
        static const struct option opts[] = {
                { "kubeconfig", required_argument, NULL, OPT_KCFG },
                { "in-cluster", required_argument, NULL, OPT_INCLUSTER },
                { "namespace", required_argument, NULL, 'n' },
                { "all-namespaces", no_argument, NULL, 'A' },
                { "sync", no_argument, NULL, OPT_SYNC },
                { "qps", required_argument, NULL, OPT_QPS },
                { "burst", required_argument, NULL, OPT_BURST },
                { "selector", required_argument, NULL, 'l' },
                { "field-selector", required_argument, NULL, OPT_FIELD },
                { "limit", required_argument, NULL, OPT_LIMIT },
                { "propagation", required_argument, NULL, OPT_PROP },
                { "grace", required_argument, NULL, OPT_GRACE },
                { "resource-version", required_argument, NULL, OPT_RV },
                { "backoff-min", required_argument, NULL, OPT_BACKOFF },
                {},
        };
        Cli cli = { .grace = -1, .burst = 10 };
        int c;
        while ((c = getopt_long(argc, argv, "n:Al:", opts, NULL)) >= 0)
                switch (c) {
                case OPT_KCFG: cli.kubeconfig = optarg; break;
                case OPT_INCLUSTER: cli.in_cluster = optarg; break;
                case 'n': cli.ns = optarg; break;
                case 'A': cli.all_ns = true; break;
                case OPT_SYNC: cli.sync = true; break;
                case OPT_QPS: cli.qps = atof(optarg); break;
                case OPT_BURST: cli.burst = (unsigned) atoi(optarg); break;
                case 'l': cli.label = optarg; break;
                case OPT_FIELD: cli.field = optarg; break;
                case OPT_LIMIT: cli.limit = (unsigned) atoi(optarg); break;
                case OPT_PROP: cli.propagation = optarg; break;
                case OPT_GRACE: cli.grace = atoi(optarg); break;
                case OPT_RV: cli.rv = optarg; break;
                case OPT_BACKOFF: cli.backoff_min = (unsigned) atoi(optarg); break;
                default: return 2;
                }
        setvbuf(stdout, NULL, _IOLBF, 0);
        int r = run(&cli, argc - optind, argv + optind);
        kube_client_free(cli.client);
        event_loop_free(cli.loop);
        return r;
}
