/* SPDX-License-Identifier: Apache-2.0 */
/* node/ internals shared by its files and reachable by tests/unit/test-node*.c. */
#pragma once

#include <jansson.h>

#include "node/node.h"

/* ---- small helpers */

/* Frees n strings and the array. */
static inline void node_strs_free(char **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

/* qsort() comparison of char * elements. */
static inline int node_strcmp_p(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* name##_to_string(type) and name##_from_string(const char *) -> type (-EINVAL when absent) over
 * 'static const char *const name##_table[]', indexed by the enum value (systemd's string tables). */
#define NODE_DEFINE_STRING_TABLE(name, type)                                                     \
        const char *name##_to_string(type i) {                                                   \
                return (size_t) i < ELEMENTSOF(name##_table) ? name##_table[i] : NULL;           \
        }                                                                                        \
        type name##_from_string(const char *s) {                                                 \
                for (size_t i = 0; s && i < ELEMENTSOF(name##_table); i++)                       \
                        if (name##_table[i] && streq(name##_table[i], s))                        \
                                return (type) i;                                                 \
                return (type) -EINVAL;                                                           \
        }

/* ---- proc.c */

/* In a forked child: into the network namespace ns_fd, with a private mount namespace and a sysfs of
 * that namespace on /sys (what `ip netns exec` does). */
int node_child_enter_netns(int ns_fd) _wur_;

/* ---- err.c */

/* Fills *e (if non-NULL and not yet set) and returns ret (a negative errno). */
int node_err_set(NodeErr *e, NodeErrKind kind, const char *plugin, const char *command, int ret, const char *fmt, ...)
        _printf_(6, 7);
/* Parses text as a JSON object for *ret; anything else is a `kind` error "<what>: not a JSON object: ...". */
int node_json_object(const char *text, size_t len, NodeErrKind kind, const char *what, json_t **ret, NodeErr *e) _wur_;
/* A plugin's error output: its error object's code, msg and details into e (kind NODE_ERR_PLUGIN);
 * output that is not an error object gives code -1 and the output as msg. Takes over nothing. */
int node_err_from_plugin(NodeErr *e, const char *plugin, const char *command, const char *output, int exit_status);

/* ---- cni-config.c */

/* A plugin type is a plain file name: [A-Za-z0-9._-], not "." or "..", at most NODE_CNI_TYPE_MAX. */
bool node_cni_type_valid(const char *type);

/* ---- cni-args.c */

/* The stdin of one plugin call: the plugin's conf with name and cniVersion injected, prevResult (raw
 * JSON, may be NULL), runtimeConfig = the caps the plugin declares, and extra_key = extra_json (GC's
 * valid attachments; may be NULL). */
int node_cni_stdin_build(const NodeCniNetwork *net, const NodeCniPlugin *p, const char *prev_result,
                         const NodeCniArg *caps, size_t n_caps, const char *extra_key, const char *extra_json, char **ret,
                         NodeErr *e) _wur_;
/* Checks container ID, ifname, netns, CNI_ARGS and capability args of an attachment before anything runs. */
int node_cni_attachment_check(const NodeCniAttachment *a, NodeErr *e) _wur_;

/* ---- cni-exec.c */

typedef struct NodeCniCall {
        const char *command;      /* ADD, DEL, CHECK, STATUS, GC, VERSION */
        const char *container_id; /* attachment commands only */
        const char *netns;
        const char *ifname;
        const char *args; /* CNI_ARGS */
} NodeCniCall;

/* The plugin binary: the first <dir>/<type> on the path that is a regular executable file. */
int node_cni_find_plugin(const NodeCniRuntime *rt, const char *type, char **ret, NodeErr *e) _wur_;
/* The environment of a call (NULL-terminated, owned strings). */
int node_cni_env_build(const NodeCniRuntime *rt, const NodeCniCall *c, char ***ret) _wur_;
void node_strv_free(char **v);
/* Runs bin with stdin; on exit status 0 *ret gets stdout (NUL-terminated). A non-zero exit fills e
 * from the plugin's error object and returns -EPROTO. */
int node_cni_exec(const NodeCniRuntime *rt, const char *bin, const char *type, const NodeCniCall *c, const char *stdin_data,
                  char **ret, NodeErr *e) _wur_;

/* ---- cni-cache.c */

typedef struct NodeCniCacheEntry {
        char *container_id;
        char *ifname;
        char *network;
        char *netns;
        char **arg_keys; /* cniArgs pairs */
        char **arg_values;
        size_t n_args;
        char **cap_keys; /* capabilityArgs, values as compact JSON */
        char **cap_values;
        size_t n_caps;
        char *result; /* raw result JSON */
        char *config; /* the config bytes (base64 in the file) */
        size_t n_config;
} NodeCniCacheEntry;

NodeCniCacheEntry *node_cni_cache_entry_free(NodeCniCacheEntry *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeCniCacheEntry *, node_cni_cache_entry_free);

/* <cache_dir>/results/<network>-<cid>-<ifname> */
int node_cni_cache_path(const char *cache_dir, const char *network, const char *cid, const char *ifname, char **ret) _wur_;
/* libcni's cniCacheV1 layout; keys in libcni's order. */
int node_cni_cache_encode(const NodeCniNetwork *net, const NodeCniAttachment *a, const char *result, char **ret,
                          NodeErr *e) _wur_;
int node_cni_cache_decode(const char *text, size_t len, NodeCniCacheEntry **ret, NodeErr *e) _wur_;
int node_cni_cache_write(const char *cache_dir, const NodeCniNetwork *net, const NodeCniAttachment *a, const char *result,
                         NodeErr *e) _wur_;
/* -ENOENT when there is no entry. */
int node_cni_cache_read(const char *cache_dir, const char *network, const char *cid, const char *ifname,
                        NodeCniCacheEntry **ret, NodeErr *e) _wur_;
int node_cni_cache_remove(const char *cache_dir, const char *network, const char *cid, const char *ifname) _wur_;
/* This network's cached attachments, as GC's valid-attachments JSON array. */
int node_cni_cache_attachments_json(const char *cache_dir, const char *network, char **ret) _wur_;

