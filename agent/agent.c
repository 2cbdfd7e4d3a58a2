/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-node's agent (agent.h): the launcher pods bound to this node, from the API to the pod runtime, and
 * their status back to the API.
 *
 * One event loop (common/event.h) drives the Kubernetes client: a pod informer (fieldSelector
 * spec.nodeName=<node>, labelSelector kubevirt.io=virt-launcher), the status writes, a poll timer. Starting and
 * stopping a pod block for seconds (node_pod_run() waits for the launcher's Running; node_pod_stop() for the
 * guest's shutdown), so each runs in a worker process forked for it: the pod runtime is made for
 * single-threaded callers and keeps everything in the pod's record, so the agent loads the pod from its record
 * once the worker reported back (a fixed-size result through a pipe). A worker outlives an agent that exits:
 * the pod it starts is re-adopted by the next agent.
 *
 * Per pod: FETCHING (GET its VMI) → STARTING (worker: node_pod_run) → RUNNING (status polled every poll_ms;
 * a change of the launcher's status or of its liveness is written to the VMI (handler/) and to the pod) →
 * STOPPING (worker: node_pod_stop) once the pod is deleted from the API or has ended → forgotten (deleted) or
 * DONE (ended: kept so that it is not started again). A start that fails is DONE with its failure: the VMI
 * Failed (the handler's failure view), the pod Failed with the message; the runtime rolled the start back. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/events.h"
#include "agent/metrics.h"
#include "common/addr.h"
#include "common/event.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/kstatus.h"
#include "common/log.h"
#include "common/metrics-http.h"
#include "common/proto.h"
#include "handler/handler.h"
#include "kube/kube.h"

#define VMI_GV "kubevirt.io/v1"
#define VMI_RESOURCE "virtualmachineinstances"
#define CONFLICT_RETRIES 5
#define LAUNCHER_STATUS_MAX (256u * 1024u)

typedef enum PodState {
        POD_FETCHING, /* getting its VMI */
        POD_STARTING, /* a worker runs node_pod_run() */
        POD_RUNNING,  /* the runtime runs it */
        POD_STOPPING, /* a worker runs node_pod_stop() */
        POD_DONE,     /* ended, failed to start, or finished before: never started again */
} PodState;

static const char *const pod_state_table[] = {
        [POD_FETCHING] = "fetching", [POD_STARTING] = "starting", [POD_RUNNING] = "running",
        [POD_STOPPING] = "stopping", [POD_DONE] = "done",
};

typedef struct Agent Agent;

typedef struct Pod {
        Agent *a;
        struct Pod *next;
        char uid[NODE_POD_UID_MAX + 1];
        char *ns, *name, *vmi_name, *vmi_uid;
        char *job;        /* a migration target: its kubevirt.io/migrationJobUID label */
        PodState state;
        bool gone;        /* deleted from the API: forgotten once stopped */
        bool terminating; /* deleted gracefully (metadata.deletionTimestamp): once stopped, this node confirms the
                           * deletion (a delete with grace 0), as kubelet does */
        bool stop_wanted; /* deleted, or ended: stopped when no request is in flight */
        NodePod *np;      /* RUNNING, STOPPING */
        char *failure;    /* why it could not start */
        char *start_time;
        pid_t worker; /* the worker process, 0 when none */
        EventSource *worker_src;
        KubeOp *op;          /* the one request in flight, NULL when none */
        unsigned conflicts;  /* 409s of this status write */
        char *written;       /* fingerprint of the view last written, NULL: none yet */
        char *writing;       /* the one being written */
        const char *phase;   /* the pod phase last written (static), NULL: none yet */
        bool nic_worker;     /* the worker attaches or detaches NICs (hot-plug) */
        uint64_t nic_retry_ms; /* after a failed hot-plug: not again before (CLOCK_MONOTONIC) */
        char *nic_failed;    /* that failure's message, logged once */
        bool pause_asked;    /* pause/unpause asked of the launcher (pause_asked_for) and not yet in its status */
        bool pause_asked_for;
        json_t *nic_status_pod; /* in a worker only (a start, a NIC hot-plug): the pod as read for its VFs' addresses */
        unsigned start_tries;   /* starts that failed with "try again" (CNI code 11): retried, as kubelet does */
        EventSource *retry_timer;
        json_t *vmi_events, *pod_events; /* what the status write in flight tells, once it is written (events.c) */
        uint64_t seen_usec;              /* when the agent took it up (CLOCK_MONOTONIC): its start's time */
} Pod;

/* A deleted pod's VM address: released once the VM is gone too (sticky while the VM exists). */
typedef struct Release {
        Agent *a;
        struct Release *next;
        KubeOp *op;
        char *ns, *name;
} Release;

struct Agent {
        const AgentConfig *cfg;
        EventLoop *loop;
        KubeClient *kc;
        KubeInformer *inf;  /* this node's launcher pods */
        KubeInformer *vmis; /* the VMIs (their migrationState drives the node's half of migrations) */
        NodePodRuntime *rt;
        AgentEvents *events;
        AgentMetrics *metrics;
        KvMetricsServer *msrv;
        Pod *pods;
        Release *releases;
        EventSource *timer, *sigs[2];
};

/* What a worker process reports: fixed size, below PIPE_BUF (one atomic write). */
typedef struct WorkerResult {
        int r;
        long long cni_code; /* a failing plugin's CNI error code, -1: none */
        char msg[2048];
} WorkerResult;

/* A start that failed with "try again" (CNI code 11: netd or the API server busy or restarting) is tried again,
 * as kubelet retries a pod's sandbox: after 1, 2, 4, 8 s, then the pod fails. */
#define START_TRIES_MAX 4

static void pod_sync(Pod *p);
static void pod_stop(Pod *p);
static void release_check(Pod *p);

/* ---------------------------------------------------------------- the pods */

static Pod *pod_find(Agent *a, const char *uid) {
        for (Pod *p = a->pods; p; p = p->next)
                if (streq(p->uid, uid))
                        return p;
        return NULL;
}

static void pod_set_state(Pod *p, PodState s) {
        log_debug("pod %s/%s (%s): %s -> %s", p->ns, p->name, p->uid, pod_state_table[p->state], pod_state_table[s]);
        p->state = s;
}

static Pod *pod_new(Agent *a, const char *uid, const char *ns, const char *name, PodState state) {
        Pod *p = calloc(1, sizeof *p);
        if (!p)
                return NULL;
        *p = (Pod){ .a = a, .state = state, .ns = strdup(ns), .name = strdup(name), .seen_usec = now_usec() };
        snprintf(p->uid, sizeof p->uid, "%s", uid);
        if (!p->ns || !p->name) {
                free(p->ns);
                free(p->name);
                free(p);
                return NULL;
        }
        p->next = a->pods;
        a->pods = p;
        return p;
}

/* Forgets the pod: its request is cancelled, a worker still running goes on without it (its pod is adopted
 * by the next agent, or was being stopped). */
static void pod_free(Pod *p) {
        for (Pod **pp = &p->a->pods; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        if (p->op)
                kube_op_cancel(p->op);
        if (p->worker_src)
                event_source_free(p->worker_src);
        if (p->retry_timer)
                event_source_free(p->retry_timer);
        node_pod_free(p->np);
        free(p->ns);
        free(p->name);
        free(p->vmi_name);
        free(p->vmi_uid);
        free(p->job);
        free(p->failure);
        free(p->start_time);
        free(p->written);
        free(p->writing);
        free(p->nic_failed);
        json_decref(p->nic_status_pod);
        json_decref(p->vmi_events);
        json_decref(p->pod_events);
        free(p);
}

static void on_confirmed(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata) {
        (void) c, (void) obj, (void) userdata;
        if (r < 0 && r != -ENOENT)
                log_warning("confirming a pod's deletion: %s", e && e->msg[0] ? e->msg : strerror(-r));
}

/* What kubelet does once a gracefully deleted pod's containers are gone: the deletion, with grace 0. */
static void confirm_delete(Agent *a, const char *ns, const char *name) {
        KubeRequest req = { .verb = KUBE_DELETE, .ref = { "v1", "pods", ns, name }, .set_grace = true, .grace_seconds = 0 };
        KvErr e = {};
        log_info("pod %s/%s: stopped here, confirming its deletion", ns, name);
        if (kube_request(a->kc, &req, on_confirmed, NULL, NULL, &e) < 0)
                log_warning("pod %s/%s: cannot confirm its deletion: %s", ns, name, e.msg);
}

/* A pod deleted from the API is done with on this node: forgotten, its deletion confirmed when it was graceful. */
static void pod_forget(Pod *p) {
        if (p->terminating)
                confirm_delete(p->a, p->ns, p->name);
        pod_free(p);
}

static int set_str(char **dst, const char *s) {
        char *d = s ? strdup(s) : NULL;
        if (s && !d)
                return -ENOMEM;
        free(*dst);
        *dst = d;
        return 0;
}

/* ---------------------------------------------------------------- workers */

typedef int (*worker_fn_t)(Pod *p, const void *arg, NodeErr *e);
typedef void (*worker_done_t)(Pod *p, int r, const char *msg);

typedef struct Worker {
        Pod *p;
        worker_done_t done;
} Worker;

static void nic_worker_done(Pod *p, const WorkerResult *res);
static void pod_fetch(Pod *p);

static int on_start_retry(EventSource *s, void *userdata) {
        Pod *p = userdata;
        (void) s;
        p->retry_timer = NULL;
        if (p->state == POD_FETCHING && !p->gone)
                pod_fetch(p);
        return -ECANCELED;
}

static void worker_done(Pod *p, WorkerResult *res) {
        if (p->nic_worker) {
                nic_worker_done(p, res);
        } else if (p->state == POD_STARTING) {
                if (res->r >= 0) {
                        NodeErr e = {};
                        res->r = node_pod_load(p->a->rt, p->uid, &p->np, &e);
                        if (res->r < 0)
                                node_err_format(&e, res->r, res->msg, sizeof res->msg);
                        node_err_done(&e);
                }
                if (res->r < 0 && res->cni_code == KV_ERR_TRY_AGAIN && !p->gone && p->start_tries < START_TRIES_MAX) {
                        unsigned ms = 1000u << p->start_tries++;
                        log_warning("pod %s/%s: cannot run it yet (try again): %s; retrying in %u ms (%u of %u)", p->ns,
                                    p->name, res->msg, ms, p->start_tries, START_TRIES_MAX);
                        pod_set_state(p, POD_FETCHING);
                        agent_metrics_start(p->a->metrics, AGENT_START_RETRY, -1);
                        if (event_add_timer(p->a->loop, (uint64_t) ms * 1000, 0, on_start_retry, p,
                                            &p->retry_timer) >= 0)
                                return;
                        p->retry_timer = NULL;
                }
                agent_metrics_start(p->a->metrics, res->r < 0 ? AGENT_START_FAILED : AGENT_START_OK,
                                    (double) (now_usec() - p->seen_usec) / 1e6);
                if (res->r < 0) {
                        log_error("pod %s/%s: cannot run it: %s", p->ns, p->name, res->msg);
                        if (p->gone) {
                                pod_forget(p);
                                return;
                        }
                        (void) set_str(&p->failure, res->msg);
                        pod_set_state(p, POD_DONE);
                } else {
                        log_info("pod %s/%s runs VM %s/%s: IP %s", p->ns, p->name, node_pod_vm_namespace(p->np),
                                 node_pod_vm_name(p->np), node_pod_ip4(p->np));
                        pod_set_state(p, POD_RUNNING);
                        p->stop_wanted = p->gone;
                }
        } else if (p->state == POD_STOPPING) {
                agent_metrics_stop(p->a->metrics, res->r >= 0);
                if (res->r < 0) {
                        /* its record stays (state stopping): the next tick tries again */
                        log_error("pod %s/%s: cannot stop it: %s", p->ns, p->name, res->msg);
                        pod_set_state(p, POD_RUNNING);
                        return;
                }
                log_info("pod %s/%s stopped", p->ns, p->name);
                if (p->gone)
                        release_check(p);
                p->np = node_pod_free(p->np);
                if (p->gone) {
                        pod_forget(p);
                        return;
                }
                pod_set_state(p, POD_DONE);
                return;
        }
        pod_sync(p);
}

static int on_worker(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Pod *p = userdata;
        (void) s;
        (void) revents;
        WorkerResult res = { .r = -EIO, .cni_code = -1 };
        ssize_t n = read(fd, &res, sizeof res);
        if (n != (ssize_t) sizeof res) {
                res.r = -EIO;
                snprintf(res.msg, sizeof res.msg, "the worker process ended without a result");
        }
        res.msg[sizeof res.msg - 1] = '\0';
        (void) waitpid(p->worker, NULL, 0);
        p->worker = 0;
        p->worker_src = NULL;
        worker_done(p, &res);
        return -ECANCELED; /* the loop frees the source */
}

/* Runs fn(p, arg) in a process of its own; on_worker() takes its result on the loop. */
static int worker_start(Pod *p, worker_fn_t fn, const void *arg) {
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return negative_errno();
        pid_t pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(pfd[0]);
                close(pfd[1]);
                return r;
        }
        if (pid == 0) {
                /* the loop's signals are blocked (signalfd): what the worker starts gets the usual mask */
                sigset_t none;
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                close(pfd[0]);
                WorkerResult res = { .cni_code = -1 };
                NodeErr e = {};
                res.r = fn(p, arg, &e);
                if (res.r < 0) {
                        node_err_format(&e, res.r, res.msg, sizeof res.msg);
                        res.cni_code = e.code;
                }
                IGNORE_RESULT(write(pfd[1], &res, sizeof res));
                _exit(0);
        }
        close(pfd[1]);
        int r = event_add_io(p->a->loop, pfd[0], EPOLLIN, on_worker, p, &p->worker_src);
        if (r < 0) {
                close(pfd[0]);
                return r; /* the worker still does its job; the pod is adopted at the agent's next start */
        }
        event_source_set_fd_owned(p->worker_src, true);
        p->worker = pid;
        return 0;
}

/* node_pod_run()'s resolver of an SR-IOV NIC's VF (NodePodNicPciFn): runs in the worker, after the pod's networks
 * are attached, so the pod's network-status is read fresh from the API (the meta plugin wrote it during the ADD)
 * with a client of the worker's own (the agent's shares its connections with the parent). */
static int pod_nic_pci(void *userdata, const char *ifname, char ret[static 16], KvErr *e) {
        Pod *p = userdata;
        if (!p->nic_status_pod) { /* one read for all of the pod's VFs (the worker exits after the start) */
                _cleanup_(kube_config_freep) KubeConfig *kcfg = NULL;
                _cleanup_(kube_client_freep) KubeClient *kc = NULL;
                KubeRequest req = { .verb = KUBE_GET, .ref = { "v1", "pods", p->ns, p->name } };
                int r;
                if ((r = kube_config_load(p->a->cfg->kubeconfig, &kcfg, e)) < 0 ||
                    (r = kube_client_new(kcfg, NULL, &kc, e)) < 0)
                        return r;
                kube_client_set_timeout(kc, 10000);
                if ((r = kube_request_sync(kc, &req, &p->nic_status_pod, e)) < 0)
                        return r;
        }
        return agent_pod_nic_pci(p->nic_status_pod, ifname, ret, e);
}

static int run_fn(Pod *p, const void *arg, NodeErr *e) {
        _cleanup_(node_pod_freep) NodePod *np = NULL;
        return node_pod_run(p->a->rt, arg, &np, e);
}

static int stop_fn(Pod *p, const void *arg, NodeErr *e) {
        (void) arg;
        return node_pod_stop(p->a->rt, p->np, e);
}

static void pod_stop(Pod *p) {
        if (p->op) {
                kube_op_cancel(p->op);
                p->op = NULL;
        }
        log_info("pod %s/%s: stopping it%s", p->ns, p->name, p->gone ? " (deleted)" : " (ended)");
        pod_set_state(p, POD_STOPPING);
        int r = worker_start(p, stop_fn, NULL);
        if (r < 0) {
                log_error_errno(r, "pod %s/%s: cannot start a worker: %m", p->ns, p->name);
                pod_set_state(p, POD_RUNNING); /* the next tick tries again */
        }
}

/* ---------------------------------------------------------------- status */

static json_t *read_json_file(const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (!path || read_file_max(path, LAUNCHER_STATUS_MAX, &text, &len) < 0)
                return NULL;
        json_t *o = json_loadb(text, len, 0, NULL);
        if (!json_is_object(o)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* A JSON-list annotation of the pod (network-status: what the meta plugin wrote; networks: what the controller
 * asked for), parsed; NULL when none or not an array. */
static json_t *pod_annotation_list(Pod *p, const char *key) {
        json_t *pod = kube_informer_get(p->a->inf, p->ns, p->name);
        const char *s = json_string_value(json_object_get(json_object_get(json_object_get(pod, "metadata"), "annotations"),
                                                          key));
        json_t *v = s ? json_loads(s, 0, NULL) : NULL;
        if (v && !json_is_array(v)) {
                json_decref(v);
                return NULL;
        }
        return v;
}

/* The node's view of the pod, for the handler; *launcher, *cni and *netst are the caller's to json_decref. */
static void pod_view(Pod *p, HdlPodView *v, json_t **launcher, json_t **cni, json_t **netst, json_t **nets) {
        *launcher = *cni = *netst = *nets = NULL;
        *v = (HdlPodView){ .node = p->a->cfg->pod.node_name, .pod_name = p->name, .pod_uid = p->uid,
                           .failure = p->failure };
        if (!p->np)
                return;
        *netst = pod_annotation_list(p, "k8s.v1.cni.cncf.io/network-status");
        *nets = pod_annotation_list(p, AGENT_ANN_NETWORKS);
        v->network_status = *netst;
        v->networks = *nets;
        *launcher = read_json_file(node_pod_status_file(p->np));
        const NodeCniResult *res = node_pod_cni_result(p->np);
        if (res && res->raw)
                *cni = json_loads(res->raw, 0, NULL);
        v->launcher = *launcher;
        v->cni_result = *cni;
        v->launcher_exited = !node_pod_launcher_alive(p->np);
}

/* The pod's VMI as the VMI informer has it (NULL when it has not, or another of that name). */
static json_t *vmi_cached(Pod *p) {
        json_t *vmi = p->vmi_name ? kube_informer_get(p->a->vmis, p->ns, p->vmi_name) : NULL;
        return vmi && streq_ptr(json_string_value(json_object_get(json_object_get(vmi, "metadata"), "uid")), p->vmi_uid)
                       ? vmi
                       : NULL;
}

/* What the status depends on: the launcher's status file and its liveness, or the failure; the node's
 * migration record and what the VMI says of where it runs and of its migration. */
static char *pod_fingerprint(Pod *p) {
        _cleanup_free_ char *text = NULL, *rec = NULL, *where = NULL;
        size_t len = 0;
        if (p->np) {
                _cleanup_free_ char *path = NULL;
                IGNORE_RESULT(read_file_max(node_pod_status_file(p->np), LAUNCHER_STATUS_MAX, &text, &len));
                if (asprintf(&path, "%s/migration.json", node_pod_dir(p->np)) >= 0)
                        IGNORE_RESULT(read_file_max(path, 16384, &rec, &len));
        }
        json_t *st = json_object_get(vmi_cached(p), "status");
        _cleanup_json_ json_t *w = json_pack("{s:O?, s:O?, s:O?}", "nodeName", json_object_get(st, "nodeName"),
                                             "activePods", json_object_get(st, "activePods"), "migrationState",
                                             json_object_get(st, "migrationState"));
        where = w ? json_dump_compact(w) : NULL;
        json_t *pod = kube_informer_get(p->a->inf, p->ns, p->name);
        const char *netst = json_string_value(json_object_get(json_object_get(json_object_get(pod, "metadata"),
                                                                              "annotations"),
                                                              "k8s.v1.cni.cncf.io/network-status"));
        char *fp = NULL;
        if (asprintf(&fp, "%d|%s|%s|%s|%s|%s", p->np ? node_pod_launcher_alive(p->np) : -1, p->failure ? p->failure : "",
                     text ? text : "", rec ? rec : "", where ? where : "", netst ? netst : "") < 0)
                return NULL;
        return fp;
}

static void write_done(Pod *p) {
        free(p->written);
        p->written = TAKE_PTR(p->writing);
        p->conflicts = 0;
        if (p->state == POD_RUNNING && (streq_ptr(p->phase, "Succeeded") || streq_ptr(p->phase, "Failed"))) {
                /* the VM ended (or migrated away): kubelet tears a finished pod's sandbox down */
                p->stop_wanted = true;
                pod_stop(p);
        }
}

static void on_pod_patched(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata) {
        Pod *p = userdata;
        (void) c;
        (void) obj;
        p->op = NULL;
        _cleanup_json_ json_t *events = TAKE_PTR(p->pod_events);
        if (r < 0 && r != -ENOENT) {
                log_warning_errno(r, "pod %s/%s: cannot write its status: %s", p->ns, p->name, e->msg);
                return;
        }
        if (r >= 0)
                agent_events_post(p->a->events, &(KubeObjectRef){ "v1", "Pod", p->ns, p->name, p->uid }, events);
        write_done(p);
}

static void pod_status_write(Pod *p) {
        json_t *cur = kube_informer_get(p->a->inf, p->ns, p->name);
        if (!cur || !streq_ptr(json_string_value(json_object_get(json_object_get(cur, "metadata"), "uid")), p->uid)) {
                write_done(p); /* the pod is gone from the API */
                return;
        }
        json_t *old = json_object_get(cur, "status");
        _cleanup_json_ json_t *launcher = NULL, *cni = NULL, *netst = NULL, *nets = NULL;
        HdlPodView v;
        pod_view(p, &v, &launcher, &cni, &netst, &nets);
        const char *lphase = json_string_value(json_object_get(launcher, "phase"));
        const char *phase = streq_ptr(lphase, "WaitingForMigration") ? "Running"   /* a target waits for the guest */
                            : streq_ptr(lphase, "Migrated")          ? "Succeeded" /* the source's end */
                                                                     : agent_pod_phase(hdl_vmi_phase(&v));
        p->phase = phase;
        const char *msg = p->failure ? p->failure : json_string_value(json_object_get(launcher, "reason"));
        AgentPodStatus s = { .phase = phase, .message = msg && *msg ? msg : NULL,
                             .ip4 = p->np ? node_pod_ip4(p->np) : NULL, .ip6 = p->np ? node_pod_ip6(p->np) : NULL,
                             .host_ip = p->a->cfg->host_ip, .start_time = p->start_time };
        _cleanup_json_ json_t *st = agent_pod_status(old, &s), *patch = NULL;
        if (!st) {
                log_error("pod %s/%s: out of memory", p->ns, p->name);
                return;
        }
        if (json_equal(st, old)) {
                write_done(p);
                return;
        }
        patch = json_pack("{s:O}", "status", st);
        json_decref(p->pod_events);
        p->pod_events = agent_pod_events(json_string_value(json_object_get(old, "phase")), phase, s.message);
        KubeRequest req = { .verb = KUBE_PATCH_STATUS, .ref = { "v1", "pods", p->ns, p->name }, .body = patch };
        KvErr e = {};
        int r = patch ? kube_request(p->a->kc, &req, on_pod_patched, p, &p->op, &e) : -ENOMEM;
        if (r < 0)
                log_warning_errno(r, "pod %s/%s: cannot write its status: %s", p->ns, p->name, e.msg);
        else
                log_info("pod %s/%s: %s%s%s", p->ns, p->name, phase, s.ip4 && *s.ip4 ? " " : "", s.ip4 ? s.ip4 : "");
}

static void vmi_get(Pod *p, kube_done_t done);
static void on_vmi(KubeClient *c, int r, json_t *vmi, const KvErr *e, void *userdata);

/* ---------------------------------------------------------------- migrations: the node's half */

static int mig_record(Pod *p, AgentMigRecord *rec) {
        return p->np ? agent_mig_record_load(node_pod_dir(p->np), rec) : -ENOENT;
}

static void mig_save(Pod *p, const AgentMigRecord *rec) {
        int r = agent_mig_record_save(node_pod_dir(p->np), rec);
        if (r < 0)
                log_error_errno(r, "pod %s/%s: cannot record migration %s: %m", p->ns, p->name, rec->uid);
}

/* The fields this pod's node reports in the VMI's migrationState (NULL: none). */
static int mig_fields(Pod *p, json_t *vmi, json_t *launcher, json_t **ret) {
        AgentMigRecord rec;
        json_t *ms = agent_vmi_migration_state(vmi);
        *ret = NULL;
        if (!ms || mig_record(p, &rec) < 0)
                return 0;
        if (rec.role == AGENT_MIG_SOURCE)
                return agent_mig_source_fields(ms, &rec, launcher, ret);
        _cleanup_free_ char *state = NULL;
        if (asprintf(&state, "%s/state", node_pod_dir(p->np)) < 0)
                return -ENOMEM;
        AgentMigTarget t = { .address = p->a->cfg->host_ip ? p->a->cfg->host_ip : "", .state_dir = state,
                             .serial_log = node_pod_serial_log(p->np) };
        return agent_mig_target_fields(ms, &rec, launcher, &t, ret);
}

static void node_err_text(NodeErr *e, int r, char *buf, size_t n) {
        node_err_format(e, r, buf, n);
        node_err_done(e);
}

/* The target's node: once its launcher waits for the guest, the listening half of the proxies; once the
 * migration ended, they go. */
static void mig_target_step(Pod *p, json_t *launcher) {
        AgentMigRecord rec;
        json_t *ms = agent_vmi_migration_state(vmi_cached(p));
        if (mig_record(p, &rec) == 0 && streq(rec.uid, p->job)) {
                if (rec.port && !rec.proxies_stopped && ms && streq_ptr(json_string_value(json_object_get(ms, "migrationUid")), p->job) &&
                    agent_mig_ended(ms)) {
                        (void) node_pod_proxies_stop(p->np);
                        rec.proxies_stopped = true;
                        mig_save(p, &rec);
                }
                return;
        }
        if (!streq_ptr(json_string_value(json_object_get(launcher, "phase")), "WaitingForMigration"))
                return;
        rec = (AgentMigRecord){ .role = AGENT_MIG_TARGET };
        snprintf(rec.uid, sizeof rec.uid, "%s", p->job);
        char ts[32];
        snprintf(rec.started, sizeof rec.started, "%s", kstatus_time(0, ts));
        if (!p->a->cfg->host_ip)
                snprintf(rec.failure, sizeof rec.failure,
                         "node %s has no address for the migration's proxies (kvnet-node --node-ip)", p->a->cfg->pod.node_name);
        else {
                NodeMigProxies *px = NULL;
                NodeErr e = {};
                int r = node_mig_target_start(p->a->rt, p->np, p->a->cfg->host_ip, 0, true, &px, &e);
                if (r < 0)
                        node_err_text(&e, r, rec.failure, sizeof rec.failure);
                else {
                        rec.port = node_mig_proxies_port(px);
                        (void) node_mig_proxies_forget(px);
                }
        }
        if (rec.failure[0])
                log_error("pod %s/%s: migration %s: %s", p->ns, p->name, rec.uid, rec.failure);
        else
                log_info("pod %s/%s: migration %s: the target waits on %s:%u", p->ns, p->name, rec.uid,
                         p->a->cfg->host_ip, rec.port);
        mig_save(p, &rec);
}

/* The launcher's {"op":...}; the error text into why (when given). */
static int launcher_call(Pod *p, const char *op, json_t *args, char *why, size_t n) {
        json_t *res = NULL;
        KvErr e = {};
        int r = proto_call_path(node_pod_launcher_socket(p->np), op, args, 10000, &res, &e);
        json_decref(res);
        if (r < 0 && why) {
                int k = snprintf(why, n, "the launcher refused %s: %.400s", op, e.msg[0] ? e.msg : strerror(-r));
                if (e.details[0] && k > 0 && (size_t) k < n)
                        snprintf(why + k, n - (size_t) k, ": %.200s", e.details);
        }
        return r;
}

static uint16_t first_port(json_t *ports) {
        const char *k;
        json_t *v;
        unsigned long best = 0;
        json_object_foreach(ports, k, v) {
                char *end;
                unsigned long n = strtoul(k, &end, 10);
                if (*end == '\0' && n > 0 && n < UINT16_MAX && (!best || n < best))
                        best = n;
        }
        return (uint16_t) best;
}

/* The source's node: once the target is ready, its half of the proxies and the launcher's migrate; a cancel
 * when the controller asks for one; the proxies go when the migration ended. */
static void mig_source_step(Pod *p, json_t *launcher) {
        json_t *vmi = vmi_cached(p), *ms = agent_vmi_migration_state(vmi);
        if (agent_mig_role(vmi, p->name, p->job) != AGENT_MIG_SOURCE)
                return;
        const char *uid = json_string_value(json_object_get(ms, "migrationUid"));
        bool abort = json_is_true(json_object_get(ms, "abortRequested"));
        AgentMigRecord rec;
        if (mig_record(p, &rec) < 0 || rec.role != AGENT_MIG_SOURCE || !streq(rec.uid, uid)) {
                const char *addr = json_string_value(json_object_get(ms, "targetNodeAddress"));
                const char *sdir = json_string_value(json_object_get(ms, "kvnetTargetStateDir"));
                const char *slog = json_string_value(json_object_get(ms, "kvnetTargetSerialLog"));
                uint16_t port = first_port(json_object_get(ms, "targetDirectMigrationNodePorts"));
                if (agent_mig_ended(ms) || abort || json_object_get(ms, "startTimestamp") ||
                    !json_is_true(json_object_get(ms, "targetNodeDomainDetected")) || !addr || !port || !sdir || !slog)
                        return;
                rec = (AgentMigRecord){ .role = AGENT_MIG_SOURCE, .port = port };
                snprintf(rec.uid, sizeof rec.uid, "%s", uid);
                char ts[32];
                snprintf(rec.started, sizeof rec.started, "%s", kstatus_time(0, ts));
                NodeMigProxies *px = NULL;
                NodeErr e = {};
                int r = node_mig_source_start(p->a->rt, p->np, addr, port, true, &px, &e);
                if (r < 0)
                        node_err_text(&e, r, rec.failure, sizeof rec.failure);
                else {
                        _cleanup_json_ json_t *args = json_pack("{s:s, s:s, s:b, s:s, s:s}", "destUri",
                                                                node_mig_proxies_dest_uri(px), "migrateUri",
                                                                node_mig_proxies_migrate_uri(px), "tunnelled", false,
                                                                "destStateDir", sdir, "destSerialLog", slog);
                        if (args && p->a->cfg->mig_max_downtime_ms)
                                json_object_set_new(args, "maxDowntimeMs", json_integer(p->a->cfg->mig_max_downtime_ms));
                        r = args ? launcher_call(p, "migrate", args, rec.failure, sizeof rec.failure) : -ENOMEM;
                        if (r < 0) {
                                if (!rec.failure[0])
                                        snprintf(rec.failure, sizeof rec.failure, "out of memory");
                                (void) node_mig_proxies_stop(px);
                                rec.proxies_stopped = true;
                        } else {
                                /* the launcher wrote its status before it answered: this migration's start */
                                _cleanup_json_ json_t *now = read_json_file(node_pod_status_file(p->np));
                                const char *at = json_string_value(
                                        json_object_get(json_object_get(now, "migration"), "startedAt"));
                                snprintf(rec.launcher_started, sizeof rec.launcher_started, "%s", at ? at : "");
                        }
                        (void) node_mig_proxies_forget(px);
                }
                if (rec.failure[0])
                        log_error("pod %s/%s: migration %s: %s", p->ns, p->name, uid, rec.failure);
                else
                        log_info("pod %s/%s: migration %s: migrating to %s:%u", p->ns, p->name, uid, addr, port);
                mig_save(p, &rec);
                return;
        }
        const char *state = json_string_value(json_object_get(json_object_get(launcher, "migration"), "state"));
        bool launcher_done = streq_ptr(state, "completed") || streq_ptr(state, "failed") || streq_ptr(state, "cancelled");
        if (abort && !rec.cancel_sent && !agent_mig_ended(ms) && !rec.failure[0] && !launcher_done) {
                char why[600] = "";
                if (launcher_call(p, "migrate-cancel", NULL, why, sizeof why) < 0)
                        log_warning("pod %s/%s: migration %s: %s", p->ns, p->name, uid, why);
                else
                        log_info("pod %s/%s: migration %s: cancelling it", p->ns, p->name, uid);
                rec.cancel_sent = true;
                mig_save(p, &rec);
        }
        if (!rec.proxies_stopped && (launcher_done || agent_mig_ended(ms))) {
                (void) node_pod_proxies_stop(p->np);
                rec.proxies_stopped = true;
                mig_save(p, &rec);
        }
}

/* virtctl pause / unpause: the controller marks the VMI (annotation HDL_PAUSE_ANNOTATION), the VMI's pod here
 * asks its launcher to pause or resume the domain; the VMI's Paused condition follows the launcher's status. One
 * request per change of the mark: a refusal (the VM migrating, shutting down) is logged and not repeated. */
static void pause_step(Pod *p, json_t *launcher) {
        json_t *vmi = vmi_cached(p);
        if (!vmi || !launcher || !agent_pod_writes_vmi(vmi, p->a->cfg->pod.node_name, p->name, p->uid, p->job) ||
            !streq_ptr(json_string_value(json_object_get(launcher, "phase")), "Running") ||
            streq_ptr(json_string_value(json_object_get(json_object_get(launcher, "migration"), "state")), "running"))
                return;
        json_t *ann = json_object_get(json_object_get(vmi, "metadata"), "annotations");
        bool want = streq_ptr(json_string_value(json_object_get(ann, HDL_PAUSE_ANNOTATION)), "true");
        bool have = json_is_true(json_object_get(launcher, "paused"));
        if (want == have) {
                p->pause_asked = false;
                return;
        }
        if (p->pause_asked && p->pause_asked_for == want)
                return;
        p->pause_asked = true;
        p->pause_asked_for = want;
        char why[600] = "";
        if (launcher_call(p, want ? "pause" : "unpause", NULL, why, sizeof why) < 0)
                log_warning("VMI %s/%s: %s", p->ns, p->vmi_name, why);
        else
                log_info("VMI %s/%s: %s", p->ns, p->vmi_name, want ? "paused" : "unpaused");
}

static void mig_step(Pod *p) {
        if (p->state != POD_RUNNING || !p->np || p->stop_wanted)
                return;
        _cleanup_json_ json_t *launcher = read_json_file(node_pod_status_file(p->np));
        if (p->job)
                mig_target_step(p, launcher);
        mig_source_step(p, launcher);
        pause_step(p, launcher);
}

static void on_vmi_put(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata) {
        Pod *p = userdata;
        (void) c;
        (void) obj;
        p->op = NULL;
        _cleanup_json_ json_t *events = TAKE_PTR(p->vmi_events);
        if (r >= 0)
                agent_events_post(p->a->events,
                                  &(KubeObjectRef){ VMI_GV, "VirtualMachineInstance", p->ns, p->vmi_name, p->vmi_uid },
                                  events);
        if (r == -EBUSY && p->conflicts++ < CONFLICT_RETRIES) {
                vmi_get(p, on_vmi); /* stale resourceVersion: read it again */
                return;
        }
        if (r < 0 && r != -ENOENT) {
                log_warning_errno(r, "VMI %s/%s: cannot write its status: %s", p->ns, p->vmi_name, e->msg);
                return;
        }
        pod_status_write(p);
}

static void on_vmi(KubeClient *c, int r, json_t *vmi, const KvErr *e, void *userdata) {
        Pod *p = userdata;
        (void) c;
        p->op = NULL;
        if (r < 0 && r != -ENOENT) {
                log_warning_errno(r, "VMI %s/%s: cannot get it: %s", p->ns, p->vmi_name, e->msg);
                return;
        }
        if (r == -ENOENT ||
            !streq_ptr(json_string_value(json_object_get(json_object_get(vmi, "metadata"), "uid")), p->vmi_uid)) {
                /* the VMI is gone (or another of that name): the pod alone */
                pod_status_write(p);
                return;
        }
        _cleanup_json_ json_t *launcher = NULL, *cni = NULL, *netst = NULL, *nets = NULL, *st = NULL, *body = NULL,
                              *fields = NULL;
        HdlPodView v;
        pod_view(p, &v, &launcher, &cni, &netst, &nets);
        bool changed = false;
        KvErr ke = {};
        if (agent_pod_writes_vmi(vmi, p->a->cfg->pod.node_name, p->name, p->uid, p->job))
                r = hdl_vmi_status(vmi, &v, &st, &changed, &ke);
        else {
                /* not (or no longer, or not yet) the VMI's pod: its migration's fields at most */
                json_t *old = json_object_get(vmi, "status");
                st = json_is_object(old) ? json_deep_copy(old) : json_object();
                r = st ? 0 : kverr_set(&ke, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        }
        if (r >= 0 && (r = mig_fields(p, vmi, launcher, &fields)) >= 0)
                r = agent_mig_merge(st, fields, &changed);
        if (r < 0) {
                log_error("VMI %s/%s: %s", p->ns, p->vmi_name, ke.msg[0] ? ke.msg : strerror(-r));
                return;
        }
        if (!changed) {
                pod_status_write(p);
                return;
        }
        body = json_deep_copy(vmi);
        if (!body || json_object_set(body, "status", st) < 0)
                return;
        json_decref(p->vmi_events);
        p->vmi_events = agent_vmi_events(json_object_get(vmi, "status"), st, p->a->cfg->pod.node_name);
        KubeRequest req = { .verb = KUBE_UPDATE_STATUS,
                            .ref = { VMI_GV, VMI_RESOURCE, p->ns, p->vmi_name },
                            .body = body };
        r = kube_request(p->a->kc, &req, on_vmi_put, p, &p->op, &ke);
        if (r < 0)
                log_warning_errno(r, "VMI %s/%s: cannot write its status: %s", p->ns, p->vmi_name, ke.msg);
        else {
                const char *phase = json_string_value(json_object_get(st, "phase"));
                log_info("VMI %s/%s: %s", p->ns, p->vmi_name, phase ? phase : "");
        }
}

/* GETs the pod's VMI; done gets it (the pod's one request). */
static void vmi_get(Pod *p, kube_done_t done) {
        KubeRequest req = { .verb = KUBE_GET, .ref = { VMI_GV, VMI_RESOURCE, p->ns, p->vmi_name } };
        KvErr e = {};
        int r = kube_request(p->a->kc, &req, done, p, &p->op, &e);
        if (r < 0)
                log_warning_errno(r, "VMI %s/%s: cannot get it: %s", p->ns, p->vmi_name, e.msg);
}

/* ---------------------------------------------------------------- NIC hot-plug */

/* One NIC to attach or detach, and which halves: the pod's network (CNI through the node's meta plugin) and the
 * domain's device (the launcher). */
typedef struct NicChange {
        char vm_interface[64], ifname[16], mac[KV_MAC_STRLEN];
        bool cni, launcher, sriov;
} NicChange;

typedef struct NicPlan {
        NicChange attach[NODE_POD_NICS_MAX], detach[NODE_POD_NICS_MAX];
        size_t n_attach, n_detach;
} NicPlan;

#define NIC_RETRY_MS 10000
#define NIC_DETACH_WAIT_MS 40000 /* the launcher gives the guest 30 s to release a device */

static uint64_t now_ms(void) {
        return now_usec() / 1000u;
}

/* The launcher's NIC of VMI interface name in its status, or NULL. */
static json_t *launcher_nic(json_t *launcher, const char *name) {
        return json_array_find_str(json_object_get(launcher, "interfaces"), "name", name);
}

static const NodePodNic *recorded_nic(const NodePod *np, const char *vm_interface) {
        size_t n;
        const NodePodNic *v = node_pod_nics(np, &n);
        for (size_t i = 0; i < n; i++)
                if (streq(v[i].vm_interface, vm_interface))
                        return &v[i];
        return NULL;
}

/* The guest's MAC of a hot-plugged interface: its macAddress, else the one the launcher and the controller derive. */
static void nic_mac(json_t *vmi, const char *iface, char mac[static KV_MAC_STRLEN]) {
        json_t *ifs = json_object_get(json_object_get(json_object_get(json_object_get(vmi, "spec"), "domain"), "devices"),
                                      "interfaces");
        const char *want = json_string_value(json_object_get(json_array_find_str(ifs, "name", iface), "macAddress"));
        if (want) {
                snprintf(mac, KV_MAC_STRLEN, "%s", want);
                return;
        }
        uint8_t m[6];
        kv_vm_nic_mac(json_string_value(json_object_get(json_object_get(vmi, "metadata"), "namespace")),
                      json_string_value(json_object_get(json_object_get(vmi, "metadata"), "name")), iface, m);
        kv_mac_fmt(m, mac);
}

/* What differs between the NICs the VMI and the pod's networks want (agent_launch_from()) and those the pod has
 * (its record: the CNI half; the launcher's status: the domain half). */
static int nic_plan(Pod *p, json_t *vmi, json_t *launcher, NicPlan *plan) {
        json_t *pod = kube_informer_get(p->a->inf, p->ns, p->name);
        AgentLaunch l;
        KvErr ke = {};
        *plan = (NicPlan){};
        if (!pod || agent_launch_from(pod, vmi, &l, &ke) < 0)
                return 0;
        for (size_t i = 0; i < l.n_nics; i++) {
                bool rec = recorded_nic(p->np, l.nics[i].vm_interface), dom = launcher_nic(launcher, l.nics[i].vm_interface);
                if (rec && dom)
                        continue;
                NicChange *c = &plan->attach[plan->n_attach++];
                *c = (NicChange){ .cni = !rec, .launcher = !dom, .sriov = l.nics[i].sriov };
                snprintf(c->vm_interface, sizeof c->vm_interface, "%s", l.nics[i].vm_interface);
                snprintf(c->ifname, sizeof c->ifname, "%s", l.nics[i].ifname);
                nic_mac(vmi, c->vm_interface, c->mac);
        }
        size_t n;
        const NodePodNic *v = node_pod_nics(p->np, &n);
        for (size_t i = 0; i < n; i++) {
                bool wanted = false;
                for (size_t k = 0; k < l.n_nics && !wanted; k++)
                        wanted = streq(l.nics[k].vm_interface, v[i].vm_interface);
                if (wanted)
                        continue;
                NicChange *c = &plan->detach[plan->n_detach++];
                *c = (NicChange){ .cni = true, .launcher = launcher_nic(launcher, v[i].vm_interface) != NULL };
                snprintf(c->vm_interface, sizeof c->vm_interface, "%s", v[i].vm_interface);
                snprintf(c->ifname, sizeof c->ifname, "%s", v[i].ifname);
        }
        return (int) (plan->n_attach + plan->n_detach);
}

static int nic_err(NodeErr *e, NodeErrKind kind, int r, const char *why) {
        node_err_done(e);
        e->kind = kind;
        e->code = -1;
        snprintf(e->msg, sizeof e->msg, "%.500s", why);
        return r;
}

/* The VM interface's claims in netd (its address, MAC and an SR-IOV NIC's VF) go with the NIC: a VM's claims
 * otherwise outlive its pods. */
static void nic_release(Pod *p, const NicChange *c) {
        _cleanup_json_ json_t *args = json_pack("{s:{s:s,s:s,s:s}}", "vm", "namespace", node_pod_vm_namespace(p->np),
                                                "name", node_pod_vm_name(p->np), "interface", c->vm_interface),
                              *res = NULL;
        KvErr ke = {};
        if (p->a->cfg->pod.netd_socket && args &&
            proto_call_path(p->a->cfg->pod.netd_socket, "ipam-release", args, 5000, &res, &ke) < 0)
                log_warning("VM %s/%s: interface %s: cannot release its address: %s", node_pod_vm_namespace(p->np),
                            node_pod_vm_name(p->np), c->vm_interface, ke.msg);
}

/* The domain's NIC goes (the guest is asked, the launcher waits for DEVICE_REMOVED), then the pod's network. */
static int nic_detach(Pod *p, const NicChange *c, NodeErr *e) {
        char why[1024];
        int r;
        if (c->launcher) {
                _cleanup_json_ json_t *args = json_pack("{s:s}", "name", c->vm_interface);
                if (!args)
                        return -ENOMEM;
                if ((r = launcher_call(p, "detach-interface", args, why, sizeof why)) < 0)
                        return nic_err(e, NODE_ERR_LAUNCHER, r, why);
                for (uint64_t end = now_ms() + NIC_DETACH_WAIT_MS;;) {
                        _cleanup_json_ json_t *st = read_json_file(node_pod_status_file(p->np));
                        json_t *n = launcher_nic(st, c->vm_interface);
                        if (st && !n)
                                break;
                        const char *err = json_string_value(json_object_get(n, "detachError"));
                        if (err || now_ms() > end) {
                                snprintf(why, sizeof why, "interface %s: the guest kept the device: %s", c->vm_interface,
                                         err ? err : "no DEVICE_REMOVED in time");
                                return nic_err(e, NODE_ERR_LAUNCHER, -ETIMEDOUT, why);
                        }
                        (void) usleep(100 * 1000);
                }
        }
        if ((r = node_pod_nic_detach(p->a->rt, p->np, c->vm_interface, e)) < 0)
                return r;
        nic_release(p, c);
        return 0;
}

/* The pod's network first (the tap the launcher plugs, or for an SR-IOV NIC the VF netd allocates, its PCI address
 * read back from the pod's network-status as at a start), then the domain's NIC; a failing launcher undoes the
 * first (the VF goes back to its pool). */
static int nic_attach(Pod *p, const NicChange *c, NodeErr *e) {
        NodePodNic nic = { c->vm_interface, c->ifname, c->sriov };
        char why[1024], dev[16];
        int r;
        if (c->cni && (r = node_pod_nic_attach(p->a->rt, p->np, &nic, e)) < 0)
                return r;
        if (!c->launcher)
                return 0;
        if (c->sriov) {
                KvErr ke = {};
                json_decref(p->nic_status_pod); /* read again: the ADD just wrote its entry */
                p->nic_status_pod = NULL;
                r = pod_nic_pci(p, c->ifname, dev, &ke);
                if (r < 0)
                        snprintf(why, sizeof why, "interface %s: no VF to attach: %s", c->vm_interface, ke.msg);
        } else
                r = node_pod_nic_tap(p->np, c->ifname, dev);
        if (r < 0 && !c->sriov)
                return r;
        if (r >= 0) {
                _cleanup_json_ json_t *args = json_pack("{s:s,s:s,s:s}", "name", c->vm_interface,
                                                        c->sriov ? "pci" : "tap", dev, "mac", c->mac);
                r = args ? launcher_call(p, "attach-interface", args, why, sizeof why) : -ENOMEM;
                if (r >= 0)
                        return 0;
        }
        NodeErr ignored = {};
        if (node_pod_nic_detach(p->a->rt, p->np, c->vm_interface, &ignored) >= 0)
                nic_release(p, c); /* nothing of the attempt held: its VF back in the pool */
        node_err_done(&ignored);
        return nic_err(e, NODE_ERR_LAUNCHER, r, why);
}

static int nics_fn(Pod *p, const void *arg, NodeErr *e) {
        const NicPlan *plan = arg;
        int r;
        for (size_t i = 0; i < plan->n_detach; i++)
                if ((r = nic_detach(p, &plan->detach[i], e)) < 0)
                        return r;
        for (size_t i = 0; i < plan->n_attach; i++)
                if ((r = nic_attach(p, &plan->attach[i], e)) < 0)
                        return r;
        return 0;
}

static void nic_worker_done(Pod *p, const WorkerResult *res) {
        p->nic_worker = false;
        /* the worker changed the pod's record (its NICs) */
        NodePod *np = NULL;
        NodeErr e = {};
        if (node_pod_load(p->a->rt, p->uid, &np, &e) >= 0) {
                node_pod_free(p->np);
                p->np = np;
        }
        node_err_done(&e);
        if (res->r < 0) {
                if (!streq_ptr(p->nic_failed, res->msg))
                        log_error("pod %s/%s: NIC hot-plug: %s (trying again every %d s)", p->ns, p->name, res->msg,
                                  NIC_RETRY_MS / 1000);
                /* the user's view: a Warning on the VMI (repeats counted by the recorder, not posted again) */
                json_t *ev = json_pack("[{s:s,s:s,s:s}]", "type", "Warning", "reason", "InterfaceHotplugFailed",
                                       "message", res->msg);
                if (ev && p->vmi_name)
                        agent_events_post(p->a->events,
                                          &(KubeObjectRef){ VMI_GV, "VirtualMachineInstance", p->ns, p->vmi_name,
                                                            p->vmi_uid },
                                          ev);
                json_decref(ev);
                (void) set_str(&p->nic_failed, res->msg);
                p->nic_retry_ms = now_ms() + NIC_RETRY_MS;
        } else {
                log_info("pod %s/%s: NICs hot-plugged/unplugged", p->ns, p->name);
                (void) set_str(&p->nic_failed, NULL);
        }
}

/* NIC hot-plug and unplug on the running VM (the VMI's interfaces and the pod's networks annotation against what
 * the pod has): a worker does it; true when one started. Not during a migration, not for a pod that is not the
 * VMI's, not before the guest runs. */
static bool nic_step(Pod *p) {
        json_t *vmi = vmi_cached(p);
        if (!vmi || !p->np || p->stop_wanted || now_ms() < p->nic_retry_ms ||
            !agent_pod_writes_vmi(vmi, p->a->cfg->pod.node_name, p->name, p->uid, p->job))
                return false;
        json_t *ms = agent_vmi_migration_state(vmi);
        if (ms && !agent_mig_ended(ms))
                return false;
        _cleanup_json_ json_t *launcher = read_json_file(node_pod_status_file(p->np));
        if (!streq_ptr(json_string_value(json_object_get(launcher, "phase")), "Running"))
                return false;
        _cleanup_free_ NicPlan *plan = malloc(sizeof *plan);
        if (!plan || nic_plan(p, vmi, launcher, plan) == 0)
                return false;
        for (size_t i = 0; i < plan->n_detach; i++)
                log_info("pod %s/%s: unplugging interface %s (%s)", p->ns, p->name, plan->detach[i].vm_interface,
                         plan->detach[i].ifname);
        for (size_t i = 0; i < plan->n_attach; i++)
                log_info("pod %s/%s: hot-plugging interface %s (%s, %s)", p->ns, p->name, plan->attach[i].vm_interface,
                         plan->attach[i].ifname, plan->attach[i].mac);
        p->nic_worker = true;
        int r = worker_start(p, nics_fn, plan);
        if (r < 0) {
                p->nic_worker = false;
                log_error_errno(r, "pod %s/%s: cannot start a worker: %m", p->ns, p->name);
                return false;
        }
        return true;
}

/* Writes the VMI's and the pod's status when what they depend on changed since the last write. */
static void pod_sync(Pod *p) {
        if (p->op || p->worker || !p->vmi_name || !p->vmi_uid)
                return;
        if (p->state == POD_RUNNING && p->stop_wanted) {
                pod_stop(p);
                return;
        }
        if (p->state != POD_RUNNING && !(p->state == POD_DONE && p->failure))
                return;
        mig_step(p);
        if (p->state == POD_RUNNING && nic_step(p))
                return;
        _cleanup_free_ char *fp = pod_fingerprint(p);
        if (!fp || streq_ptr(fp, p->written))
                return;
        free(p->writing);
        p->writing = TAKE_PTR(fp);
        p->conflicts = 0;
        vmi_get(p, on_vmi);
}

/* ---------------------------------------------------------------- starting */

static void pod_fail(Pod *p, const char *msg) {
        log_error("pod %s/%s: %s", p->ns, p->name, msg);
        (void) set_str(&p->failure, msg);
        pod_set_state(p, POD_DONE);
        pod_sync(p);
}

static void on_fetched(KubeClient *c, int r, json_t *vmi, const KvErr *e, void *userdata) {
        Pod *p = userdata;
        (void) c;
        p->op = NULL;
        if (r < 0 && r != -ENOENT) {
                log_warning_errno(r, "VMI %s/%s: cannot get it (trying again): %s", p->ns, p->vmi_name, e->msg);
                return;
        }
        char msg[1024];
        if (r == -ENOENT) {
                snprintf(msg, sizeof msg, "VMI %s/%s does not exist", p->ns, p->vmi_name);
                pod_fail(p, msg);
                return;
        }
        AgentLaunch l;
        KvErr ke = {};
        json_t *pod = kube_informer_get(p->a->inf, p->ns, p->name);
        if (!pod) {
                pod_fail(p, "the pod is no longer in the API");
                return;
        }
        if (agent_launch_from(pod, vmi, &l, &ke) < 0) {
                pod_fail(p, ke.msg);
                return;
        }
        if (p->job && agent_vmi_pin_macs(vmi) < 0) {
                pod_fail(p, "out of memory");
                return;
        }
        _cleanup_free_ char *vmi_json = json_dump_compact(vmi);
        if (!vmi_json) {
                pod_fail(p, "out of memory");
                return;
        }
        NodePodSpec s = { .namespace_ = p->ns, .name = p->name, .uid = p->uid, .vmi_json = vmi_json,
                          .vm_namespace = l.vm_namespace, .vm_name = l.vm_name, .vm_interface = l.interface,
                          .binding = l.binding, .grace_seconds = l.grace_seconds, .nics = l.nics, .n_nics = l.n_nics,
                          .nic_pci = pod_nic_pci, .nic_pci_userdata = p,
                          .incoming = p->job != NULL /* a migration target waits for the guest */ };
        NodeErr ne = {};
        r = node_pod_spec_check(&s, &ne);
        if (r < 0) {
                node_err_format(&ne, r, msg, sizeof msg);
                node_err_done(&ne);
                pod_fail(p, msg);
                return;
        }
        char ts[32];
        (void) set_str(&p->start_time, kstatus_time(0, ts));
        log_info("pod %s/%s: starting VM %s/%s (%s binding)%s", p->ns, p->name, l.vm_namespace, l.vm_name,
                 node_pod_binding_to_string(l.binding), p->job ? " as a migration target" : "");
        pod_set_state(p, POD_STARTING);
        r = worker_start(p, run_fn, &s);
        if (r < 0) {
                snprintf(msg, sizeof msg, "cannot start a worker: %s", strerror(-r));
                pod_fail(p, msg);
        }
}

static void pod_fetch(Pod *p) {
        vmi_get(p, on_fetched);
}

/* ---------------------------------------------------------------- the VM's address after its last pod */

static Release *release_free(Release *rl) {
        for (Release **pp = &rl->a->releases; *pp; pp = &(*pp)->next)
                if (*pp == rl) {
                        *pp = rl->next;
                        break;
                }
        if (rl->op)
                kube_op_cancel(rl->op);
        free(rl->ns);
        free(rl->name);
        free(rl);
        return NULL;
}

static void on_release_vm(KubeClient *c, int r, json_t *vm, const KvErr *e, void *userdata) {
        Release *rl = userdata;
        (void) c;
        (void) vm;
        rl->op = NULL;
        if (r == -ENOENT) {
                /* no VM (a VMI of its own, or its VM deleted): nothing will run it again. Its claims in every
                 * network (the pod network's and the secondary networks') go. */
                _cleanup_json_ json_t *args = json_pack("{s:{s:s, s:s}}", "vm", "namespace", rl->ns, "name", rl->name);
                json_t *res = NULL;
                KvErr ke = {};
                r = args ? proto_call_path(rl->a->cfg->pod.netd_socket, "ipam-release", args, 5000, &res, &ke) : -ENOMEM;
                if (r < 0)
                        log_warning("VM %s/%s: cannot release its address claims: %s", rl->ns, rl->name,
                                    ke.msg[0] ? ke.msg : strerror(-r));
                else
                        log_info("VM %s/%s is gone: %zu address claim(s) released, %zu still attached", rl->ns, rl->name,
                                 json_array_size(json_object_get(res, "released")),
                                 json_array_size(json_object_get(res, "attached")));
                json_decref(res);
        } else if (r < 0)
                log_warning_errno(r, "VM %s/%s: cannot tell whether it still exists (its address stays claimed): %s",
                                  rl->ns, rl->name, e->msg);
        release_free(rl);
}

/* A pod deleted from the API was stopped: the VM's address claim in netd stays (the same IP after a restart or
 * a Halted VM started again) unless neither the VMI nor a VirtualMachine of that name exists any more. */
static void release_check(Pod *p) {
        Agent *a = p->a;
        const char *vmns = node_pod_vm_namespace(p->np), *vm = node_pod_vm_name(p->np);
        if (!vmns || !vm || vmi_cached(p))
                return; /* the VMI still exists (a migration's other pod, a failed target): not the VM's last pod */
        Release *rl = calloc(1, sizeof *rl);
        if (!rl)
                return;
        *rl = (Release){ .a = a, .next = a->releases, .ns = strdup(vmns), .name = strdup(vm) };
        a->releases = rl;
        if (!rl->ns || !rl->name) {
                release_free(rl);
                return;
        }
        KubeRequest req = { .verb = KUBE_GET, .ref = { VMI_GV, "virtualmachines", vmns, vm } };
        KvErr e = {};
        if (kube_request(a->kc, &req, on_release_vm, rl, &rl->op, &e) < 0) {
                log_warning("VM %s/%s: cannot look it up: %s", vmns, vm, e.msg);
                release_free(rl);
        }
}

/* ---------------------------------------------------------------- the informer */

static const char *md_str(json_t *obj, const char *key) {
        return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static void pod_gone(Pod *p);

static void on_pod(KubeInformer *inf, json_t *pod, bool added, void *userdata) {
        Agent *a = userdata;
        (void) inf;
        const char *uid = md_str(pod, "uid"), *ns = md_str(pod, "namespace"), *name = md_str(pod, "name");
        if (!uid || !ns || !name || !agent_pod_is_launcher(pod) || strlen(uid) > NODE_POD_UID_MAX)
                return;
        const char *vmi_name = agent_pod_vmi_name(pod);
        json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
        const char *vmi_uid = json_string_value(json_object_get(labels, AGENT_LABEL_CREATED_BY));
        const char *job = json_string_value(json_object_get(labels, AGENT_LABEL_MIGRATION_JOB));
        Pod *p = pod_find(a, uid);
        if (json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp")) {
                /* deleted gracefully (a real API server; the embedded one deletes at once) */
                if (!p) {
                        confirm_delete(a, ns, name); /* nothing of it runs here */
                } else if (!p->gone) {
                        log_info("pod %s/%s is being deleted", ns, name);
                        p->terminating = true;
                        pod_gone(p);
                }
                return;
        }
        if (p && !p->job && job && set_str(&p->job, job) < 0)
                return;
        if (p) {
                /* known (re-adopted at start, or ours): its status is written again when it is listed anew */
                if ((!p->vmi_name && set_str(&p->vmi_name, vmi_name) < 0) ||
                    (!p->vmi_uid && set_str(&p->vmi_uid, vmi_uid) < 0))
                        return;
                if (added) {
                        free(p->written);
                        p->written = NULL;
                }
                pod_sync(p);
                return;
        }
        if (agent_pod_finished(pod))
                return; /* it ran before and ended */
        p = pod_new(a, uid, ns, name, POD_FETCHING);
        if (!p || set_str(&p->vmi_name, vmi_name) < 0 || set_str(&p->vmi_uid, vmi_uid) < 0 || set_str(&p->job, job) < 0) {
                log_error("pod %s/%s: out of memory", ns, name);
                return;
        }
        if (!vmi_name || !vmi_uid) {
                pod_fail(p, "the launcher pod names no VMI (ownerReference or label " AGENT_LABEL_VM_NAME
                            ", and label " AGENT_LABEL_CREATED_BY ")");
                return;
        }
        pod_fetch(p);
}

static void on_added(KubeInformer *inf, json_t *obj, void *userdata) {
        on_pod(inf, obj, true, userdata);
}

static void on_updated(KubeInformer *inf, json_t *old, json_t *obj, void *userdata) {
        (void) old;
        on_pod(inf, obj, false, userdata);
}

static void pod_gone(Pod *p) {
        p->gone = true;
        switch (p->state) {
        case POD_FETCHING:
        case POD_DONE:
                pod_forget(p);
                break;
        case POD_RUNNING:
                p->stop_wanted = true;
                if (p->op) {
                        kube_op_cancel(p->op);
                        p->op = NULL;
                }
                if (!p->worker)
                        pod_stop(p);
                break;
        case POD_STARTING:
        case POD_STOPPING:
                break; /* on_worker() sees p->gone */
        }
}

static void on_deleted(KubeInformer *inf, json_t *obj, void *userdata) {
        Agent *a = userdata;
        (void) inf;
        const char *uid = md_str(obj, "uid");
        Pod *p = uid ? pod_find(a, uid) : NULL;
        if (p) {
                log_info("pod %s/%s was deleted", p->ns, p->name);
                pod_gone(p);
        }
}

static void on_synced(KubeInformer *inf, void *userdata) {
        Agent *a = userdata;
        log_info("pods of node %s listed: %zu", a->cfg->pod.node_name, kube_informer_count(inf));
        /* pods re-adopted at start that the API no longer has */
        for (Pod *p = a->pods, *next; p; p = next) {
                next = p->next;
                json_t *cur = kube_informer_get(inf, p->ns, p->name);
                if (!streq_ptr(md_str(cur, "uid"), p->uid)) {
                        log_info("pod %s/%s (%s) is no longer in the API", p->ns, p->name, p->uid);
                        pod_gone(p);
                }
        }
}

/* A VMI changed: its pods on this node look again (a migration's state drives their node's half). */
static void on_vmi_event(KubeInformer *inf, json_t *vmi, void *userdata) {
        Agent *a = userdata;
        (void) inf;
        const char *ns = md_str(vmi, "namespace"), *name = md_str(vmi, "name");
        for (Pod *p = a->pods, *next; p; p = next) {
                next = p->next;
                if (streq_ptr(p->ns, ns) && streq_ptr(p->vmi_name, name))
                        pod_sync(p);
        }
}

static void on_vmi_added(KubeInformer *inf, json_t *obj, void *userdata) {
        on_vmi_event(inf, obj, userdata);
}

static void on_vmi_updated(KubeInformer *inf, json_t *old, json_t *obj, void *userdata) {
        (void) old;
        on_vmi_event(inf, obj, userdata);
}

static void on_state(KubeInformer *inf, KubeInformerState s, int error, unsigned delay_ms, const KvErr *e,
                     void *userdata) {
        (void) inf;
        (void) userdata;
        if (error < 0)
                log_warning_errno(error, "pod watch: %s, retrying in %u ms: %s", kube_informer_state_to_string(s),
                                  delay_ms, e ? e->msg : "%m");
        else
                log_debug("pod watch: %s", kube_informer_state_to_string(s));
}

/* ---------------------------------------------------------------- the loop */

static int on_tick(EventSource *s, void *userdata) {
        Agent *a = userdata;
        size_t counts[ELEMENTSOF(pod_state_table)] = {};
        (void) s;
        for (Pod *p = a->pods, *next; p; p = next) {
                next = p->next;
                if (p->state == POD_FETCHING && !p->op)
                        pod_fetch(p);
                else
                        pod_sync(p);
        }
        for (Pod *p = a->pods; p; p = p->next)
                if ((size_t) p->state < ELEMENTSOF(counts))
                        counts[p->state]++;
        agent_metrics_pods(a->metrics, pod_state_table, counts, ELEMENTSOF(counts));
        return 0;
}

static char *render_metrics(void *userdata, const char **why) {
        Agent *a = userdata;
        char *text = agent_metrics_render(a->metrics, agent_events_stats(a->events));
        if (!text)
                *why = "out of memory";
        return text;
}

static int on_signal(EventSource *s, int signo, void *userdata) {
        (void) s;
        log_info("received signal %d: exiting, the pods keep running", signo);
        event_loop_exit(userdata, 0);
        return 0;
}

/* The pods the runtime already runs (a previous agent's): adopted as they are, nothing restarted. */
static int adopt(Agent *a) {
        NodePod **v = NULL;
        size_t n = 0, bad = 0;
        NodeErr e = {};
        int r = node_pod_list(a->rt, &v, &n, &bad, &e);
        if (r < 0) {
                char msg[1024];
                log_error("cannot list the node's pods: %s", node_err_format(&e, r, msg, sizeof msg));
                node_err_done(&e);
                return r;
        }
        if (bad)
                log_warning("%zu pod record(s) cannot be read", bad);
        for (size_t i = 0; i < n; i++) {
                Pod *p = pod_new(a, node_pod_uid(v[i]), node_pod_namespace(v[i]), node_pod_name(v[i]), POD_RUNNING);
                if (!p) {
                        node_pods_free(v, n);
                        return log_error_errno(-ENOMEM, "out of memory");
                }
                p->np = TAKE_PTR(v[i]);
                log_info("pod %s/%s (%s) re-adopted: launcher %s", p->ns, p->name, p->uid,
                         node_pod_launcher_alive(p->np) ? "running" : "gone");
        }
        node_pods_free(v, n);
        return 0;
}

/* What no pod holds any more (a pod whose start or stop was cut short by a crash): the node network's cached
 * attachments DELeted, CNI GC, the sandboxes of this node's prefix removed. Once at start, after the
 * re-adoption, as kubelet's garbage collection would; a failure is logged, the agent goes on. */
static void gc(Agent *a) {
        size_t deleted = 0, sandboxes = 0;
        NodeErr e = {};
        int r = node_pod_gc(a->rt, &deleted, &sandboxes, &e);
        if (r < 0) {
                char msg[1024];
                log_warning("node GC: %s", node_err_format(&e, r, msg, sizeof msg));
                node_err_done(&e);
        }
        if (deleted || sandboxes)
                log_notice("node GC: %zu attachment(s) and %zu sandbox(es) no pod holds removed", deleted, sandboxes);
}

int agent_run(const AgentConfig *c) {
        Agent a = { .cfg = c };
        KvErr e = {};
        NodeErr ne = {};
        char msg[1024];
        _cleanup_(kube_config_freep) KubeConfig *kcfg = NULL;
        int r = node_pod_runtime_new(&c->pod, &a.rt, &ne);
        if (r < 0) {
                log_error("pod runtime: %s", node_err_format(&ne, r, msg, sizeof msg));
                node_err_done(&ne);
                return r;
        }
        if ((r = event_loop_new(&a.loop)) < 0) {
                log_error_errno(r, "event loop: %m");
                goto out;
        }
        if ((r = kube_config_load(c->kubeconfig, &kcfg, &e)) < 0 ||
            (r = kube_client_new(kcfg, a.loop, &a.kc, &e)) < 0) {
                log_error("kubeconfig: %s", e.msg);
                goto out;
        }
        kube_client_set_rate_limit(a.kc, 50, 100);
        if ((r = agent_events_new(a.kc, c->pod.node_name, &a.events)) < 0 ||
            (r = agent_metrics_new(c->pod.node_name, &a.metrics)) < 0) {
                log_error_errno(r, "events: %m");
                goto out;
        }
        if (c->metrics_listen) {
                r = kv_metrics_server_new(c->metrics_listen, "--metrics-listen", false, render_metrics, &a, &a.msrv,
                                          &e);
                if (r < 0) {
                        log_error("%s", e.msg);
                        goto out;
                }
                log_info("serving metrics on http://%s/metrics", c->metrics_listen);
        }
        if ((r = adopt(&a)) < 0)
                goto out;
        gc(&a);
        char fsel[320];
        snprintf(fsel, sizeof fsel, "spec.nodeName=%s", c->pod.node_name);
        KubeRef ref = { "v1", "pods", NULL, NULL };
        KubeInformerOpts opts = { .field_selector = fsel, .label_selector = AGENT_LABEL_APP "=virt-launcher" };
        KubeInformerOps ops = { .added = on_added, .updated = on_updated, .deleted = on_deleted, .synced = on_synced,
                                .state = on_state };
        unsigned poll = c->poll_ms ? c->poll_ms : 1000;
        if ((r = kube_informer_new(a.kc, &ref, &opts, &ops, &a, &a.inf, &e)) < 0) {
                log_error("pod informer: %s", e.msg);
                goto out;
        }
        KubeRef vref = { VMI_GV, VMI_RESOURCE, NULL, NULL };
        KubeInformerOpts vopts = { 0 };
        KubeInformerOps vops = { .added = on_vmi_added, .updated = on_vmi_updated, .deleted = on_vmi_added,
                                 .state = on_state };
        if ((r = kube_informer_new(a.kc, &vref, &vopts, &vops, &a, &a.vmis, &e)) < 0) {
                log_error("VMI informer: %s", e.msg);
                goto out;
        }
        if ((r = event_add_timer(a.loop, poll * 1000ull, poll * 1000ull, on_tick, &a, &a.timer)) < 0 ||
            (r = event_add_signal(a.loop, SIGTERM, on_signal, a.loop, &a.sigs[0])) < 0 ||
            (r = event_add_signal(a.loop, SIGINT, on_signal, a.loop, &a.sigs[1])) < 0) {
                log_error_errno(r, "event loop: %m");
                goto out;
        }
        size_t adopted = 0;
        for (Pod *p = a.pods; p; p = p->next)
                adopted++;
        log_notice("node %s: watching its pods on %s (%zu re-adopted)", c->pod.node_name,
                   kube_client_config(a.kc)->server, adopted);
        r = event_loop_run(a.loop);
out:
        while (a.pods)
                pod_free(a.pods);
        while (a.releases)
                release_free(a.releases);
        for (size_t i = 0; i < ELEMENTSOF(a.sigs); i++)
                if (a.sigs[i])
                        event_source_free(a.sigs[i]);
        if (a.timer)
                event_source_free(a.timer);
        kube_informer_free(a.inf);
        kube_informer_free(a.vmis);
        kv_metrics_server_free(a.msrv); /* before what it reads */
        agent_events_free(a.events);
        agent_metrics_free(a.metrics);
        kube_client_free(a.kc);
        event_loop_free(a.loop);
        node_pod_runtime_free(a.rt);
        return r;
}
