/* SPDX-License-Identifier: Apache-2.0 */
/* The pod runtime (node/pod.h): run, stop, re-adopt launcher pods. Each step of a start is written to
 * the pod record before the next begins, so that a stop (this process's, or a restarted runtime's)
 * undoes exactly what exists: the teardown tolerates every part being already gone. */
#include <fcntl.h>
#include <jansson.h>
#include <net/if.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "common/netns.h"
#include "common/proto.h"
#include "common/unixsock.h"
#include "node/pod-priv.h"

extern char **environ;

#define DEFAULT_PREFIX "kvpod"
#define DEFAULT_START_TIMEOUT_MS (120u * 1000)
#define DEFAULT_GRACE_S 30
#define KILL_SLACK_MS 10000 /* after the grace period: the launcher destroys the domain itself first */
#define STATUS_MAX (256u * 1024)

/* ---------------------------------------------------------------- runtime */

size_t node_pod_socket_path_max(const char *state_dir) {
        return strlen(state_dir) + strlen("/pods/") + NODE_POD_UID_MAX + strlen("/launcher.sock");
}

NodePodRuntime *node_pod_runtime_free(NodePodRuntime *rt) {
        if (!rt)
                return NULL;
        free(rt->node_name);
        free(rt->node_netns);
        free(rt->conf_dir);
        free(rt->cache_dir);
        free(rt->netd_socket);
        free(rt->state_dir);
        free(rt->launcher);
        free(rt->libvirtd_starter);
        free(rt->sandbox_prefix);
        free(rt->image_dir);
        free(rt->mig_tls);
        free(rt->pods_dir);
        node_cni_runtime_free(rt->cni);
        free(rt);
        return NULL;
}

static int cfg_path(const char *field, const char *v, bool exec, char **dst, NodeErr *e) {
        if (!v || v[0] != '/')
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "node config: '%s' must be an absolute path, got '%.200s'",
                                    field, v ? v : "(null)");
        if (exec && access(v, X_OK) < 0)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, negative_errno(),
                                    "node config: '%s' must be an executable file, got '%.200s'", field, v);
        return (*dst = strdup(v)) ? 0 : -ENOMEM;
}

static bool node_name_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '-' || s[i] == '_' || s[i] == '.'))
                        return false;
        return true;
}

int node_pod_runtime_new(const NodePodConfig *c, NodePodRuntime **ret, NodeErr *e) {
        _cleanup_(node_pod_runtime_freep) NodePodRuntime *rt = calloc(1, sizeof *rt);
        if (!rt)
                return -ENOMEM;
        const char *name = c->node_name ? c->node_name : "node";
        if (!node_name_valid(name))
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL,
                                    "node config: 'nodeName' must be [A-Za-z0-9._-], 1..63, got '%.80s'", name);
        if (!(rt->node_name = strdup(name)))
                return -ENOMEM;
        int r;
        if ((r = cfg_path("nodeNetns", c->node_netns, false, &rt->node_netns, e)) < 0 ||
            (r = cfg_path("confDir", c->conf_dir, false, &rt->conf_dir, e)) < 0 ||
            (r = cfg_path("cacheDir", c->cache_dir, false, &rt->cache_dir, e)) < 0 ||
            (r = cfg_path("netdSocket", c->netd_socket, false, &rt->netd_socket, e)) < 0 ||
            (r = cfg_path("stateDir", c->state_dir, false, &rt->state_dir, e)) < 0 ||
            (r = cfg_path("launcher", c->launcher, true, &rt->launcher, e)) < 0 ||
            (r = cfg_path("libvirtdStarter", c->libvirtd_starter, true, &rt->libvirtd_starter, e)) < 0 ||
            (c->image_dir && (r = cfg_path("imageDir", c->image_dir, false, &rt->image_dir, e)) < 0) ||
            (c->migration_tls && (r = cfg_path("migrationTls", c->migration_tls, false, &rt->mig_tls, e)) < 0))
                return r;
        static const char *const tls_files[] = { "ca.pem", "node.pem", "node-key.pem" };
        for (size_t i = 0; rt->mig_tls && i < ELEMENTSOF(tls_files); i++) {
                _cleanup_free_ char *f = NULL;
                if (asprintf(&f, "%s/%s", rt->mig_tls, tls_files[i]) < 0)
                        return -ENOMEM;
                if (access(f, R_OK) < 0)
                        return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, negative_errno(),
                                            "node config: 'migrationTls': cannot read '%s' (the directory needs ca.pem, "
                                            "node.pem and node-key.pem)",
                                            f);
        }
        /* the pod's own sockets live in its directory: a state dir too deep for them is refused here, not
         * discovered later as a launcher that never answers */
        size_t need = node_pod_socket_path_max(rt->state_dir);
        if (need > UNIX_PATH_MAX_LEN)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -ENAMETOOLONG,
                                    "node config: state dir '%s' is too long: a pod's socket "
                                    "'%s/pods/<uid>/launcher.sock' would be up to %zu bytes, over the %zu of a unix "
                                    "socket path (use a state dir of at most %zu bytes)",
                                    rt->state_dir, rt->state_dir, need, (size_t) UNIX_PATH_MAX_LEN,
                                    strlen(rt->state_dir) - (need - UNIX_PATH_MAX_LEN));
        struct sockaddr_un sa;
        KvErr ke = { 0 };
        if ((r = unix_sockaddr("netd socket", rt->netd_socket, &sa, NULL, &ke)) < 0)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, r, "node config: %s", ke.msg);
        const char *prefix = c->sandbox_prefix ? c->sandbox_prefix : DEFAULT_PREFIX;
        /* node_sandbox_new's rule, checked before any pod starts */
        size_t pl = strlen(prefix);
        if (pl == 0 || pl > 24 || strspn(prefix, "abcdefghijklmnopqrstuvwxyz0123456789-") != pl)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL,
                                    "node config: 'sandboxPrefix' must be [a-z0-9-], 1..24 characters, got '%.40s'", prefix);
        if (!(rt->sandbox_prefix = strdup(prefix)))
                return -ENOMEM;
        rt->start_timeout_ms = c->start_timeout_ms ? c->start_timeout_ms : DEFAULT_START_TIMEOUT_MS;
        if (asprintf(&rt->pods_dir, "%s/pods", rt->state_dir) < 0) {
                rt->pods_dir = NULL;
                return -ENOMEM;
        }
        if ((r = mkdir_p(rt->pods_dir, 0700)) < 0)
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "node config: making '%s'", rt->pods_dir);
        if ((r = node_cni_runtime_new(c->cni_path, rt->cache_dir, &rt->cni, e)) < 0 ||
            (r = node_cni_runtime_set_netns(rt->cni, rt->node_netns, e)) < 0)
                return r;
        /* plugins get PATH and the sanitizers' options (a sanitizer build's plugin reads them), and the node's
         * netd socket for kvnet configs that name none (a NetworkAttachmentDefinition's: cluster-wide) */
        char *env[5];
        size_t n = 0;
        const char *keys[] = { "PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS" };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const char *v = getenv(keys[i]);
                if (v && asprintf(&env[n], "%s=%s", keys[i], v) >= 0)
                        n++;
        }
        if (rt->netd_socket && asprintf(&env[n], "KVNET_NETD_SOCKET=%s", rt->netd_socket) >= 0)
                n++;
        env[n] = NULL;
        r = node_cni_runtime_set_env(rt->cni, env);
        for (size_t i = 0; i < n; i++)
                free(env[i]);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(rt);
        return 0;
}

