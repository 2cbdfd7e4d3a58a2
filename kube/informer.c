/* SPDX-License-Identifier: Apache-2.0 */
/* An informer: list, then watch from the list's resourceVersion, keeping a cache by namespace/name that
 * the caller reads, with a callback per change. A watch that ends is resumed from the last
 * resourceVersion seen; one the server refuses as too old (410 Gone, or an ERROR event with code 410)
 * makes it relist, and the relist's difference to the cache comes out as callbacks too. Failures retry
 * after an exponential backoff with jitter. */
#include "common/json-util.h"
#include "kube/kube-priv.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define WATCH_HEALTHY_USEC 1000000 /* a watch that lasted this long ended normally: resume at once */

struct KubeInformer {
        KubeClient *c;
        char *group_version, *resource, *namespace, *label_selector, *field_selector;
        unsigned page_size, backoff_min, backoff_max;
        KubeInformerOps ops;
        void *userdata;
        json_t *cache; /* "ns/name" (or "name") → object */
        char rv[64];
        bool synced;
        KubeOp *list;
        KubeWatch *watch;
        uint64_t watch_started;
        EventSource *retry;
        bool retry_list;
        unsigned attempt, seed;
};

static const char *const states[_KUBE_INFORMER_STATE_MAX] = {
        [KUBE_INFORMER_LISTED] = "listed",
        [KUBE_INFORMER_WATCHING] = "watching",
        [KUBE_INFORMER_EXPIRED] = "expired",
        [KUBE_INFORMER_DISCONNECTED] = "disconnected",
};

const char *kube_informer_state_to_string(KubeInformerState s) {
        return s >= 0 && s < _KUBE_INFORMER_STATE_MAX ? states[s] : NULL;
}

static void state(KubeInformer *inf, KubeInformerState s, int error, unsigned delay_ms, const KvErr *e) {
        if (inf->ops.state)
                inf->ops.state(inf, s, error, delay_ms, e, inf->userdata);
}

static KubeRef ref_of(const KubeInformer *inf) {
        return (KubeRef){ .group_version = inf->group_version, .resource = inf->resource, .namespace = inf->namespace };
}

static int key_of(json_t *obj, char buf[static 512]) {
        json_t *md = json_object_get(obj, "metadata");
        const char *ns = json_string_value(json_object_get(md, "namespace")),
                   *name = json_string_value(json_object_get(md, "name"));
        if (!name)
                return -EINVAL;
        snprintf(buf, 512, "%s%s%s", ns ? ns : "", ns ? "/" : "", name);
        return 0;
}

static void take_rv(KubeInformer *inf, json_t *obj) {
        const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        if (rv && *rv)
                snprintf(inf->rv, sizeof inf->rv, "%s", rv);
}

static void start_list(KubeInformer *inf);
static void start_watch(KubeInformer *inf);

static int on_retry(EventSource *s, void *userdata) {
        KubeInformer *inf = userdata;
        (void) s;
        event_source_free(inf->retry);
        inf->retry = NULL;
        if (inf->retry_list)
                start_list(inf);
        else
                start_watch(inf);
        return 0;
}

/* After a failure: the list or the watch again, later. */
static void retry(KubeInformer *inf, bool list, int error, const KvErr *e) {
        unsigned delay = kube_backoff_ms(inf->attempt++, inf->backoff_min, inf->backoff_max, &inf->seed);
        state(inf, KUBE_INFORMER_DISCONNECTED, error, delay, e);
        inf->retry_list = list;
        if (event_add_timer(inf->c->loop, (uint64_t) delay * 1000, 0, on_retry, inf, &inf->retry) < 0)
                inf->retry = NULL; /* out of memory: nothing left to retry with */
}

/* ---- list */

