/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl linked: the table holds its functions (kube/dl/curl.c is the on-demand one). Nothing else may live in
 * this file: a program that links kube/dl/curl.o defines these symbols itself, and this member must then never be
 * pulled from the archive. */
#define KUBE_CURL_API_IMPL
#include "kube/curl-api.h"

static const KubeCurlApi linked = {
        .global_init = curl_global_init,
        .global_cleanup = curl_global_cleanup,
        .easy_init = curl_easy_init,
        .easy_cleanup = curl_easy_cleanup,
        .easy_setopt = curl_easy_setopt,
        .easy_getinfo = curl_easy_getinfo,
        .easy_strerror = curl_easy_strerror,
        .slist_append = curl_slist_append,
        .slist_free_all = curl_slist_free_all,
        .multi_init = curl_multi_init,
        .multi_cleanup = curl_multi_cleanup,
        .multi_add_handle = curl_multi_add_handle,
        .multi_remove_handle = curl_multi_remove_handle,
        .multi_assign = curl_multi_assign,
        .multi_setopt = curl_multi_setopt,
        .multi_socket_action = curl_multi_socket_action,
        .multi_info_read = curl_multi_info_read,
        .multi_strerror = curl_multi_strerror,
        .multi_perform = curl_multi_perform,
        .multi_poll = curl_multi_poll,
};

const KubeCurlApi *kube_curl = &linked;

int kube_curl_load(KvErr *e) {
        (void) e;
        return 0;
}

bool kube_curl_on_demand(void) {
        return false;
}