/* ---------------------------------------------------------------- accessors */

const char *node_pod_uid(const NodePod *p) { return p->uid; }
const char *node_pod_namespace(const NodePod *p) { return p->namespace_; }
const char *node_pod_name(const NodePod *p) { return p->name; }
const char *node_pod_dir(const NodePod *p) { return p->dir; }
const char *node_pod_sandbox_path(const NodePod *p) { return p->sandbox_path; }
const char *node_pod_libvirt_uri(const NodePod *p) { return p->libvirt_uri ? p->libvirt_uri : ""; }
const char *node_pod_ip4(const NodePod *p) { return p->ip4; }
const char *node_pod_ip6(const NodePod *p) { return p->ip6; }
const char *node_pod_mac(const NodePod *p) { return p->mac; }
const NodeCniResult *node_pod_cni_result(const NodePod *p) { return p->result; }
pid_t node_pod_launcher_pid(const NodePod *p) { return p->launcher.pid; }
pid_t node_pod_libvirtd_pid(const NodePod *p) { return p->libvirtd.pid; }
bool node_pod_launcher_alive(const NodePod *p) { return node_proc_alive(&p->launcher); }
bool node_pod_libvirtd_alive(const NodePod *p) { return node_proc_alive(&p->libvirtd); }
const char *node_pod_launcher_socket(const NodePod *p) { return p->launcher_socket; }
const char *node_pod_serial_log(const NodePod *p) { return p->serial_log; }
const char *node_pod_status_file(const NodePod *p) { return p->status_file; }
const char *node_pod_vm_namespace(const NodePod *p) { return p->vm_namespace; }
const char *node_pod_vm_name(const NodePod *p) { return p->vm_name; }
const char *node_pod_vm_interface(const NodePod *p) { return p->vm_interface; }
const NodePodNic *node_pod_nics(const NodePod *p, size_t *ret_n) {
        *ret_n = p->n_nics;
        return p->nics;
}
const char *node_pod_network(const NodePod *p) { return p->network; }

/* ---------------------------------------------------------------- the launcher's status */

static const char *const node_launcher_phase_table[_NODE_LAUNCHER_PHASE_MAX] = {
        [NODE_LAUNCHER_UNKNOWN] = "Unknown",
        [NODE_LAUNCHER_SCHEDULED] = "Scheduled",
        [NODE_LAUNCHER_RUNNING] = "Running",
        [NODE_LAUNCHER_WAITING_FOR_MIGRATION] = "WaitingForMigration",
        [NODE_LAUNCHER_SUCCEEDED] = "Succeeded",
        [NODE_LAUNCHER_FAILED] = "Failed",
        [NODE_LAUNCHER_MIGRATED] = "Migrated",
};

NODE_DEFINE_STRING_TABLE(node_launcher_phase, NodeLauncherPhase)

#define ST_ERR(e, fmt, ...) \
        node_err_set(e, NODE_ERR_LAUNCHER, NULL, NULL, -EBADMSG, "launcher status: " fmt, __VA_ARGS__)

/* An optional string field into buf ("" when null or missing). */
static int st_str(json_t *o, const char *ctx, const char *key, char *buf, size_t n, NodeErr *e) {
        json_t *v = json_object_get(o, key);
        buf[0] = '\0';
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return ST_ERR(e, "'%s%s' must be a string, got %s", ctx, key, json_type_name(v));
        snprintf(buf, n, "%s", json_string_value(v));
        return 0;
}

static int st_bool(json_t *o, const char *key, bool *ret, NodeErr *e) {
        json_t *v = json_object_get(o, key);
        if (!v) {
                *ret = false;
                return 0;
        }
        if (!json_is_boolean(v))
                return ST_ERR(e, "'%s' must be a boolean, got %s", key, json_type_name(v));
        *ret = json_is_true(v);
        return 0;
}

static int st_int(json_t *o, const char *ctx, const char *key, long long *ret, NodeErr *e) {
        json_t *v = json_object_get(o, key);
        *ret = -1;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v))
                return ST_ERR(e, "'%s%s' must be an integer, got %s", ctx, key, json_type_name(v));
        *ret = json_integer_value(v);
        return 0;
}

