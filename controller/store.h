/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded controller's object store (docs/controller.md): the Kubernetes objects kvnet serves in
 * single-machine mode, with Kubernetes' semantics where kubectl relies on them — one resourceVersion
 * counter for the whole store, uid/creationTimestamp/generation set by the server, optimistic
 * concurrency on update, JSON merge patch (RFC 7386), and a bounded event log for watches (a watch from a
 * version older than the log gets 410 Gone and relists). Objects persist as one JSON file each under
 * STATE_DIR/objects/<plural>/<namespace>/<name>.json (written atomically), so a restart keeps them.
 *
 * Errors are negative errno values the API server maps to HTTP: -ENOENT 404 NotFound, -EEXIST 409
 * AlreadyExists, -EBUSY 409 Conflict (stale resourceVersion), -EINVAL 422 Invalid / 400 BadRequest, with the
 * message in the KvErr. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/kverr.h"

typedef struct CtlResource {
        const char *group; /* "" for the core group */
        const char *version;
        const char *kind;
        const char *list_kind;
        const char *plural;
        const char *singular;
        const char *short_names[3]; /* NULL-terminated */
        bool namespaced;
        bool category_all; /* listed by `kubectl get all` */
        /* Another version served for the same kind and store ("v1alpha3" for KubeVirt's kinds, as KubeVirt
         * still serves it), NULL for none. `version` stays the preferred and storage version: objects are
         * stored as it and rewritten to the version a request names on the way out. */
        const char *alt_version;
} CtlResource;

/* The resources the embedded API serves. */
extern const CtlResource ctl_resources[];
extern const size_t ctl_n_resources;
/* The resource of that plural served at group/version (its version or its alt_version). */
const CtlResource *ctl_resource_find(const char *group, const char *version, const char *plural);
bool ctl_resource_serves(const CtlResource *r, const char *version);
/* "kubevirt.io/v1alpha3", "v1": the apiVersion of res's objects at version (NULL: res->version). */
const char *ctl_api_version(const CtlResource *r, const char *version, char buf[static 128]);
/* How Kubernetes names the resource in messages: "pods", "virtualmachines.kubevirt.io". */
const char *ctl_resource_qname(const CtlResource *r, char buf[static 128]);

/* The value at a dotted path ("status.podIPs.0.ip": a number indexes an array), or NULL. */
json_t *ctl_json_path(json_t *obj, const char *path);
/* metadata.<key> of an object, when it is a string, else NULL. */
const char *ctl_md(json_t *obj, const char *key);
/* The uid of obj's controller (the ownerReference of that kind with controller: true) and, in *ret_name when
 * not NULL, its name; NULL when it has none. */
const char *ctl_controller_uid(json_t *obj, const char *kind, const char **ret_name);

/* Now as Kubernetes writes times: "2026-01-02T03:04:05Z". */
const char *ctl_now_rfc3339(char buf[static 32]);

typedef struct CtlStore CtlStore;
struct KubeEventRecorder;
struct CtlMetrics;

/* Called after every change (the event log has it already). */
typedef void (*ctl_store_notify_t)(void *userdata);
/* the API server's watches, the VM controller, the scheduler, the migration controller: 4, with room */
#define CTL_STORE_LISTENERS 8

int ctl_store_open(const char *state_dir, bool durable, CtlStore **ret, KvErr *e) _wur_;

/* Cluster mode (docs/controller.md): the store is a mirror of a real API server's objects, filled by its
 * informers through ctl_store_mirror(), and every write (create, update, patch, status, delete) is the API
 * server's: fn sends it and returns the server's object (*ret, new reference; for a delete the object as the
 * server answered, NULL when it answered a Status); its errors (-EBUSY for a stale resourceVersion, -EEXIST,
 * -ENOENT, ...) are the write's. Reads are the mirror's. Nothing is kept on disk. */
typedef enum CtlRemoteOp {
        CTL_REMOTE_CREATE,
        CTL_REMOTE_UPDATE,
        CTL_REMOTE_UPDATE_STATUS,
        CTL_REMOTE_DELETE,
        CTL_REMOTE_PATCH, /* body: the JSON merge patch */
} CtlRemoteOp;
typedef int (*ctl_remote_fn)(void *userdata, CtlRemoteOp op, const CtlResource *res, const char *ns, const char *name,
                             json_t *body, json_t **ret, KvErr *e);
int ctl_store_open_mirror(ctl_remote_fn fn, void *userdata, CtlStore **ret) _wur_;
/* What the API server's watch said: type ADDED, MODIFIED (both: the object as it is now; the same
 * resourceVersion as the mirror's changes nothing) or DELETED. obj is borrowed (kept by reference: do not change
 * it afterwards). -EINVAL without metadata.name (or namespace, for a namespaced resource). */
int ctl_store_mirror(CtlStore *s, const CtlResource *res, const char *type, json_t *obj) _wur_;
CtlStore *ctl_store_free(CtlStore *s);
/* The controllers' Event recorder (controller/events.c), owned by the store from now on (NULL: none; the one before
 * is freed). */
