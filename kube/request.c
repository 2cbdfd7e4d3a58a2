/* SPDX-License-Identifier: Apache-2.0 */
/* One API request: its URL, method and body from a KubeRequest, the easy handle set up for the config (TLS
 * verified unless the config says otherwise, bearer token or client certificate), the response parsed,
 * lists followed through their continue tokens, and the completion. */
#include "common/json-util.h"
#include "kube/kube-priv.h"

#define KUBE_RESPONSE_MAX (64 * 1024 * 1024)

static const char *const verbs[_KUBE_VERB_MAX] = {
        [KUBE_GET] = "get",       [KUBE_LIST] = "list",   [KUBE_CREATE] = "create",
        [KUBE_UPDATE] = "update", [KUBE_PATCH] = "patch", [KUBE_UPDATE_STATUS] = "update-status",
        [KUBE_PATCH_STATUS] = "patch-status", [KUBE_DELETE] = "delete",
};

static const char *const methods[_KUBE_VERB_MAX] = {
        [KUBE_GET] = "GET",   [KUBE_LIST] = "GET",          [KUBE_CREATE] = "POST",        [KUBE_UPDATE] = "PUT",
        [KUBE_PATCH] = "PATCH", [KUBE_UPDATE_STATUS] = "PUT", [KUBE_PATCH_STATUS] = "PATCH", [KUBE_DELETE] = "DELETE",
};

const char *kube_verb_to_string(KubeVerb v) {
        return v >= 0 && v < _KUBE_VERB_MAX ? verbs[v] : NULL;
}

static size_t write_cb(char *p, size_t size, size_t n, void *userdata) {
        KubeOp *op = userdata;
        size_t len = size * n;
        if (op->cancelled)
                return 0;
        if (op->on_data)
                return op->on_data(op, p, len);
        if (op->resp.len + len > KUBE_RESPONSE_MAX || kube_buf_append(&op->resp, p, len) < 0)
                return 0;
        return len;
}

static int setup_tls(CURL *h, const KubeConfig *k) {
        CURLcode cc = CURLE_OK;
        if (strncmp(k->server, "https://", 8) != 0)
                return 0;
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, k->insecure ? 0L : 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, k->insecure ? 0L : 2L);
        if (k->ca_data) {
                struct curl_blob b = { .data = k->ca_data, .len = k->ca_data_len, .flags = CURL_BLOB_COPY };
                cc = curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
        } else if (k->ca_file)
                cc = curl_easy_setopt(h, CURLOPT_CAINFO, k->ca_file);
        if (cc == CURLE_OK && k->cert_data) {
                struct curl_blob b = { .data = k->cert_data, .len = k->cert_data_len, .flags = CURL_BLOB_COPY };
                cc = curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
        } else if (cc == CURLE_OK && k->cert_file)
                cc = curl_easy_setopt(h, CURLOPT_SSLCERT, k->cert_file);
        if (cc == CURLE_OK && k->key_data) {
                struct curl_blob b = { .data = k->key_data, .len = k->key_data_len, .flags = CURL_BLOB_COPY };
                cc = curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
        } else if (cc == CURLE_OK && k->key_file)
                cc = curl_easy_setopt(h, CURLOPT_SSLKEY, k->key_file);
        return cc == CURLE_OK ? 0 : -EOPNOTSUPP;
}

#define TOKEN_REREAD_USEC (60 * 1000000ULL)

/* A token from a file is read again once a minute: projected service account tokens rotate. A failed read
 * keeps the token there is. */
static void refresh_token(KubeClient *c) {
        uint64_t now = now_usec();
        if (!c->cfg->token_file || (c->token_read_usec && now - c->token_read_usec < TOKEN_REREAD_USEC))
                return;
        c->token_read_usec = now;
        IGNORE_RESULT(kube_read_token_file(c->cfg->token_file, &c->cfg->token));
}