int node_launcher_status_parse(const char *text, size_t len, NodeLauncherStatus *ret, NodeErr *e) {
        json_error_t jerr;
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, &jerr);
        if (!json_is_object(o))
                return ST_ERR(e, "not a JSON object (%s)", o ? "wrong type" : jerr.text);
        NodeLauncherStatus s = { 0 };
        json_t *ph = json_object_get(o, "phase");
        if (!json_is_string(ph))
                return ST_ERR(e, "'phase' must be a string, got %s", ph ? json_type_name(ph) : "nothing");
        NodeLauncherPhase p = node_launcher_phase_from_string(json_string_value(ph));
        if (p < 0 || p == NODE_LAUNCHER_UNKNOWN)
                return ST_ERR(e, "'phase' is not a launcher phase, got '%.40s'", json_string_value(ph));
        s.phase = p;
        long long pid, dt, tt;
        int r;
        json_t *mig = json_object_get(o, "migration");
        if ((r = st_str(o, "", "reason", s.reason, sizeof s.reason, e)) < 0 ||
            (r = st_str(o, "", "accel", s.accel, sizeof s.accel, e)) < 0 ||
            (r = st_str(o, "", "domain", s.domain, sizeof s.domain, e)) < 0 ||
            (r = st_str(o, "", "startedAt", s.started_at, sizeof s.started_at, e)) < 0 ||
            (r = st_str(o, "", "finishedAt", s.finished_at, sizeof s.finished_at, e)) < 0 ||
            (r = st_int(o, "", "pid", &pid, e)) < 0 || (r = st_bool(o, "shuttingDown", &s.shutting_down, e)) < 0 ||
            (r = st_bool(o, "migratable", &s.migratable, e)) < 0)
                return r;
        if (pid > INT32_MAX)
                return ST_ERR(e, "'pid' out of range: %lld", pid);
        s.pid = pid > 0 ? (pid_t) pid : 0;
        s.downtime_ms = s.total_ms = -1;
        if (json_is_object(mig)) {
                if ((r = st_str(mig, "migration.", "state", s.migration_state, sizeof s.migration_state, e)) < 0 ||
                    (r = st_str(mig, "migration.", "role", s.migration_role, sizeof s.migration_role, e)) < 0 ||
                    (r = st_int(mig, "migration.", "downtimeMs", &dt, e)) < 0 ||
                    (r = st_int(mig, "migration.", "totalMs", &tt, e)) < 0)
                        return r;
                s.downtime_ms = dt;
                s.total_ms = tt;
        } else if (mig && !json_is_null(mig))
                return ST_ERR(e, "'migration' must be an object or null, got %s", json_type_name(mig));
        *ret = s;
        return 0;
}

static bool phase_live(NodeLauncherPhase p) {
        return p == NODE_LAUNCHER_SCHEDULED || p == NODE_LAUNCHER_RUNNING || p == NODE_LAUNCHER_WAITING_FOR_MIGRATION;
}

int node_pod_launcher_status(const NodePod *p, NodeLauncherStatus *ret, NodeErr *e) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(p->status_file, STATUS_MAX, &text, &len);
        if (r == -ENOENT) {
                *ret = (NodeLauncherStatus) { .phase = NODE_LAUNCHER_UNKNOWN, .downtime_ms = -1, .total_ms = -1 };
                if (p->launcher.pid > 0 && !node_proc_alive(&p->launcher)) {
                        ret->phase = NODE_LAUNCHER_FAILED;
                        snprintf(ret->reason, sizeof ret->reason, "launcher not running (no status written)");
                }
                return 0;
        }
        if (r < 0)
                return node_err_set(e, NODE_ERR_LAUNCHER, NULL, NULL, r, "reading '%s'", p->status_file);
        NodeLauncherStatus s;
        if ((r = node_launcher_status_parse(text, len, &s, e)) < 0)
                return r;
        if (phase_live(s.phase) && !node_proc_alive(&p->launcher)) {
                char was[64];
                snprintf(was, sizeof was, "%s", node_launcher_phase_to_string(s.phase));
                s.phase = NODE_LAUNCHER_FAILED;
                snprintf(s.reason, sizeof s.reason, "launcher not running (last phase %s)", was);
        }
        *ret = s;
        return 0;
}

int node_pod_launcher_query(const NodePod *p, NodeLauncherStatus *ret, NodeErr *e) {
        KvErr ke = { 0 };
        _cleanup_json_ json_t *res = NULL;
        int r = proto_call_path(p->launcher_socket, "status", NULL, 5000, &res, &ke);
        if (r < 0)
                return node_err_set(e, NODE_ERR_LAUNCHER, NULL, NULL, r, "pod %s/%s: launcher socket '%s': %s",
                                    p->namespace_, p->name, p->launcher_socket, ke.msg);
        _cleanup_free_ char *text = json_dump_compact(res);
        if (!text)
                return -ENOMEM;
        return node_launcher_status_parse(text, strlen(text), ret, e);
}

/* ---------------------------------------------------------------- the steps */

static int sandbox_step(NodePodRuntime *rt, NodePod *p, NodeErr *e) {
        _cleanup_(node_sandbox_freep) NodeSandbox *sb = NULL;
        int r = node_sandbox_new(rt->sandbox_prefix, &sb, e);
        if (r < 0)
                return r;
        snprintf(p->sandbox_name, sizeof p->sandbox_name, "%s", sb->name);
        p->sandbox_dev = (unsigned long long) sb->dev;
        p->sandbox_ino = (unsigned long long) sb->ino;
        free(p->sandbox_path);
        return (p->sandbox_path = strdup(sb->path)) ? 0 : -ENOMEM;
}

/* The CNI attachment of p; args must hold 4 entries. */
static void attachment(const NodePod *p, NodePodRef *ref, NodeCniArg args[4], NodeCniAttachment *a) {
        *ref = (NodePodRef) { .namespace_ = p->namespace_, .name = p->name, .uid = p->uid };
        args[0] = (NodeCniArg) { "KVNET_VM_NAMESPACE", p->vm_namespace };
        args[1] = (NodeCniArg) { "KVNET_VM_NAME", p->vm_name };
        args[2] = (NodeCniArg) { "KVNET_VM_INTERFACE", p->vm_interface };
        args[3] = (NodeCniArg) { "KVNET_VM_BINDING", node_pod_binding_to_string(p->binding) };
        *a = (NodeCniAttachment) {
                /* the sandbox is the pod's infra container: K8S_POD_INFRA_CONTAINER_ID and the cache key */
                .container_id = p->sandbox_name,
                .netns = p->sandbox_path,
                .ifname = p->ifname,
                .pod = ref,
                .args = args,
                .n_args = 4,
        };
}

/* The VMI's interface object named name (a VirtualMachine's template too), or NULL. */
static json_t *vmi_interface(json_t *vmi, const char *name) {
        json_t *spec = json_object_get(vmi, "spec");
        if (streq_ptr(json_string_value(json_object_get(vmi, "kind")), "VirtualMachine"))
                spec = json_object_get(json_object_get(spec, "template"), "spec");
        json_t *ifs = json_object_get(json_object_get(json_object_get(spec, "domain"), "devices"), "interfaces");
        size_t i;
        json_t *f;
        json_array_foreach(ifs, i, f)
                if (streq_ptr(json_string_value(json_object_get(f, "name")), name))
                        return f;
        return NULL;
}

