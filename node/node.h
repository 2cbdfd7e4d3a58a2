/* SPDX-License-Identifier: Apache-2.0 */
/* node: the runtime core of the kubelet stand-in (see docs/node.md).
 *
 * No kubelet runs on kvnet's machines, so each node runs launcher pods itself: a sandbox network
 * namespace (sandbox.c), the node's CNI network config run with libcni's semantics (cni-*.c), then the
 * launcher. This library is that core, independent of the Kubernetes API. It is not kubelet: it knows
 * nothing of containers, images, volumes or probes.
 *
 * Errors: every fallible call returns >= 0 or -errno and, when given a NodeErr, fills it with a kind,
 * the plugin and command involved, the plugin's own error object (code, msg, details), and a message
 * that names the field and value. The library never logs. */
#pragma once

#include <sys/types.h>

#include "common/util.h"

/* ---------------------------------------------------------------- errors */

typedef enum NodeErrKind {
        NODE_ERR_NONE = 0,
        NODE_ERR_CONFIG,           /* the network configuration is invalid */
        NODE_ERR_ARGS,             /* a runtime argument is invalid (container ID, ifname, netns, CNI_ARGS, capability) */
        NODE_ERR_PLUGIN_NOT_FOUND, /* a plugin binary is not on the CNI path */
        NODE_ERR_EXEC,             /* the plugin could not be run, timed out, or wrote too much */
        NODE_ERR_PLUGIN,           /* the plugin failed: code/msg/details from its error object */
        NODE_ERR_RESULT,           /* the plugin's output is not a valid result */
        NODE_ERR_CACHE,            /* the result cache could not be read or written */
        NODE_ERR_SANDBOX,          /* a sandbox namespace operation failed */
        NODE_ERR_LIBVIRTD,         /* pod runtime: the pod's libvirtd did not start or stop */
        NODE_ERR_LAUNCHER,         /* pod runtime: the launcher could not start, exited, or did not get ready */
        NODE_ERR_RECORD,           /* pod runtime: the pod record or directory could not be read or written */
        NODE_ERR_PROXY,            /* pod runtime: a migration proxy could not be started */
        NODE_ERR_GATE,             /* the caller's start gate failed: the plugin was killed before it read its config */
        _NODE_ERR_KIND_MAX,
} NodeErrKind;

const char *node_err_kind_to_string(NodeErrKind k);

#define NODE_CNI_TYPE_MAX 64 /* longest plugin type accepted */

typedef struct NodeErr {
        NodeErrKind kind;
        char plugin[NODE_CNI_TYPE_MAX + 1]; /* plugin type, "" when none is involved */
        char command[8];                    /* "ADD", "DEL", ...; "" when none */
        long long code;                     /* the plugin's CNI error code; -1 when it gave none */
        int exit_status;                    /* the plugin's exit status (128+N: killed by signal N) */
        char msg[512];
        char details[512];
        char *output; /* a failing plugin's raw stdout, for diagnostics (owned) */
} NodeErr;

/* Frees e->output and resets *e to "no error". */
void node_err_done(NodeErr *e);
/* One line for a log or a status message: "msg: details; plugin output: … (kind)", or strerror(-r) when e
 * holds no error. Returns buf. */
const char *node_err_format(const NodeErr *e, int r, char *buf, size_t size);

/* ---------------------------------------------------------------- network configuration */

typedef struct NodeCniPlugin {
        char *type;          /* a file name on the CNI path, never a path */
        char **capabilities; /* the capabilities it declares as true */
        size_t n_capabilities, cap_capabilities;
        char *conf; /* the plugin's object as compact JSON (what it gets on stdin, before injection) */
} NodeCniPlugin;

typedef struct NodeCniNetwork {
        char *name;
        char *cni_version;
        bool disable_check;
        bool disable_gc;
        NodeCniPlugin *plugins;
        size_t n_plugins;
        char *bytes; /* the config as loaded (a single .conf wrapped as a list), for the cache */
        size_t n_bytes;
} NodeCniNetwork;

#define NODE_CNI_CONF_MAX (1u << 20) /* a config file larger than this is refused */
#define NODE_CNI_PLUGINS_MAX 32

/* Parses and validates one config (a list, or a single network config wrapped as a one-plugin list).
 * 'what' names the source in errors (a file name). */
int node_cni_network_parse(const char *text, size_t len, const char *what, NodeCniNetwork **ret, NodeErr *e) _wur_;
int node_cni_network_load_file(const char *path, NodeCniNetwork **ret, NodeErr *e) _wur_;
/* The network a CRI runtime would pick from dir: the lexically first *.conflist, *.conf or *.json
 * (name == NULL), or the one whose "name" is name. -ENOENT when there is none. */
int node_cni_network_load_dir(const char *dir, const char *name, NodeCniNetwork **ret, NodeErr *e) _wur_;
NodeCniNetwork *node_cni_network_free(NodeCniNetwork *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeCniNetwork *, node_cni_network_free);

/* ---------------------------------------------------------------- runtime */