int kube_op_new(KubeClient *c, const char *method, const char *url, KubeOp **ret, KvErr *e) {
        refresh_token(c);
        const KubeConfig *k = c->cfg;
        KubeOp *op = calloc(1, sizeof *op);
        if (!op)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        op->c = c;
        op->multi = c->multi;
        op->next = c->ops;
        if (c->ops)
                c->ops->prev = op;
        c->ops = op;
        op->easy = curl_easy_init();
        if (!op->easy || !(op->url = strdup(url))) {
                kube_op_free(op);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        }
        CURL *h = op->easy;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_PRIVATE, op);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, op);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, op->errbuf);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) c->timeout_ms);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_USERAGENT, "kvnet-kube/1");
        int r = setup_tls(h, k);
        if (r < 0) {
                kube_op_free(op);
                return kverr_set(e, KV_ERR_INVALID_CONFIG, r, "kube: libcurl cannot use the config's certificates");
        }
        if (k->username) {
                curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
                curl_easy_setopt(h, CURLOPT_USERNAME, k->username);
                curl_easy_setopt(h, CURLOPT_PASSWORD, k->password ? k->password : "");
        }
        struct curl_slist *l = curl_slist_append(NULL, "Accept: application/json");
        _cleanup_free_ char *auth = NULL;
        if (l && k->token && k->token[0]) {
                if (asprintf(&auth, "Authorization: Bearer %s", k->token) < 0)
                        auth = NULL;
                struct curl_slist *l2 = auth ? curl_slist_append(l, auth) : NULL;
                if (!l2)
                        curl_slist_free_all(l);
                l = l2;
        }
        op->headers = l;
        if (!l) {
                kube_op_free(op);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
        *ret = op;
        return 0;
}

KubeOp *kube_op_free(KubeOp *op) {
        if (!op)
                return NULL;
        kube_op_stop(op);
        if (op->prev)
                op->prev->next = op->next;
        else
                op->c->ops = op->next;
        if (op->next)
                op->next->prev = op->prev;
        if (op->easy)
                curl_easy_cleanup(op->easy);
        curl_slist_free_all(op->headers);
        free(op->url);
        free(op->body);
        kube_buf_clear(&op->resp);
        json_decref(op->items);
        free(op->cont);
        free(op);
        return NULL;
}

static void complete(KubeOp *op, int r, json_t *obj, const KvErr *e) {
        op->completed = true;
        if (op->done)
                op->done(op->c, r, obj, e, op->userdata);
        kube_op_free(op);
}

/* The next page of a list: the same URL with the continue token. */
static int next_page(KubeOp *op, const char *cont) {
        _cleanup_free_ char *q = NULL, *url = NULL;
        int r = kube_query_add(&q, "continue", cont);
        if (r < 0)
                return r;
        if (asprintf(&url, "%s%s%s", op->url, strchr(op->url, '?') ? "&" : "?", q) < 0)
                return -ENOMEM;
        curl_easy_setopt(op->easy, CURLOPT_URL, url);
        op->resp.len = 0;
        return kube_op_start(op);
}

static void request_finish(KubeOp *op, CURLcode cc) {
        KvErr e = {};
        long http = 0;
        if (cc != CURLE_OK)
                return complete(op, kube_curl_error(cc, op->errbuf, op->what, &e), NULL, &e);
        curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &http);
        if (http < 200 || http >= 300)
                return complete(op, kube_status_error(http, op->resp.data, op->resp.len, op->what, &e), NULL, &e);
        _cleanup_json_ json_t *obj = NULL;
        char what[600];
        snprintf(what, sizeof what, "%s: response", op->what);
        int r = op->resp.len ? json_parse_object(op->resp.data, op->resp.len, KUBE_RESPONSE_MAX, what, &obj, &e)
                             : ((obj = json_object()) ? 0 : -ENOMEM);
        if (r < 0)
                return complete(op, r, NULL, &e);
        if (op->req.verb == KUBE_LIST) {
                const char *cont;
                if ((r = kube_list_page(obj, &op->items, op->cont, &cont, what, &e)) < 0)
                        return complete(op, r, NULL, &e);
                if (cont) {
                        char *c = strdup(cont);
                        if (!c)
                                return complete(op, kverr_set(&e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory"),
                                                NULL, &e);
                        free(op->cont);
                        op->cont = c;
                        if ((r = next_page(op, c)) < 0)
                                return complete(op, kverr_set_errno(&e, KV_ERR_INTERNAL, r, "%s: next page", op->what),
                                                NULL, &e);
                        return;
                }
                json_object_set(obj, "items", op->items);
                json_t *md = json_object_get(obj, "metadata");
                if (md)
                        json_object_del(md, "continue");
        }
        complete(op, 0, obj, NULL);
}