/* CNI ADD. The guest's MAC is the pod interface's, as virt-launcher takes it: a macAddress the VMI
 * gives is asked of the plugins (capability "mac"); without one, the MAC the plugins chose is written
 * into the VMI the launcher gets. */
static int cni_add_step(NodePodRuntime *rt, NodePod *p, NodeCniNetwork *net, json_t *vmi, NodeErr *e) {
        NodePodRef ref;
        NodeCniArg args[4];
        NodeCniAttachment a;
        attachment(p, &ref, args, &a);
        json_t *iface = vmi_interface(vmi, p->vm_interface);
        const char *want = json_string_value(json_object_get(iface, "macAddress"));
        _cleanup_free_ char *mac_json = NULL;
        NodeCniArg cap;
        if (want) {
                _cleanup_json_ json_t *m = json_string(want);
                if (!m || !(mac_json = json_dumps(m, JSON_ENCODE_ANY | JSON_COMPACT)))
                        return -ENOMEM;
                cap = (NodeCniArg) { "mac", mac_json };
                a.caps = &cap;
                a.n_caps = 1;
        }
        _cleanup_(node_cni_result_freep) NodeCniResult *res = NULL;
        int r = node_cni_add(rt->cni, net, &a, NODE_CNI_ADD_ROLLBACK, &res, e);
        if (r < 0)
                return r;
        if (!(p->cni_result = strdup(res->raw)))
                return -ENOMEM;
        if ((r = node_pod_derive(p, rt->state_dir, e)) < 0)
                return r;
        if (iface && !want && p->mac[0] && json_object_set_new(iface, "macAddress", json_string(p->mac)) < 0)
                return -ENOMEM;
        return 0;
}

/* The network to DEL with: the conf dir's network of the recorded name, else the config the cache kept
 * (the conf dir may have changed since the ADD). -ENOENT when neither has it. */
static int del_network(NodePodRuntime *rt, const NodePod *p, NodeCniNetwork **ret) {
        int r = node_cni_network_load_dir(rt->conf_dir, p->network, ret, NULL);
        if (r >= 0)
                return r;
        _cleanup_(node_cni_cache_entry_freep) NodeCniCacheEntry *c = NULL;
        r = node_cni_cache_read(rt->cache_dir, p->network, p->sandbox_name, p->ifname, &c, NULL);
        if (r < 0)
                return r;
        if (!c->config)
                return -ENOENT;
        return node_cni_network_parse(c->config, c->n_config, "cached config", ret, NULL);
}

static int cni_del_step(NodePodRuntime *rt, NodePod *p, NodeErr *e) {
        if (!p->network || !p->sandbox_name[0])
                return 0;
        _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
        int r = del_network(rt, p, &net);
        if (r == -ENOENT && !p->cni_result)
                return 0; /* the ADD never got far enough to cache anything */
        if (r < 0)
                return node_err_set(e, NODE_ERR_CONFIG, NULL, "DEL", r,
                                    "pod %s/%s: network '%s' is neither in '%s' nor in the CNI cache", p->namespace_,
                                    p->name, p->network, rt->conf_dir);
        NodePodRef ref;
        NodeCniArg args[4];
        NodeCniAttachment a;
        attachment(p, &ref, args, &a);
        NodeErr de = { 0 };
        r = node_cni_del(rt->cni, net, &a, &de);
        /* a plugin that does not exist made nothing, unless an ADD through it succeeded */
        if (r < 0 && de.kind == NODE_ERR_PLUGIN_NOT_FOUND && !p->cni_result)
                r = 0;
        if (r < 0 && e && e->kind == NODE_ERR_NONE) {
                *e = de; /* takes de.output over */
                return r;
        }
        node_err_done(&de);
        return r;
}

/* A VF's PCI address for the launcher: from the pod's network-status through the caller's resolver. */
static int nic_pci(const NodePodSpec *s, const NodePod *p, const NodePodNic *n, char ret[static 16], NodeErr *e) {
        KvErr ke = {};
        if (!s->nic_pci)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EOPNOTSUPP,
                                    "pod %s/%s: NIC %s (%s) is an SR-IOV VF, and this runtime has no way to learn its PCI "
                                    "address (the pod's network-status)",
                                    p->namespace_, p->name, n->vm_interface, n->ifname);
        int r = s->nic_pci(s->nic_pci_userdata, n->ifname, ret, &ke);
        if (r < 0)
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, r, "pod %s/%s: NIC %s (%s): the VF's PCI address: %s",
                                    p->namespace_, p->name, n->vm_interface, n->ifname, ke.msg[0] ? ke.msg : "not found");
        return 0;
}

