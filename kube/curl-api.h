/* SPDX-License-Identifier: Apache-2.0 */
/* The libcurl functions kube/ calls, through one table, so that a program may load libcurl when it first needs it
 * (kube/dl/curl.c: dlopen) instead of at exec, or not at all. Every other program links libcurl as usual
 * (kube/curl-api.c: the table holds the linked functions). Included by kube-priv.h after <curl/curl.h>; the names
 * below then call through the table, so kube/'s sources keep libcurl's names. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>

#include "common/kverr.h"
#include "common/util.h"

typedef struct KubeCurlApi {
        CURLcode (*global_init)(long flags);
        void (*global_cleanup)(void);
        CURL *(*easy_init)(void);
        void (*easy_cleanup)(CURL *h);
        CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
        CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
        const char *(*easy_strerror)(CURLcode cc);
        struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
        void (*slist_free_all)(struct curl_slist *l);
        CURLM *(*multi_init)(void);
        CURLMcode (*multi_cleanup)(CURLM *m);
        CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
        CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
        CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *p);
        CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
        CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev_bitmask, int *running);
        CURLMsg *(*multi_info_read)(CURLM *m, int *msgs_in_queue);
        const char *(*multi_strerror)(CURLMcode mc);
        CURLMcode (*multi_perform)(CURLM *m, int *running);
        CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd extra[], unsigned n_extra, int timeout_ms, int *numfds);
} KubeCurlApi;

/* The table; only valid once kube_curl_load() succeeded (kube_client_new() calls it first). */
extern const KubeCurlApi *kube_curl;

/* 0 when libcurl is there to call (loading it now if it was not: KV_ERR_INTERNAL naming the library and the loader's
 * reason when it cannot be). Thread-safe; a second call returns the first one's answer. */
int kube_curl_load(KvErr *e) _wur_;
/* True when this program loads libcurl on demand (kube/dl/curl.c). */
bool kube_curl_on_demand(void);

#ifndef KUBE_CURL_API_IMPL
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (kube_curl->global_init)
#define curl_global_cleanup (kube_curl->global_cleanup)
#define curl_easy_init (kube_curl->easy_init)
#define curl_easy_cleanup (kube_curl->easy_cleanup)
#define curl_easy_setopt (kube_curl->easy_setopt)
#define curl_easy_getinfo (kube_curl->easy_getinfo)
#define curl_easy_strerror (kube_curl->easy_strerror)
#define curl_slist_append (kube_curl->slist_append)
#define curl_slist_free_all (kube_curl->slist_free_all)
#define curl_multi_init (kube_curl->multi_init)
#define curl_multi_cleanup (kube_curl->multi_cleanup)
#define curl_multi_add_handle (kube_curl->multi_add_handle)
#define curl_multi_remove_handle (kube_curl->multi_remove_handle)
#define curl_multi_assign (kube_curl->multi_assign)
#define curl_multi_setopt (kube_curl->multi_setopt)
#define curl_multi_socket_action (kube_curl->multi_socket_action)
#define curl_multi_info_read (kube_curl->multi_info_read)
#define curl_multi_strerror (kube_curl->multi_strerror)
#define curl_multi_perform (kube_curl->multi_perform)
#define curl_multi_poll (kube_curl->multi_poll)
#endif
