/* SPDX-License-Identifier: Apache-2.0 */
/* kube: the Kubernetes client every kvnet component uses (docs/kube-client.md).
 *
 *   config    a kubeconfig file (YAML or JSON) or the in-cluster service account → KubeConfig
 *   client    libcurl's multi interface driven by kvnet's epoll loop (common/event.h): requests
 *             with completion callbacks, nothing blocks the loop; kube_request_sync() for CLIs/tests
 *   requests  get, list (selectors, pagination followed), create, update (409 Conflict is -EBUSY),
 *             merge patch, status update/patch, delete (propagation, grace), by (group/version,
 *             resource, namespace, name); the API's Status (message, reason) lands in the KvErr
 *   watch     ?watch=1 streams parsed line by line into typed events
 *   informer  list + watch with relist on 410, reconnect with exponential backoff and jitter, a local
 *             cache by namespace/name, add/update/delete callbacks, synced after the first list
 *   leader    leader election on a coordination.k8s.io/v1 Lease (kube/lease.c)
 *
 * Errors: negative errno and a KvErr naming what failed. HTTP statuses map to errno: 400/422 -EINVAL,
 * 401 -EACCES, 403 -EPERM, 404 -ENOENT, 405 -EOPNOTSUPP, 409 AlreadyExists -EEXIST, 409 Conflict -EBUSY
 * (stale resourceVersion: re-read and retry), 410 -ESTALE, 413 -EFBIG, 429 -EAGAIN, 5xx -EIO; the
 * KvErr's msg carries the server's message, its details the Status reason ("Conflict", "NotFound"). A
 * transport failure is -ECONNREFUSED, -ETIMEDOUT, -EKEYREJECTED (TLS verification) or -EIO. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/event.h"
#include "common/kverr.h"
#include "common/util.h"

/* ---- configuration */

typedef struct KubeConfig {
        char *source;       /* the kubeconfig path, or "in-cluster" */
        char *context;      /* the context used (NULL in-cluster) */
        char *server;       /* "https://10.0.0.1:6443", no trailing slash */
        bool insecure;      /* insecure-skip-tls-verify: no verification of the server (never the default) */
        char *ca_file;      /* certificate-authority (absolute path) */
        char *ca_data;      /* certificate-authority-data (PEM, decoded) */
        size_t ca_data_len;
        char *cert_file, *key_file; /* client-certificate / client-key */
        char *cert_data, *key_data; /* client-certificate-data / client-key-data (PEM, decoded) */
        size_t cert_data_len, key_data_len;
        char *token;        /* bearer token (token, or read from tokenFile) */
        char *token_file;   /* tokenFile / the service account's token: the client reads it again every minute
                             * (bound tokens rotate) */
        char *username, *password;
        char *namespace;    /* the context's namespace, else "default" */
} KubeConfig;

/* A kubeconfig file; context NULL = its current-context. Relative paths are relative to the file's
 * folder. A missing or ill-typed field is an error naming it and the file. */
int kube_config_from_file(const char *path, const char *context, KubeConfig **ret, KvErr *e) _wur_;
/* The pod's service account: $KUBERNETES_SERVICE_HOST/_PORT and <root>/var/run/secrets/kubernetes.io/
 * serviceaccount/{token,ca.crt,namespace}; root NULL = "/". */
int kube_config_in_cluster(const char *root, KubeConfig **ret, KvErr *e) _wur_;
/* path if given, else $KUBECONFIG, else in-cluster when $KUBERNETES_SERVICE_HOST is set, else
 * ~/.kube/config. */