static int launcher_step(NodePodRuntime *rt, const NodePodSpec *s, NodePod *p, NodeErr *e) {
        _cleanup_free_ char *vmi = NULL, *nic = NULL, *state = NULL;
        char grace[16], itimeout[16], nics[NODE_POD_NICS_MAX][96];
        if (asprintf(&vmi, "%s/vmi.json", p->dir) < 0 || asprintf(&nic, "%s=tap:%s", p->vm_interface, p->ifname) < 0 ||
            asprintf(&state, "%s/state", p->dir) < 0)
                return -ENOMEM;
        char *argv[40 + 2 * NODE_POD_NICS_MAX];
        size_t n = 0;
        argv[n++] = rt->launcher;
        argv[n++] = (char *) "--run";
        argv[n++] = vmi;
        argv[n++] = (char *) "--connect";
        argv[n++] = p->libvirt_uri;
        argv[n++] = (char *) "--nic";
        argv[n++] = nic;
        for (size_t i = 0; i < p->n_nics && i < NODE_POD_NICS_MAX; i++) {
                char tap[16], pci[16];
                int q;
                if (p->nics[i].sriov) {
                        if ((q = nic_pci(s, p, &p->nics[i], pci, e)) < 0)
                                return q;
                        snprintf(nics[i], sizeof nics[i], "%s=pci:%s", p->nics[i].vm_interface, pci);
                } else {
                        if ((q = node_pod_nic_tap(p, p->nics[i].ifname, tap)) < 0)
                                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, q,
                                                    "pod %s/%s: looking for NIC %s's tap", p->namespace_, p->name,
                                                    p->nics[i].ifname);
                        snprintf(nics[i], sizeof nics[i], "%s=tap:%s", p->nics[i].vm_interface, tap);
                }
                argv[n++] = (char *) "--nic";
                argv[n++] = nics[i];
        }
        argv[n++] = (char *) "--migratable";
        argv[n++] = (char *) "--netd-socket";
        argv[n++] = rt->netd_socket;
        argv[n++] = (char *) "--state-dir";
        argv[n++] = state;
        argv[n++] = (char *) "--socket";
        argv[n++] = p->launcher_socket;
        argv[n++] = (char *) "--status-file";
        argv[n++] = p->status_file;
        argv[n++] = (char *) "--serial-log";
        argv[n++] = p->serial_log;
        if (rt->image_dir) {
                argv[n++] = (char *) "--image-dir";
                argv[n++] = rt->image_dir;
        }
        if (p->grace_seconds >= 0) {
                snprintf(grace, sizeof grace, "%d", p->grace_seconds);
                argv[n++] = (char *) "--grace";
                argv[n++] = grace;
        }
        if (p->incoming) {
                argv[n++] = (char *) "--incoming";
                if (p->incoming_timeout_s > 0) {
                        snprintf(itimeout, sizeof itimeout, "%u", p->incoming_timeout_s);
                        argv[n++] = (char *) "--incoming-timeout";
                        argv[n++] = itimeout;
                }
        }
        argv[n] = NULL;

        struct sockaddr_un sa;
        KvErr ke = { 0 };
        int r = unix_sockaddr("launcher socket", p->launcher_socket, &sa, NULL, &ke);
        if (r < 0)
                return node_err_set(e, NODE_ERR_LAUNCHER, NULL, NULL, r, "pod %s/%s: %s", p->namespace_, p->name, ke.msg);
        _cleanup_free_ char *log = NULL;
        if (asprintf(&log, "%s/launcher.log", p->dir) < 0)
                return -ENOMEM;
        r = node_spawn_in_netns(p->sandbox_path, log, argv, &p->launcher);
        if (r < 0)
                return node_err_set(e, NODE_ERR_LAUNCHER, NULL, NULL, r, "pod %s/%s: starting '%s' in sandbox '%s'",
                                    p->namespace_, p->name, rt->launcher, p->sandbox_path);
        return 0;
}

/* The last line of the launcher's log, for an error message. */
static void log_tail(const NodePod *p, char *buf, size_t n) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len;
        buf[0] = '\0';
        if (asprintf(&path, "%s/launcher.log", p->dir) < 0 || read_file_max(path, 1u << 20, &text, &len) < 0)
                return;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                text[--len] = '\0';
        const char *l = strrchr(text, '\n');
        snprintf(buf, n, "%s", l ? l + 1 : text);
}

static int wait_ready(NodePodRuntime *rt, NodePod *p, NodeErr *e) {
        NodeLauncherPhase want = p->incoming ? NODE_LAUNCHER_WAITING_FOR_MIGRATION : NODE_LAUNCHER_RUNNING;
        long long deadline = node_mono_ms() + rt->start_timeout_ms;
        for (;;) {
                NodeLauncherStatus s;
                NodeErr se = { 0 };
                int r = node_pod_launcher_status(p, &s, &se);
                node_err_done(&se); /* a status file being replaced is read again */
                if (r >= 0 && s.phase == want)
                        return 0;
                if (r >= 0 && !phase_live(s.phase) && s.phase != NODE_LAUNCHER_UNKNOWN) {
                        char tail[300];
                        log_tail(p, tail, sizeof tail);
                        return node_err_set(e, NODE_ERR_LAUNCHER, NULL, NULL, -EIO,
                                            "pod %s/%s: the launcher ended in phase %s: %s%s%s", p->namespace_, p->name,
                                            node_launcher_phase_to_string(s.phase), s.reason, tail[0] ? "; log: " : "",
                                            tail);
                }
                if (node_mono_ms() >= deadline)
                        return node_err_set(e, NODE_ERR_LAUNCHER, NULL, NULL, -ETIMEDOUT,
                                            "pod %s/%s: the launcher did not reach phase %s within %u ms", p->namespace_,
                                            p->name, node_launcher_phase_to_string(want), rt->start_timeout_ms);
                (void) usleep(50 * 1000);
        }
}

/* ---------------------------------------------------------------- teardown */

static unsigned grace_ms(const NodePod *p) {
        int g = p->grace_seconds;
        if (g < 0) {
                /* the VMI's, as the launcher reported it */
                _cleanup_free_ char *text = NULL;
                size_t len;
                g = DEFAULT_GRACE_S;
                if (read_file_max(p->status_file, STATUS_MAX, &text, &len) >= 0) {
                        json_error_t jerr;
                        _cleanup_json_ json_t *o = json_loadb(text, len, 0, &jerr);
                        json_t *v = json_object_get(o, "terminationGracePeriodSeconds");
                        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 86400)
                                g = (int) json_integer_value(v);
                }
        }
        return (unsigned) g * 1000u;
}