/* The cache becomes the list; the difference comes out as callbacks. */
static void apply_list(KubeInformer *inf, json_t *items) {
        _cleanup_json_ json_t *old = inf->cache;
        inf->cache = json_object();
        size_t i;
        json_t *obj;
        char key[512];
        json_array_foreach(items, i, obj) {
                if (key_of(obj, key) < 0)
                        continue;
                json_object_set(inf->cache, key, obj);
                json_t *was = json_object_get(old, key);
                const char *rv_was = json_string_value(json_object_get(json_object_get(was, "metadata"), "resourceVersion"));
                const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
                if (!was)
                        inf->ops.added(inf, obj, inf->userdata);
                else if (!streq_ptr(rv_was, rv))
                        inf->ops.updated(inf, was, obj, inf->userdata);
        }
        const char *k;
        json_object_foreach(old, k, obj)
                if (!json_object_get(inf->cache, k))
                        inf->ops.deleted(inf, obj, inf->userdata);
}

static void on_list(KubeClient *c, int r, json_t *list, const KvErr *e, void *userdata) {
        KubeInformer *inf = userdata;
        (void) c;
        inf->list = NULL;
        if (r < 0)
                return retry(inf, true, r, e);
        inf->rv[0] = '\0';
        take_rv(inf, list);
        apply_list(inf, json_object_get(list, "items"));
        inf->attempt = 0;
        state(inf, KUBE_INFORMER_LISTED, 0, 0, NULL);
        if (!inf->synced) {
                inf->synced = true;
                if (inf->ops.synced)
                        inf->ops.synced(inf, inf->userdata);
        }
        start_watch(inf);
}

static void start_list(KubeInformer *inf) {
        KubeRequest req = { .verb = KUBE_LIST, .ref = ref_of(inf), .label_selector = inf->label_selector,
                            .field_selector = inf->field_selector, .limit = inf->page_size };
        KvErr e = {};
        int r = kube_request(inf->c, &req, on_list, inf, &inf->list, &e);
        if (r < 0) {
                inf->list = NULL;
                retry(inf, true, r, &e);
        }
}

/* ---- watch */

static void expired(KubeInformer *inf, const KvErr *e) {
        state(inf, KUBE_INFORMER_EXPIRED, -ESTALE, 0, e);
        start_list(inf);
}

static void on_event(KubeWatch *w, KubeEventType t, json_t *obj, void *userdata) {
        KubeInformer *inf = userdata;
        char key[512];
        if (t == KUBE_EVENT_ERROR) {
                long long code = json_integer_value(json_object_get(obj, "code"));
                const char *msg = json_string_value(json_object_get(obj, "message"));
                KvErr e = {};
                kverr_set(&e, KV_ERR_TRY_AGAIN, -EIO, "watch %s: ERROR %lld: %s", inf->resource, code, msg ? msg : "");
                kube_watch_free(w); /* ends the stream once this callback returns */
                inf->watch = NULL;
                if (code == 410)
                        return expired(inf, &e);
                return retry(inf, false, kube_http_errno(code, NULL), &e);
        }
        take_rv(inf, obj);
        inf->attempt = 0;
        if (t == KUBE_EVENT_BOOKMARK || key_of(obj, key) < 0)
                return;
        _cleanup_json_ json_t *was = json_incref(json_object_get(inf->cache, key));
        if (t == KUBE_EVENT_DELETED) {
                json_object_del(inf->cache, key);
                inf->ops.deleted(inf, obj, inf->userdata);
                return;
        }
        json_object_set(inf->cache, key, obj);
        if (was)
                inf->ops.updated(inf, was, obj, inf->userdata);
        else
                inf->ops.added(inf, obj, inf->userdata);
}

static void on_end(KubeWatch *w, int r, const KvErr *e, void *userdata) {
        KubeInformer *inf = userdata;
        kube_watch_free(w);
        inf->watch = NULL;
        if (r == -ESTALE)
                return expired(inf, e);
        if (r == 0 && now_usec() - inf->watch_started >= WATCH_HEALTHY_USEC) {
                inf->attempt = 0;
                return start_watch(inf);
        }
        retry(inf, false, r < 0 ? r : -ECONNRESET, e);
}