/* What the request's verb needs: a name, a body, none. */
static int check_request(const KubeRequest *req, const char *what, KvErr *e) {
        bool named = req->verb != KUBE_LIST && req->verb != KUBE_CREATE;
        bool body = req->verb != KUBE_GET && req->verb != KUBE_LIST && req->verb != KUBE_DELETE;
        if (req->verb < 0 || req->verb >= _KUBE_VERB_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "kube: unknown verb %d", (int) req->verb);
        if (named && (!req->ref.name || !*req->ref.name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: needs a name", what);
        if (req->verb == KUBE_LIST && req->ref.name)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: a list takes no name (use a fieldSelector)", what);
        if (body && !json_is_object(req->body))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: needs an object as its body", what);
        return 0;
}

static int request_new(KubeClient *c, const KubeRequest *req, kube_done_t done, void *userdata, KubeOp **ret,
                       KvErr *e) {
        char desc[400], what[512];
        kube_ref_describe(&req->ref, desc, sizeof desc);
        snprintf(what, sizeof what, "%s %s", kube_verb_to_string(req->verb) ? kube_verb_to_string(req->verb) : "?",
                 desc);
        int r = check_request(req, what, e);
        if (r < 0)
                return r;
        _cleanup_free_ char *q = NULL, *url = NULL;
        char num[32];
        if (req->verb == KUBE_LIST) {
                snprintf(num, sizeof num, "%u", req->limit);
                if ((r = kube_query_add(&q, "labelSelector", req->label_selector)) < 0 ||
                    (r = kube_query_add(&q, "fieldSelector", req->field_selector)) < 0 ||
                    (r = kube_query_add(&q, "limit", req->limit ? num : NULL)) < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "kube: out of memory");
        }
        if (req->verb == KUBE_DELETE) {
                snprintf(num, sizeof num, "%u", req->grace_seconds);
                if ((r = kube_query_add(&q, "propagationPolicy", req->propagation)) < 0 ||
                    (r = kube_query_add(&q, "gracePeriodSeconds", req->set_grace ? num : NULL)) < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "kube: out of memory");
        }
        KubeRef ref = req->ref;
        if (req->verb == KUBE_CREATE)
                ref.name = NULL;
        bool status = req->verb == KUBE_UPDATE_STATUS || req->verb == KUBE_PATCH_STATUS;
        if ((r = kube_url_build(c->cfg->server, &ref, status ? "status" : NULL, q, &url, e)) < 0)
                return r;
        KubeOp *op;
        if ((r = kube_op_new(c, methods[req->verb], url, &op, e)) < 0)
                return r;
        snprintf(op->what, sizeof op->what, "%s", what);
        op->req = *req;
        op->req.body = NULL;
        op->done = done;
        op->userdata = userdata;
        op->finish = request_finish;
        if (req->body) {
                bool patch = req->verb == KUBE_PATCH || req->verb == KUBE_PATCH_STATUS;
                struct curl_slist *l = curl_slist_append(op->headers, patch ? "Content-Type: application/merge-patch+json"
                                                                           : "Content-Type: application/json");
                if (l)
                        op->headers = l;
                if (!l || !(op->body = json_dumps(req->body, JSON_COMPACT))) {
                        kube_op_free(op);
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
                }
                curl_easy_setopt(op->easy, CURLOPT_HTTPHEADER, op->headers);
                curl_easy_setopt(op->easy, CURLOPT_POSTFIELDS, op->body);
                curl_easy_setopt(op->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(op->body));
        }
        *ret = op;
        return 0;
}

int kube_request(KubeClient *c, const KubeRequest *req, kube_done_t done, void *userdata, KubeOp **ret_op,
                 KvErr *e) {
        if (!c->multi)
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "kube: a client without an event loop has only "
                                 "kube_request_sync()");
        KubeOp *op;
        int r = request_new(c, req, done, userdata, &op, e);
        if (r < 0)
                return r;
        /* adding the handle only arms curl's timer: the completion always comes later, from the loop */
        if ((r = kube_op_start(op)) < 0) {
                kverr_set_errno(e, KV_ERR_INTERNAL, r, "%s: cannot start it", op->what);
                kube_op_free(op);
                return r;
        }
        if (ret_op)
                *ret_op = op;
        return 0;
}

typedef struct SyncResult {
        bool done;
        int r;
        json_t *obj;
        KvErr e;
} SyncResult;

static void sync_done(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata) {
        SyncResult *res = userdata;
        (void) c;
        res->done = true;
        res->r = r;
        res->obj = json_incref(obj);
        if (e)
                res->e = *e;
}

/* The multi handle of the blocking requests: one per client, so that its connection cache keeps the connection to
 * the API open from one request to the next (no new TCP connection, no new TLS handshake per request). */
static int sync_multi(KubeClient *c, CURLM **ret) {
        if (!c->sync_multi && !(c->sync_multi = curl_multi_init()))
                return -ENOMEM;
        *ret = c->sync_multi;
        return 0;
}

int kube_request_sync_many(KubeClient *c, const KubeRequest *reqs, size_t n, json_t **rets, int *rs, KvErr *errs) {
        _cleanup_free_ SyncResult *res = calloc(n ? n : 1, sizeof *res);
        _cleanup_free_ KubeOp **ops = calloc(n ? n : 1, sizeof *ops);
        CURLM *m = NULL;
        size_t pending = 0;
        int r = 0;
        if (!res || !ops || sync_multi(c, &m) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                KvErr *e = errs ? &errs[i] : NULL;
                if ((r = request_new(c, &reqs[i], sync_done, &res[i], &ops[i], e)) < 0) {
                        res[i] = (SyncResult) { .done = true, .r = r, .e = e ? *e : (KvErr) {} };
                        ops[i] = NULL;
                        continue;
                }
                ops[i]->multi = m;
                if ((r = kube_op_start(ops[i])) < 0) {
                        kube_op_free(ops[i]);
                        ops[i] = NULL;
                        res[i] = (SyncResult) { .done = true, .r = r };
                        kverr_set_errno(&res[i].e, KV_ERR_INTERNAL, r, "kube: cannot start the request");
                        continue;
                }
                pending++;
        }
        while (pending > 0) {
                int running = 0;
                CURLMcode mc = curl_multi_perform(m, &running);
                kube_multi_drain(m); /* completes ops, or starts a list's next page on m */
                pending = 0;
                for (size_t i = 0; i < n; i++)
                        pending += !res[i].done;
                if (pending == 0)
                        break;
                if (mc == CURLM_OK)
                        mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
                if (mc != CURLM_OK) { /* the unfinished ones fail; the finished ones keep their results */
                        for (size_t i = 0; i < n; i++)
                                if (!res[i].done) {
                                        kube_op_free(ops[i]);
                                        res[i] = (SyncResult) { .done = true, .r = -EIO };
                                        kverr_set(&res[i].e, KV_ERR_INTERNAL, -EIO, "kube: %s", curl_multi_strerror(mc));
                                }
                        break;
                }
        }
        for (size_t i = 0; i < n; i++) {
                rs[i] = res[i].r;
                if (res[i].r < 0) {
                        if (errs && !kverr_is_set(&errs[i]))
                                errs[i] = res[i].e;
                        json_decref(res[i].obj);
                } else if (rets)
                        rets[i] = res[i].obj;
                else
                        json_decref(res[i].obj);
        }
        return 0;
}

int kube_request_sync(KubeClient *c, const KubeRequest *req, json_t **ret, KvErr *e) {
        json_t *obj = NULL;
        int r = 0;
        int k = kube_request_sync_many(c, req, 1, &obj, &r, e);
        if (k < 0)
                return kverr_set(e, KV_ERR_INTERNAL, k, "kube: out of memory");
        if (r < 0)
                return r;
        if (ret)
                *ret = obj;
        else
                json_decref(obj);
        return 0;
}