/* Every step runs; the first failure is returned (and named in e). */
static int teardown(NodePodRuntime *rt, NodePod *p, NodeErr *e) {
        int first = 0, r;
        /* 1. the launcher: SIGTERM = ACPI shutdown with its grace period; SIGKILL after it */
        if (node_proc_alive(&p->launcher)) {
                (void) node_proc_signal(&p->launcher, SIGTERM, false);
                if (node_proc_wait_gone(&p->launcher, grace_ms(p) + KILL_SLACK_MS) < 0) {
                        (void) node_proc_signal(&p->launcher, SIGKILL, true);
                        if (node_proc_wait_gone(&p->launcher, 5000) < 0 && first == 0)
                                first = node_err_set(e, NODE_ERR_LAUNCHER, NULL, NULL, -EBUSY,
                                                     "pod %s/%s: the launcher (pid %d) does not exit", p->namespace_,
                                                     p->name, (int) p->launcher.pid);
                }
        }
        (void) node_mig_proxies_reap(p);
        /* 2. CNI DEL (idempotent: an attachment already gone is fine) */
        if ((r = cni_del_step(rt, p, e)) < 0 && first == 0)
                first = r;
        /* 3. libvirtd (and the QEMU it ran) */
        if ((r = node_libvirtd_stop(rt, p, e)) < 0 && first == 0)
                first = r;
        /* 4. anything else still in the sandbox, then the sandbox */
        if (p->sandbox_name[0]) {
                for (int i = 0; i < 20 && node_netns_kill_all((dev_t) p->sandbox_dev, (ino_t) p->sandbox_ino, SIGKILL) > 0;
                     i++)
                        (void) usleep(50 * 1000);
                NodeSandbox sb = { .fd = -1, .dev = (dev_t) p->sandbox_dev, .ino = (ino_t) p->sandbox_ino };
                snprintf(sb.name, sizeof sb.name, "%s", p->sandbox_name);
                snprintf(sb.path, sizeof sb.path, "%s", p->sandbox_path);
                if ((r = node_sandbox_delete(&sb, e)) < 0 && first == 0)
                        first = r;
        }
        return first;
}

/* ---------------------------------------------------------------- the pod lock */

int node_pod_lock(const char *pods_dir, const char *uid, bool wait, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/.%s.lock", pods_dir, uid) < 0)
                return -ENOMEM;
        for (;;) {
                _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return negative_errno();
                if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                /* the holder before us may have removed the file: lock the one that is there now */
                struct stat a, b;
                if (fstat(fd, &a) < 0)
                        return negative_errno();
                if (stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
                        *ret_fd = TAKE_FD(fd);
                        return 0;
                }
        }
}

void node_pod_unlock_remove(const char *pods_dir, const char *uid, int fd) {
        _cleanup_free_ char *path = NULL;
        if (fd < 0)
                return;
        if (asprintf(&path, "%s/.%s.lock", pods_dir, uid) >= 0)
                (void) unlink(path);
        close(fd);
}

/* <pods_dir>/.sandboxes.lock: a start holds it shared from making its sandbox until its record names
 * it; GC's sweep holds it exclusively, so it never takes a sandbox that is about to be recorded. */
static int sandboxes_lock(const NodePodRuntime *rt, int op, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/.sandboxes.lock", rt->pods_dir) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        while (flock(fd, op) < 0)
                if (errno != EINTR)
                        return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* ---------------------------------------------------------------- run, stop, load */

static int write_vmi(const NodePod *p, json_t *vmi, NodeErr *e) {
        _cleanup_free_ char *path = NULL, *text = json_dumps(vmi, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!text || asprintf(&path, "%s/vmi.json", p->dir) < 0)
                return -ENOMEM;
        int r = write_file_atomic(path, text, strlen(text), false);
        return r < 0 ? node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "writing '%s'", path) : 0;
}

int node_pod_run(NodePodRuntime *rt, const NodePodSpec *s, NodePod **ret, NodeErr *e) {
        int r = node_pod_spec_check(s, e);
        if (r < 0)
                return r;
        /* the network first: a conf dir without a usable config fails before anything is made */
        _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
        r = node_cni_network_load_dir(rt->conf_dir, NULL, &net, e);
        if (r == -ENOENT)
                return node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, r, "no network config in '%s'", rt->conf_dir);
        if (r < 0)
                return r;
        json_error_t jerr;
        _cleanup_json_ json_t *vmi = json_loads(s->vmi_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!vmi)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "pod: 'vmi': %s", jerr.text);
        _cleanup_(node_pod_freep) NodePod *p = NULL;
        if ((r = node_pod_new(s, rt->node_name, rt->state_dir, &p)) < 0)
                return r;
        _cleanup_close_ int lock = -1;
        if ((r = node_pod_lock(rt->pods_dir, p->uid, false, &lock)) < 0)
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r == -EWOULDBLOCK ? -EBUSY : r,
                                    "pod %s/%s: uid %s is being started or stopped by another runtime process",
                                    p->namespace_, p->name, p->uid);
        if (mkdir(p->dir, 0700) < 0) {
                r = negative_errno();
                if (r == -EEXIST)
                        return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r,
                                            "pod %s/%s: uid %s already has a pod directory '%s'", p->namespace_, p->name,
                                            p->uid, p->dir);
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "making '%s'", p->dir);
        }
        if (!(p->network = strdup(net->name)))
                r = -ENOMEM;
        /* each step is recorded before the next one starts */
        if (r >= 0)
                r = node_pod_record_write(p, e);
        if (r >= 0) {
                int sl = -1;
                if ((r = sandboxes_lock(rt, LOCK_SH, &sl)) < 0)
                        r = node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "the sandboxes' lock in '%s'", rt->pods_dir);
                if (r >= 0 && (r = sandbox_step(rt, p, e)) >= 0)
                        r = node_pod_record_write(p, e);
                if (sl >= 0)
                        close(sl);
        }
        if (r >= 0) {
                r = cni_add_step(rt, p, net, vmi, e);
                if (r < 0 && !p->cni_result)
                        free(TAKE_PTR(p->network)); /* the failed ADD ran its own DEL (NODE_CNI_ADD_ROLLBACK) */
                else if (r >= 0)
                        r = node_pod_record_write(p, e);
        }
        if (r >= 0)
                r = write_vmi(p, vmi, e);
        if (r >= 0) {
                r = node_libvirtd_start(rt, p, e);
                int w = node_pod_record_write(p, e); /* a daemon that started is recorded even when a check failed */
                if (r >= 0)
                        r = w;
        }
        if (r >= 0) {
                r = launcher_step(rt, s, p, e);
                int w = node_pod_record_write(p, e);
                if (r >= 0)
                        r = w;
        }
        if (r >= 0)
                r = wait_ready(rt, p, e);
        if (r >= 0) {
                p->state = NODE_POD_RUNNING;
                r = node_pod_record_write(p, e);
        }
        if (r < 0) {
                /* undo what exists; the first error stays the one reported */
                NodeErr te = { 0 };
                p->state = NODE_POD_STOPPING;
                if (teardown(rt, p, &te) >= 0) {
                        IGNORE_RESULT(node_pod_dir_remove(p));
                        node_pod_unlock_remove(rt->pods_dir, p->uid, TAKE_FD(lock));
                } else
                        IGNORE_RESULT(node_pod_record_write(p, NULL));
                node_err_done(&te);
                return r;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

int node_pod_stop(NodePodRuntime *rt, NodePod *p, NodeErr *e) {
        _cleanup_close_ int lock = -1;
        int r = node_pod_lock(rt->pods_dir, p->uid, true, &lock);
        if (r < 0)
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "pod %s/%s: taking its lock in '%s'", p->namespace_,
                                    p->name, rt->pods_dir);
        /* another runtime process may have stopped it meanwhile: its record is gone then */
        _cleanup_free_ char *rec = NULL;
        if (asprintf(&rec, "%s/pod.json", p->dir) < 0)
                return -ENOMEM;
        if (access(rec, F_OK) < 0 && errno == ENOENT) {
                node_pod_unlock_remove(rt->pods_dir, p->uid, TAKE_FD(lock));
                return 0;
        }
        p->state = NODE_POD_STOPPING;
        if ((r = node_pod_record_write(p, e)) < 0)
                return r;
        r = teardown(rt, p, e);
        if (r < 0) {
                IGNORE_RESULT(node_pod_record_write(p, NULL));
                return r;
        }
        r = node_pod_dir_remove(p);
        if (r < 0)
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "removing the pod directory '%s'", p->dir);
        node_pod_unlock_remove(rt->pods_dir, p->uid, TAKE_FD(lock));
        return 0;
}