static void start_watch(KubeInformer *inf) {
        KubeRef ref = ref_of(inf);
        KubeWatchOpts o = { .label_selector = inf->label_selector, .field_selector = inf->field_selector,
                            .resource_version = inf->rv, .bookmarks = true };
        KvErr e = {};
        int r = kube_watch_start(inf->c, &ref, &o, on_event, on_end, inf, &inf->watch, &e);
        if (r < 0) {
                inf->watch = NULL;
                return retry(inf, false, r, &e);
        }
        inf->watch_started = now_usec();
        state(inf, KUBE_INFORMER_WATCHING, 0, 0, NULL);
}

/* ---- the caller's side */

int kube_informer_new(KubeClient *c, const KubeRef *ref, const KubeInformerOpts *opts, const KubeInformerOps *ops,
                      void *userdata, KubeInformer **ret, KvErr *e) {
        if (ref->name)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "kube: an informer watches a collection (use a fieldSelector for one object)");
        if (!ops->added || !ops->updated || !ops->deleted)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "kube: an informer needs added, updated and deleted");
        if (!c->multi)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "kube: an informer needs a client with an event loop");
        KubeInformerOpts o = opts ? *opts : (KubeInformerOpts){};
        _cleanup_(kube_informer_freep) KubeInformer *inf = calloc(1, sizeof *inf);
        if (!inf)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        *inf = (KubeInformer){ .c = c, .ops = *ops, .userdata = userdata, .page_size = o.page_size,
                               .backoff_min = o.backoff_min_ms ? o.backoff_min_ms : BACKOFF_MIN_MS,
                               .backoff_max = o.backoff_max_ms ? o.backoff_max_ms : BACKOFF_MAX_MS,
                               .seed = (unsigned) (now_usec() ^ (uintptr_t) inf) };
        if (!(inf->cache = json_object()) || !(inf->group_version = strdup(ref->group_version ? ref->group_version : "")) ||
            !(inf->resource = strdup(ref->resource ? ref->resource : "")) ||
            (ref->namespace && !(inf->namespace = strdup(ref->namespace))) ||
            (o.label_selector && !(inf->label_selector = strdup(o.label_selector))) ||
            (o.field_selector && !(inf->field_selector = strdup(o.field_selector))))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        KubeRequest req = { .verb = KUBE_LIST, .ref = ref_of(inf), .label_selector = inf->label_selector,
                            .field_selector = inf->field_selector, .limit = inf->page_size };
        int r = kube_request(c, &req, on_list, inf, &inf->list, e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(inf);
        return 0;
}

KubeInformer *kube_informer_free(KubeInformer *inf) {
        if (!inf)
                return NULL;
        kube_op_cancel(inf->list);
        kube_watch_free(inf->watch);
        if (inf->retry)
                event_source_free(inf->retry);
        json_decref(inf->cache);
        free(inf->group_version);
        free(inf->resource);
        free(inf->namespace);
        free(inf->label_selector);
        free(inf->field_selector);
        free(inf);
        return NULL;
}

bool kube_informer_synced(const KubeInformer *inf) {
        return inf->synced;
}

json_t *kube_informer_get(const KubeInformer *inf, const char *ns, const char *name) {
        char key[512];
        snprintf(key, sizeof key, "%s%s%s", ns ? ns : "", ns ? "/" : "", name);
        return json_object_get(inf->cache, key);
}

size_t kube_informer_count(const KubeInformer *inf) {
        return json_object_size(inf->cache);
}

const char *kube_informer_resource_version(const KubeInformer *inf) {
        return inf->rv;
}

int kube_informer_foreach(const KubeInformer *inf, int (*cb)(json_t *obj, void *userdata), void *userdata) {
        const char *k;
        json_t *v;
        json_object_foreach(inf->cache, k, v) {
                int r = cb(v, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}