void ctl_store_set_recorder(CtlStore *s, struct KubeEventRecorder *r);
struct KubeEventRecorder *ctl_store_recorder(CtlStore *s);
/* The controllers' figures (controller/metrics.c), owned by the store from now on; set before anything reads it. */
void ctl_store_set_metrics(CtlStore *s, struct CtlMetrics *m);
struct CtlMetrics *ctl_store_metrics(CtlStore *s);
/* An Event written: created (body the Event) or merge-patched (count, lastTimestamp) — into the store, or in
 * cluster mode straight to the API server (the mirror keeps no Events). */
int ctl_store_post_event(CtlStore *s, const char *ns, const char *name, json_t *body, bool patch, KvErr *e) _wur_;
/* Up to CTL_STORE_LISTENERS listeners (-ENOSPC beyond); removal of one not added is a no-op. */
int ctl_store_add_notify(CtlStore *s, ctl_store_notify_t cb, void *userdata) _wur_;
void ctl_store_remove_notify(CtlStore *s, ctl_store_notify_t cb, void *userdata);
uint64_t ctl_store_rv(const CtlStore *s);
size_t ctl_store_count(const CtlStore *s);

/* Admission: fn sees every object about to be created in namespace ns (checked already, its name set, not
 * yet stored) and may refuse it with an error naming why (KubeVirt's admission webhooks: a VMIM for a VMI
 * that is missing or migrating already, ...); -EINVAL becomes 422 Invalid with the message. */
typedef int (*ctl_admit_fn)(CtlStore *s, const CtlResource *res, const char *ns, json_t *obj, KvErr *e);
void ctl_store_set_admission(CtlStore *s, ctl_admit_fn fn);

/* Kubernetes name rules: a DNS-1123 subdomain (names) or label (namespaces); the message names the field. */
int ctl_check_name(const char *field, const char *v, bool label, KvErr *e) _wur_;

/* obj is checked (apiVersion and kind of res, metadata.name, metadata.namespace = ns when given) and
 * copied; the stored object is returned in *ret (new reference). */
int ctl_store_create(CtlStore *s, const CtlResource *res, const char *ns, json_t *obj, json_t **ret, KvErr *e) _wur_;
int ctl_store_get(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t **ret) _wur_;
/* The stored object itself (a new reference, shared with the store: read it, never change it; a change of
 * the store replaces it rather than changing it), or NULL when there is none. For the controllers' passes,
 * which read far more than they write: no copy. */
json_t *ctl_store_ref(CtlStore *s, const CtlResource *res, const char *ns, const char *name);
/* Every object of res, all namespaces, as ctl_store_ref() gives them: an array (new reference; NULL when out
 * of memory) of the stored objects themselves, read-only. */
json_t *ctl_store_items(CtlStore *s, const CtlResource *res);
/* A List object of res in ns (NULL: all namespaces), optionally only the object named name. */
json_t *ctl_store_list(CtlStore *s, const CtlResource *res, const char *ns, const char *name);
/* Replaces the object (PUT). A metadata.resourceVersion in obj must be the stored one (-EBUSY). */
int ctl_store_update(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *obj,
                     json_t **ret, KvErr *e) _wur_;
/* JSON merge patch (RFC 7386) of the stored object, then as update. */
int ctl_store_patch(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *patch,
                    json_t **ret, KvErr *e) _wur_;
/* The controller's own write of an object's status (what the status subresource is in Kubernetes): 0 and no
 * new resourceVersion when it is unchanged. */
int ctl_store_set_status(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *status,
                         KvErr *e) _wur_;
/* As ctl_store_set_status(), and metadata.labels, .annotations and .finalizers from meta (NULL: unchanged;
 * each left out of meta is removed): what a pod's status subresource takes, as kube-apiserver's pod status
 * strategy keeps everything of the new object but its spec, ownerReferences and deletionTimestamp (Multus
 * writes k8s.v1.cni.cncf.io/network-status through it). */
int ctl_store_set_status_meta(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *status,
                              json_t *meta, KvErr *e) _wur_;
int ctl_store_delete(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t **ret,
                     KvErr *e) _wur_;

/* Watch: calls cb for every event after resourceVersion `since` on res (ns NULL = all, name NULL = any)
 * and returns the newest resourceVersion seen; -ESTALE when `since` is older than the event log. */
typedef int (*ctl_event_cb)(const char *type, json_t *obj, void *userdata);
int ctl_store_events(CtlStore *s, const CtlResource *res, const char *ns, const char *name, uint64_t since,
                     ctl_event_cb cb, void *userdata, uint64_t *ret_rv) _wur_;

/* RFC 7386: the result of applying patch to target (new reference; target is not changed). */
json_t *ctl_merge_patch(json_t *target, json_t *patch);
/* RFC 6902 (JSON pointers per RFC 6901): the result of applying the operations to target, all or nothing
 * (new reference; target is not changed); NULL with e naming the operation and the path on failure. */
json_t *ctl_json_patch(json_t *target, json_t *ops, KvErr *e);
/* A JSON patch of the stored object, then as update. */
int ctl_store_json_patch(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *ops,
                         json_t **ret, KvErr *e) _wur_;