/* ---------------------------------------------------------------- a NIC's tap */

int node_pod_nic_tap(const NodePod *p, const char *ifname, char ret[static 16]) {
        char chained[16];
        snprintf(ret, 16, "%s", ifname);
        if ((size_t) snprintf(chained, sizeof chained, "tap-%s", ifname) >= sizeof chained || !p->sandbox_path ||
            !p->sandbox_path[0])
                return 0;
        _cleanup_close_ int fd = -1;
        NetnsGuard g;
        int r = netns_open(p->sandbox_path, &fd);
        if (r < 0 || (r = netns_enter(fd, &g)) < 0)
                return r;
        bool have = if_nametoindex(chained) > 0;
        r = netns_leave(&g);
        if (r < 0)
                return r;
        if (have)
                snprintf(ret, 16, "%s", chained);
        return 0;
}

/* ---------------------------------------------------------------- NIC hot-plug */

#define MULTUS_INTERFACE_ENV "KVNET_MULTUS_INTERFACE"

/* One network of the pod's meta plugin (kvnet-multus): command for pod interface ifname alone. */
static int nic_call(NodePodRuntime *rt, NodePod *p, const char *command, const char *ifname, NodeErr *e) {
        _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
        int r = del_network(rt, p, &net);
        if (r < 0)
                return node_err_set(e, NODE_ERR_CONFIG, NULL, command, r,
                                    "pod %s/%s: network '%s' is neither in '%s' nor in the CNI cache", p->namespace_,
                                    p->name, p->network ?: "", rt->conf_dir);
        NodePodRef ref;
        NodeCniArg args[4];
        NodeCniAttachment a;
        attachment(p, &ref, args, &a);
        _cleanup_free_ char *env0 = NULL;
        if (asprintf(&env0, MULTUS_INTERFACE_ENV "=%s", ifname) < 0)
                return -ENOMEM;
        char *env[] = { env0, NULL };
        _cleanup_(node_cni_result_freep) NodeCniResult *res = NULL;
        return node_cni_first_plugin_call(rt->cni, net, &a, command, env, &res, e);
}

/* Takes the pod's lock and checks that it runs (its record is there, state running). */
static int nic_begin(NodePodRuntime *rt, NodePod *p, int *ret_lock, NodeErr *e) {
        int r = node_pod_lock(rt->pods_dir, p->uid, true, ret_lock);
        if (r < 0)
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "pod %s/%s: taking its lock in '%s'", p->namespace_,
                                    p->name, rt->pods_dir);
        _cleanup_(node_pod_freep) NodePod *now = NULL;
        r = node_pod_record_read(rt->state_dir, p->uid, &now, NULL);
        if (r < 0 || now->state != NODE_POD_RUNNING || !p->sandbox_name[0])
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r < 0 ? r : -ESRCH, "pod %s/%s: not running",
                                    p->namespace_, p->name);
        return 0;
}

int node_pod_nic_attach(NodePodRuntime *rt, NodePod *p, const NodePodNic *nic, NodeErr *e) {
        _cleanup_close_ int lock = -1;
        int r = node_pod_nic_check(p, nic, e);
        if (r < 0 || (r = nic_begin(rt, p, &lock, e)) < 0)
                return r;
        /* an earlier attach may have got as far as the plugin, not the record: that goes first */
        NodeErr ignored = {};
        IGNORE_RESULT(nic_call(rt, p, "DEL", nic->ifname, &ignored));
        node_err_done(&ignored);
        if ((r = nic_call(rt, p, "ADD", nic->ifname, e)) < 0)
                return r;
        if ((r = node_pod_nic_append(p, nic)) >= 0 && (r = node_pod_record_write(p, e)) < 0)
                node_pod_nic_remove(p, p->n_nics - 1);
        if (r < 0)
                IGNORE_RESULT(nic_call(rt, p, "DEL", nic->ifname, NULL));
        return r;
}

int node_pod_nic_detach(NodePodRuntime *rt, NodePod *p, const char *vm_interface, NodeErr *e) {
        _cleanup_close_ int lock = -1;
        size_t i;
        for (i = 0; i < p->n_nics; i++)
                if (streq(p->nics[i].vm_interface, vm_interface))
                        break;
        if (i == p->n_nics)
                return 0; /* detached already */
        int r = nic_begin(rt, p, &lock, e);
        if (r < 0 || (r = nic_call(rt, p, "DEL", p->nics[i].ifname, e)) < 0)
                return r;
        node_pod_nic_remove(p, i);
        return node_pod_record_write(p, e);
}

int node_pod_load(NodePodRuntime *rt, const char *uid, NodePod **ret, NodeErr *e) {
        return node_pod_record_read(rt->state_dir, uid, ret, e);
}

static int cmp_pod(const void *a, const void *b) {
        return strcmp((*(NodePod *const *) a)->uid, (*(NodePod *const *) b)->uid);
}