typedef struct NodeCniRuntime {
        char **path; /* plugin directories, absolute */
        size_t n_path, cap_path;
        char *path_list; /* the same, ':'-joined: CNI_PATH */
        char *cache_dir; /* results under <cache_dir>/results/ */
        char **env;      /* extra "K=V" for plugins (PATH, ...); CNI_* never */
        size_t n_env;
        unsigned timeout_ms; /* per plugin call; default 60 s */
        size_t output_max;   /* stdout bytes accepted from a plugin; default 1 MiB */
        int stderr_fd;       /* where plugins' stderr goes; -1 (default) = /dev/null */
        char *exec_netns;    /* NULL, or the network namespace plugins run in (node_cni_runtime_set_netns) */
        /* NULL (default), or called at every plugin call after the plugin is started and before it gets its stdin
         * (the config it acts on), so that what the plugin must not run ahead of (the caller's crash record made
         * durable) overlaps its start (exec, loading). < 0: the plugin is killed before it read anything and the
         * call fails (NODE_ERR_GATE, that errno; a rolled-back ADD runs no DEL for it: it did nothing). */
        int (*start_gate)(void *userdata);
        void *start_gate_data;
} NodeCniRuntime;

/* path_list: "DIR:DIR..." (absolute directories; a missing one is skipped at lookup). Plugins get a
 * clean environment: CNI_* plus PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
 * or what node_cni_runtime_set_env() gives. */
int node_cni_runtime_new(const char *path_list, const char *cache_dir, NodeCniRuntime **ret, NodeErr *e) _wur_;
/* Replaces the plugins' extra environment by env (NULL-terminated "K=V"; CNI_* entries are dropped). */
int node_cni_runtime_set_env(NodeCniRuntime *rt, char *const *env) _wur_;
/* Plugins run inside the network namespace at path (setns in the child before exec, with a private
 * mount namespace and its own /sys, as `ip netns exec` does): the reference plugins make host-side
 * links in their current namespace. NULL: the caller's namespace (the default). The path is checked
 * to be a network namespace now and opened at every call. */
int node_cni_runtime_set_netns(NodeCniRuntime *rt, const char *path, NodeErr *e) _wur_;
NodeCniRuntime *node_cni_runtime_free(NodeCniRuntime *rt);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeCniRuntime *, node_cni_runtime_free);

/* ---------------------------------------------------------------- one attachment */

typedef struct NodeCniArg {
        const char *key;
        const char *value; /* CNI_ARGS: plain text; capability args: JSON text */
} NodeCniArg;

typedef struct NodePodRef {
        const char *namespace_;
        const char *name;
        const char *uid;
} NodePodRef;

/* libcni's RuntimeConf. All pointers are borrowed. */
typedef struct NodeCniAttachment {
        const char *container_id;
        const char *netns; /* path of the sandbox's network namespace */
        const char *ifname;
        const NodePodRef *pod;  /* when set, CNI_ARGS starts with IgnoreUnknown=1 and the K8S_POD_* keys */
        const NodeCniArg *args; /* more CNI_ARGS pairs */
        size_t n_args;
        const NodeCniArg *caps; /* capability args (runtimeConfig), values as JSON text */
        size_t n_caps;
        const char *prev_result; /* ADD: the first plugin's prevResult (a chain continuing a result it did not
                                  * make, as after Multus's passthru plugin); NULL: none, as usual */
} NodeCniAttachment;

/* The CNI_ARGS string for a: "IgnoreUnknown=1;K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;
 * K8S_POD_INFRA_CONTAINER_ID=…;K8S_POD_UID=…" (with a pod) then the extra pairs, ';'-joined.
 * Keys must be [A-Za-z0-9_.-]+; no value may hold ';'. */
int node_cni_args_build(const NodeCniAttachment *a, char **ret, NodeErr *e) _wur_;
/* Splits "K=V;K=V" (as users write CNI_ARGS) into pairs pointing into buf, which it modifies. */
int node_cni_args_split(char *buf, NodeCniArg **ret, size_t *ret_n, NodeErr *e) _wur_;

/* ---------------------------------------------------------------- results */

typedef struct NodeCniInterface {
        char *name;
        char *mac;     /* "" when not given */
        char *sandbox; /* "" for a host-side interface */
} NodeCniInterface;

typedef struct NodeCniIp {
        char *address; /* CIDR */
        char *gateway; /* "" when not given */
        int interface; /* index into interfaces; -1 when not given */
} NodeCniIp;

typedef struct NodeCniRoute {
        char *dst;
        char *gw; /* "" when not given */
} NodeCniRoute;

typedef struct NodeCniResult {
        char *cni_version;
        NodeCniInterface *interfaces;
        size_t n_interfaces;
        NodeCniIp *ips;
        size_t n_ips;
        NodeCniRoute *routes;
        size_t n_routes;
        char **dns_nameservers;
        size_t n_dns_nameservers;
        char *dns_domain; /* "" when not given */
        char **dns_search;
        size_t n_dns_search;
        char *raw; /* the result as the plugin wrote it: passed on as prevResult and cached */
} NodeCniResult;

