/* SPDX-License-Identifier: Apache-2.0 */
/* A watch: GET ...?watch=1 whose response streams events until the server or the network ends it. Events
 * reach the caller as the bytes arrive; the end (clean, an HTTP error such as 410, a dropped connection)
 * reaches it once, from the loop. */
#include "common/json-util.h"
#include "kube/kube-priv.h"

#define WATCH_ERROR_BODY_MAX (64 * 1024)

struct KubeWatch {
        KubeClient *c;
        KubeOp *op;
        KubeLineParser parser;
        kube_event_t on_event;
        kube_watch_end_t on_end;
        void *userdata;
        int failed; /* a stream the parser rejected: why */
        KvErr err;
        bool in_cb, free_requested;
};

static int on_line(KubeEventType t, json_t *obj, void *userdata) {
        KubeWatch *w = userdata;
        if (w->free_requested)
                return -ECANCELED;
        w->on_event(w, t, obj, w->userdata);
        return 0;
}

static size_t watch_data(KubeOp *op, const char *data, size_t len) {
        KubeWatch *w = op->owner;
        long http = 0;
        curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &http);
        if (http != 200) /* an error's Status, for the end */
                return op->resp.len + len <= WATCH_ERROR_BODY_MAX && kube_buf_append(&op->resp, data, len) >= 0 ? len : 0;
        w->in_cb = true;
        int r = kube_line_parser_feed(&w->parser, data, len, on_line, w, &w->err);
        w->in_cb = false;
        if (w->free_requested) {
                kube_watch_free(w); /* cancels op: this transfer ends, the loop frees it */
                return 0;
        }
        if (r < 0) {
                w->failed = r;
                return 0;
        }
        return len;
}

static void watch_finish(KubeOp *op, CURLcode cc) {
        KubeWatch *w = op->owner;
        KvErr e = {};
        long http = 0;
        int r = 0;
        curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &http);
        if (w->failed) {
                r = w->failed;
                e = w->err;
        } else if (cc != CURLE_OK)
                r = kube_curl_error(cc, op->errbuf, op->what, &e);
        else if (http != 200)
                r = kube_status_error(http, op->resp.data, op->resp.len, op->what, &e);
        w->op = NULL;
        kube_op_free(op);
        w->on_end(w, r, r < 0 ? &e : NULL, w->userdata); /* may free w: nothing after this */
}

int kube_watch_start(KubeClient *c, const KubeRef *ref, const KubeWatchOpts *opts, kube_event_t on_event,
                     kube_watch_end_t on_end, void *userdata, KubeWatch **ret, KvErr *e) {
        if (!c->multi)
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "kube: a watch needs a client with an event loop");
        KubeWatchOpts o = opts ? *opts : (KubeWatchOpts){};
        _cleanup_free_ char *q = NULL, *url = NULL, *fsel = NULL;
        if (ref->name && asprintf(&fsel, "metadata.name=%s%s%s", ref->name, o.field_selector ? "," : "",
                                  o.field_selector ? o.field_selector : "") < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        int r;
        if ((r = kube_query_add(&q, "watch", "1")) < 0 ||
            (r = kube_query_add(&q, "resourceVersion", o.resource_version)) < 0 ||
            (r = kube_query_add(&q, "allowWatchBookmarks", o.bookmarks ? "true" : NULL)) < 0 ||
            (r = kube_query_add(&q, "labelSelector", o.label_selector)) < 0 ||
            (r = kube_query_add(&q, "fieldSelector", fsel ? fsel : o.field_selector)) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "kube: out of memory");
        KubeRef coll = *ref;
        coll.name = NULL;
        if ((r = kube_url_build(c->cfg->server, &coll, NULL, q, &url, e)) < 0)
                return r;
        KubeWatch *w = calloc(1, sizeof *w);
        if (!w)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        *w = (KubeWatch){ .c = c, .on_event = on_event, .on_end = on_end, .userdata = userdata };
        if ((r = kube_op_new(c, "GET", url, &w->op, e)) < 0) {
                free(w);
                return r;
        }
        char desc[400];
        kube_ref_describe(ref, desc, sizeof desc);
        snprintf(w->op->what, sizeof w->op->what, "watch %s", desc);
        w->op->owner = w;
        w->op->on_data = watch_data;
        w->op->finish = watch_finish;
        curl_easy_setopt(w->op->easy, CURLOPT_TIMEOUT_MS, 0L); /* a watch runs until it ends */
        if ((r = kube_op_start(w->op)) < 0) {
                kverr_set_errno(e, KV_ERR_INTERNAL, r, "%s: cannot start it", w->op->what);
                kube_watch_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

KubeWatch *kube_watch_free(KubeWatch *w) {
        if (!w)
                return NULL;
        if (w->in_cb) { /* from its own event callback: watch_data finishes the job */
                w->free_requested = true;
                return NULL;
        }
        if (w->op) {
                w->op->owner = NULL;
                kube_op_cancel(w->op);
        }
        kube_line_parser_done(&w->parser);
        free(w);
        return NULL;
}