int node_pod_list(NodePodRuntime *rt, NodePod ***ret, size_t *ret_n, size_t *ret_bad, NodeErr *e) {
        _cleanup_(closedirp) DIR *d = opendir(rt->pods_dir);
        if (!d)
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, negative_errno(), "reading '%s'", rt->pods_dir);
        NodePod **v = NULL;
        size_t n = 0, bad = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                NodePod *p = NULL;
                int r = node_pod_record_read(rt->state_dir, de->d_name, &p, NULL);
                if (r == -ENOMEM) {
                        node_pods_free(v, n);
                        return r;
                }
                if (r < 0) {
                        bad++;
                        continue;
                }
                NodePod **nv = realloc(v, (n + 1) * sizeof *nv);
                if (!nv) {
                        node_pod_free(p);
                        node_pods_free(v, n);
                        return -ENOMEM;
                }
                v = nv;
                v[n++] = p;
        }
        if (n > 1)
                qsort(v, n, sizeof *v, cmp_pod);
        *ret = v;
        *ret_n = n;
        if (ret_bad)
                *ret_bad = bad;
        return 0;
}

/* ---------------------------------------------------------------- GC */

static bool held(NodePod *const *pods, size_t n, const char *cid, const char *ifname) {
        for (size_t i = 0; i < n; i++)
                if (streq(pods[i]->sandbox_name, cid) && streq(pods[i]->ifname, ifname))
                        return true;
        return false;
}

/* The sandboxes of rt's prefix that no pod names and that are old enough; returns how many went. */
static int gc_sandboxes(NodePodRuntime *rt, int *first, NodeErr *e) {
        _cleanup_close_ int lock = -1;
        int r = sandboxes_lock(rt, LOCK_EX, &lock);
        if (r < 0) {
                if (*first == 0)
                        *first = node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "GC: the sandboxes' lock in '%s'", rt->pods_dir);
                return 0;
        }
        /* the pods as recorded now, under the lock */
        NodePod **pods = NULL;
        size_t n = 0;
        if ((r = node_pod_list(rt, &pods, &n, NULL, e)) < 0) {
                if (*first == 0)
                        *first = r;
                return 0;
        }
        _cleanup_(closedirp) DIR *d = opendir(NODE_NETNS_DIR);
        size_t pl = strlen(rt->sandbox_prefix);
        int gone = 0;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                const char *nm = de->d_name, *hex = nm + pl + 1;
                if (strncmp(nm, rt->sandbox_prefix, pl) != 0 || nm[pl] != '-' || strlen(hex) != 16 ||
                    strspn(hex, "0123456789abcdef") != 16 || strlen(nm) > NODE_SANDBOX_NAME_MAX)
                        continue;
                bool mine = false;
                for (size_t i = 0; i < n && !mine; i++)
                        mine = streq(pods[i]->sandbox_name, nm);
                NodeSandbox sb = { .fd = -1 };
                snprintf(sb.name, sizeof sb.name, "%.48s", nm); /* NODE_SANDBOX_NAME_MAX, checked above */
                snprintf(sb.path, sizeof sb.path, "%s/%.48s", NODE_NETNS_DIR, nm);
                struct stat st;
                if (mine || stat(sb.path, &st) < 0)
                        continue;
                sb.dev = st.st_dev;
                sb.ino = st.st_ino;
                for (int k = 0; k < 20 && node_netns_kill_all(sb.dev, sb.ino, SIGKILL) > 0; k++)
                        (void) usleep(50 * 1000);
                r = node_sandbox_delete(&sb, e);
                if (r < 0 && *first == 0)
                        *first = r;
                if (r >= 0)
                        gone++;
        }
        node_pods_free(pods, n);
        return gone;
}

int node_pod_gc(NodePodRuntime *rt, size_t *ret_deleted, size_t *ret_sandboxes, NodeErr *e) {
        _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
        int r = node_cni_network_load_dir(rt->conf_dir, NULL, &net, e);
        if (r < 0)
                return r == -ENOENT ? node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, r, "no network config in '%s'", rt->conf_dir)
                                    : r;
        NodePod **pods = NULL;
        size_t n = 0, deleted = 0;
        if ((r = node_pod_list(rt, &pods, &n, NULL, e)) < 0)
                return r;
        _cleanup_free_ char *json = NULL;
        _cleanup_free_ NodeCniGcAttachment *valid = calloc(n + 1, sizeof *valid);
        if (!valid || (r = node_cni_cache_attachments_json(rt->cache_dir, net->name, &json)) < 0) {
                node_pods_free(pods, n);
                return r < 0 ? r : -ENOMEM;
        }
        json_error_t jerr;
        _cleanup_json_ json_t *cached = json_loads(json, 0, &jerr);
        int first = 0;
        size_t i;
        json_t *v;
        json_array_foreach(cached, i, v) {
                const char *cid = json_string_value(json_object_get(v, "containerID"));
                const char *ifname = json_string_value(json_object_get(v, "ifname"));
                if (!cid || !ifname || held(pods, n, cid, ifname))
                        continue;
                _cleanup_(node_cni_cache_entry_freep) NodeCniCacheEntry *c = NULL;
                if (node_cni_cache_read(rt->cache_dir, net->name, cid, ifname, &c, NULL) < 0)
                        continue;
                /* no CNI_ARGS or capability args given: DEL takes the cached ones */
                NodeCniAttachment a = { .container_id = cid, .netns = c->netns ? c->netns : "", .ifname = ifname };
                r = node_cni_del(rt->cni, net, &a, e);
                if (r < 0 && first == 0)
                        first = r;
                if (r >= 0)
                        deleted++;
        }
        for (size_t k = 0; k < n; k++)
                valid[k] = (NodeCniGcAttachment) { .container_id = pods[k]->sandbox_name, .ifname = pods[k]->ifname };
        r = node_cni_gc(rt->cni, net, valid, n, NULL, e);
        if (r < 0 && first == 0)
                first = r;
        int sandboxes = gc_sandboxes(rt, &first, e);
        node_pods_free(pods, n);
        if (ret_deleted)
                *ret_deleted = deleted;
        if (ret_sandboxes)
                *ret_sandboxes = (size_t) sandboxes;
        return first;
}
