/* SPDX-License-Identifier: Apache-2.0 */
/* kube/ internals shared by its files, and reachable by tests/unit/test-kube.c. */
#pragma once

#include <curl/curl.h>

#include "common/tokenbucket.h"
#include "kube/curl-api.h"
#include "kube/kube.h"

/* ---- small pieces (kube/util.c) */

typedef struct KubeBuf {
        char *data;
        size_t len, cap;
} KubeBuf;

int kube_buf_append(KubeBuf *b, const void *data, size_t len) _wur_;
void kube_buf_clear(KubeBuf *b);


/* A YAML (or JSON: a subset of YAML) document as JSON: mappings → objects, sequences → arrays,
 * scalars → strings. what names the input in errors (kube/yaml.c). */
int kube_yaml_parse(const char *text, size_t len, const char *what, json_t **ret, KvErr *e) _wur_;

/* The first line of a token file. */
int kube_read_token_file(const char *path, char **ret) _wur_;
/* A deep copy (-EINVAL without a server). */
int kube_config_copy(const KubeConfig *src, KubeConfig **ret) _wur_;

/* ---- URLs (kube/url.c) */

/* server + /api/v1 or /apis/GROUP/VERSION + [/namespaces/NS] + /RESOURCE [/NAME [/SUBRESOURCE]] [?QUERY].
 * Segments are percent-escaped; -EINVAL names a missing part. */
int kube_url_build(const char *server, const KubeRef *ref, const char *subresource, const char *query, char **ret,
                   KvErr *e) _wur_;
/* Appends "&key=value" (or "key=value" to an empty string) with value escaped; value NULL/"" adds nothing. */
int kube_query_add(char **q, const char *key, const char *value) _wur_;
/* "pods" / "virtualmachines.kubevirt.io" with " 'ns/name'" — what error messages call it. */
void kube_ref_describe(const KubeRef *ref, char *buf, size_t size);

/* ---- errors (kube/status.c) */

/* Fills e from an HTTP status and its body (a metav1.Status when the server sent one) and returns the
 * negative errno of the status (kube.h's table). what: "GET pods 'default/x'". */
int kube_status_error(long http, const char *body, size_t len, const char *what, KvErr *e);
/* A transport failure (CURLcode) as errno + KvErr. */
int kube_curl_error(CURLcode cc, const char *errbuf, const char *what, KvErr *e);
/* The errno of an HTTP status (0 for 2xx); reason (may be NULL) tells the two 409s apart. */
int kube_http_errno(long http, const char *reason);

/* ---- watch stream parsing (kube/watch-parse.c) */

#define KUBE_WATCH_LINE_MAX (16 * 1024 * 1024)

typedef int (*kube_line_event_t)(KubeEventType t, json_t *obj, void *userdata);

typedef struct KubeLineParser {
        KubeBuf buf; /* the partial line carried over to the next chunk */
} KubeLineParser;

/* One event line: {"type": "...", "object": {...}}; obj a new reference. */
int kube_watch_parse_line(const char *line, size_t len, KubeEventType *ret_type, json_t **ret_obj, KvErr *e) _wur_;
/* Feeds a chunk of the stream, split anywhere: every complete line (empty ones skipped) is parsed and
 * handed to cb; a callback < 0 stops and is returned. */
int kube_line_parser_feed(KubeLineParser *p, const char *data, size_t len, kube_line_event_t cb, void *userdata,
                          KvErr *e) _wur_;
void kube_line_parser_done(KubeLineParser *p);

/* ---- list pages (kube/list.c) */

/* One page of a LIST answer: its items appended to *acc (made when NULL). *ret_continue: the next page's token
 * (inside page), NULL after the last page. Refused (KV_ERR_DECODE naming what, nothing appended): 'items' not a
 * list, an item not an object, 'metadata.continue' not a string, and a token equal to prev (the one this page was
 * asked for with: a server that would hand out the same page for ever). */
int kube_list_page(json_t *page, json_t **acc, const char *prev, const char **ret_continue, const char *what,
                   KvErr *e) _wur_;

/* ---- backoff (kube/ratelimit.c) */

/* min·2^attempt capped at max, then a random point in its upper half (jitter). */
unsigned kube_backoff_ms(unsigned attempt, unsigned min_ms, unsigned max_ms, unsigned *seed);

/* ---- the client and its operations (kube/multi.c, kube/request.c) */

struct KubeClient {
        KubeConfig *cfg;
        EventLoop *loop;
        CURLM *multi;
        CURLM *sync_multi; /* kube_request_sync*(): kept, with its connections, until the client is freed */
        EventSource *timer;
        KvTokenBucket rl; /* QPS/burst: kv_token_bucket_reserve() before each request */
        unsigned timeout_ms;
        uint64_t token_read_usec; /* when cfg->token_file was last read */
        bool in_curl; /* inside curl_multi_socket_action(): adding/removing handles waits for the loop */
        KubeOp *ops;  /* in flight */
};

typedef void (*kube_op_finish_t)(KubeOp *op, CURLcode cc);

struct KubeOp {
        KubeClient *c;
        CURL *easy;
        CURLM *multi; /* the client's, or its sync_multi (kube_request_sync) */
        struct curl_slist *headers;
        char errbuf[CURL_ERROR_SIZE];
        char what[512];
        KubeRequest req;
        char *url;     /* without the continue token (list) */
        char *body;
        KubeBuf resp;
        json_t *items; /* list: the pages so far */
        char *cont;    /* list: the continue token of the page asked for last */
        kube_done_t done;
        void *userdata;
        /* a watch: data goes here instead of resp; finish replaces the request's completion */
        size_t (*on_data)(KubeOp *op, const char *data, size_t len);
        kube_op_finish_t finish;
        void *owner;
        EventSource *delay; /* waiting for a token, or for the loop (in_curl) */
        bool in_multi, cancelled, completed;
        KubeOp *prev, *next;
};

/* A new operation on the client with the easy handle configured for cfg (TLS, auth, timeouts). */
int kube_op_new(KubeClient *c, const char *method, const char *url, KubeOp **ret, KvErr *e) _wur_;
KubeOp *kube_op_free(KubeOp *op);
/* Puts the operation on its multi handle after the rate limiter allows it (async: a timer). */
int kube_op_start(KubeOp *op) _wur_;
/* Takes it off its multi handle (no completion). */
void kube_op_stop(KubeOp *op);
/* Reads the finished transfers of a multi handle and calls their finish. */
void kube_multi_drain(CURLM *m);