int kube_config_load(const char *path, KubeConfig **ret, KvErr *e) _wur_;
KubeConfig *kube_config_free(KubeConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(KubeConfig *, kube_config_free);

/* ---- client */

typedef struct KubeClient KubeClient;

/* loop may be NULL for a client used only through kube_request_sync(). The config is copied. */
int kube_client_new(const KubeConfig *cfg, EventLoop *loop, KubeClient **ret, KvErr *e) _wur_;
/* Cancels every request still in flight (their callbacks are not called). Free the client's watches and
 * informers before it, and the client before its loop. */
KubeClient *kube_client_free(KubeClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(KubeClient *, kube_client_free);
/* Client-side token bucket for every request and watch start: qps tokens a second, at most burst
 * saved (defaults 5 and 10, as client-go); qps <= 0 disables it. */
void kube_client_set_rate_limit(KubeClient *c, double qps, unsigned burst);
/* Per-request timeout, 0 = none (default 30 s; watches have none). */
void kube_client_set_timeout(KubeClient *c, unsigned msec);
const KubeConfig *kube_client_config(const KubeClient *c);

/* ---- requests */

typedef enum KubeVerb {
        KUBE_GET,
        KUBE_LIST,          /* follows metadata.continue: the result is one List with every item */
        KUBE_CREATE,        /* POST body to the collection */
        KUBE_UPDATE,        /* PUT body (with its metadata.resourceVersion: -EBUSY if stale) */
        KUBE_PATCH,         /* merge patch (application/merge-patch+json) */
        KUBE_UPDATE_STATUS, /* PUT .../status */
        KUBE_PATCH_STATUS,  /* merge patch of .../status */
        KUBE_DELETE,
        _KUBE_VERB_MAX,
} KubeVerb;

const char *kube_verb_to_string(KubeVerb v);

/* What a request names: group_version "v1" (core) or "kubevirt.io/v1"; resource the plural;
 * namespace NULL for a cluster-scoped resource or a list across namespaces; name NULL for a
 * collection. */
typedef struct KubeRef {
        const char *group_version;
        const char *resource;
        const char *namespace;
        const char *name;
} KubeRef;

typedef struct KubeRequest {
        KubeVerb verb;
        KubeRef ref;
        json_t *body;                /* create/update/patch; delete: DeleteOptions (optional). Borrowed */
        const char *label_selector;  /* list */
        const char *field_selector;  /* list */
        unsigned limit;              /* list: page size, 0 = the server's choice */
        const char *propagation;     /* delete: "Foreground", "Background", "Orphan", or NULL */
        bool set_grace;              /* delete: send gracePeriodSeconds (else the object's default) */
        unsigned grace_seconds;      /* delete: with set_grace; 0 = now */
} KubeRequest;

/* r >= 0: obj is the response (borrowed: json_incref() to keep it). r < 0: obj is NULL, e says why. */
typedef void (*kube_done_t)(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata);

typedef struct KubeOp KubeOp;

/* Starts a request on the client's loop; done is called once from the loop (never from within this
 * call). *ret_op (optional, borrowed until done runs) can cancel it. */
int kube_request(KubeClient *c, const KubeRequest *req, kube_done_t done, void *userdata, KubeOp **ret_op,
                 KvErr *e) _wur_;
/* Cancels a request whose callback has not run yet; its callback is not called. */
void kube_op_cancel(KubeOp *op);
/* Runs the request to its end (blocks); *ret (optional) gets the response. The blocking requests of a client share
 * a multi handle of their own, so that the connection to the API stays open between them (HTTP keep-alive). */
int kube_request_sync(KubeClient *c, const KubeRequest *req, json_t **ret, KvErr *e) _wur_;
/* n requests at once (blocks until every one has ended; their transfers run concurrently). rs[i]: the result of
 * reqs[i]; rets (optional) [i] its response when rs[i] >= 0; errs (optional) [i] why when rs[i] < 0. Returns
 * -ENOMEM when nothing could be started, else 0. */
int kube_request_sync_many(KubeClient *c, const KubeRequest *reqs, size_t n, json_t **rets, int *rs, KvErr *errs) _wur_;

/* ---- watch */

typedef enum KubeEventType {
        KUBE_EVENT_ADDED,
        KUBE_EVENT_MODIFIED,
        KUBE_EVENT_DELETED,
        KUBE_EVENT_BOOKMARK,
        KUBE_EVENT_ERROR, /* object is a Status */
        _KUBE_EVENT_MAX,
} KubeEventType;

const char *kube_event_type_to_string(KubeEventType t);

typedef struct KubeWatch KubeWatch;

typedef struct KubeWatchOpts {
        const char *label_selector, *field_selector;
        const char *resource_version; /* where to start; NULL/"" = now (the current objects as ADDED) */
        bool bookmarks;               /* allowWatchBookmarks=true */
} KubeWatchOpts;

/* obj borrowed. */
typedef void (*kube_event_t)(KubeWatch *w, KubeEventType type, json_t *obj, void *userdata);
/* The stream ended: r = 0 when the server closed it, else why (the HTTP status as errno, -ESTALE for
 * 410, a transport error). The watch is dead then: kube_watch_free() it (from the callback too). */
typedef void (*kube_watch_end_t)(KubeWatch *w, int r, const KvErr *e, void *userdata);

/* ref.name set watches one object (fieldSelector metadata.name). */
int kube_watch_start(KubeClient *c, const KubeRef *ref, const KubeWatchOpts *opts, kube_event_t on_event,
                     kube_watch_end_t on_end, void *userdata, KubeWatch **ret, KvErr *e) _wur_;
KubeWatch *kube_watch_free(KubeWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(KubeWatch *, kube_watch_free);

/* ---- informer */

typedef struct KubeInformer KubeInformer;

/* What happened to the informer's connection, for the caller to log. */
typedef enum KubeInformerState {
        KUBE_INFORMER_LISTED,       /* a (re)list finished; the cache matches it */
        KUBE_INFORMER_WATCHING,     /* a watch started from the cache's resourceVersion */
        KUBE_INFORMER_EXPIRED,      /* 410: the resourceVersion is too old, relisting */
        KUBE_INFORMER_DISCONNECTED, /* list or watch failed (error); retry after delay_ms */
        _KUBE_INFORMER_STATE_MAX,
} KubeInformerState;

const char *kube_informer_state_to_string(KubeInformerState s);

typedef struct KubeInformerOps {
        /* old is the cached object before the change (borrowed), obj the new one (borrowed). */
        void (*added)(KubeInformer *inf, json_t *obj, void *userdata);
        void (*updated)(KubeInformer *inf, json_t *old, json_t *obj, void *userdata);
        void (*deleted)(KubeInformer *inf, json_t *obj, void *userdata);
        /* optional: once, after the first list has been applied */
        void (*synced)(KubeInformer *inf, void *userdata);
        /* optional: error < 0 with DISCONNECTED/EXPIRED; e may be NULL */
        void (*state)(KubeInformer *inf, KubeInformerState s, int error, unsigned delay_ms, const KvErr *e,
                      void *userdata);
} KubeInformerOps;

typedef struct KubeInformerOpts {
        const char *label_selector, *field_selector;
        unsigned page_size;         /* list limit, 0 = none */
        unsigned backoff_min_ms;    /* first retry delay (default 250) */
        unsigned backoff_max_ms;    /* cap (default 30000) */
} KubeInformerOpts;

/* Lists and watches ref (its name must be NULL; namespace NULL = all) on the client's loop. Its callbacks
 * may start requests but must not free the informer itself. */
int kube_informer_new(KubeClient *c, const KubeRef *ref, const KubeInformerOpts *opts, const KubeInformerOps *ops,
                      void *userdata, KubeInformer **ret, KvErr *e) _wur_;
KubeInformer *kube_informer_free(KubeInformer *inf);
DEFINE_TRIVIAL_CLEANUP_FUNC(KubeInformer *, kube_informer_free);
bool kube_informer_synced(const KubeInformer *inf);
/* The cached object (borrowed), or NULL; ns NULL for cluster-scoped objects. */
json_t *kube_informer_get(const KubeInformer *inf, const char *ns, const char *name);
size_t kube_informer_count(const KubeInformer *inf);
/* The resourceVersion the informer is at ("" before the first list). */
const char *kube_informer_resource_version(const KubeInformer *inf);
/* Calls cb for every cached object (in no particular order); a cb < 0 stops and is returned. */
int kube_informer_foreach(const KubeInformer *inf, int (*cb)(json_t *obj, void *userdata), void *userdata);

/* ---- leader election (kube/lease.c): a coordination.k8s.io/v1 Lease, client-go's rules */

typedef struct KubeLeader KubeLeader;

typedef struct KubeLeaderConfig {
        const char *namespace, *name; /* the Lease */
        const char *identity;         /* this candidate (1..253 characters; e.g. pod name + a random suffix) */
        unsigned lease_ms;            /* leaseDurationSeconds × 1000 (default 15000; whole seconds) */
        unsigned renew_deadline_ms;   /* a leader that could not renew this long stops leading (default 10000) */
        unsigned retry_ms;            /* how often candidates try and the leader renews (default 2000) */
} KubeLeaderConfig;

typedef struct KubeLeaderOps {
        void (*started)(void *userdata);  /* this candidate leads now */
        void (*stopped)(void *userdata);  /* it does not any more (renewal failed past the deadline, taken, released):
                                           * stop acting as the leader at once (client-go's callers exit) */
        void (*new_leader)(const char *identity, void *userdata); /* optional: the holder seen changed ("" none) */
} KubeLeaderOps;

/* Starts campaigning on the client's loop (needs one). A candidate takes a held lease only after seeing it
 * unchanged for lease_ms of its own clock; every write carries the resourceVersion it read, so the API server
 * lets one of two racing candidates win. Errors name the field. */
int kube_leader_new(KubeClient *c, const KubeLeaderConfig *cfg, const KubeLeaderOps *ops, void *userdata,
                    KubeLeader **ret, KvErr *e) _wur_;
bool kube_leader_is_leader(const KubeLeader *l);
/* The holder last seen ("" none or not yet known). */
const char *kube_leader_holder(const KubeLeader *l);
/* Stops campaigning; a leader gives the lease back (holderIdentity "", blocking request) so that the next one
 * need not wait out the duration. The stopped callback is not called (the caller is stopping). */
int kube_leader_release(KubeLeader *l, KvErr *e) _wur_;
KubeLeader *kube_leader_free(KubeLeader *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(KubeLeader *, kube_leader_free);

/* ---- a request made on another process's connection (wire.c): netd's `kube` verb, for kvnet-multus */

/* {"verb", "apiVersion", "resource", "namespace"?, "name"?, "body"?}: the verb, the ref and the body of req (the
 * selectors and delete options are not carried). NULL on ENOMEM. */
json_t *kube_request_to_json(const KubeRequest *req);
/* The reverse: *ret's strings and body are o's (borrowed). Errors name the field and value. */
int kube_request_from_json(json_t *o, KubeRequest *ret, KvErr *e) _wur_;
/* A request's outcome: {"object": obj} (r >= 0) or {"error": {"errno", "code", "msg"}}; and back (*ret_obj: a
 * reference of the caller's; an error comes back as -errno with e set). */
json_t *kube_outcome_to_json(int r, json_t *obj, const KvErr *e);
int kube_outcome_from_json(json_t *o, json_t **ret_obj, KvErr *e) _wur_;