int node_cni_result_parse(const char *text, size_t len, NodeCniResult **ret, NodeErr *e) _wur_;
NodeCniResult *node_cni_result_free(NodeCniResult *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeCniResult *, node_cni_result_free);

/* ---------------------------------------------------------------- operations */

enum {
        /* A failing ADD runs DEL (reverse order) for the plugins it reached, as container runtimes do
         * when sandbox network setup fails. */
        NODE_CNI_ADD_ROLLBACK = 1u << 0,
};

/* ADD in order (name, cniVersion, prevResult injected; runtimeConfig filtered to each plugin's
 * capabilities), then caches the result. All plugins are looked up before any runs. */
int node_cni_add(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniAttachment *a, unsigned flags,
                 NodeCniResult **ret, NodeErr *e) _wur_;
/* DEL in reverse with the cached result as prevResult (from 0.4.0) and the cached capability args when
 * a gives none; removes the cache entry. Nothing cached, nothing there: success. */
int node_cni_del(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniAttachment *a, NodeErr *e) _wur_;
/* The network's first plugin alone (a meta plugin: kvnet-multus), ADD or DEL, with more environment (extra_env:
 * NULL-terminated "K=V", never CNI_*): no prevResult, nothing read from or written to the cache. For the calls a
 * meta plugin defines on top of CNI, such as kvnet-multus's one network on a running pod (KVNET_MULTUS_INTERFACE).
 * *ret (ADD, optional): the result. */
int node_cni_first_plugin_call(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniAttachment *a,
                               const char *command, char *const *extra_env, NodeCniResult **ret, NodeErr *e) _wur_;
/* CHECK in order with the cached result; -ENOENT without one. disableCheck: 0 without running anything.
 * Before 0.4.0 the plugins are still asked (they answer with code 1), unlike libcni. */
int node_cni_check(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniAttachment *a, NodeErr *e) _wur_;

/* A VERSION reply. */
typedef struct NodeCniVersion {
        char *type;
        int error; /* < 0: the plugin did not answer (then reply is NULL) */
        char *reply; /* raw JSON */
        char *cni_version;
        char **supported;
        size_t n_supported;
} NodeCniVersion;

/* VERSION of every plugin, in order; a failing one gets error < 0 (and sets e) but does not stop the rest.
 * Returns the first failure or 0. *ret is set either way. */
int node_cni_version(const NodeCniRuntime *rt, const NodeCniNetwork *net, NodeCniVersion **ret, size_t *ret_n,
                     NodeErr *e) _wur_;
void node_cni_versions_free(NodeCniVersion *v, size_t n);
bool node_cni_version_supports(const NodeCniVersion *v, const char *version);
/* -1, 0, 1 comparing "a.b.c" versions. */
int node_cni_version_cmp(const char *a, const char *b);

typedef struct NodeCniGcAttachment {
        const char *container_id;
        const char *ifname;
} NodeCniGcAttachment;

/* STATUS / GC: only for lists of version >= 1.1.0 (else 0, nothing run), only to plugins whose VERSION
 * reply supports 1.1.0. ran (optional, n_plugins entries) tells which ran. GC's valid attachments are
 * valid[] or, when valid == NULL, this network's entries in the cache. disableGC: nothing runs. */
int node_cni_status(const NodeCniRuntime *rt, const NodeCniNetwork *net, bool *ran, NodeErr *e) _wur_;
int node_cni_gc(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniGcAttachment *valid, size_t n_valid,
                bool *ran, NodeErr *e) _wur_;

/* ---------------------------------------------------------------- sandboxes */

#define NODE_SANDBOX_NAME_MAX 48
#define NODE_NETNS_DIR "/run/netns"

typedef struct NodeSandbox {
        char name[NODE_SANDBOX_NAME_MAX + 1]; /* <prefix>-<16 hex> */
        char path[sizeof(NODE_NETNS_DIR) + NODE_SANDBOX_NAME_MAX + 1];
        int fd; /* the namespace, opened */
        dev_t dev;
        ino_t ino;
} NodeSandbox;

/* A new network namespace /run/netns/<prefix>-<random> (as `ip netns add` makes it), lo up, opened.
 * prefix: [a-z0-9-], 1..24 characters. The caller's own namespace is never changed. */
int node_sandbox_new(const char *prefix, NodeSandbox **ret, NodeErr *e) _wur_;
/* 0 when s->path still is the namespace s was made with; -ESTALE when it was replaced, -ENOENT when gone. */
int node_sandbox_verify(const NodeSandbox *s) _wur_;
/* Unmounts and unlinks the namespace (gone already: 0); refuses (-ESTALE) one that was replaced. */
int node_sandbox_delete(NodeSandbox *s, NodeErr *e) _wur_;
/* Closes the fd; does not delete the namespace. */
NodeSandbox *node_sandbox_free(NodeSandbox *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeSandbox *, node_sandbox_free);
